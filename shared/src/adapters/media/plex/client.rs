//! Plex Media Server's HTTP API (JSON with `Accept: application/json`, token in the
//! `X-Plex-Token` header).
//!
//! | call | request |
//! |---|---|
//! | identity | `GET /identity` (`MediaContainer.machineIdentifier`, `version`) |
//! | item | `GET /library/metadata/{ratingKey}?includeGuids=1` |
//! | mark played | `GET /:/scrobble?identifier=com.plexapp.plugins.library&key={ratingKey}` |
//! | mark unplayed | `GET /:/unscrobble?identifier=com.plexapp.plugins.library&key={ratingKey}` |
//! | progress | `POST /:/timeline?ratingKey=..&key=/library/metadata/..&identifier=..&state=stopped&time=..&duration=..` |
//! | find | `GET /hubs/search?query=..&includeGuids=1&limit=50`; episodes through the show's `GET /library/metadata/{show}/allLeaves?includeGuids=1` |
//! | accounts | `GET /accounts` (`MediaContainer.Account[]`: `id`, `name`; id 0 with no name is the server's system account, left out) |
//! | library | `GET /library/sections`, then per movie/show section `GET /library/sections/{id}/all?type=1|4&includeGuids=1&sort=addedAt:asc` paged with `X-Plex-Container-Start`/`-Size`; show guids from `type=2` |
//!
//! Guids: every `Guid[].id` and the legacy `guid` go through
//! [`crate::domain::guid::parse_plex_guid`] (the webhook parser's [`AgentIds`] rules), so
//! `plex://` ids are dropped and legacy `thetvdb://SERIES/S/E` become series guids plus
//! numbers. Episodes get their show's guids as series guids during a library walk and
//! in `find`.
//!
//! Notes: Plex's `/identity` answers without checking the token; scrobble records "now"
//! (there is no date parameter).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::adapters::media::client::RetryPolicy;

use crate::adapters::media::endpoint::{seg, Call, Endpoint};

use crate::domain::remote::{same_item, RemoteItem};

use crate::domain::sync::matching::shares_guid;

use crate::adapters::media::lenient::Scalar;
use crate::domain::model::{Backend, BackendKind, Guids, Item, ItemType};
use crate::ports::media::{
    Account, ClientError, Identity, LibraryPage, MediaClient, PageCursor, PageRequest,
};

use super::answers::*;

const IDENTIFIER: &str = "com.plexapp.plugins.library";
const TOTAL_HEADER: &str = "x-plex-container-total-size";
/// Shows fetched per request when collecting a section's show guids.
const SHOW_PAGE: u32 = 1000;
/// Search results per hub.
const SEARCH_LIMIT: u32 = 50;

/// Headers every Plex call carries besides the token.
const PLEX_HEADERS: &[(&str, &str)] = &[
    ("X-Plex-Client-Identifier", "watchstate-serverless"),
    ("X-Plex-Product", "watchstate-serverless"),
];

/// A library's movie and show sections: `(key, what it holds)`.
type Sections = Vec<(String, ItemType)>;

pub struct PlexClient {
    api: Endpoint,
    /// Show guids per library section, collected once per client (`type=2`).
    shows: Mutex<HashMap<String, Arc<HashMap<String, Guids>>>>,
    /// Movie and show sections, listed once per client: an import pages through them
    /// hundreds of times and they do not change mid-run.
    sections: Mutex<Option<Arc<Sections>>>,
}

impl std::fmt::Debug for PlexClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlexClient")
            .field("api", &self.api)
            .finish()
    }
}

impl PlexClient {
    pub fn new(backend: &Backend, http: reqwest::Client, retry: RetryPolicy) -> Self {
        PlexClient {
            api: Endpoint::new(
                BackendKind::Plex,
                &backend.url,
                &backend.token,
                "X-Plex-Token",
                backend.token.clone(),
                PLEX_HEADERS,
                http,
                retry,
            ),
            shows: Mutex::new(HashMap::new()),
            sections: Mutex::new(None),
        }
    }

    async fn container(&self, call: &Call) -> Result<(Container, Option<u64>), ClientError> {
        let answer = self.api.send(call).await?;
        let header_total = answer.header_u64(TOTAL_HEADER);
        let container = parse_container(&answer.body).map_err(|e| {
            ClientError::BadResponse(self.api.scrub(format!("{}: {e}", self.api.label(call))))
        })?;
        let total = header_total.or(container.total_size);
        Ok((container, total))
    }

    async fn metadata(&self, rating_key: &str) -> Result<Option<Meta>, ClientError> {
        let call =
            Call::get(format!("/library/metadata/{}", seg(rating_key))).query("includeGuids", "1");
        match self.container(&call).await {
            Ok((c, _)) => Ok(c.metadata.into_iter().next()),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Everything `/hubs/search` finds for a query, across hubs.
    async fn search(&self, query: &str) -> Result<Vec<Meta>, ClientError> {
        let call = Call::get("/hubs/search")
            .query("query", query)
            .query("includeGuids", "1")
            .query("limit", SEARCH_LIMIT.to_string());
        Ok(self.container(&call).await?.0.metadata)
    }

    /// A search hit's guids; hits without `Guid[]` are read in full first.
    async fn with_guids(&self, meta: Meta) -> Result<Option<Meta>, ClientError> {
        if meta.has_guid_list {
            return Ok(Some(meta));
        }
        match &meta.rating_key {
            Some(key) => self.metadata(key).await,
            None => Ok(None),
        }
    }

    /// The first hit of type `kind` (`movie`, `episode`) in a search for the item's
    /// title that is the item.
    async fn find_by_title(
        &self,
        item: &Item,
        kind: &str,
    ) -> Result<Option<RemoteItem>, ClientError> {
        let Some(title) = item.title.as_deref().filter(|t| !t.trim().is_empty()) else {
            return Ok(None);
        };
        for hit in self.search(title).await? {
            if !hit.is(kind) {
                continue;
            }
            let Some(meta) = self.with_guids(hit).await? else {
                continue;
            };
            if let Some(found) = meta.remote(None).filter(|r| same_item(item, r)) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    async fn find_episode(&self, item: &Item) -> Result<Option<RemoteItem>, ClientError> {
        if let Some(series) = item
            .series_title
            .as_deref()
            .filter(|t| !t.trim().is_empty())
        {
            let mut walked = Vec::new();
            for hit in self.search(series).await? {
                if !hit.is("show") {
                    continue;
                }
                let Some(show) = self.with_guids(hit).await? else {
                    continue;
                };
                let Some(key) = show.rating_key.clone() else {
                    continue;
                };
                if walked.contains(&key) {
                    continue;
                }
                walked.push(key.clone());
                let show_guids = show.show_guids();
                // A show whose ids contradict the item's series ids is not walked.
                if !item.series_guids.is_empty()
                    && !show_guids.is_empty()
                    && !shares_guid(&item.series_guids, &show_guids)
                {
                    continue;
                }
                let call = Call::get(format!("/library/metadata/{}/allLeaves", seg(&key)))
                    .query("includeGuids", "1");
                let (leaves, _) = self.container(&call).await?;
                for ep in leaves.metadata {
                    if let Some(found) = ep.remote(Some(&show_guids)).filter(|r| same_item(item, r))
                    {
                        return Ok(Some(found));
                    }
                }
            }
        }
        // No show to walk: an episode hit can still match on its own guid.
        if item.guids.is_empty() {
            return Ok(None);
        }
        self.find_by_title(item, "episode").await
    }

    /// Movie and show sections, ordered by key; listed once per client.
    async fn sections(&self) -> Result<Arc<Sections>, ClientError> {
        let cached = self
            .sections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(s) = cached {
            return Ok(s);
        }
        let (c, _) = self.container(&Call::get("/library/sections")).await?;
        let mut out: Vec<(String, ItemType)> = c
            .directories
            .iter()
            .filter_map(|(key, kind)| {
                let kind = match kind.as_deref()? {
                    "movie" => ItemType::Movie,
                    "show" => ItemType::Episode,
                    _ => return None,
                };
                Some((key.clone()?, kind))
            })
            .collect();
        out.sort_by(|a, b| section_order(&a.0, &b.0));
        let out = Arc::new(out);
        *self.sections.lock().unwrap_or_else(|e| e.into_inner()) = Some(out.clone());
        Ok(out)
    }

    /// `ratingKey -> guids` of every show of a section, fetched once per client.
    async fn show_guids(&self, section: &str) -> Result<Arc<HashMap<String, Guids>>, ClientError> {
        if let Some(m) = self.shows_cached(section) {
            return Ok(m);
        }
        let mut map = HashMap::new();
        let mut start = 0u64;
        loop {
            let call = section_call(section, 2, start, SHOW_PAGE);
            let (c, total) = self.container(&call).await?;
            let n = c.metadata.len() as u64;
            for show in &c.metadata {
                if let Some(key) = &show.rating_key {
                    map.insert(key.clone(), show.show_guids());
                }
            }
            start += n;
            if n == 0 || total.is_none_or(|t| start >= t) {
                break;
            }
        }
        let map = Arc::new(map);
        if let Ok(mut cache) = self.shows.lock() {
            cache.insert(section.to_string(), map.clone());
        }
        Ok(map)
    }

    fn shows_cached(&self, section: &str) -> Option<Arc<HashMap<String, Guids>>> {
        self.shows.lock().ok()?.get(section).cloned()
    }
}

fn section_call(section: &str, plex_type: u8, start: u64, size: u32) -> Call {
    Call::get(format!("/library/sections/{}/all", seg(section)))
        .query("type", plex_type.to_string())
        .query("includeGuids", "1")
        .query("sort", "addedAt:asc")
        .header("X-Plex-Container-Start", start.to_string())
        .header("X-Plex-Container-Size", size.to_string())
}

/// Section keys are numbers; order them as numbers, anything else after, as text.
fn section_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

#[async_trait]
impl MediaClient for PlexClient {
    async fn accounts(&self) -> Result<Vec<Account>, ClientError> {
        #[derive(Deserialize)]
        struct Answer<'a> {
            #[serde(rename = "MediaContainer", borrow)]
            container: AccountList<'a>,
        }
        #[derive(Deserialize)]
        struct AccountList<'a> {
            #[serde(rename = "Account", default, borrow)]
            accounts: Vec<RawAccount<'a>>,
        }
        #[derive(Deserialize)]
        struct RawAccount<'a> {
            #[serde(default, borrow)]
            id: Scalar<'a>,
            #[serde(default, borrow)]
            name: Scalar<'a>,
        }
        let call = Call::get("/accounts");
        let answer = self.api.send(&call).await?;
        let list: Answer<'_> = self.api.decode(&call, &answer.body)?;
        Ok(list
            .container
            .accounts
            .iter()
            .filter_map(|a| {
                let id = a.id.filled()?.trim().to_string();
                let name = a
                    .name
                    .filled()
                    .map(|n| n.trim().to_string())
                    .unwrap_or_default();
                // Account 0 (no name) is the server itself, never a viewer.
                (!id.is_empty() && !name.is_empty()).then_some(Account { id, name })
            })
            .collect())
    }

    async fn identity(&self) -> Result<Identity, ClientError> {
        let call = Call::get("/identity");
        let (c, _) = self.container(&call).await?;
        let server_id = c.machine_identifier.ok_or_else(|| {
            ClientError::BadResponse(format!(
                "{}: no MediaContainer.machineIdentifier",
                self.api.label(&call)
            ))
        })?;
        Ok(Identity {
            server_id,
            name: c.friendly_name,
            version: c.version,
        })
    }

    async fn item(&self, item_id: &str) -> Result<Option<RemoteItem>, ClientError> {
        let Some(meta) = self.metadata(item_id).await? else {
            return Ok(None);
        };
        match meta.remote(None) {
            Some(r) => Ok(Some(r)),
            None => Err(ClientError::BadResponse(format!(
                "plex item {item_id} is a {}, not a movie or episode",
                meta.kind.as_deref().unwrap_or("thing of no type")
            ))),
        }
    }

    async fn find(&self, item: &Item) -> Result<Option<RemoteItem>, ClientError> {
        match item.kind {
            ItemType::Movie => self.find_by_title(item, "movie").await,
            ItemType::Episode => self.find_episode(item).await,
        }
    }

    async fn mark_played(
        &self,
        item_id: &str,
        at: Option<DateTime<Utc>>,
    ) -> Result<(), ClientError> {
        // Plex's scrobble takes no time: the server records "now".
        let _ = at;
        let call = Call::get("/:/scrobble")
            .query("identifier", IDENTIFIER)
            .query("key", item_id);
        self.api.send(&call).await.map(drop)
    }

    async fn mark_unplayed(&self, item_id: &str) -> Result<(), ClientError> {
        let call = Call::get("/:/unscrobble")
            .query("identifier", IDENTIFIER)
            .query("key", item_id);
        self.api.send(&call).await.map(drop)
    }

    async fn set_progress(
        &self,
        item_id: &str,
        position_ms: u64,
        duration_ms: Option<u64>,
    ) -> Result<(), ClientError> {
        let duration = match duration_ms {
            Some(d) => Some(d),
            None => self.item(item_id).await?.and_then(|r| r.duration_ms),
        };
        let mut call = Call::post("/:/timeline")
            .query("ratingKey", item_id)
            .query("key", format!("/library/metadata/{item_id}"))
            .query("identifier", IDENTIFIER)
            .query("state", "stopped")
            .query("time", position_ms.to_string());
        if let Some(d) = duration {
            call = call.query("duration", d.to_string());
        }
        self.api.send(&call).await.map(drop)
    }

    async fn library_page(&self, request: &PageRequest) -> Result<LibraryPage, ClientError> {
        let sections = self.sections().await?;
        let limit = request.limit.max(1);
        // Resume in the cursor's section, or the next one if it is gone.
        let mut index = match &request.cursor.section {
            None => 0,
            Some(key) => sections
                .iter()
                .position(|(k, _)| section_order(k, key) != std::cmp::Ordering::Less)
                .unwrap_or(sections.len()),
        };
        let mut offset = match (&request.cursor.section, sections.get(index)) {
            (Some(key), Some((k, _))) if k == key => request.cursor.offset,
            _ => 0,
        };
        // Skip empty sections so a page is empty only at the end of the library.
        while let Some((section, kind)) = sections.get(index) {
            let plex_type = match kind {
                ItemType::Movie => 1,
                ItemType::Episode => 4,
            };
            let call = section_call(section, plex_type, offset, limit);
            let (c, total) = self.container(&call).await?;
            let n = c.metadata.len() as u64;
            let shows = match kind {
                ItemType::Episode if n > 0 => Some(self.show_guids(section).await?),
                _ => None,
            };
            let items: Vec<RemoteItem> = c
                .metadata
                .iter()
                .filter_map(|m| {
                    let show = shows
                        .as_ref()
                        .and_then(|s| m.grandparent_rating_key.as_ref().and_then(|k| s.get(k)));
                    m.remote(show)
                })
                .collect();
            let end = offset + n;
            let section_done = n == 0 || total.is_some_and(|t| end >= t);
            let next_cursor = if !section_done {
                Some(PageCursor {
                    section: Some(section.clone()),
                    offset: end,
                })
            } else {
                sections.get(index + 1).map(|(k, _)| PageCursor {
                    section: Some(k.clone()),
                    offset: 0,
                })
            };
            if n == 0 && next_cursor.is_some() {
                index += 1;
                offset = 0;
                continue;
            }
            return Ok(LibraryPage {
                items,
                next: next_cursor.map(|cursor| PageRequest {
                    cursor,
                    limit: request.limit,
                }),
                total,
            });
        }
        Ok(LibraryPage {
            items: Vec::new(),
            next: None,
            total: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::when;

    fn parse(json: &str) -> Container {
        parse_container(json.as_bytes()).unwrap()
    }

    #[test]
    fn movie_with_new_agent_guids_and_state() {
        let c = parse(
            r#"{"MediaContainer":{"size":1,"Metadata":[{"ratingKey":"1","type":"movie",
            "title":"Ferengi: Rules of Acquisition","year":2000,"guid":"plex://movie/1000",
            "Guid":[{"id":"imdb://tt0000001"},{"id":"tmdb://1"}],"duration":6989056,
            "viewCount":2,"viewOffset":0,"lastViewedAt":1643805016}]}}"#,
        );
        let r = c.metadata[0].remote(None).unwrap();
        assert_eq!(r.id, "1");
        assert_eq!(r.kind, ItemType::Movie);
        assert_eq!(r.year, Some(2000));
        assert_eq!(r.guids.get("imdb").map(String::as_str), Some("tt0000001"));
        assert_eq!(r.guids.get("tmdb").map(String::as_str), Some("1"));
        assert_eq!(r.guids.len(), 2, "plex:// is not a guid");
        assert!(r.watched);
        assert_eq!(r.progress_ms, None);
        assert_eq!(r.duration_ms, Some(6989056));
        assert_eq!(r.last_played_at, when::from_unix(1643805016));
    }

    #[test]
    fn legacy_episode_guid_gives_series_guid_and_numbers() {
        let c = parse(
            r#"{"MediaContainer":{"Metadata":[{"ratingKey":"90","type":"episode","title":"Pilot",
            "grandparentRatingKey":"22","grandparentTitle":"The 100",
            "guid":"com.plexapp.agents.thetvdb://268592/1/1?lang=en",
            "grandparentGuid":"com.plexapp.agents.thetvdb://268592?lang=en",
            "viewOffset":120000}]}}"#,
        );
        let r = c.metadata[0].remote(None).unwrap();
        assert_eq!(r.series_title.as_deref(), Some("The 100"));
        assert_eq!((r.season, r.episode), (Some(1), Some(1)));
        assert!(r.guids.is_empty());
        assert_eq!(
            r.series_guids.get("tvdb").map(String::as_str),
            Some("268592")
        );
        assert!(!r.watched, "a missing viewCount is 0");
        assert_eq!(r.progress_ms, Some(120000));
    }

    #[test]
    fn show_guids_from_a_show_listing() {
        let c = parse(
            r#"{"MediaContainer":{"Metadata":[{"ratingKey":"3","type":"show",
            "guid":"plex://show/3","Guid":[{"id":"tvdb://81189"},{"id":"imdb://tt0903747"}]}]}}"#,
        );
        let g = c.metadata[0].show_guids();
        assert_eq!(g.get("tvdb").map(String::as_str), Some("81189"));
        assert_eq!(g.get("imdb").map(String::as_str), Some("tt0903747"));
        assert!(
            c.metadata[0].remote(None).is_none(),
            "a show is not an item"
        );
    }

    #[test]
    fn sections_hubs_and_nulls() {
        let c = parse(
            r#"{"MediaContainer":{"Directory":[{"key":"1","type":"show"},{"key":"2","type":"movie"},
            {"key":"3","type":"artist"}],"Metadata":null,"Hub":[{"type":"movie","Metadata":[]}]}}"#,
        );
        assert_eq!(c.directories.len(), 3);
        assert!(c.metadata.is_empty());
        let mut keys = vec!["10", "2", "x", "1"];
        keys.sort_by(|a, b| section_order(a, b));
        assert_eq!(keys, ["1", "2", "10", "x"]);
    }
}

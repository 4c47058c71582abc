//! The MediaBrowser family's HTTP API client, for Jellyfin and Emby: one code path,
//! the servers' differences read from a [`Dialect`] (see `jellyfin/client.rs` and
//! `emby/client.rs` for each server's).
//!
//! | call | request |
//! |---|---|
//! | identity | `GET /System/Info` (`Id`, `ServerName`, `Version`) |
//! | item | `GET /Users/{user}/Items/{id}?Fields=ProviderIds,DateCreated,Path&EnableUserData=true` |
//! | mark played | `POST /Users/{user}/PlayedItems/{id}?DatePlayed=..` (in the dialect's format) |
//! | mark unplayed | `DELETE /Users/{user}/PlayedItems/{id}` |
//! | progress | `POST /Users/{user}/Items/{id}/UserData` with `{"PlaybackPositionTicks": ms * 10000}` |
//! | find by title | `GET /Users/{user}/Items?searchTerm=..&Recursive=true&IncludeItemTypes=Movie,Series&Fields=ProviderIds&Limit=50`, episodes through `GET /Shows/{series}/Episodes?season=..&Fields=ProviderIds&UserId={user}`; kept only when ids match |
//! | find by provider id | `GET /Users/{user}/Items?AnyProviderIdEquals=imdb.tt0111161&Recursive=true&IncludeItemTypes=Movie,Episode&Fields=ProviderIds` per guid; an episode known only by its series' ids through `IncludeItemTypes=Series`, then its episodes as above; kept only when ids match |
//! | accounts | `GET /Users` (a bare array of `UserDto`: `Id`, `Name`) |
//! | library | `GET /Users/{user}/Items?Recursive=true&IncludeItemTypes=Movie,Episode&Fields=ProviderIds,DateCreated,Path&EnableUserData=true&EnableImages=false&StartIndex=..&Limit=..&SortBy=DateCreated,SortName&SortOrder=Ascending`; series guids from `IncludeItemTypes=Series` |
//!
//! `ProviderIds` keys are read in any case and every value goes through
//! [`crate::domain::guid::normalize`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::answers::{Entry, Listing, RawInfo, RawListing};
use super::dto::BaseItem;
use super::{Dialect, Find, TICKS_PER_MS};

use crate::adapters::media::client::RetryPolicy;
use crate::adapters::media::endpoint::{seg, Call, Endpoint};
use crate::domain::model::{Backend, Guids, Item, ItemType};
use crate::domain::remote::{same_item, RemoteItem};
use crate::domain::sync::matching::shares_guid;
use crate::ports::media::{
    Account, ClientError, Identity, LibraryPage, MediaClient, PageCursor, PageRequest,
};

/// Fields asked for with every item.
const ITEM_FIELDS: &str = "ProviderIds,DateCreated,Path";
/// Series fetched per request when collecting series guids.
const SERIES_PAGE: u32 = 1000;
/// Search results looked at.
const SEARCH_LIMIT: u32 = 50;

/// A Jellyfin or Emby server's API for one user.
pub struct MediaBrowserClient {
    api: Endpoint,
    user: Option<String>,
    dialect: Dialect,
    /// `series id -> guids`, collected once per client for library walks.
    series: Mutex<Option<Arc<HashMap<String, Guids>>>>,
}

impl std::fmt::Debug for MediaBrowserClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaBrowserClient")
            .field("kind", &self.dialect.kind)
            .field("api", &self.api)
            .field("user", &self.user)
            .finish()
    }
}

impl MediaBrowserClient {
    pub fn new(
        backend: &Backend,
        http: reqwest::Client,
        retry: RetryPolicy,
        dialect: Dialect,
    ) -> Self {
        MediaBrowserClient {
            api: Endpoint::new(
                dialect.kind,
                &backend.url,
                &backend.token,
                dialect.auth_header,
                (dialect.auth_value)(&backend.token),
                &[],
                http,
                retry,
            ),
            user: backend
                .user_id
                .as_deref()
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string),
            dialect,
            series: Mutex::new(None),
        }
    }

    /// The server-side user id every `/Users/{user}/..` call needs.
    fn user(&self) -> Result<&str, ClientError> {
        self.user.as_deref().ok_or_else(|| {
            ClientError::NotConfigured(format!(
                "{} backend has no user_id; its API needs the server's user id for /Users/{{user}}/...",
                self.api.kind()
            ))
        })
    }

    async fn entries(&self, call: &Call) -> Result<Listing, ClientError> {
        let answer = self.api.send(call).await?;
        let raw: RawListing = self.api.decode(call, &answer.body)?;
        Ok(Listing {
            items: raw
                .items
                .unwrap_or_default()
                .iter()
                .map(Entry::from)
                .collect(),
            total: raw.total.u64(),
        })
    }

    /// `GET /Users/{user}/Items` with these parameters.
    async fn user_items(
        &self,
        params: &[(&'static str, String)],
    ) -> Result<Vec<Entry>, ClientError> {
        let mut call = Call::get(format!("/Users/{}/Items", seg(self.user()?)));
        call.query.extend(params.iter().cloned());
        Ok(self.entries(&call).await?.items)
    }

    /// A series' episodes (of one season when given), with the user's state; the
    /// series' guids become their series guids.
    async fn episodes(
        &self,
        series_id: &str,
        season: Option<u32>,
        series_guids: &Guids,
    ) -> Result<Vec<RemoteItem>, ClientError> {
        let user = self.user()?;
        let mut call = Call::get(format!("/Shows/{}/Episodes", seg(series_id)));
        if let Some(s) = season {
            call = call.query("season", s.to_string());
        }
        let call = call.query("Fields", "ProviderIds").query("UserId", user);
        Ok(self
            .entries(&call)
            .await?
            .items
            .iter()
            .filter_map(|e| e.remote(Some(series_guids)))
            .collect())
    }

    /// The episode of `item` among the episodes of these series.
    async fn find_in_series(
        &self,
        item: &Item,
        series: &[Entry],
    ) -> Result<Option<RemoteItem>, ClientError> {
        for s in series.iter().filter(|e| e.is("Series")) {
            // A series whose ids contradict the item's series ids is not walked.
            if !item.series_guids.is_empty()
                && !s.guids.is_empty()
                && !shares_guid(&item.series_guids, &s.guids)
            {
                continue;
            }
            let episodes = self.episodes(&s.id, item.season, &s.guids).await?;
            if let Some(found) = episodes.into_iter().find(|r| same_item(item, r)) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// [`Find::ByTitle`].
    async fn find_by_title(&self, item: &Item) -> Result<Option<RemoteItem>, ClientError> {
        let term = match item.kind {
            ItemType::Movie => item.title.as_deref(),
            ItemType::Episode => item.series_title.as_deref(),
        };
        let Some(term) = term.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let found = self
            .user_items(&[
                ("searchTerm", term.to_string()),
                ("Recursive", "true".into()),
                ("IncludeItemTypes", "Movie,Series".into()),
                ("Fields", "ProviderIds".into()),
                ("Limit", SEARCH_LIMIT.to_string()),
            ])
            .await?;
        match item.kind {
            ItemType::Movie => Ok(found
                .iter()
                .filter_map(|e| e.remote(None))
                .find(|r| same_item(item, r))),
            ItemType::Episode => self.find_in_series(item, &found).await,
        }
    }

    /// [`Find::ByProviderId`].
    async fn find_by_provider_id(&self, item: &Item) -> Result<Option<RemoteItem>, ClientError> {
        for (kind, value) in &item.guids {
            let hits = self
                .user_items(&[
                    ("AnyProviderIdEquals", provider_id(kind, value)),
                    ("Recursive", "true".into()),
                    ("IncludeItemTypes", "Movie,Episode".into()),
                    ("Fields", "ProviderIds".into()),
                ])
                .await?;
            if let Some(found) = hits
                .iter()
                .filter_map(|e| e.remote(None))
                .find(|r| same_item(item, r))
            {
                return Ok(Some(found));
            }
        }
        if item.kind != ItemType::Episode || item.season.is_none() || item.episode.is_none() {
            return Ok(None);
        }
        for (kind, value) in &item.series_guids {
            let series = self
                .user_items(&[
                    ("AnyProviderIdEquals", provider_id(kind, value)),
                    ("Recursive", "true".into()),
                    ("IncludeItemTypes", "Series".into()),
                    ("Fields", "ProviderIds".into()),
                ])
                .await?;
            if let Some(found) = self.find_in_series(item, &series).await? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// `series id -> guids` of the whole library, fetched once per client (again when
    /// a page names a series not seen yet).
    async fn series_guids(
        &self,
        wanted: &[&str],
    ) -> Result<Arc<HashMap<String, Guids>>, ClientError> {
        if let Some(map) = self.series.lock().ok().and_then(|m| m.clone()) {
            if wanted.iter().all(|id| map.contains_key(*id)) {
                return Ok(map);
            }
        }
        let user = self.user()?;
        let mut map = HashMap::new();
        let mut start = 0u64;
        loop {
            let call = Call::get(format!("/Users/{}/Items", seg(user)))
                .query("Recursive", "true")
                .query("IncludeItemTypes", "Series")
                .query("Fields", "ProviderIds")
                .query("EnableUserData", "false")
                .query("EnableImages", "false")
                .query("StartIndex", start.to_string())
                .query("Limit", SERIES_PAGE.to_string());
            let listing = self.entries(&call).await?;
            let n = listing.items.len() as u64;
            for e in listing.items {
                if e.is("Series") {
                    map.insert(e.id, e.guids);
                }
            }
            start += n;
            if n == 0 || listing.total.is_none_or(|t| start >= t) {
                break;
            }
        }
        let map = Arc::new(map);
        if let Ok(mut cache) = self.series.lock() {
            *cache = Some(map.clone());
        }
        Ok(map)
    }
}

#[async_trait]
impl MediaClient for MediaBrowserClient {
    async fn accounts(&self) -> Result<Vec<Account>, ClientError> {
        #[derive(Deserialize)]
        struct RawUser {
            #[serde(rename = "Id")]
            id: Option<String>,
            #[serde(rename = "Name")]
            name: Option<String>,
        }
        let call = Call::get("/Users");
        let users: Vec<RawUser> = self.api.get_json(&call).await?;
        Ok(users
            .into_iter()
            .filter_map(|u| {
                let id = u.id.filter(|i| !i.trim().is_empty())?;
                Some(Account {
                    name: u.name.unwrap_or_default(),
                    id,
                })
            })
            .collect())
    }

    async fn identity(&self) -> Result<Identity, ClientError> {
        let call = Call::get("/System/Info");
        let info: RawInfo = self.api.get_json(&call).await?;
        let server_id = info
            .id
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ClientError::BadResponse(format!("{}: no Id", self.api.label(&call))))?;
        Ok(Identity {
            server_id,
            name: info.server_name,
            version: info.version,
        })
    }

    async fn item(&self, item_id: &str) -> Result<Option<RemoteItem>, ClientError> {
        let call = Call::get(format!(
            "/Users/{}/Items/{}",
            seg(self.user()?),
            seg(item_id)
        ))
        .query("Fields", ITEM_FIELDS)
        .query("EnableUserData", "true");
        let answer = match self.api.send(&call).await {
            Ok(a) => a,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let raw: BaseItem = self.api.decode(&call, &answer.body)?;
        let entry = Entry::from(&raw);
        entry.remote(None).map(Some).ok_or_else(|| {
            ClientError::BadResponse(format!(
                "{} item {item_id} is a {}, not a movie or episode",
                self.api.kind(),
                entry.kind.as_deref().unwrap_or("thing of no type")
            ))
        })
    }

    async fn find(&self, item: &Item) -> Result<Option<RemoteItem>, ClientError> {
        match self.dialect.find {
            Find::ByTitle => self.find_by_title(item).await,
            Find::ByProviderId => self.find_by_provider_id(item).await,
        }
    }

    async fn mark_played(
        &self,
        item_id: &str,
        at: Option<DateTime<Utc>>,
    ) -> Result<(), ClientError> {
        let mut call = Call::post(format!(
            "/Users/{}/PlayedItems/{}",
            seg(self.user()?),
            seg(item_id)
        ));
        // Without a real play time the server records "now": never a made-up date.
        if let Some(at) = at {
            call = call.query("DatePlayed", (self.dialect.date_played)(at));
        }
        self.api.send(&call).await.map(drop)
    }

    async fn mark_unplayed(&self, item_id: &str) -> Result<(), ClientError> {
        let call = Call::delete(format!(
            "/Users/{}/PlayedItems/{}",
            seg(self.user()?),
            seg(item_id)
        ));
        self.api.send(&call).await.map(drop)
    }

    async fn set_progress(
        &self,
        item_id: &str,
        position_ms: u64,
        duration_ms: Option<u64>,
    ) -> Result<(), ClientError> {
        // Ticks are absolute; the runtime is not needed.
        let _ = duration_ms;
        let call = Call::post(format!(
            "/Users/{}/Items/{}/UserData",
            seg(self.user()?),
            seg(item_id)
        ))
        .json(serde_json::json!({
            "PlaybackPositionTicks": position_ms.saturating_mul(TICKS_PER_MS)
        }));
        self.api.send(&call).await.map(drop)
    }

    async fn library_page(&self, request: &PageRequest) -> Result<LibraryPage, ClientError> {
        let user = self.user()?;
        let offset = request.cursor.offset;
        let call = Call::get(format!("/Users/{}/Items", seg(user)))
            .query("Recursive", "true")
            .query("IncludeItemTypes", "Movie,Episode")
            .query("Fields", ITEM_FIELDS)
            .query("EnableUserData", "true")
            .query("EnableImages", "false")
            .query("StartIndex", offset.to_string())
            .query("Limit", request.limit.max(1).to_string())
            .query("SortBy", "DateCreated,SortName")
            .query("SortOrder", "Ascending");
        let listing = self.entries(&call).await?;
        let wanted: Vec<&str> = listing
            .items
            .iter()
            .filter(|e| e.is("Episode"))
            .filter_map(|e| e.series_id.as_deref())
            .collect();
        let series = if wanted.is_empty() {
            None
        } else {
            Some(self.series_guids(&wanted).await?)
        };
        let items = listing
            .items
            .iter()
            .filter_map(|e| {
                let s = series
                    .as_ref()
                    .and_then(|m| e.series_id.as_ref().and_then(|id| m.get(id)));
                e.remote(s)
            })
            .collect();
        let n = listing.items.len() as u64;
        let end = offset + n;
        let more = n > 0 && listing.total.is_none_or(|t| end < t);
        Ok(LibraryPage {
            items,
            next: more.then_some(PageRequest {
                cursor: PageCursor {
                    section: None,
                    offset: end,
                },
                limit: request.limit,
            }),
            total: listing.total,
        })
    }
}

/// `AnyProviderIdEquals` value: `imdb.tt0111161`.
fn provider_id(kind: &str, value: &str) -> String {
    format!("{kind}.{value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_id_filter_spelling() {
        assert_eq!(provider_id("imdb", "tt0111161"), "imdb.tt0111161");
    }
}

//! The Jellyfin family's HTTP API: Jellyfin and Emby (both descend from MediaBrowser)
//! share paths and JSON shapes, so one client serves both; a [`Flavour`] says which
//! server it talks to. Emby's differences (its token header, its `DatePlayed` format,
//! its find-by-provider-id) live in [`crate::adapters::media::emby::client`].
//!
//! | call | request |
//! |---|---|
//! | identity | `GET /System/Info` (`Id`, `ServerName`, `Version`) |
//! | item | `GET /Users/{user}/Items/{id}?Fields=ProviderIds,DateCreated,Path&EnableUserData=true` |
//! | mark played | `POST /Users/{user}/PlayedItems/{id}?DatePlayed=..` (Jellyfin: RFC 3339) |
//! | mark unplayed | `DELETE /Users/{user}/PlayedItems/{id}` |
//! | progress | `POST /Users/{user}/Items/{id}/UserData` with `{"PlaybackPositionTicks": ms * 10000}` |
//! | find (Jellyfin) | `GET /Users/{user}/Items?searchTerm=..&Recursive=true&IncludeItemTypes=Movie,Series&Fields=ProviderIds`, episodes through `GET /Shows/{series}/Episodes?season=..&Fields=ProviderIds&UserId={user}`; kept only when ids match |
//! | accounts | `GET /Users` (a bare array of `UserDto`: `Id`, `Name`) |
//! | library | `GET /Users/{user}/Items?Recursive=true&IncludeItemTypes=Movie,Episode&Fields=ProviderIds,DateCreated,Path&EnableUserData=true&EnableImages=false&StartIndex=..&Limit=..&SortBy=DateCreated,SortName&SortOrder=Ascending`; series guids from `IncludeItemTypes=Series` |
//!
//! Jellyfin's auth header: `Authorization: MediaBrowser Token="<token>"`. Times are
//! ticks of 100 ns: 10,000 per millisecond. `ProviderIds` keys are read in any case and
//! every value goes through [`crate::domain::guid::normalize`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;

use crate::adapters::media::client::{
    same_item, seg, shares_guid, Account, Call, ClientError, Endpoint, Identity, LibraryPage,
    MediaClient, PageCursor, PageRequest, RemoteItem, RetryPolicy,
};
use crate::adapters::media::jellyfin::webhook::lenient::Scalar;
use crate::domain::guid;
use crate::domain::model::{Backend, BackendKind, Guids, Item, ItemType};
use crate::domain::when;

/// Ticks of 100 ns per millisecond.
pub(crate) const TICKS_PER_MS: u64 = 10_000;
/// Fields asked for with every item.
const ITEM_FIELDS: &str = "ProviderIds,DateCreated,Path";
/// Series fetched per request when collecting series guids.
const SERIES_PAGE: u32 = 1000;
/// Search results looked at.
const SEARCH_LIMIT: u32 = 50;

/// Which server of the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    Jellyfin,
    Emby,
}

impl Flavour {
    fn kind(self) -> BackendKind {
        match self {
            Flavour::Jellyfin => BackendKind::Jellyfin,
            Flavour::Emby => BackendKind::Emby,
        }
    }
}

/// The Jellyfin client.
pub fn new(backend: &Backend, http: reqwest::Client, retry: RetryPolicy) -> MediaBrowserClient {
    MediaBrowserClient::new(
        backend,
        http,
        retry,
        Flavour::Jellyfin,
        "Authorization",
        format!("MediaBrowser Token=\"{}\"", backend.token),
    )
}

/// A Jellyfin or Emby server's API for one user.
pub struct MediaBrowserClient {
    api: Endpoint,
    user: Option<String>,
    flavour: Flavour,
    /// `series id -> guids`, collected once per client for library walks.
    series: Mutex<Option<Arc<HashMap<String, Guids>>>>,
}

impl std::fmt::Debug for MediaBrowserClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaBrowserClient")
            .field("flavour", &self.flavour)
            .field("api", &self.api)
            .field("user", &self.user)
            .finish()
    }
}

impl MediaBrowserClient {
    /// `auth_value` is the whole value of the `auth_header` (it holds the token).
    pub(crate) fn new(
        backend: &Backend,
        http: reqwest::Client,
        retry: RetryPolicy,
        flavour: Flavour,
        auth_header: &'static str,
        auth_value: String,
    ) -> Self {
        MediaBrowserClient {
            api: Endpoint::new(
                flavour.kind(),
                &backend.url,
                &backend.token,
                auth_header,
                auth_value,
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
            flavour,
            series: Mutex::new(None),
        }
    }

    /// The server-side user id every `/Users/{user}/..` call needs.
    pub(crate) fn user(&self) -> Result<&str, ClientError> {
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
            total: raw.total.as_ref().and_then(Scalar::uint),
        })
    }

    /// `GET /Users/{user}/Items` with these parameters.
    pub(crate) async fn user_items(
        &self,
        params: &[(&'static str, String)],
    ) -> Result<Vec<Entry>, ClientError> {
        let mut call = Call::get(format!("/Users/{}/Items", seg(self.user()?)));
        call.query.extend(params.iter().cloned());
        Ok(self.entries(&call).await?.items)
    }

    /// A series' episodes (of one season when given), with the user's state; the
    /// series' guids become their series guids.
    pub(crate) async fn episodes(
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
    pub(crate) async fn find_in_series(
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

    /// Jellyfin's find: search by title (the series' for an episode), keep only id
    /// matches.
    async fn find_by_search(&self, item: &Item) -> Result<Option<RemoteItem>, ClientError> {
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
        let raw: RawItem = self.api.decode(&call, &answer.body)?;
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
        match self.flavour {
            Flavour::Jellyfin => self.find_by_search(item).await,
            Flavour::Emby => crate::adapters::media::emby::client::find(self, item).await,
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
            let date = match self.flavour {
                Flavour::Jellyfin => at.to_rfc3339_opts(SecondsFormat::Secs, true),
                Flavour::Emby => crate::adapters::media::emby::client::date_played(at),
            };
            call = call.query("DatePlayed", date);
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

// ---------------------------------------------------------------------------------
// The JSON answers: read leniently ([`Scalar`]) into borrowed structs, then kept as
// owned [`Entry`] values.
// ---------------------------------------------------------------------------------

#[derive(Deserialize)]
struct RawInfo {
    #[serde(rename = "Id")]
    id: Option<String>,
    #[serde(rename = "ServerName")]
    server_name: Option<String>,
    #[serde(rename = "Version")]
    version: Option<String>,
}

#[derive(Deserialize)]
struct RawListing<'a> {
    #[serde(rename = "Items", borrow, default)]
    items: Option<Vec<RawItem<'a>>>,
    #[serde(rename = "TotalRecordCount", borrow, default)]
    total: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawItem<'a> {
    #[serde(borrow, default)]
    id: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    name: Option<Scalar<'a>>,
    #[serde(rename = "Type", borrow, default)]
    kind: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    production_year: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    series_name: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    series_id: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    parent_index_number: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    index_number: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    run_time_ticks: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    provider_ids: Option<BTreeMap<String, Scalar<'a>>>,
    #[serde(borrow, default)]
    user_data: Option<RawUserData<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawUserData<'a> {
    #[serde(borrow, default)]
    played: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    playback_position_ticks: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    last_played_date: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    play_count: Option<Scalar<'a>>,
}

struct Listing {
    items: Vec<Entry>,
    total: Option<u64>,
}

/// One item of an answer: a movie, an episode, a series or anything else.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub id: String,
    /// `Type` as the server wrote it (`Movie`, `Episode`, `Series`, ...).
    pub kind: Option<String>,
    pub name: Option<String>,
    pub year: Option<i32>,
    pub series_name: Option<String>,
    pub series_id: Option<String>,
    pub season: Option<u32>,
    pub episode: Option<u32>,
    pub runtime_ticks: Option<u64>,
    pub guids: Guids,
    pub played: bool,
    pub position_ticks: Option<u64>,
    pub last_played: Option<DateTime<Utc>>,
    pub play_count: Option<u32>,
}

fn text(v: &Option<Scalar<'_>>) -> Option<String> {
    v.as_ref().and_then(Scalar::text).map(|s| s.into_owned())
}

fn uint(v: &Option<Scalar<'_>>) -> Option<u64> {
    v.as_ref().and_then(Scalar::uint)
}

impl From<&RawItem<'_>> for Entry {
    fn from(raw: &RawItem<'_>) -> Self {
        let mut guids = Guids::new();
        for (k, v) in raw.provider_ids.iter().flatten() {
            if let Some(v) = v.text() {
                guid::insert(&mut guids, k, &v);
            }
        }
        let user_data = raw.user_data.as_ref();
        Entry {
            id: text(&raw.id).unwrap_or_default(),
            kind: text(&raw.kind),
            name: text(&raw.name),
            year: raw
                .production_year
                .as_ref()
                .and_then(Scalar::int)
                .and_then(|y| i32::try_from(y).ok())
                .filter(|y| *y > 0),
            series_name: text(&raw.series_name),
            series_id: text(&raw.series_id),
            season: uint(&raw.parent_index_number).and_then(|n| u32::try_from(n).ok()),
            episode: uint(&raw.index_number).and_then(|n| u32::try_from(n).ok()),
            runtime_ticks: uint(&raw.run_time_ticks),
            guids,
            played: user_data
                .and_then(|u| u.played.as_ref())
                .and_then(Scalar::flag)
                .unwrap_or(false),
            position_ticks: user_data.and_then(|u| uint(&u.playback_position_ticks)),
            // `0001-01-01T00:00:00Z` means never.
            last_played: user_data
                .and_then(|u| text(&u.last_played_date))
                .and_then(|t| when::from_rfc3339(&t))
                .filter(|t| *t >= when::year_2000()),
            play_count: user_data
                .and_then(|u| uint(&u.play_count))
                .and_then(|n| u32::try_from(n).ok()),
        }
    }
}

impl Entry {
    pub(crate) fn is(&self, kind: &str) -> bool {
        self.kind
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case(kind))
    }

    /// The item, if it is a movie or an episode with an id; `series` is its series'
    /// guids when known.
    pub(crate) fn remote(&self, series: Option<&Guids>) -> Option<RemoteItem> {
        let kind = if self.is("Movie") {
            ItemType::Movie
        } else if self.is("Episode") {
            ItemType::Episode
        } else {
            return None;
        };
        if self.id.is_empty() {
            return None;
        }
        let episode = kind == ItemType::Episode;
        Some(RemoteItem {
            id: self.id.clone(),
            kind,
            title: self.name.clone(),
            year: self.year,
            series_title: self.series_name.clone().filter(|_| episode),
            season: self.season.filter(|_| episode),
            episode: self.episode.filter(|_| episode),
            guids: self.guids.clone(),
            series_guids: series.filter(|_| episode).cloned().unwrap_or_default(),
            watched: self.played,
            last_played_at: self.last_played,
            play_count: self.play_count,
            progress_ms: self
                .position_ticks
                .map(|t| t / TICKS_PER_MS)
                .filter(|ms| *ms > 0),
            duration_ms: self
                .runtime_ticks
                .map(|t| t / TICKS_PER_MS)
                .filter(|ms| *ms > 0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_episode_with_user_data() {
        let json =
            br#"{"Name":"Signal Fire","Id":"d4092836b8a1db8e10d3e21f231ba38d","Type":"Episode",
            "SeriesName":"Ninefold Orbit","SeriesId":"5a9a","ParentIndexNumber":1,"IndexNumber":3,
            "RunTimeTicks":14403130000,"ProductionYear":2022,
            "ProviderIds":{"Tvdb":"8123","Imdb":"tt123","Official Website":"http://x"},
            "UserData":{"PlaybackPositionTicks":6000000000,"PlayCount":0,"Played":false,
            "LastPlayedDate":"2025-09-02T19:38:51.4029186Z"}}"#;
        let raw: RawItem = serde_json::from_slice(json).unwrap();
        let r = Entry::from(&raw).remote(None).unwrap();
        assert_eq!(r.kind, ItemType::Episode);
        assert_eq!((r.season, r.episode), (Some(1), Some(3)));
        assert_eq!(r.series_title.as_deref(), Some("Ninefold Orbit"));
        assert_eq!(r.guids.len(), 2);
        assert_eq!(r.guids.get("imdb").map(String::as_str), Some("tt123"));
        assert!(!r.watched);
        assert_eq!(r.progress_ms, Some(600_000));
        assert_eq!(r.duration_ms, Some(1_440_313));
        assert!(r.last_played_at.is_some());
    }

    #[test]
    fn never_played_and_other_types() {
        let json = br#"{"Items":[{"Id":"1","Type":"Movie","Name":"M","UserData":{"Played":true,
            "LastPlayedDate":"0001-01-01T00:00:00.0000000Z"}},{"Id":"2","Type":"Series","ProviderIds":{"TVDB":"5"}},
            {"Id":"3","Type":"Audio"}],"TotalRecordCount":3,"StartIndex":0}"#;
        let raw: RawListing = serde_json::from_slice(json).unwrap();
        let entries: Vec<Entry> = raw.items.unwrap().iter().map(Entry::from).collect();
        let movie = entries[0].remote(None).unwrap();
        assert!(movie.watched);
        assert_eq!(movie.last_played_at, None);
        assert!(entries[1].remote(None).is_none());
        assert_eq!(entries[1].guids.get("tvdb").map(String::as_str), Some("5"));
        assert!(entries[2].remote(None).is_none());
        assert_eq!(raw.total.as_ref().and_then(Scalar::uint), Some(3));
    }
}

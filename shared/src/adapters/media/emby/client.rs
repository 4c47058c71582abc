//! Emby's dialect of the MediaBrowser API; the client is
//! [`crate::adapters::media::mediabrowser::client`].
//!
//! - the token travels in `X-Emby-Token`;
//! - `DatePlayed` of `POST /Users/{user}/PlayedItems/{id}` is `yyyyMMddHHmmss` (UTC), as
//!   Emby's REST reference documents it (Jellyfin takes RFC 3339);
//! - find goes by id: `AnyProviderIdEquals=imdb.tt0111161` for each of the item's guids;
//!   an episode known only by its series' ids is found through its series
//!   (`IncludeItemTypes=Series`), then `GET /Shows/{series}/Episodes?season=..`.
//!   Results are kept only when ids match (the server's filter is not trusted alone).
//!
//! Progress uses the same `POST /Users/{user}/Items/{id}/UserData` with
//! `{"PlaybackPositionTicks": ..}` ("Updates userdata for an item" in Emby's
//! PlaystateService reference), which sets only the fields sent.

use chrono::{DateTime, Utc};

use crate::adapters::media::client::RetryPolicy;
use crate::adapters::media::mediabrowser::client::MediaBrowserClient;
use crate::adapters::media::mediabrowser::{Dialect, Find};
use crate::domain::model::{Backend, BackendKind};

pub const DIALECT: Dialect = Dialect {
    kind: BackendKind::Emby,
    auth_header: "X-Emby-Token",
    auth_value: str::to_string,
    date_played,
    find: Find::ByProviderId,
};

/// The Emby client.
pub fn new(backend: &Backend, http: reqwest::Client, retry: RetryPolicy) -> MediaBrowserClient {
    MediaBrowserClient::new(backend, http, retry, DIALECT)
}

/// Emby's `DatePlayed`: `yyyyMMddHHmmss`, UTC.
fn date_played(at: DateTime<Utc>) -> String {
    at.format("%Y%m%d%H%M%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn date_played_is_emby_compact_utc() {
        let at = Utc.with_ymd_and_hms(2025, 3, 15, 20, 38, 41).unwrap();
        assert_eq!(date_played(at), "20250315203841");
    }
}

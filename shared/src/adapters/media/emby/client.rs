//! Emby's HTTP API: the Jellyfin family's client
//! ([`crate::adapters::media::jellyfin::client`]) with Emby's differences, which are all here:
//!
//! - the token travels in `X-Emby-Token`;
//! - `DatePlayed` of `POST /Users/{user}/PlayedItems/{id}` is `yyyyMMddHHmmss` (UTC), as
//!   Emby's REST reference documents it (Jellyfin takes RFC 3339);
//! - find goes by id: `GET /Users/{user}/Items?AnyProviderIdEquals=imdb.tt0111161&Recursive=true&IncludeItemTypes=Movie,Episode&Fields=ProviderIds`
//!   for each of the item's guids; an episode known only by its series' ids and numbers
//!   is found through `AnyProviderIdEquals` with `IncludeItemTypes=Series`, then
//!   `GET /Shows/{series}/Episodes?season=..`. Results are kept only when ids match
//!   (the server's filter is not trusted alone).
//!
//! Progress uses the same `POST /Users/{user}/Items/{id}/UserData` with
//! `{"PlaybackPositionTicks": ..}` ("Updates userdata for an item" in Emby's
//! PlaystateService reference), which sets only the fields sent.

use chrono::{DateTime, Utc};

use crate::adapters::media::client::{same_item, ClientError, RemoteItem, RetryPolicy};
use crate::adapters::media::jellyfin::client::{Flavour, MediaBrowserClient};
use crate::domain::model::{Backend, Item, ItemType};

/// The Emby client.
pub fn new(backend: &Backend, http: reqwest::Client, retry: RetryPolicy) -> MediaBrowserClient {
    MediaBrowserClient::new(
        backend,
        http,
        retry,
        Flavour::Emby,
        "X-Emby-Token",
        backend.token.clone(),
    )
}

/// Emby's `DatePlayed`: `yyyyMMddHHmmss`, UTC.
pub(crate) fn date_played(at: DateTime<Utc>) -> String {
    at.format("%Y%m%d%H%M%S").to_string()
}

/// `AnyProviderIdEquals` value: `imdb.tt0111161`.
fn provider_id(kind: &str, value: &str) -> String {
    format!("{kind}.{value}")
}

/// Find by provider id, verified by [`same_item`].
pub(crate) async fn find(
    client: &MediaBrowserClient,
    item: &Item,
) -> Result<Option<RemoteItem>, ClientError> {
    for (kind, value) in &item.guids {
        let hits = client
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
        let series = client
            .user_items(&[
                ("AnyProviderIdEquals", provider_id(kind, value)),
                ("Recursive", "true".into()),
                ("IncludeItemTypes", "Series".into()),
                ("Fields", "ProviderIds".into()),
            ])
            .await?;
        if let Some(found) = client.find_in_series(item, &series).await? {
            return Ok(Some(found));
        }
    }
    Ok(None)
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

    #[test]
    fn provider_id_filter_spelling() {
        assert_eq!(provider_id("imdb", "tt0111161"), "imdb.tt0111161");
    }
}

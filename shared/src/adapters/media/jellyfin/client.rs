//! Jellyfin's dialect of the MediaBrowser API; the client is
//! [`crate::adapters::media::mediabrowser::client`].
//!
//! - the token travels in `Authorization: MediaBrowser Token="<token>"`;
//! - `DatePlayed` of `POST /Users/{user}/PlayedItems/{id}` is RFC 3339;
//! - find searches by title (`searchTerm`; the series' for an episode) and keeps only
//!   the hits whose ids match.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::adapters::media::client::RetryPolicy;
use crate::adapters::media::mediabrowser::client::MediaBrowserClient;
use crate::adapters::media::mediabrowser::{Dialect, Find};
use crate::domain::model::{Backend, BackendKind};

pub const DIALECT: Dialect = Dialect {
    kind: BackendKind::Jellyfin,
    auth_header: "Authorization",
    auth_value,
    date_played,
    find: Find::ByTitle,
};

/// The Jellyfin client.
pub fn new(backend: &Backend, http: reqwest::Client, retry: RetryPolicy) -> MediaBrowserClient {
    MediaBrowserClient::new(backend, http, retry, DIALECT)
}

fn auth_value(token: &str) -> String {
    format!("MediaBrowser Token=\"{token}\"")
}

fn date_played(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

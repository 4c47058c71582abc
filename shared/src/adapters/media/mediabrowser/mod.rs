//! The MediaBrowser family: Jellyfin and Emby (Jellyfin is a fork of Emby, which was
//! MediaBrowser) share their API's paths and JSON shapes, so one client
//! ([`client::MediaBrowserClient`]) serves both, told apart by a [`Dialect`] value; each
//! server's dialect is data in its own folder (`jellyfin/client.rs`, `emby/client.rs`).
//! Their webhooks differ in shape and keep their own parsers; what both read the same
//! way (ticks, the item's type) is here.

#[cfg(feature = "media")]
mod answers;
#[cfg(feature = "media")]
pub mod client;
pub(crate) mod dto;

#[cfg(feature = "media")]
use chrono::{DateTime, Utc};

#[cfg(feature = "media")]
use crate::domain::model::BackendKind;
use crate::domain::model::{Action, EventItem, Guids, ItemType, Source};

use crate::adapters::media::lenient::Scalar;

/// Times are ticks of 100 ns: 10,000 per millisecond.
pub(crate) const TICKS_PER_MS: u64 = 10_000;

/// Milliseconds of a tick count.
pub(crate) fn ms(ticks: &Scalar<'_>) -> Option<u64> {
    ticks.u64().map(|t| t / TICKS_PER_MS)
}

/// `Type` / `ItemType` of a webhook's item: movies and episodes are synced, anything
/// else is ignored for the reason returned (`field` names the key in the server's words).
pub(crate) fn item_type(
    source: Source,
    field: &str,
    kind: &Scalar<'_>,
) -> Result<ItemType, String> {
    match kind.text() {
        Some(t) if t.eq_ignore_ascii_case("Movie") => Ok(ItemType::Movie),
        Some(t) if t.eq_ignore_ascii_case("Episode") => Ok(ItemType::Episode),
        Some(t) => Err(format!(
            "item type {t} is not synced (only Movie and Episode are)"
        )),
        None => Err(format!(
            "{source} payload has no {field}: only Movie and Episode are synced"
        )),
    }
}

/// What a webhook says of the person's play state, each server under its own keys.
pub(crate) struct PlayReport<'s, 'a> {
    pub action: Action,
    /// `PlayedToCompletion: true` (Jellyfin at the top level, Emby in `PlaybackInfo`).
    pub completed: bool,
    /// The item's own played flag (`Played`, Emby's `UserData.Played`).
    pub played: Option<bool>,
    /// The playback position, in ticks.
    pub position_ticks: Option<&'s Scalar<'a>>,
}

impl PlayReport<'_, '_> {
    /// The family's one rule: an added item carries no user, so no play state; a
    /// completed playback is played, while `PlayedToCompletion: false` only says this
    /// playback did not finish (the item's own flag stands).
    fn played(&self) -> Option<bool> {
        match self.action {
            Action::Added => None,
            _ if self.completed => Some(true),
            _ => self.played,
        }
    }

    /// A position is read from a progress report only.
    fn progress_ms(&self) -> Option<u64> {
        match self.action {
            Action::Progress => self.position_ticks.and_then(ms),
            _ => None,
        }
    }
}

/// The item fields both webhooks send, each under its own keys.
pub(crate) struct ItemFields<'s, 'a> {
    pub name: &'s Scalar<'a>,
    pub year: &'s Scalar<'a>,
    pub series_name: &'s Scalar<'a>,
    pub season: &'s Scalar<'a>,
    pub episode: &'s Scalar<'a>,
    pub runtime_ticks: &'s Scalar<'a>,
}

impl ItemFields<'_, '_> {
    /// The event's item. `guids` are the item's own: an episode's provider ids are the
    /// episode's, and neither server sends its series' ids.
    pub(crate) fn event_item(
        &self,
        kind: ItemType,
        backend_item_id: String,
        guids: Guids,
        report: PlayReport<'_, '_>,
    ) -> EventItem {
        let episode = kind == ItemType::Episode;
        let number = |v: &Scalar<'_>| v.u32().filter(|_| episode);
        EventItem {
            kind: Some(kind),
            backend_item_id,
            title: self.name.string(),
            year: self.year.year(),
            series_title: self.series_name.string().filter(|_| episode),
            season: number(self.season),
            episode: number(self.episode),
            guids,
            series_guids: Guids::new(),
            played: report.played(),
            progress_ms: report.progress_ms(),
            duration_ms: ms(self.runtime_ticks).filter(|d| *d > 0),
            last_played_at: None,
        }
    }
}

/// What differs between the servers of the family. The client reads it; nothing else
/// about a server is special-cased.
#[cfg(feature = "media")]
#[derive(Clone, Copy)]
pub struct Dialect {
    pub kind: BackendKind,
    /// The header that carries the token, and its value made from the token.
    pub auth_header: &'static str,
    pub auth_value: fn(&str) -> String,
    /// `DatePlayed` of `POST /Users/{user}/PlayedItems/{id}`.
    pub date_played: fn(DateTime<Utc>) -> String,
    /// How `find` looks an item up.
    pub find: Find,
}

/// How a server of the family finds an item by its ids.
#[cfg(feature = "media")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Find {
    /// Search by title (the series' for an episode), keep only id matches.
    ByTitle,
    /// `AnyProviderIdEquals=imdb.tt0111161` for each guid (the series' for an episode
    /// known only by its series' ids), keep only id matches.
    ByProviderId,
}

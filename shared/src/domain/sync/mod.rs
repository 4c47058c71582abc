//! The rules (docs/RELIABILITY.md, "The rules, one place"): pure functions over the model, no store, no I/O. Every path
//! that touches play state (webhook, import, push, export) decides here, so each rule
//! lives in one place:
//!
//! | rule (docs/RELIABILITY.md, "The rules, one place") | where |
//! |---|---|
//! | strictly newer `played`/`unplayed` flips; older is `stale`; payload time else received, future/pre-2000 replaced | [`webhook::decide`], [`crate::domain::when::event_time`] |
//! | the same state twice is a no-op | [`webhook::decide`] (`same state`, no write for an identical repeat) |
//! | progress never flips `watched`, never unplays; < 60 s and last 5 % ignored | [`resume::usable`], [`webhook::decide`] |
//! | `added` enriches only | [`webhook::decide`], [`enrich`] |
//! | first sight: only a reported *watched* is taken; unwatched/missing starts "never" | [`webhook::decide`], [`listing::merge`] |
//! | unplays seen by import: seen watched before the fetch, stamped at fetch start | [`listing::merge`] |
//! | a change of last-viewed time alone is not a play (a play raises the play count) | [`listing::merge`], [`target::plan`] |
//! | push never overwrites newer evidence; real play times only | [`target::plan`] |
//! | only real changes push, never back to their origin; no ping-pong | [`webhook::decide`], [`listing::merge`], [`target::plan`] |
//! | matching: own id, shared guid, relative key; contradicting guids never match | [`matching`] |
//! | resume positions: newest wins, pushed beyond 30 s, never on a watched item | [`resume`], [`target::plan`] |
//!
//! Evidence a person acted: an item is *watched* because some backend reported a play;
//! it is *unwatched with an unplay* ([`has_unplay`]) only because a person unmarked it
//! somewhere. An unwatched item without an unplay is "nothing known": it is never
//! pushed as an unplay.

pub mod console;
pub mod keys;
pub mod listing;
pub mod matching;
pub mod merge;
#[cfg(test)]
mod properties;
pub mod resume;
pub mod target;
#[cfg(test)]
pub(crate) mod test_support;
pub mod webhook;

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;

use crate::domain::model::{ChangeKind, EventItem, Guids, Item, ItemType, StateChange};

pub use console::{mark, CONSOLE};
pub use keys::{backend_key, event_keys, guid_key, item_keys, LookupKey};
pub use webhook::decide;

/// Why nothing changed, as the webhook answer says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NoChange {
    #[serde(rename = "stale")]
    Stale,
    #[serde(rename = "same state")]
    SameState,
    #[serde(rename = "metadata only")]
    MetadataOnly,
}

impl NoChange {
    pub fn as_str(self) -> &'static str {
        match self {
            NoChange::Stale => "stale",
            NoChange::SameState => "same state",
            NoChange::MetadataOnly => "metadata only",
        }
    }
}

/// The outcome of merging one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The item as it should be stored.
    pub item: Item,
    /// Whether anything at all must be written (state, progress, ids, metadata).
    pub write: bool,
    /// `None` when play state or resume position really changed.
    pub no_change: Option<NoChange>,
    /// A human explanation when the reason alone is not enough.
    pub detail: Option<String>,
    /// What to carry to the other backends, if anything.
    pub change: Option<StateChange>,
}

/// The inputs besides the event: who, where, when.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub user: &'a str,
    pub backend: &'a str,
    pub received_at: DateTime<Utc>,
}

/// "Never": the stamp of a play state nobody reported.
pub fn never() -> DateTime<Utc> {
    Utc.timestamp_opt(0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Whether the item is unwatched because a person unmarked it (rather than because
/// nobody ever reported a play): only then may an unplay reach another backend.
pub fn has_unplay(item: &Item) -> bool {
    !item.watched && item.unplayed_at.is_some()
}

/// Whether nobody ever reported a play state for the item (unwatched, "never", no
/// unplay): the first report of one stands.
pub(crate) fn nothing_known(item: &Item) -> bool {
    !item.watched && item.unplayed_at.is_none() && item.state_updated_at <= never()
}

/// The play time to send with "mark played": a real one, never the "never" stamp.
pub fn play_time(item: &Item) -> Option<DateTime<Utc>> {
    (item.watched && item.state_updated_at > never()).then_some(item.state_updated_at)
}

/// Set the item's play state after a person's play or unplay (or an import transition
/// standing for one) at `at`, learned from `backend`.
pub(crate) fn flip(item: &mut Item, watched: bool, at: DateTime<Utc>, backend: &str) {
    item.watched = watched;
    item.state_updated_at = at;
    item.via = Some(backend.to_string());
    item.unplayed_at = (!watched).then_some(at);
    // A finished or reset item has no resume point.
    item.progress_ms = None;
    item.progress_at = None;
}

/// A flip on `backend`'s word, with the change that pushes it to the other backends.
pub(crate) fn flip_pushed(
    item: &mut Item,
    watched: bool,
    at: DateTime<Utc>,
    user: &str,
    backend: &str,
) -> StateChange {
    flip(item, watched, at, backend);
    change_from(item, user, backend, ChangeKind::Watched)
}

/// A newer report of the play state the item already has (a play of a watched item,
/// an unplay of an unmarked one) moves its stamp, so a late older report of the other
/// state cannot flip it back.
pub(crate) fn confirm(item: &mut Item, at: DateTime<Utc>) {
    if at > item.state_updated_at {
        item.state_updated_at = at;
        if !item.watched {
            item.unplayed_at = Some(at);
        }
    }
}

/// What a report (webhook event or library listing) says about an item besides its
/// play state: ids, titles, numbering.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    pub guids: &'a Guids,
    pub series_guids: &'a Guids,
    pub title: Option<&'a String>,
    pub year: Option<i32>,
    pub series_title: Option<&'a String>,
    pub season: Option<u32>,
    pub episode: Option<u32>,
}

impl<'a> From<&'a EventItem> for Meta<'a> {
    fn from(ev: &'a EventItem) -> Self {
        Meta {
            guids: &ev.guids,
            series_guids: &ev.series_guids,
            title: ev.title.as_ref(),
            year: ev.year,
            series_title: ev.series_title.as_ref(),
            season: ev.season,
            episode: ev.episode,
        }
    }
}

/// Add what a report knows and the item does not (ids, titles, numbering); never
/// replaces a value, so two backends that disagree cannot flap.
pub fn enrich(item: &mut Item, meta: Meta<'_>) {
    for (k, v) in meta.guids {
        item.guids.entry(k.clone()).or_insert_with(|| v.clone());
    }
    for (k, v) in meta.series_guids {
        item.series_guids
            .entry(k.clone())
            .or_insert_with(|| v.clone());
    }
    if item.title.is_none() {
        item.title = meta.title.cloned();
    }
    if item.year.is_none() {
        item.year = meta.year;
    }
    if item.series_title.is_none() {
        item.series_title = meta.series_title.cloned();
    }
    if item.season.is_none() {
        item.season = meta.season;
    }
    if item.episode.is_none() {
        item.episode = meta.episode;
    }
}

/// A new item made from a report's metadata (what [`enrich`] would add to an empty
/// item), with no play state yet ("never").
pub(crate) fn new_item(id: String, kind: ItemType, meta: Meta<'_>) -> Item {
    Item {
        id,
        kind,
        title: meta.title.cloned(),
        year: meta.year,
        series_title: meta.series_title.cloned(),
        season: meta.season,
        episode: meta.episode,
        guids: meta.guids.clone(),
        series_guids: meta.series_guids.clone(),
        watched: false,
        state_updated_at: never(),
        unplayed_at: None,
        progress_ms: None,
        progress_at: None,
        via: None,
        backends: Default::default(),
        version: 0,
    }
}

/// The change record of an item's current state, coming from `backend`.
pub fn change_from(item: &Item, user: &str, backend: &str, kind: ChangeKind) -> StateChange {
    StateChange {
        // Time-ordered, so the outbox reads oldest first by its key.
        id: crate::domain::ids::time_ordered_id(Utc::now()),
        user: user.to_string(),
        item_id: item.id.clone(),
        origin: Some(backend.to_string()),
        watched: item.watched,
        progress_ms: item.progress_ms,
        state_updated_at: item.state_updated_at,
        kind,
    }
}

/// Records when `backend` last spoke of the item; callers do it only alongside a real
/// write, so a repeat of the same state never costs a write for a timestamp.
pub(crate) fn seen(item: &mut Item, backend: &str, at: DateTime<Utc>) {
    if let Some(s) = item.backends.get_mut(backend) {
        s.seen_at = Some(at);
    }
}

/// Whether two versions differ in anything but bookkeeping (when a backend was seen).
pub(crate) fn item_differs(a: &Item, b: &Item) -> bool {
    let strip = |i: &Item| {
        let mut i = i.clone();
        for s in i.backends.values_mut() {
            s.seen_at = None;
        }
        i
    };
    strip(a) != strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sync::test_support::ev_item;

    #[test]
    fn unplay_evidence_and_play_times() {
        let ev = ev_item();
        let mut item = new_item("i".into(), ItemType::Movie, Meta::from(&ev));
        assert!(!has_unplay(&item), "unwatched by default is not an unplay");
        assert_eq!(play_time(&item), None);
        let t = Utc.timestamp_opt(1_700_000_000, 0).single().unwrap();
        flip(&mut item, true, never(), "plex");
        assert_eq!(play_time(&item), None, "never a 1970 play date");
        flip(&mut item, true, t, "plex");
        assert_eq!(play_time(&item), Some(t));
        flip(&mut item, false, t, "emby");
        assert!(has_unplay(&item));
        assert_eq!(item.unplayed_at, Some(t));
        flip(&mut item, true, t, "jf");
        assert!(!has_unplay(&item) && item.unplayed_at.is_none());
    }
}

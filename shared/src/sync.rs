//! The rules (DESIGN 4): how one event merges into the stored item, and what that
//! means for push. Pure functions over the model; no store, no I/O.
//!
//! - `played`/`unplayed` flip `watched` only when strictly newer than `state_updated_at`;
//!   an older one is `stale`, the same state again is `same state`.
//! - Progress updates `progress_ms` of an unwatched item (not under 60 s, not in the last
//!   5 %) and never flips `watched`.
//! - `added` and events without a user enrich the item and touch no play state.
//! - A first-seen item takes the play state its payload reports, stamped with the event
//!   time; when the payload reports nothing it starts unwatched, stamped "never" (the
//!   Unix epoch) so that any real play event later is newer.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;

use crate::guid;
use crate::model::{
    Action, BackendState, ChangeKind, Event, EventItem, Item, ItemType, StateChange,
};
use crate::when;

/// Positions under this are noise (a play started and stopped).
pub const MIN_PROGRESS_MS: u64 = 60_000;
/// Positions in the last 5 % of the runtime are credits, not a resume point.
pub const END_FRACTION: f64 = 0.95;

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

/// Lookup keys of an event's item, strongest first: the backend's own id, then each
/// guid, then relative episode guids. Guids are scoped by item type because movie and
/// episode ids live in different namespaces (a TMDB movie id can equal an episode id).
pub fn event_keys(backend: &str, item: &EventItem) -> Vec<String> {
    let kind = item.item_type();
    let mut keys = vec![backend_key(backend, &item.backend_item_id)];
    keys.extend(guid_keys(kind, &item.guids));
    keys.extend(relative_keys(
        kind,
        &item.series_guids,
        item.season,
        item.episode,
    ));
    keys
}

/// Every lookup key a stored item owns.
pub fn item_keys(item: &Item) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for (name, state) in &item.backends {
        if let Some(id) = &state.item_id {
            keys.insert(backend_key(name, id));
        }
    }
    keys.extend(guid_keys(item.kind, &item.guids));
    keys.extend(relative_keys(
        item.kind,
        &item.series_guids,
        item.season,
        item.episode,
    ));
    keys
}

pub fn backend_key(backend: &str, backend_item_id: &str) -> String {
    format!("B#{backend}#{backend_item_id}")
}

pub fn guid_key(kind: ItemType, guid_kind: &str, value: &str) -> String {
    format!("G#{}#{guid_kind}:{value}", kind.as_str())
}

fn guid_keys(kind: ItemType, guids: &crate::model::Guids) -> impl Iterator<Item = String> + '_ {
    guids.iter().map(move |(k, v)| guid_key(kind, k, v))
}

fn relative_keys(
    kind: ItemType,
    series: &crate::model::Guids,
    season: Option<u32>,
    episode: Option<u32>,
) -> Vec<String> {
    match (kind, season, episode) {
        (ItemType::Episode, Some(s), Some(e)) => series
            .iter()
            .map(|(k, v)| format!("R#{}", guid::relative(k, v, s, e)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether a progress event is one worth pushing (pause or stop), rather than a tick
/// of an ongoing playback: the position is kept either way.
pub fn is_pause_or_stop(raw_event: &str) -> bool {
    matches!(
        raw_event,
        "media.pause"
            | "media.stop"
            | "tautulli.pause"
            | "tautulli.stop"
            | "PlaybackStop"
            | "playback.pause"
            | "playback.stop"
    )
}

/// A progress position worth keeping, or why not.
fn usable_progress(item: &EventItem) -> Result<u64, String> {
    let Some(pos) = item.progress_ms else {
        return Err("event carries no position".into());
    };
    if pos < MIN_PROGRESS_MS {
        return Err(format!("position {pos} ms is under 60 s"));
    }
    if let Some(d) = item.duration_ms.filter(|d| *d > 0) {
        if pos as f64 >= d as f64 * END_FRACTION {
            return Err(format!("position {pos} ms is in the last 5 % of {d} ms"));
        }
    }
    Ok(pos)
}

/// Merge an event into the stored item (or create it). `new_id` names a new item.
pub fn decide(
    existing: Option<&Item>,
    event: &Event,
    ev: &EventItem,
    ctx: Context<'_>,
    new_id: impl FnOnce() -> String,
) -> Decision {
    let t = when::event_time(event.occurred_at, ctx.received_at);
    // Without a user id we cannot tell whose play state this is: metadata only.
    let action = if event.user_id.is_none() && event.action != Action::Added {
        Action::Added
    } else {
        event.action
    };
    match existing {
        None => first_seen(event, ev, action, t, ctx, new_id()),
        Some(item) => merge(item, event, ev, action, t, ctx),
    }
}

fn first_seen(
    event: &Event,
    ev: &EventItem,
    action: Action,
    t: DateTime<Utc>,
    ctx: Context<'_>,
    id: String,
) -> Decision {
    let reported = match action {
        Action::Played => Some(true),
        Action::Unplayed => Some(false),
        Action::Added | Action::Test => None,
        Action::Progress => ev.played,
    };
    let watched = reported.unwrap_or(false);
    let progress = if action == Action::Progress && !watched {
        usable_progress(ev).ok()
    } else {
        None
    };
    let mut item = Item {
        id,
        kind: ev.item_type(),
        title: ev.title.clone(),
        year: ev.year,
        series_title: ev.series_title.clone(),
        season: ev.season,
        episode: ev.episode,
        guids: ev.guids.clone(),
        series_guids: ev.series_guids.clone(),
        watched,
        state_updated_at: if reported.is_some() { t } else { never() },
        progress_ms: progress,
        via: reported.map(|_| ctx.backend.to_string()),
        backends: Default::default(),
        version: 0,
    };
    item.backends.insert(
        ctx.backend.to_string(),
        BackendState {
            item_id: Some(ev.backend_item_id.clone()),
            watched: reported,
            progress_ms: progress,
            seen_at: Some(ctx.received_at),
            missing: false,
        },
    );
    // A new item is a change worth pushing only when it says "watched" or carries a
    // resume point; an unwatched item is what every backend assumes already.
    let change = if watched {
        Some(change_of(&item, ctx, ChangeKind::Watched))
    } else if progress.is_some() && (event.paused || is_pause_or_stop(&event.raw_event)) {
        Some(change_of(&item, ctx, ChangeKind::Progress))
    } else {
        None
    };
    let no_change = if watched || progress.is_some() {
        None
    } else if reported.is_none() {
        Some(NoChange::MetadataOnly)
    } else {
        Some(NoChange::SameState)
    };
    Decision {
        item,
        write: true,
        no_change,
        detail: None,
        change,
    }
}

fn merge(
    old: &Item,
    event: &Event,
    ev: &EventItem,
    action: Action,
    t: DateTime<Utc>,
    ctx: Context<'_>,
) -> Decision {
    let mut item = old.clone();
    enrich(&mut item, Meta::from(ev));
    let remote = item.backends.entry(ctx.backend.to_string()).or_default();
    if remote.item_id.as_deref() != Some(ev.backend_item_id.as_str()) {
        remote.item_id = Some(ev.backend_item_id.clone());
    }
    remote.missing = false;

    let mut no_change = None;
    let mut detail = None;
    let mut change = None;
    match action {
        Action::Played | Action::Unplayed => {
            let want = action == Action::Played;
            remote.watched = Some(want);
            if item.watched == want {
                no_change = Some(NoChange::SameState);
                // A newer report of the same state moves the stamp, so an older event
                // that arrives late cannot flip it back ("newest wins"). An identical
                // repeat (same time) still writes nothing.
                if t > item.state_updated_at {
                    item.state_updated_at = t;
                }
            } else if t <= item.state_updated_at {
                no_change = Some(NoChange::Stale);
                detail = Some(format!(
                    "event time {} is not newer than the stored state ({})",
                    t.to_rfc3339(),
                    item.state_updated_at.to_rfc3339()
                ));
            } else {
                item.watched = want;
                item.state_updated_at = t;
                item.via = Some(ctx.backend.to_string());
                // A finished or reset item has no resume point.
                item.progress_ms = None;
                change = Some(change_of(&item, ctx, ChangeKind::Watched));
            }
        }
        Action::Progress => {
            if item.watched {
                no_change = Some(NoChange::SameState);
                detail = Some("item is watched: progress never changes it".into());
            } else {
                match usable_progress(ev) {
                    Err(why) => {
                        no_change = Some(NoChange::SameState);
                        detail = Some(why);
                    }
                    Ok(pos) => {
                        remote.progress_ms = Some(pos);
                        if item.progress_ms == Some(pos) {
                            no_change = Some(NoChange::SameState);
                        } else {
                            item.progress_ms = Some(pos);
                            item.via = Some(ctx.backend.to_string());
                            if event.paused || is_pause_or_stop(&event.raw_event) {
                                change = Some(change_of(&item, ctx, ChangeKind::Progress));
                            }
                        }
                    }
                }
            }
        }
        Action::Added | Action::Test => {
            no_change = Some(NoChange::MetadataOnly);
        }
    }
    // Remember when this backend last spoke only alongside a real write: a repeat of
    // the same state must not cost a write just to move a timestamp.
    let write = item_differs(old, &item);
    if write {
        if let Some(r) = item.backends.get_mut(ctx.backend) {
            r.seen_at = Some(ctx.received_at);
        }
    }
    Decision {
        item,
        write,
        no_change,
        detail,
        change,
    }
}

/// Whether two versions differ in anything but bookkeeping.
fn item_differs(a: &Item, b: &Item) -> bool {
    let strip = |i: &Item| {
        let mut i = i.clone();
        for s in i.backends.values_mut() {
            s.seen_at = None;
        }
        i
    };
    strip(a) != strip(b)
}

/// What a report (webhook event or library listing) says about an item besides its
/// play state: ids, titles, numbering.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    pub guids: &'a crate::model::Guids,
    pub series_guids: &'a crate::model::Guids,
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

/// The change record of an item's current state, coming from `backend`.
pub fn change_from(item: &Item, user: &str, backend: &str, kind: ChangeKind) -> StateChange {
    StateChange {
        // Time-ordered, so the outbox reads oldest first by its key.
        id: crate::ids::time_ordered_id(chrono::Utc::now()),
        user: user.to_string(),
        item_id: item.id.clone(),
        origin: Some(backend.to_string()),
        watched: item.watched,
        progress_ms: item.progress_ms,
        state_updated_at: item.state_updated_at,
        kind,
    }
}

fn change_of(item: &Item, ctx: Context<'_>, kind: ChangeKind) -> StateChange {
    change_from(item, ctx.user, ctx.backend, kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Source;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).single().unwrap()
    }

    const NOW: i64 = 1_750_000_000;

    fn ctx(backend: &str) -> Context<'_> {
        Context {
            user: "ana",
            backend,
            received_at: at(NOW),
        }
    }

    fn ev_item() -> EventItem {
        let mut guids = crate::model::Guids::new();
        guids.insert("imdb".into(), "tt0111161".into());
        EventItem {
            kind: Some(ItemType::Movie),
            backend_item_id: "42".into(),
            title: Some("The Film".into()),
            year: Some(1994),
            guids,
            duration_ms: Some(8_000_000),
            ..Default::default()
        }
    }

    fn event(action: Action, raw: &str, when: Option<i64>) -> Event {
        Event {
            source: Source::Plex,
            server_id: Some("srv".into()),
            user_id: Some("1".into()),
            action,
            raw_event: raw.into(),
            occurred_at: when.map(at),
            paused: false,
            item: Some(ev_item()),
        }
    }

    fn run(existing: Option<&Item>, e: &Event, backend: &str) -> Decision {
        let ev = e.item.clone().unwrap();
        decide(existing, e, &ev, ctx(backend), || "item-1".into())
    }

    fn stored(watched: bool, at_secs: i64) -> Item {
        let mut d = run(None, &event(Action::Added, "library.new", None), "plex");
        d.item.watched = watched;
        d.item.state_updated_at = at(at_secs);
        d.item.version = 3;
        d.item
    }

    #[test]
    fn first_seen_played_takes_reported_state_and_time() {
        let d = run(
            None,
            &event(Action::Played, "media.scrobble", Some(NOW - 100)),
            "plex",
        );
        assert!(d.item.watched);
        assert_eq!(d.item.state_updated_at, at(NOW - 100));
        assert_eq!(d.item.via.as_deref(), Some("plex"));
        assert_eq!(d.no_change, None);
        assert!(d.write);
        let c = d.change.expect("a new watched item is pushed");
        assert_eq!(c.kind, ChangeKind::Watched);
        assert_eq!(c.origin.as_deref(), Some("plex"));
        assert!(c.watched);
    }

    #[test]
    fn first_seen_without_reported_state_starts_unwatched_never_stamped() {
        let d = run(
            None,
            &event(Action::Added, "library.new", Some(NOW - 5)),
            "plex",
        );
        assert!(!d.item.watched);
        assert_eq!(d.item.state_updated_at, never());
        assert_eq!(d.no_change, Some(NoChange::MetadataOnly));
        assert_eq!(d.change, None);
        assert_eq!(d.item.backends["plex"].item_id.as_deref(), Some("42"));
    }

    #[test]
    fn first_seen_progress_with_viewcount_reports_watched() {
        let mut e = event(Action::Progress, "media.pause", Some(NOW - 5));
        e.item.as_mut().unwrap().played = Some(true);
        e.item.as_mut().unwrap().progress_ms = Some(600_000);
        let d = run(None, &e, "plex");
        assert!(d.item.watched, "viewCount > 0 on first sight means watched");
        assert_eq!(
            d.item.progress_ms, None,
            "a watched item keeps no resume point"
        );
    }

    #[test]
    fn first_seen_progress_keeps_position_and_pushes_on_pause() {
        let mut e = event(Action::Progress, "media.pause", None);
        e.item.as_mut().unwrap().progress_ms = Some(1_200_000);
        let d = run(None, &e, "plex");
        assert!(!d.item.watched);
        assert_eq!(d.item.progress_ms, Some(1_200_000));
        assert_eq!(d.change.map(|c| c.kind), Some(ChangeKind::Progress));
        assert_eq!(d.no_change, None);
    }

    #[test]
    fn played_newer_flips() {
        let old = stored(false, NOW - 1000);
        let d = run(
            Some(&old),
            &event(Action::Played, "media.scrobble", Some(NOW - 10)),
            "jf",
        );
        assert!(d.item.watched);
        assert_eq!(d.item.state_updated_at, at(NOW - 10));
        assert_eq!(d.item.via.as_deref(), Some("jf"));
        assert!(d.write);
        assert_eq!(
            d.change.as_ref().map(|c| c.origin.as_deref()),
            Some(Some("jf"))
        );
    }

    #[test]
    fn played_equal_time_is_stale() {
        let old = stored(false, NOW - 10);
        let d = run(
            Some(&old),
            &event(Action::Played, "media.scrobble", Some(NOW - 10)),
            "plex",
        );
        assert!(!d.item.watched, "strictly newer only");
        assert_eq!(d.no_change, Some(NoChange::Stale));
        assert_eq!(d.change, None);
    }

    #[test]
    fn unplayed_older_is_stale() {
        let old = stored(true, NOW - 10);
        let d = run(
            Some(&old),
            &event(Action::Unplayed, "item.markunplayed", Some(NOW - 500)),
            "emby",
        );
        assert!(d.item.watched);
        assert_eq!(d.no_change, Some(NoChange::Stale));
        assert!(d.detail.unwrap().contains("not newer"));
    }

    #[test]
    fn unplayed_newer_flips_and_clears_progress() {
        let mut old = stored(true, NOW - 500);
        old.progress_ms = None;
        let d = run(
            Some(&old),
            &event(Action::Unplayed, "item.markunplayed", Some(NOW - 1)),
            "emby",
        );
        assert!(!d.item.watched);
        assert_eq!(d.change.unwrap().kind, ChangeKind::Watched);
    }

    #[test]
    fn same_state_twice_is_no_write_no_push() {
        let d1 = run(
            None,
            &event(Action::Played, "media.scrobble", Some(NOW - 100)),
            "plex",
        );
        let d2 = run(
            Some(&d1.item),
            &event(Action::Played, "media.scrobble", Some(NOW - 100)),
            "plex",
        );
        assert_eq!(d2.no_change, Some(NoChange::SameState));
        assert!(!d2.write, "a repeat must not write");
        assert_eq!(d2.change, None);
    }

    #[test]
    fn newer_same_state_moves_the_stamp_so_a_late_older_event_cannot_flip() {
        let unplayed = |t| event(Action::Unplayed, "item.markunplayed", Some(t));
        let d1 = run(None, &unplayed(NOW - 100), "emby");
        let d2 = run(Some(&d1.item), &unplayed(NOW - 10), "emby");
        assert_eq!(d2.no_change, Some(NoChange::SameState));
        assert_eq!(d2.change, None, "no push for the same state");
        assert_eq!(d2.item.state_updated_at, at(NOW - 10));
        let late = event(Action::Played, "media.scrobble", Some(NOW - 50));
        let late = run(Some(&d2.item), &late, "plex");
        assert_eq!(late.no_change, Some(NoChange::Stale));
        assert!(!late.item.watched);
    }

    #[test]
    fn echo_from_pushed_backend_is_same_state() {
        // Plex scrobbled; push marked it on Jellyfin; Jellyfin echoes "played".
        let mut d1 = run(
            None,
            &event(Action::Played, "media.scrobble", Some(NOW - 100)),
            "plex",
        );
        d1.item.backends.insert(
            "jf".into(),
            BackendState {
                item_id: Some("42".into()),
                watched: Some(true),
                ..Default::default()
            },
        );
        let d2 = run(
            Some(&d1.item),
            &event(Action::Played, "UserDataSaved", Some(NOW)),
            "jf",
        );
        assert_eq!(d2.no_change, Some(NoChange::SameState));
        assert_eq!(d2.change, None);
        assert!(d2.write, "only the stamp moves");
        assert_eq!(d2.item.state_updated_at, at(NOW));
    }

    #[test]
    fn progress_never_flips_watched() {
        let old = stored(true, NOW - 100);
        let mut e = event(Action::Progress, "media.stop", Some(NOW));
        e.item.as_mut().unwrap().progress_ms = Some(600_000);
        e.item.as_mut().unwrap().played = Some(false);
        let d = run(Some(&old), &e, "plex");
        assert!(d.item.watched);
        assert_eq!(d.item.progress_ms, None);
        assert_eq!(d.no_change, Some(NoChange::SameState));
    }

    #[test]
    fn progress_under_60s_or_in_credits_is_ignored() {
        let old = stored(false, NOW - 100);
        for pos in [59_999, 7_700_000] {
            let mut e = event(Action::Progress, "media.pause", None);
            e.item.as_mut().unwrap().progress_ms = Some(pos);
            let d = run(Some(&old), &e, "plex");
            assert_eq!(d.item.progress_ms, None, "position {pos}");
            assert_eq!(d.no_change, Some(NoChange::SameState));
            assert!(!d.write);
        }
    }

    #[test]
    fn progress_tick_is_stored_but_only_pause_or_stop_pushes() {
        let old = stored(false, NOW - 100);
        let mut tick = event(Action::Progress, "PlaybackProgress", None);
        tick.item.as_mut().unwrap().progress_ms = Some(300_000);
        let d = run(Some(&old), &tick, "jf");
        assert_eq!(d.item.progress_ms, Some(300_000));
        assert_eq!(d.no_change, None);
        assert_eq!(d.change, None, "ticks are not pushed");
        let mut pause = event(Action::Progress, "media.pause", None);
        pause.item.as_mut().unwrap().progress_ms = Some(1_200_000);
        let d = run(Some(&d.item), &pause, "plex");
        assert_eq!(d.change.unwrap().progress_ms, Some(1_200_000));
    }

    #[test]
    fn added_enriches_without_touching_play_state() {
        let old = stored(true, NOW - 100);
        let mut e = event(Action::Added, "library.new", Some(NOW));
        e.item
            .as_mut()
            .unwrap()
            .guids
            .insert("tmdb".into(), "278".into());
        e.item.as_mut().unwrap().backend_item_id = "99".into();
        let d = run(Some(&old), &e, "emby");
        assert!(d.item.watched);
        assert_eq!(d.item.state_updated_at, at(NOW - 100));
        assert_eq!(d.item.guids["tmdb"], "278");
        assert_eq!(d.item.backends["emby"].item_id.as_deref(), Some("99"));
        assert_eq!(d.no_change, Some(NoChange::MetadataOnly));
        assert!(d.write);
        assert_eq!(d.change, None);
    }

    #[test]
    fn event_without_user_is_metadata_only() {
        let old = stored(false, NOW - 100);
        let mut e = event(Action::Played, "playback.stop", Some(NOW));
        e.user_id = None;
        let d = run(Some(&old), &e, "emby");
        assert!(!d.item.watched);
        assert_eq!(d.no_change, Some(NoChange::MetadataOnly));
        let d = run(None, &e, "emby");
        assert!(
            !d.item.watched,
            "no user: no play state on a new item either"
        );
    }

    #[test]
    fn future_and_ancient_times_are_replaced_by_received() {
        let old = stored(false, NOW - 100);
        let d = run(
            Some(&old),
            &event(Action::Played, "media.scrobble", Some(NOW + 86_400)),
            "plex",
        );
        assert_eq!(d.item.state_updated_at, at(NOW));
        let d = run(
            Some(&old),
            &event(Action::Played, "media.scrobble", Some(100)),
            "plex",
        );
        assert_eq!(d.item.state_updated_at, at(NOW));
    }

    #[test]
    fn keys_are_typed_and_relative_for_episodes() {
        let mut ev = ev_item();
        assert_eq!(
            event_keys("plex", &ev),
            vec![
                "B#plex#42".to_string(),
                "G#movie#imdb:tt0111161".to_string()
            ]
        );
        ev.kind = Some(ItemType::Episode);
        ev.guids.clear();
        ev.series_guids.insert("tvdb".into(), "81797".into());
        ev.season = Some(22);
        ev.episode = Some(70);
        assert_eq!(
            event_keys("plex", &ev),
            vec!["B#plex#42".to_string(), "R#tvdb:81797/22/70".to_string()]
        );
    }
}

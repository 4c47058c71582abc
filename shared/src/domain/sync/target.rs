//! What one target backend needs so that it shows the stored item (docs/RELIABILITY.md, "The rules, one place": Push never
//! overwrites newer evidence), for push and export alike.
//!
//! - Marked played only when it has no newer unplay we know of (nor one it shows now:
//!   watched when we last looked, unwatched now), with a real play time (never the
//!   "never" stamp: then no time at all, and the server records "now").
//! - Marked unplayed only for a person's unplay ([`super::has_unplay`]), and only when
//!   the backend has no newer completed play: its last play is after the unplay **and**
//!   its play count went up since we last saw it (a moved last-viewed time alone is a
//!   partial play, not a play).
//! - Its resume position set when it differs by more than 30 s, never on a watched
//!   item, never over a newer position of its own.
//! - What push learned is recorded as the backend's state only where it cannot hide
//!   evidence from the next import ([`learned`]).

use chrono::{DateTime, Utc};

use super::{has_unplay, play_time, resume};
use crate::domain::model::{BackendState, Item};
use crate::domain::remote::RemoteItem;

/// What to do on one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    MarkPlayed {
        at: Option<DateTime<Utc>>,
    },
    MarkUnplayed,
    SetProgress {
        position_ms: u64,
    },
    /// It already shows the stored state.
    InSync,
    /// It holds newer evidence than the store (a newer play, unplay or position).
    RemoteNewer,
    /// Nothing may be carried (e.g. an unwatched item nobody unmarked).
    Skip(&'static str),
}

/// The step that makes `remote` (what the backend shows now; `known` is what we last
/// saw there) match `item`.
pub fn plan(item: &Item, known: Option<&BackendState>, remote: &RemoteItem) -> Plan {
    if remote.watched != item.watched {
        if item.watched {
            let newer_unplay = known
                .and_then(|k| k.unplayed_at)
                .is_some_and(|u| u > item.state_updated_at);
            // Seen watched there, unwatched now: a person unmarked it since we last
            // looked (its webhook lost, or Plex's that never comes). That is what an
            // import right now would read as an unplay, newer than the play: leave it,
            // and record nothing, so the next import carries it.
            let unmarked_since = known.is_some_and(|k| {
                k.watched == Some(true) && k.item_id.as_deref() == Some(remote.id.as_str())
            });
            if newer_unplay || unmarked_since {
                return Plan::RemoteNewer;
            }
            return Plan::MarkPlayed {
                at: play_time(item),
            };
        }
        if !has_unplay(item) {
            return Plan::Skip("nobody unmarked the item: its watched there stays");
        }
        let unplay = item.unplayed_at.unwrap_or(item.state_updated_at);
        if played_since(known, remote, unplay) {
            return Plan::RemoteNewer;
        }
        return Plan::MarkUnplayed;
    }
    if item.watched {
        return Plan::InSync;
    }
    let Some(position) = item.progress_ms else {
        return Plan::InSync;
    };
    if resume::close_enough(remote.progress_ms, position) {
        return Plan::InSync;
    }
    let own_newer = remote.progress_ms.is_some()
        && remote
            .last_played_at
            .is_some_and(|t| item.progress_at.is_none_or(|p| t > p));
    if own_newer {
        return Plan::RemoteNewer;
    }
    Plan::SetProgress {
        position_ms: position,
    }
}

/// Whether the backend completed a play after `since`: its last play is later and its
/// play count went up since we last saw it (or there is no count to tell by).
fn played_since(known: Option<&BackendState>, remote: &RemoteItem, since: DateTime<Utc>) -> bool {
    if remote.last_played_at.is_none_or(|t| t <= since) {
        return false;
    }
    match (known.and_then(|k| k.play_count), remote.play_count) {
        (Some(before), Some(now)) => now > before,
        // Nothing to compare with: keep the backend's watched (never lose one).
        _ => true,
    }
}

/// What to record as the backend's state after `plan` was carried out (or not):
/// what we wrote, or what it showed where that agrees with the item. Where the
/// backend holds evidence the store has not taken (a play we refused to undo, a
/// watched nobody unmarked), what we knew is kept, so the next import still sees the
/// change as a change.
pub fn learned(
    plan: &Plan,
    applied: bool,
    known: Option<&BackendState>,
    remote: &RemoteItem,
    now: DateTime<Utc>,
) -> BackendState {
    let mut state = known.cloned().unwrap_or_default();
    state.item_id = Some(remote.id.clone());
    state.missing = false;
    let seen = |state: &mut BackendState| {
        state.watched = Some(remote.watched);
        state.play_count = remote.play_count;
        state.last_played_at = remote.last_played_at;
        state.progress_ms = remote.progress_ms.filter(|_| !remote.watched);
        state.seen_at = Some(now);
    };
    match (plan, applied) {
        (Plan::MarkPlayed { at }, true) => {
            seen(&mut state);
            state.pushed_at = Some(now);
            state.watched = Some(true);
            state.play_count = Some(remote.play_count.unwrap_or(0) + 1);
            state.last_played_at = Some(at.unwrap_or(now));
            state.progress_ms = None;
        }
        (Plan::MarkUnplayed, true) => {
            seen(&mut state);
            state.pushed_at = Some(now);
            state.watched = Some(false);
            state.play_count = Some(0);
            state.progress_ms = None;
        }
        (Plan::SetProgress { position_ms }, true) => {
            seen(&mut state);
            state.progress_ms = Some(*position_ms);
        }
        (Plan::InSync, _) => seen(&mut state),
        _ => {}
    }
    state
}

/// Whether export must compare `item` with target backend `target` (what the store
/// knows of it differs from the item). A backend that lacks the item is not searched
/// again until its own import or webhook shows it; an item with nothing to carry (no
/// play, no unplay, no position) never is.
pub fn needs_compare(item: &Item, target: &str, full: bool) -> bool {
    let known = item.backends.get(target);
    if known.is_some_and(|k| k.missing) {
        return false;
    }
    let unplay = has_unplay(item);
    if !item.watched && !unplay && item.progress_ms.is_none() {
        return false;
    }
    if full {
        return true;
    }
    let Some(k) = known else {
        return true;
    };
    let position_differs = item
        .progress_ms
        .is_some_and(|p| !resume::close_enough(k.progress_ms, p));
    match (item.watched, unplay) {
        (true, _) => k.watched != Some(true),
        (false, true) => k.watched != Some(false) || position_differs,
        // Only a position to carry, never onto a backend showing it watched.
        (false, false) => k.watched != Some(true) && position_differs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::ItemType;
    use crate::domain::sync::test_support::{self, at, NOW};
    use crate::domain::sync::{flip, never};

    fn item() -> Item {
        test_support::item("i", ItemType::Movie, &[], &[], None)
    }

    fn remote(watched: bool, count: u32, last: Option<i64>) -> RemoteItem {
        let mut r = RemoteItem::new("r1", ItemType::Movie);
        r.watched = watched;
        r.play_count = Some(count);
        r.last_played_at = last.map(at);
        r
    }

    fn known(watched: bool, count: u32) -> BackendState {
        BackendState {
            item_id: Some("r1".into()),
            watched: Some(watched),
            play_count: Some(count),
            ..Default::default()
        }
    }

    #[test]
    fn an_unwatched_item_nobody_unmarked_never_unplays() {
        // First sight of a paused movie: push must leave the backend's old watched.
        let mut i = item();
        i.progress_ms = Some(1_200_000);
        let p = plan(&i, None, &remote(true, 1, Some(NOW - 99_999)));
        assert!(matches!(p, Plan::Skip(_)), "{p:?}");
    }

    #[test]
    fn unplay_unless_the_backend_completed_a_newer_play() {
        let mut i = item();
        flip(&mut i, false, at(NOW), "emby");
        // Old play there: unmark.
        assert_eq!(
            plan(&i, Some(&known(true, 1)), &remote(true, 1, Some(NOW - 100))),
            Plan::MarkUnplayed
        );
        // A partial play after the unmark moved its last-viewed time, not its count.
        assert_eq!(
            plan(&i, Some(&known(true, 1)), &remote(true, 1, Some(NOW + 100))),
            Plan::MarkUnplayed
        );
        // A completed play after the unmark: newer evidence, left alone.
        assert_eq!(
            plan(&i, Some(&known(true, 1)), &remote(true, 2, Some(NOW + 100))),
            Plan::RemoteNewer
        );
        // No count known: its newer last play is kept (never lose a watched).
        assert_eq!(
            plan(&i, None, &remote(true, 1, Some(NOW + 100))),
            Plan::RemoteNewer
        );
    }

    #[test]
    fn mark_played_with_a_real_time_only_and_never_over_a_newer_unplay() {
        let mut i = item();
        flip(&mut i, true, never(), "plex");
        assert_eq!(
            plan(&i, None, &remote(false, 0, None)),
            Plan::MarkPlayed { at: None },
            "no 1970 play date"
        );
        flip(&mut i, true, at(NOW), "plex");
        assert_eq!(
            plan(&i, None, &remote(false, 0, None)),
            Plan::MarkPlayed { at: Some(at(NOW)) }
        );
        let mut k = known(false, 0);
        k.unplayed_at = Some(at(NOW + 5));
        assert_eq!(
            plan(&i, Some(&k), &remote(false, 0, None)),
            Plan::RemoteNewer
        );
        // Watched when we last looked, unwatched now: unmarked there since.
        let seen_watched = known(true, 1);
        assert_eq!(
            plan(&i, Some(&seen_watched), &remote(false, 0, None)),
            Plan::RemoteNewer
        );
        let s = learned(
            &Plan::RemoteNewer,
            false,
            Some(&seen_watched),
            &remote(false, 0, None),
            at(NOW),
        );
        assert_eq!(
            s.watched,
            Some(true),
            "kept, so the next import sees the unplay"
        );
        // A replaced file (another entry) is no unplay.
        let mut other = remote(false, 0, None);
        other.id = "r2".into();
        assert_eq!(
            plan(&i, Some(&seen_watched), &other),
            Plan::MarkPlayed { at: Some(at(NOW)) }
        );
    }

    #[test]
    fn positions_beyond_thirty_seconds_never_on_watched_never_over_newer() {
        let mut i = item();
        i.progress_ms = Some(600_000);
        i.progress_at = Some(at(NOW));
        let mut r = remote(false, 0, None);
        r.progress_ms = Some(590_000);
        assert_eq!(plan(&i, None, &r), Plan::InSync, "within 30 s");
        r.progress_ms = None;
        assert_eq!(
            plan(&i, None, &r),
            Plan::SetProgress {
                position_ms: 600_000
            }
        );
        r.progress_ms = Some(100_000);
        r.last_played_at = Some(at(NOW + 10));
        assert_eq!(plan(&i, None, &r), Plan::RemoteNewer, "its own newer pause");
        let mut w = item();
        flip(&mut w, true, at(NOW), "plex");
        let mut rw = remote(true, 1, None);
        rw.progress_ms = Some(100_000);
        assert_eq!(
            plan(&w, None, &rw),
            Plan::InSync,
            "no position on a watched item"
        );
    }

    #[test]
    fn what_push_records_never_hides_evidence_from_import() {
        let mut i = item();
        flip(&mut i, false, at(NOW), "emby");
        let k = known(true, 1);
        let r = remote(true, 2, Some(NOW + 100));
        let p = plan(&i, Some(&k), &r);
        assert_eq!(p, Plan::RemoteNewer);
        let s = learned(&p, false, Some(&k), &r, at(NOW + 200));
        assert_eq!(
            s.play_count,
            Some(1),
            "the next import still sees the count go up"
        );
        assert_eq!(s.watched, Some(true));
        let p = Plan::MarkPlayed { at: None };
        let s = learned(&p, true, None, &remote(false, 3, None), at(NOW));
        assert_eq!((s.watched, s.play_count), (Some(true), Some(4)));
        assert_eq!(s.seen_at, Some(at(NOW)));
        assert_eq!(s.pushed_at, Some(at(NOW)), "a late timeless report waits");
        let s = learned(&Plan::MarkUnplayed, true, Some(&k), &r, at(NOW));
        assert_eq!((s.watched, s.play_count), (Some(false), Some(0)));
        assert_eq!(s.pushed_at, Some(at(NOW)));
        let s = learned(&Plan::InSync, false, Some(&k), &r, at(NOW));
        assert_eq!(s.pushed_at, None, "nothing was changed there");
    }

    #[test]
    fn export_compares_what_the_backend_was_last_seen_to_hold() {
        let mut i = item();
        assert!(!needs_compare(&i, "jf", true), "nothing to carry");
        flip(&mut i, true, at(NOW), "plex");
        assert!(needs_compare(&i, "jf", false), "never seen there");
        i.backends.insert("jf".into(), known(true, 1));
        assert!(!needs_compare(&i, "jf", false), "known to agree");
        assert!(needs_compare(&i, "jf", true), "full compares anyway");
        // jf's import recorded a replaced file: a new id with no play state.
        i.backends.insert("jf".into(), known(false, 0));
        assert!(needs_compare(&i, "jf", false));
        i.backends.get_mut("jf").unwrap().missing = true;
        assert!(!needs_compare(&i, "jf", false), "not searched again");
        assert!(!needs_compare(&i, "jf", true));
        // An unwatched item nobody unmarked: only a position, never onto a watched one.
        let mut p = item();
        p.progress_ms = Some(600_000);
        p.backends.insert("jf".into(), known(true, 1));
        assert!(!needs_compare(&p, "jf", false));
        p.backends.insert("jf".into(), known(false, 0));
        assert!(needs_compare(&p, "jf", false));
    }
}

//! A backend's library listing merged into the stored item (docs/RELIABILITY.md, the import
//! lines). A listing is a snapshot, not an event: what a person did is read from how
//! the backend's entry changed since we last saw it (`item.backends[b]`, set by the
//! last import, webhook or push).
//!
//! - **First sight** of the item: it takes a *watched* the backend reports, stamped with
//!   the backend's last-played time (else "never": watched, but with no time to send);
//!   an unwatched entry starts it unwatched, "never", with its resume position.
//! - **A play** on the backend: watched now, and unwatched when last seen, or its play
//!   count went up, or the backend was never seen with the item; stamped with its own
//!   last-played time (else when the fetch started). A moved last-viewed time alone is
//!   not a play: a partial play moves it too.
//! - **An unplay** on the backend (Plex sends no webhook for it): unwatched now and
//!   watched when last seen; stamped with the time the fetch **started**.
//! - **Stale page**: when we learned something about the backend after the fetch started
//!   (a push wrote to it, a webhook came), the page says nothing about play state.
//! - Either flips the item only when strictly newer than its state.
//! - **Resume positions**: an unwatched entry's position we had not seen there, newest
//!   wins by the backend's own time ([`super::resume`]); a server that keeps no time
//!   for a pause (Emby) wins when we last looked at it after the stored position was
//!   taken (it moved since), stamped with the fetch.
//! - **Replaced files**: an entry with another id than the one recorded for the backend
//!   speaks for it only when the recorded one is gone (`recorded_gone`); then it is the
//!   backend's entry from now on, seen for the first time (never an unplay), and export
//!   gives it back its watched.
//! - Duplicates (the same movie twice in one library): only the recorded entry speaks.

use chrono::{DateTime, Utc};

use super::{change_from, confirm, enrich, flip, flip_pushed, item_differs, never};
use super::{new_item, resume, seen, Meta};
use crate::domain::model::{BackendState, ChangeKind, Item, StateChange};
use crate::domain::remote::RemoteItem;
use crate::domain::when;

/// Who and when, for merging one page.
#[derive(Debug, Clone, Copy)]
pub struct Listed<'a> {
    pub user: &'a str,
    pub backend: &'a str,
    /// When the fetch of the page **started**: the stamp of what it shows.
    pub fetched_at: DateTime<Utc>,
}

/// What merging one entry means for the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Unchanged,
    Created,
    /// Play state flipped to `watched`.
    Changed {
        watched: bool,
    },
    /// Bookkeeping only (ids, guids, what the backend holds, a resume position).
    Updated,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub item: Item,
    pub effect: Effect,
    pub change: Option<StateChange>,
}

/// The metadata of a listing entry.
pub fn meta(r: &RemoteItem) -> Meta<'_> {
    Meta {
        guids: &r.guids,
        series_guids: &r.series_guids,
        title: r.title.as_ref(),
        year: r.year,
        series_title: r.series_title.as_ref(),
        season: r.season,
        episode: r.episode,
    }
}

/// What the backend holds, as this entry shows it.
fn observed(r: &RemoteItem, at: DateTime<Utc>) -> BackendState {
    BackendState {
        item_id: Some(r.id.clone()),
        watched: Some(r.watched),
        progress_ms: r.progress_ms.filter(|_| !r.watched),
        seen_at: Some(at),
        pushed_at: None,
        missing: false,
        play_count: r.play_count,
        last_played_at: r.last_played_at,
        unplayed_at: None,
    }
}

/// Merge one listing entry into the stored item (or a new one). Pure.
pub fn merge(
    existing: Option<&Item>,
    r: &RemoteItem,
    ctx: Listed<'_>,
    recorded_gone: bool,
    new_id: impl FnOnce() -> String,
) -> Merged {
    let played_at = r
        .last_played_at
        .filter(|t| when::believable(*t, ctx.fetched_at));
    let Some(old) = existing else {
        let mut item = new_item(new_id(), r.kind, meta(r));
        item.backends
            .insert(ctx.backend.to_string(), observed(r, ctx.fetched_at));
        let mut change = None;
        if r.watched {
            flip(
                &mut item,
                true,
                played_at.unwrap_or_else(never),
                ctx.backend,
            );
            change = Some(change_from(
                &item,
                ctx.user,
                ctx.backend,
                ChangeKind::Watched,
            ));
        } else if let Ok(pos) = resume::usable(r.progress_ms, r.duration_ms) {
            item.progress_ms = Some(pos);
            item.progress_at = played_at;
            change = Some(change_from(
                &item,
                ctx.user,
                ctx.backend,
                ChangeKind::Progress,
            ));
        }
        return Merged {
            item,
            effect: Effect::Created,
            change,
        };
    };
    let mut item = old.clone();
    enrich(&mut item, meta(r));
    let nothing_known = super::nothing_known(&item);
    let mut flipped = None;
    let mut position_moved = false;
    let state = item.backends.entry(ctx.backend.to_string()).or_default();
    let primary = match &state.item_id {
        None => true,
        Some(id) if *id == r.id => true,
        Some(_) if recorded_gone => {
            // The recorded entry is gone (a replaced file): this one is the backend's
            // from now on, seen for the first time.
            *state = BackendState::default();
            true
        }
        Some(_) => false,
    };
    let stale = state.seen_at.is_some_and(|s| s > ctx.fetched_at);
    if primary && !stale {
        let prev = state.clone();
        let mut now = observed(r, ctx.fetched_at);
        now.unplayed_at = prev.unplayed_at;
        now.pushed_at = prev.pushed_at;
        now.seen_at = prev.seen_at;
        *state = now;
        if r.watched {
            let counted_up = matches!((prev.play_count, r.play_count), (Some(a), Some(b)) if b > a);
            // Nobody ever reported a state: the first report of a watched stands.
            let played = nothing_known
                || match prev.watched {
                    None | Some(false) => true,
                    Some(true) => counted_up,
                };
            if played {
                let at = match prev.watched {
                    // Never seen here: only the backend's own time says when.
                    None => played_at,
                    _ => Some(played_at.unwrap_or(ctx.fetched_at)),
                };
                match at {
                    Some(t) if !item.watched && t > item.state_updated_at => {
                        flipped = Some((true, t))
                    }
                    // Nobody ever reported a state: the first report stands.
                    None if nothing_known => flipped = Some((true, never())),
                    // Newest wins: a precise newer play moves the stamp.
                    Some(t) if item.watched && played_at == Some(t) => confirm(&mut item, t),
                    _ => {}
                }
            }
        } else if prev.watched == Some(true) {
            state.unplayed_at = Some(ctx.fetched_at);
            if item.watched && ctx.fetched_at > item.state_updated_at {
                flipped = Some((false, ctx.fetched_at));
            } else if super::has_unplay(&item) {
                // Unmarked here too, after the unplay we hold: a late play older than
                // this one must not win over it.
                confirm(&mut item, ctx.fetched_at);
            }
        }
        if flipped.is_none() && !item.watched && !r.watched {
            if let Ok(pos) = resume::usable(r.progress_ms, r.duration_ms) {
                let unseen = prev
                    .progress_ms
                    .is_none_or(|p| !resume::close_enough(Some(p), pos));
                // When it was taken: the backend's own time if it is not older than our
                // last look there; else, if that last look was after the stored
                // position was taken, this one is newer: stamp it with the fetch.
                let own = played_at.filter(|t| prev.seen_at.is_none_or(|s| *t >= s));
                let at = own.or_else(|| {
                    prev.seen_at
                        .filter(|s| item.progress_at.is_none_or(|p| *s >= p))
                        .map(|_| ctx.fetched_at)
                });
                if unseen && item.progress_ms != Some(pos) && resume::newer(at, item.progress_at) {
                    item.progress_ms = Some(pos);
                    item.progress_at = at;
                    position_moved = true;
                }
            }
        }
    }
    let mut change = None;
    if let Some((watched, at)) = flipped {
        change = Some(flip_pushed(&mut item, watched, at, ctx.user, ctx.backend));
    } else if position_moved {
        change = Some(change_from(
            &item,
            ctx.user,
            ctx.backend,
            ChangeKind::Progress,
        ));
    }
    let effect = match flipped {
        Some((watched, _)) => Effect::Changed { watched },
        None if item_differs(old, &item) => Effect::Updated,
        None => Effect::Unchanged,
    };
    if effect != Effect::Unchanged && primary && !stale {
        seen(&mut item, ctx.backend, ctx.fetched_at);
    }
    Merged {
        item,
        effect,
        change,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::ItemType;
    use crate::domain::sync::test_support::{at, NOW};

    /// A listing's merge of one entry; a new item gets the id "i".
    fn merge(existing: Option<&Item>, r: &RemoteItem, ctx: Listed<'_>) -> Merged {
        super::merge(existing, r, ctx, false, || "i".into())
    }

    fn ctx(backend: &str) -> Listed<'_> {
        Listed {
            user: "ana",
            backend,
            fetched_at: at(NOW),
        }
    }

    /// An item unwatched since 500 s before [`NOW`], last set by `via`.
    fn unwatched_via(via: &str) -> Item {
        let mut item = first("plex", &remote("1", false, None));
        item.watched = false;
        item.state_updated_at = at(NOW - 500);
        item.via = Some(via.into());
        item
    }

    /// Records that jf's entry `j1` was last seen `watched`.
    fn known_on_jf(item: &mut Item, watched: bool) {
        item.backends.insert(
            "jf".into(),
            BackendState {
                item_id: Some("j1".into()),
                watched: Some(watched),
                ..Default::default()
            },
        );
    }

    /// A listing of `backend` fetched `secs` after [`NOW`].
    fn ctx_after(backend: &str, secs: i64) -> Listed<'_> {
        Listed {
            fetched_at: at(NOW + secs),
            ..ctx(backend)
        }
    }

    fn remote(id: &str, watched: bool, played: Option<i64>) -> RemoteItem {
        let mut r = RemoteItem::new(id, ItemType::Movie);
        r.title = Some("The Film".into());
        r.guids.insert("imdb".into(), "tt0111161".into());
        r.watched = watched;
        r.last_played_at = played.map(at);
        r
    }

    fn first(backend: &str, r: &RemoteItem) -> Item {
        let mut m = super::merge(None, r, ctx(backend), false, || "item-1".into());
        m.item.version = 1;
        m.item
    }

    #[test]
    fn first_seen_takes_reported_state() {
        let m = merge(None, &remote("1", true, Some(NOW - 100)), ctx("plex"));
        assert_eq!(m.effect, Effect::Created);
        assert!(m.item.watched);
        assert_eq!(m.item.state_updated_at, at(NOW - 100));
        assert_eq!(m.item.via.as_deref(), Some("plex"));
        assert_eq!(m.item.backends["plex"].item_id.as_deref(), Some("1"));
        assert_eq!(m.item.backends["plex"].watched, Some(true));
        let c = m.change.expect("a new watched item is pushed");
        assert_eq!((c.watched, c.origin.as_deref()), (true, Some("plex")));

        let m = merge(None, &remote("1", false, None), ctx("plex"));
        assert!(!m.item.watched);
        assert_eq!(m.item.state_updated_at, never());
        assert_eq!(m.change, None, "unwatched is what every backend assumes");

        let m = merge(None, &remote("1", true, None), ctx("plex"));
        assert!(m.item.watched, "watched without a time");
        assert_eq!(m.item.state_updated_at, never());
        let m = merge(None, &remote("1", true, Some(NOW + 3600)), ctx("plex"));
        assert_eq!(
            m.item.state_updated_at,
            never(),
            "a future time is not believed"
        );
    }

    #[test]
    fn unchanged_is_not_written() {
        let item = first("plex", &remote("1", true, Some(NOW - 100)));
        let later = ctx_after("plex", 3600);
        let m = merge(Some(&item), &remote("1", true, Some(NOW - 100)), later);
        assert_eq!(m.effect, Effect::Unchanged);
        assert_eq!(m.item, item, "not even a seen_at moves");
    }

    #[test]
    fn newer_play_flips_older_is_recorded_only() {
        let item = unwatched_via("emby");
        let m = merge(Some(&item), &remote("j1", true, Some(NOW - 10)), ctx("jf"));
        assert_eq!(m.effect, Effect::Changed { watched: true });
        assert_eq!(m.item.state_updated_at, at(NOW - 10));
        assert_eq!(m.item.via.as_deref(), Some("jf"));
        assert_eq!(m.change.as_ref().unwrap().origin.as_deref(), Some("jf"));

        let m = merge(Some(&item), &remote("j1", true, Some(NOW - 900)), ctx("jf"));
        assert_eq!(
            m.effect,
            Effect::Updated,
            "stale play: only jf's id and state recorded"
        );
        assert!(!m.item.watched);
        assert_eq!(m.item.backends["jf"].watched, Some(true));
        assert_eq!(m.change, None);
    }

    #[test]
    fn unplay_is_a_transition_on_the_same_backend() {
        let item = first("plex", &remote("1", true, Some(NOW - 1000)));
        // Plex had it watched at the last import; now it says unwatched.
        let m = merge(Some(&item), &remote("1", false, None), ctx("plex"));
        assert_eq!(m.effect, Effect::Changed { watched: false });
        assert!(!m.item.watched);
        assert_eq!(
            m.item.state_updated_at,
            at(NOW),
            "stamped with the import time"
        );
        let c = m.change.unwrap();
        assert!(!c.watched);
        assert_eq!(c.origin.as_deref(), Some("plex"));

        // A backend that simply never had it watched is not an unplay.
        let m = merge(Some(&item), &remote("e1", false, None), ctx("emby"));
        assert_eq!(m.effect, Effect::Updated);
        assert!(m.item.watched);
        assert_eq!(m.change, None);
        let mut seen_unwatched = m.item.clone();
        seen_unwatched.version = 2;
        let m = merge(
            Some(&seen_unwatched),
            &remote("e1", false, None),
            ctx("emby"),
        );
        assert_eq!(
            m.effect,
            Effect::Unchanged,
            "unwatched twice is no transition"
        );
    }

    #[test]
    fn no_ping_pong_after_an_unplay() {
        // Plex unplayed (import), push marked jf unplayed and recorded it; jf still
        // reports its old play time: older than the unplay, so nothing flips back.
        let mut item = first("plex", &remote("1", true, Some(NOW - 1000)));
        let m = merge(Some(&item), &remote("1", false, None), ctx("plex"));
        item = m.item;
        known_on_jf(&mut item, true);
        // jf's unmark failed, so jf still says watched with its old date.
        let later = ctx_after("jf", 60);
        let m = merge(Some(&item), &remote("j1", true, Some(NOW - 1000)), later);
        assert!(!m.item.watched, "an old play never beats a newer unplay");
        assert_eq!(m.change, None);
        // A newer last-viewed time alone is a partial play, not a play.
        item.backends.get_mut("jf").unwrap().play_count = Some(1);
        let mut partial = remote("j1", true, Some(NOW + 30));
        partial.play_count = Some(1);
        let m = merge(Some(&item), &partial, later);
        assert!(!m.item.watched, "a moved last-viewed time is not a play");
        assert_eq!(m.change, None);
        // A genuinely new play on jf (its play count went up) does.
        let mut replay = partial.clone();
        replay.play_count = Some(2);
        let m = merge(Some(&item), &replay, later);
        assert_eq!(m.effect, Effect::Changed { watched: true });
    }

    #[test]
    fn timeless_play_counts_only_as_observed_transition() {
        let mut item = unwatched_via("plex");
        // jf seen unwatched before, watched now without a date: played since.
        known_on_jf(&mut item, false);
        let m = merge(Some(&item), &remote("j1", true, None), ctx("jf"));
        assert_eq!(m.effect, Effect::Changed { watched: true });
        assert_eq!(m.item.state_updated_at, at(NOW));
        // First sight of emby, watched without a date, item has a real state: no flip.
        let m = merge(Some(&item), &remote("e1", true, None), ctx("emby"));
        assert_eq!(m.effect, Effect::Updated);
        assert!(!m.item.watched);
    }

    #[test]
    fn duplicates_do_not_speak_for_play_state() {
        let item = first("plex", &remote("1", true, Some(NOW - 100)));
        let m = merge(Some(&item), &remote("2", false, None), ctx("plex"));
        assert_eq!(m.effect, Effect::Unchanged);
        assert!(m.item.watched);
    }

    #[test]
    fn enrichment_adds_never_replaces() {
        let item = first("plex", &remote("1", false, None));
        let mut r = remote("e1", false, None);
        r.guids.insert("imdb".into(), "tt9999999".into());
        r.guids.insert("tmdb".into(), "278".into());
        r.title = Some("Other title".into());
        let m = merge(Some(&item), &r, ctx("emby"));
        assert_eq!(m.item.guids["imdb"], "tt0111161");
        assert_eq!(m.item.guids["tmdb"], "278");
        assert_eq!(m.item.title.as_deref(), Some("The Film"));
        assert_eq!(m.item.backends["emby"].item_id.as_deref(), Some("e1"));
    }

    #[test]
    fn a_page_older_than_what_we_know_says_nothing_about_play_state() {
        // The page was fetched at NOW; a push marked the item played on plex at NOW + 5
        // and recorded it; the (older) page still lists it unwatched.
        let mut item = first("plex", &remote("1", false, None));
        item.watched = true;
        item.state_updated_at = at(NOW + 5);
        let s = item.backends.get_mut("plex").unwrap();
        s.watched = Some(true);
        s.seen_at = Some(at(NOW + 5));
        let m = merge(Some(&item), &remote("1", false, None), ctx("plex"));
        assert!(m.item.watched, "a stale page invents no unplay");
        assert_eq!(m.effect, Effect::Unchanged);
    }

    #[test]
    fn unplay_is_stamped_when_the_fetch_started() {
        let item = first("plex", &remote("1", true, Some(NOW - 1000)));
        let started = ctx_after("plex", 7);
        let m = merge(Some(&item), &remote("1", false, None), started);
        assert_eq!(m.item.state_updated_at, at(NOW + 7));
        assert_eq!(m.item.unplayed_at, Some(at(NOW + 7)));
        assert_eq!(m.item.backends["plex"].unplayed_at, Some(at(NOW + 7)));
    }

    #[test]
    fn a_second_unplay_moves_the_stamp_so_a_late_older_play_loses() {
        // Watched on plex, unmarked on jellyfin at NOW - 20 (the item holds that unplay);
        // then unmarked on plex too, seen by this import started at NOW.
        let mut item = first("plex", &remote("1", true, Some(NOW - 1000)));
        super::super::flip(&mut item, false, at(NOW - 20), "jellyfin");
        let m = merge(Some(&item), &remote("1", false, None), ctx("plex"));
        assert_eq!(m.change, None, "already unwatched: nothing to push");
        assert_eq!(m.item.state_updated_at, at(NOW));
        assert_eq!(m.item.unplayed_at, Some(at(NOW)));
        // Plex's own scrobble of NOW - 10 arriving late is older than that unplay.
        assert!(m.item.state_updated_at > at(NOW - 10));
    }

    #[test]
    fn a_replaced_file_is_the_backends_entry_once_the_old_one_is_gone() {
        let item = first("jf", &remote("old", true, Some(NOW - 1000)));
        // Same movie, new id, no play state: while the old id exists it is a duplicate.
        let dup = super::merge(
            Some(&item),
            &remote("new", false, None),
            ctx("jf"),
            false,
            || "x".into(),
        );
        assert_eq!(dup.effect, Effect::Unchanged);
        // The old id is gone: the new entry is jf's, seen for the first time; no unplay.
        let m = super::merge(
            Some(&item),
            &remote("new", false, None),
            ctx("jf"),
            true,
            || "x".into(),
        );
        assert!(m.item.watched, "a replaced file is no unplay");
        assert_eq!(m.change, None);
        let jf = &m.item.backends["jf"];
        assert_eq!(jf.item_id.as_deref(), Some("new"));
        assert_eq!(
            jf.watched,
            Some(false),
            "export will give it back its watched"
        );
        assert!(crate::domain::sync::target::needs_compare(
            &m.item, "jf", false
        ));
    }

    #[test]
    fn listed_positions_newest_wins_and_never_on_watched() {
        let item = first("plex", &remote("1", false, None));
        let mut paused = remote("j1", false, Some(NOW - 50));
        paused.progress_ms = Some(1_800_000);
        let m = merge(Some(&item), &paused, ctx("jf"));
        assert_eq!(m.item.progress_ms, Some(1_800_000));
        assert_eq!(m.item.progress_at, Some(at(NOW - 50)));
        assert_eq!(
            m.change.as_ref().map(|c| c.kind),
            Some(ChangeKind::Progress)
        );
        // An older position listed on another backend loses.
        let mut older = remote("e1", false, Some(NOW - 500));
        older.progress_ms = Some(600_000);
        let m2 = merge(Some(&m.item), &older, ctx("emby"));
        assert_eq!(m2.item.progress_ms, Some(1_800_000));
        assert_eq!(m2.change, None);
        // Listed again unchanged: no write.
        let mut again = m.item.clone();
        again.version = 2;
        let m3 = merge(Some(&again), &paused, ctx("jf"));
        assert_eq!(m3.effect, Effect::Unchanged);
        // A watched item keeps no position.
        let w = first("plex", &remote("1", true, Some(NOW - 10)));
        let m4 = merge(Some(&w), &paused, ctx("jf"));
        assert_eq!(m4.item.progress_ms, None);
    }

    #[test]
    fn a_watched_listed_for_an_item_with_no_state_yet_stands() {
        // A webhook recorded jf as watched (no play count) while the item has no
        // play state at all: the listing's watched is the first report, and stands.
        let mut item = first("plex", &remote("1", false, None));
        known_on_jf(&mut item, true);
        let mut r = remote("j1", true, Some(NOW - 30));
        r.play_count = Some(1);
        let m = merge(Some(&item), &r, ctx("jf"));
        assert_eq!(m.effect, Effect::Changed { watched: true });
        assert_eq!(m.item.state_updated_at, at(NOW - 30));
    }
}

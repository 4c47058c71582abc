//! A webhook event merged into the stored item (docs/RELIABILITY.md, "The rules, one place"): the first lines of the rules.
//!
//! - `played`/`unplayed` flip `watched` only when strictly newer than `state_updated_at`;
//!   an older one is `stale`, the same state again is `same state` (a newer report of it
//!   moves the stamp, so a late older event cannot flip it back).
//! - Progress never flips `watched` and never makes an unplay: it keeps the newest
//!   usable position of an unwatched item ([`super::resume`]), pushed on pause or stop.
//! - `added` and events without a user enrich the item and touch no play state.
//! - **First sight**: a new item takes a *watched* its payload reports (a play event,
//!   or `played: true` on any event), stamped with the event time; an unwatched or
//!   missing report starts it unwatched stamped "never", and nothing is pushed. A
//!   person's explicit unplay is an unplay, on first sight too.

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};

use super::{
    change_from, confirm, enrich, flip, flip_pushed, item_differs, new_item, nothing_known, resume,
    seen, Context, Decision, Meta, NoChange,
};
use crate::domain::model::{Action, BackendState, ChangeKind, Event, EventItem, Item};
use crate::domain::when;

/// Whether a progress event is one worth pushing (pause or stop), rather than a tick
/// of an ongoing playback: the position is kept either way. The parser decides it from
/// its server's event names; the rules never look at them.
pub fn is_pause_or_stop(event: &Event) -> bool {
    event.paused
}

/// How late a webhook may arrive. A report without a time of its own is dated when
/// received, yet it may have been sent before a push changed its backend seconds
/// earlier: within this window after a push it says nothing about what the backend
/// holds now (the next import reads that). A play or unplay it reports still counts as
/// the person's action; only the backend's recorded state waits.
pub const DELIVERY_LAG: TimeDelta = TimeDelta::seconds(30);

/// Whether an event of time `t` is news about the backend as we last saw it: not older
/// than our last look, and, without a time of its own, not sent before our last push
/// there. A watched it reports with the backend's own last play (`watched_since`) is
/// after the push when that play is (a play after it moves it, to the second); other
/// timeless reports when they came more than [`DELIVERY_LAG`] after it.
fn fresh(
    known: &BackendState,
    t: DateTime<Utc>,
    timed: bool,
    watched_since: Option<DateTime<Utc>>,
) -> bool {
    let after_push = match (known.pushed_at, watched_since) {
        (None, _) => true,
        _ if timed => true,
        (Some(push), Some(play)) => play >= push.trunc_subsecs(0),
        (Some(push), None) => t - DELIVERY_LAG >= push,
    };
    known.seen_at.is_none_or(|s| t >= s) && after_push
}

fn later(a: Option<DateTime<Utc>>, b: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(a.map_or(b, |a| a.max(b)))
}

/// Merge an event into the stored item (or create it). `new_id` names a new item.
pub fn decide(
    existing: Option<&Item>,
    event: &Event,
    ev: &EventItem,
    ctx: Context<'_>,
    new_id: impl FnOnce() -> String,
) -> Decision {
    let own = when::own_time(event.occurred_at, ctx.received_at);
    let t = own.unwrap_or(ctx.received_at);
    let timed = own.is_some();
    let last_played = when::own_time(ev.last_played_at, ctx.received_at);
    // Without a user id we cannot tell whose play state this is: metadata only.
    let action = if event.user_id.is_none() {
        Action::Added
    } else {
        event.action
    };
    let first = existing.is_none();
    let mut item = match existing {
        Some(old) => {
            let mut item = old.clone();
            enrich(&mut item, Meta::from(ev));
            item
        }
        None => new_item(new_id(), ev.item_type(), Meta::from(ev)),
    };
    let no_state = nothing_known(&item);
    let remote = item.backends.entry(ctx.backend.to_string()).or_default();
    if remote
        .item_id
        .as_ref()
        .is_some_and(|id| *id != ev.backend_item_id)
    {
        // Another entry of this backend (a replaced file): what we knew, and what we
        // pushed, was about the old one. This one is seen for the first time.
        *remote = BackendState::default();
    }
    remote.item_id = Some(ev.backend_item_id.clone());
    remote.missing = false;

    let mut no_change = None;
    let mut detail = None;
    let mut change = None;
    match action {
        Action::Played | Action::Unplayed => {
            let want = action == Action::Played;
            // What the backend holds, unless we know something newer of it (a late
            // webhook older than our last push there says nothing about it now).
            if fresh(remote, t, timed, last_played.filter(|_| want)) {
                remote.watched = Some(want);
                // An unmark resets the server's play count; after a play we do not know
                // it. A count kept from before would make the next comparison lie.
                remote.play_count = (!want).then_some(0);
            }
            if want {
                remote.last_played_at = later(remote.last_played_at, t);
            } else {
                remote.unplayed_at = later(remote.unplayed_at, t);
            }
            // A known item that is unwatched only because nobody reported a play holds
            // no evidence: a person's unplay of it is news even though `watched` stays
            // false. (On first sight an unwatched report is no evidence: "never".)
            let first_unplay = !first && !want && !item.watched && item.unplayed_at.is_none();
            if first && !want {
                // A person's unplay of an item we never saw: kept as evidence (older
                // plays elsewhere lose to it, export carries it), but nothing is pushed
                // now: it is not known to differ anywhere (docs/RELIABILITY.md, "first sight").
                flip(&mut item, false, t, ctx.backend);
                no_change = Some(NoChange::SameState);
            } else if first || first_unplay || (item.watched != want && t > item.state_updated_at) {
                change = Some(flip_pushed(&mut item, want, t, ctx.user, ctx.backend));
            } else if item.watched == want {
                no_change = Some(NoChange::SameState);
                confirm(&mut item, t);
            } else {
                no_change = Some(NoChange::Stale);
                detail = Some(format!(
                    "event time {} is not newer than the stored state ({})",
                    t.to_rfc3339(),
                    item.state_updated_at.to_rfc3339()
                ));
            }
        }
        Action::Progress => {
            if let Some(played) = ev
                .played
                .filter(|p| fresh(remote, t, timed, last_played.filter(|_| *p)))
            {
                remote.watched = Some(played);
            }
            if (first || no_state) && ev.played == Some(true) {
                // viewCount > 0 (or Played: true) on first sight of a play state: the
                // item is watched (the first report stands, as in a listing).
                flip(&mut item, true, t, ctx.backend);
                change = Some(change_from(
                    &item,
                    ctx.user,
                    ctx.backend,
                    ChangeKind::Watched,
                ));
            } else if item.watched {
                no_change = Some(NoChange::SameState);
                detail = Some("item is watched: progress never changes it".into());
            } else {
                match resume::usable(ev.progress_ms, ev.duration_ms) {
                    Err(why) => {
                        no_change = Some(if first && ev.played.is_none() {
                            NoChange::MetadataOnly
                        } else {
                            NoChange::SameState
                        });
                        detail = Some(why);
                    }
                    Ok(pos) => {
                        remote.progress_ms = Some(pos);
                        if !resume::newer(Some(t), item.progress_at) {
                            no_change = Some(NoChange::Stale);
                            detail = Some(format!(
                                "position of {} is older than the stored one",
                                t.to_rfc3339()
                            ));
                        } else if item.progress_ms == Some(pos) {
                            no_change = Some(NoChange::SameState);
                            // Newest wins: a later report of the same position dates it.
                            item.progress_at = Some(t);
                        } else {
                            item.progress_ms = Some(pos);
                            item.progress_at = Some(t);
                            if is_pause_or_stop(event) {
                                change = Some(change_from(
                                    &item,
                                    ctx.user,
                                    ctx.backend,
                                    ChangeKind::Progress,
                                ));
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
    let write = first || existing.is_some_and(|old| item_differs(old, &item));
    if write {
        seen(&mut item, ctx.backend, ctx.received_at);
    }
    Decision {
        item,
        write,
        no_change,
        detail,
        change,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{BackendState, Source};
    use crate::domain::sync::never;
    use crate::domain::sync::test_support::{self, at, NOW};

    fn ctx(backend: &str) -> Context<'_> {
        Context {
            user: "ana",
            backend,
            received_at: at(NOW),
        }
    }

    fn ev_item() -> EventItem {
        EventItem {
            title: Some("The Film".into()),
            year: Some(1994),
            duration_ms: Some(8_000_000),
            ..test_support::ev_item()
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
            // What the parsers say of their servers' pause and stop events.
            paused: matches!(raw, "media.pause" | "media.stop" | "PlaybackStop"),
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
        let d1 = run(Some(&stored(true, NOW - 200)), &unplayed(NOW - 100), "emby");
        assert!(d1.change.is_some());
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
    fn first_seen_pause_without_viewcount_is_no_evidence_and_never_an_unplay() {
        // The reported bug: Plex omits a zero viewCount, so a first-seen pause reads
        // `played: Some(false)`. That is no unplay: "never" stamp, no unplay mark.
        let mut e = event(Action::Progress, "media.pause", Some(NOW - 5));
        e.item.as_mut().unwrap().played = Some(false);
        e.item.as_mut().unwrap().progress_ms = Some(1_200_000);
        let d = run(None, &e, "plex");
        assert!(!d.item.watched);
        assert_eq!(d.item.state_updated_at, never());
        assert_eq!(d.item.unplayed_at, None);
        assert!(!crate::domain::sync::has_unplay(&d.item));
        let c = d.change.expect("the resume point travels");
        assert_eq!(c.kind, ChangeKind::Progress);
    }

    #[test]
    fn first_seen_unplay_is_kept_as_evidence_but_not_pushed() {
        let d = run(
            None,
            &event(Action::Unplayed, "item.markunplayed", Some(NOW - 5)),
            "emby",
        );
        assert!(!d.item.watched);
        assert_eq!(d.item.state_updated_at, at(NOW - 5));
        assert!(crate::domain::sync::has_unplay(&d.item));
        assert_eq!(d.no_change, Some(NoChange::SameState));
        assert_eq!(d.change, None, "nothing is pushed for it now");
        assert_eq!(d.item.backends["emby"].unplayed_at, Some(at(NOW - 5)));
        // An older play elsewhere loses to it.
        let late = run(
            Some(&d.item),
            &event(Action::Played, "media.scrobble", Some(NOW - 50)),
            "plex",
        );
        assert_eq!(late.no_change, Some(NoChange::Stale));
    }

    #[test]
    fn an_unplay_of_an_item_nobody_reported_is_news() {
        let mut e = event(Action::Progress, "media.pause", Some(NOW - 50));
        e.item.as_mut().unwrap().progress_ms = Some(1_200_000);
        let d1 = run(None, &e, "plex");
        let d2 = run(
            Some(&d1.item),
            &event(Action::Unplayed, "item.markunplayed", Some(NOW - 5)),
            "emby",
        );
        assert_eq!(d2.no_change, None);
        assert!(crate::domain::sync::has_unplay(&d2.item));
        assert_eq!(d2.item.progress_ms, None, "an unplay resets the position");
        assert!(d2.change.is_some());
        // The same unplay again is the same state.
        let d3 = run(
            Some(&d2.item),
            &event(Action::Unplayed, "item.markunplayed", Some(NOW - 5)),
            "emby",
        );
        assert_eq!(d3.no_change, Some(NoChange::SameState));
        assert!(d3.change.is_none());
    }

    #[test]
    fn a_late_older_pause_does_not_overwrite_a_newer_position() {
        let old = stored(false, NOW - 1000);
        let pause = |pos, t| {
            let mut e = event(Action::Progress, "media.pause", Some(t));
            e.item.as_mut().unwrap().progress_ms = Some(pos);
            e
        };
        let d1 = run(Some(&old), &pause(2_000_000, NOW - 10), "plex");
        assert_eq!(d1.item.progress_ms, Some(2_000_000));
        let d2 = run(Some(&d1.item), &pause(900_000, NOW - 100), "jf");
        assert_eq!(d2.no_change, Some(NoChange::Stale));
        assert_eq!(d2.item.progress_ms, Some(2_000_000));
        assert!(d2.change.is_none());
    }

    #[test]
    fn progress_with_viewcount_on_a_known_unwatched_item_never_plays_it() {
        let mut old = stored(false, NOW - 100);
        old.unplayed_at = Some(at(NOW - 100));
        let mut e = event(Action::Progress, "media.pause", Some(NOW));
        e.item.as_mut().unwrap().played = Some(true);
        e.item.as_mut().unwrap().progress_ms = Some(600_000);
        let d = run(Some(&old), &e, "plex");
        assert!(!d.item.watched, "only played events flip a known item");
        assert!(crate::domain::sync::has_unplay(&d.item));
    }

    #[test]
    fn a_late_stale_webhook_never_rewrites_what_the_backend_holds() {
        // Push unmarked it on emby at NOW - 10 (and recorded that); emby's own older
        // "played" webhook arrives late.
        let mut old = stored(false, NOW - 20);
        old.unplayed_at = Some(at(NOW - 20));
        old.backends.insert(
            "emby".into(),
            BackendState {
                item_id: Some("42".into()),
                watched: Some(false),
                seen_at: Some(at(NOW - 10)),
                ..Default::default()
            },
        );
        let d = run(
            Some(&old),
            &event(Action::Played, "playback.stop", Some(NOW - 30)),
            "emby",
        );
        assert_eq!(d.no_change, Some(NoChange::Stale));
        assert_eq!(d.item.backends["emby"].watched, Some(false));
    }

    #[test]
    fn a_late_timeless_report_never_rewrites_what_a_push_just_wrote() {
        // Push unmarked it on plex 3 s ago (and recorded that); Plex's stop of the play
        // before, which carries no time and still says "watched", arrives now.
        let mut old = stored(false, NOW - 5);
        old.unplayed_at = Some(at(NOW - 5));
        old.backends.insert(
            "plex".into(),
            BackendState {
                item_id: Some("42".into()),
                watched: Some(false),
                play_count: Some(0),
                seen_at: Some(at(NOW - 3)),
                pushed_at: Some(at(NOW - 3)),
                ..Default::default()
            },
        );
        let mut e = event(Action::Progress, "media.stop", None);
        e.item.as_mut().unwrap().played = Some(true);
        let d = run(Some(&old), &e, "plex");
        assert!(!d.item.watched);
        assert_eq!(
            d.item.backends["plex"].watched,
            Some(false),
            "late: says nothing"
        );
        // The same report well after our push there is news about the backend.
        old.backends.get_mut("plex").unwrap().pushed_at = Some(at(NOW) - DELIVERY_LAG);
        let d = run(Some(&old), &e, "plex");
        assert!(!d.item.watched, "progress never plays a known item");
        assert_eq!(d.item.backends["plex"].watched, Some(true));
        // So is one soon after the backend's own last report (no push in between).
        old.backends.get_mut("plex").unwrap().pushed_at = None;
        let d = run(Some(&old), &e, "plex");
        assert_eq!(d.item.backends["plex"].watched, Some(true));
        // A watched reported with Plex's own last play: before the push, it predates
        // the push (seed 3010); after it, the person played again since (seed 3007).
        old.backends.get_mut("plex").unwrap().pushed_at = Some(at(NOW - 3));
        e.item.as_mut().unwrap().last_played_at = Some(at(NOW - 4));
        let d = run(Some(&old), &e, "plex");
        assert_eq!(
            d.item.backends["plex"].watched,
            Some(false),
            "played before"
        );
        e.item.as_mut().unwrap().last_played_at = Some(at(NOW - 2));
        let d = run(Some(&old), &e, "plex");
        assert_eq!(d.item.backends["plex"].watched, Some(true), "played since");
        // A report with a time of its own is judged by that time.
        let mut timed = event(Action::Progress, "media.stop", Some(NOW - 1));
        timed.item.as_mut().unwrap().played = Some(true);
        let d = run(Some(&old), &timed, "plex");
        assert_eq!(d.item.backends["plex"].watched, Some(true));
    }

    #[test]
    fn a_report_from_a_new_entry_forgets_what_the_old_one_held() {
        // Plex replaced the file: a new ratingKey with no play state. What we knew (and
        // pushed, seconds ago) was about the old entry.
        let mut old = stored(true, NOW - 50);
        old.backends.insert(
            "plex".into(),
            BackendState {
                item_id: Some("41".into()),
                watched: Some(true),
                play_count: Some(2),
                seen_at: Some(at(NOW - 3)),
                pushed_at: Some(at(NOW - 3)),
                ..Default::default()
            },
        );
        let mut e = event(Action::Progress, "media.pause", None);
        e.item.as_mut().unwrap().played = Some(false);
        e.item.as_mut().unwrap().progress_ms = Some(600_000);
        let d = run(Some(&old), &e, "plex");
        let plex = &d.item.backends["plex"];
        assert_eq!(plex.item_id.as_deref(), Some("42"));
        assert_eq!((plex.watched, plex.play_count), (Some(false), None));
        assert_eq!(plex.pushed_at, None);
        assert!(d.item.watched, "a new entry's state is no unplay");
        assert_eq!(d.change, None);
    }

    #[test]
    fn a_reported_watched_on_an_item_with_no_state_yet_stands() {
        // Known (an import listed it unwatched), no state ever reported; a pause
        // whose payload says Played: true is the first report of a play state.
        let d1 = run(None, &event(Action::Added, "library.new", None), "plex");
        let mut e = event(Action::Progress, "PlaybackProgress", Some(NOW - 5));
        e.item.as_mut().unwrap().played = Some(true);
        e.item.as_mut().unwrap().progress_ms = Some(600_000);
        let d = run(Some(&d1.item), &e, "jf");
        assert!(d.item.watched);
        assert_eq!(d.change.map(|c| c.kind), Some(ChangeKind::Watched));
    }

    #[test]
    fn a_webhook_play_or_unplay_forgets_the_backends_old_play_count() {
        let mut old = stored(true, NOW - 100);
        old.backends.get_mut("plex").unwrap().play_count = Some(3);
        let d = run(
            Some(&old),
            &event(Action::Unplayed, "item.markunplayed", Some(NOW)),
            "plex",
        );
        assert_eq!(d.item.backends["plex"].play_count, Some(0));
        let d = run(
            Some(&d.item),
            &event(Action::Played, "media.scrobble", Some(NOW + 5)),
            "plex",
        );
        assert_eq!(d.item.backends["plex"].play_count, None);
    }
}

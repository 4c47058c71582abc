//! Property tests of the rules under reordering and duplicates (docs/RELIABILITY.md, "The rules, one place"): webhooks
//! arrive late, twice, out of order; wherever the events' own times order them, the
//! item ends as if they had come in order, and progress never touches play state.

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;

use super::{decide, has_unplay, Context};
use crate::domain::model::{Action, ChangeKind, Event, EventItem, Guids, Item, ItemType, Source};

const T0: i64 = 1_700_000_000;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Played,
    Unplayed,
    Pause(u64),
}

fn at(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(s, 0).single().unwrap()
}

/// One event of a person's history: what, on which server, at which second.
fn event(kind: Kind, source: Source, t: i64) -> Event {
    let mut guids = Guids::new();
    guids.insert("imdb".into(), "tt0111161".into());
    let (action, raw, progress) = match kind {
        Kind::Played => (Action::Played, "played", None),
        Kind::Unplayed => (Action::Unplayed, "unplayed", None),
        Kind::Pause(p) => (Action::Progress, "media.pause", Some(p)),
    };
    Event {
        source,
        server_id: Some("srv".into()),
        user_id: Some("u".into()),
        action,
        raw_event: raw.into(),
        occurred_at: Some(at(t)),
        paused: true,
        item: Some(EventItem {
            kind: Some(ItemType::Movie),
            backend_item_id: format!("{source}-1"),
            guids,
            progress_ms: progress,
            duration_ms: Some(8_000_000),
            ..Default::default()
        }),
    }
}

/// The item as an earlier import left it: known, with a state from before every event.
fn known(watched: bool) -> Item {
    let seed = event(Kind::Played, Source::Plex, T0);
    let ctx = Context {
        user: "ana",
        backend: "plex",
        received_at: at(T0),
    };
    let mut item = decide(None, &seed, seed.item.as_ref().unwrap(), ctx, || {
        "item".into()
    })
    .item;
    if !watched {
        super::flip(&mut item, false, at(T0), "emby");
    }
    item
}

/// Deliver events one by one to an item kept in memory, checking on every step that
/// a progress event neither flips `watched` nor makes an unplay.
fn deliver(seed: Option<Item>, events: &[Event]) -> Option<Item> {
    let mut item: Option<Item> = seed;
    for e in events {
        let backend = e.source.as_str();
        let ctx = Context {
            user: "ana",
            backend,
            received_at: at(T0 + 10_000),
        };
        let ev = e.item.clone().unwrap();
        let before = item.clone();
        let d = decide(item.as_ref(), e, &ev, ctx, || "item".into());
        if e.action == Action::Progress {
            if let Some(b) = &before {
                assert_eq!(d.item.watched, b.watched, "progress flipped watched");
                assert_eq!(
                    has_unplay(&d.item),
                    has_unplay(b),
                    "progress made an unplay"
                );
            }
            assert!(
                d.change
                    .as_ref()
                    .is_none_or(|c| c.kind == ChangeKind::Progress),
                "progress pushed play state"
            );
        }
        if d.write {
            item = Some(d.item);
        }
    }
    item
}

fn sources() -> impl Strategy<Value = Source> {
    prop_oneof![
        Just(Source::Plex),
        Just(Source::Jellyfin),
        Just(Source::Emby),
        Just(Source::Tautulli)
    ]
}

fn kinds() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Played),
        Just(Kind::Unplayed),
        (60_000u64..7_000_000).prop_map(Kind::Pause)
    ]
}

/// A history: distinct times at least a second apart, in order.
fn history(kinds: impl Strategy<Value = Kind>) -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec((kinds, sources(), 1i64..600), 1..12).prop_map(|steps| {
        let mut t = T0;
        steps
            .into_iter()
            .map(|(k, s, gap)| {
                t += gap;
                event(k, s, t)
            })
            .collect()
    })
}

/// A delivery: the history shuffled, some events twice.
fn shuffled(events: Vec<Event>) -> impl Strategy<Value = (Vec<Event>, Vec<Event>)> {
    let n = events.len();
    (Just(events.clone()), prop::collection::vec(0..n, 0..n + 1)).prop_flat_map(|(events, dups)| {
        let mut all = events.clone();
        all.extend(dups.into_iter().map(|i| events[i].clone()));
        (Just(events), Just(all).prop_shuffle())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn play_state_ends_as_in_order_whatever_the_delivery(
        (in_order, delivered) in history(kinds()).prop_flat_map(shuffled),
        watched in any::<bool>(),
    ) {
        let want = deliver(Some(known(watched)), &in_order);
        let got = deliver(Some(known(watched)), &delivered);
        let (want, got) = (want.unwrap(), got.unwrap());
        prop_assert_eq!(got.watched, want.watched);
        prop_assert_eq!(got.state_updated_at, want.state_updated_at);
        prop_assert_eq!(has_unplay(&got), has_unplay(&want));
    }

    #[test]
    fn the_newest_pause_wins_whatever_the_delivery(
        (in_order, delivered) in history((60_000u64..7_000_000).prop_map(Kind::Pause))
            .prop_flat_map(shuffled)
    ) {
        let want = deliver(None, &in_order).unwrap();
        let got = deliver(None, &delivered).unwrap();
        prop_assert!(!got.watched);
        prop_assert_eq!(got.progress_ms, want.progress_ms);
        prop_assert_eq!(got.progress_ms, in_order.last().unwrap().item.as_ref().unwrap().progress_ms);
    }
}

//! Emby webhooks: what each event means (DESIGN 3's table), read into an [`Event`].
//!
//! Emby sends one JSON document (as `application/json` from 4.9, and from some 4.8
//! builds; older servers put it in the form field `data`, already taken off here). It is
//! read into typed structs that borrow their strings from the body; the many fields we
//! do not use (ExternalUrls, Studios, image tags, the session) are skipped unread. Field
//! values are read leniently ([`Scalar`]) so a number sent as a string does not fail the
//! whole webhook.
//!
//! Event mapping:
//!
//! | Event | action |
//! |---|---|
//! | `item.markplayed`, `playback.scrobble` | played |
//! | `playback.stop` with `PlaybackInfo.PlayedToCompletion: true` | played |
//! | `item.markunplayed` | unplayed |
//! | `playback.start`, `.pause`, `.unpause`, `.stop` | progress (`PlaybackInfo.PositionTicks` / 10,000 ms) |
//! | `library.new` | added (no user, play state not reported) |
//! | `system.notificationtest` | test (no item, no user) |
//! | `user.*`, `item.rate`, anything else | ignored |
//!
//! Only `Item.Type` `Movie` and `Episode` are synced.
//!
//! Times: for a `played` event `occurred_at` is `Item.UserData.LastPlayedDate` when the
//! payload has it (DESIGN 4 names it as Emby's event time), else the top-level `Date`
//! (when the notification was sent). Every other event, `unplayed` included, uses
//! `Date`: after "mark unplayed" `LastPlayedDate` still names the earlier viewing, and
//! stamping the unplay with it would make it look older than that viewing (stale).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize as DeriveDeserialize;

use crate::adapters::media::jellyfin::webhook::lenient::{self, Scalar};
use crate::adapters::media::{json_error, ParseError};
use crate::domain::guid;
use crate::domain::model::{Action, Event, EventItem, Guids, ItemType, Parsed, Source};
use crate::domain::when;

const SOURCE: Source = Source::Emby;

/// Emby counts time in ticks of 100 ns: 10,000 ticks per millisecond.
const TICKS_PER_MS: u64 = 10_000;

pub fn parse(json: &[u8], received_at: DateTime<Utc>) -> Result<Parsed, ParseError> {
    // The payload's own time is reported as is; the rules compare it to `received_at`.
    let _ = received_at;
    let json = lenient::object_body(SOURCE, json)?;
    let doc: Doc = serde_json::from_slice(json).map_err(|e| json_error(SOURCE, e))?;
    build(doc)
}

#[derive(DeriveDeserialize)]
struct Doc<'a> {
    #[serde(rename = "Event", borrow)]
    event: Option<Scalar<'a>>,
    #[serde(rename = "Date", borrow)]
    date: Option<Scalar<'a>>,
    #[serde(rename = "User", borrow)]
    user: Option<Ids<'a>>,
    #[serde(rename = "Server", borrow)]
    server: Option<Ids<'a>>,
    #[serde(rename = "Item", borrow)]
    item: Option<Item<'a>>,
    #[serde(rename = "PlaybackInfo", borrow)]
    playback: Option<PlaybackInfo<'a>>,
}

/// `User` and `Server`: only their `Id`.
#[derive(DeriveDeserialize)]
struct Ids<'a> {
    #[serde(rename = "Id", borrow)]
    id: Option<Scalar<'a>>,
}

#[derive(DeriveDeserialize)]
struct Item<'a> {
    #[serde(rename = "Id", borrow)]
    id: Option<Scalar<'a>>,
    #[serde(rename = "ServerId", borrow)]
    server_id: Option<Scalar<'a>>,
    #[serde(rename = "Type", borrow)]
    kind: Option<Scalar<'a>>,
    #[serde(rename = "Name", borrow)]
    name: Option<Scalar<'a>>,
    #[serde(rename = "ProductionYear", borrow)]
    year: Option<Scalar<'a>>,
    #[serde(rename = "SeriesName", borrow)]
    series_name: Option<Scalar<'a>>,
    #[serde(rename = "ParentIndexNumber", borrow)]
    season: Option<Scalar<'a>>,
    #[serde(rename = "IndexNumber", borrow)]
    episode: Option<Scalar<'a>>,
    #[serde(rename = "RunTimeTicks", borrow)]
    runtime_ticks: Option<Scalar<'a>>,
    #[serde(rename = "ProviderIds", default)]
    provider_ids: ProviderIds,
    #[serde(rename = "UserData", borrow)]
    user_data: Option<UserData<'a>>,
}

#[derive(DeriveDeserialize)]
struct UserData<'a> {
    #[serde(rename = "Played", borrow)]
    played: Option<Scalar<'a>>,
    #[serde(rename = "LastPlayedDate", borrow)]
    last_played: Option<Scalar<'a>>,
}

#[derive(DeriveDeserialize)]
struct PlaybackInfo<'a> {
    #[serde(rename = "PlayedToCompletion", borrow)]
    played_to_completion: Option<Scalar<'a>>,
    #[serde(rename = "PositionTicks", borrow)]
    position_ticks: Option<Scalar<'a>>,
}

/// `Item.ProviderIds`: keys in any case (`Imdb`, `IMDB`, `Tmdb`), values checked by
/// [`guid::normalize`] so URLs (`Official Website`) and unknown providers stay out.
#[derive(Default)]
struct ProviderIds(Guids);

impl<'de> Deserialize<'de> for ProviderIds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdsVisitor;
        impl<'de> Visitor<'de> for IdsVisitor {
            type Value = ProviderIds;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of provider ids")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<ProviderIds, E> {
                Ok(ProviderIds::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ProviderIds, A::Error> {
                let mut guids = Guids::new();
                while let Some(key) = map.next_key::<Scalar>()? {
                    match key.text().and_then(|k| guid::kind_of(&k)) {
                        Some(kind) => {
                            if let Some(v) = map.next_value::<Scalar>()?.text() {
                                guid::insert(&mut guids, kind, &v);
                            }
                        }
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(ProviderIds(guids))
            }
        }
        deserializer.deserialize_any(IdsVisitor)
    }
}

fn text(v: &Option<Scalar<'_>>) -> Option<String> {
    v.as_ref().and_then(Scalar::text).map(|s| s.into_owned())
}

fn flag(v: &Option<Scalar<'_>>) -> Option<bool> {
    v.as_ref().and_then(Scalar::flag)
}

fn uint(v: &Option<Scalar<'_>>) -> Option<u64> {
    v.as_ref().and_then(Scalar::uint)
}

fn time(v: &Option<Scalar<'_>>) -> Option<DateTime<Utc>> {
    v.as_ref()
        .and_then(Scalar::text)
        .and_then(|t| when::from_rfc3339(&t))
}

fn build(doc: Doc<'_>) -> Result<Parsed, ParseError> {
    let event = text(&doc.event).ok_or_else(|| ParseError::bad("emby payload has no Event"))?;
    let completed = doc
        .playback
        .as_ref()
        .and_then(|p| flag(&p.played_to_completion))
        == Some(true);
    let server_id = doc
        .server
        .as_ref()
        .and_then(|s| text(&s.id))
        .or_else(|| doc.item.as_ref().and_then(|i| text(&i.server_id)));

    let action = match event.to_ascii_lowercase().as_str() {
        "system.notificationtest" => {
            return Ok(Parsed::Event(Event {
                paused: false,
                source: SOURCE,
                server_id,
                user_id: None,
                action: Action::Test,
                occurred_at: time(&doc.date),
                raw_event: event,
                item: None,
            }));
        }
        "item.markplayed" | "playback.scrobble" => Action::Played,
        "playback.stop" if completed => Action::Played,
        "item.markunplayed" => Action::Unplayed,
        "playback.start" | "playback.pause" | "playback.unpause" | "playback.stop" => {
            Action::Progress
        }
        "library.new" => Action::Added,
        _ => {
            let reason = format!("emby event {event} is not synced");
            return Ok(Parsed::ignored(SOURCE, event, reason));
        }
    };

    let Some(item) = doc.item else {
        return Err(ParseError::bad(format!("emby {event} payload has no Item")));
    };
    let kind = match item.kind.as_ref().and_then(Scalar::text) {
        Some(t) if t.eq_ignore_ascii_case("Movie") => ItemType::Movie,
        Some(t) if t.eq_ignore_ascii_case("Episode") => ItemType::Episode,
        Some(t) => {
            let reason = format!("item type {t} is not synced (only Movie and Episode are)");
            return Ok(Parsed::ignored(SOURCE, event, reason));
        }
        None => {
            let reason = "emby payload has no Item.Type: only Movie and Episode are synced";
            return Ok(Parsed::ignored(SOURCE, event, reason));
        }
    };
    let backend_item_id =
        text(&item.id).ok_or_else(|| ParseError::bad("emby payload has no Item.Id"))?;

    let user_data = item.user_data.as_ref();
    let played = match action {
        // library.new carries no user, so no play state.
        Action::Added => None,
        // `PlayedToCompletion: false` only says this playback did not finish.
        _ if completed => Some(true),
        _ => user_data.and_then(|u| flag(&u.played)),
    };
    let progress_ms = match action {
        Action::Progress => doc
            .playback
            .as_ref()
            .and_then(|p| uint(&p.position_ticks))
            .map(|t| t / TICKS_PER_MS),
        _ => None,
    };
    let occurred_at = match action {
        Action::Played => user_data
            .and_then(|u| time(&u.last_played))
            .or_else(|| time(&doc.date)),
        _ => time(&doc.date),
    };
    let episode = kind == ItemType::Episode;
    let number = |v: &Option<Scalar<'_>>| {
        uint(v)
            .filter(|_| episode)
            .and_then(|n| u32::try_from(n).ok())
    };
    let event_item = EventItem {
        kind: Some(kind),
        backend_item_id,
        title: text(&item.name),
        year: item
            .year
            .as_ref()
            .and_then(Scalar::int)
            .and_then(|y| i32::try_from(y).ok())
            .filter(|y| *y > 0),
        series_title: if episode {
            text(&item.series_name)
        } else {
            None
        },
        season: number(&item.season),
        episode: number(&item.episode),
        // ProviderIds of an episode are the episode's own; the series' are not sent.
        guids: item.provider_ids.0,
        series_guids: Guids::new(),
        played,
        progress_ms,
        duration_ms: uint(&item.runtime_ticks)
            .map(|t| t / TICKS_PER_MS)
            .filter(|d| *d > 0),
    };
    let user_id = doc.user.as_ref().and_then(|u| text(&u.id));
    Ok(Parsed::Event(Event {
        // The player paused or stopped: its position is a resume point.
        paused: matches!(
            event.to_ascii_lowercase().as_str(),
            "playback.pause" | "playback.stop"
        ),
        source: SOURCE,
        server_id,
        user_id,
        action,
        raw_event: event,
        occurred_at,
        item: Some(event_item),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received() -> DateTime<Utc> {
        when::from_rfc3339("2026-04-01T00:00:00Z").unwrap()
    }

    fn parse_file(path: &str) -> Parsed {
        let full = format!("{}/../tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
        parse(&bytes, received()).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn event(p: Parsed) -> Event {
        match p {
            Parsed::Event(e) => e,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    fn item(e: &Event) -> &EventItem {
        e.item.as_ref().expect("event has an item")
    }

    fn guids(pairs: &[(&str, &str)]) -> Guids {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn bad(json: &[u8]) -> String {
        match parse(json, received()) {
            Err(ParseError::BadPayload(m)) => m,
            other => panic!("expected BadPayload, got {other:?}"),
        }
    }

    fn t(s: &str) -> Option<DateTime<Utc>> {
        Some(when::from_rfc3339(s).unwrap())
    }

    // ---- published capture ----

    #[test]
    fn movary_playback_stop_not_completed_is_progress() {
        // PlaybackInfo.PlayedToCompletion is false: 482 s into a 1 h 47 min movie.
        let e = event(parse_file(
            "webhooks/emby/playback.stop-movie-4.7.11-formdata-movary.json",
        ));
        assert_eq!(e.source, Source::Emby);
        assert_eq!(e.action, Action::Progress);
        assert_eq!(e.raw_event, "playback.stop");
        assert_eq!(
            e.server_id.as_deref(),
            Some("b331a858360e4cbebd2b3d5a02fbabef")
        );
        assert_eq!(
            e.user_id.as_deref(),
            Some("3541d84b0f1b4ea4a1327b8bf2de3419")
        );
        assert_eq!(e.occurred_at, t("2023-05-07T15:29:57.5131927Z"));
        let i = item(&e);
        assert_eq!(i.kind, Some(ItemType::Movie));
        assert_eq!(i.backend_item_id, "7");
        assert_eq!(i.title.as_deref(), Some("2 Fast 2 Furious"));
        assert_eq!(i.year, Some(2003));
        assert_eq!(
            i.guids,
            guids(&[("tmdb", "584"), ("imdb", "tt0322259"), ("tvdb", "20800")])
        );
        assert_eq!(i.series_guids, Guids::new());
        assert_eq!((i.season, i.episode), (None, None));
        assert_eq!(i.played, None);
        assert_eq!(i.progress_ms, Some(482_496));
        assert_eq!(i.duration_ms, Some(6_455_872));
    }

    // ---- written fixtures (expectations from written/cases.json) ----

    #[test]
    fn written_markplayed_movie() {
        let e = event(parse_file("written/emby/item.markplayed-movie-4.8.json"));
        assert_eq!(e.action, Action::Played);
        assert_eq!(e.raw_event, "item.markplayed");
        assert_eq!(
            e.server_id.as_deref(),
            Some("6cdebba5efa8782da4c16dad7654e457")
        );
        assert_eq!(
            e.user_id.as_deref(),
            Some("5a58f7ea4b290e8d9481791ee8b4e855")
        );
        // UserData.LastPlayedDate, not the notification's Date.
        assert_eq!(e.occurred_at, t("2025-03-15T20:38:41Z"));
        let i = item(&e);
        assert_eq!(i.kind, Some(ItemType::Movie));
        assert_eq!(i.backend_item_id, "5731");
        assert_eq!(
            i.guids,
            guids(&[("tmdb", "255914"), ("imdb", "tt3170832"), ("tvdb", "4127")])
        );
        assert_eq!(i.series_guids, Guids::new());
        assert_eq!((i.season, i.episode), (None, None));
        assert_eq!(i.title.as_deref(), Some("Ledger of Ash"));
        assert_eq!(i.year, Some(2014));
        assert_eq!(i.played, Some(true));
        assert_eq!(i.progress_ms, None);
    }

    #[test]
    fn written_pause_movie_is_progress() {
        let e = event(parse_file("written/emby/playback.pause-movie-4.8.json"));
        assert_eq!(e.action, Action::Progress);
        assert_eq!(
            e.server_id.as_deref(),
            Some("6cdebba5efa8782da4c16dad7654e457")
        );
        assert_eq!(
            e.user_id.as_deref(),
            Some("5a58f7ea4b290e8d9481791ee8b4e855")
        );
        assert_eq!(e.occurred_at, t("2025-03-15T20:42:37.1840552Z"));
        let i = item(&e);
        assert_eq!(i.kind, Some(ItemType::Movie));
        assert_eq!(i.backend_item_id, "5731");
        // "Official Website" is a URL, not an id.
        assert_eq!(
            i.guids,
            guids(&[("tmdb", "255914"), ("imdb", "tt3170832"), ("tvdb", "4127")])
        );
        assert_eq!(i.series_guids, Guids::new());
        assert_eq!((i.season, i.episode), (None, None));
        assert_eq!(i.played, None);
        assert_eq!(i.progress_ms, Some(1_152_741));
        assert_eq!(i.duration_ms, Some(6_812_035));
    }

    #[test]
    fn written_start_episode_resume_is_progress() {
        let e = event(parse_file(
            "written/emby/playback.start-episode-4.7-resume.json",
        ));
        assert_eq!(e.action, Action::Progress);
        assert_eq!(e.raw_event, "playback.start");
        assert_eq!(
            e.server_id.as_deref(),
            Some("7e54a8f58d90bda58e05223cc84da835")
        );
        assert_eq!(
            e.user_id.as_deref(),
            Some("b7fd392106b201a9ed4c0045dacb0329")
        );
        let i = item(&e);
        assert_eq!(i.kind, Some(ItemType::Episode));
        assert_eq!(i.backend_item_id, "318902");
        assert_eq!(i.guids, guids(&[("tmdb", "4821907")]));
        assert_eq!(i.series_guids, Guids::new());
        assert_eq!(i.season, Some(1));
        assert_eq!(i.episode, Some(7));
        assert_eq!(i.series_title.as_deref(), Some("青石巷"));
        assert_eq!(i.title.as_deref(), Some("第 7 集"));
        assert_eq!(i.played, None);
        assert_eq!(i.progress_ms, Some(918_224));
    }

    #[test]
    fn written_library_new_episode_localized_is_added() {
        let e = event(parse_file(
            "written/emby/library.new-episode-4.8-localized.json",
        ));
        assert_eq!(e.action, Action::Added);
        assert_eq!(
            e.server_id.as_deref(),
            Some("de5e0a137c1cbb7d8e7d83302fb899f1")
        );
        assert_eq!(e.user_id, None);
        assert_eq!(e.occurred_at, t("2024-11-03T08:41:17.5031246Z"));
        let i = item(&e);
        assert_eq!(i.kind, Some(ItemType::Episode));
        assert_eq!(i.backend_item_id, "2417");
        assert_eq!(
            i.guids,
            guids(&[("tvdb", "10398127"), ("imdb", "tt32508841")])
        );
        assert_eq!(i.series_guids, Guids::new());
        assert_eq!(i.season, Some(1));
        assert_eq!(i.episode, Some(3));
        assert_eq!(i.series_title.as_deref(), Some("归舟记 (2024)"));
        assert_eq!(i.title.as_deref(), Some("渡口夜话"));
        assert_eq!(i.year, Some(2024));
        assert_eq!(i.played, None);
        assert_eq!(i.progress_ms, None);
    }

    #[test]
    fn written_notification_test_is_test() {
        let e = event(parse_file("written/emby/system.notificationtest-4.9.json"));
        assert_eq!(e.action, Action::Test);
        assert_eq!(e.raw_event, "system.notificationtest");
        assert_eq!(
            e.server_id.as_deref(),
            Some("e970f419b522cbe93f690667bd55ba1d")
        );
        assert_eq!(e.user_id, None);
        assert_eq!(e.item, None);
        assert_eq!(e.occurred_at, t("2026-03-14T20:58:03.1147392Z"));
    }

    // ---- event table ----

    fn minimal(event: &str, extra_item: &str, playback: &str) -> Vec<u8> {
        format!(
            r#"{{"Event":"{event}","Date":"2024-05-01T10:00:00.0000000Z","User":{{"Id":"u1"}},"Server":{{"Id":"s1"}},"Item":{{"Id":"42","Type":"Movie","ProviderIds":{{"IMDB":"tt0111161"}}{extra_item}}}{playback}}}"#
        )
        .into_bytes()
    }

    fn action_of(json: &[u8]) -> Result<Action, String> {
        match parse(json, received()).unwrap() {
            Parsed::Event(e) => Ok(e.action),
            Parsed::Ignored { reason, .. } => Err(reason),
        }
    }

    #[test]
    fn event_table() {
        let pb = |done: bool| {
            format!(r#","PlaybackInfo":{{"PlayedToCompletion":{done},"PositionTicks":7000000000}}"#)
        };
        assert_eq!(
            action_of(&minimal("item.markplayed", "", "")),
            Ok(Action::Played)
        );
        assert_eq!(
            action_of(&minimal("playback.scrobble", "", "")),
            Ok(Action::Played)
        );
        assert_eq!(
            action_of(&minimal("item.markunplayed", "", "")),
            Ok(Action::Unplayed)
        );
        assert_eq!(
            action_of(&minimal("playback.stop", "", &pb(true))),
            Ok(Action::Played)
        );
        assert_eq!(
            action_of(&minimal("playback.stop", "", &pb(false))),
            Ok(Action::Progress)
        );
        for ev in ["playback.start", "playback.pause", "playback.unpause"] {
            let e = event(parse(&minimal(ev, "", &pb(false)), received()).unwrap());
            assert_eq!(e.action, Action::Progress, "{ev}");
            assert_eq!(item(&e).progress_ms, Some(700_000), "{ev}");
            assert_eq!(item(&e).guids, guids(&[("imdb", "tt0111161")]), "{ev}");
        }
        assert_eq!(
            action_of(&minimal("library.new", "", "")),
            Ok(Action::Added)
        );
        for ev in ["user.authenticated", "item.rate", "library.deleted"] {
            let r = action_of(&minimal(ev, "", "")).unwrap_err();
            assert_eq!(r, format!("emby event {ev} is not synced"));
        }
    }

    #[test]
    fn completed_stop_reports_played_and_markunplayed_uses_date() {
        let e = event(
            parse(
                &minimal(
                    "playback.stop",
                    "",
                    r#","PlaybackInfo":{"PlayedToCompletion":true,"PositionTicks":7000000000}"#,
                ),
                received(),
            )
            .unwrap(),
        );
        assert_eq!(item(&e).played, Some(true));
        assert_eq!(item(&e).progress_ms, None);

        let e = event(
            parse(
                &minimal(
                    "item.markunplayed",
                    r#","UserData":{"Played":false,"LastPlayedDate":"2023-01-01T00:00:00.0000000Z"}"#,
                    "",
                ),
                received(),
            )
            .unwrap(),
        );
        assert_eq!(e.action, Action::Unplayed);
        assert_eq!(item(&e).played, Some(false));
        assert_eq!(e.occurred_at, t("2024-05-01T10:00:00Z"));
    }

    #[test]
    fn other_item_types_are_ignored() {
        let json = br#"{"Event":"item.markplayed","Item":{"Id":"9","Type":"Audio"}}"#;
        assert_eq!(
            action_of(json),
            Err("item type Audio is not synced (only Movie and Episode are)".to_string())
        );
        let json = br#"{"Event":"library.new","Item":{"Id":"9","Type":"Series"}}"#;
        assert!(action_of(json).unwrap_err().contains("Series"));
    }

    #[test]
    fn server_id_falls_back_to_item_server_id() {
        let json = br#"{"Event":"library.new","Item":{"Id":"9","Type":"Movie","ServerId":"srv"}}"#;
        let e = event(parse(json, received()).unwrap());
        assert_eq!(e.server_id.as_deref(), Some("srv"));
        assert_eq!(e.user_id, None);
    }

    #[test]
    fn provider_ids_in_any_case_and_non_ids() {
        let json = br#"{"Event":"library.new","Item":{"Id":"9","Type":"Movie","ProviderIds":{"IMDB":"TT0322259","tmdb":"584","TheTVDB":"20800","Official Website":"http://x.example/","TmdbCollection":"9485","Tvrage":""}}}"#;
        let e = event(parse(json, received()).unwrap());
        assert_eq!(
            item(&e).guids,
            guids(&[("imdb", "tt0322259"), ("tmdb", "584"), ("tvdb", "20800")])
        );
    }

    // ---- errors ----

    #[test]
    fn malformed_json_is_bad_payload() {
        let m = bad(br#"{"Event":"playback.stop","Item":{"Id":"#);
        assert!(m.starts_with("emby payload is not valid JSON"), "{m}");
        let m = bad(b"data=%7B%22Event%22");
        assert!(m.starts_with("emby payload is not valid JSON"), "{m}");
        let m = bad(br#"{"Event":"item.markplayed","Item":"7"}"#);
        assert!(m.starts_with("emby payload is not valid JSON"), "{m}");
    }

    #[test]
    fn non_object_json_is_bad_payload() {
        assert_eq!(
            bad(br#"[{"Event":"item.markplayed"}]"#),
            "emby payload is an array, not a JSON object"
        );
        assert_eq!(
            bad(br#""item.markplayed""#),
            "emby payload is a string, not a JSON object"
        );
    }

    #[test]
    fn missing_item_id_item_or_event_is_bad_payload() {
        assert_eq!(
            bad(br#"{"Event":"item.markplayed","Item":{"Type":"Movie","Name":"x"}}"#),
            "emby payload has no Item.Id"
        );
        assert_eq!(
            bad(br#"{"Event":"item.markplayed","Item":{"Type":"Movie","Id":" "}}"#),
            "emby payload has no Item.Id"
        );
        assert_eq!(
            bad(br#"{"Event":"playback.start","User":{"Id":"u"}}"#),
            "emby playback.start payload has no Item"
        );
        assert_eq!(
            bad(br#"{"Item":{"Id":"1","Type":"Movie"}}"#),
            "emby payload has no Event"
        );
    }
}

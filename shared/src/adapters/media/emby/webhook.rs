//! Emby webhooks: what each event means (the table of events in this module), read into an [`Event`].
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
//! payload has it (the event time `docs/RELIABILITY.md` relies on), else the top-level `Date`
//! (when the notification was sent). Every other event, `unplayed` included, uses
//! `Date`: after "mark unplayed" `LastPlayedDate` still names the earlier viewing, and
//! stamping the unplay with it would make it look older than that viewing (stale).

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::adapters::media::lenient::{self, Scalar};
use crate::adapters::media::mediabrowser::dto::BaseItem;
use crate::adapters::media::mediabrowser::{item_type, ItemFields, PlayReport};
use crate::adapters::media::{json_error, ParseError, Unread};
use crate::domain::model::{Action, Event, Parsed, Source};
use crate::domain::when;

const SOURCE: Source = Source::Emby;

/// What the delivery log leaves out of an Emby payload ([`super::super::for_log`]): the
/// item's texts, links, studios, genres, image tags, streams, chapters, people, file,
/// dates and ratings, and the session's device and address. Unread.
pub(crate) const UNREAD: &[Unread] = &[
    Unread {
        object: "Item",
        names: &[
            "Overview",
            "Taglines",
            "ExternalUrls",
            "RemoteTrailers",
            "Studios",
            "Genres",
            "GenreItems",
            "TagItems",
            "Tags",
            "ImageTags",
            "BackdropImageTags",
            "ParentBackdropImageTags",
            "SeriesPrimaryImageTag",
            "PrimaryImageAspectRatio",
            "MediaStreams",
            "MediaSources",
            "Chapters",
            "People",
            "LockedFields",
            "Path",
            "FileName",
            "OriginalTitle",
            "SortName",
            "DateCreated",
            "PremiereDate",
            "OfficialRating",
            "CommunityRating",
            "CriticRating",
            "Container",
            "Size",
            "Bitrate",
            "Width",
            "Height",
            "PlayAccess",
            "MediaType",
            "IsFolder",
            "ParentId",
            "Etag",
        ],
    },
    Unread {
        object: "Session",
        names: &["DeviceId", "RemoteEndPoint", "ApplicationVersion"],
    },
];

pub fn parse(json: &[u8], received_at: DateTime<Utc>) -> Result<Parsed, ParseError> {
    // The payload's own time is reported as is; the rules compare it to `received_at`.
    let _ = received_at;
    let json = lenient::object_body(SOURCE, json)?;
    let doc: Doc = serde_json::from_slice(json).map_err(|e| json_error(SOURCE, e))?;
    build(doc)
}

#[derive(Deserialize)]
struct Doc<'a> {
    #[serde(rename = "Event", borrow, default)]
    event: Scalar<'a>,
    #[serde(rename = "Date", borrow, default)]
    date: Scalar<'a>,
    #[serde(rename = "User", borrow)]
    user: Option<Ids<'a>>,
    #[serde(rename = "Server", borrow)]
    server: Option<Ids<'a>>,
    #[serde(rename = "Item", borrow)]
    item: Option<BaseItem<'a>>,
    #[serde(rename = "PlaybackInfo", borrow)]
    playback: Option<PlaybackInfo<'a>>,
}

/// `User` and `Server`: only their `Id`.
#[derive(Deserialize)]
struct Ids<'a> {
    #[serde(rename = "Id", borrow, default)]
    id: Scalar<'a>,
}

#[derive(Deserialize)]
struct PlaybackInfo<'a> {
    #[serde(rename = "PlayedToCompletion", borrow, default)]
    played_to_completion: Scalar<'a>,
    #[serde(rename = "PositionTicks", borrow, default)]
    position_ticks: Scalar<'a>,
}

fn time(v: &Scalar<'_>) -> Option<DateTime<Utc>> {
    v.text().and_then(|t| when::from_rfc3339(&t))
}

fn build(doc: Doc<'_>) -> Result<Parsed, ParseError> {
    let event = doc
        .event
        .string()
        .ok_or_else(|| ParseError::bad("emby payload has no Event"))?;
    let completed = doc
        .playback
        .as_ref()
        .and_then(|p| p.played_to_completion.flag())
        == Some(true);
    let server_id = doc
        .server
        .as_ref()
        .and_then(|s| s.id.string())
        .or_else(|| doc.item.as_ref().and_then(|i| i.server_id.string()));

    // Read in any case, once, for both the action and whether the player paused.
    let name = event.to_ascii_lowercase();
    let action = match name.as_str() {
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
    let kind = match item_type(SOURCE, "Item.Type", &item.kind) {
        Ok(kind) => kind,
        Err(reason) => return Ok(Parsed::ignored(SOURCE, event, reason)),
    };
    let backend_item_id = item
        .id
        .string()
        .ok_or_else(|| ParseError::bad("emby payload has no Item.Id"))?;

    let user_data = item.user_data.as_ref();
    let report = PlayReport {
        action,
        completed,
        played: user_data.and_then(|u| u.played.flag()),
        position_ticks: doc.playback.as_ref().map(|p| &p.position_ticks),
    };
    let occurred_at = match action {
        Action::Played => user_data
            .and_then(|u| time(&u.last_played_date))
            .or_else(|| time(&doc.date)),
        _ => time(&doc.date),
    };
    let fields = ItemFields {
        name: &item.name,
        year: &item.production_year,
        series_name: &item.series_name,
        season: &item.parent_index_number,
        episode: &item.index_number,
        runtime_ticks: &item.run_time_ticks,
    };
    let event_item = fields.event_item(kind, backend_item_id, item.provider_ids.0, report);
    let user_id = doc.user.as_ref().and_then(|u| u.id.string());
    Ok(Parsed::Event(Event {
        // The player paused or stopped: its position is a resume point.
        paused: matches!(name.as_str(), "playback.pause" | "playback.stop"),
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

    use crate::adapters::media::test_support::{self as support, event, guids, item, now};
    use crate::adapters::media::test_support::{parse_file, who};

    fn bad(json: &[u8]) -> String {
        support::bad(parse(json, now()))
    }

    fn t(s: &str) -> Option<DateTime<Utc>> {
        Some(when::from_rfc3339(s).unwrap())
    }

    // ---- published captures and written fixtures ----

    /// The parses stated field by field in `tests/fixtures/expected/emby.json`.
    #[test]
    fn expected_parses() {
        assert_eq!(support::check_expected("emby", parse), 5);
    }

    #[test]
    fn written_notification_test_is_test() {
        let e = event(parse_file(
            parse,
            "written/emby/system.notificationtest-4.9.json",
        ));
        assert_eq!(e.action, Action::Test);
        assert_eq!(e.raw_event, "system.notificationtest");
        assert_eq!(who(&e), (Some("e970f419b522cbe93f690667bd55ba1d"), None));
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
        support::action_of(parse, json)
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
            let e = event(parse(&minimal(ev, "", &pb(false)), now()).unwrap());
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
                now(),
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
                now(),
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
        let e = event(parse(json, now()).unwrap());
        assert_eq!(who(&e), (Some("srv"), None));
    }

    #[test]
    fn provider_ids_in_any_case_and_non_ids() {
        let json = br#"{"Event":"library.new","Item":{"Id":"9","Type":"Movie","ProviderIds":{"IMDB":"TT0322259","tmdb":"584","TheTVDB":"20800","Official Website":"http://x.example/","TmdbCollection":"9485","Tvrage":""}}}"#;
        let e = event(parse(json, now()).unwrap());
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

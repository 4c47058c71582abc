//! Jellyfin webhooks: what each event means (the table of events in this module), read into an [`Event`].
//!
//! The Jellyfin webhook plugin sends one flat JSON object with PascalCase keys, often as
//! `text/plain`. Which keys appear depends on the event and on the user's template, so
//! the object is read with a hand-written map visitor: the few keys we use are matched
//! by name, `Provider_*` ids are collected, and everything else (streams, overviews,
//! device data) is skipped unread with [`IgnoredAny`]. No `serde_json::Value` is built.
//!
//! Event mapping:
//!
//! | NotificationType | action |
//! |---|---|
//! | `UserDataSaved`, `Played: true`, SaveReason `TogglePlayed` / `PlaybackFinished` | played |
//! | `UserDataSaved`, `Played: false`, SaveReason `TogglePlayed` | unplayed |
//! | `UserDataSaved`, any other SaveReason (progress, rating, ...) or no SaveReason | ignored |
//! | `PlaybackStop` with `PlayedToCompletion: true` | played |
//! | `PlaybackStart`, `PlaybackProgress`, `PlaybackStop` | progress (`PlaybackPositionTicks` / 10,000 ms) |
//! | `ItemAdded` | added (play state not reported) |
//! | anything else (`SessionStart`, `AuthenticationSuccess`, ...) | ignored |
//!
//! Only `ItemType` `Movie` and `Episode` are synced; a payload without `ItemType` is
//! ignored too (a custom template that leaves it out cannot be told from music).
//!
//! Times: `occurred_at` is `UtcTimestamp` (falling back to `Timestamp`), parsed as is.
//! Jellyfin's "never" (`0001-01-01T00:00:00.0000000Z`) is returned parsed, not dropped:
//! the rules (`when::event_time`) replace any pre-2000 or future time with the time
//! received, so the parser reports what the payload says and the rules judge it.
//!
//! Custom templates may print Python-style `True` / `False` / `None` unquoted, and
//! numbers or booleans as strings. Every field is read leniently ([`lenient::Scalar`]),
//! and when the strict JSON parse fails with a syntax error the body is parsed once
//! more after bare `True`/`False`/`None` outside string literals are rewritten to
//! `true`/`false`/`null` (same length, so error positions stay right).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::adapters::media::{json_error, ParseError, Unread};
use crate::domain::guid;
use crate::domain::model::{Action, Event, Guids, Parsed, Source};
use crate::domain::when;

use crate::adapters::media::lenient::{self, Scalar};
use crate::adapters::media::mediabrowser::{item_type, ItemFields, PlayReport};

const SOURCE: Source = Source::Jellyfin;

/// What the delivery log leaves out of a Jellyfin payload ([`super::super::for_log`]):
/// the stream descriptions (`Video_0_*`, `Audio_*`, `Subtitle_*`: most of a playback
/// event), the overview and tagline, the device id. Unread.
pub(crate) const UNREAD: &[Unread] = &[Unread {
    object: "",
    names: &[
        "Video_*",
        "Audio_*",
        "Subtitle_*",
        "Overview",
        "Tagline",
        "DeviceId",
    ],
}];

pub fn parse(json: &[u8], received_at: DateTime<Utc>) -> Result<Parsed, ParseError> {
    // The payload's own time is reported as is; the rules compare it to `received_at`.
    let _ = received_at;
    let json = lenient::object_body(SOURCE, json)?;
    match serde_json::from_slice::<Doc>(json) {
        Ok(doc) => build(doc),
        Err(e) if e.is_syntax() => match lenient::python_literals(json) {
            // Same length as the original, so the retry's error positions are true ones.
            Some(fixed) => match serde_json::from_slice::<Doc>(&fixed) {
                Ok(doc) => build(doc),
                Err(e) => Err(json_error(SOURCE, e)),
            },
            None => Err(json_error(SOURCE, e)),
        },
        Err(e) => Err(json_error(SOURCE, e)),
    }
}

/// The keys we read; every other key is skipped.
#[derive(Default)]
struct Doc<'de> {
    notification_type: Scalar<'de>,
    server_id: Scalar<'de>,
    user_id: Scalar<'de>,
    item_id: Scalar<'de>,
    item_type: Scalar<'de>,
    name: Scalar<'de>,
    year: Scalar<'de>,
    series_name: Scalar<'de>,
    season_number: Scalar<'de>,
    episode_number: Scalar<'de>,
    played: Scalar<'de>,
    played_to_completion: Scalar<'de>,
    is_paused: Scalar<'de>,
    save_reason: Scalar<'de>,
    position_ticks: Scalar<'de>,
    runtime_ticks: Scalar<'de>,
    utc_timestamp: Scalar<'de>,
    timestamp: Scalar<'de>,
    guids: Guids,
}

/// A top-level key, told apart without keeping its text.
enum Key {
    NotificationType,
    ServerId,
    UserId,
    ItemId,
    ItemType,
    Name,
    Year,
    SeriesName,
    SeasonNumber,
    EpisodeNumber,
    Played,
    PlayedToCompletion,
    IsPaused,
    SaveReason,
    PlaybackPositionTicks,
    RunTimeTicks,
    UtcTimestamp,
    Timestamp,
    /// `Provider_imdb` and friends, as the guid kind they name.
    Provider(&'static str),
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, k: &str) -> Result<Key, E> {
                Ok(match k {
                    "NotificationType" => Key::NotificationType,
                    "ServerId" => Key::ServerId,
                    "UserId" => Key::UserId,
                    "ItemId" => Key::ItemId,
                    "ItemType" => Key::ItemType,
                    "Name" => Key::Name,
                    "Year" => Key::Year,
                    "SeriesName" => Key::SeriesName,
                    "SeasonNumber" => Key::SeasonNumber,
                    "EpisodeNumber" => Key::EpisodeNumber,
                    "Played" => Key::Played,
                    "PlayedToCompletion" => Key::PlayedToCompletion,
                    "IsPaused" => Key::IsPaused,
                    "SaveReason" => Key::SaveReason,
                    "PlaybackPositionTicks" => Key::PlaybackPositionTicks,
                    "RunTimeTicks" => Key::RunTimeTicks,
                    "UtcTimestamp" => Key::UtcTimestamp,
                    "Timestamp" => Key::Timestamp,
                    _ => match k.get(..9) {
                        Some(p) if p.eq_ignore_ascii_case("provider_") => {
                            // Collections, music ids and the like have no kind: skipped.
                            guid::kind_of(k).map_or(Key::Other, Key::Provider)
                        }
                        _ => Key::Other,
                    },
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Doc<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DocVisitor;
        impl<'de> Visitor<'de> for DocVisitor {
            type Value = Doc<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Jellyfin webhook object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc<'de>, A::Error> {
                let mut doc = Doc::default();
                while let Some(key) = map.next_key::<Key>()? {
                    let slot = match key {
                        Key::NotificationType => &mut doc.notification_type,
                        Key::ServerId => &mut doc.server_id,
                        Key::UserId => &mut doc.user_id,
                        Key::ItemId => &mut doc.item_id,
                        Key::ItemType => &mut doc.item_type,
                        Key::Name => &mut doc.name,
                        Key::Year => &mut doc.year,
                        Key::SeriesName => &mut doc.series_name,
                        Key::SeasonNumber => &mut doc.season_number,
                        Key::EpisodeNumber => &mut doc.episode_number,
                        Key::Played => &mut doc.played,
                        Key::PlayedToCompletion => &mut doc.played_to_completion,
                        Key::IsPaused => &mut doc.is_paused,
                        Key::SaveReason => &mut doc.save_reason,
                        Key::PlaybackPositionTicks => &mut doc.position_ticks,
                        Key::RunTimeTicks => &mut doc.runtime_ticks,
                        Key::UtcTimestamp => &mut doc.utc_timestamp,
                        Key::Timestamp => &mut doc.timestamp,
                        Key::Provider(kind) => {
                            if let Some(v) = map.next_value::<Scalar>()?.text() {
                                guid::insert(&mut doc.guids, kind, &v);
                            }
                            continue;
                        }
                        Key::Other => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = map.next_value::<Scalar>()?;
                }
                Ok(doc)
            }
        }
        deserializer.deserialize_map(DocVisitor)
    }
}

/// What an event means before the item is looked at.
enum Meaning {
    Act(Action),
    Ignore(String),
}

/// `name` is the event's name in lower case (Jellyfin's templates are typed by hand);
/// `event` as sent, for the reasons given.
/// `completed`: `PlayedToCompletion: true`.
fn meaning(name: &str, event: &str, completed: bool, doc: &Doc<'_>) -> Meaning {
    let played = doc.played.flag();
    match name {
        "userdatasaved" => {
            let reason = doc.save_reason.text();
            let Some(reason) = reason else {
                return Meaning::Ignore(
                    "UserDataSaved without SaveReason: cannot tell a play-state change from a progress or rating save"
                        .into(),
                );
            };
            let toggled = reason.eq_ignore_ascii_case("TogglePlayed");
            let finished = reason.eq_ignore_ascii_case("PlaybackFinished");
            match played {
                Some(true) if toggled || finished => Meaning::Act(Action::Played),
                Some(false) if toggled => Meaning::Act(Action::Unplayed),
                None if toggled || finished => Meaning::Ignore(format!(
                    "UserDataSaved with SaveReason {reason} but no Played field"
                )),
                _ => Meaning::Ignore(format!(
                    "UserDataSaved with SaveReason {reason} does not change play state"
                )),
            }
        }
        "playbackstop" if completed => Meaning::Act(Action::Played),
        "playbackstart" | "playbackprogress" | "playbackstop" => Meaning::Act(Action::Progress),
        "itemadded" => Meaning::Act(Action::Added),
        _ => Meaning::Ignore(format!("jellyfin event {event} is not synced")),
    }
}

fn build(doc: Doc<'_>) -> Result<Parsed, ParseError> {
    let event = doc
        .notification_type
        .string()
        .ok_or_else(|| ParseError::bad("jellyfin payload has no NotificationType"))?;
    let name = event.to_ascii_lowercase();
    let completed = doc.played_to_completion.flag() == Some(true);
    let action = match meaning(&name, &event, completed, &doc) {
        Meaning::Act(a) => a,
        Meaning::Ignore(reason) => return Ok(Parsed::ignored(SOURCE, event, reason)),
    };
    let kind = match item_type(SOURCE, "ItemType", &doc.item_type) {
        Ok(kind) => kind,
        Err(reason) => return Ok(Parsed::ignored(SOURCE, event, reason)),
    };
    let backend_item_id = doc
        .item_id
        .string()
        .ok_or_else(|| ParseError::bad("jellyfin payload has no ItemId"))?;

    let report = PlayReport {
        action,
        completed,
        played: doc.played.flag(),
        position_ticks: Some(&doc.position_ticks),
    };
    let fields = ItemFields {
        name: &doc.name,
        year: &doc.year,
        series_name: &doc.series_name,
        season: &doc.season_number,
        episode: &doc.episode_number,
        runtime_ticks: &doc.runtime_ticks,
    };
    let item = fields.event_item(kind, backend_item_id, doc.guids, report);
    // `Timestamp` only stands in for a missing `UtcTimestamp`, not for an unreadable one.
    let stamp = match doc.utc_timestamp {
        Scalar::Absent => &doc.timestamp,
        ref utc => utc,
    };
    let occurred_at = stamp.text().and_then(|t| when::from_rfc3339(&t));
    let stopped = name == "playbackstop";
    Ok(Parsed::Event(Event {
        source: SOURCE,
        server_id: doc.server_id.string(),
        user_id: doc.user_id.string(),
        action,
        raw_event: event,
        occurred_at,
        // A paused PlaybackProgress is Jellyfin's "pause", PlaybackStop its stop: the
        // position is a resume point.
        paused: doc.is_paused.flag() == Some(true) || stopped,
        item: Some(item),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::adapters::media::test_support::parse_file;
    use crate::adapters::media::test_support::{self as support, event, guids, item, now};

    /// A stop is a resume point whatever the case of its name (a progress event whose
    /// position Jellyfin's own "pause" would also keep).
    #[test]
    fn a_stop_is_a_pause_in_any_case() {
        for (name, paused) in [
            ("PlaybackStop", true),
            ("playbackstop", true),
            ("PlaybackProgress", false),
        ] {
            let e = event(
                parse(
                    &minimal(name, r#","PlaybackPositionTicks":600000000"#),
                    now(),
                )
                .unwrap(),
            );
            assert_eq!((e.action, e.paused), (Action::Progress, paused), "{name}");
            assert_eq!(item(&e).progress_ms, Some(60_000));
        }
    }

    fn bad(json: &[u8]) -> String {
        support::bad(parse(json, now()))
    }

    // ---- published captures and written fixtures ----

    /// The parses stated field by field in `tests/fixtures/expected/jellyfin.json`.
    #[test]
    fn expected_parses() {
        assert_eq!(support::check_expected("jellyfin", parse), 5);
    }

    #[test]
    fn multiscrobbler_audio_progress_is_ignored() {
        match parse_file(
            parse,
            "webhooks/jellyfin/playbackprogress-audio-10.8.10-multiscrobbler.json",
        ) {
            Parsed::Ignored {
                source,
                raw_event,
                reason,
            } => {
                assert_eq!(source, Source::Jellyfin);
                assert_eq!(raw_event, "PlaybackProgress");
                assert!(reason.contains("Audio"), "{reason}");
            }
            other => panic!("expected ignored, got {other:?}"),
        }
    }

    // ---- event table ----

    fn minimal(event: &str, extra: &str) -> Vec<u8> {
        format!(
            r#"{{"NotificationType":"{event}","ServerId":"s1","UserId":"u1","ItemId":"i1","ItemType":"Movie","UtcTimestamp":"2024-05-01T10:00:00.0000000Z"{extra}}}"#
        )
        .into_bytes()
    }

    fn action_of(json: &[u8]) -> Result<Action, String> {
        support::action_of(parse, json)
    }

    #[test]
    fn userdatasaved_by_save_reason() {
        let played = |reason: &str, p: &str| {
            action_of(&minimal(
                "UserDataSaved",
                &format!(r#","Played":{p},"SaveReason":"{reason}""#),
            ))
        };
        assert_eq!(played("TogglePlayed", "true"), Ok(Action::Played));
        assert_eq!(played("PlaybackFinished", "true"), Ok(Action::Played));
        assert_eq!(played("TogglePlayed", "false"), Ok(Action::Unplayed));
        let r = played("PlaybackProgress", "false").unwrap_err();
        assert!(r.contains("PlaybackProgress"), "{r}");
        let r = played("UpdateUserRating", "true").unwrap_err();
        assert!(r.contains("UpdateUserRating"), "{r}");
        let r = played("PlaybackFinished", "false").unwrap_err();
        assert!(r.contains("PlaybackFinished"), "{r}");
        let r = action_of(&minimal("UserDataSaved", r#","Played":true"#)).unwrap_err();
        assert!(r.contains("SaveReason"), "{r}");
    }

    #[test]
    fn playback_events() {
        let e = event(
            parse(
                &minimal("PlaybackProgress", r#","PlaybackPositionTicks":6543210000"#),
                now(),
            )
            .unwrap(),
        );
        assert_eq!(e.action, Action::Progress);
        assert_eq!(item(&e).progress_ms, Some(654_321));
        assert_eq!(item(&e).played, None);
        assert_eq!(
            action_of(&minimal("PlaybackStart", r#","PlaybackPositionTicks":0"#)),
            Ok(Action::Progress)
        );
        assert_eq!(
            action_of(&minimal("PlaybackStop", r#","PlayedToCompletion":false"#)),
            Ok(Action::Progress)
        );
        assert_eq!(
            action_of(&minimal("PlaybackStop", r#","PlayedToCompletion":true"#)),
            Ok(Action::Played)
        );
    }

    #[test]
    fn other_events_are_ignored_by_name() {
        let r = action_of(br#"{"NotificationType":"SessionStart","ServerId":"s1","UserId":"u1"}"#)
            .unwrap_err();
        assert!(r.contains("SessionStart"), "{r}");
        let r = action_of(&minimal("AuthenticationSuccess", "")).unwrap_err();
        assert!(r.contains("AuthenticationSuccess"), "{r}");
    }

    #[test]
    fn other_item_types_are_ignored() {
        let json = br#"{"NotificationType":"ItemAdded","ItemId":"x","ItemType":"Series"}"#;
        assert_eq!(
            action_of(json),
            Err("item type Series is not synced (only Movie and Episode are)".to_string())
        );
        let json = br#"{"NotificationType":"ItemAdded","ItemId":"x"}"#;
        assert!(action_of(json).unwrap_err().contains("no ItemType"));
    }

    #[test]
    fn empty_user_id_is_none_and_never_time_is_kept_for_the_rules() {
        let json = br#"{"NotificationType":"PlaybackStart","ServerId":"","UserId":"","ItemId":"i1","ItemType":"Movie","UtcTimestamp":"0001-01-01T00:00:00.0000000Z"}"#;
        let e = event(parse(json, now()).unwrap());
        assert_eq!(e.user_id, None);
        assert_eq!(e.server_id, None);
        let never = when::from_rfc3339("0001-01-01T00:00:00Z").unwrap();
        assert_eq!(e.occurred_at, Some(never));
        assert_eq!(when::event_time(e.occurred_at, now()), now());
    }

    // ---- template quirks ----

    #[test]
    fn python_true_false_and_string_values_are_tolerated() {
        let json = br#"{"NotificationType": "UserDataSaved", "Name": "True Story \"False\" None", "ItemId": "i9",
            "ItemType": "Episode", "SeasonNumber": "02", "EpisodeNumber": "7", "Year": "2021",
            "Played": True, "IsFavorite": False, "Rating": None, "SaveReason": "TogglePlayed",
            "Provider_tvdb": 12345, "UserId": "u1"}"#;
        let e = event(parse(json, now()).unwrap());
        assert_eq!(e.action, Action::Played);
        let i = item(&e);
        assert_eq!(i.title.as_deref(), Some("True Story \"False\" None"));
        assert_eq!(i.season, Some(2));
        assert_eq!(i.episode, Some(7));
        assert_eq!(i.year, Some(2021));
        assert_eq!(i.played, Some(true));
        assert_eq!(i.guids, guids(&[("tvdb", "12345")]));

        let json = br#"{"NotificationType":"UserDataSaved","ItemId":"i9","ItemType":"Movie","Played":"False","SaveReason":"TogglePlayed"}"#;
        let e = event(parse(json, now()).unwrap());
        assert_eq!(e.action, Action::Unplayed);
        assert_eq!(item(&e).played, Some(false));

        let json = br#"{"NotificationType":"PlaybackStop","ItemId":"i9","ItemType":"Movie","PlayedToCompletion":"True","PlaybackPositionTicks":"70000000"}"#;
        assert_eq!(action_of(json), Ok(Action::Played));
    }

    // ---- errors ----

    #[test]
    fn malformed_json_is_bad_payload() {
        let m = bad(br#"{"NotificationType":"PlaybackStop","ItemId":"#);
        assert!(m.contains("not valid JSON"), "{m}");
        let m = bad(br#"{"NotificationType":"PlaybackStop","Played":Maybe}"#);
        assert!(m.contains("not valid JSON"), "{m}");
        let m = bad(b"");
        assert!(m.contains("empty"), "{m}");
        let m = bad(b"not json");
        assert!(m.contains("not valid JSON"), "{m}");
    }

    #[test]
    fn non_object_json_is_bad_payload() {
        assert_eq!(
            bad(br#"[{"NotificationType":"PlaybackStop"}]"#),
            "jellyfin payload is an array, not a JSON object"
        );
        assert_eq!(
            bad(b"42"),
            "jellyfin payload is a number, not a JSON object"
        );
        assert_eq!(bad(b"null"), "jellyfin payload is null, not a JSON object");
    }

    #[test]
    fn missing_item_id_or_event_is_bad_payload() {
        assert_eq!(
            bad(br#"{"NotificationType":"PlaybackStop","ItemType":"Movie","PlayedToCompletion":true}"#),
            "jellyfin payload has no ItemId"
        );
        assert_eq!(
            bad(br#"{"NotificationType":"ItemAdded","ItemType":"Movie","ItemId":""}"#),
            "jellyfin payload has no ItemId"
        );
        assert_eq!(
            bad(br#"{"ItemId":"x","ItemType":"Movie"}"#),
            "jellyfin payload has no NotificationType"
        );
    }
}

//! Jellyfin webhooks: what each event means (DESIGN 3's table), read into an [`Event`].
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

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::adapters::media::{json_error, ParseError};
use crate::domain::guid;
use crate::domain::model::{Action, Event, EventItem, Guids, ItemType, Parsed, Source};
use crate::domain::when;

use self::lenient::Scalar;

const SOURCE: Source = Source::Jellyfin;

/// Jellyfin and Emby count time in ticks of 100 ns: 10,000 ticks per millisecond.
const TICKS_PER_MS: u64 = 10_000;

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
    notification_type: Option<Scalar<'de>>,
    server_id: Option<Scalar<'de>>,
    user_id: Option<Scalar<'de>>,
    item_id: Option<Scalar<'de>>,
    item_type: Option<Scalar<'de>>,
    name: Option<Scalar<'de>>,
    year: Option<Scalar<'de>>,
    series_name: Option<Scalar<'de>>,
    season_number: Option<Scalar<'de>>,
    episode_number: Option<Scalar<'de>>,
    played: Option<Scalar<'de>>,
    played_to_completion: Option<Scalar<'de>>,
    is_paused: Option<Scalar<'de>>,
    save_reason: Option<Scalar<'de>>,
    position_ticks: Option<Scalar<'de>>,
    runtime_ticks: Option<Scalar<'de>>,
    utc_timestamp: Option<Scalar<'de>>,
    timestamp: Option<Scalar<'de>>,
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
                    *slot = Some(map.next_value::<Scalar>()?);
                }
                Ok(doc)
            }
        }
        deserializer.deserialize_map(DocVisitor)
    }
}

fn text(v: &Option<Scalar<'_>>) -> Option<String> {
    v.as_ref().and_then(Scalar::text).map(Cow::into_owned)
}

fn flag(v: &Option<Scalar<'_>>) -> Option<bool> {
    v.as_ref().and_then(Scalar::flag)
}

fn uint(v: &Option<Scalar<'_>>) -> Option<u64> {
    v.as_ref().and_then(Scalar::uint)
}

/// What an event means before the item is looked at.
enum Meaning {
    Act(Action),
    Ignore(String),
}

fn meaning(event: &str, doc: &Doc<'_>) -> Meaning {
    let played = flag(&doc.played);
    match event.to_ascii_lowercase().as_str() {
        "userdatasaved" => {
            let reason = doc.save_reason.as_ref().and_then(Scalar::text);
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
        "playbackstop" if flag(&doc.played_to_completion) == Some(true) => {
            Meaning::Act(Action::Played)
        }
        "playbackstart" | "playbackprogress" | "playbackstop" => Meaning::Act(Action::Progress),
        "itemadded" => Meaning::Act(Action::Added),
        _ => Meaning::Ignore(format!("jellyfin event {event} is not synced")),
    }
}

fn build(doc: Doc<'_>) -> Result<Parsed, ParseError> {
    let event = text(&doc.notification_type)
        .ok_or_else(|| ParseError::bad("jellyfin payload has no NotificationType"))?;
    let action = match meaning(&event, &doc) {
        Meaning::Act(a) => a,
        Meaning::Ignore(reason) => return Ok(Parsed::ignored(SOURCE, event, reason)),
    };
    let kind = match doc.item_type.as_ref().and_then(Scalar::text) {
        Some(t) if t.eq_ignore_ascii_case("Movie") => ItemType::Movie,
        Some(t) if t.eq_ignore_ascii_case("Episode") => ItemType::Episode,
        Some(t) => {
            let reason = format!("item type {t} is not synced (only Movie and Episode are)");
            return Ok(Parsed::ignored(SOURCE, event, reason));
        }
        None => {
            let reason = "jellyfin payload has no ItemType: only Movie and Episode are synced";
            return Ok(Parsed::ignored(SOURCE, event, reason));
        }
    };
    let backend_item_id =
        text(&doc.item_id).ok_or_else(|| ParseError::bad("jellyfin payload has no ItemId"))?;

    let played = match action {
        // An added item carries no user, so no play state.
        Action::Added => None,
        // `PlayedToCompletion: false` only says this playback did not finish.
        _ if flag(&doc.played_to_completion) == Some(true) => Some(true),
        _ => flag(&doc.played),
    };
    let progress_ms = match action {
        Action::Progress => uint(&doc.position_ticks).map(|t| t / TICKS_PER_MS),
        _ => None,
    };
    let episode = kind == ItemType::Episode;
    let number = |v: &Option<Scalar<'_>>| {
        uint(v)
            .filter(|_| episode)
            .and_then(|n| u32::try_from(n).ok())
    };
    let item = EventItem {
        kind: Some(kind),
        backend_item_id,
        title: text(&doc.name),
        year: doc
            .year
            .as_ref()
            .and_then(Scalar::int)
            .and_then(|y| i32::try_from(y).ok())
            .filter(|y| *y > 0),
        series_title: if episode {
            text(&doc.series_name)
        } else {
            None
        },
        season: number(&doc.season_number),
        episode: number(&doc.episode_number),
        guids: doc.guids,
        // Jellyfin's Provider_* keys are the episode's own ids; the series' are not sent.
        series_guids: Guids::new(),
        played,
        progress_ms,
        duration_ms: uint(&doc.runtime_ticks)
            .map(|t| t / TICKS_PER_MS)
            .filter(|d| *d > 0),
    };
    let occurred_at = doc
        .utc_timestamp
        .as_ref()
        .or(doc.timestamp.as_ref())
        .and_then(Scalar::text)
        .and_then(|t| when::from_rfc3339(&t));
    let stopped = event == "PlaybackStop";
    Ok(Parsed::Event(Event {
        source: SOURCE,
        server_id: text(&doc.server_id),
        user_id: text(&doc.user_id),
        action,
        raw_event: event,
        occurred_at,
        // A paused PlaybackProgress is Jellyfin's "pause", PlaybackStop its stop: the
        // position is a resume point.
        paused: flag(&doc.is_paused) == Some(true) || stopped,
        item: Some(item),
    }))
}

/// Lenient reading shared by the Jellyfin and Emby parsers: values of any JSON type,
/// strings borrowed from the body where they have no escapes, and templates' quirks.
pub(crate) mod lenient {
    use std::borrow::Cow;
    use std::fmt;

    use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

    use crate::adapters::media::{json_error, ParseError};
    use crate::domain::model::Source;

    /// One JSON value read without insisting on its type. Objects and arrays are
    /// skipped unread (`Nested`).
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) enum Scalar<'de> {
        Str(Cow<'de, str>),
        Bool(bool),
        Int(i64),
        UInt(u64),
        Float(f64),
        Null,
        Nested,
    }

    // `'de: 'a` (not `'de == 'a`) so derived structs with a `Scalar<'a>` field borrow.
    impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(ScalarVisitor(std::marker::PhantomData))
        }
    }

    struct ScalarVisitor<'a>(std::marker::PhantomData<&'a ()>);

    impl<'de: 'a, 'a> Visitor<'de> for ScalarVisitor<'a> {
        type Value = Scalar<'a>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Scalar::Str(Cow::Borrowed(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Scalar::Str(Cow::Owned(v.to_owned())))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Scalar::Str(Cow::Owned(v)))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Scalar::Bool(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Scalar::Int(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Scalar::UInt(v))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Scalar::Float(v))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Scalar::Null)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Scalar::Null)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            Scalar::deserialize(d)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Scalar::Nested)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(Scalar::Nested)
        }
    }

    impl<'de> Scalar<'de> {
        /// A non-blank string (trimmed), or an integer written as text.
        pub(crate) fn text(&self) -> Option<Cow<'de, str>> {
            match self {
                Scalar::Str(s) => {
                    let t = s.trim();
                    if t.is_empty() {
                        None
                    } else if t.len() == s.len() {
                        Some(s.clone())
                    } else {
                        Some(Cow::Owned(t.to_owned()))
                    }
                }
                Scalar::Int(i) => Some(Cow::Owned(i.to_string())),
                Scalar::UInt(u) => Some(Cow::Owned(u.to_string())),
                _ => None,
            }
        }

        /// A boolean, also from `"true"`/`"True"`/`"false"` strings and 0/1.
        pub(crate) fn flag(&self) -> Option<bool> {
            match self {
                Scalar::Bool(b) => Some(*b),
                Scalar::Str(s) => {
                    let s = s.trim();
                    if s.eq_ignore_ascii_case("true") || s == "1" {
                        Some(true)
                    } else if s.eq_ignore_ascii_case("false") || s == "0" {
                        Some(false)
                    } else {
                        None
                    }
                }
                Scalar::Int(0) | Scalar::UInt(0) => Some(false),
                Scalar::Int(1) | Scalar::UInt(1) => Some(true),
                _ => None,
            }
        }

        /// A non-negative integer, also from a numeric string; fractions are truncated.
        pub(crate) fn uint(&self) -> Option<u64> {
            match self {
                Scalar::UInt(u) => Some(*u),
                Scalar::Int(i) => u64::try_from(*i).ok(),
                Scalar::Float(f) => float_to_u64(*f),
                Scalar::Str(s) => {
                    let s = s.trim();
                    s.parse::<u64>()
                        .ok()
                        .or_else(|| s.parse::<f64>().ok().and_then(float_to_u64))
                }
                _ => None,
            }
        }

        /// An integer, also from a numeric string.
        pub(crate) fn int(&self) -> Option<i64> {
            match self {
                Scalar::Int(i) => Some(*i),
                Scalar::UInt(u) => i64::try_from(*u).ok(),
                Scalar::Float(f) if f.is_finite() && f.fract() == 0.0 => {
                    // In range: checked before the cast.
                    (*f >= i64::MIN as f64 && *f <= i64::MAX as f64).then_some(*f as i64)
                }
                Scalar::Str(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            }
        }
    }

    fn float_to_u64(f: f64) -> Option<u64> {
        (f.is_finite() && f >= 0.0 && f < u64::MAX as f64).then_some(f as u64)
    }

    /// The body with a UTF-8 byte-order mark removed, if it starts a JSON object; else
    /// the error to answer: not JSON at all, or JSON that is not an object.
    pub(crate) fn object_body(source: Source, json: &[u8]) -> Result<&[u8], ParseError> {
        let json = json.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(json);
        let first = json.iter().find(|b| !b.is_ascii_whitespace());
        let what = match first {
            Some(b'{') => return Ok(json),
            None => return Err(ParseError::bad(format!("{source} payload is empty"))),
            Some(b'[') => "an array",
            Some(b'"') => "a string",
            Some(b't' | b'f' | b'T' | b'F') => "a boolean",
            Some(b'n' | b'N') => "null",
            Some(_) => "a number",
        };
        match serde_json::from_slice::<IgnoredAny>(json) {
            Ok(_) => Err(ParseError::bad(format!(
                "{source} payload is {what}, not a JSON object"
            ))),
            Err(e) => Err(json_error(source, e)),
        }
    }

    /// Rewrite Python-style `True`, `False` and `None` outside string literals to
    /// `true`, `false` and `null`. `None` when there was nothing to rewrite (the body
    /// is broken some other way).
    pub(crate) fn python_literals(json: &[u8]) -> Option<Vec<u8>> {
        const WORDS: [(&[u8], &[u8]); 3] =
            [(b"True", b"true"), (b"False", b"false"), (b"None", b"null")];
        let is_word = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
        let mut out: Option<Vec<u8>> = None;
        let mut in_string = false;
        let mut escaped = false;
        let mut i = 0;
        while let Some(&b) = json.get(i) {
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                i += 1;
                continue;
            }
            if b == b'"' {
                in_string = true;
                i += 1;
                continue;
            }
            let starts_word = i == 0 || !is_word(json.get(i.wrapping_sub(1)));
            if starts_word && matches!(b, b'T' | b'F' | b'N') {
                let hit = WORDS.iter().find(|(word, _)| {
                    json.get(i..).is_some_and(|rest| rest.starts_with(word))
                        && !is_word(json.get(i + word.len()))
                });
                if let Some((word, replacement)) = hit {
                    let buf = out.get_or_insert_with(|| json.to_vec());
                    if let Some(dst) = buf.get_mut(i..i + word.len()) {
                        dst.copy_from_slice(replacement);
                    }
                    i += word.len();
                    continue;
                }
            }
            i += 1;
        }
        out
    }
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

    // ---- published captures ----

    #[test]
    fn movary_playback_stop_completed_is_played() {
        let e = event(parse_file(
            "webhooks/jellyfin/playbackstop-movie-completed-10.8.8-movary.json",
        ));
        assert_eq!(e.source, Source::Jellyfin);
        assert_eq!(e.action, Action::Played);
        assert_eq!(e.raw_event, "PlaybackStop");
        assert_eq!(
            e.server_id.as_deref(),
            Some("e7f44197df844fc4a503f7366b746adc")
        );
        assert_eq!(
            e.user_id.as_deref(),
            Some("50e1109a03fd4e13a3a5dd9bb27e08ec")
        );
        assert_eq!(
            e.occurred_at,
            when::from_rfc3339("2023-01-04T06:36:12.853591Z")
        );
        let i = item(&e);
        assert_eq!(i.kind, Some(ItemType::Movie));
        assert_eq!(i.backend_item_id, "9871a124b152901edc3aafa0f374d14e");
        assert_eq!(i.title.as_deref(), Some("The Menu"));
        assert_eq!(i.year, Some(2022));
        assert_eq!(i.guids, guids(&[("tmdb", "593643"), ("imdb", "tt9764362")]));
        assert_eq!(i.series_guids, Guids::new());
        assert_eq!((i.season, i.episode), (None, None));
        assert_eq!(i.series_title, None);
        assert_eq!(i.played, Some(true));
        assert_eq!(i.progress_ms, None);
        assert_eq!(i.duration_ms, Some(6_427_423));
    }

    #[test]
    fn multiscrobbler_audio_progress_is_ignored() {
        match parse_file("webhooks/jellyfin/playbackprogress-audio-10.8.10-multiscrobbler.json") {
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

    #[test]
    fn jellyhook_item_added_is_added_without_user() {
        let e = event(parse_file(
            "webhooks/jellyfin/itemadded-movie-10.10.3-jellyhook.json",
        ));
        assert_eq!(e.action, Action::Added);
        assert_eq!(e.raw_event, "ItemAdded");
        assert_eq!(
            e.server_id.as_deref(),
            Some("42e65bbd52bc4bc38e7bf14fd760b9dd")
        );
        assert_eq!(e.user_id, None);
        assert_eq!(
            e.occurred_at,
            when::from_rfc3339("2025-01-19T21:20:15.0134275Z")
        );
        let i = item(&e);
        assert_eq!(i.kind, Some(ItemType::Movie));
        assert_eq!(i.backend_item_id, "42685592c6a59cf2e88dfe5a6d584b1e");
        assert_eq!(i.title.as_deref(), Some("Big Green Monster"));
        assert_eq!(i.year, Some(2020));
        // Provider_tmdbcollection is a collection, not this movie: left out.
        assert_eq!(
            i.guids,
            guids(&[("tmdb", "940721"), ("imdb", "tt23289160")])
        );
        assert_eq!(i.series_guids, Guids::new());
        assert_eq!((i.season, i.episode), (None, None));
        assert_eq!(i.played, None);
        assert_eq!(i.progress_ms, None);
        assert_eq!(i.duration_ms, Some(7_478_721));
    }

    // ---- written fixtures (expectations from written/cases.json) ----

    #[test]
    fn written_userdatasaved_toggle_unplayed() {
        let e = event(parse_file(
            "written/jellyfin/userdatasaved-episode-toggleplayed-unplayed.json",
        ));
        assert_eq!(e.action, Action::Unplayed);
        assert_eq!(e.raw_event, "UserDataSaved");
        assert_eq!(
            e.server_id.as_deref(),
            Some("f609e82f7e65762c1914518c58756dab")
        );
        assert_eq!(
            e.user_id.as_deref(),
            Some("a816dac5b5c13a4b69c067705b627949")
        );
        assert_eq!(
            e.occurred_at,
            when::from_rfc3339("2025-09-02T19:38:51.4029186Z")
        );
        let i = item(&e);
        assert_eq!(i.kind, Some(ItemType::Episode));
        assert_eq!(i.backend_item_id, "d4092836b8a1db8e10d3e21f231ba38d");
        assert_eq!(i.guids, guids(&[("anidb", "281407")]));
        assert_eq!(i.series_guids, Guids::new());
        assert_eq!(i.season, Some(1));
        assert_eq!(i.episode, Some(3));
        assert_eq!(i.series_title.as_deref(), Some("Ninefold Orbit"));
        assert_eq!(i.title.as_deref(), Some("Signal Fire"));
        assert_eq!(i.played, Some(false));
        assert_eq!(i.progress_ms, None);
    }

    #[test]
    fn written_itemadded_movie_collection() {
        let e = event(parse_file(
            "written/jellyfin/itemadded-movie-collection.json",
        ));
        assert_eq!(e.action, Action::Added);
        assert_eq!(
            e.server_id.as_deref(),
            Some("946634189a0d7086bd2fcb18997d21a5")
        );
        assert_eq!(e.user_id, None);
        let i = item(&e);
        assert_eq!(i.kind, Some(ItemType::Movie));
        assert_eq!(i.backend_item_id, "60bf293184cd22d9cb715c163db1453e");
        assert_eq!(i.guids, guids(&[("tmdb", "80417"), ("imdb", "tt0471953")]));
        assert_eq!(i.series_guids, Guids::new());
        assert_eq!((i.season, i.episode), (None, None));
        assert_eq!(i.title.as_deref(), Some("雾港疑云"));
        assert_eq!(i.year, Some(2006));
        assert_eq!(i.played, None);
        assert_eq!(i.progress_ms, None);
    }

    #[test]
    fn written_playbackstop_midway_is_progress() {
        let e = event(parse_file(
            "written/jellyfin/playbackstop-episode-midway.json",
        ));
        assert_eq!(e.action, Action::Progress);
        assert_eq!(e.raw_event, "PlaybackStop");
        assert_eq!(
            e.server_id.as_deref(),
            Some("f609e82f7e65762c1914518c58756dab")
        );
        assert_eq!(
            e.user_id.as_deref(),
            Some("a816dac5b5c13a4b69c067705b627949")
        );
        let i = item(&e);
        assert_eq!(i.kind, Some(ItemType::Episode));
        assert_eq!(i.backend_item_id, "3a39b04cc35adf7731ddb422d5627413");
        assert_eq!(
            i.guids,
            guids(&[("tvdb", "10284163"), ("imdb", "tt27411094")])
        );
        assert_eq!(i.series_guids, Guids::new());
        assert_eq!(i.season, Some(2));
        assert_eq!(i.episode, Some(5));
        assert_eq!(i.series_title.as_deref(), Some("Glasshouse"));
        // PlayedToCompletion false reports nothing.
        assert_eq!(i.played, None);
        assert_eq!(i.progress_ms, Some(1_234_567));
        assert_eq!(i.duration_ms, Some(2_618_000));
    }

    // ---- event table ----

    fn minimal(event: &str, extra: &str) -> Vec<u8> {
        format!(
            r#"{{"NotificationType":"{event}","ServerId":"s1","UserId":"u1","ItemId":"i1","ItemType":"Movie","UtcTimestamp":"2024-05-01T10:00:00.0000000Z"{extra}}}"#
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
                received(),
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
        let e = event(parse(json, received()).unwrap());
        assert_eq!(e.user_id, None);
        assert_eq!(e.server_id, None);
        let never = when::from_rfc3339("0001-01-01T00:00:00Z").unwrap();
        assert_eq!(e.occurred_at, Some(never));
        assert_eq!(when::event_time(e.occurred_at, received()), received());
    }

    // ---- template quirks ----

    #[test]
    fn python_true_false_and_string_values_are_tolerated() {
        let json = br#"{"NotificationType": "UserDataSaved", "Name": "True Story \"False\" None", "ItemId": "i9",
            "ItemType": "Episode", "SeasonNumber": "02", "EpisodeNumber": "7", "Year": "2021",
            "Played": True, "IsFavorite": False, "Rating": None, "SaveReason": "TogglePlayed",
            "Provider_tvdb": 12345, "UserId": "u1"}"#;
        let e = event(parse(json, received()).unwrap());
        assert_eq!(e.action, Action::Played);
        let i = item(&e);
        assert_eq!(i.title.as_deref(), Some("True Story \"False\" None"));
        assert_eq!(i.season, Some(2));
        assert_eq!(i.episode, Some(7));
        assert_eq!(i.year, Some(2021));
        assert_eq!(i.played, Some(true));
        assert_eq!(i.guids, guids(&[("tvdb", "12345")]));

        let json = br#"{"NotificationType":"UserDataSaved","ItemId":"i9","ItemType":"Movie","Played":"False","SaveReason":"TogglePlayed"}"#;
        let e = event(parse(json, received()).unwrap());
        assert_eq!(e.action, Action::Unplayed);
        assert_eq!(item(&e).played, Some(false));

        let json = br#"{"NotificationType":"PlaybackStop","ItemId":"i9","ItemType":"Movie","PlayedToCompletion":"True","PlaybackPositionTicks":"70000000"}"#;
        assert_eq!(action_of(json), Ok(Action::Played));
    }

    #[test]
    fn python_literal_scanner_respects_strings() {
        assert_eq!(lenient::python_literals(br#"{"a":"True"}"#), None);
        assert_eq!(
            lenient::python_literals(br#"{"a":True,"b":[False,None],"c":"x\"True"}"#).as_deref(),
            Some(&br#"{"a":true,"b":[false,null],"c":"x\"True"}"#[..])
        );
        // Only whole words.
        assert_eq!(lenient::python_literals(br#"{"a":Truex}"#), None);
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

    #[test]
    fn byte_order_mark_is_skipped() {
        let mut json = b"\xEF\xBB\xBF".to_vec();
        json.extend_from_slice(&minimal("PlaybackStart", ""));
        assert_eq!(action_of(&json), Ok(Action::Progress));
    }
}

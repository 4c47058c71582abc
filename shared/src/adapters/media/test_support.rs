//! What the webhook parsers' tests share: fixtures, a fixed time received, readers of a
//! parse result, the check of `tests/fixtures/written/cases.json`, and the check of the
//! parses stated field by field in `tests/fixtures/expected/`.

use chrono::{DateTime, TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::adapters::media::ParseError;
use crate::domain::model::{Action, Event, EventItem, Guids, Parsed, Source};

pub(crate) type ParseFn = fn(&[u8], DateTime<Utc>) -> Result<Parsed, ParseError>;

pub(crate) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 1, 12, 0, 0).unwrap()
}

/// A file under `tests/fixtures/`.
pub(crate) fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/../tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// A fixture parsed, received [`now`].
pub(crate) fn parse_file(parse: ParseFn, path: &str) -> Parsed {
    parse(&fixture(path), now()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(crate) use crate::domain::guid::from_pairs as guids;

/// The action `body` parses to, or the reason it is ignored.
pub(crate) fn action_of(parse: ParseFn, body: &[u8]) -> Result<Action, String> {
    match parse(body, now()).unwrap() {
        Parsed::Event(e) => Ok(e.action),
        Parsed::Ignored { reason, .. } => Err(reason),
    }
}

pub(crate) fn event(parsed: Parsed) -> Event {
    match parsed {
        Parsed::Event(e) => e,
        Parsed::Ignored { reason, .. } => panic!("expected an event, got ignored: {reason}"),
    }
}

pub(crate) fn item(e: &Event) -> &EventItem {
    e.item.as_ref().expect("event has an item")
}

/// `(server_id, user_id)` of an event.
pub(crate) fn who(e: &Event) -> (Option<&str>, Option<&str>) {
    (e.server_id.as_deref(), e.user_id.as_deref())
}

pub(crate) fn ignored(parsed: Parsed) -> (Source, String, String) {
    match parsed {
        Parsed::Ignored {
            source,
            raw_event,
            reason,
        } => (source, raw_event, reason),
        Parsed::Event(e) => panic!("expected ignored, got {:?} {}", e.action, e.raw_event),
    }
}

pub(crate) fn bad(r: Result<Parsed, ParseError>) -> String {
    match r {
        Err(ParseError::BadPayload(m)) => m,
        other => panic!("expected BadPayload, got {other:?}"),
    }
}

fn guids_of(v: &serde_json::Value) -> Guids {
    v.as_object()
        .expect("guids object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("guid string").to_string()))
        .collect()
}

/// Checks every written fixture of `source` against what `written/cases.json`
/// states; returns how many were checked.
pub(crate) fn check_cases(source: &str, parse: ParseFn) -> usize {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/written/");
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{dir}cases.json")).unwrap()).unwrap();
    let mut checked = 0;
    for case in cases.as_array().unwrap() {
        if case["source"] != source {
            continue;
        }
        let file = case["file"].as_str().unwrap();
        let body = std::fs::read(format!("{dir}{file}")).unwrap();
        let parsed = parse(&body, now()).unwrap_or_else(|e| panic!("{file}: {e}"));
        checked += 1;
        if case["action"] == "ignored" {
            let (_, _, reason) = ignored(parsed);
            if let Some(hint) = case["ignore_reason_hint"].as_str() {
                assert!(
                    reason.contains(hint),
                    "{file}: reason {reason:?} lacks {hint:?}"
                );
            }
            continue;
        }
        let e = event(parsed);
        assert_eq!(e.action.as_str(), case["action"], "{file}: action");
        assert_eq!(
            e.server_id.as_deref(),
            case["server_id"].as_str(),
            "{file}: server"
        );
        assert_eq!(
            e.user_id.as_deref(),
            case["user_id"].as_str(),
            "{file}: user"
        );
        let want = &case["item"];
        let it = item(&e);
        assert_eq!(it.item_type().as_str(), want["type"], "{file}: type");
        assert_eq!(
            it.backend_item_id, want["backend_item_id"],
            "{file}: item id"
        );
        assert_eq!(it.guids, guids_of(&want["guids"]), "{file}: guids");
        assert_eq!(
            it.series_guids,
            guids_of(&want["series_guids"]),
            "{file}: series guids"
        );
        assert_eq!(
            it.season.map(u64::from),
            want["season"].as_u64(),
            "{file}: season"
        );
        assert_eq!(
            it.episode.map(u64::from),
            want["episode"].as_u64(),
            "{file}: episode"
        );
        assert_eq!(
            it.progress_ms,
            want["progress_ms"].as_u64(),
            "{file}: progress"
        );
        match want["watched_after"].as_bool() {
            Some(true) => assert_eq!(it.played, Some(true), "{file}: played"),
            Some(false) => assert_ne!(it.played, Some(true), "{file}: played"),
            None => assert_eq!(it.played, None, "{file}: played"),
        }
    }
    checked
}

/// Checks every parse stated in `tests/fixtures/expected/{source}.json`: each field an
/// entry names, of the event and of its item, is as stated (a field left out is not
/// checked); an `ignored` entry states the source, event name and reason (whole, or a
/// part in `reason_contains`). Returns how many entries were checked.
pub(crate) fn check_expected(source: &str, parse: ParseFn) -> usize {
    let path = format!("expected/{source}.json");
    let cases: serde_json::Value =
        serde_json::from_slice(&fixture(&path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let cases = cases.as_array().expect("a list of expected parses");
    for case in cases {
        let name = case["test"].as_str().expect("test name");
        let file = case["fixture"].as_str().expect("fixture");
        if let Some(want) = case.get("ignored") {
            let (source, raw_event, reason) = ignored(parse_file(parse, file));
            assert_eq!(
                serde_json::to_value(source).expect("source"),
                want["source"],
                "{name}: source"
            );
            assert_eq!(raw_event, want["raw_event"], "{name}: raw_event");
            match (want["reason"].as_str(), want["reason_contains"].as_str()) {
                (Some(exact), _) => assert_eq!(reason, exact, "{name}: reason"),
                (None, Some(part)) => assert!(reason.contains(part), "{name}: {reason}"),
                (None, None) => panic!("{name}: states no reason"),
            }
            continue;
        }
        let e = event(parse_file(parse, file));
        assert_fields(&e, &case["event"], name);
        assert_fields(item(&e), &case["item"], name);
    }
    cases.len()
}

/// Each stated field, put in place of `got`'s own, leaves `got` unchanged: the stated
/// values are read as the types read them (times, enums), not compared as text.
fn assert_fields<T>(got: &T, want: &serde_json::Value, name: &str)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let as_json = serde_json::to_value(got).expect("serializable");
    for (field, value) in want.as_object().expect("fields by name") {
        assert!(as_json.get(field).is_some(), "{name}: no field {field}");
        let mut stated = as_json.clone();
        stated[field] = value.clone();
        let stated: T =
            serde_json::from_value(stated).unwrap_or_else(|e| panic!("{name}: {field}: {e}"));
        assert_eq!(&stated, got, "{name}: {field}");
    }
}

//! Every fixture, sent over its real transport to the webhook handler on an empty
//! store, gives the outcome the design's rules say: the answer, and the stored item
//! (type, ids, guids, series guids, numbering, watched, progress).

use e2e::{backend_body, fixture, wire, Local, Transport};
use serde_json::{json, Value};

struct Expect {
    file: String,
    transport: Transport,
    user_agent: String,
    /// played | unplayed | progress | added | ignored | test
    action: String,
    ignore_hint: Option<String>,
    item: Option<Value>,
}

fn kind_of(file: &str) -> &'static str {
    match file.split('/').nth(1) {
        Some("plex") | Some("tautulli") => "plex",
        Some("jellyfin") => "jellyfin",
        Some("emby") => "emby",
        other => panic!("no backend type for {other:?}"),
    }
}

fn written_cases() -> Vec<Expect> {
    let cases: Vec<Value> =
        serde_json::from_slice(&fixture("written/cases.json")).expect("cases.json");
    cases
        .into_iter()
        .map(|c| Expect {
            file: format!("written/{}", c["file"].as_str().expect("file")),
            transport: Transport::from_name(c["transport"].as_str().expect("transport")),
            user_agent: c["user_agent"].as_str().unwrap_or("").to_string(),
            action: c["action"].as_str().expect("action").to_string(),
            ignore_hint: c["ignore_reason_hint"].as_str().map(str::to_string),
            item: Some(c["item"].clone()).filter(|i| !i.is_null()),
        })
        .collect()
}

/// The published captures, with the outcome the design's rules give them.
fn published_cases() -> Vec<Expect> {
    let e =
        |file: &str, t, ua: &str, action: &str, hint: Option<&str>, item: Option<Value>| Expect {
            file: file.into(),
            transport: t,
            user_agent: ua.into(),
            action: action.into(),
            ignore_hint: hint.map(str::to_string),
            item,
        };
    vec![
        e(
            "webhooks/plex/media.scrobble-movie-plexguid-movary.json",
            Transport::PlexMultipartField,
            "PlexMediaServer/1.30.0.6486-629d58034",
            "played",
            None,
            Some(json!({"type": "movie", "backend_item_id": "26697",
                "guids": {"imdb": "tt0090728", "tmdb": "6978", "tvdb": "1876"},
                "series_guids": {}, "season": null, "episode": null,
                "watched_after": true, "progress_ms": null})),
        ),
        e(
            "webhooks/plex/media.rate-movie-plexguid-movary-edited.json",
            Transport::PlexMultipart,
            "PlexMediaServer/1.30.0.6486-629d58034",
            "ignored",
            Some("media.rate"),
            None,
        ),
        e(
            "webhooks/plex/media.play-track-plexdocs-telegraf.json",
            Transport::PlexMultipart,
            "PlexMediaServer/1.13.4.5271-200287a06",
            "ignored",
            Some("track"),
            None,
        ),
        e(
            "webhooks/plex/media.scrobble-episode-hama-shinkro.json",
            Transport::PlexMultipart,
            "PlexMediaServer/1.41.0.8992-8463ad060",
            "played",
            None,
            Some(json!({"type": "episode", "backend_item_id": "31444",
                "guids": {}, "series_guids": {"tvdb": "81797"},
                "season": 22, "episode": 70, "watched_after": true, "progress_ms": null})),
        ),
        e(
            "webhooks/jellyfin/playbackstop-movie-completed-10.8.8-movary.json",
            Transport::JellyfinTextPlain,
            "Jellyfin-Server/10.8.8",
            "played",
            None,
            Some(
                json!({"type": "movie", "backend_item_id": "9871a124b152901edc3aafa0f374d14e",
                "guids": {"tmdb": "593643", "imdb": "tt9764362"}, "series_guids": {},
                "season": null, "episode": null, "watched_after": true, "progress_ms": null}),
            ),
        ),
        e(
            "webhooks/jellyfin/playbackprogress-audio-10.8.10-multiscrobbler.json",
            Transport::JellyfinJson,
            "Jellyfin-Server/10.8.10",
            "ignored",
            Some("Audio"),
            None,
        ),
        e(
            "webhooks/jellyfin/itemadded-movie-10.10.3-jellyhook.json",
            Transport::JellyfinTextPlain,
            "Jellyfin-Server/10.10.3",
            "added",
            None,
            Some(
                json!({"type": "movie", "backend_item_id": "42685592c6a59cf2e88dfe5a6d584b1e",
                "guids": {"tmdb": "940721", "imdb": "tt23289160"}, "series_guids": {},
                "season": null, "episode": null, "watched_after": false, "progress_ms": null}),
            ),
        ),
        e(
            "webhooks/emby/playback.stop-movie-4.7.11-formdata-movary.json",
            Transport::EmbyUrlEncoded,
            "",
            // Named a scrobble by its publisher, but PlayedToCompletion is false: a
            // stop at 482496 ms of 6455872 ms is a resume point, not a play.
            "progress",
            None,
            Some(json!({"type": "movie", "backend_item_id": "7",
                "guids": {"tmdb": "584", "imdb": "tt0322259", "tvdb": "20800"},
                "series_guids": {}, "season": null, "episode": null,
                "watched_after": false, "progress_ms": 482496})),
        ),
        e(
            "webhooks/tautulli/template.json",
            Transport::TautulliPutJson,
            "Tautulli/v2.14.3",
            "ignored",
            Some("tautulli.{action}"),
            None,
        ),
    ]
}

async fn check(case: &Expect) {
    let local = Local::new();
    let kind = kind_of(&case.file);
    let path = local.backend("ana", kind, backend_body(kind)).await;
    let body = fixture(&case.file);
    let (status, answer) = local
        .send(&path, &wire(case.transport, &body, &case.user_agent))
        .await;
    let f = &case.file;
    assert_eq!(status, 200, "{f}: {answer}");
    match case.action.as_str() {
        "ignored" | "test" => {
            assert_eq!(answer["status"], "ignored", "{f}: {answer}");
            let reason = answer["reason"].as_str().unwrap_or("");
            assert!(!reason.is_empty(), "{f}: an ignored answer says why");
            if case.action == "test" {
                assert!(reason.contains("test"), "{f}: {reason}");
            }
            if let Some(hint) = &case.ignore_hint {
                let first = hint.split_whitespace().nth(1).unwrap_or(hint);
                assert!(
                    reason.to_lowercase().contains(&first.to_lowercase())
                        || reason.to_lowercase().contains(&hint.to_lowercase()),
                    "{f}: reason '{reason}' should name '{hint}'"
                );
            }
            let all = local.items("ana", "").await;
            assert!(all.is_empty(), "{f}: ignored events store nothing");
        }
        action => {
            assert_eq!(answer["status"], "stored", "{f}: {answer}");
            let want = case.item.as_ref().expect("item");
            let id = want["backend_item_id"].as_str().expect("id");
            let items = local
                .items("ana", &format!("backend={kind}&backend_item_id={id}"))
                .await;
            assert_eq!(items.len(), 1, "{f}: one item for {id}");
            let got = &items[0];
            assert_eq!(answer["item_id"], got["id"], "{f}");
            assert_eq!(got["type"], want["type"], "{f} type");
            assert_eq!(got["guids"], want["guids"], "{f} guids");
            assert_eq!(
                got["series_guids"], want["series_guids"],
                "{f} series_guids"
            );
            assert_eq!(got["season"], want["season"], "{f} season");
            assert_eq!(got["episode"], want["episode"], "{f} episode");
            let watched = want["watched_after"].as_bool().unwrap_or(false);
            assert_eq!(got["watched"], json!(watched), "{f} watched");
            assert_eq!(got["progress_ms"], want["progress_ms"], "{f} progress_ms");
            assert_eq!(got["backends"][kind]["item_id"], json!(id), "{f}");
            // The answer says whether play state changed, and why not when it did not.
            let changed = watched || !want["progress_ms"].is_null();
            assert_eq!(answer["changed"], json!(changed), "{f}: {answer}");
            if !changed {
                let reason = if action == "added" || answer["reason"] == "metadata only" {
                    "metadata only"
                } else {
                    "same state"
                };
                assert_eq!(answer["reason"], reason, "{f}: {answer}");
            }
        }
    }
    // Every delivery is in the log, with what became of it.
    let (s, log) = local.api("GET", "/v1/users/ana/deliveries", None).await;
    assert_eq!(s, 200);
    let d = &log["deliveries"][0];
    assert_eq!(d["backend"], kind, "{f}");
    let want_status = if matches!(case.action.as_str(), "ignored" | "test") {
        "ignored"
    } else {
        "stored"
    };
    assert_eq!(d["status"], want_status, "{f}: {d}");
}

#[tokio::test]
async fn every_written_fixture_gives_its_stated_outcome() {
    let cases = written_cases();
    assert_eq!(cases.len(), 14, "cases.json lists every written fixture");
    for case in &cases {
        check(case).await;
    }
}

#[tokio::test]
async fn every_published_capture_gives_its_outcome() {
    for case in &published_cases() {
        check(case).await;
    }
}

#[tokio::test]
async fn every_fixture_file_is_covered() {
    let mut covered: Vec<String> = written_cases().into_iter().map(|c| c.file).collect();
    covered.extend(published_cases().into_iter().map(|c| c.file));
    for dir in ["webhooks", "written"] {
        for source in std::fs::read_dir(e2e::fixtures_dir().join(dir)).expect("dir") {
            let source = source.expect("entry").path();
            if !source.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(&source).expect("dir") {
                let p = file.expect("entry").path();
                let rel = p
                    .strip_prefix(e2e::fixtures_dir())
                    .expect("rel")
                    .to_string_lossy()
                    .into_owned();
                assert!(covered.contains(&rel), "{rel} has no outcome test");
            }
        }
    }
}

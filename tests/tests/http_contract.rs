//! The HTTP contract (README, docs/ARCHITECTURE.md), status by status: every code the contract names is produced here, and
//! every webhook delivery, accepted or not, lands in the delivery log.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use e2e::{backend_body, fixture, wire, Local, Transport, Wire};
use serde_json::{json, Value};
use watchstate::domain::model::{Backend, Delivery, Item, StateChange, User};
use watchstate::ports::store::{
    ItemQuery, ItemWrite, Page, Store, StoreError, TaskRun, WriteOutcome,
};

const PLEX_UA: &str = "PlexMediaServer/1.40.2.8395-c67dce28e";
const SCROBBLE: &str = "written/plex/media.scrobble-episode-localized.json";

fn plex(json: &[u8]) -> Wire {
    wire(Transport::PlexMultipart, json, PLEX_UA)
}

fn with_field(path: &str, pointer: &str, value: Value) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture(path)).expect("json");
    *v.pointer_mut(pointer).expect("pointer") = value;
    serde_json::to_vec(&v).expect("json")
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn stored_changed_then_same_state_then_stale() {
    let l = Local::new();
    let path = l.backend("ana", "plex", backend_body("plex")).await;
    let (s, v) = l.send(&path, &plex(&fixture(SCROBBLE))).await;
    assert_eq!(
        (s, &v["status"], &v["changed"]),
        (200, &json!("stored"), &json!(true))
    );
    assert!(v["reason"].is_null());
    let (s, v) = l.send(&path, &plex(&fixture(SCROBBLE))).await;
    assert_eq!(s, 200);
    assert_eq!(v["changed"], false);
    assert_eq!(v["reason"], "same state");

    // Unplayed from Jellyfin with a time before the scrobble: stale.
    let jf = l.backend("ana", "jf", backend_body("jellyfin")).await;
    let body = json!({
        "NotificationType": "UserDataSaved", "ServerId": "s", "UserId": "u",
        "ItemId": "abc", "ItemType": "Episode", "SeasonNumber": 2, "EpisodeNumber": 3,
        "Provider_imdb": "tt31847206", "Played": false, "SaveReason": "TogglePlayed",
        "UtcTimestamp": "2025-03-12T00:00:00.0000000Z"
    });
    let (s, v) = l
        .send(
            &jf,
            &wire(
                Transport::JellyfinTextPlain,
                body.to_string().as_bytes(),
                "Jellyfin-Server/10.10.3",
            ),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["reason"], "stale", "{v}");
    let items = l.items("ana", "guid=imdb:tt31847206").await;
    assert_eq!(items.len(), 1, "matched by guid, not a second item");
    assert_eq!(items[0]["watched"], true);
    assert_eq!(items[0]["backends"]["jf"]["item_id"], "abc");
}

#[tokio::test]
async fn metadata_only_and_ignored() {
    let l = Local::new();
    let path = l.backend("ana", "jf", backend_body("jellyfin")).await;
    let added = fixture("webhooks/jellyfin/itemadded-movie-10.10.3-jellyhook.json");
    let (s, v) = l
        .send(
            &path,
            &wire(
                Transport::JellyfinTextPlain,
                &added,
                "Jellyfin-Server/10.10.3",
            ),
        )
        .await;
    assert_eq!(
        (s, v["reason"].as_str()),
        (200, Some("metadata only")),
        "{v}"
    );
    let audio = fixture("webhooks/jellyfin/playbackprogress-audio-10.8.10-multiscrobbler.json");
    let (s, v) = l
        .send(
            &path,
            &wire(Transport::JellyfinJson, &audio, "Jellyfin-Server/10.8.10"),
        )
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("ignored")), "{v}");
}

#[tokio::test]
async fn bad_payloads_are_400_with_a_reason() {
    let l = Local::new();
    let path = l.backend("ana", "plex", backend_body("plex")).await;
    let cases: Vec<(Wire, &str)> = vec![
        (plex(b"{not json"), "JSON"),
        (plex(b"[1,2,3]"), "array"),
        (
            plex(&with_field(SCROBBLE, "/Metadata/ratingKey", Value::Null)),
            "ratingKey",
        ),
        (
            Wire {
                method: "POST",
                headers: vec![
                    ("user-agent", PLEX_UA.into()),
                    (
                        "content-type",
                        format!("multipart/form-data; boundary={}", e2e::BOUNDARY),
                    ),
                ],
                body: e2e::multipart(&[("thumb", Some("t.jpg"), Some("image/jpeg"), e2e::THUMB)]),
            },
            "payload",
        ),
        (
            Wire {
                method: "POST",
                headers: vec![("content-type", "multipart/form-data".into())],
                body: b"garbage".to_vec(),
            },
            "boundary",
        ),
        // A Jellyfin payload sent to a Plex backend.
        (
            wire(
                Transport::JellyfinTextPlain,
                &fixture("webhooks/jellyfin/playbackstop-movie-completed-10.8.8-movary.json"),
                "Jellyfin-Server/10.8.8",
            ),
            "jellyfin",
        ),
        (
            Wire {
                method: "POST",
                headers: vec![],
                body: br#"{"hello": "world"}"#.to_vec(),
            },
            "cannot tell",
        ),
    ];
    for (w, hint) in cases {
        let (s, v) = l.send(&path, &w).await;
        assert_eq!(s, 400, "{v}");
        assert_eq!(error_code(&v), "bad_payload", "{v}");
        let msg = v["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains(hint), "'{msg}' should mention '{hint}'");
    }
}

#[tokio::test]
async fn user_and_server_mismatch_with_exact_messages() {
    let l = Local::new();
    let mut body = backend_body("plex");
    body["user_id"] = json!("1");
    body["options"] = json!({"match_user": true});
    let path = l.backend("ana", "plex", body).await;
    let (s, v) = l.send(&path, &plex(&fixture(SCROBBLE))).await;
    assert_eq!((s, error_code(&v)), (400, "user_mismatch"));
    assert_eq!(
        v["error"]["message"],
        "Request user id '58203317' does not match configured value '1'"
    );

    let mut body = backend_body("plex");
    body["server_id"] = json!("other");
    body["options"] = json!({"match_server": true});
    let path = l.backend("ana", "plex2", body).await;
    let (s, v) = l.send(&path, &plex(&fixture(SCROBBLE))).await;
    assert_eq!((s, error_code(&v)), (400, "server_mismatch"));
    assert_eq!(
        v["error"]["message"],
        "Request server id 'fff68c26af6ad5f25f1901280d1d40fd5ec560d3' does not match configured value 'other'"
    );

    // An added event without a user id is refused when match_user is on...
    let mut body = backend_body("jellyfin");
    body["user_id"] = json!("u1");
    body["options"] = json!({"match_user": true});
    let jf = l.backend("ana", "jf", body).await;
    let added = fixture("webhooks/jellyfin/itemadded-movie-10.10.3-jellyhook.json");
    let (s, v) = l
        .send(
            &jf,
            &wire(
                Transport::JellyfinTextPlain,
                &added,
                "Jellyfin-Server/10.10.3",
            ),
        )
        .await;
    assert_eq!((s, error_code(&v)), (400, "user_mismatch"), "{v}");
    assert_eq!(
        v["error"]["message"],
        "Request user id '' does not match configured value 'u1'"
    );
}

#[tokio::test]
async fn unknown_or_malformed_tokens_are_401_alike() {
    let l = Local::new();
    let real = l.backend("ana", "plex", backend_body("plex")).await;
    let mut forged = real.clone();
    let last = forged
        .pop()
        .map(|c| if c == '0' { '1' } else { '0' })
        .unwrap_or('0');
    forged.push(last);
    let w = plex(&fixture(SCROBBLE));
    let mut answers = Vec::new();
    for p in [
        "/webhook/nope",
        "/webhook/",
        forged.as_str(),
        "/webhook/wst_ZZ",
    ] {
        let (s, v) = l.send(p, &w).await;
        assert_eq!((s, error_code(&v)), (401, "unknown_webhook"), "{p}");
        answers.push(v);
    }
    assert!(
        answers.windows(2).all(|a| a[0] == a[1]),
        "no hint which: {answers:?}"
    );
    // Unclaimed deliveries are logged too, without a user.
    let (s, v) = l.api("GET", "/v1/deliveries/unclaimed", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["deliveries"].as_array().map(Vec::len), Some(4));
    assert_eq!(v["deliveries"][0]["status"], "unknown_webhook");
}

#[tokio::test]
async fn too_large_wrong_type_and_wrong_method() {
    let l = Local::new();
    let path = l.backend("ana", "plex", backend_body("plex")).await;
    let big = Wire {
        method: "POST",
        headers: vec![("content-type", "application/json".into())],
        body: vec![b' '; 6 * 1024 * 1024 + 1],
    };
    let (s, v) = l.send(&path, &big).await;
    assert_eq!((s, error_code(&v)), (413, "payload_too_large"));
    let png = Wire {
        method: "POST",
        headers: vec![("content-type", "image/png".into())],
        body: b"\x89PNG".to_vec(),
    };
    let (s, v) = l.send(&path, &png).await;
    assert_eq!((s, error_code(&v)), (415, "unsupported_media_type"));
    let get = Wire {
        method: "GET",
        headers: vec![],
        body: vec![],
    };
    let (s, v) = l.send(&path, &get).await;
    assert_eq!((s, error_code(&v)), (405, "method_not_allowed"));

    // All three are in the log, each with its outcome; bodies are capped.
    let (_, log) = l
        .api("GET", "/v1/users/ana/deliveries?body=true", None)
        .await;
    let d = log["deliveries"].as_array().expect("list");
    let statuses: Vec<&str> = d.iter().filter_map(|d| d["status"].as_str()).collect();
    assert_eq!(
        statuses,
        [
            "method_not_allowed",
            "unsupported_media_type",
            "payload_too_large"
        ]
    );
    assert_eq!(d[2]["body_truncated"], true);
    assert_eq!(
        d[2]["body"].as_str().map(str::len),
        Some(watchstate::ports::store::DELIVERY_BODY_CAP)
    );
}

#[tokio::test]
async fn the_log_keeps_the_json_without_the_thumbnail() {
    let l = Local::new();
    let path = l.backend("ana", "plex", backend_body("plex")).await;
    l.send(&path, &plex(&fixture(SCROBBLE))).await;
    let (_, log) = l
        .api("GET", "/v1/users/ana/deliveries?body=true", None)
        .await;
    let body = log["deliveries"][0]["body"].as_str().expect("body");
    let kept: Value = serde_json::from_str(body).expect("the kept body is the JSON payload");
    assert_eq!(kept["event"], "media.scrobble");
    assert!(!body.contains("JFIF"), "thumbnail bytes are not kept");
    assert_eq!(log["deliveries"][0]["event"], "media.scrobble");
    assert_eq!(log["deliveries"][0]["changed"], true);
}

/// A store whose every call fails as an unreachable database would.
struct DownStore;

fn down<T>() -> Result<T, StoreError> {
    Err(StoreError::Unavailable("connection refused".into()))
}

#[async_trait]
impl Store for DownStore {
    async fn put_user(&self, _: &str, _: DateTime<Utc>) -> Result<(User, bool), StoreError> {
        down()
    }
    async fn get_user(&self, _: &str) -> Result<Option<User>, StoreError> {
        down()
    }
    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        down()
    }
    async fn put_backend(&self, _: &Backend) -> Result<(), StoreError> {
        down()
    }
    async fn get_backend(&self, _: &str, _: &str) -> Result<Option<Backend>, StoreError> {
        down()
    }
    async fn list_backends(&self, _: &str) -> Result<Vec<Backend>, StoreError> {
        down()
    }
    async fn delete_backend(&self, _: &str, _: &str) -> Result<bool, StoreError> {
        down()
    }
    async fn backend_by_token_hash(&self, _: &str) -> Result<Option<Backend>, StoreError> {
        down()
    }
    async fn find_item(&self, _: &str, _: &[String]) -> Result<Option<Item>, StoreError> {
        down()
    }
    async fn get_item(&self, _: &str, _: &str) -> Result<Option<Item>, StoreError> {
        down()
    }
    async fn list_items(
        &self,
        _: &str,
        _: &ItemQuery,
        _: usize,
        _: Option<&str>,
    ) -> Result<Page<Item>, StoreError> {
        down()
    }
    async fn write_item(&self, _: ItemWrite<'_>) -> Result<WriteOutcome, StoreError> {
        down()
    }
    async fn absorb_item(&self, _: ItemWrite<'_>, _: &Item) -> Result<WriteOutcome, StoreError> {
        down()
    }
    async fn record_delivery(&self, _: &Delivery) -> Result<(), StoreError> {
        down()
    }
    async fn list_deliveries(
        &self,
        _: Option<&str>,
        _: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        down()
    }
    async fn get_delivery(&self, _: &str, _: &str) -> Result<Option<Delivery>, StoreError> {
        down()
    }
    async fn pending_changes(&self, _: usize) -> Result<Vec<StateChange>, StoreError> {
        down()
    }
    async fn ack_change(&self, _: &str) -> Result<(), StoreError> {
        down()
    }
    async fn record_task_run(&self, _: &TaskRun) -> Result<(), StoreError> {
        down()
    }
    async fn list_task_runs(&self, _: usize) -> Result<Vec<TaskRun>, StoreError> {
        down()
    }
}

#[tokio::test]
async fn store_down_is_503_never_500() {
    let l = Local::with_store(Arc::new(DownStore), tempfile::tempdir().expect("dir"));
    let token = watchstate::domain::token::derive(
        &watchstate::domain::token::TokenSecret::new("x"),
        "a",
        "b",
        "c",
    );
    let (s, v) = l
        .send(&format!("/webhook/{token}"), &plex(&fixture(SCROBBLE)))
        .await;
    assert_eq!((s, error_code(&v)), (503, "unavailable"));
    let (s, v) = l.api("GET", "/v1/users", None).await;
    assert_eq!((s, error_code(&v)), (503, "unavailable"));
}

async fn raw_api(
    l: &Local,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut b = http::Request::builder().method(method).uri(path);
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    let r = l
        .api
        .handle(b.body(Bytes::from(body.to_string())).expect("req"), &l.base)
        .await;
    (
        r.status().as_u16(),
        serde_json::from_str(r.body()).expect("json"),
    )
}

#[tokio::test]
async fn api_statuses_and_auth() {
    let l = Local::new();
    assert_eq!(raw_api(&l, "GET", "/v1/health", None, "").await.0, 200);
    let (s, v) = raw_api(&l, "GET", "/v1/users", None, "").await;
    assert_eq!((s, error_code(&v)), (401, "unauthorized"));
    let (s, _) = raw_api(&l, "GET", "/v1/users", Some("Bearer wrong"), "").await;
    assert_eq!(s, 401);
    assert_eq!(l.api("PUT", "/v1/users/ana", None).await.0, 201);
    assert_eq!(l.api("PUT", "/v1/users/ana", None).await.0, 200);
    assert_eq!(l.api("PUT", "/v1/users/bad%20name", None).await.0, 400);
    assert_eq!(l.api("GET", "/v1/users/bob/backends", None).await.0, 404);
    let (s, v) = l
        .api(
            "PUT",
            "/v1/users/ana/backends/p",
            Some(json!({"type": "kodi"})),
        )
        .await;
    assert_eq!((s, error_code(&v)), (400, "bad_request"));
    let (s, _) = l
        .api(
            "PUT",
            "/v1/users/ana/backends/p",
            Some(json!({"type": "plex", "import": {"enabled": true}})),
        )
        .await;
    assert_eq!(s, 400, "import needs url and token");
    let (s, v) = l
        .api(
            "PUT",
            "/v1/users/ana/backends/p",
            Some(
                json!({"type": "plex", "url": "http://plex:32400", "token": "sekrit-media-token"}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let url = v["webhook_url"].as_str().expect("url").to_string();
    assert!(url.starts_with("http://test.local/webhook/wst_"), "{url}");
    // The view never carries the media server token; the URL is stable across reads.
    let (_, got) = l.api("GET", "/v1/users/ana/backends/p", None).await;
    assert_eq!(got["webhook_url"], json!(url));
    assert!(!got.to_string().contains("sekrit-media-token"));
    let (_, list) = l.api("GET", "/v1/users/ana/backends", None).await;
    assert!(!list.to_string().contains("sekrit-media-token"));
    // Updating options keeps the URL; rotating changes it.
    let (s, v) = l
        .api(
            "PUT",
            "/v1/users/ana/backends/p",
            Some(json!({"type": "plex", "url": "http://plex:32400"})),
        )
        .await;
    assert_eq!((s, &v["webhook_url"]), (200, &json!(url)));
    assert_eq!(v["has_token"], true, "leaving the token out keeps it");
    let (_, v) = l
        .api(
            "PUT",
            "/v1/users/ana/backends/p?rotate_token=true",
            Some(json!({"type": "plex"})),
        )
        .await;
    assert_ne!(v["webhook_url"], json!(url));
    assert_eq!(
        l.api("GET", "/v1/users/ana/items?guid=imdb:nope", None)
            .await
            .0,
        400
    );
    assert_eq!(
        l.api("GET", "/v1/users/ana/items?limit=0", None).await.0,
        400
    );
    assert_eq!(l.api("PATCH", "/v1/users/ana", None).await.0, 405);
    assert_eq!(l.api("GET", "/v1/nothing", None).await.0, 404);
    assert_eq!(
        l.api("DELETE", "/v1/users/ana/backends/p", None).await.0,
        200
    );
    assert_eq!(
        l.api("DELETE", "/v1/users/ana/backends/p", None).await.0,
        404
    );
    let (s, v) = raw_api(
        &l,
        "PUT",
        "/v1/users/ana/backends/q",
        Some(&format!("Bearer {}", e2e::ADMIN_KEY)),
        "{",
    )
    .await;
    assert_eq!((s, error_code(&v)), (400, "bad_request"));
}

#[tokio::test]
async fn deleted_backend_webhook_is_unknown() {
    let l = Local::new();
    let path = l.backend("ana", "plex", backend_body("plex")).await;
    l.api("DELETE", "/v1/users/ana/backends/plex", None).await;
    let (s, _) = l.send(&path, &plex(&fixture(SCROBBLE))).await;
    assert_eq!(s, 401);
}

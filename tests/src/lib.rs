//! Test harness shared by the end-to-end tests: fixtures, request builders for each
//! media server's real transport, an in-process service pair on a temporary SQLite
//! store, and a `cargo lambda watch` runner for the real binaries.

pub mod emulator;
pub mod fake;
pub mod moto;
pub mod serve;
pub mod sim;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};
use watchstate::adapters::store::sqlite::SqliteStore;
use watchstate::domain::token::TokenSecret;
use watchstate::inbound::http::api::{ApiService, WebhookBase};
use watchstate::inbound::http::webhook::WebhookService;
use watchstate::ports::store::Store;

pub const ADMIN_KEY: &str = "test-admin-key";

/// A reqwest client with reqwest's defaults, for the tests' own calls. reqwest is built
/// without a crypto provider of its own (one TLS stack: the library's rustls with ring),
/// so ring is installed as the process default first.
pub fn http_client() -> reqwest::Client {
    http_client_builder().build().expect("reqwest client")
}

/// [`http_client`]'s builder, for other settings.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// The project's fixture folder (copied from the shared fixtures with attribution).
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

pub fn fixture(rel: &str) -> Vec<u8> {
    let p = fixtures_dir().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

/// How a media server sends its webhook (the transports of the fixtures' README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plex: multipart, JSON in part `payload` with its own content type, plus a JPEG thumb.
    PlexMultipart,
    /// Plex as some clients send it: `payload` as a plain form field, no thumb.
    PlexMultipartField,
    TautulliPutJson,
    JellyfinTextPlain,
    JellyfinJson,
    EmbyFormData,
    EmbyUrlEncoded,
    EmbyJson,
}

impl Transport {
    pub fn from_name(name: &str) -> Transport {
        match name {
            "plex-multipart" => Transport::PlexMultipart,
            "tautulli-put-json" => Transport::TautulliPutJson,
            "jellyfin-json-textplain" => Transport::JellyfinTextPlain,
            "emby-form-data" => Transport::EmbyFormData,
            "emby-json" => Transport::EmbyJson,
            other => panic!("unknown transport {other}"),
        }
    }
}

/// A fake JPEG thumbnail, as Plex attaches to some events.
pub const THUMB: &[u8] =
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9";

pub const BOUNDARY: &str = "------------------------a1b2c3d4e5f6";

/// One multipart part: (name, filename, content type, bytes).
pub type Part<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [u8]);

/// A multipart body.
pub fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, filename, ctype, data) in parts {
        out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match filename {
            Some(f) => out.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n")
                    .as_bytes(),
            ),
            None => out.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n").as_bytes(),
            ),
        }
        if let Some(c) = ctype {
            out.extend_from_slice(format!("Content-Type: {c}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

/// A webhook request as the media server would send it: (method, headers, body).
pub struct Wire {
    pub method: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

pub fn wire(transport: Transport, json: &[u8], user_agent: &str) -> Wire {
    let ua = ("user-agent", user_agent.to_string());
    let multipart_ct = format!("multipart/form-data; boundary={BOUNDARY}");
    match transport {
        Transport::PlexMultipart => Wire {
            method: "POST",
            headers: vec![ua, ("content-type", multipart_ct)],
            body: multipart(&[
                ("payload", None, Some("application/json"), json),
                ("thumb", Some("thumb.jpg"), Some("image/jpeg"), THUMB),
            ]),
        },
        Transport::PlexMultipartField => Wire {
            method: "POST",
            headers: vec![ua, ("content-type", multipart_ct)],
            body: multipart(&[("payload", None, None, json)]),
        },
        Transport::TautulliPutJson => Wire {
            method: "PUT",
            headers: vec![ua, ("content-type", "application/json".into())],
            body: json.to_vec(),
        },
        Transport::JellyfinTextPlain => Wire {
            method: "POST",
            headers: vec![ua, ("content-type", "text/plain; charset=utf-8".into())],
            body: json.to_vec(),
        },
        Transport::JellyfinJson | Transport::EmbyJson => Wire {
            method: "POST",
            headers: vec![ua, ("content-type", "application/json".into())],
            body: json.to_vec(),
        },
        Transport::EmbyFormData => Wire {
            method: "POST",
            headers: vec![ua, ("content-type", multipart_ct)],
            body: multipart(&[("data", None, None, json)]),
        },
        Transport::EmbyUrlEncoded => {
            let text = String::from_utf8_lossy(json);
            let body: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("data", &text)
                .finish();
            Wire {
                method: "POST",
                headers: vec![
                    ua,
                    (
                        "content-type",
                        "application/x-www-form-urlencoded".to_string(),
                    ),
                ],
                body: body.into_bytes(),
            }
        }
    }
}

/// The webhook and api services on a temporary SQLite store, called in process.
pub struct Local {
    pub store: Arc<dyn Store>,
    pub webhook: WebhookService,
    pub api: ApiService,
    pub base: WebhookBase,
    _dir: tempfile::TempDir,
}

impl Local {
    pub fn new() -> Local {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("watchstate.db")).expect("store"));
        Local::with_store(store, dir)
    }

    pub fn with_store(store: Arc<dyn Store>, dir: tempfile::TempDir) -> Local {
        Local {
            webhook: WebhookService {
                store: store.clone(),
                bus: None,
            },
            api: ApiService {
                store: store.clone(),
                admin_key: ADMIN_KEY.into(),
                token_secret: TokenSecret::new("test-secret"),
                tasks: None,
                bus: None,
                url_rules: Default::default(),
            },
            store,
            base: WebhookBase("http://test.local/webhook/".into()),
            _dir: dir,
        }
    }

    /// Call the api; returns (status, JSON body).
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {ADMIN_KEY}"))
            .body(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default().into_bytes(),
            ))
            .expect("request");
        let r = self.api.handle(req, &self.base).await;
        let status = r.status().as_u16();
        (
            status,
            serde_json::from_str(r.body()).expect("api answers JSON"),
        )
    }

    /// Create user and backend; returns the webhook path (`/webhook/{token}`).
    pub async fn backend(&self, user: &str, name: &str, body: Value) -> String {
        let (s, _) = self.api("PUT", &format!("/v1/users/{user}"), None).await;
        assert!(s == 200 || s == 201, "put user: {s}");
        let (s, v) = self
            .api(
                "PUT",
                &format!("/v1/users/{user}/backends/{name}"),
                Some(body),
            )
            .await;
        assert!(s == 200 || s == 201, "put backend: {s} {v}");
        let url = v["webhook_url"].as_str().expect("webhook_url").to_string();
        url.strip_prefix("http://test.local")
            .expect("base")
            .to_string()
    }

    /// Send a webhook; returns (status, JSON body).
    pub async fn send(&self, path: &str, w: &Wire) -> (u16, Value) {
        let mut b = http::Request::builder().method(w.method).uri(path);
        for (k, v) in &w.headers {
            b = b.header(*k, v);
        }
        let req = b.body(Bytes::from(w.body.clone())).expect("request");
        let r = self.webhook.handle(req).await;
        let status = r.status().as_u16();
        (
            status,
            serde_json::from_str(r.body()).expect("webhook answers JSON"),
        )
    }

    /// The items matching a query string, through the api.
    pub async fn items(&self, user: &str, query: &str) -> Vec<Value> {
        let (s, v) = self
            .api("GET", &format!("/v1/users/{user}/items?{query}"), None)
            .await;
        assert_eq!(s, 200, "{v}");
        v["items"].as_array().cloned().unwrap_or_default()
    }
}

impl Default for Local {
    fn default() -> Self {
        Local::new()
    }
}

/// The backend body for a source's backend type.
pub fn backend_body(kind: &str) -> Value {
    json!({"type": kind, "url": "http://media.invalid", "token": "media-token"})
}

/// A URL on loopback where nothing listens.
pub fn free_port_url() -> String {
    format!("http://127.0.0.1:{}", emulator::free_port())
}

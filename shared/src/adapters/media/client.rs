//! What push, import and backend validation need from a media server's HTTP API,
//! whatever the server. Each backend's folder implements it in its `client.rs`:
//! [`crate::adapters::media::plex::client`], and the Jellyfin family (Jellyfin and Emby share
//! one implementation, [`crate::adapters::media::jellyfin::client`], with Emby's differences
//! in [`crate::adapters::media::emby::client`]).
//!
//! This module holds the trait, the values it speaks ([`RemoteItem`], [`Identity`], [`Account`],
//! [`PageRequest`], [`LibraryPage`], [`ClientError`]) and the plumbing every client
//! shares ([`Endpoint`]: one request with auth, status mapping, retries and token
//! redaction).
//!
//! Secrets: the media server token only ever travels in a request header. It is never
//! logged, never part of an error message (messages are scrubbed of it anyway, in case
//! a server echoes it) and never shown by `Debug`.
//!
//! Retries: timeouts, connection errors and 5xx answers are retried with exponential
//! backoff and jitter ([`RetryPolicy`], default 3 attempts); 4xx answers never are.
//! Redirects are not followed: a custom token header must not be carried to another
//! host, and a POST turned into a GET would silently do nothing; a 3xx is reported
//! with its `Location` so the backend URL can be corrected.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};

use crate::domain::model::{Backend, BackendKind, Guids, Item, ItemType};

/// One media server account's HTTP API. Object safe: use it as
/// `Arc<dyn MediaClient>` (see [`client_for`]).
#[async_trait]
pub trait MediaClient: Send + Sync {
    /// Which server answers: Plex `machineIdentifier`, Jellyfin/Emby `Id`, with name and
    /// version where the server says.
    async fn identity(&self) -> Result<Identity, ClientError>;

    /// One item by this backend's own id, with the user's play state; `None` when the
    /// server answers 404 (the item is gone).
    async fn item(&self, item_id: &str) -> Result<Option<RemoteItem>, ClientError>;

    /// Look for an item this backend has not reported yet. Candidates come from a
    /// search, but only those whose ids match are kept (see [`same_item`]): a movie
    /// shares any guid; an episode shares an episode guid, or a series guid plus season
    /// and episode number. Never matched by title alone.
    async fn find(&self, item: &Item) -> Result<Option<RemoteItem>, ClientError>;

    /// Mark played for the backend's user. Plex has no way to set the time (it records
    /// "now"); Jellyfin and Emby take `at`, a real play time; `None` (no play time
    /// known) lets the server record "now".
    async fn mark_played(
        &self,
        item_id: &str,
        at: Option<DateTime<Utc>>,
    ) -> Result<(), ClientError>;

    async fn mark_unplayed(&self, item_id: &str) -> Result<(), ClientError>;

    /// Set the resume position. `duration_ms` is used by Plex's timeline (read from the
    /// item when not given); Jellyfin and Emby ignore it.
    async fn set_progress(
        &self,
        item_id: &str,
        position_ms: u64,
        duration_ms: Option<u64>,
    ) -> Result<(), ClientError>;

    /// One page of the library's movies and episodes, with play state. Start with
    /// [`PageRequest::first`]; continue with [`LibraryPage::next`] until it is `None`.
    async fn library_page(&self, request: &PageRequest) -> Result<LibraryPage, ClientError>;

    /// The accounts the server knows (Plex: the server's `/accounts`; Jellyfin and
    /// Emby: `/Users`), so a household can add one person per account with its user
    /// id. Needs a token allowed to list them (the server owner's, an API key).
    async fn accounts(&self) -> Result<Vec<Account>, ClientError>;
}

/// One account of a media server: the id its webhooks carry (Plex `Account.id`,
/// Jellyfin `UserId`, Emby `User.Id`) and its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub name: String,
}

/// The server behind a backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub server_id: String,
    pub name: Option<String>,
    pub version: Option<String>,
}

/// An item as one backend's API describes it, with the backend user's play state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteItem {
    /// The backend's own id (Plex ratingKey, Jellyfin/Emby Id).
    pub id: String,
    pub kind: ItemType,
    pub title: Option<String>,
    pub year: Option<i32>,
    pub series_title: Option<String>,
    pub season: Option<u32>,
    pub episode: Option<u32>,
    /// The item's own ids, normalized.
    pub guids: Guids,
    /// The show's ids, for episodes. Filled by `library_page` and `find`; `item` reads
    /// one item in one request and fills only what that answer carries (Plex legacy
    /// `grandparentGuid` and relative agent guids).
    pub series_guids: Guids,
    pub watched: bool,
    pub last_played_at: Option<DateTime<Utc>>,
    /// The backend's own play count, when it says (a completed play raises it).
    #[serde(default)]
    pub play_count: Option<u32>,
    /// Resume position; `None` when there is none (0).
    pub progress_ms: Option<u64>,
    pub duration_ms: Option<u64>,
}

impl RemoteItem {
    pub fn new(id: impl Into<String>, kind: ItemType) -> Self {
        RemoteItem {
            id: id.into(),
            kind,
            title: None,
            year: None,
            series_title: None,
            season: None,
            episode: None,
            guids: Guids::new(),
            series_guids: Guids::new(),
            watched: false,
            last_played_at: None,
            play_count: None,
            progress_ms: None,
            duration_ms: None,
        }
    }
}

/// Whether `candidate` is the stored `item` (the rule of [`MediaClient::find`],
/// [`crate::domain::sync::matching::same_item`]): same type, no contradicting guid, and a
/// shared guid, or (episodes) a shared series guid with the same season and episode
/// numbers. Titles are never compared.
pub fn same_item(item: &Item, candidate: &RemoteItem) -> bool {
    crate::domain::sync::matching::same_item(item, candidate.identity())
}

pub use crate::domain::sync::matching::shares_guid;

impl RemoteItem {
    /// What identifies this entry, for matching.
    pub fn identity(&self) -> crate::domain::sync::matching::Identity<'_> {
        crate::domain::sync::matching::Identity {
            kind: self.kind,
            guids: &self.guids,
            series_guids: &self.series_guids,
            season: self.season,
            episode: self.episode,
        }
    }
}

/// Where a library walk stands. Small and serializable, so an import can carry it in
/// an event and resume in another invocation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PageCursor {
    /// Plex: the key of the library section being walked (`None`: the first one).
    /// Jellyfin and Emby list the whole library at once and leave it `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// Entries of that listing already walked (Plex `X-Plex-Container-Start`,
    /// Jellyfin/Emby `StartIndex`).
    #[serde(default)]
    pub offset: u64,
}

/// Ask for one page of a library walk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    #[serde(default)]
    pub cursor: PageCursor,
    /// Entries per page (the server may return fewer; a page never crosses a Plex
    /// section).
    pub limit: u32,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: u32 = 200;

    /// The first page.
    pub fn first(limit: u32) -> Self {
        PageRequest {
            cursor: PageCursor::default(),
            limit,
        }
    }
}

/// One page of a library walk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LibraryPage {
    /// Movies and episodes of this page (other types are skipped).
    pub items: Vec<RemoteItem>,
    /// The request for the next page; `None` when the walk is complete.
    pub next: Option<PageRequest>,
    /// How many entries the listing walked by this page holds (the Plex section, or the
    /// whole Jellyfin/Emby library), when the server says.
    pub total: Option<u64>,
}

/// Why a call to a media server failed. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// No answer within the request timeout (or the connect timeout).
    #[error("the media server did not answer in time")]
    Timeout,
    /// The server answered with a non-success status.
    #[error("{request} answered HTTP {status}{}", detail(.message))]
    Status {
        status: u16,
        /// `kind METHOD /path` (no query string, no host).
        request: String,
        /// A short excerpt of the answer, or where a redirect pointed.
        message: String,
    },
    /// The request did not get through: connection refused or reset, DNS, TLS.
    #[error("could not reach the media server: {0}")]
    Transport(String),
    /// The answer could not be read as the expected JSON.
    #[error("unexpected answer from the media server: {0}")]
    BadResponse(String),
    /// The backend lacks something the call needs (user id, a usable URL).
    #[error("backend not usable: {0}")]
    NotConfigured(String),
}

fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

impl ClientError {
    /// Worth trying again: timeouts, transport errors and 5xx. Never a 4xx.
    pub fn retryable(&self) -> bool {
        match self {
            ClientError::Timeout | ClientError::Transport(_) => true,
            ClientError::Status { status, .. } => *status >= 500,
            ClientError::BadResponse(_) | ClientError::NotConfigured(_) => false,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// How often and how fast a failed call is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1: no retry).
    pub attempts: usize,
    /// Delay before the first retry; doubles each time, with jitter.
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 200 ms then 400 ms (plus jitter): with the 15 s request timeout a
    /// call gives up within about 46 s even against a server that never answers.
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// For tests: the same attempts, millisecond delays.
    pub fn quick() -> Self {
        RetryPolicy {
            attempts: 3,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        }
    }

    pub fn none() -> Self {
        RetryPolicy {
            attempts: 1,
            ..RetryPolicy::quick()
        }
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.attempts.saturating_sub(1))
            .with_jitter()
    }
}

/// The `User-Agent` of every call.
pub const USER_AGENT: &str = concat!("watchstate-serverless/", env!("CARGO_PKG_VERSION"));

/// The HTTP client every media-server client shares; build it once (in `main`).
/// rustls, 5 s connect timeout, 15 s request timeout, no redirects.
pub fn http_client() -> reqwest::Client {
    http_client_with(Duration::from_secs(5), Duration::from_secs(15))
}

/// TLS for media servers: rustls trusting the compiled-in Mozilla roots
/// (webpki-roots) with ring's crypto (as the SDK's client), built once per process.
/// A client built from it reads no certificate store from disk (the platform
/// verifier would, for every client).
fn tls_config() -> rustls::ClientConfig {
    static CONFIG: std::sync::LazyLock<rustls::ClientConfig> = std::sync::LazyLock::new(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
    });
    CONFIG.clone()
}

/// [`http_client`] with other timeouts (tests use short ones).
pub fn http_client_with(connect_timeout: Duration, request_timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config())
        .user_agent(USER_AGENT)
        .connect_timeout(connect_timeout)
        .timeout(request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the HTTP client's TLS backend initialises")
}

/// The client for a backend, with the default [`RetryPolicy`].
pub fn client_for(backend: &Backend, http: reqwest::Client) -> Arc<dyn MediaClient> {
    client_with(backend, http, RetryPolicy::default())
}

/// The client for a backend with a given retry policy.
pub fn client_with(
    backend: &Backend,
    http: reqwest::Client,
    retry: RetryPolicy,
) -> Arc<dyn MediaClient> {
    match backend.kind {
        BackendKind::Plex => Arc::new(crate::adapters::media::plex::client::PlexClient::new(
            backend, http, retry,
        )),
        BackendKind::Jellyfin => Arc::new(crate::adapters::media::jellyfin::client::new(
            backend, http, retry,
        )),
        BackendKind::Emby => Arc::new(crate::adapters::media::emby::client::new(
            backend, http, retry,
        )),
    }
}

// ---------------------------------------------------------------------------------
// Plumbing shared by the clients.
// ---------------------------------------------------------------------------------

/// A string that never shows itself in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Characters left as they are in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An id made safe to put in a URL path.
pub(crate) fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// One request, before it is sent.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub method: reqwest::Method,
    /// Path below the base URL, segments already encoded (see [`seg`]).
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub headers: Vec<(&'static str, String)>,
    pub json: Option<serde_json::Value>,
}

impl Call {
    pub(crate) fn new(method: reqwest::Method, path: impl Into<String>) -> Self {
        Call {
            method,
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            json: None,
        }
    }

    pub(crate) fn get(path: impl Into<String>) -> Self {
        Call::new(reqwest::Method::GET, path)
    }

    pub(crate) fn post(path: impl Into<String>) -> Self {
        Call::new(reqwest::Method::POST, path)
    }

    pub(crate) fn delete(path: impl Into<String>) -> Self {
        Call::new(reqwest::Method::DELETE, path)
    }

    pub(crate) fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    pub(crate) fn header(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((key, value.into()));
        self
    }

    pub(crate) fn json(mut self, body: serde_json::Value) -> Self {
        self.json = Some(body);
        self
    }
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub(crate) fn header_u64(&self, name: &str) -> Option<u64> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
    }
}

/// A media server's API as one backend reaches it: base URL, auth header, retries.
#[derive(Clone)]
pub(crate) struct Endpoint {
    http: reqwest::Client,
    kind: BackendKind,
    /// The base URL without a trailing `/`, or why it is not usable.
    base: Result<String, String>,
    auth_header: &'static str,
    auth_value: Secret,
    token: Secret,
    extra_headers: &'static [(&'static str, &'static str)],
    retry: RetryPolicy,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("kind", &self.kind)
            .field("base", &self.base)
            .field("auth_header", &self.auth_header)
            .field("auth_value", &self.auth_value)
            .field("retry", &self.retry)
            .finish()
    }
}

impl Endpoint {
    /// `auth_value` is the whole header value (it contains the token).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        kind: BackendKind,
        base_url: &str,
        token: &str,
        auth_header: &'static str,
        auth_value: String,
        extra_headers: &'static [(&'static str, &'static str)],
        http: reqwest::Client,
        retry: RetryPolicy,
    ) -> Self {
        Endpoint {
            http,
            kind,
            base: check_base(base_url),
            auth_header,
            auth_value: Secret::new(auth_value),
            token: Secret::new(token),
            extra_headers,
            retry,
        }
    }

    pub(crate) fn kind(&self) -> BackendKind {
        self.kind
    }

    /// `kind METHOD /path`, for messages.
    pub(crate) fn label(&self, call: &Call) -> String {
        format!("{} {} {}", self.kind, call.method, call.path)
    }

    /// Send with retries on retryable errors; a non-2xx answer is an error.
    pub(crate) async fn send(&self, call: &Call) -> Result<Answer, ClientError> {
        let attempt = || self.send_once(call);
        attempt
            .retry(self.retry.backoff())
            .when(ClientError::retryable)
            .notify(|e, delay| {
                tracing::debug!(
                    backend = %self.kind,
                    method = %call.method,
                    path = %call.path,
                    error = %e,
                    delay_ms = delay.as_millis() as u64,
                    "media server call failed; retrying"
                );
            })
            .await
    }

    /// Send and decode the JSON answer.
    pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        call: &Call,
    ) -> Result<T, ClientError> {
        let answer = self.send(call).await?;
        self.decode(call, &answer.body)
    }

    /// Decode an answer's JSON; the error names the request.
    pub(crate) fn decode<'a, T: Deserialize<'a>>(
        &self,
        call: &Call,
        body: &'a [u8],
    ) -> Result<T, ClientError> {
        serde_json::from_slice(body)
            .map_err(|e| ClientError::BadResponse(self.scrub(format!("{}: {e}", self.label(call)))))
    }

    async fn send_once(&self, call: &Call) -> Result<Answer, ClientError> {
        let base = self
            .base
            .as_ref()
            .map_err(|e| ClientError::NotConfigured(e.clone()))?;
        let url = format!("{base}{}", call.path);
        let mut rb = self
            .http
            .request(call.method.clone(), url)
            .header(self.auth_header, self.auth_value.expose())
            .header(reqwest::header::ACCEPT, "application/json");
        for (k, v) in self.extra_headers {
            rb = rb.header(*k, *v);
        }
        for (k, v) in &call.headers {
            rb = rb.header(*k, v.as_str());
        }
        if !call.query.is_empty() {
            rb = rb.query(&call.query);
        }
        if let Some(body) = &call.json {
            rb = rb.json(body);
        }
        let started = std::time::Instant::now();
        let response = rb.send().await.map_err(|e| self.request_error(call, e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.request_error(call, e))?;
        tracing::debug!(
            backend = %self.kind,
            method = %call.method,
            path = %call.path,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "media server call"
        );
        if status.is_success() {
            return Ok(Answer { headers, body });
        }
        let message = if status.is_redirection() {
            let to = headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?");
            format!("redirected to {to}; redirects are not followed, set the backend URL to the final address")
        } else {
            excerpt(&body)
        };
        Err(ClientError::Status {
            status: status.as_u16(),
            request: self.label(call),
            message: self.scrub(message),
        })
    }

    fn request_error(&self, call: &Call, e: reqwest::Error) -> ClientError {
        if e.is_timeout() {
            return ClientError::Timeout;
        }
        if e.is_builder() {
            return ClientError::NotConfigured(format!(
                "{}: the request cannot be built (is the token a valid header value?)",
                self.label(call)
            ));
        }
        // The chain of causes without the URL; the token is never in a URL, but scrub
        // anyway.
        let e = e.without_url();
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let s_text = s.to_string();
            if !text.contains(&s_text) {
                text.push_str(": ");
                text.push_str(&s_text);
            }
            source = s.source();
        }
        let message = self.scrub(format!("{}: {text}", self.label(call)));
        if e.is_decode() {
            ClientError::BadResponse(message)
        } else {
            ClientError::Transport(message)
        }
    }

    /// Remove the token from a text that might echo it.
    pub(crate) fn scrub(&self, text: String) -> String {
        scrub(text, self.token.expose())
    }
}

pub(crate) fn scrub(text: String, token: &str) -> String {
    let token = token.trim();
    if token.len() < 4 || !text.contains(token) {
        text
    } else {
        text.replace(token, "<redacted>")
    }
}

/// The start of an error body, on one line.
fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    for word in text.split_whitespace() {
        if out.len() + word.len() + 1 > MAX {
            out.push_str(" ...");
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

fn check_base(url: &str) -> Result<String, String> {
    let url = url.trim();
    match reqwest::Url::parse(url) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {
            Ok(url.trim_end_matches('/').to_string())
        }
        Ok(u) => Err(format!(
            "backend URL must be http(s) with a host, got scheme '{}'",
            u.scheme()
        )),
        Err(e) => Err(format!("backend URL is not a URL: {e}")),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::collections::BTreeMap;

    /// A TCP server on 127.0.0.1 that keeps the first bytes of its first connection
    /// (a TLS client's first record: its ClientHello), then hangs up; nothing when no
    /// client connects within 10 s.
    pub(crate) fn first_bytes_of_a_connection() -> (u16, std::thread::JoinHandle<Vec<u8>>) {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        listener.set_nonblocking(true).expect("non-blocking");
        let seen = std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                if let Ok((mut stream, _)) = listener.accept() {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut head = [0u8; 6];
                    return match stream.read_exact(&mut head) {
                        Ok(()) => head.to_vec(),
                        Err(_) => Vec::new(),
                    };
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Vec::new()
        });
        (port, seen)
    }

    /// A TLS handshake record (0x16, version 3.x) carrying a ClientHello (type 1).
    pub(crate) fn is_client_hello(head: &[u8]) -> bool {
        head.len() >= 6 && head[0] == 0x16 && head[1] == 0x03 && head[5] == 0x01
    }

    /// reqwest is built without a crypto provider of its own: the client must build
    /// with the library's (ring) and speak TLS to an https media server.
    #[tokio::test]
    async fn the_media_client_speaks_tls_to_an_https_server() {
        let (port, seen) = first_bytes_of_a_connection();
        let err = http_client()
            .get(format!("https://127.0.0.1:{port}/"))
            .send()
            .await
            .expect_err("the server hangs up");
        let head = seen.join().expect("server thread");
        assert!(
            is_client_hello(&head),
            "not a ClientHello: {head:02x?} ({err})"
        );
    }

    fn guids(pairs: &[(&str, &str)]) -> Guids {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn stored(kind: ItemType) -> Item {
        Item {
            id: "i1".into(),
            kind,
            title: Some("Title".into()),
            year: None,
            series_title: None,
            season: None,
            episode: None,
            guids: Guids::new(),
            series_guids: Guids::new(),
            watched: false,
            state_updated_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
            unplayed_at: None,
            progress_ms: None,
            progress_at: None,
            via: None,
            backends: BTreeMap::new(),
            version: 0,
        }
    }

    #[test]
    fn movies_match_on_any_shared_guid_only() {
        let mut item = stored(ItemType::Movie);
        item.guids = guids(&[("imdb", "tt0111161"), ("tmdb", "278")]);
        let mut c = RemoteItem::new("9", ItemType::Movie);
        c.title = Some("Title".into());
        assert!(!same_item(&item, &c), "title alone never matches");
        c.guids = guids(&[("tmdb", "278")]);
        assert!(same_item(&item, &c));
        c.guids = guids(&[("tmdb", "279"), ("imdb", "tt0111162")]);
        assert!(!same_item(&item, &c));
        let mut ep = RemoteItem::new("9", ItemType::Episode);
        ep.guids = guids(&[("tmdb", "278")]);
        assert!(!same_item(&item, &ep), "types must agree");
    }

    #[test]
    fn episodes_match_on_own_guid_or_series_guid_plus_numbers() {
        let mut item = stored(ItemType::Episode);
        item.series_guids = guids(&[("tvdb", "268592")]);
        item.season = Some(1);
        item.episode = Some(2);
        let mut c = RemoteItem::new("91", ItemType::Episode);
        c.series_guids = guids(&[("tvdb", "268592")]);
        c.season = Some(1);
        c.episode = Some(2);
        assert!(same_item(&item, &c));
        c.episode = Some(3);
        assert!(!same_item(&item, &c));
        c.series_guids = guids(&[("tvdb", "1")]);
        c.episode = Some(2);
        assert!(!same_item(&item, &c));
        item.guids = guids(&[("imdb", "tt2")]);
        c.guids = guids(&[("imdb", "tt2")]);
        assert!(same_item(&item, &c), "own episode guid is enough");
        // Numbers without a series guid never match.
        let mut bare = stored(ItemType::Episode);
        bare.season = Some(1);
        bare.episode = Some(2);
        let mut c2 = RemoteItem::new("91", ItemType::Episode);
        c2.season = Some(1);
        c2.episode = Some(2);
        assert!(!same_item(&bare, &c2));
    }

    #[test]
    fn retryable_errors() {
        assert!(ClientError::Timeout.retryable());
        assert!(ClientError::Transport("refused".into()).retryable());
        let status = |s| ClientError::Status {
            status: s,
            request: "r".into(),
            message: String::new(),
        };
        assert!(status(500).retryable());
        assert!(status(503).retryable());
        assert!(!status(400).retryable());
        assert!(!status(401).retryable());
        assert!(!status(404).retryable());
        assert!(!status(429).retryable());
        assert!(!ClientError::BadResponse("x".into()).retryable());
        assert!(!ClientError::NotConfigured("x".into()).retryable());
        assert!(status(404).is_not_found());
    }

    #[test]
    fn secrets_do_not_show() {
        let s = Secret::new("super-secret-token");
        assert_eq!(format!("{s:?}"), "<redacted>");
        let e = Endpoint::new(
            BackendKind::Plex,
            "http://plex.local:32400/",
            "super-secret-token",
            "X-Plex-Token",
            "super-secret-token".into(),
            &[],
            super::http_client(),
            RetryPolicy::default(),
        );
        let dbg = format!("{e:?}");
        assert!(!dbg.contains("super-secret-token"), "{dbg}");
        assert_eq!(
            e.scrub("echo super-secret-token back".into()),
            "echo <redacted> back"
        );
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            check_base("http://h:8096/jellyfin/").as_deref(),
            Ok("http://h:8096/jellyfin")
        );
        assert!(check_base("ftp://h").is_err());
        assert!(check_base("not a url").is_err());
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(seg("abc-1_2.3~"), "abc-1_2.3~");
        assert_eq!(seg("a/b c?"), "a%2Fb%20c%3F");
    }

    #[test]
    fn cursor_round_trips_as_json() {
        let r = PageRequest {
            cursor: PageCursor {
                section: Some("2".into()),
                offset: 400,
            },
            limit: 200,
        };
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(j, r#"{"cursor":{"section":"2","offset":400},"limit":200}"#);
        assert_eq!(serde_json::from_str::<PageRequest>(&j).unwrap(), r);
        let first: PageRequest = serde_json::from_str(r#"{"limit":50}"#).unwrap();
        assert_eq!(first, PageRequest::first(50));
    }
}

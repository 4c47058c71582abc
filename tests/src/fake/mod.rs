//! Fake Plex, Jellyfin and Emby servers: real HTTP servers on free loopback ports that
//! answer the API calls our clients make, in the response shapes of the fixtures under
//! `tests/fixtures/api/` (see `tests/fixtures/SOURCES.md`).
//!
//! Each fake holds a catalogue (movies, series, episodes with guids in that server's
//! spelling) and per-user play state; checks the token (401 on a wrong one); records
//! every call for assertions ([`FakeServer::calls`], [`FakeServer::calls_matching`]);
//! can fail on purpose ([`FakeServer::fail_next`], [`FakeServer::delay_next`]); and can
//! "echo" the webhook the real server would send when play state changes through its
//! API ([`FakeServer::set_echo`]: Jellyfin `UserDataSaved`, Emby
//! `item.markplayed`/`item.markunplayed`; Plex sends none for API scrobbles unless
//! [`FakeServer::set_plex_scrobble_echo`] asks it to).
//!
//! ```ignore
//! let fake = FakeServer::with_sample(BackendKind::Jellyfin).await;
//! let client = watchstate::adapters::media::client::client_for(&fake.backend("alice", "jf"), http);
//! client.mark_played(&fake.id(fake::MOVIE), at).await?;
//! assert_eq!(fake.calls_matching("POST", "/Users/u1/PlayedItems/").len(), 1);
//! ```
//!
//! The kind-specific routes are in [`plex`], [`jellyfin`] (shared with Emby) and
//! [`emby`].

pub mod emby;
pub mod jellyfin;
pub mod player;
pub mod plex;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use watchstate::domain::model::{Backend, BackendKind, BackendOptions, TaskOptions};

/// Catalogue numbers of the sample ([`FakeServer::with_sample`]); [`FakeServer::id`]
/// turns them into that server's ids.
pub const MOVIE: u64 = 101;
pub const SERIES: u64 = 200;
pub const EPISODE: u64 = 201;

/// The user id the Jellyfin and Emby fakes know from the start; Plex's token maps to
/// account `1`.
pub const USER: &str = "u1";
pub const PLEX_USER: &str = "1";

/// One recorded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    /// Path as sent (not percent-decoded).
    pub path: String,
    /// Query parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    /// Headers, names lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Call {
    /// The first value of a query parameter (exact name).
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter by name in any case (the servers read them so).
    pub fn qi(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// What a catalogue entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Movie,
    Series,
    Episode,
}

/// One catalogue entry.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeItem {
    pub id: String,
    pub kind: Kind,
    pub title: String,
    pub year: Option<i32>,
    /// Episodes: the series entry's id and title.
    pub series_id: Option<String>,
    pub series_title: Option<String>,
    pub season: Option<u32>,
    pub episode: Option<u32>,
    /// Normalized ids (`imdb -> tt0111161`), written in each server's spelling:
    /// Plex `Guid[]` `imdb://..`, Jellyfin/Emby `ProviderIds` `Imdb`.
    pub guids: BTreeMap<String, String>,
    /// Plex only: a legacy agent guid as the server writes it
    /// (`com.plexapp.agents.thetvdb://268592/1/1?lang=en`); `plex://..` otherwise.
    pub legacy_guid: Option<String>,
    pub duration_ms: Option<u64>,
}

impl FakeItem {
    pub fn movie(id: impl Into<String>, title: &str, year: i32) -> Self {
        FakeItem {
            id: id.into(),
            kind: Kind::Movie,
            title: title.into(),
            year: Some(year),
            series_id: None,
            series_title: None,
            season: None,
            episode: None,
            guids: BTreeMap::new(),
            legacy_guid: None,
            duration_ms: Some(8_520_000),
        }
    }

    pub fn series(id: impl Into<String>, title: &str, year: i32) -> Self {
        FakeItem {
            kind: Kind::Series,
            duration_ms: None,
            ..FakeItem::movie(id, title, year)
        }
    }

    pub fn episode(
        id: impl Into<String>,
        series: &FakeItem,
        season: u32,
        episode: u32,
        title: &str,
    ) -> Self {
        FakeItem {
            id: id.into(),
            kind: Kind::Episode,
            title: title.into(),
            year: series.year,
            series_id: Some(series.id.clone()),
            series_title: Some(series.title.clone()),
            season: Some(season),
            episode: Some(episode),
            guids: BTreeMap::new(),
            legacy_guid: None,
            duration_ms: Some(2_700_000),
        }
    }

    pub fn guid(mut self, kind: &str, value: &str) -> Self {
        self.guids.insert(kind.into(), value.into());
        self
    }

    pub fn legacy_guid(mut self, raw: &str) -> Self {
        self.legacy_guid = Some(raw.into());
        self
    }

    pub fn duration(mut self, ms: u64) -> Self {
        self.duration_ms = Some(ms);
        self
    }

    pub fn is_playable(&self) -> bool {
        self.kind != Kind::Series
    }
}

/// One user's state of one item.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlayState {
    pub played: bool,
    pub last_played: Option<DateTime<Utc>>,
    pub position_ms: u64,
    pub play_count: u32,
}

impl PlayState {
    pub fn played_at(at: DateTime<Utc>) -> Self {
        PlayState {
            played: true,
            last_played: Some(at),
            position_ms: 0,
            play_count: 1,
        }
    }

    pub fn at_position(ms: u64) -> Self {
        PlayState {
            position_ms: ms,
            ..PlayState::default()
        }
    }
}

/// A webhook the fake sent to its echo URL.
#[derive(Debug, Clone)]
pub struct Echo {
    pub event: String,
    pub item_id: String,
    /// The answer's status, `None` when it did not get through.
    pub status: Option<u16>,
    pub answer: String,
}

/// Items in insertion order, and play state per `(user, item)`.
#[derive(Debug, Default, Clone)]
pub struct Catalogue {
    items: Vec<FakeItem>,
    index: HashMap<String, usize>,
    /// series id -> positions of its episodes (so large catalogues stay fast).
    episodes: HashMap<String, Vec<usize>>,
    state: HashMap<(String, String), PlayState>,
}

impl Catalogue {
    pub fn add(&mut self, item: FakeItem) {
        let at = match self.index.get(&item.id) {
            Some(&i) => {
                if let Some(old) = self.items[i].series_id.clone() {
                    if let Some(list) = self.episodes.get_mut(&old) {
                        list.retain(|&x| x != i);
                    }
                }
                self.items[i] = item;
                i
            }
            None => {
                self.index.insert(item.id.clone(), self.items.len());
                self.items.push(item);
                self.items.len() - 1
            }
        };
        let item = &self.items[at];
        if let (Kind::Episode, Some(series)) = (item.kind, item.series_id.clone()) {
            self.episodes.entry(series).or_default().push(at);
        }
    }

    pub fn get(&self, id: &str) -> Option<&FakeItem> {
        self.index.get(id).map(|&i| &self.items[i])
    }

    /// Take an entry out, with every user's state of it.
    pub fn remove(&mut self, id: &str) -> Option<FakeItem> {
        let at = self.index.get(id).copied()?;
        let item = self.items.remove(at);
        let rest = std::mem::take(&mut self.items);
        self.index.clear();
        self.episodes.clear();
        for other in rest {
            self.add(other);
        }
        self.state.retain(|(_, item_id), _| item_id != id);
        Some(item)
    }

    pub fn items(&self) -> &[FakeItem] {
        &self.items
    }

    pub fn state(&self, user: &str, id: &str) -> Option<&PlayState> {
        self.state.get(&(user.to_string(), id.to_string()))
    }

    pub fn state_mut(&mut self, user: &str, id: &str) -> &mut PlayState {
        self.state
            .entry((user.to_string(), id.to_string()))
            .or_default()
    }

    pub fn set_state(&mut self, user: &str, id: &str, state: PlayState) {
        self.state.insert((user.to_string(), id.to_string()), state);
    }

    /// Episodes of a series in (season, episode) order.
    pub fn episodes_of(&self, series_id: &str) -> Vec<&FakeItem> {
        let mut eps: Vec<&FakeItem> = self
            .episodes
            .get(series_id)
            .into_iter()
            .flatten()
            .map(|&i| &self.items[i])
            .collect();
        eps.sort_by_key(|e| (e.season, e.episode));
        eps
    }
}

enum Failure {
    Status(u16),
    Delay(Duration),
}

/// Everything a fake holds, behind one lock.
pub(crate) struct State {
    pub kind: BackendKind,
    pub catalogue: Catalogue,
    pub calls: Vec<Call>,
    failures: VecDeque<Failure>,
    /// One-shot: answer the next request whose path contains the text, computed as
    /// usual, only after the delay (a page made now that arrives late).
    late_answers: Vec<(String, Duration)>,
    pub echo_url: Option<String>,
    /// Keep echo webhooks in [`State::captured`] instead of sending them (the
    /// simulation delivers them itself, dropped or late like any other webhook).
    pub echo_capture: bool,
    pub captured: Vec<Outgoing>,
    pub plex_scrobble_echo: bool,
    pub echoes: Vec<Echo>,
    pub server_id: String,
    pub server_name: String,
    pub version: String,
    /// token -> user id (Plex: the account the token belongs to; Jellyfin/Emby: any
    /// known token may act for any known user, like an API key).
    pub tokens: HashMap<String, String>,
    pub users: Vec<String>,
    /// user id -> account name (Plex `/accounts`, Jellyfin/Emby `/Users`).
    pub names: HashMap<String, String>,
    /// Requests being answered right now, and the most there ever were at once.
    pub in_flight: usize,
    pub peak_in_flight: usize,
}

impl State {
    /// The user a token stands for, if the token is known.
    pub fn user_of(&self, token: Option<&str>) -> Option<String> {
        token.and_then(|t| self.tokens.get(t)).cloned()
    }
}

/// A request as the routes see it.
pub(crate) type Req = Call;

/// A route's answer, with the webhook to echo, if any.
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    pub echo: Option<Outgoing>,
}

impl Reply {
    pub fn json(value: serde_json::Value) -> Reply {
        Reply {
            status: 200,
            content_type: "application/json",
            headers: Vec::new(),
            body: value.to_string().into_bytes(),
            echo: None,
        }
    }

    pub fn status(status: u16, text: &str) -> Reply {
        Reply {
            status,
            content_type: "text/plain",
            headers: Vec::new(),
            body: text.as_bytes().to_vec(),
            echo: None,
        }
    }

    pub fn empty(status: u16) -> Reply {
        Reply::status(status, "")
    }

    pub fn not_found() -> Reply {
        Reply::status(404, "Not Found")
    }

    pub fn unauthorized() -> Reply {
        Reply::status(401, "Unauthorized")
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    pub fn with_echo(mut self, echo: Option<Outgoing>) -> Reply {
        self.echo = echo;
        self
    }
}

/// A webhook to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub event: String,
    pub item_id: String,
    pub content_type: String,
    pub user_agent: &'static str,
    pub body: Vec<u8>,
}

/// A running fake server. Dropping it stops it.
pub struct FakeServer {
    kind: BackendKind,
    addr: SocketAddr,
    token: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeServer {
    /// An empty server of this kind.
    pub async fn start(kind: BackendKind) -> FakeServer {
        let token = format!("{kind}-token-0123456789");
        let (server_id, server_name, version) = match kind {
            BackendKind::Plex => (
                "4b7e1c2d9a8f6e5d4c3b2a1f0e9d8c7b6a5f4e3d",
                "plex-fake",
                "1.41.3.9314-a0bfb8370",
            ),
            BackendKind::Jellyfin => (
                "f609e82f7e65762c1914518c58756dab",
                "jellyfin-fake",
                "10.10.3",
            ),
            BackendKind::Emby => ("6cdebba5efa8782da4c16dad7654e457", "emby-fake", "4.8.11.0"),
        };
        let user = match kind {
            BackendKind::Plex => PLEX_USER,
            _ => USER,
        };
        let state = State {
            kind,
            catalogue: Catalogue::default(),
            calls: Vec::new(),
            failures: VecDeque::new(),
            late_answers: Vec::new(),
            echo_url: None,
            echo_capture: false,
            captured: Vec::new(),
            plex_scrobble_echo: false,
            echoes: Vec::new(),
            server_id: server_id.into(),
            server_name: server_name.into(),
            version: version.into(),
            tokens: HashMap::from([(token.clone(), user.to_string())]),
            users: vec![user.to_string()],
            names: HashMap::from([(user.to_string(), "owner".to_string())]),
            in_flight: 0,
            peak_in_flight: 0,
        };
        let state = Arc::new(Mutex::new(state));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let shared = state.clone();
        let task = tokio::spawn(async move {
            let http = crate::http_client_builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("echo client");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = shared.clone();
                let http = http.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let shared = shared.clone();
                        let http = http.clone();
                        async move { Ok::<_, Infallible>(serve(&shared, &http, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FakeServer {
            kind,
            addr,
            token,
            state,
            task,
        }
    }

    /// A movie, a series and one of its episodes, all with guids (ids: [`MOVIE`],
    /// [`SERIES`], [`EPISODE`] through [`FakeServer::id`]); nothing played.
    ///
    /// - movie "The Shawshank Redemption" (1994): `imdb:tt0111161`, `tmdb:278`
    /// - series "Breaking Bad" (2008): `tvdb:81189`, `imdb:tt0903747`
    /// - episode S01E01 "Pilot": `imdb:tt0959621`, `tvdb:349232`
    pub async fn with_sample(kind: BackendKind) -> FakeServer {
        let fake = FakeServer::start(kind).await;
        let series = FakeItem::series(fake.id(SERIES), "Breaking Bad", 2008)
            .guid("tvdb", "81189")
            .guid("imdb", "tt0903747");
        let episode = FakeItem::episode(fake.id(EPISODE), &series, 1, 1, "Pilot")
            .guid("imdb", "tt0959621")
            .guid("tvdb", "349232")
            .duration(3_480_000);
        fake.add(
            FakeItem::movie(fake.id(MOVIE), "The Shawshank Redemption", 1994)
                .guid("imdb", "tt0111161")
                .guid("tmdb", "278")
                .duration(8_520_000),
        );
        fake.add(series);
        fake.add(episode);
        fake
    }

    /// `n` playable items for import tests: even numbers are movies, odd ones episodes
    /// (ten per generated series, five per season). Every third item is played, every
    /// fifth (from the second) has a resume position. Catalogue numbers start at
    /// [`GENERATED_BASE`]; series are numbered from [`GENERATED_SERIES_BASE`].
    pub async fn with_generated(kind: BackendKind, n: usize) -> FakeServer {
        let fake = FakeServer::start(kind).await;
        {
            let mut st = fake.lock();
            let user = st.users[0].clone();
            let mut series: Option<FakeItem> = None;
            let played_at = Utc.with_ymd_and_hms(2024, 5, 1, 20, 0, 0).unwrap();
            for i in 0..n as u64 {
                let id = make_id(kind, GENERATED_BASE + i);
                let item = if i % 2 == 0 {
                    FakeItem::movie(
                        id.clone(),
                        &format!("Generated Movie {i}"),
                        1990 + (i % 30) as i32,
                    )
                    .guid("imdb", &format!("tt{}", 9_000_000 + i))
                    .guid("tmdb", &(900_000 + i).to_string())
                    .duration(6_000_000)
                } else {
                    let s = i / 20;
                    let k = (i % 20) / 2; // 0..10 within the series
                    let sid = make_id(kind, GENERATED_SERIES_BASE + s);
                    if series.as_ref().map(|x| x.id != sid).unwrap_or(true) {
                        let show = FakeItem::series(
                            sid.clone(),
                            &format!("Generated Show {s}"),
                            2000 + (s % 20) as i32,
                        )
                        .guid("tvdb", &(800_000 + s).to_string())
                        .guid("imdb", &format!("tt{}", 8_000_000 + s));
                        st.catalogue.add(show.clone());
                        series = Some(show);
                    }
                    let show = series.as_ref().expect("series");
                    FakeItem::episode(
                        id.clone(),
                        show,
                        1 + (k / 5) as u32,
                        1 + (k % 5) as u32,
                        &format!("Episode {i}"),
                    )
                    .guid("tvdb", &(7_000_000 + i).to_string())
                    .duration(2_400_000)
                };
                st.catalogue.add(item);
                if i % 3 == 0 {
                    st.catalogue
                        .set_state(&user, &id, PlayState::played_at(played_at));
                } else if i % 5 == 1 {
                    st.catalogue
                        .set_state(&user, &id, PlayState::at_position(600_000));
                }
            }
        }
        fake
    }

    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    /// `http://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token the fake accepts.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The user the token stands for (Plex) / the user id to configure (Jellyfin, Emby).
    pub fn user_id(&self) -> String {
        self.lock().users[0].clone()
    }

    pub fn server_id(&self) -> String {
        self.lock().server_id.clone()
    }

    pub fn set_server_id(&self, id: &str) {
        self.lock().server_id = id.into();
    }

    /// This server's id for a catalogue number: Plex ratingKeys and Emby ids are
    /// numbers, Jellyfin ids 32 hex digits.
    pub fn id(&self, n: u64) -> String {
        make_id(self.kind, n)
    }

    /// A backend pointing at this fake, as the store would hold it.
    pub fn backend(&self, user: &str, name: &str) -> Backend {
        let now = Utc::now();
        Backend {
            user: user.into(),
            name: name.into(),
            kind: self.kind,
            url: self.url(),
            token: self.token.clone(),
            server_id: Some(self.server_id()),
            user_id: Some(self.user_id()),
            options: BackendOptions::default(),
            import: TaskOptions::default(),
            export: TaskOptions::default(),
            webhook_nonce: "fake-nonce".into(),
            webhook_token_hash: String::new(),
            created_at: now,
            updated_at: now,
        }
    }

    /// The body of `PUT /v1/users/{user}/backends/{name}` for this fake.
    pub fn backend_body(&self) -> serde_json::Value {
        serde_json::json!({
            "type": self.kind.as_str(),
            "url": self.url(),
            "token": self.token,
            "server_id": self.server_id(),
            "user_id": self.user_id(),
        })
    }

    /// Another accepted token, standing for `user` (added to the known users).
    pub fn add_user(&self, token: &str, user: &str) {
        let mut st = self.lock();
        st.tokens.insert(token.into(), user.into());
        if !st.users.iter().any(|u| u == user) {
            st.users.push(user.into());
        }
    }

    /// An account the server knows (listed by Plex `/accounts`, Jellyfin/Emby
    /// `/Users`), without a token of its own.
    pub fn add_account(&self, user: &str, name: &str) {
        let mut st = self.lock();
        if !st.users.iter().any(|u| u == user) {
            st.users.push(user.into());
        }
        st.names.insert(user.into(), name.into());
    }

    pub fn add(&self, item: FakeItem) {
        self.lock().catalogue.add(item);
    }

    /// The file of item `id` is replaced (an upgrade, a re-scan): the server drops the
    /// entry and adds it again as `new_id`, same metadata, no one's play state (what
    /// Jellyfin does; Plex can do the same with a new ratingKey).
    pub fn replace_file(&self, id: &str, new_id: &str) -> Option<FakeItem> {
        let mut st = self.lock();
        let mut item = st.catalogue.remove(id)?;
        item.id = new_id.to_string();
        st.catalogue.add(item.clone());
        Some(item)
    }

    pub fn item(&self, id: &str) -> Option<FakeItem> {
        self.lock().catalogue.get(id).cloned()
    }

    /// Number of catalogue entries (series included).
    pub fn len(&self) -> usize {
        self.lock().catalogue.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The default user's state of an item.
    pub fn state(&self, id: &str) -> PlayState {
        let user = self.user_id();
        self.state_of(&user, id)
    }

    pub fn state_of(&self, user: &str, id: &str) -> PlayState {
        self.lock()
            .catalogue
            .state(user, id)
            .cloned()
            .unwrap_or_default()
    }

    /// Set the default user's state of an item.
    pub fn set_state(&self, id: &str, state: PlayState) {
        let user = self.user_id();
        self.lock().catalogue.set_state(&user, id, state);
    }

    /// Set one user's state of an item.
    pub fn set_state_of(&self, user: &str, id: &str, state: PlayState) {
        self.lock().catalogue.set_state(user, id, state);
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Calls with this method whose path starts with `path_prefix`.
    pub fn calls_matching(&self, method: &str, path_prefix: &str) -> Vec<Call> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.method.eq_ignore_ascii_case(method) && c.path.starts_with(path_prefix))
            .cloned()
            .collect()
    }

    /// The most requests this server was answering at once (since the last reset).
    pub fn peak_in_flight(&self) -> usize {
        self.lock().peak_in_flight
    }

    pub fn reset_peak_in_flight(&self) {
        let mut st = self.lock();
        st.peak_in_flight = st.in_flight;
    }

    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Answer the next `n` requests with `status` (e.g. 503).
    pub fn fail_next(&self, n: usize, status: u16) {
        let mut st = self.lock();
        for _ in 0..n {
            st.failures.push_back(Failure::Status(status));
        }
    }

    /// Drop every failure and delay still queued.
    pub fn clear_failures(&self) {
        self.lock().failures.clear();
    }

    /// Hold the next `n` requests for `delay` before answering them normally.
    pub fn delay_next(&self, n: usize, delay: Duration) {
        let mut st = self.lock();
        for _ in 0..n {
            st.failures.push_back(Failure::Delay(delay));
        }
    }

    /// Answer the next request whose path contains `path_part` late: the answer is
    /// made when the request arrives and delivered after `delay`, like a page that
    /// took long on the wire. What changes meanwhile is not in it.
    pub fn answer_late(&self, path_part: &str, delay: Duration) {
        self.lock()
            .late_answers
            .push((path_part.to_string(), delay));
    }

    /// Where to POST the webhooks this server would send when play state changes
    /// through its API (`None`: send nothing).
    pub fn set_echo(&self, url: Option<&str>) {
        self.lock().echo_url = url.map(str::to_string);
    }

    /// Plex sends no webhook for an API scrobble; `true` makes this fake send
    /// `media.scrobble` anyway (as a Plex client playing to the end would cause).
    pub fn set_plex_scrobble_echo(&self, on: bool) {
        self.lock().plex_scrobble_echo = on;
    }

    /// Keep the echo webhooks instead of sending them; [`FakeServer::take_captured`]
    /// hands them out.
    pub fn capture_echoes(&self, on: bool) {
        self.lock().echo_capture = on;
    }

    /// The echo webhooks kept since the last call, oldest first.
    pub fn take_captured(&self) -> Vec<Outgoing> {
        std::mem::take(&mut self.lock().captured)
    }

    /// Webhooks sent to the echo URL, with their answers.
    pub fn echoes(&self) -> Vec<Echo> {
        self.lock().echoes.clone()
    }

    /// Wait until `n` echoes were answered (or `timeout` passed); returns them.
    pub async fn wait_echoes(&self, n: usize, timeout: Duration) -> Vec<Echo> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let echoes = self.echoes();
            if echoes.len() >= n || tokio::time::Instant::now() >= deadline {
                return echoes;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// First catalogue number of [`FakeServer::with_generated`] items and series.
pub const GENERATED_BASE: u64 = 100_000;
pub const GENERATED_SERIES_BASE: u64 = 10_000_000;

/// A server's id for a catalogue number.
pub fn make_id(kind: BackendKind, n: u64) -> String {
    match kind {
        BackendKind::Plex | BackendKind::Emby => n.to_string(),
        // Spread the number over 128 bits so ids look like Jellyfin's.
        BackendKind::Jellyfin => format!(
            "{:032x}",
            (n as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)
        ),
    }
}

/// Now, to the second (what the servers store).
pub(crate) fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(Utc::now().timestamp(), 0)
        .single()
        .unwrap_or_else(Utc::now)
}

/// Counts a request in flight for as long as it lives.
struct InFlight<'a>(&'a Arc<Mutex<State>>);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Arc<Mutex<State>>) -> Self {
        if let Ok(mut st) = shared.lock() {
            st.in_flight += 1;
            st.peak_in_flight = st.peak_in_flight.max(st.in_flight);
        }
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Ok(mut st) = self.0.lock() {
            st.in_flight = st.in_flight.saturating_sub(1);
        }
    }
}

async fn serve(
    shared: &Arc<Mutex<State>>,
    http: &reqwest::Client,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let _counted = InFlight::enter(shared);
    serve_counted(shared, http, req).await
}

async fn serve_counted(
    shared: &Arc<Mutex<State>>,
    http: &reqwest::Client,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let call = Call {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts
            .uri
            .query()
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let (failure, echo_url, capture) = {
        let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
        st.calls.push(call.clone());
        (
            st.failures.pop_front(),
            st.echo_url.clone(),
            st.echo_capture,
        )
    };
    let reply = match failure {
        Some(Failure::Status(s)) => Reply::status(s, "Service Unavailable (injected)"),
        other => {
            if let Some(Failure::Delay(d)) = other {
                tokio::time::sleep(d).await;
            }
            let (reply, late) = {
                let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
                let reply = match st.kind {
                    BackendKind::Plex => plex::route(&mut st, &call),
                    BackendKind::Jellyfin | BackendKind::Emby => jellyfin::route(&mut st, &call),
                };
                let late = st
                    .late_answers
                    .iter()
                    .position(|(part, _)| call.path.contains(part.as_str()))
                    .map(|i| st.late_answers.remove(i).1);
                (reply, late)
            };
            if let Some(d) = late {
                tokio::time::sleep(d).await;
            }
            reply
        }
    };
    if let (Some(out), true) = (reply.echo.as_ref(), capture) {
        let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
        st.captured.push(out.clone());
    } else if let (Some(out), Some(url)) = (reply.echo.as_ref(), echo_url) {
        send_echo(shared.clone(), http.clone(), url, out);
    }
    let mut builder = hyper::Response::builder()
        .status(reply.status)
        .header("content-type", reply.content_type);
    for (k, v) in &reply.headers {
        builder = builder.header(*k, v);
    }
    builder
        .body(Full::new(Bytes::from(reply.body)))
        .expect("response")
}

fn send_echo(shared: Arc<Mutex<State>>, http: reqwest::Client, url: String, out: &Outgoing) {
    let event = out.event.clone();
    let item_id = out.item_id.clone();
    let request = http
        .post(url)
        .header("content-type", out.content_type.as_str())
        .header("user-agent", out.user_agent)
        .body(out.body.clone());
    tokio::spawn(async move {
        let (status, answer) = match request.send().await {
            Ok(r) => {
                let s = r.status().as_u16();
                (Some(s), r.text().await.unwrap_or_default())
            }
            Err(e) => (None, e.to_string()),
        };
        shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .echoes
            .push(Echo {
                event,
                item_id,
                status,
                answer,
            });
    });
}

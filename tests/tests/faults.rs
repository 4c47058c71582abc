//! Faults, counted (issue 8, "What to build" 7): the store unreachable during a
//! webhook, the bus failing after the write, a media server slow or down during a push.
//! In each, nothing is lost: the next import, the outbox drain or the export delivers
//! what the fault held up. A person's play on Jellyfin (the fake's own player action
//! and webhook) is the change in every test; Plex and Emby must end up played.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use e2e::fake::player::PlayerAction;
use e2e::fake::{FakeServer, Outgoing, EPISODE, MOVIE};
use e2e::Local;
use serde_json::{json, Value};
use watchstate::adapters::local_bus::LocalBus;
use watchstate::adapters::media::client::HttpClients;
use watchstate::adapters::media::client::{http_client_with, RetryPolicy};
use watchstate::adapters::store::sqlite::SqliteStore;
use watchstate::app::push::{LocalPush, Pusher};
use watchstate::app::tasks::export::{ExportOptions, Exporter};
use watchstate::app::tasks::import::{ImportOptions, Importer};
use watchstate::app::tasks::{publish_changes, Budget, Deps, TaskPayload};
use watchstate::domain::model::{Backend, BackendKind, Delivery, Item, StateChange, User};
use watchstate::ports::bus::{Bus, BusError};
use watchstate::ports::store::{
    ItemQuery, ItemWrite, Page, Store, StoreError, TaskRun, WriteOutcome,
};

type R<T> = Result<T, StoreError>;

/// How an injected store failure behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The call never reaches the store.
    Before,
    /// The call takes effect but its answer is lost (a timeout after the commit).
    After,
}

/// The store, failing every call from the `fail_from`-th one on while armed.
struct Flaky {
    inner: Arc<dyn Store>,
    calls: AtomicUsize,
    fail_from: AtomicUsize,
    after: AtomicBool,
}

impl Flaky {
    fn new(inner: Arc<dyn Store>) -> Flaky {
        Flaky {
            inner,
            calls: AtomicUsize::new(0),
            fail_from: AtomicUsize::new(usize::MAX),
            after: AtomicBool::new(false),
        }
    }

    /// Fail the `k`-th call from now and every one after it.
    fn fail_after_calls(&self, k: usize, mode: Mode) {
        self.after.store(mode == Mode::After, Ordering::SeqCst);
        self.fail_from
            .store(self.calls.load(Ordering::SeqCst) + k, Ordering::SeqCst);
    }

    fn restore(&self) {
        self.fail_from.store(usize::MAX, Ordering::SeqCst);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn around<T>(&self, f: impl Future<Output = R<T>>) -> R<T> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.fail_from.load(Ordering::SeqCst) {
            return f.await;
        }
        if self.after.load(Ordering::SeqCst) {
            let _ = f.await;
        }
        Err(StoreError::Unavailable(
            "injected: store unreachable".into(),
        ))
    }
}

#[async_trait]
impl Store for Flaky {
    async fn put_user(&self, name: &str, now: DateTime<Utc>) -> R<(User, bool)> {
        self.around(self.inner.put_user(name, now)).await
    }
    async fn get_user(&self, name: &str) -> R<Option<User>> {
        self.around(self.inner.get_user(name)).await
    }
    async fn list_users(&self) -> R<Vec<User>> {
        self.around(self.inner.list_users()).await
    }
    async fn put_backend(&self, backend: &Backend) -> R<()> {
        self.around(self.inner.put_backend(backend)).await
    }
    async fn get_backend(&self, user: &str, name: &str) -> R<Option<Backend>> {
        self.around(self.inner.get_backend(user, name)).await
    }
    async fn list_backends(&self, user: &str) -> R<Vec<Backend>> {
        self.around(self.inner.list_backends(user)).await
    }
    async fn delete_backend(&self, user: &str, name: &str) -> R<bool> {
        self.around(self.inner.delete_backend(user, name)).await
    }
    async fn backend_by_token_hash(&self, hash: &str) -> R<Option<Backend>> {
        self.around(self.inner.backend_by_token_hash(hash)).await
    }
    async fn find_item(&self, user: &str, keys: &[String]) -> R<Option<Item>> {
        self.around(self.inner.find_item(user, keys)).await
    }
    async fn find_items(&self, user: &str, keys: &[String]) -> R<Vec<Item>> {
        self.around(self.inner.find_items(user, keys)).await
    }
    async fn get_item(&self, user: &str, id: &str) -> R<Option<Item>> {
        self.around(self.inner.get_item(user, id)).await
    }
    async fn list_items(
        &self,
        user: &str,
        query: &ItemQuery,
        limit: usize,
        cursor: Option<&str>,
    ) -> R<Page<Item>> {
        self.around(self.inner.list_items(user, query, limit, cursor))
            .await
    }
    async fn write_item(&self, write: ItemWrite<'_>) -> R<WriteOutcome> {
        self.around(self.inner.write_item(write)).await
    }
    async fn absorb_item(&self, write: ItemWrite<'_>, absorbed: &Item) -> R<WriteOutcome> {
        self.around(self.inner.absorb_item(write, absorbed)).await
    }
    async fn create_items_batch(&self, writes: &[ItemWrite<'_>]) -> R<Vec<WriteOutcome>> {
        self.around(self.inner.create_items_batch(writes)).await
    }
    async fn record_delivery(&self, delivery: &Delivery) -> R<()> {
        self.around(self.inner.record_delivery(delivery)).await
    }
    async fn list_deliveries(&self, user: Option<&str>, limit: usize) -> R<Vec<Delivery>> {
        self.around(self.inner.list_deliveries(user, limit)).await
    }
    async fn get_delivery(&self, user: &str, id: &str) -> R<Option<Delivery>> {
        self.around(self.inner.get_delivery(user, id)).await
    }
    async fn pending_changes(&self, limit: usize) -> R<Vec<StateChange>> {
        self.around(self.inner.pending_changes(limit)).await
    }
    async fn ack_change(&self, id: &str) -> R<()> {
        self.around(self.inner.ack_change(id)).await
    }
    async fn record_task_run(&self, run: &TaskRun) -> R<()> {
        self.around(self.inner.record_task_run(run)).await
    }
    async fn list_task_runs(&self, limit: usize) -> R<Vec<TaskRun>> {
        self.around(self.inner.list_task_runs(limit)).await
    }
}

/// The local bus, failing while `down`.
struct FlakyBus {
    inner: LocalBus,
    down: AtomicBool,
    failed: AtomicUsize,
}

#[async_trait]
impl Bus for FlakyBus {
    async fn publish(&self, change: &StateChange) -> Result<(), BusError> {
        if self.down.load(Ordering::SeqCst) {
            self.failed.fetch_add(1, Ordering::SeqCst);
            return Err(BusError::Unavailable("injected: bus down".into()));
        }
        self.inner.publish(change).await
    }
}

const USER: &str = "ana";

/// A person with Plex, Jellyfin and Emby (the sample catalogues), import and export
/// on, the webhook service and push in process over a store that can fail.
struct House {
    fakes: Vec<FakeServer>,
    flaky: Arc<Flaky>,
    bus: Arc<FlakyBus>,
    local: Local,
    deps: Deps,
    paths: Vec<String>,
}

const NAMES: [&str; 3] = ["plex", "jellyfin", "emby"];

impl House {
    async fn new() -> House {
        let fakes = vec![
            FakeServer::with_sample(BackendKind::Plex).await,
            FakeServer::with_sample(BackendKind::Jellyfin).await,
            FakeServer::with_sample(BackendKind::Emby).await,
        ];
        let dir = tempfile::tempdir().expect("dir");
        let sqlite: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("w.db")).expect("store"));
        let flaky = Arc::new(Flaky::new(sqlite));
        let store: Arc<dyn Store> = flaky.clone();
        let clients = Arc::new(HttpClients {
            // Short timeouts, so a stalled server is a timeout that is retried.
            http: http_client_with(Duration::from_millis(300), Duration::from_millis(600)),
            retry: RetryPolicy::quick(),
        });
        let bus = Arc::new(FlakyBus {
            inner: LocalBus::new(Arc::new(LocalPush(Pusher {
                store: store.clone(),
                clients: clients.clone(),
            }))),
            down: AtomicBool::new(false),
            failed: AtomicUsize::new(0),
        });
        let mut local = Local::with_store(store.clone(), dir);
        local.webhook.bus = Some(bus.clone());
        let mut paths = Vec::new();
        for (fake, name) in fakes.iter().zip(NAMES) {
            let mut body = fake.backend_body();
            body["import"] = json!({"enabled": true});
            body["export"] = json!({"enabled": true});
            paths.push(local.backend(USER, name, body).await);
        }
        let deps = Deps {
            store,
            clients,
            bus: Some(bus.clone()),
        };
        House {
            fakes,
            flaky,
            bus,
            local,
            deps,
            paths,
        }
    }

    fn jellyfin(&self) -> &FakeServer {
        &self.fakes[1]
    }

    /// The person watches catalogue item `n` to the end on Jellyfin; returns the
    /// `PlaybackStop` webhook Jellyfin sends for it.
    fn watch_on_jellyfin(&self, n: u64) -> Outgoing {
        let jf = self.jellyfin();
        let hooks = jf
            .act(&jf.user_id(), &jf.id(n), PlayerAction::WatchToEnd)
            .expect("in the catalogue");
        hooks
            .into_iter()
            .find(|h| h.event == "PlaybackStop")
            .expect("PlaybackStop")
    }

    async fn send(&self, hook: &Outgoing) -> (u16, Value) {
        let req = http::Request::builder()
            .method("POST")
            .uri(&self.paths[1])
            .header("content-type", hook.content_type.as_str())
            .header("user-agent", hook.user_agent)
            .body(Bytes::from(hook.body.clone()))
            .expect("request");
        let r = self.local.webhook.handle(req).await;
        let status = r.status().as_u16();
        (
            status,
            serde_json::from_str(r.body()).unwrap_or(Value::Null),
        )
    }

    /// Whether catalogue item `n` is played on Plex and on Emby.
    fn played_elsewhere(&self, n: u64) -> (bool, bool) {
        let plex = &self.fakes[0];
        let emby = &self.fakes[2];
        (
            plex.state(&plex.id(n)).played,
            emby.state(&emby.id(n)).played,
        )
    }

    async fn import_and_publish(&self) -> u64 {
        let importer = Importer::new(
            &self.deps,
            ImportOptions {
                page_attempts: 2,
                page_backoff: Duration::from_millis(5),
                ..ImportOptions::default()
            },
        );
        let r = importer
            .run(&TaskPayload::default(), Budget::unlimited())
            .await
            .expect("import");
        assert!(r.complete(), "{r:#?}");
        publish_changes(&self.deps, 500).await
    }

    async fn export(&self) {
        Exporter::new(&self.deps, ExportOptions::default())
            .run(&TaskPayload::default(), Budget::unlimited())
            .await
            .expect("export");
    }

    async fn items(&self) -> Vec<Item> {
        self.deps
            .store
            .list_items(USER, &ItemQuery::All, 100, None)
            .await
            .expect("items")
            .items
    }
}

/// The store fails at every point of a webhook's work in turn (never reached, or
/// reached with the answer lost): the webhook answers 200 or 503 `unavailable`, never
/// anything else; after a 503 with the call never reached, nothing is stored and
/// nothing queued; and the next import (Jellyfin still shows the play: media servers
/// do not retry) brings the play to Plex and Emby, once, in every case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_during_a_webhook_loses_nothing_the_next_import_repairs_it() {
    // How many store calls a webhook makes when all goes well.
    let calm = House::new().await;
    let hook = calm.watch_on_jellyfin(MOVIE);
    let before = calm.flaky.calls();
    let (status, body) = calm.send(&hook).await;
    assert_eq!((status, &body["changed"]), (200, &json!(true)), "{body}");
    let per_webhook = calm.flaky.calls() - before;
    assert!(per_webhook >= 3, "{per_webhook} store calls");
    assert_eq!(calm.played_elsewhere(MOVIE), (true, true));

    let (mut unavailable, mut stored, mut repaired_by_import, mut cases) = (0, 0, 0, 0);
    for mode in [Mode::Before, Mode::After] {
        for k in 0..per_webhook {
            cases += 1;
            let h = House::new().await;
            let hook = h.watch_on_jellyfin(MOVIE);
            h.flaky.fail_after_calls(k, mode);
            let (status, body) = h.send(&hook).await;
            h.flaky.restore();
            let case = format!("{mode:?} failing from store call {k} of {per_webhook}");
            match status {
                503 => {
                    unavailable += 1;
                    assert_eq!(body["error"]["code"], "unavailable", "{case}: {body}");
                    if mode == Mode::Before {
                        let items = h.items().await;
                        assert!(items.is_empty(), "{case}: half written: {items:#?}");
                        let queued = h.deps.store.pending_changes(10).await.expect("outbox");
                        assert!(queued.is_empty(), "{case}: queued {queued:?}");
                    }
                }
                200 => stored += 1,
                other => panic!("{case}: answered {other} {body}"),
            }
            if h.played_elsewhere(MOVIE) != (true, true) {
                repaired_by_import += 1;
            }
            h.import_and_publish().await;
            assert_eq!(h.played_elsewhere(MOVIE), (true, true), "{case}: lost");
            let movie: Vec<Item> = h
                .items()
                .await
                .into_iter()
                .filter(|i| i.guids.get("imdb").map(String::as_str) == Some("tt0111161"))
                .collect();
            assert_eq!(movie.len(), 1, "{case}: {movie:#?}");
            assert!(movie[0].watched, "{case}: {:#?}", movie[0]);
            let marks = h.fakes[0].calls_matching("GET", "/:/scrobble").len()
                + h.fakes[2].calls_matching("POST", "/Users/").len();
            assert_eq!(marks, 2, "{case}: one mark per other server");
        }
    }
    println!(
        "store faults: {cases} cases ({per_webhook} failure points x 2 modes): \
         {unavailable} answered 503, {stored} answered 200, \
         {repaired_by_import} repaired by the next import, 0 lost"
    );
    assert!(unavailable > 0 && repaired_by_import > 0);
}

/// The bus is down for two plays: each webhook still answers `stored` at once, the
/// changes wait in the outbox, nothing reaches Plex or Emby; the export's drain then
/// delivers all of them, and the outbox is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_stored_while_the_bus_is_down_are_delivered_by_the_drain() {
    let h = House::new().await;
    h.bus.down.store(true, Ordering::SeqCst);
    let plays = [MOVIE, EPISODE];
    for n in plays {
        let hook = h.watch_on_jellyfin(n);
        let (status, body) = h.send(&hook).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (&body["status"], &body["changed"]),
            (&json!("stored"), &json!(true))
        );
    }
    let queued = h.deps.store.pending_changes(10).await.expect("outbox");
    assert_eq!(queued.len(), plays.len(), "{queued:?}");
    assert_eq!(h.bus.failed.load(Ordering::SeqCst), plays.len());
    for n in plays {
        assert_eq!(
            h.played_elsewhere(n),
            (false, false),
            "pushed with the bus down"
        );
    }

    h.bus.down.store(false, Ordering::SeqCst);
    h.export().await;
    for n in plays {
        assert_eq!(h.played_elsewhere(n), (true, true), "item {n} lost");
    }
    let left = h.deps.store.pending_changes(10).await.expect("outbox");
    assert!(left.is_empty(), "{left:?}");
    println!(
        "bus faults: {} publishes failed, {} changes queued, {} delivered by the drain, 0 lost",
        h.bus.failed.load(Ordering::SeqCst),
        queued.len(),
        queued.len()
    );
}

/// During the push Plex answers 503 (down behind its proxy) and Emby stalls past the
/// client timeout once. Emby's call is retried and the play lands; Plex's calls are
/// retried with backoff, then the push is parked (`push_failed` in the delivery log,
/// with the reason); the next export delivers it once Plex is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_slow_or_down_during_push_is_retried_parked_then_exported() {
    let h = House::new().await;
    let attempts = RetryPolicy::quick().attempts;
    let (plex, emby) = (&h.fakes[0], &h.fakes[2]);
    plex.fail_next(attempts, 503);
    emby.delay_next(1, Duration::from_millis(1500));
    plex.clear_calls();
    emby.clear_calls();

    let hook = h.watch_on_jellyfin(MOVIE);
    let (status, body) = h.send(&hook).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(h.played_elsewhere(MOVIE), (false, true));

    let plex_calls = plex.calls().len();
    assert_eq!(plex_calls, attempts, "Plex tried {plex_calls} times");
    let emby_calls = emby.calls();
    let first = &emby_calls[0];
    let retried = emby_calls
        .iter()
        .filter(|c| c.method == first.method && c.path == first.path)
        .count();
    assert!(
        retried >= 2,
        "the stalled call was not retried: {emby_calls:#?}"
    );

    let parked: Vec<Delivery> = h
        .deps
        .store
        .list_deliveries(Some(USER), 50)
        .await
        .expect("deliveries")
        .into_iter()
        .filter(|d| d.status == "push_failed")
        .collect();
    assert_eq!(parked.len(), 1, "{parked:#?}");
    assert_eq!(parked[0].backend.as_deref(), Some("plex"));
    assert!(
        parked[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("503")),
        "{:?}",
        parked[0].reason
    );

    h.export().await;
    assert_eq!(h.played_elsewhere(MOVIE), (true, true), "parked push lost");
    let marks = plex.calls_matching("GET", "/:/scrobble").len();
    assert_eq!(marks, 1, "Plex marked {marks} times");
    println!(
        "push faults: Plex {attempts} attempts then parked and exported; Emby stalled {} ms \
         once, {retried} calls to its first route; 0 lost",
        1500
    );
}

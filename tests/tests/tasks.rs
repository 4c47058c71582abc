//! Import and export, end to end: a household member with a Plex, a Jellyfin and an
//! Emby backend (the fake servers, answering over HTTP in the real API shapes), the
//! real clients, the embedded store. Assertions are on what the store holds and on the
//! calls the fakes recorded; store writes are counted by a decorator around the store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use e2e::fake::{FakeServer, PlayState, EPISODE, MOVIE};
use serde_json::json;
use watchstate::adapters::media::client::HttpClients;
use watchstate::adapters::media::client::{http_client_with, RetryPolicy};
use watchstate::adapters::store::sqlite::SqliteStore;
use watchstate::app::tasks::export::{ExportOptions, ExportReport, Exporter};
use watchstate::app::tasks::import::{ImportOptions, ImportReport, Importer, Status};
use watchstate::app::tasks::{Budget, Deps, TaskPayload, Tasks};
use watchstate::domain::model::{Backend, BackendKind, Delivery, Item, StateChange, User};
use watchstate::ports::store::{
    ItemQuery, ItemWrite, Page, Store, StoreError, TaskRun, WriteOutcome,
};

type R<T> = Result<T, StoreError>;

/// The store, counting every write by kind.
struct Counting {
    inner: Arc<dyn Store>,
    item_writes: AtomicU64,
    batches: AtomicU64,
    batch_items: AtomicU64,
    backend_writes: AtomicU64,
    user_writes: AtomicU64,
    run_records: AtomicU64,
    deliveries: AtomicU64,
    acks: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Writes {
    item_writes: u64,
    batches: u64,
    batch_items: u64,
    backend_writes: u64,
    user_writes: u64,
    run_records: u64,
    deliveries: u64,
    acks: u64,
}

impl Writes {
    /// Writes of state: items (one by one or in batches), backends, users, deliveries,
    /// outbox acks. Run records (the task's own report) are counted apart.
    fn state(&self) -> u64 {
        self.item_writes
            + self.batches
            + self.backend_writes
            + self.user_writes
            + self.deliveries
            + self.acks
    }
}

impl Counting {
    fn new(inner: Arc<dyn Store>) -> Counting {
        Counting {
            inner,
            item_writes: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            batch_items: AtomicU64::new(0),
            backend_writes: AtomicU64::new(0),
            user_writes: AtomicU64::new(0),
            run_records: AtomicU64::new(0),
            deliveries: AtomicU64::new(0),
            acks: AtomicU64::new(0),
        }
    }

    fn take(&self) -> Writes {
        let t = |a: &AtomicU64| a.swap(0, Ordering::SeqCst);
        Writes {
            item_writes: t(&self.item_writes),
            batches: t(&self.batches),
            batch_items: t(&self.batch_items),
            backend_writes: t(&self.backend_writes),
            user_writes: t(&self.user_writes),
            run_records: t(&self.run_records),
            deliveries: t(&self.deliveries),
            acks: t(&self.acks),
        }
    }
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::SeqCst);
}

#[async_trait]
impl Store for Counting {
    async fn put_user(&self, name: &str, now: DateTime<Utc>) -> R<(User, bool)> {
        bump(&self.user_writes);
        self.inner.put_user(name, now).await
    }
    async fn get_user(&self, name: &str) -> R<Option<User>> {
        self.inner.get_user(name).await
    }
    async fn list_users(&self) -> R<Vec<User>> {
        self.inner.list_users().await
    }
    async fn put_backend(&self, backend: &Backend) -> R<()> {
        bump(&self.backend_writes);
        self.inner.put_backend(backend).await
    }
    async fn get_backend(&self, user: &str, name: &str) -> R<Option<Backend>> {
        self.inner.get_backend(user, name).await
    }
    async fn list_backends(&self, user: &str) -> R<Vec<Backend>> {
        self.inner.list_backends(user).await
    }
    async fn delete_backend(&self, user: &str, name: &str) -> R<bool> {
        bump(&self.backend_writes);
        self.inner.delete_backend(user, name).await
    }
    async fn backend_by_token_hash(&self, hash: &str) -> R<Option<Backend>> {
        self.inner.backend_by_token_hash(hash).await
    }
    async fn find_item(&self, user: &str, keys: &[String]) -> R<Option<Item>> {
        self.inner.find_item(user, keys).await
    }
    async fn find_items(&self, user: &str, keys: &[String]) -> R<Vec<Item>> {
        self.inner.find_items(user, keys).await
    }
    async fn get_item(&self, user: &str, id: &str) -> R<Option<Item>> {
        self.inner.get_item(user, id).await
    }
    async fn list_items(
        &self,
        user: &str,
        query: &ItemQuery,
        limit: usize,
        cursor: Option<&str>,
    ) -> R<Page<Item>> {
        self.inner.list_items(user, query, limit, cursor).await
    }
    async fn write_item(&self, write: ItemWrite<'_>) -> R<WriteOutcome> {
        bump(&self.item_writes);
        self.inner.write_item(write).await
    }
    async fn absorb_item(&self, write: ItemWrite<'_>, absorbed: &Item) -> R<WriteOutcome> {
        bump(&self.item_writes);
        self.inner.absorb_item(write, absorbed).await
    }
    async fn create_items_batch(&self, writes: &[ItemWrite<'_>]) -> R<Vec<WriteOutcome>> {
        bump(&self.batches);
        self.batch_items
            .fetch_add(writes.len() as u64, Ordering::SeqCst);
        self.inner.create_items_batch(writes).await
    }
    async fn record_delivery(&self, delivery: &Delivery) -> R<()> {
        bump(&self.deliveries);
        self.inner.record_delivery(delivery).await
    }
    async fn list_deliveries(&self, user: Option<&str>, limit: usize) -> R<Vec<Delivery>> {
        self.inner.list_deliveries(user, limit).await
    }
    async fn get_delivery(&self, user: &str, id: &str) -> R<Option<Delivery>> {
        self.inner.get_delivery(user, id).await
    }
    async fn pending_changes(&self, limit: usize) -> R<Vec<StateChange>> {
        self.inner.pending_changes(limit).await
    }
    async fn ack_change(&self, id: &str) -> R<()> {
        bump(&self.acks);
        self.inner.ack_change(id).await
    }
    async fn record_task_run(&self, run: &TaskRun) -> R<()> {
        bump(&self.run_records);
        self.inner.record_task_run(run).await
    }
    async fn list_task_runs(&self, limit: usize) -> R<Vec<TaskRun>> {
        self.inner.list_task_runs(limit).await
    }
}

const USER: &str = "ana";

/// One household member's three servers and the store, behind the counting decorator.
struct House {
    plex: FakeServer,
    jf: FakeServer,
    emby: FakeServer,
    counting: Arc<Counting>,
    deps: Deps,
    dir: Option<tempfile::TempDir>,
}

impl House {
    async fn sample() -> House {
        House::with(
            FakeServer::with_sample(BackendKind::Plex).await,
            FakeServer::with_sample(BackendKind::Jellyfin).await,
            FakeServer::with_sample(BackendKind::Emby).await,
        )
        .await
    }

    async fn with(plex: FakeServer, jf: FakeServer, emby: FakeServer) -> House {
        let dir = tempfile::tempdir().expect("dir");
        let sqlite: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("w.db")).expect("store"));
        let counting = Arc::new(Counting::new(sqlite));
        let store: Arc<dyn Store> = counting.clone();
        store.put_user(USER, Utc::now()).await.unwrap();
        for (fake, name) in [(&plex, "plex"), (&jf, "jellyfin"), (&emby, "emby")] {
            let mut b = fake.backend(USER, name);
            b.webhook_token_hash = format!("hash-of-{name}");
            b.import.enabled = true;
            b.export.enabled = true;
            store.put_backend(&b).await.unwrap();
        }
        counting.take();
        let deps = Deps {
            store,
            clients: Arc::new(HttpClients {
                http: http_client_with(Duration::from_millis(500), Duration::from_secs(5)),
                retry: RetryPolicy::quick(),
            }),
            bus: None,
        };
        House {
            plex,
            jf,
            emby,
            counting,
            deps,
            dir: Some(dir),
        }
    }

    fn store(&self) -> &dyn Store {
        self.deps.store.as_ref()
    }

    fn importer(&self) -> Importer {
        Importer::new(&self.deps, quick_import())
    }

    async fn import(&self, payload: TaskPayload) -> ImportReport {
        self.importer()
            .run(&payload, Budget::unlimited())
            .await
            .expect("import")
    }

    async fn import_all(&self) -> ImportReport {
        let r = self.import(TaskPayload::default()).await;
        assert!(r.complete(), "{r:#?}");
        r
    }

    async fn export(&self, payload: TaskPayload) -> ExportReport {
        Exporter::new(&self.deps, ExportOptions::default())
            .run(&payload, Budget::unlimited())
            .await
            .expect("export")
    }

    /// The stored item a backend's id points at.
    async fn item(&self, backend: &str, id: &str) -> Item {
        self.store()
            .find_item(USER, &[format!("B#{backend}#{id}")])
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no item for {backend} {id}"))
    }

    async fn all_items(&self) -> Vec<Item> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let p = self
                .store()
                .list_items(USER, &ItemQuery::All, 1000, cursor.as_deref())
                .await
                .unwrap();
            out.extend(p.items);
            match p.cursor {
                Some(c) => cursor = Some(c),
                None => return out,
            }
        }
    }

    fn clear_calls(&self) {
        self.plex.clear_calls();
        self.jf.clear_calls();
        self.emby.clear_calls();
    }
}

fn quick_import() -> ImportOptions {
    ImportOptions {
        page_attempts: 2,
        page_backoff: Duration::from_millis(5),
        ..ImportOptions::default()
    }
}

fn run_of<'a>(
    r: &'a ImportReport,
    backend: &str,
) -> &'a watchstate::app::tasks::import::BackendImport {
    r.backends
        .iter()
        .find(|b| b.backend == backend)
        .unwrap_or_else(|| panic!("no run for {backend}: {r:#?}"))
}

fn ago(secs: i64) -> DateTime<Utc> {
    chrono::DateTime::from_timestamp(Utc::now().timestamp() - secs, 0).unwrap()
}

#[tokio::test]
async fn a_missed_jellyfin_play_is_imported_and_exported_to_plex_and_emby() {
    let h = House::sample().await;
    // The first import learns every item and its ids on all three servers.
    let first = h.import_all().await;
    assert_eq!(first.backends.len(), 3);
    assert_eq!(run_of(&first, "emby").counts.created, 2, "{first:#?}");
    assert_eq!(
        run_of(&first, "jellyfin").counts.created,
        0,
        "matched by guids"
    );
    assert_eq!(run_of(&first, "plex").counts.created, 0, "matched by guids");
    let movie = h.item("plex", &h.plex.id(MOVIE)).await;
    assert_eq!(movie.backends.len(), 3, "{movie:#?}");
    assert_eq!(
        movie.backends["jellyfin"].item_id.as_deref(),
        Some(h.jf.id(MOVIE).as_str())
    );
    let episode = h.item("emby", &h.emby.id(EPISODE)).await;
    assert_eq!(episode.backends.len(), 3, "{episode:#?}");
    assert_eq!(h.all_items().await.len(), 2);
    assert!(!movie.watched);

    // Played on Jellyfin; its webhook never arrived.
    let played_at = ago(120);
    h.jf.set_state(&h.jf.id(MOVIE), PlayState::played_at(played_at));
    let second = h.import_all().await;
    let jf = run_of(&second, "jellyfin");
    assert_eq!((jf.counts.changed, jf.counts.pushed), (1, 1), "{jf:#?}");
    assert_eq!(run_of(&second, "plex").counts.changed, 0);
    let movie = h.item("plex", &h.plex.id(MOVIE)).await;
    assert!(movie.watched);
    assert_eq!(movie.via.as_deref(), Some("jellyfin"));
    assert_eq!(movie.state_updated_at, played_at);
    // The change is in the outbox, for push, like a webhook's.
    let pending = h.store().pending_changes(10).await.unwrap();
    assert!(
        pending
            .iter()
            .any(|c| c.item_id == movie.id && c.watched && c.origin.as_deref() == Some("jellyfin")),
        "{pending:#?}"
    );

    // Export pushes it to Plex and Emby, not back to Jellyfin.
    h.clear_calls();
    let export = h.export(TaskPayload::default()).await;
    let user = &export.users[0];
    assert_eq!((user.pushed, user.failed), (2, 0), "{export:#?}");
    let scrobbles = h.plex.calls_matching("GET", "/:/scrobble");
    assert_eq!(scrobbles.len(), 1, "{scrobbles:#?}");
    assert_eq!(scrobbles[0].q("key"), Some(h.plex.id(MOVIE).as_str()));
    let emby_played = h.emby.calls_matching("POST", "/Users/");
    assert_eq!(emby_played.len(), 1, "{emby_played:#?}");
    assert!(emby_played[0]
        .path
        .ends_with(&format!("/PlayedItems/{}", h.emby.id(MOVIE))));
    assert!(h.jf.calls_matching("POST", "/").is_empty());
    assert!(h.jf.calls_matching("DELETE", "/").is_empty());
    assert!(h.plex.state(&h.plex.id(MOVIE)).played);
    assert!(h.emby.state(&h.emby.id(MOVIE)).played);
    assert!(
        !h.plex.state(&h.plex.id(EPISODE)).played,
        "nothing else moved"
    );

    // Everything agrees now: the next export pushes nothing, the next import changes
    // nothing (the pushed state was recorded, so it is no transition).
    h.clear_calls();
    let again = h.export(TaskPayload::default()).await;
    assert_eq!(again.users[0].candidates, 0, "{again:#?}");
    assert!(h.plex.calls_matching("GET", "/:/").is_empty());
    let third = h.import_all().await;
    for b in &third.backends {
        assert_eq!((b.counts.changed, b.counts.pushed), (0, 0), "{b:#?}");
    }
}

#[tokio::test]
async fn an_unplay_on_plex_is_detected_by_the_next_import_and_carried_over() {
    let h = House::sample().await;
    let at = ago(86_400);
    for fake in [&h.plex, &h.jf, &h.emby] {
        fake.set_state(&fake.id(MOVIE), PlayState::played_at(at));
    }
    h.import_all().await;
    let movie = h.item("plex", &h.plex.id(MOVIE)).await;
    assert!(movie.watched);
    assert_eq!(movie.backends["plex"].watched, Some(true));

    // Unmarked on Plex: Plex sends no webhook for that.
    h.plex.set_state(&h.plex.id(MOVIE), PlayState::default());
    let before = Utc::now();
    let r = h.import_all().await;
    let plex = run_of(&r, "plex");
    assert_eq!(
        (
            plex.counts.changed,
            plex.counts.unplayed,
            plex.counts.pushed
        ),
        (1, 1, 1),
        "{plex:#?}"
    );
    // Jellyfin and Emby still say watched (their old play): not newer than the unplay.
    assert_eq!(run_of(&r, "jellyfin").counts.changed, 0);
    assert_eq!(run_of(&r, "emby").counts.changed, 0);
    let movie = h.item("plex", &h.plex.id(MOVIE)).await;
    assert!(!movie.watched);
    assert_eq!(movie.via.as_deref(), Some("plex"));
    assert!(
        movie.state_updated_at >= before,
        "stamped with the import time"
    );

    // Export carries the unplay to Jellyfin and Emby.
    h.clear_calls();
    let export = h.export(TaskPayload::default()).await;
    assert_eq!(export.users[0].pushed, 2, "{export:#?}");
    let jf_unplayed = h.jf.calls_matching("DELETE", "/Users/");
    assert_eq!(jf_unplayed.len(), 1);
    assert!(jf_unplayed[0]
        .path
        .ends_with(&format!("/PlayedItems/{}", h.jf.id(MOVIE))));
    let emby_unplayed = h.emby.calls_matching("DELETE", "/Users/");
    assert_eq!(emby_unplayed.len(), 1);
    assert!(emby_unplayed[0]
        .path
        .ends_with(&format!("/PlayedItems/{}", h.emby.id(MOVIE))));
    assert!(
        h.plex.calls_matching("GET", "/:/").is_empty(),
        "not back to Plex"
    );
    assert!(!h.jf.state(&h.jf.id(MOVIE)).played);
    assert!(!h.emby.state(&h.emby.id(MOVIE)).played);

    // No ping-pong: importing all three again changes nothing, exports push nothing.
    for _ in 0..2 {
        let r = h.import_all().await;
        for b in &r.backends {
            assert_eq!(b.counts.changed, 0, "{b:#?}");
        }
        let e = h.export(TaskPayload::default()).await;
        assert_eq!(e.users[0].pushed, 0, "{e:#?}");
    }
    assert!(!h.item("plex", &h.plex.id(MOVIE)).await.watched);
}

#[tokio::test]
async fn a_second_import_of_unchanged_libraries_writes_nothing() {
    let n = 600;
    let h = House::with(
        FakeServer::with_generated(BackendKind::Plex, n).await,
        FakeServer::with_generated(BackendKind::Jellyfin, n).await,
        FakeServer::with_generated(BackendKind::Emby, n).await,
    )
    .await;
    let first = h.import_all().await;
    let w1 = h.counting.take();
    assert_eq!(h.all_items().await.len(), n);
    assert_eq!(
        run_of(&first, "emby").counts.created,
        n as u64,
        "{first:#?}"
    );
    assert!(w1.batch_items >= n as u64, "{w1:?}");
    assert_eq!(
        w1.backend_writes, 3,
        "last_sync of each backend moved: {w1:?}"
    );
    let outbox = h.store().pending_changes(10_000).await.unwrap().len();

    let second = h.import_all().await;
    let w2 = h.counting.take();
    for b in &second.backends {
        assert_eq!(b.counts.items_seen, n as u64);
        let c = b.counts;
        assert_eq!(
            (c.created, c.changed, c.updated, c.pushed, c.writes),
            (0, 0, 0, 0, 0),
            "{b:#?}"
        );
    }
    // Not one write of state: no item, no batch, no backend (import.last_sync moves
    // only when an import changed something), no outbox entry. The only record is each
    // run's own report (GET /v1/tasks/runs), one per backend.
    assert_eq!(w2.state(), 0, "{w2:?}");
    assert_eq!(w2.run_records, 3, "{w2:?}");
    assert_eq!(
        h.store().pending_changes(10_000).await.unwrap().len(),
        outbox
    );

    // A dry run after a change on one server reports it and writes nothing either.
    let id = h.plex.id(e2e::fake::GENERATED_BASE + 2);
    h.plex.set_state(&id, PlayState::played_at(ago(60)));
    let dry = h
        .import(TaskPayload {
            backend: Some("plex".into()),
            dry_run: true,
            ..Default::default()
        })
        .await;
    let w3 = h.counting.take();
    let plex = run_of(&dry, "plex");
    assert_eq!(plex.counts.changed, 1, "{plex:#?}");
    assert_eq!(plex.would_change.len(), 1, "{plex:#?}");
    assert_eq!(w3.state(), 0, "{w3:?}");
    assert!(!h.item("plex", &id).await.watched, "dry run stored nothing");
    let real = h
        .import(TaskPayload {
            backend: Some("plex".into()),
            ..Default::default()
        })
        .await;
    let w4 = h.counting.take();
    assert_eq!(run_of(&real, "plex").counts.changed, 1);
    assert_eq!((w4.item_writes, w4.backend_writes), (1, 1), "{w4:?}");
    assert!(h.item("plex", &id).await.watched);
}

#[tokio::test]
async fn a_large_library_with_a_failing_page_completes_on_resume_without_refetching() {
    const N: usize = 5_000;
    const PAGE: u64 = 200;
    let h = House::with(
        FakeServer::with_sample(BackendKind::Plex).await,
        FakeServer::with_generated(BackendKind::Jellyfin, N).await,
        FakeServer::with_sample(BackendKind::Emby).await,
    )
    .await;
    let only_jf = || TaskPayload {
        backend: Some("jellyfin".into()),
        ..Default::default()
    };
    let listing = |fake: &FakeServer| -> Vec<u64> {
        fake.calls_matching("GET", "/Users/")
            .into_iter()
            .filter(|c| c.qi("IncludeItemTypes") == Some("Movie,Episode"))
            .map(|c| c.qi("StartIndex").unwrap().parse().unwrap())
            .collect()
    };

    // First invocation: a page limit stands in for the time budget.
    let limited = Importer::new(
        &h.deps,
        ImportOptions {
            max_pages: Some(10),
            ..quick_import()
        },
    );
    let r1 = limited.run(&only_jf(), Budget::unlimited()).await.unwrap();
    let b1 = run_of(&r1, "jellyfin");
    assert_eq!(b1.status, Status::Paused, "{b1:#?}");
    let cursor = b1.cursor.clone().expect("a paused run has a cursor");
    assert_eq!(cursor.page.cursor.offset, 10 * PAGE);
    assert_eq!(cursor.counts.items_seen, 10 * PAGE);
    assert!(r1.continuation.is_some());
    assert_eq!(
        listing(&h.jf),
        (0..10).map(|p| p * PAGE).collect::<Vec<_>>()
    );

    // The next page answers 503 more often than the client (3 tries) and the import
    // (2 tries of the client) retry: the run records the failure and that page.
    h.jf.clear_calls();
    h.jf.fail_next(6, 503);
    let r2 = h.import(only_jf()).await;
    let b2 = run_of(&r2, "jellyfin");
    assert!(b2.resumed, "the unfinished run is resumed, not restarted");
    assert_eq!(b2.run_id, cursor.run_id);
    assert_eq!(b2.status, Status::Failed, "{b2:#?}");
    assert!(b2.error.as_deref().unwrap_or("").contains("503"), "{b2:#?}");
    let failed_at = b2.cursor.clone().expect("a failed run keeps its cursor");
    assert_eq!(failed_at.page.cursor.offset, 10 * PAGE);
    assert_eq!(
        listing(&h.jf),
        vec![10 * PAGE; 6],
        "the one page, six times"
    );
    let runs = h.store().list_task_runs(10).await.unwrap();
    let run = runs.iter().find(|r| r.id == cursor.run_id).unwrap();
    assert_eq!((run.failed, run.items_seen), (1, 10 * PAGE), "{run:#?}");
    assert!(
        run.cursor.is_some() && run.finished_at.is_some(),
        "{run:#?}"
    );
    assert!(run.errors[0].contains("503"), "{run:#?}");

    // Resumed through the api (POST /v1/tasks/import), as the schedule would: it goes
    // on from the failed page and completes; earlier pages are not fetched again.
    h.jf.clear_calls();
    let local = api_with_tasks(&h);
    let (status, body) = local
        .api(
            "POST",
            "/v1/tasks/import",
            Some(json!({"backend": "jellyfin"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let b3 = &body["backends"][0];
    assert_eq!(b3["status"], "complete", "{body:#}");
    assert_eq!(b3["resumed"], true);
    assert_eq!(b3["run_id"], cursor.run_id.as_str());
    let fetched = listing(&h.jf);
    assert_eq!(
        fetched,
        (10..25).map(|p| p * PAGE).collect::<Vec<_>>(),
        "only the failed page and the rest"
    );
    let counts = &b3["counts"];
    assert_eq!(counts["items_seen"], N as u64, "{counts}");
    assert_eq!(counts["created"], N as u64, "{counts}");
    assert_eq!(counts["pages"], 25);
    assert_eq!(counts["failed"], 1);

    // Every library item is stored exactly once, with its Jellyfin id.
    let items = h.all_items().await;
    assert_eq!(items.len(), N);
    let mut ids: Vec<String> = items
        .iter()
        .map(|i| i.backends["jellyfin"].item_id.clone().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), N);
    for k in [0u64, 1, 2_001, 4_999] {
        let id = h.jf.id(e2e::fake::GENERATED_BASE + k);
        h.item("jellyfin", &id).await;
    }

    // The run as GET /v1/tasks/runs shows it: complete, counts of the whole run.
    let (status, runs) = local.api("GET", "/v1/tasks/runs", None).await;
    assert_eq!(status, 200);
    let run = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == cursor.run_id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(run["task"], "import");
    assert_eq!(run["items_seen"], N as u64);
    assert_eq!(run["created"], N as u64);
    assert_eq!(run["failed"], 1);
    assert!(
        run.get("cursor").is_none(),
        "complete: nothing to resume {run:#}"
    );
    assert!(run["finished_at"].is_string());

    // The next import starts over (nothing to resume) and changes nothing.
    let r4 = h.import(only_jf()).await;
    let b4 = run_of(&r4, "jellyfin");
    assert!(!b4.resumed);
    assert_eq!((b4.counts.items_seen, b4.counts.writes), (N as u64, 0));
}

#[tokio::test]
async fn the_api_runs_both_tasks_and_lists_their_runs() {
    let h = House::sample().await;
    h.jf.set_state(&h.jf.id(MOVIE), PlayState::played_at(ago(300)));
    let local = api_with_tasks(&h);
    let (s, dry) = local
        .api("POST", "/v1/tasks/import", Some(json!({"dry_run": true})))
        .await;
    assert_eq!(s, 200, "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert!(h.all_items().await.is_empty(), "a dry run stores nothing");
    let (s, import) = local.api("POST", "/v1/tasks/import", None).await;
    assert_eq!(s, 200, "{import}");
    assert_eq!(import["backends"].as_array().unwrap().len(), 3);
    let (s, export) = local
        .api("POST", "/v1/tasks/export", Some(json!({"user": USER})))
        .await;
    assert_eq!(s, 200, "{export}");
    assert_eq!(export["users"][0]["pushed"], 2, "{export:#}");
    let (s, runs) = local.api("GET", "/v1/tasks/runs", None).await;
    assert_eq!(s, 200);
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(
        runs.len(),
        7,
        "3 dry + 3 real imports + 1 export: {runs:#?}"
    );
    assert_eq!(runs[0]["task"], "export");
    assert_eq!(runs[0]["pushed"], 2);
}

/// The api handler over the house's store, with the tasks wired in.
fn api_with_tasks(h: &House) -> e2e::Local {
    let mut local = e2e::Local::with_store(h.deps.store.clone(), tempfile::tempdir().unwrap());
    let mut tasks = Tasks::new(h.deps.clone());
    tasks.import = quick_import();
    tasks.budget = Duration::from_secs(60);
    local.api.tasks = Some(Arc::new(tasks));
    let _ = &h.dir;
    local
}

/// `cargo lambda invoke` of a sample event against the real binaries.
async fn invoke(emu: &e2e::emulator::Emulator, function: &str, event: &str) -> serde_json::Value {
    let args: Vec<String> = [
        "lambda",
        "invoke",
        function,
        "--invoke-address",
        "127.0.0.1",
        "--invoke-port",
        &emu.port.to_string(),
        "--data-file",
        event,
        "--output-format",
        "json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("cargo")
            .args(&args)
            .current_dir(e2e::emulator::workspace_root())
            .output()
            .expect("cargo lambda invoke")
    })
    .await
    .expect("invoke");
    assert!(
        out.status.success(),
        "invoke {event}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        emu.log_text()
    );
    serde_json::from_slice(&out.stdout).expect("the function answers JSON")
}

/// The import and export binaries under `cargo lambda watch` (as `make run` serves
/// them), invoked with the sample schedule events, against the fake servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_functions_import_and_export_under_cargo_lambda() {
    let plex = FakeServer::with_sample(BackendKind::Plex).await;
    let jf = FakeServer::with_sample(BackendKind::Jellyfin).await;
    let emby = FakeServer::with_sample(BackendKind::Emby).await;
    jf.set_state(&jf.id(MOVIE), PlayState::played_at(ago(600)));
    let emu = e2e::emulator::Emulator::start(&[]).await;
    let http = e2e::http_client();
    let api = |method: reqwest::Method, path: &str, body: Option<serde_json::Value>| {
        let mut r = http
            .request(method, emu.url(&format!("/lambda-url/api{path}")))
            .bearer_auth(&emu.admin_key);
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        async move {
            let resp = r.send().await.expect("api");
            let s = resp.status().as_u16();
            (s, resp.json::<serde_json::Value>().await.expect("json"))
        }
    };
    let (s, _) = api(reqwest::Method::PUT, "/v1/users/ana", None).await;
    assert_eq!(s, 201);
    for (fake, name) in [(&plex, "plex"), (&jf, "jellyfin"), (&emby, "emby")] {
        let mut body = fake.backend_body();
        body["import"] = json!({"enabled": true});
        body["export"] = json!({"enabled": true});
        let (s, v) = api(
            reqwest::Method::PUT,
            &format!("/v1/users/ana/backends/{name}"),
            Some(body),
        )
        .await;
        assert!(s == 200 || s == 201, "{s} {v}");
    }

    let import = invoke(&emu, "import", "events/import-schedule.json").await;
    assert_eq!(import["task"], "import", "{import:#}");
    assert_eq!(
        import["backends"].as_array().map(Vec::len),
        Some(3),
        "{import:#}"
    );
    let (s, items) = api(
        reqwest::Method::GET,
        "/v1/users/ana/items?guid=imdb:tt0111161",
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(items["items"][0]["watched"], true, "{items:#}");
    assert_eq!(items["items"][0]["via"], "jellyfin", "{items:#}");
    // The import published its change from the outbox; locally the bus pushes in
    // process, so Plex and Emby are marked already.
    assert_eq!(plex.calls_matching("GET", "/:/scrobble").len(), 1);
    assert!(emby.state(&emby.id(MOVIE)).played);

    let export = invoke(&emu, "export", "events/export-schedule.json").await;
    assert_eq!(export["task"], "export", "{export:#}");
    assert_eq!(
        export["users"][0]["pushed"], 0,
        "nothing left to push: {export:#}"
    );
    let (s, runs) = api(reqwest::Method::GET, "/v1/tasks/runs", None).await;
    assert_eq!(s, 200);
    let runs = runs["runs"].as_array().cloned().unwrap_or_default();
    assert_eq!(runs.len(), 4, "three imports and an export: {runs:#?}");
    assert!(runs.iter().all(|r| r["finished_at"].is_string()));
}

//! The Store port's contract, written once and run against both adapters: SQLite (on
//! a temporary file) and DynamoDB (against moto server, a fresh table per test). The
//! DynamoDB runs also count HTTP requests per operation to hold the round-trip budget
//! of docs/ARCHITECTURE.md and docs/PERFORMANCE.md: a webhook about a known item reads once and writes at most once.

use std::any::Any;
use std::collections::BTreeSet;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use e2e::moto::Moto;
use watchstate::adapters::store::dynamo::{create_table, DynamoStore};
use watchstate::adapters::store::sqlite::SqliteStore;
use watchstate::app::ingest;
use watchstate::domain::model::{
    Action, Backend, BackendKind, BackendOptions, BackendState, ChangeKind, Delivery, Event,
    EventItem, Guids, Item, ItemType, Source, StateChange, TaskOptions,
};
use watchstate::domain::sync::{self, Context};
use watchstate::ports::store::{ItemQuery, ItemWrite, Store, TaskRun, WriteOutcome};

// ---- harness ---------------------------------------------------------------------

/// DynamoDB requests sent, by operation (`x-amz-target` without the API version).
#[derive(Debug, Default)]
struct Requests(Mutex<Vec<String>>);

impl Requests {
    fn take(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
struct CountRequests(Arc<Requests>);

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("?");
        let op = target.rsplit('.').next().unwrap_or(target).to_string();
        if let Ok(mut v) = self.0 .0.lock() {
            v.push(op);
        }
        Ok(())
    }
}

/// Opens a second handle on the same data.
type Reopen = Box<dyn Fn() -> Arc<dyn Store> + Send + Sync>;

/// One adapter under test.
struct Harness {
    store: Arc<dyn Store>,
    /// A second handle on the same data, as another process (Lambda instance) has.
    reopen: Reopen,
    /// DynamoDB only: the requests sent so far.
    requests: Option<Arc<Requests>>,
    _keep: Box<dyn Any + Send + Sync>,
}

impl Harness {
    fn sqlite() -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("watchstate.db");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).expect("sqlite store"));
        Harness {
            store,
            reopen: Box::new(move || Arc::new(SqliteStore::open(&path).expect("sqlite store"))),
            requests: None,
            _keep: Box::new(dir),
        }
    }

    async fn dynamodb() -> Harness {
        let moto = tokio::task::spawn_blocking(Moto::start)
            .await
            .expect("moto");
        let endpoint = moto.endpoint();
        Harness::on_moto(Box::new(moto), endpoint).await
    }

    /// DynamoDB on a moto that answers one request at a time, for the concurrency
    /// tests: threaded moto_server applies a transaction item by item without a lock
    /// and rolls a cancelled one back by restoring a snapshot of the whole table,
    /// which loses or resurrects concurrent writes. Real DynamoDB transactions are
    /// atomic and serializable; serial moto is, too, while the 32 clients still
    /// interleave their reads and writes request by request.
    async fn dynamodb_serial() -> Harness {
        let moto = tokio::task::spawn_blocking(SerialMoto::start)
            .await
            .expect("moto");
        let endpoint = moto.endpoint();
        Harness::on_moto(Box::new(moto), endpoint).await
    }

    async fn on_moto(moto: Box<dyn Any + Send + Sync>, endpoint: String) -> Harness {
        static TABLES: AtomicUsize = AtomicUsize::new(0);
        let requests = Arc::new(Requests::default());
        let conf = aws_sdk_dynamodb::Config::builder()
            .http_client(watchstate::inbound::config::sdk_http_client())
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new("x", "x", None, None, "test"))
            .interceptor(CountRequests(requests.clone()))
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(conf);
        let table = format!(
            "contract-{}-{}",
            std::process::id(),
            TABLES.fetch_add(1, Ordering::Relaxed)
        );
        create_table(&client, &table).await.expect("create table");
        requests.take();
        let store: Arc<dyn Store> = Arc::new(DynamoStore::new(client.clone(), table.clone()));
        Harness {
            store,
            reopen: Box::new(move || Arc::new(DynamoStore::new(client.clone(), table.clone()))),
            requests: Some(requests),
            _keep: moto,
        }
    }

    fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Requests since the last call (DynamoDB), or `None` (SQLite).
    fn requests(&self) -> Option<Vec<String>> {
        self.requests.as_ref().map(|r| r.take())
    }
}

/// moto_server's app under a single-threaded server (see [`Harness::dynamodb_serial`]).
struct SerialMoto {
    child: Child,
    port: u16,
}

const SERIAL_MOTO: &str = "
import sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
run_simple(sys.argv[1], int(sys.argv[2]), DomainDispatcherApplication(create_backend_app), threaded=False)
";

impl SerialMoto {
    fn start() -> SerialMoto {
        let port = e2e::emulator::free_port();
        let child = Command::new("python3")
            .args(["-c", SERIAL_MOTO, "127.0.0.1", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with moto (pip install 'moto[server]')");
        let mut moto = SerialMoto { child, port };
        let deadline = Instant::now() + StdDuration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || matches!(moto.child.try_wait(), Ok(Some(_))) {
                moto.stop();
                panic!("serial moto did not start");
            }
            std::thread::sleep(StdDuration::from_millis(100));
        }
        moto
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SerialMoto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Each contract test runs once per adapter.
macro_rules! contract {
    ($dynamodb:ident: $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$name(super::Harness::sqlite()).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn dynamodb() {
                    super::$name(super::Harness::$dynamodb().await).await;
                }
            }
        )*
    };
}

contract!(dynamodb:
    users_are_created_once_and_listed,
    backends_and_their_token_index,
    items_are_found_by_each_key_in_the_given_order,
    a_new_item_whose_key_is_taken_conflicts,
    updates_are_conditional_on_the_version,
    updates_leave_keys_owned_by_other_items,
    an_item_stored_twice_is_absorbed_with_its_keys,
    a_replaced_backend_id_still_finds_the_current_item,
    items_are_listed_in_pages,
    new_items_are_created_in_batches,
    the_outbox_is_written_with_the_item,
    deliveries_are_listed_newest_first,
    strangers_deliveries_are_capped_and_kept_a_day,
    delivery_bodies_come_back_as_received,
    one_delivery_is_read_by_its_id,
    task_runs_are_listed_newest_first,
    webhooks_through_ingest_keep_the_budget,
);

contract!(dynamodb_serial:
    concurrent_webhooks_about_a_new_item_make_one_item,
    concurrent_webhooks_end_on_the_newest_state,
);

// ---- builders --------------------------------------------------------------------

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().expect("time")
}

const T0: i64 = 1_750_000_000;

fn guids(pairs: &[(&str, &str)]) -> Guids {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn movie(id: &str, backend: &str, backend_item_id: &str, imdb: &str) -> Item {
    let mut item = Item {
        id: id.into(),
        kind: ItemType::Movie,
        title: Some(format!("Movie {id}")),
        year: Some(1994),
        series_title: None,
        season: None,
        episode: None,
        guids: guids(&[("imdb", imdb)]),
        series_guids: Guids::new(),
        watched: false,
        state_updated_at: sync::never(),
        unplayed_at: None,
        progress_ms: None,
        progress_at: None,
        via: None,
        backends: Default::default(),
        version: 0,
    };
    item.backends.insert(
        backend.into(),
        BackendState {
            item_id: Some(backend_item_id.into()),
            ..Default::default()
        },
    );
    item
}

fn keys(item: &Item) -> Vec<String> {
    sync::item_keys(item).into_iter().collect()
}

fn bkey(backend: &str, id: &str) -> String {
    sync::backend_key(backend, id)
}

fn gkey(imdb: &str) -> String {
    sync::guid_key(ItemType::Movie, "imdb", imdb)
}

async fn create(store: &dyn Store, user: &str, item: &Item) -> WriteOutcome {
    let ks = keys(item);
    store
        .write_item(ItemWrite {
            user,
            item,
            expected_version: None,
            new_keys: &ks,
            change: None,
        })
        .await
        .expect("write")
}

async fn update(
    store: &dyn Store,
    user: &str,
    item: &Item,
    expected: u64,
    new_keys: &[String],
) -> WriteOutcome {
    store
        .write_item(ItemWrite {
            user,
            item,
            expected_version: Some(expected),
            new_keys,
            change: None,
        })
        .await
        .expect("write")
}

async fn find(store: &dyn Store, user: &str, keys: &[String]) -> Option<Item> {
    store.find_item(user, keys).await.expect("find")
}

fn backend(user: &str, name: &str, hash: &str) -> Backend {
    Backend {
        user: user.into(),
        name: name.into(),
        kind: BackendKind::Jellyfin,
        url: "http://jellyfin.invalid:8096".into(),
        token: "secret-media-token".into(),
        server_id: Some("srv-1".into()),
        user_id: Some("u-1".into()),
        options: BackendOptions {
            match_user: true,
            ..BackendOptions::default()
        },
        import: TaskOptions {
            enabled: true,
            last_sync: None,
        },
        export: TaskOptions::default(),
        webhook_nonce: format!("nonce-{name}"),
        webhook_token_hash: hash.into(),
        created_at: at(T0),
        updated_at: at(T0),
    }
}

fn tokenless(b: &Backend) -> Backend {
    Backend {
        token: String::new(),
        ..b.clone()
    }
}

/// A change with a time-ordered id, as `sync::change_from` makes them: the outbox is
/// read oldest first by id.
fn change(item: &Item, watched: bool) -> StateChange {
    StateChange {
        id: watchstate::domain::ids::time_ordered_id(Utc::now()),
        user: "ana".into(),
        item_id: item.id.clone(),
        origin: Some("plex".into()),
        watched,
        progress_ms: None,
        state_updated_at: at(T0),
        kind: ChangeKind::Watched,
    }
}

// ---- contract --------------------------------------------------------------------

async fn users_are_created_once_and_listed(h: Harness) {
    let s = h.store();
    assert_eq!(s.get_user("ana").await.unwrap(), None);
    let (ana, created) = s.put_user("ana", at(T0)).await.unwrap();
    assert!(created);
    assert_eq!(ana.name, "ana");
    assert_eq!(ana.created_at, at(T0));
    let (again, created) = s.put_user("ana", at(T0 + 100)).await.unwrap();
    assert!(!created, "an existing user is kept");
    assert_eq!(again.created_at, at(T0), "and keeps its creation time");
    s.put_user("bob", at(T0 + 5)).await.unwrap();
    s.put_user("al", at(T0 + 6)).await.unwrap();
    assert_eq!(s.get_user("ana").await.unwrap(), Some(ana));
    let names: Vec<String> = s
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["al", "ana", "bob"]);
}

async fn backends_and_their_token_index(h: Harness) {
    let s = h.store();
    let jf = backend("ana", "jellyfin", "hash-1");
    s.put_backend(&jf).await.unwrap();
    s.put_backend(&backend("ana", "emby", "hash-2"))
        .await
        .unwrap();
    s.put_backend(&backend("bob", "plex", "hash-3"))
        .await
        .unwrap();
    assert_eq!(
        s.get_backend("ana", "jellyfin").await.unwrap(),
        Some(jf.clone())
    );
    assert_eq!(s.get_backend("ana", "plex").await.unwrap(), None);
    let names: Vec<String> = s
        .list_backends("ana")
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["emby", "jellyfin"], "by name, one user's only");
    // The webhook path gets the backend without its media server token: exactly one
    // record holds the token, and the webhook never needs it.
    assert_eq!(
        s.backend_by_token_hash("hash-1").await.unwrap(),
        Some(tokenless(&jf))
    );
    assert_eq!(s.backend_by_token_hash("nope").await.unwrap(), None);

    // Replacing the backend refreshes the index; a new hash drops the old lookup.
    let mut moved = jf.clone();
    moved.url = "http://elsewhere.invalid".into();
    s.put_backend(&moved).await.unwrap();
    assert_eq!(
        s.backend_by_token_hash("hash-1").await.unwrap(),
        Some(tokenless(&moved))
    );
    moved.webhook_token_hash = "hash-1b".into();
    s.put_backend(&moved).await.unwrap();
    assert_eq!(s.backend_by_token_hash("hash-1").await.unwrap(), None);
    assert_eq!(
        s.backend_by_token_hash("hash-1b").await.unwrap(),
        Some(tokenless(&moved))
    );
    assert_eq!(s.get_backend("ana", "jellyfin").await.unwrap(), Some(moved));

    assert!(s.delete_backend("ana", "jellyfin").await.unwrap());
    assert!(!s.delete_backend("ana", "jellyfin").await.unwrap());
    assert_eq!(s.get_backend("ana", "jellyfin").await.unwrap(), None);
    assert_eq!(s.backend_by_token_hash("hash-1b").await.unwrap(), None);
    assert_eq!(s.list_backends("ana").await.unwrap().len(), 1);
    assert!(s.backend_by_token_hash("hash-3").await.unwrap().is_some());
}

async fn items_are_found_by_each_key_in_the_given_order(h: Harness) {
    let s = h.store();
    let mut one = movie("item-1", "plex", "42", "tt0111161");
    one.guids.insert("tmdb".into(), "278".into());
    assert_eq!(create(s, "ana", &one).await, WriteOutcome::Written);
    let two = movie("item-2", "jf", "7", "tt0068646");
    assert_eq!(create(s, "ana", &two).await, WriteOutcome::Written);

    for k in keys(&one) {
        let found = find(s, "ana", std::slice::from_ref(&k)).await;
        let found = found.unwrap_or_else(|| panic!("found by {k}"));
        assert_eq!(found.id, "item-1");
        assert_eq!(found.version, 1, "the store sets the version");
        assert_eq!(found.guids, one.guids);
        assert_eq!(found.backends, one.backends);
    }
    // The first key that matches wins: the backend's own id before a guid.
    let found = find(s, "ana", &[bkey("jf", "7"), gkey("tt0111161")]).await;
    assert_eq!(found.map(|i| i.id).as_deref(), Some("item-2"));
    let found = find(
        s,
        "ana",
        &[bkey("jf", "999"), gkey("tt0111161"), bkey("jf", "7")],
    )
    .await;
    assert_eq!(found.map(|i| i.id).as_deref(), Some("item-1"));
    assert_eq!(
        find(s, "ana", &[bkey("plex", "1"), gkey("tt1")]).await,
        None
    );
    assert_eq!(find(s, "ana", &[]).await, None);
    assert_eq!(
        find(s, "bob", &[bkey("plex", "42")]).await,
        None,
        "per user"
    );
    let got = s.get_item("ana", "item-2").await.unwrap().expect("item-2");
    assert_eq!(got.title.as_deref(), Some("Movie item-2"));
    assert_eq!(got.version, 1);
    assert_eq!(s.get_item("ana", "item-9").await.unwrap(), None);
    // Any id a payload carries is a usable key, however long.
    let long = "9".repeat(5000);
    let three = movie("item-3", "emby", &long, "tt0000003");
    assert_eq!(create(s, "ana", &three).await, WriteOutcome::Written);
    let found = find(s, "ana", &[bkey("emby", &long)]).await;
    assert_eq!(found.map(|i| i.id).as_deref(), Some("item-3"));
}

async fn a_new_item_whose_key_is_taken_conflicts(h: Harness) {
    let s = h.store();
    let one = movie("item-1", "plex", "42", "tt0111161");
    assert_eq!(create(s, "ana", &one).await, WriteOutcome::Written);
    // Another item with the same guid (a concurrent webhook's twin): refused whole.
    let twin = movie("item-2", "jf", "7", "tt0111161");
    assert_eq!(create(s, "ana", &twin).await, WriteOutcome::Conflict);
    assert_eq!(s.get_item("ana", "item-2").await.unwrap(), None);
    assert_eq!(
        find(s, "ana", &[bkey("jf", "7")]).await,
        None,
        "no key written"
    );
    // The same id twice, too.
    let again = movie("item-1", "emby", "9", "tt0000001");
    assert_eq!(create(s, "ana", &again).await, WriteOutcome::Conflict);
    assert_eq!(find(s, "ana", &[gkey("tt0000001")]).await, None);
    // Keys are per user.
    assert_eq!(create(s, "bob", &twin).await, WriteOutcome::Written);
}

async fn updates_are_conditional_on_the_version(h: Harness) {
    let s = h.store();
    let mut item = movie("item-1", "plex", "42", "tt0111161");
    assert_eq!(create(s, "ana", &item).await, WriteOutcome::Written);
    item.watched = true;
    item.state_updated_at = at(T0);
    assert_eq!(
        update(s, "ana", &item, 5, &[]).await,
        WriteOutcome::Conflict
    );
    assert_eq!(update(s, "ana", &item, 1, &[]).await, WriteOutcome::Written);
    let stored = s.get_item("ana", "item-1").await.unwrap().expect("item");
    assert_eq!(stored.version, 2);
    assert!(stored.watched);
    // The version read is gone: a writer still holding it conflicts.
    item.title = Some("Lost update".into());
    assert_eq!(
        update(s, "ana", &item, 1, &[]).await,
        WriteOutcome::Conflict
    );
    // Every key finds the current version (a copy kept with a key must be fresh).
    for k in keys(&item) {
        let found = find(s, "ana", std::slice::from_ref(&k))
            .await
            .expect("found");
        assert_eq!((found.version, found.watched), (2, true), "by {k}");
        assert_eq!(found.title.as_deref(), Some("Movie item-1"));
    }
    // Another process (no memory of what this one read) writes on the same terms.
    let other = (h.reopen)();
    assert_eq!(
        update(other.as_ref(), "ana", &item, 1, &[]).await,
        WriteOutcome::Conflict
    );
    assert_eq!(
        update(other.as_ref(), "ana", &item, 2, &[]).await,
        WriteOutcome::Written
    );
    let found = find(s, "ana", &[bkey("plex", "42")]).await.expect("found");
    assert_eq!(found.version, 3);
    assert_eq!(found.title.as_deref(), Some("Lost update"));
    // An item that does not exist cannot be updated.
    let ghost = movie("item-9", "plex", "99", "tt9");
    assert_eq!(
        update(s, "ana", &ghost, 1, &[]).await,
        WriteOutcome::Conflict
    );
}

async fn updates_leave_keys_owned_by_other_items(h: Harness) {
    let s = h.store();
    let one = movie("item-1", "plex", "42", "tt0111161");
    assert_eq!(create(s, "ana", &one).await, WriteOutcome::Written);
    let mut two = movie("item-2", "jf", "7", "tt0068646");
    assert_eq!(create(s, "ana", &two).await, WriteOutcome::Written);

    // item-2 learns a guid and a backend id item-1 already owns, and a free guid.
    two.guids.insert("tmdb".into(), "238".into());
    two.guids.insert("tvdb".into(), "111161".into());
    two.backends.insert(
        "plex".into(),
        BackendState {
            item_id: Some("42".into()),
            ..Default::default()
        },
    );
    let new_keys = vec![
        bkey("plex", "42"),
        gkey("tt0111161"),
        sync::guid_key(ItemType::Movie, "tmdb", "238"),
        sync::guid_key(ItemType::Movie, "tvdb", "111161"),
    ];
    assert_eq!(
        update(s, "ana", &two, 1, &new_keys).await,
        WriteOutcome::Written,
        "keys owned elsewhere never fail an update"
    );
    let owner = |k: String| async move { find(s, "ana", &[k]).await.map(|i| (i.id, i.version)) };
    assert_eq!(owner(gkey("tt0111161")).await, Some(("item-1".into(), 1)));
    assert_eq!(owner(bkey("plex", "42")).await, Some(("item-1".into(), 1)));
    let tmdb = sync::guid_key(ItemType::Movie, "tmdb", "238");
    assert_eq!(owner(tmdb.clone()).await, Some(("item-2".into(), 2)));
    assert_eq!(owner(bkey("jf", "7")).await, Some(("item-2".into(), 2)));

    // Both keep writing; each key keeps finding its owner's current version.
    let mut one = find(s, "ana", &[bkey("plex", "42")]).await.expect("one");
    one.title = Some("One".into());
    assert_eq!(update(s, "ana", &one, 1, &[]).await, WriteOutcome::Written);
    let two = find(s, "ana", &[bkey("jf", "7")]).await.expect("two");
    assert_eq!(update(s, "ana", &two, 2, &[]).await, WriteOutcome::Written);
    assert_eq!(owner(bkey("plex", "42")).await, Some(("item-1".into(), 2)));
    assert_eq!(owner(bkey("jf", "7")).await, Some(("item-2".into(), 3)));
    assert_eq!(owner(tmdb).await, Some(("item-2".into(), 3)));
    // And a writer acting on what it found does not conflict.
    let one = find(s, "ana", &[bkey("plex", "42")]).await.expect("one");
    assert_eq!(update(s, "ana", &one, 2, &[]).await, WriteOutcome::Written);
}

async fn an_item_stored_twice_is_absorbed_with_its_keys(h: Harness) {
    let s = h.store();
    let one = movie("item-1", "plex", "42", "tt0111161");
    assert_eq!(create(s, "ana", &one).await, WriteOutcome::Written);
    let mut two = movie("item-2", "jf", "7", "tt0068646");
    two.guids.insert("tmdb".into(), "238".into());
    assert_eq!(create(s, "ana", &two).await, WriteOutcome::Written);
    let both = [bkey("plex", "42"), bkey("jf", "7"), gkey("tt0068646")];
    let found: Vec<String> = s
        .find_items("ana", &both)
        .await
        .expect("find")
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(found, ["item-1", "item-2"], "each once, in key order");

    // item-1 absorbs item-2: its ids, guids and a key of its own that is new.
    let one = find(s, "ana", &[bkey("plex", "42")]).await.expect("one");
    let two = find(s, "ana", &[bkey("jf", "7")]).await.expect("two");
    let mut merged = sync::merge::merge(&one, &two);
    merged.guids.insert("tvdb".into(), "5".into());
    let tvdb = sync::guid_key(ItemType::Movie, "tvdb", "5");
    let change = change(&merged, true);
    let stale = ItemWrite {
        user: "ana",
        item: &merged,
        expected_version: Some(one.version),
        new_keys: std::slice::from_ref(&tvdb),
        change: Some(&change),
    };
    let mut old_two = two.clone();
    old_two.version += 1;
    assert_eq!(
        s.absorb_item(stale, &old_two).await.expect("absorb"),
        WriteOutcome::Conflict,
        "the absorbed item must be as read"
    );
    assert_eq!(
        find(s, "ana", &[bkey("jf", "7")]).await.map(|i| i.id),
        Some("item-2".into())
    );
    let write = ItemWrite {
        expected_version: Some(one.version + 1),
        ..stale
    };
    assert_eq!(
        s.absorb_item(write, &two).await.expect("absorb"),
        WriteOutcome::Conflict,
        "the kept item must be as read"
    );
    let write = ItemWrite {
        expected_version: Some(one.version),
        ..write
    };
    assert_eq!(
        s.absorb_item(write, &two).await.expect("absorb"),
        WriteOutcome::Written
    );
    for k in [
        bkey("plex", "42"),
        bkey("jf", "7"),
        gkey("tt0068646"),
        gkey("tt0111161"),
        tvdb.clone(),
    ] {
        let got = find(s, "ana", std::slice::from_ref(&k))
            .await
            .map(|i| (i.id, i.version));
        assert_eq!(got, Some(("item-1".into(), one.version + 1)), "{k}");
    }
    assert_eq!(
        s.get_item("ana", "item-2").await.expect("get"),
        None,
        "absorbed item gone"
    );
    let all = s
        .list_items("ana", &ItemQuery::All, 10, None)
        .await
        .expect("list");
    assert_eq!(all.items.len(), 1);
    assert_eq!(all.items[0].backends.len(), 2);
    let pending = s.pending_changes(10).await.expect("outbox");
    assert!(
        pending.iter().any(|c| c.id == change.id),
        "the change went with the merge"
    );
    // The kept item goes on being written as usual.
    let kept = find(s, "ana", &[bkey("jf", "7")]).await.expect("kept");
    assert_eq!(
        update(s, "ana", &kept, kept.version, &[]).await,
        WriteOutcome::Written
    );
}

async fn a_replaced_backend_id_still_finds_the_current_item(h: Harness) {
    // Plex hands out a new ratingKey when an item is re-added; the old key still points
    // at the item and must lead to its current version, or a writer would conflict
    // forever.
    let s = h.store();
    let mut item = movie("item-1", "plex", "100", "tt0111161");
    assert_eq!(create(s, "ana", &item).await, WriteOutcome::Written);
    item.backends.insert(
        "plex".into(),
        BackendState {
            item_id: Some("200".into()),
            ..Default::default()
        },
    );
    assert_eq!(
        update(s, "ana", &item, 1, &[bkey("plex", "200")]).await,
        WriteOutcome::Written
    );
    item.watched = true;
    assert_eq!(update(s, "ana", &item, 2, &[]).await, WriteOutcome::Written);
    for store in [h.store.clone(), (h.reopen)()] {
        let found = find(store.as_ref(), "ana", &[bkey("plex", "100")])
            .await
            .expect("old key");
        assert_eq!((found.version, found.watched), (3, true));
        let found = find(store.as_ref(), "ana", &[bkey("plex", "200")])
            .await
            .expect("new key");
        assert_eq!(found.version, 3);
    }
    // A write from another process (which must learn where copies live) keeps both fresh.
    let other = (h.reopen)();
    item.watched = false;
    assert_eq!(
        update(other.as_ref(), "ana", &item, 3, &[]).await,
        WriteOutcome::Written
    );
    for k in [bkey("plex", "100"), bkey("plex", "200")] {
        let found = find(s, "ana", std::slice::from_ref(&k))
            .await
            .expect("found");
        assert_eq!((found.version, found.watched), (4, false), "by {k}");
    }
}

async fn items_are_listed_in_pages(h: Harness) {
    let s = h.store();
    for i in 1..=5 {
        let item = movie(
            &format!("item-{i}"),
            "plex",
            &i.to_string(),
            &format!("tt{i}"),
        );
        assert_eq!(create(s, "ana", &item).await, WriteOutcome::Written);
    }
    create(s, "bob", &movie("item-0", "plex", "1", "tt1")).await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = s
            .list_items("ana", &ItemQuery::All, 2, cursor.as_deref())
            .await
            .unwrap();
        pages += 1;
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|i| i.id.clone()));
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["item-1", "item-2", "item-3", "item-4", "item-5"]);
    let all = s.list_items("ana", &ItemQuery::All, 5, None).await.unwrap();
    assert_eq!(all.items.len(), 5);
    assert_eq!(all.cursor, None, "no cursor when nothing follows");
    assert!(all.items.iter().all(|i| i.version == 1));

    // By keys: any of them, each item once, in id order, paged the same way.
    let q = ItemQuery::Keys(vec![
        gkey("tt4"),
        bkey("plex", "2"),
        gkey("tt2"),
        gkey("tt5"),
        gkey("tt-none"),
    ]);
    let page = s.list_items("ana", &q, 2, None).await.unwrap();
    let ids: Vec<&str> = page.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["item-2", "item-4"]);
    let next = s
        .list_items("ana", &q, 2, page.cursor.as_deref())
        .await
        .unwrap();
    let ids: Vec<&str> = next.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["item-5"]);
    assert_eq!(next.cursor, None);
    let none = s
        .list_items("ana", &ItemQuery::Keys(vec![gkey("tt9")]), 10, None)
        .await
        .unwrap();
    assert!(none.items.is_empty());
    assert_eq!(none.cursor, None);
}

async fn new_items_are_created_in_batches(h: Harness) {
    let s = h.store();
    let existing = movie("item-00", "plex", "1000", "tt1000");
    assert_eq!(create(s, "ana", &existing).await, WriteOutcome::Written);
    h.requests();

    // An import page: 40 new items, one whose guid is already stored, and one that
    // wants a key an earlier item of the same page takes.
    let mut items: Vec<Item> = (1..=40)
        .map(|i| {
            let mut item = movie(
                &format!("item-{i:02}"),
                "plex",
                &i.to_string(),
                &format!("tt{i}"),
            );
            item.guids.insert("tmdb".into(), format!("{}", 5000 + i));
            item
        })
        .collect();
    items[9].guids.insert("imdb".into(), "tt1000".into());
    items[20].guids.insert("imdb".into(), "tt20".into());
    let keys: Vec<Vec<String>> = items.iter().map(keys).collect();
    let changes: Vec<StateChange> = items.iter().map(|i| change(i, true)).collect();
    let writes: Vec<ItemWrite<'_>> = items
        .iter()
        .zip(&keys)
        .zip(&changes)
        .map(|((item, ks), c)| ItemWrite {
            user: "ana",
            item,
            expected_version: None,
            new_keys: ks,
            change: Some(c),
        })
        .collect();
    let outcomes = s.create_items_batch(&writes).await.unwrap();
    let conflicts: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| **o == WriteOutcome::Conflict)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        conflicts,
        [9, 20],
        "taken keys, also by an earlier item of the page"
    );
    if let Some(ops) = h.requests() {
        eprintln!(
            "DynamoDB requests, 40 new items in one batch: {}",
            ops.join(" + ")
        );
        assert!(
            count(&ops, "TransactWriteItems") <= 8,
            "batched, not one transaction per item: {ops:?}"
        );
    }
    for (i, item) in items.iter().enumerate() {
        let found = find(s, "ana", &[bkey("plex", &(i + 1).to_string())]).await;
        if conflicts.contains(&i) {
            assert_eq!(found, None, "{}: nothing written", item.id);
        } else {
            let found = found.unwrap_or_else(|| panic!("{} written", item.id));
            assert_eq!((found.id.as_str(), found.version), (item.id.as_str(), 1));
        }
    }
    assert_eq!(
        find(s, "ana", &[gkey("tt1000")])
            .await
            .map(|i| i.id)
            .as_deref(),
        Some("item-00")
    );
    assert_eq!(
        find(s, "ana", &[gkey("tt20")])
            .await
            .map(|i| i.id)
            .as_deref(),
        Some("item-20")
    );
    let all = s
        .list_items("ana", &ItemQuery::All, 100, None)
        .await
        .unwrap();
    assert_eq!(all.items.len(), 39);
    let pending: BTreeSet<String> = s
        .pending_changes(100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.item_id)
        .collect();
    assert_eq!(pending.len(), 38, "a change only with a written item");
    assert!(!pending.contains("item-10") && !pending.contains("item-21"));
    // Written items take updates as usual.
    let mut first = find(s, "ana", &[bkey("plex", "1")]).await.expect("item-01");
    first.watched = true;
    assert_eq!(
        update(s, "ana", &first, 1, &[]).await,
        WriteOutcome::Written
    );
    assert_eq!(s.create_items_batch(&[]).await.unwrap(), []);
}

async fn the_outbox_is_written_with_the_item(h: Harness) {
    let s = h.store();
    let mut item = movie("item-1", "plex", "42", "tt0111161");
    let ks = keys(&item);
    let first = change(&item, false);
    let w = ItemWrite {
        user: "ana",
        item: &item,
        expected_version: None,
        new_keys: &ks,
        change: Some(&first),
    };
    assert_eq!(s.write_item(w).await.unwrap(), WriteOutcome::Written);
    // A write that conflicts records no change.
    let lost = change(&item, true);
    let w = ItemWrite {
        user: "ana",
        item: &item,
        expected_version: Some(7),
        new_keys: &[],
        change: Some(&lost),
    };
    assert_eq!(s.write_item(w).await.unwrap(), WriteOutcome::Conflict);
    let twin = movie("item-2", "jf", "1", "tt0111161");
    let tks = keys(&twin);
    let w = ItemWrite {
        user: "ana",
        item: &twin,
        expected_version: None,
        new_keys: &tks,
        change: Some(&lost),
    };
    assert_eq!(s.write_item(w).await.unwrap(), WriteOutcome::Conflict);
    // Later changes queue behind.
    let mut changes = vec![first];
    for v in 1..=2 {
        item.watched = v % 2 == 1;
        let c = change(&item, item.watched);
        let w = ItemWrite {
            user: "ana",
            item: &item,
            expected_version: Some(v),
            new_keys: &[],
            change: Some(&c),
        };
        assert_eq!(s.write_item(w).await.unwrap(), WriteOutcome::Written);
        changes.push(c);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(
        s.pending_changes(10).await.unwrap(),
        changes,
        "oldest first"
    );
    assert_eq!(s.pending_changes(2).await.unwrap(), changes[..2]);
    s.ack_change(&changes[0].id).await.unwrap();
    s.ack_change("never-written").await.unwrap();
    assert_eq!(s.pending_changes(10).await.unwrap(), changes[1..]);
    s.ack_change(&changes[1].id).await.unwrap();
    s.ack_change(&changes[2].id).await.unwrap();
    assert!(s.pending_changes(10).await.unwrap().is_empty());
}

fn delivery(user: Option<&str>, secs: i64, status: &str) -> Delivery {
    let received_at = Utc::now() - Duration::seconds(1000 - secs);
    Delivery {
        id: watchstate::domain::ids::time_ordered_id(received_at),
        user: user.map(str::to_string),
        backend: user.map(|_| "plex".to_string()),
        received_at,
        http_status: 200,
        status: status.parse().expect("a delivery status"),
        reason: None,
        event: Some("media.scrobble".into()),
        item_id: None,
        changed: Some(false),
        content_type: Some("application/json".into()),
        user_agent: Some("PlexMediaServer/1.40".into()),
        body: Some("{\"event\":\"media.scrobble\"}".into()),
        body_truncated: false,
    }
}

async fn deliveries_are_listed_newest_first(h: Harness) {
    let s = h.store();
    let mut ana = Vec::new();
    for i in 0..4 {
        let d = delivery(Some("ana"), i, "stored");
        s.record_delivery(&d).await.unwrap();
        ana.push(d);
    }
    let bob = delivery(Some("bob"), 10, "ignored");
    s.record_delivery(&bob).await.unwrap();
    let stray = delivery(None, 11, "unknown_webhook");
    s.record_delivery(&stray).await.unwrap();
    // A week-old delivery has expired.
    let mut old = delivery(Some("ana"), 0, "stored");
    old.received_at = Utc::now() - Duration::days(8);
    old.id = watchstate::domain::ids::time_ordered_id(old.received_at);
    s.record_delivery(&old).await.unwrap();

    ana.reverse();
    assert_eq!(s.list_deliveries(Some("ana"), 50).await.unwrap(), ana);
    assert_eq!(s.list_deliveries(Some("ana"), 2).await.unwrap(), ana[..2]);
    assert_eq!(s.list_deliveries(Some("bob"), 50).await.unwrap(), [bob]);
    assert_eq!(s.list_deliveries(None, 50).await.unwrap(), [stray]);
    assert!(s.list_deliveries(Some("eve"), 50).await.unwrap().is_empty());
}

async fn strangers_deliveries_are_capped_and_kept_a_day(h: Harness) {
    use watchstate::ports::store::UNCLAIMED_PER_HOUR;
    let s = h.store();
    // A day-old stranger's delivery has expired (a backend's would be kept a week).
    let mut old = delivery(None, 0, "unknown_webhook");
    old.received_at = Utc::now() - Duration::hours(25);
    old.id = watchstate::domain::ids::time_ordered_id(old.received_at);
    s.record_delivery(&old).await.unwrap();
    let mut kept_old = delivery(Some("ana"), 0, "stored");
    kept_old.received_at = old.received_at;
    kept_old.id = watchstate::domain::ids::time_ordered_id(old.received_at);
    s.record_delivery(&kept_old).await.unwrap();

    // All in one clock hour: only the first UNCLAIMED_PER_HOUR are kept.
    let hour = Utc::now().timestamp() / 3600 * 3600;
    let start = Utc.timestamp_opt(hour, 0).unwrap();
    for i in 0..UNCLAIMED_PER_HOUR + 10 {
        let mut d = delivery(None, 0, "unknown_webhook");
        d.received_at = start + Duration::milliseconds(i as i64);
        d.id = watchstate::domain::ids::time_ordered_id(d.received_at);
        d.body = None;
        s.record_delivery(&d).await.unwrap();
    }
    let listed = s.list_deliveries(None, 1000).await.unwrap();
    assert_eq!(listed.len() as u64, UNCLAIMED_PER_HOUR, "capped per hour");
    assert!(
        listed.iter().all(|d| d.received_at >= start),
        "the day-old one expired"
    );
    // The next hour has its own allowance; a backend's deliveries have no cap.
    let mut next = delivery(None, 0, "unknown_webhook");
    next.received_at = start + Duration::hours(1);
    next.id = watchstate::domain::ids::time_ordered_id(next.received_at);
    s.record_delivery(&next).await.unwrap();
    assert_eq!(
        s.list_deliveries(None, 1000).await.unwrap().len() as u64,
        UNCLAIMED_PER_HOUR + 1
    );
    assert_eq!(
        s.list_deliveries(Some("ana"), 10).await.unwrap(),
        [kept_old]
    );
}

async fn delivery_bodies_come_back_as_received(h: Harness) {
    let s = h.store();
    let mut d = delivery(Some("ana"), 1, "stored");
    let body = e2e::fixture("webhooks/plex/media.scrobble-movie-plexguid-movary.json");
    d.body = Some(String::from_utf8(body).unwrap());
    s.record_delivery(&d).await.unwrap();
    let mut empty = delivery(Some("ana"), 2, "bad_payload");
    empty.body = Some(String::new());
    s.record_delivery(&empty).await.unwrap();
    let mut none = delivery(Some("ana"), 3, "unknown_webhook");
    none.body = None;
    s.record_delivery(&none).await.unwrap();
    assert_eq!(
        s.list_deliveries(Some("ana"), 10).await.unwrap(),
        [none, empty, d]
    );
}

async fn one_delivery_is_read_by_its_id(h: Harness) {
    let s = h.store();
    let mut d = delivery(Some("ana"), 1, "stored");
    let body = e2e::fixture("webhooks/plex/media.scrobble-movie-plexguid-movary.json");
    d.body = Some(String::from_utf8(body).unwrap());
    s.record_delivery(&d).await.unwrap();
    let other = delivery(Some("ana"), 2, "ignored");
    s.record_delivery(&other).await.unwrap();
    let mut old = delivery(Some("ana"), 0, "stored");
    old.received_at = Utc::now() - Duration::days(8);
    old.id = watchstate::domain::ids::time_ordered_id(old.received_at);
    s.record_delivery(&old).await.unwrap();

    assert_eq!(s.get_delivery("ana", &d.id).await.unwrap(), Some(d.clone()));
    assert_eq!(s.get_delivery("ana", &other.id).await.unwrap(), Some(other));
    // Only in its own person's log; an expired one is gone; an unknown id is none.
    assert_eq!(s.get_delivery("bob", &d.id).await.unwrap(), None);
    assert_eq!(s.get_delivery("ana", &old.id).await.unwrap(), None);
    assert_eq!(s.get_delivery("ana", "no-such-id").await.unwrap(), None);
}

async fn task_runs_are_listed_newest_first(h: Harness) {
    let s = h.store();
    let mut runs = Vec::new();
    for i in 0..3 {
        let started = at(T0 + i);
        let run = TaskRun {
            id: watchstate::domain::ids::time_ordered_id(started),
            task: if i % 2 == 0 {
                watchstate::ports::tasks::TaskKind::Import
            } else {
                watchstate::ports::tasks::TaskKind::Export
            },
            user: Some("ana".into()),
            backend: None,
            started_at: Some(started),
            finished_at: None,
            dry_run: i == 1,
            pages: 1,
            items_seen: 10 * i as u64,
            created: 0,
            changed: 0,
            pushed: 0,
            failed: 0,
            errors: Vec::new(),
            cursor: None,
        };
        s.record_task_run(&run).await.unwrap();
        runs.push(run);
    }
    // Recording a run again (when it finishes) replaces it.
    runs[2].finished_at = Some(at(T0 + 60));
    runs[2].errors = vec!["backend timed out".into()];
    s.record_task_run(&runs[2]).await.unwrap();
    runs.reverse();
    assert_eq!(s.list_task_runs(10).await.unwrap(), runs);
    assert_eq!(s.list_task_runs(1).await.unwrap(), runs[..1]);
}

// ---- through ingest::apply -------------------------------------------------------

/// A Plex scrobble (or mark-unplayed, as Jellyfin sends it) of a movie, as the parsers
/// return it.
fn plex_event(action: Action, occurred_at: DateTime<Utc>) -> Event {
    Event {
        source: Source::Plex,
        server_id: Some("0123456789abcdef0123456789abcdef01234567".into()),
        user_id: Some("1".into()),
        action,
        raw_event: match action {
            Action::Played => "media.scrobble",
            _ => "media.stop",
        }
        .into(),
        occurred_at: Some(occurred_at),
        paused: false,
        item: Some(EventItem {
            kind: Some(ItemType::Movie),
            backend_item_id: "53".into(),
            title: Some("The Shawshank Redemption".into()),
            year: Some(1994),
            guids: guids(&[("imdb", "tt0111161"), ("tmdb", "278"), ("tvdb", "190")]),
            played: Some(action == Action::Played),
            duration_ms: Some(8_520_000),
            ..Default::default()
        }),
    }
}

/// A Jellyfin episode event (`UserDataSaved`, TogglePlayed), with series ids.
fn jellyfin_episode(played: bool, occurred_at: DateTime<Utc>) -> Event {
    Event {
        source: Source::Jellyfin,
        server_id: Some("3f9b1c2d4e5f".into()),
        user_id: Some("5a6b7c8d".into()),
        action: if played {
            Action::Played
        } else {
            Action::Unplayed
        },
        raw_event: "UserDataSaved".into(),
        occurred_at: Some(occurred_at),
        paused: false,
        item: Some(EventItem {
            kind: Some(ItemType::Episode),
            backend_item_id: "a1b2c3d4e5f60718293a4b5c6d7e8f90".into(),
            title: Some("Pilot".into()),
            year: Some(2008),
            series_title: Some("Breaking Bad".into()),
            season: Some(1),
            episode: Some(1),
            guids: guids(&[("imdb", "tt0959621"), ("tvdb", "349232")]),
            series_guids: guids(&[("imdb", "tt0903747"), ("tvdb", "81189")]),
            played: Some(played),
            ..Default::default()
        }),
    }
}

async fn apply(
    store: &dyn Store,
    backend: &str,
    event: &Event,
    received_at: DateTime<Utc>,
) -> ingest::Applied {
    let ctx = Context {
        user: "ana",
        backend,
        received_at,
    };
    let ev = event.item.clone().expect("item");
    ingest::apply(store, ctx, event, &ev).await.expect("apply")
}

fn count(ops: &[String], op: &str) -> usize {
    ops.iter().filter(|o| *o == op).count()
}

async fn webhooks_through_ingest_keep_the_budget(h: Harness) {
    let s = h.store();
    let now = Utc::now();
    h.requests();

    // A new item with its lookup keys: one read (nothing found), one transaction.
    let first = apply(
        s,
        "plex",
        &plex_event(Action::Played, now - Duration::hours(2)),
        now,
    )
    .await;
    assert!(first.written);
    assert!(first.item.watched);
    assert!(first.change.is_some());
    if let Some(ops) = h.requests() {
        eprintln!("DynamoDB requests, new item: {}", ops.join(" + "));
        assert_eq!(count(&ops, "BatchGetItem"), 1, "{ops:?}");
        assert_eq!(count(&ops, "TransactWriteItems"), 1, "{ops:?}");
        assert_eq!(ops.len(), 2, "new item: {ops:?}");
    }

    // A webhook about the known item, a real change: one read, one write.
    let second = apply(
        s,
        "plex",
        &plex_event(Action::Unplayed, now - Duration::hours(1)),
        now,
    )
    .await;
    assert!(second.written);
    assert!(!second.item.watched);
    assert_eq!(second.item.version, 2);
    assert!(second.change.is_some());
    if let Some(ops) = h.requests() {
        eprintln!(
            "DynamoDB requests, known item, real change: {}",
            ops.join(" + ")
        );
        assert_eq!(
            ops,
            ["BatchGetItem", "TransactWriteItems"],
            "known item, real change"
        );
    }

    // The same event again (a redelivery): one read, no write.
    let repeat = apply(
        s,
        "plex",
        &plex_event(Action::Unplayed, now - Duration::hours(1)),
        now,
    )
    .await;
    assert!(!repeat.written);
    assert_eq!(repeat.no_change, Some(sync::NoChange::SameState));
    if let Some(ops) = h.requests() {
        eprintln!("DynamoDB requests, same state: {}", ops.join(" + "));
        assert_eq!(ops, ["BatchGetItem"], "same state");
    }

    // The same state reported later (an echo): no change and no outbox entry, one
    // write to move the stamp so an older event arriving late cannot flip it back.
    let later = apply(
        s,
        "plex",
        &plex_event(Action::Unplayed, now - Duration::minutes(30)),
        now,
    )
    .await;
    assert!(later.written);
    assert_eq!(later.no_change, Some(sync::NoChange::SameState));
    assert!(later.change.is_none());
    if let Some(ops) = h.requests() {
        assert_eq!(ops, ["BatchGetItem", "TransactWriteItems"], "stamp moved");
    }

    // Another process (a cold Lambda instance) about the known item: still one + one.
    let other = (h.reopen)();
    let third = apply(
        other.as_ref(),
        "plex",
        &plex_event(Action::Played, now - Duration::minutes(10)),
        now,
    )
    .await;
    assert!(third.written);
    assert_eq!(third.item.version, 4);
    if let Some(ops) = h.requests() {
        eprintln!("DynamoDB requests, cold instance: {}", ops.join(" + "));
        assert_eq!(ops, ["BatchGetItem", "TransactWriteItems"], "cold instance");
    }

    // Another backend reporting the item for the first time finds it by guid.
    let mut jf = plex_event(Action::Played, now - Duration::minutes(5));
    jf.source = Source::Jellyfin;
    jf.raw_event = "UserDataSaved".into();
    if let Some(i) = jf.item.as_mut() {
        i.backend_item_id = "f00dfeed".into();
    }
    let echoed = apply(s, "jellyfin", &jf, now).await;
    assert_eq!(echoed.item.id, first.item.id);
    assert_eq!(echoed.no_change, Some(sync::NoChange::SameState));
    assert!(echoed.written, "its item id is learned");
    assert!(echoed.change.is_none(), "no echo back");
    if let Some(ops) = h.requests() {
        eprintln!(
            "DynamoDB requests, first report by another backend (guid hit): {}",
            ops.join(" + ")
        );
        assert_eq!(count(&ops, "TransactWriteItems"), 1, "{ops:?}");
        assert!(ops.len() <= 3, "guid hit: {ops:?}");
    }
    // ... and from then on by its own id, in one read.
    let again = apply(s, "jellyfin", &jf, now).await;
    assert!(!again.written);
    if let Some(ops) = h.requests() {
        eprintln!("DynamoDB requests, that backend again: {}", ops.join(" + "));
        assert_eq!(ops, ["BatchGetItem"]);
    }

    let all = s
        .list_items("ana", &ItemQuery::All, 10, None)
        .await
        .unwrap();
    assert_eq!(all.items.len(), 1);
    let item = &all.items[0];
    assert!(item.watched);
    assert_eq!(item.version, 5);
    assert_eq!(
        item.backends["jellyfin"].item_id.as_deref(),
        Some("f00dfeed")
    );
    let pending = s.pending_changes(10).await.unwrap();
    assert_eq!(pending.len(), 3, "one change per real change");
    assert_eq!(
        pending.iter().map(|c| c.watched).collect::<Vec<_>>(),
        [true, false, true]
    );
}

/// Events about one new episode, applied by 32 concurrent webhooks.
async fn race(h: &Harness, events: Vec<Event>, now: DateTime<Utc>) -> Vec<ingest::Applied> {
    let mut tasks = Vec::new();
    for (i, e) in events.into_iter().enumerate() {
        // Every other webhook lands on another instance (no shared memory).
        let store = if i % 2 == 0 {
            h.store.clone()
        } else {
            (h.reopen)()
        };
        tasks.push(tokio::spawn(async move {
            apply(store.as_ref(), "jellyfin", &e, now).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

fn report_race(h: &Harness, results: &[ingest::Applied]) {
    if let Some(ops) = h.requests() {
        eprintln!(
            "DynamoDB, 32 concurrent webhooks: {} written, {} BatchGetItem, {} GetItem, {} TransactWriteItems",
            results.iter().filter(|r| r.written).count(),
            count(&ops, "BatchGetItem"),
            count(&ops, "GetItem"),
            count(&ops, "TransactWriteItems"),
        );
    }
}

async fn concurrent_webhooks_about_a_new_item_make_one_item(h: Harness) {
    let now = Utc::now();
    let base = now - Duration::hours(1);
    // Played and unplayed alternating, strictly increasing times.
    let events: Vec<Event> = (0..32)
        .map(|i| jellyfin_episode(i % 2 == 0, base + Duration::seconds(i)))
        .collect();
    let results = race(&h, events, now).await;
    report_race(&h, &results);

    let all = h
        .store()
        .list_items("ana", &ItemQuery::All, 100, None)
        .await
        .unwrap();
    assert_eq!(all.items.len(), 1, "exactly one item");
    let item = &all.items[0];
    assert!(results.iter().all(|r| r.item.id == item.id));
    // Every write went through on the version it read: the versions written are
    // 1..=n, each once, and the stored item is the last one written.
    let written: Vec<&ingest::Applied> = results.iter().filter(|r| r.written).collect();
    let versions: BTreeSet<u64> = written.iter().map(|r| r.item.version).collect();
    assert_eq!(versions.len(), written.len(), "no version written twice");
    assert_eq!(versions, (1..=written.len() as u64).collect());
    assert_eq!(item.version, written.len() as u64);
    let last = written
        .iter()
        .find(|r| r.item.version == item.version)
        .expect("last write");
    assert_eq!(item.watched, last.item.watched);
    assert_eq!(item.state_updated_at, last.item.state_updated_at);
    // One change per write that flipped the state, all in the outbox.
    let changes = results.iter().filter(|r| r.change.is_some()).count();
    assert_eq!(h.store().pending_changes(100).await.unwrap().len(), changes);
    // Every key leads to the stored version.
    for k in keys(item) {
        let found = find(h.store(), "ana", std::slice::from_ref(&k))
            .await
            .expect("found");
        assert_eq!(found.version, item.version, "by {k}");
    }
}

async fn concurrent_webhooks_end_on_the_newest_state(h: Harness) {
    // "Watched" reported 31 times and "unwatched" once, newest: whatever the order,
    // the newest event decides (an older one is stale, the same state a no-op).
    let now = Utc::now();
    let base = now - Duration::hours(1);
    let events: Vec<Event> = (0..32)
        .map(|i| jellyfin_episode(i != 31, base + Duration::seconds(i)))
        .collect();
    let results = race(&h, events, now).await;
    report_race(&h, &results);
    let all = h
        .store()
        .list_items("ana", &ItemQuery::All, 100, None)
        .await
        .unwrap();
    assert_eq!(all.items.len(), 1, "exactly one item");
    let item = &all.items[0];
    assert!(!item.watched, "the newest event says unwatched");
    assert_eq!(item.state_updated_at, base + Duration::seconds(31));
    assert!(results.iter().all(|r| r.item.id == item.id));
}

// ---- configuration ---------------------------------------------------------------

/// `TABLE_NAME` selects DynamoDB at `AWS_ENDPOINT_URL`, as `make run STORE=dynamodb`
/// and the deployed functions set them. The environment is process-wide, so the check
/// runs in a child process of this test binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_name_selects_dynamodb() {
    const CHILD: &str = "STORE_CONTRACT_CONFIG_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let config = watchstate::inbound::config::Config::from_env();
        let store = watchstate::inbound::config::store(&config)
            .await
            .expect("store");
        let (_, created) = store.put_user("ana", at(T0)).await.expect("put user");
        assert!(created);
        return;
    }
    let moto = tokio::task::spawn_blocking(Moto::start)
        .await
        .expect("moto");
    let moto_endpoint = moto.endpoint();
    let conf = aws_sdk_dynamodb::Config::builder()
        .http_client(watchstate::inbound::config::sdk_http_client())
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto_endpoint)
        .credentials_provider(Credentials::new("x", "x", None, None, "test"))
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(conf);
    create_table(&client, "configured").await.expect("table");
    let exe = std::env::current_exe().expect("test binary");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(exe)
            .args(["--exact", "table_name_selects_dynamodb", "--nocapture"])
            .env(CHILD, "1")
            .env("TABLE_NAME", "configured")
            .env("AWS_ENDPOINT_URL", &moto_endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .output()
            .expect("child")
    })
    .await
    .expect("child");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    let seen = DynamoStore::new(client, "configured");
    let users = seen.list_users().await.expect("users");
    assert_eq!(users.len(), 1, "the child wrote to the configured table");
    assert_eq!(users[0].created_at, at(T0));
}

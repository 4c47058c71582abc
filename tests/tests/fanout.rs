//! Fan-out through SQS (docs/ARCHITECTURE.md, issue 10): a first import's changes go from the
//! outbox through EventBridge (moto) to the rule's SQS queue (moto), and from there to
//! the push function's handler (`inbound::lambda::push_event`) in batches, as Lambda's event
//! source mapping delivers them: at most `BATCH` messages per invocation gathered for
//! at most the batching window, at most `CONCURRENCY` invocations at once, failed
//! messages (`batchItemFailures`) received again. The fake Jellyfin counts the calls
//! it answers at once. Publishing and pushing overlap, as on AWS.
//!
//! `FANOUT_ITEMS` sets the size of the fake Plex library (default 600 items, which a
//! first import turns into 280 changes). `make fanout` runs issue 10's first import
//! of 20,000 changes (`FANOUT_ITEMS=43000`, our crates at opt-level 1) and prints
//! the figures of docs/PERFORMANCE.md.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use aws_types::SdkConfig;
use chrono::Utc;
use e2e::fake::{make_id, FakeServer, PlayState, GENERATED_BASE};
use e2e::moto::Moto;
use serde_json::{json, Value};
use watchstate::adapters::eventbridge::{EventBridgeBus, DETAIL_TYPE, SOURCE};
use watchstate::adapters::media::client::HttpClients;
use watchstate::adapters::media::client::{http_client_with, RetryPolicy};
use watchstate::adapters::store::dynamo::DynamoStore;
use watchstate::adapters::store::sqlite::SqliteStore;
use watchstate::app::outbox;
use watchstate::app::push::Pusher;
use watchstate::app::tasks::import::{ImportOptions, Importer};
use watchstate::app::tasks::{Budget, Deps, TaskPayload};
use watchstate::domain::model::{BackendKind, ChangeKind, StateChange};
use watchstate::ports::bus::Bus;
use watchstate::ports::store::Store;

const BUS: &str = "watchstate-fanout";
/// The template's defaults (`PushBatchSize`, `PushMaxConcurrency`).
const BATCH: usize = 100;
const CONCURRENCY: usize = 2;
/// The template's `PushBatchWindowSeconds`.
const WINDOW: Duration = Duration::from_secs(5);
/// Changes one publishing step takes from the outbox; the next waits until the
/// queue holds fewer than this (moto's SQS slows down with the depth of a queue).
const PUBLISH_STEP: usize = 1000;

/// The bus, its rule and the push queue on moto.
async fn push_queue(conf: &SdkConfig) -> String {
    let eb = aws_sdk_eventbridge::Client::new(conf);
    let sqs = aws_sdk_sqs::Client::new(conf);
    eb.create_event_bus().name(BUS).send().await.expect("bus");
    let url = sqs
        .create_queue()
        .queue_name("push")
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "5",
        )
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("queue url");
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attributes")
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("queue arn")
        .clone();
    eb.put_rule()
        .name("state-changes")
        .event_bus_name(BUS)
        .event_pattern(json!({"source": [SOURCE], "detail-type": [DETAIL_TYPE]}).to_string())
        .send()
        .await
        .expect("rule");
    eb.put_targets()
        .rule("state-changes")
        .event_bus_name(BUS)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("push-queue")
                .arn(arn)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("target");
    url
}

/// Lambda's SQS event source mapping, in miniature: up to `BATCH` messages per
/// invocation, `CONCURRENCY` pollers, `batchItemFailures` left to come back.
struct Esm {
    sqs: aws_sdk_sqs::Client,
    url: String,
    invocations: AtomicUsize,
    largest: AtomicUsize,
    failures: AtomicUsize,
}

impl Esm {
    /// One invocation's worth of messages, as the event source mapping gathers them:
    /// up to `BATCH`, waiting at most the batching window (empty: the queue looks empty).
    async fn gather(&self) -> Vec<aws_sdk_sqs::types::Message> {
        let mut got = Vec::new();
        let started = Instant::now();
        while got.len() < BATCH && started.elapsed() < WINDOW {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10.min((BATCH - got.len()) as i32))
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            let n = out.messages().len();
            got.extend(out.messages.unwrap_or_default());
            if n == 0 && got.is_empty() {
                break;
            }
        }
        got
    }

    /// Messages in the queue (visible ones).
    async fn depth(&self) -> usize {
        self.sqs
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .expect("attributes")
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    async fn invoke(
        &self,
        pusher: &Pusher,
        bus: &dyn Bus,
        messages: &[aws_sdk_sqs::types::Message],
    ) {
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "eventSource": "aws:sqs",
                })
            })
            .collect();
        let mut ctx = lambda_runtime::Context::default();
        ctx.deadline = (Utc::now().timestamp_millis() + 60_000) as u64;
        let event = lambda_runtime::LambdaEvent::new(json!({ "Records": records }), ctx);
        self.invocations.fetch_add(1, Ordering::Relaxed);
        self.largest.fetch_max(messages.len(), Ordering::Relaxed);
        let answer = watchstate::inbound::lambda::push_event(pusher, Some(bus), event)
            .await
            .expect("a batch answers with its failures, never an error");
        let failed: BTreeSet<String> = answer["batchItemFailures"]
            .as_array()
            .expect("batchItemFailures")
            .iter()
            .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_string))
            .collect();
        self.failures.fetch_add(failed.len(), Ordering::Relaxed);
        let done: Vec<_> = messages
            .iter()
            .filter(|m| !failed.contains(m.message_id().unwrap_or_default()))
            .collect();
        for chunk in done.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .build()
                        .expect("entry")
                })
                .collect();
            self.sqs
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .expect("delete");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_first_import_reaches_jellyfin_in_batches_one_call_at_a_time_per_server() {
    let n: usize = std::env::var("FANOUT_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let started = Instant::now();
    let moto = tokio::task::spawn_blocking(Moto::start)
        .await
        .expect("moto");
    let conf = moto.sdk_config();
    let url = push_queue(&conf).await;

    // Ana's Plex library, and the same library on her Jellyfin with nothing played.
    let plex = FakeServer::with_generated(BackendKind::Plex, n).await;
    let jf = FakeServer::with_generated(BackendKind::Jellyfin, n).await;
    for i in 0..n as u64 {
        jf.set_state(
            &make_id(BackendKind::Jellyfin, GENERATED_BASE + i),
            PlayState::default(),
        );
    }
    let dir = tempfile::tempdir().expect("dir");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("watchstate.db")).expect("store"));
    store.put_user("ana", Utc::now()).await.expect("user");
    let mut p = plex.backend("ana", "plex");
    p.webhook_token_hash = "hash-plex".into();
    p.import.enabled = true;
    store.put_backend(&p).await.expect("plex backend");
    let mut j = jf.backend("ana", "jf");
    j.webhook_token_hash = "hash-jf".into();
    j.export.enabled = true;
    store.put_backend(&j).await.expect("jellyfin backend");

    // The SDK's default timeouts: moto on a busy machine takes longer than the
    // adapter's 2 s per attempt for ten events fanned out to a queue.
    let bus: Arc<dyn Bus> = Arc::new(EventBridgeBus::new(
        aws_sdk_eventbridge::Client::new(&conf),
        BUS,
    ));
    let clients = Arc::new(HttpClients {
        http: http_client_with(Duration::from_secs(5), Duration::from_secs(30)),
        retry: RetryPolicy::quick(),
    });
    let deps = Deps {
        store: store.clone(),
        clients: clients.clone(),
        bus: Some(bus.clone()),
    };
    let report = Importer::new(&deps, ImportOptions::default())
        .run(&TaskPayload::default(), Budget::unlimited())
        .await
        .expect("import");
    assert!(report.complete());
    let changes = report.backends[0].counts.pushed as usize;
    let watched: Vec<StateChange> = store
        .pending_changes(usize::MAX >> 1)
        .await
        .expect("outbox");
    assert_eq!(watched.len(), changes);
    let played = watched
        .iter()
        .filter(|c| c.kind == ChangeKind::Watched && c.watched)
        .count();
    println!(
        "first import of {n} items: {changes} changes ({played} played) in {:.1?}",
        started.elapsed()
    );

    let esm = Arc::new(Esm {
        sqs: aws_sdk_sqs::Client::new(&conf),
        url,
        invocations: AtomicUsize::new(0),
        largest: AtomicUsize::new(0),
        failures: AtomicUsize::new(0),
    });
    let pusher = Arc::new(Pusher {
        store: store.clone(),
        clients,
    });
    jf.clear_calls();
    jf.reset_peak_in_flight();
    let t = Instant::now();
    let published_all = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pollers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (esm, pusher, bus) = (esm.clone(), pusher.clone(), bus.clone());
            let published_all = published_all.clone();
            tokio::spawn(async move {
                let mut idle = 0;
                // The queue is drained when, everything published, it looks empty a
                // few times in a row (failed messages come back after the visibility
                // timeout).
                while idle < 3 {
                    let batch = esm.gather().await;
                    if batch.is_empty() {
                        if published_all.load(Ordering::Acquire) {
                            idle += 1;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                    idle = 0;
                    esm.invoke(&pusher, bus.as_ref(), &batch).await;
                }
            })
        })
        .collect();

    // The outbox goes out in batches (10 per PutEvents) while push works; each push
    // invocation drains a few more itself (`inbound::lambda::push_event`).
    let mut published = 0;
    loop {
        while esm.depth().await >= PUBLISH_STEP {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let (ok, failed) = outbox::drain(store.as_ref(), bus.as_ref(), PUBLISH_STEP).await;
        assert_eq!(failed, 0, "publish failures");
        published += ok;
        if ok == 0 {
            if store.pending_changes(1).await.expect("outbox").is_empty() {
                break;
            }
            // Claimed by a push invocation's drain: it publishes them.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    published_all.store(true, Ordering::Release);
    println!(
        "published {published} of {changes} changes from the outbox (push invocations drained the rest) in {:.1?}",
        t.elapsed()
    );
    for p in pollers {
        p.await.expect("poller");
    }
    let invocations = esm.invocations.load(Ordering::Relaxed);
    let peak = jf.peak_in_flight();
    let calls = jf.calls().len();
    println!(
        "pushed {changes} changes in {invocations} invocations (largest batch {}, {} items failed and came back) \
         in {:.1?} ({:.1?} in all); Jellyfin answered {calls} calls, at most {peak} at once (limit {CONCURRENCY})",
        esm.largest.load(Ordering::Relaxed),
        esm.failures.load(Ordering::Relaxed),
        t.elapsed(),
        started.elapsed()
    );

    assert!(invocations > 0);
    assert!(
        invocations * 20 <= changes,
        "{invocations} push invocations for {changes} changes: more than 1/20"
    );
    assert!(
        (1..=CONCURRENCY).contains(&peak),
        "{peak} concurrent calls to one server"
    );
    // Nothing lost: every item played on Plex is played on Jellyfin now.
    for c in watched
        .iter()
        .filter(|c| c.kind == ChangeKind::Watched && c.watched)
    {
        let item = store
            .get_item("ana", &c.item_id)
            .await
            .unwrap()
            .expect("item");
        let id = item
            .backends
            .get("jf")
            .and_then(|b| b.item_id.clone())
            .expect("found on jf");
        assert!(
            jf.state(&id).played,
            "item {} not played on Jellyfin",
            item.id
        );
    }
    assert!(store.pending_changes(10).await.unwrap().is_empty());
}

type Open = Arc<dyn Fn() -> Arc<dyn Store> + Send + Sync>;

/// Four drains at once, each on its own store handle (as four Lambda instances),
/// over an outbox of a few hundred changes: every change is published exactly once.
async fn overlapping_drains_publish_every_change_once(open: Open, conf: SdkConfig, url: String) {
    let plex = FakeServer::with_generated(BackendKind::Plex, 300).await;
    let store = open();
    store.put_user("ana", Utc::now()).await.unwrap();
    let mut p = plex.backend("ana", "plex");
    p.webhook_token_hash = "hash-plex".into();
    p.import.enabled = true;
    store.put_backend(&p).await.unwrap();
    let deps = Deps {
        store: store.clone(),
        clients: Arc::new(HttpClients {
            http: http_client_with(Duration::from_secs(5), Duration::from_secs(30)),
            retry: RetryPolicy::quick(),
        }),
        bus: None,
    };
    Importer::new(&deps, ImportOptions::default())
        .run(&TaskPayload::default(), Budget::unlimited())
        .await
        .expect("import");
    let pending = store.pending_changes(1000).await.unwrap();
    assert!(pending.len() >= 100, "{}", pending.len());

    let drains: Vec<_> = (0..4)
        .map(|_| {
            let (conf, open) = (conf.clone(), open.clone());
            tokio::spawn(async move {
                let store = open();
                let bus = EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&conf), BUS);
                let mut total = 0;
                loop {
                    let (ok, failed) = outbox::drain(store.as_ref(), &bus, 20).await;
                    assert_eq!(failed, 0);
                    total += ok;
                    if ok == 0 {
                        return total;
                    }
                }
            })
        })
        .collect();
    let mut published = 0;
    for d in drains {
        published += d.await.unwrap();
    }
    assert_eq!(published, pending.len());
    assert!(store.pending_changes(10).await.unwrap().is_empty());

    let sqs = aws_sdk_sqs::Client::new(&conf);
    let mut seen: Vec<String> = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .visibility_timeout(600)
            .send()
            .await
            .unwrap();
        if out.messages().is_empty() {
            break;
        }
        for m in out.messages() {
            let v: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            seen.push(v["detail"]["id"].as_str().unwrap().to_string());
        }
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), pending.len(), "every change published");
    assert_eq!(seen.len(), pending.len(), "and none twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_drains_publish_once_sqlite() {
    let moto = tokio::task::spawn_blocking(Moto::start)
        .await
        .expect("moto");
    let conf = moto.sdk_config();
    let url = push_queue(&conf).await;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("watchstate.db");
    let open: Open = Arc::new(move || Arc::new(SqliteStore::open(&path).expect("store")));
    overlapping_drains_publish_every_change_once(open, conf, url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_drains_publish_once_dynamodb() {
    // Serial moto: threaded moto's conditional writes are not atomic (DynamoDB's are),
    // so two drains could both claim one row there.
    let moto = tokio::task::spawn_blocking(Moto::start_serial)
        .await
        .expect("moto");
    let conf = moto.sdk_config();
    let url = push_queue(&conf).await;
    let client = aws_sdk_dynamodb::Client::new(&conf);
    watchstate::adapters::store::dynamo::create_table(&client, "fanout")
        .await
        .expect("table");
    let open: Open = Arc::new(move || Arc::new(DynamoStore::new(client.clone(), "fanout")));
    overlapping_drains_publish_every_change_once(open, conf, url).await;
}

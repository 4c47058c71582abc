//! The EventBridge bus against moto, and the outbox that makes sure no state change is
//! lost between "stored" and "published" (docs/ARCHITECTURE.md).
//!
//! Each test starts its own moto server with a custom bus, a rule matching
//! `source: watchstate` / `detail-type: StateChange`, and an SQS queue as the rule's
//! target: what reaches the queue is what the push function would receive.
//!
//! Delivery is at-least-once: a change published but not yet acknowledged goes out
//! again on the next drain, with the same id. The push function treats a redelivered
//! change as the no-op it is (same change id, and a state the target backend already
//! has or that is older than the item's current state).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use e2e::emulator::free_port;
use e2e::moto::Moto;
use e2e::{backend_body, fixture, wire, Local, Transport};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use watchstate::adapters::eventbridge::{EventBridgeBus, DETAIL_TYPE, SOURCE};
use watchstate::adapters::store::sqlite::SqliteStore;
use watchstate::app::ingest;
use watchstate::app::outbox;
use watchstate::domain::model::{
    Action, ChangeKind, Event, EventItem, ItemType, Source, StateChange,
};
use watchstate::domain::sync::Context;
use watchstate::inbound::config::{event_bridge_bus, Config};
use watchstate::ports::bus::{Bus, BusError};
use watchstate::ports::store::Store;

const REGION: &str = "us-east-1";
const BUS: &str = "watchstate-test";

/// AWS config pointing at `endpoint`, with moto's dummy credentials.
/// The adapter as `config::event_bridge_bus` builds it (short timeouts, quick retries), on `endpoint`.
async fn bus_at(endpoint: &str) -> EventBridgeBus {
    EventBridgeBus::from_sdk_config(&e2e::moto::sdk_config(endpoint), BUS)
}

/// An endpoint nobody listens on: connections are refused.
fn dead_endpoint() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// moto with the custom bus, a rule for watchstate's changes and its SQS target.
struct Aws {
    moto: Moto,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl Aws {
    async fn start() -> Aws {
        let moto = Moto::start();
        let conf = moto.sdk_config();
        let eb = aws_sdk_eventbridge::Client::new(&conf);
        let sqs = aws_sdk_sqs::Client::new(&conf);

        eb.create_event_bus().name(BUS).send().await.expect("bus");
        let queue_url = sqs
            .create_queue()
            .queue_name("push")
            .send()
            .await
            .expect("queue")
            .queue_url
            .expect("queue url");
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes");
        let queue_arn = attrs
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .expect("queue arn")
            .clone();
        let pattern = json!({"source": [SOURCE], "detail-type": [DETAIL_TYPE]});
        eb.put_rule()
            .name("state-changes")
            .event_bus_name(BUS)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .expect("rule");
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id("push")
            .arn(queue_arn)
            .build()
            .expect("target");
        let out = eb
            .put_targets()
            .rule("state-changes")
            .event_bus_name(BUS)
            .targets(target)
            .send()
            .await
            .expect("targets");
        assert_eq!(out.failed_entry_count(), 0);
        Aws {
            moto,
            sqs,
            queue_url,
        }
    }

    async fn bus(&self) -> EventBridgeBus {
        bus_at(&self.moto.endpoint()).await
    }

    /// Receive (and delete) events from the queue until `n` arrived or `wait` passed.
    async fn receive(&self, n: usize, wait: Duration) -> Vec<Value> {
        let deadline = Instant::now() + wait;
        let mut got = Vec::new();
        while got.len() < n && Instant::now() < deadline {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            for m in out.messages() {
                let body = m.body().expect("message body");
                got.push(serde_json::from_str(body).expect("the message is the event JSON"));
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().expect("receipt handle"))
                    .send()
                    .await
                    .expect("delete");
            }
        }
        got
    }

    /// Nothing (more) is in the queue.
    async fn assert_empty(&self) {
        let extra = self.receive(1, Duration::from_secs(2)).await;
        assert!(extra.is_empty(), "delivered more than once: {extra:?}");
    }
}

/// The change an event carried, as the push function reads it from the event.
fn change_in(event: &Value) -> StateChange {
    assert_eq!(event["source"], SOURCE, "{event}");
    assert_eq!(event["detail-type"], DETAIL_TYPE, "{event}");
    serde_json::from_value(event["detail"].clone()).expect("detail is a StateChange")
}

fn sample_change(id: &str) -> StateChange {
    StateChange {
        id: id.into(),
        user: "ana".into(),
        item_id: "item-1".into(),
        origin: Some("plex".into()),
        watched: true,
        progress_ms: None,
        state_updated_at: Utc.with_ymd_and_hms(2025, 3, 14, 20, 15, 0).unwrap(),
        kind: ChangeKind::Watched,
    }
}

/// A Plex scrobble of a movie, as the Plex parser returns it.
fn scrobble() -> Event {
    Event {
        source: Source::Plex,
        server_id: Some("a1b2c3d4e5f60718293a4b5c6d7e8f9001122334".into()),
        user_id: Some("1".into()),
        action: Action::Played,
        raw_event: "media.scrobble".into(),
        occurred_at: Some(Utc.with_ymd_and_hms(2025, 3, 14, 20, 15, 0).unwrap()),
        paused: false,
        item: Some(EventItem {
            kind: Some(ItemType::Movie),
            backend_item_id: "12345".into(),
            title: Some("The Shawshank Redemption".into()),
            year: Some(1994),
            guids: [("imdb", "tt0111161"), ("tmdb", "278")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            played: Some(true),
            duration_ms: Some(8_520_000),
            ..EventItem::default()
        }),
    }
}

/// Store the scrobble; returns the change written into the outbox with the item.
async fn store_scrobble(store: &dyn Store) -> StateChange {
    let event = scrobble();
    let ctx = Context {
        user: "ana",
        backend: "plex",
        received_at: Utc.with_ymd_and_hms(2025, 3, 14, 20, 15, 2).unwrap(),
    };
    let applied = ingest::apply(store, ctx, &event, event.item.as_ref().unwrap())
        .await
        .expect("stored");
    assert!(applied.written);
    let change = applied.change.expect("a real change");
    assert_eq!(
        store.pending_changes(10).await.unwrap(),
        vec![change.clone()]
    );
    change
}

#[tokio::test]
async fn a_published_change_reaches_the_rule_target_unchanged() {
    let aws = Aws::start().await;
    let bus = aws.bus().await;
    let change = sample_change("c-1");
    bus.publish(&change).await.expect("published");

    let got = aws.receive(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(change_in(&got[0]), change);
    assert_eq!(got[0]["detail"], serde_json::to_value(&change).unwrap());
    aws.assert_empty().await;
}

#[tokio::test]
async fn from_env_reads_the_bus_name_and_honours_aws_endpoint_url() {
    // The only test that touches the environment; the others configure clients
    // explicitly, which takes precedence over it.
    std::env::remove_var("EVENT_BUS_NAME");
    assert!(event_bridge_bus(&Config::from_env()).await.is_none());
    std::env::set_var("EVENT_BUS_NAME", "");
    assert!(event_bridge_bus(&Config::from_env()).await.is_none());

    let aws = Aws::start().await;
    std::env::set_var("EVENT_BUS_NAME", BUS);
    std::env::set_var("AWS_ENDPOINT_URL", aws.moto.endpoint());
    std::env::set_var("AWS_REGION", REGION);
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    let bus = event_bridge_bus(&Config::from_env())
        .await
        .expect("bus from env");
    assert_eq!(bus.bus_name(), BUS);
    let change = sample_change("c-env");
    bus.publish(&change).await.expect("published");
    let got = aws.receive(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(change_in(&got[0]), change);
}

#[tokio::test]
async fn an_unreachable_bus_fails_fast_with_a_plain_reason() {
    // Connection refused: retried a few times, then an error, well within seconds.
    let bus = bus_at(&dead_endpoint()).await;
    let t = Instant::now();
    let err = bus.publish(&sample_change("c-dead")).await.unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
    let BusError::Unavailable(msg) = err;
    assert!(msg.contains("PutEvents"), "{msg}");
    assert!(!msg.contains("testing"), "no credentials in errors: {msg}");

    // A black hole (accepts, never answers): the operation timeout ends it.
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let bus = bus_at(&format!("http://{}", hole.local_addr().unwrap())).await;
    let t = Instant::now();
    assert!(bus.publish(&sample_change("c-hole")).await.is_err());
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
}

#[tokio::test]
async fn a_missing_bus_is_an_error_with_its_code() {
    let moto = Moto::start();
    let bus = EventBridgeBus::from_sdk_config(&moto.sdk_config(), "no-such-bus");
    let BusError::Unavailable(msg) = bus.publish(&sample_change("c-x")).await.unwrap_err();
    assert!(msg.contains("ResourceNotFound"), "{msg}");
}

/// A fake EventBridge answering every PutEvents with one failed entry.
async fn rejecting_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let len: usize = text[..end]
                        .lines()
                        .filter_map(|l| l.split_once(':'))
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    let body = r#"{"FailedEntryCount":1,"Entries":[{"ErrorCode":"InternalFailure","ErrorMessage":"try again"}]}"#;
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                    buf.clear();
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn failed_entries_are_a_failure_that_keeps_the_change() {
    let bus = bus_at(&rejecting_endpoint().await).await;
    let BusError::Unavailable(msg) = bus.publish(&sample_change("c-1")).await.unwrap_err();
    assert!(msg.contains("InternalFailure"), "{msg}");

    let store = SqliteStore::in_memory().unwrap();
    let change = store_scrobble(&store).await;
    assert!(!outbox::publish_and_ack(&store, &bus, &change).await);
    assert_eq!(store.pending_changes(10).await.unwrap(), vec![change]);
}

#[tokio::test]
async fn a_change_that_could_not_be_published_waits_in_the_outbox_until_a_drain() {
    let aws = Aws::start().await;
    let store = SqliteStore::in_memory().unwrap();
    let change = store_scrobble(&store).await;

    // EventBridge unreachable: the write stands, the change waits.
    let dead = bus_at(&dead_endpoint()).await;
    assert!(!outbox::publish_and_ack(&store, &dead, &change).await);
    assert_eq!(
        store.pending_changes(10).await.unwrap(),
        vec![change.clone()]
    );
    assert_eq!(outbox::drain(&store, &dead, 10).await, (0, 1));
    assert_eq!(store.pending_changes(10).await.unwrap().len(), 1);

    // EventBridge back: the drain delivers it and empties the outbox.
    let live = aws.bus().await;
    assert_eq!(outbox::drain(&store, &live, 10).await, (1, 0));
    assert!(store.pending_changes(10).await.unwrap().is_empty());
    let got = aws.receive(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(change_in(&got[0]), change);

    // Acknowledged: a second drain has nothing to send.
    assert_eq!(outbox::drain(&store, &live, 10).await, (0, 0));
    aws.assert_empty().await;
}

#[tokio::test]
async fn a_change_published_but_not_acknowledged_is_delivered_again() {
    let aws = Aws::start().await;
    let store = SqliteStore::in_memory().unwrap();
    let change = store_scrobble(&store).await;
    let live = aws.bus().await;

    // Published, then the process died before the ack: the change is still pending.
    live.publish(&change).await.expect("published");
    assert_eq!(store.pending_changes(10).await.unwrap().len(), 1);
    assert_eq!(outbox::drain(&store, &live, 10).await, (1, 0));
    assert!(store.pending_changes(10).await.unwrap().is_empty());

    // At least once: two identical events, same change id, for push to collapse.
    let got = aws.receive(2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(change_in(&got[0]), change);
    assert_eq!(change_in(&got[1]), change);
    aws.assert_empty().await;
}

#[tokio::test]
async fn drain_keeps_order_and_stops_at_the_first_failure() {
    let aws = Aws::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("watchstate.db")).unwrap();
    let first = store_scrobble(&store).await;
    // Marked unplayed on Jellyfin the next morning: a second change for the same item.
    let mut event = scrobble();
    event.source = Source::Jellyfin;
    event.server_id = Some("jf-server".into());
    event.user_id = Some("jf-user".into());
    event.action = Action::Unplayed;
    event.raw_event = "UserDataSaved".into();
    event.occurred_at = Some(Utc.with_ymd_and_hms(2025, 3, 15, 9, 0, 0).unwrap());
    if let Some(item) = event.item.as_mut() {
        item.backend_item_id = "f0e1d2c3b4a5".into();
        item.played = Some(false);
    }
    let ctx = Context {
        user: "ana",
        backend: "jf",
        received_at: Utc.with_ymd_and_hms(2025, 3, 15, 9, 0, 1).unwrap(),
    };
    let second = ingest::apply(&store, ctx, &event, event.item.as_ref().unwrap())
        .await
        .unwrap()
        .change
        .expect("a real change");
    assert!(!second.watched);
    assert_eq!(
        store.pending_changes(10).await.unwrap(),
        vec![first.clone(), second.clone()]
    );

    // Both go in one batch, refused together; the claim is released.
    let dead = bus_at(&dead_endpoint()).await;
    assert_eq!(outbox::drain(&store, &dead, 10).await, (0, 2));
    assert_eq!(store.pending_changes(10).await.unwrap().len(), 2);

    // The outbox survives a restart (a new connection to the same file).
    drop(store);
    let store = SqliteStore::open(&dir.path().join("watchstate.db")).unwrap();
    let live = aws.bus().await;
    assert_eq!(outbox::drain(&store, &live, 10).await, (2, 0));
    let got: Vec<StateChange> = aws
        .receive(2, Duration::from_secs(10))
        .await
        .iter()
        .map(change_in)
        .collect();
    assert_eq!(got, vec![first, second], "oldest first");
    aws.assert_empty().await;
}

#[tokio::test]
async fn the_webhook_answers_stored_while_the_bus_is_down_and_the_change_waits() {
    let aws = Aws::start().await;
    let mut local = Local::new();
    let dead: Arc<dyn Bus> = Arc::new(bus_at(&dead_endpoint()).await);
    local.webhook.bus = Some(dead);
    let path = local.backend("ana", "plex", backend_body("plex")).await;
    let scrobble = fixture("written/plex/media.scrobble-episode-localized.json");
    let w = wire(
        Transport::PlexMultipart,
        &scrobble,
        "PlexMediaServer/1.40.2.8395-c67dce28e",
    );

    let t = Instant::now();
    let (status, body) = local.send(&path, &w).await;
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "stored");
    assert_eq!(body["changed"], true);
    let pending = local.store.pending_changes(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(json!(pending[0].item_id), body["item_id"]);
    assert!(pending[0].watched);

    // The same webhook with the bus up publishes straight away; the leftover from
    // before is the drain's to send.
    let live: Arc<dyn Bus> = Arc::new(aws.bus().await);
    local.webhook.bus = Some(live.clone());
    let (status, body) = local.send(&path, &w).await;
    assert_eq!((status, &body["reason"]), (200, &json!("same state")));
    assert_eq!(local.store.pending_changes(10).await.unwrap().len(), 1);
    assert_eq!(
        outbox::drain(local.store.as_ref(), live.as_ref(), 10).await,
        (1, 0)
    );
    assert!(local.store.pending_changes(10).await.unwrap().is_empty());
    let got = aws.receive(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(change_in(&got[0]), pending[0]);
    aws.assert_empty().await;
}

#[tokio::test]
async fn the_webhook_publishes_and_acknowledges_when_the_bus_is_up() {
    let aws = Aws::start().await;
    let mut local = Local::new();
    local.webhook.bus = Some(Arc::new(aws.bus().await));
    let path = local.backend("ana", "plex", backend_body("plex")).await;
    let w = wire(
        Transport::PlexMultipart,
        &fixture("written/plex/media.scrobble-episode-localized.json"),
        "PlexMediaServer/1.40.2.8395-c67dce28e",
    );
    let (status, body) = local.send(&path, &w).await;
    assert_eq!((status, &body["changed"]), (200, &json!(true)), "{body}");
    assert!(local.store.pending_changes(10).await.unwrap().is_empty());
    let got = aws.receive(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    let change = change_in(&got[0]);
    assert_eq!(json!(change.item_id), body["item_id"]);
    assert_eq!(change.user, "ana");
    assert_eq!(change.origin.as_deref(), Some("plex"));
    assert!(change.watched);
    aws.assert_empty().await;
}

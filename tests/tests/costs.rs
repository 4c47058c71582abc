//! What a webhook costs in DynamoDB, measured on moto (docs/PERFORMANCE.md, "Cost"):
//! for each source's fixture, the requests the webhook function sends and the size of
//! every record it writes, by DynamoDB's item-size rules (attribute names plus values).
//! A Plex delivery's ~15 KB body is stored compressed, so the delivery record stays
//! under 4 KB (4 write units at most); a stranger's request stores no body at all.
//!
//! Log lines cost too (CloudWatch Logs ingestion): at the deployed level (`info`) a
//! webhook that was handled writes no log line of its own (the delivery log and the
//! EMF metric line already say what happened).
//!
//! `cargo test -p e2e --test costs -- --nocapture` prints the figures.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;
use e2e::moto::Moto;
use e2e::{fixture, wire, Local, Transport};
use serde_json::json;
use watchstate::adapters::media;
use watchstate::adapters::store::dynamo::{create_table, DynamoStore};
use watchstate::domain::model::Source;
use watchstate::inbound::http::webhook::WebhookService;
use watchstate::ports::store::Store;

const TABLE: &str = "costs";

/// What the functions' JSON log subscriber writes, kept for counting.
#[derive(Clone, Default)]
struct LogBytes(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBytes {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
struct Ops(Arc<Mutex<Vec<String>>>);

impl Intercept for Ops {
    fn name(&self) -> &'static str {
        "Ops"
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
        self.0.lock().unwrap().push(op);
        Ok(())
    }
}

/// DynamoDB's size of an attribute value (numbers: about one byte per two digits).
fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(l) => 3 + l.iter().map(|e| 1 + value_size(e)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, e)| 1 + k.len() + value_size(e))
                .sum::<usize>()
        }
        AttributeValue::Ss(s) => s.iter().map(String::len).sum(),
        _ => 0,
    }
}

fn item_size(r: &std::collections::HashMap<String, AttributeValue>) -> usize {
    r.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// Every record of the table: (pk, sk) -> size in bytes.
async fn sizes(ddb: &aws_sdk_dynamodb::Client) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(TABLE)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        for r in page.items() {
            let s = |n: &str| match r.get(n) {
                Some(AttributeValue::S(v)) => v.clone(),
                _ => String::new(),
            };
            out.insert((s("pk"), s("sk")), item_size(r));
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return out;
        }
    }
}

struct Case {
    name: &'static str,
    kind: &'static str,
    transport: Transport,
    user_agent: &'static str,
    fixture: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "plex",
        kind: "plex",
        transport: Transport::PlexMultipart,
        user_agent: "PlexMediaServer/1.40.2.8395-c67dce28e",
        fixture: "webhooks/plex/media.scrobble-movie-plexguid-movary.json",
    },
    Case {
        name: "tautulli",
        kind: "plex",
        transport: Transport::TautulliPutJson,
        user_agent: "Tautulli/2.14.5",
        fixture: "written/tautulli/watched-episode.json",
    },
    Case {
        name: "jellyfin",
        kind: "jellyfin",
        transport: Transport::JellyfinTextPlain,
        user_agent: "Jellyfin-Server/10.8.8",
        fixture: "webhooks/jellyfin/playbackstop-movie-completed-10.8.8-movary.json",
    },
    Case {
        name: "emby",
        kind: "emby",
        transport: Transport::EmbyFormData,
        user_agent: "Emby Server/4.7.11.0",
        fixture: "webhooks/emby/playback.stop-movie-4.7.11-formdata-movary.json",
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_small_and_strangers_store_no_body() {
    let moto = tokio::task::spawn_blocking(Moto::start)
        .await
        .expect("moto");
    let ops = Ops::default();
    let conf = moto.sdk_config();
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    create_table(&ddb, TABLE).await.expect("table");
    let counted = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&conf)
            .interceptor(ops.clone())
            .build(),
    );
    let store: Arc<dyn Store> = Arc::new(DynamoStore::new(counted, TABLE));
    let dir = tempfile::tempdir().unwrap();
    let l = Local::with_store(store.clone(), dir);
    let webhook = WebhookService { store, bus: None };

    println!(
        "| source | raw body (bytes) | delivery record (bytes) | item record | B# copy | answer |"
    );
    println!("|---|---|---|---|---|---|");
    for case in CASES {
        let path = l
            .backend(
                "ana",
                case.name,
                json!({"type": case.kind, "url": "https://media.example", "token": "t"}),
            )
            .await;
        let raw = fixture(case.fixture);
        let w = wire(case.transport, &raw, case.user_agent);
        let mut requests = Vec::new();
        let mut item_pk = String::new();
        for _ in 0..2 {
            let before = sizes(&ddb).await;
            ops.0.lock().unwrap().clear();
            let mut b = http::Request::builder().method(w.method).uri(&path);
            for (k, v) in &w.headers {
                b = b.header(*k, v);
            }
            // The subscriber the functions install, at the deployed level.
            let logs = LogBytes::default();
            let writer = logs.clone();
            let guard = tracing::subscriber::set_default(watchstate::inbound::lambda::subscriber(
                true,
                None,
                None,
                move || writer.clone(),
            ));
            let r = webhook
                .handle(b.body(Bytes::from(w.body.clone())).unwrap())
                .await;
            drop(guard);
            assert_eq!(r.status(), 200, "{}: {}", case.name, r.body());
            let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
            assert!(
                logged.is_empty(),
                "{}: {} bytes of log lines for one webhook: {logged}",
                case.name,
                logged.len()
            );
            requests.push(ops.0.lock().unwrap().join("+"));
            let after = sizes(&ddb).await;
            let new: Vec<_> = after
                .iter()
                .filter(|(k, _)| !before.contains_key(*k))
                .collect();
            let delivery = new
                .iter()
                .find(|((pk, _), _)| pk.starts_with("D#"))
                .map(|(_, s)| **s)
                .expect("a delivery record");
            // One write unit (1 KB): what nothing reads is not kept (Plex's cast and
            // tag lists, Jellyfin's streams, Emby's links and images).
            assert!(
                delivery <= 1024,
                "{}: delivery record of {delivery} bytes (body {} bytes)",
                case.name,
                raw.len()
            );
            if item_pk.is_empty() {
                // A new item: its record and the copy in its backend id's record.
                let size = |prefix: &str| {
                    new.iter()
                        .find(|((pk, _), _)| pk.starts_with(prefix))
                        .map(|(_, s)| s.to_string())
                        .unwrap_or_else(|| "-".into())
                };
                item_pk = "seen".into();
                println!(
                    "| {} | {} | {delivery} | {} | {} | {} |",
                    case.name,
                    raw.len(),
                    size("I#"),
                    size(&format!("K#ana#B#{}#", case.name)),
                    r.body().replace('|', "/"),
                );
            }
        }
        println!(
            "|   | requests: first {} / repeat {} |",
            requests[0], requests[1]
        );
    }

    // A stranger: metadata only, counted against the hourly cap, kept a day.
    let before = sizes(&ddb).await;
    ops.0.lock().unwrap().clear();
    let body = fixture("webhooks/plex/media.scrobble-movie-plexguid-movary.json");
    let w = wire(Transport::PlexMultipart, &body, "PlexMediaServer/1.40");
    let stranger = format!("/webhook/wst_{}", "0".repeat(64));
    let mut b = http::Request::builder().method(w.method).uri(&stranger);
    for (k, v) in &w.headers {
        b = b.header(*k, v);
    }
    let r = webhook
        .handle(b.body(Bytes::from(w.body.clone())).unwrap())
        .await;
    assert_eq!(r.status(), 401);
    let after = sizes(&ddb).await;
    let new: Vec<_> = after
        .iter()
        .filter(|(k, _)| !before.contains_key(*k))
        .collect();
    let d = new
        .iter()
        .find(|((pk, _), _)| pk == "D-")
        .expect("stranger's delivery");
    assert!(*d.1 < 600, "a stranger's delivery of {} bytes", d.1);
    let listed = webhook.store.list_deliveries(None, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].body.is_none(), "no body kept for a stranger");
    assert_eq!(listed[0].status, "unknown_webhook");
    println!(
        "stranger: delivery record {} bytes, requests {}",
        d.1,
        ops.0.lock().unwrap().join("+")
    );

    // What the api gives back is the payload as received (decompressed), less what no
    // parser reads: it says exactly what the webhook said.
    let (s, v) = l
        .api("GET", "/v1/users/ana/deliveries?body=true&limit=1", None)
        .await;
    assert_eq!(s, 200);
    let emby = fixture(CASES[3].fixture);
    let kept = v["deliveries"][0]["body"].as_str().unwrap();
    let received_at = chrono::Utc::now();
    assert_eq!(
        media::parse(Source::Emby, kept.as_bytes(), received_at).unwrap(),
        media::parse(Source::Emby, &emby, received_at).unwrap(),
    );
    let got: serde_json::Value = serde_json::from_str(kept).unwrap();
    let want: serde_json::Value = serde_json::from_slice(&emby).unwrap();
    for kept in ["Event", "Date", "User", "Server", "PlaybackInfo"] {
        assert_eq!(got[kept], want[kept], "{kept}");
    }
    for kept in [
        "Id",
        "Name",
        "Type",
        "ProviderIds",
        "ProductionYear",
        "RunTimeTicks",
    ] {
        assert_eq!(got["Item"][kept], want["Item"][kept], "Item.{kept}");
    }
    assert!(want["Item"]["Overview"].is_string() && got["Item"].get("Overview").is_none());
    assert!(
        got["Session"].get("RemoteEndPoint").is_none(),
        "no address kept"
    );
}

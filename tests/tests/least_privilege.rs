//! Least privilege, the code's side: each function's library code runs against moto
//! with every SDK client recording the operations it sends, and what a function sent
//! must be in `watchstate::inbound::permissions::calls` for it (which the template is checked
//! against in `tests/tests/template.rs`). A new SDK call that the table (and so the
//! template) lacks fails here before it fails with AccessDenied on AWS.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_types::SdkConfig;
use bytes::Bytes;
use chrono::Utc;
use e2e::fake::FakeServer;
use e2e::moto::Moto;
use e2e::{fixture, wire, Transport};
use serde_json::{json, Value};
use watchstate::adapters::eventbridge::EventBridgeBus;
use watchstate::adapters::media::client::HttpClients;
use watchstate::adapters::media::client::{http_client_with, RetryPolicy};
use watchstate::adapters::sqs::SqsDeadLetters;
use watchstate::adapters::store::dynamo::{create_table, DynamoStore};
use watchstate::app::push::Pusher;
use watchstate::app::tasks::{self, Budget, Deps, TaskPayload};
use watchstate::domain::model::BackendKind;
use watchstate::domain::token::TokenSecret;
use watchstate::inbound::http::api::{ApiService, WebhookBase};
use watchstate::inbound::http::webhook::WebhookService;
use watchstate::inbound::permissions::{calls, Function};
use watchstate::ports::bus::Bus;
use watchstate::ports::store::Store;

const TABLE: &str = "least-privilege";
const BUS: &str = "lp-bus";
const ADMIN: &str = "admin-key-for-tests";

/// `service:Operation` of every request sent through a client.
#[derive(Debug, Clone, Default)]
struct Recorder(Arc<Mutex<BTreeSet<String>>>);

impl Recorder {
    fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "Recorder"
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
        let (prefix, op) = target.split_once('.').unwrap_or((target, "?"));
        let service = match prefix {
            p if p.starts_with("DynamoDB") => "dynamodb",
            "AWSEvents" => "events",
            "AmazonSQS" => "sqs",
            "AmazonSSM" => "ssm",
            other => other,
        };
        self.0.lock().unwrap().insert(format!("{service}:{op}"));
        Ok(())
    }
}

/// One function's SDK clients, all recording into one [`Recorder`].
struct Clients {
    rec: Recorder,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    sqs: aws_sdk_sqs::Client,
    ssm: aws_sdk_ssm::Client,
}

fn clients(conf: &SdkConfig) -> Clients {
    let rec = Recorder::default();
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(conf)
            .interceptor(rec.clone())
            .build(),
    );
    let eb = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(conf)
            .interceptor(rec.clone())
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(conf)
            .interceptor(rec.clone())
            .build(),
    );
    let ssm = aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::config::Builder::from(conf)
            .interceptor(rec.clone())
            .build(),
    );
    Clients {
        rec,
        store: Arc::new(DynamoStore::new(ddb, TABLE)),
        bus: Arc::new(EventBridgeBus::new(eb, BUS)),
        sqs,
        ssm,
    }
}

fn http_clients() -> Arc<HttpClients> {
    Arc::new(HttpClients {
        http: http_client_with(Duration::from_secs(2), Duration::from_secs(10)),
        retry: RetryPolicy::quick(),
    })
}

fn deps(c: &Clients) -> Deps {
    Deps {
        store: c.store.clone(),
        clients: http_clients(),
        bus: Some(c.bus.clone()),
    }
}

fn check(f: Function, sent: BTreeSet<String>) {
    let allowed: BTreeSet<String> = calls(f).into_iter().map(str::to_string).collect();
    println!("{f:?} sent {sent:?}");
    assert!(
        !sent.is_empty(),
        "{f:?} made no call at all: the scenario is broken"
    );
    let unlisted: Vec<_> = sent.difference(&allowed).collect();
    assert!(
        unlisted.is_empty(),
        "{f:?} calls {unlisted:?}, which watchstate::inbound::permissions (and so the template) does not grant"
    );
}

async fn api(service: &ApiService, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Bytes::from(body.map(|b| b.to_string()).unwrap_or_default()))
        .unwrap();
    let r = service
        .handle(req, &WebhookBase("https://lp.example/webhook/".into()))
        .await;
    (r.status().as_u16(), serde_json::from_str(r.body()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_call_a_function_makes_is_granted_to_it() {
    let moto = tokio::task::spawn_blocking(Moto::start)
        .await
        .expect("moto");
    let conf = moto.sdk_config();
    // Setup, not recorded: table, bus, dead-letter queue, admin key parameter.
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    create_table(&ddb, TABLE).await.expect("table");
    aws_sdk_eventbridge::Client::new(&conf)
        .create_event_bus()
        .name(BUS)
        .send()
        .await
        .expect("bus");
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let dlq = sqs
        .create_queue()
        .queue_name("dlq")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    aws_sdk_ssm::Client::new(&conf)
        .put_parameter()
        .name("/watchstate/admin-key")
        .value(ADMIN)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("parameter");

    let plex = FakeServer::with_sample(BackendKind::Plex).await;
    let jf = FakeServer::with_sample(BackendKind::Jellyfin).await;

    // api: the secrets at cold start, then every route a person uses.
    let c = clients(&conf);
    let key = watchstate::inbound::config::admin_key_from_ssm(&c.ssm, "/watchstate/admin-key")
        .await
        .expect("admin key");
    let service = ApiService {
        store: c.store.clone(),
        admin_key: key,
        token_secret: TokenSecret::new("lp-secret"),
        // As the api function builds it on AWS: its export sweeps the dead letters.
        tasks: Some(Arc::new(tasks::Tasks {
            dead_letters: Some(Arc::new(SqsDeadLetters::new(c.sqs.clone(), dlq.clone()))),
            ..tasks::Tasks::new(deps(&c))
        })),
        bus: None,
        url_rules: Default::default(),
    };
    assert_eq!(api(&service, "PUT", "/v1/users/ana", None).await.0 / 100, 2);
    let mut pb = plex.backend_body();
    pb["import"] = json!({"enabled": true});
    let (s, p) = api(&service, "PUT", "/v1/users/ana/backends/plex", Some(pb)).await;
    assert_eq!(s / 100, 2, "{p}");
    let mut jb = jf.backend_body();
    jb["export"] = json!({"enabled": true});
    assert_eq!(
        api(&service, "PUT", "/v1/users/ana/backends/jf", Some(jb))
            .await
            .0
            / 100,
        2
    );
    assert_eq!(
        api(
            &service,
            "PUT",
            "/v1/users/ana/backends/gone",
            Some(jf.backend_body())
        )
        .await
        .0 / 100,
        2
    );
    for path in [
        "/v1/users",
        "/v1/users/ana/backends",
        "/v1/users/ana/backends/plex",
        "/v1/users/ana/items?guid=imdb:tt0111161",
        "/v1/users/ana/deliveries",
        "/v1/deliveries/unclaimed",
        "/v1/tasks/runs",
    ] {
        assert_eq!(api(&service, "GET", path, None).await.0, 200, "{path}");
    }
    assert_eq!(
        api(&service, "DELETE", "/v1/users/ana/backends/gone", None)
            .await
            .0
            / 100,
        2
    );
    sqs.send_message()
        .queue_url(&dlq)
        .message_body("not a change")
        .send()
        .await
        .unwrap();
    let (s, exported) = api(&service, "POST", "/v1/tasks/export", None).await;
    assert_eq!(s, 200, "{exported}");
    assert_eq!(exported["dead_letters"]["dropped"], 1, "{exported}");
    let api_calls = c.rec.take();
    let webhook_path = p["webhook_url"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://lp.example")
        .to_string();

    // webhook: a scrobble (new item and its change), its repeat, a stranger.
    let c = clients(&conf);
    let webhook = WebhookService {
        store: c.store.clone(),
        bus: Some(c.bus.clone()),
    };
    let scrobble = wire(
        Transport::PlexMultipart,
        &fixture("webhooks/plex/media.scrobble-movie-plexguid-movary.json"),
        "PlexMediaServer/1.40.2.8395-c67dce28e",
    );
    for path in [
        webhook_path.as_str(),
        webhook_path.as_str(),
        "/webhook/wst_nobody",
    ] {
        let mut b = http::Request::builder().method(scrobble.method).uri(path);
        for (k, v) in &scrobble.headers {
            b = b.header(*k, v);
        }
        let r = webhook
            .handle(b.body(Bytes::from(scrobble.body.clone())).unwrap())
            .await;
        assert!(r.status().as_u16() < 500, "{}", r.body());
    }
    check(Function::Webhook, c.rec.take());

    // push: an SQS batch carrying a change, then its drain of the outbox.
    let c = clients(&conf);
    let pusher = Pusher {
        store: c.store.clone(),
        clients: http_clients(),
    };
    let item = c
        .store
        .list_items("ana", &watchstate::ports::store::ItemQuery::All, 1, None)
        .await
        .unwrap()
        .items
        .pop()
        .expect("the scrobbled item");
    let change = watchstate::domain::sync::change_from(
        &item,
        "ana",
        "plex",
        watchstate::domain::model::ChangeKind::Watched,
    );
    let body = json!({"source": "watchstate", "detail-type": "StateChange", "detail": change});
    let mut ctx = lambda_runtime::Context::default();
    ctx.deadline = (Utc::now().timestamp_millis() + 30_000) as u64;
    let event = lambda_runtime::LambdaEvent::new(
        json!({"Records": [{"messageId": "m1", "body": body.to_string()}]}),
        ctx,
    );
    watchstate::inbound::lambda::push_event(&pusher, Some(c.bus.as_ref()), event)
        .await
        .expect("batch");
    check(Function::Push, c.rec.take());

    // import: the Plex library, its changes published.
    let c = clients(&conf);
    let d = deps(&c);
    tasks::import::Importer::new(&d, Default::default())
        .run(&TaskPayload::default(), Budget::unlimited())
        .await
        .expect("import");
    tasks::publish_changes(&d, 100).await;
    check(Function::Import, c.rec.take());

    // export: the dead-letter sweep (one parked change), then the export itself.
    let c = clients(&conf);
    sqs.send_message()
        .queue_url(&dlq)
        .message_body(body.to_string())
        .send()
        .await
        .unwrap();
    let d = deps(&c);
    let swept = tasks::dead_letters::sweep(
        &SqsDeadLetters::new(c.sqs.clone(), dlq.clone()),
        &Pusher {
            store: c.store.clone(),
            clients: http_clients(),
        },
        Budget::unlimited(),
    )
    .await;
    assert_eq!(swept.pushed, 1, "{swept:?}");
    tasks::export::Exporter::new(&d, Default::default())
        .run(
            &TaskPayload {
                full: true,
                ..TaskPayload::default()
            },
            Budget::unlimited(),
        )
        .await
        .expect("export");
    check(Function::Export, c.rec.take());

    check(Function::Api, api_calls);
}

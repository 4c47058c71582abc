//! Entry points: adapting Lambda events to the handlers. The only module besides the
//! adapters that knows Lambda types; the functions' `main`s call into it.

#[cfg(feature = "http-events")]
use bytes::Bytes;
#[cfg(all(feature = "http-events", feature = "media"))]
use lambda_http::request::RequestContext;
#[cfg(feature = "http-events")]
use lambda_http::Body;
#[cfg(feature = "http-events")]
use lambda_http::RequestExt;

#[cfg(all(feature = "http-events", feature = "media"))]
use crate::inbound::http::api::WebhookBase;
#[cfg(feature = "http-events")]
use crate::inbound::http::Reply;

/// Install the tracing subscriber: as lambda_runtime's default (level and format from
/// the [`Config`](crate::inbound::config::Config)'s log settings), but every line
/// carries its timestamp (RFC 3339, UTC): with JSON logs Lambda adds none. Metrics,
/// log lines too, are switched on for the deployment.
pub fn init_tracing(config: &crate::inbound::config::Config) {
    crate::app::metrics::install(config.deployment);
    let sub = subscriber(
        config.log_json,
        config.log_level.as_deref(),
        config.log_directives.as_deref(),
        std::io::stdout,
    );
    let _ = tracing::subscriber::set_global_default(sub);
}

/// The subscriber [`init_tracing`] installs, writing to `writer`, filtered by
/// [`log_filter`].
pub fn subscriber<W>(
    json: bool,
    level: Option<&str>,
    directives: Option<&str>,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt;
    let filter = log_filter(level, directives);
    let builder = tracing_subscriber::fmt()
        .with_target(false)
        .with_writer(writer);
    if json {
        Box::new(builder.json().finish().with(filter))
    } else {
        Box::new(builder.finish().with(filter))
    }
}

/// Which lines are written: `RUST_LOG`'s `target=level` directives (`directives`), and
/// for every other line `RUST_LOG`'s bare level, else `level` (Lambda's log level),
/// else INFO. A directive that does not read is skipped, as is an unreadable level.
/// A plain target filter, not tracing's `EnvFilter`: that one links a regex engine
/// into every function for span-field filters nobody here uses.
pub fn log_filter(
    level: Option<&str>,
    directives: Option<&str>,
) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    let mut targets = Targets::new();
    let mut bare = None;
    let readable = directives
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .filter_map(|d| d.parse::<Targets>().ok());
    for directive in readable {
        bare = directive.default_level().or(bare);
        targets = targets.with_targets(directive.iter().map(|(t, l)| (t.to_string(), l)));
    }
    let level = level.and_then(|l| l.trim().parse::<LevelFilter>().ok());
    targets.with_default(bare.or(level).unwrap_or(LevelFilter::INFO))
}

/// A Lambda HTTP request as the handlers take it.
#[cfg(feature = "http-events")]
pub fn to_request(req: lambda_http::Request) -> crate::inbound::http::Request {
    let deadline = req.lambda_context_ref().map(|c| c.deadline);
    let (mut parts, body) = req.into_parts();
    if let Some(d) = deadline {
        parts.extensions.insert(crate::inbound::http::Deadline(d));
    }
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(s) => Bytes::from(s),
        Body::Binary(b) => Bytes::from(b),
        // lambda_http's Body is non-exhaustive in spirit; anything else is empty.
        #[allow(unreachable_patterns)]
        _ => Bytes::new(),
    };
    http::Request::from_parts(parts, bytes)
}

#[cfg(feature = "http-events")]
pub fn to_response(reply: Reply) -> lambda_http::Response<Body> {
    let (parts, body) = reply.into_parts();
    lambda_http::Response::from_parts(parts, Body::Text(body))
}

/// Where webhook URLs point, from the request that asked: `public_url`
/// (`WATCHSTATE_PUBLIC_URL`) if set; behind API Gateway its domain and stage; under `cargo lambda watch` the
/// emulator's host and the webhook function's `/lambda-url/webhook` prefix.
#[cfg(all(feature = "http-events", feature = "media"))]
pub fn webhook_base(req: &lambda_http::Request, public_url: Option<&str>) -> WebhookBase {
    if let Some(base) = public_url {
        return WebhookBase(format!("{base}/webhook/"));
    }
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:9000")
        .to_string();
    if let RequestContext::ApiGatewayV2(ctx) = req.request_context() {
        // `cargo lambda watch` says domain "localhost" and names no API; the function
        // URL the emulator serves is `/lambda-url/{function}` on the Host asked.
        if ctx.apiid.is_none() && ctx.domain_name.as_deref() == Some("localhost") {
            return WebhookBase(format!("http://{host}/lambda-url/webhook/webhook/"));
        }
        let domain = ctx.domain_name.clone().unwrap_or(host);
        let stage = match ctx.stage.as_deref() {
            None | Some("$default") | Some("") => String::new(),
            Some(s) => format!("/{s}"),
        };
        let scheme = if domain.starts_with("127.0.0.1") || domain.starts_with("localhost") {
            "http"
        } else {
            "https"
        };
        return WebhookBase(format!("{scheme}://{domain}{stage}/webhook/"));
    }
    WebhookBase(format!("https://{host}/webhook/"))
}

/// The api's service, built at its first request: the admin key is read from SSM
/// then, not during init (`docs/PERFORMANCE.md`: no network call at cold start). A failed read
/// fails that request only; the next one tries again.
#[cfg(all(feature = "http-events", feature = "media"))]
pub struct LazyApi {
    deps: crate::app::tasks::Deps,
    config: crate::inbound::config::Config,
    service: tokio::sync::OnceCell<std::sync::Arc<crate::inbound::http::api::ApiService>>,
}

#[cfg(all(feature = "http-events", feature = "media"))]
impl LazyApi {
    pub fn new(deps: crate::app::tasks::Deps, config: crate::inbound::config::Config) -> LazyApi {
        LazyApi {
            deps,
            config,
            service: tokio::sync::OnceCell::new(),
        }
    }

    pub async fn service(
        &self,
    ) -> Result<std::sync::Arc<crate::inbound::http::api::ApiService>, String> {
        self.service
            .get_or_try_init(|| async {
                use crate::inbound::config;
                let (admin_key, token_secret) = config::api_secrets(&self.config).await?;
                let tasks = crate::app::tasks::Tasks {
                    dead_letters: config::dead_letters(&self.config).await,
                    ..crate::app::tasks::Tasks::new(self.deps.clone())
                };
                Ok(std::sync::Arc::new(crate::inbound::http::api::ApiService {
                    store: self.deps.store.clone(),
                    admin_key,
                    token_secret,
                    bus: self.deps.bus.clone(),
                    tasks: Some(std::sync::Arc::new(tasks)),
                    url_rules: self.config.deployment.into(),
                }))
            })
            .await
            .cloned()
    }

    /// One api request: the service's answer, or 503 when the admin key cannot be read.
    pub async fn handle(&self, req: lambda_http::Request) -> lambda_http::Response<Body> {
        let base = webhook_base(&req, self.config.public_url.as_deref());
        match self.service().await {
            Ok(service) => to_response(service.handle(to_request(req), &base).await),
            Err(reason) => {
                tracing::error!(%reason, "api not ready");
                to_response(crate::inbound::http::error_reply(
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the admin key cannot be read; see the function's log",
                ))
            }
        }
    }
}

/// Why a push, import or export invocation failed, and whether Lambda's retry of the
/// event could help ([`FunctionError::retryable`], its diagnostic's `errorType`).
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    /// The event is not one this function takes: a retry brings the same event.
    #[error("{0}")]
    BadEvent(String),
    /// The store could not be read or written: it may be back at the next try.
    #[error(transparent)]
    Store(#[from] crate::ports::store::StoreError),
    /// A change reached a backend that failed where a retry could help.
    #[error("push of change {change} failed on a backend; it will be retried: {backends}")]
    PushFailed { change: String, backends: String },
}

impl FunctionError {
    pub fn retryable(&self) -> bool {
        match self {
            FunctionError::Store(_) | FunctionError::PushFailed { .. } => true,
            FunctionError::BadEvent(_) => false,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            FunctionError::BadEvent(_) => "BadEvent",
            FunctionError::Store(_) => "StoreUnavailable",
            FunctionError::PushFailed { .. } => "PushFailed",
        }
    }
}

/// As the runtime's `basic-error-thiserror` example: the `errorType` says whether a
/// retry could help (`Retryable.*` or `NonRetryable.*`), the message what happened.
impl From<FunctionError> for lambda_runtime::Diagnostic {
    fn from(e: FunctionError) -> lambda_runtime::Diagnostic {
        let class = if e.retryable() {
            "Retryable"
        } else {
            "NonRetryable"
        };
        lambda_runtime::Diagnostic {
            error_type: format!("{class}.{}", e.kind()),
            error_message: e.to_string(),
        }
    }
}

/// One message of an SQS batch (the fields push reads).
#[cfg(feature = "media")]
#[derive(Debug, serde::Deserialize)]
struct SqsMessage {
    #[serde(rename = "messageId")]
    message_id: String,
    #[serde(default)]
    body: String,
}

#[cfg(feature = "media")]
#[derive(Debug, serde::Deserialize)]
struct SqsBatch {
    #[serde(rename = "Records")]
    records: Vec<SqsMessage>,
}

/// The push function's handler. On AWS it receives SQS batches from the push queue
/// (`{"Records": [...]}`, each body an EventBridge `StateChange` event): the batch is
/// pushed by [`crate::app::fanout::push_batch`] under the invocation's deadline, and the
/// changes to deliver again are answered as `batchItemFailures`. A single
/// EventBridge event (a manual `cargo lambda invoke`) is pushed the same way; it
/// fails the invocation when a retry could help. Leftovers in the outbox are
/// drained on the way out.
#[cfg(feature = "media")]
pub async fn push_event(
    pusher: &crate::app::push::Pusher,
    bus: Option<&dyn crate::ports::bus::Bus>,
    event: lambda_runtime::LambdaEvent<serde_json::Value>,
) -> Result<serde_json::Value, FunctionError> {
    use crate::adapters::eventbridge::BusEvent;
    // A context without a deadline (0: a test or a hand-made event) sets no limit.
    let deadline = (event.context.deadline > 0)
        .then(|| crate::app::fanout::deadline_of(event.context.deadline));
    let (ids, changes, single) = if event.payload.get("Records").is_some() {
        let batch: SqsBatch = serde_json::from_value(event.payload)
            .map_err(|e| FunctionError::BadEvent(format!("not an SQS batch: {e}")))?;
        let mut ids = Vec::new();
        let mut changes = Vec::new();
        for m in batch.records {
            match serde_json::from_str::<BusEvent>(&m.body) {
                Ok(e) => {
                    ids.push(m.message_id);
                    changes.push(e.detail);
                }
                // Not a change: nothing to push, and never will be.
                Err(e) => {
                    tracing::warn!(message = %m.message_id, error = %e, "message is no StateChange event; dropped")
                }
            }
        }
        (ids, changes, false)
    } else {
        let parsed: BusEvent = serde_json::from_value(event.payload)
            .map_err(|e| FunctionError::BadEvent(format!("not a StateChange event: {e}")))?;
        (vec![parsed.detail.id.clone()], vec![parsed.detail], true)
    };
    let batch = crate::app::fanout::push_batch(pusher, &changes, deadline).await;
    if let Some(bus) = bus {
        crate::app::outbox::drain(pusher.store.as_ref(), bus, 25).await;
    }
    tracing::info!(
        changes = changes.len(),
        failed = batch.failed.len(),
        lanes = batch.lanes,
        "push batch"
    );
    if single {
        if !batch.failed.is_empty() {
            return Err(FunctionError::PushFailed {
                change: changes[0].id.clone(),
                backends: serde_json::to_string(&batch.reports[0].backends).unwrap_or_default(),
            });
        }
        return Ok(serde_json::to_value(&batch.reports[0]).unwrap_or_default());
    }
    let failures: Vec<serde_json::Value> = batch
        .failed
        .iter()
        .map(|&i| serde_json::json!({"itemIdentifier": ids[i]}))
        .collect();
    Ok(serde_json::json!({"batchItemFailures": failures}))
}

/// The push function: [`push_event`] with the store of the environment, real media
/// clients, and the EventBridge bus (when `EVENT_BUS_NAME` is set) for draining what
/// the outbox still holds. Never the in-process bus: push runs on AWS only.
#[cfg(feature = "media")]
pub struct PushFunction {
    pusher: crate::app::push::Pusher,
    bus: Option<std::sync::Arc<dyn crate::ports::bus::Bus>>,
}

#[cfg(feature = "media")]
impl PushFunction {
    pub async fn new(
        config: &crate::inbound::config::Config,
    ) -> Result<PushFunction, crate::ports::store::StoreError> {
        use crate::inbound::config;
        use std::sync::Arc;
        let pusher = crate::app::push::Pusher {
            store: config::store(config).await?,
            clients: Arc::new(crate::adapters::media::client::HttpClients::standard()),
        };
        let bus = config::event_bridge_bus(config)
            .await
            .map(|b| Arc::new(b) as Arc<dyn crate::ports::bus::Bus>);
        Ok(PushFunction { pusher, bus })
    }

    pub async fn on_event(
        &self,
        event: lambda_runtime::LambdaEvent<serde_json::Value>,
    ) -> Result<serde_json::Value, FunctionError> {
        push_event(&self.pusher, self.bus.as_deref(), event).await
    }
}

/// The import and export functions: the schedule's event (content ignored), an
/// `ImportPage` continuation, or a manual payload `{"user", "backend", "dry_run",
/// "full", "cursor"}` runs the task through [`crate::app::tasks::Tasks::run_payload`],
/// the code `POST /v1/tasks/{import|export}` runs too.
///
/// An invocation stops well before Lambda's deadline (at most the task's budget,
/// [`Config::import_budget`](crate::inbound::config::Config::import_budget) or
/// [`Config::export_budget`](crate::inbound::config::Config::export_budget)). An
/// import hands what is left on as an `ImportPage` event when a bus exists
/// (`EVENT_BUS_NAME`; the next invocation resumes from the runs' cursors anyway), then
/// publishes the changes it stored from the outbox (bounded), so push carries them as
/// it carries a webhook's. An export first sweeps the push dead-letter queue
/// (`DEAD_LETTER_QUEUE_URL`), then drains the outbox and pushes stored state to every
/// export-enabled backend where it differs.
#[cfg(feature = "media")]
pub struct TaskFunction {
    task: crate::ports::tasks::TaskKind,
    tasks: crate::app::tasks::Tasks,
    cap: std::time::Duration,
}

#[cfg(feature = "media")]
impl TaskFunction {
    pub async fn new(
        task: crate::ports::tasks::TaskKind,
        config: &crate::inbound::config::Config,
    ) -> Result<TaskFunction, crate::ports::store::StoreError> {
        use crate::inbound::config;
        use crate::ports::tasks::TaskKind;
        // Each builds only the clients it runs: the import hands on continuations, the
        // export sweeps the dead letters.
        let (continuations, dead_letters, cap) = match task {
            TaskKind::Import => (
                config::continuations(config).await,
                None,
                config.import_budget,
            ),
            TaskKind::Export => (
                None,
                config::dead_letters(config).await,
                config.export_budget,
            ),
        };
        let tasks = crate::app::tasks::Tasks {
            continuations,
            dead_letters,
            ..crate::app::tasks::Tasks::new(config::deps(config).await?)
        };
        Ok(TaskFunction { task, tasks, cap })
    }

    pub async fn on_event(
        &self,
        event: lambda_runtime::LambdaEvent<serde_json::Value>,
    ) -> Result<serde_json::Value, FunctionError> {
        use crate::app::tasks::{Budget, TaskPayload};
        let payload = TaskPayload::from_event(&event.payload);
        let budget = Budget::lambda(event.context.deadline, self.cap);
        Ok(self.tasks.run_payload(self.task, &payload, budget).await?)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn function_errors_say_whether_a_retry_helps() {
        use super::FunctionError;
        use lambda_runtime::Diagnostic;
        let failed = FunctionError::PushFailed {
            change: "c1".into(),
            backends: r#"[["jf",{"outcome":"failed"}]]"#.into(),
        };
        assert!(failed.retryable());
        let d = Diagnostic::from(failed);
        assert_eq!(d.error_type, "Retryable.PushFailed");
        assert!(d.error_message.contains("c1") && d.error_message.contains("jf"));
        let store = FunctionError::from(crate::ports::store::StoreError::Unavailable("x".into()));
        assert_eq!(
            Diagnostic::from(store).error_type,
            "Retryable.StoreUnavailable"
        );
        let bad = Diagnostic::from(FunctionError::BadEvent("not a StateChange event".into()));
        assert_eq!(bad.error_type, "NonRetryable.BadEvent");
        assert_eq!(bad.error_message, "not a StateChange event");
    }

    /// Init builds only what the function runs (docs/PERFORMANCE.md): the import no dead-letter
    /// queue client, the export no continuations, whatever the environment names.
    #[tokio::test]
    async fn each_task_function_builds_only_the_clients_it_runs() {
        use crate::ports::tasks::TaskKind;
        let dir = std::env::temp_dir().join(format!("ws-taskfn-{}", std::process::id()));
        let config = crate::inbound::config::Config {
            data_dir: dir.clone(),
            event_bus_name: Some("bus".into()),
            dead_letter_queue_url: Some("http://127.0.0.1:9/queue/dlq".into()),
            ..crate::inbound::config::Config::from_lookup(|_| None)
        };
        let import = super::TaskFunction::new(TaskKind::Import, &config)
            .await
            .expect("import");
        assert!(import.tasks.continuations.is_some());
        assert!(import.tasks.dead_letters.is_none());
        let export = super::TaskFunction::new(TaskKind::Export, &config)
            .await
            .expect("export");
        assert!(export.tasks.continuations.is_none());
        assert!(export.tasks.dead_letters.is_some());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_log_filter_reads_lambdas_level_and_rust_logs_directives() {
        use tracing::Level;
        use tracing_subscriber::filter::Targets;
        let on = |f: &Targets, target: &str, level: Level| f.would_enable(target, &level);
        let default = super::log_filter(None, None);
        assert!(on(&default, "watchstate", Level::INFO));
        assert!(!on(&default, "watchstate", Level::DEBUG));
        // Lambda's setting, in its own spelling.
        let warn = super::log_filter(Some("WARN"), None);
        assert!(on(&warn, "watchstate::app", Level::WARN));
        assert!(!on(&warn, "watchstate::app", Level::INFO));
        // RUST_LOG: per-target directives over Lambda's level; a bad one is skipped.
        let mixed = super::log_filter(
            Some("WARN"),
            Some("watchstate::app=debug, nonsense=loud ,hyper=error"),
        );
        assert!(on(&mixed, "watchstate::app::push", Level::DEBUG));
        assert!(!on(&mixed, "watchstate::adapters", Level::INFO));
        assert!(!on(&mixed, "hyper::client", Level::WARN));
        assert!(on(&mixed, "other", Level::WARN));
        // RUST_LOG's bare level wins over Lambda's, as before.
        let bare = super::log_filter(Some("ERROR"), Some("debug"));
        assert!(on(&bare, "watchstate", Level::DEBUG));
        assert!(!on(&bare, "watchstate", Level::TRACE));
        assert!(!on(
            &super::log_filter(Some("loud"), None),
            "x",
            Level::DEBUG
        ));
    }

    #[test]
    fn json_log_lines_carry_a_timestamp() {
        let buf = Buf::default();
        let writer = buf.clone();
        let sub = super::subscriber(true, None, None, move || writer.clone());
        tracing::subscriber::with_default(sub, || tracing::warn!(backend = "jf", "push failed"));
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        let ts = line["timestamp"].as_str().expect("timestamp");
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
        assert_eq!(line["fields"]["message"], "push failed");
        assert_eq!(line["level"], "WARN");
    }
}

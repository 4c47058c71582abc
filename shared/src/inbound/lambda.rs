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

/// Install the tracing subscriber: as lambda_runtime's default (level from
/// `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`, JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`), but
/// every line carries its timestamp (RFC 3339, UTC): with JSON logs Lambda adds none.
pub fn init_tracing() {
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let _ = tracing::subscriber::set_global_default(subscriber(json, std::io::stdout));
}

/// The subscriber [`init_tracing`] installs, writing to `writer`.
pub fn subscriber<W>(json: bool, writer: W) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::filter::{EnvFilter, LevelFilter};
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let builder = tracing_subscriber::fmt()
        .with_target(false)
        .with_env_filter(
            EnvFilter::builder()
                .with_default_directive(level.into())
                .from_env_lossy(),
        )
        .with_writer(writer);
    if json {
        Box::new(builder.json().finish())
    } else {
        Box::new(builder.finish())
    }
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

/// Where webhook URLs point, from the request that asked: `WATCHSTATE_PUBLIC_URL` if
/// set; behind API Gateway its domain and stage; under `cargo lambda watch` the
/// emulator's host and the webhook function's `/lambda-url/webhook` prefix.
#[cfg(all(feature = "http-events", feature = "media"))]
pub fn webhook_base(req: &lambda_http::Request) -> WebhookBase {
    if let Some(base) = crate::inbound::config::public_url() {
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
/// then, not during init (DESIGN 8: no network call at cold start). A failed read
/// fails that request only; the next one tries again.
#[cfg(all(feature = "http-events", feature = "media"))]
pub struct LazyApi {
    deps: crate::app::tasks::Deps,
    service: tokio::sync::OnceCell<std::sync::Arc<crate::inbound::http::api::ApiService>>,
}

#[cfg(all(feature = "http-events", feature = "media"))]
impl LazyApi {
    pub fn new(deps: crate::app::tasks::Deps) -> LazyApi {
        LazyApi {
            deps,
            service: tokio::sync::OnceCell::new(),
        }
    }

    pub async fn service(
        &self,
    ) -> Result<std::sync::Arc<crate::inbound::http::api::ApiService>, String> {
        self.service
            .get_or_try_init(|| async {
                let (admin_key, token_secret) = crate::inbound::config::api_secrets().await?;
                Ok(std::sync::Arc::new(crate::inbound::http::api::ApiService {
                    store: self.deps.store.clone(),
                    admin_key,
                    token_secret,
                    bus: self.deps.bus.clone(),
                    tasks: Some(std::sync::Arc::new(crate::app::tasks::Tasks::new(
                        self.deps.clone(),
                    ))),
                }))
            })
            .await
            .cloned()
    }

    /// One api request: the service's answer, or 503 when the admin key cannot be read.
    pub async fn handle(&self, req: lambda_http::Request) -> lambda_http::Response<Body> {
        let base = webhook_base(&req);
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

/// An EventBridge event carrying a state change (`detail-type: StateChange`).
#[derive(Debug, serde::Deserialize)]
pub struct BusEvent {
    #[serde(rename = "detail-type", default)]
    pub detail_type: String,
    pub detail: crate::domain::model::StateChange,
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
) -> Result<serde_json::Value, lambda_runtime::Error> {
    // A context without a deadline (0: a test or a hand-made event) sets no limit.
    let deadline = (event.context.deadline > 0)
        .then(|| crate::app::fanout::deadline_of(event.context.deadline));
    let (ids, changes, single) = if event.payload.get("Records").is_some() {
        let batch: SqsBatch =
            serde_json::from_value(event.payload).map_err(|e| format!("not an SQS batch: {e}"))?;
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
            .map_err(|e| format!("not a StateChange event: {e}"))?;
        (vec![parsed.detail.id.clone()], vec![parsed.detail], true)
    };
    let batch = crate::app::fanout::push_batch(pusher, &changes, deadline).await;
    if let Some(bus) = bus {
        crate::ports::bus::drain(pusher.store.as_ref(), bus, 25).await;
    }
    tracing::info!(
        changes = changes.len(),
        failed = batch.failed.len(),
        lanes = batch.lanes,
        "push batch"
    );
    if single {
        if !batch.failed.is_empty() {
            return Err(format!(
                "push of change {} failed on a backend; it will be retried: {}",
                changes[0].id,
                serde_json::to_string(&batch.reports[0].backends).unwrap_or_default()
            )
            .into());
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
    fn json_log_lines_carry_a_timestamp() {
        let buf = Buf::default();
        let writer = buf.clone();
        let sub = super::subscriber(true, move || writer.clone());
        tracing::subscriber::with_default(sub, || tracing::warn!(backend = "jf", "push failed"));
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        let ts = line["timestamp"].as_str().expect("timestamp");
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
        assert_eq!(line["fields"]["message"], "push failed");
        assert_eq!(line["level"], "WARN");
    }
}

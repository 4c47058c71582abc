//! Entry points: adapting Lambda events to the handlers. The only module besides the
//! adapters that knows Lambda types; the functions' `main`s call into it.

use bytes::Bytes;
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};

use crate::http::api::WebhookBase;
use crate::http::Reply;

/// Install the tracing subscriber (JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`).
pub fn init_tracing() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// A Lambda HTTP request as the handlers take it.
pub fn to_request(req: lambda_http::Request) -> crate::http::Request {
    let (parts, body) = req.into_parts();
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

pub fn to_response(reply: Reply) -> lambda_http::Response<Body> {
    let (parts, body) = reply.into_parts();
    lambda_http::Response::from_parts(parts, Body::Text(body))
}

/// Where webhook URLs point, from the request that asked: `WATCHSTATE_PUBLIC_URL` if
/// set; behind API Gateway its domain and stage; under `cargo lambda watch` the
/// emulator's host and the webhook function's `/lambda-url/webhook` prefix.
pub fn webhook_base(req: &lambda_http::Request) -> WebhookBase {
    if let Some(base) = crate::config::public_url() {
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

/// An EventBridge event carrying a state change (`detail-type: StateChange`).
#[derive(Debug, serde::Deserialize)]
pub struct BusEvent {
    #[serde(rename = "detail-type", default)]
    pub detail_type: String,
    pub detail: crate::model::StateChange,
}

/// The push function's handler: push the change; fail (so EventBridge retries, then
/// parks it in the dead-letter queue) only when a backend failed in a way a retry
/// can fix. Leftovers in the outbox are drained on the way out.
pub async fn push_event(
    pusher: &crate::push::Pusher,
    bus: Option<&dyn crate::bus::Bus>,
    event: lambda_runtime::LambdaEvent<serde_json::Value>,
) -> Result<serde_json::Value, lambda_runtime::Error> {
    let parsed: BusEvent = serde_json::from_value(event.payload)
        .map_err(|e| format!("not a StateChange event: {e}"))?;
    let report = pusher.push(&parsed.detail).await?;
    if let Some(bus) = bus {
        crate::bus::drain(pusher.store.as_ref(), bus, 25).await;
    }
    if report.retryable_failure() {
        return Err(format!(
            "push of change {} failed on a backend; EventBridge will retry: {}",
            report.change,
            serde_json::to_string(&report.backends).unwrap_or_default()
        )
        .into());
    }
    Ok(serde_json::to_value(&report).unwrap_or_default())
}

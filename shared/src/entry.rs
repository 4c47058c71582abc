//! Entry points: adapting Lambda events to the handlers. The only module besides the
//! adapters that knows Lambda types; the functions' `main`s call into it.

#[cfg(feature = "http-events")]
use bytes::Bytes;
#[cfg(all(feature = "http-events", feature = "media"))]
use lambda_http::request::RequestContext;
#[cfg(feature = "http-events")]
use lambda_http::Body;
#[cfg(all(feature = "http-events", feature = "media"))]
use lambda_http::RequestExt;

#[cfg(all(feature = "http-events", feature = "media"))]
use crate::http::api::WebhookBase;
#[cfg(feature = "http-events")]
use crate::http::Reply;

/// Install the tracing subscriber (JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`).
pub fn init_tracing() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// A Lambda HTTP request as the handlers take it.
#[cfg(feature = "http-events")]
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

/// The api's service, built at its first request: the admin key is read from SSM
/// then, not during init (DESIGN 8: no network call at cold start). A failed read
/// fails that request only; the next one tries again.
#[cfg(all(feature = "http-events", feature = "media"))]
pub struct LazyApi {
    deps: crate::tasks::Deps,
    service: tokio::sync::OnceCell<std::sync::Arc<crate::http::api::ApiService>>,
}

#[cfg(all(feature = "http-events", feature = "media"))]
impl LazyApi {
    pub fn new(deps: crate::tasks::Deps) -> LazyApi {
        LazyApi {
            deps,
            service: tokio::sync::OnceCell::new(),
        }
    }

    pub async fn service(&self) -> Result<std::sync::Arc<crate::http::api::ApiService>, String> {
        self.service
            .get_or_try_init(|| async {
                let (admin_key, token_secret) = crate::config::api_secrets().await?;
                Ok(std::sync::Arc::new(crate::http::api::ApiService {
                    store: self.deps.store.clone(),
                    admin_key,
                    token_secret,
                    tasks: Some(std::sync::Arc::new(crate::tasks::Tasks::new(
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
                to_response(crate::http::error_reply(
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
    pub detail: crate::model::StateChange,
}

#[cfg(feature = "media")]
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

//! `POST|PUT /webhook/{token}`: authenticate the token, read the body, apply the rules,
//! answer, and write the delivery log whatever happened.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use http::{header, Method, StatusCode};
use serde_json::json;

use super::{error_reply, header_str, json_reply, Reply, Request};
use crate::adapters::media::{self, Incoming, ParseError, Payload};
use crate::app::ingest;
use crate::domain::model::{Action, Backend, Delivery, DeliveryStatus, Event, Parsed, Source};
use crate::domain::sync::Context;
use crate::domain::token;
use crate::ports::bus::Bus;
use crate::ports::store::{Store, StoreError, DELIVERY_BODY_CAP};

/// Lambda's own request limit; API Gateway would cut larger bodies anyway.
pub const MAX_BODY: usize = 6 * 1024 * 1024;

/// Everything the webhook function needs, built once per process.
#[derive(Clone)]
pub struct WebhookService {
    pub store: Arc<dyn Store>,
    /// `None` leaves changes in the outbox for a later drain.
    pub bus: Option<Arc<dyn Bus>>,
}

/// What the handler learned, for the delivery log.
#[derive(Default)]
struct Log {
    backend: Option<Backend>,
    event: Option<String>,
    item_id: Option<String>,
    changed: Option<bool>,
    /// Set by every way `respond` ends.
    status: Option<DeliveryStatus>,
    reason: Option<String>,
    payload: Option<Payload>,
    source: Option<Source>,
}

impl WebhookService {
    pub async fn handle(&self, req: Request) -> Reply {
        self.handle_at(req, Utc::now()).await
    }

    /// The handler with an explicit receive time (tests pin it).
    pub async fn handle_at(&self, req: Request, received_at: DateTime<Utc>) -> Reply {
        let mut log = Log::default();
        let reply = self.respond(&req, received_at, &mut log).await;
        self.record(&req, received_at, &reply, log).await;
        reply
    }

    async fn respond(&self, req: &Request, received_at: DateTime<Utc>, log: &mut Log) -> Reply {
        // The token is the last path segment: `/webhook/{token}` behind API Gateway,
        // `/lambda-url/webhook/webhook/{token}` under `cargo lambda watch`.
        let token = req
            .uri()
            .path()
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("");
        if !token::well_formed(token) {
            return fail(
                log,
                StatusCode::UNAUTHORIZED,
                DeliveryStatus::UnknownWebhook,
                "unknown webhook",
            );
        }
        let backend = match self.store.backend_by_token_hash(&token::hash(token)).await {
            Ok(Some(b)) if token::matches(token, &b.webhook_token_hash) => b,
            Ok(_) => {
                return fail(
                    log,
                    StatusCode::UNAUTHORIZED,
                    DeliveryStatus::UnknownWebhook,
                    "unknown webhook",
                )
            }
            Err(e) => return unavailable(log, e),
        };
        log.backend = Some(backend.clone());

        if req.method() != Method::POST && req.method() != Method::PUT {
            return fail(
                log,
                StatusCode::METHOD_NOT_ALLOWED,
                DeliveryStatus::MethodNotAllowed,
                format!(
                    "{} is not accepted; media servers POST or PUT webhooks",
                    req.method()
                ),
            );
        }
        let body = req.body();
        if body.len() > MAX_BODY {
            return fail(
                log,
                StatusCode::PAYLOAD_TOO_LARGE,
                DeliveryStatus::PayloadTooLarge,
                format!("body of {} bytes is over the 6 MiB limit", body.len()),
            );
        }

        let incoming = Incoming {
            content_type: header_str(req.headers(), header::CONTENT_TYPE),
            user_agent: header_str(req.headers(), header::USER_AGENT),
            body,
        };
        let payload = match media::unwrap_transport(incoming.content_type, body).await {
            Ok(p) => p,
            Err(e) => return parse_failure(log, e),
        };
        let source = media::source_of(incoming.user_agent, &payload.json);
        log.payload = Some(payload);
        let json = log
            .payload
            .as_ref()
            .map(|p| p.json.as_slice())
            .unwrap_or(&[]);
        let source = match source {
            Ok(s) => s,
            Err(e) => return parse_failure(log, e),
        };
        log.source = Some(source);
        let parsed = match media::parse(source, json, received_at) {
            Ok(p) => p,
            Err(e) => return parse_failure(log, e),
        };
        if source.backend_kind() != backend.kind {
            return fail(
                log,
                StatusCode::BAD_REQUEST,
                DeliveryStatus::BadPayload,
                format!(
                    "this is a {source} webhook but backend '{}' is a {} backend",
                    backend.name, backend.kind
                ),
            );
        }
        let event = match parsed {
            Parsed::Ignored {
                raw_event, reason, ..
            } => {
                log.event = Some(raw_event).filter(|e| !e.is_empty());
                return ignored(log, reason);
            }
            Parsed::Event(e) => e,
        };
        log.event = Some(event.raw_event.clone());
        if event.action == Action::Test {
            return ignored(log, "test event: the webhook reached watchstate".into());
        }
        if let Some(r) = check_identity(&backend, &event) {
            return fail(log, StatusCode::BAD_REQUEST, r.0, r.1);
        }
        let Some(ev) = event.item.as_ref() else {
            return fail(
                log,
                StatusCode::BAD_REQUEST,
                DeliveryStatus::BadPayload,
                "event names no item",
            );
        };

        let ctx = Context {
            user: &backend.user,
            backend: &backend.name,
            received_at,
        };
        let applied = match ingest::apply(self.store.as_ref(), ctx, &event, ev).await {
            Ok(a) => a,
            Err(e) => return unavailable(log, e),
        };
        if let (Some(change), Some(bus)) = (&applied.change, &self.bus) {
            crate::app::outbox::publish_and_ack(self.store.as_ref(), bus.as_ref(), change).await;
        }
        let changed = applied.no_change.is_none();
        log.status = Some(DeliveryStatus::Stored);
        log.item_id = Some(applied.item.id.clone());
        log.changed = Some(changed);
        log.reason = applied
            .no_change
            .map(|r| r.as_str().to_string())
            .or(applied.detail.clone());
        let mut body = json!({
            "status": DeliveryStatus::Stored,
            "item_id": applied.item.id,
            "changed": changed,
        });
        if let Some(r) = applied.no_change {
            body["reason"] = json!(r.as_str());
        }
        if let Some(d) = &applied.detail {
            body["detail"] = json!(d);
        }
        json_reply(StatusCode::OK, &body)
    }

    async fn record(&self, req: &Request, received_at: DateTime<Utc>, reply: &Reply, log: Log) {
        // A stranger's request (no backend claimed it) is kept as metadata only: its
        // body would cost us storage for content nobody asked us to keep.
        let (body, truncated) = match (&log.backend, &log.payload) {
            (None, _) => (None, false),
            (Some(_), Some(p)) => {
                // Without what nothing reads (Plex's cast lists, Jellyfin's streams...):
                // one write unit per delivery.
                let slim = log.source.and_then(|s| media::for_log(s, &p.json));
                capped(slim.as_deref().unwrap_or(&p.json))
            }
            // Unreadable transport: keep what came, minus nothing we can tell apart.
            (Some(_), None) => capped(req.body()),
        };
        let delivery = Delivery {
            id: crate::domain::ids::time_ordered_id(received_at),
            user: log.backend.as_ref().map(|b| b.user.clone()),
            backend: log.backend.as_ref().map(|b| b.name.clone()),
            received_at,
            http_status: reply.status().as_u16(),
            // Every way `respond` ends sets it; a path that forgot is a store failure.
            status: log.status.unwrap_or(DeliveryStatus::Unavailable),
            reason: log.reason,
            event: log.event,
            item_id: log.item_id,
            changed: log.changed,
            content_type: header_str(req.headers(), header::CONTENT_TYPE).map(str::to_string),
            user_agent: header_str(req.headers(), header::USER_AGENT).map(str::to_string),
            body,
            body_truncated: truncated,
        };
        // At debug only: every delivery is in the delivery log and counted by the EMF
        // line; a line per webhook at info cost as much CloudWatch ingestion as both.
        tracing::debug!(
            user = delivery.user.as_deref().unwrap_or("-"),
            backend = delivery.backend.as_deref().unwrap_or("-"),
            status = %delivery.status,
            http_status = delivery.http_status,
            event = delivery.event.as_deref().unwrap_or("-"),
            reason = delivery.reason.as_deref().unwrap_or("-"),
            "webhook delivery"
        );
        crate::app::metrics::delivery(delivery.status);
        if let Err(e) = self.store.record_delivery(&delivery).await {
            tracing::error!(error = %e, "delivery log write failed");
        }
    }
}

fn capped(bytes: &[u8]) -> (Option<String>, bool) {
    if bytes.len() <= DELIVERY_BODY_CAP {
        (Some(String::from_utf8_lossy(bytes).into_owned()), false)
    } else {
        let mut s = String::from_utf8_lossy(&bytes[..DELIVERY_BODY_CAP]).into_owned();
        // A cut inside a multi-byte character becomes U+FFFD; that is fine for a log.
        s.shrink_to_fit();
        (Some(s), true)
    }
}

/// `match_user` / `match_server`, with the exact messages the delivery log shows
/// (`tests/tests/http_contract.rs`).
fn check_identity(backend: &Backend, event: &Event) -> Option<(DeliveryStatus, String)> {
    if backend.options.match_user {
        let want = backend.user_id.as_deref().unwrap_or("");
        let got = event.user_id.as_deref().unwrap_or("");
        if got != want {
            return Some((
                DeliveryStatus::UserMismatch,
                format!("Request user id '{got}' does not match configured value '{want}'"),
            ));
        }
    }
    if backend.options.match_server {
        let want = backend.server_id.as_deref().unwrap_or("");
        let got = event.server_id.as_deref().unwrap_or("");
        if got != want {
            return Some((
                DeliveryStatus::ServerMismatch,
                format!("Request server id '{got}' does not match configured value '{want}'"),
            ));
        }
    }
    None
}

fn fail(
    log: &mut Log,
    status: StatusCode,
    code: DeliveryStatus,
    message: impl Into<String>,
) -> Reply {
    let message = message.into();
    log.status = Some(code);
    log.reason = Some(message.clone());
    error_reply(status, code.as_str(), message)
}

fn ignored(log: &mut Log, reason: String) -> Reply {
    log.status = Some(DeliveryStatus::Ignored);
    log.reason = Some(reason.clone());
    json_reply(
        StatusCode::OK,
        &json!({"status": DeliveryStatus::Ignored, "reason": reason}),
    )
}

fn parse_failure(log: &mut Log, e: ParseError) -> Reply {
    match e {
        ParseError::BadPayload(m) => {
            fail(log, StatusCode::BAD_REQUEST, DeliveryStatus::BadPayload, m)
        }
        ParseError::UnsupportedMediaType(m) => fail(
            log,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            DeliveryStatus::UnsupportedMediaType,
            m,
        ),
    }
}

fn unavailable(log: &mut Log, e: StoreError) -> Reply {
    tracing::error!(error = %e, "store error");
    fail(
        log,
        StatusCode::SERVICE_UNAVAILABLE,
        DeliveryStatus::Unavailable,
        "the store cannot be reached; the media server should retry",
    )
}

//! The management api under `/v1`: users, backends (with their webhook URLs and their
//! server's accounts), items (and a person's "mark played/unplayed"), the delivery log
//! with its diagnosis, and tasks. Every route but `/v1/health` needs
//! `Authorization: Bearer {admin key}`. The function's root serves the console
//! ([`super::console`]).

// Handlers return the error answer itself (a `Reply`); it is built once per request,
// so its size does not matter and boxing it would only add noise.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use chrono::Utc;
use http::{header, Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{error_reply, header_str, json_reply, query_get, query_pairs, Reply, Request};
use crate::domain::guid;
use crate::domain::model::{
    Backend, BackendKind, BackendOptions, Delivery, Item, ItemType, TaskOptions,
};
use crate::domain::sync;
use crate::domain::token::{self, TokenSecret};
use crate::ports::bus::Bus;
use crate::ports::store::{ItemQuery, Store, StoreError};
use crate::ports::tasks::{TaskKind, TaskRequest, TaskRunner};

mod backends;
mod deliveries;
mod items;
mod tasks;
mod users;

pub use backends::VERIFY_LIMIT;
pub use items::item_view;

#[derive(Clone)]
pub struct ApiService {
    pub store: Arc<dyn Store>,
    pub admin_key: String,
    pub token_secret: TokenSecret,
    pub tasks: Option<Arc<dyn TaskRunner>>,
    /// Where a person's "mark played/unplayed" goes once stored (`None` leaves it in
    /// the outbox for the next drain).
    pub bus: Option<Arc<dyn Bus>>,
    /// Which backend urls this deployment accepts.
    pub url_rules: crate::adapters::media::address::UrlRules,
}

/// Where webhook URLs point: the deployment's base plus `/webhook/`, e.g.
/// `https://abc.execute-api.eu-west-1.amazonaws.com/webhook/` or, locally,
/// `http://127.0.0.1:9000/lambda-url/webhook/webhook/`.
#[derive(Debug, Clone)]
pub struct WebhookBase(pub String);

type ApiResult = Result<Reply, Reply>;

fn bad_request(msg: impl Into<String>) -> Reply {
    error_reply(StatusCode::BAD_REQUEST, "bad_request", msg)
}

fn not_found(msg: impl Into<String>) -> Reply {
    error_reply(StatusCode::NOT_FOUND, "not_found", msg)
}

fn store_err(e: StoreError) -> Reply {
    tracing::error!(error = %e, "store error");
    error_reply(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the store cannot be reached; try again",
    )
}

/// Users and backends are named in URLs: keep names plain.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn check_name(kind: &str, s: &str) -> Result<(), Reply> {
    if valid_name(s) {
        Ok(())
    } else {
        Err(bad_request(format!(
            "{kind} name '{s}' must be 1-64 characters of letters, digits, '-', '_' or '.'"
        )))
    }
}

impl ApiService {
    pub async fn handle(&self, req: Request, base: &WebhookBase) -> Reply {
        match self.route(&req, base).await {
            Ok(r) | Err(r) => r,
        }
    }

    fn authorized(&self, req: &Request) -> bool {
        let Some(h) = header_str(req.headers(), header::AUTHORIZATION) else {
            return false;
        };
        let presented = h
            .strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
            .unwrap_or("")
            .trim();
        !self.admin_key.is_empty() && token::secret_eq(presented, &self.admin_key)
    }

    async fn route(&self, req: &Request, base: &WebhookBase) -> ApiResult {
        // Behind API Gateway the path is `/v1/...`; under `cargo lambda watch` it may
        // carry the function's prefix (`/lambda-url/api/v1/...`).
        let path = req.uri().path();
        if let Some(page) = super::console::serve(req.method(), path, function_relative(path)) {
            return Ok(page);
        }
        let path = path.find("/v1/").map(|i| &path[i..]).unwrap_or(path);
        let path = path.trim_end_matches('/');
        let segs: Vec<String> = path
            .split('/')
            .skip(1)
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let m = req.method();
        if segs == ["v1", "health"] {
            return Ok(json_reply(StatusCode::OK, &json!({"status": "ok"})));
        }
        if segs.first() != Some(&"v1") {
            return Err(not_found(format!("no route {path}")));
        }
        if !self.authorized(req) {
            return Err(error_reply(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send the admin key as 'Authorization: Bearer <key>'",
            ));
        }
        let q = query_pairs(req.uri().query());
        match (m, &segs[1..]) {
            (&Method::GET, ["users"]) => self.list_users().await,
            (&Method::PUT, ["users", user]) => self.put_user(user).await,
            (&Method::GET, ["users", user]) => self.get_user(user).await,
            (&Method::GET, ["users", user, "backends"]) => self.list_backends(user, base).await,
            (&Method::PUT, ["users", user, "backends", name]) => {
                self.put_backend(user, name, req, &q, base).await
            }
            (&Method::GET, ["users", user, "backends", name]) => {
                self.get_backend(user, name, base).await
            }
            (&Method::DELETE, ["users", user, "backends", name]) => {
                self.delete_backend(user, name).await
            }
            (&Method::GET, ["users", user, "backends", name, "accounts"]) => {
                self.accounts(user, name).await
            }
            (&Method::POST, ["users", user, "items", id, mark @ ("played" | "unplayed")]) => {
                self.mark(user, id, *mark == "played").await
            }
            (&Method::GET, ["users", user, "diagnosis"]) => self.diagnosis(user).await,
            (&Method::GET, ["users", user, "items"]) => self.items(user, &q).await,
            (&Method::GET, ["users", user, "items", id]) => self.item(user, id).await,
            (&Method::GET, ["users", user, "deliveries"]) => self.deliveries(Some(user), &q).await,
            (&Method::GET, ["users", user, "deliveries", id]) => self.delivery(user, id).await,
            (&Method::GET, ["deliveries", "unclaimed"]) => self.deliveries(None, &q).await,
            (&Method::POST, ["tasks", "import"]) => self.run_task(TaskKind::Import, req).await,
            (&Method::POST, ["tasks", "export"]) => self.run_task(TaskKind::Export, req).await,
            (&Method::GET, ["tasks", "runs"]) => self.task_runs(&q).await,
            (_, rest) if known_route(rest) => Err(error_reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{m} is not supported on {path}"),
            )),
            _ => Err(not_found(format!("no route {path}"))),
        }
    }
}

/// The path below the function's root: `/lambda-url/api/x` (cargo lambda watch) and
/// `/x` (API Gateway) are both `/x`.
fn function_relative(path: &str) -> &str {
    match path.strip_prefix("/lambda-url/") {
        Some(rest) => rest.find('/').map(|i| &rest[i..]).unwrap_or(""),
        None => path,
    }
}

fn known_route(rest: &[&str]) -> bool {
    matches!(
        rest,
        ["users"]
            | ["users", _]
            | ["users", _, "backends"]
            | ["users", _, "backends", _]
            | ["users", _, "backends", _, "accounts"]
            | ["users", _, "items"]
            | ["users", _, "items", _]
            | ["users", _, "items", _, "played" | "unplayed"]
            | ["users", _, "deliveries"]
            | ["users", _, "deliveries", _]
            | ["users", _, "diagnosis"]
            | ["deliveries", "unclaimed"]
            | ["tasks", "import" | "export"]
            | ["tasks", "runs"]
    )
}

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
use crate::ports::bus::{self, Bus};
use crate::ports::store::{ItemQuery, Store, StoreError};

/// Runs a task for `POST /v1/tasks/{import|export}` (the import/export functions'
/// code, plugged in by the api function).
#[async_trait::async_trait]
pub trait TaskRunner: Send + Sync {
    async fn run(&self, task: &str, request: TaskRequest) -> Result<Value, String>;
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    pub user: Option<String>,
    pub backend: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    /// Export only: compare everything, not only what changed since the last export.
    #[serde(default)]
    pub full: bool,
    /// The invocation's deadline (epoch ms, from Lambda), never from the body: the
    /// task's budget is taken from it.
    #[serde(skip)]
    pub deadline_ms: Option<u64>,
}

#[derive(Clone)]
pub struct ApiService {
    pub store: Arc<dyn Store>,
    pub admin_key: String,
    pub token_secret: TokenSecret,
    pub tasks: Option<Arc<dyn TaskRunner>>,
    /// Where a person's "mark played/unplayed" goes once stored (`None` leaves it in
    /// the outbox for the next drain).
    pub bus: Option<Arc<dyn Bus>>,
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
            (&Method::GET, ["deliveries", "unclaimed"]) => self.deliveries(None, &q).await,
            (&Method::POST, ["tasks", task @ ("import" | "export")]) => {
                self.run_task(task, req).await
            }
            (&Method::GET, ["tasks", "runs"]) => self.task_runs(&q).await,
            (_, rest) if known_route(rest) => Err(error_reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{m} is not supported on {path}"),
            )),
            _ => Err(not_found(format!("no route {path}"))),
        }
    }

    async fn list_users(&self) -> ApiResult {
        let users = self.store.list_users().await.map_err(store_err)?;
        Ok(json_reply(StatusCode::OK, &json!({"users": users})))
    }

    async fn put_user(&self, user: &str) -> ApiResult {
        check_name("user", user)?;
        let (u, created) = self
            .store
            .put_user(user, Utc::now())
            .await
            .map_err(store_err)?;
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok(json_reply(status, &u))
    }

    async fn get_user(&self, user: &str) -> ApiResult {
        match self.store.get_user(user).await.map_err(store_err)? {
            Some(u) => Ok(json_reply(StatusCode::OK, &u)),
            None => Err(not_found(format!("no user '{user}'"))),
        }
    }

    async fn require_user(&self, user: &str) -> Result<(), Reply> {
        check_name("user", user)?;
        match self.store.get_user(user).await.map_err(store_err)? {
            Some(_) => Ok(()),
            None => Err(not_found(format!(
                "no user '{user}'; create it with PUT /v1/users/{user}"
            ))),
        }
    }

    fn view(&self, b: &Backend, base: &WebhookBase) -> Value {
        let token = token::derive(&self.token_secret, &b.user, &b.name, &b.webhook_nonce);
        // A token derived with another secret (the secret was rotated) no longer
        // matches its stored hash: say so instead of handing out a dead URL.
        let webhook_url = if token::matches(&token, &b.webhook_token_hash) {
            Value::String(format!("{}{}", base.0, token))
        } else {
            Value::Null
        };
        json!({
            "user": b.user,
            "name": b.name,
            "type": b.kind,
            "url": b.url,
            "has_token": !b.token.is_empty(),
            "server_id": b.server_id,
            "user_id": b.user_id,
            "options": b.options,
            "import": b.import,
            "export": b.export,
            "webhook_url": webhook_url,
            "created_at": b.created_at,
            "updated_at": b.updated_at,
        })
    }

    async fn list_backends(&self, user: &str, base: &WebhookBase) -> ApiResult {
        self.require_user(user).await?;
        let list = self.store.list_backends(user).await.map_err(store_err)?;
        let views: Vec<Value> = list.iter().map(|b| self.view(b, base)).collect();
        Ok(json_reply(StatusCode::OK, &json!({"backends": views})))
    }

    async fn get_backend(&self, user: &str, name: &str, base: &WebhookBase) -> ApiResult {
        match self
            .store
            .get_backend(user, name)
            .await
            .map_err(store_err)?
        {
            Some(b) => Ok(json_reply(StatusCode::OK, &self.view(&b, base))),
            None => Err(not_found(format!("no backend '{name}' for user '{user}'"))),
        }
    }

    async fn delete_backend(&self, user: &str, name: &str) -> ApiResult {
        if self
            .store
            .delete_backend(user, name)
            .await
            .map_err(store_err)?
        {
            Ok(json_reply(StatusCode::OK, &json!({"deleted": true})))
        } else {
            Err(not_found(format!("no backend '{name}' for user '{user}'")))
        }
    }

    async fn put_backend(
        &self,
        user: &str,
        name: &str,
        req: &Request,
        q: &[(String, String)],
        base: &WebhookBase,
    ) -> ApiResult {
        self.require_user(user).await?;
        check_name("backend", name)?;
        if name == crate::domain::sync::CONSOLE {
            return Err(bad_request(format!(
                "backend name '{name}' is taken: it marks what a person set in the console"
            )));
        }
        let body: BackendBody = serde_json::from_slice(req.body())
            .map_err(|e| bad_request(format!("backend body: {e}")))?;
        let kind = BackendKind::parse(&body.kind).ok_or_else(|| {
            bad_request(format!(
                "type '{}' is not one of plex, jellyfin, emby",
                body.kind
            ))
        })?;
        let existing = self
            .store
            .get_backend(user, name)
            .await
            .map_err(store_err)?;
        let url = body
            .url
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(bad_request(format!(
                "url '{url}' must start with http:// or https://"
            )));
        }
        let options = body.options.unwrap_or_default();
        crate::adapters::media::address::UrlRules::from_env()
            .check(&url, &options)
            .map_err(bad_request)?;
        // Leaving the token out keeps the one stored, so options can change without it.
        let token = match (body.token, &existing) {
            (Some(t), _) => t,
            (None, Some(old)) => old.token.clone(),
            (None, None) => String::new(),
        };
        let import = body.import.unwrap_or_default();
        let export = body.export.unwrap_or_default();
        if (import.enabled || export.enabled) && (url.is_empty() || token.is_empty()) {
            return Err(bad_request(
                "import and export talk to the media server: they need 'url' and 'token'",
            ));
        }
        let empty_none = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        let user_id = empty_none(body.user_id);
        let server_id = empty_none(body.server_id);
        if options.match_user && user_id.is_none() {
            return Err(bad_request("options.match_user needs 'user_id'"));
        }
        if options.match_server && server_id.is_none() {
            return Err(bad_request("options.match_server needs 'server_id'"));
        }
        let rotate = query_get(q, "rotate_token") == Some("true");
        let now = Utc::now();
        if let Some(n) = &body.webhook_nonce {
            if n.len() < 8 || !valid_name(n) {
                return Err(bad_request(
                    "webhook_nonce must be 8-64 characters of letters, digits, '-', '_' or '.'",
                ));
            }
        }
        let nonce = match (&existing, body.webhook_nonce) {
            (_, Some(n)) => n,
            (Some(old), None) if !rotate => old.webhook_nonce.clone(),
            _ => token::new_nonce(),
        };
        let webhook = token::derive(&self.token_secret, user, name, &nonce);
        let keep_sync = |new: TaskOptions, old: Option<&TaskOptions>| TaskOptions {
            enabled: new.enabled,
            last_sync: old.and_then(|o| o.last_sync),
        };
        let backend = Backend {
            user: user.to_string(),
            name: name.to_string(),
            kind,
            url,
            token,
            server_id,
            user_id,
            options,
            import: keep_sync(import, existing.as_ref().map(|b| &b.import)),
            export: keep_sync(export, existing.as_ref().map(|b| &b.export)),
            webhook_nonce: nonce,
            webhook_token_hash: token::hash(&webhook),
            created_at: existing.as_ref().map(|b| b.created_at).unwrap_or(now),
            updated_at: now,
        };
        let mut backend = backend;
        if query_get(q, "verify") == Some("true") {
            verify(&mut backend)
                .await
                .map_err(|msg| error_reply(StatusCode::BAD_REQUEST, "verify_failed", msg))?;
        }
        self.store.put_backend(&backend).await.map_err(store_err)?;
        let status = if existing.is_some() {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        Ok(json_reply(status, &self.view(&backend, base)))
    }

    async fn items(&self, user: &str, q: &[(String, String)]) -> ApiResult {
        self.require_user(user).await?;
        let limit = match query_get(q, "limit") {
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=1000).contains(l))
                .ok_or_else(|| bad_request("limit must be a number from 1 to 1000"))?,
            None => 100,
        };
        let cursor = query_get(q, "cursor");
        let query = match (
            query_get(q, "guid"),
            query_get(q, "backend"),
            query_get(q, "backend_item_id"),
        ) {
            (Some(g), None, None) => ItemQuery::Keys(guid_query_keys(g).ok_or_else(|| {
                bad_request(format!(
                    "guid '{g}' is not kind:value (or kind:series/season/episode) with a known kind (imdb, tmdb, tvdb, tvmaze, tvrage, anidb) and a valid id"
                ))
            })?),
            (None, Some(b), Some(id)) => ItemQuery::Keys(vec![sync::backend_key(b, id)]),
            (None, None, None) => ItemQuery::All,
            _ => {
                return Err(bad_request(
                    "filter by either guid=kind:value or backend=..&backend_item_id=..",
                ))
            }
        };
        let page = self
            .store
            .list_items(user, &query, limit, cursor)
            .await
            .map_err(store_err)?;
        let items: Vec<Value> = page.items.iter().map(item_view).collect();
        Ok(json_reply(
            StatusCode::OK,
            &json!({"items": items, "cursor": page.cursor}),
        ))
    }

    async fn item(&self, user: &str, id: &str) -> ApiResult {
        match self.store.get_item(user, id).await.map_err(store_err)? {
            Some(i) => Ok(json_reply(StatusCode::OK, &item_view(&i))),
            None => Err(not_found(format!("no item '{id}' for user '{user}'"))),
        }
    }

    async fn deliveries(&self, user: Option<&str>, q: &[(String, String)]) -> ApiResult {
        if let Some(u) = user {
            self.require_user(u).await?;
        }
        let limit = query_get(q, "limit")
            .map(|l| {
                l.parse::<usize>()
                    .map_err(|_| bad_request("limit must be a number"))
            })
            .transpose()?
            .unwrap_or(50)
            .clamp(1, 1000);
        let with_body = query_get(q, "body") == Some("true");
        let list = self
            .store
            .list_deliveries(user, limit)
            .await
            .map_err(store_err)?;
        let views: Vec<Value> = list.iter().map(|d| delivery_view(d, with_body)).collect();
        Ok(json_reply(StatusCode::OK, &json!({"deliveries": views})))
    }

    /// The accounts the backend's server knows, to add one person per account.
    async fn accounts(&self, user: &str, name: &str) -> ApiResult {
        use crate::adapters::media::client::{client_for, http_client};
        let Some(b) = self
            .store
            .get_backend(user, name)
            .await
            .map_err(store_err)?
        else {
            return Err(not_found(format!("no backend '{name}' for user '{user}'")));
        };
        if b.url.is_empty() || b.token.is_empty() {
            return Err(bad_request(format!(
                "backend '{name}' needs 'url' and 'token' to list its server's accounts"
            )));
        }
        let accounts = client_for(&b, http_client())
            .accounts()
            .await
            .map_err(|e| {
                let msg = match e.status() {
                    Some(401) | Some(403) => format!(
                        "the {} server refused to list its accounts with this token (it takes the server owner's token or an API key)",
                        b.kind
                    ),
                    _ => format!("cannot list the accounts of the {} server: {e}", b.kind),
                };
                error_reply(StatusCode::BAD_GATEWAY, "backend_failed", msg)
            })?;
        Ok(json_reply(
            StatusCode::OK,
            &json!({"backend": b.name, "type": b.kind, "server_id": b.server_id, "accounts": accounts}),
        ))
    }

    /// A person's "Mark played" / "Mark unplayed": stored like any change (its stamp is
    /// now), then pushed to every backend through the bus.
    async fn mark(&self, user: &str, id: &str, watched: bool) -> ApiResult {
        self.require_user(user).await?;
        let Some(applied) =
            crate::app::ingest::mark(self.store.as_ref(), user, id, watched, Utc::now())
                .await
                .map_err(store_err)?
        else {
            return Err(not_found(format!("no item '{id}' for user '{user}'")));
        };
        let pushed = match (&applied.change, &self.bus) {
            (Some(change), Some(bus)) => {
                bus::publish_and_ack(self.store.as_ref(), bus.as_ref(), change).await
            }
            _ => false,
        };
        // Push recorded what it learned on the item: show the item as it is now.
        let item = match self.store.get_item(user, id).await {
            Ok(Some(i)) => i,
            _ => applied.item,
        };
        let mut body = json!({
            "item": item_view(&item),
            "changed": applied.no_change.is_none(),
            "pushed": pushed,
        });
        if let Some(r) = applied.no_change {
            body["reason"] = json!(r.as_str());
        }
        if let Some(d) = applied.detail {
            body["detail"] = json!(d);
        }
        Ok(json_reply(StatusCode::OK, &body))
    }

    /// Common setup problems read from the delivery log ([`crate::app::diagnose`]).
    async fn diagnosis(&self, user: &str) -> ApiResult {
        self.require_user(user).await?;
        let backends = self.store.list_backends(user).await.map_err(store_err)?;
        let deliveries = self
            .store
            .list_deliveries(Some(user), 500)
            .await
            .map_err(store_err)?;
        let unclaimed = self
            .store
            .list_deliveries(None, 200)
            .await
            .map_err(store_err)?;
        let findings =
            crate::app::diagnose::diagnose(user, &backends, &deliveries, &unclaimed, Utc::now());
        Ok(json_reply(StatusCode::OK, &json!({"findings": findings})))
    }

    async fn run_task(&self, task: &str, req: &Request) -> ApiResult {
        let request: TaskRequest = if req.body().iter().all(u8::is_ascii_whitespace) {
            TaskRequest::default()
        } else {
            serde_json::from_slice(req.body())
                .map_err(|e| bad_request(format!("task body: {e}")))?
        };
        let request = TaskRequest {
            deadline_ms: req.extensions().get::<super::Deadline>().map(|d| d.0),
            ..request
        };
        let Some(tasks) = &self.tasks else {
            return Err(error_reply(
                StatusCode::NOT_IMPLEMENTED,
                "not_implemented",
                format!("the {task} task is not available in this deployment yet"),
            ));
        };
        match tasks.run(task, request).await {
            Ok(report) => Ok(json_reply(StatusCode::OK, &report)),
            Err(e) => Err(error_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e,
            )),
        }
    }

    async fn task_runs(&self, q: &[(String, String)]) -> ApiResult {
        let limit = query_get(q, "limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(50);
        let runs = self.store.list_task_runs(limit).await.map_err(store_err)?;
        Ok(json_reply(StatusCode::OK, &json!({"runs": runs})))
    }
}

/// `?verify=true`: the url answers as that kind of server, the server id matches (or
/// is filled in when not given), and the token (and user id) are accepted.
async fn verify(b: &mut Backend) -> Result<(), String> {
    let url = b.url.clone();
    tokio::time::timeout(VERIFY_LIMIT, verify_once(b))
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "the server at {url} did not answer within {} s",
                VERIFY_LIMIT.as_secs()
            ))
        })
}

/// `?verify=true` answers within this, whatever the server does (one attempt per
/// call, no retries): well inside the api's timeout and API Gateway's 30 s.
pub const VERIFY_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

async fn verify_once(b: &mut Backend) -> Result<(), String> {
    use crate::adapters::media::client::{client_with, http_client_with, PageRequest, RetryPolicy};
    use std::time::Duration;
    if b.url.is_empty() || b.token.is_empty() {
        return Err("verify needs 'url' and 'token'".into());
    }
    let once = RetryPolicy {
        attempts: 1,
        ..RetryPolicy::default()
    };
    let client = client_with(
        b,
        http_client_with(Duration::from_secs(3), Duration::from_secs(5)),
        once,
    );
    let id = client.identity().await.map_err(|e| match e.status() {
        Some(401) | Some(403) => format!("the {} server refused the token", b.kind),
        _ => format!("cannot reach a {} server at {}: {e}", b.kind, b.url),
    })?;
    match &b.server_id {
        Some(want) if *want != id.server_id => {
            return Err(format!(
                "server id '{want}' does not match the server at {}, whose id is '{}'",
                b.url, id.server_id
            ))
        }
        Some(_) => {}
        None => b.server_id = Some(id.server_id.clone()),
    }
    // Plex answers /identity without checking the token: read one library page too.
    client
        .library_page(&PageRequest::first(1))
        .await
        .map_err(|e| match e.status() {
            Some(401) | Some(403) => format!("the {} server refused the token", b.kind),
            Some(400) | Some(404) => format!(
                "the {} server does not know user id '{}'",
                b.kind,
                b.user_id.as_deref().unwrap_or("")
            ),
            _ => format!("the {} server did not answer a library read: {e}", b.kind),
        })?;
    Ok(())
}

/// Lookup keys for `?guid=`: `imdb:tt0111161` (movie or episode) or a relative
/// episode guid `tvdb:431877/1/6`.
fn guid_query_keys(g: &str) -> Option<Vec<String>> {
    if let Some((id, rest)) = g.split_once('/') {
        let (kind, series) = guid::parse_written(id)?;
        let mut nums = rest.split('/').map(|n| n.parse::<u32>().ok());
        let (Some(Some(s)), Some(Some(e)), None) = (nums.next(), nums.next(), nums.next()) else {
            return None;
        };
        return Some(vec![sync::LookupKey::relative(kind, &series, s, e).encode()]);
    }
    let (kind, value) = guid::parse_written(g)?;
    Some(vec![
        sync::guid_key(ItemType::Movie, kind, &value),
        sync::guid_key(ItemType::Episode, kind, &value),
    ])
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
            | ["users", _, "diagnosis"]
            | ["deliveries", "unclaimed"]
            | ["tasks", "import" | "export"]
            | ["tasks", "runs"]
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackendBody {
    #[serde(rename = "type")]
    kind: String,
    url: Option<String>,
    token: Option<String>,
    server_id: Option<String>,
    user_id: Option<String>,
    options: Option<BackendOptions>,
    import: Option<TaskOptions>,
    export: Option<TaskOptions>,
    /// Fixes the webhook token's random input, for reproducible setups (the sample
    /// events under `events/` address the local demo backends this way). The token
    /// still depends on the deployment's secret.
    webhook_nonce: Option<String>,
}

/// An item as DESIGN 6 shows it.
pub fn item_view(i: &Item) -> Value {
    let backends: serde_json::Map<String, Value> = i
        .backends
        .iter()
        .map(|(name, s)| {
            (
                name.clone(),
                json!({"item_id": s.item_id, "watched": s.watched, "progress_ms": s.progress_ms}),
            )
        })
        .collect();
    json!({
        "id": i.id,
        "type": i.kind,
        "title": i.title,
        "year": i.year,
        "series_title": i.series_title,
        "season": i.season,
        "episode": i.episode,
        "guids": i.guids,
        "series_guids": i.series_guids,
        "watched": i.watched,
        "state_updated_at": i.state_updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "progress_ms": i.progress_ms,
        "via": i.via,
        "backends": backends,
    })
}

fn delivery_view(d: &Delivery, with_body: bool) -> Value {
    let mut v = json!({
        "id": d.id,
        "backend": d.backend,
        "received_at": d.received_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "status": d.status,
        "reason": d.reason,
        "event": d.event,
        "item_id": d.item_id,
        "http_status": d.http_status,
        "changed": d.changed,
        "content_type": d.content_type,
        "user_agent": d.user_agent,
    });
    if with_body {
        v["body"] = json!(d.body);
        v["body_truncated"] = json!(d.body_truncated);
    }
    v
}

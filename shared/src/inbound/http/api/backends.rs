//! `/v1/users/{u}/backends`: a person's media server accounts, their webhook URLs,
//! `?verify=true` against the server, and the server's accounts.

#[allow(unused_imports)]
use super::*;

/// `?verify=true`: the url answers as that kind of server, the server id matches (or
/// is filled in when not given), and the token (and user id) are accepted.
pub(super) async fn verify(b: &mut Backend) -> Result<(), String> {
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

pub(super) async fn verify_once(b: &mut Backend) -> Result<(), String> {
    use crate::adapters::media::client::{client_with, http_client_with, RetryPolicy};
    use crate::ports::media::PageRequest;
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BackendBody {
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) url: Option<String>,
    pub(super) token: Option<String>,
    pub(super) server_id: Option<String>,
    pub(super) user_id: Option<String>,
    pub(super) options: Option<BackendOptions>,
    pub(super) import: Option<TaskOptions>,
    pub(super) export: Option<TaskOptions>,
    /// Fixes the webhook token's random input, for reproducible setups (the sample
    /// events under `events/` address the local demo backends this way). The token
    /// still depends on the deployment's secret.
    pub(super) webhook_nonce: Option<String>,
    /// Reuse the token of another backend on the same Jellyfin or Emby server (a person
    /// added from that server's accounts), without the token passing through the page.
    pub(super) token_from: Option<TokenFrom>,
}

/// `"token_from": {"user": "ana", "backend": "jellyfin"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TokenFrom {
    user: String,
    backend: String,
}

impl ApiService {
    pub(super) fn view(&self, b: &Backend, base: &WebhookBase) -> Value {
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

    pub(super) async fn list_backends(&self, user: &str, base: &WebhookBase) -> ApiResult {
        self.require_user(user).await?;
        let list = self.store.list_backends(user).await.map_err(store_err)?;
        let views: Vec<Value> = list.iter().map(|b| self.view(b, base)).collect();
        Ok(json_reply(StatusCode::OK, &json!({"backends": views})))
    }

    pub(super) async fn get_backend(
        &self,
        user: &str,
        name: &str,
        base: &WebhookBase,
    ) -> ApiResult {
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

    pub(super) async fn delete_backend(&self, user: &str, name: &str) -> ApiResult {
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

    pub(super) async fn put_backend(
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
        self.url_rules.check(&url, &options).map_err(bad_request)?;
        // Leaving the token out keeps the one stored, so options can change without it.
        let token = match (body.token, body.token_from, &existing) {
            (Some(_), Some(_), _) => {
                return Err(bad_request("give either 'token' or 'token_from', not both"))
            }
            (Some(t), None, _) => t,
            (None, Some(from), _) => self.token_from(kind, &url, &from).await?,
            (None, None, Some(old)) => old.token.clone(),
            (None, None, None) => String::new(),
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

    /// The accounts the backend's server knows, to add one person per account.
    /// `token_from`: the token of another backend on the same Jellyfin or Emby server,
    /// copied here without ever leaving the store. Their token is the server's API key,
    /// which acts for any user id; a Plex token is one account's own, and marking with
    /// it would mark that account's items, so Plex is refused.
    async fn token_from(
        &self,
        kind: BackendKind,
        url: &str,
        from: &TokenFrom,
    ) -> Result<String, Reply> {
        if kind == BackendKind::Plex {
            return Err(bad_request(
                "a Plex token belongs to one Plex account: give this account's own token (its X-Plex-Token) instead of 'token_from'",
            ));
        }
        let source = self
            .store
            .get_backend(&from.user, &from.backend)
            .await
            .map_err(store_err)?
            .ok_or_else(|| {
                not_found(format!(
                    "token_from: no backend '{}' for user '{}'",
                    from.backend, from.user
                ))
            })?;
        // The token goes to `url` with every call: only to the server it came from.
        if source.kind != kind || source.url != url || url.is_empty() {
            return Err(bad_request(format!(
                "token_from: backend '{}' of '{}' is a {} server at '{}'; its token is only reused for that same server",
                from.backend, from.user, source.kind, source.url
            )));
        }
        if source.token.is_empty() {
            return Err(bad_request(format!(
                "token_from: backend '{}' of '{}' has no token",
                from.backend, from.user
            )));
        }
        Ok(source.token)
    }

    pub(super) async fn accounts(&self, user: &str, name: &str) -> ApiResult {
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
}

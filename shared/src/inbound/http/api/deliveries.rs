//! `/v1/.../deliveries` and `/diagnosis`: the delivery log and what it shows wrong.

#[allow(unused_imports)]
use super::*;

pub(super) fn delivery_view(d: &Delivery, with_body: bool) -> Value {
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

impl ApiService {
    pub(super) async fn deliveries(&self, user: Option<&str>, q: &[(String, String)]) -> ApiResult {
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

    /// One delivery with its payload (the console's "Show payload"), without reading
    /// the whole log again.
    pub(super) async fn delivery(&self, user: &str, id: &str) -> ApiResult {
        self.require_user(user).await?;
        match self.store.get_delivery(user, id).await.map_err(store_err)? {
            Some(d) => Ok(json_reply(StatusCode::OK, &delivery_view(&d, true))),
            None => Err(not_found(format!(
                "no delivery '{id}' for user '{user}' (deliveries are kept 7 days)"
            ))),
        }
    }

    /// Common setup problems read from the delivery log ([`crate::app::diagnose`]).
    pub(super) async fn diagnosis(&self, user: &str) -> ApiResult {
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
}

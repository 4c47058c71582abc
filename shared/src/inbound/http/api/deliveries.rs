//! `/v1/.../deliveries` and `/diagnosis`: the delivery log and what it shows wrong.

#[allow(unused_imports)]
use super::*;
use crate::adapters::media;
use crate::domain::model::Parsed;
use crate::ports::media::{Sender, WebhookReader};

/// The diagnosis's reader: the webhook parsers themselves, so it sees a body as
/// ingest did.
pub struct ParsedBodies;

impl WebhookReader for ParsedBodies {
    fn sender(
        &self,
        user_agent: Option<&str>,
        body: &[u8],
        received_at: chrono::DateTime<Utc>,
    ) -> Sender {
        let body = media::json_text(body);
        let Ok(source) = media::source_of(user_agent, body) else {
            return Sender::default();
        };
        match media::parse(source, body, received_at) {
            Ok(Parsed::Event(e)) => Sender {
                source: Some(source),
                user_id: e.user_id,
                server_id: e.server_id,
            },
            _ => Sender {
                source: Some(source),
                ..Sender::default()
            },
        }
    }
}

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
        let findings = crate::app::diagnose::diagnose(
            &ParsedBodies,
            user,
            &backends,
            &deliveries,
            &unclaimed,
            Utc::now(),
        );
        Ok(json_reply(StatusCode::OK, &json!({"findings": findings})))
    }
}

#[cfg(test)]
mod tests {
    //! The diagnosis over bodies read by the real parsers ([`ParsedBodies`]).
    use super::ParsedBodies;
    use crate::ports::media::WebhookReader;

    /// Bodies logged before the transport took the byte-order mark off (kept 7 days)
    /// still tell their sender.
    #[test]
    fn a_stored_body_with_a_byte_order_mark_still_tells_its_sender() {
        let body = b"\xEF\xBB\xBF{\"NotificationType\":\"PlaybackStart\",\"ServerId\":\"s1\",\"UserId\":\"u1\",\"ItemId\":\"i1\",\"ItemType\":\"Movie\"}";
        let sender = ParsedBodies.sender(None, body, Utc::now());
        assert_eq!(
            (sender.user_id.as_deref(), sender.server_id.as_deref()),
            (Some("u1"), Some("s1"))
        );
    }
    use crate::app::diagnose::FindingKind;
    use crate::domain::model::{Backend, BackendKind, BackendOptions, Delivery, TaskOptions};
    use chrono::{DateTime, Duration, TimeZone, Utc};

    fn diagnose(
        user: &str,
        backends: &[Backend],
        deliveries: &[Delivery],
        unclaimed: &[Delivery],
        now: DateTime<Utc>,
    ) -> Vec<crate::app::diagnose::Finding> {
        crate::app::diagnose::diagnose(&ParsedBodies, user, backends, deliveries, unclaimed, now)
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
    }

    fn backend(name: &str, kind: BackendKind, user_id: Option<&str>, match_user: bool) -> Backend {
        Backend {
            user: "ana".into(),
            name: name.into(),
            kind,
            url: String::new(),
            token: String::new(),
            server_id: Some("srv-1".into()),
            user_id: user_id.map(str::to_string),
            options: BackendOptions {
                match_user,
                ..BackendOptions::default()
            },
            import: TaskOptions::default(),
            export: TaskOptions::default(),
            webhook_nonce: "n".into(),
            webhook_token_hash: "h".into(),
            created_at: now(),
            updated_at: now(),
        }
    }

    fn plex_body(account: &str, server: &str) -> String {
        serde_json::json!({
            "event": "media.scrobble",
            "Account": {"id": account.parse::<u64>().unwrap(), "title": "x"},
            "Server": {"title": "s", "uuid": server},
            "Metadata": {"type": "movie", "ratingKey": "10", "title": "Film",
                          "Guid": [{"id": "imdb://tt0111161"}]}
        })
        .to_string()
    }

    fn delivery(backend: Option<&str>, ua: &str, body: String, ago_h: i64) -> Delivery {
        Delivery {
            id: format!("d{ago_h}{body:.3}"),
            user: backend.map(|_| "ana".into()),
            backend: backend.map(str::to_string),
            received_at: now() - Duration::hours(ago_h),
            http_status: 200,
            status: crate::domain::model::DeliveryStatus::Stored,
            reason: None,
            event: None,
            item_id: None,
            changed: None,
            content_type: None,
            user_agent: Some(ua.into()),
            body: Some(body),
            body_truncated: false,
        }
    }

    const PLEX_UA: &str = "PlexMediaServer/1.41.0";

    #[test]
    fn other_accounts_are_named_with_their_ids() {
        let b = [backend("plex", BackendKind::Plex, Some("1"), false)];
        let d = [
            delivery(Some("plex"), PLEX_UA, plex_body("1", "srv-1"), 1),
            delivery(Some("plex"), PLEX_UA, plex_body("23456", "srv-1"), 2),
            delivery(Some("plex"), PLEX_UA, plex_body("777", "srv-1"), 3),
        ];
        let f = diagnose("ana", &b, &d, &[], now());
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].kind, FindingKind::OtherAccounts);
        assert_eq!(f[0].ids, vec!["23456".to_string(), "777".to_string()]);
        assert!(
            f[0].message.contains("Turn on Match user"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn several_accounts_on_a_backend_without_user_id() {
        let b = [backend("plex", BackendKind::Plex, None, false)];
        let d = [
            delivery(Some("plex"), PLEX_UA, plex_body("1", "srv-1"), 1),
            delivery(Some("plex"), PLEX_UA, plex_body("2", "srv-1"), 1),
        ];
        let f = diagnose("ana", &b, &d, &[], now());
        assert_eq!(f[0].kind, FindingKind::OtherAccounts);
        assert_eq!(f[0].ids, vec!["1".to_string(), "2".to_string()]);
    }

    #[test]
    fn one_account_only_is_fine() {
        let b = [backend("plex", BackendKind::Plex, Some("1"), true)];
        let d = [delivery(Some("plex"), PLEX_UA, plex_body("1", "srv-1"), 1)];
        assert!(diagnose("ana", &b, &d, &[], now()).is_empty());
    }

    #[test]
    fn another_server_id() {
        let b = [backend("plex", BackendKind::Plex, Some("1"), true)];
        let d = [delivery(Some("plex"), PLEX_UA, plex_body("1", "srv-2"), 1)];
        let f = diagnose("ana", &b, &d, &[], now());
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].kind, FindingKind::OtherServer);
        assert_eq!(f[0].ids, vec!["srv-2".to_string()]);
    }

    #[test]
    fn plex_webhook_on_a_jellyfin_backend() {
        let b = [backend(
            "jellyfin",
            BackendKind::Jellyfin,
            Some("u1"),
            false,
        )];
        let mut d = delivery(Some("jellyfin"), PLEX_UA, plex_body("1", "srv-1"), 1);
        d.status = crate::domain::model::DeliveryStatus::BadPayload;
        let f = diagnose("ana", &b, &[d], &[], now());
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].kind, FindingKind::WrongServerType);
        assert!(f[0]
            .message
            .starts_with("Plex webhooks arrive on 'jellyfin'"));
    }

    #[test]
    fn quiet_and_never_delivered_backends() {
        let b = [
            backend("plex", BackendKind::Plex, Some("1"), true),
            backend("emby", BackendKind::Emby, None, false),
        ];
        let d = [delivery(Some("plex"), PLEX_UA, plex_body("1", "srv-1"), 30)];
        let f = diagnose("ana", &b, &d, &[], now());
        let kinds: Vec<_> = f.iter().map(|f| (f.kind, f.backend.clone())).collect();
        assert_eq!(
            kinds,
            vec![
                (FindingKind::Quiet, Some("plex".into())),
                (FindingKind::NeverDelivered, Some("emby".into()))
            ]
        );
    }

    #[test]
    fn unknown_urls_of_the_last_day_only() {
        let recent = delivery(None, PLEX_UA, String::new(), 2);
        let old = delivery(None, "Jellyfin-Server/10.9", String::new(), 30);
        let f = diagnose("ana", &[], &[], &[recent, old.clone()], now());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, FindingKind::UnknownUrl);
        assert!(f[0].message.starts_with("1 request(s)"), "{}", f[0].message);
        assert!(f[0].message.contains(PLEX_UA));
        assert!(diagnose("ana", &[], &[], &[old], now()).is_empty());
    }
}

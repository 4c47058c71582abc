//! The delivery log: deflated bodies, expiry, and the hourly cap on unclaimed
//! deliveries (a conditional counter).

#[allow(unused_imports)]
use super::*;

impl DynamoStore {
    /// Count one more unclaimed delivery in its clock hour, unless the hour has
    /// reached the cap: one conditional UpdateItem. False when over the cap.
    pub(super) async fn count_unclaimed(&self, d: &Delivery) -> Result<bool> {
        let hour = d.received_at.timestamp().div_euclid(3600) * 3600;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(UNCLAIMED_COUNT, hour.to_string())))
            .update_expression("ADD #n :one SET #exp = :exp")
            .condition_expression("attribute_not_exists(#n) OR #n < :cap")
            .expression_attribute_names("#n", "kept")
            .expression_attribute_names("#exp", "expires_at")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cap", n(UNCLAIMED_PER_HOUR))
            .expression_attribute_values(":exp", n(hour + 2 * 3600))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(unavailable("UpdateItem", e)),
        }
    }

    pub(super) async fn record_delivery(&self, d: &Delivery) -> Result<()> {
        let expires = delivery_expiry(d).timestamp();
        if d.user.is_none() && !self.count_unclaimed(d).await? {
            tracing::debug!("unclaimed delivery over the hourly cap; not kept");
            return Ok(());
        }
        let mut r = key(delivery_pk(d.user.as_deref()), d.id.clone());
        // The body goes compressed in its own attribute, not in the JSON.
        r.insert(
            "data".into(),
            s(to_json(&Delivery {
                body: None,
                ..d.clone()
            })?),
        );
        if let Some(b) = d.body.as_deref() {
            r.insert(
                "body".into(),
                AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(body::pack(b)?)),
            );
        }
        r.insert("expires_at".into(), n(expires));
        self.put_record(r).await
    }

    pub(super) async fn list_deliveries(
        &self,
        user: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        let limit = limit.clamp(1, 1000);
        // TTL deletes lazily (and moto never): expired records are skipped here.
        let live = Expr::new("#exp > :now")
            .name("#exp", "expires_at")
            .value(":now", n(Utc::now().timestamp()));
        self.query(&delivery_pk(user), None, false, Some(limit), Some(live))
            .await?
            .iter()
            .map(|r| {
                let mut d: Delivery = from_json(r, "data")?;
                if let Some(AttributeValue::B(b)) = r.get("body") {
                    d.body = Some(body::unpack(b.as_ref())?);
                }
                Ok(d)
            })
            .collect()
    }

    pub(super) async fn get_delivery(&self, user: &str, id: &str) -> Result<Option<Delivery>> {
        let Some(r) = self.get(key(delivery_pk(Some(user)), id)).await? else {
            return Ok(None);
        };
        // TTL deletes lazily (and moto never): an expired record is gone for the reader.
        let expired = r
            .get("expires_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .is_some_and(|t| t <= Utc::now().timestamp());
        if expired {
            return Ok(None);
        }
        let mut d: Delivery = from_json(&r, "data")?;
        if let Some(AttributeValue::B(b)) = r.get("body") {
            d.body = Some(body::unpack(b.as_ref())?);
        }
        Ok(Some(d))
    }
}

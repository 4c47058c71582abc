//! The change outbox: the row written with an item, claims with a lease, release
//! and acknowledgement.

#[allow(unused_imports)]
use super::*;

impl DynamoStore {
    pub(super) fn outbox_put(&self, change: &StateChange) -> Result<TransactWriteItem> {
        let mut r = key(OUTBOX, change.id.clone());
        r.insert("data".into(), s(to_json(change)?));
        r.insert(
            "seq".into(),
            s(crate::domain::ids::time_ordered_id(Utc::now())),
        );
        self.put(r, None)
    }

    pub(super) async fn pending_changes(&self, limit: usize) -> Result<Vec<StateChange>> {
        // Change ids sort by time: the partition reads oldest first.
        self.query(OUTBOX, None, true, Some(limit.clamp(1, 1000)), None)
            .await?
            .iter()
            .map(|r| from_json(r, "data"))
            .collect()
    }

    pub(super) async fn claim_changes(
        &self,
        limit: usize,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> Result<Vec<StateChange>> {
        let limit = limit.clamp(1, 1000);
        let free = || {
            Expr::new("attribute_not_exists(#cl) OR #cl < :now")
                .name("#cl", "claimed_until")
                .value(":now", n(now.timestamp_millis()))
        };
        let candidates = self
            .query(OUTBOX, None, true, Some(limit), Some(free()))
            .await?;
        let until = (now + lease).timestamp_millis();
        let mut claimed = Vec::with_capacity(candidates.len());
        for r in &candidates {
            let change: StateChange = from_json(r, "data")?;
            let mut cond = free();
            let out = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(OUTBOX, get_s(r, "sk")?)))
                .update_expression("SET #cl = :until")
                .condition_expression(format!("attribute_exists(#pk) AND ({})", cond.text))
                .set_expression_attribute_names(cond.names().map(|mut m| {
                    m.insert("#pk".into(), "pk".into());
                    m
                }))
                .set_expression_attribute_values(cond.values().map(|mut m| {
                    m.insert(":until".into(), n(until));
                    m
                }))
                .send()
                .await;
            match out {
                Ok(_) => claimed.push(change),
                // Another drain claimed it, or acknowledged it, meanwhile.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(unavailable("UpdateItem", e)),
            }
        }
        Ok(claimed)
    }

    pub(super) async fn release_change(&self, id: &str) -> Result<()> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(OUTBOX, id)))
            .update_expression("REMOVE #cl")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#cl", "claimed_until")
            .expression_attribute_names("#pk", "pk")
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable("UpdateItem", e)),
        }
    }

    pub(super) async fn ack_change(&self, id: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(OUTBOX, id)))
            .send()
            .await
            .map_err(|e| unavailable("DeleteItem", e))?;
        Ok(())
    }
}

//! Request plumbing: condition and update expressions, transactions (and how a
//! cancelled one is read), single and batched reads, paged queries.

#[allow(unused_imports)]
use super::*;

/// What a TransactWriteItems did: went through, or was cancelled with one reason code
/// per operation (`None` for operations that were fine).
pub(super) enum Tx {
    Done,
    Cancelled(Vec<Option<String>>),
}

impl Tx {
    /// A cancellation only by failed conditions or concurrent transactions on the same
    /// records: the caller's view was out of date.
    pub(super) fn conflicted(codes: &[Option<String>]) -> bool {
        let mut failed = codes.iter().flatten().peekable();
        failed.peek().is_some()
            && failed.all(|c| c == "ConditionalCheckFailed" || c == "TransactionConflict")
    }
}

/// A condition or update expression with its placeholders.
#[derive(Default)]
pub(super) struct Expr {
    pub(super) text: String,
    pub(super) names: HashMap<String, String>,
    pub(super) values: HashMap<String, AttributeValue>,
}

impl Expr {
    pub(super) fn new(text: impl Into<String>) -> Self {
        Expr {
            text: text.into(),
            ..Default::default()
        }
    }

    pub(super) fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names
            .insert(placeholder.to_string(), attribute.to_string());
        self
    }

    pub(super) fn value(mut self, placeholder: &str, v: AttributeValue) -> Self {
        self.values.insert(placeholder.to_string(), v);
        self
    }

    pub(super) fn names(&mut self) -> Option<HashMap<String, String>> {
        Some(std::mem::take(&mut self.names)).filter(|m| !m.is_empty())
    }

    pub(super) fn values(&mut self) -> Option<HashMap<String, AttributeValue>> {
        Some(std::mem::take(&mut self.values)).filter(|m| !m.is_empty())
    }
}

/// "The record does not exist yet."
pub(super) fn absent() -> Expr {
    Expr::new("attribute_not_exists(#pk)").name("#pk", "pk")
}

/// "The record does not exist, or it belongs to this backend."
pub(super) fn absent_or_of(user: &str, name: &str) -> Expr {
    Expr::new("attribute_not_exists(#pk) OR (#user = :user AND #name = :name)")
        .name("#pk", "pk")
        .name("#user", "user")
        .name("#name", "name")
        .value(":user", s(user))
        .value(":name", s(name))
}

/// The builder `b` (a Put or a Delete) with `cond`, when there is one, as its
/// condition expression.
macro_rules! conditioned {
    ($b:expr, $cond:expr) => {
        match $cond {
            Some(mut c) => $b
                .set_expression_attribute_names(c.names())
                .set_expression_attribute_values(c.values())
                .condition_expression(c.text),
            None => $b,
        }
    };
}

impl DynamoStore {
    /// Write one record as it is, unconditionally (a delivery, a run report).
    pub(super) async fn put_record(&self, r: Record) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(r))
            .send()
            .await
            .map_err(|e| unavailable("PutItem", e))?;
        Ok(())
    }

    pub(super) fn put(&self, item: Record, cond: Option<Expr>) -> Result<TransactWriteItem> {
        let b = conditioned!(
            Put::builder().table_name(&self.table).set_item(Some(item)),
            cond
        );
        Ok(TransactWriteItem::builder()
            .put(b.build().map_err(build_error)?)
            .build())
    }

    pub(super) fn update(&self, k: Record, mut expr: Expr) -> Result<TransactWriteItem> {
        let u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(k))
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .update_expression(expr.text)
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(u).build())
    }

    pub(super) fn delete(&self, k: Record, cond: Option<Expr>) -> Result<TransactWriteItem> {
        let b = conditioned!(
            Delete::builder().table_name(&self.table).set_key(Some(k)),
            cond
        );
        Ok(TransactWriteItem::builder()
            .delete(b.build().map_err(build_error)?)
            .build())
    }

    pub(super) async fn transact(&self, op: &str, ops: Vec<TransactWriteItem>) -> Result<Tx> {
        let count = ops.len();
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(ops))
            .send()
            .await
        {
            Ok(_) => Ok(Tx::Done),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    let mut codes: Vec<Option<String>> = c
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().filter(|c| *c != "None").map(str::to_string))
                        .collect();
                    if codes.is_empty() {
                        // No reasons given: read them from the message.
                        let msg = c.message().unwrap_or_default();
                        let code = ["ConditionalCheckFailed", "TransactionConflict"]
                            .into_iter()
                            .find(|code| msg.contains(code))
                            .unwrap_or("Unknown");
                        codes = vec![Some(code.to_string())];
                    }
                    tracing::debug!(op, operations = count, ?codes, "transaction cancelled");
                    Ok(Tx::Cancelled(codes))
                }
                _ => Err(unavailable(op, e)),
            },
        }
    }

    pub(super) async fn get(&self, k: Record) -> Result<Option<Record>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(k))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("GetItem", e))?;
        Ok(out.item)
    }

    /// Every record of these (distinct) keys that exists, read consistently, keyed by
    /// `(pk, sk)`.
    pub(super) async fn batch_get(
        &self,
        keys: Vec<Record>,
    ) -> Result<HashMap<(String, String), Record>> {
        let mut found = HashMap::new();
        for chunk in keys.chunks(MAX_BATCH_GET) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .map_err(build_error)?,
            );
            let mut round = 0u32;
            while let Some(request) = pending.take() {
                if round > 0 {
                    // Unprocessed keys: the table is throttling; back off a little.
                    if round > 8 {
                        return Err(StoreError::Unavailable(
                            "DynamoDB BatchGetItem: keys left unprocessed".into(),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(25 << round.min(5))).await;
                }
                round += 1;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| unavailable("BatchGetItem", e))?;
                if let Some(mut responses) = out.responses {
                    for r in responses.remove(&self.table).unwrap_or_default() {
                        let k = (get_s(&r, "pk")?.to_string(), get_s(&r, "sk")?.to_string());
                        found.insert(k, r);
                    }
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys().is_empty());
            }
        }
        Ok(found)
    }

    /// Query one partition, following pages until `limit` records passed `filter`.
    pub(super) async fn query(
        &self,
        pk: &str,
        after: Option<&str>,
        forward: bool,
        limit: Option<usize>,
        filter: Option<Expr>,
    ) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        let mut start: Option<Record> = None;
        loop {
            let mut expr = match after {
                Some(a) => Expr::new("#pk = :pk AND #sk > :after")
                    .name("#sk", "sk")
                    .value(":after", s(a)),
                None => Expr::new("#pk = :pk"),
            }
            .name("#pk", "pk")
            .value(":pk", s(pk));
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(expr.text.clone())
                .consistent_read(true)
                .scan_index_forward(forward)
                .set_exclusive_start_key(start.take());
            if let Some(f) = &filter {
                req = req.filter_expression(f.text.clone());
                for (k, v) in &f.names {
                    expr.names.insert(k.clone(), v.clone());
                }
                for (k, v) in &f.values {
                    expr.values.insert(k.clone(), v.clone());
                }
            }
            if let Some(l) = limit {
                req = req.limit((l - out.len()).clamp(1, 1000) as i32);
            }
            let page = req
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values())
                .send()
                .await
                .map_err(|e| unavailable("Query", e))?;
            out.extend(page.items.unwrap_or_default());
            if let Some(l) = limit {
                if out.len() >= l {
                    out.truncate(l);
                    return Ok(out);
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}

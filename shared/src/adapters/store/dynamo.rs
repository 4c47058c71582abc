//! The AWS store: one DynamoDB table, on-demand, key `pk` (S, hash) + `sk` (S, range),
//! TTL on `expires_at` (epoch seconds), no secondary index. It keeps the semantics of
//! [`super::sqlite`] and passes the same contract tests (`tests/tests/store_contract.rs`).
//!
//! | record | pk | sk | attributes |
//! |---|---|---|---|
//! | user | `USERS` | `{user}` | `created_at` (RFC 3339) |
//! | backend | `U#{user}` | `B#{name}` | `data` (backend JSON), `token_hash` |
//! | token index | `H#{sha256 hex}` | `H` | `data` (backend copy without its media server token), `user`, `name` |
//! | item | `I#{user}` | `{item id}` | `data` (item JSON), `version`, `bkeys` |
//! | lookup key | `K#{user}#{key}` (over 2 KiB: `K#{user}#~{sha256 hex}`) | `K` | `item` (owner id); for `B#` keys also `data`, `version`, `bkeys`: a copy of an item |
//! | outbox | `OUTBOX` | `{change id}` (time-ordered) | `data` (change JSON), `seq`, `claimed_until` (epoch ms, while a drain holds it) |
//! | delivery | `D#{user}` (`D-` when unclaimed) | `{delivery id}` (time-ordered) | `data` (without the body), `body` (deflated, binary), `expires_at` = received + 7 days (unclaimed: 1 day) |
//! | unclaimed count | `D-HOURS` | `{hour, epoch s}` | `kept` (counter, conditional on the cap), `expires_at` |
//! | task run | `RUNS` | `{run id}` | `data` |
//!
//! Round trips (DESIGN 5 and 8):
//! - `backend_by_token_hash`: one GetItem of the token index, which holds the whole
//!   backend but its media server token (only the backend record has that).
//! - `find_item`: one BatchGetItem of every candidate lookup key (consistent). The
//!   record of a backend's own item id (`B#{backend}#{id}`, always in a webhook) holds a
//!   full copy of the item with its version, so a webhook about a known item is read in
//!   one round trip; only a hit on a guid key alone (`G#`, `R#`) costs a second GetItem.
//! - `write_item`: one TransactWriteItems holding the item (conditional on its version,
//!   or on not existing), a fresh copy in every `B#` record it owns, its new lookup keys
//!   and the outbox record of its change. A new item's keys are conditional on not
//!   existing, so two concurrent creations cannot both succeed; on update a key another
//!   item owns is left to it (`if_not_exists`), so an update never fails on a key.
//! - `create_items_batch` (an import page of new items): the items' transactions packed
//!   into as few TransactWriteItems as fit (100 operations, no record twice); a
//!   cancelled one names the items whose keys were taken, and the rest go again.
//!   (BatchWriteItem cannot hold conditions, and a new item must not take a key.)
//!
//! Keeping copies fresh: an item lists in `bkeys` every `B#` record it has ever
//! written a copy into (a backend's item id can change, and the old record still points
//! at the item, as it does in SQLite); every write refreshes all of them. A copy counts
//! only when its item id equals the record's owner (`item`): a record whose key two
//! items claim may hold the other's copy, which the reader then ignores and reads the
//! owner instead. `bkeys` of the version a writer read is remembered from that read
//! (`find_item`, `get_item`, `list_items`), so the write needs no read of its own; when
//! it was read elsewhere, `write_item` reads the item once first.
//!
//! Transactions hold at most 100 operations: the item, its copies and the outbox record
//! always go in the one transaction; guid keys beyond that limit are written right after
//! (never failing, as on update).
//!
//! The outbox is one partition keyed by change id, which sorts by time (acknowledged
//! with one DeleteItem). A drain reads it oldest first with a limit and claims each
//! row with a conditional UpdateItem (`claimed_until`, a lease), so two overlapping
//! drains never publish the same change; a failed publish releases the claim. It
//! holds only what was not published yet, so it is normally empty.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, KeySchemaElement, KeyType,
    KeysAndAttributes, Put, ReturnValue, ScalarAttributeType, TimeToLiveSpecification,
    TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use super::body;
use crate::domain::model::{Backend, Delivery, Item, StateChange, User};
use crate::ports::store::{
    delivery_expiry, ItemQuery, ItemWrite, Page, Result, Store, StoreError, TaskRun, WriteOutcome,
    UNCLAIMED_PER_HOUR,
};

/// Most operations one TransactWriteItems may hold.
const MAX_TX_ITEMS: usize = 100;
/// What one TransactWriteItems may carry is 4 MB; batches of new items stay well under.
const MAX_TX_BYTES: usize = 3_000_000;
/// Most keys one BatchGetItem may ask for.
const MAX_BATCH_GET: usize = 100;
/// How many `(user, item)` entries the copy index keeps before starting over.
const COPY_INDEX_CAP: usize = 10_000;
/// Attempts of a backend write racing another write of the same backend.
const BACKEND_ATTEMPTS: usize = 5;

type Record = HashMap<String, AttributeValue>;

/// `(user, item id) -> (version, bkeys)` as last read or written by this process.
type CopyIndex = HashMap<(String, String), (u64, Vec<String>)>;

pub struct DynamoStore {
    client: Client,
    table: String,
    copies: Mutex<CopyIndex>,
}

// ---- keys ------------------------------------------------------------------------

const USERS: &str = "USERS";
const OUTBOX: &str = "OUTBOX";
const RUNS: &str = "RUNS";
/// Per clock hour, how many unclaimed deliveries were kept (sk: the hour, epoch s).
const UNCLAIMED_COUNT: &str = "D-HOURS";

fn backend_pk(user: &str) -> String {
    format!("U#{user}")
}

fn backend_sk(name: &str) -> String {
    format!("B#{name}")
}

fn token_pk(hash: &str) -> String {
    format!("H#{hash}")
}

fn item_pk(user: &str) -> String {
    format!("I#{user}")
}

/// DynamoDB refuses partition keys over 2048 bytes; a longer lookup key (a payload can
/// carry any item id) is stored under its SHA-256 instead.
const MAX_PK_BYTES: usize = 2048;

fn pointer_pk(user: &str, key: &str) -> String {
    let pk = format!("K#{user}#{key}");
    if pk.len() <= MAX_PK_BYTES {
        return pk;
    }
    use sha2::Digest;
    format!(
        "K#{user}#~{}",
        hex::encode(sha2::Sha256::digest(key.as_bytes()))
    )
}

fn delivery_pk(user: Option<&str>) -> String {
    match user {
        Some(u) => format!("D#{u}"),
        None => "D-".to_string(),
    }
}

fn is_backend_key(key: &str) -> bool {
    crate::domain::sync::LookupKey::decode(key).is_some_and(|k| k.is_backend())
}

fn key(pk: impl Into<String>, sk: impl Into<String>) -> Record {
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(pk.into())),
        ("sk".to_string(), AttributeValue::S(sk.into())),
    ])
}

// ---- attribute values ------------------------------------------------------------

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn list(v: &[String]) -> AttributeValue {
    AttributeValue::L(v.iter().map(|k| s(k.clone())).collect())
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn get_s<'a>(r: &'a Record, name: &str) -> Result<&'a str> {
    match r.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(corrupt(format!(
            "record {} lacks string attribute {name}",
            describe(r)
        ))),
    }
}

fn get_u64(r: &Record, name: &str) -> Result<u64> {
    match r.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| corrupt(format!("record {}: {name} = {v:?}", describe(r)))),
        _ => Err(corrupt(format!(
            "record {} lacks number attribute {name}",
            describe(r)
        ))),
    }
}

fn get_list(r: &Record, name: &str) -> Result<Vec<String>> {
    match r.get(name) {
        None => Ok(Vec::new()),
        Some(AttributeValue::L(v)) => v
            .iter()
            .map(|e| match e {
                AttributeValue::S(k) => Ok(k.clone()),
                _ => Err(corrupt(format!("record {}: {name} entry", describe(r)))),
            })
            .collect(),
        Some(_) => Err(corrupt(format!(
            "record {}: {name} is no list",
            describe(r)
        ))),
    }
}

/// The key of a record, for error messages (never its data: it may hold tokens).
fn describe(r: &Record) -> String {
    let part = |n: &str| match r.get(n) {
        Some(AttributeValue::S(v)) => v.as_str(),
        _ => "?",
    };
    format!("{}/{}", part("pk"), part("sk"))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(corrupt)
}

fn from_json<T: serde::de::DeserializeOwned>(r: &Record, name: &str) -> Result<T> {
    serde_json::from_str(get_s(r, name)?)
        .map_err(|e| corrupt(format!("record {}: {name}: {e}", describe(r))))
}

fn parse_time(r: &Record, name: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(get_s(r, name)?)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt(format!("record {}: {name}: {e}", describe(r))))
}

/// An item record (or copy) with its version and the `B#` records holding its copies.
fn parse_item(r: &Record) -> Result<(Item, Vec<String>)> {
    let mut item: Item = from_json(r, "data")?;
    item.version = get_u64(r, "version")?;
    Ok((item, get_list(r, "bkeys")?))
}

// ---- errors ----------------------------------------------------------------------

fn unavailable<E, R>(op: &str, e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(format!("DynamoDB {op}: {}", DisplayErrorContext(&e)))
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Unavailable(format!("DynamoDB request: {e}"))
}

/// What a TransactWriteItems did: went through, or was cancelled with one reason code
/// per operation (`None` for operations that were fine).
enum Tx {
    Done,
    Cancelled(Vec<Option<String>>),
}

impl Tx {
    /// A cancellation only by failed conditions or concurrent transactions on the same
    /// records: the caller's view was out of date.
    fn conflicted(codes: &[Option<String>]) -> bool {
        let mut failed = codes.iter().flatten().peekable();
        failed.peek().is_some()
            && failed.all(|c| c == "ConditionalCheckFailed" || c == "TransactionConflict")
    }
}

// ---- expressions -----------------------------------------------------------------

/// A condition or update expression with its placeholders.
#[derive(Default)]
struct Expr {
    text: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    fn new(text: impl Into<String>) -> Self {
        Expr {
            text: text.into(),
            ..Default::default()
        }
    }

    fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names
            .insert(placeholder.to_string(), attribute.to_string());
        self
    }

    fn value(mut self, placeholder: &str, v: AttributeValue) -> Self {
        self.values.insert(placeholder.to_string(), v);
        self
    }

    fn names(&mut self) -> Option<HashMap<String, String>> {
        Some(std::mem::take(&mut self.names)).filter(|m| !m.is_empty())
    }

    fn values(&mut self) -> Option<HashMap<String, AttributeValue>> {
        Some(std::mem::take(&mut self.values)).filter(|m| !m.is_empty())
    }
}

/// "The record does not exist yet."
fn absent() -> Expr {
    Expr::new("attribute_not_exists(#pk)").name("#pk", "pk")
}

/// "The record does not exist, or it belongs to this backend."
fn absent_or_of(user: &str, name: &str) -> Expr {
    Expr::new("attribute_not_exists(#pk) OR (#user = :user AND #name = :name)")
        .name("#pk", "pk")
        .name("#user", "user")
        .name("#name", "name")
        .value(":user", s(user))
        .value(":name", s(name))
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            copies: Mutex::new(HashMap::new()),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    // ---- the copy index ----------------------------------------------------------

    fn remember(&self, user: &str, id: &str, version: u64, bkeys: &[String]) {
        let Ok(mut map) = self.copies.lock() else {
            return;
        };
        if map.len() >= COPY_INDEX_CAP {
            map.clear();
        }
        let entry = map
            .entry((user.to_string(), id.to_string()))
            .or_insert_with(|| (version, bkeys.to_vec()));
        if entry.0 <= version {
            *entry = (version, bkeys.to_vec());
        }
    }

    fn remembered(&self, user: &str, id: &str, version: u64) -> Option<Vec<String>> {
        let map = self.copies.lock().ok()?;
        map.get(&(user.to_string(), id.to_string()))
            .filter(|(v, _)| *v == version)
            .map(|(_, b)| b.clone())
    }

    /// Count one more unclaimed delivery in its clock hour, unless the hour has
    /// reached the cap: one conditional UpdateItem. False when over the cap.
    async fn count_unclaimed(&self, d: &Delivery) -> Result<bool> {
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

    // ---- request helpers ---------------------------------------------------------

    fn put(&self, item: Record, cond: Option<Expr>) -> Result<TransactWriteItem> {
        let mut b = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some(mut c) = cond {
            b = b
                .set_expression_attribute_names(c.names())
                .set_expression_attribute_values(c.values())
                .condition_expression(c.text);
        }
        Ok(TransactWriteItem::builder()
            .put(b.build().map_err(build_error)?)
            .build())
    }

    fn update(&self, k: Record, mut expr: Expr) -> Result<TransactWriteItem> {
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

    fn delete(&self, k: Record, cond: Option<Expr>) -> Result<TransactWriteItem> {
        let mut b = Delete::builder().table_name(&self.table).set_key(Some(k));
        if let Some(mut c) = cond {
            b = b
                .set_expression_attribute_names(c.names())
                .set_expression_attribute_values(c.values())
                .condition_expression(c.text);
        }
        Ok(TransactWriteItem::builder()
            .delete(b.build().map_err(build_error)?)
            .build())
    }

    async fn transact(&self, op: &str, ops: Vec<TransactWriteItem>) -> Result<Tx> {
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

    async fn get(&self, k: Record) -> Result<Option<Record>> {
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
    async fn batch_get(&self, keys: Vec<Record>) -> Result<HashMap<(String, String), Record>> {
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
    async fn query(
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

    async fn load_item(&self, user: &str, id: &str) -> Result<Option<Item>> {
        let Some(r) = self.get(key(item_pk(user), id)).await? else {
            return Ok(None);
        };
        let (item, bkeys) = parse_item(&r)?;
        self.remember(user, &item.id, item.version, &bkeys);
        Ok(Some(item))
    }

    /// The item copy a `B#` record holds, if it is a copy of the record's owner.
    fn copy_in(&self, user: &str, r: &Record, owner: &str) -> Result<Option<Item>> {
        if !r.contains_key("data") {
            return Ok(None);
        }
        let (item, bkeys) = parse_item(r)?;
        if item.id != owner {
            return Ok(None);
        }
        self.remember(user, &item.id, item.version, &bkeys);
        Ok(Some(item))
    }

    async fn load_backend_hash(&self, user: &str, name: &str) -> Result<Option<String>> {
        self.get(key(backend_pk(user), backend_sk(name)))
            .await?
            .map(|r| get_s(&r, "token_hash").map(str::to_string))
            .transpose()
    }

    // ---- item writes -------------------------------------------------------------

    /// The lookup-key record of `k` pointing at `item`, with a copy for `B#` keys.
    fn pointer_put(&self, user: &str, k: &str, copy: &Copy<'_>) -> Record {
        let mut r = key(pointer_pk(user, k), "K");
        r.insert("item".into(), s(copy.id));
        if is_backend_key(k) {
            r.insert("data".into(), s(copy.data));
            r.insert("version".into(), n(copy.version));
            r.insert("bkeys".into(), list(copy.bkeys));
        }
        r
    }

    /// Take the lookup key `k` for `id` unless another item owns it; for `B#` keys
    /// (re)write the copy.
    fn pointer_update(&self, user: &str, k: &str, copy: &Copy<'_>) -> Result<TransactWriteItem> {
        let mut expr = Expr::new("SET #item = if_not_exists(#item, :id)")
            .name("#item", "item")
            .value(":id", s(copy.id));
        if is_backend_key(k) {
            expr.text
                .push_str(", #data = :data, #version = :version, #bkeys = :bkeys");
            expr = expr
                .name("#data", "data")
                .name("#version", "version")
                .name("#bkeys", "bkeys")
                .value(":data", s(copy.data))
                .value(":version", n(copy.version))
                .value(":bkeys", list(copy.bkeys));
        }
        self.update(key(pointer_pk(user, k), "K"), expr)
    }

    /// Hand the lookup key `k` from item `from` to the copy's item (a merge).
    fn pointer_take(
        &self,
        user: &str,
        k: &str,
        copy: &Copy<'_>,
        from: &str,
    ) -> Result<TransactWriteItem> {
        let cond = Expr::new("#item = :from")
            .name("#item", "item")
            .value(":from", s(from));
        self.put(self.pointer_put(user, k, copy), Some(cond))
    }

    /// The item's `B#` keys holding copies, as remembered from its read or read again;
    /// `None` when it is no longer at version `v`.
    async fn copies_of(&self, user: &str, id: &str, v: u64) -> Result<Option<Vec<String>>> {
        if let Some(b) = self.remembered(user, id, v) {
            return Ok(Some(b));
        }
        let Some(r) = self.get(key(item_pk(user), id)).await? else {
            return Ok(None);
        };
        let (stored, b) = parse_item(&r)?;
        Ok((stored.version == v).then_some(b))
    }

    fn outbox_put(&self, change: &StateChange) -> Result<TransactWriteItem> {
        let mut r = key(OUTBOX, change.id.clone());
        r.insert("data".into(), s(to_json(change)?));
        r.insert(
            "seq".into(),
            s(crate::domain::ids::time_ordered_id(Utc::now())),
        );
        self.put(r, None)
    }

    /// The one transaction of an item write: the item (conditional on its version, or
    /// on not existing), the outbox record, a copy in every `B#` record (`bkeys`, which
    /// the item's new `B#` keys join) and the new lookup keys; keys that do not fit are
    /// left for [`Self::write_overflow`].
    fn prepare(
        &self,
        w: &ItemWrite<'_>,
        mut bkeys: BTreeSet<String>,
        take: Option<&Taken<'_>>,
    ) -> Result<Prepared> {
        let user = w.user;
        let id = w.item.id.as_str();
        let new_keys: BTreeSet<&String> = w.new_keys.iter().collect();
        let version = w.expected_version.map_or(1, |v| v + 1);
        bkeys.extend(
            new_keys
                .iter()
                .filter(|k| is_backend_key(k))
                .map(|k| k.to_string()),
        );
        let bkeys: Vec<String> = bkeys.into_iter().collect();
        let mut stored = w.item.clone();
        stored.version = version;
        let data = to_json(&stored)?;
        let copy = Copy {
            id,
            data: &data,
            version,
            bkeys: &bkeys,
        };

        let mut records = vec![(item_pk(user), id.to_string())];
        let mut record = key(item_pk(user), id);
        record.insert("data".into(), s(data.clone()));
        record.insert("version".into(), n(version));
        record.insert("bkeys".into(), list(&bkeys));
        let cond = match w.expected_version {
            None => absent(),
            Some(v) => Expr::new("#version = :expected")
                .name("#version", "version")
                .value(":expected", n(v)),
        };
        let mut ops = vec![self.put(record, Some(cond))?];
        if let Some(change) = w.change {
            ops.push(self.outbox_put(change)?);
            records.push((OUTBOX.to_string(), change.id.clone()));
        }
        // Copies first: they must be in the transaction.
        let mut overflow = Vec::new();
        let mut taken = Vec::new();
        match w.expected_version {
            None => {
                let ordered = new_keys
                    .iter()
                    .filter(|k| is_backend_key(k))
                    .chain(new_keys.iter().filter(|k| !is_backend_key(k)));
                for k in ordered {
                    if ops.len() < MAX_TX_ITEMS {
                        ops.push(self.put(self.pointer_put(user, k, &copy), Some(absent()))?);
                        taken.push(k.as_str());
                    } else if is_backend_key(k) {
                        return Err(corrupt(format!("item {id} has too many backend ids")));
                    } else {
                        overflow.push(k.to_string());
                    }
                }
            }
            Some(_) => {
                if ops.len() + bkeys.len() > MAX_TX_ITEMS {
                    return Err(corrupt(format!("item {id} has too many backend ids")));
                }
                // A key of an absorbed item changes hands (conditional on its owner);
                // any other is taken if free.
                let pointer = |k: &str| match take {
                    Some(t) if t.keys.contains(k) => self.pointer_take(user, k, &copy, t.from),
                    _ => self.pointer_update(user, k, &copy),
                };
                for k in &bkeys {
                    ops.push(pointer(k)?);
                    taken.push(k.as_str());
                }
                for k in new_keys.iter().filter(|k| !is_backend_key(k)) {
                    if ops.len() < MAX_TX_ITEMS {
                        ops.push(pointer(k)?);
                        taken.push(k.as_str());
                    } else {
                        overflow.push(k.to_string());
                    }
                }
            }
        }
        records.extend(
            taken
                .into_iter()
                .map(|k| (pointer_pk(user, k), "K".to_string())),
        );
        // The item's JSON goes into the item record and every copy.
        let bytes = data.len() * (1 + bkeys.len()) + 512 * ops.len();
        Ok(Prepared {
            ops,
            overflow,
            records,
            bytes,
            data,
            version,
            bkeys,
        })
    }

    /// Lookup keys that did not fit into the item's transaction: taken if free, after it.
    async fn write_overflow(&self, user: &str, keys: &[String], copy: &Copy<'_>) -> Result<()> {
        for chunk in keys.chunks(MAX_TX_ITEMS) {
            let ops = chunk
                .iter()
                .map(|k| self.pointer_update(user, k, copy))
                .collect::<Result<Vec<_>>>()?;
            match self.transact("TransactWriteItems", ops).await? {
                Tx::Done => {}
                Tx::Cancelled(codes) => {
                    return Err(StoreError::Unavailable(format!(
                        "DynamoDB TransactWriteItems (extra lookup keys) cancelled: {codes:?}"
                    )))
                }
            }
        }
        Ok(())
    }
}

/// What an item write puts into each `B#` record.
struct Copy<'a> {
    id: &'a str,
    data: &'a str,
    version: u64,
    bkeys: &'a [String],
}

/// Lookup keys an item write takes over from an item it absorbs.
struct Taken<'a> {
    from: &'a str,
    keys: BTreeSet<String>,
}

/// An item write ready to send (see [`DynamoStore::prepare`]).
struct Prepared {
    ops: Vec<TransactWriteItem>,
    /// Lookup keys that did not fit into the transaction.
    overflow: Vec<String>,
    /// `(pk, sk)` of every record the transaction writes.
    records: Vec<(String, String)>,
    /// Roughly how many bytes the transaction sends.
    bytes: usize,
    data: String,
    version: u64,
    bkeys: Vec<String>,
}

/// Create the table the store expects (the SAM template declares the same): key
/// `pk`/`sk`, on-demand, TTL on `expires_at`. An existing table is left as it is.
pub async fn create_table(client: &Client, table: &str) -> Result<()> {
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(build_error)
    };
    let schema = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(build_error)
    };
    let created = client
        .create_table()
        .table_name(table)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .key_schema(schema("pk", KeyType::Hash)?)
        .key_schema(schema("sk", KeyType::Range)?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_resource_in_use_exception()) =>
        {
            tracing::info!(table, "table exists");
        }
        Err(e) => return Err(unavailable("CreateTable", e)),
    }
    // Wait until it is usable (immediately on moto, seconds on AWS).
    for _ in 0..120 {
        let d = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| unavailable("DescribeTable", e))?;
        let status = d.table.and_then(|t| t.table_status);
        if status == Some(aws_sdk_dynamodb::types::TableStatus::Active) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ttl = TimeToLiveSpecification::builder()
        .attribute_name("expires_at")
        .enabled(true)
        .build()
        .map_err(build_error)?;
    if let Err(e) = client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(ttl)
        .send()
        .await
    {
        // Enabling it twice is refused; anything else is a real failure.
        let text = DisplayErrorContext(&e).to_string();
        if !text.contains("already enabled") {
            return Err(unavailable("UpdateTimeToLive", e));
        }
    }
    Ok(())
}

#[async_trait]
impl Store for DynamoStore {
    async fn put_user(&self, name: &str, now: DateTime<Utc>) -> Result<(User, bool)> {
        let mut expr = Expr::new("SET #c = if_not_exists(#c, :now)")
            .name("#c", "created_at")
            .value(":now", s(now.to_rfc3339()));
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(USERS, name)))
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .update_expression(expr.text)
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| unavailable("UpdateItem", e))?;
        match out.attributes.filter(|a| a.contains_key("created_at")) {
            Some(old) => Ok((
                User {
                    name: name.to_string(),
                    created_at: parse_time(&old, "created_at")?,
                },
                false,
            )),
            None => Ok((
                User {
                    name: name.to_string(),
                    created_at: now,
                },
                true,
            )),
        }
    }

    async fn get_user(&self, name: &str) -> Result<Option<User>> {
        self.get(key(USERS, name))
            .await?
            .map(|r| {
                Ok(User {
                    name: name.to_string(),
                    created_at: parse_time(&r, "created_at")?,
                })
            })
            .transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.query(USERS, None, true, None, None)
            .await?
            .iter()
            .map(|r| {
                Ok(User {
                    name: get_s(r, "sk")?.to_string(),
                    created_at: parse_time(r, "created_at")?,
                })
            })
            .collect()
    }

    async fn put_backend(&self, backend: &Backend) -> Result<()> {
        let data = to_json(backend)?;
        // The webhook path never needs the media server token: only the backend
        // record holds it.
        let index_data = to_json(&Backend {
            token: String::new(),
            ..backend.clone()
        })?;
        let hash = backend.webhook_token_hash.as_str();
        for _ in 0..BACKEND_ATTEMPTS {
            let old = self.load_backend_hash(&backend.user, &backend.name).await?;
            let mut rec = key(backend_pk(&backend.user), backend_sk(&backend.name));
            rec.insert("data".into(), s(data.clone()));
            rec.insert("token_hash".into(), s(hash));
            let cond = match &old {
                None => absent(),
                Some(h) => Expr::new("#th = :old")
                    .name("#th", "token_hash")
                    .value(":old", s(h.clone())),
            };
            let mut index = key(token_pk(hash), "H");
            index.insert("data".into(), s(index_data.clone()));
            index.insert("user".into(), s(backend.user.clone()));
            index.insert("name".into(), s(backend.name.clone()));
            let mut ops = vec![
                self.put(rec, Some(cond))?,
                self.put(index, Some(absent_or_of(&backend.user, &backend.name)))?,
            ];
            if let Some(h) = old.as_deref().filter(|h| *h != hash) {
                ops.push(self.delete(
                    key(token_pk(h), "H"),
                    Some(absent_or_of(&backend.user, &backend.name)),
                )?);
            }
            match self.transact("TransactWriteItems", ops).await? {
                Tx::Done => return Ok(()),
                Tx::Cancelled(codes) if !Tx::conflicted(&codes) => {
                    return Err(StoreError::Unavailable(format!(
                        "DynamoDB TransactWriteItems cancelled: {codes:?}"
                    )));
                }
                Tx::Cancelled(codes) => {
                    if codes.get(1).and_then(|c| c.as_deref()) == Some("ConditionalCheckFailed") {
                        return Err(StoreError::Unavailable(
                            "webhook token hash already belongs to another backend".into(),
                        ));
                    }
                    tracing::debug!(user = %backend.user, backend = %backend.name, "backend changed meanwhile; again");
                }
            }
        }
        Err(StoreError::Unavailable(
            "backend keeps changing concurrently; try again".into(),
        ))
    }

    async fn get_backend(&self, user: &str, name: &str) -> Result<Option<Backend>> {
        self.get(key(backend_pk(user), backend_sk(name)))
            .await?
            .map(|r| from_json(&r, "data"))
            .transpose()
    }

    async fn list_backends(&self, user: &str) -> Result<Vec<Backend>> {
        self.query(&backend_pk(user), None, true, None, None)
            .await?
            .iter()
            .filter(|r| get_s(r, "sk").is_ok_and(|sk| sk.starts_with("B#")))
            .map(|r| from_json(r, "data"))
            .collect()
    }

    async fn delete_backend(&self, user: &str, name: &str) -> Result<bool> {
        for _ in 0..BACKEND_ATTEMPTS {
            let Some(hash) = self.load_backend_hash(user, name).await? else {
                return Ok(false);
            };
            let ops = vec![
                self.delete(
                    key(backend_pk(user), backend_sk(name)),
                    Some(
                        Expr::new("#th = :h")
                            .name("#th", "token_hash")
                            .value(":h", s(hash.clone())),
                    ),
                )?,
                self.delete(key(token_pk(&hash), "H"), Some(absent_or_of(user, name)))?,
            ];
            match self.transact("TransactWriteItems", ops).await? {
                Tx::Done => return Ok(true),
                Tx::Cancelled(codes) if Tx::conflicted(&codes) => {
                    tracing::debug!(user, backend = name, "backend changed meanwhile; again");
                }
                Tx::Cancelled(codes) => {
                    return Err(StoreError::Unavailable(format!(
                        "DynamoDB TransactWriteItems cancelled: {codes:?}"
                    )))
                }
            }
        }
        Err(StoreError::Unavailable(
            "backend keeps changing concurrently; try again".into(),
        ))
    }

    async fn backend_by_token_hash(&self, hash: &str) -> Result<Option<Backend>> {
        let Some(r) = self.get(key(token_pk(hash), "H")).await? else {
            return Ok(None);
        };
        let backend: Backend = from_json(&r, "data")?;
        if backend.webhook_token_hash != hash {
            return Err(corrupt(format!(
                "token index {} holds another backend's copy",
                describe(&r)
            )));
        }
        Ok(Some(backend))
    }

    async fn find_item(&self, user: &str, keys: &[String]) -> Result<Option<Item>> {
        let unique: BTreeSet<&String> = keys.iter().collect();
        if unique.is_empty() {
            return Ok(None);
        }
        let pointers = self
            .batch_get(
                unique
                    .iter()
                    .map(|k| key(pointer_pk(user, k), "K"))
                    .collect(),
            )
            .await?;
        for k in keys {
            let Some(r) = pointers.get(&(pointer_pk(user, k), "K".to_string())) else {
                continue;
            };
            let owner = get_s(r, "item")?;
            if is_backend_key(k) {
                if let Some(item) = self.copy_in(user, r, owner)? {
                    return Ok(Some(item));
                }
            }
            if let Some(item) = self.load_item(user, owner).await? {
                return Ok(Some(item));
            }
        }
        Ok(None)
    }

    async fn get_item(&self, user: &str, id: &str) -> Result<Option<Item>> {
        self.load_item(user, id).await
    }

    /// One BatchGetItem for all pointers (as [`Store::find_item`]); each distinct owner
    /// then from a `B#` copy or its record: a report reaching one item costs the same.
    async fn find_items(&self, user: &str, keys: &[String]) -> Result<Vec<Item>> {
        let unique: BTreeSet<&String> = keys.iter().collect();
        if unique.is_empty() {
            return Ok(Vec::new());
        }
        let pointers = self
            .batch_get(
                unique
                    .iter()
                    .map(|k| key(pointer_pk(user, k), "K"))
                    .collect(),
            )
            .await?;
        let mut out: Vec<Item> = Vec::new();
        for k in keys {
            let Some(r) = pointers.get(&(pointer_pk(user, k), "K".to_string())) else {
                continue;
            };
            let owner = get_s(r, "item")?;
            if out.iter().any(|i| i.id == owner) {
                continue;
            }
            let copy = if is_backend_key(k) {
                self.copy_in(user, r, owner)?
            } else {
                None
            };
            let item = match copy {
                Some(item) => Some(item),
                None => self.load_item(user, owner).await?,
            };
            out.extend(item);
        }
        Ok(out)
    }

    async fn list_items(
        &self,
        user: &str,
        query: &ItemQuery,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Item>> {
        let limit = limit.clamp(1, 1000);
        let after = cursor.filter(|c| !c.is_empty());
        let mut items = Vec::with_capacity(limit + 1);
        let more = match query {
            ItemQuery::All => {
                let records = self
                    .query(&item_pk(user), after, true, Some(limit + 1), None)
                    .await?;
                let more = records.len() > limit;
                for r in records.iter().take(limit) {
                    let (item, bkeys) = parse_item(r)?;
                    self.remember(user, &item.id, item.version, &bkeys);
                    items.push(item);
                }
                more
            }
            ItemQuery::Keys(keys) => {
                let unique: BTreeSet<&String> = keys.iter().collect();
                let pointers = self
                    .batch_get(
                        unique
                            .iter()
                            .map(|k| key(pointer_pk(user, k), "K"))
                            .collect(),
                    )
                    .await?;
                let mut ids = BTreeSet::new();
                for r in pointers.values() {
                    let id = get_s(r, "item")?;
                    if after.is_none_or(|a| id > a) {
                        ids.insert(id.to_string());
                    }
                }
                let more = ids.len() > limit;
                let wanted: Vec<&String> = ids.iter().take(limit).collect();
                let records = self
                    .batch_get(wanted.iter().map(|id| key(item_pk(user), *id)).collect())
                    .await?;
                let pk = item_pk(user);
                for id in wanted {
                    if let Some(r) = records.get(&(pk.clone(), id.clone())) {
                        let (item, bkeys) = parse_item(r)?;
                        self.remember(user, &item.id, item.version, &bkeys);
                        items.push(item);
                    }
                }
                more
            }
        };
        let cursor = if more {
            items.last().map(|i| i.id.clone())
        } else {
            None
        };
        Ok(Page { items, cursor })
    }

    async fn write_item(&self, w: ItemWrite<'_>) -> Result<WriteOutcome> {
        let (user, id) = (w.user, w.item.id.as_str());
        let bkeys = match w.expected_version {
            None => BTreeSet::new(),
            // Read elsewhere: learn which records hold copies.
            Some(v) => match self.copies_of(user, id, v).await? {
                Some(b) => b.into_iter().collect(),
                None => return Ok(WriteOutcome::Conflict),
            },
        };
        let p = self.prepare(&w, bkeys, None)?;
        match self.transact("TransactWriteItems", p.ops).await? {
            Tx::Done => {}
            Tx::Cancelled(codes) if Tx::conflicted(&codes) => return Ok(WriteOutcome::Conflict),
            Tx::Cancelled(codes) => {
                return Err(StoreError::Unavailable(format!(
                    "DynamoDB TransactWriteItems cancelled: {codes:?}"
                )))
            }
        }
        self.remember(user, id, p.version, &p.bkeys);
        if !p.overflow.is_empty() {
            tracing::info!(
                user,
                item = id,
                keys = p.overflow.len(),
                "lookup keys beyond one transaction"
            );
            let copy = Copy {
                id,
                data: &p.data,
                version: p.version,
                bkeys: &p.bkeys,
            };
            self.write_overflow(user, &p.overflow, &copy).await?;
        }
        Ok(WriteOutcome::Written)
    }

    /// One transaction: the kept item (on its version), the absorbed item deleted (on
    /// its version), each lookup key the absorbed item owns handed over (on its owner),
    /// the kept item's copies refreshed, its new keys taken if free, the change.
    async fn absorb_item(&self, w: ItemWrite<'_>, absorbed: &Item) -> Result<WriteOutcome> {
        let (user, id) = (w.user, w.item.id.as_str());
        let Some(v) = w.expected_version else {
            return Ok(WriteOutcome::Conflict);
        };
        let Some(ours) = self.copies_of(user, id, v).await? else {
            return Ok(WriteOutcome::Conflict);
        };
        let Some(theirs) = self.copies_of(user, &absorbed.id, absorbed.version).await? else {
            return Ok(WriteOutcome::Conflict);
        };
        // Which of the absorbed item's keys it really owns (another item may own some).
        let candidates: BTreeSet<String> = crate::domain::sync::item_keys(absorbed)
            .into_iter()
            .chain(theirs.iter().cloned())
            .collect();
        let pointers = self
            .batch_get(
                candidates
                    .iter()
                    .map(|k| key(pointer_pk(user, k), "K"))
                    .collect(),
            )
            .await?;
        let owned: BTreeSet<String> = candidates
            .into_iter()
            .filter(|k| {
                pointers
                    .get(&(pointer_pk(user, k), "K".to_string()))
                    .and_then(|r| get_s(r, "item").ok())
                    == Some(absorbed.id.as_str())
            })
            .collect();
        let mut bkeys: BTreeSet<String> = ours.into_iter().collect();
        bkeys.extend(owned.iter().filter(|k| is_backend_key(k)).cloned());
        let mut new_keys: Vec<String> = w
            .new_keys
            .iter()
            .filter(|k| !bkeys.contains(*k))
            .cloned()
            .collect();
        new_keys.extend(
            owned
                .iter()
                .filter(|k| !is_backend_key(k) && !w.new_keys.iter().any(|n| n == *k))
                .cloned(),
        );
        let write = ItemWrite {
            new_keys: &new_keys,
            ..w
        };
        let take = Taken {
            from: &absorbed.id,
            keys: owned,
        };
        let mut p = self.prepare(&write, bkeys, Some(&take))?;
        if !p.overflow.is_empty() || p.ops.len() + 1 > MAX_TX_ITEMS {
            // Too many keys for one step: leave the two apart rather than half merge.
            tracing::info!(user, item = id, "merge beyond one transaction; not merged");
            return self.write_item(w).await;
        }
        let gone = Expr::new("#version = :expected")
            .name("#version", "version")
            .value(":expected", n(absorbed.version));
        p.ops
            .push(self.delete(key(item_pk(user), &absorbed.id), Some(gone))?);
        match self.transact("TransactWriteItems", p.ops).await? {
            Tx::Done => {}
            Tx::Cancelled(codes) if Tx::conflicted(&codes) => return Ok(WriteOutcome::Conflict),
            Tx::Cancelled(codes) => {
                return Err(StoreError::Unavailable(format!(
                    "DynamoDB TransactWriteItems (merge) cancelled: {codes:?}"
                )))
            }
        }
        self.remember(user, id, p.version, &p.bkeys);
        Ok(WriteOutcome::Written)
    }

    /// New items packed into as few transactions as fit (100 operations, no record
    /// twice): an import page of new items costs a few round trips, not one per item.
    /// A cancelled transaction names the items whose key was taken; those are
    /// conflicts and the rest go again.
    async fn create_items_batch(&self, writes: &[ItemWrite<'_>]) -> Result<Vec<WriteOutcome>> {
        let mut out: Vec<Option<WriteOutcome>> = vec![None; writes.len()];
        let mut prepared = Vec::with_capacity(writes.len());
        for w in writes {
            let create = ItemWrite {
                expected_version: None,
                ..*w
            };
            prepared.push(self.prepare(&create, BTreeSet::new(), None)?);
        }
        // Greedy groups in batch order, so an earlier item wins a key a later one wants.
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut group: Vec<usize> = Vec::new();
        let (mut size, mut bytes) = (0, 0);
        let mut records: BTreeSet<&(String, String)> = BTreeSet::new();
        for (i, p) in prepared.iter().enumerate() {
            let clash = p.records.iter().any(|r| records.contains(r));
            let full = size + p.ops.len() > MAX_TX_ITEMS || bytes + p.bytes > MAX_TX_BYTES;
            // An item with keys beyond one transaction goes alone (see `write_item`).
            let alone = !p.overflow.is_empty();
            if !group.is_empty() && (clash || full || alone) {
                groups.push(std::mem::take(&mut group));
                records.clear();
                (size, bytes) = (0, 0);
            }
            group.push(i);
            size += if alone { MAX_TX_ITEMS } else { p.ops.len() };
            bytes += p.bytes;
            records.extend(p.records.iter());
        }
        if !group.is_empty() {
            groups.push(group);
        }
        let mut prepared: Vec<Option<Prepared>> = prepared.into_iter().map(Some).collect();
        for mut group in groups {
            while group.len() > 1 {
                let mut ops = Vec::new();
                let mut owner = Vec::new();
                for &i in &group {
                    let p = prepared[i].as_ref().ok_or_else(|| corrupt("batch item"))?;
                    ops.extend(p.ops.iter().cloned());
                    owner.extend(std::iter::repeat_n(i, p.ops.len()));
                }
                match self.transact("TransactWriteItems", ops).await? {
                    Tx::Done => {
                        for &i in &group {
                            if let Some(p) = prepared[i].take() {
                                self.remember(writes[i].user, &writes[i].item.id, 1, &p.bkeys);
                            }
                            out[i] = Some(WriteOutcome::Written);
                        }
                        group.clear();
                    }
                    Tx::Cancelled(codes) if Tx::conflicted(&codes) => {
                        let taken: BTreeSet<usize> = codes
                            .iter()
                            .zip(&owner)
                            .filter(|(c, _)| c.as_deref() == Some("ConditionalCheckFailed"))
                            .map(|(_, i)| *i)
                            .collect();
                        if taken.is_empty() {
                            // Only concurrent transactions in the way: one by one.
                            break;
                        }
                        for &i in &taken {
                            out[i] = Some(WriteOutcome::Conflict);
                        }
                        group.retain(|i| !taken.contains(i));
                    }
                    Tx::Cancelled(codes) => {
                        return Err(StoreError::Unavailable(format!(
                            "DynamoDB TransactWriteItems cancelled: {codes:?}"
                        )))
                    }
                }
            }
            for i in group {
                out[i] = Some(
                    self.write_item(ItemWrite {
                        expected_version: None,
                        ..writes[i]
                    })
                    .await?,
                );
            }
        }
        out.into_iter()
            .map(|o| o.ok_or_else(|| corrupt("batch item without outcome")))
            .collect()
    }

    async fn record_delivery(&self, d: &Delivery) -> Result<()> {
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
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(r))
            .send()
            .await
            .map_err(|e| unavailable("PutItem", e))?;
        Ok(())
    }

    async fn list_deliveries(&self, user: Option<&str>, limit: usize) -> Result<Vec<Delivery>> {
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

    async fn pending_changes(&self, limit: usize) -> Result<Vec<StateChange>> {
        // Change ids sort by time: the partition reads oldest first.
        self.query(OUTBOX, None, true, Some(limit.clamp(1, 1000)), None)
            .await?
            .iter()
            .map(|r| from_json(r, "data"))
            .collect()
    }

    async fn claim_changes(
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

    async fn release_change(&self, id: &str) -> Result<()> {
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

    async fn ack_change(&self, id: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(OUTBOX, id)))
            .send()
            .await
            .map_err(|e| unavailable("DeleteItem", e))?;
        Ok(())
    }

    async fn record_task_run(&self, run: &TaskRun) -> Result<()> {
        let mut r = key(RUNS, run.id.clone());
        r.insert("data".into(), s(to_json(run)?));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(r))
            .send()
            .await
            .map_err(|e| unavailable("PutItem", e))?;
        Ok(())
    }

    async fn list_task_runs(&self, limit: usize) -> Result<Vec<TaskRun>> {
        self.query(RUNS, None, false, Some(limit.clamp(1, 1000)), None)
            .await?
            .iter()
            .map(|r| from_json(r, "data"))
            .collect()
    }
}

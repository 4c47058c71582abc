//! The embedded store: one SQLite file (bundled SQLite, WAL) under the data dir.
//!
//! `cargo lambda watch` runs every function as its own process, so several processes
//! share the file: WAL lets readers and one writer overlap, `busy_timeout` makes a
//! writer wait its turn, and every write transaction starts `IMMEDIATE` so two
//! writers never deadlock upgrading a read lock. Version checks inside those
//! transactions give the same conditional-write semantics as DynamoDB.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::body;
use crate::domain::model::{Backend, Delivery, Item, StateChange, User};
use crate::ports::store::{
    delivery_expiry, ItemQuery, ItemWrite, Page, Result, Store, StoreError, TaskRun, WriteOutcome,
    UNCLAIMED_PER_HOUR,
};

mod items;

use items::{insert_item, load_item, put_outbox, update_item};

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users(
    name TEXT PRIMARY KEY, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS backends(
    user TEXT NOT NULL, name TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL, PRIMARY KEY(user, name));
CREATE TABLE IF NOT EXISTS items(
    user TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY(user, id));
CREATE TABLE IF NOT EXISTS item_keys(
    user TEXT NOT NULL, key TEXT NOT NULL, item_id TEXT NOT NULL,
    PRIMARY KEY(user, key));
CREATE TABLE IF NOT EXISTS deliveries(
    id TEXT PRIMARY KEY, user TEXT, expires_at INTEGER NOT NULL, data TEXT NOT NULL,
    body BLOB);
CREATE INDEX IF NOT EXISTS deliveries_by_user ON deliveries(user, id);
CREATE TABLE IF NOT EXISTS outbox(
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, data TEXT NOT NULL,
    claimed_until INTEGER);
CREATE INDEX IF NOT EXISTS outbox_by_seq ON outbox(seq);
CREATE TABLE IF NOT EXISTS task_runs(
    id TEXT PRIMARY KEY, data TEXT NOT NULL);
";

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(corrupt)
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(corrupt)
}

impl SqliteStore {
    /// Open (and create) the store file.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(unavailable)?;
        Self::init(conn)
    }

    /// A private in-memory store, for tests and benchmarks.
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory().map_err(unavailable)?)
    }

    fn init(conn: Connection) -> Result<Self> {
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(unavailable)?;
        // journal_mode answers with a row, so it is read rather than executed.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(unavailable)?;
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;")
            .map_err(unavailable)?;
        conn.execute_batch(SCHEMA).map_err(unavailable)?;
        // Data dirs from before compressed bodies: add the column (bodies already in
        // `data` are still read from there).
        // Data dirs from before compressed bodies (`deliveries.body`: bodies already in
        // `data` are still read from there) and before outbox claims: add the columns.
        add_column(&conn, "deliveries", "body", "BLOB")?;
        add_column(&conn, "outbox", "claimed_until", "INTEGER")?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut guard = self
            .conn
            .lock()
            .map_err(|_| StoreError::Unavailable("store lock poisoned".into()))?;
        f(&mut guard)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn put_user(&self, name: &str, now: DateTime<Utc>) -> Result<(User, bool)> {
        self.with(|conn| {
            let n = conn
                .execute(
                    "INSERT OR IGNORE INTO users(name, created_at) VALUES (?1, ?2)",
                    params![name, now.to_rfc3339()],
                )
                .map_err(unavailable)?;
            let created_at: String = conn
                .query_row(
                    "SELECT created_at FROM users WHERE name = ?1",
                    params![name],
                    |r| r.get(0),
                )
                .map_err(unavailable)?;
            let created_at = DateTime::parse_from_rfc3339(&created_at)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?
                .with_timezone(&Utc);
            Ok((
                User {
                    name: name.to_string(),
                    created_at,
                },
                n == 1,
            ))
        })
    }

    async fn get_user(&self, name: &str) -> Result<Option<User>> {
        self.with(|conn| {
            let row: Option<String> = conn
                .query_row(
                    "SELECT created_at FROM users WHERE name = ?1",
                    params![name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            row.map(|c| {
                Ok(User {
                    name: name.to_string(),
                    created_at: DateTime::parse_from_rfc3339(&c)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?
                        .with_timezone(&Utc),
                })
            })
            .transpose()
        })
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.with(|conn| {
            let mut st = conn
                .prepare("SELECT name, created_at FROM users ORDER BY name")
                .map_err(unavailable)?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for row in rows {
                let (name, c) = row.map_err(unavailable)?;
                out.push(User {
                    name,
                    created_at: DateTime::parse_from_rfc3339(&c)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?
                        .with_timezone(&Utc),
                });
            }
            Ok(out)
        })
    }

    async fn put_backend(&self, backend: &Backend) -> Result<()> {
        self.with(|conn| {
            conn.execute(
                "INSERT INTO backends(user, name, token_hash, data) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(user, name) DO UPDATE SET token_hash = excluded.token_hash,
                 data = excluded.data",
                params![
                    backend.user,
                    backend.name,
                    backend.webhook_token_hash,
                    to_json(backend)?
                ],
            )
            .map_err(unavailable)?;
            Ok(())
        })
    }

    async fn get_backend(&self, user: &str, name: &str) -> Result<Option<Backend>> {
        self.with(|conn| {
            let row: Option<String> = conn
                .query_row(
                    "SELECT data FROM backends WHERE user = ?1 AND name = ?2",
                    params![user, name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            row.map(|d| from_json(&d)).transpose()
        })
    }

    async fn list_backends(&self, user: &str) -> Result<Vec<Backend>> {
        self.with(|conn| {
            let mut st = conn
                .prepare("SELECT data FROM backends WHERE user = ?1 ORDER BY name")
                .map_err(unavailable)?;
            let rows = st
                .query_map(params![user], |r| r.get::<_, String>(0))
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(from_json(&row.map_err(unavailable)?)?);
            }
            Ok(out)
        })
    }

    async fn delete_backend(&self, user: &str, name: &str) -> Result<bool> {
        self.with(|conn| {
            let n = conn
                .execute(
                    "DELETE FROM backends WHERE user = ?1 AND name = ?2",
                    params![user, name],
                )
                .map_err(unavailable)?;
            Ok(n > 0)
        })
    }

    async fn backend_by_token_hash(&self, hash: &str) -> Result<Option<Backend>> {
        self.with(|conn| {
            let row: Option<String> = conn
                .prepare_cached("SELECT data FROM backends WHERE token_hash = ?1")
                .map_err(unavailable)?
                .query_row(params![hash], |r| r.get(0))
                .optional()
                .map_err(unavailable)?;
            // As the DynamoDB token index: the webhook path gets no media server token.
            row.map(|d| {
                from_json::<Backend>(&d).map(|b| Backend {
                    token: String::new(),
                    ..b
                })
            })
            .transpose()
        })
    }

    async fn find_item(&self, user: &str, keys: &[String]) -> Result<Option<Item>> {
        self.with(|conn| {
            let mut st = conn
                .prepare_cached("SELECT item_id FROM item_keys WHERE user = ?1 AND key = ?2")
                .map_err(unavailable)?;
            for k in keys {
                let id: Option<String> = st
                    .query_row(params![user, k], |r| r.get(0))
                    .optional()
                    .map_err(unavailable)?;
                if let Some(id) = id {
                    if let Some(item) = load_item(conn, user, &id)? {
                        return Ok(Some(item));
                    }
                }
            }
            Ok(None)
        })
    }

    async fn get_item(&self, user: &str, id: &str) -> Result<Option<Item>> {
        self.with(|conn| load_item(conn, user, id))
    }

    async fn find_items(&self, user: &str, keys: &[String]) -> Result<Vec<Item>> {
        self.with(|conn| {
            let mut st = conn
                .prepare_cached("SELECT item_id FROM item_keys WHERE user = ?1 AND key = ?2")
                .map_err(unavailable)?;
            let mut out: Vec<Item> = Vec::new();
            for k in keys {
                let id: Option<String> = st
                    .query_row(params![user, k], |r| r.get(0))
                    .optional()
                    .map_err(unavailable)?;
                let Some(id) = id.filter(|id| !out.iter().any(|i| &i.id == id)) else {
                    continue;
                };
                if let Some(item) = load_item(conn, user, &id)? {
                    out.push(item);
                }
            }
            Ok(out)
        })
    }

    async fn list_items(
        &self,
        user: &str,
        query: &ItemQuery,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Item>> {
        let limit = limit.clamp(1, 1000);
        self.with(|conn| {
            let after = cursor.unwrap_or("");
            let ids: Vec<String> = match query {
                ItemQuery::All => {
                    let mut st = conn
                        .prepare_cached(
                            "SELECT id FROM items WHERE user = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                        )
                        .map_err(unavailable)?;
                    let rows = st
                        .query_map(params![user, after, (limit + 1) as i64], |r| r.get(0))
                        .map_err(unavailable)?;
                    rows.collect::<rusqlite::Result<_>>().map_err(unavailable)?
                }
                ItemQuery::Keys(keys) => {
                    let mut st = conn
                        .prepare_cached(
                            "SELECT item_id FROM item_keys WHERE user = ?1 AND key = ?2",
                        )
                        .map_err(unavailable)?;
                    let mut ids = std::collections::BTreeSet::new();
                    for k in keys {
                        if let Some(id) = st
                            .query_row(params![user, k], |r| r.get::<_, String>(0))
                            .optional()
                            .map_err(unavailable)?
                        {
                            if id.as_str() > after {
                                ids.insert(id);
                            }
                        }
                    }
                    ids.into_iter().take(limit + 1).collect()
                }
            };
            let more = ids.len() > limit;
            let mut items = Vec::with_capacity(limit);
            for id in ids.iter().take(limit) {
                if let Some(item) = load_item(conn, user, id)? {
                    items.push(item);
                }
            }
            let cursor = if more {
                items.last().map(|i| i.id.clone())
            } else {
                None
            };
            Ok(Page { items, cursor })
        })
    }

    async fn write_item(&self, w: ItemWrite<'_>) -> Result<WriteOutcome> {
        self.with(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let written = match w.expected_version {
                None => insert_item(&tx, w.user, w.item, w.new_keys)?,
                Some(v) => update_item(&tx, &w, v)?,
            };
            commit_write(tx, written, w.change)
        })
    }

    async fn absorb_item(&self, w: ItemWrite<'_>, absorbed: &Item) -> Result<WriteOutcome> {
        let Some(v) = w.expected_version else {
            // Only a stored item absorbs another.
            return Ok(WriteOutcome::Conflict);
        };
        self.with(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let gone = tx
                .prepare_cached("DELETE FROM items WHERE user = ?1 AND id = ?2 AND version = ?3")
                .map_err(unavailable)?
                .execute(params![w.user, absorbed.id, absorbed.version as i64])
                .map_err(unavailable)?;
            if gone == 0 {
                return Ok(WriteOutcome::Conflict);
            }
            tx.prepare_cached("UPDATE item_keys SET item_id = ?3 WHERE user = ?1 AND item_id = ?2")
                .map_err(unavailable)?
                .execute(params![w.user, absorbed.id, w.item.id])
                .map_err(unavailable)?;
            // Dropping `tx` without commit rolls the delete back.
            let written = update_item(&tx, &w, v)?;
            commit_write(tx, written, w.change)
        })
    }

    async fn create_items_batch(&self, writes: &[ItemWrite<'_>]) -> Result<Vec<WriteOutcome>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        // One transaction for the whole batch: a page of an import costs one commit
        // (one fsync at most) instead of one per item. Each item still goes in with all
        // its keys or not at all (`insert_item` checks every key before writing).
        self.with(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let mut out = Vec::with_capacity(writes.len());
            for w in writes {
                if insert_item(&tx, w.user, w.item, w.new_keys)? {
                    if let Some(change) = w.change {
                        put_outbox(&tx, change)?;
                    }
                    out.push(WriteOutcome::Written);
                } else {
                    out.push(WriteOutcome::Conflict);
                }
            }
            tx.commit().map_err(unavailable)?;
            Ok(out)
        })
    }

    async fn record_delivery(&self, d: &Delivery) -> Result<()> {
        let expires = delivery_expiry(d).timestamp();
        let now = Utc::now().timestamp();
        let packed = d.body.as_deref().map(body::pack).transpose()?;
        let data = to_json(&Delivery {
            body: None,
            ..d.clone()
        })?;
        self.with(|conn| {
            if d.user.is_none() {
                // The hourly cap on strangers' deliveries (ids sort by time).
                let hour = d.received_at.timestamp() / 3600 * 3600;
                let from = crate::domain::ids::time_ordered_id_floor(
                    DateTime::from_timestamp(hour, 0).unwrap_or(d.received_at),
                );
                let to = crate::domain::ids::time_ordered_id_floor(
                    DateTime::from_timestamp(hour + 3600, 0).unwrap_or(d.received_at),
                );
                let kept: i64 = conn
                    .prepare_cached(
                        "SELECT COUNT(*) FROM deliveries WHERE user IS NULL AND id >= ?1 AND id < ?2",
                    )
                    .map_err(unavailable)?
                    .query_row(params![from, to], |r| r.get(0))
                    .map_err(unavailable)?;
                if kept as u64 >= UNCLAIMED_PER_HOUR {
                    tracing::debug!("unclaimed delivery over the hourly cap; not kept");
                    return Ok(());
                }
            }
            conn.prepare_cached(
                "INSERT OR REPLACE INTO deliveries(id, user, expires_at, data, body)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(unavailable)?
            .execute(params![d.id, d.user, expires, data, packed])
            .map_err(unavailable)?;
            // Expire as DynamoDB's TTL would, a little at a time.
            conn.prepare_cached(
                "DELETE FROM deliveries WHERE id IN
                 (SELECT id FROM deliveries WHERE expires_at < ?1 LIMIT 100)",
            )
            .map_err(unavailable)?
            .execute(params![now])
            .map_err(unavailable)?;
            Ok(())
        })
    }

    async fn list_deliveries(&self, user: Option<&str>, limit: usize) -> Result<Vec<Delivery>> {
        let limit = limit.clamp(1, 1000) as i64;
        self.with(|conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT data, body FROM deliveries WHERE user IS ?1 ORDER BY id DESC LIMIT ?2",
                )
                .map_err(unavailable)?;
            let rows = st
                .query_map(params![user, limit], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Option<Vec<u8>>>(1)?))
                })
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for row in rows {
                let (data, packed) = row.map_err(unavailable)?;
                let mut d: Delivery = from_json(&data)?;
                if let Some(p) = packed {
                    d.body = Some(body::unpack(&p)?);
                }
                out.push(d);
            }
            Ok(out)
        })
    }

    async fn get_delivery(&self, user: &str, id: &str) -> Result<Option<Delivery>> {
        self.with(|conn| {
            let row: Option<(String, Option<Vec<u8>>)> = conn
                .prepare_cached(
                    "SELECT data, body FROM deliveries WHERE user = ?1 AND id = ?2 AND expires_at >= ?3",
                )
                .map_err(unavailable)?
                .query_row(params![user, id, Utc::now().timestamp()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(unavailable)?;
            let Some((data, packed)) = row else {
                return Ok(None);
            };
            let mut d: Delivery = from_json(&data)?;
            if let Some(p) = packed {
                d.body = Some(body::unpack(&p)?);
            }
            Ok(Some(d))
        })
    }

    async fn pending_changes(&self, limit: usize) -> Result<Vec<StateChange>> {
        self.with(|conn| {
            let mut st = conn
                .prepare_cached("SELECT data FROM outbox ORDER BY seq LIMIT ?1")
                .map_err(unavailable)?;
            let rows = st
                .query_map(params![limit as i64], |r| r.get::<_, String>(0))
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(from_json(&row.map_err(unavailable)?)?);
            }
            Ok(out)
        })
    }

    async fn ack_change(&self, id: &str) -> Result<()> {
        self.with(|conn| {
            conn.execute("DELETE FROM outbox WHERE id = ?1", params![id])
                .map_err(unavailable)?;
            Ok(())
        })
    }

    async fn claim_changes(
        &self,
        limit: usize,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> Result<Vec<StateChange>> {
        let (now_ms, until) = (now.timestamp_millis(), (now + lease).timestamp_millis());
        self.with(|conn| {
            // One statement: another connection's drain (another process on the same
            // file) cannot claim the same rows in between.
            let mut st = conn
                .prepare_cached(
                    "UPDATE outbox SET claimed_until = ?1 WHERE id IN
                       (SELECT id FROM outbox WHERE claimed_until IS NULL OR claimed_until < ?2
                        ORDER BY seq LIMIT ?3)
                     RETURNING seq, data",
                )
                .map_err(unavailable)?;
            let rows = st
                .query_map(params![until, now_ms, limit as i64], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row.map_err(unavailable)?);
            }
            // RETURNING gives no order.
            out.sort_by_key(|(seq, _)| *seq);
            out.iter().map(|(_, d)| from_json(d)).collect()
        })
    }

    async fn release_change(&self, id: &str) -> Result<()> {
        self.with(|conn| {
            conn.execute(
                "UPDATE outbox SET claimed_until = NULL WHERE id = ?1",
                params![id],
            )
            .map_err(unavailable)?;
            Ok(())
        })
    }

    async fn record_task_run(&self, run: &TaskRun) -> Result<()> {
        self.with(|conn| {
            conn.execute(
                "INSERT OR REPLACE INTO task_runs(id, data) VALUES (?1, ?2)",
                params![run.id, to_json(run)?],
            )
            .map_err(unavailable)?;
            Ok(())
        })
    }

    async fn list_task_runs(&self, limit: usize) -> Result<Vec<TaskRun>> {
        self.with(|conn| {
            let mut st = conn
                .prepare("SELECT data FROM task_runs ORDER BY id DESC LIMIT ?1")
                .map_err(unavailable)?;
            let rows = st
                .query_map(params![limit.clamp(1, 1000) as i64], |r| {
                    r.get::<_, String>(0)
                })
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(from_json(&row.map_err(unavailable)?)?);
            }
            Ok(out)
        })
    }
}
/// The end of an item write: a conflict drops `tx` (rolled back); otherwise the
/// change goes into the outbox and all of it is committed at once.
fn commit_write(
    tx: rusqlite::Transaction<'_>,
    written: bool,
    change: Option<&StateChange>,
) -> Result<WriteOutcome> {
    if !written {
        return Ok(WriteOutcome::Conflict);
    }
    if let Some(change) = change {
        put_outbox(&tx, change)?;
    }
    tx.commit().map_err(unavailable)?;
    Ok(WriteOutcome::Written)
}

/// Add `column` to `table` unless it is there (a data dir from an older build).
fn add_column(conn: &Connection, table: &str, column: &str, kind: &str) -> Result<()> {
    let has: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2",
            params![table, column],
            |r| r.get(0),
        )
        .map_err(unavailable)?;
    if has == 0 {
        conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))
            .map_err(unavailable)?;
    }
    Ok(())
}

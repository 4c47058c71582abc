//! The Store port: everything the functions keep (users, backends, items with their
//! lookup keys, the delivery log, the change outbox, task runs). Its adapters live in
//! [`crate::adapters::store`]: `sqlite` (embedded, local) and `dynamo` (AWS).
//!
//! Items are written with optimistic concurrency: every write names the version it
//! read, and a new item is created together with all its lookup keys in one atomic
//! step that fails if any key is already taken. Either failure is a
//! [`WriteOutcome::Conflict`]: the caller reads again and re-decides. A state change
//! is written in the same atomic step as the item (the outbox), so it cannot be lost
//! between "stored" and "published".

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::model::{Backend, Delivery, Item, StateChange, User};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or answered with a server error: worth a retry,
    /// answered 503.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data that cannot be read back (a bug or a manual edit).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Whether an item write went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    /// The item changed since it was read, or a new item's key is already taken.
    Conflict,
}

/// One item write: create (`expected_version: None`) or update.
#[derive(Debug, Clone, Copy)]
pub struct ItemWrite<'a> {
    pub user: &'a str,
    /// The item to store; its `version` is ignored, the store sets it.
    pub item: &'a Item,
    pub expected_version: Option<u64>,
    /// Lookup keys the item does not own yet. On create every one must be free; on
    /// update a key another item already owns is left to that item.
    pub new_keys: &'a [String],
    /// Written atomically with the item, into the outbox.
    pub change: Option<&'a StateChange>,
}

/// Which items to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemQuery {
    All,
    /// Any of these lookup keys (a guid is looked up as a movie and as an episode).
    Keys(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub cursor: Option<String>,
}

/// What an import or export run did, kept for `GET /v1/tasks/runs`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskRun {
    pub id: String,
    pub task: String,
    pub user: Option<String>,
    pub backend: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub dry_run: bool,
    pub pages: u64,
    pub items_seen: u64,
    pub created: u64,
    pub changed: u64,
    pub pushed: u64,
    pub failed: u64,
    #[serde(default)]
    pub errors: Vec<String>,
    /// Where an unfinished run stands (an import paused at its time budget or stopped
    /// at a page that kept failing): the task's own continuation, as JSON. The next
    /// run of the same task and backend resumes from it (see [`crate::app::tasks`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<serde_json::Value>,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Create the user if missing; returns the stored user and whether it was created.
    async fn put_user(&self, name: &str, now: DateTime<Utc>) -> Result<(User, bool)>;
    async fn get_user(&self, name: &str) -> Result<Option<User>>;
    async fn list_users(&self) -> Result<Vec<User>>;

    /// Create or replace a backend (and its token-hash index entry).
    async fn put_backend(&self, backend: &Backend) -> Result<()>;
    async fn get_backend(&self, user: &str, name: &str) -> Result<Option<Backend>>;
    async fn list_backends(&self, user: &str) -> Result<Vec<Backend>>;
    async fn delete_backend(&self, user: &str, name: &str) -> Result<bool>;
    /// The backend a webhook token belongs to, without its media server token (the
    /// webhook path never needs it; only the backend record holds it).
    async fn backend_by_token_hash(&self, hash: &str) -> Result<Option<Backend>>;

    /// The item the first matching key points at, keys tried in the given order.
    async fn find_item(&self, user: &str, keys: &[String]) -> Result<Option<Item>>;
    /// Every item the keys point at, each once, in the order of the first key that
    /// points at it (a report whose ids two items hold separately reaches both; see
    /// [`crate::sync::merge`]).
    async fn find_items(&self, user: &str, keys: &[String]) -> Result<Vec<Item>> {
        let mut out: Vec<Item> = Vec::new();
        for k in keys {
            if let Some(item) = self.find_item(user, std::slice::from_ref(k)).await? {
                if !out.iter().any(|i| i.id == item.id) {
                    out.push(item);
                }
            }
        }
        Ok(out)
    }
    async fn get_item(&self, user: &str, id: &str) -> Result<Option<Item>>;
    async fn list_items(
        &self,
        user: &str,
        query: &ItemQuery,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Item>>;
    async fn write_item(&self, write: ItemWrite<'_>) -> Result<WriteOutcome>;

    /// Merge `absorbed` into the item of `write` ([`crate::sync::merge`]): in one
    /// atomic step write the merged item (conditional on `write.expected_version`),
    /// delete `absorbed` (conditional on its version), hand every lookup key it owns to
    /// the kept item, claim `write.new_keys` as [`Store::write_item`] does, and put the
    /// change in the outbox. A `Conflict` when either item changed since it was read.
    async fn absorb_item(&self, write: ItemWrite<'_>, absorbed: &Item) -> Result<WriteOutcome>;

    /// Create several new items at once (a page of an import): each with all its
    /// lookup keys and its change, atomically per item, exactly as [`Store::write_item`]
    /// with `expected_version: None` does. One outcome per write, in order; a
    /// `Conflict` (a key already taken, also by an earlier item of the same batch)
    /// leaves that item unwritten and the others unaffected.
    ///
    /// The default writes them one by one; adapters batch where they can (SQLite: one
    /// transaction for the whole batch).
    async fn create_items_batch(&self, writes: &[ItemWrite<'_>]) -> Result<Vec<WriteOutcome>> {
        let mut out = Vec::with_capacity(writes.len());
        for w in writes {
            out.push(
                self.write_item(ItemWrite {
                    expected_version: None,
                    ..*w
                })
                .await?,
            );
        }
        Ok(out)
    }

    /// Write a delivery. A delivery no backend claimed (`user: None`, a stranger's
    /// request) is kept [`UNCLAIMED_TTL_HOURS`] only, and at most
    /// [`UNCLAIMED_PER_HOUR`] of them are kept per hour (a conditional counter): what is
    /// over the cap is dropped, so strangers can neither fill the table nor run up its
    /// bill. The webhook handler keeps no body for them.
    async fn record_delivery(&self, delivery: &Delivery) -> Result<()>;
    /// Newest first; `user: None` lists deliveries no backend claimed.
    async fn list_deliveries(&self, user: Option<&str>, limit: usize) -> Result<Vec<Delivery>>;

    /// Changes written but not yet published, oldest first (change ids sort by time).
    async fn pending_changes(&self, limit: usize) -> Result<Vec<StateChange>>;
    async fn ack_change(&self, id: &str) -> Result<()>;

    /// Up to `limit` changes not yet published and not claimed by another drain
    /// (or whose claim lapsed), oldest first, each now claimed until `now + lease`
    /// by a conditional write: of two overlapping drains only one gets a change.
    ///
    /// The default claims nothing (a store only one process uses, or a test wrapper).
    async fn claim_changes(
        &self,
        limit: usize,
        _now: DateTime<Utc>,
        _lease: chrono::Duration,
    ) -> Result<Vec<StateChange>> {
        self.pending_changes(limit).await
    }

    /// Give a claimed change back (its publish failed): the next drain takes it.
    async fn release_change(&self, _id: &str) -> Result<()> {
        Ok(())
    }

    async fn record_task_run(&self, run: &TaskRun) -> Result<()>;
    async fn list_task_runs(&self, limit: usize) -> Result<Vec<TaskRun>>;
}

/// How long deliveries are kept.
pub const DELIVERY_TTL_DAYS: i64 = 7;
/// How long deliveries no backend claimed are kept.
pub const UNCLAIMED_TTL_HOURS: i64 = 24;
/// How many deliveries no backend claimed are kept per clock hour, at most.
pub const UNCLAIMED_PER_HOUR: u64 = 120;

/// When a delivery expires: a week for a backend's, a day for a stranger's.
pub fn delivery_expiry(d: &Delivery) -> DateTime<Utc> {
    match d.user {
        Some(_) => d.received_at + chrono::Duration::days(DELIVERY_TTL_DAYS),
        None => d.received_at + chrono::Duration::hours(UNCLAIMED_TTL_HOURS),
    }
}

/// How much of a webhook body the delivery log keeps.
pub const DELIVERY_BODY_CAP: usize = 64 * 1024;

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRun {
    pub id: String,
    pub task: crate::ports::tasks::TaskKind,
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
    /// [`crate::domain::sync::merge`]).
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

    /// Merge `absorbed` into the item of `write` ([`crate::domain::sync::merge`]): in one
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
    /// One delivery of `user` by its id, with its body (the console's "Show payload"),
    /// `None` when it is unknown or expired.
    async fn get_delivery(&self, user: &str, id: &str) -> Result<Option<Delivery>>;

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

/// Implements [`Store`] for a type: the methods written out in braces first, then
/// each listed method handed to `$to`, an expression over `$s` (the caller's `self`):
/// a decorator's inner store, or `self` itself when the type's inherent methods carry
/// the trait's names. The signatures live once, in [`store_signature`](crate::store_signature).
///
/// ```ignore
/// delegate_store!(impl for SealedStore, self => self.inner, { /* own methods */ }, [get_user, ...]);
/// ```
#[macro_export]
macro_rules! delegate_store {
    (impl for $ty:ty, $s:ident => $to:expr, { $($own:tt)* }, [$($m:ident),* $(,)?]) => {
        $crate::delegate_store!(@next ($ty) $s ($to) [$($own)*] [$($m)*]);
    };
    (@next ($ty:ty) $s:ident $to:tt [$($done:tt)*] []) => {
        #[async_trait::async_trait]
        impl $crate::ports::store::Store for $ty {
            $($done)*
        }
    };
    (@next $ty:tt $s:ident $to:tt $done:tt [$m:ident $($rest:ident)*]) => {
        $crate::store_signature!($m, ($ty $s $to $done [$($rest)*]));
    };
    (@add ($ty:tt $s:ident $to:tt [$($done:tt)*] $rest:tt)
        $name:ident($($arg:ident: $t:ty),*) -> $out:ty) => {
        $crate::delegate_store!(@next $ty $s $to [$($done)*
            async fn $name(&$s, $($arg: $t),*) -> $crate::ports::store::Result<$out> {
                $to.$name($($arg),*).await
            }
        ] $rest);
    };
}

/// Each [`Store`] method's signature, for [`delegate_store`](crate::delegate_store).
#[doc(hidden)]
#[macro_export]
macro_rules! store_signature {
    (put_user, $k:tt) => { $crate::delegate_store!(@add $k put_user(name: &str, now: ::chrono::DateTime<::chrono::Utc>) -> ($crate::domain::model::User, bool)); };
    (get_user, $k:tt) => { $crate::delegate_store!(@add $k get_user(name: &str) -> Option<$crate::domain::model::User>); };
    (list_users, $k:tt) => { $crate::delegate_store!(@add $k list_users() -> Vec<$crate::domain::model::User>); };
    (put_backend, $k:tt) => { $crate::delegate_store!(@add $k put_backend(backend: &$crate::domain::model::Backend) -> ()); };
    (get_backend, $k:tt) => { $crate::delegate_store!(@add $k get_backend(user: &str, name: &str) -> Option<$crate::domain::model::Backend>); };
    (list_backends, $k:tt) => { $crate::delegate_store!(@add $k list_backends(user: &str) -> Vec<$crate::domain::model::Backend>); };
    (delete_backend, $k:tt) => { $crate::delegate_store!(@add $k delete_backend(user: &str, name: &str) -> bool); };
    (backend_by_token_hash, $k:tt) => { $crate::delegate_store!(@add $k backend_by_token_hash(hash: &str) -> Option<$crate::domain::model::Backend>); };
    (find_item, $k:tt) => { $crate::delegate_store!(@add $k find_item(user: &str, keys: &[String]) -> Option<$crate::domain::model::Item>); };
    (find_items, $k:tt) => { $crate::delegate_store!(@add $k find_items(user: &str, keys: &[String]) -> Vec<$crate::domain::model::Item>); };
    (get_item, $k:tt) => { $crate::delegate_store!(@add $k get_item(user: &str, id: &str) -> Option<$crate::domain::model::Item>); };
    (list_items, $k:tt) => { $crate::delegate_store!(@add $k list_items(user: &str, query: &$crate::ports::store::ItemQuery, limit: usize, cursor: Option<&str>) -> $crate::ports::store::Page<$crate::domain::model::Item>); };
    (write_item, $k:tt) => { $crate::delegate_store!(@add $k write_item(write: $crate::ports::store::ItemWrite<'_>) -> $crate::ports::store::WriteOutcome); };
    (absorb_item, $k:tt) => { $crate::delegate_store!(@add $k absorb_item(write: $crate::ports::store::ItemWrite<'_>, absorbed: &$crate::domain::model::Item) -> $crate::ports::store::WriteOutcome); };
    (create_items_batch, $k:tt) => { $crate::delegate_store!(@add $k create_items_batch(writes: &[$crate::ports::store::ItemWrite<'_>]) -> Vec<$crate::ports::store::WriteOutcome>); };
    (record_delivery, $k:tt) => { $crate::delegate_store!(@add $k record_delivery(delivery: &$crate::domain::model::Delivery) -> ()); };
    (list_deliveries, $k:tt) => { $crate::delegate_store!(@add $k list_deliveries(user: Option<&str>, limit: usize) -> Vec<$crate::domain::model::Delivery>); };
    (get_delivery, $k:tt) => { $crate::delegate_store!(@add $k get_delivery(user: &str, id: &str) -> Option<$crate::domain::model::Delivery>); };
    (pending_changes, $k:tt) => { $crate::delegate_store!(@add $k pending_changes(limit: usize) -> Vec<$crate::domain::model::StateChange>); };
    (ack_change, $k:tt) => { $crate::delegate_store!(@add $k ack_change(id: &str) -> ()); };
    (claim_changes, $k:tt) => { $crate::delegate_store!(@add $k claim_changes(limit: usize, now: ::chrono::DateTime<::chrono::Utc>, lease: ::chrono::Duration) -> Vec<$crate::domain::model::StateChange>); };
    (release_change, $k:tt) => { $crate::delegate_store!(@add $k release_change(id: &str) -> ()); };
    (record_task_run, $k:tt) => { $crate::delegate_store!(@add $k record_task_run(run: &$crate::ports::store::TaskRun) -> ()); };
    (list_task_runs, $k:tt) => { $crate::delegate_store!(@add $k list_task_runs(limit: usize) -> Vec<$crate::ports::store::TaskRun>); };
}

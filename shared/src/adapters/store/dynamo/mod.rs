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
//! Round trips (`docs/ARCHITECTURE.md`, "DynamoDB table"; budgets in `docs/PERFORMANCE.md`):
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
//!
//! Where each part lives: [`codec`] (keys, attribute values, errors), [`requests`]
//! (expressions, transactions, reads, queries), [`users`] (users, backends, token
//! index), [`items`] (reads), [`item_writes`] (conditional writes, merges, batches),
//! [`deliveries`], [`outbox`], [`runs`], [`table`]. The [`Store`] impl below only
//! delegates to them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

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
    delivery_expiry, ItemQuery, ItemWrite, Page, Result, StoreError, TaskRun, WriteOutcome,
    UNCLAIMED_PER_HOUR,
};

mod codec;
mod deliveries;
mod item_writes;
mod items;
mod outbox;
mod requests;
mod runs;
mod table;
mod users;

use codec::*;
use requests::*;
pub use table::create_table;

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

/// `(user, item id) -> (version, bkeys)` as last read or written by this process.
type CopyIndex = HashMap<(String, String), (u64, Vec<String>)>;

pub struct DynamoStore {
    client: Client,
    table: String,
    copies: Mutex<CopyIndex>,
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
}

// The operations are inherent methods, one file per concern; the trait hands each on.
crate::delegate_store!(impl for DynamoStore, self => self, {}, [
    put_user, get_user, list_users, put_backend, get_backend, list_backends,
    delete_backend, backend_by_token_hash, find_item, get_item, find_items, list_items,
    write_item, absorb_item, create_items_batch, record_delivery, list_deliveries,
    get_delivery, pending_changes, claim_changes, release_change, ack_change,
    record_task_run, list_task_runs,
]);

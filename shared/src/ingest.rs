//! Merging one event (or a person's console action, [`mark`]) into the store: read,
//! decide by the rules, write conditionally, and on a conflict (a concurrent webhook
//! won the race) read again and re-decide.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::model::{Event, EventItem, Item, StateChange};
use crate::store::{ItemWrite, Store, StoreError, WriteOutcome};
use crate::sync::{self, Context, NoChange};

/// Enough for dozens of concurrent writers on one item; each retry re-reads.
const MAX_ATTEMPTS: usize = 64;

/// What merging an event did.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub item: Item,
    pub no_change: Option<NoChange>,
    pub detail: Option<String>,
    pub change: Option<StateChange>,
    pub written: bool,
}

pub async fn apply(
    store: &dyn Store,
    ctx: Context<'_>,
    event: &Event,
    ev: &EventItem,
) -> Result<Applied, StoreError> {
    let keys = sync::event_keys(ctx.backend, ev);
    for attempt in 0..MAX_ATTEMPTS {
        let existing = store.find_item(ctx.user, &keys).await?;
        let d = sync::decide(existing.as_ref(), event, ev, ctx, crate::ids::new_id);
        if !d.write {
            return Ok(Applied {
                item: d.item,
                no_change: d.no_change,
                detail: d.detail,
                change: None,
                written: false,
            });
        }
        let owned: BTreeSet<String> = existing.as_ref().map(sync::item_keys).unwrap_or_default();
        let new_keys: Vec<String> = sync::item_keys(&d.item)
            .into_iter()
            .filter(|k| !owned.contains(k))
            .collect();
        let outcome = store
            .write_item(ItemWrite {
                user: ctx.user,
                item: &d.item,
                expected_version: existing.as_ref().map(|i| i.version),
                new_keys: &new_keys,
                change: d.change.as_ref(),
            })
            .await?;
        if outcome == WriteOutcome::Written {
            let mut item = d.item;
            item.version = existing.map(|i| i.version + 1).unwrap_or(1);
            return Ok(Applied {
                item,
                no_change: d.no_change,
                detail: d.detail,
                change: d.change,
                written: true,
            });
        }
        tracing::debug!(user = ctx.user, "item write conflicted; reading again");
        // Back off a little (with jitter) once the first retries collided too, so
        // writers racing on one item spread out instead of colliding in lockstep.
        if attempt >= 2 {
            let jitter = crate::ids::new_id()
                .as_bytes()
                .first()
                .copied()
                .unwrap_or(0) as u64;
            let ms = (1u64 << attempt.min(6)) + jitter % 8;
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
    }
    Err(StoreError::Unavailable(
        "too many concurrent writes to one item; try again".into(),
    ))
}

/// A person's "Mark played" / "Mark unplayed" from the console: [`sync::mark`] on the
/// item as stored, written conditionally on its version (with its change in the
/// outbox, like a webhook's), re-read and re-decided on a conflict. `None` when the
/// item does not exist.
pub async fn mark(
    store: &dyn Store,
    user: &str,
    item_id: &str,
    watched: bool,
    at: DateTime<Utc>,
) -> Result<Option<Applied>, StoreError> {
    for _ in 0..MAX_ATTEMPTS {
        let Some(existing) = store.get_item(user, item_id).await? else {
            return Ok(None);
        };
        let d = sync::mark(&existing, user, watched, at);
        if !d.write {
            return Ok(Some(Applied {
                item: d.item,
                no_change: d.no_change,
                detail: d.detail,
                change: None,
                written: false,
            }));
        }
        let outcome = store
            .write_item(ItemWrite {
                user,
                item: &d.item,
                expected_version: Some(existing.version),
                new_keys: &[],
                change: d.change.as_ref(),
            })
            .await?;
        if outcome == WriteOutcome::Written {
            let mut item = d.item;
            item.version = existing.version + 1;
            return Ok(Some(Applied {
                item,
                no_change: d.no_change,
                detail: d.detail,
                change: d.change,
                written: true,
            }));
        }
        tracing::debug!(user, "item write conflicted; reading again");
    }
    Err(StoreError::Unavailable(
        "too many concurrent writes to one item; try again".into(),
    ))
}

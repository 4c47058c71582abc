//! Merging one event (or a person's console action, [`mark`]) into the store: read, decide by the rules, write conditionally,
//! and on a conflict (a concurrent webhook won the race) read again and re-decide.
//! Also the lookup every path shares: find the stored item of a report by its keys,
//! passing over items whose guids contradict it ([`find_match`]).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

use crate::domain::model::{Event, EventItem, Item, StateChange};
use crate::domain::sync::matching::{contradicts, Identity};
use crate::domain::sync::{self, Context, NoChange};
use crate::ports::store::{ItemWrite, Store, StoreError, WriteOutcome};

/// What a lookup found for a report.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// The stored item the report is about.
    pub item: Option<Item>,
    /// Keys that belong to a contradicting item: a new item must not claim them.
    pub foreign: Vec<String>,
    /// Other items the report's keys reach without contradicting it: the same thing
    /// stored twice, merged by the write when the report proves it
    /// ([`sync::merge::proven_same`]).
    pub others: Vec<Item>,
}

/// The stored item a report is about, and the keys it may claim: `keys` are the
/// report's lookup keys strongest first (its backend id first). An item found by the
/// backend's own id is the item; one found only by a guid or relative key whose guids
/// contradict the report is another item: its keys are set aside (a new item must not
/// claim them) and the lookup goes on with the rest. One store read for all keys.
pub async fn find_match(
    store: &dyn Store,
    user: &str,
    keys: &[String],
    who: Identity<'_>,
) -> Result<Found, StoreError> {
    let mut found = Found::default();
    for candidate in store.find_items(user, keys).await? {
        let owned = sync::item_keys(&candidate);
        let by_own_id = keys.first().is_some_and(|k| owned.contains(k));
        if by_own_id || !contradicts(&candidate, who) {
            if found.item.is_none() {
                found.item = Some(candidate);
            } else {
                found.others.push(candidate);
            }
        } else {
            found
                .foreign
                .extend(keys.iter().filter(|k| owned.contains(*k)).cloned());
        }
    }
    Ok(found)
}

/// The identity a webhook event's item reports.
pub fn event_identity(ev: &EventItem) -> Identity<'_> {
    Identity {
        kind: ev.item_type(),
        guids: &ev.guids,
        series_guids: &ev.series_guids,
        season: ev.season,
        episode: ev.episode,
    }
}

/// The keys a write may claim: the item's keys it does not own yet, less those that
/// belong to a contradicting item.
pub fn keys_to_claim(existing: Option<&Item>, item: &Item, foreign: &[String]) -> Vec<String> {
    let owned: BTreeSet<String> = existing.map(sync::item_keys).unwrap_or_default();
    sync::item_keys(item)
        .into_iter()
        .filter(|k| !owned.contains(k) && !foreign.contains(k))
        .collect()
}

/// Enough for dozens of concurrent writers on one item; each retry re-reads.
pub const MAX_ATTEMPTS: usize = 64;

/// What merging an event did.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub item: Item,
    pub no_change: Option<NoChange>,
    pub detail: Option<String>,
    pub change: Option<StateChange>,
    pub written: bool,
}

/// What one attempt read: the stored item (if any), the keys that belong to a
/// contradicting item (a new item must not claim them), other items the report
/// reached (merged when proven the same), and whatever else the caller needs.
pub struct Read<X> {
    pub existing: Option<Item>,
    pub foreign: Vec<String>,
    pub others: Vec<Item>,
    pub extra: X,
}

impl<X> Read<X> {
    /// What a lookup found, with the caller's own extra.
    pub fn found(found: Found, extra: X) -> Self {
        Read {
            existing: found.item,
            foreign: found.foreign,
            others: found.others,
            extra,
        }
    }

    /// One item read by its id: nothing else to know.
    pub fn item(existing: Option<Item>, extra: X) -> Self {
        Read {
            existing,
            foreign: Vec::new(),
            others: Vec::new(),
            extra,
        }
    }
}

/// What one attempt decided: the item to store (`None`: nothing to write) with its
/// change for the outbox, and the caller's own outcome.
pub struct Planned<T> {
    pub item: Option<Item>,
    pub change: Option<StateChange>,
    pub outcome: T,
}

/// What the loop did: the item as stored (or as decided, when nothing was written).
pub struct Done<T> {
    pub item: Option<Item>,
    pub change: Option<StateChange>,
    pub written: bool,
    pub outcome: T,
}

/// The one read → decide → conditional write loop (webhooks, console actions, import,
/// push's bookkeeping): the write names the version it read (a new item: every key
/// it claims must be free), and on a conflict (someone else wrote first) the item is
/// read and decided again, backing off with jitter once the first retries collided too.
pub async fn write_conditionally<'a, X, T>(
    store: &'a dyn Store,
    user: &'a str,
    mut read: impl FnMut() -> BoxFuture<'a, Result<Read<X>, StoreError>>,
    mut decide: impl FnMut(&Read<X>) -> Planned<T>,
) -> Result<Done<T>, StoreError> {
    for attempt in 0..MAX_ATTEMPTS {
        let mut r = read().await?;
        let mut plan = decide(&r);
        let absorbed = absorb(&mut r, &mut plan, &mut decide, user);
        let Some(item) = plan.item else {
            return Ok(Done {
                item: r.existing,
                change: None,
                written: false,
                outcome: plan.outcome,
            });
        };
        // After a merge: the keys the item did not own before it (the store hands over
        // the absorbed item's own).
        let owned_before = absorbed
            .as_ref()
            .map(|(before, _)| before)
            .or(r.existing.as_ref());
        let new_keys = keys_to_claim(owned_before, &item, &r.foreign);
        let write = ItemWrite {
            user,
            item: &item,
            expected_version: r.existing.as_ref().map(|i| i.version),
            new_keys: &new_keys,
            change: plan.change.as_ref(),
        };
        let outcome = match &absorbed {
            None => store.write_item(write).await?,
            Some((_, other)) => {
                tracing::info!(user, item = %item.id, absorbed = %other.id, "one item stored twice: merged");
                store.absorb_item(write, other).await?
            }
        };
        if outcome == WriteOutcome::Written {
            let mut item = item;
            item.version = r.existing.map(|i| i.version + 1).unwrap_or(1);
            return Ok(Done {
                item: Some(item),
                change: plan.change,
                written: true,
                outcome: plan.outcome,
            });
        }
        tracing::debug!(user, "item write conflicted; reading again");
        if attempt >= 2 {
            let jitter = crate::domain::ids::new_id()
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

/// When the read reached another item that the decided item proves to be the same
/// ([`sync::merge::proven_same`]): decide again on the two merged, so the report is
/// judged against all the evidence, and make sure the merge itself is written and
/// pushed. Returns the item as read and the item absorbed.
fn absorb<X, T>(
    r: &mut Read<X>,
    plan: &mut Planned<T>,
    decide: &mut impl FnMut(&Read<X>) -> Planned<T>,
    user: &str,
) -> Option<(Item, Item)> {
    let existing = r.existing.as_ref()?;
    let after = plan.item.as_ref().unwrap_or(existing);
    let other = r
        .others
        .iter()
        .find(|o| sync::merge::proven_same(existing, after, o))?
        .clone();
    let before = existing.clone();
    r.existing = Some(sync::merge::merge(&before, &other));
    *plan = decide(r);
    let merged = r.existing.as_ref()?;
    let item = plan.item.get_or_insert_with(|| merged.clone());
    if plan.change.is_none() {
        plan.change = sync::merge::merge_change(item, &before, &other, user);
    }
    Some((before, other))
}

/// Merge one webhook event into the store.
pub async fn apply(
    store: &dyn Store,
    ctx: Context<'_>,
    event: &Event,
    ev: &EventItem,
) -> Result<Applied, StoreError> {
    let keys = sync::event_keys(ctx.backend, ev);
    let done = write_conditionally(
        store,
        ctx.user,
        || {
            Box::pin(async {
                let found = find_match(store, ctx.user, &keys, event_identity(ev)).await?;
                Ok(Read::found(found, ()))
            })
        },
        |r| {
            planned(sync::decide(
                r.existing.as_ref(),
                event,
                ev,
                ctx,
                crate::domain::ids::new_id,
            ))
        },
    )
    .await?;
    Ok(applied(done.item, done.change, done.written, done.outcome))
}

/// A rule's decision as the loop plans it: its item and change are written only when
/// the rule says so; the decision itself is the outcome.
fn planned(d: sync::Decision) -> Planned<sync::Decision> {
    Planned {
        item: d.write.then(|| d.item.clone()),
        change: d.change.clone().filter(|_| d.write),
        outcome: d,
    }
}

/// What a write of decision `d` did: the item as stored when written, else as decided.
fn applied(
    stored: Option<Item>,
    change: Option<StateChange>,
    written: bool,
    d: sync::Decision,
) -> Applied {
    Applied {
        item: stored.filter(|_| written).unwrap_or(d.item),
        no_change: d.no_change,
        detail: d.detail,
        change,
        written,
    }
}

/// A person's "Mark played" / "Mark unplayed" from the console ([`sync::mark`]),
/// through the same conditional write as a webhook (its change in the outbox). `None`
/// when the item does not exist.
pub async fn mark(
    store: &dyn Store,
    user: &str,
    item_id: &str,
    watched: bool,
    at: DateTime<Utc>,
) -> Result<Option<Applied>, StoreError> {
    let done = write_conditionally(
        store,
        user,
        || Box::pin(async { Ok(Read::item(store.get_item(user, item_id).await?, ())) }),
        |r| match &r.existing {
            None => Planned {
                item: None,
                change: None,
                outcome: None,
            },
            Some(existing) => {
                let p = planned(sync::mark(existing, user, watched, at));
                Planned {
                    item: p.item,
                    change: p.change,
                    outcome: Some(p.outcome),
                }
            }
        },
    )
    .await?;
    Ok(done
        .outcome
        .map(|d| applied(done.item, done.change, done.written, d)))
}

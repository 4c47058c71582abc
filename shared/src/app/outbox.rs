//! The outbox use cases: publish a stored change and take it out of the outbox, and
//! drain what is still there (at-least-once: a change stays until a publish succeeds;
//! push makes a redelivered or late change a no-op).

use crate::domain::model::StateChange;
use crate::ports::bus::Bus;
use crate::ports::store::Store;

/// How long a drain owns the outbox rows it claimed: another drain skips them until
/// then, so two overlapping drains never publish the same change.
pub const CLAIM_LEASE_SECONDS: i64 = 300;

/// Publish one change and take it out of the outbox. A failure leaves it there for
/// [`drain`]; it is logged, never returned to the webhook sender.
pub async fn publish_and_ack(store: &dyn Store, bus: &dyn Bus, change: &StateChange) -> bool {
    match bus.publish(change).await {
        Ok(()) => match store.ack_change(&change.id).await {
            Ok(()) => true,
            Err(e) => {
                // Published but still in the outbox: it goes out again, and push treats
                // a redelivered change as the no-op it is.
                tracing::warn!(change = %change.id, error = %e, "published change not acknowledged");
                true
            }
        },
        Err(e) => {
            tracing::warn!(change = %change.id, error = %e, "publish failed; change stays in the outbox");
            false
        }
    }
}

/// Publish what the outbox still holds, oldest first, in batches. Each row is claimed
/// first (conditionally: a row another drain holds is skipped), so overlapping drains
/// publish every change once; what fails to publish is released for the next drain.
/// Stops at the first batch the bus refuses. Returns (published, failed).
pub async fn drain(store: &dyn Store, bus: &dyn Bus, limit: usize) -> (usize, usize) {
    let lease = chrono::Duration::seconds(CLAIM_LEASE_SECONDS);
    let claimed = match store.claim_changes(limit, chrono::Utc::now(), lease).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the outbox");
            return (0, 0);
        }
    };
    crate::app::metrics::outbox_depth(claimed.len());
    let (mut ok, mut failed) = (0, 0);
    for (i, batch) in claimed.chunks(DRAIN_BATCH).enumerate() {
        let results = bus.publish_batch(batch).await;
        let mut refused = true;
        for (change, result) in batch.iter().zip(results) {
            match result {
                Ok(()) => {
                    refused = false;
                    ok += 1;
                    if let Err(e) = store.ack_change(&change.id).await {
                        // Published but still in the outbox: it goes out again after
                        // the lease, and push treats it as the no-op it is.
                        tracing::warn!(change = %change.id, error = %e, "published change not acknowledged");
                    }
                }
                Err(e) => {
                    failed += 1;
                    tracing::warn!(change = %change.id, error = %e, "publish failed; change stays in the outbox");
                    release(store, &change.id).await;
                }
            }
        }
        if refused {
            // The bus is down: the rest would fail the same way.
            for change in claimed.iter().skip((i + 1) * DRAIN_BATCH) {
                release(store, &change.id).await;
            }
            break;
        }
    }
    (ok, failed)
}

/// Changes handed to the bus at once by a drain.
const DRAIN_BATCH: usize = 100;

async fn release(store: &dyn Store, id: &str) {
    if let Err(e) = store.release_change(id).await {
        tracing::warn!(change = %id, error = %e, "claim not released; it lapses by itself");
    }
}

//! The Bus port: carries each state change from the store to the push function.
//! Adapters: [`crate::adapters::local_bus`] (in process) and
//! [`crate::adapters::eventbridge`] (AWS).
//!
//! Publishing is at-least-once: a change sits in the store's outbox until a publish
//! succeeds, and [`drain`] retries whatever is still there.
//!
//! So a consumer may see a change twice (published, then the ack was lost) or after a
//! newer change of the same item (an old change drained late). The push function must
//! make both no-ops: act on the item's current state, and only where a backend
//! differs from it.

use async_trait::async_trait;

use crate::domain::model::StateChange;
use crate::ports::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("bus unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Bus: Send + Sync {
    async fn publish(&self, change: &StateChange) -> Result<(), BusError>;

    /// Publish several changes (an import's, a drain's): one result per change, in
    /// order. Adapters send them in as few requests as they can (EventBridge: 10 per
    /// PutEvents; in process: one push batch).
    async fn publish_batch(&self, changes: &[StateChange]) -> Vec<Result<(), BusError>> {
        let mut out = Vec::with_capacity(changes.len());
        for c in changes {
            out.push(self.publish(c).await);
        }
        out
    }
}

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

/// The bus this process publishes to: EventBridge when `EVENT_BUS_NAME` is set (AWS),
/// else, in a local build, the in-process bus that runs push right here (the local
/// emulation). A Lambda build without `EVENT_BUS_NAME` has none: changes wait in the
/// outbox.
pub async fn from_env(store: std::sync::Arc<dyn Store>) -> Option<std::sync::Arc<dyn Bus>> {
    use std::sync::Arc;
    if let Some(b) = crate::adapters::eventbridge::EventBridgeBus::from_env().await {
        return Some(Arc::new(b));
    }
    local_bus(store)
}

#[cfg(not(feature = "local"))]
fn local_bus(_store: std::sync::Arc<dyn Store>) -> Option<std::sync::Arc<dyn Bus>> {
    tracing::warn!("EVENT_BUS_NAME is not set: changes wait in the outbox");
    None
}

#[cfg(feature = "local")]
fn local_bus(store: std::sync::Arc<dyn Store>) -> Option<std::sync::Arc<dyn Bus>> {
    use std::sync::Arc;
    let pusher = crate::app::push::Pusher {
        store,
        clients: Arc::new(crate::app::push::HttpClients {
            http: crate::adapters::media::client::http_client(),
            retry: Default::default(),
        }),
    };
    Some(Arc::new(crate::adapters::local_bus::LocalBus::new(
        Arc::new(crate::app::push::LocalPush(pusher)),
    )))
}

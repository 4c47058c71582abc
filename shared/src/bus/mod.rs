//! The Bus port: carries each state change from the store to the push function.
//! Adapters: [`local`] (in process) and [`eventbridge`] (AWS).
//!
//! Publishing is at-least-once: a change sits in the store's outbox until a publish
//! succeeds, and [`drain`] retries whatever is still there.
//!
//! So a consumer may see a change twice (published, then the ack was lost) or after a
//! newer change of the same item (an old change drained late). The push function must
//! make both no-ops: act on the item's current state, and only where a backend
//! differs from it.

pub mod eventbridge;
#[cfg(feature = "local")]
pub mod local;

use async_trait::async_trait;

use crate::model::StateChange;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("bus unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Bus: Send + Sync {
    async fn publish(&self, change: &StateChange) -> Result<(), BusError>;
}

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

/// Publish what the outbox still holds, oldest first. Returns (published, failed).
pub async fn drain(store: &dyn Store, bus: &dyn Bus, limit: usize) -> (usize, usize) {
    let pending = match store.pending_changes(limit).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the outbox");
            return (0, 0);
        }
    };
    let (mut ok, mut failed) = (0, 0);
    for change in &pending {
        if publish_and_ack(store, bus, change).await {
            ok += 1;
        } else {
            failed += 1;
            // The bus is down: the rest would fail the same way.
            break;
        }
    }
    (ok, failed)
}

/// The bus this process publishes to: EventBridge when `EVENT_BUS_NAME` is set (AWS),
/// else, in a local build, the in-process bus that runs push right here (the local
/// emulation). A Lambda build without `EVENT_BUS_NAME` has none: changes wait in the
/// outbox.
pub async fn from_env(store: std::sync::Arc<dyn Store>) -> Option<std::sync::Arc<dyn Bus>> {
    use std::sync::Arc;
    if let Some(b) = eventbridge::EventBridgeBus::from_env().await {
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
    let pusher = crate::push::Pusher {
        store,
        clients: Arc::new(crate::push::HttpClients {
            http: crate::backends::client::http_client(),
            retry: Default::default(),
        }),
    };
    Some(Arc::new(local::LocalBus::new(Arc::new(
        crate::push::LocalPush(pusher),
    ))))
}

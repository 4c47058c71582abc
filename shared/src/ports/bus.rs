//! The Bus port: carries each state change from the store to the push function, and
//! hands an unfinished import on ([`Continuations`]). Adapters:
//! [`crate::adapters::local_bus`] (in process) and [`crate::adapters::eventbridge`] (AWS).
//!
//! Publishing is at-least-once: a change sits in the store's outbox until a publish
//! succeeds, and [`crate::app::outbox::drain`] retries whatever is still there.
//!
//! So a consumer may see a change twice (published, then the ack was lost) or after a
//! newer change of the same item (an old change drained late). The push function must
//! make both no-ops: act on the item's current state, and only where a backend
//! differs from it.

use async_trait::async_trait;

use crate::domain::model::StateChange;

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

/// The `detail-type` of the event that carries an unfinished import to the next
/// invocation; the import function recognises its own continuation by it.
pub const IMPORT_PAGE: &str = "ImportPage";

/// Hands an unfinished import on to a new invocation (on AWS an [`IMPORT_PAGE`] event
/// a rule routes to the import function). `payload` is the task's own JSON.
#[async_trait]
pub trait Continuations: Send + Sync {
    async fn hand_on(&self, payload: &serde_json::Value) -> Result<(), BusError>;
}

/// What consumes changes in process (the push function's handler): what the local
/// bus hands each change to.
#[async_trait]
pub trait ChangeHandler: Send + Sync {
    async fn handle(&self, change: &StateChange) -> Result<(), String>;

    /// Several changes at once, one result each.
    async fn handle_batch(&self, changes: &[StateChange]) -> Vec<Result<(), String>> {
        let mut out = Vec::with_capacity(changes.len());
        for c in changes {
            out.push(self.handle(c).await);
        }
        out
    }
}

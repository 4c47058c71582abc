//! The DeadLetters port: the queue where the push function parks a change it could not
//! carry after its retries. The export's sweep ([`crate::app::tasks::dead_letters`])
//! reads it back, pushes each change again and deletes what is done. Adapter:
//! [`crate::adapters::sqs`] (AWS); a local build has no such queue.

use async_trait::async_trait;

use crate::domain::model::StateChange;

/// One parked message.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The queue's id of the message (for the log).
    pub id: Option<String>,
    /// The change it carries; `None` when its body is no state change (it is dropped).
    pub change: Option<StateChange>,
    /// What [`DeadLetters::delete`] needs to take it off the queue.
    pub receipt: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("dead-letter queue unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Up to `max` parked messages, without waiting; an empty list when none is left.
    /// A received message is hidden from other readers until it is deleted or its
    /// visibility lapses.
    async fn receive(&self, max: usize) -> Result<Vec<DeadLetter>, DeadLetterError>;

    /// Take a message off the queue for good.
    async fn delete(&self, letter: &DeadLetter) -> Result<(), DeadLetterError>;
}

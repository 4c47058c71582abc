//! The dead-letter sweep, run by the export (its schedule and `POST
//! /v1/tasks/export`): each change parked on the [`DeadLetters`] queue is pushed again
//! against the item's current state, and deleted unless a retry could still help.
//! What cannot be a change is dropped.

use serde::Serialize;

use crate::app::push::Pusher;
use crate::app::tasks::Budget;
use crate::ports::dead_letters::DeadLetters;

/// Receive rounds (of up to 10 messages) per sweep at most.
const SWEEP_ROUNDS: usize = 100;
/// Messages asked for per round.
const PER_ROUND: usize = 10;

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Swept {
    /// Pushed again (or nothing left to do): deleted.
    pub pushed: u64,
    /// A retry could still help: left on the queue.
    pub kept: u64,
    /// No state change: deleted.
    pub dropped: u64,
}

/// Push what is parked, within `budget`.
pub async fn sweep(letters: &dyn DeadLetters, pusher: &Pusher, budget: Budget) -> Swept {
    let mut swept = Swept::default();
    for _ in 0..SWEEP_ROUNDS {
        if budget.expired() {
            break;
        }
        let received = match letters.receive(PER_ROUND).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the dead-letter queue");
                break;
            }
        };
        if received.is_empty() {
            break;
        }
        for letter in received {
            let delete = match &letter.change {
                Some(change) => match pusher.push(change).await {
                    Ok(report) if !report.retryable_failure() => {
                        swept.pushed += 1;
                        true
                    }
                    Ok(_) => {
                        swept.kept += 1;
                        false
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "store unavailable while sweeping");
                        swept.kept += 1;
                        false
                    }
                },
                None => {
                    tracing::warn!(message = ?letter.id, "dead letter is no state change; dropped");
                    swept.dropped += 1;
                    true
                }
            };
            if delete {
                if let Err(e) = letters.delete(&letter).await {
                    tracing::warn!(error = %e, "dead letter not deleted; it comes back");
                }
            }
        }
    }
    let Swept {
        pushed,
        kept,
        dropped,
    } = swept;
    tracing::info!(pushed, kept, dropped, "dead-letter queue swept");
    crate::app::metrics::dead_letters_swept("pushed", pushed);
    crate::app::metrics::dead_letters_swept("kept", kept);
    crate::app::metrics::dead_letters_swept("dropped", dropped);
    swept
}

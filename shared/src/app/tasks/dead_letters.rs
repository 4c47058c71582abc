//! The push dead-letter queue (`DEAD_LETTER_QUEUE_URL`, AWS only), swept by the export
//! function: each parked change is pushed again against the item's current state, and
//! deleted unless a retry could still help. What cannot be a change is dropped.

use serde_json::{json, Value};

use crate::app::push::Pusher;
use crate::app::tasks::Budget;
use crate::domain::model::StateChange;

/// Receive rounds (of up to 10 messages) per sweep at most.
const SWEEP_ROUNDS: usize = 100;

pub struct DeadLetters {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

impl DeadLetters {
    /// The queue named by `DEAD_LETTER_QUEUE_URL`; `None` when unset (locally).
    pub async fn from_env() -> Option<DeadLetters> {
        let url = std::env::var("DEAD_LETTER_QUEUE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())?;
        Some(DeadLetters {
            sqs: aws_sdk_sqs::Client::new(crate::inbound::config::sdk_config().await),
            url,
        })
    }

    /// A sweep over a client built elsewhere (tests point it at moto).
    pub fn new(sqs: aws_sdk_sqs::Client, url: impl Into<String>) -> DeadLetters {
        DeadLetters {
            sqs,
            url: url.into(),
        }
    }

    /// Push what is parked, within `budget`; returns the counts.
    pub async fn sweep(&self, pusher: &Pusher, budget: Budget) -> Value {
        let (mut pushed, mut kept, mut dropped) = (0u64, 0u64, 0u64);
        for _ in 0..SWEEP_ROUNDS {
            if budget.expired() {
                break;
            }
            let received = match self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the dead-letter queue");
                    break;
                }
            };
            let messages = received.messages();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let delete = match m.body().and_then(parked_change) {
                    Some(change) => match pusher.push(&change).await {
                        Ok(report) if !report.retryable_failure() => {
                            pushed += 1;
                            true
                        }
                        Ok(_) => {
                            kept += 1;
                            false
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "store unavailable while sweeping");
                            kept += 1;
                            false
                        }
                    },
                    None => {
                        tracing::warn!(message = ?m.message_id(), "dead letter is no state change; dropped");
                        dropped += 1;
                        true
                    }
                };
                if let (true, Some(handle)) = (delete, m.receipt_handle()) {
                    if let Err(e) = self
                        .sqs
                        .delete_message()
                        .queue_url(&self.url)
                        .receipt_handle(handle)
                        .send()
                        .await
                    {
                        tracing::warn!(error = %e, "dead letter not deleted; it comes back");
                    }
                }
            }
        }
        tracing::info!(pushed, kept, dropped, "dead-letter queue swept");
        crate::app::metrics::dead_letters_swept("pushed", pushed);
        crate::app::metrics::dead_letters_swept("kept", kept);
        crate::app::metrics::dead_letters_swept("dropped", dropped);
        json!({"pushed": pushed, "kept": kept, "dropped": dropped})
    }
}

/// The change in a dead letter: the EventBridge event itself (rule DLQ), or inside
/// `requestPayload` (Lambda's on-failure record of an async invocation).
pub fn parked_change(body: &str) -> Option<StateChange> {
    let v: Value = serde_json::from_str(body).ok()?;
    let event = v.get("requestPayload").cloned().unwrap_or(v);
    serde_json::from_value::<crate::inbound::lambda::BusEvent>(event)
        .ok()
        .map(|e| e.detail)
}

#[cfg(test)]
mod tests {
    use super::parked_change;

    #[test]
    fn dead_letters_of_both_kinds() {
        let change = r#"{"id":"c1","user":"ana","item_id":"i1","origin":"plex","watched":true,
            "progress_ms":null,"state_updated_at":"2025-01-01T00:00:00Z","kind":"watched"}"#;
        let event =
            format!(r#"{{"detail-type":"StateChange","source":"watchstate","detail":{change}}}"#);
        assert_eq!(parked_change(&event).unwrap().id, "c1");
        let record = format!(
            r#"{{"version":"1.0","requestContext":{{"condition":"RetriesExhausted"}},"requestPayload":{event}}}"#
        );
        assert_eq!(parked_change(&record).unwrap().item_id, "i1");
        assert!(parked_change("not json").is_none());
    }
}

//! The push dead-letter queue on SQS: the [`DeadLetters`] port's adapter. A parked
//! message is the EventBridge event itself (the rule's DLQ) or Lambda's on-failure
//! record of an async invocation, which holds the event as `requestPayload`.

use async_trait::async_trait;
use aws_sdk_sqs::error::{DisplayErrorContext, SdkError};
use serde_json::Value;

use crate::adapters::eventbridge::BusEvent;
use crate::domain::model::StateChange;
use crate::ports::dead_letters::{DeadLetter, DeadLetterError, DeadLetters};

/// Most messages one ReceiveMessage returns.
const MAX_RECEIVE: usize = 10;

pub struct SqsDeadLetters {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

impl SqsDeadLetters {
    /// The queue at `url`, over a client built elsewhere (tests point it at moto).
    pub fn new(sqs: aws_sdk_sqs::Client, url: impl Into<String>) -> SqsDeadLetters {
        SqsDeadLetters {
            sqs,
            url: url.into(),
        }
    }

    /// The queue at `url`, over the process's AWS configuration.
    pub fn from_sdk_config(sdk: &aws_types::SdkConfig, url: impl Into<String>) -> Self {
        SqsDeadLetters::new(aws_sdk_sqs::Client::new(sdk), url)
    }
}

fn unavailable<E: std::error::Error + 'static, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> DeadLetterError {
    DeadLetterError::Unavailable(DisplayErrorContext(&e).to_string())
}

#[async_trait]
impl DeadLetters for SqsDeadLetters {
    async fn receive(&self, max: usize) -> Result<Vec<DeadLetter>, DeadLetterError> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, MAX_RECEIVE) as i32)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(received
            .messages()
            .iter()
            .map(|m| DeadLetter {
                id: m.message_id().map(str::to_string),
                change: m.body().and_then(parked_change),
                receipt: m.receipt_handle().map(str::to_string),
            })
            .collect())
    }

    async fn delete(&self, letter: &DeadLetter) -> Result<(), DeadLetterError> {
        let Some(handle) = &letter.receipt else {
            return Ok(());
        };
        self.sqs
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(handle)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// The change in a dead letter: the EventBridge event itself (rule DLQ), or inside
/// `requestPayload` (Lambda's on-failure record of an async invocation).
pub fn parked_change(body: &str) -> Option<StateChange> {
    let v: Value = serde_json::from_str(body).ok()?;
    let event = v.get("requestPayload").cloned().unwrap_or(v);
    serde_json::from_value::<BusEvent>(event)
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

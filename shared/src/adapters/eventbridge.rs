//! The AWS bus: each state change becomes one EventBridge event on the custom bus
//! (`Source: watchstate`, `DetailType: StateChange`, `Detail`: the change as JSON;
//! [`BusEvent`] reads it back). A rule on the bus routes it to the push function. An
//! unfinished import goes the same way as an `ImportPage` event
//! ([`EventBridgeContinuations`]), routed to the import function.
//!
//! A failed publish is never fatal: the change stays in the store's outbox and
//! [`crate::app::outbox::drain`] sends it later. So this adapter fails fast (short timeouts, a few
//! quick retries) rather than holding a webhook open while EventBridge is unreachable.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eventbridge::config::retry::RetryConfig;
use aws_sdk_eventbridge::config::timeout::TimeoutConfig;
use aws_sdk_eventbridge::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::domain::model::StateChange;
use crate::ports::bus::{Bus, BusError, Continuations, IMPORT_PAGE};

/// The event's `Source`; rules match on it.
pub const SOURCE: &str = "watchstate";
/// The event's `DetailType`; rules match on it.
pub const DETAIL_TYPE: &str = "StateChange";

/// Whole call, retries included: an unreachable bus costs the webhook at most this.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
/// One attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const MAX_ATTEMPTS: u32 = 3;
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);

pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventBridgeBus {
    /// A bus over a client built elsewhere, used as it is (its own timeouts and retries).
    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: impl Into<String>) -> Self {
        EventBridgeBus {
            client,
            bus_name: bus_name.into(),
        }
    }

    /// A bus from shared AWS config (region, credentials, endpoint), with this
    /// adapter's short timeouts and quick retries on top.
    pub fn from_sdk_config(sdk: &aws_types::SdkConfig, bus_name: impl Into<String>) -> Self {
        let config = aws_sdk_eventbridge::config::Builder::from(sdk)
            .timeout_config(timeouts())
            .retry_config(retries())
            .build();
        EventBridgeBus::new(aws_sdk_eventbridge::Client::from_conf(config), bus_name)
    }

    pub fn bus_name(&self) -> &str {
        &self.bus_name
    }
}

/// An EventBridge event carrying a state change (`detail-type: StateChange`), as the
/// push function receives it and as the dead-letter queue keeps it.
#[derive(Debug, serde::Deserialize)]
pub struct BusEvent {
    #[serde(rename = "detail-type", default)]
    pub detail_type: String,
    pub detail: StateChange,
}

/// Publishes an import's continuation as an `ImportPage` event on the bus.
pub struct EventBridgeContinuations(EventBridgeBus);

impl EventBridgeContinuations {
    /// On the bus `bus_name`, with the bus adapter's timeouts and retries.
    pub fn from_sdk_config(sdk: &aws_types::SdkConfig, bus_name: impl Into<String>) -> Self {
        EventBridgeContinuations(EventBridgeBus::from_sdk_config(sdk, bus_name))
    }
}

#[async_trait]
impl Continuations for EventBridgeContinuations {
    async fn hand_on(&self, payload: &serde_json::Value) -> Result<(), BusError> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.0.bus_name)
            .source(SOURCE)
            .detail_type(IMPORT_PAGE)
            .detail(payload.to_string())
            .build();
        self.0.put_one(entry).await
    }
}

/// Short timeouts: the webhook answers within seconds even when the bus is gone.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The SDK's standard retry (transient and throttling errors, jittered backoff),
/// with a short first backoff so that all attempts fit in the operation timeout.
pub fn retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
}

/// Most entries one PutEvents takes.
const MAX_ENTRIES: usize = 10;

impl EventBridgeBus {
    fn entry(&self, change: &StateChange) -> Result<PutEventsRequestEntry, BusError> {
        let detail = serde_json::to_string(change)
            .map_err(|e| BusError::Unavailable(format!("cannot encode the change: {e}")))?;
        Ok(PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(SOURCE)
            .detail_type(DETAIL_TYPE)
            .detail(detail)
            .build())
    }
}

#[async_trait]
impl Bus for EventBridgeBus {
    /// Ten changes per PutEvents; after a call that failed as a whole (EventBridge
    /// unreachable), the rest fail without trying, so an outage costs one timeout.
    async fn publish_batch(&self, changes: &[StateChange]) -> Vec<Result<(), BusError>> {
        let mut out = Vec::with_capacity(changes.len());
        let mut down: Option<String> = None;
        for chunk in changes.chunks(MAX_ENTRIES) {
            if let Some(reason) = &down {
                out.extend(
                    chunk
                        .iter()
                        .map(|_| Err(BusError::Unavailable(reason.clone()))),
                );
                continue;
            }
            let entries: Result<Vec<_>, _> = chunk.iter().map(|c| self.entry(c)).collect();
            let entries = match entries {
                Ok(e) => e,
                Err(e) => {
                    out.extend(
                        chunk
                            .iter()
                            .map(|_| Err(BusError::Unavailable(e.to_string()))),
                    );
                    continue;
                }
            };
            match self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(o) => {
                    let results = o.entries();
                    for i in 0..chunk.len() {
                        let code = results.get(i).and_then(|e| e.error_code());
                        out.push(match (results.get(i), code) {
                            (Some(_), None) => Ok(()),
                            (_, c) => Err(BusError::Unavailable(format!(
                                "PutEvents rejected the event: {}",
                                c.unwrap_or("unknown")
                            ))),
                        });
                    }
                }
                Err(e) => {
                    let reason = describe(&e);
                    out.extend(
                        chunk
                            .iter()
                            .map(|_| Err(BusError::Unavailable(reason.clone()))),
                    );
                    down = Some(reason);
                }
            }
        }
        out
    }

    async fn publish(&self, change: &StateChange) -> Result<(), BusError> {
        self.put_one(self.entry(change)?).await
    }
}

impl EventBridgeBus {
    /// One PutEvents of one entry; a rejected entry is an error with its code.
    async fn put_one(&self, entry: PutEventsRequestEntry) -> Result<(), BusError> {
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| BusError::Unavailable(describe(&e)))?;
        if out.failed_entry_count() > 0 {
            let code = out
                .entries()
                .iter()
                .find_map(|e| e.error_code())
                .unwrap_or("unknown");
            return Err(BusError::Unavailable(format!(
                "PutEvents rejected the event: {code}"
            )));
        }
        Ok(())
    }
}

/// What went wrong, by kind and error code only: no request, no credentials.
fn describe<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> String {
    match e {
        SdkError::ServiceError(s) => {
            format!(
                "PutEvents failed: {}",
                s.err().code().unwrap_or("service error")
            )
        }
        SdkError::TimeoutError(_) => "PutEvents timed out".into(),
        SdkError::DispatchFailure(d) => {
            let kind = if d.is_timeout() {
                "timeout"
            } else if d.is_io() {
                "connection failed"
            } else {
                "dispatch failure"
            };
            format!("PutEvents could not reach EventBridge: {kind}")
        }
        SdkError::ResponseError(_) => "PutEvents got an unreadable response".into(),
        SdkError::ConstructionFailure(_) => "PutEvents request could not be built".into(),
        _ => "PutEvents failed".into(),
    }
}

//! The AWS bus: each state change becomes one EventBridge event on the custom bus
//! (`Source: watchstate`, `DetailType: StateChange`, `Detail`: the change as JSON).
//! A rule on the bus routes it to the push function.
//!
//! A failed publish is never fatal: the change stays in the store's outbox and
//! [`super::drain`] sends it later. So this adapter fails fast (short timeouts, a few
//! quick retries) rather than holding a webhook open while EventBridge is unreachable.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eventbridge::config::retry::RetryConfig;
use aws_sdk_eventbridge::config::timeout::TimeoutConfig;
use aws_sdk_eventbridge::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::{Bus, BusError};
use crate::model::StateChange;

/// The event's `Source`; rules match on it.
pub const SOURCE: &str = "watchstate";
/// The event's `DetailType`; rules match on it.
pub const DETAIL_TYPE: &str = "StateChange";
/// The environment variable naming the custom bus.
pub const BUS_ENV: &str = "EVENT_BUS_NAME";

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
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig, bus_name: impl Into<String>) -> Self {
        let config = aws_sdk_eventbridge::config::Builder::from(sdk)
            .timeout_config(timeouts())
            .retry_config(retries())
            .build();
        EventBridgeBus::new(aws_sdk_eventbridge::Client::from_conf(config), bus_name)
    }

    /// The bus named by `EVENT_BUS_NAME`, configured from the environment
    /// (`AWS_REGION`, the credential chain, `AWS_ENDPOINT_URL` for moto). `None` when
    /// the variable is unset or empty: changes then wait in the outbox.
    pub async fn from_env() -> Option<EventBridgeBus> {
        let name = std::env::var(BUS_ENV)
            .ok()
            .filter(|n| !n.trim().is_empty())?;
        Some(EventBridgeBus::from_sdk_config(
            crate::config::sdk_config().await,
            name,
        ))
    }

    pub fn bus_name(&self) -> &str {
        &self.bus_name
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

#[async_trait]
impl Bus for EventBridgeBus {
    async fn publish(&self, change: &StateChange) -> Result<(), BusError> {
        let detail = serde_json::to_string(change)
            .map_err(|e| BusError::Unavailable(format!("cannot encode the change: {e}")))?;
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(SOURCE)
            .detail_type(DETAIL_TYPE)
            .detail(detail)
            .build();
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

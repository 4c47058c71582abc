//! Adapters: the ports implemented over real parts (SQLite, DynamoDB, EventBridge,
//! the SQS dead-letter queue, the in-process bus, KMS-sealed secrets) and the media
//! servers (one folder per server: webhook parser and API client).

pub mod eventbridge;
#[cfg(feature = "local")]
pub mod local_bus;
pub mod media;
pub mod secrets;
pub mod sqs;
pub mod store;

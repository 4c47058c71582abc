//! Use cases: applying the rules against the store (ingest, console marks), pushing a
//! change to the other backends and batches of them, the scheduled import and export,
//! draining the outbox to the bus, sweeping the dead letters, the delivery log's
//! diagnosis and the metrics the use cases emit.

pub mod diagnose;
#[cfg(feature = "media")]
pub mod fanout;
pub mod ingest;
pub mod metrics;
pub mod outbox;
#[cfg(feature = "media")]
pub mod push;
#[cfg(feature = "media")]
pub mod tasks;

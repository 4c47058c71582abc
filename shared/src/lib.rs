//! watchstate: keeps "watched" state in sync across a household's Plex, Jellyfin and
//! Emby servers. All behaviour lives here; the Lambda functions are thin glue.
//!
//! Layers, each importing only those below it (`docs/ARCHITECTURE.md`):
//!
//! - [`domain`]: the vocabulary and the sync rules, pure.
//! - [`ports`]: the Store and Bus traits the use cases speak through.
//! - [`app`]: the use cases (ingest, push, import, export, drain, diagnosis).
//! - [`adapters`]: SQLite, DynamoDB, EventBridge, KMS, and the media servers.
//! - [`inbound`]: the HTTP handlers, the Lambda glue, the composition from env.
//!
//! Features (what a build carries): `local` (the embedded SQLite store and the
//! in-process bus), `media` (the media-server API clients, push, tasks and the api),
//! `http-events` (the lambda_http glue of [`inbound::lambda`]). Lambda builds take only what
//! their function runs; see the functions' `Cargo.toml`.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod inbound;
pub mod ports;

//! watchstate: keeps "watched" state in sync across a household's Plex, Jellyfin and
//! Emby servers. All behaviour lives here; the Lambda functions are thin glue.
//!
//! - [`model`], [`guid`], [`when`]: the normalized vocabulary.
//! - [`backends`]: one folder per media server (webhook parser, API client).
//! - [`sync`]: the rules; [`ingest`]: applying them against the store.
//! - [`push`]: carrying a change to the other backends; [`fanout`]: batches of them.
//! - [`store`], [`bus`]: ports with their local and AWS adapters.
//! - [`http`]: the webhook and api handlers over plain `http` types, and the console.
//! - [`diagnose`]: the delivery log's common problems, explained.
//! - [`tasks`]: the scheduled import and export that repair what webhooks missed.
//!
//! Features (what a build carries): `local` (the embedded SQLite store and the
//! in-process bus), `media` (the media-server API clients, push, tasks and the api),
//! `http-events` (the lambda_http glue of [`entry`]). Lambda builds take only what
//! their function runs; see the functions' `Cargo.toml`.

pub mod backends;
pub mod bus;
pub mod config;
pub mod diagnose;
pub mod entry;
#[cfg(feature = "media")]
pub mod fanout;
pub mod guid;
pub mod http;
pub mod ids;
pub mod ingest;
pub mod metrics;
pub mod model;
pub mod permissions;
#[cfg(feature = "media")]
pub mod push;
pub mod secrets;
pub mod store;
pub mod sync;
#[cfg(feature = "media")]
pub mod tasks;
pub mod token;
pub mod when;

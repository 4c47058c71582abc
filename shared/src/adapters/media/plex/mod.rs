//! Plex: its webhook parser, its API client, and the JSON shapes both (and Tautulli's
//! parser) read.

#[cfg(feature = "media")]
mod answers;
#[cfg(feature = "media")]
pub mod client;
pub(crate) mod dto;
pub mod webhook;

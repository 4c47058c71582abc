//! Jellyfin: its webhook parser and its API client.

#[cfg(feature = "media")]
pub mod client;
pub mod webhook;

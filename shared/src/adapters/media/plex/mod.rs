//! Plex: its webhook parser and its API client.

#[cfg(feature = "media")]
pub mod client;
#[cfg(feature = "media")]
mod dto;
pub mod webhook;

//! Jellyfin: its webhook parser and its API client.

pub mod client;
pub mod webhook;

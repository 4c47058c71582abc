//! Inbound: how requests and events reach the use cases. The HTTP handlers over plain
//! `http` types ([`http`]), the Lambda conversions and entry points ([`lambda`]), and
//! the composition from the environment ([`config`], [`permissions`]).

pub mod config;
pub mod http;
pub mod lambda;
pub mod permissions;

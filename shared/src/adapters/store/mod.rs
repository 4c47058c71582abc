//! The Store port's adapters: [`sqlite`] (embedded, local) and [`dynamo`] (AWS), and
//! the delivery-body codec both use ([`body`]).

pub mod body;
pub mod dynamo;
#[cfg(feature = "local")]
pub mod sqlite;

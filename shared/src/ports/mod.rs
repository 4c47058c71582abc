//! Ports: the traits the use cases speak to the outside world through, with their
//! error enums. They name only domain types.

pub mod bus;
pub mod dead_letters;
pub mod media;
pub mod store;
pub mod tasks;

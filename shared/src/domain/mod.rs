//! The domain: the vocabulary (model, guids, times, ids, webhook tokens) and the sync
//! rules as pure functions. No I/O, no SDK, Lambda or HTTP types; imports nothing of
//! the other layers.

pub mod guid;
pub mod ids;
pub mod model;
pub mod sync;
pub mod token;
pub mod when;

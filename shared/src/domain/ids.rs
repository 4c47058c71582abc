//! Random identifiers for items, changes and deliveries.

/// 16 random bytes as 32 hex characters. Falls back to time and a counter only if
/// the OS has no randomness to give, which no supported platform does.
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let t = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
        b[..8].copy_from_slice(&t.to_be_bytes());
        b[8..].copy_from_slice(&N.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    }
    hex::encode(b)
}

/// An id that sorts by time: for the delivery log (newest first) and the outbox.
pub fn time_ordered_id(at: chrono::DateTime<chrono::Utc>) -> String {
    format!("{:016x}-{}", at.timestamp_micros().max(0), &new_id()[..12])
}

/// The smallest [`time_ordered_id`] of an instant: ids of that instant or later sort
/// at or after it.
pub fn time_ordered_id_floor(at: chrono::DateTime<chrono::Utc>) -> String {
    format!("{:016x}-", at.timestamp_micros().max(0))
}

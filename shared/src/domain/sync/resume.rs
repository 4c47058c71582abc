//! Resume positions (docs/RELIABILITY.md, "The rules, one place": Resume positions): which positions are worth keeping,
//! which of two wins, and when a backend's position is already close enough.
//!
//! A position travels like play state: the newest one wins (a pause's time, or the
//! backend's own time of a listed position), it never exists on a watched item, and it
//! is pushed only to backends whose position differs by more than [`SLACK_MS`].

use chrono::{DateTime, Utc};

/// Positions under this are noise (a play started and stopped).
pub const MIN_PROGRESS_MS: u64 = 60_000;
/// Positions in the last 5 % of the runtime are credits, not a resume point.
pub const END_FRACTION: f64 = 0.95;
/// A backend's position within this of the stored one is already in sync.
pub const SLACK_MS: u64 = 30_000;

/// A position worth keeping, or why not.
pub fn usable(position_ms: Option<u64>, duration_ms: Option<u64>) -> Result<u64, String> {
    let Some(pos) = position_ms else {
        return Err("event carries no position".into());
    };
    if pos < MIN_PROGRESS_MS {
        return Err(format!("position {pos} ms is under 60 s"));
    }
    if let Some(d) = duration_ms.filter(|d| *d > 0) {
        if pos as f64 >= d as f64 * END_FRACTION {
            return Err(format!("position {pos} ms is in the last 5 % of {d} ms"));
        }
    }
    Ok(pos)
}

/// Whether a position taken at `at` replaces the stored one taken at `stored_at`:
/// an older one never does (a late pause loses); of two in the same second the later
/// report wins (pause, resume, pause); a position without a time never beats one with
/// a time.
pub fn newer(at: Option<DateTime<Utc>>, stored_at: Option<DateTime<Utc>>) -> bool {
    match (at, stored_at) {
        (Some(a), Some(s)) => a >= s,
        (Some(_), None) => true,
        (None, None) => true,
        (None, Some(_)) => false,
    }
}

/// Whether a backend at `remote` is in sync with `wanted`.
pub fn close_enough(remote: Option<u64>, wanted: u64) -> bool {
    remote.unwrap_or(0).abs_diff(wanted) <= SLACK_MS
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> Option<DateTime<Utc>> {
        Utc.timestamp_opt(s, 0).single()
    }

    #[test]
    fn usable_positions() {
        assert!(usable(None, None).is_err());
        assert!(usable(Some(59_999), None).is_err());
        assert_eq!(usable(Some(60_000), None), Ok(60_000));
        assert!(usable(Some(9_500), Some(10_000)).is_err());
        assert!(usable(Some(950_000), Some(1_000_000)).is_err(), "last 5 %");
        assert_eq!(usable(Some(940_000), Some(1_000_000)), Ok(940_000));
    }

    #[test]
    fn newest_position_wins() {
        assert!(newer(at(2), at(1)));
        assert!(newer(at(1), at(1)), "the later report of the same second");
        assert!(!newer(at(1), at(2)), "a late older pause loses");
        assert!(newer(at(1), None));
        assert!(
            !newer(None, at(1)),
            "an untimed position never beats a timed one"
        );
        assert!(newer(None, None));
    }

    #[test]
    fn thirty_seconds_of_slack() {
        assert!(close_enough(Some(100_000), 130_000));
        assert!(!close_enough(Some(100_000), 130_001));
        assert!(!close_enough(None, 600_000));
    }
}

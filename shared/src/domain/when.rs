//! Reading the times media servers write: unix seconds (Plex), RFC 3339 with up to
//! seven fraction digits (Jellyfin, Emby), Tautulli's formatted dates; and the rule
//! that a payload time in the future or before 2000 is not believed.

use chrono::{DateTime, TimeZone, Utc};

/// Unix seconds; `None` for zero, negative or out-of-range values.
pub fn from_unix(secs: i64) -> Option<DateTime<Utc>> {
    if secs <= 0 {
        return None;
    }
    Utc.timestamp_opt(secs, 0).single()
}

/// RFC 3339 / ISO 8601 with offset (any number of fraction digits). Jellyfin's
/// `0001-01-01T00:00:00.0000000Z` ("never") comes back as `None` via [`believable`].
pub fn from_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// The earliest payload time we believe.
pub fn year_2000() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The payload's own time, when it is believable (not in the future, not before 2000).
pub fn own_time(
    payload: Option<DateTime<Utc>>,
    received_at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    payload.filter(|t| believable(*t, received_at))
}

/// The event time the rules use: the payload's own time ([`own_time`]), else the time
/// received.
pub fn event_time(payload: Option<DateTime<Utc>>, received_at: DateTime<Utc>) -> DateTime<Utc> {
    own_time(payload, received_at).unwrap_or(received_at)
}

pub fn believable(t: DateTime<Utc>, received_at: DateTime<Utc>) -> bool {
    t >= year_2000() && t <= received_at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seven_fraction_digits() {
        let t = from_rfc3339("2023-01-04T06:36:12.8535910Z").unwrap();
        assert_eq!(t.timestamp(), 1672814172);
        let t = from_rfc3339("2025-01-19T16:20:15.0134271-05:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2025-01-19T21:20:15.013427100+00:00");
    }

    #[test]
    fn never_and_future_are_replaced() {
        let now = from_unix(1_700_000_000).unwrap();
        let never = from_rfc3339("0001-01-01T00:00:00.0000000Z").unwrap();
        assert_eq!(event_time(Some(never), now), now);
        let future = from_unix(1_800_000_000).unwrap();
        assert_eq!(event_time(Some(future), now), now);
        let past = from_unix(1_600_000_000).unwrap();
        assert_eq!(event_time(Some(past), now), past);
        assert_eq!(event_time(None, now), now);
    }

    #[test]
    fn unix_zero_is_none() {
        assert_eq!(from_unix(0), None);
        assert_eq!(from_unix(-5), None);
    }
}

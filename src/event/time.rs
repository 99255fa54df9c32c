//! Event time: an instant with nanosecond precision, parsed from RFC 3339.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use std::fmt;

/// Nanoseconds since the Unix epoch (UTC). Covers 1677-09-21 to 2262-04-11.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Why a timestamp string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampError {
    /// Not RFC 3339.
    Syntax,
    /// RFC 3339, but outside the supported range.
    OutOfRange,
}

impl Timestamp {
    pub const fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    pub fn nanos(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 timestamp such as `2025-04-15T00:00:00Z`.
    pub fn parse_rfc3339(s: &str) -> Result<Self, TimestampError> {
        let dt = DateTime::parse_from_rfc3339(s).map_err(|_| TimestampError::Syntax)?;
        dt.timestamp_nanos_opt().map(Self).ok_or(TimestampError::OutOfRange)
    }

    pub fn now() -> Self {
        Utc::now().timestamp_nanos_opt().map(Self).expect("the clock is within 1677..2262")
    }

    /// Seconds from `earlier` to `self` (negative if `earlier` is later).
    pub fn seconds_since(self, earlier: Timestamp) -> f64 {
        (self.0 as i128 - earlier.0 as i128) as f64 / 1e9
    }

    /// Whole seconds since the epoch, as Prometheus wants timestamps.
    pub fn as_unix_seconds(self) -> f64 {
        self.0 as f64 / 1e9
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_datetime().to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::str::FromStr for Timestamp {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse_rfc3339(s).map_err(|e| match e {
            TimestampError::Syntax => {
                format!("{s:?} is not an RFC 3339 timestamp (e.g. 2025-04-15T00:00:00Z)")
            }
            TimestampError::OutOfRange => format!("{s:?} is outside 1677-09-21..2262-04-11"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_with_offsets_and_prints_utc() {
        let t = Timestamp::parse_rfc3339("2025-04-15T08:00:00+08:00").unwrap();
        assert_eq!(t.to_string(), "2025-04-15T00:00:00Z");
        assert_eq!(Timestamp::parse_rfc3339("2025-04-15"), Err(TimestampError::Syntax));
        assert_eq!(Timestamp::parse_rfc3339("9999-01-01T00:00:00Z"), Err(TimestampError::OutOfRange));
    }

    #[test]
    fn seconds_since_is_signed() {
        let a = Timestamp::from_nanos(0);
        let b = Timestamp::from_nanos(1_500_000_000);
        assert_eq!(b.seconds_since(a), 1.5);
        assert_eq!(a.seconds_since(b), -1.5);
    }
}

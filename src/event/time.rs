//! Event time: an instant with nanosecond precision, parsed from RFC 3339.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use std::fmt;

/// Nanoseconds since the Unix epoch (UTC). Covers 1677-09-21 to 2262-04-11.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// A length of time, in [`Timestamp`]'s unit (nanoseconds): a history's
/// step, a query's window. Never negative where the crate makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(i64);

impl Span {
    pub const SECOND: Span = Span(1_000_000_000);
    pub const DAY: Span = Span(86_400 * 1_000_000_000);
    pub const WEEK: Span = Span(7 * 86_400 * 1_000_000_000);

    pub const fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// `n` days (`n` up to about 106,000: the supported span of time).
    pub const fn days(n: i64) -> Self {
        Self(n * Self::DAY.0)
    }

    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds (rounded toward zero).
    pub const fn whole_seconds(self) -> i64 {
        self.0 / Self::SECOND.0
    }
}

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
        if let Some(t) = parse_common(s.as_bytes()) {
            return Ok(t);
        }
        let dt = DateTime::parse_from_rfc3339(s).map_err(|_| TimestampError::Syntax)?;
        dt.timestamp_nanos_opt().map(Self).ok_or(TimestampError::OutOfRange)
    }

    pub fn now() -> Self {
        Utc::now().timestamp_nanos_opt().map(Self).expect("the clock is within 1677..2262")
    }

    /// `self - span`, or the first representable instant.
    pub fn saturating_sub(self, span: Span) -> Self {
        Self(self.0.saturating_sub(span.0))
    }

    /// `self + span`, unless that is past the last representable instant.
    pub fn checked_add(self, span: Span) -> Option<Self> {
        self.0.checked_add(span.0).map(Self)
    }

    /// The start of the `span` (a day, say) that holds `self`, counted
    /// from the epoch; `None` before the first whole one.
    pub fn floor_to(self, span: Span) -> Option<Self> {
        self.0.checked_sub(self.0.rem_euclid(span.0)).map(Self)
    }

    /// `seconds` after the epoch (saturating at the ends of the span).
    pub fn from_unix_seconds(seconds: i64) -> Self {
        Self(seconds.saturating_mul(Span::SECOND.0))
    }

    /// Whole seconds since the epoch (rounded toward zero).
    pub fn whole_unix_seconds(self) -> i64 {
        self.0 / Span::SECOND.0
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

/// `now`, a date (`2022-01-01`, midnight UTC) or RFC 3339.
pub fn parse_when(s: &str) -> Result<Timestamp, String> {
    match s {
        "now" => Ok(Timestamp::now()),
        _ if s.len() == 10 => format!("{s}T00:00:00Z").parse(),
        _ => s.parse(),
    }
}

/// The longest step [`parse_step`] accepts: a hundred years, in seconds.
const MAX_STEP_SECONDS: i64 = 100 * 366 * 86_400;

/// `30m`, `6h`, `1d`, `2w`; at most a hundred years.
pub fn parse_step(s: &str) -> Result<Span, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| format!("{s:?} is not a duration such as 1d, 6h or 15m"))?;
    let unit = match unit {
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("{s:?}: the unit must be m, h, d or w")),
    };
    match n.checked_mul(unit) {
        _ if n == 0 => Err(format!("{s:?}: the step must be positive")),
        Some(seconds) if seconds <= MAX_STEP_SECONDS => Ok(Span(seconds * Span::SECOND.0)),
        _ => Err(format!("{s:?}: the step must be at most 100 years")),
    }
}

/// The common spelling `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, read
/// without chrono's general parser; `None` for anything else (lower-case
/// `t`/`z`, a space separator, leap seconds, out-of-range values...), which
/// chrono then reads or refuses. A property test checks it agrees with chrono.
fn parse_common(s: &[u8]) -> Option<Timestamp> {
    fn num(s: &[u8], from: usize, len: usize) -> Option<i64> {
        s.get(from..from + len)?.iter().try_fold(0i64, |n, &b| b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0')))
    }
    let punct = |at: usize, want: u8| (s.get(at) == Some(&want)).then_some(());
    let (year, month, day) = (num(s, 0, 4)?, num(s, 5, 2)?, num(s, 8, 2)?);
    let (hour, minute, second) = (num(s, 11, 2)?, num(s, 14, 2)?, num(s, 17, 2)?);
    punct(4, b'-')?;
    punct(7, b'-')?;
    punct(10, b'T')?;
    punct(13, b':')?;
    punct(16, b':')?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&month) || day < 1 || day > month_days[month as usize - 1] {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0;
    if s.get(at) == Some(&b'.') {
        let digits = s[at + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        nanos = num(s, at + 1, digits)? * 10i64.pow(9 - digits as u32);
        at += 1 + digits;
    }
    let offset = match s.get(at..)? {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (num(&[*h1, *h2], 0, 2)?, num(&[*m1, *m2], 0, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            (h * 60 + m) * 60 * if *sign == b'-' { -1 } else { 1 }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm), exact for any year here.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos).map(Timestamp)
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
    fn times_and_steps_for_people_parse_or_say_why_not() {
        assert_eq!(parse_when("2022-01-01").unwrap(), Timestamp::parse_rfc3339("2022-01-01T00:00:00Z").unwrap());
        assert!(parse_when("2022-13-01").is_err());
        assert_eq!(parse_step("1d"), Ok(Span::DAY));
        assert_eq!(parse_step("15m").map(Span::whole_seconds), Ok(900));
        assert!(parse_step("0d").unwrap_err().contains("positive"));
        assert!(parse_step("1y").unwrap_err().contains("unit"));
        assert!(parse_step("106752d").unwrap_err().contains("at most 100 years"));
        assert!(parse_step("144115188075855872d").unwrap_err().contains("at most 100 years"), "no overflow");
    }

    #[test]
    fn parses_rfc3339_with_offsets_and_prints_utc() {
        let t = Timestamp::parse_rfc3339("2025-04-15T08:00:00+08:00").unwrap();
        assert_eq!(t.to_string(), "2025-04-15T00:00:00Z");
        assert_eq!(Timestamp::parse_rfc3339("2025-04-15"), Err(TimestampError::Syntax));
        assert_eq!(Timestamp::parse_rfc3339("9999-01-01T00:00:00Z"), Err(TimestampError::OutOfRange));
    }

    fn chrono(s: &str) -> Option<i64> {
        DateTime::parse_from_rfc3339(s).ok().and_then(|d| d.timestamp_nanos_opt())
    }

    #[test]
    fn the_common_spelling_agrees_with_chrono() {
        for s in [
            "2025-04-15T00:00:00Z",
            "2024-02-29T23:59:59.123456789+08:00",
            "2023-02-29T00:00:00Z",
            "1970-01-01T00:00:00-00:30",
            "1677-09-21T00:12:43.145224192Z",
            "1677-09-21T00:12:43.145224191Z",
            "2262-04-11T23:47:16.854775807Z",
            "2262-04-11T23:47:16.854775808Z",
            "2025-04-15T00:00:60Z",
            "2025-04-15t00:00:00z",
            "2025-04-15T00:00:00.Z",
            "2025-04-15T00:00:00.1234567891Z",
            "2025-04-15T24:00:00Z",
            "2025-04-15T00:00:00+24:00",
        ] {
            let common = parse_common(s.as_bytes()).map(Timestamp::nanos);
            assert!(common.is_none() || common == chrono(s), "{s}: {common:?} vs {:?}", chrono(s));
        }
        assert!(parse_common(b"2025-04-15T00:00:00Z").is_some());
        assert!(parse_common(b"2025-04-15T00:00:00.5+08:00").is_some());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        #[test]
        fn any_timestamp_agrees_with_chrono(
            s in "(1[6-9]|2[0-3])[0-9]{2}-[01][0-9]-[0-3][0-9][Tt ][0-2][0-9]:[0-6][0-9]:[0-6][0-9](\\.[0-9]{0,10})?(Z|z|[+-][0-2][0-9]:[0-6][0-9])"
        ) {
            let common = parse_common(s.as_bytes()).map(Timestamp::nanos);
            proptest::prop_assert!(common.is_none() || common == chrono(&s), "{}: {:?} vs {:?}", s, common, chrono(&s));
        }
    }

    #[test]
    fn seconds_since_is_signed() {
        let a = Timestamp::from_nanos(0);
        let b = Timestamp::from_nanos(1_500_000_000);
        assert_eq!(b.seconds_since(a), 1.5);
        assert_eq!(a.seconds_since(b), -1.5);
    }
}

//! Durations in settings. A file or a variable writes one in milliseconds
//! (`5000`, the keys end in `_ms`) or with a unit (`"500ms"`, `"5s"`,
//! `"2m"`, `"1h"`); chiprisk holds a [`Duration`] and prints milliseconds
//! (`chiprisk config`). Use with `#[serde(with = "duration::millis")]`.

use std::time::Duration;

/// A duration as text: whole milliseconds, or a whole number and a unit.
pub fn parse(s: &str) -> Result<Duration, String> {
    // A leading `+`, as Rust's integer parser takes.
    let s = s.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("{s:?} is not a duration such as 5000, 500ms, 5s or 2m"))?;
    let millis = match unit.trim() {
        "" | "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(format!("{s:?}: the unit must be ms, s, m or h")),
    };
    millis.map(Duration::from_millis).ok_or_else(|| format!("{s:?} is too long"))
}

pub mod millis {
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(Millis)
    }

    struct Millis;

    impl Visitor<'_> for Millis {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("milliseconds, or a duration such as \"500ms\", \"5s\" or \"2m\"")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_millis(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v).map(Duration::from_millis).map_err(|_| E::custom("a duration cannot be negative"))
        }

        /// A number with a fraction is rounded, as the settings' former
        /// integer type took it.
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            if v.is_finite() && v >= 0.0 && v.round() <= u64::MAX as f64 {
                Ok(Duration::from_millis(v.round() as u64))
            } else {
                Err(E::custom("a duration must be a number of milliseconds, not negative"))
            }
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            super::parse(v).map_err(E::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_or_a_unit() {
        assert_eq!(parse("5000"), Ok(Duration::from_millis(5_000)));
        assert_eq!(parse("+5000"), Ok(Duration::from_millis(5_000)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3_600)));
        assert!(parse("5 days").unwrap_err().contains("unit"));
        assert!(parse("-5s").unwrap_err().contains("not a duration"));
        assert!(parse("99999999999999999h").unwrap_err().contains("too long"));
    }
}

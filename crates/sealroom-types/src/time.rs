//! `Timestamp`: milliseconds since the Unix epoch, UTC, written as RFC 3339.
//!
//! The small calendar code here (days from civil dates and back, after Howard Hinnant's
//! algorithms) keeps this crate free of a date library; the parsers are bounded and reject
//! anything out of the years 1970..=9999.

use std::fmt;

/// A point in time, UTC, with millisecond precision.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i64);

/// A string that is not a timestamp in an accepted form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {value:?}: {reason}")]
pub struct TimestampError {
    /// The rejected input, cut to 64 characters.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

fn err(value: &str, reason: &'static str) -> TimestampError {
    TimestampError {
        value: value.chars().take(64).collect(),
        reason,
    }
}

const MS_PER_DAY: i64 = 86_400_000;
const MAX_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0i64, |a, b| a * 10 + i64::from(b - b'0')))
}

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// The current time from the system clock.
    pub fn now() -> Self {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(MAX_MS))
            .unwrap_or(0);
        Timestamp(ms)
    }

    /// From milliseconds since the epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// From seconds since the epoch (saturating).
    pub const fn from_secs(s: i64) -> Self {
        Timestamp(s.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (floor).
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// This time plus `secs` seconds (saturating).
    pub const fn plus_secs(self, secs: i64) -> Self {
        Timestamp(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    fn from_parts(
        input: &str,
        (y, mo, d): (i64, i64, i64),
        (h, mi, s): (i64, i64, i64),
        ms: i64,
        offset_min: i64,
    ) -> Result<Self, TimestampError> {
        if !(1970..=9999).contains(&y) {
            return Err(err(input, "year out of range 1970..=9999"));
        }
        if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
            return Err(err(input, "no such date"));
        }
        // 60 is accepted as a leap second and folded into the next one.
        if h > 23 || mi > 59 || s > 60 {
            return Err(err(input, "no such time of day"));
        }
        let ms = days_from_civil(y, mo, d) * MS_PER_DAY
            + ((h * 60 + mi - offset_min) * 60 + s) * 1000
            + ms;
        if !(0..=MAX_MS).contains(&ms) {
            return Err(err(input, "out of range"));
        }
        Ok(Timestamp(ms))
    }

    /// Parses RFC 3339 / ISO 8601: `2026-01-31T12:00:00Z`, with optional fractional seconds and a
    /// `Z` or `±HH:MM` offset; a date alone (`2026-01-31`, as Azure SAS allows) means its midnight
    /// UTC; a time without offset is taken as UTC (Azure SAS writes them so).
    pub fn parse_rfc3339(input: &str) -> Result<Self, TimestampError> {
        let b = input.as_bytes();
        if b.len() > 40 {
            return Err(err(input, "too long"));
        }
        if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(err(input, "expected YYYY-MM-DD[THH:MM:SS[.fff][Z|±HH:MM]]"));
        }
        let date = match (digits(&b[0..4]), digits(&b[5..7]), digits(&b[8..10])) {
            (Some(y), Some(m), Some(d)) => (y, m, d),
            _ => return Err(err(input, "expected digits in the date")),
        };
        if b.len() == 10 {
            return Self::from_parts(input, date, (0, 0, 0), 0, 0);
        }
        if b.len() < 19 || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
            return Err(err(input, "expected THH:MM:SS after the date"));
        }
        let time = match (digits(&b[11..13]), digits(&b[14..16]), digits(&b[17..19])) {
            (Some(h), Some(m), Some(s)) => (h, m, s),
            _ => return Err(err(input, "expected digits in the time")),
        };
        let mut rest = &b[19..];
        let mut ms = 0;
        if let Some(frac) = rest.strip_prefix(b".") {
            let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 || n > 9 {
                return Err(err(input, "bad fractional seconds"));
            }
            let mut v = digits(&frac[..n.min(3)]).unwrap_or(0);
            for _ in n..3 {
                v *= 10;
            }
            ms = v;
            rest = &frac[n..];
        }
        let offset = match rest {
            b"" | b"Z" | b"z" => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                match (digits(&[*h1, *h2]), digits(&[*m1, *m2])) {
                    (Some(h), Some(m)) if h < 24 && m < 60 => {
                        let o = h * 60 + m;
                        if *sign == b'-' {
                            -o
                        } else {
                            o
                        }
                    }
                    _ => return Err(err(input, "bad UTC offset")),
                }
            }
            _ => return Err(err(input, "expected Z or ±HH:MM after the time")),
        };
        Self::from_parts(input, date, time, ms, offset)
    }

    /// Parses the compact ISO 8601 basic form of AWS Signature V4, `20260131T120000Z`.
    pub fn parse_basic(input: &str) -> Result<Self, TimestampError> {
        let b = input.as_bytes();
        if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
            return Err(err(input, "expected YYYYMMDDTHHMMSSZ"));
        }
        let p = |r: std::ops::Range<usize>| digits(&b[r]);
        match (p(0..4), p(4..6), p(6..8), p(9..11), p(11..13), p(13..15)) {
            (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s)) => {
                Self::from_parts(input, (y, mo, d), (h, mi, s), 0, 0)
            }
            _ => Err(err(input, "expected digits")),
        }
    }

    /// RFC 3339 in UTC: `2026-01-31T12:00:00Z`, or `...:00.250Z` when there are milliseconds.
    pub fn to_rfc3339(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(MS_PER_DAY);
        let rem = self.0.rem_euclid(MS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let (secs, ms) = (rem / 1000, rem % 1000);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )?;
        if ms != 0 {
            write!(f, ".{ms:03}")?;
        }
        f.write_str("Z")
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, TimestampError> {
        Self::parse_rfc3339(s)
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        Self::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let t = Timestamp::parse_rfc3339("2023-03-03T16:44:33Z").unwrap();
        assert_eq!(t.as_secs(), 1_677_861_873);
        assert_eq!(t.to_string(), "2023-03-03T16:44:33Z");
        assert_eq!(
            Timestamp::parse_rfc3339("1970-01-01").unwrap(),
            Timestamp::EPOCH
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2024-02-29T00:00:00.25+01:00")
                .unwrap()
                .to_string(),
            "2024-02-28T23:00:00.250Z"
        );
        assert_eq!(
            Timestamp::parse_basic("20230303T164433Z").unwrap(),
            Timestamp::from_secs(1_677_861_873)
        );
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "2023-02-29",
            "2023-13-01T00:00:00Z",
            "2023-01-01T24:00:00Z",
            "1969-12-31T23:59:59Z",
            "2023-01-01T00:00:00+25:00",
            "2023-01-01T00:00:00.Z",
            "2023-01-01T00:00:00ZZ",
            "２０２３-01-01",
            "2023-01-01T00:00",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad}");
        }
        assert!(Timestamp::parse_basic("20230303164433Z").is_err());
    }

    proptest::proptest! {
        #[test]
        fn display_parse_roundtrip(ms in 0i64..=MAX_MS) {
            let t = Timestamp::from_millis(ms);
            proptest::prop_assert_eq!(Timestamp::parse_rfc3339(&t.to_string()).unwrap(), t);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,45}") {
            let _ = Timestamp::parse_rfc3339(&s);
            let _ = Timestamp::parse_basic(&s);
        }
    }
}

//! Verification time. Certificates and collateral expire, so every verifier takes the time to
//! verify at as an explicit parameter; [`VerificationTime::now`] is the production choice, a fixed
//! time is how tests verify published evidence whose collateral has since expired.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A point in time, in seconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VerificationTime(pub u64);

impl VerificationTime {
    /// The system clock's current time.
    pub fn now() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        VerificationTime(secs)
    }

    /// Seconds since the Unix epoch.
    pub fn unix(self) -> u64 {
        self.0
    }

    /// Parses an RFC 3339 UTC time of the form `YYYY-MM-DDTHH:MM:SS[.fff]Z`, as Intel's
    /// collateral uses.
    pub fn parse_rfc3339(s: &str) -> Result<Self> {
        parse_rfc3339(s)
            .ok_or_else(|| Error::malformed("timestamp", format!("not RFC 3339 UTC: {s:?}")))
    }

    /// Checks `not_before <= self <= not_after`.
    pub(crate) fn check_within(
        self,
        what: impl Into<String>,
        not_before: u64,
        not_after: u64,
    ) -> Result<()> {
        if self.0 < not_before || self.0 > not_after {
            return Err(Error::NotValidAt {
                what: what.into(),
                now: self.0,
                not_before,
                not_after,
            });
        }
        Ok(())
    }
}

impl std::fmt::Display for VerificationTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (Unix seconds)", self.0)
    }
}

fn num(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_rfc3339(s: &str) -> Option<VerificationTime> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let (y, m, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    let time = time.split('.').next()?;
    let mut t = time.splitn(3, ':');
    let (hh, mm, ss) = (num(t.next()?)?, num(t.next()?)?, num(t.next()?)?);
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
        || hh > 23
        || mm > 59
        || ss > 60
    {
        return None;
    }
    let days = days_from_civil(y as i64, m as i64, day as i64);
    let secs = days.checked_mul(86_400)? + (hh * 3600 + mm * 60 + ss) as i64;
    u64::try_from(secs).ok().map(VerificationTime)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(
            VerificationTime::parse_rfc3339("1970-01-01T00:00:00Z")
                .unwrap()
                .0,
            0
        );
        assert_eq!(
            VerificationTime::parse_rfc3339("2025-06-19T10:16:03Z")
                .unwrap()
                .0,
            1_750_328_163
        );
        assert_eq!(
            VerificationTime::parse_rfc3339("2000-02-29T23:59:59.123Z")
                .unwrap()
                .0,
            951_868_799
        );
        for bad in [
            "",
            "2025-06-19",
            "2025-06-19T10:16:03",
            "2025-13-01T00:00:00Z",
            "x025-06-19T10:16:03Z",
            "+025-06-19T10:16:03Z",
        ] {
            assert!(VerificationTime::parse_rfc3339(bad).is_err(), "{bad}");
        }
    }
}

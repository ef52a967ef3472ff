//! RFC 3339 timestamps, as registries write an image config's `created`.
//!
//! A few dozen lines instead of a date-time crate: the policy only needs to order instants.

use std::fmt;

use crate::error::{Error, Result};

/// An instant as nanoseconds since the Unix epoch (UTC); ordered, copyable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i128);

impl Timestamp {
    /// From whole seconds since the epoch.
    pub fn from_unix_seconds(secs: i64) -> Self {
        Timestamp(i128::from(secs) * 1_000_000_000)
    }

    /// From nanoseconds since the epoch.
    pub fn from_unix_nanos(nanos: i128) -> Self {
        Timestamp(nanos)
    }

    /// Nanoseconds since the epoch.
    pub fn unix_nanos(self) -> i128 {
        self.0
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; `t`, `z` and a space for `T` are
    /// accepted as RFC 3339 allows.
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidTimestamp {
            input: input.to_owned(),
            reason,
        };
        let b = input.as_bytes();
        if b.len() < 20 {
            return Err(bad("too short"));
        }
        let num = |range: std::ops::Range<usize>| -> Option<i64> {
            let s = input.get(range)?;
            if s.bytes().all(|c| c.is_ascii_digit()) {
                s.parse().ok()
            } else {
                None
            }
        };
        let sep_ok = b[4] == b'-'
            && b[7] == b'-'
            && matches!(b[10], b'T' | b't' | b' ')
            && b[13] == b':'
            && b[16] == b':';
        if !sep_ok {
            return Err(bad("expected YYYY-MM-DDTHH:MM:SS"));
        }
        let fields = (
            num(0..4),
            num(5..7),
            num(8..10),
            num(11..13),
            num(14..16),
            num(17..19),
        );
        let (Some(year), Some(month), Some(day), Some(hour), Some(min), Some(sec)) = fields else {
            return Err(bad("expected digits in the date and time"));
        };
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(bad("no such date"));
        }
        // 60 allows a leap second, which orders as the next second's start.
        if hour > 23 || min > 59 || sec > 60 {
            return Err(bad("no such time of day"));
        }
        let mut pos = 19;
        let mut nanos: i128 = 0;
        if b.get(pos) == Some(&b'.') {
            pos += 1;
            let start = pos;
            while pos < b.len() && b[pos].is_ascii_digit() {
                pos += 1;
            }
            let digits = &input[start..pos];
            if digits.is_empty() {
                return Err(bad("empty fraction of a second"));
            }
            for (i, d) in digits.bytes().take(9).enumerate() {
                nanos += i128::from(d - b'0') * 10i128.pow(8 - i as u32);
            }
        }
        let offset_secs: i64 = match &input[pos..] {
            "Z" | "z" => 0,
            off if off.len() == 6
                && matches!(off.as_bytes()[0], b'+' | b'-')
                && off.as_bytes()[3] == b':' =>
            {
                let (Some(h), Some(m)) = (num(pos + 1..pos + 3), num(pos + 4..pos + 6)) else {
                    return Err(bad("invalid UTC offset"));
                };
                if h > 23 || m > 59 {
                    return Err(bad("invalid UTC offset"));
                }
                let s = h * 3600 + m * 60;
                if off.as_bytes()[0] == b'-' { -s } else { s }
            }
            _ => return Err(bad("expected Z or a ±HH:MM offset after the time")),
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
        Ok(Timestamp(i128::from(secs) * 1_000_000_000 + nanos))
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with nanoseconds when there are any.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000);
        let days = secs.div_euclid(86_400) as i64;
        let rem = secs.rem_euclid(86_400) as i64;
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )?;
        if nanos != 0 {
            let frac = format!("{nanos:09}");
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's days-from-civil: days since 1970-01-01 in the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders() {
        let a = Timestamp::parse("2024-05-01T12:00:00Z").unwrap();
        let b = Timestamp::parse("2024-05-01T14:00:00+02:00").unwrap();
        let c = Timestamp::parse("2024-05-01T12:00:00.000000001Z").unwrap();
        assert_eq!(a, b);
        assert!(c > a);
        assert_eq!(
            Timestamp::parse("1970-01-01T00:00:00Z")
                .unwrap()
                .unix_nanos(),
            0
        );
        assert_eq!(
            Timestamp::parse("2000-03-01T00:00:00Z").unwrap(),
            Timestamp::from_unix_seconds(951_868_800)
        );
    }

    #[test]
    fn displays_round_trip() {
        for s in [
            "2024-02-29T23:59:59Z",
            "1969-12-31T23:59:59.5Z",
            "2038-01-19T03:14:08.123456789Z",
        ] {
            assert_eq!(Timestamp::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:00:00+2:00",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00Zjunk",
            "yesterday at noon!!",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad:?}");
        }
    }
}

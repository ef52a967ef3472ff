//! Update windows: when updates may be written. Each window opens when a cron schedule fires
//! (`minute hour day-of-month month day-of-week`, in a time zone) and stays open for a
//! duration, as Argo CD's sync windows do; outside every window an update waits, and says when
//! the next window opens. Pure: time is passed in.

use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// One field of a cron schedule: the values it allows.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Field {
    allowed: Vec<bool>,
    /// The field was `*` (for the day-of-month/day-of-week rule).
    any: bool,
}

impl Field {
    fn parse(text: &str, min: u32, max: u32, name: &str) -> Result<Field, String> {
        let mut allowed = vec![false; max as usize + 1];
        let any = text == "*";
        for part in text.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => (
                    r,
                    s.parse::<u32>()
                        .ok()
                        .filter(|s| *s > 0)
                        .ok_or_else(|| format!("{name}: bad step in {part:?}"))?,
                ),
                None => (part, 1),
            };
            let (lo, hi) = if range == "*" {
                (min, max)
            } else if let Some((a, b)) = range.split_once('-') {
                (num(a, name)?, num(b, name)?)
            } else {
                let v = num(range, name)?;
                // `5/15` means from 5 to the end, every 15.
                (v, if step > 1 { max } else { v })
            };
            if lo < min || hi > max || lo > hi {
                return Err(format!("{name}: {part:?} is outside {min}-{max}"));
            }
            for v in (lo..=hi).step_by(step as usize) {
                allowed[v as usize] = true;
            }
        }
        Ok(Field { allowed, any })
    }

    fn has(&self, v: u32) -> bool {
        self.allowed.get(v as usize).copied().unwrap_or(false)
    }
}

fn num(s: &str, name: &str) -> Result<u32, String> {
    s.parse()
        .map_err(|_| format!("{name}: {s:?} is not a number"))
}

/// A cron schedule of five fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    minute: Field,
    hour: Field,
    day: Field,
    month: Field,
    weekday: Field,
}

impl Schedule {
    /// Parses `minute hour day-of-month month day-of-week` (`*`, lists, ranges, steps; Sunday
    /// is 0 or 7).
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [m, h, d, mo, w] = fields[..] else {
            return Err(format!(
                "{text:?}: expected five fields (minute hour day-of-month month day-of-week)"
            ));
        };
        let mut weekday = Field::parse(w, 0, 7, "day-of-week")?;
        if weekday.has(7) {
            weekday.allowed[0] = true;
        }
        Ok(Schedule {
            minute: Field::parse(m, 0, 59, "minute")?,
            hour: Field::parse(h, 0, 23, "hour")?,
            day: Field::parse(d, 1, 31, "day-of-month")?,
            month: Field::parse(mo, 1, 12, "month")?,
            weekday,
        })
    }

    /// Whether it fires at the minute of `t`. As in cron, when both the day of the month and
    /// the day of the week are restricted, either one matching is enough.
    fn fires(&self, t: &Zoned) -> bool {
        let day = self.day.has(u32::try_from(t.day()).unwrap_or(0));
        let weekday = self.weekday.has(u32::from(
            t.weekday().to_sunday_zero_offset().unsigned_abs(),
        ));
        let day_ok = match (self.day.any, self.weekday.any) {
            (true, true) => true,
            (true, false) => weekday,
            (false, true) => day,
            (false, false) => day || weekday,
        };
        day_ok
            && self.minute.has(u32::try_from(t.minute()).unwrap_or(99))
            && self.hour.has(u32::try_from(t.hour()).unwrap_or(99))
            && self.month.has(u32::try_from(t.month()).unwrap_or(0))
    }
}

/// A time when updates may be written.
#[derive(Clone, Debug)]
pub struct Window {
    /// When it opens.
    pub schedule: Schedule,
    /// How long it stays open (at most a week).
    pub duration: Duration,
    /// The zone the schedule is read in.
    pub zone: TimeZone,
    /// The zone's name, as written.
    pub zone_name: String,
}

/// How long a window may stay open: a week, so a check looks back at most that far.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 86_400);

impl Window {
    /// A window from its configuration: a schedule, a duration and a time zone name (IANA,
    /// `UTC` when empty).
    pub fn new(schedule: &str, duration: Duration, zone: &str) -> Result<Window, String> {
        if duration.is_zero() || duration > MAX_DURATION {
            return Err("duration: must be more than 0 and at most 7d".to_owned());
        }
        let zone_name = if zone.is_empty() { "UTC" } else { zone };
        Ok(Window {
            schedule: Schedule::parse(schedule)?,
            duration,
            zone: TimeZone::get(zone_name)
                .map_err(|_| format!("timeZone: {zone_name:?} is not a known time zone"))?,
            zone_name: zone_name.to_owned(),
        })
    }

    /// Whether `now` (Unix nanoseconds) is inside: the schedule fired within the duration.
    fn open_at(&self, now: Timestamp) -> bool {
        let minutes = self.duration.as_secs().div_ceil(60);
        (0..minutes).any(|k| {
            let t = now - jiff::SignedDuration::from_secs(60 * i64::try_from(k).unwrap_or(0));
            self.schedule.fires(&t.to_zoned(self.zone.clone()))
        })
    }

    /// When it next opens after `now`, within eight days.
    fn next_opening(&self, now: Timestamp) -> Option<Zoned> {
        (1..=8 * 24 * 60).find_map(|k: i64| {
            let t = (now + jiff::SignedDuration::from_secs(60 * k)).to_zoned(self.zone.clone());
            self.schedule.fires(&t).then_some(t)
        })
    }
}

/// Whether updates may be written at `now` (Unix nanoseconds): no windows, or inside one.
/// `Err` says when the next one opens.
pub fn allowed(windows: &[Window], now_nanos: i128) -> Result<(), String> {
    if windows.is_empty() {
        return Ok(());
    }
    let Ok(now) = Timestamp::from_nanosecond(now_nanos) else {
        return Ok(());
    };
    let now = now.round(jiff::Unit::Minute).unwrap_or(now);
    if windows.iter().any(|w| w.open_at(now)) {
        return Ok(());
    }
    let next = windows
        .iter()
        .filter_map(|w| {
            w.next_opening(now)
                .map(|z| (z.timestamp(), z, &w.zone_name))
        })
        .min_by_key(|(t, _, _)| *t);
    Err(match next {
        Some((_, z, name)) => format!(
            "outside the update windows; the next opens {} {name}",
            z.strftime("%Y-%m-%d %H:%M")
        ),
        None => "outside the update windows; none opens within eight days".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(text: &str) -> i128 {
        text.parse::<Timestamp>().unwrap().as_nanosecond()
    }

    fn window(s: &str, hours: u64, zone: &str) -> Window {
        Window::new(s, Duration::from_secs(hours * 3600), zone).unwrap()
    }

    #[test]
    fn weeknights_in_berlin() {
        // 22:00 to 06:00 Berlin time, Monday to Friday nights.
        let w = [window("0 22 * * 1-5", 8, "Europe/Berlin")];
        // Tuesday 2026-12-01 21:30 UTC is 22:30 in Berlin (CET, +1): open.
        assert_eq!(allowed(&w, at("2026-12-01T21:30:00Z")), Ok(()));
        // Wednesday 04:59 UTC is 05:59 Berlin: still open; 05:00 UTC is 06:00: closed.
        assert_eq!(allowed(&w, at("2026-12-02T04:59:00Z")), Ok(()));
        let closed = allowed(&w, at("2026-12-02T05:00:00Z")).unwrap_err();
        assert!(
            closed.contains("next opens 2026-12-02 22:00 Europe/Berlin"),
            "{closed}"
        );
        // Saturday night: the next window is Monday's.
        let weekend = allowed(&w, at("2026-12-05T22:30:00Z")).unwrap_err();
        assert!(weekend.contains("2026-12-07 22:00"), "{weekend}");
    }

    #[test]
    fn no_windows_means_always_and_any_window_opens() {
        assert_eq!(allowed(&[], at("2026-12-02T12:00:00Z")), Ok(()));
        let w = [
            window("0 9 * * *", 1, "UTC"),
            window("30 14 1,15 * *", 2, "UTC"),
        ];
        assert_eq!(allowed(&w, at("2026-12-02T09:59:00Z")), Ok(()));
        assert!(allowed(&w, at("2026-12-02T10:00:00Z")).is_err());
        assert_eq!(allowed(&w, at("2026-12-15T16:29:00Z")), Ok(()));
    }

    #[test]
    fn schedules_and_zones_are_checked() {
        for bad in [
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "*/0 * * * *",
            "a * * * *",
            "5-1 * * * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
        assert!(Window::new("0 0 * * *", Duration::from_secs(3600), "Mars/Olympus").is_err());
        assert!(Window::new("0 0 * * *", Duration::from_secs(8 * 86_400), "UTC").is_err());
        // Sunday is 0 and 7; steps from a value run to the end of the range.
        let s = Schedule::parse("5/20 * * * 7").unwrap();
        let sunday = "2026-12-06T10:25:00Z".parse::<Timestamp>().unwrap();
        assert!(s.fires(&sunday.to_zoned(TimeZone::UTC)));
        let monday = "2026-12-07T10:25:00Z".parse::<Timestamp>().unwrap();
        assert!(!s.fires(&monday.to_zoned(TimeZone::UTC)));
    }
}

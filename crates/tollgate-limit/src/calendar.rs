//! Calendar periods for spend budgets: the day or month that contains an
//! instant, in an IANA time zone, as unix milliseconds. Days and months are
//! not fixed lengths (months are 28 to 31 days, a day across a DST change is
//! 23 or 25 hours), so these periods cannot be the limiter's fixed windows,
//! whose boundaries are multiples of a size.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// The length of a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Day,
    Month,
}

/// One calendar period, `[start_ms, end_ms)` in unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start_ms: u64,
    pub end_ms: u64,
}

impl Span {
    /// Whole seconds from `now_ms` until the period ends (at least 1).
    pub fn reset_secs(&self, now_ms: u64) -> u64 {
        self.end_ms.saturating_sub(now_ms).div_ceil(1000).max(1)
    }
}

/// An unknown zone name; config validation refuses it before any request.
#[derive(Debug, thiserror::Error)]
#[error("unknown time zone {0:?} (an IANA name such as \"Europe/Paris\" or \"UTC\")")]
pub struct UnknownZone(pub String);

/// The IANA time zone `name`, from the tz database compiled into the binary.
pub fn zone(name: &str) -> Result<TimeZone, UnknownZone> {
    TimeZone::get(name).map_err(|_| UnknownZone(name.to_string()))
}

/// The period of `kind` that contains `now_ms` in `tz`: from local midnight
/// (of the first of the month) to the next one. A midnight that a DST change
/// skips starts at the first instant that exists.
pub fn span_at(now_ms: u64, kind: Period, tz: &TimeZone) -> Span {
    let now = Timestamp::from_millisecond(i64::try_from(now_ms).unwrap_or(i64::MAX)).unwrap_or(Timestamp::MAX);
    let today = now.to_zoned(tz.clone()).date();
    let (first, next) = match kind {
        Period::Day => (today, today.tomorrow().unwrap_or(today)),
        Period::Month => {
            let first = today.first_of_month();
            (first, first.checked_add(jiff::Span::new().months(1)).unwrap_or(first))
        }
    };
    Span { start_ms: midnight_ms(first, tz), end_ms: midnight_ms(next, tz) }
}

/// The start of `date` in `tz`, in unix milliseconds.
fn midnight_ms(date: Date, tz: &TimeZone) -> u64 {
    let start: Option<Zoned> = date.to_zoned(tz.clone()).ok().and_then(|z| z.start_of_day().ok());
    start.map_or(0, |z| u64::try_from(z.timestamp().as_millisecond()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{Clock, ManualClock};

    /// Unix milliseconds of an RFC 3339 instant.
    fn ms(rfc3339: &str) -> u64 {
        let t: Timestamp = rfc3339.parse().unwrap_or_else(|e| panic!("{rfc3339}: {e}"));
        u64::try_from(t.as_millisecond()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn tz(name: &str) -> TimeZone {
        zone(name).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_day_rolls_over_at_local_midnight() {
        let clock = Arc::new(ManualClock::new(ms("2026-12-03T22:59:59.999Z")));
        let paris = tz("Europe/Paris");
        // 23:59:59.999 in Paris (UTC+1 in winter): still the 3rd.
        let day = span_at(clock.now_ms(), Period::Day, &paris);
        assert_eq!(day, Span { start_ms: ms("2026-12-02T23:00:00Z"), end_ms: ms("2026-12-03T23:00:00Z") });
        assert_eq!(day.reset_secs(clock.now_ms()), 1);
        clock.advance(1);
        let next = span_at(clock.now_ms(), Period::Day, &paris);
        assert_eq!(next.start_ms, day.end_ms, "midnight in Paris starts the 4th");
        assert_eq!(next.reset_secs(clock.now_ms()), 24 * 3600);
        // The same instant is still the 3rd in UTC.
        assert_eq!(span_at(clock.now_ms(), Period::Day, &tz("UTC")).start_ms, ms("2026-12-03T00:00:00Z"));
    }

    #[test]
    fn months_end_on_their_own_last_day() {
        let utc = tz("UTC");
        let clock = ManualClock::new(ms("2028-02-29T23:59:59Z"));
        let feb = span_at(clock.now_ms(), Period::Month, &utc);
        assert_eq!(feb, Span { start_ms: ms("2028-02-01T00:00:00Z"), end_ms: ms("2028-03-01T00:00:00Z") });
        clock.advance(1000);
        let march = span_at(clock.now_ms(), Period::Month, &utc);
        assert_eq!(march, Span { start_ms: ms("2028-03-01T00:00:00Z"), end_ms: ms("2028-04-01T00:00:00Z") });
        // December ends in the next year; in Tokyo (UTC+9) it started on Nov 30 in UTC.
        let dec = span_at(ms("2026-12-31T12:00:00Z"), Period::Month, &tz("Asia/Tokyo"));
        assert_eq!(dec, Span { start_ms: ms("2026-11-30T15:00:00Z"), end_ms: ms("2026-12-31T15:00:00Z") });
        let jan = span_at(ms("2026-12-31T15:00:00Z"), Period::Month, &tz("Asia/Tokyo"));
        assert_eq!(jan.start_ms, dec.end_ms);
    }

    #[test]
    fn days_across_a_dst_change_last_23_or_25_hours() {
        let ny = tz("America/New_York");
        // 2026-03-08: clocks go from 02:00 EST to 03:00 EDT.
        let spring = span_at(ms("2026-03-08T12:00:00Z"), Period::Day, &ny);
        assert_eq!(spring.start_ms, ms("2026-03-08T05:00:00Z"));
        assert_eq!(spring.end_ms - spring.start_ms, 23 * 3600 * 1000);
        // 2026-11-01: from 02:00 EDT back to 01:00 EST.
        let fall = span_at(ms("2026-11-01T12:00:00Z"), Period::Day, &ny);
        assert_eq!(fall.start_ms, ms("2026-11-01T04:00:00Z"));
        assert_eq!(fall.end_ms - fall.start_ms, 25 * 3600 * 1000);
        // A month containing the change still ends at local midnight.
        let march = span_at(ms("2026-03-20T00:00:00Z"), Period::Month, &ny);
        assert_eq!(march, Span { start_ms: ms("2026-03-01T05:00:00Z"), end_ms: ms("2026-04-01T04:00:00Z") });
    }

    #[test]
    fn a_skipped_midnight_starts_the_day_at_its_first_instant() {
        // Santiago moves its clocks forward at local midnight (2026-09-06 00:00 -> 01:00).
        let santiago = tz("America/Santiago");
        let day = span_at(ms("2026-09-06T12:00:00Z"), Period::Day, &santiago);
        assert_eq!(day.start_ms, ms("2026-09-06T04:00:00Z"), "01:00 -03 is the first instant of the day");
        assert_eq!(day.end_ms - day.start_ms, 23 * 3600 * 1000);
    }

    #[test]
    fn unknown_zones_are_refused_by_name() {
        let e = zone("Mars/Olympus_Mons").err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("unknown time zone \"Mars/Olympus_Mons\" (an IANA name such as \"Europe/Paris\" or \"UTC\")")
        );
    }
}

//! UTC calendar arithmetic for schedule expressions (proleptic Gregorian;
//! days from civil dates after Howard Hinnant's public-domain algorithms).

/// Milliseconds in a minute.
pub(super) const MINUTE_MS: u64 = 60_000;

/// A UTC date and time to the minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Civil {
    pub year: u32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
}

impl Civil {
    /// The date and minute of `millis` since the Unix epoch.
    pub fn of(millis: u64) -> Self {
        let minutes = millis / MINUTE_MS;
        let days = minutes / 1440;
        let in_day = (minutes % 1440) as u32;
        let (year, month, day) = civil_from_days(days);
        Self { year, month, day, hour: in_day / 60, minute: in_day % 60 }
    }

    /// Milliseconds since the Unix epoch of a date and minute.
    pub fn millis(year: u32, month: u32, day: u32, hour: u32, minute: u32) -> u64 {
        (days_from_civil(year, month, day) * 1440 + u64::from(hour) * 60 + u64::from(minute)) * MINUTE_MS
    }
}

fn is_leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// Days in `month` (1–12) of `year`.
pub(super) fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date (1970 or later).
fn days_from_civil(year: u32, month: u32, day: u32) -> u64 {
    let y = u64::from(if month <= 2 { year - 1 } else { year });
    let era = y / 400;
    let year_of_era = y - era * 400;
    let m = u64::from(month);
    let day_of_year = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + u64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: u64) -> (u32, u32, u32) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (year_of_era + era * 400) as u32 + u32::from(month <= 2);
    (year, month, day)
}

/// The day of the week as cron numbers it: 1 = Sunday … 7 = Saturday.
pub(super) fn weekday(year: u32, month: u32, day: u32) -> u32 {
    // 1970-01-01 was a Thursday (5).
    ((days_from_civil(year, month, day) + 4) % 7) as u32 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_know_their_weekday() {
        assert_eq!(Civil::of(0), Civil { year: 1970, month: 1, day: 1, hour: 0, minute: 0 });
        // 2024-02-29T13:45Z (a leap day, a Thursday).
        let leap = Civil::millis(2024, 2, 29, 13, 45);
        assert_eq!(leap, 1_709_214_300_000);
        assert_eq!(Civil::of(leap), Civil { year: 2024, month: 2, day: 29, hour: 13, minute: 45 });
        assert_eq!(weekday(2024, 2, 29), 5);
        assert_eq!(weekday(1970, 1, 1), 5);
        assert_eq!(weekday(2026, 12, 6), 1, "a Sunday");
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
    }
}

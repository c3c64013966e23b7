//! Schedule expressions as EventBridge Scheduler writes them, parsed once and
//! asked for their next firing time (UTC).
//!
//! - `rate(N unit)`: `unit` is `minute`/`minutes`, `hour`/`hours` or
//!   `day`/`days`, singular exactly when `N` is 1 (Scheduler refuses
//!   `rate(1 minutes)` and `rate(5 minute)`).
//! - `cron(minutes hours day-of-month month day-of-week year)`: six fields;
//!   `*`, `,` lists, `-` ranges, `/` steps, month names `JAN`–`DEC`,
//!   day names `SUN`–`SAT` (`1` is Sunday), and exactly one of day-of-month
//!   and day-of-week is `?`. Day-of-month also takes `L` (last day), `LW`
//!   (last weekday) and `15W` (the weekday nearest the 15th, within the
//!   month); day-of-week takes `L` (Saturday), `6L` (the month's last
//!   Friday) and `2#1` (its first Monday).
use std::str::FromStr;

use super::calendar::{Civil, MINUTE_MS, days_in_month, weekday};
use crate::Timestamp;

/// Why a schedule expression is not one EventBridge Scheduler accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{expression}`: {reason}")]
pub struct ScheduleExpressionError {
    /// The expression as written.
    pub expression: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A parsed `rate(...)` or `cron(...)` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleExpression {
    /// Every `minutes` minutes.
    Rate {
        /// The period in minutes (hours and days are converted).
        minutes: u64,
    },
    /// At the times the fields match (UTC).
    Cron(Box<Cron>),
}

/// The six fields of a `cron(...)` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Values,
    hours: Values,
    months: Values,
    years: Values,
    days: DayRule,
}

/// Which values of a field match, indexed from the field's minimum.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Values {
    min: u32,
    set: Vec<bool>,
}

impl Values {
    fn has(&self, value: u32) -> bool {
        value.checked_sub(self.min).and_then(|i| self.set.get(i as usize)).copied().unwrap_or(false)
    }

    /// The smallest matching value at or after `from`.
    fn first_from(&self, from: u32) -> Option<u32> {
        let start = from.saturating_sub(self.min) as usize;
        self.set.iter().skip(start).position(|m| *m).map(|i| self.min + (start + i) as u32)
    }
}

/// The day-of-month or day-of-week rule (the other field is `?`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum DayRule {
    MonthDays(Values),
    LastDay,
    LastWeekday,
    NearestWeekday(u32),
    WeekDays(Values),
    /// The last such weekday of the month (1 = Sunday).
    LastOf(u32),
    /// The `n`th such weekday of the month.
    Nth(u32, u32),
}

/// Rate periods in minutes by unit (singular, plural).
const UNITS: [(&str, &str, u64); 3] = [("minute", "minutes", 1), ("hour", "hours", 60), ("day", "days", 1440)];
const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
/// The years Scheduler's cron accepts.
const YEARS: (u32, u32) = (1970, 2199);

impl FromStr for ScheduleExpression {
    type Err = ScheduleExpressionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |reason: String| ScheduleExpressionError { expression: text.to_string(), reason };
        let trimmed = text.trim();
        if let Some(inner) = trimmed.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
            return parse_rate(inner).map_err(error);
        }
        if let Some(inner) = trimmed.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
            return parse_cron(inner).map(|cron| Self::Cron(Box::new(cron))).map_err(error);
        }
        if trimmed.starts_with("at(") {
            return Err(error(
                "`at(...)` fires once; a schedule component repeats: use `rate(...)` or `cron(...)`".into(),
            ));
        }
        Err(error("expected `rate(N unit)` or `cron(minutes hours day-of-month month day-of-week year)`".into()))
    }
}

impl ScheduleExpression {
    /// The first firing strictly after `after`, if any (a cron whose years
    /// have all passed has none). Rates fire on multiples of their period
    /// counted from the Unix epoch, so every process computes the same
    /// times; firings are on whole minutes.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        match self {
            Self::Rate { minutes } => {
                let period = minutes.checked_mul(MINUTE_MS)?;
                let next = (after.0 / period).checked_add(1)?.checked_mul(period)?;
                Some(Timestamp(next))
            }
            Self::Cron(cron) => cron.next_after(after),
        }
    }

    /// The period of a rate (`None` for a cron).
    pub fn period(&self) -> Option<std::time::Duration> {
        match self {
            Self::Rate { minutes } => Some(std::time::Duration::from_secs(minutes.saturating_mul(60))),
            Self::Cron(_) => None,
        }
    }
}

fn parse_rate(inner: &str) -> Result<ScheduleExpression, String> {
    let mut parts = inner.split_whitespace();
    let (Some(count), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err("a rate is `rate(N unit)`, e.g. `rate(5 minutes)`".into());
    };
    let count: u64 = count.parse().map_err(|_| format!("`{count}` is not a whole number"))?;
    if count == 0 {
        return Err("the rate must be at least 1".into());
    }
    let Some((singular, plural, minutes)) = UNITS.iter().find(|(s, p, _)| unit == *s || unit == *p) else {
        return Err(format!("unit `{unit}`: Scheduler's units are minute(s), hour(s) and day(s)"));
    };
    match (count == 1, unit == *singular) {
        (true, false) => return Err(format!("a rate of 1 is written `rate(1 {singular})`")),
        (false, true) => return Err(format!("a rate above 1 is written in the plural: `rate({count} {plural})`")),
        _ => {}
    }
    let minutes = count.checked_mul(*minutes).ok_or("the rate is too large")?;
    Ok(ScheduleExpression::Rate { minutes })
}

fn parse_cron(inner: &str) -> Result<Cron, String> {
    let fields: Vec<&str> = inner.split_whitespace().collect();
    let [minutes, hours, month_days, months, week_days, years] = fields[..] else {
        return Err(format!(
            "a cron has 6 fields (minutes hours day-of-month month day-of-week year), this one {}",
            fields.len()
        ));
    };
    let days = match (month_days == "?", week_days == "?") {
        (true, true) => return Err("day-of-month and day-of-week cannot both be `?`".into()),
        (false, false) => {
            return Err("one of day-of-month and day-of-week must be `?` (Scheduler takes only one of them)".into());
        }
        (false, true) => month_day_rule(month_days)?,
        (true, false) => week_day_rule(week_days)?,
    };
    Ok(Cron {
        minutes: values(minutes, "minutes", 0, 59, &[])?,
        hours: values(hours, "hours", 0, 23, &[])?,
        months: values(months, "month", 1, 12, &MONTHS)?,
        years: values(years, "year", YEARS.0, YEARS.1, &[])?,
        days,
    })
}

fn month_day_rule(field: &str) -> Result<DayRule, String> {
    let upper = field.to_ascii_uppercase();
    if upper == "L" {
        return Ok(DayRule::LastDay);
    }
    if upper == "LW" {
        return Ok(DayRule::LastWeekday);
    }
    if let Some(day) = upper.strip_suffix('W') {
        let day = number(day, "day-of-month", 1, 31, &[])?;
        return Ok(DayRule::NearestWeekday(day));
    }
    values(field, "day-of-month", 1, 31, &[]).map(DayRule::MonthDays)
}

fn week_day_rule(field: &str) -> Result<DayRule, String> {
    let upper = field.to_ascii_uppercase();
    if upper == "L" {
        return Ok(DayRule::WeekDays(Values { min: 1, set: (1..=7).map(|d| d == 7).collect() }));
    }
    if let Some(day) = upper.strip_suffix('L') {
        return Ok(DayRule::LastOf(number(day, "day-of-week", 1, 7, &DAYS)?));
    }
    if let Some((day, nth)) = upper.split_once('#') {
        let day = number(day, "day-of-week", 1, 7, &DAYS)?;
        let nth = number(nth, "day-of-week's `#`", 1, 5, &[])?;
        return Ok(DayRule::Nth(day, nth));
    }
    values(field, "day-of-week", 1, 7, &DAYS).map(DayRule::WeekDays)
}

/// A field of `*`, values, ranges and steps, comma-separated.
fn values(field: &str, name: &str, min: u32, max: u32, names: &[&str]) -> Result<Values, String> {
    let mut set = vec![false; (max - min + 1) as usize];
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step = step.parse::<u32>().ok().filter(|s| *s > 0);
                let step = step.ok_or_else(|| format!("{name} field `{field}`: a step is a positive number"))?;
                (range, step)
            }
            None => (part, 1),
        };
        let (first, last) = if range == "*" {
            (min, max)
        } else if let Some((from, to)) = range.split_once('-') {
            (number(from, name, min, max, names)?, number(to, name, min, max, names)?)
        } else {
            let start = number(range, name, min, max, names)?;
            // `5/15`: from 5 to the end in steps of 15.
            (start, if part.contains('/') { max } else { start })
        };
        if first > last {
            return Err(format!("{name} field `{field}`: the range `{range}` runs backwards"));
        }
        for value in (first..=last).step_by(step as usize) {
            set[(value - min) as usize] = true;
        }
    }
    Ok(Values { min, set })
}

/// One value of a field: a number in range or one of its names.
fn number(text: &str, name: &str, min: u32, max: u32, names: &[&str]) -> Result<u32, String> {
    let upper = text.to_ascii_uppercase();
    if let Some(index) = names.iter().position(|n| *n == upper) {
        return Ok(min + index as u32);
    }
    let value: u32 = text.parse().map_err(|_| {
        let hint =
            if names.is_empty() { String::new() } else { format!(" or {}-{}", names[0], names[names.len() - 1]) };
        format!("{name} field: `{text}` is not a number{hint}")
    })?;
    if !(min..=max).contains(&value) {
        return Err(format!("{name} field: `{value}` is out of range {min}-{max}"));
    }
    Ok(value)
}

impl Cron {
    fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        // The next whole minute after `after`.
        let start = Civil::of((after.0 / MINUTE_MS + 1) * MINUTE_MS);
        let (mut year, mut month, mut day) = (start.year, start.month, start.day);
        let (mut hour, mut minute) = (start.hour, start.minute);
        loop {
            if year > YEARS.1 {
                return None;
            }
            if !self.years.has(year) {
                (year, month, day, hour, minute) = (self.years.first_from(year + 1)?, 1, 1, 0, 0);
                continue;
            }
            if !self.months.has(month) {
                match self.months.first_from(month + 1) {
                    Some(next) => (month, day, hour, minute) = (next, 1, 0, 0),
                    None => (year, month, day, hour, minute) = (year + 1, 1, 1, 0, 0),
                }
                continue;
            }
            if day > days_in_month(year, month) {
                (month, day, hour, minute) = (month + 1, 1, 0, 0);
                if month > 12 {
                    (year, month) = (year + 1, 1);
                }
                continue;
            }
            if self.day_matches(year, month, day)
                && let Some(found) = self.first_time_from(hour, minute)
            {
                return Some(Timestamp(Civil::millis(year, month, day, found.0, found.1)));
            }
            (day, hour, minute) = (day + 1, 0, 0);
        }
    }

    /// The first (hour, minute) of a matching day at or after `hour:minute`.
    fn first_time_from(&self, hour: u32, minute: u32) -> Option<(u32, u32)> {
        let mut at_hour = self.hours.first_from(hour)?;
        let mut from = if at_hour == hour { minute } else { 0 };
        loop {
            if let Some(minute) = self.minutes.first_from(from) {
                return Some((at_hour, minute));
            }
            at_hour = self.hours.first_from(at_hour + 1)?;
            from = 0;
        }
    }

    fn day_matches(&self, year: u32, month: u32, day: u32) -> bool {
        let last = days_in_month(year, month);
        let week_day = weekday(year, month, day);
        match &self.days {
            DayRule::MonthDays(days) => days.has(day),
            DayRule::LastDay => day == last,
            DayRule::LastWeekday => {
                let last_day = weekday(year, month, last);
                let back = match last_day {
                    1 => 2, // Sunday → Friday
                    7 => 1, // Saturday → Friday
                    _ => 0,
                };
                day == last - back
            }
            DayRule::NearestWeekday(target) => {
                if *target > last {
                    return false;
                }
                let nearest = match weekday(year, month, *target) {
                    7 if *target == 1 => 3, // Saturday the 1st → Monday the 3rd
                    7 => *target - 1,
                    1 if *target == last => *target - 2, // Sunday the last → Friday
                    1 => *target + 1,
                    _ => *target,
                };
                day == nearest
            }
            DayRule::WeekDays(days) => days.has(week_day),
            DayRule::LastOf(wanted) => week_day == *wanted && day + 7 > last,
            DayRule::Nth(wanted, nth) => week_day == *wanted && (day - 1) / 7 + 1 == *nth,
        }
    }
}

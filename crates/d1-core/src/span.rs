//! Spans of time in restic's grammar, read the same everywhere a span is
//! read (`prune --keep-within`, `backups.toml`'s `keep_within`,
//! `expire_after` and `max_age`): `1y6m2w3d12h`, where `y` is a year, `m` a
//! month, `w` a week, `d` a day and `h` an hour, in any combination.
//!
//! As in restic's `forget --keep-within`, years, months and days are
//! calendar units: a span is subtracted from a time by stepping back that
//! many calendar months and days (a month back from 31 March is the last
//! day of February), then the hours.

use std::fmt;

use anyhow::{Result, bail};
use chrono::{DateTime, Days, Months, TimeDelta, Utc};

/// A span of calendar time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    pub years: u32,
    pub months: u32,
    pub weeks: u32,
    pub days: u32,
    pub hours: u32,
}

impl Span {
    pub const fn days(days: u32) -> Span {
        Span {
            years: 0,
            months: 0,
            weeks: 0,
            days,
            hours: 0,
        }
    }

    /// The time this span before `t`.
    pub fn before(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let months = self.years * 12 + self.months;
        let days = u64::from(self.weeks) * 7 + u64::from(self.days);
        t.checked_sub_months(Months::new(months))
            .and_then(|t| t.checked_sub_days(Days::new(days)))
            .and_then(|t| t.checked_sub_signed(TimeDelta::hours(self.hours.into())))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// Whether `then` lies within this span before `now` (strictly younger).
    pub fn holds(&self, then: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        then > self.before(now)
    }

    /// Whole days, never fewer than the span can be: a year counted as 366
    /// days, a month as 31, a part day as a day (for R2's day-counted rules).
    pub fn days_at_most(&self) -> i64 {
        i64::from(self.years) * 366
            + i64::from(self.months) * 31
            + i64::from(self.weeks) * 7
            + i64::from(self.days)
            + i64::from(self.hours.div_ceil(24))
    }

    pub fn is_zero(&self) -> bool {
        *self == Span::default()
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0d");
        }
        for (n, unit) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.weeks, 'w'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n > 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for Span {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Span> {
        parse(text)
    }
}

const GRAMMAR: &str = "spans are written as restic writes them: 1y6m2w3d12h \
    (y years, m months, w weeks, d days, h hours), e.g. 30d, 26h or 6m";

/// Reads `1y6m2w3d12h`; each unit at most once, in any order.
pub fn parse(text: &str) -> Result<Span> {
    let mut span = Span::default();
    let mut seen = String::new();
    let mut rest = text.trim();
    if rest.is_empty() {
        bail!("an empty span: {GRAMMAR}");
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            bail!("{text:?} is not a span: a number must come before each unit; {GRAMMAR}");
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let n: u32 = number
            .parse()
            .ok()
            .filter(|n| *n <= 100_000)
            .ok_or_else(|| anyhow::anyhow!("{text:?} is too long a span"))?;
        let slot = match unit {
            "y" => &mut span.years,
            "m" => &mut span.months,
            "w" => &mut span.weeks,
            "d" => &mut span.days,
            "h" => &mut span.hours,
            "" => bail!(
                "{text:?} has a number without a unit: write {n}d for {}; {GRAMMAR}",
                crate::wording::count(n, "day")
            ),
            other => bail!("{text:?} has the unit {other:?}: {}", hint(n, other)),
        };
        if seen.contains(unit) {
            bail!("{text:?} gives the unit {unit} twice; {GRAMMAR}");
        }
        seen.push_str(unit);
        *slot = n;
        rest = after;
    }
    // Past a thousand years, date arithmetic would overflow.
    if span.days_at_most() > 366_000 {
        bail!("{text:?} is longer than a thousand years");
    }
    Ok(span)
}

/// What to write instead of a unit that is not restic's.
fn hint(n: u32, unit: &str) -> String {
    let unit = unit.trim().to_ascii_lowercase();
    let right = |letter: char, name: &str| {
        let plural = if n == 1 { "" } else { "s" };
        format!("use {n}{letter} for {n} {name}{plural}; {GRAMMAR}")
    };
    if unit.starts_with("mi") || unit == "min" || unit.starts_with("s") {
        return format!(
            "spans have no minutes or seconds; use hours, e.g. 1h, or months as {n}m; {GRAMMAR}"
        );
    }
    match unit.chars().next() {
        Some('y') => right('y', "year"),
        Some('m') => right('m', "month"),
        Some('w') => right('w', "week"),
        Some('d') => right('d', "day"),
        Some('h') => right('h', "hour"),
        _ => format!("not a unit; {GRAMMAR}"),
    }
}

/// For serde: an optional span written as a string.
pub fn deserialize_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Span>, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(d)?;
    parse(&text).map(Some).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn restics_grammar_reads_and_prints_back() {
        let span = parse("1y6m2w3d12h").unwrap();
        assert_eq!(
            span,
            Span {
                years: 1,
                months: 6,
                weeks: 2,
                days: 3,
                hours: 12
            }
        );
        assert_eq!(span.to_string(), "1y6m2w3d12h");
        assert_eq!(parse("30d").unwrap(), Span::days(30));
        assert_eq!(parse("26h").unwrap().hours, 26);
        assert_eq!(parse("0d").unwrap(), Span::default());
        assert_eq!(parse("0d").unwrap().to_string(), "0d");
        assert_eq!(parse("12h1d").unwrap().to_string(), "1d12h");
    }

    #[test]
    fn m_is_months_counted_on_the_calendar() {
        let six_months = parse("6m").unwrap();
        assert_eq!(six_months.months, 6);
        assert_eq!(
            six_months.before(at("2026-11-24T12:00:00Z")),
            at("2026-05-24T12:00:00Z")
        );
        // A month back from 31 March is the last day of February.
        assert_eq!(
            parse("1m").unwrap().before(at("2026-03-31T00:00:00Z")),
            at("2026-02-28T00:00:00Z")
        );
        assert_eq!(
            parse("1y1d1h").unwrap().before(at("2026-03-01T00:00:00Z")),
            at("2025-02-27T23:00:00Z")
        );
        // Within is strict, as in restic.
        let now = at("2026-11-24T12:00:00Z");
        assert!(!Span::days(1).holds(at("2026-11-23T12:00:00Z"), now));
        assert!(Span::days(1).holds(at("2026-11-23T12:00:01Z"), now));
        assert!(!Span::default().holds(now, now));
    }

    #[test]
    fn wrong_units_lead_to_the_right_form() {
        let err = |text: &str| parse(text).unwrap_err().to_string();
        assert!(err("6mo").contains("use 6m for 6 months"), "{}", err("6mo"));
        assert!(err("6months").contains("use 6m for 6 months"));
        assert!(err("1yr").contains("use 1y for 1 year;"), "{}", err("1yr"));
        assert!(err("2 weeks").contains("use 2w"), "{}", err("2 weeks"));
        let e = err("6min");
        assert!(e.contains("no minutes") && e.contains("1h"), "{e}");
        assert!(err("30").contains("write 30d"), "{}", err("30"));
        assert!(err("d").contains("a number must come before"));
        assert!(err("3d3d").contains("twice"));
        for bad in ["", "-3d", "3x", "1001y", "3d 4h"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn days_at_most_never_undercounts() {
        assert_eq!(parse("30d").unwrap().days_at_most(), 30);
        assert_eq!(parse("25h").unwrap().days_at_most(), 2);
        assert_eq!(parse("12m").unwrap().days_at_most(), 372);
        assert_eq!(parse("1y").unwrap().days_at_most(), 366);
    }
}

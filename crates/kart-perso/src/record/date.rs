//! Solar Hijri dates, converted with ICU4X's Persian calendar.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use icu_calendar::cal::Persian;
use icu_calendar::types::RataDie;
use icu_calendar::{Date, Gregorian, Iso};

use super::error::Problem;
use super::text::normalize_digits;

/// A day of the Solar Hijri (Persian) calendar.
///
/// Written `YYYY/MM/DD` (Persian or Arabic-Indic digits accepted); the
/// calendar rules, leap years included, are ICU4X's.
///
/// ```
/// use kart_perso::record::SolarDate;
/// let nowruz = SolarDate::parse("۱۴۰۰/۰۱/۰۱").unwrap();
/// assert_eq!(nowruz.to_string(), "1400/01/01");
/// assert_eq!(nowruz.gregorian(), (2021, 3, 21));
/// assert!(SolarDate::parse("1400/12/30").is_err()); // 1400 is not a leap year
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SolarDate {
    year: i32,
    month: u8,
    day: u8,
}

impl SolarDate {
    /// Parses `YYYY/MM/DD` and rejects days the calendar does not have.
    pub fn parse(raw: &str) -> Result<Self, Problem> {
        let text = normalize_digits(raw.trim());
        let format_error = || Problem::DateFormat {
            found: raw.trim().to_owned(),
        };
        let mut parts = text.split('/');
        let (Some(y), Some(m), Some(d), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format_error());
        };
        let all_digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !(all_digits(y, 4) && all_digits(m, 2) && all_digits(d, 2)) {
            return Err(format_error());
        }
        let year: i32 = y.parse().map_err(|_| format_error())?;
        let month: u8 = m.parse().map_err(|_| format_error())?;
        let day: u8 = d.parse().map_err(|_| format_error())?;
        Self::new(year, month, day)
    }

    /// Builds a date from its parts, if the calendar has that day.
    pub fn new(year: i32, month: u8, day: u8) -> Result<Self, Problem> {
        Date::try_new_persian(year, month, day)
            .map(|_| Self { year, month, day })
            .map_err(|_| Problem::NoSuchDate { year, month, day })
    }

    /// Today (UTC) in the Solar Hijri calendar, from the system clock.
    pub fn today() -> Self {
        let days = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 86_400);
        Self::from_rata_die(unix_epoch() + i64::try_from(days).unwrap_or(0))
    }

    /// The Solar Hijri date of a Gregorian day.
    ///
    /// ```
    /// use kart_perso::record::SolarDate;
    /// assert_eq!(SolarDate::from_gregorian(2020, 8, 9).unwrap().to_string(), "1399/05/19");
    /// ```
    pub fn from_gregorian(year: i32, month: u8, day: u8) -> Option<Self> {
        let g = Date::try_new_gregorian(year, month, day).ok()?;
        Some(Self::from_rata_die(g.to_rata_die()))
    }

    fn from_rata_die(rd: RataDie) -> Self {
        let p = Date::from_rata_die(rd, Persian);
        Self {
            year: p.year().extended_year(),
            month: p.month().ordinal,
            day: p.day_of_month().0,
        }
    }

    fn rata_die(self) -> RataDie {
        // Checked in `new`; the fallback is never taken.
        Date::try_new_persian(self.year, self.month, self.day)
            .map_or_else(|_| unix_epoch(), |d| d.to_rata_die())
    }

    /// Days from `earlier` to `self` (negative when `self` is before it).
    pub fn days_since(self, earlier: SolarDate) -> i64 {
        self.rata_die().since(earlier.rata_die())
    }

    /// Year (e.g. 1399).
    pub fn year(self) -> i32 {
        self.year
    }

    /// Month, 1–12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// Day of the month, 1–31.
    pub fn day(self) -> u8 {
        self.day
    }

    /// The Gregorian equivalent as (year, month, day).
    pub fn gregorian(self) -> (i32, u8, u8) {
        let g = Date::from_rata_die(self.rata_die(), Gregorian);
        (
            g.year().extended_year(),
            g.month().ordinal,
            g.day_of_month().0,
        )
    }

    /// The card encoding of the applet spec: `YYYYMMDD` in ASCII.
    pub fn compact(self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }
}

fn unix_epoch() -> RataDie {
    Date::try_new_iso(1970, 1, 1).map_or(RataDie::new(719_163), |d: Date<Iso>| d.to_rata_die())
}

impl fmt::Display for SolarDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}/{:02}/{:02}", self.year, self.month, self.day)
    }
}

impl fmt::Debug for SolarDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.gregorian();
        write!(f, "SolarDate({self} = {y:04}-{m:02}-{d:02})")
    }
}

impl PartialOrd for SolarDate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SolarDate {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.year, self.month, self.day).cmp(&(other.year, other.month, other.day))
    }
}

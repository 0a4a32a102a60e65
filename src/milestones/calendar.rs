//! Calendar arithmetic of the cahier des charges: "N months" are calendar months, clamped to
//! the last day of the target month, and every date is a Europe/Paris civil date.

use chrono::{Datelike, Months, NaiveDate};

/// `date` plus `months` calendar months, clamped to the month's last day: 31 August + 6 months
/// is 28 February (29 in a leap year), never 2 or 3 March. A date too far in the future for
/// chrono (beyond year 262 143) saturates at the largest representable date.
pub fn add_months(date: NaiveDate, months: u32) -> NaiveDate {
    date.checked_add_months(Months::new(months))
        .unwrap_or(NaiveDate::MAX)
}

/// `date` plus whole years, with the same clamping (29 February + 1 year = 28 February).
pub(crate) fn add_years(date: NaiveDate, years: u32) -> NaiveDate {
    add_months(date, years.saturating_mul(12))
}

/// The date as staff read it: `12/07/2026`.
pub fn format_date_fr(date: NaiveDate) -> String {
    format!("{:02}/{:02}/{:04}", date.day(), date.month(), date.year())
}

/// Days from `from` to `to` (negative when `to` is earlier).
pub(crate) fn days_between(from: NaiveDate, to: NaiveDate) -> i64 {
    (to - from).num_days()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
    }

    #[test]
    fn months_clamp_to_the_last_day_of_the_month() {
        assert_eq!(add_months(d(2027, 8, 31), 6), d(2028, 2, 29)); // leap year
        assert_eq!(add_months(d(2026, 8, 31), 6), d(2027, 2, 28));
        assert_eq!(add_months(d(2026, 1, 31), 1), d(2026, 2, 28));
        assert_eq!(add_months(d(2028, 1, 31), 1), d(2028, 2, 29));
        assert_eq!(add_months(d(2026, 3, 31), 1), d(2026, 4, 30));
        assert_eq!(add_months(d(2026, 1, 15), 2), d(2026, 3, 15));
        assert_eq!(add_months(d(2026, 12, 31), 2), d(2027, 2, 28));
        assert_eq!(add_months(d(2026, 7, 12), 18), d(2028, 1, 12));
        assert_eq!(add_months(d(2026, 7, 12), 0), d(2026, 7, 12));
    }

    #[test]
    fn years_clamp_the_29th_of_february() {
        assert_eq!(add_years(d(2028, 2, 29), 1), d(2029, 2, 28));
        assert_eq!(add_years(d(2028, 2, 29), 4), d(2032, 2, 29));
        assert_eq!(add_years(d(2026, 7, 12), 5), d(2031, 7, 12));
    }

    #[test]
    fn french_dates_are_day_month_year() {
        assert_eq!(format_date_fr(d(2026, 7, 12)), "12/07/2026");
        assert_eq!(format_date_fr(d(2028, 2, 29)), "29/02/2028");
    }

    #[test]
    fn days_between_is_signed() {
        assert_eq!(days_between(d(2026, 7, 12), d(2026, 8, 11)), 30);
        assert_eq!(days_between(d(2026, 8, 11), d(2026, 7, 12)), -30);
    }
}

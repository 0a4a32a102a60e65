//! Money in integer cents: amounts are computed exactly and rounded half-up once, at the end.

/// Rounds `num / den` half-up to an integer (`den > 0`; both signs of `num`, away from zero
/// on a tie, as a caisse rounds).
pub(crate) fn div_round_half_up(num: i128, den: i128) -> i128 {
    debug_assert!(den > 0);
    if num >= 0 {
        (2 * num + den) / (2 * den)
    } else {
        -((2 * -num + den) / (2 * den))
    }
}

/// An amount as staff read it: `40 000,00 €` (space between thousands, decimal comma).
pub fn format_eur(cents: i64) -> String {
    format!("{} €", format_number_fr(cents, true))
}

/// `40000,00` (French spreadsheets) when `thousands` is false, `40 000,00` when true.
pub(crate) fn format_number_fr(cents: i64, thousands: bool) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let euros = (abs / 100).to_string();
    let euros = if thousands {
        group_thousands(&euros)
    } else {
        euros
    };
    format!("{sign}{euros},{:02}", abs % 100)
}

/// `40000.00`: machine formats (plain CSV, JSON).
pub(crate) fn format_number_plain(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_written_the_french_way() {
        assert_eq!(format_eur(4_000_000), "40 000,00 €");
        assert_eq!(format_eur(10_000_000), "100 000,00 €");
        assert_eq!(format_eur(5_055_556), "50 555,56 €");
        assert_eq!(format_eur(5), "0,05 €");
        assert_eq!(format_eur(99_900), "999,00 €");
        assert_eq!(format_eur(123_456_789), "1 234 567,89 €");
        assert_eq!(format_eur(-8_000_000), "-80 000,00 €");
        assert_eq!(format_number_fr(4_000_050, false), "40000,50");
        assert_eq!(format_number_plain(4_000_050), "40000.50");
    }

    #[test]
    fn rounding_is_half_up() {
        assert_eq!(div_round_half_up(5, 2), 3);
        assert_eq!(div_round_half_up(4, 2), 2);
        assert_eq!(div_round_half_up(7, 3), 2);
        assert_eq!(div_round_half_up(8, 3), 3);
        assert_eq!(div_round_half_up(-5, 2), -3);
        assert_eq!(div_round_half_up(500_000_000, 90), 5_555_556);
    }
}

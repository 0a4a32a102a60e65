//! French text helpers shared by the rules and the report: tolerant comparison of what applicants
//! type, and numbers and dates written the French way.
//!
//! One convention for the whole report: a no-break space (U+00A0) separates thousands, the decimal
//! separator is a comma, and a plain space precedes `%` (as in the cahier's own examples).

use chrono::NaiveDate;

/// The thousands separator of every number essbot writes in French.
pub const THOUSANDS_SEP: char = '\u{a0}';

/// Folds a label or a free text for comparison: accents removed (deunicode), lower case, every
/// run of non-alphanumeric characters turned into one space, trimmed. Two wordings that differ
/// only by case, accents, apostrophes or punctuation fold to the same string.
pub fn normalize(s: &str) -> String {
    // One pass, character by character: what `deunicode(s).to_lowercase()` then folding would
    // give (deunicode's output is ASCII and it transliterates each character on its own), with
    // no intermediate strings. The rules fold every applicant text they read.
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    let mut fold = |b: u8| {
        if b.is_ascii_alphanumeric() {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(char::from(b.to_ascii_lowercase()));
        } else {
            space = true;
        }
    };
    for c in s.chars() {
        match u8::try_from(c) {
            Ok(b) if b < 0x7f => fold(b),
            _ => deunicode::deunicode_char(c)
                .unwrap_or(UNKNOWN_CHAR)
                .bytes()
                .for_each(&mut fold),
        }
    }
    out
}

/// What deunicode writes for a character it cannot transliterate (a separator once folded).
const UNKNOWN_CHAR: &str = "[?]";

/// True when the folded `needle` occurs in the folded `haystack` as whole words, so that
/// "asthme" is found in "l'asthme sévère" but "dac" is not found in "dactylographie".
pub fn contains_words(haystack_norm: &str, needle_norm: &str) -> bool {
    if needle_norm.is_empty() {
        return false;
    }
    // Same answer as looking for " needle " in " haystack ", without building either: the
    // needle is tried at the start of the haystack and after each space, and must end at a
    // space or at the end. The rules try dozens of short needles on each text: comparing at
    // word starts beats setting up a substring search for every needle.
    let needle = needle_norm.as_bytes();
    let mut rest = haystack_norm.as_bytes();
    loop {
        if rest.starts_with(needle) && rest.get(needle.len()).is_none_or(|&b| b == b' ') {
            return true;
        }
        match rest.iter().position(|&b| b == b' ') {
            Some(space) => rest = &rest[space + 1..],
            None => return false,
        }
    }
}

/// Writes an integer with French thousands separators: `12 345`.
pub fn fr_int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(THOUSANDS_SEP);
        }
        out.push(c);
    }
    out
}

/// `num / den` as a percentage with one decimal, rounded half up, in exact integer arithmetic:
/// 4 / 52 → `7,7 %`. When `below` is set (the ratio failed a threshold check), a value that would
/// round up to the threshold `below` is shown truncated instead, so that a failing ratio is never
/// displayed as reaching it (9,96 % → `9,9 %`, not `10,0 %`). `den` must not be zero.
pub fn fr_percent(num: u64, den: u64, below: Option<u64>) -> String {
    debug_assert!(den > 0);
    let den = den.max(1) as u128;
    let num = num as u128;
    let mut tenths = (num * 2000 + den) / (2 * den);
    if let Some(threshold) = below {
        let limit = threshold as u128 * 10;
        if tenths >= limit && num * 100 < threshold as u128 * den {
            tenths = (num * 1000) / den;
        }
    }
    let whole = u64::try_from(tenths / 10).unwrap_or(u64::MAX);
    format!("{},{} %", fr_int(whole), tenths % 10)
}

/// A date as French text and tables write it: `12/07/2026`.
pub fn fr_date(d: NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

/// `1 point bloquant`, `2 points bloquants`: the count and the right form of the noun.
pub fn count(n: usize, singular: &str, plural: &str) -> String {
    format!(
        "{} {}",
        fr_int(n as u64),
        if n > 1 { plural } else { singular }
    )
}

/// Joins French items: `a`, `a et b`, `a, b et c`.
pub fn join_et(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} et {last}", init.join(", ")),
    }
}

/// Longest applicant value quoted in a report line, in characters (longer ones are shortened).
pub const QUOTE_MAX_CHARS: usize = 80;

/// The one sanitizer of applicant text on its way into a report (and so back to DS): the result
/// is plain text on one line. Control characters (NUL, escape sequences such as `\u{1b}[31m`),
/// bidirectional overrides and isolates, zero-width characters and the byte-order mark are
/// removed; markup tags (`<script>`, `</b>`, `<!-- -->`) are removed, and the remaining `<`, `>`
/// become `‹`, `›`; Markdown emphasis and code marks (`*`, `` ` ``) are dropped; the French
/// quotes `«` `»` become `"` so a value cannot close its own quotation; every run of whitespace
/// (line breaks included) becomes one space; the text is trimmed and cut to `max` characters
/// with an ellipsis.
pub fn plain(s: &str, max: usize) -> String {
    let untagged = strip_tags(s);
    let mut out = String::with_capacity(untagged.len().min(max * 4 + 8));
    let mut kept = 0usize;
    let mut pending_space = false;
    let mut truncated = false;
    for c in untagged.chars() {
        let c = match c {
            '<' => '‹',
            '>' => '›',
            '«' | '»' => '"',
            '*' | '`' => continue,
            c if c.is_whitespace() => {
                pending_space = true;
                continue;
            }
            c if c.is_control() || is_invisible_format(c) => continue,
            c => c,
        };
        let needed = usize::from(pending_space && kept > 0) + 1;
        if kept + needed > max {
            truncated = true;
            break;
        }
        if pending_space && kept > 0 {
            out.push(' ');
            kept += 1;
        }
        pending_space = false;
        out.push(c);
        kept += 1;
    }
    if truncated {
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('…');
    }
    out
}

/// Bidirectional controls, zero-width characters and the BOM: invisible, and able to make a
/// report read differently from what it says.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{200b}'..='\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2069}'
        | '\u{feff}'
        | '\u{061c}'
        | '\u{00ad}')
}

/// Removes what looks like a markup tag or comment: `<` followed by a letter, `/`, `!` or `?`,
/// up to the next `>` (a lone `<` as in `< 10` is kept, and neutralised by [`plain`]).
fn strip_tags(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('<') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let opens_tag = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?'));
        match after.find('>') {
            Some(end) if opens_tag => {
                // A tag separates words: keep a space where it stood.
                out.push(' ');
                rest = &after[end + 1..];
            }
            _ => {
                out.push('<');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// Puts an applicant's value between French quotes for a message: `« Paris »`, through
/// [`plain`], so that one finding stays on one line of plain text.
pub fn quote(s: &str) -> String {
    format!("« {} »", plain(s, QUOTE_MAX_CHARS))
}

/// Number of characters of a text once trimmed, for the minimum-length checks.
pub fn char_len(s: &str) -> usize {
    s.trim().chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_folds_case_accents_and_punctuation() {
        assert_eq!(
            normalize("  Médecine  CARDIO-vasculaire (SM) "),
            "medecine cardio vasculaire sm"
        );
        assert_eq!(
            normalize("Nombre d’adhérents"),
            normalize("nombre d'adherents")
        );
        assert_eq!(normalize(""), "");
        assert_eq!(normalize("--"), "");
    }

    /// The one-pass fold gives what its definition gives: deunicode, lower case, then runs of
    /// anything but ASCII letters and digits as one space.
    #[test]
    fn normalize_matches_its_definition() {
        fn defined(s: &str) -> String {
            let ascii = deunicode::deunicode(s).to_lowercase();
            ascii
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        }
        let samples = [
            "Côtes-d'Armor",
            "  ŒUVRE   Ærø  ",
            "ﬁn ﬂeur",
            "Straße ß",
            "\u{7f}a\u{7f}b\u{0}",
            "日本語 테스트 😀 ok",
            "KELVIN \u{212a} Å",
            "l'Ηλέκτρα – ½ ¼ № 3",
            "\u{10ffff}\u{fffd}x",
            "",
        ];
        for s in samples {
            assert_eq!(normalize(s), defined(s), "{s:?}");
        }
        // Every character of the Basic Multilingual Plane and a slice beyond, each alone and
        // between two words.
        for c in (0..0x3_0000u32).filter_map(char::from_u32) {
            for s in [c.to_string(), format!("a{c}b"), format!("{c}{c}x")] {
                assert_eq!(normalize(&s), defined(&s), "{:x}", c as u32);
            }
        }
    }

    #[test]
    fn words_are_matched_whole() {
        assert!(contains_words("l asthme severe", "asthme"));
        assert!(!contains_words("dactylographie", "dac"));
        assert!(contains_words("dac", "dac"));
        assert!(!contains_words("dac", ""));
        // A partial occurrence first does not hide a whole one later.
        assert!(contains_words("dactylo et dac", "dac"));
        assert!(contains_words("un dac ici", "dac"));
        assert!(!contains_words("undac", "dac"));
        assert!(!contains_words("dacs", "dac"));
        assert!(contains_words("nord de la manche", "nord de"));
        assert!(!contains_words("nord desert", "nord de"));
        assert!(!contains_words("", "dac"));
    }

    /// The search is the plain definition: `" needle "` within `" haystack "`.
    #[test]
    fn whole_word_search_matches_its_definition() {
        // Every string of up to 5 characters over `a`, `b` and a space as the haystack, every
        // one of up to 3 as the needle.
        fn all(max: usize) -> Vec<String> {
            let mut out = vec![String::new()];
            let mut last = vec![String::new()];
            for _ in 0..max {
                last = last
                    .iter()
                    .flat_map(|s| ['a', 'b', ' '].map(|c| format!("{s}{c}")))
                    .collect();
                out.extend(last.iter().cloned());
            }
            out
        }
        let needles = all(3);
        for h in all(5) {
            for n in &needles {
                let defined = !n.is_empty() && format!(" {h} ").contains(&format!(" {n} "));
                assert_eq!(contains_words(&h, n), defined, "{n:?} in {h:?}");
            }
        }
    }

    #[test]
    fn integers_get_no_break_spaces() {
        assert_eq!(fr_int(0), "0");
        assert_eq!(fr_int(999), "999");
        assert_eq!(fr_int(1000), "1\u{a0}000");
        assert_eq!(fr_int(1_234_567), "1\u{a0}234\u{a0}567");
    }

    #[test]
    fn percentages_round_half_up_and_never_overstate_a_failure() {
        assert_eq!(fr_percent(4, 52, None), "7,7 %");
        assert_eq!(fr_percent(1, 10, None), "10,0 %");
        assert_eq!(fr_percent(1, 3, None), "33,3 %");
        assert_eq!(fr_percent(2, 3, None), "66,7 %");
        assert_eq!(fr_percent(1, 2000, None), "0,1 %"); // 0,05 rounds up
        assert_eq!(fr_percent(99, 991, None), "10,0 %");
        assert_eq!(fr_percent(99, 991, Some(10)), "9,9 %");
        assert_eq!(fr_percent(100, 1000, Some(10)), "10,0 %");
        assert_eq!(fr_percent(30, 10, None), "300,0 %");
    }

    #[test]
    fn dates_counts_and_lists() {
        assert_eq!(
            fr_date(NaiveDate::from_ymd_opt(2026, 7, 2).unwrap()),
            "02/07/2026"
        );
        assert_eq!(
            count(1, "point bloquant", "points bloquants"),
            "1 point bloquant"
        );
        assert_eq!(
            count(2, "point bloquant", "points bloquants"),
            "2 points bloquants"
        );
        assert_eq!(join_et(&[]), "");
        assert_eq!(join_et(&["a".into()]), "a");
        assert_eq!(join_et(&["a".into(), "b".into(), "c".into()]), "a, b et c");
    }

    #[test]
    fn plain_removes_controls_markup_and_invisible_characters() {
        assert_eq!(plain("<script>alert(1)</script>Dr X", 80), "alert(1) Dr X");
        assert_eq!(plain("<b>gras</b> et <!-- note -->fin", 80), "gras et fin");
        assert_eq!(plain("**gras** et `code`", 80), "gras et code");
        assert_eq!(
            plain("a\u{0}b\u{1b}[31mrouge\u{1b}[0m", 80),
            "ab[31mrouge[0m"
        );
        assert_eq!(
            plain("\u{202e}evil\u{202c} \u{2067}x\u{2069}\u{200b}", 80),
            "evil x"
        );
        assert_eq!(plain("moins de < 10 > 5", 80), "moins de ‹ 10 › 5");
        assert_eq!(plain("un «faux» guillemet", 80), "un \"faux\" guillemet");
        assert_eq!(plain("  a\r\n\tb\u{a0} c  ", 80), "a b c");
        assert_eq!(plain("<unclosed", 80), "‹unclosed");
        assert_eq!(plain("", 80), "");
        assert_eq!(plain("\u{0}\u{1}", 80), "");
    }

    #[test]
    fn plain_caps_the_length_of_huge_values() {
        let huge = "mot ".repeat(300_000);
        let p = plain(&huge, 80);
        assert!(p.chars().count() <= 81 && p.ends_with('…'), "{p}");
        assert_eq!(plain("abcdef", 3), "abc…");
        assert_eq!(plain("abc", 3), "abc");
    }

    #[test]
    fn quotes_flatten_and_shorten() {
        assert_eq!(quote("a\nb"), "« a b »");
        let long = "x".repeat(200);
        let q = quote(&long);
        assert!(q.chars().count() < 90 && q.ends_with("… »"), "{q}");
    }
}

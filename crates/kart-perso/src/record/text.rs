//! Text normalization and script checks for names and digit strings.

use unicode_normalization::UnicodeNormalization;

use super::error::Problem;
use super::limits::{LATIN_NAME_MAX_BYTES, PERSIAN_NAME_MAX_BYTES};

/// Zero-width non-joiner: part of Persian spelling (e.g. «می‌خواهم»), kept as is.
pub const ZWNJ: char = '\u{200C}';

/// Maps Persian (U+06F0–U+06F9) and Arabic-Indic (U+0660–U+0669) digits to
/// ASCII digits and leaves every other character alone.
///
/// ```
/// use kart_perso::record::normalize_digits;
/// assert_eq!(normalize_digits("۱۳۹۹/۰۵/١٩"), "1399/05/19");
/// ```
pub fn normalize_digits(s: &str) -> String {
    s.chars().map(ascii_digit).collect()
}

fn ascii_digit(c: char) -> char {
    let base = match c {
        '\u{06F0}'..='\u{06F9}' => 0x06F0,
        '\u{0660}'..='\u{0669}' => 0x0660,
        _ => return c,
    };
    char::from_u32(u32::from('0') + (u32::from(c) - base)).unwrap_or(c)
}

/// Normalizes Persian text: Arabic yeh and kaf (U+064A, U+0643) become Persian
/// yeh and keheh (U+06CC, U+06A9), the result is NFC, trimmed, and inner runs
/// of white space become one space. ZWNJ is kept.
///
/// ```
/// use kart_perso::record::normalize_persian;
/// // Arabic kaf and yeh in «علي كريمي» become their Persian forms.
/// assert_eq!(normalize_persian("  علي   كريمي "), "علی کریمی");
/// ```
pub fn normalize_persian(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| match c {
            '\u{064A}' => '\u{06CC}',
            '\u{0643}' => '\u{06A9}',
            other => other,
        })
        .nfc()
        .collect();
    collapse_whitespace(&mapped)
}

/// Normalizes Latin text: NFC, trimmed, inner white space collapsed, ASCII
/// letters upper-cased (the applet spec stores Latin names as `A`–`Z`).
///
/// ```
/// use kart_perso::record::normalize_latin;
/// assert_eq!(normalize_latin(" Ali   Karimi "), "ALI KARIMI");
/// ```
pub fn normalize_latin(s: &str) -> String {
    collapse_whitespace(&s.nfc().collect::<String>()).to_ascii_uppercase()
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// True for the Arabic-script letters and marks that Persian names use
/// (after normalization); digits and punctuation are excluded.
fn is_persian_letter(c: char) -> bool {
    matches!(c, '\u{0621}'..='\u{063A}' | '\u{0641}'..='\u{065F}' | '\u{0670}'..='\u{06D3}')
}

/// A validated Persian name: normalized, Persian script only, within the
/// spec's byte bound.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PersianText(String);

impl PersianText {
    /// Normalizes `raw` (see [`normalize_persian`]) and checks it.
    ///
    /// ```
    /// use kart_perso::record::PersianText;
    /// assert_eq!(PersianText::parse("مريم").unwrap().as_str(), "مریم");
    /// assert!(PersianText::parse("Maryam").is_err());
    /// ```
    pub fn parse(raw: &str) -> Result<Self, Problem> {
        checked(
            normalize_persian(raw),
            PERSIAN_NAME_MAX_BYTES,
            |found, position| {
                if found.is_ascii_alphabetic() || is_latin_script(found) {
                    Err(Problem::LatinInPersian { found, position })
                } else if !(is_persian_letter(found) || found == ' ' || found == ZWNJ) {
                    Err(Problem::NotPersianLetter { found, position })
                } else {
                    Ok(())
                }
            },
        )
        .map(Self)
    }

    /// The normalized text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated Latin name: normalized (upper case), ASCII letters with space,
/// hyphen and apostrophe, within the spec's byte bound.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LatinText(String);

impl LatinText {
    /// Normalizes `raw` (see [`normalize_latin`]) and checks it.
    ///
    /// ```
    /// use kart_perso::record::LatinText;
    /// assert_eq!(LatinText::parse(" Maryam ").unwrap().as_str(), "MARYAM");
    /// assert!(LatinText::parse("مریم").is_err());
    /// ```
    pub fn parse(raw: &str) -> Result<Self, Problem> {
        checked(
            normalize_latin(raw),
            LATIN_NAME_MAX_BYTES,
            |found, position| {
                if is_persian_letter(found) || ('\u{0600}'..='\u{06FF}').contains(&found) {
                    Err(Problem::PersianInLatin { found, position })
                } else if !(found.is_ascii_alphabetic() || matches!(found, ' ' | '-' | '\'')) {
                    Err(Problem::NotLatinLetter { found, position })
                } else {
                    Ok(())
                }
            },
        )
        .map(Self)
    }

    /// The normalized text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_latin_script(c: char) -> bool {
    matches!(c, '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}')
}

/// Checks normalized `text`: not empty, every character accepted by
/// `check` (given it and its position from 1), at most `max` bytes.
fn checked(
    text: String,
    max: usize,
    check: impl Fn(char, usize) -> Result<(), Problem>,
) -> Result<String, Problem> {
    if text.is_empty() {
        return Err(Problem::Empty);
    }
    for (i, c) in text.chars().enumerate() {
        check(c, i + 1)?;
    }
    check_len(text, max)
}

fn check_len(text: String, max: usize) -> Result<String, Problem> {
    if text.len() > max {
        return Err(Problem::TooLong {
            bytes: text.len(),
            max,
        });
    }
    Ok(text)
}

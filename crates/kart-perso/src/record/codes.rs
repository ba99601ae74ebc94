//! The two digit codes of an application: the national code and the
//! tracking code from the applicant's receipt.

use std::fmt;

use super::error::Problem;
use super::text::normalize_digits;

/// Reads exactly `N` digits (ASCII, Persian or Arabic-Indic) after trimming.
fn digits<const N: usize>(raw: &str) -> Result<[u8; N], Problem> {
    let text = normalize_digits(raw.trim());
    let count = text.chars().count();
    if count != N {
        return Err(Problem::WrongLength {
            found: count,
            expected: N,
        });
    }
    let mut out = [0u8; N];
    for ((position, c), slot) in text.chars().enumerate().zip(out.iter_mut()) {
        *slot = c
            .to_digit(10)
            .and_then(|d| u8::try_from(d).ok())
            .filter(|_| c.is_ascii_digit())
            .ok_or(Problem::NotDigit {
                found: c,
                position: position + 1,
            })?;
    }
    Ok(out)
}

fn to_text(digits: &[u8]) -> String {
    digits.iter().map(|d| char::from(b'0' + d)).collect()
}

/// An Iranian national code: 10 digits, the last a mod-11 check digit.
///
/// With s = Σ d\[i\]·(10−i) for i = 0..8 and r = s mod 11, the code is valid
/// when (r < 2 and d\[9\] = r) or (r ≥ 2 and d\[9\] = 11 − r). Codes of ten equal
/// digits pass that check but are never issued, so they are rejected.
///
/// ```
/// use kart_perso::record::NationalCode;
/// assert_eq!(NationalCode::parse("۰۰۱۲۳۴۵۶۷۹").unwrap().as_str(), "0012345679");
/// let err = NationalCode::parse("0012345678").unwrap_err();
/// assert_eq!(err.to_string(), "check digit is 8, expected 9");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NationalCode(String);

impl NationalCode {
    /// Normalizes digits to ASCII and checks length, digits and check digit.
    pub fn parse(raw: &str) -> Result<Self, Problem> {
        let d: [u8; 10] = digits(raw)?;
        if d.iter().all(|&x| x == d[0]) {
            return Err(Problem::AllSameDigit {
                digit: char::from(b'0' + d[0]),
            });
        }
        let s: u32 = d[..9]
            .iter()
            .zip((2..=10u32).rev())
            .map(|(&digit, weight)| u32::from(digit) * weight)
            .sum();
        let r = (s % 11) as u8;
        let expected = if r < 2 { r } else { 11 - r };
        if d[9] != expected {
            return Err(Problem::CheckDigit {
                found: d[9],
                expected,
            });
        }
        Ok(Self(to_text(&d)))
    }

    /// The ten ASCII digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NationalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NationalCode({})", self.0)
    }
}

impl fmt::Display for NationalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The application's tracking code, printed on the applicant's receipt.
///
/// Format (ours): 12 digits; the last is the Luhn check digit (ISO/IEC 7812-1)
/// over the first 11, so a mistyped digit or a swap of two neighbours is
/// caught at the counter. Persian and Arabic-Indic digits are accepted and
/// stored as ASCII.
///
/// ```
/// use kart_perso::record::TrackingCode;
/// assert!(TrackingCode::parse("140409040007").is_ok());
/// assert_eq!(
///     TrackingCode::parse("140409040008").unwrap_err().to_string(),
///     "check digit is 8, expected 7"
/// );
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackingCode(String);

impl TrackingCode {
    /// Number of digits, check digit included.
    pub const LEN: usize = 12;

    /// Normalizes digits to ASCII and checks length, digits and check digit.
    pub fn parse(raw: &str) -> Result<Self, Problem> {
        let d: [u8; Self::LEN] = digits(raw)?;
        let (body, check) = d.split_at(Self::LEN - 1);
        let expected = luhn_check_digit(body);
        let found = check.first().copied().unwrap_or_default();
        if found != expected {
            return Err(Problem::CheckDigit { found, expected });
        }
        Ok(Self(to_text(&d)))
    }

    /// The twelve ASCII digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The Luhn check digit (ISO/IEC 7812-1) of `body`, digits as values 0-9.
///
/// From the rightmost body digit leftwards, double every other digit
/// (starting with the rightmost), subtract 9 from results above 9, and pick
/// the digit that brings the sum to a multiple of 10.
pub fn luhn_check_digit(body: &[u8]) -> u8 {
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let twice = d * 2;
                if twice > 9 {
                    twice - 9
                } else {
                    twice
                }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

impl fmt::Debug for TrackingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrackingCode({})", self.0)
    }
}

impl fmt::Display for TrackingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

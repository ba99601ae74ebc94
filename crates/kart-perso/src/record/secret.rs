//! The card holder's PIN: zeroized on drop, redacted in Debug, compared in
//! constant time.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::error::Problem;
use super::limits::{PIN_MAX_DIGITS, PIN_MIN_DIGITS};
use super::text::normalize_digits;

/// A PIN of 4 to 8 digits.
///
/// ```
/// use kart_perso::record::Pin;
/// let pin = Pin::parse("۱۲۳۴").unwrap();
/// assert_eq!(format!("{pin:?}"), "Pin(<redacted>)");
/// assert_eq!(pin, Pin::parse("1234").unwrap());
/// assert!(Pin::parse("12a4").is_err());
/// ```
#[derive(Clone)]
pub struct Pin(Zeroizing<Vec<u8>>);

impl Pin {
    /// Normalizes digits to ASCII and checks the length; errors never echo it.
    pub fn parse(raw: &str) -> Result<Self, Problem> {
        let text = Zeroizing::new(normalize_digits(raw.trim()));
        let ok = (PIN_MIN_DIGITS..=PIN_MAX_DIGITS).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_digit());
        if !ok {
            return Err(Problem::PinFormat {
                min: PIN_MIN_DIGITS,
                max: PIN_MAX_DIGITS,
            });
        }
        Ok(Self(Zeroizing::new(text.as_bytes().to_vec())))
    }

    /// The ASCII digits, for the VERIFY / CHANGE REFERENCE DATA command only.
    pub fn expose_digits(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq for Pin {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_slice().ct_eq(other.0.as_slice()).into()
    }
}

impl Eq for Pin {}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

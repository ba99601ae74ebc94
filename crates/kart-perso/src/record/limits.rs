//! Byte and size bounds for identity data, in one place.
//!
//! These follow `applets-spec/nid-applet.toml` (tags C2–C7 of EF.ID, tag 5F2E
//! of EF.FACE and EF.FINGER, the `ID_PIN` entry); when the spec changes, change
//! them here and nowhere else.

/// Largest Persian name field (given, family, father's name), in UTF-8 bytes.
pub const PERSIAN_NAME_MAX_BYTES: usize = 96;
/// Largest Latin name field, in bytes (ASCII only, so bytes = characters).
pub const LATIN_NAME_MAX_BYTES: usize = 64;
/// Largest facial image (JPEG) the card's image file holds, in bytes.
pub const PHOTO_MAX_BYTES: u64 = 20_470;
/// Largest fingerprint template file, in bytes.
pub const FINGERPRINT_MAX_BYTES: u64 = 2_040;
/// Shortest PIN, in digits.
pub const PIN_MIN_DIGITS: usize = 4;
/// Longest PIN, in digits.
pub const PIN_MAX_DIGITS: usize = 8;
/// A birth date more than this many days before today is rejected as
/// implausible (about 130 years).
pub const OLDEST_BIRTH_DAYS: i64 = 130 * 36_524 / 100;

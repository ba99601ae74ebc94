//! Identity numbers and photos that pass the engine's validation, computed
//! here from their definitions rather than taken from the engine.

/// `body` with its Luhn check digit appended (ISO/IEC 7812-1).
///
/// ```
/// assert_eq!(kart_testkit::ids::luhn("14040904000"), "140409040007");
/// ```
pub fn luhn(body: &str) -> String {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b.wrapping_sub(b'0'));
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// A valid 12-digit tracking code for `seq`: 11 digits and the Luhn check digit.
///
/// ```
/// assert_eq!(kart_testkit::ids::tracking_code(0), "000000000000");
/// assert_eq!(kart_testkit::ids::tracking_code(14040904000), "140409040007");
/// ```
pub fn tracking_code(seq: u64) -> String {
    luhn(&format!("{:011}", seq % 100_000_000_000))
}

/// A valid national code for `seq`: 9 digits and the mod-11 check digit
/// (design §3). Never all one digit for `seq` ≥ 1.
///
/// ```
/// // s = 112, r = 2, check digit 9.
/// assert_eq!(kart_testkit::ids::national_code(1234567), "0012345679");
/// ```
pub fn national_code(seq: u64) -> String {
    let body = format!("{:09}", seq % 1_000_000_000);
    let s: u32 = body
        .bytes()
        .zip((2..=10).rev())
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let r = s % 11;
    let check = if r < 2 { r } else { 11 - r };
    format!("{body}{check}")
}

/// A syntactically complete JPEG of `len` bytes (SOI APP0 … EOI).
///
/// ```
/// let j = kart_testkit::ids::jpeg(100);
/// assert_eq!((j.len(), &j[..2], &j[98..]), (100, &[0xFF, 0xD8][..], &[0xFF, 0xD9][..]));
/// ```
pub fn jpeg(len: usize) -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0];
    j.extend((0..len.saturating_sub(6)).map(|i| (i % 200) as u8));
    j.extend_from_slice(&[0xFF, 0xD9]);
    j
}

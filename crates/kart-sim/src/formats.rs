//! The simulator's own decoder of the applet's data formats (README §6.1),
//! written from the spec, independent of the engine's encoder: the card
//! refuses to leave PRE_PERSONALIZED with a file that does not decode.

use iso7816_tlv::ber::{Tlv, Value};
use kart_spec::{Encoding, TagSpec};
use std::collections::HashSet;

/// Checks one EF's content against the tags the spec gives for it.
/// Files without tags (certificates, security object) must be one DER
/// SEQUENCE. The error says what is wrong, for the simulator's users.
pub(crate) fn check_file(contents: &[u8], tags: &[&TagSpec]) -> Result<(), String> {
    if tags.is_empty() {
        return der_sequence(contents);
    }
    let tlv = Tlv::from_bytes(contents).map_err(|e| format!("not one BER-TLV object: {e:?}"))?;
    let tag = tlv.tag().to_bytes().to_vec();
    let Some(outer) = tags.iter().find(|t| t.tag.bytes() == tag.as_slice()) else {
        return Err(format!("unexpected outer tag {}", hex::encode_upper(&tag)));
    };
    match (outer.encoding, tlv.value()) {
        (Encoding::Constructed, Value::Constructed(children)) => check_template(children, tags),
        (_, Value::Primitive(v)) => check_value(outer, v),
        _ => Err(format!("tag {} has the wrong form", outer.tag)),
    }
}

fn check_template(children: &[Tlv], tags: &[&TagSpec]) -> Result<(), String> {
    let mut seen = HashSet::new();
    for child in children {
        let tag = child.tag().to_bytes().to_vec();
        let spec = tags
            .iter()
            .find(|t| t.tag.bytes() == tag.as_slice() && t.encoding != Encoding::Constructed)
            .ok_or_else(|| format!("unknown tag {}", hex::encode_upper(&tag)))?;
        if !seen.insert(tag) {
            return Err(format!("tag {} appears twice", spec.tag));
        }
        match child.value() {
            Value::Primitive(v) => check_value(spec, v)?,
            Value::Constructed(_) => return Err(format!("tag {} must be primitive", spec.tag)),
        }
    }
    match tags.iter().find(|t| {
        t.required && t.encoding != Encoding::Constructed && !seen.contains(t.tag.bytes())
    }) {
        Some(missing) => Err(format!(
            "required tag {} ({}) is missing",
            missing.tag, missing.name
        )),
        None => Ok(()),
    }
}

fn check_value(spec: &TagSpec, v: &[u8]) -> Result<(), String> {
    if !(spec.min..=spec.max).contains(&v.len()) {
        return Err(format!(
            "tag {} has {} bytes, allowed {}..={}",
            spec.tag,
            v.len(),
            spec.min,
            spec.max
        ));
    }
    let digits = v.iter().all(u8::is_ascii_digit);
    let ok = match spec.encoding {
        Encoding::AsciiDigits if spec.name.starts_with("national code") => {
            digits && national_code_ok(v)
        }
        Encoding::AsciiDigits => digits,
        Encoding::Utf8 => std::str::from_utf8(v).is_ok_and(|s| !s.chars().any(char::is_control)),
        Encoding::Latin => v
            .iter()
            .all(|b| b.is_ascii_uppercase() || b" -'".contains(b)),
        Encoding::Date => digits && date_ok(v),
        Encoding::Gender => matches!(v, b"M" | b"F" | b"X"),
        Encoding::Jpeg => v.starts_with(&[0xFF, 0xD8]) && v.ends_with(&[0xFF, 0xD9]),
        Encoding::Binary | Encoding::Constructed => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {} ({}) is not valid {:?}",
            spec.tag, spec.name, spec.encoding
        ))
    }
}

/// A certificate or CMS object: one DER SEQUENCE whose length covers the
/// file exactly. Only the header is checked; the content is the issuer's.
fn der_sequence(v: &[u8]) -> Result<(), String> {
    let (len, header) = match v {
        [0x30, n, ..] if *n < 0x80 => (usize::from(*n), 2),
        [0x30, 0x81, n, ..] => (usize::from(*n), 3),
        [0x30, 0x82, hi, lo, ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), 4),
        _ => return Err("not a DER SEQUENCE".into()),
    };
    if header + len == v.len() {
        Ok(())
    } else {
        Err(format!("SEQUENCE of {len} bytes in a file of {}", v.len()))
    }
}

/// s = Σ d[i]·(10−i) for i = 0..8, r = s mod 11; valid if (r < 2 and d[9] = r)
/// or (r ≥ 2 and d[9] = 11 − r); all-same-digit codes are refused.
fn national_code_ok(v: &[u8]) -> bool {
    let d: Vec<u32> = v.iter().map(|b| u32::from(b - b'0')).collect();
    let [head @ .., check] = d.as_slice() else {
        return false;
    };
    if d.len() != 10 || d.iter().all(|x| Some(x) == d.first()) {
        return false;
    }
    let s: u32 = head.iter().zip((2..=10).rev()).map(|(x, w)| x * w).sum();
    let r = s % 11;
    *check == if r < 2 { r } else { 11 - r }
}

fn date_ok(v: &[u8]) -> bool {
    let num = |r: std::ops::Range<usize>| {
        v.get(r)
            .map(|s| s.iter().fold(0u32, |a, b| a * 10 + u32::from(b - b'0')))
    };
    matches!((num(4..6), num(6..8)), (Some(1..=12), Some(1..=31)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_code_check_digit() {
        // 0499370899: s = 266, r = 2, check = 9 (worked by hand in tests/common).
        assert!(national_code_ok(b"0499370899"));
        assert!(!national_code_ok(b"0499370898"));
        assert!(!national_code_ok(b"1111111111"));
        // Digits 000000001: s = 1·2 = 2, r = 2, check 11 − 2 = 9.
        assert!(national_code_ok(b"0000000019"));
    }

    #[test]
    fn der_header() {
        assert!(der_sequence(&[0x30, 0x82, 0x00, 0x02, 1, 2]).is_ok());
        assert!(der_sequence(&[0x30, 0x03, 1, 2]).is_err());
        assert!(der_sequence(&[0x31, 0x00]).is_err());
    }

    #[test]
    fn dates() {
        assert!(date_ok(b"13690519"));
        assert!(!date_ok(b"13691319"));
        assert!(!date_ok(b"13690500"));
    }
}

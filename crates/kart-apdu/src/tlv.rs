//! BER-TLV helpers over the `iso7816-tlv` crate (ISO 7816-4 §6.3).
//!
//! The crate does the parsing and encoding; this module adds what a card
//! reader needs on top: strict framing (no trailing bytes, no truncated or
//! indefinite lengths, bounded nesting), typed errors, building from tag
//! numbers, and lookup by tag path.
//!
//! ```
//! use kart_apdu::tlv;
//! // A public key template: 7F49 { 86 <EC point> } (ISO 7816-8 §5.1, Table 3).
//! let key = tlv::constructed(0x7F49, vec![tlv::primitive(0x86, &[0x04, 0xAA, 0xBB])?])?;
//! let bytes = tlv::to_vec(&key);
//! assert_eq!(bytes, [0x7F, 0x49, 0x05, 0x86, 0x03, 0x04, 0xAA, 0xBB]);
//! let parsed = tlv::parse(&bytes)?;
//! assert_eq!(tlv::value_at(&parsed, &[0x7F49, 0x86])?, &[0x04, 0xAA, 0xBB]);
//! assert!(tlv::parse(&[0x86, 0x80]).is_err()); // indefinite length
//! # Ok::<(), kart_apdu::tlv::TlvError>(())
//! ```

pub use iso7816_tlv::ber::{Tag, Tlv, Value};
use thiserror::Error;

/// Deepest nesting of constructed objects accepted. ISO 7816 structures
/// rarely go past four levels; the bound keeps hostile input from exhausting
/// the stack of the crate's recursive parser.
pub const MAX_DEPTH: usize = 32;

/// Most objects one parse accepts. The crate re-measures all earlier siblings
/// for every child it reads, so its time grows with the square of the object
/// count: 32 000 empty objects take seconds, 4096 take milliseconds.
pub const MAX_OBJECTS: usize = 4096;

/// Why bytes are not the BER-TLV expected, or a lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TlvError {
    /// No bytes at all where an object was expected.
    #[error("BER-TLV input is empty")]
    Empty,
    /// The input ends inside a tag, a length or a value.
    #[error("BER-TLV truncated in the {field} of the object at byte {offset}")]
    Truncated {
        /// Offset of the object's first tag byte in the input.
        offset: usize,
        /// `"tag"`, `"length"` or `"value"`.
        field: &'static str,
    },
    /// Length byte `80`: the indefinite form, which ISO 7816 BER-TLV does not use.
    #[error("BER-TLV object at byte {0} has an indefinite length (80); ISO 7816-4 allows definite lengths only")]
    IndefiniteLength(usize),
    /// A length field of more than four subsequent bytes (or the reserved `FF`).
    #[error("BER-TLV object at byte {0} has a length field longer than 4 bytes")]
    LengthTooLong(usize),
    /// A long-form length that fits a shorter form (e.g. `81 05`). ISO 7816-4
    /// tolerates it, but the parser underneath measures children by their
    /// minimal encoding and would misread such objects, so they are refused.
    #[error("BER-TLV object at byte {0} has a length in a longer form than needed; re-encode it with minimal lengths")]
    NonMinimalLength(usize),
    /// Bytes left after the one object expected.
    #[error("{0} trailing bytes after the BER-TLV object")]
    TrailingBytes(usize),
    /// Constructed objects nested deeper than [`MAX_DEPTH`].
    #[error("BER-TLV nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// More than [`MAX_OBJECTS`] objects in one input.
    #[error("BER-TLV input holds more than {MAX_OBJECTS} objects")]
    TooManyObjects,
    /// A tag number that is not a valid BER-TLV tag of 1 to 3 bytes.
    #[error("{0:#X} is not a valid BER-TLV tag of 1 to 3 bytes")]
    InvalidTag(u32),
    /// A primitive tag given children, or a constructed tag given bytes.
    #[error("tag {0:#X} is {1}, which does not fit the value given")]
    WrongForm(u32, &'static str),
    /// Framing was sound but the parser refused the content (e.g. a tag of 4 bytes).
    #[error("BER-TLV refused: {0}")]
    Malformed(String),
    /// No object at this tag path.
    #[error("no BER-TLV object at tag path {}", format_path(.0))]
    NotFound(Vec<u32>),
    /// The object at the path is constructed where a primitive value was asked for.
    #[error("BER-TLV object at tag path {} is constructed, not primitive", format_path(.0))]
    NotPrimitive(Vec<u32>),
}

fn format_path(path: &[u32]) -> String {
    let tags: Vec<String> = path.iter().map(|t| format!("{t:02X}")).collect();
    tags.join("/")
}

/// A primitive object with tag number `tag` (e.g. `0x5F20`).
pub fn primitive(tag: u32, value: &[u8]) -> Result<Tlv, TlvError> {
    Tlv::new(tag_of(tag)?, Value::Primitive(value.to_vec()))
        .map_err(|_| TlvError::WrongForm(tag, "constructed"))
}

/// A constructed object with tag number `tag` (e.g. `0x7F49`) holding `children`.
pub fn constructed(tag: u32, children: Vec<Tlv>) -> Result<Tlv, TlvError> {
    Tlv::new(tag_of(tag)?, Value::Constructed(children))
        .map_err(|_| TlvError::WrongForm(tag, "primitive"))
}

/// Encodes an object with minimal (DER) length fields.
///
/// Use this rather than the crate's `Tlv::to_vec`: for a value of exactly 127
/// bytes that one writes `81 7F` yet counts one length byte, so a constructed
/// object around it gets a length one short of its content.
pub fn to_vec(tlv: &Tlv) -> Vec<u8> {
    let mut out = Vec::with_capacity(tlv.length() + 4);
    encode_into(tlv, &mut out);
    out
}

fn encode_into(tlv: &Tlv, out: &mut Vec<u8>) {
    out.extend_from_slice(tlv.tag().to_bytes());
    match tlv.value() {
        Value::Primitive(v) => {
            push_length(v.len(), out);
            out.extend_from_slice(v);
        }
        Value::Constructed(children) => {
            let mut body = Vec::new();
            for child in children {
                encode_into(child, &mut body);
            }
            push_length(body.len(), out);
            out.extend_from_slice(&body);
        }
    }
}

/// ISO 7816-4 §6.3 length field: one byte below 128, else `8n` and n bytes.
fn push_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let be = len.to_be_bytes();
    let skip = be.iter().take_while(|b| **b == 0).count();
    let digits = be.get(skip..).unwrap_or_default();
    out.push(0x80 | digits.len() as u8);
    out.extend_from_slice(digits);
}

/// The tag number of an object, as written in specifications (`0x7F49`).
pub fn tag_number(tlv: &Tlv) -> u32 {
    tlv.tag()
        .to_bytes()
        .iter()
        .fold(0, |n, b| (n << 8) | u32::from(*b))
}

/// Parses exactly one object that fills `bytes`.
pub fn parse(bytes: &[u8]) -> Result<Tlv, TlvError> {
    if bytes.is_empty() {
        return Err(TlvError::Empty);
    }
    let mut budget = MAX_OBJECTS;
    let end = object_end(bytes, 0, 0, &mut budget)?;
    if end != bytes.len() {
        return Err(TlvError::TrailingBytes(bytes.len() - end));
    }
    Tlv::from_bytes(bytes).map_err(|e| TlvError::Malformed(e.to_string()))
}

/// Parses a sequence of objects that fills `bytes` exactly (empty input gives
/// none). Unlike the crate's `parse_all`, a bad object is an error, not the
/// silent end of the list.
pub fn parse_all(bytes: &[u8]) -> Result<Vec<Tlv>, TlvError> {
    let mut objects = Vec::new();
    let mut at = 0;
    let mut budget = MAX_OBJECTS;
    while at < bytes.len() {
        let end = object_end(bytes, at, 0, &mut budget)?;
        let one = bytes.get(at..end).unwrap_or_default();
        objects.push(Tlv::from_bytes(one).map_err(|e| TlvError::Malformed(e.to_string()))?);
        at = end;
    }
    Ok(objects)
}

/// The object at a tag path starting with `root`'s own tag, e.g.
/// `[0x7F49, 0x86]` for the point inside a public key template.
pub fn find<'a>(root: &'a Tlv, path: &[u32]) -> Option<&'a Tlv> {
    find_in(std::slice::from_ref(root), path)
}

/// The object at a tag path whose first tag is among `objects`.
pub fn find_in<'a>(objects: &'a [Tlv], path: &[u32]) -> Option<&'a Tlv> {
    let (first, rest) = path.split_first()?;
    let hit = objects.iter().find(|o| tag_number(o) == *first)?;
    if rest.is_empty() {
        return Some(hit);
    }
    match hit.value() {
        Value::Constructed(children) => find_in(children, rest),
        Value::Primitive(_) => None,
    }
}

/// The primitive value at a tag path starting with `root`'s own tag.
pub fn value_at<'a>(root: &'a Tlv, path: &[u32]) -> Result<&'a [u8], TlvError> {
    match find(root, path).map(Tlv::value) {
        Some(Value::Primitive(v)) => Ok(v),
        Some(Value::Constructed(_)) => Err(TlvError::NotPrimitive(path.to_vec())),
        None => Err(TlvError::NotFound(path.to_vec())),
    }
}

fn tag_of(tag: u32) -> Result<Tag, TlvError> {
    Tag::try_from(tag).map_err(|_| TlvError::InvalidTag(tag))
}

/// Checks the framing of the object at `at` and returns where it ends;
/// `budget` is how many more objects may be read.
///
/// Why this walk exists at all: the crate reads length `80` as zero, recurses
/// without a depth bound, slows quadratically with the object count and
/// reports every framing fault the same way. Only tag and length fields are
/// read here; the crate still builds the objects.
fn object_end(
    bytes: &[u8],
    at: usize,
    depth: usize,
    budget: &mut usize,
) -> Result<usize, TlvError> {
    *budget = budget.checked_sub(1).ok_or(TlvError::TooManyObjects)?;
    let truncated = |field| TlvError::Truncated { offset: at, field };
    let first = *bytes.get(at).ok_or(truncated("tag"))?;
    let mut pos = at + 1;
    if first & 0x1F == 0x1F {
        // Subsequent tag bytes carry b8 = 1 while more follow (ISO 7816-4 §6.3).
        loop {
            let b = *bytes.get(pos).ok_or(truncated("tag"))?;
            pos += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let len_byte = *bytes.get(pos).ok_or(truncated("length"))?;
    pos += 1;
    let len = match len_byte {
        0x00..=0x7F => usize::from(len_byte),
        0x80 => return Err(TlvError::IndefiniteLength(at)),
        0x81..=0x84 => {
            let n = usize::from(len_byte & 0x7F);
            let field = bytes.get(pos..pos + n).ok_or(truncated("length"))?;
            pos += n;
            let len = field.iter().fold(0usize, |l, b| (l << 8) | usize::from(*b));
            if len < 0x80 || field.first() == Some(&0) {
                return Err(TlvError::NonMinimalLength(at));
            }
            len
        }
        _ => return Err(TlvError::LengthTooLong(at)),
    };
    let end = pos
        .checked_add(len)
        .filter(|end| *end <= bytes.len())
        .ok_or(truncated("value"))?;
    if first & 0x20 != 0 {
        if depth >= MAX_DEPTH {
            return Err(TlvError::TooDeep);
        }
        // Children must tile the value exactly; the slice stops them at its end.
        let value = bytes.get(..end).unwrap_or_default();
        let mut child = pos;
        while child < end {
            child = object_end(value, child, depth + 1, budget)?;
        }
    }
    Ok(end)
}

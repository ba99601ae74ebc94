//! The facial image: a complete JPEG within the spec's size bound.

use std::fmt;
use std::path::Path;

use kart_spec::input::read_regular;

use super::error::Problem;
use super::limits::{FINGERPRINT_MAX_BYTES, PHOTO_MAX_BYTES};

/// JPEG bytes that start with SOI (FF D8) and end with EOI (FF D9).
///
/// ```no_run
/// use kart_perso::record::Photo;
/// let photo = Photo::load(std::path::Path::new("photos/0012345679.jpg"))?;
/// assert!(photo.as_bytes().starts_with(&[0xFF, 0xD8]));
/// # Ok::<(), kart_perso::record::Problem>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Photo(Vec<u8>);

impl Photo {
    /// Reads and checks the file (at most the limit plus one byte is read).
    pub fn load(path: &Path) -> Result<Self, Problem> {
        let bytes = read_bounded(path, PHOTO_MAX_BYTES)?;
        Self::from_bytes(bytes).map_err(|reason| Problem::NotJpeg {
            path: path.to_owned(),
            reason,
        })
    }

    /// Checks bytes already in memory; the error names the missing marker.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, &'static str> {
        if !bytes.starts_with(&[0xFF, 0xD8]) {
            return Err("it does not start with the SOI marker FF D8");
        }
        if bytes.len() < 4 || !bytes.ends_with(&[0xFF, 0xD9]) {
            return Err("it does not end with the EOI marker FF D9 (truncated?)");
        }
        Ok(Self(bytes))
    }

    /// The JPEG bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Photo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Photo({} bytes of JPEG)", self.0.len())
    }
}

/// Checks that a fingerprint template file is readable and within bounds.
pub(crate) fn check_fingerprint(path: &Path) -> Result<(), Problem> {
    read_bounded(path, FINGERPRINT_MAX_BYTES).map(drop)
}

/// Reads a regular file of at most `max` bytes (a FIFO or a device is
/// refused before anything is read; at most `max + 1` bytes are read).
fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, Problem> {
    use kart_spec::input::ReadError;
    read_regular(path, max).map_err(|e| match e {
        ReadError::TooLarge { .. } => Problem::FileTooLarge {
            path: path.to_owned(),
            bytes: std::fs::metadata(path).map_or(max + 1, |m| m.len()),
            max,
        },
        ReadError::NotRegular { kind, .. } => Problem::File {
            path: path.to_owned(),
            reason: format!("it is a {kind}, not a regular file"),
        },
        ReadError::Io { source, .. } => Problem::File {
            path: path.to_owned(),
            reason: source.to_string(),
        },
        other => Problem::File {
            path: path.to_owned(),
            reason: other.to_string(),
        },
    })
}

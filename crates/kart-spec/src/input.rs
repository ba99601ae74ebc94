//! Untrusted input, handled safely: files read only when they are regular
//! files and never past a bound ([`read_regular`]), input quoted in error
//! messages at most [`QUOTE_MAX_CHARS`] characters long ([`quote`]), and
//! text from cards or files made safe for a terminal ([`printable`]).
//!
//! Every kart crate that reads a file given by an operator (profiles,
//! certificates, keys, photos, configuration, PIN files, scripts) goes
//! through [`read_regular`]: a FIFO would block the reader forever, and
//! `/dev/zero` would grow the buffer until memory runs out.
//!
//! ```
//! use kart_spec::input::{quote, printable, read_regular, ReadError};
//! let e = read_regular(std::path::Path::new("/dev/zero"), 1024).unwrap_err();
//! assert!(matches!(e, ReadError::NotRegular { .. }));
//! assert_eq!(quote(&"x".repeat(500)).chars().count(), 101);
//! assert_eq!(printable("ok\u{1b}[2J"), "ok\u{fffd}[2J");
//! ```

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Most characters of input an error message quotes; longer input is cut
/// and ends with `…`.
pub const QUOTE_MAX_CHARS: usize = 100;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Opening or reading failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The path is a directory, FIFO, socket or device, not a regular file.
    #[error("{path} is a {kind}, not a regular file")]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is instead ("FIFO", "directory", "character device", ...).
        kind: &'static str,
    },
    /// The file holds more than the limit.
    #[error("{path} is larger than {max} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, in bytes.
        max: u64,
    },
}

impl ReadError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. } | Self::NotRegular { path, .. } | Self::TooLarge { path, .. } => {
                path
            }
        }
    }
}

/// Reads `path` if it is a regular file of at most `max` bytes.
///
/// The type is checked on the opened file (`fstat`), after opening with
/// `O_NONBLOCK` so that opening a FIFO does not wait for a writer; at most
/// `max + 1` bytes are read, so a file that grows while being read is
/// still refused. Symbolic links are followed (the file they name is
/// checked).
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    read_regular_into(path, max, &mut bytes)?;
    Ok(bytes)
}

/// [`read_regular`] into a buffer the caller owns (for example one that is
/// zeroized on drop): room for the file is reserved first, so the bytes
/// are not copied by reallocations while they are read. On error the
/// buffer may hold part of the file.
pub fn read_regular_into(path: &Path, max: u64, buf: &mut Vec<u8>) -> Result<(), ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    let file = open_regular(path)?;
    let meta = file.metadata().map_err(io)?;
    // Room for the whole file and the byte that shows EOF, so that the
    // buffer is not reallocated while reading (a reallocation would leave
    // a copy of a secret behind in freed memory).
    let expected = meta.len().min(max).saturating_add(1);
    buf.reserve(usize::try_from(expected).unwrap_or(0));
    let start = buf.len();
    file.take(max.saturating_add(1))
        .read_to_end(buf)
        .map_err(io)?;
    if (buf.len() - start) as u64 > max {
        return Err(ReadError::TooLarge {
            path: path.to_owned(),
            max,
        });
    }
    Ok(())
}

/// Opens `path` for reading if it is a regular file (checked on the opened
/// file, which a FIFO does not block), for a reader that streams it (a
/// batch) and bounds what it reads itself.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// assert!(kart_spec::input::open_regular(dir.path()).is_err()); // a directory
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn open_regular(path: &Path) -> Result<File, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    let file = open_nonblocking(path).map_err(io)?;
    let kind = file.metadata().map_err(io)?.file_type();
    if !kind.is_file() {
        return Err(ReadError::NotRegular {
            path: path.to_owned(),
            kind: describe(kind),
        });
    }
    Ok(file)
}

fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // A FIFO opens without a writer instead of blocking; it is refused by
    // the type check right after. Reads of a regular file ignore the flag.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

fn describe(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "directory"
    } else if kind.is_fifo() {
        "FIFO"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_char_device() {
        "character device"
    } else if kind.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

/// `text` cut to at most [`QUOTE_MAX_CHARS`] characters (then `…`), with
/// terminal control characters replaced as [`printable`] does: for quoting
/// input in an error message.
pub fn quote(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(QUOTE_MAX_CHARS).collect();
    let mut out = printable(&head);
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// Where byte `offset` of `text` is, for an error message: line, column
/// and the line itself, quoted as [`quote`] does (at most
/// [`QUOTE_MAX_CHARS`] characters of it, from its start).
///
/// ```
/// let text = "a = 1\nkeygen_ms = -900\n";
/// assert_eq!(kart_spec::input::position(text, 18), "line 2, column 13, in `keygen_ms = -900`");
/// ```
pub fn position(text: &str, offset: usize) -> String {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let (before, after) = text.split_at(offset);
    let line = before.matches('\n').count() + 1;
    let start = before.rsplit('\n').next().unwrap_or_default();
    let column = start.chars().count() + 1;
    let end = after.split('\n').next().unwrap_or_default();
    let whole = format!("{start}{end}");
    format!("line {line}, column {column}, in `{}`", quote(whole.trim()))
}

/// `text` with every control character (C0 but newline and tab, DEL, C1)
/// and every bidirectional override replaced by U+FFFD, so that text from a
/// card or a file cannot move the cursor, clear the screen, set the window
/// title or reorder what the operator sees.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if is_unsafe(c) { '\u{fffd}' } else { c })
        .collect()
}

fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_devices_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let e = read_regular(&fifo, 10).unwrap_err();
        assert!(
            matches!(e, ReadError::NotRegular { kind: "FIFO", .. }),
            "{e}"
        );
        assert!(e.to_string().contains("fifo"), "{e}");
        let e = read_regular(Path::new("/dev/zero"), 10).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::NotRegular {
                    kind: "character device",
                    ..
                }
            ),
            "{e}"
        );
        let e = read_regular(dir.path(), 10).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::NotRegular {
                    kind: "directory",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn the_bound_is_inclusive() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, [7u8; 10]).unwrap();
        assert_eq!(read_regular(&f, 10).unwrap(), [7u8; 10]);
        let e = read_regular(&f, 9).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { max: 9, .. }), "{e}");
        assert_eq!(e.path(), f);
    }

    #[test]
    fn a_secret_is_read_without_reallocating_its_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("key");
        std::fs::write(&f, [0x5a; 10_000]).unwrap();
        let mut buf = Vec::new();
        read_regular_into(&f, 65_536, &mut buf).unwrap();
        assert_eq!(buf.len(), 10_000);
        assert!(buf.capacity() <= 10_001, "grown to {}", buf.capacity());
    }

    #[test]
    fn quotes_are_short_and_printable() {
        assert_eq!(quote("short"), "short");
        let long = "é".repeat(QUOTE_MAX_CHARS + 1);
        let q = quote(&long);
        assert_eq!(q.chars().count(), QUOTE_MAX_CHARS + 1);
        assert!(q.ends_with('…'));
        assert_eq!(
            quote(&"é".repeat(QUOTE_MAX_CHARS)).chars().count(),
            QUOTE_MAX_CHARS
        );
        assert_eq!(
            printable("a\u{7}b\u{9b}c\u{202e}d\u{7f}\ne\tf"),
            "a\u{fffd}b\u{fffd}c\u{fffd}d\u{fffd}\ne\tf"
        );
        // Persian text with ZWNJ stays as it is.
        assert_eq!(printable("علی\u{200c}رضا"), "علی\u{200c}رضا");
    }
}

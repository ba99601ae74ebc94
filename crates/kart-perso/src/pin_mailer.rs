//! The holder's secrets and their only way out: ID PIN, SIGN PIN and PUK,
//! generated at random (never from holder data), and the PIN-mailer file
//! they are written to for printing.
//!
//! The mailer file is created with mode 0600, entries are appended, and every
//! entry is fsynced before the PINs are set on the card, so a PIN on a card
//! always has its mailer entry. A later entry for the same tracking code
//! supersedes an earlier one (a re-personalized card gets new PINs): each
//! line ends `superseded=0`, and appending a later entry for its application
//! turns that into `superseded=1` in place, so a print run takes exactly the
//! lines ending `superseded=0`, one per application.
//!
//! ```
//! use kart_perso::pin_mailer::{MailerEntry, PinMailer, Pins};
//! let dir = tempfile::tempdir()?;
//! let mut mailer = PinMailer::open(&dir.path().join("mailer.txt"))?;
//! let pins = Pins::generate(None)?;
//! assert_eq!(format!("{pins:?}"), "Pins(<redacted>)");
//! mailer.append(&MailerEntry { tracking: "140409040007", crn: "0000000017", csn: "4790503300001234", pins: &pins })?;
//! mailer.append(&MailerEntry { tracking: "140409040007", crn: "0000000017", csn: "4790503300001234", pins: &Pins::generate(None)? })?;
//! let text = std::fs::read_to_string(dir.path().join("mailer.txt"))?;
//! assert!(text.starts_with("tracking=140409040007 crn=0000000017"));
//! let lines: Vec<&str> = text.lines().collect();
//! assert!(lines[0].ends_with(" superseded=1") && lines[1].ends_with(" superseded=0"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::record::Pin;

/// Digits of the generated ID PIN (spec §9: 4 to 8).
pub const ID_PIN_DIGITS: usize = 6;
/// Digits of the generated SIGN PIN (spec §9: 6 to 8).
pub const SIGN_PIN_DIGITS: usize = 6;
/// Digits of the PUK (spec §9: exactly 8).
pub const PUK_DIGITS: usize = 8;

/// Why PINs could not be generated or written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MailerError {
    /// The system random generator failed.
    #[error("the system random generator failed; no PINs were generated")]
    Random,
    /// The mailer file could not be opened, written or synced.
    #[error("PIN mailer {path}: {reason}; nothing was set on the card")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The mailer file is readable by others.
    #[error("PIN mailer {path} has mode {mode:o}; it holds PINs: `chmod 600` it")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
}

/// ASCII digits of one secret; wiped on drop, never printed.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// `n` random decimal digits (rejection sampling: every digit equally likely).
    pub fn random_digits(n: usize) -> Result<Self, MailerError> {
        let rng = SystemRandom::new();
        let mut digits = Zeroizing::new(Vec::with_capacity(n));
        let mut byte = Zeroizing::new([0u8; 1]);
        while digits.len() < n {
            rng.fill(byte.as_mut()).map_err(|_| MailerError::Random)?;
            // 250 = 25 × 10: bytes at or above it would favour low digits.
            if byte[0] < 250 {
                digits.push(b'0' + byte[0] % 10);
            }
        }
        Ok(Self(digits))
    }

    /// The ASCII digits, for the PIN block and the mailer only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The three secrets of one card.
#[derive(Clone)]
pub struct Pins {
    /// Identification PIN (reference 81).
    pub id_pin: Secret,
    /// Signature PIN (reference 82).
    pub sign_pin: Secret,
    /// Unblocking key (reference 83).
    pub puk: Secret,
}

impl std::fmt::Debug for Pins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pins(<redacted>)")
    }
}

impl Pins {
    /// Random PINs and PUK; the ID PIN is `record_pin` when the batch set one.
    pub fn generate(record_pin: Option<&Pin>) -> Result<Self, MailerError> {
        let id_pin = match record_pin {
            Some(pin) => Secret(Zeroizing::new(pin.expose_digits().to_vec())),
            None => Secret::random_digits(ID_PIN_DIGITS)?,
        };
        Ok(Self {
            id_pin,
            sign_pin: Secret::random_digits(SIGN_PIN_DIGITS)?,
            puk: Secret::random_digits(PUK_DIGITS)?,
        })
    }
}

/// One mailer entry.
#[derive(Debug, Clone, Copy)]
pub struct MailerEntry<'a> {
    /// Application tracking code.
    pub tracking: &'a str,
    /// Card registration number.
    pub crn: &'a str,
    /// Card serial number (hex).
    pub csn: &'a str,
    /// The secrets.
    pub pins: &'a Pins,
}

/// The last field of every line: `0` while the line is its application's
/// latest entry, turned into `1` in place when a later one is appended.
const SUPERSEDED: &[u8] = b" superseded=0";

/// The PIN-mailer file.
#[derive(Debug)]
pub struct PinMailer {
    /// Opened for appending: concurrent appends never interleave.
    append: File,
    /// Opened for reading and marking earlier lines in place.
    marks: File,
    path: PathBuf,
    /// Offset of the `0` of each application's current line.
    current: HashMap<String, u64>,
    /// How far the file has been read into `current`.
    scanned: u64,
}

impl PinMailer {
    /// Opens (creating with mode 0600) the mailer file; refuses an existing
    /// file that group or others can read. Lines a crash left unmarked (two
    /// current entries for one application) are marked now.
    pub fn open(path: &Path) -> Result<Self, MailerError> {
        let io = |e: std::io::Error| MailerError::Io {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let append = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        let mode = append.metadata().map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(MailerError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        let marks = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io)?;
        let mut mailer = Self {
            append,
            marks,
            path: path.to_owned(),
            current: HashMap::new(),
            scanned: 0,
        };
        mailer.catch_up()?;
        Ok(mailer)
    }

    /// Appends one line `tracking=… crn=… csn=… id_pin=… sign_pin=… puk=…
    /// superseded=0` and syncs it to disk, then marks the application's
    /// earlier line superseded, before returning.
    pub fn append(&mut self, entry: &MailerEntry<'_>) -> Result<(), MailerError> {
        let mut line = Zeroizing::new(Vec::with_capacity(128));
        line.extend_from_slice(
            format!(
                "tracking={} crn={} csn={} id_pin=",
                entry.tracking, entry.crn, entry.csn
            )
            .as_bytes(),
        );
        line.extend_from_slice(entry.pins.id_pin.expose());
        line.extend_from_slice(b" sign_pin=");
        line.extend_from_slice(entry.pins.sign_pin.expose());
        line.extend_from_slice(b" puk=");
        line.extend_from_slice(entry.pins.puk.expose());
        line.extend_from_slice(SUPERSEDED);
        line.push(b'\n');
        self.append
            .write_all(&line)
            .and_then(|()| self.append.sync_all())
            .map_err(|e| self.io(&e))?;
        // Reading on from where we were picks up this line (and any other
        // process's) and marks what it supersedes.
        self.catch_up()
    }

    /// Reads the lines appended since the last call; for each application
    /// keeps its latest unmarked line current and marks the earlier ones.
    fn catch_up(&mut self) -> Result<(), MailerError> {
        let mut text = Zeroizing::new(Vec::new());
        self.marks
            .seek(SeekFrom::Start(self.scanned))
            .and_then(|_| (&self.marks).read_to_end(&mut text))
            .map_err(|e| self.io(&e))?;
        let mut superseded = Vec::new();
        let mut start = 0usize;
        // Only whole lines: a line being appended right now is read next time.
        while let Some(len) = text[start..].iter().position(|&b| b == b'\n') {
            let line = &text[start..start + len];
            let at = self.scanned + start as u64;
            start += len + 1;
            let Some(tracking) = line
                .split(|&b| b == b' ')
                .next()
                .and_then(|w| w.strip_prefix(b"tracking="))
                .and_then(|t| std::str::from_utf8(t).ok())
            else {
                continue;
            };
            if !line.ends_with(SUPERSEDED) {
                continue; // already marked, or written before the marks existed
            }
            let flag = at + len as u64 - 1;
            if let Some(earlier) = self.current.insert(tracking.to_owned(), flag) {
                superseded.push(earlier);
            }
        }
        self.scanned += start as u64;
        if superseded.is_empty() {
            return Ok(());
        }
        for flag in superseded {
            self.marks
                .write_all_at(b"1", flag)
                .map_err(|e| self.io(&e))?;
        }
        self.marks.sync_all().map_err(|e| self.io(&e))
    }

    fn io(&self, e: &std::io::Error) -> MailerError {
        MailerError::Io {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }
}

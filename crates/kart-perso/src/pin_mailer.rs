//! The holder's secrets and their only way out: ID PIN, SIGN PIN and PUK,
//! generated at random (never from holder data), and the PIN-mailer file
//! they are written to for printing.
//!
//! The mailer file is created with mode 0600, opened append-only, and every
//! entry is fsynced before the PINs are set on the card, so a PIN on a card
//! always has its mailer entry. A later entry for the same tracking code
//! supersedes an earlier one (a re-personalized card gets new PINs).
//!
//! ```
//! use kart_perso::pin_mailer::{MailerEntry, PinMailer, Pins};
//! let dir = tempfile::tempdir()?;
//! let mut mailer = PinMailer::open(&dir.path().join("mailer.txt"))?;
//! let pins = Pins::generate(None)?;
//! assert_eq!(format!("{pins:?}"), "Pins(<redacted>)");
//! mailer.append(&MailerEntry { tracking: "140409040007", crn: "0000000017", csn: "4790503300001234", pins: &pins })?;
//! let text = std::fs::read_to_string(dir.path().join("mailer.txt"))?;
//! assert!(text.starts_with("tracking=140409040007 crn=0000000017"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
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

/// The append-only PIN-mailer file.
#[derive(Debug)]
pub struct PinMailer {
    file: File,
    path: PathBuf,
}

impl PinMailer {
    /// Opens (creating with mode 0600) the mailer file for appending; refuses
    /// an existing file that group or others can read.
    pub fn open(path: &Path) -> Result<Self, MailerError> {
        let io = |e: std::io::Error| MailerError::Io {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        let mode = file.metadata().map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(MailerError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        Ok(Self {
            file,
            path: path.to_owned(),
        })
    }

    /// Appends one line `tracking=… crn=… csn=… id_pin=… sign_pin=… puk=…`
    /// and syncs it to disk before returning.
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
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_all())
            .map_err(|e| MailerError::Io {
                path: self.path.clone(),
                reason: e.to_string(),
            })
    }
}

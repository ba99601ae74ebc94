//! Stored simulated cards: a card that stays in its reader between
//! processes, as a real card left in a real reader does.
//!
//! A [`CardStore`] is a directory with one file per simulated reader
//! (`sim:vendor-b#1` → `vendor-b-1.card.json`). The file is the card's
//! non-volatile memory — IC serial, life cycle, CRN, every file, PIN blocks
//! and try counters, the on-card key pairs as PKCS#8 — in JSON that carries
//! its format version ([`FORMAT`]). It is written atomically (a temporary
//! file in the same directory, `fsync`, `rename`, `fsync` of the directory)
//! with mode 0600, after every command that changed the card: a process
//! killed mid-way leaves the card as it was after its last whole command.
//!
//! The next card put in a reader ([`Slot::Next`], a station's new blank
//! card) is written at once to `DIR/inserted/vendor-b-1.card.json`, before
//! its first command, and moves over the reader's file (rename) at its
//! first change: a process killed at any point finds it again, while the
//! card issued before it stays readable in the reader's file until then.
//!
//! The secure-channel keys are not stored: whoever opens the card keys it
//! ([`SimConfig`]), with an issuer's master keys or the GP test key, and the
//! IC serial (so the diversified keys) comes from the file.
//!
//! A file that is truncated, unparseable, of another format version or of
//! another profile is an error ([`StoreError`]) and is never overwritten.
//!
//! ```
//! use kart_apdu::{Card, Command};
//! use kart_sim::{store::CardStore, SimCard, SimConfig};
//! let spec = kart_spec::Spec::embedded()?;
//! let profile = spec.profile("vendor-b").unwrap();
//! let dir = tempfile::tempdir()?;
//! let store = CardStore::open(dir.path())?;
//! let config = SimConfig::new([0, 0, 0, 7], &kart_sim::default_test_key(16));
//! // No card stored yet: a blank one, written when it first changes.
//! let card = store.card("sim:vendor-b#1", profile, &config)?;
//! assert!(!store.path("sim:vendor-b#1").exists());
//! drop(card);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::applet::AppletImage;
use crate::card::{SimCard, SimConfig, SimError};
use kart_spec::{AppletSpec, Profile, Spec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;
use zeroize::Zeroizing;

/// The format version written in, and required of, every stored card.
pub const FORMAT: &str = "kart-sim-card/1";

/// Largest stored card file read (the EFs of the spec fit in far less).
const MAX_FILE: u64 = 1 << 20;

/// The subdirectory of cards inserted but not yet changed.
const INSERTED: &str = "inserted";

/// A reader's card file name: `sim:vendor-b#1` → `vendor-b-1.card.json`.
fn file_name(reader: &str) -> String {
    let name: String = reader
        .strip_prefix("sim:")
        .unwrap_or(reader)
        .replace('#', "-")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{name}.card.json")
}

/// Why a stored card could not be read or written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The directory or a file could not be read or written.
    #[error("simulated card store {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not a whole stored card (truncated, edited, not JSON).
    #[error("the stored card {path} is damaged ({why}) and was left untouched")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The file was written by another format version.
    #[error("the stored card {path} has format '{found}', this kart reads '{FORMAT}'; it was left untouched")]
    Version {
        /// The file.
        path: PathBuf,
        /// The version the file names.
        found: String,
    },
    /// The file holds a card of another profile.
    #[error("the stored card {path} is a {stored} card, not {wanted}; it was left untouched")]
    Profile {
        /// The file.
        path: PathBuf,
        /// Profile in the file.
        stored: String,
        /// Profile of the reader.
        wanted: String,
    },
    /// The card could not be made.
    #[error(transparent)]
    Sim(#[from] SimError),
}

impl StoreError {
    /// What the operator should do about it, when there is something to do.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        match self {
            StoreError::Io { .. } => None,
            StoreError::Damaged { .. } => {
                Some("move the file away to put a blank card in the reader".to_owned())
            }
            StoreError::Version { .. } => {
                Some("use the kart that wrote it, or move the file away".to_owned())
            }
            StoreError::Profile { stored, .. } => Some(format!(
                "move the file away, or use the reader sim:{stored}"
            )),
            StoreError::Sim(e) => e.hint(),
        }
    }
}

/// Which card of a reader [`CardStore::card_in`] opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The card in the reader's file, or a blank one written once it changes.
    Kept,
    /// The next card put in the reader, the kept one taken out: on disk
    /// from the moment it goes in.
    Next,
}

/// A directory of stored simulated cards, one file per reader.
#[derive(Debug, Clone)]
pub struct CardStore {
    dir: PathBuf,
}

impl CardStore {
    /// Opens (creating it, mode 0700) the directory `dir`.
    pub fn open(dir: &Path) -> Result<CardStore, StoreError> {
        let io = |source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir).map_err(io)?;
        Ok(CardStore {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of the card in reader `reader` (`sim:vendor-b#1` →
    /// `DIR/vendor-b-1.card.json`; characters outside `[A-Za-z0-9._-]` become `_`).
    pub fn path(&self, reader: &str) -> PathBuf {
        self.dir.join(file_name(reader))
    }

    /// The file of the card inserted in `reader` after the card in
    /// [`path`](Self::path) was taken out, until that card's first change
    /// moves it there (`DIR/inserted/vendor-b-1.card.json`; no reader's
    /// name leads into `inserted/`, a `/` in it becomes `_`).
    pub fn inserted_path(&self, reader: &str) -> PathBuf {
        self.dir.join(INSERTED).join(file_name(reader))
    }

    /// The card in `reader`: the stored one (keyed with `config`'s keys and
    /// its own stored IC serial), or a blank one with `config`'s serial when
    /// none is stored. Either is written back after every command that
    /// changes it.
    pub fn card(
        &self,
        reader: &str,
        profile: &Profile,
        config: &SimConfig,
    ) -> Result<SimCard, StoreError> {
        self.card_in(Slot::Kept, reader, profile, config)
    }

    /// The card in `reader` ([`Slot::Kept`], as [`card`](Self::card)), or
    /// ([`Slot::Next`]) the next card put in it, the one in [`path`](Self::path)
    /// having been taken out: the card already inserted there
    /// ([`inserted_path`](Self::inserted_path)) if there is one, else a
    /// blank card with `config`, written to the inserted file before this
    /// returns, so before its first command.
    ///
    /// Why two files: a station binds an application to the card's serial
    /// before it writes to the card, so the card must be on disk from the
    /// moment it is inserted, or a process killed in between strands the
    /// application on a card that never existed. Yet the card last issued
    /// in the reader stays in the reader's file, for `kart verify` and
    /// `kart read` after a batch, until the new card really is used: its
    /// first change is written to the inserted file, which is then renamed
    /// over the reader's file. At every moment the new card is in one of
    /// the two files.
    ///
    /// Both files must be readable cards of `profile`: a damaged or foreign
    /// one is an error and is never replaced.
    ///
    /// ```
    /// use kart_sim::{store::{CardStore, Slot}, SimConfig};
    /// let spec = kart_spec::Spec::embedded()?;
    /// let profile = spec.profile("vendor-b").unwrap();
    /// let dir = tempfile::tempdir()?;
    /// let store = CardStore::open(dir.path())?;
    /// let config = SimConfig::new([0, 0, 0, 7], &kart_sim::default_test_key(16));
    /// let card = store.card_in(Slot::Next, "sim:vendor-b#1", profile, &config)?;
    /// assert!(store.inserted_path("sim:vendor-b#1").is_file());
    /// drop(card);
    /// // Killed before its first change, the same card is in the reader again.
    /// let other = SimConfig::new([0, 0, 0, 8], &kart_sim::default_test_key(16));
    /// let again = store.card_in(Slot::Next, "sim:vendor-b#1", profile, &other)?;
    /// assert_eq!(again.ic_serial(), [0, 0, 0, 7]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn card_in(
        &self,
        slot: Slot,
        reader: &str,
        profile: &Profile,
        config: &SimConfig,
    ) -> Result<SimCard, StoreError> {
        let applet = Spec::embedded().map_err(SimError::from)?.applet;
        let path = self.path(reader);
        let kept = Self::load(&applet, &path, profile, config)?;
        if slot == Slot::Kept {
            let mut card = match kept {
                Some(card) => card,
                None => SimCard::with_spec(&applet, profile, config)?,
            };
            card.attach_store(path);
            return Ok(card);
        }
        let inserted = self.inserted_path(reader);
        let mut card = if let Some(card) = Self::load(&applet, &inserted, profile, config)? {
            card
        } else {
            let card = SimCard::with_spec(&applet, profile, config)?;
            CardStore::open(&self.dir.join(INSERTED))?;
            write_atomic(&inserted, &card.stored_image()).map_err(|source| StoreError::Io {
                path: inserted.clone(),
                source,
            })?;
            card
        };
        card.attach_inserted(path, inserted);
        Ok(card)
    }

    /// Whether a card inserted after the reader's stored one is waiting in
    /// `reader` ([`inserted_path`](Self::inserted_path)).
    pub fn has_inserted_card(&self, reader: &str) -> bool {
        self.inserted_path(reader).is_file()
    }

    /// Whether a card is stored for `reader`.
    pub fn has_card(&self, reader: &str) -> bool {
        self.path(reader).is_file()
    }

    fn load(
        applet: &AppletSpec,
        path: &Path,
        profile: &Profile,
        config: &SimConfig,
    ) -> Result<Option<SimCard>, StoreError> {
        let bytes = match read_bounded(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StoreError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let image = StoredCard::decode(&bytes).map_err(|e| e.at(path))?;
        Self::load_image(applet, path, &image, profile, config).map(Some)
    }

    fn load_image(
        applet: &AppletSpec,
        path: &Path,
        image: &StoredCard,
        profile: &Profile,
        config: &SimConfig,
    ) -> Result<SimCard, StoreError> {
        if image.profile != profile.id {
            return Err(StoreError::Profile {
                path: path.to_path_buf(),
                stored: image.profile.clone(),
                wanted: profile.id.clone(),
            });
        }
        let damaged = |why: String| StoreError::Damaged {
            path: path.to_path_buf(),
            why,
        };
        let mut config = config.clone();
        config.ic_serial = image.ic_serial().map_err(damaged)?;
        let mut card = SimCard::with_spec(applet, profile, &config)?;
        let applet_image = image.applet_image().map_err(damaged)?;
        card.restore(&applet_image).map_err(|e| damaged(e.0))?;
        Ok(card)
    }
}

/// Checks the bytes of a stored card file as [`CardStore::card`] would
/// before using it — format version, every field, every value against the
/// applet spec and the profile it names — and returns that profile's id.
/// Errors name the file as `<stored card>`.
///
/// ```
/// use kart_sim::store::{validate, StoreError};
/// assert!(matches!(validate(b"{\"format\":\"kart-sim-card/0\"}"), Err(StoreError::Version { .. })));
/// assert!(matches!(validate(b"{\"format\":"), Err(StoreError::Damaged { .. })));
/// ```
pub fn validate(bytes: &[u8]) -> Result<String, StoreError> {
    let path = Path::new("<stored card>");
    let image = StoredCard::decode(bytes).map_err(|e| e.at(path))?;
    let spec = Spec::embedded().map_err(SimError::from)?;
    let profile = spec
        .profile(&image.profile)
        .or_else(|| spec.test_profile(&image.profile))
        .ok_or_else(|| StoreError::Damaged {
            path: path.to_path_buf(),
            why: format!("no profile '{}'", image.profile),
        })?;
    let config = SimConfig::new(
        [0; 4],
        &crate::default_test_key(profile.secure_channel.key_length),
    );
    CardStore::load_image(&spec.applet, path, &image, profile, &config)?;
    Ok(image.profile)
}

fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE + 1)
        .read_to_end(&mut out)?;
    if out.len() as u64 > MAX_FILE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_FILE} bytes"),
        ));
    }
    Ok(out)
}

/// A decoding failure before the path is known.
pub(crate) enum Decode {
    Damaged(String),
    Version(String),
}

impl Decode {
    fn at(self, path: &Path) -> StoreError {
        match self {
            Decode::Damaged(why) => StoreError::Damaged {
                path: path.to_path_buf(),
                why,
            },
            Decode::Version(found) => StoreError::Version {
                path: path.to_path_buf(),
                found,
            },
        }
    }
}

/// One stored card, as written in its file (hex for bytes).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoredCard {
    format: String,
    profile: String,
    ic_serial: String,
    lifecycle: String,
    crn: Option<String>,
    /// FID (hex) → contents (hex).
    files: BTreeMap<String, String>,
    /// ID PIN, SIGN PIN, PUK.
    pins: Vec<StoredPin>,
    /// AUTH_KEY, SIGN_KEY: PKCS#8 (hex), when generated.
    key_pairs: Vec<Option<String>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredPin {
    block: Option<String>,
    tries_left: u8,
}

fn unhex(what: &str, v: &str) -> Result<Vec<u8>, String> {
    hex::decode(v).map_err(|e| format!("{what} is not hex: {e}"))
}

impl StoredCard {
    pub(crate) fn new(profile: &str, ic_serial: [u8; 4], image: &AppletImage) -> StoredCard {
        StoredCard {
            format: FORMAT.to_owned(),
            profile: profile.to_owned(),
            ic_serial: hex::encode_upper(ic_serial),
            lifecycle: format!("{:02X}", image.state),
            crn: image
                .crn
                .map(|c| c.iter().map(|b| char::from(*b)).collect()),
            files: image
                .files
                .iter()
                .map(|(fid, d)| (format!("{fid:04X}"), hex::encode_upper(d)))
                .collect(),
            pins: image
                .pins
                .iter()
                .map(|(b, t)| StoredPin {
                    block: b.as_ref().map(|b| hex::encode_upper(b.as_slice())),
                    tries_left: *t,
                })
                .collect(),
            key_pairs: image
                .keys
                .iter()
                .map(|k| k.as_ref().map(|d| hex::encode_upper(d.as_slice())))
                .collect(),
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        // Serializing plain strings and maps cannot fail.
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<StoredCard, Decode> {
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| Decode::Damaged(format!("not a whole JSON document: {e}")))?;
        match value.get("format").and_then(serde_json::Value::as_str) {
            Some(FORMAT) => {}
            Some(other) => return Err(Decode::Version(other.to_owned())),
            None => return Err(Decode::Damaged("it names no format".into())),
        }
        serde_json::from_value(value).map_err(|e| Decode::Damaged(e.to_string()))
    }

    fn ic_serial(&self) -> Result<[u8; 4], String> {
        unhex("ic_serial", &self.ic_serial)?
            .try_into()
            .map_err(|_| "ic_serial is not 4 bytes".to_owned())
    }

    fn applet_image(&self) -> Result<AppletImage, String> {
        let state = match unhex("lifecycle", &self.lifecycle)?.as_slice() {
            [c] => *c,
            _ => return Err("lifecycle is not one byte".into()),
        };
        let crn = match &self.crn {
            None => None,
            Some(c) => {
                Some(<[u8; 10]>::try_from(c.as_bytes()).map_err(|_| "crn is not 10 digits")?)
            }
        };
        let mut files = BTreeMap::new();
        for (fid, data) in &self.files {
            let fid = u16::from_str_radix(fid, 16)
                .ok()
                .filter(|_| fid.len() == 4)
                .ok_or_else(|| format!("file id '{fid}' is not 4 hex digits"))?;
            files.insert(fid, unhex(&format!("file {fid:04X}"), data)?);
        }
        let [id_pin, sign_pin, puk] = self.pins.as_slice() else {
            return Err(format!("{} PINs stored, not 3", self.pins.len()));
        };
        let pin = |p: &StoredPin, i: usize| -> Result<_, String> {
            let block = match &p.block {
                None => None,
                Some(text) => {
                    let value = Zeroizing::new(unhex(&format!("PIN {i}"), text)?);
                    let mut block = Zeroizing::new([0u8; 8]);
                    if value.len() != 8 {
                        return Err(format!("PIN {i} is not an 8-byte block"));
                    }
                    block.copy_from_slice(&value);
                    Some(block)
                }
            };
            Ok((block, p.tries_left))
        };
        let pins = [pin(id_pin, 1)?, pin(sign_pin, 2)?, pin(puk, 3)?];
        let [k1, k2] = self.key_pairs.as_slice() else {
            return Err(format!("{} key pairs stored, not 2", self.key_pairs.len()));
        };
        let key = |k: &Option<String>, i: usize| -> Result<_, String> {
            k.as_ref()
                .map(|h| unhex(&format!("key {i}"), h).map(Zeroizing::new))
                .transpose()
        };
        Ok(AppletImage {
            state,
            crn,
            files,
            pins,
            keys: [key(k1, 1)?, key(k2, 2)?],
        })
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory (mode 0600), `fsync`, `rename` over `path`, `fsync` of the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let result = (|| {
        let mut f = o.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes `bytes` to `inserted` atomically, then renames it over `path`
/// and syncs `path`'s directory: the card moves from one file to the other
/// and is in one of them at every moment.
pub(crate) fn move_in(inserted: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic(inserted, bytes)?;
    std::fs::rename(inserted, path)?;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}

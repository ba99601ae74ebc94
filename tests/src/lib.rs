//! # kart-e2e
//!
//! Library-level end-to-end fixtures for kart's reliability tests, bad-input
//! catalogue and per-card benchmarks: a [`World`] holds a demo issuer (real
//! X.509 hierarchy from [`kart_perso::pki::create_demo_issuer`]) whose
//! secure-channel master keys are the `GlobalPlatform` test keys the simulated
//! cards carry, writes valid applications as a real CSV batch and loads them
//! through [`kart_perso::record::Batch`], and makes simulated cards of every
//! vendor profile.
//!
//! ```
//! use kart_e2e::{Photo, World};
//! let world = World::new()?;
//! let records = world.batch("demo.csv", 1, 2, Photo::Small)?;
//! assert_eq!(records.len(), 2);
//! let profile = world.profile("vendor-a")?;
//! let card = world.card(profile, 7)?;
//! assert!(!card.is_removed());
//! # Ok::<(), kart_e2e::WorldError>(())
//! ```
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use kart_perso::issuer::Issuer;
use kart_perso::pki::{create_demo_issuer, PkiError};
use kart_perso::record::{Batch, IdentityRecord, RecordError};
use kart_perso::verify::TrustAnchors;
use kart_sim::{default_test_key, SimCard, SimConfig, SimError};
use kart_spec::{Profile, Spec, SpecError};
use tempfile::TempDir;
use thiserror::Error;

/// A small photo (840 bytes, made with libjpeg-turbo's `cjpeg`): fewest APDUs.
const PHOTO_SMALL: &[u8] = include_bytes!("../fixtures/photo-small.jpg");
/// A photo of typical size for an ID card (14 455 bytes, `cjpeg -quality 80`
/// of a 240×320 image).
const PHOTO_TYPICAL: &[u8] = include_bytes!("../fixtures/photo-typical.jpg");

/// Why a fixture could not be set up.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WorldError {
    /// A temporary file or directory could not be made.
    #[error("test fixture file {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The embedded applet spec did not load.
    #[error("applet spec: {0}")]
    Spec(#[from] SpecError),
    /// No profile of that id.
    #[error("no vendor profile {0:?} in the embedded spec")]
    NoProfile(String),
    /// The demo issuer could not be made or loaded.
    #[error("demo issuer: {0}")]
    Issuer(#[from] PkiError),
    /// A simulated card could not be made.
    #[error("simulated card: {0}")]
    Sim(#[from] SimError),
    /// The batch cannot be loaded.
    #[error("batch: {0}")]
    Batch(#[from] kart_perso::record::BatchError),
    /// A generated record did not validate.
    #[error("generated record is invalid: {0}")]
    Record(#[from] RecordError),
}

/// Which fixture photo the applications carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Photo {
    /// 840 bytes.
    Small,
    /// 14 455 bytes, a realistic ID-card photo.
    Typical,
}

impl Photo {
    /// The JPEG bytes.
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Photo::Small => PHOTO_SMALL,
            Photo::Typical => PHOTO_TYPICAL,
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            Photo::Small => "photo-small.jpg",
            Photo::Typical => "photo-typical.jpg",
        }
    }
}

/// A temporary directory with a demo issuer, the embedded spec and the
/// trust anchors a verifier needs.
#[derive(Debug)]
pub struct World {
    /// The embedded applet spec and vendor profiles.
    pub spec: Spec,
    /// The issuer: demo PKI, and master keys equal to the simulator's test keys.
    pub issuer: Issuer,
    /// Root and card CA, for verification.
    pub trust: TrustAnchors,
    dir: TempDir,
}

impl World {
    /// Makes the issuer in a fresh temporary directory.
    pub fn new() -> Result<Self, WorldError> {
        let dir = tempfile::tempdir().map_err(|source| WorldError::Io {
            path: std::env::temp_dir(),
            source,
        })?;
        let issuer_dir = dir.path().join("issuer");
        let files = create_demo_issuer(&issuer_dir, time::OffsetDateTime::now_utc())?;
        // Replace the random master keys by the simulator's (the file keeps its mode 0600).
        write(&files.master_keys, test_master_keys_json().as_bytes())?;
        let issuer = Issuer::load(&issuer_dir)?;
        let trust = TrustAnchors::new(issuer.pki.root.clone())
            .with_intermediate(issuer.pki.card_ca.clone());
        Ok(Self {
            spec: Spec::embedded()?,
            issuer,
            trust,
            dir,
        })
    }

    /// The world's directory (batches, photos, journals go here).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The issuer directory written by `create_demo_issuer`.
    pub fn issuer_dir(&self) -> PathBuf {
        self.dir.path().join("issuer")
    }

    /// The issuer loaded again from its directory (a station takes its own).
    pub fn load_issuer(&self) -> Result<Issuer, WorldError> {
        Ok(Issuer::load(&self.issuer_dir())?)
    }

    /// The vendor profile `id`.
    pub fn profile(&self, id: &str) -> Result<&Profile, WorldError> {
        self.spec
            .profile(id)
            .ok_or_else(|| WorldError::NoProfile(id.to_owned()))
    }

    /// A fresh (pre-personalized) simulated card of `profile` whose IC serial
    /// is `serial` and whose keys are the GP test keys.
    pub fn card(&self, profile: &Profile, serial: u32) -> Result<SimCard, WorldError> {
        let key = default_test_key(profile.secure_channel.key_length);
        let config = SimConfig::new(serial.to_be_bytes(), &key);
        Ok(SimCard::with_config(profile, &config)?)
    }

    /// Writes `count` valid applications, numbered from `first`, as the CSV
    /// batch `name` in the world's directory, with the photo beside it.
    pub fn write_batch(
        &self,
        name: &str,
        first: u64,
        count: u64,
        photo: Photo,
    ) -> Result<PathBuf, WorldError> {
        write(&self.dir().join(photo.file_name()), photo.bytes())?;
        let mut csv = String::from(CSV_HEADER);
        for seq in first..first + count {
            let _ = writeln!(
                csv,
                "{},{},علی,کریمی,حسین,Ali,Karimi,Hossein,1369/06/31,M,,{},",
                tracking_code(seq),
                national_code(seq),
                photo.file_name()
            );
        }
        let path = self.dir().join(name);
        write(&path, csv.as_bytes())?;
        Ok(path)
    }

    /// [`World::write_batch`], loaded back through the engine's batch loader.
    pub fn batch(
        &self,
        name: &str,
        first: u64,
        count: u64,
        photo: Photo,
    ) -> Result<Vec<IdentityRecord>, WorldError> {
        let path = self.write_batch(name, first, count, photo)?;
        let mut records = Vec::new();
        for item in Batch::open(&path)? {
            records.push(item?);
        }
        Ok(records)
    }
}

/// The CSV header of a batch, every field in canonical order.
pub const CSV_HEADER: &str = "tracking_code,national_code,given_name_fa,family_name_fa,father_name_fa,given_name_en,family_name_en,father_name_en,birth_date,gender,pin,photo,fingerprint\n";

/// Valid tracking and national codes for a sequence number (the kit's, re-exported).
pub use kart_testkit::ids::{national_code, tracking_code};

/// Master keys in the engine's JSON format whose ENC, MAC and DEK are all the
/// `GlobalPlatform` test key, as on [`kart_sim::SimCard`] test cards.
pub fn test_master_keys_json() -> String {
    let set = |name: &str, alg: &str, len: usize| {
        let k = hex::encode(default_test_key(len));
        format!(
            r#"{{"name":"{name}","algorithm":"{alg}","version":1,"enc":"{k}","mac":"{k}","dek":"{k}"}}"#
        )
    };
    format!(
        r#"{{"format":"kart-master-keys/1","key_sets":[{},{},{},{}]}}"#,
        set("scp02", "3des", 16),
        set("scp03-aes128", "aes128", 16),
        set("scp03-aes192", "aes192", 24),
        set("scp03-aes256", "aes256", 32)
    )
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), WorldError> {
    std::fs::write(path, bytes).map_err(|source| WorldError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Compiles and runs the example in README.md as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

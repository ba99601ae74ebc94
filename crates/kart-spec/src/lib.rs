//! # kart-spec
//!
//! The kart national-ID applet specification (`applets-spec/` in the
//! repository) as typed Rust data: the applet's AIDs, life cycle, files, TLV
//! tags, PINs, keys and commands ([`AppletSpec`]), the QA conformance
//! catalogue ([`Conformance`]) and the vendor profiles ([`Profile`]).
//!
//! The files are embedded at build time, so binaries work anywhere
//! ([`Spec::embedded`]); [`Spec::load`] reads a directory instead. Both
//! validate: a duplicate FID, an unknown access condition, an ATR whose mask
//! has the wrong length or limits that the protocol cannot carry give a
//! [`SpecError`] naming the file and the field.
//!
//! ```
//! use kart_spec::Spec;
//! let spec = Spec::embedded()?;
//! let ef_id = spec.applet.file("EF.ID").unwrap();
//! assert_eq!(ef_id.fid_u16(), 0x0101);
//! let vendor_a = spec.profile_for_atr(&hex::decode("3B7F94000080318065B04B410100110F00829000").unwrap()).unwrap();
//! assert_eq!(vendor_a.id, "vendor-a");
//! assert!(!vendor_a.caps().extended_length);
//! # Ok::<(), kart_spec::SpecError>(())
//! ```
#![forbid(unsafe_code)]

mod applet;
mod conformance;
pub mod deadline;
mod error;
mod hex;
pub mod input;
pub mod latency;
mod profile;

pub use crate::hex::Hex;
pub use applet::{
    Access, AppletId, AppletSpec, CardManager, ChannelNeed, CommandSpec, DataObject, Encoding,
    FileSpec, General, KeySpec, LifecycleState, PinSpec, SwPattern, TagSpec, Transition,
};
pub use conformance::{Check, Conformance, AREAS};
pub use error::SpecError;
pub use latency::{ChipClass, KeyGeneration, Latency};
pub use profile::{
    AtrInfo, Defect, Diversification, HolderKeyAlgorithm, Limits, Profile, Protocol, Quirks, Scp,
    SecureChannel, TestFixture, WrongLe,
};

use std::path::Path;

/// Largest spec file (applet, conformance catalogue, profile) read from disk.
pub const MAX_SPEC_FILE_BYTES: u64 = 1024 * 1024;

/// File name of the applet specification inside the spec directory.
pub const APPLET_FILE: &str = "nid-applet.toml";
/// File name of the conformance catalogue inside the spec directory.
pub const CONFORMANCE_FILE: &str = "conformance.toml";

const EMBEDDED_APPLET: &str = include_str!("../../../applets-spec/nid-applet.toml");
const EMBEDDED_CONFORMANCE: &str = include_str!("../../../applets-spec/conformance.toml");
/// Every `applets-spec/profiles/*.toml` as `(profiles/NAME, text)`, listed
/// by `build.rs` when the crate is built: adding a profile is adding a file.
const EMBEDDED_PROFILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/profiles.rs"));

/// The whole specification: applet, conformance catalogue, vendor profiles.
#[derive(Debug, Clone)]
pub struct Spec {
    /// `nid-applet.toml`.
    pub applet: AppletSpec,
    /// `conformance.toml`.
    pub conformance: Conformance,
    /// `profiles/*.toml` of real vendors, sorted by id.
    pub profiles: Vec<Profile>,
    /// `profiles/*.toml` with planted defects (a `[test]` table), sorted by
    /// id: simulated faulty cards for testing the QA suite. Never matched by
    /// ATR nor part of [`profiles`](Self::profiles).
    pub test_profiles: Vec<Profile>,
}

impl Spec {
    /// The specification compiled into this crate.
    ///
    /// ```
    /// let spec = kart_spec::Spec::embedded()?;
    /// // Every profile file of `applets-spec/profiles/` is embedded.
    /// assert!(spec.profile("vendor-a").is_some());
    /// assert!(spec.test_profile("vendor-x-faulty").is_some());
    /// # Ok::<(), kart_spec::SpecError>(())
    /// ```
    pub fn embedded() -> Result<Spec, SpecError> {
        Spec::from_texts(
            EMBEDDED_APPLET,
            EMBEDDED_CONFORMANCE,
            EMBEDDED_PROFILES
                .iter()
                .map(|(f, t)| ((*f).to_owned(), (*t).to_owned())),
        )
    }

    /// Loads and validates the spec directory `dir` (holding `nid-applet.toml`,
    /// `conformance.toml` and `profiles/*.toml`).
    ///
    /// ```no_run
    /// let spec = kart_spec::Spec::load(std::path::Path::new("applets-spec"))?;
    /// # Ok::<(), kart_spec::SpecError>(())
    /// ```
    pub fn load(dir: &Path) -> Result<Spec, SpecError> {
        let read = |p: &Path| {
            let bytes = input::read_regular(p, MAX_SPEC_FILE_BYTES).map_err(SpecError::Read)?;
            String::from_utf8(bytes).map_err(|_| {
                SpecError::invalid(&p.display().to_string(), "(file)", "is not UTF-8 text")
            })
        };
        let applet = read(&dir.join(APPLET_FILE))?;
        let conformance = read(&dir.join(CONFORMANCE_FILE))?;
        let pdir = dir.join("profiles");
        let entries = std::fs::read_dir(&pdir).map_err(|source| SpecError::Io {
            path: pdir.clone(),
            source,
        })?;
        let mut profiles = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|source| SpecError::Io {
                    path: pdir.clone(),
                    source,
                })?
                .path();
            if path.extension().is_some_and(|e| e == "toml") {
                let name = format!(
                    "profiles/{}",
                    path.file_name().unwrap_or_default().to_string_lossy()
                );
                profiles.push((name, read(&path)?));
            }
        }
        Spec::from_texts(&applet, &conformance, profiles)
    }

    fn from_texts(
        applet: &str,
        conformance: &str,
        profiles: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Spec, SpecError> {
        let applet: AppletSpec =
            toml::from_str(applet).map_err(|e| SpecError::parse(APPLET_FILE, applet, &e))?;
        applet.validate(APPLET_FILE)?;
        let conformance: Conformance = toml::from_str(conformance)
            .map_err(|e| SpecError::parse(CONFORMANCE_FILE, conformance, &e))?;
        conformance.validate(CONFORMANCE_FILE)?;
        let mut loaded: Vec<Profile> = Vec::new();
        for (file, text) in profiles {
            let p = Profile::from_toml_str(&file, &text)?;
            let stem = file
                .trim_start_matches("profiles/")
                .trim_end_matches(".toml");
            if p.id != stem {
                return Err(SpecError::invalid(
                    &file,
                    "id",
                    format!(
                        "`{}` must equal the file name `{}`",
                        input::quote(&p.id),
                        input::quote(stem)
                    ),
                ));
            }
            loaded.push(p);
        }
        if loaded.is_empty() {
            return Err(SpecError::invalid(
                "profiles/",
                "*.toml",
                "no vendor profile found; add at least one",
            ));
        }
        loaded.sort_by(|a, b| a.id.cmp(&b.id));
        let (test_profiles, profiles) = loaded
            .into_iter()
            .partition(|p| !p.test.planted_defects.is_empty());
        Ok(Spec {
            applet,
            conformance,
            profiles,
            test_profiles,
        })
    }

    /// The profile with id `id` (`vendor-a`).
    pub fn profile(&self, id: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.id == id)
    }

    /// The test profile (planted defects) with id `id` (`vendor-x-faulty`).
    ///
    /// ```
    /// let spec = kart_spec::Spec::embedded()?;
    /// let x = spec.test_profile("vendor-x-faulty").unwrap();
    /// assert!(!x.test.planted_defects.is_empty());
    /// assert!(spec.profile("vendor-x-faulty").is_none());
    /// # Ok::<(), kart_spec::SpecError>(())
    /// ```
    pub fn test_profile(&self, id: &str) -> Option<&Profile> {
        self.test_profiles.iter().find(|p| p.id == id)
    }

    /// The first profile whose ATR pattern matches `atr`.
    pub fn profile_for_atr(&self, atr: &[u8]) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.matches_atr(atr))
    }
}

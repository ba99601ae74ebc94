//! The station's configuration file: defaults for the options an operator
//! would otherwise repeat on every command. Command-line options (and their
//! environment variables) win over it.
//!
//! Read from `--config FILE` (or `$KART_CONFIG`), else `./kart.toml` when it
//! exists. Every key is optional; unknown keys are errors, so a typo does
//! not go unnoticed:
//!
//! ```toml
//! issuer = "/srv/kart/issuer"        # --issuer
//! station = "desk-3"                 # --station
//! station_dir = "/srv/kart/station"  # --station-dir
//! crn_register = "/srv/kart/crn.db"  # the issuer's CRN register, shared by every desk
//! readers = ["all"]                  # --reader
//! card_timeout = 120                 # --card-timeout, seconds
//! photo_root = "/srv/kart/photos"    # photos may be anywhere below it
//! sim_dir = "/srv/kart/sim-cards"    # --sim-dir: keep simulated cards
//! ```
//!
//! Without `photo_root`, a batch's photo and fingerprint paths (relative to
//! the batch file) must stay inside the batch file's folder.
//!
//! Secrets never go here: PINs come from files, the environment or a
//! prompt, keys from the issuer directory.

use crate::error::{CliError, Kind};
use kart_spec::input::{position, quote};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The file looked for in the working directory when `--config` is not given.
pub const DEFAULT_FILE: &str = "kart.toml";

/// Largest configuration file read.
const MAX_BYTES: u64 = 64 * 1024;

/// The configuration; `None`/empty where the file says nothing.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Issuer directory.
    pub issuer: Option<PathBuf>,
    /// The station's name in the journal.
    pub station: Option<String>,
    /// The station's directory (journal, PIN mailer, CRN register).
    pub station_dir: Option<PathBuf>,
    /// The journal: a file, or the floor's shared journal
    /// `postgres://USER@HOST:PORT/DB` (default: `journal.db` in the station
    /// directory). A shared journal also holds the issuer's CRN register.
    pub journal: Option<String>,
    /// The issuer's CRN register (default: `crn.db` in the issuer
    /// directory); every desk of one issuer must name the same file.
    pub crn_register: Option<PathBuf>,
    /// Readers used when `--reader` is not given.
    #[serde(default)]
    pub readers: Vec<String>,
    /// How long a PC/SC reader waits for the next card, in seconds.
    pub card_timeout: Option<u64>,
    /// The folder batch photos (and fingerprints) may come from; without
    /// it, they must be in the batch file's folder.
    pub photo_root: Option<PathBuf>,
    /// Where simulated cards are kept between commands.
    pub sim_dir: Option<PathBuf>,
}

impl Config {
    /// Loads `path`, or `./kart.toml` if it exists, or nothing.
    pub fn load(path: Option<&Path>) -> Result<Self, CliError> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None if Path::new(DEFAULT_FILE).is_file() => PathBuf::from(DEFAULT_FILE),
            None => return Ok(Self::default()),
        };
        let text = kart_spec::input::read_regular(&path, MAX_BYTES)
            .map_err(|e| e.to_string())
            .and_then(|b| String::from_utf8(b).map_err(|_| "it is not UTF-8 text".to_owned()))
            .map_err(|e| {
                CliError::with_hint(
                    Kind::Input,
                    format!("cannot read the configuration {}: {e}", path.display()),
                    "give a readable TOML file of at most 64 KiB with --config, or none",
                )
            })?;
        Self::parse(&text).map_err(|why| {
            CliError::with_hint(
                Kind::Input,
                format!("configuration {}: {why}", path.display()),
                "keys are issuer, station, station_dir, crn_register, readers, card_timeout, photo_root, sim_dir (see crates/kart/README.md)",
            )
        })
    }

    /// Parses the TOML text; the error says where (line and column) and
    /// what, quoting at most 100 characters of the input.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| {
            let what = quote(&e.message().lines().collect::<Vec<_>>().join(" "));
            match e.span() {
                Some(span) => format!("{}: {what}", position(text, span.start)),
                None => what,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_optional_and_typos_are_errors() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        let c = Config::parse(
            "issuer = \"iss\"\nreaders = [\"sim:vendor-a*2\", \"all\"]\ncard_timeout = 30\n",
        )
        .unwrap();
        assert_eq!(c.issuer.as_deref(), Some(Path::new("iss")));
        assert_eq!(c.readers, ["sim:vendor-a*2", "all"]);
        assert_eq!(c.card_timeout, Some(30));
        let typo = Config::parse("isuer = \"iss\"").unwrap_err();
        assert!(typo.contains("isuer"), "{typo}");
        assert!(Config::parse("card_timeout = \"soon\"").is_err());
    }
}

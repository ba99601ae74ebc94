//! The command line: global options and the subcommands.

use crate::cmd::Command;
use crate::error::EXIT_CODES_HELP;
use clap::Parser;
use std::path::PathBuf;

/// Read, personalize, verify and QA-test national identity smart cards.
///
/// Cards are in PC/SC readers, or simulated inside kart with
/// `--reader sim:PROFILE` (`sim:vendor-a`, `sim:vendor-b*4`, `sim:all`).
/// Secrets (PINs, keys) are read from files, environment variables or a
/// prompt, never from arguments.
#[derive(Debug, Parser)]
#[command(name = "kart", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Machine-readable JSON on stdout, carrying its format version ("kart/1").
    #[arg(long, global = true)]
    pub json: bool,

    /// Station configuration file (TOML; default `./kart.toml` if present).
    #[arg(long, global = true, value_name = "FILE", env = "KART_CONFIG")]
    pub config: Option<PathBuf>,

    /// Load the applet specification and vendor profiles from this
    /// directory instead of the built-in copy.
    #[arg(long, global = true, value_name = "DIR")]
    pub spec: Option<PathBuf>,

    /// Keep simulated cards in this directory between commands (one file
    /// per `sim:` reader), as cards left in real readers.
    #[arg(long, global = true, value_name = "DIR", env = "KART_SIM_DIR")]
    pub sim_dir: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `--reader`, shared by every command that talks to cards.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReaderArgs {
    /// Reader(s): a PC/SC reader name (or a unique part of it), `all`,
    /// `sim:PROFILE`, `sim:PROFILE*N` or `sim:all`. Repeat the option or
    /// separate with commas. Default: every PC/SC reader holding a card.
    #[arg(
        long = "reader",
        visible_alias = "readers",
        value_name = "READER",
        value_delimiter = ','
    )]
    pub readers: Vec<String>,
}

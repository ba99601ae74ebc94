//! `kart read`: the identity data on a card, as a table or JSON.

use super::{Ctx, Outcome};
use crate::cli::ReaderArgs;
use crate::error::{CliError, Kind};
use std::path::PathBuf;

/// `kart read`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    reader: ReaderArgs,
    /// The ID PIN, read from this file (else $KART_PIN, else a prompt).
    #[arg(long, value_name = "FILE")]
    pin_file: Option<PathBuf>,
    /// Save the facial image (JPEG) to this file.
    #[arg(long, value_name = "FILE")]
    photo: Option<PathBuf>,
}

/// Runs `kart read`.
pub fn run(_args: &Args, _ctx: &Ctx) -> Result<Outcome, CliError> {
    Err(CliError::with_hint(Kind::Usage, "reading is not wired yet", "wait for the engine"))
}

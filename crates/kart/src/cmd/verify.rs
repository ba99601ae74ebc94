//! `kart verify`: is this card genuine? Every check with its verdict.

use super::{Ctx, Outcome};
use crate::cli::ReaderArgs;
use crate::error::{CliError, Kind};
use std::path::PathBuf;

/// `kart verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    reader: ReaderArgs,
    /// Issuer directory whose root certificate is the trust anchor.
    #[arg(long, value_name = "DIR", env = "KART_ISSUER", required_unless_present = "trust")]
    issuer: Option<PathBuf>,
    /// Trust anchor: an issuer root certificate (PEM or DER).
    #[arg(long, value_name = "FILE")]
    trust: Option<PathBuf>,
    /// Also check the ID PIN, read from this file.
    #[arg(long, value_name = "FILE")]
    pin_file: Option<PathBuf>,
    /// Also check the ID PIN: from $KART_PIN, else asked on the terminal.
    #[arg(long)]
    pin: bool,
}

/// Runs `kart verify`.
pub fn run(_args: &Args, _ctx: &Ctx) -> Result<Outcome, CliError> {
    Err(CliError::with_hint(Kind::Usage, "verification is not wired yet", "wait for the engine"))
}

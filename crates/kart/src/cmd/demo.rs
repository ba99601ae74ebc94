//! `kart demo`: the whole flow on simulated cards.

use super::{Ctx, Outcome};
use crate::cli::ReaderArgs;
use crate::error::{CliError, Kind};
use std::path::PathBuf;

/// `kart demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Simulated readers to use (default: one card of every vendor profile).
    #[command(flatten)]
    reader: ReaderArgs,
    /// Work directory for the demo issuer, journal and PIN mailer; an
    /// existing demo there is replaced.
    #[arg(long, value_name = "DIR", default_value = "kart-demo")]
    dir: PathBuf,
}

/// Runs `kart demo`.
pub fn run(_args: &Args, _ctx: &Ctx) -> Result<Outcome, CliError> {
    Err(CliError::with_hint(Kind::Usage, "the demo is not wired yet", "wait for the engine"))
}

//! `kart bench`: personalization throughput and per-APDU cost. The
//! measurements arrive with issue 9; this module owns the command's
//! arguments so it can be filled in without touching the rest of the CLI.

use super::{Ctx, Outcome};
use crate::cli::ReaderArgs;
use crate::error::{CliError, Kind};

/// `kart bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub reader: ReaderArgs,
}

/// Runs `kart bench`.
pub fn run(_args: &Args, _ctx: &Ctx) -> Result<Outcome, CliError> {
    Err(CliError::with_hint(
        Kind::Usage,
        "benchmarks arrive with issue 9 and are not in this build",
        "see BENCHMARKS.md",
    ))
}

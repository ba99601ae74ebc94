//! `kart qa`: the conformance suite of `applets-spec/conformance.toml` run
//! on cards. The suite itself (`kart_perso::qa`) arrives with issue 8; this
//! module owns the command's arguments so it can be filled in without
//! touching the rest of the CLI.

use super::{Ctx, Outcome};
use crate::cli::ReaderArgs;
use crate::error::{CliError, Kind};
use std::path::PathBuf;

/// `kart qa`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub reader: ReaderArgs,
    /// Issuer directory (only its secure-channel master keys are used).
    #[arg(long, value_name = "DIR", env = "KART_ISSUER")]
    pub issuer: Option<PathBuf>,
    /// Where to write the reports (JSON, `JUnit` XML, HTML).
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
}

/// Runs `kart qa`.
pub fn run(_args: &Args, _ctx: &Ctx) -> Result<Outcome, CliError> {
    Err(CliError::with_hint(
        Kind::Usage,
        "the conformance suite arrives with issue 8 and is not in this build",
        "use `kart verify` to check a card, or `kart script` for raw checks",
    ))
}

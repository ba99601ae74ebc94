//! `kart personalize`: one record or a batch, on one or many readers.

use super::{Ctx, Outcome};
use crate::cli::ReaderArgs;
use crate::error::{CliError, Kind};
use std::path::PathBuf;

/// `kart personalize`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    reader: ReaderArgs,
    /// The batch of applications (`*.csv` or `*.jsonl`).
    #[arg(value_name = "BATCH")]
    batch: PathBuf,
    /// Personalize only the application with this tracking code.
    #[arg(long, value_name = "TRACKING_CODE")]
    only: Option<String>,
    /// Issuer directory (certificates, keys, master keys).
    #[arg(long, value_name = "DIR", env = "KART_ISSUER")]
    issuer: PathBuf,
    /// The station's journal (created if missing; a re-run resumes it).
    #[arg(long, value_name = "FILE", default_value = super::report::DEFAULT_JOURNAL)]
    journal: PathBuf,
    /// Where the PIN mailer records go (created with mode 0600).
    #[arg(long, value_name = "FILE", default_value = "pin-mailer.jsonl")]
    pin_mailer: PathBuf,
    /// Print the plan of each application and touch no card.
    #[arg(long)]
    dry_run: bool,
}

/// Runs `kart personalize`.
pub fn run(_args: &Args, _ctx: &Ctx) -> Result<Outcome, CliError> {
    Err(CliError::with_hint(Kind::Usage, "personalization is not wired yet", "wait for the engine"))
}

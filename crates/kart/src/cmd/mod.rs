//! One module per subcommand; each has its `Args` and a `run`.

pub mod apdu;
pub mod bench;
pub mod completions;
pub mod demo;
pub mod dump;
pub mod info;
pub mod issuer;
pub mod issuer_hsm;
pub mod journal;
pub mod personalize;
pub mod qa;
pub mod read;
pub mod readers;
pub mod report;
pub mod script;
pub mod sim;
pub mod spoil;
pub mod verify;

use crate::config::Config;
use crate::error::{CliError, Kind};
use crate::output::Output;
use kart_spec::Spec;
use std::path::{Path, PathBuf};

/// How a command that ran to its end went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything passed: exit code 0.
    Ok,
    /// It ran, but a check or an application failed: exit code 1.
    Failed,
}

impl Outcome {
    /// `Ok` when `passed`, else `Failed`.
    pub fn from_pass(passed: bool) -> Self {
        if passed {
            Outcome::Ok
        } else {
            Outcome::Failed
        }
    }
}

/// What every command gets.
#[derive(Debug)]
pub struct Ctx {
    /// Where results go.
    pub out: Output,
    /// The applet specification and vendor profiles.
    pub spec: Spec,
    /// Defaults from the configuration file.
    pub config: Config,
    /// How simulated cards spend their modelled time (`--sim-latency`).
    pub sim_latency: kart_sim::LatencyMode,
}

impl Ctx {
    /// The `--reader` values given, else the configuration's.
    pub fn readers<'a>(&'a self, given: &'a [String]) -> &'a [String] {
        if given.is_empty() {
            &self.config.readers
        } else {
            given
        }
    }

    /// The issuer directory given, else the configuration's.
    pub fn issuer(&self, given: Option<&Path>) -> Result<PathBuf, CliError> {
        given
            .map(Path::to_path_buf)
            .or_else(|| self.config.issuer.clone())
            .ok_or_else(|| {
                CliError::with_hint(
                    Kind::Usage,
                    "no issuer directory given",
                    "give --issuer DIR, set KART_ISSUER, or put `issuer = \"DIR\"` in kart.toml",
                )
            })
    }
}

/// The subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List the readers and their cards (`--watch`: show inserts and removals live).
    Readers(readers::Args),
    /// Show a card's ATR, protocol, vendor profile, serial and life-cycle state.
    Info(info::Args),
    /// Send raw APDUs (hex) through the card session (GET RESPONSE etc. handled).
    Apdu(apdu::Args),
    /// Run an APDU script with expected status words.
    Script(script::Args),
    /// Personalize one record or a batch, on one or many readers in parallel.
    Personalize(personalize::Args),
    /// Check that a card is genuine: every check with its verdict.
    Verify(verify::Args),
    /// Read the identity data from a card (needs the ID PIN).
    Read(read::Args),
    /// Run the QA conformance suite on cards.
    Qa(qa::Args),
    /// Write every file the given credentials can read, raw, with a
    /// manifest (FIDs, sizes, SHA-256), for checking with other tools.
    Dump(dump::Args),
    /// Issuer directory: create a demo issuer hierarchy and master keys.
    Issuer(issuer::Args),
    /// Batch status from the journal: issued, failed with reasons, pending.
    Report(report::Args),
    /// The journal itself: `kart journal migrate` moves a station's journal
    /// file into the floor's shared one (postgres://…).
    Journal(journal::Args),
    /// Close an application whose card never came back: spoil the card
    /// (never reused), optionally `--requeue` it for a new card.
    Spoil(spoil::Args),
    /// The full flow on simulated cards: demo issuer, sample batch, report.
    Demo(demo::Args),
    /// Simulated cards as a product: `kart sim serve` puts reference cards
    /// in vpcd readers of a real pcscd, for any PC/SC program.
    Sim(sim::Args),
    /// Print a shell completion script (bash, zsh, fish).
    Completions(completions::Args),
    /// Write man pages (kart.1 and one per command) to a directory.
    Man(completions::ManArgs),
    /// Measure per-card cost (APDUs, bytes, card and software time) and
    /// throughput with parallel readers, on simulated cards.
    Bench(bench::Args),
}

impl Command {
    /// The subcommand's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Readers(_) => "readers",
            Command::Info(_) => "info",
            Command::Apdu(_) => "apdu",
            Command::Script(_) => "script",
            Command::Personalize(_) => "personalize",
            Command::Verify(_) => "verify",
            Command::Read(_) => "read",
            Command::Qa(_) => "qa",
            Command::Dump(_) => "dump",
            Command::Issuer(_) => "issuer",
            Command::Report(_) => "report",
            Command::Journal(_) => "journal",
            Command::Spoil(_) => "spoil",
            Command::Demo(_) => "demo",
            Command::Bench(_) => "bench",
            Command::Sim(_) => "sim",
            Command::Completions(_) => "completions",
            Command::Man(_) => "man",
        }
    }
}

/// Runs `command`.
pub fn run(command: Command, ctx: &Ctx) -> Result<Outcome, CliError> {
    match command {
        Command::Readers(a) => readers::run(&a, ctx),
        Command::Info(a) => info::run(&a, ctx),
        Command::Apdu(a) => apdu::run(&a, ctx),
        Command::Script(a) => script::run(&a, ctx),
        Command::Personalize(a) => personalize::run(&a, ctx),
        Command::Verify(a) => verify::run(&a, ctx),
        Command::Read(a) => read::run(&a, ctx),
        Command::Qa(a) => qa::run(&a, ctx),
        Command::Dump(a) => dump::run(&a, ctx),
        Command::Issuer(a) => issuer::run(&a, ctx),
        Command::Report(a) => report::run(&a, ctx),
        Command::Journal(a) => journal::run(&a, ctx),
        Command::Spoil(a) => spoil::run(&a, ctx),
        Command::Demo(a) => demo::run(&a, ctx),
        Command::Bench(a) => bench::run(&a, ctx),
        Command::Sim(a) => sim::run(&a, ctx),
        Command::Completions(a) => completions::run(&a, ctx),
        Command::Man(a) => completions::run_man(&a, ctx),
    }
}

//! `kart completions SHELL` and `kart man DIR`: shell completion scripts
//! (`clap_complete`) and man pages (`clap_mangen`), both generated from the
//! same clap definitions as the command line itself, so they never drift.

use super::{Ctx, Outcome};
use crate::cli::Cli;
use crate::error::{CliError, Kind};
use clap::CommandFactory;
use std::path::PathBuf;

/// `kart completions`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell: bash, zsh, fish (also elvish, powershell).
    #[arg(value_name = "SHELL")]
    shell: clap_complete::Shell,
}

/// Prints the completion script for the shell on stdout.
pub fn run(args: &Args, _ctx: &Ctx) -> Result<Outcome, CliError> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "kart", &mut out);
    crate::output::print_bytes(&out)
        .map_err(|e| CliError::new(Kind::Io, format!("cannot write the completion script: {e}")))?;
    Ok(Outcome::Ok)
}

/// `kart man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Directory to write `kart.1` and one `kart-COMMAND.1` per command to
    /// (created if missing).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

/// Writes the man pages.
pub fn run_man(args: &ManArgs, ctx: &Ctx) -> Result<Outcome, CliError> {
    let io = |e: std::io::Error| {
        CliError::new(
            Kind::Io,
            format!("cannot write man pages to {}: {e}", args.dir.display()),
        )
    };
    std::fs::create_dir_all(&args.dir).map_err(io)?;
    let cmd = Cli::command();
    clap_mangen::generate_to(cmd, &args.dir).map_err(io)?;
    let mut pages: Vec<String> = std::fs::read_dir(&args.dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("kart") && n.ends_with(".1"))
        .collect();
    pages.sort();
    if ctx.out.json {
        ctx.out.json(
            "man",
            serde_json::json!({ "dir": args.dir.display().to_string(), "files": pages }),
        );
    } else {
        ctx.out.line(format!(
            "{} man page(s) written to {} (man -l {}/kart.1)",
            pages.len(),
            args.dir.display(),
            args.dir.display()
        ));
    }
    Ok(Outcome::Ok)
}

//! `kart`: read, personalize, verify and QA-test national identity smart
//! cards from the command line. Thin: it parses arguments, loads the spec,
//! keys and batches, shows progress and tables, and maps errors to exit
//! codes; the work is done by the kart libraries.
#![forbid(unsafe_code)]

mod batch;
mod cli;
mod cmd;
mod config;
mod error;
mod families;
mod output;
mod progress;
mod reader;
mod secrets;
mod simkeys;
mod simstore;

use clap::Parser;
use cli::Cli;
use cmd::{Ctx, Outcome};
use error::{CliError, Kind};
use output::Output;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let json = std::env::args_os().any(|a| a == "--json");
            if let Some(err) = error::from_clap(&e) {
                return fail(Output::new(json), "usage", &err);
            }
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let out = Output::new(cli.json);
    let spec = match &cli.spec {
        Some(dir) => kart_spec::Spec::load(dir),
        None => kart_spec::Spec::embedded(),
    };
    let spec = match spec {
        Ok(s) => s,
        Err(e) => return fail(out, cli.command.name(), &CliError::new(Kind::Input, e)),
    };
    let config = match config::Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(out, cli.command.name(), &e),
    };
    let sim_dir = cli.sim_dir.as_deref().or(config.sim_dir.as_deref());
    if let Err(e) = simstore::init(sim_dir) {
        return fail(out, cli.command.name(), &e);
    }
    let ctx = Ctx {
        out,
        spec,
        config,
        sim_latency: cli.sim_latency,
    };
    let name = cli.command.name();
    match cmd::run(cli.command, &ctx) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(Kind::Failed.code()),
        Err(e) => fail(out, name, &e),
    }
}

/// Reports `e` of `command` (one line on stderr; with `--json` also a JSON
/// error on stdout) and gives its exit code.
fn fail(out: Output, command: &str, e: &CliError) -> ExitCode {
    if out.json {
        out.json(command, serde_json::json!({ "error": e.to_json() }));
    }
    output::eprintln_flushed(&e.to_string());
    e.exit_code()
}

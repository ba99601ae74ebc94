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

    /// How simulated cards spend their vendor's modelled time: `accounted`
    /// (answer at once, report the time: the default), `real` (take it), or
    /// `real/N` (take 1/N of it, to load a floor's shared journal harder).
    #[arg(long, global = true, value_name = "MODE", env = "KART_SIM_LATENCY",
          default_value = "accounted", value_parser = parse_sim_latency)]
    pub sim_latency: kart_sim::LatencyMode,

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

/// `accounted`, `real` or `real/N` (N from 1 to 1000).
fn parse_sim_latency(text: &str) -> Result<kart_sim::LatencyMode, String> {
    use kart_sim::LatencyMode;
    match text {
        "accounted" => Ok(LatencyMode::Accounted),
        "real" => Ok(LatencyMode::Real),
        _ => text
            .strip_prefix("real/")
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|n| (1..=1000).contains(n))
            .map(LatencyMode::Scaled)
            .ok_or_else(|| {
                format!("{text:?}: expected accounted, real or real/N with N from 1 to 1000")
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_sim_latency;
    use kart_sim::LatencyMode;

    #[test]
    fn sim_latency_takes_accounted_real_and_a_fraction_of_real() {
        assert_eq!(parse_sim_latency("accounted"), Ok(LatencyMode::Accounted));
        assert_eq!(parse_sim_latency("real"), Ok(LatencyMode::Real));
        assert_eq!(parse_sim_latency("real/20"), Ok(LatencyMode::Scaled(20)));
        for bad in ["real/0", "real/1001", "real/x", "fast", ""] {
            let e = parse_sim_latency(bad).unwrap_err();
            assert!(e.contains("real/N"), "{bad}: {e}");
        }
    }
}

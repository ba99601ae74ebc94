//! `kart journal migrate`: moves a station's `SQLite` journal (and the CRNs
//! of its register) into the floor's shared PostgreSQL journal without
//! changing any state. Idempotent; a conflict refuses the whole move with
//! one line (exit 7).

use super::{Ctx, Outcome};
use crate::error::{CliError, Kind};
use kart_perso::journal::{migrate, JournalLocation};
use serde_json::json;
use std::path::PathBuf;

/// `kart journal`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Copy a station's SQLite journal into the shared PostgreSQL journal
    /// (applications, events, records, cards, claims; CRNs with
    /// `--crn-register`), changing no state. Running it again moves nothing.
    Migrate(MigrateArgs),
}

#[derive(Debug, clap::Args)]
struct MigrateArgs {
    /// The station's journal file.
    #[arg(long, value_name = "PATH")]
    from: PathBuf,
    /// The shared journal, `postgres://USER@HOST:PORT/DB` (the password from
    /// PGPASSFILE or PGPASSWORD, never the URL).
    #[arg(long, value_name = "URL")]
    to: String,
    /// The station's CRN register (`crn.db`), whose numbers move with it.
    #[arg(long, value_name = "PATH")]
    crn_register: Option<PathBuf>,
}

/// Runs `kart journal`.
pub fn run(args: &Args, ctx: &Ctx) -> Result<Outcome, CliError> {
    let Sub::Migrate(m) = &args.command;
    let to = match m.to.parse::<JournalLocation>() {
        Ok(JournalLocation::Postgres(url)) => url,
        Ok(JournalLocation::Sqlite(_)) => {
            return Err(CliError::with_hint(
                Kind::Usage,
                "--to is not a PostgreSQL URL",
                "give --to postgres://USER@HOST:PORT/DB",
            ))
        }
        Err(e) => return Err(CliError::new(Kind::Usage, format!("--to: {e}"))),
    };
    let done = migrate(&m.from, m.crn_register.as_deref(), &to)?;
    if ctx.out.json {
        ctx.out.json(
            "journal migrate",
            json!({
                "from": m.from.display().to_string(),
                "to": to.to_string(),
                "applications": done.applications,
                "already_present": done.already_present,
                "cards": done.cards,
                "crns": done.crns,
            }),
        );
    } else {
        ctx.out.line(format!(
            "migrated {} applications ({} already there), {} cards, {} CRNs from {} to {to}",
            done.applications,
            done.already_present,
            done.cards,
            done.crns,
            m.from.display()
        ));
    }
    Ok(Outcome::Ok)
}

//! `kart issuer init DIR`: a demo issuer hierarchy (root → card CA, root →
//! document signer) and random secure-channel master keys, for tests and
//! the demo. The root key goes to `DIR/offline/`, which stations never
//! read. A production issuer brings its own keys (or an HSM).

use super::{Ctx, Outcome};
use crate::error::{CliError, Kind};
use crate::output::table;
use kart_perso::pki::{create_demo_issuer, OFFLINE_DIR};
use serde_json::json;
use std::path::{Path, PathBuf};

/// `kart issuer`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Create a demo issuer in DIR (which must not hold one already); the
    /// root key goes to DIR/offline/, which stations never read. With
    /// --pkcs11 and --token, generate every key inside a PKCS#11 token.
    Init {
        /// The issuer directory to create.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        #[command(flatten)]
        hsm: super::issuer_hsm::InitArgs,
    },
    /// Where each key of the issuer in DIR lives, its algorithm and its
    /// certificate's validity (never a secret).
    Show {
        /// The issuer directory.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

/// Runs `kart issuer`.
pub fn run(args: &Args, ctx: &Ctx) -> Result<Outcome, CliError> {
    match &args.action {
        Action::Show { dir } => super::issuer_hsm::show(dir, ctx),
        Action::Init { dir, hsm } if hsm.pkcs11.is_some() => super::issuer_hsm::init(dir, hsm, ctx),
        Action::Init { dir, .. } => {
            let files = init(dir)?;
            crate::output::eprintln_flushed(&format!(
                "warning: move {} (the root key) off this machine: stations never read it, it is only needed to issue new sub-CAs",
                dir.join(OFFLINE_DIR).display()
            ));
            if ctx.out.json {
                ctx.out.json(
                    "issuer init",
                    json!({ "dir": dir.display().to_string(), "files": files }),
                );
            } else {
                let mut t = table(["file", "what"]);
                for (path, what) in &files {
                    t.add_row([path.clone(), (*what).to_owned()]);
                }
                ctx.out
                    .line(format!("demo issuer created in {}", dir.display()));
                ctx.out.line(t);
                ctx.out
                    .line("keys are unencrypted files (mode 0600): for tests and demos only");
            }
            Ok(Outcome::Ok)
        }
    }
}

/// Creates the demo issuer in `dir`; returns each file with what it is.
pub fn init(dir: &Path) -> Result<Vec<(String, &'static str)>, CliError> {
    if dir.join("root.pem").exists() || dir.join("master-keys.json").exists() {
        return Err(CliError::with_hint(
            Kind::Issuer,
            format!("{} already holds an issuer", dir.display()),
            "choose another directory, or remove this one if its keys are no longer needed",
        ));
    }
    let f = create_demo_issuer(dir, time::OffsetDateTime::now_utc())?;
    let shown = |p: &Path| p.display().to_string();
    Ok(vec![
        (shown(&f.root), "issuer root certificate (trust anchor)"),
        (
            shown(&f.root_key),
            "issuer root key (keep offline: stations never read it)",
        ),
        (
            shown(&f.card_ca),
            "card CA certificate (issues holder certificates)",
        ),
        (shown(&f.card_ca_key), "card CA key"),
        (
            shown(&f.document_signer),
            "document signer certificate (signs security objects)",
        ),
        (shown(&f.document_signer_key), "document signer key"),
        (
            shown(&f.master_keys),
            "secure-channel master keys (distinct ENC, MAC and DEK per set)",
        ),
    ])
}

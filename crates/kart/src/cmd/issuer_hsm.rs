//! `kart issuer init --pkcs11 MODULE --token LABEL DIR` (the key ceremony in
//! a PKCS#11 token) and `kart issuer show DIR`.

use super::{Ctx, Outcome};
use crate::error::{CliError, Kind};
use crate::output::table;
use kart_perso::pki::pkcs11::{Pin, Token};
use kart_perso::pki::token_issuer::{self, IssuerConfig, MasterKeySource};
use serde_json::json;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The HSM options of `kart issuer init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Generate the keys inside a PKCS#11 token through this module
    /// (e.g. /usr/lib/softhsm/libsofthsm2.so).
    #[arg(long, value_name = "MODULE", requires = "token")]
    pub pkcs11: Option<PathBuf>,
    /// Label of the token (its user PIN from --hsm-pin-file, `KART_HSM_PIN` or a prompt).
    #[arg(long, value_name = "LABEL", requires = "pkcs11")]
    pub token: Option<String>,
    /// File holding the token's user PIN (recorded in issuer.toml as a path).
    #[arg(long, value_name = "FILE", requires = "pkcs11")]
    pub hsm_pin_file: Option<PathBuf>,
    /// Import these known master keys (a master-keys.json, mode 0600: cards
    /// a vendor already keyed) into the token instead of generating them;
    /// they are sensitive and never extractable there. Delete the file after.
    #[arg(long, value_name = "FILE", requires = "pkcs11")]
    pub import_master_keys: Option<PathBuf>,
}

/// Asks for a token's user PIN on the terminal, if there is one.
pub fn prompt(token: &str) -> Option<Zeroizing<String>> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    rpassword::prompt_password(format!("user PIN of token '{token}': "))
        .ok()
        .map(Zeroizing::new)
}

/// The key ceremony.
pub fn init(dir: &Path, args: &InitArgs, ctx: &Ctx) -> Result<Outcome, CliError> {
    let (Some(module), Some(label)) = (&args.pkcs11, &args.token) else {
        return Err(CliError::new(Kind::Usage, "--pkcs11 needs --token"));
    };
    if dir.join("root.pem").exists() || dir.join(token_issuer::ISSUER_TOML).exists() {
        return Err(CliError::with_hint(
            Kind::Issuer,
            format!("{} already holds an issuer", dir.display()),
            "choose another directory",
        ));
    }
    let pin = Pin::obtain(label, args.hsm_pin_file.as_deref(), Some(&prompt))
        .map_err(kart_perso::pki::PkiError::from)?;
    let token = Token::open(module, label, pin).map_err(kart_perso::pki::PkiError::from)?;
    let known = match &args.import_master_keys {
        Some(file) => Some(kart_perso::pki::MasterKeys::load(file)?),
        None => None,
    };
    let master = known
        .as_ref()
        .map_or(MasterKeySource::Generate, MasterKeySource::Import);
    let files = token_issuer::create(dir, &token, master, time::OffsetDateTime::now_utc())?;
    if let Some(pin_file) = &args.hsm_pin_file {
        // Record where the PIN is (never the PIN) for the station.
        let mut config = IssuerConfig::load(dir)?;
        config.pkcs11.pin_file = Some(std::path::absolute(pin_file).unwrap_or(pin_file.clone()));
        let path = dir.join(token_issuer::ISSUER_TOML);
        std::fs::write(&path, config.to_toml()?).map_err(|e| {
            CliError::new(Kind::Io, format!("cannot write {}: {e}", path.display()))
        })?;
    }
    let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    if ctx.out.json {
        ctx.out.json(
            "issuer init",
            json!({ "dir": dir.display().to_string(), "files": files, "token": label }),
        );
    } else {
        ctx.out.line(format!(
            "issuer created in {}: every key generated inside token '{label}' (sensitive, never extractable)",
            dir.display()
        ));
        let mut t = table(["file"]);
        for f in &files {
            t.add_row([f.clone()]);
        }
        ctx.out.line(t);
        ctx.out
            .line("the directory holds only certificates and issuer.toml; see `kart issuer show`");
    }
    Ok(Outcome::Ok)
}

/// `kart issuer show DIR`.
pub fn show(dir: &Path, ctx: &Ctx) -> Result<Outcome, CliError> {
    if !dir.is_dir() {
        return Err(CliError::with_hint(
            Kind::Issuer,
            format!("issuer directory {} does not exist", dir.display()),
            "create one with `kart issuer init DIR`",
        ));
    }
    let keys = token_issuer::describe(dir)?;
    if ctx.out.json {
        ctx.out.json(
            "issuer show",
            json!({ "dir": dir.display().to_string(), "keys": keys }),
        );
    } else {
        let mut t = table([
            "key",
            "algorithm",
            "lives in",
            "certificate",
            "valid from",
            "valid until",
        ]);
        for k in &keys {
            t.add_row([
                k.role.clone(),
                k.algorithm.clone(),
                k.location.clone(),
                k.subject.clone().unwrap_or_default(),
                k.not_before.clone().unwrap_or_default(),
                k.not_after.clone().unwrap_or_default(),
            ]);
        }
        ctx.out.line(t);
    }
    Ok(Outcome::Ok)
}

/// Asks for the passphrase of an encrypted key file on the terminal, if there is one.
pub fn prompt_passphrase(key_file: &Path) -> Option<Zeroizing<String>> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    rpassword::prompt_password(format!("passphrase of {}: ", key_file.display()))
        .ok()
        .map(Zeroizing::new)
}

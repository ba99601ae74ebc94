//! The CLI's one error type, its exit codes, and the one-line message
//! `error: <what happened> — hint: <what to do>`. What happened is the
//! library error's message; what to do is its `hint()`, or the kind's
//! default when it has none.

use std::fmt;
use std::process::ExitCode;

/// What kind of failure ended a command; each kind has its own exit code.
///
/// The codes are documented in `kart --help` and the crate README, and are
/// part of the CLI's contract: scripts test them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 1: the command ran, and a check failed or some applications failed.
    Failed,
    /// 2: the command line is wrong.
    Usage,
    /// 3: no reader, unknown reader, or the reader/PC/SC service failed.
    Reader,
    /// 4: the card is missing, was pulled, or refused or garbled an answer.
    Card,
    /// 5: a batch, script, PIN file or other input is invalid.
    Input,
    /// 6: the issuer directory, a certificate or a key is missing or invalid.
    Issuer,
    /// 7: the journal cannot be opened or written.
    Journal,
    /// 8: a file could not be written, or kart failed internally.
    Io,
}

impl Kind {
    /// The process exit code of this kind.
    pub fn code(self) -> u8 {
        match self {
            Kind::Failed => 1,
            Kind::Usage => 2,
            Kind::Reader => 3,
            Kind::Card => 4,
            Kind::Input => 5,
            Kind::Issuer => 6,
            Kind::Journal => 7,
            Kind::Io => 8,
        }
    }

    /// A stable name for JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Failed => "failed",
            Kind::Usage => "usage",
            Kind::Reader => "reader",
            Kind::Card => "card",
            Kind::Input => "input",
            Kind::Issuer => "issuer",
            Kind::Journal => "journal",
            Kind::Io => "io",
        }
    }

    /// What to do when the message itself does not say.
    fn default_hint(self) -> &'static str {
        match self {
            Kind::Failed => "see the report above for what failed",
            Kind::Usage => "see `kart --help`",
            Kind::Reader => {
                "run `kart readers` to see the readers, or use --reader sim:all for simulated cards"
            }
            Kind::Card => "re-insert the card and run the command again",
            Kind::Input => "fix the input file and run the command again",
            Kind::Issuer => {
                "check the issuer directory (create a demo one with `kart issuer init DIR`)"
            }
            Kind::Journal => "check the journal path and its permissions",
            Kind::Io => "check the path and free disk space",
        }
    }
}

/// The exit-code table shown at the end of `kart --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  a verification failed, a script expectation failed, or some applications failed
  2  usage error (bad arguments)
  3  no reader, unknown reader, or reader / PC/SC service error
  4  card error (no card, card pulled, card refused or garbled an answer)
  5  input data error (batch, script, PIN file, profile)
  6  issuer or key error (issuer directory, certificates, keys)
  7  journal error
  8  file system or internal error";

/// A failure with its kind, what happened, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// Decides the exit code.
    pub kind: Kind,
    /// What happened.
    pub what: String,
    /// What to do.
    pub hint: String,
}

impl CliError {
    /// An error of `kind` with the kind's default hint; a message of
    /// several lines becomes one.
    pub fn new(kind: Kind, message: impl fmt::Display) -> Self {
        Self::hinted(kind, message, None::<&str>)
    }

    /// An error of `kind` from a library error's message and its `hint()`
    /// (the kind's default hint when it has none).
    pub fn hinted(kind: Kind, message: impl fmt::Display, hint: Option<impl Into<String>>) -> Self {
        let message = message.to_string();
        let message = message.lines().collect::<Vec<_>>().join(" ");
        match hint {
            Some(hint) => Self::with_hint(kind, message, hint),
            None => Self::with_hint(kind, message, kind.default_hint()),
        }
    }

    /// An error with an explicit hint.
    pub fn with_hint(kind: Kind, what: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            kind,
            what: what.into(),
            hint: hint.into(),
        }
    }

    /// The exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.kind.code())
    }

    /// The error as a JSON value (for `--json`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": self.kind.name(),
            "exit_code": self.kind.code(),
            "message": self.what,
            "hint": self.hint,
        })
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {} — hint: {}", self.what, self.hint)
    }
}

impl From<kart_pcsc::PcscError> for CliError {
    fn from(e: kart_pcsc::PcscError) -> Self {
        use kart_pcsc::PcscError as P;
        let kind = match &e {
            P::NoCard(_)
            | P::CardRemoved(_)
            | P::CardReset(_)
            | P::Timeout { .. }
            | P::UnresponsiveCard(_)
            | P::ProtocolMismatch { .. }
            | P::Abandoned(_) => Kind::Card,
            _ => Kind::Reader,
        };
        match e {
            P::NoService => CliError::with_hint(
                Kind::Reader,
                "the PC/SC service (pcscd) is not running",
                "start it (e.g. `systemctl start pcscd` or `pcscd`), or use --reader sim:all for simulated cards",
            ),
            e => {
                let hint = e.hint();
                CliError::hinted(kind, e, hint)
            }
        }
    }
}

impl From<kart_apdu::CardError> for CliError {
    fn from(e: kart_apdu::CardError) -> Self {
        use kart_apdu::{CardError, TransportError};
        match e {
            CardError::Transport(TransportError::ReaderUnavailable(m)) => {
                CliError::new(Kind::Reader, m)
            }
            e => CliError::new(Kind::Card, e),
        }
    }
}

impl From<kart_spec::SpecError> for CliError {
    fn from(e: kart_spec::SpecError) -> Self {
        let hint = e.hint();
        CliError::hinted(Kind::Input, e, hint)
    }
}

impl From<kart_perso::pki::PkiError> for CliError {
    fn from(e: kart_perso::pki::PkiError) -> Self {
        let hint = e.hint();
        CliError::hinted(Kind::Issuer, e, hint)
    }
}

impl From<kart_perso::station::StationError> for CliError {
    fn from(e: kart_perso::station::StationError) -> Self {
        use kart_perso::station::StationError as S;
        let kind = match &e {
            S::IssuerUnavailable(_) => Kind::Issuer,
            S::Journal(_) => Kind::Journal,
            S::Probe(_) | S::CardLocked { .. } => Kind::Card,
            S::Batch(_) | S::RecordMissing(_) => Kind::Input,
            _ => Kind::Io,
        };
        let hint = e.hint();
        CliError::hinted(kind, e, hint)
    }
}

impl From<kart_perso::journal::JournalError> for CliError {
    fn from(e: kart_perso::journal::JournalError) -> Self {
        let hint = e.hint();
        CliError::hinted(Kind::Journal, e, hint)
    }
}

impl From<kart_perso::record::BatchError> for CliError {
    fn from(e: kart_perso::record::BatchError) -> Self {
        CliError::new(Kind::Input, e)
    }
}

impl From<kart_sim::SimError> for CliError {
    fn from(e: kart_sim::SimError) -> Self {
        let hint = e.hint();
        CliError::hinted(
            Kind::Reader,
            format!("cannot make the simulated card: {e}"),
            hint,
        )
    }
}

/// Turns a clap error into one line and the usage exit code; help and
/// version requests are printed as clap renders them and exit 0.
pub fn from_clap(e: &clap::Error) -> Option<CliError> {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        return None;
    }
    let text = e.to_string();
    // The first paragraph, e.g. "required arguments were not provided:"
    // followed by the indented list of them.
    let what = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_owned();
    let hint = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("tip: "))
        .map_or_else(
            || "see `kart --help` (or `kart COMMAND --help`)".to_owned(),
            |tip| format!("{tip}; see `kart --help`"),
        );
    Some(CliError::with_hint(Kind::Usage, what, hint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_hints_follow_the_message() {
        let e = CliError::from(kart_pcsc::PcscError::ReaderRemoved("X".into()));
        assert_eq!(
            e.to_string(),
            "error: reader 'X' was removed — hint: plug it back in"
        );
        let spoil_like = CliError::new(Kind::Usage, "a — b");
        assert_eq!(spoil_like.what, "a — b", "messages are not split");
        let plain = CliError::new(Kind::Journal, "locked\nby another");
        assert_eq!(plain.what, "locked by another");
        assert_eq!(plain.hint, Kind::Journal.default_hint());
    }

    #[test]
    fn journal_errors_state_the_fact_and_hint_the_remedy() {
        let e = CliError::from(kart_perso::journal::JournalError::DiskFull);
        assert_eq!(e.kind, Kind::Journal);
        assert!(!e.what.contains("free disk space"), "{}", e.what);
        assert!(e.hint.contains("free disk space"), "{}", e.hint);
        let e = CliError::from(kart_perso::journal::JournalError::BadArgument("x".into()));
        assert_eq!(e.hint, Kind::Journal.default_hint());
    }

    #[test]
    fn every_kind_has_its_documented_code() {
        let kinds = [
            Kind::Failed,
            Kind::Usage,
            Kind::Reader,
            Kind::Card,
            Kind::Input,
            Kind::Issuer,
            Kind::Journal,
            Kind::Io,
        ];
        for k in kinds {
            assert!(
                EXIT_CODES_HELP.contains(&format!("  {}  ", k.code())),
                "{k:?} missing from the help"
            );
        }
    }

    #[test]
    fn card_errors_below_the_reader_are_reader_errors() {
        let e = CliError::from(kart_apdu::CardError::Transport(
            kart_apdu::TransportError::ReaderUnavailable("gone".into()),
        ));
        assert_eq!(e.kind, Kind::Reader);
        let e = CliError::from(kart_apdu::CardError::Transport(
            kart_apdu::TransportError::CardRemoved,
        ));
        assert_eq!(e.kind, Kind::Card);
    }
}

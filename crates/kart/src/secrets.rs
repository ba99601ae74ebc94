//! Secrets input: a PIN comes from a file, an environment variable or a
//! prompt — never from the command line, where other users and shell
//! histories would see it. What is read is zeroized.

use crate::error::{CliError, Kind};
use kart_perso::record::Pin;
use std::io::IsTerminal;
use std::path::Path;
use zeroize::Zeroizing;

/// The environment variable that may hold the card holder's PIN.
pub const PIN_ENV: &str = "KART_PIN";

/// Largest PIN file read; a PIN is at most 8 digits and a newline.
const MAX_PIN_FILE: u64 = 64;

/// Where the PIN comes from, in order of precedence.
#[derive(Debug, Clone, Copy)]
pub struct PinSource<'a> {
    /// `--pin-file`.
    pub file: Option<&'a Path>,
    /// Ask on the terminal when neither file nor environment gives one.
    pub prompt: bool,
    /// The PIN's role, for messages and the prompt ("ID PIN").
    pub role: &'a str,
}

/// Reads the PIN: `--pin-file`, else `KART_PIN`, else a prompt on the
/// terminal (when `prompt` and stdin is a terminal), else `None`.
pub fn read_pin(source: PinSource<'_>) -> Result<Option<Pin>, CliError> {
    let role = source.role;
    if let Some(path) = source.file {
        let text = read_small(path).map_err(|e| {
            CliError::with_hint(
                Kind::Input,
                format!("cannot read the {role} file {}: {e}", path.display()),
                "give a readable file that holds only the PIN digits",
            )
        })?;
        return parse(&text, &format!("the {role} file {}", path.display()), role).map(Some);
    }
    if let Some(value) = std::env::var_os(PIN_ENV) {
        let text = Zeroizing::new(value.to_string_lossy().into_owned());
        return parse(&text, &format!("${PIN_ENV}"), role).map(Some);
    }
    if source.prompt && std::io::stdin().is_terminal() {
        let text = Zeroizing::new(rpassword::prompt_password(format!("{role}: ")).map_err(
            |e| {
                CliError::new(
                    Kind::Input,
                    format!("cannot read the {role} from the terminal: {e}"),
                )
            },
        )?);
        return parse(&text, "the prompt", role).map(Some);
    }
    Ok(None)
}

/// A regular file of at most [`MAX_PIN_FILE`] bytes, zeroized on drop; the
/// error never shows the content.
fn read_small(path: &Path) -> Result<Zeroizing<String>, String> {
    let mut bytes = Zeroizing::new(Vec::new());
    kart_spec::input::read_regular_into(path, MAX_PIN_FILE, &mut bytes).map_err(|e| match e {
        kart_spec::input::ReadError::Io { source, .. } => source.to_string(),
        kart_spec::input::ReadError::TooLarge { max, .. } => {
            format!("it holds more than {max} bytes")
        }
        e => e.to_string(),
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| "it is not UTF-8 text".to_owned())?;
    Ok(Zeroizing::new(text.to_owned()))
}

fn parse(text: &str, from: &str, role: &str) -> Result<Pin, CliError> {
    Pin::parse(text).map_err(|problem| {
        CliError::with_hint(
            Kind::Input,
            format!("the {role} in {from} is not valid: {problem}"),
            "it must hold 4 to 8 digits and nothing else",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_file_is_read_trimmed_and_bad_files_say_why_without_the_pin() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("pin");
        std::fs::write(&good, "246813\n").unwrap();
        let src = |file| PinSource {
            file: Some(file),
            prompt: false,
            role: "ID PIN",
        };
        let pin = read_pin(src(&good)).unwrap().unwrap();
        assert_eq!(pin.expose_digits(), b"246813");

        let bad = dir.path().join("bad");
        std::fs::write(&bad, "12x45678").unwrap();
        let e = read_pin(src(&bad)).unwrap_err();
        assert_eq!(e.kind, Kind::Input);
        assert!(
            e.what.contains("not valid") && !e.what.contains("12x45678"),
            "{e}"
        );

        let missing = read_pin(src(&dir.path().join("nope"))).unwrap_err();
        assert!(
            missing.what.contains("cannot read the ID PIN file"),
            "{missing}"
        );
    }
}

//! Running the `kart` binary in tests: away from the operator's
//! environment, with the checks every CLI test makes on what it printed.
//! The binary's path comes from the test (`env!("CARGO_BIN_EXE_kart")`).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Environment variables that would change what `kart` does (PINs, the
/// issuer, the card store, the configuration file): removed for every run.
pub const OPERATOR_ENV: [&str; 5] = [
    "KART_PIN",
    "KART_ISSUER",
    "KART_SIM_DIR",
    "KART_CONFIG",
    "KART_HSM_PIN",
];

/// A command for `bin` in `dir` without [`OPERATOR_ENV`]; the caller adds
/// arguments and environment.
pub fn command(bin: &str, dir: &Path) -> Command {
    let mut c = Command::new(bin);
    c.current_dir(dir);
    for var in OPERATOR_ENV {
        c.env_remove(var);
    }
    c
}

/// Runs `bin args…` in `dir` (see [`command`]) to its end.
pub fn run(bin: &str, dir: &Path, args: &[&str]) -> Output {
    command(bin, dir).args(args).output().expect("run kart")
}

/// The exit code (a signal is a test failure).
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The JSON document on standard output.
pub fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}\n{}", stdout(o), stderr(o)))
}

/// Asserts the one-line error format (`error: … — hint: …`, no panic) and
/// returns the line.
pub fn one_line_error(o: &Output) -> String {
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr: {err}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(" — hint: "),
        "{err}"
    );
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"));
    lines[0].to_owned()
}

/// What comes before `#` in the `"reader"` field of each of `results` (the
/// profile of a simulated reader `vendor-x#2`), each once.
pub fn reader_profiles(results: &[Value]) -> std::collections::BTreeSet<String> {
    results
        .iter()
        .map(|r| {
            let reader = r["reader"].as_str().expect("a reader name");
            reader.split('#').next().unwrap_or(reader).to_owned()
        })
        .collect()
}

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

/// The JSON document of a run that must have exited 0 (its output shown
/// if it did not).
pub fn ok_json(o: &Output) -> Value {
    assert_eq!(code(o), 0, "{}\n{}", stdout(o), stderr(o));
    json(o)
}

/// The ID PIN of the last card issued from station directory
/// `dir/kart-station`, read from its PIN mailer, in the file `dir/id-pin`
/// (for `--pin-file`, so that no PIN is on argv).
pub fn last_id_pin_file(dir: &Path) -> std::path::PathBuf {
    let mailer =
        std::fs::read_to_string(dir.join("kart-station/pin-mailer.txt")).expect("the PIN mailer");
    let pin = mailer
        .lines()
        .rev()
        .find_map(|l| l.split(' ').find_map(|w| w.strip_prefix("id_pin=")))
        .expect("an ID PIN in the mailer")
        .to_owned();
    let path = dir.join("id-pin");
    std::fs::write(&path, pin).expect("write the PIN file");
    path
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

/// A copy of the sample batch `examples/batch` in `dir`: its photos in
/// `dir/photos`, and `dir/<name>` with the header and the rows whose
/// 1-based line number `keep` accepts (the header is line 1).
pub fn sample_batch(dir: &Path, name: &str, keep: impl Fn(usize) -> bool) -> std::path::PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/batch");
    std::fs::create_dir_all(dir.join("photos")).expect("photos directory");
    for e in std::fs::read_dir(src.join("photos")).expect("sample photos") {
        let e = e.expect("sample photo");
        std::fs::copy(e.path(), dir.join("photos").join(e.file_name())).expect("copy photo");
    }
    let text = std::fs::read_to_string(src.join("applications.csv")).expect("sample batch");
    let kept: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i == 0 || keep(i + 1))
        .map(|(_, l)| l)
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, kept.join("\n") + "\n").expect("write batch");
    path
}

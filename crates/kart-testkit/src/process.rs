//! Running the system tools the tests check against (openssl, python3,
//! softhsm2-util, opensc-tool, a child test binary), with a panic that
//! shows what the tool said.

use std::process::{Command, Output};

/// Runs `cmd` to its end and returns its output, whatever its status;
/// `missing` is the panic message when it cannot be started (say how to
/// install it).
pub fn output(cmd: &mut Command, missing: &str) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{missing}: {e}"))
}

/// Runs `cmd` and requires it to succeed; the panic names the command and
/// shows its stdout and stderr.
///
/// ```
/// let out = kart_testkit::process::run_ok(std::process::Command::new("echo").arg("hi"), "echo");
/// assert_eq!(out.stdout, b"hi\n");
/// ```
pub fn run_ok(cmd: &mut Command, missing: &str) -> Output {
    let out = output(cmd, missing);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Makes a FIFO at `path` with `mkfifo`, `options` first (such as `-m 600`):
/// what a reader that opens files without checking their type blocks on.
pub fn mkfifo(path: &std::path::Path, options: &[&str]) {
    run_ok(
        Command::new("mkfifo").args(options).arg(path),
        "mkfifo (coreutils)",
    );
}

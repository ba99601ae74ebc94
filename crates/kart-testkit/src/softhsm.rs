//! A private SoftHSM2 token per test. SoftHSM reads `SOFTHSM2_CONF` once,
//! when a process initializes the module, so each test re-runs itself as a
//! child process (`--exact NAME`) with its own configuration and token
//! directory, removed when the test ends.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's `softhsm2` module (installed by `scripts/setup`).
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The token label every test's token has.
pub const TOKEN: &str = "kart-test";
/// The user PIN of the test token (a test secret, not a real one).
pub const PIN: &str = "314159";
const SO_PIN: &str = "27182818";
const CHILD: &str = "KART_TEST_SOFTHSM_DIR";

/// The child's view: where its token directory is.
pub struct SoftHsm {
    /// The test's scratch directory (token directory inside).
    pub dir: PathBuf,
}

/// Runs `body` in a child process that has its own SoftHSM token `TOKEN`
/// with user PIN `PIN` (also in `KART_HSM_PIN`).
pub fn with_token(test: &str, body: impl FnOnce(&SoftHsm)) {
    if let Some(dir) = std::env::var_os(CHILD) {
        body(&SoftHsm { dir: dir.into() });
        return;
    }
    assert!(
        Path::new(MODULE).exists(),
        "{MODULE} is missing: run scripts/setup (Debian packages softhsm2, opensc)"
    );
    let dir = tempfile::tempdir().unwrap();
    let conf = init_token(dir.path(), TOKEN, PIN);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("SOFTHSM2_CONF", &conf)
        .env("KART_HSM_PIN", PIN)
        .env(CHILD, dir.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child test failed:\n{text}");
    assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
    if std::env::var_os("KART_TEST_SHOW_CHILD").is_some() {
        println!("{text}");
    }
}

/// Writes `softhsm2.conf` in `dir` with a token directory `dir/tokens`,
/// and initializes a token `label` with user PIN `pin` there. Returns the
/// configuration's path, for `SOFTHSM2_CONF`.
pub fn init_token(dir: &Path, label: &str, pin: &str) -> PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir(&tokens).expect("token directory");
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .expect("softhsm2.conf");
    crate::process::run_ok(
        Command::new("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                pin,
                "--so-pin",
                SO_PIN,
            ])
            .env("SOFTHSM2_CONF", &conf),
        "softhsm2-util runs (scripts/setup installs softhsm2)",
    );
    conf
}

/// A `pkcs11-tool` (OpenSC) command on the SoftHSM module and token `label`;
/// the caller adds its arguments and environment.
pub fn pkcs11_tool_command(label: &str) -> Command {
    let mut c = Command::new("pkcs11-tool");
    c.args(["--module", MODULE, "--token-label", label]);
    c
}

/// `pkcs11-tool` (OpenSC) on the test token, with the environment of the child.
pub fn pkcs11_tool(args: &[&str]) -> String {
    let out = crate::process::run_ok(
        pkcs11_tool_command(TOKEN).args(args),
        "pkcs11-tool runs (scripts/setup installs opensc)",
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

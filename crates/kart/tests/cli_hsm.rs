//! The CLI with every issuer key in a SoftHSM2 token: `kart issuer init
//! --pkcs11 … --token …`, `kart issuer show`, `kart personalize` and `kart qa`
//! on simulated cards of every profile, and the faults (wrong PIN, no PIN,
//! absent token, missing object) as one-line errors with exit code 6. Each
//! test has its own token directory through `SOFTHSM2_CONF`. Also issuer key
//! files in encrypted PKCS#8.
#![allow(clippy::doc_markdown)] // proper names (SoftHSM) are not code

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kart_testkit::softhsm::{self, MODULE};

const PIN: &str = "246810";

/// A scratch directory with a SoftHSM configuration and one token `kart`.
struct Hsm {
    dir: tempfile::TempDir,
}

impl Hsm {
    fn new() -> Self {
        assert!(
            Path::new(MODULE).exists(),
            "{MODULE} missing: run scripts/setup"
        );
        let dir = tempfile::tempdir().unwrap();
        softhsm::init_token(dir.path(), "kart", PIN);
        Self { dir }
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    fn kart(&self, pin: Option<&str>, args: &[&str]) -> Output {
        let mut c = kart_testkit::cli::command(env!("CARGO_BIN_EXE_kart"), self.dir.path());
        c.args(args)
            .env("SOFTHSM2_CONF", self.conf())
            .stdin(std::process::Stdio::null());
        if let Some(pin) = pin {
            c.env("KART_HSM_PIN", pin);
        }
        c.output().unwrap()
    }

    fn init(&self) {
        let o = self.kart(
            Some(PIN),
            &[
                "issuer", "init", "--pkcs11", MODULE, "--token", "kart", "issuer",
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn token_issuer_personalizes_every_profile_and_passes_qa() {
    let hsm = Hsm::new();
    hsm.init();
    let mut files: Vec<_> = std::fs::read_dir(hsm.dir.path().join("issuer"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "card-ca.pem",
            "document-signer.pem",
            "issuer.toml",
            "root.pem"
        ]
    );

    let show = hsm.kart(None, &["--json", "issuer", "show", "issuer"]);
    assert_eq!(show.status.code(), Some(0), "{}", text(&show));
    let v: Value = serde_json::from_slice(&show.stdout).unwrap();
    let keys = v["keys"].as_array().unwrap();
    // Root, card CA, document signer; 3DES, AES-128, AES-192, AES-256 master sets.
    assert_eq!(keys.len(), 7);
    assert_eq!(keys[0]["algorithm"], "EC P-384");
    assert!(keys[1]["location"]
        .as_str()
        .unwrap()
        .starts_with("pkcs11:token=kart;object=card-ca"));
    assert!(keys[2]["not_after"].as_str().is_some());
    assert!(!text(&show).contains(PIN));

    std::fs::write(
        hsm.dir.path().join("batch.csv"),
        include_str!("../../../examples/batch/applications.csv"),
    )
    .unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/batch/photos"),
        &hsm.dir.path().join("photos"),
    );
    let o = hsm.kart(
        Some(PIN),
        &[
            "--json",
            "personalize",
            "--issuer",
            "issuer",
            "--reader",
            "sim:all",
            "--station-dir",
            "st",
            "batch.csv",
        ],
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(&o)));
    let results = v["results"].as_array().unwrap();
    assert!(!results.is_empty(), "{v}");
    let profiles = kart_testkit::cli::reader_profiles(results);
    for r in results {
        assert_eq!(r["result"], "issued", "{r}");
    }
    // Every vendor profile of the spec issued a card through the token:
    // a new profile is covered as soon as the spec has it.
    let every: std::collections::BTreeSet<String> = kart_spec::Spec::embedded()
        .unwrap()
        .profiles
        .iter()
        .map(|p| format!("sim:{}", p.id))
        .collect();
    assert_eq!(profiles, every, "{v}");
    assert!(!text(&o).contains(PIN));

    let o = hsm.kart(
        Some(PIN),
        &[
            "qa",
            "--issuer",
            "issuer",
            "--reader",
            "sim:vendor-a,sim:vendor-c",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn token_faults_are_one_line_errors_with_exit_code_6() {
    let hsm = Hsm::new();
    hsm.init();
    std::fs::write(hsm.dir.path().join("batch.csv"), "").unwrap();
    let run = |pin: Option<&str>| {
        hsm.kart(
            pin,
            &[
                "personalize",
                "--issuer",
                "issuer",
                "--reader",
                "sim:vendor-a",
                "--station-dir",
                "st",
                "batch.csv",
            ],
        )
    };

    // Wrong PIN: once, not retried, the PIN never printed.
    let o = run(Some("999999"));
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("wrong user PIN") && err.contains("hint:"),
        "{err}"
    );
    assert!(!err.contains("999999"));
    // The right PIN still works afterwards: nothing was locked.
    let o = hsm.kart(Some(PIN), &["issuer", "show", "issuer"]);
    assert_eq!(o.status.code(), Some(0));

    // No PIN and no terminal.
    let o = run(None);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("KART_HSM_PIN"));

    // A missing key object is named.
    let toml_path = hsm.dir.path().join("issuer/issuer.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    std::fs::write(
        &toml_path,
        toml.replace("object=gp-aes256-mac", "object=gp-lost"),
    )
    .unwrap();
    let o = run(Some(PIN));
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("'gp-lost'"),
        "{}",
        text(&o)
    );

    // An absent token.
    std::fs::write(&toml_path, toml.replace("token=kart;", "token=elsewhere;")).unwrap();
    let o = run(Some(PIN));
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("token 'elsewhere' is not present"),
        "{}",
        text(&o)
    );

    // The ceremony refuses a token that already holds the issuer's keys.
    let o = hsm.kart(
        Some(PIN),
        &[
            "issuer", "init", "--pkcs11", MODULE, "--token", "kart", "issuer2",
        ],
    );
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already holds a key"));
}

/// A demo issuer whose card CA and document signer keys are encrypted
/// PKCS#8 (converted by `openssl pkcs8 -topk8 -v2 aes-256-cbc`): personalize
/// works with the passphrase from `KART_KEY_PASSPHRASE_FILE`, and without
/// it fails with exit 6, naming the key file, never printing the passphrase.
#[test]
fn encrypted_key_files_open_with_a_passphrase_file() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let kart = |envs: &[(&str, &Path)], args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kart"));
        c.args(args)
            .current_dir(dir)
            .env_remove("KART_KEY_PASSPHRASE")
            .env_remove("KART_KEY_PASSPHRASE_FILE")
            .stdin(std::process::Stdio::null());
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let o = kart(&[], &["issuer", "init", "issuer"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    std::fs::write(dir.join("pw"), "a long passphrase 42\n").unwrap();
    for key in ["card-ca.key.pem", "document-signer.key.pem"] {
        let path = dir.join("issuer").join(key);
        kart_testkit::openssl::openssl(
            dir,
            &[
                "pkcs8",
                "-topk8",
                "-v2",
                "aes-256-cbc",
                "-passout",
                "file:pw",
                "-out",
                "enc.pem",
                "-in",
                path.to_str().unwrap(),
            ],
        );
        std::fs::remove_file(&path).unwrap();
        std::fs::rename(dir.join("enc.pem"), &path).unwrap();
    }
    std::fs::write(
        dir.join("batch.csv"),
        include_str!("../../../examples/batch/applications.csv"),
    )
    .unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/batch/photos"),
        &dir.join("photos"),
    );
    let args = [
        "--json",
        "personalize",
        "--issuer",
        "issuer",
        "--reader",
        "sim:vendor-b",
        "--station-dir",
        "st",
        "batch.csv",
    ];
    let o = kart(&[], &args);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("card-ca.key.pem"),
        "{}",
        text(&o)
    );
    let o = kart(&[("KART_KEY_PASSPHRASE_FILE", &dir.join("pw"))], &args);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(&o)));
    let results = v["results"].as_array().unwrap();
    assert!(!results.is_empty());
    assert!(results.iter().all(|r| r["result"] == "issued"), "{v}");
    assert!(!text(&o).contains("a long passphrase"));
}

/// `--import-master-keys`: known master keys (a vendor's) go into the token
/// as sensitive, non-extractable keys, as `pkcs11-tool` (OpenSC) reports,
/// and cannot be read out.
#[test]
fn imported_master_keys_are_sensitive_and_not_extractable() {
    let hsm = Hsm::new();
    let o = hsm.kart(None, &["issuer", "init", "files"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = hsm.kart(
        Some(PIN),
        &[
            "issuer",
            "init",
            "--pkcs11",
            MODULE,
            "--token",
            "kart",
            "--import-master-keys",
            "files/master-keys.json",
            "issuer",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = softhsm::pkcs11_tool_command("kart")
        .args(["--login", "--pin", PIN, "-O"])
        .env("SOFTHSM2_CONF", hsm.conf())
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    for label in ["gp-3des-enc", "gp-aes128-mac", "gp-aes256-dek"] {
        let block = listing
            .split("Object;")
            .find(|b| b.contains(&format!("label:      {label}\n")))
            .unwrap_or_else(|| panic!("{label}: {listing}"));
        let access = block.lines().find(|l| l.contains("Access:")).unwrap();
        // A key that was outside the token cannot be "never extractable"
        // (CKA_NEVER_EXTRACTABLE); it is sensitive and not extractable now.
        assert!(access.contains("sensitive"), "{label}: {access}");
        assert!(
            !access
                .replace("never extractable", "")
                .contains("extractable"),
            "{label}: {access}"
        );
        assert!(!block.contains("wrap"), "{label}: {block}");
        let read = softhsm::pkcs11_tool_command("kart")
            .args(["--login", "--pin", PIN])
            .args(["--read-object", "--type", "secrkey", "--label", label])
            .env("SOFTHSM2_CONF", hsm.conf())
            .output()
            .unwrap();
        assert!(!read.status.success(), "{label} could be read out");
    }
    let o = hsm.kart(Some(PIN), &["issuer", "show", "issuer"]);
    assert!(!text(&o).contains(
        &std::fs::read_to_string(hsm.dir.path().join("files/master-keys.json")).unwrap()[..20]
    ));
}

//! Persistent simulated cards (`--sim-dir`, `sim_dir` in kart.toml) and
//! `kart dump`, end to end through the built binary in separate processes:
//! personalize, then info, verify, read, dump and qa see the same card; the
//! dump checks out with openssl and sha256sum; a damaged or foreign stored
//! card is a clear card error and is left as it was.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

use kart_testkit::cli::{self, code, json, ok_json as ok, stderr};

fn kart(dir: &Path, args: &[&str]) -> Output {
    cli::run(env!("CARGO_BIN_EXE_kart"), dir, args)
}

/// An issuer and a one-application batch (with its photo) in `dir`.
fn setup(dir: &Path) {
    cli::sample_batch(dir, "one.csv", |line| line <= 2);
    ok(&kart(dir, &["issuer", "init", "--json", "issuer"]));
}

/// `kart <sim…> personalize --json --issuer issuer --reader sim:vendor-a one.csv`.
fn personalize_run(dir: &Path, sim: &[&str]) -> Output {
    let mut args = sim.to_vec();
    args.extend([
        "personalize",
        "--json",
        "--issuer",
        "issuer",
        "--reader",
        "sim:vendor-a",
        "one.csv",
    ]);
    kart(dir, &args)
}

fn personalize(dir: &Path, sim: &[&str]) -> Value {
    let v = ok(&personalize_run(dir, sim));
    assert_eq!(v["report"]["issued"], 1, "{v}");
    v
}

#[test]
fn a_personalized_simulated_card_stays_in_its_reader_across_commands() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    setup(dir);
    let sim = ["--sim-dir", "cards"];
    personalize(dir, &sim);
    let card = dir.join("cards/vendor-a-1.card.json");
    assert!(card.is_file());

    // Later commands, each its own process, see the issued card.
    let with = |args: &[&str]| {
        let mut a = sim.to_vec();
        a.extend_from_slice(args);
        kart(dir, &a)
    };
    let info = ok(&with(&["info", "--json", "--reader", "sim:vendor-a"]));
    assert_eq!(info["lifecycle"]["name"], "LOCKED", "{info}");
    let crn = info["crn"].as_str().unwrap().to_owned();
    let pin = cli::last_id_pin_file(dir);
    let pin = pin.to_str().unwrap();
    let verify = ok(&with(&[
        "verify",
        "--json",
        "--issuer",
        "issuer",
        "--reader",
        "sim:vendor-a",
        "--pin-file",
        pin,
    ]));
    assert_eq!(verify["genuine"], true, "{verify}");
    assert_eq!(verify["crn"], crn.as_str());
    let read = ok(&with(&[
        "read",
        "--json",
        "--reader",
        "sim:vendor-a",
        "--pin-file",
        pin,
    ]));
    assert_eq!(read["identity"]["crn"], crn.as_str(), "{read}");

    // The dump checks out with independent tools.
    let dump = ok(&with(&[
        "dump",
        "--json",
        "--reader",
        "sim:vendor-a",
        "--pin-file",
        pin,
        "out",
    ]));
    assert_eq!(dump["crn"], crn.as_str());
    check_dump(dir, &crn, pin);

    // QA meets the locked card and runs what a locked card allows.
    let qa = with(&[
        "qa",
        "--json",
        "--issuer",
        "issuer",
        "--reader",
        "sim:vendor-a",
    ]);
    let v = json(&qa);
    assert_eq!(code(&qa), 0, "{v}");
    assert!(v.to_string().contains("LOCKED"), "{v}");

    // Without --sim-dir the reader holds a blank card, as before.
    let blank = ok(&kart(dir, &["info", "--json", "--reader", "sim:vendor-a"]));
    assert_eq!(blank["lifecycle"]["name"], "PRE_PERSONALIZED");

    // A second personalize run finds nothing to issue: the stored card stays.
    let before = std::fs::read(&card).unwrap();
    let again = personalize_run(dir, &["--sim-dir", "cards"]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert_eq!(
        std::fs::read(&card).unwrap(),
        before,
        "nothing to issue: the card stays"
    );
}

/// `DIR/out`, written by `kart dump` with the ID PIN, checked with
/// sha256sum and openssl.
fn check_dump(dir: &Path, crn: &str, pin: &str) {
    let out = dir.join("out");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "kart-dump/1");
    let names: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for want in [
        "CPLC",
        "EF.ID",
        "EF.FACE",
        "EF.SOD",
        "EF.CERT_AUTH",
        "EF.CERT_SIGN",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let sod = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "EF.SOD")
        .unwrap();
    assert_eq!(sod["fid"], "011D");
    assert_eq!(
        sod["size"],
        std::fs::metadata(out.join("EF.SOD")).unwrap().len()
    );
    kart_testkit::process::run_ok(
        Command::new("sha256sum")
            .args(["-c", "--quiet", "SHA256SUMS"])
            .current_dir(&out),
        "sha256sum (coreutils)",
    );
    let cms = kart_testkit::openssl::cms_verify(
        &out,
        "EF.SOD",
        &dir.join("issuer/root.pem").to_string_lossy(),
        "sod-content.der",
    );
    assert!(
        cms.status.success(),
        "openssl cms: {}",
        String::from_utf8_lossy(&cms.stderr)
    );
    // The signed content holds the SHA-256 of EF.ID as dumped.
    let content = std::fs::read(out.join("sod-content.der")).unwrap();
    let id = std::fs::read(out.join("EF.ID")).unwrap();
    let id_hash = ring::digest::digest(&ring::digest::SHA256, &id);
    assert!(
        content.windows(32).any(|w| w == id_hash.as_ref()),
        "EF.ID's hash is not in the security object"
    );
    check_certificate_and_secrecy(&out, crn, pin);
}

/// The certificate names the CRN; every dumped file is 0600 and no file
/// holds the PIN.
fn check_certificate_and_secrecy(out: &Path, crn: &str, pin: &str) {
    let x509 = kart_testkit::openssl::openssl(
        out,
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            "EF.CERT_AUTH",
            "-noout",
            "-subject",
        ],
    );
    assert!(
        String::from_utf8_lossy(&x509.stdout).contains(crn),
        "CRN in the certificate's CN"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("EF.ID"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let pin_digits = std::fs::read_to_string(pin).unwrap();
    for e in std::fs::read_dir(out).unwrap() {
        let text = std::fs::read(e.unwrap().path()).unwrap();
        assert!(
            !String::from_utf8_lossy(&text).contains(&format!("\"{}\"", pin_digits.trim())),
            "the PIN is not in the dump"
        );
    }
}

#[test]
fn dump_without_the_pin_writes_the_public_files_only_and_never_overwrites() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    setup(dir);
    std::fs::write(dir.join("kart.toml"), "sim_dir = \"cards\"\n").unwrap();
    // sim_dir from kart.toml.
    personalize(dir, &[]);
    assert!(dir.join("cards/vendor-a-1.card.json").is_file());
    let dump = ok(&kart(
        dir,
        &["dump", "--json", "--reader", "sim:vendor-a", "pub"],
    ));
    let skipped: Vec<(&str, &str)> = dump["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["reason"].as_str().unwrap()))
        .collect();
    assert!(
        skipped.contains(&("EF.ID", "needs the ID PIN")),
        "{skipped:?}"
    );
    assert!(
        skipped.contains(&("EF.FACE", "needs the ID PIN")),
        "{skipped:?}"
    );
    assert!(!dir.join("pub/EF.ID").exists());
    assert!(dir.join("pub/EF.SOD").is_file() && dir.join("pub/CPLC").is_file());
    assert_eq!(std::fs::metadata(dir.join("pub/CPLC")).unwrap().len(), 42);
    // A directory with files in it is refused.
    let again = kart(dir, &["dump", "--reader", "sim:vendor-a", "pub"]);
    assert_eq!(code(&again), 2, "{}", stderr(&again));
    assert!(stderr(&again).contains("not empty"));
    // A wrong PIN writes nothing.
    std::fs::write(dir.join("bad-pin"), "0000").unwrap();
    let wrong = kart(
        dir,
        &[
            "dump",
            "--reader",
            "sim:vendor-a",
            "--pin-file",
            "bad-pin",
            "w",
        ],
    );
    assert_eq!(code(&wrong), 4, "{}", stderr(&wrong));
    assert_eq!(std::fs::read_dir(dir.join("w")).unwrap().count(), 0);
}

#[test]
fn a_damaged_or_foreign_stored_card_is_a_card_error_and_left_as_it_was() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    setup(dir);
    personalize(dir, &["--sim-dir", "cards"]);
    let card = dir.join("cards/vendor-a-1.card.json");
    let whole = std::fs::read(&card).unwrap();
    let truncated = whole[..whole.len() - 100].to_vec();
    let other = String::from_utf8(whole.clone())
        .unwrap()
        .replace("kart-sim-card/1", "kart-sim-card/9");
    for (what, bytes, needle) in [
        ("truncated", truncated, "damaged"),
        ("another version", other.into_bytes(), "kart-sim-card/9"),
    ] {
        std::fs::write(&card, &bytes).unwrap();
        for args in [
            vec!["--sim-dir", "cards", "info", "--reader", "sim:vendor-a"],
            vec![
                "--sim-dir",
                "cards",
                "personalize",
                "--issuer",
                "issuer",
                "--reader",
                "sim:vendor-a",
                "one.csv",
            ],
        ] {
            let o = kart(dir, &args);
            let err = stderr(&o);
            assert_eq!(code(&o), 4, "{what} {args:?}: {err}");
            let lines: Vec<&str> = err.lines().collect();
            assert!(
                lines.iter().any(|l| l.starts_with("error: ")
                    && l.contains(needle)
                    && l.contains(" — hint: ")),
                "{what}: {err}"
            );
            assert!(!err.contains("panicked"));
            assert_eq!(
                std::fs::read(&card).unwrap(),
                bytes,
                "{what}: not overwritten"
            );
        }
    }
}

#[test]
fn sim_serve_refuses_an_unknown_profile_or_address_with_a_hint() {
    let t = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (
            vec![
                "sim",
                "serve",
                "--profile",
                "vendor-z",
                "--vpcd",
                "127.0.0.1:35963",
            ],
            "no profile 'vendor-z'",
        ),
        (
            vec![
                "sim",
                "serve",
                "--profile",
                "vendor-b",
                "--vpcd",
                "nonsense",
            ],
            "'nonsense' is not HOST:PORT",
        ),
        (vec!["sim", "serve", "--profile", "vendor-b"], "--vpcd"),
    ] {
        let o = kart(t.path(), &args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("error: ") && err.contains(needle) && err.contains(" — hint: "),
            "{err}"
        );
    }
    // A missing issuer is an issuer error.
    let o = kart(
        t.path(),
        &[
            "sim",
            "serve",
            "--profile",
            "vendor-b",
            "--vpcd",
            "127.0.0.1:35963",
            "--issuer",
            "none",
        ],
    );
    assert_eq!(code(&o), 6, "{}", stderr(&o));
}

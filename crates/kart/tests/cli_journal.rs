//! The floor's shared journal from the command line, on a private
//! `PostgreSQL` 15 the test starts: two stations personalize one batch on one
//! journal at once (each application issued once, CRNs unique), `kart
//! report --journal URL` sees the whole floor, `kart journal migrate` moves
//! a station's file without changing it, and passwords never go in URLs.

use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kart_pg_harness::{PgOptions, PgServer, TestCa};

fn kart_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kart"))
        .args(args)
        .current_dir(dir)
        .env_remove("KART_PIN")
        .env_remove("KART_ISSUER")
        .env_remove("PGPASSWORD")
        .output()
        .expect("run kart")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    });
    assert_eq!(v["format"], "kart/1", "{v}");
    v
}

/// The sample batch's valid rows (lines 2–7) and their photos, in `dir`.
fn valid_batch(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/batch");
    std::fs::create_dir_all(dir.join("photos")).unwrap();
    for e in std::fs::read_dir(src.join("photos")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join("photos").join(e.file_name())).unwrap();
    }
    let text = std::fs::read_to_string(src.join("applications.csv")).unwrap();
    let kept: Vec<&str> = text.lines().take(7).collect();
    let path = dir.join("applications.csv");
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    path
}

#[test]
fn two_stations_share_one_journal_and_one_report_sees_the_floor() {
    let pg = PgServer::start().unwrap();
    let url = pg.url();
    let dir = tempfile::tempdir().unwrap();
    let issuer = dir.path().join("issuer");
    let o = kart_in(dir.path(), &["issuer", "init", issuer.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let batch = valid_batch(dir.path());
    let stations: Vec<_> = ["desk-1", "desk-2"]
        .into_iter()
        .map(|name| {
            let station_dir = dir.path().join(name);
            Command::new(env!("CARGO_BIN_EXE_kart"))
                .args([
                    "personalize",
                    "--json",
                    "--reader",
                    "sim:vendor-b*2",
                    "--issuer",
                ])
                .arg(&issuer)
                .args(["--station", name, "--journal", &url, "--station-dir"])
                .arg(&station_dir)
                .arg(&batch)
                .current_dir(dir.path())
                .env_remove("KART_PIN")
                .env_remove("KART_ISSUER")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map(|child| (name, child))
                .unwrap()
        })
        .collect();
    let mut issued = Vec::new();
    for (name, child) in stations {
        let o = child.wait_with_output().unwrap();
        assert_eq!(code(&o), 0, "{name}: {}", stderr(&o));
        let v = json(&o);
        for r in v["results"].as_array().unwrap() {
            assert_eq!(r["result"], "issued", "{r}");
            issued.push(r.clone());
        }
    }
    let codes: HashSet<String> = issued
        .iter()
        .map(|r| r["tracking_code"].to_string())
        .collect();
    assert_eq!(
        (issued.len(), codes.len()),
        (6, 6),
        "each application issued once: {issued:?}"
    );
    let crns = pg
        .psql("SELECT count(*) || ' ' || count(DISTINCT seq) || ' ' || count(DISTINCT card_serial) FROM crns")
        .unwrap();
    assert_eq!(
        crns, "6 6 6",
        "one CRN per card, unique across the stations"
    );

    let o = kart_in(dir.path(), &["report", "--json", "--journal", &url]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(
        (v["issued"].as_u64(), v["pending"].as_u64()),
        (Some(6), Some(0)),
        "{v}"
    );

    // A URL with a password is refused, and the password is not echoed.
    let secret_url = url.replace("kart@", "kart:hunter2@");
    let o = kart_in(dir.path(), &["report", "--journal", &secret_url]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(!stderr(&o).contains("hunter2"), "{}", stderr(&o));
}

#[test]
fn a_station_journal_migrates_once_without_changing_its_state() {
    let pg = PgServer::start().unwrap();
    let url = pg.url();
    let dir = tempfile::tempdir().unwrap();
    let issuer = dir.path().join("issuer");
    let o = kart_in(dir.path(), &["issuer", "init", issuer.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let batch = valid_batch(dir.path());
    let args = [
        "personalize",
        "--json",
        "--reader",
        "sim:vendor-c",
        "--issuer",
    ];
    let mut all: Vec<&str> = args.to_vec();
    all.extend([issuer.to_str().unwrap(), batch.to_str().unwrap()]);
    let o = kart_in(dir.path(), &all);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let journal = dir.path().join("kart-station/journal.db");
    let local = json(&kart_in(
        dir.path(),
        &["report", "--json", "--journal", journal.to_str().unwrap()],
    ));

    let crn_register = issuer.join("crn.db");
    let migrate = [
        "journal",
        "migrate",
        "--json",
        "--from",
        journal.to_str().unwrap(),
        "--to",
        &url,
        "--crn-register",
        crn_register.to_str().unwrap(),
    ];
    let o = kart_in(dir.path(), &migrate);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(
        (v["applications"].as_u64(), v["crns"].as_u64()),
        (Some(6), Some(6)),
        "{v}"
    );
    let o = kart_in(dir.path(), &migrate);
    let v = json(&o);
    assert_eq!(
        (v["applications"].as_u64(), v["already_present"].as_u64()),
        (Some(0), Some(6)),
        "{v}"
    );

    let shared = json(&kart_in(
        dir.path(),
        &["report", "--json", "--journal", &url],
    ));
    for field in [
        "issued",
        "failed",
        "spoiled",
        "pending",
        "in_progress",
        "per_vendor",
        "per_day",
        "steps",
    ] {
        assert_eq!(shared[field], local[field], "{field}");
    }
    let o = kart_in(
        dir.path(),
        &[
            "journal",
            "migrate",
            "--from",
            journal.to_str().unwrap(),
            "--to",
            "journal-copy.db",
        ],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

/// A floor whose database takes only TLS: `kart personalize` with libpq's
/// `sslmode=verify-full&sslrootcert=CA` issues the batch (journal and CRN
/// register over TLS), and a CA that did not sign the server's certificate
/// is refused with an error that says so, not a hang.
#[test]
fn personalize_reaches_a_tls_only_journal_with_verify_full_and_refuses_a_wrong_ca() {
    let ca = TestCa::new("kart floor CA").unwrap();
    let stranger = TestCa::new("someone else's CA").unwrap();
    let cert = ca.issue("localhost", &["DNS:localhost"]).unwrap();
    let pg = PgServer::start_with(&PgOptions::tls_only(cert)).unwrap();
    let url = |root: &Path| {
        format!(
            "postgres://kart@localhost:{}/kart?sslmode=verify-full&sslrootcert={}",
            pg.port(),
            root.display()
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let issuer = dir.path().join("issuer");
    let o = kart_in(dir.path(), &["issuer", "init", issuer.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let batch = valid_batch(dir.path());
    let personalize = |journal: &str, station: &str| {
        let station_dir = dir.path().join(station);
        kart_in(
            dir.path(),
            &[
                "personalize",
                "--json",
                "--reader",
                "sim:vendor-b*2",
                "--issuer",
                issuer.to_str().unwrap(),
                "--station",
                station,
                "--journal",
                journal,
                "--station-dir",
                station_dir.to_str().unwrap(),
                batch.to_str().unwrap(),
            ],
        )
    };
    let o = personalize(&url(&stranger.cert()), "desk-0");
    // The CRN register, opened first, reports it as the journal's error (7)
    // with the TLS remedy.
    assert_eq!(code(&o), 7, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("hint: check that sslrootcert"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("TLS handshake"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("certificate verify failed"),
        "{}",
        stderr(&o)
    );

    let o = personalize(&url(&ca.cert()), "desk-1");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 6, "{v}");
    assert!(results.iter().all(|r| r["result"] == "issued"), "{v}");
    assert_eq!(pg.psql("SELECT count(*) FROM crns").unwrap(), "6");
}

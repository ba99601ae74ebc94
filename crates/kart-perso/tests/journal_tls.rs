//! The shared journal over TLS, on a real `PostgreSQL` 15 with certificates
//! made by the `openssl` tool: libpq's `sslmode`s and `sslrootcert`, client
//! certificates, and every refusal as a typed error (not a hang, not a
//! retry until the bound).

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use kart_perso::journal::{Journal, JournalError, JournalLocation, JournalOptions, State};
use kart_perso::record::TrackingCode;
use kart_pg_harness::{PgOptions, PgServer, TestCa};

/// Long enough that a TLS failure retried like an unreachable server would
/// end as `Unavailable`, not as the TLS error the tests expect.
fn options() -> JournalOptions {
    JournalOptions {
        busy_timeout: Duration::from_secs(30),
        ..JournalOptions::default()
    }
}

fn code() -> TrackingCode {
    (0..10)
        .find_map(|d| TrackingCode::parse(&format!("14040905000{d}")).ok())
        .unwrap()
}

/// A server whose certificate, from `ca`, names only `localhost`.
fn server(ca: &TestCa, options: fn(kart_pg_harness::Issued) -> PgOptions) -> PgServer {
    let cert = ca.issue("localhost", &["DNS:localhost"]).unwrap();
    PgServer::start_with(&options(cert)).unwrap()
}

fn url(pg: &PgServer, host: &str, query: &str) -> JournalLocation {
    format!("postgres://kart@{host}:{}/kart?{query}", pg.port())
        .parse()
        .unwrap()
}

fn open(location: &JournalLocation) -> Result<Journal, JournalError> {
    Journal::open_location(location, &options())
}

#[test]
fn verify_full_with_the_servers_ca_connects_and_a_batch_runs_over_tls() {
    let ca = TestCa::new("kart floor CA").unwrap();
    let pg = server(&ca, PgOptions::tls);
    let query = format!("sslmode=verify-full&sslrootcert={}", ca.cert().display());
    let journal = open(&url(&pg, "localhost", &query)).unwrap();
    let code = code();
    journal.enqueue_batch("floor.csv", [&code]).unwrap();
    let claim = journal.claim_next("st-a", "r0").unwrap().unwrap();
    journal
        .mark_writing(&claim.tracking, "CARD-1", "vendor-a")
        .unwrap();
    journal.mark_written(&claim.tracking).unwrap();
    journal.mark_verified(&claim.tracking).unwrap();
    assert_eq!(journal.status(&code).unwrap().state, State::Verified);
    // The server saw the journal's connection encrypted.
    assert_eq!(
        pg.psql(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()"
        )
        .unwrap(),
        "t"
    );
}

#[test]
fn require_reaches_a_hostssl_only_server_and_disable_is_refused_by_it() {
    let ca = TestCa::new("kart floor CA").unwrap();
    let pg = server(&ca, PgOptions::tls_only);
    // No root certificate: encrypted, the server not checked (libpq's require).
    let journal = open(&url(&pg, "127.0.0.1", "sslmode=require")).unwrap();
    journal.enqueue_batch("floor.csv", [&code()]).unwrap();
    match open(&url(&pg, "127.0.0.1", "sslmode=disable")) {
        Err(error @ JournalError::TlsRequired { .. }) => {
            let text = error.to_string();
            assert!(text.contains("without TLS"), "{text}");
            assert!(
                error.hint().unwrap().contains("sslmode=verify-full"),
                "{error:?}"
            );
        }
        other => panic!("expected TlsRequired, got {other:?}"),
    }
}

#[test]
fn a_server_certificate_from_another_ca_is_refused_under_verify_ca_and_verify_full() {
    let ca = TestCa::new("kart floor CA").unwrap();
    let stranger = TestCa::new("someone else's CA").unwrap();
    let pg = server(&stranger, PgOptions::tls_only);
    for (mode, host) in [("verify-ca", "127.0.0.1"), ("verify-full", "localhost")] {
        let query = format!("sslmode={mode}&sslrootcert={}", ca.cert().display());
        match open(&url(&pg, host, &query)) {
            Err(error @ JournalError::TlsHandshake { .. }) => {
                let text = error.to_string();
                assert!(text.contains("certificate verify failed"), "{mode}: {text}");
                assert!(
                    error.hint().unwrap().contains("sslrootcert"),
                    "{mode}: {error:?}"
                );
            }
            other => panic!("{mode}: expected TlsHandshake, got {other:?}"),
        }
    }
    // `require` with a root certificate checks the chain too (libpq's rule).
    let query = format!("sslmode=require&sslrootcert={}", ca.cert().display());
    assert!(matches!(
        open(&url(&pg, "127.0.0.1", &query)),
        Err(JournalError::TlsHandshake { .. })
    ));
}

#[test]
fn verify_full_refuses_a_host_the_certificate_does_not_name_and_verify_ca_does_not_check_it() {
    let ca = TestCa::new("kart floor CA").unwrap();
    let pg = server(&ca, PgOptions::tls_only);
    let root = ca.cert();
    let full = format!("sslmode=verify-full&sslrootcert={}", root.display());
    match open(&url(&pg, "127.0.0.1", &full)) {
        Err(error @ JournalError::TlsHandshake { .. }) => {
            let text = error.to_string();
            assert!(text.contains("127.0.0.1"), "{text}");
            assert!(error.hint().unwrap().contains("verify-full"), "{error:?}");
        }
        other => panic!("expected TlsHandshake, got {other:?}"),
    }
    let ca_only = format!("sslmode=verify-ca&sslrootcert={}", root.display());
    open(&url(&pg, "127.0.0.1", &ca_only)).unwrap();
}

#[test]
fn require_to_a_server_without_tls_is_refused_and_prefer_falls_back() {
    let pg = PgServer::start().unwrap();
    match open(&url(&pg, "127.0.0.1", "sslmode=require")) {
        Err(error @ JournalError::TlsNotOffered { .. }) => {
            assert!(error.to_string().contains("does not offer TLS"), "{error}");
        }
        other => panic!("expected TlsNotOffered, got {other:?}"),
    }
    open(&url(&pg, "127.0.0.1", "sslmode=prefer")).unwrap();
}

#[test]
fn a_missing_root_certificate_is_a_setup_error_before_connecting() {
    let ca = TestCa::new("kart floor CA").unwrap();
    let pg = server(&ca, PgOptions::tls_only);
    for query in [
        "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        "sslmode=require&sslrootcert=/nonexistent/ca.pem",
    ] {
        match open(&url(&pg, "localhost", query)) {
            Err(error @ JournalError::TlsSetup { .. }) => {
                assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
            }
            other => panic!("{query}: expected TlsSetup, got {other:?}"),
        }
    }
}

#[test]
fn a_client_certificate_authenticates_and_an_open_key_file_is_refused() {
    let ca = TestCa::new("kart floor CA").unwrap();
    let cert = ca.issue("localhost", &["DNS:localhost"]).unwrap();
    let client = ca.issue("kart", &[]).unwrap();
    let pg = PgServer::start_with(&PgOptions::tls_only(cert).with_client_ca(ca.cert())).unwrap();
    let base = format!("sslmode=verify-full&sslrootcert={}", ca.cert().display());
    assert!(
        open(&url(&pg, "localhost", &base)).is_err(),
        "no client certificate"
    );
    let with_cert = format!(
        "{base}&sslcert={}&sslkey={}",
        client.cert.display(),
        client.key.display()
    );
    let journal = open(&url(&pg, "localhost", &with_cert)).unwrap();
    journal.enqueue_batch("floor.csv", [&code()]).unwrap();

    let key_text = std::fs::read_to_string(&client.key).unwrap();
    std::fs::set_permissions(&client.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    match open(&url(&pg, "localhost", &with_cert)) {
        Err(error @ JournalError::TlsSetup { .. }) => {
            let text = error.to_string();
            assert!(text.contains("chmod 600"), "{text}");
            assert!(!text.contains(key_text.trim()), "the key is never shown");
        }
        other => panic!("expected TlsSetup, got {other:?}"),
    }
}

#[test]
fn an_unknown_sslmode_is_refused_when_the_url_is_parsed() {
    for mode in ["verify_full", "allow", "on"] {
        let error = format!("postgres://kart@localhost:5432/kart?sslmode={mode}")
            .parse::<JournalLocation>()
            .unwrap_err();
        assert!(matches!(error, JournalError::BadArgument(_)), "{error}");
        assert!(error.to_string().contains("sslmode"), "{error}");
    }
}

//! The harness's TLS server against the real `psql` client (libpq): the
//! certificates from the `openssl` tool are accepted under libpq's
//! `verify-full`, and a `hostssl`-only server refuses a connection without TLS.

use std::path::Path;
use std::process::Command;

use kart_pg_harness::{PgOptions, PgServer, TestCa, BIN_DIR};

/// Runs `SELECT 1` through libpq with the connection string `conninfo`.
fn libpq(conninfo: &str) -> (bool, String) {
    let out = Command::new(Path::new(BIN_DIR).join("psql"))
        .args(["-X", "-A", "-t", "-q", "-d", conninfo, "-c"])
        .arg("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .env_remove("PGSSLMODE")
        .env_remove("PGSSLROOTCERT")
        .output()
        .unwrap();
    let text = if out.status.success() {
        String::from_utf8_lossy(&out.stdout)
    } else {
        String::from_utf8_lossy(&out.stderr)
    };
    (out.status.success(), text.trim().to_owned())
}

#[test]
fn a_tls_only_server_is_trusted_by_libpq_and_refuses_plain_connections() {
    let ca = TestCa::new("kart test CA").unwrap();
    let server = ca.issue("localhost", &["DNS:localhost"]).unwrap();
    let pg = PgServer::start_with(&PgOptions::tls_only(server)).unwrap();
    // The harness's own tools get through (over TLS, libpq's default prefer).
    assert_eq!(pg.psql("SHOW ssl").unwrap(), "on");
    let port = pg.port();
    let ca = ca.cert();
    let ca = ca.display();
    let full = format!(
        "host=localhost port={port} user=kart dbname=kart sslmode=verify-full sslrootcert={ca}"
    );
    assert_eq!(libpq(&full), (true, "t".to_owned()));
    let (ok, error) = libpq(&format!(
        "host=127.0.0.1 port={port} user=kart dbname=kart sslmode=verify-full sslrootcert={ca}"
    ));
    assert!(!ok, "the certificate names only localhost");
    assert!(error.contains("127.0.0.1"), "{error}");
    let (ok, error) = libpq(&format!(
        "host=127.0.0.1 port={port} user=kart dbname=kart sslmode=disable"
    ));
    assert!(!ok);
    assert!(error.contains("no encryption"), "{error}");
}

#[test]
fn client_certificates_are_asked_for_when_a_client_ca_is_given() {
    let ca = TestCa::new("kart test CA").unwrap();
    let server = ca
        .issue("localhost", &["DNS:localhost", "IP:127.0.0.1"])
        .unwrap();
    let client = ca.issue("kart", &[]).unwrap();
    let options = PgOptions::tls_only(server).with_client_ca(ca.cert());
    let pg = PgServer::start_with(&options).unwrap();
    assert_eq!(pg.psql("SELECT 1").unwrap(), "1");
    let base = format!(
        "host=127.0.0.1 port={} user=kart dbname=kart sslmode=verify-full sslrootcert={}",
        pg.port(),
        ca.cert().display()
    );
    let (ok, error) = libpq(&base);
    assert!(!ok, "no client certificate: {error}");
    let with_cert = format!(
        "{base} sslcert={} sslkey={}",
        client.cert.display(),
        client.key.display()
    );
    assert_eq!(libpq(&with_cert), (true, "t".to_owned()));
}

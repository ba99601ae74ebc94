//! The harness against a real `PostgreSQL` 15: start, connect, restart, stop.

use kart_pg_harness::PgServer;
use std::net::TcpStream;

#[test]
fn starts_serves_survives_a_restart_and_stops_by_pid() {
    let mut pg = PgServer::start().unwrap();
    assert_eq!(
        pg.url(),
        format!("postgres://kart@127.0.0.1:{}/kart", pg.port())
    );
    assert_eq!(
        pg.psql("SELECT current_database() || ' ' || current_user")
            .unwrap(),
        "kart kart"
    );
    pg.psql("CREATE TABLE t (n int); INSERT INTO t VALUES (7)")
        .unwrap();

    let before = pg.pid().unwrap();
    pg.restart().unwrap();
    let after = pg.pid().unwrap();
    assert_ne!(before, after, "a restart runs a new postmaster");
    assert!(gone(before), "the old postmaster {before} still runs");
    // Same port, same data.
    assert_eq!(pg.psql("SELECT n FROM t").unwrap(), "7");

    pg.stop();
    assert_eq!(pg.pid(), None);
    let err = pg.psql("SELECT 1").unwrap_err();
    assert!(err.to_string().contains("psql failed"), "{err}");
    let port = pg.port();
    drop(pg);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens after drop"
    );
}

#[test]
fn drop_stops_the_server() {
    let pg = PgServer::start().unwrap();
    let pid = pg.pid().unwrap();
    let port = pg.port();
    drop(pg);
    assert!(gone(pid), "postmaster {pid} still runs after drop");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

/// The process is gone (or a zombie nobody reaps: the postmaster is not our child).
fn gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z"))
}

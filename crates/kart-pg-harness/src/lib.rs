//! # kart-pg-harness
//!
//! Runs a private PostgreSQL 15 server for tests of the shared journal: a
//! fresh cluster in a temporary directory, on a free loopback port, stopped
//! by PID when dropped. No system service is used or touched.
//!
//! The server runs as user `postgres` (PostgreSQL refuses to run as root),
//! so the test must run as root to switch to it with `runuser`; the cluster
//! trusts local connections and has the superuser `kart`. Missing binaries
//! make [`PgServer::start`] fail with a message saying to run
//! `scripts/setup`.
//!
//! ```no_run
//! use kart_pg_harness::PgServer;
//! let mut pg = PgServer::start()?;
//! println!("journal at {}", pg.url()); // postgres://kart@127.0.0.1:PORT/kart
//! assert_eq!(pg.psql("SELECT 1")?, "1");
//! pg.restart()?; // same port, same data: a database restart mid-batch
//! # Ok::<(), kart_pg_harness::PgError>(())
//! ```
//!
//! With [`PgServer::start_with`] the server speaks TLS (`ssl = on`) with a
//! certificate from a [`TestCa`] made by the `openssl` tool, and may refuse
//! TCP connections without TLS (`hostssl` only) or ask for client
//! certificates (`cert` authentication).
#![forbid(unsafe_code)]
#![allow(clippy::doc_markdown)] // PostgreSQL is a proper name, not code

use std::fs;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread::sleep;
use std::time::{Duration, Instant};
use thiserror::Error;

mod tls;
pub use tls::{Issued, TestCa};

/// Where Debian's `postgresql-15` package puts the server binaries.
pub const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";
/// The superuser `initdb` creates, and the database the harness creates.
pub const USER: &str = "kart";
/// The database the harness creates for the test.
pub const DATABASE: &str = "kart";
/// How long the server may take to start or stop.
const TIMEOUT: Duration = Duration::from_secs(30);
/// How often a free port is tried when another process takes it first.
const PORT_ATTEMPTS: usize = 3;

/// Why the harness could not provide a private PostgreSQL.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PgError {
    /// A binary or the `postgres` user is missing.
    #[error("{0} is missing: install postgresql (scripts/setup, as root)")]
    NotInstalled(String),
    /// Not running as root, so the server cannot run as `postgres`.
    #[error("the PostgreSQL test harness needs root (it runs the server as user postgres through runuser): run the tests as root")]
    NotRoot,
    /// A PostgreSQL tool failed.
    #[error("{what} failed: {detail}\nserver log:\n{log}")]
    Tool {
        /// What the harness was doing.
        what: String,
        /// The tool's own error output.
        detail: String,
        /// The server's log so far.
        log: String,
    },
    /// The server did not accept connections (or did not stop) in time.
    #[error("PostgreSQL {what} within {TIMEOUT:?}\nserver log:\n{log}")]
    Timeout {
        /// What did not happen.
        what: String,
        /// The server's log so far.
        log: String,
    },
    /// An operating-system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What the harness was doing.
        what: String,
        /// The underlying error.
        source: io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> PgError {
    let what = what.into();
    move |source| PgError::Io { what, source }
}

/// How [`PgServer::start_with`] sets the server up; the default is
/// [`PgServer::start`]'s (no TLS, every local connection trusted).
///
/// ```
/// use kart_pg_harness::PgOptions;
/// assert!(PgOptions::default().server_tls.is_none());
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct PgOptions {
    /// The server's certificate and key: the server runs with `ssl = on`.
    pub server_tls: Option<Issued>,
    /// Refuse TCP connections without TLS (`pg_hba.conf` has `hostssl`
    /// lines only).
    pub tls_only: bool,
    /// A CA certificate: TCP connections must then show a client
    /// certificate it signed whose common name is the user (`hostssl …
    /// cert`, `ssl_ca_file`). The harness's own tools use the Unix socket.
    pub client_ca: Option<PathBuf>,
}

impl PgOptions {
    /// TLS with this server certificate; connections without TLS still work.
    pub fn tls(server: Issued) -> Self {
        Self {
            server_tls: Some(server),
            ..Self::default()
        }
    }

    /// TLS with this server certificate, and TCP connections without TLS refused.
    pub fn tls_only(server: Issued) -> Self {
        Self {
            tls_only: true,
            ..Self::tls(server)
        }
    }

    /// Also asks for a client certificate signed by the CA in `ca`.
    #[must_use]
    pub fn with_client_ca(mut self, ca: impl Into<PathBuf>) -> Self {
        self.client_ca = Some(ca.into());
        self
    }
}

/// A private PostgreSQL server; stopped by PID and its directory removed
/// when dropped.
#[derive(Debug)]
pub struct PgServer {
    /// Holds `data/` (the cluster), the Unix socket and `server.log`;
    /// owned by `postgres`.
    dir: tempfile::TempDir,
    port: u16,
    runuser: PathBuf,
    /// The postmaster's PID while it runs.
    pid: Option<u32>,
    /// More `-c` settings for the postmaster (TLS).
    settings: Vec<String>,
    /// Whether the harness's client tools go through the Unix socket (TCP
    /// asks for a client certificate).
    socket_clients: bool,
}

impl PgServer {
    /// Creates a cluster, starts it on a free loopback port, waits until it
    /// accepts connections (bounded) and creates database [`DATABASE`].
    pub fn start() -> Result<Self, PgError> {
        Self::start_with(&PgOptions::default())
    }

    /// As [`PgServer::start`], set up as `options` say (TLS, `hostssl`
    /// only, client certificates). The certificate and keys are copied into
    /// the server's directory, owned by `postgres`, keys mode 0600.
    pub fn start_with(options: &PgOptions) -> Result<Self, PgError> {
        if !rustix::process::geteuid().is_root() {
            return Err(PgError::NotRoot);
        }
        let runuser = require_tool("runuser")?;
        for tool in ["initdb", "pg_ctl", "pg_isready", "createdb", "psql"] {
            let path = Path::new(BIN_DIR).join(tool);
            if !path.is_file() {
                return Err(PgError::NotInstalled(path.display().to_string()));
            }
        }
        let (uid, gid) = postgres_ids()?;
        let dir = tempfile::Builder::new()
            .prefix("kart-pg-")
            .tempdir()
            .map_err(io_err("create a temporary directory for PostgreSQL"))?;
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
            .map_err(io_err("give the PostgreSQL directory to user postgres"))?;
        let mut me = PgServer {
            dir,
            port: 0,
            runuser,
            pid: None,
            settings: Vec::new(),
            socket_clients: options.client_ca.is_some(),
        };
        let data = me.data_dir();
        me.as_postgres(
            Command::new(Path::new(BIN_DIR).join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", USER, "--no-sync"]),
            "initdb",
        )?;
        me.set_up_tls(options, (uid, gid))?;
        // A free port can be taken by someone else before the server binds
        // it: try a few.
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            me.port = free_port()?;
            match me.spawn() {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            return Err(e);
        }
        me.client(
            Command::new(Path::new(BIN_DIR).join("createdb")).arg(DATABASE),
            "createdb",
        )?;
        Ok(me)
    }

    /// The connection URL of the test database, e.g.
    /// `postgres://kart@127.0.0.1:54321/kart` (trust authentication, no password).
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// The loopback TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The server's log so far (empty if there is none yet).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Runs one SQL command on the test database with the real `psql` client
    /// and returns its unaligned, tuples-only output, trimmed (rows on lines,
    /// columns separated by `|`).
    pub fn psql(&self, sql: &str) -> Result<String, PgError> {
        let out = self.client(
            Command::new(Path::new(BIN_DIR).join("psql"))
                .args([
                    "-X",
                    "-A",
                    "-t",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-d",
                    DATABASE,
                    "-c",
                ])
                .arg(sql),
            "psql",
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Stops the server and starts it again on the same port and data, as a
    /// database restart in the middle of a batch; waits until it accepts
    /// connections again.
    pub fn restart(&mut self) -> Result<(), PgError> {
        self.stop();
        self.spawn()
    }

    /// Stops the server (fast shutdown: open connections are closed, open
    /// transactions rolled back), by PID; SIGKILL if it has not exited
    /// within the bound. Does nothing if it is not running.
    pub fn stop(&mut self) {
        let Some(pid) = self.pid.take() else { return };
        let pid = pid.to_string();
        // SIGINT is PostgreSQL's "fast" shutdown.
        let _ = Command::new("kill").args(["-INT", &pid]).output();
        let deadline = Instant::now() + TIMEOUT;
        while alive(&pid) {
            if Instant::now() > deadline {
                let _ = Command::new("kill").args(["-KILL", &pid]).output();
                // The postmaster's children exit once it is gone.
                sleep(Duration::from_millis(200));
                break;
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Copies the TLS files in, names them in the settings and writes
    /// `pg_hba.conf` when TCP connections are restricted.
    fn set_up_tls(&mut self, options: &PgOptions, owner: (u32, u32)) -> Result<(), PgError> {
        let Some(server) = &options.server_tls else {
            return if options.tls_only || options.client_ca.is_some() {
                Err(PgError::Tool {
                    what: "set up PostgreSQL".into(),
                    detail: "tls_only and client_ca need a server certificate (server_tls)".into(),
                    log: String::new(),
                })
            } else {
                Ok(())
            };
        };
        let copy = |from: &Path, name: &str, mode: u32| -> Result<PathBuf, PgError> {
            let to = self.dir.path().join(name);
            fs::copy(from, &to).map_err(io_err(format!("copy {}", from.display())))?;
            std::os::unix::fs::chown(&to, Some(owner.0), Some(owner.1))
                .map_err(io_err(format!("give {name} to user postgres")))?;
            tls::set_mode(&to, mode)?;
            Ok(to)
        };
        let cert = copy(&server.cert, "server.crt", 0o644)?;
        let key = copy(&server.key, "server.key", 0o600)?;
        self.settings = vec![
            "ssl=on".into(),
            format!("ssl_cert_file={}", cert.display()),
            format!("ssl_key_file={}", key.display()),
        ];
        let mut hba = String::from("local all all trust\n");
        if let Some(ca) = &options.client_ca {
            let ca = copy(ca, "client_ca.crt", 0o644)?;
            self.settings.push(format!("ssl_ca_file={}", ca.display()));
            hba.push_str("hostssl all all 127.0.0.1/32 cert\nhostssl all all ::1/128 cert\n");
        } else {
            hba.push_str("hostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n");
        }
        if !options.tls_only {
            hba.push_str("hostnossl all all 127.0.0.1/32 trust\nhostnossl all all ::1/128 trust\n");
        }
        let path = self.data_dir().join("pg_hba.conf");
        fs::write(&path, hba).map_err(io_err("write pg_hba.conf"))?;
        std::os::unix::fs::chown(&path, Some(owner.0), Some(owner.1))
            .map_err(io_err("give pg_hba.conf to user postgres"))
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Starts the postmaster on `self.port` and waits until it is ready.
    fn spawn(&mut self) -> Result<(), PgError> {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        for setting in &self.settings {
            options.push_str(" -c ");
            options.push_str(setting);
        }
        let timeout = TIMEOUT.as_secs().to_string();
        let data = self.data_dir();
        let log = self.log_path();
        self.as_postgres(
            Command::new(Path::new(BIN_DIR).join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", &timeout, "-o", &options, "start"]),
            "pg_ctl start",
        )?;
        let pid_file = data.join("postmaster.pid");
        let text = fs::read_to_string(&pid_file).map_err(io_err("read postmaster.pid"))?;
        self.pid = text.lines().next().and_then(|l| l.trim().parse().ok());
        if self.pid.is_none() {
            return Err(PgError::Tool {
                what: "pg_ctl start".into(),
                detail: format!("no PID in {}", pid_file.display()),
                log: self.log(),
            });
        }
        self.wait_ready()
    }

    fn wait_ready(&self) -> Result<(), PgError> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let ready = Command::new(Path::new(BIN_DIR).join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .map_err(io_err("run pg_isready"))?;
            if ready.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(PgError::Timeout {
                    what: "did not accept connections".into(),
                    log: self.log(),
                });
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// Runs a server tool as user `postgres`, inside the harness directory
    /// (root's working directory may not be readable by `postgres`).
    fn as_postgres(&self, cmd: &Command, what: &str) -> Result<Output, PgError> {
        let mut wrapped = Command::new(&self.runuser);
        wrapped
            .args(["-u", "postgres", "--"])
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .current_dir(self.dir.path());
        self.checked(&mut wrapped, what)
    }

    /// Runs a client tool (as the current user) against the server over TCP.
    fn client(&self, cmd: &mut Command, what: &str) -> Result<Output, PgError> {
        let host = if self.socket_clients {
            self.dir.path().display().to_string()
        } else {
            "127.0.0.1".to_owned()
        };
        cmd.args(["-h", &host, "-p", &self.port.to_string(), "-U", USER]);
        for var in [
            "PGPASSWORD",
            "PGSERVICE",
            "PGSSLMODE",
            "PGSSLROOTCERT",
            "PGSSLCERT",
            "PGSSLKEY",
        ] {
            cmd.env_remove(var);
        }
        self.checked(cmd, what)
    }

    fn checked(&self, cmd: &mut Command, what: &str) -> Result<Output, PgError> {
        let out = cmd.output().map_err(io_err(format!("run {what}")))?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(PgError::Tool {
                what: what.to_owned(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                log: self.log(),
            })
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether the process with this PID still runs (a zombie counts as gone:
/// the postmaster is not our child, so we cannot reap it).
fn alive(pid: &str) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

fn require_tool(name: &str) -> Result<PathBuf, PgError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| PgError::NotInstalled(name.to_owned()))
}

/// The `postgres` user's uid and gid, from `/etc/passwd`.
fn postgres_ids() -> Result<(u32, u32), PgError> {
    let passwd = fs::read_to_string("/etc/passwd").map_err(io_err("read /etc/passwd"))?;
    passwd
        .lines()
        .find_map(|line| {
            let mut f = line.split(':');
            (f.next() == Some("postgres")).then_some(())?;
            let uid = f.nth(1)?.parse().ok()?;
            let gid = f.next()?.parse().ok()?;
            Some((uid, gid))
        })
        .ok_or_else(|| PgError::NotInstalled("the user postgres".into()))
}

/// A loopback port nobody listens on right now.
fn free_port() -> Result<u16, PgError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(io_err("find a free TCP port"))?;
    Ok(l.local_addr()
        .map_err(io_err("find a free TCP port"))?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zombie_or_missing_process_is_not_alive() {
        assert!(!alive("999999999"));
        assert!(alive(&std::process::id().to_string()));
    }

    #[test]
    fn the_postgres_user_is_found_in_passwd() {
        // Needs the postgresql package's user; fails with the install hint otherwise.
        let (uid, _) = postgres_ids().unwrap();
        assert_ne!(uid, 0);
    }
}

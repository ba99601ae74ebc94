//! # kart-pcscd-harness
//!
//! Runs a private `pcscd` with `vsmartcard-vpcd` virtual readers for tests
//! that go through the real PC/SC stack.
//!
//! `pcscd` always listens on the fixed socket `/run/pcscd/pcscd.comm`, and
//! `libpcsclite` always looks there. So a test binary first calls
//! [`enter_private_namespace`]: it re-executes the binary under
//! `unshare --mount --propagation private` and mounts a fresh `tmpfs` on
//! `/run/pcscd` inside. Everything the binary then starts (our `pcscd`, the
//! test code, child processes such as the `kart` CLI) sees only that daemon,
//! and the system's own `pcscd`, if any, is neither touched nor used.
//!
//! Test binaries using this set `harness = false` in their `[[test]]` entry,
//! because the re-exec must happen before any test runs. Root is required
//! (mount namespaces and `pcscd` need it); missing packages make
//! [`Pcscd::start`] fail with a message saying to run `scripts/setup`.
//!
//! ```no_run
//! use kart_pcscd_harness::{enter_private_namespace, Pcscd};
//! enter_private_namespace()?; // re-execs; returns only inside the namespace
//! let pcscd = Pcscd::start(1)?; // one vpcd device = two readers
//! for r in pcscd.readers() {
//!     println!("{} takes a card on TCP port {}", r.name, r.port);
//! }
//! # Ok::<(), kart_pcscd_harness::HarnessError>(())
//! ```
#![forbid(unsafe_code)]

pub mod runner;

use std::fs;
use std::io;
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Where `pcscd` and `libpcsclite` meet; fixed at build time of pcsc-lite.
pub const SOCKET_DIR: &str = "/run/pcscd";
/// The vpcd driver shipped by Debian's `vsmartcard-vpcd`.
pub const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";
/// Set in the re-executed binary so it knows it is inside the namespace.
const NAMESPACE_ENV: &str = "KART_PCSCD_NAMESPACE";
/// How long `pcscd` may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the harness could not provide a private `pcscd`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// A tool or driver is missing.
    #[error(
        "{0} is not installed: run scripts/setup (as root) to install pcscd and vsmartcard-vpcd"
    )]
    NotInstalled(String),
    /// Not running as root.
    #[error(
        "the PC/SC test harness needs root (mount namespace and pcscd): run the tests as root"
    )]
    NotRoot,
    /// [`Pcscd::start`] was called outside the private namespace.
    #[error("call enter_private_namespace() at the start of main before starting pcscd")]
    NotInNamespace,
    /// Something already answers on the pcscd socket.
    #[error("a pcscd this harness did not start already listens on {SOCKET_DIR}/pcscd.comm; the private namespace is not private")]
    ForeignPcscd,
    /// `pcscd` exited or did not get ready in time.
    #[error("pcscd did not start: {reason}; its log:\n{log}")]
    StartFailed {
        /// What was observed.
        reason: String,
        /// pcscd's own output.
        log: String,
    },
    /// No run of free TCP ports for the vpcd readers.
    #[error("no {0} consecutive free TCP ports for vpcd readers")]
    NoFreePorts(usize),
    /// An operating-system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What the harness was doing.
        what: String,
        /// The underlying error.
        source: io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> HarnessError {
    let what = what.into();
    move |source| HarnessError::Io { what, source }
}

/// Re-executes the current binary in a private mount namespace with a fresh
/// `tmpfs` on [`SOCKET_DIR`], and exits with the child's exit code.
///
/// Returns `Ok(())` only in the re-executed child, inside the namespace.
/// Call it first thing in `main`.
pub fn enter_private_namespace() -> Result<(), HarnessError> {
    if std::env::var_os(NAMESPACE_ENV).is_some() {
        // Inside: give pcscd a socket directory nobody else sees.
        return run(
            Command::new("mount").args([
                "-t",
                "tmpfs",
                "-o",
                "size=1m,mode=0755",
                "kart-pcscd",
                SOCKET_DIR,
            ]),
            "mount a tmpfs on /run/pcscd",
        );
    }
    if !rustix::process::geteuid().is_root() {
        return Err(HarnessError::NotRoot);
    }
    require_tool("unshare")?;
    fs::create_dir_all(SOCKET_DIR).map_err(io_err(format!("create {SOCKET_DIR}")))?;
    let exe = std::env::current_exe().map_err(io_err("find the test binary"))?;
    let status = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(NAMESPACE_ENV, "1")
        .status()
        .map_err(io_err("run unshare"))?;
    std::process::exit(status.code().unwrap_or(101));
}

fn run(cmd: &mut Command, what: &str) -> Result<(), HarnessError> {
    let out = cmd.output().map_err(io_err(what))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HarnessError::Io {
            what: what.to_owned(),
            source: io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        })
    }
}

fn require_tool(name: &str) -> Result<PathBuf, HarnessError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| HarnessError::NotInstalled(name.to_owned()))
}

/// One virtual reader (one vpcd slot) of the private `pcscd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualReader {
    /// The PC/SC reader name, as `SCardListReaders` reports it.
    pub name: String,
    /// The TCP port a virtual card connects to (on localhost).
    pub port: u16,
}

/// A private `pcscd` process with vpcd readers; stopped by PID when dropped.
#[derive(Debug)]
pub struct Pcscd {
    child: Option<Child>,
    program: PathBuf,
    /// Holds `reader.conf.d/` and `pcscd.log` (pcscd reads every file in
    /// its config directory, so the log must live beside it, not in it).
    dir: tempfile::TempDir,
    readers: Vec<VirtualReader>,
    /// vpcd devices written to reader.conf.d.
    devices: usize,
}

impl Pcscd {
    /// Starts `pcscd -f` with `devices` vpcd devices (two readers each) on
    /// free TCP ports and waits until it listens (bounded).
    pub fn start(devices: usize) -> Result<Self, HarnessError> {
        if std::env::var_os(NAMESPACE_ENV).is_none() {
            return Err(HarnessError::NotInNamespace);
        }
        let pcscd = require_tool("pcscd")?;
        if !Path::new(VPCD_DRIVER).is_file() {
            return Err(HarnessError::NotInstalled(format!(
                "the vpcd driver {VPCD_DRIVER}"
            )));
        }
        if UnixStream::connect(socket_path()).is_ok() {
            return Err(HarnessError::ForeignPcscd);
        }
        let dir = tempfile::Builder::new()
            .prefix("kart-pcscd-")
            .tempdir()
            .map_err(io_err("create a temporary directory for pcscd"))?;
        fs::create_dir(dir.path().join("reader.conf.d")).map_err(io_err("create reader.conf.d"))?;
        let mut me = Pcscd {
            child: None,
            program: pcscd,
            dir,
            readers: Vec::new(),
            devices: 0,
        };
        let base = free_ports(devices * 2)?;
        for d in 0..devices {
            me.write_device(base + 2 * d as u16)?;
        }
        me.spawn()?;
        Ok(me)
    }

    /// Writes the reader.conf.d entry of one more vpcd device on `port` and
    /// `port + 1`; returns its two readers.
    fn write_device(&mut self, port: u16) -> Result<Vec<VirtualReader>, HarnessError> {
        let d = self.devices;
        // vpcd keeps its sockets in per-slot globals, so two entries sharing
        // one loaded driver both end up on the last entry's port; a copy of
        // the driver per entry gives each its own.
        let driver = self.dir.path().join(format!("libifdvpcd-{d}.so"));
        fs::copy(VPCD_DRIVER, &driver).map_err(io_err("copy the vpcd driver"))?;
        // pcscd names a reader "<FRIENDLYNAME> <same-name index> <slot>".
        let friendly = format!("kart vpcd {d}");
        let text = format!(
            "FRIENDLYNAME \"{friendly}\"\nDEVICENAME /dev/null:0x{port:04X}\nLIBPATH {}\nCHANNELID 0x{port:04X}\n",
            driver.display()
        );
        fs::write(self.device_conf(d), text).map_err(io_err("write a reader.conf.d entry"))?;
        self.devices += 1;
        let new: Vec<VirtualReader> = (0..2u16)
            .map(|slot| VirtualReader {
                name: format!("{friendly} 00 {slot:02X}"),
                port: port + slot,
            })
            .collect();
        self.readers.extend(new.iter().cloned());
        Ok(new)
    }

    fn device_conf(&self, d: usize) -> PathBuf {
        self.dir.path().join(format!("reader.conf.d/vpcd-{d}"))
    }

    /// The virtual readers, two per device, in order.
    pub fn readers(&self) -> &[VirtualReader] {
        &self.readers
    }

    /// The daemon's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `pcscd`'s log so far (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("pcscd.log")).unwrap_or_default()
    }

    /// Stops the daemon (as a crash or an administrator would) without
    /// forgetting its configuration; [`Pcscd::restart`] brings it back.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM lets pcscd clean its socket; SIGKILL if it does not go.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops and starts the daemon again with the same readers and ports.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop();
        self.spawn()
    }

    fn spawn(&mut self) -> Result<(), HarnessError> {
        // Files a killed daemon may have left in our private tmpfs.
        let _ = fs::remove_file(socket_path());
        let _ = fs::remove_file(Path::new(SOCKET_DIR).join("pcscd.pid"));
        let log_path = self.dir.path().join("pcscd.log");
        let log = fs::File::create(&log_path).map_err(io_err("create pcscd.log"))?;
        let log2 = log.try_clone().map_err(io_err("open pcscd.log"))?;
        let child = Command::new(&self.program)
            .args(["--foreground", "--info", "--config"])
            .arg(self.dir.path().join("reader.conf.d"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(io_err("start pcscd"))?;
        self.child = Some(child);
        self.wait_ready()
    }

    /// Waits until pcscd answers on its socket and every vpcd port listens.
    fn wait_ready(&mut self) -> Result<(), HarnessError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(self.start_failed(format!("pcscd exited with {status}")));
            }
            if UnixStream::connect(socket_path()).is_ok() && self.ports_listening() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(self.start_failed(format!("not ready after {START_TIMEOUT:?}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn start_failed(&self, reason: String) -> HarnessError {
        HarnessError::StartFailed {
            reason,
            log: self.log(),
        }
    }

    fn ports_listening(&self) -> bool {
        let listening = listening_ports();
        self.readers.iter().all(|r| listening.contains(&r.port))
    }
}

impl Drop for Pcscd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn socket_path() -> PathBuf {
    Path::new(SOCKET_DIR).join("pcscd.comm")
}

/// TCP ports in LISTEN state, from /proc/net/tcp and tcp6.
fn listening_ports() -> Vec<u16> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|line| {
                    let mut cols = line.split_whitespace();
                    let local = cols.nth(1)?;
                    let state = cols.nth(1)?;
                    let port = local.rsplit(':').next()?;
                    (state == "0A")
                        .then(|| u16::from_str_radix(port, 16).ok())
                        .flatten()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The first of `n` consecutive free ports, searched from a start that
/// depends on the process id so parallel test binaries rarely collide.
fn free_ports(n: usize) -> Result<u16, HarnessError> {
    const LOW: u32 = 20_000;
    const SPAN: u32 = 30_000;
    let n32 = n as u32;
    let start = (std::process::id() * 16) % SPAN;
    for step in 0..SPAN / 16 {
        let base = LOW + (start + step * 16) % (SPAN - n32);
        let all_free = (0..n32).all(|i| TcpListener::bind(("0.0.0.0", (base + i) as u16)).is_ok());
        if all_free {
            return Ok(base as u16);
        }
    }
    Err(HarnessError::NoFreePorts(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_port_is_reported_listening_and_skipped() {
        let l = TcpListener::bind("0.0.0.0:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(listening_ports().contains(&port));
        drop(l);
        assert!(!listening_ports().contains(&port));
    }

    #[test]
    fn start_outside_the_namespace_says_what_to_do() {
        let err = Pcscd::start(1).unwrap_err();
        assert!(matches!(err, HarnessError::NotInNamespace));
        assert!(err.to_string().contains("enter_private_namespace"));
    }
}

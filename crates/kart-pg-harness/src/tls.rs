//! Test certificates made by the `openssl` command-line tool (independent of
//! the code under test): a CA, and server or client certificates it signs.
//!
//! ```no_run
//! use kart_pg_harness::{PgOptions, PgServer, TestCa};
//! let ca = TestCa::new("floor CA")?;
//! let server = ca.issue("localhost", &["DNS:localhost", "IP:127.0.0.1"])?;
//! let pg = PgServer::start_with(&PgOptions::tls_only(server))?;
//! println!("trust {} to reach {}", ca.cert().display(), pg.url());
//! # Ok::<(), kart_pg_harness::PgError>(())
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{io_err, PgError};

/// How long the test certificates are valid.
const DAYS: &str = "30";
/// `openssl req` arguments for a new unencrypted P-256 key.
const NEW_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];

/// A certificate authority in a temporary directory: `ca.crt` and its key.
#[derive(Debug)]
pub struct TestCa {
    dir: tempfile::TempDir,
}

/// A certificate signed by a [`TestCa`] and its unencrypted key (PEM
/// files, the key mode 0600), in the CA's directory.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

impl TestCa {
    /// Makes a new CA (P-256 key, self-signed, `CA:TRUE`) named `name`.
    pub fn new(name: &str) -> Result<Self, PgError> {
        let dir = tempfile::Builder::new()
            .prefix("kart-pg-ca-")
            .tempdir()
            .map_err(io_err("create a temporary directory for a test CA"))?;
        let me = Self { dir };
        me.openssl(
            &[
                &["req", "-x509"][..],
                &NEW_KEY,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-days",
                    DAYS,
                    "-subj",
                    &format!("/CN={name}"),
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ]
            .concat(),
            "make a test CA",
        )?;
        Ok(me)
    }

    /// The CA certificate (PEM), the file a client trusts.
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// Issues a certificate with common name `cn` and the subject
    /// alternative names `sans` (`DNS:localhost`, `IP:127.0.0.1`), usable by
    /// a TLS server and client. Files `CN.crt` and `CN.key`.
    pub fn issue(&self, cn: &str, sans: &[&str]) -> Result<Issued, PgError> {
        let stem: String = cn
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let key = format!("{stem}.key");
        let csr = format!("{stem}.csr");
        let crt = format!("{stem}.crt");
        let ext = format!("{stem}.ext");
        let mut extensions =
            String::from("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n");
        if !sans.is_empty() {
            extensions.push_str("subjectAltName=");
            extensions.push_str(&sans.join(","));
            extensions.push('\n');
        }
        fs::write(self.dir.path().join(&ext), extensions)
            .map_err(io_err("write a certificate's extensions"))?;
        self.openssl(
            &[
                &["req"][..],
                &NEW_KEY,
                &["-keyout", &key, "-out", &csr, "-subj", &format!("/CN={cn}")],
            ]
            .concat(),
            "make a certificate request",
        )?;
        self.openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                DAYS,
                "-extfile",
                &ext,
                "-out",
                &crt,
            ],
            "sign a certificate",
        )?;
        let key = self.dir.path().join(key);
        set_mode(&key, 0o600)?;
        Ok(Issued {
            cert: self.dir.path().join(crt),
            key,
        })
    }

    fn openssl(&self, args: &[&str], what: &str) -> Result<(), PgError> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => PgError::NotInstalled("openssl".into()),
                _ => PgError::Io {
                    what: format!("run openssl to {what}"),
                    source: e,
                },
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(PgError::Tool {
                what: format!("openssl ({what})"),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                log: String::new(),
            })
        }
    }
}

pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<(), PgError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(io_err(format!("chmod {mode:o} {}", path.display())))
}

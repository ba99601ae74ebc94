//! TLS to the shared journal, with libpq's options and their meaning
//! (libpq "SSL Support"): `sslmode` = `disable` | `prefer` (the default) |
//! `require` | `verify-ca` | `verify-full`, `sslrootcert` (the CA to trust,
//! or `system`), `sslcert` and `sslkey` (a client certificate), each taken
//! from the URL or else from `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`,
//! `PGSSLKEY`; without them the files in `~/.postgresql/` are used when
//! they exist (`root.crt`, `postgresql.crt`, `postgresql.key`).
//!
//! - `prefer` and `require` encrypt without checking who answers, unless a
//!   root certificate is there: then the server's chain is checked against
//!   it (libpq's rule: `require` with a root certificate is `verify-ca`).
//! - `verify-ca` checks the chain, `verify-full` also that the certificate
//!   names the URL's host (DNS name or IP address, as written in the URL).
//! - Only the given CA is trusted, never the system's store (unless
//!   `sslrootcert=system`, which like libpq 16 needs `verify-full`).
//!
//! Stricter than libpq: a certificate or key file named explicitly that does
//! not exist is an error, not skipped; options kart does not implement
//! (`sslpassword`, `sslcrl`, …) are refused rather than ignored; an
//! encrypted client key is refused (no pass-phrase prompt that could hang).
//!
//! The connector is [`postgres_openssl`]'s: the `postgres` crate's author's,
//! over the system OpenSSL that libpq and `psql` use too.

use std::cell::Cell;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use openssl::pkey::PKey;
use openssl::ssl::{SslConnector, SslConnectorBuilder, SslMethod, SslVerifyMode};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;
use postgres::config::{Host, SslMode as WireMode};
use postgres::error::SqlState;
use postgres::Client;
use postgres_openssl::MakeTlsConnector;
use zeroize::Zeroizing;

use super::super::location::PgUrl;
use super::super::JournalError;

/// libpq's `sslmode`, all five that kart supports (`allow` is not).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// No TLS.
    Disable,
    /// TLS if the server offers it.
    #[default]
    Prefer,
    /// TLS or no connection.
    Require,
    /// TLS with the server's chain checked against the root certificate.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the URL's host.
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Result<Self, JournalError> {
        match text {
            "disable" => Ok(Self::Disable),
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "verify-ca" => Ok(Self::VerifyCa),
            "verify-full" => Ok(Self::VerifyFull),
            "allow" => Err(JournalError::BadArgument(
                "sslmode=allow is not supported by kart; use prefer, require, verify-ca or verify-full".into(),
            )),
            other => Err(JournalError::BadArgument(format!(
                "sslmode={other:?} is not one of disable, prefer, require, verify-ca, verify-full"
            ))),
        }
    }

    fn verifies_chain(self) -> bool {
        matches!(self, Self::VerifyCa | Self::VerifyFull)
    }
}

/// Where the CA to trust comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum RootCert {
    /// A PEM file of one or more CA certificates.
    File(PathBuf),
    /// The system's trust store (`sslrootcert=system`).
    System,
}

/// The TLS options of one journal URL (and of the environment).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TlsOptions {
    mode: SslMode,
    /// Named by the URL or `PGSSLROOTCERT`; else `~/.postgresql/root.crt` if it exists.
    root_cert: Option<RootCert>,
    /// Named by the URL or `PGSSLCERT`; else `~/.postgresql/postgresql.crt` if it exists.
    cert: Option<PathBuf>,
    /// Named by the URL or `PGSSLKEY`; else `~/.postgresql/postgresql.key`.
    key: Option<PathBuf>,
}

/// libpq options kart refuses rather than ignores.
const UNSUPPORTED: &[&str] = &[
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "sslcompression",
    "sslcertmode",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "requirepeer",
    "gssencmode",
];

impl TlsOptions {
    /// Takes the TLS options out of a `postgres://` URL's query (the
    /// `postgres` crate's parser knows only three `sslmode`s and none of the
    /// files) and returns them with the URL that is left for that parser;
    /// `env` reads an environment variable (`PGSSLMODE`, …) for an option
    /// the URL does not give.
    pub(crate) fn split(
        url: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(Self, String), JournalError> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut mode = None;
        let mut root_cert = None;
        let mut cert = None;
        let mut key = None;
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(name)?;
            match name.as_str() {
                "sslmode" => mode = Some(percent_decode(value)?),
                "sslrootcert" => root_cert = Some(percent_decode(value)?),
                "sslcert" => cert = Some(percent_decode(value)?),
                "sslkey" => key = Some(percent_decode(value)?),
                name if UNSUPPORTED.contains(&name) => {
                    // The value is not echoed: `sslpassword` is a secret.
                    return Err(JournalError::BadArgument(format!(
                        "the journal URL option {name} is not supported by kart; remove it"
                    )));
                }
                _ => rest.push(pair),
            }
        }
        let pick = |given: Option<String>, var: &str| given.or_else(|| env(var));
        let mode = pick(mode, "PGSSLMODE")
            .map(|text| SslMode::parse(&text))
            .transpose()?
            .unwrap_or_default();
        let root_cert = pick(root_cert, "PGSSLROOTCERT")
            .filter(|text| !text.is_empty())
            .map(|text| {
                if text == "system" {
                    RootCert::System
                } else {
                    RootCert::File(PathBuf::from(text))
                }
            });
        if root_cert == Some(RootCert::System) && mode != SslMode::VerifyFull {
            return Err(JournalError::BadArgument(
                "sslrootcert=system trusts every public CA, so it needs sslmode=verify-full (as in libpq)".into(),
            ));
        }
        let file = |given: Option<String>, var: &str| {
            pick(given, var)
                .filter(|text| !text.is_empty())
                .map(PathBuf::from)
        };
        let options = Self {
            mode,
            root_cert,
            cert: file(cert, "PGSSLCERT"),
            key: file(key, "PGSSLKEY"),
        };
        let left = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        Ok((options, left))
    }

    /// The mode as the `postgres` crate knows it: the two verifying modes
    /// are `require` there, with the checks in the connector.
    pub(crate) fn wire_mode(&self) -> WireMode {
        match self.mode {
            SslMode::Disable => WireMode::Disable,
            SslMode::Prefer => WireMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => WireMode::Require,
        }
    }
}

/// The TLS connector for `url`'s options: hand it to
/// `postgres::Config::connect`, or to a connection pool's manager with
/// [`PgUrl::config`]. Reads the certificate and key files now, so a missing
/// or bad file is reported before any connection is tried.
pub(crate) fn connector(url: &PgUrl) -> Result<MakeTlsConnector, JournalError> {
    let tls = url.tls();
    let openssl = |what: String| move |e: openssl::error::ErrorStack| setup(format!("{what}: {e}"));
    let mut builder = SslConnector::builder(SslMethod::tls_client())
        .map_err(openssl("cannot make an OpenSSL context".into()))?;
    // libpq 17 sends this too; it is needed for sslnegotiation=direct.
    postgres_openssl::set_postgresql_alpn(&mut builder)
        .map_err(openssl("cannot set the ALPN protocol".into()))?;
    let home = std::env::var_os("HOME").map(|home| Path::new(&home).join(".postgresql"));
    let default_file = |name: &str| {
        home.as_ref()
            .map(|dir| dir.join(name))
            .filter(|path| path.is_file())
    };
    let root = match &tls.root_cert {
        Some(root) => Some(root.clone()),
        None => default_file("root.crt").map(RootCert::File),
    };
    match &root {
        // `SslConnector::builder` trusts the system store: only the named
        // CA may be trusted, so the store is replaced.
        Some(RootCert::File(path)) => trust_only(&mut builder, path)?,
        Some(RootCert::System) => {}
        None if tls.mode.verifies_chain() => {
            return Err(setup(format!(
                "sslmode={} checks the server's certificate, but no root certificate is given: set sslrootcert=CA-FILE (or PGSSLROOTCERT), or put the CA in ~/.postgresql/root.crt",
                if tls.mode == SslMode::VerifyCa { "verify-ca" } else { "verify-full" }
            )));
        }
        None => builder.set_verify(SslVerifyMode::NONE),
    }
    client_certificate(&mut builder, tls, default_file("postgresql.crt"), home)?;
    let mut connector = MakeTlsConnector::new(builder.build());
    let full = tls.mode == SslMode::VerifyFull;
    connector.set_callback(move |config, _host| {
        config.set_verify_hostname(full);
        Ok(())
    });
    Ok(connector)
}

/// A TLS setup error (`reason` names files, never a key's content).
fn setup(reason: String) -> JournalError {
    JournalError::TlsSetup { reason }
}

/// Makes the CAs in `path` (PEM) the only ones trusted.
fn trust_only(builder: &mut SslConnectorBuilder, path: &Path) -> Result<(), JournalError> {
    let pem = fs::read(path).map_err(|e| {
        setup(format!(
            "cannot read the root certificate file {} (sslrootcert): {e}",
            path.display()
        ))
    })?;
    let cas = X509::stack_from_pem(&pem).map_err(|e| {
        setup(format!(
            "the root certificate file {} (sslrootcert) is not PEM certificates: {e}",
            path.display()
        ))
    })?;
    if cas.is_empty() {
        return Err(setup(format!(
            "the root certificate file {} (sslrootcert) holds no certificate",
            path.display()
        )));
    }
    let mut store = X509StoreBuilder::new()
        .map_err(|e| setup(format!("cannot make a certificate store: {e}")))?;
    for ca in cas {
        store.add_cert(ca).map_err(|e| {
            setup(format!(
                "cannot trust a certificate of {} (sslrootcert): {e}",
                path.display()
            ))
        })?;
    }
    builder.set_cert_store(store.build());
    builder.set_verify(SslVerifyMode::PEER);
    Ok(())
}

/// Loads the client certificate and key, if one is named or in `~/.postgresql`.
fn client_certificate(
    builder: &mut SslConnectorBuilder,
    tls: &TlsOptions,
    default_cert: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Result<(), JournalError> {
    let Some(cert) = tls.cert.clone().or(default_cert) else {
        if let Some(key) = &tls.key {
            return Err(setup(format!(
                "sslkey={} names a client key but no client certificate is given (sslcert)",
                key.display()
            )));
        }
        return Ok(());
    };
    builder.set_certificate_chain_file(&cert).map_err(|e| {
        setup(format!(
            "cannot load the client certificate {} (sslcert): {e}",
            cert.display()
        ))
    })?;
    let Some(key) = tls
        .key
        .clone()
        .or_else(|| home.map(|dir| dir.join("postgresql.key")))
    else {
        return Err(setup(
            "a client certificate is given but no key: set sslkey=KEY-FILE".into(),
        ));
    };
    let key_pem = read_key(&key)?;
    let asked = Cell::new(false);
    // A pass-phrase callback that never prompts: an encrypted key is refused.
    let pkey = PKey::private_key_from_pem_callback(&key_pem, |_| {
        asked.set(true);
        Ok(0)
    })
    .map_err(|e| {
        if asked.get() {
            setup(format!(
                "the client key {} (sslkey) is encrypted; kart does not support sslpassword: use a key file without a pass phrase, readable only by its owner",
                key.display()
            ))
        } else {
            setup(format!(
                "the client key {} (sslkey) is not a PEM private key: {e}",
                key.display()
            ))
        }
    })?;
    builder.set_private_key(&pkey).map_err(|e| {
        setup(format!(
            "cannot use the client key {} (sslkey): {e}",
            key.display()
        ))
    })?;
    builder.check_private_key().map_err(|_| {
        setup(format!(
            "the client key {} (sslkey) does not belong to the certificate {} (sslcert)",
            key.display(),
            cert.display()
        ))
    })
}

/// Reads a client key file, refusing one that others can read (libpq's rule:
/// at most 0600, or 0640 when owned by root).
fn read_key(path: &Path) -> Result<Zeroizing<Vec<u8>>, JournalError> {
    let unreadable = |e: std::io::Error| {
        setup(format!(
            "cannot read the client key {} (sslkey): {e}",
            path.display()
        ))
    };
    let mut file = fs::File::open(path).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    let allowed = if meta.uid() == 0 { 0o640 } else { 0o600 };
    if meta.mode() & 0o777 & !allowed != 0 {
        return Err(setup(format!(
            "the client key {} (sslkey) has mode {:o}: others can read it; chmod 600 it",
            path.display(),
            meta.mode() & 0o777
        )));
    }
    let mut key = Zeroizing::new(Vec::new());
    file.read_to_end(&mut key).map_err(unreadable)?;
    Ok(key)
}

impl PgUrl {
    /// Opens one connection, with TLS as the URL's options say.
    pub(crate) fn connect(&self) -> Result<Client, JournalError> {
        let connector = connector(self)?;
        self.config()
            .connect(connector)
            .map_err(|e| classify(&e, self).unwrap_or_else(|| JournalError::from(e)))
    }
}

/// The TLS errors among connection errors, typed (`None` for the others).
/// Pools opening connections with [`connector`] map theirs with it too.
pub(crate) fn classify(error: &postgres::Error, url: &PgUrl) -> Option<JournalError> {
    if let Some(db) = error.as_db_error() {
        // A `hostssl`-only pg_hba.conf answers a plain connection so.
        return (*db.code() == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            && db.message().ends_with("no encryption"))
        .then(|| JournalError::TlsRequired {
            reason: db.message().to_owned(),
        });
    }
    let host = match url.config().get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let cause = std::error::Error::source(error)?;
    // The `postgres` crate's own words when the server answers 'N' to
    // the TLS request under `require` (its error kind is not public).
    if cause.to_string() == "server does not support TLS" {
        return Some(JournalError::TlsNotOffered { host });
    }
    let mut source = Some(cause);
    while let Some(e) = source {
        if e.is::<openssl::ssl::Error>() || e.is::<openssl::error::ErrorStack>() {
            // OpenSSL's "error:0A000086:SSL routines:…:certificate verify
            // failed:FILE:LINE:: WHY": keep the words that say why.
            let text = cause.to_string();
            let reason = match text.rsplit_once(": ") {
                Some((head, why)) if head.contains("certificate verify failed") => {
                    format!("certificate verify failed: {why}")
                }
                _ => text,
            };
            return Some(JournalError::TlsHandshake { host, reason });
        }
        source = e.source();
    }
    None
}

/// Decodes `%XX` escapes, as the `postgres` crate does for URL values.
fn percent_decode(text: &str) -> Result<String, JournalError> {
    let bad = || {
        JournalError::BadArgument(
            "the journal URL has a bad %-escape in its options (a % must start two hex digits of UTF-8)"
                .into(),
        )
    };
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or_else(bad)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> Result<(TlsOptions, String), JournalError> {
        TlsOptions::split(url, |_| None)
    }

    #[test]
    fn the_tls_options_are_taken_out_and_the_rest_is_left() {
        let (tls, rest) = split(
            "postgres://kart@db:5432/kart?connect_timeout=5&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://kart@db:5432/kart?connect_timeout=5&application_name=x"
        );
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.root_cert, Some(RootCert::File("/etc/ca.pem".into())));
        assert_eq!(tls.wire_mode(), WireMode::Require);
        let (tls, rest) = split("postgres://kart@db/kart").unwrap();
        assert_eq!(
            (tls, rest.as_str()),
            (TlsOptions::default(), "postgres://kart@db/kart")
        );
    }

    #[test]
    fn every_libpq_mode_maps_and_others_are_refused() {
        for (text, wire) in [
            ("disable", WireMode::Disable),
            ("prefer", WireMode::Prefer),
            ("require", WireMode::Require),
            ("verify-ca", WireMode::Require),
        ] {
            let (tls, _) = split(&format!("postgres://kart@db/kart?sslmode={text}")).unwrap();
            assert_eq!(tls.wire_mode(), wire, "{text}");
        }
        for bad in ["verify_full", "allow", "REQUIRE", ""] {
            let error = split(&format!("postgres://kart@db/kart?sslmode={bad}")).unwrap_err();
            assert!(
                matches!(error, JournalError::BadArgument(_)),
                "{bad}: {error}"
            );
            assert!(error.to_string().contains("sslmode"), "{error}");
        }
    }

    #[test]
    fn the_environment_fills_in_what_the_url_does_not_say() {
        let env = |name: &str| match name {
            "PGSSLMODE" => Some("verify-ca".to_owned()),
            "PGSSLROOTCERT" => Some("/env/ca.pem".to_owned()),
            _ => None,
        };
        let (tls, _) = TlsOptions::split("postgres://kart@db/kart", env).unwrap();
        assert_eq!(tls.mode, SslMode::VerifyCa);
        assert_eq!(tls.root_cert, Some(RootCert::File("/env/ca.pem".into())));
        let (tls, _) = TlsOptions::split(
            "postgres://kart@db/kart?sslmode=require&sslrootcert=/u.pem",
            env,
        )
        .unwrap();
        assert_eq!(tls.mode, SslMode::Require);
        assert_eq!(tls.root_cert, Some(RootCert::File("/u.pem".into())));
        let bad = |name: &str| (name == "PGSSLMODE").then(|| "sometimes".to_owned());
        assert!(TlsOptions::split("postgres://kart@db/kart", bad).is_err());
    }

    #[test]
    fn unsupported_options_are_refused_without_echoing_their_value() {
        for url in [
            "postgres://kart@db/kart?sslpassword=hunter2",
            "postgres://kart@db/kart?sslcrl=hunter2",
            "postgres://kart@db/kart?sslrootcert=system&sslmode=require",
            "postgres://kart@db/kart?sslrootcert=%zz",
        ] {
            let error = split(url).unwrap_err().to_string();
            assert!(!error.contains("hunter2"), "{error}");
            assert!(!error.is_empty());
        }
        let (tls, _) =
            split("postgres://kart@db/kart?sslrootcert=system&sslmode=verify-full").unwrap();
        assert_eq!(tls.root_cert, Some(RootCert::System));
    }

    #[test]
    fn percent_escapes_decode_to_utf8() {
        assert_eq!(percent_decode("a%20b%C3%A9").unwrap(), "a b\u{e9}");
        assert!(percent_decode("%4").is_err());
        assert!(percent_decode("%ff").is_err());
    }
}

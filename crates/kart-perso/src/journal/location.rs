//! Where a journal lives: an `SQLite` file, or a `PostgreSQL` database named
//! by a `postgres://USER@HOST:PORT/DB` URL. The password never comes from
//! the URL (it would show in `ps`, shell history and logs): it is read from
//! `PGPASSWORD` or a password file (`PGPASSFILE`, else `~/.pgpass`), as
//! libpq does. The TLS options (`sslmode`, `sslrootcert`, `sslcert`,
//! `sslkey`) keep libpq's meaning; see `postgres/tls.rs`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use postgres::config::Host;

use super::postgres::tls::TlsOptions;
use super::JournalError;

/// Where a journal lives.
///
/// ```
/// use kart_perso::journal::JournalLocation;
/// let shared: JournalLocation = "postgres://kart@db.bureau:5432/kart".parse()?;
/// assert!(shared.is_shared());
/// let local: JournalLocation = "station/journal.db".parse()?;
/// assert_eq!(local.to_string(), "station/journal.db");
/// assert!("postgres://kart:secret@db/kart".parse::<JournalLocation>().is_err());
/// # Ok::<(), kart_perso::journal::JournalError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
// A handful per process: boxing the parsed URL would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum JournalLocation {
    /// One station's `SQLite` file.
    Sqlite(PathBuf),
    /// A `PostgreSQL` database shared by the stations of a floor.
    Postgres(PgUrl),
}

impl JournalLocation {
    /// An `SQLite` journal at `path`.
    pub fn sqlite(path: impl AsRef<Path>) -> Self {
        Self::Sqlite(path.as_ref().to_owned())
    }

    /// Whether this is a shared (`PostgreSQL`) journal.
    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }
}

impl FromStr for JournalLocation {
    type Err = JournalError;

    /// `postgres://…` or `postgresql://…` is `PostgreSQL`; anything else is a path.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Ok(Self::Postgres(text.parse()?))
        } else if text.trim().is_empty() {
            Err(JournalError::BadArgument(
                "the journal location is empty".into(),
            ))
        } else {
            Ok(Self::Sqlite(PathBuf::from(text)))
        }
    }
}

impl fmt::Display for JournalLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => url.fmt(f),
        }
    }
}

/// A `PostgreSQL` URL without a password (one in it is refused), with the
/// connection options it names (`sslmode`, `connect_timeout`, …) kept.
///
/// ```
/// use kart_perso::journal::JournalLocation;
/// let url = "postgres://kart@db.bureau/kart?sslmode=verify-full&sslrootcert=/etc/kart/ca.pem";
/// assert!(url.parse::<JournalLocation>().is_ok());
/// assert!("postgres://kart@db/kart?sslmode=sometimes".parse::<JournalLocation>().is_err());
/// # Ok::<(), kart_perso::journal::JournalError>(())
/// ```
#[derive(Clone)]
pub struct PgUrl {
    text: String,
    config: postgres::Config,
    tls: TlsOptions,
}

impl FromStr for PgUrl {
    type Err = JournalError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| JournalError::BadArgument(reason);
        // The postgres crate knows only three sslmodes and no certificate
        // file: the TLS options are parsed apart.
        let (tls, rest) = TlsOptions::split(text, |name| std::env::var(name).ok())?;
        let mut config = postgres::Config::from_str(&rest).map_err(|e| {
            // The parser's message may quote the URL; say only what is wrong.
            bad(format!(
                "the journal URL does not parse as a PostgreSQL URL ({})",
                first_words(&e.to_string())
            ))
        })?;
        if config.get_password().is_some() {
            return Err(bad(
                "the journal URL holds a password; remove it and set PGPASSWORD or a PGPASSFILE entry instead"
                    .into(),
            ));
        }
        if config.get_user().is_none() {
            return Err(bad(
                "the journal URL names no user: postgres://USER@HOST:PORT/DB".into(),
            ));
        }
        config.ssl_mode(tls.wire_mode());
        Ok(Self {
            text: text.to_owned(),
            config,
            tls,
        })
    }
}

impl PartialEq for PgUrl {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for PgUrl {}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Safe to show: a URL with a password is refused on parsing.
        f.write_str(&self.text)
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({})", self.text)
    }
}

impl PgUrl {
    /// The connection settings, with the password from the environment.
    pub(crate) fn config(&self) -> postgres::Config {
        let mut config = self.config.clone();
        if let Some(password) = self.password() {
            config.password(password);
        }
        config
    }

    /// The TLS options, from the URL and the environment.
    pub(crate) fn tls(&self) -> &TlsOptions {
        &self.tls
    }

    fn password(&self) -> Option<String> {
        if let Ok(password) = std::env::var("PGPASSWORD") {
            return Some(password);
        }
        let file = std::env::var_os("PGPASSFILE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".pgpass")))?;
        let text = std::fs::read_to_string(file).ok()?;
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(name)) => name.clone(),
            _ => "localhost".to_owned(),
        };
        let port = self
            .config
            .get_ports()
            .first()
            .copied()
            .unwrap_or(5432)
            .to_string();
        let user = self.config.get_user().unwrap_or_default();
        let db = self.config.get_dbname().unwrap_or(user);
        let wanted = [host.as_str(), port.as_str(), db, user];
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| {
                let fields = pgpass_fields(line);
                let [h, p, d, u, password] = fields.as_slice() else {
                    return None;
                };
                let matches = [h, p, d, u]
                    .iter()
                    .zip(wanted)
                    .all(|(field, want)| field.as_str() == "*" || field.as_str() == want);
                matches.then(|| password.clone())
            })
    }
}

/// The fields of one `.pgpass` line: `:` separates, `\` escapes.
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(field)) = (chars.next(), fields.last_mut()) {
                    field.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(field) = fields.last_mut() {
                    field.push(c);
                }
            }
        }
    }
    fields
}

fn first_words(message: &str) -> String {
    message
        .split(':')
        .next()
        .unwrap_or(message)
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_with_a_password_is_refused_without_echoing_it() {
        for url in [
            "postgres://kart:hunter2@db:5432/kart",
            "postgresql://kart@db/kart?password=hunter2",
        ] {
            let error = url.parse::<JournalLocation>().unwrap_err().to_string();
            assert!(error.contains("PGPASSWORD"), "{error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn paths_and_urls_are_told_apart() {
        assert_eq!(
            "journal.db".parse::<JournalLocation>().unwrap(),
            JournalLocation::sqlite("journal.db")
        );
        let url = "postgresql://kart@127.0.0.1:5499/kart?sslmode=disable";
        let shared = url.parse::<JournalLocation>().unwrap();
        assert!(shared.is_shared());
        assert_eq!(shared.to_string(), url);
        assert!("postgres://db/kart".parse::<JournalLocation>().is_err());
    }

    #[test]
    fn pgpass_lines_split_on_unescaped_colons() {
        assert_eq!(
            pgpass_fields(r"db:5432:*:kart:pa\:ss:word"),
            ["db", "5432", "*", "kart", "pa:ss:word"]
        );
    }
}

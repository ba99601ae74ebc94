//! Why a specification file could not be loaded.

use std::path::PathBuf;
use thiserror::Error;

/// A failure to load or validate `applets-spec/`.
///
/// Every variant names the file; validation errors also name the field.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file that was being read.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for its schema (wrong type, unknown value,
    /// missing field); `message` carries the line and column.
    #[error("{file}: {message}")]
    Parse {
        /// The file, relative to the spec directory.
        file: String,
        /// The parser's message, with the position of the problem.
        message: String,
    },
    /// A file of the spec directory is not a regular file, is too large or
    /// cannot be read.
    #[error("{0}")]
    Read(crate::input::ReadError),
    /// The file parses but contradicts itself or the rest of the spec.
    #[error("{file}: field `{field}`: {problem}")]
    Invalid {
        /// The file, relative to the spec directory.
        file: String,
        /// The field, as a path such as `files[2].fid`.
        field: String,
        /// What is wrong, and what would be right.
        problem: String,
    },
}

impl SpecError {
    /// What the operator should do about it, when the message alone does
    /// not say.
    ///
    /// ```
    /// let e = kart_spec::Spec::load(std::path::Path::new("/nonexistent")).unwrap_err();
    /// assert!(e.hint().is_some_and(|h| h.contains("applets-spec/")));
    /// ```
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            SpecError::Io { .. } | SpecError::Read(_) => {
                Some("check the path points at an applets-spec/ directory")
            }
            SpecError::Parse { .. } | SpecError::Invalid { .. } => None,
        }
    }

    /// A TOML error as one line: the parser's message (input it quotes is
    /// cut, see [`quote`](crate::input::quote)) and the line and column —
    /// never the offending source line, which may be megabytes long.
    pub(crate) fn parse(file: &str, text: &str, e: &toml::de::Error) -> Self {
        let mut message = crate::input::quote(&e.message().lines().collect::<Vec<_>>().join(" "));
        if let Some(span) = e.span() {
            message = format!("{}: {message}", crate::input::position(text, span.start));
        }
        SpecError::Parse {
            file: file.to_owned(),
            message,
        }
    }

    pub(crate) fn invalid(
        file: &str,
        field: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        SpecError::Invalid {
            file: file.to_owned(),
            field: field.into(),
            problem: problem.into(),
        }
    }
}

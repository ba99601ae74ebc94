//! Errors of the issuer PKI.

use std::path::PathBuf;

use kart_spec::input::quote;

/// What went wrong while loading, issuing or validating certificates and keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// An encrypted PKCS#8 key file could not be opened.
    #[error("private key {path}: {reason}")]
    EncryptedKey {
        /// The key file.
        path: PathBuf,
        /// Why (never the passphrase).
        reason: String,
    },
    /// A key in a PKCS#11 token could not be used.
    #[error(transparent)]
    Pkcs11(#[from] super::pkcs11::Pkcs11Error),
    /// A file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// Input is not the PEM or DER structure it should be.
    #[error("{what} is malformed: {reason}")]
    Malformed {
        /// What was being read ("certificate", "private key", ...).
        what: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// `ring` refused the private key.
    #[error("private key rejected ({0}); expected an unencrypted PKCS#8 ECDSA P-256/P-384 or RSA (2048-8192 bit) key")]
    KeyRejected(String),
    /// The certificate's notAfter is before the validation time.
    #[error("certificate '{}' expired at {not_after}; renew it", quote(.subject))]
    Expired {
        /// Subject of the expired certificate.
        subject: String,
        /// Its notAfter.
        not_after: String,
    },
    /// The certificate's notBefore is after the validation time.
    #[error("certificate '{}' is not valid before {not_before}; check the clock", quote(.subject))]
    NotYetValid {
        /// Subject of the certificate.
        subject: String,
        /// Its notBefore.
        not_before: String,
    },
    /// The certificate names another issuer than the next one in the chain.
    #[error("certificate '{}' was issued by '{}', not by '{}'", quote(.subject), quote(.issuer), quote(.expected))]
    WrongIssuer {
        /// Subject of the certificate.
        subject: String,
        /// Its issuer field.
        issuer: String,
        /// The subject of the certificate it was expected to chain to.
        expected: String,
    },
    /// The signature on a certificate does not verify with the issuer's key.
    #[error("signature on certificate '{}' does not verify with the key of '{}'", quote(.subject), quote(.issuer))]
    BadSignature {
        /// Subject of the certificate.
        subject: String,
        /// Subject of the issuer certificate whose key was used.
        issuer: String,
    },
    /// A certificate that issues others lacks basicConstraints cA=TRUE.
    #[error("certificate '{}' is not a CA (basicConstraints cA not set) and cannot issue certificates", quote(.subject))]
    NotCa {
        /// Subject of the certificate.
        subject: String,
    },
    /// The card's answer to a challenge does not verify with its holder certificate.
    #[error("the card's signature does not verify with holder certificate '{}': the card does not hold that key", quote(.subject))]
    CardSignatureInvalid {
        /// Subject of the holder certificate.
        subject: String,
    },
    /// A CA's pathLenConstraint is smaller than the chain below it.
    #[error("certificate '{}' allows {allowed} intermediate CA(s) below it, the chain has {found}", quote(.subject))]
    PathLengthExceeded {
        /// Subject of the CA.
        subject: String,
        /// Its pathLenConstraint.
        allowed: u32,
        /// Intermediate CAs below it.
        found: u32,
    },
    /// The key usage extension does not allow what the certificate is used for.
    #[error("certificate '{}' lacks key usage {usage}", quote(.subject))]
    MissingKeyUsage {
        /// Subject of the certificate.
        subject: String,
        /// The missing usage.
        usage: &'static str,
    },
    /// An algorithm (signature, key or curve) that kart does not support.
    #[error("unsupported algorithm {0}; kart supports ECDSA P-256/P-384 with SHA-256/384 and RSA PKCS#1 v1.5 with SHA-256/384/512")]
    UnsupportedAlgorithm(String),
    /// The public key read from a card is not an EC P-256 point or an RSA
    /// key of 2048 to 4096 bits.
    #[error("holder public key rejected: {0}")]
    BadHolderKey(String),
    /// A holder attribute (CRN, national code) is not acceptable.
    #[error("holder {field} '{}' is invalid: {reason}", quote(.value))]
    BadHolder {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// The issuer certificate is no longer valid, so nothing can be issued under it.
    #[error("issuer certificate '{}' expires at {not_after}, before the new certificate would start; renew the issuer", quote(.subject))]
    IssuerExpired {
        /// Subject of the issuer certificate.
        subject: String,
        /// Its notAfter.
        not_after: String,
    },
    /// Certificate generation in `rcgen` failed.
    #[error("cannot generate certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The secure-channel master keys file is invalid.
    #[error("master keys file: {0}")]
    MasterKeys(String),
    /// A file of the issuer is wrong: `source` says what.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: Box<PkiError>,
    },
    /// A file is not a regular file, is too large or cannot be read.
    #[error(transparent)]
    Read(#[from] kart_spec::input::ReadError),
    /// A private key belongs to another certificate than its own.
    #[error("{} does not belong to the certificate {} (they are of different key pairs)", key.display(), certificate.display())]
    KeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        certificate: PathBuf,
    },
    /// A private key file may be read by other users.
    #[error("{} has mode {mode:o}, so other users may read it, and it holds a private key", path.display())]
    KeyFileMode {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The system random generator failed.
    #[error("system random number generator failed")]
    Random,
}

impl PkiError {
    /// What the operator should do about it, when there is something to do.
    ///
    /// ```
    /// use kart_perso::pki::PkiError;
    /// let e = PkiError::KeyRejected("not PKCS#8".into());
    /// assert!(!e.to_string().contains("openssl"));
    /// assert_eq!(e.hint(), Some("convert with `openssl pkcs8 -topk8 -nocrypt`"));
    /// ```
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        use super::pkcs11::Pkcs11Error as P;
        match self {
            Self::Pkcs11(p) => Some(match p {
                P::PinIncorrect { .. } => "check KART_HSM_PIN or the PIN file; kart tried once and will not retry (the token locks after a few wrong PINs)",
                P::PinLocked { .. } => "the token's security officer must unlock the user PIN",
                P::NoPin { .. } => "set KART_HSM_PIN, name a pin_file in issuer.toml, or run on a terminal",
                P::TokenAbsent { .. } | P::TokenRemoved { .. } => "insert or reconnect the token (softhsm2-util --show-slots / pkcs11-tool -L lists tokens)",
                P::ObjectMissing { .. } | P::WrongKeyType { .. } => "check the object names in issuer.toml against `pkcs11-tool -O` (see `kart issuer show`)",
                _ => "check the PKCS#11 module path and the token",
            }),
            Self::KeyRejected(_) => Some("convert with `openssl pkcs8 -topk8 -nocrypt`"),
            Self::KeyMismatch { .. } => Some("put each issuer key with its own certificate"),
            Self::KeyFileMode { .. } => Some("`chmod 600` it"),
            Self::InFile { source, .. } => match **source {
                Self::BadSignature { .. } | Self::WrongIssuer { .. } => Some(
                    "it was not issued by this issuer's root: keep one issuer's root, card CA and document signer together",
                ),
                Self::NotCa { .. }
                | Self::MissingKeyUsage { .. }
                | Self::PathLengthExceeded { .. } => Some(
                    "reissue the certificate with the extensions of its role (see examples/issuer/README.md)",
                ),
                ref e => e.hint(),
            },
            _ => None,
        }
    }

    /// `e` about the file `path` (unless `e` already names it or another file).
    pub(crate) fn in_file(path: &std::path::Path, e: Self) -> Self {
        match e {
            e @ (Self::Io { .. }
            | Self::Read(_)
            | Self::InFile { .. }
            | Self::KeyMismatch { .. }
            | Self::KeyFileMode { .. }) => e,
            e if e.to_string().contains(&path.display().to_string()) => e,
            e => Self::InFile {
                path: path.to_owned(),
                source: Box::new(e),
            },
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn malformed(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Malformed {
            what,
            reason: reason.to_string(),
        }
    }
}

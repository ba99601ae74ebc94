//! X.509 certificates as DER bytes, parsed on demand with `x509-parser`.

use std::path::Path;

use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use super::key::{first_pem, looks_like_pem};
use super::PkiError;

/// Largest certificate file read.
pub const MAX_CERTIFICATE_FILE_BYTES: u64 = 64 * 1024;

/// A DER-encoded X.509 certificate that is known to parse strictly
/// (no trailing bytes).
///
/// ```
/// use kart_perso::pki::Certificate;
/// assert!(Certificate::from_pem_or_der(b"not a certificate").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    subject: String,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("der_len", &self.der.len())
            .finish()
    }
}

impl Certificate {
    /// Accept DER bytes of one certificate.
    pub fn from_der(der: Vec<u8>) -> Result<Self, PkiError> {
        let subject = parse(&der)?.subject().to_string();
        Ok(Self { der, subject })
    }

    /// Accept a PEM `CERTIFICATE` block or DER bytes.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, PkiError> {
        if !looks_like_pem(bytes) {
            return Self::from_der(bytes.to_vec());
        }
        let pem = first_pem(bytes, "certificate")?;
        if pem.label != "CERTIFICATE" {
            return Err(PkiError::malformed(
                "certificate",
                format!("PEM label is '{}', expected 'CERTIFICATE'", pem.label),
            ));
        }
        Self::from_der(pem.contents)
    }

    /// Load a certificate file (PEM or DER): a regular file of at most
    /// [`MAX_CERTIFICATE_FILE_BYTES`].
    pub fn load(path: &Path) -> Result<Self, PkiError> {
        let bytes = kart_spec::input::read_regular(path, MAX_CERTIFICATE_FILE_BYTES)?;
        Self::from_pem_or_der(&bytes)
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject as an RFC 4514-like string, e.g. `CN=Demo Root, C=IR`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Parse with `x509-parser` (cannot fail: checked at construction).
    pub(crate) fn parsed(&self) -> X509Certificate<'_> {
        parse(&self.der)
            .unwrap_or_else(|_| unreachable!("certificate DER was validated when constructed"))
    }
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, PkiError> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| PkiError::malformed("certificate", e))?;
    if !rest.is_empty() {
        return Err(PkiError::malformed(
            "certificate",
            format!("{} trailing bytes after the certificate", rest.len()),
        ));
    }
    Ok(cert)
}

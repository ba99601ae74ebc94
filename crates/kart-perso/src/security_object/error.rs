//! Errors of building and parsing security objects.

use crate::pki::PkiError;

/// What went wrong with a security object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecurityObjectError {
    /// Input longer than [`super::MAX_SECURITY_OBJECT_LEN`].
    #[error("security object is {len} bytes, more than the {max} accepted; this is not a security object")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not strict DER of the expected structure.
    #[error("security object is malformed: {0}")]
    Malformed(String),
    /// A structural field holds an unexpected value.
    #[error("security object {field} is {found}, expected {expected}")]
    Unexpected {
        /// The field.
        field: &'static str,
        /// What was found.
        found: String,
        /// What kart expects.
        expected: &'static str,
    },
    /// A signed attribute CMS requires is absent or duplicated.
    #[error("signed attribute {0} is missing or repeated")]
    SignedAttribute(&'static str),
    /// The signed messageDigest does not match the content.
    #[error("messageDigest does not match the signed content: the content was altered")]
    MessageDigestMismatch,
    /// The signed contentType attribute differs from eContentType.
    #[error("contentType attribute does not match eContentType")]
    ContentTypeMismatch,
    /// The signature does not verify with the embedded signer certificate.
    #[error("signature does not verify with the document signer certificate '{0}'")]
    BadSignature(String),
    /// Unsupported digest or signature algorithm.
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// No embedded certificate matches the signer identifier.
    #[error("the document signer certificate is not embedded in the security object")]
    SignerCertificateMissing,
    /// Input list of files is unusable.
    #[error("files to sign: {0}")]
    Files(String),
    /// Certificate or key problem.
    #[error(transparent)]
    Pki(#[from] PkiError),
}

impl From<der::Error> for SecurityObjectError {
    fn from(e: der::Error) -> Self {
        Self::Malformed(e.to_string())
    }
}

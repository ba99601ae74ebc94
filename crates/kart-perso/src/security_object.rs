//! The security object: a CMS `SignedData` over the hashes of every data
//! file written to the card, as ICAO 9303's Document Security Object (SOD).
//!
//! - The signed content is an ICAO-9303-shaped `LDSSecurityObject`
//!   (version 0, hashAlgorithm SHA-256, one `{file id, SHA-256}` per file),
//!   eContentType `id-icao-ldsSecurityObject` = [`LDS_SECURITY_OBJECT_OID`].
//! - The `SignedData` carries the document signer certificate and one
//!   `SignerInfo` with signed attributes contentType, messageDigest and
//!   signingTime, signed by the document signer key (ECDSA or RSA PKCS#1 v1.5).
//!   It verifies with `openssl cms -verify -binary -purpose any`.
//! - [`SecurityObject::parse`] reads one strictly (DER, at most
//!   [`MAX_SECURITY_OBJECT_LEN`] bytes) and [`SecurityObject::verify`]
//!   reports each check of passive authentication separately.
//!
//! ```
//! use kart_perso::pki::{create_demo_issuer, IssuerPki};
//! use kart_perso::security_object::{build_security_object, SecurityObject, FileStatus};
//! let dir = tempfile::tempdir()?;
//! let now = time::OffsetDateTime::now_utc();
//! create_demo_issuer(dir.path(), now)?;
//! let pki = IssuerPki::load(dir.path())?;
//!
//! let files: [(u16, &[u8]); 2] = [(0x0101, b"identity"), (0x0102, b"photo")];
//! let sod = build_security_object(&files, &pki.document_signer, &pki.document_signer_key, now)?;
//!
//! let read_back: [(u16, &[u8]); 2] = [(0x0101, b"identity"), (0x0102, b"PHOTO")];
//! let report = SecurityObject::parse(&sod)?.verify(&pki.root, &read_back, now);
//! assert!(report.signature.is_ok() && report.signer_trusted.is_ok());
//! assert_eq!(report.files[1].status, FileStatus::HashMismatch);
//! assert!(!report.passed());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod build;
mod error;
mod lds;
mod verify;

pub use build::build_security_object;
pub use error::SecurityObjectError;
pub use verify::{FileCheck, FileStatus, SecurityObject, Verification};

/// `id-icao-ldsSecurityObject` (ICAO 9303-10): the eContentType we sign.
pub const LDS_SECURITY_OBJECT_OID: &str = "2.23.136.1.1.1";

/// Largest security object accepted by the parser (the card file is far smaller).
pub const MAX_SECURITY_OBJECT_LEN: usize = 64 * 1024;

/// Most data files one security object may cover.
pub const MAX_FILES: usize = 64;

//! Issuer PKI: the issuer root (CSCA-like), the card CA that issues holder
//! certificates, and the document signer that signs security objects.
//!
//! - [`IssuerKey`] — a PKCS#8 private key (ECDSA P-256/P-384 or RSA) held by
//!   `ring`; its file bytes are zeroized and `Debug` never shows it.
//! - [`IssuerSigner`] — the seam every signing goes through: an [`IssuerKey`]
//!   file, or a key in an HSM through PKCS#11.
//! - [`Certificate`] — a DER X.509 certificate loaded from PEM or DER.
//! - [`validate_chain`] — validity, basic constraints, key usage and
//!   signatures (checked with `ring`) from a leaf up to a trusted root.
//! - [`HolderKey`] — a card's EC P-256 or RSA public key, from the card or a certificate.
//! - [`issue_holder_certificate`] — a certificate for a key generated on the card.
//! - [`create_demo_issuer`] / [`IssuerPki::load`] — a demo hierarchy on disk.
//! - [`verify_card_signature`] — active authentication against a holder certificate.
//! - [`MasterKeys`] — secure-channel master keys file.
//!
//! ```
//! use kart_perso::pki::{create_demo_issuer, IssuerPki, validate_chain, KeyUsage};
//! let dir = tempfile::tempdir()?;
//! let now = time::OffsetDateTime::now_utc();
//! create_demo_issuer(dir.path(), now)?;
//! let pki = IssuerPki::load(dir.path())?;
//! validate_chain(&pki.document_signer, &[], &pki.root, now, KeyUsage::DigitalSignature)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod active_auth;
mod certificate;
mod chain;
mod demo;
pub mod encrypted;
mod error;
mod holder;
mod holder_key;
mod key;
mod master_keys;
pub mod pkcs11;
mod signature;
mod signer;
pub mod token_issuer;

pub use active_auth::verify_card_signature;
pub use certificate::{Certificate, MAX_CERTIFICATE_FILE_BYTES};
pub use chain::{validate_chain, KeyUsage};
pub use demo::{create_demo_issuer, DemoFiles, IssuerPki, OFFLINE_DIR};
pub use error::PkiError;
pub use holder::{issue_holder_certificate, Holder, HOLDER_VALIDITY_YEARS};
pub use holder_key::HolderKey;
pub use key::{IssuerKey, KeyAlgorithm, MAX_KEY_FILE_BYTES};
pub use master_keys::{MasterKeySet, MasterKeys, SecureChannelAlgorithm};
pub(crate) use signature::{verify_signature, SignatureError};
pub use signer::IssuerSigner;

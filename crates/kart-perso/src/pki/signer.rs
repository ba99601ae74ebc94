//! The issuer signer seam: what holder-certificate issuance, the security
//! object and the demo issuer need from a private key, wherever it lives.
//!
//! [`IssuerKey`] (a PKCS#8 file held by `ring`) is one implementation; a key
//! in a hardware security module reached through PKCS#11
//! ([`pkcs11::TokenSigner`](super::pkcs11::TokenSigner)) is another.

use std::fmt;
use std::sync::Arc;

use super::{IssuerKey, KeyAlgorithm, PkiError};

/// A private key that signs for the issuer.
///
/// ```
/// use kart_perso::pki::{IssuerKey, IssuerSigner, KeyAlgorithm};
/// let rng = ring::rand::SystemRandom::new();
/// let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
///     &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
/// let key: Box<dyn IssuerSigner> = Box::new(IssuerKey::from_pkcs8(pkcs8.as_ref())?);
/// assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP256Sha256);
/// assert_eq!(key.public_key().len(), 65);
/// assert_eq!(key.location(), "file (PKCS#8)");
/// # Ok::<(), kart_perso::pki::PkiError>(())
/// ```
pub trait IssuerSigner: Send + Sync + fmt::Debug {
    /// The signature algorithm this key produces.
    fn algorithm(&self) -> KeyAlgorithm;
    /// The public key as in a `SubjectPublicKeyInfo`'s BIT STRING (EC point
    /// or PKCS#1 `RSAPublicKey`).
    fn public_key(&self) -> &[u8];
    /// Sign `message` (hashing it as the algorithm says): ECDSA signatures
    /// are DER `Ecdsa-Sig-Value`, RSA ones PKCS#1 v1.5 or PSS.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError>;
    /// Where the key lives, for a person (never a secret).
    fn location(&self) -> String;
}

impl IssuerSigner for IssuerKey {
    fn algorithm(&self) -> KeyAlgorithm {
        IssuerKey::algorithm(self)
    }
    fn public_key(&self) -> &[u8] {
        IssuerKey::public_key(self)
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        IssuerKey::sign(self, message)
    }
    fn location(&self) -> String {
        "file (PKCS#8)".into()
    }
}

/// A signer behind a smart pointer signs as the signer itself.
macro_rules! delegate_issuer_signer {
    ($($pointer:ident),+) => {$(
        impl<S: IssuerSigner + ?Sized> IssuerSigner for $pointer<S> {
            fn algorithm(&self) -> KeyAlgorithm {
                (**self).algorithm()
            }
            fn public_key(&self) -> &[u8] {
                (**self).public_key()
            }
            fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
                (**self).sign(message)
            }
            fn location(&self) -> String {
                (**self).location()
            }
        }
    )+};
}

delegate_issuer_signer!(Box, Arc);

/// Any [`IssuerSigner`] as rcgen's signing key.
pub(crate) struct RcgenSigner<'a>(pub(crate) &'a dyn IssuerSigner);

impl rcgen::PublicKeyData for RcgenSigner<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0.public_key()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.0.algorithm().rcgen()
    }
}

impl rcgen::SigningKey for RcgenSigner<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        if self.0.algorithm() == KeyAlgorithm::RsaPssSha256 {
            // rcgen would label a PSS signature PKCS#1 v1.5.
            return Err(rcgen::Error::UnsupportedSignatureAlgorithm);
        }
        self.0.sign(msg).map_err(|_| rcgen::Error::RingUnspecified)
    }
}

//! Issuer private keys (PKCS#8) held by `ring`.

use std::fmt;
use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use zeroize::Zeroizing;

use super::PkiError;

/// The signature algorithm an [`IssuerKey`] produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256.
    EcdsaP256Sha256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384Sha384,
    /// RSA PKCS#1 v1.5 with SHA-256.
    RsaPkcs1Sha256,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt (RFC 4055):
    /// security objects only (rcgen, which builds certificates, has no PSS).
    RsaPssSha256,
}

impl KeyAlgorithm {
    /// The X.509/CMS signature algorithm OID (dotted).
    pub fn signature_oid(self) -> &'static str {
        match self {
            Self::EcdsaP256Sha256 => "1.2.840.10045.4.3.2",
            Self::EcdsaP384Sha384 => "1.2.840.10045.4.3.3",
            Self::RsaPkcs1Sha256 => "1.2.840.113549.1.1.11",
            Self::RsaPssSha256 => "1.2.840.113549.1.1.10",
        }
    }

    pub(crate) fn rcgen(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Self::EcdsaP256Sha256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::EcdsaP384Sha384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            // The SubjectPublicKeyInfo is rsaEncryption either way; certificate
            // signing with a PSS key is refused by `RcgenSigner`.
            Self::RsaPkcs1Sha256 | Self::RsaPssSha256 => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

/// Largest private key file read (an 8192-bit RSA key in PEM is under 7 KiB).
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Refuses a secret file that group or others may access.
pub(crate) fn check_private_mode(path: &Path) -> Result<(), PkiError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| PkiError::io(path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(PkiError::KeyFileMode {
            path: path.to_owned(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// An issuer's private key: signs certificates and security objects.
///
/// Loaded from unencrypted PKCS#8 (PEM `PRIVATE KEY` or DER). The file bytes
/// are zeroized after parsing; `Debug` shows only the algorithm.
///
/// ```
/// use kart_perso::pki::{IssuerKey, KeyAlgorithm};
/// let rng = ring::rand::SystemRandom::new();
/// let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
///     &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
/// let key = IssuerKey::from_pkcs8(pkcs8.as_ref())?;
/// assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP256Sha256);
/// assert_eq!(format!("{key:?}"), "IssuerKey { algorithm: EcdsaP256Sha256, key: <redacted> }");
/// # Ok::<(), kart_perso::pki::PkiError>(())
/// ```
pub struct IssuerKey {
    pair: Pair,
    algorithm: KeyAlgorithm,
    rng: SystemRandom,
}

impl fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IssuerKey {{ algorithm: {:?}, key: <redacted> }}",
            self.algorithm
        )
    }
}

impl IssuerKey {
    /// Parse a DER PKCS#8 private key, trying P-256, P-384, then RSA.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, PkiError> {
        let rng = SystemRandom::new();
        let ec = |alg, algorithm| {
            EcdsaKeyPair::from_pkcs8(alg, der, &rng).map(|p| (Pair::Ecdsa(p), algorithm))
        };
        let (pair, algorithm) = ec(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            KeyAlgorithm::EcdsaP256Sha256,
        )
        .or_else(|_| {
            ec(
                &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                KeyAlgorithm::EcdsaP384Sha384,
            )
        })
        .or_else(|_| {
            RsaKeyPair::from_pkcs8(der).map(|p| (Pair::Rsa(p), KeyAlgorithm::RsaPkcs1Sha256))
        })
        .map_err(|e| PkiError::KeyRejected(e.to_string()))?;
        Ok(Self {
            pair,
            algorithm,
            rng,
        })
    }

    /// Parse PKCS#8 from PEM (`-----BEGIN PRIVATE KEY-----`) or DER bytes.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, PkiError> {
        if !looks_like_pem(bytes) {
            return Self::from_pkcs8(bytes);
        }
        let pem = first_pem(bytes, "private key")?;
        let der = Zeroizing::new(pem.contents);
        match pem.label.as_str() {
            "PRIVATE KEY" => Self::from_pkcs8(&der),
            other => Err(PkiError::malformed(
                "private key",
                format!("PEM label is '{other}', expected 'PRIVATE KEY' (PKCS#8); convert with `openssl pkcs8 -topk8 -nocrypt`"),
            )),
        }
    }

    /// Load a PKCS#8 key file (PEM or DER) of at most [`MAX_KEY_FILE_BYTES`];
    /// the file bytes are zeroized. Refuses anything but a regular file, and
    /// a file that group or others may read or write (like the master keys).
    pub fn load(path: &Path) -> Result<Self, PkiError> {
        check_private_mode(path)?;
        let mut bytes = Zeroizing::new(Vec::new());
        kart_spec::input::read_regular_into(path, MAX_KEY_FILE_BYTES, &mut bytes)?;
        Self::from_pem_or_der(&bytes)
    }

    /// The signature algorithm this key produces.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The public key as in a `SubjectPublicKeyInfo`'s BIT STRING (EC point or
    /// PKCS#1 `RSAPublicKey`).
    pub fn public_key(&self) -> &[u8] {
        match &self.pair {
            Pair::Ecdsa(p) => p.public_key().as_ref(),
            Pair::Rsa(p) => p.public_key().as_ref(),
        }
    }

    /// Sign `message`: ECDSA signatures are DER `Ecdsa-Sig-Value`, RSA ones PKCS#1 v1.5.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        match &self.pair {
            Pair::Ecdsa(p) => p
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| PkiError::Random),
            Pair::Rsa(p) => {
                let mut sig = vec![0; p.public().modulus_len()];
                p.sign(&signature::RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .map_err(|_| PkiError::Random)?;
                Ok(sig)
            }
        }
    }
}

impl rcgen::PublicKeyData for IssuerKey {
    fn der_bytes(&self) -> &[u8] {
        self.public_key()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.algorithm.rcgen()
    }
}

impl rcgen::SigningKey for IssuerKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        IssuerKey::sign(self, msg).map_err(|_| rcgen::Error::RingUnspecified)
    }
}

pub(crate) fn looks_like_pem(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().starts_with(b"-----BEGIN ")
}

pub(crate) fn first_pem(
    bytes: &[u8],
    what: &'static str,
) -> Result<x509_parser::pem::Pem, PkiError> {
    x509_parser::pem::Pem::iter_from_buffer(bytes)
        .next()
        .ok_or_else(|| PkiError::malformed(what, "no PEM block found"))?
        .map_err(|e| PkiError::malformed(what, format!("bad PEM: {e}")))
}

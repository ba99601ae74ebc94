//! The holder's public key: as the card answers GENERATE ASYMMETRIC KEY
//! PAIR (applet spec §8.9) and as a holder certificate carries it. One type
//! for personalization, verification and QA, EC P-256 or RSA alike.
//!
//! Signatures are the card's (§8.10, §8.11): ECDSA P-256 with SHA-256 as raw
//! `r ‖ s`, or RSASSA-PKCS1-v1_5 with SHA-256, over the data as received.

use kart_apdu::tlv;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256};
use rsa::pkcs1::{DecodeRsaPublicKey, EncodeRsaPublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPublicKey};

use super::{Certificate, PkiError};

const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const P256: &str = "1.2.840.10045.3.1.7";
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// RSA moduli a card may hold, bits.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// A holder public key.
#[derive(Clone, PartialEq, Eq)]
pub enum HolderKey {
    /// An uncompressed P-256 point `04 ‖ X ‖ Y`, checked on the curve.
    EcP256(Vec<u8>),
    /// An RSA key as a PKCS#1 `RSAPublicKey` DER, with its modulus size.
    Rsa {
        /// `SEQUENCE { modulus, publicExponent }`.
        pkcs1: Vec<u8>,
        /// Modulus bits.
        bits: usize,
    },
}

impl std::fmt::Debug for HolderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HolderKey({})", self.algorithm())
    }
}

impl HolderKey {
    /// An uncompressed P-256 point, refused unless on the curve.
    pub fn ec_p256(point: &[u8]) -> Result<Self, PkiError> {
        match point {
            [0x04, rest @ ..] if rest.len() == 64 => {
                on_curve(point)?;
                Ok(Self::EcP256(point.to_vec()))
            }
            [first, ..] if point.len() == 65 => Err(PkiError::BadHolderKey(format!(
                "EC point: first byte is {first:02X}, expected 04 (uncompressed)"
            ))),
            _ => Err(PkiError::BadHolderKey(format!(
                "EC point of {} bytes, expected 65",
                point.len()
            ))),
        }
    }

    /// An RSA key from its big-endian modulus and public exponent.
    pub fn rsa(modulus: &[u8], exponent: &[u8]) -> Result<Self, PkiError> {
        let key = RsaPublicKey::new(
            BigUint::from_bytes_be(modulus),
            BigUint::from_bytes_be(exponent),
        )
        .map_err(|e| PkiError::BadHolderKey(format!("RSA key: {e}")))?;
        Self::from_rsa(&key)
    }

    fn from_rsa(key: &RsaPublicKey) -> Result<Self, PkiError> {
        let bits = key.n().bits();
        if !RSA_BITS.contains(&bits) {
            return Err(PkiError::BadHolderKey(format!(
                "RSA modulus of {bits} bits, expected 2048 to 4096"
            )));
        }
        let pkcs1 = key
            .to_pkcs1_der()
            .map_err(|e| PkiError::BadHolderKey(format!("RSA key: {e}")))?
            .into_vec();
        Ok(Self::Rsa { pkcs1, bits })
    }

    /// The key of a GENERATE ASYMMETRIC KEY PAIR answer (§8.9):
    /// `7F49 { 86 <04 X Y> }` for EC P-256, `7F49 { 81 <modulus> 82
    /// <exponent> }` for RSA.
    ///
    /// ```
    /// use kart_perso::pki::HolderKey;
    /// let mut answer = vec![0x7F, 0x49, 0x43, 0x86, 0x41];
    /// answer.extend([0u8; 65]);
    /// // Not on the curve: refused.
    /// assert!(HolderKey::from_card(&answer).is_err());
    /// assert!(HolderKey::from_card(&[0x7F, 0x49, 0x00]).is_err());
    /// ```
    pub fn from_card(answer: &[u8]) -> Result<Self, PkiError> {
        let bad = |e: &dyn std::fmt::Display| PkiError::BadHolderKey(e.to_string());
        let object = tlv::parse(answer).map_err(|e| bad(&e))?;
        if let Ok(point) = tlv::value_at(&object, &[0x7F49, 0x86]) {
            return Self::ec_p256(point);
        }
        let modulus = tlv::value_at(&object, &[0x7F49, 0x81]).map_err(|e| bad(&e))?;
        let exponent = tlv::value_at(&object, &[0x7F49, 0x82]).map_err(|e| bad(&e))?;
        Self::rsa(modulus, exponent)
    }

    /// The key a certificate carries.
    pub fn from_certificate(cert: &Certificate) -> Result<Self, PkiError> {
        let parsed = cert.parsed();
        let spki = parsed.public_key();
        let key = spki.subject_public_key.as_ref();
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .map(|o| o.to_id_string());
        match (
            spki.algorithm.algorithm.to_id_string().as_str(),
            curve.as_deref(),
        ) {
            (EC_PUBLIC_KEY, Some(P256)) => Self::ec_p256(key),
            (RSA_ENCRYPTION, _) => {
                let rsa = RsaPublicKey::from_pkcs1_der(key)
                    .map_err(|e| PkiError::BadHolderKey(format!("RSA key: {e}")))?;
                Self::from_rsa(&rsa)
            }
            (algorithm, curve) => Err(PkiError::UnsupportedAlgorithm(format!(
                "holder key {algorithm} (curve {}); cards hold EC P-256 or RSA keys",
                curve.unwrap_or("none")
            ))),
        }
    }

    /// `EC P-256` or `RSA-2048` (the modulus size).
    pub fn algorithm(&self) -> String {
        match self {
            Self::EcP256(_) => "EC P-256".to_owned(),
            Self::Rsa { bits, .. } => format!("RSA-{bits}"),
        }
    }

    /// The length of the card's signatures with this key.
    pub fn signature_len(&self) -> usize {
        match self {
            Self::EcP256(_) => 64,
            Self::Rsa { bits, .. } => bits.div_ceil(8),
        }
    }

    /// Whether `signature` is this key's over `message` (§8.10, §8.11).
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let key = match self {
            Self::EcP256(point) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point.as_slice())
            }
            Self::Rsa { pkcs1, .. } => {
                UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pkcs1.as_slice())
            }
        };
        key.verify(message, signature).is_ok()
    }
}

/// ring validates a peer's public key before ECDH; an ephemeral agreement is
/// the cheapest way to ask it whether the point lies on P-256.
fn on_curve(point: &[u8]) -> Result<(), PkiError> {
    use ring::agreement::{agree_ephemeral, EphemeralPrivateKey, UnparsedPublicKey, ECDH_P256};
    let rng = ring::rand::SystemRandom::new();
    let ours = EphemeralPrivateKey::generate(&ECDH_P256, &rng).map_err(|_| PkiError::Random)?;
    agree_ephemeral(ours, &UnparsedPublicKey::new(&ECDH_P256, point), |_| ())
        .map_err(|_| PkiError::BadHolderKey("the point is not on the P-256 curve".into()))
}

/// What rcgen puts in a holder certificate's subjectPublicKeyInfo.
impl rcgen::PublicKeyData for HolderKey {
    fn der_bytes(&self) -> &[u8] {
        match self {
            Self::EcP256(point) => point,
            Self::Rsa { pkcs1, .. } => pkcs1,
        }
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Self::EcP256(_) => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::Rsa { .. } => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

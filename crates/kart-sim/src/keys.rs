//! The holder key pairs the card generates and signs with (README §8.9 to
//! §8.11): EC P-256 or RSA-2048, as the card's profile says. The private key
//! never leaves the card; its PKCS#8 form is kept for the card's own storage.

use kart_spec::HolderKeyAlgorithm;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use zeroize::Zeroizing;

use crate::applet::tlv;

/// RSA modulus size of an `rsa-2048` card.
const RSA_BITS: usize = 2048;

/// Why the card could not make or use a key (it answers `6F00`).
#[derive(Debug)]
pub(crate) struct KeyFailure;

/// One holder key pair.
pub(crate) enum CardKey {
    /// EC P-256 (ring).
    Ec(EcdsaKeyPair),
    /// RSA, signed with by ring; modulus and exponent for the public key.
    Rsa {
        pair: RsaKeyPair,
        modulus: Vec<u8>,
        exponent: Vec<u8>,
    },
}

impl CardKey {
    /// A fresh key pair of `algorithm`, and its PKCS#8 form.
    pub(crate) fn generate(
        algorithm: HolderKeyAlgorithm,
        rng: &SystemRandom,
    ) -> Result<(Self, Zeroizing<Vec<u8>>), KeyFailure> {
        let pkcs8 = match algorithm {
            HolderKeyAlgorithm::EcP256 => Zeroizing::new(
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng)
                    .map_err(|_| KeyFailure)?
                    .as_ref()
                    .to_vec(),
            ),
            // ring signs with RSA keys but cannot make them.
            HolderKeyAlgorithm::Rsa2048 => {
                let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS)
                    .map_err(|_| KeyFailure)?;
                Zeroizing::new(
                    key.to_pkcs8_der()
                        .map_err(|_| KeyFailure)?
                        .as_bytes()
                        .to_vec(),
                )
            }
        };
        let key = Self::from_pkcs8(algorithm, &pkcs8, rng)?;
        Ok((key, pkcs8))
    }

    /// The key pair of a PKCS#8 document made by [`CardKey::generate`].
    pub(crate) fn from_pkcs8(
        algorithm: HolderKeyAlgorithm,
        pkcs8: &[u8],
        rng: &SystemRandom,
    ) -> Result<Self, KeyFailure> {
        match algorithm {
            HolderKeyAlgorithm::EcP256 => {
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, rng)
                    .map(Self::Ec)
                    .map_err(|_| KeyFailure)
            }
            HolderKeyAlgorithm::Rsa2048 => {
                let key = RsaPrivateKey::from_pkcs8_der(pkcs8).map_err(|_| KeyFailure)?;
                Ok(Self::Rsa {
                    pair: RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| KeyFailure)?,
                    modulus: key.n().to_bytes_be(),
                    exponent: key.e().to_bytes_be(),
                })
            }
        }
    }

    /// The public key as GENERATE ASYMMETRIC KEY PAIR answers it (§8.9):
    /// `7F49 { 86 <04 X Y> }` or `7F49 { 81 <modulus> 82 <exponent> }`.
    pub(crate) fn public_template(&self) -> Vec<u8> {
        let inner = match self {
            Self::Ec(pair) => tlv(&[0x86], pair.public_key().as_ref()),
            Self::Rsa {
                modulus, exponent, ..
            } => [tlv(&[0x81], modulus), tlv(&[0x82], exponent)].concat(),
        };
        tlv(&[0x7F, 0x49], &inner)
    }

    /// A signature over `data` as received (§8.10, §8.11): ECDSA P-256 with
    /// SHA-256 as raw `r ‖ s`, or RSASSA-PKCS1-v1_5 with SHA-256.
    pub(crate) fn sign(&self, rng: &SystemRandom, data: &[u8]) -> Result<Vec<u8>, KeyFailure> {
        match self {
            Self::Ec(pair) => pair
                .sign(rng, data)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyFailure),
            Self::Rsa { pair, .. } => {
                let mut signature = vec![0u8; pair.public().modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, rng, data, &mut signature)
                    .map_err(|_| KeyFailure)?;
                Ok(signature)
            }
        }
    }
}

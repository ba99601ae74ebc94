//! Per-card keys from master keys and the card's key diversification data
//! (the first 10 bytes of the INITIALIZE UPDATE response).

use super::crypto::{des3_ecb_encrypt, kdf_counter};
use super::{GpError, KeySet};
use zeroize::Zeroizing;

/// How a card's static keys are derived from the issuer's master keys.
///
/// For each key, `idx` is 1 for ENC, 2 for MAC, 3 for DEK, and `kdd` the
/// 10 bytes of key diversification data:
///
/// - [`Visa2`](Diversification::Visa2) (2-key 3DES): key =
///   3DES-ECB(master, `kdd[0..2] ‖ kdd[4..8] ‖ F0 ‖ idx ‖ kdd[0..2] ‖ kdd[4..8] ‖ 0F ‖ idx`).
/// - [`EmvCps11`](Diversification::EmvCps11) (EMV CPS v1.1 §5.3.2, 2-key 3DES):
///   key = 3DES-ECB(master, `kdd[4..10] ‖ F0 ‖ idx ‖ kdd[4..10] ‖ 0F ‖ idx`).
/// - [`Kdf3`](Diversification::Kdf3) (AES, as GlobalPlatformPro names it): the
///   SP 800-108 counter-mode KDF with AES-CMAC, one-byte counter first, fixed
///   input `00 00 00 idx 00 ‖ kdd`, as many output bytes as the master key has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Diversification {
    /// The master keys are the card keys.
    #[default]
    None,
    /// VISA2 (SCP02 cards, 3DES).
    Visa2,
    /// EMV CPS v1.1 (SCP02 cards, 3DES).
    EmvCps11,
    /// KDF3: SCP03 KDF over the diversification data (SCP03 cards, AES).
    Kdf3,
}

/// Derives a card's static keys from master keys.
///
/// The host calls this with the diversification data the card returned in
/// INITIALIZE UPDATE; a simulator calls it when it creates a card.
///
/// ```
/// use kart_apdu::gp::{diversify, Diversification, KeySet};
/// let master = KeySet::from_master(&[0x40; 16], 0x01)?;
/// let kdd = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09];
/// let card = diversify(&master, Diversification::EmvCps11, &kdd)?;
/// assert_eq!(card.version(), 0x01);
/// assert!(diversify(&master, Diversification::EmvCps11, &kdd[..4]).is_err());
/// # Ok::<(), kart_apdu::gp::GpError>(())
/// ```
pub fn diversify(master: &KeySet, method: Diversification, kdd: &[u8]) -> Result<KeySet, GpError> {
    if method == Diversification::None {
        return Ok(master.clone());
    }
    let kdd: &[u8; 10] = kdd.try_into().map_err(|_| {
        GpError::InvalidKey(format!(
            "key diversification data must be 10 bytes, got {}",
            kdd.len()
        ))
    })?;
    let one = |key: &[u8], idx: u8| -> Result<Zeroizing<Vec<u8>>, GpError> {
        match method {
            Diversification::None => Ok(Zeroizing::new(key.to_vec())),
            Diversification::Visa2 | Diversification::EmvCps11 => {
                let six: [u8; 6] = if method == Diversification::Visa2 {
                    [kdd[0], kdd[1], kdd[4], kdd[5], kdd[6], kdd[7]]
                } else {
                    [kdd[4], kdd[5], kdd[6], kdd[7], kdd[8], kdd[9]]
                };
                let mut block = Zeroizing::new(Vec::with_capacity(16));
                block.extend_from_slice(&six);
                block.extend_from_slice(&[0xF0, idx]);
                block.extend_from_slice(&six);
                block.extend_from_slice(&[0x0F, idx]);
                des3_ecb_encrypt(key, &mut block)?;
                Ok(block)
            }
            Diversification::Kdf3 => {
                let mut suffix = [0u8; 15];
                suffix[3] = idx;
                suffix[5..].copy_from_slice(kdd);
                kdf_counter(key, &[], &suffix, key.len())
            }
        }
    };
    let enc = one(master.enc(), 1)?;
    let mac = one(master.mac(), 2)?;
    let dek = one(master.dek(), 3)?;
    KeySet::new(&enc, &mac, &dek, master.version())
}

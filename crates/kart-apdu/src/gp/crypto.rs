//! The block-cipher primitives GlobalPlatform secure channels are built from.
//!
//! All of them are thin compositions of RustCrypto ciphers: AES-CMAC
//! (NIST SP 800-38B), the SP 800-108 counter-mode KDF with AES-CMAC as PRF,
//! the ISO/IEC 9797-1 MAC algorithms 1 (full 3DES CBC-MAC) and 3 (retail
//! MAC), CBC encryption without padding, and ISO/IEC 7816-4 `80 00..` padding.
//! They are public so that test vectors can check them one by one.

use super::GpError;
use aes::{Aes128, Aes192, Aes256};
use cipher::block_padding::NoPadding;
use cipher::generic_array::GenericArray;
use cipher::{
    BlockCipher, BlockDecrypt, BlockDecryptMut, BlockEncrypt, BlockEncryptMut, KeyInit, KeyIvInit,
};
use cmac::{Cmac, Mac};
use des::{Des, TdesEde2};
use zeroize::Zeroizing;

/// AES block size in bytes.
pub const AES_BLOCK: usize = 16;
/// DES block size in bytes.
pub const DES_BLOCK: usize = 8;

fn key_error(len: usize) -> GpError {
    GpError::InvalidKey(format!("an AES key must be 16, 24 or 32 bytes, got {len}"))
}

fn cmac_with<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Result<[u8; 16], GpError> {
    let mut mac = <M as KeyInit>::new_from_slice(key).map_err(|_| key_error(key.len()))?;
    for p in parts {
        Mac::update(&mut mac, p);
    }
    let out = mac.finalize().into_bytes();
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&out[..16.min(out.len())]);
    Ok(tag)
}

/// AES-CMAC (NIST SP 800-38B) over the concatenation of `parts`.
///
/// ```
/// use kart_apdu::gp::crypto::aes_cmac;
/// // NIST SP 800-38B, Appendix D.1, Example 1 (empty message).
/// let key = hex::decode("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
/// let tag = aes_cmac(&key, &[])?;
/// assert_eq!(hex::encode(tag), "bb1d6929e95937287fa37d129b756746");
/// # Ok::<(), kart_apdu::gp::GpError>(())
/// ```
pub fn aes_cmac(key: &[u8], parts: &[&[u8]]) -> Result<[u8; 16], GpError> {
    match key.len() {
        16 => cmac_with::<Cmac<Aes128>>(key, parts),
        24 => cmac_with::<Cmac<Aes192>>(key, parts),
        32 => cmac_with::<Cmac<Aes256>>(key, parts),
        n => Err(key_error(n)),
    }
}

/// SP 800-108 KDF in counter mode with AES-CMAC as PRF and a one-byte counter
/// placed between `prefix` and `suffix`: block *i* = CMAC(key, prefix ‖ i ‖ suffix),
/// i = 1, 2, …, concatenated and cut to `out_len` bytes.
pub fn kdf_counter(
    key: &[u8],
    prefix: &[u8],
    suffix: &[u8],
    out_len: usize,
) -> Result<Zeroizing<Vec<u8>>, GpError> {
    let mut out = Zeroizing::new(Vec::with_capacity(out_len + AES_BLOCK));
    let mut i: u8 = 1;
    while out.len() < out_len {
        let block = Zeroizing::new(aes_cmac(key, &[prefix, &[i], suffix])?);
        out.extend_from_slice(&block[..]);
        i = i
            .checked_add(1)
            .ok_or_else(|| GpError::InvalidKey("KDF output too long".into()))?;
    }
    out.truncate(out_len);
    Ok(out)
}

/// The SCP03 data derivation function (GP Amendment D §6.2.2): SP 800-108
/// counter mode with AES-CMAC, fixed input
/// `00×11 ‖ constant ‖ 00 ‖ L (2 bytes, in bits) ‖ i ‖ context`.
///
/// ```
/// use kart_apdu::gp::crypto::scp03_kdf;
/// let key = [0x40u8; 16];
/// let card_cryptogram = scp03_kdf(&key, 0x00, &[0u8; 16], 64)?;
/// assert_eq!(card_cryptogram.len(), 8);
/// # Ok::<(), kart_apdu::gp::GpError>(())
/// ```
pub fn scp03_kdf(
    key: &[u8],
    constant: u8,
    context: &[u8],
    bits: u16,
) -> Result<Zeroizing<Vec<u8>>, GpError> {
    let [l_hi, l_lo] = bits.to_be_bytes();
    let mut prefix = [0u8; 15];
    prefix[11] = constant;
    prefix[13] = l_hi;
    prefix[14] = l_lo;
    kdf_counter(key, &prefix, context, usize::from(bits / 8))
}

/// Appends ISO/IEC 7816-4 padding: `80` then zeros up to a multiple of
/// `block`, always at least one byte.
pub fn pad80(data: &[u8], block: usize) -> Zeroizing<Vec<u8>> {
    let total = (data.len() / block + 1) * block;
    let mut v = Zeroizing::new(Vec::with_capacity(total));
    v.extend_from_slice(data);
    v.push(0x80);
    v.resize(total, 0);
    v
}

/// Removes ISO/IEC 7816-4 padding added by [`pad80`]; `None` when the last
/// block does not end in `80 00..`.
pub fn unpad80(data: &[u8], block: usize) -> Option<&[u8]> {
    if data.is_empty() || data.len() % block != 0 {
        return None;
    }
    let tail_start = data.len() - block;
    let end = data[tail_start..].iter().rposition(|&b| b != 0)? + tail_start;
    (data[end] == 0x80).then(|| &data[..end])
}

fn cbc_encrypt_with<C>(key: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<(), GpError>
where
    C: BlockEncryptMut + BlockCipher + KeyInit,
{
    let enc = cbc::Encryptor::<C>::new_from_slices(key, iv)
        .map_err(|_| GpError::InvalidKey(format!("key of {} bytes", key.len())))?;
    let len = buf.len();
    enc.encrypt_padded_mut::<NoPadding>(buf, len)
        .map_err(|_| GpError::Crypto("data is not a whole number of blocks"))?;
    Ok(())
}

fn cbc_decrypt_with<C>(key: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<(), GpError>
where
    C: BlockDecryptMut + BlockCipher + KeyInit,
{
    let dec = cbc::Decryptor::<C>::new_from_slices(key, iv)
        .map_err(|_| GpError::InvalidKey(format!("key of {} bytes", key.len())))?;
    dec.decrypt_padded_mut::<NoPadding>(buf)
        .map_err(|_| GpError::Crypto("data is not a whole number of blocks"))?;
    Ok(())
}

/// AES-CBC encryption in place without padding (`buf` must be whole blocks).
pub fn aes_cbc_encrypt(key: &[u8], iv: &[u8; 16], buf: &mut [u8]) -> Result<(), GpError> {
    match key.len() {
        16 => cbc_encrypt_with::<Aes128>(key, iv, buf),
        24 => cbc_encrypt_with::<Aes192>(key, iv, buf),
        32 => cbc_encrypt_with::<Aes256>(key, iv, buf),
        n => Err(key_error(n)),
    }
}

/// AES-CBC decryption in place without padding (`buf` must be whole blocks).
pub fn aes_cbc_decrypt(key: &[u8], iv: &[u8; 16], buf: &mut [u8]) -> Result<(), GpError> {
    match key.len() {
        16 => cbc_decrypt_with::<Aes128>(key, iv, buf),
        24 => cbc_decrypt_with::<Aes192>(key, iv, buf),
        32 => cbc_decrypt_with::<Aes256>(key, iv, buf),
        n => Err(key_error(n)),
    }
}

/// AES encryption of one block (ECB), used for the SCP03 counter ICV.
pub fn aes_encrypt_block(key: &[u8], block: &[u8; 16]) -> Result<[u8; 16], GpError> {
    let mut b = *block;
    aes_cbc_encrypt(key, &[0u8; 16], &mut b)?;
    Ok(b)
}

fn des3_key_error(len: usize) -> GpError {
    GpError::InvalidKey(format!("a 2-key 3DES key must be 16 bytes, got {len}"))
}

/// 2-key 3DES-CBC encryption in place without padding.
pub fn des3_cbc_encrypt(key: &[u8], iv: &[u8; 8], buf: &mut [u8]) -> Result<(), GpError> {
    if key.len() != 16 {
        return Err(des3_key_error(key.len()));
    }
    cbc_encrypt_with::<TdesEde2>(key, iv, buf)
}

/// 2-key 3DES-CBC decryption in place without padding.
pub fn des3_cbc_decrypt(key: &[u8], iv: &[u8; 8], buf: &mut [u8]) -> Result<(), GpError> {
    if key.len() != 16 {
        return Err(des3_key_error(key.len()));
    }
    cbc_decrypt_with::<TdesEde2>(key, iv, buf)
}

/// 2-key 3DES-ECB encryption in place (used by EMV CPS and VISA2 diversification).
pub fn des3_ecb_encrypt(key: &[u8], buf: &mut [u8]) -> Result<(), GpError> {
    des3_ecb(key, buf, true)
}

/// 2-key 3DES-ECB decryption in place.
pub fn des3_ecb_decrypt(key: &[u8], buf: &mut [u8]) -> Result<(), GpError> {
    des3_ecb(key, buf, false)
}

/// 2-key 3DES-ECB in place over whole blocks, one way or the other.
fn des3_ecb(key: &[u8], buf: &mut [u8], encrypt: bool) -> Result<(), GpError> {
    if key.len() != 16 {
        return Err(des3_key_error(key.len()));
    }
    if buf.len() % DES_BLOCK != 0 {
        return Err(GpError::Crypto("data is not a whole number of blocks"));
    }
    let c = TdesEde2::new_from_slice(key).map_err(|_| des3_key_error(key.len()))?;
    for chunk in buf.chunks_exact_mut(DES_BLOCK) {
        let block = GenericArray::from_mut_slice(chunk);
        if encrypt {
            c.encrypt_block(block);
        } else {
            c.decrypt_block(block);
        }
    }
    Ok(())
}

/// Key check value as PUT KEY sends it: the first 3 bytes of 3DES-ECB(key, 00×8)
/// for a 16-byte 3DES key (`aes = false`), or of AES(key, 01×16) for an AES key.
///
/// ```
/// use kart_apdu::gp::crypto::key_check_value;
/// let kcv = key_check_value(&[0x40; 16], false)?;
/// assert_eq!(kcv.len(), 3);
/// # Ok::<(), kart_apdu::gp::GpError>(())
/// ```
pub fn key_check_value(key: &[u8], aes: bool) -> Result<[u8; 3], GpError> {
    let block = if aes {
        aes_encrypt_block(key, &[0x01; 16])?.to_vec()
    } else {
        let mut b = [0u8; 8];
        des3_ecb_encrypt(key, &mut b)?;
        b.to_vec()
    };
    Ok([block[0], block[1], block[2]])
}

/// Single DES encryption of one block with the first half of a 16-byte key
/// (SCP02 ICV encryption).
pub fn des_encrypt_block(key: &[u8], block: &[u8; 8]) -> Result<[u8; 8], GpError> {
    let k1 = key.get(..8).ok_or_else(|| des3_key_error(key.len()))?;
    let c = Des::new_from_slice(k1).map_err(|_| des3_key_error(key.len()))?;
    let mut b = *block;
    c.encrypt_block(GenericArray::from_mut_slice(&mut b));
    Ok(b)
}

/// ISO/IEC 9797-1 MAC algorithm 1 with 2-key 3DES (full 3DES CBC-MAC), padding
/// method 2, zero ICV: the SCP02 card and host cryptograms.
pub fn des3_cbc_mac(key: &[u8], data: &[u8]) -> Result<[u8; 8], GpError> {
    let mut buf = pad80(data, DES_BLOCK);
    des3_cbc_encrypt(key, &[0u8; 8], &mut buf)?;
    let mut mac = [0u8; 8];
    mac.copy_from_slice(&buf[buf.len() - DES_BLOCK..]);
    Ok(mac)
}

/// ISO/IEC 9797-1 MAC algorithm 3 ("retail MAC"): single-DES CBC with the first
/// key half over all blocks but the last, 3DES on the last; padding method 2.
/// The SCP02 C-MAC.
pub fn retail_mac(key: &[u8], icv: &[u8; 8], data: &[u8]) -> Result<[u8; 8], GpError> {
    if key.len() != 16 {
        return Err(des3_key_error(key.len()));
    }
    let single = Des::new_from_slice(&key[..8]).map_err(|_| des3_key_error(key.len()))?;
    let triple = TdesEde2::new_from_slice(key).map_err(|_| des3_key_error(key.len()))?;
    let padded = pad80(data, DES_BLOCK);
    let mut h = *icv;
    let blocks = padded.len() / DES_BLOCK;
    for (n, block) in padded.chunks_exact(DES_BLOCK).enumerate() {
        for (x, b) in h.iter_mut().zip(block) {
            *x ^= b;
        }
        let ga = GenericArray::from_mut_slice(&mut h);
        if n + 1 == blocks {
            triple.encrypt_block(ga);
        } else {
            single.encrypt_block(ga);
        }
    }
    Ok(h)
}

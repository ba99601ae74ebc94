//! SCP02 (GlobalPlatform Card Specification v2.3.1 Annex E): 2-key 3DES session
//! keys from the sequence counter, 3DES CBC-MAC cryptograms, retail C-MAC on
//! the plain APDU, 3DES-CBC command encryption with a zero ICV.

use super::crypto::{
    des3_cbc_decrypt, des3_cbc_encrypt, des3_cbc_mac, des3_ecb_decrypt, des3_ecb_encrypt,
    des_encrypt_block, pad80, retail_mac, unpad80, DES_BLOCK,
};
use super::keys::SecretKey;
use super::session::{carry_le, mac_header, secret, unwrapped, SW_BAD_SM};
use super::{GpError, KeySet, SecurityLevel, CLA_SECURE_MESSAGING, MAC_LEN};
use crate::{Command, StatusWord};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Session key derivation constants (GP v2.3.1 §E.4.1).
const S_ENC: [u8; 2] = [0x01, 0x82];
const C_MAC: [u8; 2] = [0x01, 0x01];
const DEK: [u8; 2] = [0x01, 0x81];

/// i-parameter bits this implementation understands (GP v2.3.1 §E.1.1).
pub(crate) const I_THREE_KEYS: u8 = 0x01;
const I_UNMODIFIED_APDU: u8 = 0x02;
const I_ICV_MAC_OVER_AID: u8 = 0x08;
pub(crate) const I_ICV_ENCRYPTION: u8 = 0x10;

/// Checks that an SCP02 i-parameter asks for what this implementation does.
pub(crate) fn check_i(i: u8) -> Result<(), GpError> {
    if i & I_THREE_KEYS == 0 {
        return Err(GpError::Unsupported(format!(
            "SCP02 i={i:02X}: single base key mode"
        )));
    }
    if i & (I_UNMODIFIED_APDU | I_ICV_MAC_OVER_AID) != 0 {
        return Err(GpError::Unsupported(format!(
            "SCP02 i={i:02X}: C-MAC on the unmodified APDU or ICV over the AID (use i=15 or 55)"
        )));
    }
    Ok(())
}

fn session_key(key: &[u8], constant: [u8; 2], seq: [u8; 2]) -> Result<SecretKey, GpError> {
    let mut block = Zeroizing::new([0u8; 16]);
    block[..2].copy_from_slice(&constant);
    block[2..4].copy_from_slice(&seq);
    des3_cbc_encrypt(key, &[0; 8], &mut block[..])?;
    Ok(secret(&block[..]))
}

pub(crate) struct Scp02 {
    s_enc: SecretKey,
    s_mac: SecretKey,
    /// Session DEK: encrypts key values for PUT KEY.
    s_dek: SecretKey,
    host_challenge: [u8; 8],
    seq: [u8; 2],
    card_challenge: [u8; 6],
    /// The C-MAC of the last command: the next ICV (zero before the first).
    last_mac: Option<[u8; 8]>,
    icv_encryption: bool,
    pub(crate) level: SecurityLevel,
}

impl Scp02 {
    pub(crate) fn new(
        keys: &KeySet,
        i: u8,
        seq: [u8; 2],
        host_challenge: [u8; 8],
        card_challenge: [u8; 6],
    ) -> Result<Self, GpError> {
        check_i(i)?;
        if keys.key_len() != 16 {
            return Err(GpError::InvalidKey(format!(
                "SCP02 needs 16-byte 2-key 3DES keys, got {} bytes",
                keys.key_len()
            )));
        }
        Ok(Self {
            s_enc: session_key(keys.enc(), S_ENC, seq)?,
            s_mac: session_key(keys.mac(), C_MAC, seq)?,
            s_dek: session_key(keys.dek(), DEK, seq)?,
            host_challenge,
            seq,
            card_challenge,
            last_mac: None,
            icv_encryption: i & I_ICV_ENCRYPTION != 0,
            level: SecurityLevel::C_MAC,
        })
    }

    /// 3DES CBC-MAC with S-ENC over host challenge ‖ sequence counter ‖ card challenge.
    pub(crate) fn card_cryptogram(&self) -> Result<[u8; 8], GpError> {
        des3_cbc_mac(
            self.s_enc.bytes(),
            &[&self.host_challenge[..], &self.seq, &self.card_challenge].concat(),
        )
    }

    /// 3DES CBC-MAC with S-ENC over sequence counter ‖ card challenge ‖ host challenge.
    pub(crate) fn host_cryptogram(&self) -> Result<[u8; 8], GpError> {
        des3_cbc_mac(
            self.s_enc.bytes(),
            &[&self.seq[..], &self.card_challenge, &self.host_challenge].concat(),
        )
    }

    /// 3DES-ECB with the session DEK (GP v2.3.1 §E.4.7), whole 8-byte blocks.
    pub(crate) fn encrypt_key_data(&self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>, GpError> {
        let mut v = Zeroizing::new(data.to_vec());
        des3_ecb_encrypt(self.s_dek.bytes(), &mut v)?;
        Ok(v)
    }

    pub(crate) fn decrypt_key_data(&self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>, GpError> {
        let mut v = Zeroizing::new(data.to_vec());
        des3_ecb_decrypt(self.s_dek.bytes(), &mut v)?;
        Ok(v)
    }

    fn icv(&self) -> Result<[u8; 8], GpError> {
        match self.last_mac {
            None => Ok([0; 8]),
            Some(m) if self.icv_encryption => des_encrypt_block(self.s_mac.bytes(), &m),
            Some(m) => Ok(m),
        }
    }

    /// Retail MAC over CLA' INS P1 P2 Lc' ‖ plain data, Lc' counting the MAC.
    fn mac(&self, cla: u8, cmd: &Command, plain: &[u8]) -> Result<[u8; 8], GpError> {
        let nc = plain.len() + MAC_LEN;
        let mut m = mac_header(cla, cmd.ins(), cmd.p1(), cmd.p2(), nc, nc > 255);
        m.extend_from_slice(plain);
        let mac = retail_mac(self.s_mac.bytes(), &self.icv()?, &m);
        zeroize::Zeroize::zeroize(&mut m);
        mac
    }

    pub(crate) fn wrap_command(&mut self, cmd: &Command) -> Result<Command, GpError> {
        let cla = cmd.cla() | CLA_SECURE_MESSAGING;
        let mac = self.mac(cla, cmd, cmd.data())?;
        self.last_mac = Some(mac);
        let mut data = if self.level.c_dec() && !cmd.data().is_empty() {
            let mut p = pad80(cmd.data(), DES_BLOCK);
            des3_cbc_encrypt(self.s_enc.bytes(), &[0; 8], &mut p)?;
            p
        } else {
            Zeroizing::new(cmd.data().to_vec())
        };
        data.extend_from_slice(&mac);
        let w = Command::new(cla, cmd.ins(), cmd.p1(), cmd.p2()).with_data(&data)?;
        carry_le(cmd, w, false)
    }

    pub(crate) fn unwrap_command(&mut self, cmd: &Command) -> Result<Command, StatusWord> {
        let data = cmd.data();
        let split = data.len().checked_sub(MAC_LEN).ok_or(SW_BAD_SM)?;
        let (body, mac) = data.split_at(split);
        let mut plain = Zeroizing::new(body.to_vec());
        let mut len = plain.len();
        if self.level.c_dec() && !body.is_empty() {
            des3_cbc_decrypt(self.s_enc.bytes(), &[0; 8], &mut plain).map_err(|_| SW_BAD_SM)?;
            len = unpad80(&plain, DES_BLOCK).ok_or(SW_BAD_SM)?.len();
        }
        let expected = self
            .mac(cmd.cla(), cmd, &plain[..len])
            .map_err(|_| SW_BAD_SM)?;
        if !bool::from(expected.ct_eq(mac)) {
            return Err(SW_BAD_SM);
        }
        self.last_mac = Some(expected);
        unwrapped(cmd, &plain[..len])
    }
}

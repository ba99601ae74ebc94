//! SCP03 (GlobalPlatform Card Specification Amendment D v1.1.2): AES session
//! keys from the SP 800-108 KDF, AES-CMAC with a 16-byte chaining value,
//! AES-CBC encryption with a counter-derived ICV.

use super::crypto::{
    aes_cbc_decrypt, aes_cbc_encrypt, aes_cmac, aes_encrypt_block, pad80, scp03_kdf, unpad80,
    AES_BLOCK,
};
use super::keys::SecretKey;
use super::session::{carry_le, mac_header, secret, unwrapped, SW_BAD_SM};
use super::{GpError, KeySet, SecurityLevel, CLA_SECURE_MESSAGING, MAC_LEN};
use crate::{Command, Response, StatusWord};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// KDF derivation constants (Amendment D Table 6-1).
const CARD_CRYPTOGRAM: u8 = 0x00;
const HOST_CRYPTOGRAM: u8 = 0x01;
pub(crate) const CARD_CHALLENGE: u8 = 0x02;
const S_ENC: u8 = 0x04;
const S_MAC: u8 = 0x06;
const S_RMAC: u8 = 0x07;

pub(crate) struct Scp03 {
    s_enc: SecretKey,
    s_mac: SecretKey,
    s_rmac: SecretKey,
    /// The static DEK: SCP03 encrypts key values with it directly.
    dek: SecretKey,
    /// Host challenge ‖ card challenge: the KDF context.
    context: [u8; 16],
    /// The full CMAC of the last command (zero before the first).
    chaining: [u8; 16],
    /// Encryption counter; incremented for every command while C-DEC is on.
    counter: u128,
    pub(crate) level: SecurityLevel,
}

/// Responses with these status words are protected; error responses travel plain.
fn is_protected(sw: StatusWord) -> bool {
    sw.is_success() || matches!(sw.sw1(), 0x62 | 0x63)
}

impl Scp03 {
    pub(crate) fn new(
        keys: &KeySet,
        host_challenge: [u8; 8],
        card_challenge: [u8; 8],
    ) -> Result<Self, GpError> {
        let mut context = [0u8; 16];
        context[..8].copy_from_slice(&host_challenge);
        context[8..].copy_from_slice(&card_challenge);
        let bits = (keys.key_len() * 8) as u16;
        Ok(Self {
            s_enc: secret(&scp03_kdf(keys.enc(), S_ENC, &context, bits)?),
            s_mac: secret(&scp03_kdf(keys.mac(), S_MAC, &context, bits)?),
            s_rmac: secret(&scp03_kdf(keys.mac(), S_RMAC, &context, bits)?),
            dek: secret(keys.dek()),
            context,
            chaining: [0; 16],
            counter: 0,
            level: SecurityLevel::C_MAC,
        })
    }

    fn cryptogram(&self, constant: u8) -> Result<[u8; 8], GpError> {
        let v = scp03_kdf(self.s_mac.bytes(), constant, &self.context, 64)?;
        let mut out = [0u8; 8];
        out.copy_from_slice(&v[..8]);
        Ok(out)
    }
    pub(crate) fn card_cryptogram(&self) -> Result<[u8; 8], GpError> {
        self.cryptogram(CARD_CRYPTOGRAM)
    }
    pub(crate) fn host_cryptogram(&self) -> Result<[u8; 8], GpError> {
        self.cryptogram(HOST_CRYPTOGRAM)
    }

    /// AES-CBC with the static DEK and a zero ICV (Amendment D §7.2.2), whole blocks.
    pub(crate) fn encrypt_key_data(&self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>, GpError> {
        let mut v = Zeroizing::new(data.to_vec());
        aes_cbc_encrypt(self.dek.bytes(), &[0; 16], &mut v)?;
        Ok(v)
    }

    pub(crate) fn decrypt_key_data(&self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>, GpError> {
        let mut v = Zeroizing::new(data.to_vec());
        aes_cbc_decrypt(self.dek.bytes(), &[0; 16], &mut v)?;
        Ok(v)
    }

    /// ICV = AES(S-ENC, counter); responses use the counter with its first byte `80`.
    fn icv(&self, response: bool) -> Result<[u8; 16], GpError> {
        let mut block = self.counter.to_be_bytes();
        if response {
            block[0] = 0x80;
        }
        aes_encrypt_block(self.s_enc.bytes(), &block)
    }

    pub(crate) fn wrap_command(
        &mut self,
        cmd: &Command,
        raise_le: bool,
    ) -> Result<Command, GpError> {
        if self.level.c_dec() {
            self.counter += 1;
        }
        let body = if self.level.c_dec() && !cmd.data().is_empty() {
            let mut p = pad80(cmd.data(), AES_BLOCK);
            aes_cbc_encrypt(self.s_enc.bytes(), &self.icv(false)?, &mut p)?;
            p
        } else {
            Zeroizing::new(cmd.data().to_vec())
        };
        let mut data = Zeroizing::new(Vec::with_capacity(body.len() + MAC_LEN));
        data.extend_from_slice(&body);
        data.extend_from_slice(&[0; MAC_LEN]);
        let cla = cmd.cla() | CLA_SECURE_MESSAGING;
        let probe = Command::new(cla, cmd.ins(), cmd.p1(), cmd.p2()).with_data(&data)?;
        let probe = carry_le(cmd, probe, raise_le && self.level.r_mac())?;
        let header = mac_header(
            cla,
            cmd.ins(),
            cmd.p1(),
            cmd.p2(),
            data.len(),
            probe.is_extended(),
        );
        let mac = aes_cmac(self.s_mac.bytes(), &[&self.chaining, &header, &body])?;
        self.chaining = mac;
        let n = data.len();
        data[n - MAC_LEN..].copy_from_slice(&mac[..MAC_LEN]);
        Ok(probe.with_data(&data)?)
    }

    pub(crate) fn unwrap_command(&mut self, cmd: &Command) -> Result<Command, StatusWord> {
        let data = cmd.data();
        let split = data.len().checked_sub(MAC_LEN).ok_or(SW_BAD_SM)?;
        let (body, mac) = data.split_at(split);
        let header = mac_header(
            cmd.cla(),
            cmd.ins(),
            cmd.p1(),
            cmd.p2(),
            data.len(),
            cmd.is_extended(),
        );
        let full = aes_cmac(self.s_mac.bytes(), &[&self.chaining, &header, body])
            .map_err(|_| SW_BAD_SM)?;
        if !bool::from(full[..MAC_LEN].ct_eq(mac)) {
            return Err(SW_BAD_SM);
        }
        self.chaining = full;
        if self.level.c_dec() {
            self.counter += 1;
        }
        let mut plain = Zeroizing::new(body.to_vec());
        let mut len = plain.len();
        if self.level.c_dec() && !body.is_empty() {
            let icv = self.icv(false).map_err(|_| SW_BAD_SM)?;
            aes_cbc_decrypt(self.s_enc.bytes(), &icv, &mut plain).map_err(|_| SW_BAD_SM)?;
            len = unpad80(&plain, AES_BLOCK).ok_or(SW_BAD_SM)?.len();
        }
        unwrapped(cmd, &plain[..len])
    }

    pub(crate) fn wrap_response(&mut self, resp: Response) -> Response {
        if !self.level.r_mac() || !is_protected(resp.sw()) {
            return resp;
        }
        let sw = resp.sw();
        let wrapped = (|| -> Result<Vec<u8>, GpError> {
            let mut data = if self.level.r_enc() && !resp.data().is_empty() {
                let mut p = pad80(resp.data(), AES_BLOCK);
                aes_cbc_encrypt(self.s_enc.bytes(), &self.icv(true)?, &mut p)?;
                p.to_vec()
            } else {
                resp.data().to_vec()
            };
            let rmac = aes_cmac(
                self.s_rmac.bytes(),
                &[&self.chaining, &data, &sw.to_bytes()],
            )?;
            data.extend_from_slice(&rmac[..MAC_LEN]);
            Ok(data)
        })();
        match wrapped {
            Ok(data) => Response::new(data, sw),
            // Keys were validated when the session was made; report, never panic.
            Err(_) => Response::new(Vec::new(), StatusWord::NO_PRECISE_DIAGNOSIS),
        }
    }

    pub(crate) fn unwrap_response(&mut self, resp: Response) -> Result<Response, GpError> {
        if !self.level.r_mac() {
            return Ok(resp);
        }
        if !is_protected(resp.sw()) {
            return if resp.data().is_empty() {
                Ok(resp)
            } else {
                Err(GpError::MalformedResponse(
                    "an error status word came with data",
                ))
            };
        }
        let data = resp.data();
        let split = data
            .len()
            .checked_sub(MAC_LEN)
            .ok_or(GpError::MalformedResponse(
                "response is shorter than its R-MAC",
            ))?;
        let (body, mac) = data.split_at(split);
        let full = aes_cmac(
            self.s_rmac.bytes(),
            &[&self.chaining, body, &resp.sw().to_bytes()],
        )?;
        if !bool::from(full[..MAC_LEN].ct_eq(mac)) {
            return Err(GpError::ResponseMacMismatch);
        }
        if self.level.r_enc() && !body.is_empty() {
            let mut plain = Zeroizing::new(body.to_vec());
            aes_cbc_decrypt(self.s_enc.bytes(), &self.icv(true)?, &mut plain).map_err(|_| {
                GpError::MalformedResponse("encrypted data is not whole AES blocks")
            })?;
            let clear = unpad80(&plain, AES_BLOCK)
                .ok_or(GpError::MalformedResponse("R-ENC padding is wrong"))?;
            return Ok(Response::new(clear.to_vec(), resp.sw()));
        }
        Ok(Response::new(body.to_vec(), resp.sw()))
    }
}

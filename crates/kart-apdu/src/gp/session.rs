//! One authenticated session, either protocol: the state both the host and the
//! card side keep, and the four wrap/unwrap operations on it.

use super::keys::SecretKey;
use super::scp02::Scp02;
use super::scp03::Scp03;
use super::{GpError, SecurityLevel, CLA_SECURE_MESSAGING};
use crate::{Command, Response, StatusWord};
use zeroize::Zeroizing;

/// `6988`: the card's answer to a command whose secure messaging does not verify.
pub(crate) const SW_BAD_SM: StatusWord = StatusWord::SM_DATA_OBJECTS_INCORRECT;

/// An authenticated session of either protocol.
pub(crate) enum Session {
    Scp02(Scp02),
    Scp03(Scp03),
}

impl Session {
    pub(crate) fn level(&self) -> SecurityLevel {
        match self {
            Session::Scp02(s) => s.level,
            Session::Scp03(s) => s.level,
        }
    }
    pub(crate) fn set_level(&mut self, level: SecurityLevel) {
        match self {
            Session::Scp02(s) => s.level = level,
            Session::Scp03(s) => s.level = level,
        }
    }
    pub(crate) fn card_cryptogram(&self) -> Result<[u8; 8], GpError> {
        match self {
            Session::Scp02(s) => s.card_cryptogram(),
            Session::Scp03(s) => s.card_cryptogram(),
        }
    }
    pub(crate) fn host_cryptogram(&self) -> Result<[u8; 8], GpError> {
        match self {
            Session::Scp02(s) => s.host_cryptogram(),
            Session::Scp03(s) => s.host_cryptogram(),
        }
    }
    pub(crate) fn encrypt_key_data(&self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>, GpError> {
        match self {
            Session::Scp02(s) => s.encrypt_key_data(data),
            Session::Scp03(s) => s.encrypt_key_data(data),
        }
    }
    pub(crate) fn decrypt_key_data(&self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>, GpError> {
        match self {
            Session::Scp02(s) => s.decrypt_key_data(data),
            Session::Scp03(s) => s.decrypt_key_data(data),
        }
    }
    /// Host: protects a command at the current level. With `raise_le` a
    /// short Le grows to 256 when responses carry an R-MAC (see
    /// [`carry_le`]); without it Le stays as given (the card's own count
    /// after a `6Cxx`).
    pub(crate) fn wrap_command(
        &mut self,
        cmd: &Command,
        raise_le: bool,
    ) -> Result<Command, GpError> {
        if !self.level().c_mac() {
            return Ok(cmd.clone());
        }
        match self {
            Session::Scp02(s) => s.wrap_command(cmd),
            Session::Scp03(s) => s.wrap_command(cmd, raise_le),
        }
    }
    /// Card: checks and strips a protected command (`6988` when it does not verify).
    pub(crate) fn unwrap_command(&mut self, cmd: &Command) -> Result<Command, StatusWord> {
        match self {
            Session::Scp02(s) => s.unwrap_command(cmd),
            Session::Scp03(s) => s.unwrap_command(cmd),
        }
    }
    /// Card: protects a response at the current level.
    pub(crate) fn wrap_response(&mut self, resp: Response) -> Response {
        match self {
            Session::Scp02(_) => resp,
            Session::Scp03(s) => s.wrap_response(resp),
        }
    }
    /// Host: checks and strips a protected response.
    pub(crate) fn unwrap_response(&mut self, resp: Response) -> Result<Response, GpError> {
        match self {
            Session::Scp02(_) => Ok(resp),
            Session::Scp03(s) => s.unwrap_response(resp),
        }
    }
}

/// The header bytes a MAC covers: CLA INS P1 P2 and Lc for `nc` data bytes,
/// in short (1 byte) or extended (`00` + 2 bytes) form.
pub(crate) fn mac_header(cla: u8, ins: u8, p1: u8, p2: u8, nc: usize, extended: bool) -> Vec<u8> {
    let mut h = vec![cla, ins, p1, p2];
    if extended {
        h.push(0);
        h.extend_from_slice(&(nc as u16).to_be_bytes());
    } else {
        h.push(nc as u8);
    }
    h
}

/// Copies Le and the sensitivity mark of `from` onto `to`, raising a short Le
/// to 256 when responses grow by a MAC and padding.
pub(crate) fn carry_le(
    from: &Command,
    mut to: Command,
    response_grows: bool,
) -> Result<Command, GpError> {
    if let Some(ne) = from.le() {
        let ne = if response_grows && ne <= 256 { 256 } else { ne };
        to = to.with_le(ne)?;
    }
    if from.is_extended() {
        to = to.extended();
    }
    if from.is_sensitive() {
        to = to.sensitive();
    }
    Ok(to)
}

/// Card: the plain command a secured `cmd` stands for, with its secure
/// messaging removed: the header without the CLA bit `04`, `data`, and `cmd`'s Le.
pub(crate) fn unwrapped(cmd: &Command, data: &[u8]) -> Result<Command, StatusWord> {
    let out = Command::new(
        cmd.cla() & !CLA_SECURE_MESSAGING,
        cmd.ins(),
        cmd.p1(),
        cmd.p2(),
    )
    .with_data(data)
    .map_err(|_| SW_BAD_SM)?;
    match cmd.le() {
        Some(ne) => out.with_le(ne).map_err(|_| SW_BAD_SM),
        None => Ok(out),
    }
}

/// Keeps derived key bytes as a secret (wiped on drop, never printed).
pub(crate) fn secret(bytes: &[u8]) -> SecretKey {
    SecretKey::new(bytes)
}

//! The host side: opening a secure channel and wrapping every command in it.

use super::crypto::{AES_BLOCK, DES_BLOCK};
use super::key_source::Borrowed;
use super::scp02::Scp02;
use super::scp03::Scp03;
use super::session::Session;
use super::{CardKeySource, Diversification, GpError, KeySet, ScpVersion, SecurityLevel, MAC_LEN};
use crate::transport::transmit_command;
use crate::{CardCaps, Command, Response, StatusWord, Transport, TransportError};
use subtle::ConstantTimeEq;

/// What the host asks for when opening a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScpParams {
    /// Key version number sent in INITIALIZE UPDATE P1 (`00`: the card's default).
    pub key_version: u8,
    /// How the given keys become this card's keys.
    pub diversification: Diversification,
    /// The SCP02 i-parameter (cards do not report it): `15` or `55` usually.
    pub scp02_i: u8,
    /// Refuse a card that answers with another protocol.
    pub version: Option<ScpVersion>,
}

impl Default for ScpParams {
    /// Key version `00`, no diversification, SCP02 i = `55`, either protocol.
    fn default() -> Self {
        Self {
            key_version: 0,
            diversification: Diversification::None,
            scp02_i: 0x55,
            version: None,
        }
    }
}

/// What the card said about the channel in its INITIALIZE UPDATE response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelInfo {
    /// Protocol in use.
    pub version: ScpVersion,
    /// i-parameter (SCP03: from the card; SCP02: from [`ScpParams`]).
    pub i: u8,
    /// Key version the card used.
    pub key_version: u8,
    /// The card's key diversification data.
    pub key_diversification_data: [u8; 10],
    /// Sequence counter (SCP02 always, SCP03 with pseudo-random challenges).
    pub sequence_counter: Option<u32>,
}

/// The transport handed back when a channel could not be opened, so nothing is lost.
pub struct OpenFailed<T> {
    /// Why it failed.
    pub error: GpError,
    /// The transport, ready for another attempt.
    pub transport: T,
}

impl<T> std::fmt::Debug for OpenFailed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenFailed")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}
impl<T> std::fmt::Display for OpenFailed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "could not open a secure channel: {}", self.error)
    }
}
impl<T> std::error::Error for OpenFailed<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
impl<T> From<OpenFailed<T>> for GpError {
    fn from(e: OpenFailed<T>) -> Self {
        e.error
    }
}

/// An open GlobalPlatform secure channel over a transport; itself a [`Transport`].
///
/// Put a [`Card`](crate::Card) under it so that `61xx` is resolved inside the
/// channel, and another on top so that long commands are chained before they
/// are wrapped: `Card<SecureChannel<Card<Reader>>>`. See the [module
/// example](super) for a complete session against the card side.
pub struct SecureChannel<T> {
    inner: T,
    session: Session,
    info: ChannelInfo,
    open: bool,
}

/// Shows the channel's parameters; never keys or MAC state.
impl<T> std::fmt::Debug for SecureChannel<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureChannel")
            .field("info", &self.info)
            .field("level", &self.session.level())
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

fn exchange<T: Transport>(t: &mut T, cmd: &Command) -> Result<Response, GpError> {
    let mut rx = Vec::with_capacity(258);
    t.transmit(&cmd.to_vec(), &mut rx)?;
    Response::from_bytes(&rx)
        .map_err(|_| GpError::MalformedResponse("fewer than the two status bytes"))
}

/// `resp` if the card accepted `command`, else why not.
fn succeeded(command: &'static str, resp: Response) -> Result<Response, GpError> {
    if resp.is_success() {
        Ok(resp)
    } else {
        Err(GpError::CardRefused {
            command,
            sw: resp.sw(),
        })
    }
}

fn malformed(what: String) -> GpError {
    GpError::MalformedInitializeUpdate(what)
}

impl<T: Transport> SecureChannel<T> {
    /// Opens a channel with a random host challenge: INITIALIZE UPDATE, card
    /// cryptogram check, EXTERNAL AUTHENTICATE at `level`. The security domain
    /// must already be selected.
    pub fn open(
        transport: T,
        keys: &KeySet,
        params: &ScpParams,
        level: SecurityLevel,
    ) -> Result<Self, OpenFailed<T>> {
        let source = Borrowed {
            master: keys,
            method: params.diversification,
        };
        Self::open_from(transport, &source, params, level)
    }

    /// [`open`](Self::open) with the card's static keys from `source`, given
    /// the key diversification data and key version of the card's INITIALIZE
    /// UPDATE response (`params.diversification` is the source's business and
    /// is not used here).
    pub fn open_from(
        transport: T,
        source: &dyn CardKeySource,
        params: &ScpParams,
        level: SecurityLevel,
    ) -> Result<Self, OpenFailed<T>> {
        let mut challenge = [0u8; 8];
        if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut challenge).is_err()
        {
            return Err(OpenFailed {
                error: GpError::Random,
                transport,
            });
        }
        Self::open_from_with_challenge(transport, source, params, level, challenge)
    }

    /// [`open`](Self::open) with a given host challenge (to replay recorded transcripts).
    pub fn open_with_challenge(
        transport: T,
        keys: &KeySet,
        params: &ScpParams,
        level: SecurityLevel,
        host_challenge: [u8; 8],
    ) -> Result<Self, OpenFailed<T>> {
        let source = Borrowed {
            master: keys,
            method: params.diversification,
        };
        Self::open_from_with_challenge(transport, &source, params, level, host_challenge)
    }

    /// [`open_from`](Self::open_from) with a given host challenge.
    pub fn open_from_with_challenge(
        mut transport: T,
        source: &dyn CardKeySource,
        params: &ScpParams,
        level: SecurityLevel,
        host_challenge: [u8; 8],
    ) -> Result<Self, OpenFailed<T>> {
        match handshake(&mut transport, source, *params, level, host_challenge) {
            Ok((session, info)) => Ok(Self {
                inner: transport,
                session,
                info,
                open: true,
            }),
            Err(error) => Err(OpenFailed { error, transport }),
        }
    }

    /// **For conformance testing of cards only, never for personalization.**
    ///
    /// Runs the handshake of [`open`](Self::open) up to EXTERNAL
    /// AUTHENTICATE, then sends that command with one bit of the host
    /// cryptogram flipped and a C-MAC correctly computed over the corrupted
    /// command, so that a card which checks the MAC first still reaches the
    /// cryptogram check. Returns the card's status word: a conforming card
    /// answers `6300` and counts one authentication failure (see the table in
    /// [`card`](super::card)). No channel is opened on the host side, whatever
    /// the card answers.
    ///
    /// Each call costs the card one of its limited authentication tries.
    ///
    /// ```
    /// use kart_apdu::gp::card::{CardConfig, CardSecureChannel};
    /// use kart_apdu::gp::{KeySet, ScpParams, SecureChannel, SecurityLevel};
    /// use kart_apdu::{Command, Response, StatusWord, Transport, TransportError};
    ///
    /// struct Sim(CardSecureChannel);
    /// impl Transport for Sim {
    ///     fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
    ///         let cmd = Command::decode(apdu).map_err(|e| TransportError::Other(e.to_string()))?;
    ///         let resp = match cmd.ins() {
    ///             0x50 => match self.0.initialize_update(&cmd, |c| c.fill(0x11)) {
    ///                 Ok(data) => Response::new(data, StatusWord::SUCCESS),
    ///                 Err(sw) => Response::new(vec![], sw),
    ///             },
    ///             _ => Response::new(vec![], self.0.external_authenticate(&cmd).err().unwrap_or(StatusWord::SUCCESS)),
    ///         };
    ///         *rx = resp.to_vec();
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let keys = KeySet::from_master(&[0x40; 16], 0x30)?;
    /// let mut card = Sim(CardSecureChannel::new(keys.clone(), CardConfig::scp03([1; 10]))?);
    /// let sw = SecureChannel::open_with_wrong_host_cryptogram(
    ///     &mut card, &keys, &ScpParams::default(), SecurityLevel::C_MAC)?;
    /// assert_eq!(sw, StatusWord(0x6300));
    /// assert_eq!(card.0.failures_left(), 9);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_with_wrong_host_cryptogram(
        transport: &mut T,
        keys: &KeySet,
        params: &ScpParams,
        level: SecurityLevel,
    ) -> Result<StatusWord, GpError> {
        let source = Borrowed {
            master: keys,
            method: params.diversification,
        };
        Self::wrong_host_cryptogram_from(transport, &source, params, level)
    }

    /// [`open_with_wrong_host_cryptogram`](Self::open_with_wrong_host_cryptogram)
    /// with the card's keys from `source`. **Conformance testing only.**
    pub fn wrong_host_cryptogram_from(
        transport: &mut T,
        source: &dyn CardKeySource,
        params: &ScpParams,
        level: SecurityLevel,
    ) -> Result<StatusWord, GpError> {
        let mut challenge = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut challenge)
            .map_err(|_| GpError::Random)?;
        let (mut session, _) = initialize_update(transport, source, *params, level, challenge)?;
        let mut wrong = session.host_cryptogram()?;
        wrong[0] ^= 0x01;
        Ok(external_authenticate(transport, &mut session, level, wrong)?.sw())
    }

    /// Sends one command through the channel and returns the unwrapped response.
    ///
    /// A `6Cxx` answer (wrong Le, xx available) is followed by the command
    /// once more, wrapped anew with xx as its Le; the second answer is returned.
    ///
    /// Any failure (transport, R-MAC) closes the channel: its MAC chain is
    /// no longer in step with the card's.
    pub fn send(&mut self, cmd: &Command) -> Result<Response, GpError> {
        if !self.open {
            return Err(GpError::Closed);
        }
        let result = self.send_open(cmd);
        if result.is_err() {
            self.open = false;
        }
        result
    }

    fn send_open(&mut self, cmd: &Command) -> Result<Response, GpError> {
        let (resp, raised) = self.exchange_wrapped(cmd, true)?;
        // The caller's Ne, when the card was asked for more.
        let asked = if raised { cmd.le() } else { None };
        // `6Cxx`: the card took the command, C-MAC and all, and says how
        // many bytes it has for it. The transport below does not send the
        // same bytes again (a replayed C-MAC: `6988`, channel closed), so
        // the command goes once more here, wrapped with the next MAC and
        // with exactly that Le.
        if resp.sw().sw1() == 0x6C && cmd.le().is_some() {
            let ne = match resp.sw().sw2() {
                0 => 256,
                n => u32::from(n),
            };
            let (resp, _) = self.exchange_wrapped(&cmd.clone().with_le(ne)?, false)?;
            return Ok(at_most(resp, asked));
        }
        Ok(at_most(resp, asked))
    }

    /// `cmd` wrapped, sent and its response unwrapped; `raise_le` as
    /// [`Session::wrap_command`] takes it. Also whether the wrapped command
    /// asked the card for more bytes than `cmd` does (its Le raised).
    fn exchange_wrapped(
        &mut self,
        cmd: &Command,
        raise_le: bool,
    ) -> Result<(Response, bool), GpError> {
        let wrapped = self.session.wrap_command(cmd, raise_le)?;
        let raised = matches!((wrapped.le(), cmd.le()), (Some(sent), Some(asked)) if sent > asked);
        let resp = exchange(&mut self.inner, &wrapped)?;
        Ok((self.session.unwrap_response(resp)?, raised))
    }

    /// Encrypts key values for PUT KEY: SCP02 with the session DEK (3DES-ECB),
    /// SCP03 with the static DEK (AES-CBC, zero ICV). `key` must be whole
    /// cipher blocks (8 or 16 bytes); the result is wiped on drop.
    pub fn encrypt_key_data(&self, key: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, GpError> {
        self.session.encrypt_key_data(key)
    }

    /// What the card reported when the channel was opened.
    pub fn info(&self) -> ChannelInfo {
        self.info
    }
    /// The security level in force.
    pub fn level(&self) -> SecurityLevel {
        self.session.level()
    }
    /// Whether the channel can still be used.
    pub fn is_open(&self) -> bool {
        self.open
    }
    /// The transport underneath.
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }
    /// Ends the channel (the card ends it on its next reset or INITIALIZE UPDATE)
    /// and returns the transport.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

/// `resp` cut to the `asked` Ne of a caller whose Le the channel raised.
/// Under R-MAC a short Le goes to the card as 256, to leave room for the
/// MAC, so the card may answer more than the caller asked; the caller gets
/// what it asked for, and an end-of-file warning (`6282`: fewer than Ne
/// bytes) that does not hold for its Ne becomes `9000`. `None` (an Le the
/// card got as given) leaves `resp` whole: a longer answer to an Le of 256
/// is the card's `61xx` chain, joined below the channel.
fn at_most(resp: Response, asked: Option<u32>) -> Response {
    let Some(ne) = asked.map(|n| n as usize) else {
        return resp;
    };
    if resp.data().len() < ne {
        return resp;
    }
    let sw = match resp.sw() {
        StatusWord::END_OF_FILE => StatusWord::SUCCESS,
        sw => sw,
    };
    let mut data = resp.data().to_vec();
    data.truncate(ne);
    Response::new(data, sw)
}

fn handshake<T: Transport>(
    t: &mut T,
    keys: &dyn CardKeySource,
    params: ScpParams,
    level: SecurityLevel,
    host_challenge: [u8; 8],
) -> Result<(Session, ChannelInfo), GpError> {
    let (mut session, info) = initialize_update(t, keys, params, level, host_challenge)?;
    let host_cryptogram = session.host_cryptogram()?;
    succeeded(
        "EXTERNAL AUTHENTICATE",
        external_authenticate(t, &mut session, level, host_cryptogram)?,
    )?;
    session.set_level(level);
    Ok((session, info))
}

/// INITIALIZE UPDATE and the card cryptogram check: a session not yet
/// authenticated to the card.
fn initialize_update<T: Transport>(
    t: &mut T,
    keys: &dyn CardKeySource,
    params: ScpParams,
    level: SecurityLevel,
    host_challenge: [u8; 8],
) -> Result<(Session, ChannelInfo), GpError> {
    let iu = Command::new(0x80, 0x50, params.key_version, 0x00)
        .with_data(&host_challenge)?
        .with_le(256)?;
    let resp = succeeded("INITIALIZE UPDATE", exchange(t, &iu)?)?;
    let d = resp.data();
    let (Some(kdd), Some(&key_version), Some(&scp)) = (d.get(..10), d.get(10), d.get(11)) else {
        return Err(malformed(format!("{} bytes is too short", d.len())));
    };
    let version = match scp {
        0x02 => ScpVersion::Scp02,
        0x03 => ScpVersion::Scp03,
        other => {
            return Err(GpError::Unsupported(format!(
                "the card uses SCP{other:02X}"
            )))
        }
    };
    if let Some(expected) = params.version.filter(|v| *v != version) {
        return Err(GpError::ProtocolMismatch {
            expected,
            found: version,
        });
    }
    let mut kdd_arr = [0u8; 10];
    kdd_arr.copy_from_slice(kdd);
    // The card's static keys: in memory for this session only, zeroized on drop.
    let card_keys = keys.card_keys(&kdd_arr, key_version)?;
    let (session, i, seq, cryptogram) = match version {
        ScpVersion::Scp02 => {
            let d: &[u8; 28] = d.try_into().map_err(|_| {
                malformed(format!("SCP02 response has {} bytes, expected 28", d.len()))
            })?;
            if level.r_mac() {
                return Err(GpError::Unsupported("R-MAC with SCP02".into()));
            }
            let seq = [d[12], d[13]];
            let mut card = [0u8; 6];
            card.copy_from_slice(&d[14..20]);
            let s = Scp02::new(&card_keys, params.scp02_i, seq, host_challenge, card)?;
            (
                Session::Scp02(s),
                params.scp02_i,
                Some(u32::from(u16::from_be_bytes(seq))),
                &d[20..28],
            )
        }
        ScpVersion::Scp03 => {
            if d.len() != 29 && d.len() != 32 {
                return Err(malformed(format!(
                    "SCP03 response has {} bytes, expected 29 or 32",
                    d.len()
                )));
            }
            let i = d[12];
            if level.r_mac() && i & 0x20 == 0 || level.r_enc() && i & 0x40 == 0 {
                return Err(GpError::Unsupported(format!(
                    "security level {:02X} on a card with i={i:02X} (no R-MAC/R-ENC support)",
                    level.bits()
                )));
            }
            let mut card = [0u8; 8];
            card.copy_from_slice(&d[13..21]);
            let seq = d
                .get(29..32)
                .map(|s| u32::from_be_bytes([0, s[0], s[1], s[2]]));
            let s = Scp03::new(&card_keys, host_challenge, card)?;
            (Session::Scp03(s), i, seq, &d[21..29])
        }
    };
    let expected = session.card_cryptogram()?;
    if !bool::from(expected.ct_eq(cryptogram)) {
        return Err(GpError::CardCryptogramMismatch);
    }
    let info = ChannelInfo {
        version,
        i,
        key_version,
        key_diversification_data: kdd_arr,
        sequence_counter: seq,
    };
    Ok((session, info))
}

/// EXTERNAL AUTHENTICATE at `level` with `host_cryptogram`, C-MACed by the
/// session; the card's answer, whatever it is.
fn external_authenticate<T: Transport>(
    t: &mut T,
    session: &mut Session,
    level: SecurityLevel,
    host_cryptogram: [u8; 8],
) -> Result<Response, GpError> {
    let ea = Command::new(0x80, 0x82, level.bits(), 0x00).with_data(&host_cryptogram)?;
    exchange(t, &session.wrap_command(&ea, true)?)
}

/// The channel delivers complete, unwrapped responses; its capabilities leave
/// room for the C-MAC and the C-DEC padding so that a [`Card`](crate::Card)
/// above splits or chains commands to sizes that still fit once wrapped.
impl<T: Transport> Transport for SecureChannel<T> {
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        transmit_command(
            apdu,
            rx,
            |cmd| self.send(cmd),
            |e| match e {
                GpError::Transport(e) => e,
                e => TransportError::Other(format!("secure channel: {e}")),
            },
        )
    }

    fn capabilities(&self) -> CardCaps {
        let caps = self.inner.capabilities();
        let level = self.session.level();
        if !level.c_mac() {
            return caps;
        }
        let block = match self.info.version {
            ScpVersion::Scp02 => DES_BLOCK,
            ScpVersion::Scp03 => AES_BLOCK,
        };
        let max = caps.max_command_data;
        let room = max.saturating_sub(MAC_LEN);
        let plain_max = if level.c_dec() {
            (room / block * block).saturating_sub(1)
        } else {
            room
        };
        caps.reserve(max - plain_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gp::card::{CardConfig, CardSecureChannel, DEFAULT_MAX_AUTH_FAILURES};

    /// The GP card side alone: the two handshake commands and nothing else.
    struct GpCard(CardSecureChannel);

    impl Transport for GpCard {
        fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
            let cmd = Command::decode(apdu).map_err(|e| TransportError::Other(e.to_string()))?;
            let (data, sw) = if cmd.ins() == 0x50 {
                match self.0.initialize_update(&cmd, |c| c.fill(0x5A)) {
                    Ok(data) => (data, StatusWord::SUCCESS),
                    Err(sw) => (vec![], sw),
                }
            } else {
                let result = self.0.external_authenticate(&cmd);
                (vec![], result.err().unwrap_or(StatusWord::SUCCESS))
            };
            *rx = Response::new(data, sw).to_vec();
            Ok(())
        }
    }

    fn cards() -> Vec<(GpCard, KeySet)> {
        // Distinct ENC, MAC and DEK, so a MAC computed with the wrong key shows.
        let aes = KeySet::new(&[0x40; 16], &[0x41; 16], &[0x42; 16], 0x30).unwrap();
        let des = KeySet::new(&[0x50; 16], &[0x51; 16], &[0x52; 16], 0x20).unwrap();
        vec![
            (
                GpCard(CardSecureChannel::new(aes.clone(), CardConfig::scp03([1; 10])).unwrap()),
                aes,
            ),
            (
                GpCard(CardSecureChannel::new(des.clone(), CardConfig::scp02([2; 10])).unwrap()),
                des,
            ),
        ]
    }

    #[test]
    fn wrong_host_cryptogram_with_a_valid_mac_costs_one_try_and_answers_6300() {
        for (mut card, keys) in cards() {
            let params = ScpParams::default();
            for level in [SecurityLevel::C_MAC, SecurityLevel::C_DEC_C_MAC] {
                let before = card.0.failures_left();
                let sw = SecureChannel::open_with_wrong_host_cryptogram(
                    &mut card, &keys, &params, level,
                )
                .unwrap();
                // 6982 would mean the card rejected the C-MAC, not the cryptogram.
                assert_eq!(sw, StatusWord(0x6300), "level {:02X}", level.bits());
                assert_eq!(card.0.failures_left(), before - 1);
                assert!(!card.0.is_open());
            }
            // The right cryptogram still opens, and success resets the count.
            let ch = SecureChannel::open(card, &keys, &params, SecurityLevel::C_MAC).unwrap();
            let card = ch.into_inner();
            assert!(card.0.is_open());
            assert_eq!(card.0.failures_left(), DEFAULT_MAX_AUTH_FAILURES);
        }
    }

    #[test]
    fn wrong_host_cryptograms_block_the_keys_after_the_allowed_tries() {
        let (mut card, keys) = cards().remove(0);
        let params = ScpParams::default();
        let try_wrong = |card: &mut GpCard| {
            SecureChannel::open_with_wrong_host_cryptogram(
                card,
                &keys,
                &params,
                SecurityLevel::C_MAC,
            )
        };
        for left in (0..DEFAULT_MAX_AUTH_FAILURES).rev() {
            assert_eq!(try_wrong(&mut card).unwrap(), StatusWord(0x6300));
            assert_eq!(card.0.failures_left(), left);
        }
        // Blocked: the card now refuses the handshake at its first step.
        match try_wrong(&mut card) {
            Err(GpError::CardRefused { command, sw }) => {
                assert_eq!((command, sw), ("INITIALIZE UPDATE", StatusWord(0x6983)));
            }
            other => panic!("{other:?}"),
        }
    }
}

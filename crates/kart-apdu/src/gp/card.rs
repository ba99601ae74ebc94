//! The card side of SCP02 and SCP03, for simulators.
//!
//! A card manager routes INITIALIZE UPDATE (INS `50`) to
//! [`CardSecureChannel::initialize_update`], EXTERNAL AUTHENTICATE (INS `82`)
//! to [`CardSecureChannel::external_authenticate`], every other command
//! through [`CardSecureChannel::unwrap_command`] before processing it, and
//! every response through [`CardSecureChannel::wrap_response`].
//!
//! Status words, as GlobalPlatform cards answer them:
//!
//! | SW | when |
//! |---|---|
//! | `6E00` | INITIALIZE UPDATE with a CLA other than `80`–`83` |
//! | `6A86` | INITIALIZE UPDATE P2 not `00`; EXTERNAL AUTHENTICATE P1 not a level this channel supports |
//! | `6700` | INITIALIZE UPDATE data not 8 bytes; EXTERNAL AUTHENTICATE data not 16 bytes; undecodable APDU |
//! | `6A88` | INITIALIZE UPDATE asks for a key version the card does not have |
//! | `6985` | EXTERNAL AUTHENTICATE without a preceding INITIALIZE UPDATE; sequence counter exhausted |
//! | `6982` | EXTERNAL AUTHENTICATE not MACed or its C-MAC wrong (counts as a failure); a secured command with no channel open; a plain command while a C-MAC level is in force (the channel closes) |
//! | `6300` | host cryptogram wrong: one authentication failure counted |
//! | `6983` | the failure counter is exhausted: the keys are blocked for good |
//! | `6988` | a command's C-MAC or C-DEC padding does not verify, including replayed or reordered commands (the channel closes) |

use super::crypto::scp03_kdf;
use super::scp02::Scp02;
use super::scp03::{Scp03, CARD_CHALLENGE};
use super::session::Session;
use super::{GpError, KeySet, ScpVersion, SecurityLevel, CLA_SECURE_MESSAGING};
use crate::{Command, Response, StatusWord};
use subtle::ConstantTimeEq;

const SW_WRONG_LENGTH: StatusWord = StatusWord::WRONG_LENGTH;
const SW_CLA_NOT_SUPPORTED: StatusWord = StatusWord::CLA_NOT_SUPPORTED;
const SW_INCORRECT_P1P2: StatusWord = StatusWord::INCORRECT_P1P2;
const SW_REFERENCED_DATA_NOT_FOUND: StatusWord = StatusWord::REFERENCED_DATA_NOT_FOUND;
const SW_AUTH_FAILED: StatusWord = StatusWord::AUTHENTICATION_FAILED;
const SW_NO_PRECISE_DIAGNOSIS: StatusWord = StatusWord::NO_PRECISE_DIAGNOSIS;

/// Default number of failed EXTERNAL AUTHENTICATEs before the keys are blocked.
pub const DEFAULT_MAX_AUTH_FAILURES: u8 = 10;

/// The card's secure channel configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardConfig {
    /// Protocol the card speaks.
    pub version: ScpVersion,
    /// i-parameter: SCP02 `15`/`55`/`05`/`45`; SCP03 bit `10` pseudo-random
    /// challenge, `20` R-MAC, `40` R-ENC (e.g. `70`).
    pub i: u8,
    /// Key diversification data returned in INITIALIZE UPDATE.
    pub key_diversification_data: [u8; 10],
    /// Sequence counter: SCP02 (16 bits) is incremented after each successful
    /// EXTERNAL AUTHENTICATE, SCP03 (24 bits) before each pseudo-random challenge.
    pub sequence_counter: u32,
    /// Failed authentications allowed before the keys are blocked.
    pub max_auth_failures: u8,
    /// AID of the security domain (input to the SCP03 pseudo-random card challenge).
    pub aid: Vec<u8>,
}

impl CardConfig {
    /// SCP02 with i = `55`, counter 0, [`DEFAULT_MAX_AUTH_FAILURES`].
    pub fn scp02(key_diversification_data: [u8; 10]) -> Self {
        Self {
            version: ScpVersion::Scp02,
            i: 0x55,
            key_diversification_data,
            sequence_counter: 0,
            max_auth_failures: DEFAULT_MAX_AUTH_FAILURES,
            aid: vec![0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00],
        }
    }
    /// SCP03 with i = `70` (pseudo-random challenge, R-MAC, R-ENC), counter 0,
    /// the GP issuer security domain AID `A000000151000000`.
    pub fn scp03(key_diversification_data: [u8; 10]) -> Self {
        Self {
            version: ScpVersion::Scp03,
            i: 0x70,
            ..Self::scp02(key_diversification_data)
        }
    }
}

enum State {
    Idle,
    /// INITIALIZE UPDATE answered; waiting for EXTERNAL AUTHENTICATE.
    Pending(Session),
    Open(Session),
}

/// The card side of a secure channel: static keys (already diversified), key
/// version, protocol and the authentication failure counter.
///
/// See the [module example](super) for a host talking to it.
pub struct CardSecureChannel {
    keys: KeySet,
    config: CardConfig,
    failures_left: u8,
    state: State,
}

impl std::fmt::Debug for CardSecureChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardSecureChannel")
            .field("keys", &self.keys)
            .field("config", &self.config)
            .field("failures_left", &self.failures_left)
            .field("open", &self.is_open())
            .finish_non_exhaustive()
    }
}

impl CardSecureChannel {
    /// A card with these keys and this configuration. Refuses keys that do not
    /// fit the protocol and SCP02 i-parameters this crate does not implement.
    pub fn new(keys: KeySet, config: CardConfig) -> Result<Self, GpError> {
        match config.version {
            ScpVersion::Scp02 => {
                super::scp02::check_i(config.i)?;
                if keys.key_len() != 16 {
                    return Err(GpError::InvalidKey("SCP02 needs 16-byte keys".into()));
                }
            }
            ScpVersion::Scp03 => {}
        }
        Ok(Self {
            failures_left: config.max_auth_failures,
            keys,
            config,
            state: State::Idle,
        })
    }

    /// Answers INITIALIZE UPDATE: returns the response data (key
    /// diversification data, key information, sequence counter or
    /// i-parameter, card challenge, card cryptogram). `fill_challenge` fills
    /// the card challenge with random bytes (not called for SCP03
    /// pseudo-random challenges). Aborts any open session.
    pub fn initialize_update(
        &mut self,
        cmd: &Command,
        fill_challenge: impl FnOnce(&mut [u8]),
    ) -> Result<Vec<u8>, StatusWord> {
        self.state = State::Idle;
        if self.failures_left == 0 {
            return Err(StatusWord::AUTH_METHOD_BLOCKED);
        }
        if cmd.cla() & 0xFC != 0x80 {
            return Err(SW_CLA_NOT_SUPPORTED);
        }
        if cmd.p2() != 0 {
            return Err(SW_INCORRECT_P1P2);
        }
        let host: &[u8; 8] = cmd.data().try_into().map_err(|_| SW_WRONG_LENGTH)?;
        if cmd.p1() != 0 && cmd.p1() != self.keys.version() {
            return Err(SW_REFERENCED_DATA_NOT_FOUND);
        }
        let mut out = Vec::with_capacity(32);
        out.extend_from_slice(&self.config.key_diversification_data);
        out.push(self.keys.version());
        let fail = |_| SW_NO_PRECISE_DIAGNOSIS;
        let session = match self.config.version {
            ScpVersion::Scp02 => {
                let seq = u16::try_from(self.config.sequence_counter)
                    .map_err(|_| StatusWord::CONDITIONS_NOT_SATISFIED)?
                    .to_be_bytes();
                let mut card = [0u8; 6];
                fill_challenge(&mut card);
                let s = Scp02::new(&self.keys, self.config.i, seq, *host, card).map_err(fail)?;
                out.push(0x02);
                out.extend_from_slice(&seq);
                out.extend_from_slice(&card);
                out.extend_from_slice(&s.card_cryptogram().map_err(fail)?);
                Session::Scp02(s)
            }
            ScpVersion::Scp03 => {
                let mut card = [0u8; 8];
                let mut seq = None;
                if self.config.i & 0x10 != 0 {
                    let next = self.config.sequence_counter + 1;
                    if next > 0x00FF_FFFF {
                        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
                    }
                    self.config.sequence_counter = next;
                    let s = &next.to_be_bytes()[1..];
                    let mut context = s.to_vec();
                    context.extend_from_slice(&self.config.aid);
                    let c =
                        scp03_kdf(self.keys.enc(), CARD_CHALLENGE, &context, 64).map_err(fail)?;
                    card.copy_from_slice(&c[..8]);
                    seq = Some([s[0], s[1], s[2]]);
                } else {
                    fill_challenge(&mut card);
                }
                let s = Scp03::new(&self.keys, *host, card).map_err(fail)?;
                out.extend_from_slice(&[0x03, self.config.i]);
                out.extend_from_slice(&card);
                out.extend_from_slice(&s.card_cryptogram().map_err(fail)?);
                if let Some(seq) = seq {
                    out.extend_from_slice(&seq);
                }
                Session::Scp03(s)
            }
        };
        self.state = State::Pending(session);
        Ok(out)
    }

    fn level_supported(&self, level: SecurityLevel) -> bool {
        match self.config.version {
            ScpVersion::Scp02 => !level.r_mac(),
            ScpVersion::Scp03 => {
                (!level.r_mac() || self.config.i & 0x20 != 0)
                    && (!level.r_enc() || self.config.i & 0x40 != 0)
            }
        }
    }

    fn count_failure(&mut self, sw: StatusWord) -> StatusWord {
        self.failures_left = self.failures_left.saturating_sub(1);
        sw
    }

    /// Answers EXTERNAL AUTHENTICATE: checks its C-MAC and the host
    /// cryptogram, and opens the channel at the level in P1.
    pub fn external_authenticate(&mut self, cmd: &Command) -> Result<(), StatusWord> {
        let State::Pending(mut session) = std::mem::replace(&mut self.state, State::Idle) else {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        };
        if self.failures_left == 0 {
            return Err(StatusWord::AUTH_METHOD_BLOCKED);
        }
        if cmd.cla() & CLA_SECURE_MESSAGING == 0 {
            return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        }
        let level = SecurityLevel::from_byte(cmd.p1())
            .filter(|l| self.level_supported(*l))
            .ok_or(SW_INCORRECT_P1P2)?;
        if cmd.data().len() != 16 {
            return Err(SW_WRONG_LENGTH);
        }
        let Ok(plain) = session.unwrap_command(cmd) else {
            return Err(self.count_failure(StatusWord::SECURITY_STATUS_NOT_SATISFIED));
        };
        let expected = session
            .host_cryptogram()
            .map_err(|_| SW_NO_PRECISE_DIAGNOSIS)?;
        if !bool::from(expected.ct_eq(plain.data())) {
            return Err(self.count_failure(SW_AUTH_FAILED));
        }
        self.failures_left = self.config.max_auth_failures;
        if self.config.version == ScpVersion::Scp02 {
            self.config.sequence_counter += 1;
        }
        session.set_level(level);
        self.state = State::Open(session);
        Ok(())
    }

    /// Checks and strips the secure messaging of a command, returning the
    /// plain command to process. Plain commands pass when no C-MAC level is in force.
    pub fn unwrap_command(&mut self, raw: &[u8]) -> Result<Command, StatusWord> {
        let cmd = Command::decode(raw).map_err(|_| SW_WRONG_LENGTH)?;
        let secured = cmd.cla() & CLA_SECURE_MESSAGING != 0;
        let State::Open(session) = &mut self.state else {
            // Any command between INITIALIZE UPDATE and EXTERNAL AUTHENTICATE aborts it.
            self.state = State::Idle;
            return if secured {
                Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED)
            } else {
                Ok(cmd)
            };
        };
        let result = match (secured, session.level().c_mac()) {
            (false, false) => return Ok(cmd),
            (false, true) => Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED),
            (true, false) => Err(super::session::SW_BAD_SM),
            (true, true) => session.unwrap_command(&cmd),
        };
        if result.is_err() {
            self.state = State::Idle;
        }
        result
    }

    /// Adds R-MAC and R-ENC to a response as the session's level asks.
    pub fn wrap_response(&mut self, resp: Response) -> Response {
        match &mut self.state {
            State::Open(session) => session.wrap_response(resp),
            _ => resp,
        }
    }

    /// Decrypts key values received in PUT KEY (the reverse of
    /// [`SecureChannel::encrypt_key_data`](super::SecureChannel::encrypt_key_data));
    /// `6982` without an open channel, `6A80` when the data is not whole blocks.
    pub fn decrypt_key_data(&self, data: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, StatusWord> {
        match &self.state {
            State::Open(s) => s.decrypt_key_data(data).map_err(|_| StatusWord::WRONG_DATA),
            _ => Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED),
        }
    }

    /// Whether a channel is open.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }
    /// The security level of the open channel.
    pub fn level(&self) -> Option<SecurityLevel> {
        match &self.state {
            State::Open(s) => Some(s.level()),
            _ => None,
        }
    }
    /// Ends the session (as a card reset or SELECT of another application does).
    pub fn close(&mut self) {
        self.state = State::Idle;
    }
    /// Failed authentications left before the keys are blocked.
    pub fn failures_left(&self) -> u8 {
        self.failures_left
    }
    /// The current sequence counter.
    pub fn sequence_counter(&self) -> u32 {
        self.config.sequence_counter
    }
}

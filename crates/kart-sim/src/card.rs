//! The simulated card: card manager, national-ID applet, profile quirks,
//! secure channel, faults, log and latency model around one APDU at a time.

use crate::applet::{Answer, Applet, Channel, Ctx, Session, Stop};
use crate::faults::Faults;
use crate::latency::{apdu_time, KeygenClock, LatencyMode, Work};
use crate::log::{ApduLog, LogEntry};
use crate::sw;
use crate::vpcd::VirtualCard;
use kart_apdu::gp::card::{CardConfig, CardSecureChannel};
use kart_apdu::gp::{diversify, Diversification as GpDiv, GpError, KeySet};
use kart_apdu::{CardCaps, Command, Response, StatusWord, Transport, TransportError, CLA_CHAINING};
use kart_spec::{AppletSpec, Defect, Diversification, Profile, Scp, Spec, SpecError, WrongLe};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::BTreeMap;
use std::time::Duration;
use thiserror::Error;
use zeroize::Zeroizing;

/// Largest data a command chain may gather (README §8.14).
const MAX_CHAIN: usize = 4096;
/// IC fabricator and IC type written in the CPLC of every simulated card.
const IC_FABRICATOR: [u8; 2] = [0x4B, 0x41];
const IC_TYPE: [u8; 2] = [0x00, 0x01];
const IC_BATCH: [u8; 2] = [0x00, 0x01];

/// Why a simulated card could not be made.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SimError {
    /// The embedded specification did not load.
    #[error("applet specification: {0}")]
    Spec(#[from] SpecError),
    /// The master key does not fit the profile's secure channel.
    #[error("secure channel keys for profile {profile}: {source}")]
    Keys {
        /// The profile id.
        profile: String,
        /// The key length the profile wants.
        expected: usize,
        /// What the GP layer said.
        source: GpError,
    },
}

impl SimError {
    /// What the operator should do about it, when there is something to do.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        match self {
            SimError::Keys { expected, .. } => Some(format!("give a {expected}-byte master key")),
            SimError::Spec(e) => e.hint().map(str::to_owned),
        }
    }
}

/// Who the card is: IC serial number and the issuer's secure-channel master keys.
///
/// ```
/// let cfg = kart_sim::SimConfig::new([0, 0, 0, 42], &[0x40; 16]);
/// assert_eq!(cfg.csn(), [0x4B, 0x41, 0x00, 0x01, 0, 0, 0, 42]);
/// assert!(!format!("{cfg:?}").contains("64, 64"));
/// ```
#[derive(Clone)]
pub struct SimConfig {
    /// IC serial number (CPLC), the last 4 bytes of the CSN.
    pub ic_serial: [u8; 4],
    keys: MasterKeys,
}

/// The master keys a card is keyed with, before per-card diversification.
#[derive(Clone)]
enum MasterKeys {
    /// One key as ENC, MAC and DEK, under the profile's key version.
    One(Zeroizing<Vec<u8>>),
    /// Three keys with their key version, as an issuer keeps them.
    Set(KeySet),
    /// The card's own static keys, already diversified (by an HSM that
    /// never gives out the master keys).
    Card(KeySet),
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("SimConfig");
        d.field("ic_serial", &hex::encode_upper(self.ic_serial));
        match &self.keys {
            MasterKeys::One(key) => d.field(
                "master_key",
                &format_args!("<{} bytes redacted>", key.len()),
            ),
            MasterKeys::Set(set) => d.field("master_keys", set),
            MasterKeys::Card(set) => d.field("card_keys", set),
        };
        d.finish()
    }
}

impl SimConfig {
    /// A card with this IC serial whose keys are `master_key` (ENC = MAC =
    /// DEK) diversified by the profile's method.
    pub fn new(ic_serial: [u8; 4], master_key: &[u8]) -> Self {
        SimConfig {
            ic_serial,
            keys: MasterKeys::One(Zeroizing::new(master_key.to_vec())),
        }
    }

    /// A card with this IC serial keyed with an issuer's master key set
    /// (distinct ENC, MAC and DEK), diversified by the profile's method. The
    /// set's key version must be the profile's, as it is in the set
    /// `kart_perso::issuer::Issuer::channel_keys` gives for the profile.
    ///
    /// ```
    /// use kart_apdu::gp::KeySet;
    /// let keys = KeySet::new(&[0x40; 16], &[0x41; 16], &[0x42; 16], 0x01)?;
    /// let cfg = kart_sim::SimConfig::with_keys([0, 0, 0, 42], keys);
    /// assert!(!format!("{cfg:?}").contains("64"));
    /// # Ok::<(), kart_apdu::gp::GpError>(())
    /// ```
    pub fn with_keys(ic_serial: [u8; 4], master_keys: KeySet) -> Self {
        SimConfig {
            ic_serial,
            keys: MasterKeys::Set(master_keys),
        }
    }

    /// A card with this IC serial keyed with its own static keys, already
    /// diversified for its key diversification data (see
    /// [`key_diversification_data`](Self::key_diversification_data)) — as a
    /// key source in an HSM derives them; the profile's method is not applied again.
    pub fn with_card_keys(ic_serial: [u8; 4], card_keys: KeySet) -> Self {
        SimConfig {
            ic_serial,
            keys: MasterKeys::Card(card_keys),
        }
    }

    /// The master key set for a card of a profile with `key_length`-byte
    /// keys under `key_version`.
    fn master_keys(&self, key_length: usize, key_version: u8) -> Result<KeySet, GpError> {
        let set = match &self.keys {
            MasterKeys::One(key) => KeySet::from_master(key, key_version)?,
            MasterKeys::Set(set) | MasterKeys::Card(set) => set.clone(),
        };
        if set.key_len() != key_length {
            return Err(GpError::InvalidKey(format!(
                "master key has {} bytes",
                set.key_len()
            )));
        }
        if set.version() != key_version {
            return Err(GpError::InvalidKey(format!(
                "master key set has key version {:02X}, the profile uses {key_version:02X}",
                set.version()
            )));
        }
        Ok(set)
    }

    /// The card serial number: IC fabricator ‖ IC type ‖ IC serial.
    pub fn csn(&self) -> [u8; 8] {
        let mut csn = [0; 8];
        csn[..2].copy_from_slice(&IC_FABRICATOR);
        csn[2..4].copy_from_slice(&IC_TYPE);
        csn[4..].copy_from_slice(&self.ic_serial);
        csn
    }
    /// Key diversification data: IC batch identifier ‖ CSN.
    pub fn key_diversification_data(&self) -> [u8; 10] {
        let mut kdd = [0; 10];
        kdd[..2].copy_from_slice(&IC_BATCH);
        kdd[2..].copy_from_slice(&self.csn());
        kdd
    }
    fn cplc(&self) -> [u8; 42] {
        let mut c = [0u8; 42];
        c[..2].copy_from_slice(&IC_FABRICATOR);
        c[2..4].copy_from_slice(&IC_TYPE);
        c[4..6].copy_from_slice(&[0x4B, 0x53]); // OS identifier
        c[12..16].copy_from_slice(&self.ic_serial);
        c[16..18].copy_from_slice(&IC_BATCH);
        c
    }
}

/// The well-known GlobalPlatform test key `40 41 … 4F` (extended to 32 bytes
/// as `40 … 5F`), which [`SimCard::new`] uses. Test cards only.
pub fn default_test_key(len: usize) -> Vec<u8> {
    (0x40..).take(len).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Selected {
    None,
    CardManager,
    Applet,
}

/// A simulated national-ID card of one vendor profile.
///
/// It answers raw APDUs in process ([`Transport`]) or behind a real `pcscd`
/// ([`VirtualCard`] with [`crate::vpcd::serve`]).
///
/// ```
/// use kart_apdu::{Card, Command};
/// let spec = kart_spec::Spec::embedded()?;
/// let profile = spec.profile("vendor-b").unwrap();
/// let sim = kart_sim::SimCard::new(profile)?;
/// let mut card = Card::with_caps(sim, profile.caps());
/// let select = Command::new(0x00, 0xA4, 0x04, 0x0C).with_data(profile.applet_aid.bytes())?;
/// card.send_ok(&select)?;
/// let challenge = card.send_ok(&Command::new(0x00, 0x84, 0x00, 0x00).with_le(8)?)?;
/// assert_eq!(challenge.len(), 8);
/// assert_eq!(card.transport().log().count(0x84), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SimCard {
    profile: Profile,
    isd_aid: Vec<u8>,
    applet: Applet,
    session: Session,
    selected: Selected,
    channel: CardSecureChannel,
    test_mode: bool,
    pending: Vec<u8>,
    /// INS, P1, P2 and the data gathered so far (may hold PIN blocks: zeroized).
    chain: Option<(u8, u8, u8, Zeroizing<Vec<u8>>)>,
    faults: Faults,
    removed: bool,
    apdu_no: u64,
    log: ApduLog,
    latency: LatencyMode,
    clock: Duration,
    rng: SystemRandom,
    /// Draws this card's key generation times (seeded: reproducible).
    keygen_clock: KeygenClock,
    /// GET CHALLENGE answers of the `counter-challenge` defect so far.
    challenges: u64,
    /// Per INS, the CLA values the spec lists for it (secure messaging and
    /// chaining bits cleared).
    classes: BTreeMap<u8, Vec<u8>>,
    /// The stored card file this card is written to (`store`).
    store: Option<Attached>,
}

/// A card's file in a [`crate::store::CardStore`].
#[derive(Debug)]
struct Attached {
    path: std::path::PathBuf,
    /// The image last written (or found), to write only what changed.
    written: Vec<u8>,
    /// Why the last write failed; the card has left the reader since.
    failed: Option<String>,
    /// Where the card waits, on disk since it was inserted, until its first
    /// change moves it to `path` (see [`crate::store::CardStore::card_in`]).
    inserted: Option<std::path::PathBuf>,
}

/// ISO 7816-4 `6581` memory failure: the stored card could not be written.
const MEMORY_FAILURE: u16 = 0x6581;

/// CLA bit of GP / ISO secure messaging.
const CLA_SECURE_MESSAGING: u8 = 0x04;

/// Per INS, the classes of `applet.commands` (`"00/80"` → `[00, 80]`).
fn classes(applet: &AppletSpec) -> BTreeMap<u8, Vec<u8>> {
    let mut out: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
    for c in &applet.commands {
        let Some(&ins) = c.ins.bytes().first() else {
            continue;
        };
        let listed = c
            .cla
            .split('/')
            .filter_map(|v| u8::from_str_radix(v.trim(), 16).ok())
            .map(|v| v & !(CLA_SECURE_MESSAGING | CLA_CHAINING));
        out.entry(ins).or_default().extend(listed);
    }
    out
}

/// How long GET DATA takes on a card with the `slow-get-data` defect.
const SLOW_GET_DATA: Duration = Duration::from_millis(400);

impl std::fmt::Debug for SimCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCard")
            .field("profile", &self.profile.id)
            .field(
                "lifecycle",
                &format_args!("{:02X}", self.applet.state_code()),
            )
            .field("removed", &self.removed)
            .field("apdus", &self.apdu_no)
            .finish_non_exhaustive()
    }
}

impl SimCard {
    /// A fresh (PRE_PERSONALIZED) card of `profile` with a random IC serial and
    /// the GP test master key ([`default_test_key`]).
    pub fn new(profile: &Profile) -> Result<SimCard, SimError> {
        let mut serial = [0u8; 4];
        // A failing system RNG leaves serial 00000000: still a working card.
        let _ = SystemRandom::new().fill(&mut serial);
        let config = SimConfig::new(serial, &default_test_key(profile.secure_channel.key_length));
        SimCard::with_config(profile, &config)
    }

    /// A fresh card of `profile` with this serial and issuer master key.
    pub fn with_config(profile: &Profile, config: &SimConfig) -> Result<SimCard, SimError> {
        let spec = Spec::embedded()?;
        SimCard::with_spec(&spec.applet, profile, config)
    }

    /// A fresh card implementing `applet` (e.g. loaded from a directory).
    pub fn with_spec(
        applet: &AppletSpec,
        profile: &Profile,
        config: &SimConfig,
    ) -> Result<SimCard, SimError> {
        let sc = profile.secure_channel;
        let key_err = |source| SimError::Keys {
            profile: profile.id.clone(),
            expected: sc.key_length,
            source,
        };
        let master = config
            .master_keys(sc.key_length, sc.key_version)
            .map_err(key_err)?;
        let method = match sc.diversification {
            Diversification::None => GpDiv::None,
            Diversification::EmvCps => GpDiv::EmvCps11,
            Diversification::Visa2 => GpDiv::Visa2,
            Diversification::Kdf3 => GpDiv::Kdf3,
        };
        let kdd = config.key_diversification_data();
        let method = if matches!(config.keys, MasterKeys::Card(_)) {
            GpDiv::None
        } else {
            method
        };
        let keys = diversify(&master, method, &kdd).map_err(key_err)?;
        let mut gp = match sc.scp {
            Scp::Scp02 => CardConfig::scp02(kdd),
            Scp::Scp03 => CardConfig::scp03(kdd),
        };
        gp.i = sc.i;
        gp.aid = applet.card_manager.aid.bytes().to_vec();
        let channel = CardSecureChannel::new(keys, gp).map_err(key_err)?;
        Ok(SimCard {
            profile: profile.clone(),
            isd_aid: applet.card_manager.aid.bytes().to_vec(),
            applet: Applet::new(applet, config.cplc(), profile.holder_key),
            session: Session::default(),
            selected: Selected::CardManager,
            channel,
            test_mode: false,
            pending: Vec::new(),
            chain: None,
            faults: Faults::default(),
            removed: false,
            apdu_no: 0,
            log: ApduLog::default(),
            latency: LatencyMode::Off,
            clock: Duration::ZERO,
            rng: SystemRandom::new(),
            keygen_clock: KeygenClock::new(u64::from(u32::from_be_bytes(config.ic_serial))),
            challenges: 0,
            classes: classes(applet),
            store: None,
        })
    }

    /// TEST MODE: personalization writes are accepted without a secure
    /// channel, as if one were open with C-MAC and C-DEC. Only for tests of
    /// the applet logic; a real card never does this.
    #[cfg(any(test, feature = "test-mode"))]
    #[must_use]
    pub fn with_test_mode_writes(mut self) -> Self {
        self.test_mode = true;
        self
    }

    /// Writes this card to `path` (a [`crate::store::CardStore`] file)
    /// after every command that changes its non-volatile memory.
    pub(crate) fn attach_store(&mut self, path: std::path::PathBuf) {
        let written = if path.is_file() {
            self.stored_image()
        } else {
            // A new card: written when it first changes.
            SimCard::blank_image(&self.profile, self.ic_serial())
        };
        self.store = Some(Attached {
            path,
            written,
            failed: None,
            inserted: None,
        });
    }

    /// Writes this card, already stored at `inserted`, to `path` from its
    /// first change on: that change is written to `inserted`, which is then
    /// renamed over `path`, so the card is at one of the two at every moment.
    pub(crate) fn attach_inserted(
        &mut self,
        path: std::path::PathBuf,
        inserted: std::path::PathBuf,
    ) {
        self.store = Some(Attached {
            path,
            written: self.stored_image(),
            failed: None,
            inserted: Some(inserted),
        });
    }

    fn blank_image(profile: &Profile, serial: [u8; 4]) -> Vec<u8> {
        let Ok(spec) = Spec::embedded() else {
            return Vec::new();
        };
        let blank = Applet::new(&spec.applet, [0; 42], profile.holder_key);
        crate::store::StoredCard::new(&profile.id, serial, &blank.image()).encode()
    }

    /// The stored card file this card is written to, if any.
    pub fn stored_at(&self) -> Option<&std::path::Path> {
        self.store.as_ref().map(|s| s.path.as_path())
    }

    /// Why writing the stored card failed (the card answered `6581` and
    /// left the reader), if it did.
    pub fn store_error(&self) -> Option<&str> {
        self.store.as_ref().and_then(|s| s.failed.as_deref())
    }

    /// The card serial number: IC fabricator ‖ IC type ‖ IC serial (CPLC).
    pub fn csn(&self) -> [u8; 8] {
        self.applet.csn()
    }

    /// The IC serial number (CPLC bytes 13-16).
    pub fn ic_serial(&self) -> [u8; 4] {
        let c = self.applet.cplc();
        [c[12], c[13], c[14], c[15]]
    }

    /// The card's life-cycle code (`07`, `0F`, `83`).
    pub fn lifecycle_code(&self) -> u8 {
        self.applet.state_code()
    }

    pub(crate) fn stored_image(&self) -> Vec<u8> {
        crate::store::StoredCard::new(&self.profile.id, self.ic_serial(), &self.applet.image())
            .encode()
    }

    pub(crate) fn restore(
        &mut self,
        image: &crate::applet::AppletImage,
    ) -> Result<(), crate::applet::BadImage> {
        self.applet.restore(image)
    }

    /// Writes the stored card if the last command changed it; `false` when
    /// the write failed.
    fn persist(&mut self) -> bool {
        let Some(store) = &self.store else {
            return true;
        };
        if store.failed.is_some() {
            return false;
        }
        let now = self.stored_image();
        if now == store.written {
            return true;
        }
        let result = match &store.inserted {
            None => crate::store::write_atomic(&store.path, &now),
            Some(inserted) => crate::store::move_in(inserted, &store.path, &now),
        };
        let Some(store) = &mut self.store else {
            return true;
        };
        match result {
            Ok(()) => {
                store.written = now;
                store.inserted = None;
                true
            }
            Err(e) => {
                store.failed = Some(format!("{}: {e}", store.path.display()));
                false
            }
        }
    }

    /// The vendor profile this card follows.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }
    fn has(&self, defect: Defect) -> bool {
        self.profile.test.planted_defects.contains(&defect)
    }
    /// Tears the next UPDATE BINARY that reaches the file (the simulator's
    /// hook for testing atomic writes; see [`Faults::tear_update`]).
    pub fn tear_next_update(&mut self) {
        self.faults.tear_update = Some(self.applet.updates() + 1);
    }
    /// Replaces the faults to inject.
    pub fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }
    /// Seeds the draws of this card's key generation times (by default
    /// the IC serial: every card differs, every run repeats).
    pub fn set_latency_seed(&mut self, seed: u64) {
        self.keygen_clock = KeygenClock::new(seed);
    }

    /// Chooses what to do with the latency model.
    pub fn set_latency(&mut self, mode: LatencyMode) {
        self.latency = mode;
    }
    /// Time the real card would have taken so far (every mode but [`LatencyMode::Off`]).
    pub fn modelled_time(&self) -> Duration {
        self.clock
    }
    /// The APDUs answered so far.
    pub fn log(&self) -> &ApduLog {
        &self.log
    }
    /// Forgets the APDU log and the modelled time.
    pub fn clear_log(&mut self) {
        self.log.clear();
        self.clock = Duration::ZERO;
    }
    /// Whether the card has left the reader (pulled or torn).
    pub fn is_removed(&self) -> bool {
        self.removed
    }
    /// Puts a pulled card back: power-on, faults cleared, non-volatile state kept.
    pub fn reinsert(&mut self) {
        self.removed = false;
        self.faults = Faults::default();
        self.power_cycle();
    }

    fn power_cycle(&mut self) {
        self.session = Session::default();
        self.selected = Selected::CardManager;
        self.channel.close();
        self.pending.clear();
        self.chain = None;
    }

    /// Answers one raw command APDU; `None` when the card is gone.
    fn answer(&mut self, raw: &[u8]) -> Option<Vec<u8>> {
        if self.removed {
            return None;
        }
        self.apdu_no += 1;
        let n = self.apdu_no;
        if self.faults.pull_after_apdu.is_some_and(|p| n > p) {
            self.removed = true;
            return None;
        }
        if let Some((from, delay)) = self.faults.slow {
            if n >= from {
                std::thread::sleep(delay);
            }
        }
        if self.faults.garbage_from_apdu.is_some_and(|g| n >= g) {
            let mut len = [0u8; 1];
            let _ = self.rng.fill(&mut len);
            let mut junk = vec![0u8; usize::from(len[0] % 6)];
            let _ = self.rng.fill(&mut junk);
            return Some(junk);
        }
        let mut work = Work::default();
        let (data, sw) = match self.handle(raw, &mut work) {
            Ok(answer) => answer,
            Err(Stop::Sw(sw)) => (Vec::new(), sw),
            Err(Stop::Torn) => {
                self.removed = true;
                return None;
            }
        };
        // Commands that never change non-volatile memory need no write-back
        // check (SELECT, READ BINARY, GET DATA, GET CHALLENGE, GET RESPONSE,
        // GET STATUS, INITIALIZE UPDATE).
        let read_only = matches!(
            raw.get(1),
            Some(0xA4 | 0xB0 | 0xCA | 0x84 | 0xC0 | 0xF2 | 0x50)
        );
        let (data, sw) = if read_only || self.persist() {
            (data, sw)
        } else {
            // The card's memory could not be written: it answers a memory
            // failure and leaves the reader.
            self.removed = true;
            (Vec::new(), MEMORY_FAILURE)
        };
        let mut out = data;
        out.extend_from_slice(&sw.to_be_bytes());
        self.log.push(LogEntry {
            cla: raw.first().copied().unwrap_or_default(),
            ins: raw.get(1).copied().unwrap_or_default(),
            command_bytes: raw.len(),
            response_bytes: out.len(),
            sw,
        });
        if self.latency != LatencyMode::Off {
            let t = apdu_time(
                &self.profile.latency,
                &mut self.keygen_clock,
                raw.len(),
                out.len(),
                work,
            );
            self.clock += t;
            if let Some(pause) = self.latency.sleep_for(t) {
                std::thread::sleep(pause);
            }
        }
        Some(out)
    }

    /// Transport-level checks, GET RESPONSE, chaining, secure channel, then the application.
    fn handle(&mut self, raw: &[u8], work: &mut Work) -> Answer {
        let cmd = Command::decode(raw).map_err(|_| Stop::Sw(sw::WRONG_LENGTH))?;
        let limits = self.profile.limits;
        if (cmd.is_extended() && !limits.extended_length)
            || cmd.data().len() > limits.max_command_data
        {
            return Err(Stop::Sw(sw::WRONG_LENGTH));
        }
        let cla = cmd.cla();
        if cla & 0x60 != 0 || cla == 0xFF {
            return Err(Stop::Sw(sw::CLA));
        }
        if cla & 0x03 != 0 {
            return Err(Stop::Sw(sw::LOGICAL_CHANNEL));
        }
        // README §8: a command in a class the spec does not list for it is
        // refused, so that a terminal sending the wrong form is caught.
        let base = cla & !(CLA_SECURE_MESSAGING | CLA_CHAINING);
        if self
            .classes
            .get(&cmd.ins())
            .is_some_and(|listed| !listed.contains(&base))
        {
            return Err(Stop::Sw(sw::CLA));
        }
        if cmd.ins() == 0xC0 {
            return self.get_response(&cmd);
        }
        self.pending.clear();
        let (mut data, sw) = self.secured(raw, &cmd, work)?;
        if self.profile.quirks.get_response && !cmd.data().is_empty() && !data.is_empty() {
            self.pending = std::mem::take(&mut data);
            return Ok((Vec::new(), sw::more(self.pending.len())));
        }
        if let Some(ne) = cmd.le().filter(|_| !self.channel.is_open()) {
            if data.len() > ne as usize && data.len() <= 256 {
                return Err(Stop::Sw(sw::exact_le(data.len())));
            }
        }
        Ok((data, sw))
    }

    fn get_response(&mut self, cmd: &Command) -> Answer {
        if (cmd.p1(), cmd.p2()) != (0, 0) {
            return Err(Stop::Sw(sw::P1P2));
        }
        if self.pending.is_empty() {
            return Err(Stop::Sw(sw::CONDITIONS));
        }
        let ne = cmd.le().map_or(256, |n| n as usize).min(self.pending.len());
        let rest = self.pending.split_off(ne);
        let out = std::mem::replace(&mut self.pending, rest);
        let sw = if self.pending.is_empty() {
            sw::OK
        } else {
            sw::more(self.pending.len())
        };
        Ok((out, sw))
    }

    /// The GP secure channel around the application.
    fn secured(&mut self, raw: &[u8], cmd: &Command, work: &mut Work) -> Answer {
        if cmd.cla() & 0x80 != 0 && matches!(cmd.ins(), 0x50 | 0x82) {
            self.chain = None;
            let rng = &self.rng;
            let result = if cmd.ins() == 0x50 {
                self.channel.initialize_update(cmd, |c| {
                    let _ = rng.fill(c);
                })
            } else {
                self.channel.external_authenticate(cmd).map(|()| Vec::new())
            };
            return result.map(|d| (d, sw::OK)).map_err(|e| Stop::Sw(e.0));
        }
        if cmd.ins() == 0xA4 && cmd.p1() == 0x04 && cmd.cla() & 0x04 == 0 {
            // SELECT by AID belongs to the runtime, not to the channel: it ends
            // the session instead of being refused by it.
            self.channel.close();
        }
        let plain = self
            .channel
            .unwrap_command(raw)
            .map_err(|e| Stop::Sw(e.0))?;
        if cmd.cla() & 0x0C != 0 {
            // MAC checked (and data deciphered) over the whole command.
            work.card.cipher_bytes += raw.len();
        }
        let answer = self.chained(raw, plain, work);
        if !self.channel.is_open() {
            return answer;
        }
        let (data, sw) = match answer {
            Ok(a) => a,
            Err(Stop::Sw(sw)) => (Vec::new(), sw),
            Err(Stop::Torn) => return Err(Stop::Torn),
        };
        let plain_len = data.len();
        let wrapped = self
            .channel
            .wrap_response(Response::new(data, StatusWord(sw)));
        if wrapped.data().len() != plain_len {
            // R-MAC (and R-ENC) computed over the whole response, status
            // word included: the card's cipher works on it as on a command.
            work.card.cipher_bytes += wrapped.data().len() + 2;
        }
        Ok((wrapped.data().to_vec(), wrapped.sw().0))
    }

    /// Command chaining (CLA bit `10`): gathers the parts, runs the whole.
    fn chained(&mut self, raw: &[u8], cmd: Command, work: &mut Work) -> Answer {
        let more = raw.first().is_some_and(|c| c & CLA_CHAINING != 0);
        let header = (cmd.ins(), cmd.p1(), cmd.p2());
        if more && !self.profile.limits.chaining {
            return Err(Stop::Sw(sw::CHAINING_UNSUPPORTED));
        }
        let cmd = match self.chain.take() {
            Some((ins, p1, p2, _)) if (ins, p1, p2) != header => {
                return Err(Stop::Sw(sw::LAST_OF_CHAIN_EXPECTED));
            }
            Some((ins, p1, p2, mut data)) => {
                data.extend_from_slice(cmd.data());
                if data.len() > MAX_CHAIN {
                    return Err(Stop::Sw(sw::WRONG_LENGTH));
                }
                if more {
                    self.chain = Some((ins, p1, p2, data));
                    return Ok((Vec::new(), sw::OK));
                }
                let whole = Command::new(cmd.cla() & !CLA_CHAINING, ins, p1, p2).with_data(&data);
                let whole = whole.map_err(|_| Stop::Sw(sw::WRONG_LENGTH))?;
                match cmd.le() {
                    Some(ne) => whole.with_le(ne).map_err(|_| Stop::Sw(sw::WRONG_LENGTH))?,
                    None => whole,
                }
            }
            None if more => {
                self.chain = Some((
                    header.0,
                    header.1,
                    header.2,
                    Zeroizing::new(cmd.data().to_vec()),
                ));
                return Ok((Vec::new(), sw::OK));
            }
            None => cmd,
        };
        let answer = self.dispatch(&cmd, work);
        // README §8: a command without Le gets no response data. Case 1
        // (nothing but the answer) is a wrong length; case 3 keeps its
        // effect and status word. On a T=0 profile a case-4 command arrives
        // as case 3 and its data comes with GET RESPONSE (`handle`).
        if cmd.le().is_some() || (self.profile.quirks.get_response && !cmd.data().is_empty()) {
            return answer;
        }
        match answer {
            Ok((data, _)) if !data.is_empty() && cmd.data().is_empty() => {
                Err(Stop::Sw(sw::WRONG_LENGTH))
            }
            Ok((_, sw)) => Ok((Vec::new(), sw)),
            other => other,
        }
    }

    /// The selected application.
    fn dispatch(&mut self, cmd: &Command, work: &mut Work) -> Answer {
        if cmd.ins() == 0xA4 && cmd.p1() == 0x04 {
            return self.select_application(cmd);
        }
        let channel = match self.channel.level() {
            _ if self.test_mode => Channel {
                c_mac: true,
                c_dec: true,
            },
            Some(l) => Channel {
                c_mac: l.c_mac(),
                c_dec: l.c_dec(),
            },
            None => Channel::default(),
        };
        if cmd.ins() == 0xCA && self.has(Defect::SlowGetData) {
            std::thread::sleep(SLOW_GET_DATA);
        }
        if self.selected == Selected::Applet
            && cmd.ins() == 0x84
            && (cmd.p1(), cmd.p2()) == (0, 0)
            && self.has(Defect::CounterChallenge)
        {
            self.challenges += 1;
            let n = cmd.le().map_or(0, |n| n as usize).min(32);
            let mut out = vec![0; n];
            let count = self.challenges.to_be_bytes();
            let tail = n.min(count.len());
            out[n - tail..].copy_from_slice(&count[count.len() - tail..]);
            return Ok((out, sw::OK));
        }
        let defects = crate::applet::Defects {
            pin_counter_stuck: self.has(Defect::PinCounterNotDecremented),
            writes_when_locked: self.has(Defect::WritesWhenLocked),
        };
        match self.selected {
            Selected::CardManager if matches!(cmd.ins(), 0xCA | 0xF2) => {
                let registry = crate::manager::Registry {
                    profile: &self.profile,
                    isd_aid: &self.isd_aid,
                    applet_state: self.applet.state_code(),
                    csn: self.applet.csn(),
                    cplc: self.applet.cplc(),
                };
                if cmd.ins() == 0xCA {
                    registry.get_data(cmd)
                } else {
                    registry.get_status(cmd)
                }
            }
            Selected::CardManager | Selected::None => Err(Stop::Sw(if cmd.ins() == 0xA4 {
                sw::NOT_FOUND
            } else {
                sw::INS
            })),
            Selected::Applet if cmd.ins() == 0xB0 => {
                let exact = self.profile.quirks.wrong_le == WrongLe::ExactLe;
                self.applet.read_binary(
                    &self.session,
                    cmd,
                    self.profile.quirks.max_read_chunk,
                    exact,
                )
            }
            Selected::Applet => {
                let mut ctx = Ctx {
                    channel,
                    rng: &self.rng,
                    work,
                    tear_update: self.faults.tear_update,
                    defects,
                };
                let answer = self.applet.process(&mut self.session, cmd, &mut ctx);
                if answer == Err(Stop::Sw(sw::INS)) && self.has(Defect::UnknownInsAnswers6F00) {
                    return Err(Stop::Sw(sw::NO_DIAGNOSIS));
                }
                answer
            }
        }
    }

    fn select_application(&mut self, cmd: &Command) -> Answer {
        let target = if cmd.data() == self.profile.applet_aid.bytes() {
            Selected::Applet
        } else if cmd.data() == self.isd_aid.as_slice() {
            Selected::CardManager
        } else {
            return Err(Stop::Sw(sw::NOT_FOUND));
        };
        let fci = match cmd.p2() {
            0x00 => true,
            0x0C => false,
            _ => return Err(Stop::Sw(sw::P1P2)),
        };
        self.session = Session::default();
        self.channel.close();
        self.selected = target;
        if !fci {
            return Ok((Vec::new(), sw::OK));
        }
        let mut body = crate::applet::tlv(&[0x84], cmd.data());
        body.extend_from_slice(&crate::applet::tlv(&[0x8A], &[self.applet.state_code()]));
        Ok((crate::applet::tlv(&[0x6F], &body), sw::OK))
    }
}

impl Transport for SimCard {
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        match self.answer(apdu) {
            Some(r) => {
                *rx = r;
                Ok(())
            }
            None => Err(TransportError::CardRemoved),
        }
    }
    fn capabilities(&self) -> CardCaps {
        self.profile.caps()
    }
}

impl VirtualCard for SimCard {
    fn atr(&self) -> Vec<u8> {
        self.profile.atr.bytes().to_vec()
    }
    fn power_on(&mut self) {
        self.power_cycle();
    }
    fn power_off(&mut self) {
        self.power_cycle();
        self.selected = Selected::None;
    }
    fn reset(&mut self) {
        self.power_cycle();
    }
    fn process(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
        self.answer(apdu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kart_apdu::gp::{ScpParams, ScpVersion, SecureChannel, SecurityLevel};
    use kart_apdu::Card;

    fn profile(id: &str) -> Profile {
        let spec = Spec::embedded().expect("embedded spec");
        spec.profile(id).expect("profile").clone()
    }

    fn params(p: &Profile) -> ScpParams {
        let sc = p.secure_channel;
        ScpParams {
            key_version: sc.key_version,
            diversification: match sc.diversification {
                Diversification::None => GpDiv::None,
                Diversification::EmvCps => GpDiv::EmvCps11,
                Diversification::Visa2 => GpDiv::Visa2,
                Diversification::Kdf3 => GpDiv::Kdf3,
            },
            scp02_i: sc.i,
            version: Some(match sc.scp {
                Scp::Scp02 => ScpVersion::Scp02,
                Scp::Scp03 => ScpVersion::Scp03,
            }),
        }
    }

    /// Three distinct keys of the profile's length and version.
    fn distinct(p: &Profile) -> KeySet {
        let sc = p.secure_channel;
        let key = |b: u8| vec![b; sc.key_length];
        KeySet::new(&key(0x11), &key(0x22), &key(0x33), sc.key_version).expect("key set")
    }

    /// Whether a host holding `host` opens a secure channel to `sim`.
    fn opens(sim: SimCard, host: &KeySet) -> bool {
        let p = sim.profile().clone();
        let mut card = Card::with_caps(sim, p.caps());
        let select = Command::new(0x00, 0xA4, 0x04, 0x0C)
            .with_data(p.applet_aid.bytes())
            .expect("select");
        card.send_ok(&select).expect("select applet");
        SecureChannel::open(card, host, &params(&p), SecurityLevel::C_DEC_C_MAC).is_ok()
    }

    #[test]
    fn a_card_keyed_with_a_full_set_opens_only_with_that_set() {
        for p in Spec::embedded().expect("spec").profiles {
            let id = &p.id;
            let keys = distinct(&p);
            let card = |cfg: &SimConfig| SimCard::with_config(&p, cfg).expect("sim card");
            let cfg = SimConfig::with_keys([1, 2, 3, 4], keys.clone());
            assert!(opens(card(&cfg), &keys), "{id}: the issuer's own set");
            // ENC alone as the one master key (what `new` makes) must not do.
            let enc_only = KeySet::from_master(
                &[0x11; 32][..p.secure_channel.key_length],
                p.secure_channel.key_version,
            )
            .expect("key");
            assert!(!opens(card(&cfg), &enc_only), "{id}: ENC = MAC = DEK host");
            let one = SimConfig::new([1, 2, 3, 4], &[0x11; 32][..p.secure_channel.key_length]);
            assert!(
                opens(card(&one), &enc_only),
                "{id}: `new` stays ENC = MAC = DEK"
            );
        }
    }

    #[test]
    fn a_set_of_the_wrong_length_or_version_is_refused() {
        let p = profile("vendor-b");
        let sc = p.secure_channel;
        let other_len = if sc.key_length == 16 { 32 } else { 16 };
        let short = KeySet::from_master(&vec![0x11; other_len], sc.key_version).expect("key");
        let err = SimCard::with_config(&p, &SimConfig::with_keys([0; 4], short)).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("master key has {other_len} bytes")),
            "{err}"
        );
        let version = sc.key_version.wrapping_add(1);
        let wrong = KeySet::from_master(&vec![0x11; sc.key_length], version).expect("key");
        let err = SimCard::with_config(&p, &SimConfig::with_keys([0; 4], wrong)).unwrap_err();
        assert!(err.to_string().contains("key version"), "{err}");
    }

    #[test]
    fn debug_redacts_the_key_set() {
        let p = profile("vendor-b");
        let cfg = SimConfig::with_keys([0; 4], distinct(&p));
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("17, 17") && !shown.contains("1111"),
            "{shown}"
        );
        assert!(shown.contains("redacted"), "{shown}");
    }
}

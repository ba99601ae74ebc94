//! The national-ID applet: files, PINs, keys, life cycle (README §4-§10).

use crate::eeprom::{Ef, WriteError};
use crate::keys::CardKey;
use crate::latency::Work;
use crate::pins::{Check, Pin, BLOCK_LEN};
use crate::sw;
use kart_apdu::Command;
use kart_spec::{Access, AppletSpec, HolderKeyAlgorithm, TagSpec};
use ring::rand::SystemRandom;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// Why a command produced no normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Refused with this status word.
    Sw(u16),
    /// Power lost mid-write: no answer at all.
    Torn,
}

impl From<u16> for Stop {
    fn from(sw: u16) -> Self {
        Stop::Sw(sw)
    }
}

/// Response data and status word.
pub(crate) type Answer = Result<(Vec<u8>, u16), Stop>;

// Keeps every handler's success path the same shape as its refusals.
#[allow(clippy::unnecessary_wraps)]
fn ok(data: Vec<u8>) -> Answer {
    Ok((data, sw::OK))
}
fn refuse(sw: u16) -> Answer {
    Err(Stop::Sw(sw))
}

/// The secure channel the command came through, as far as the applet cares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Channel {
    pub c_mac: bool,
    pub c_dec: bool,
}

/// What the applet needs from the card around it for one command.
pub(crate) struct Ctx<'a> {
    pub channel: Channel,
    pub rng: &'a SystemRandom,
    pub work: &'a mut Work,
    /// Tear the n-th UPDATE BINARY.
    pub tear_update: Option<u64>,
    /// Planted non-conformances (test profiles only).
    pub defects: Defects,
}

/// Non-conformances a test profile plants in the applet (kart-spec `Defect`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Defects {
    /// A wrong PIN answers `63CX` without counting the try.
    pub pin_counter_stuck: bool,
    /// UPDATE BINARY ignores the LOCKED state.
    pub writes_when_locked: bool,
}

/// Life-cycle states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    PrePersonalized,
    Personalized,
    Locked,
}

struct FileEntry {
    /// The data objects the spec puts in this file.
    tags: Vec<TagSpec>,
    read: Access,
    write: Access,
    mandatory: bool,
    ef: Ef,
}

const ID_PIN: usize = 0;
const SIGN_PIN: usize = 1;
const PUK: usize = 2;
const PIN_STATUS_FID: u16 = 0x0104;
const CRN_TAG: u16 = 0xDF72;
const MAX_CHALLENGE: usize = 32;

/// Non-volatile state of the applet.
pub(crate) struct Applet {
    files: BTreeMap<u16, FileEntry>,
    state: Lifecycle,
    codes: [u8; 3],
    pins: [Pin; 3],
    /// Key pairs with their PKCS#8 document (kept for the stored card).
    keys: [Option<(CardKey, Zeroizing<Vec<u8>>)>; 2],
    /// What GENERATE ASYMMETRIC KEY PAIR makes (the profile's `holder_key`).
    holder_key: HolderKeyAlgorithm,
    crn: Option<[u8; 10]>,
    updates: u64,
    cplc: [u8; 42],
}

/// Volatile state: lost on reset and on SELECT.
#[derive(Debug, Default)]
pub(crate) struct Session {
    current_ef: Option<u16>,
    verified: [bool; 3],
}

impl Applet {
    pub(crate) fn new(spec: &AppletSpec, cplc: [u8; 42], holder_key: HolderKeyAlgorithm) -> Self {
        let files = spec
            .files
            .iter()
            .map(|f| {
                let entry = FileEntry {
                    tags: spec.tags_of(&f.name).cloned().collect(),
                    read: f.read,
                    write: f.write,
                    mandatory: f.mandatory,
                    ef: Ef::new(f.max_size),
                };
                (f.fid_u16(), entry)
            })
            .collect();
        let pin = |name: &str| {
            spec.pin(name).map_or_else(
                || Pin::new(3, 4, 8),
                |p| Pin::new(p.retries, p.min_length, p.max_length),
            )
        };
        let code = |name: &str, default: u8| spec.lifecycle_code(name).unwrap_or(default);
        Applet {
            files,
            state: Lifecycle::PrePersonalized,
            codes: [
                code("PRE_PERSONALIZED", 0x07),
                code("PERSONALIZED", 0x0F),
                code("LOCKED", 0x83),
            ],
            pins: [pin("ID_PIN"), pin("SIGN_PIN"), pin("PUK")],
            keys: [None, None],
            holder_key,
            crn: None,
            updates: 0,
            cplc,
        }
    }

    /// UPDATE BINARY commands that reached a file so far.
    pub(crate) fn updates(&self) -> u64 {
        self.updates
    }

    /// The 42 CPLC bytes.
    pub(crate) fn cplc(&self) -> &[u8; 42] {
        &self.cplc
    }

    /// The card serial number from the CPLC: IC fabricator ‖ IC type ‖ IC serial.
    pub(crate) fn csn(&self) -> [u8; 8] {
        let mut csn = [0; 8];
        csn[..4].copy_from_slice(&self.cplc[..4]);
        csn[4..].copy_from_slice(&self.cplc[12..16]);
        csn
    }

    pub(crate) fn state_code(&self) -> u8 {
        self.codes[self.state as usize]
    }

    /// Answers one command with the applet selected.
    /// READ BINARY is not here: it needs the profile's quirks (`read_binary`).
    pub(crate) fn process(&mut self, s: &mut Session, cmd: &Command, ctx: &mut Ctx<'_>) -> Answer {
        match cmd.ins() {
            0xA4 => self.select_file(s, cmd),
            0xD6 => self.update_binary(s, cmd, ctx),
            0x0E => self.erase_binary(s, cmd, ctx),
            0xCA => self.get_data(cmd),
            0xDA => self.put_data(cmd, ctx),
            0x20 => {
                // Every presented PIN updates its try counter: a plain write.
                if !cmd.data().is_empty() {
                    ctx.work.card.plain_bytes += 1;
                }
                self.verify(s, cmd, ctx.defects.pin_counter_stuck)
            }
            0x24 => self.change_reference_data(s, cmd, ctx),
            0x2C => self.reset_retry_counter(cmd),
            0x47 => self.generate_key(cmd, ctx),
            0x88 => self.internal_authenticate(cmd, ctx),
            0x2A => self.pso_sign(s, cmd, ctx),
            0x84 => get_challenge(cmd, ctx.rng),
            0xF0 => self.set_status(cmd, ctx),
            _ => refuse(sw::INS),
        }
    }

    fn select_file(&mut self, s: &mut Session, cmd: &Command) -> Answer {
        if (cmd.p1(), cmd.p2()) != (0x02, 0x0C) {
            return refuse(sw::P1P2);
        }
        let [hi, lo] = cmd.data() else {
            return refuse(sw::WRONG_LENGTH);
        };
        let fid = u16::from_be_bytes([*hi, *lo]);
        if !self.files.contains_key(&fid) {
            return refuse(sw::NOT_FOUND);
        }
        s.current_ef = Some(fid);
        ok(Vec::new())
    }

    fn access(s: &Session, need: Access, channel: Channel) -> Result<(), Stop> {
        let granted = match need {
            Access::Always => true,
            Access::IdPin => s.verified[ID_PIN],
            Access::SignPin => s.verified[SIGN_PIN],
            Access::Sc => channel.c_mac,
            Access::Never => false,
        };
        if granted {
            Ok(())
        } else {
            Err(Stop::Sw(sw::SECURITY))
        }
    }

    fn current<'a>(&'a mut self, s: &Session) -> Result<(u16, &'a mut FileEntry), Stop> {
        let fid = s.current_ef.ok_or(Stop::Sw(sw::NO_CURRENT_EF))?;
        if fid == PIN_STATUS_FID {
            let mut status = Vec::with_capacity(6);
            for p in &self.pins {
                status.extend_from_slice(&p.status());
            }
            if let Some(f) = self.files.get_mut(&fid) {
                f.ef.set(&status);
            }
        }
        let f = self
            .files
            .get_mut(&fid)
            .ok_or(Stop::Sw(sw::NO_CURRENT_EF))?;
        Ok((fid, f))
    }

    /// READ BINARY: `ne` and the chunk limit decide between data, `6282` and `6Cxx`.
    pub(crate) fn read_binary(
        &mut self,
        s: &Session,
        cmd: &Command,
        max_chunk: usize,
        exact_le: bool,
    ) -> Answer {
        if cmd.p1() & 0x80 != 0 {
            return refuse(sw::P1P2);
        }
        let need = self.current(s)?.1.read;
        Self::access(s, need, Channel::default())?;
        let (_, f) = self.current(s)?;
        let data = f.ef.contents();
        let offset = usize::from(u16::from_be_bytes([cmd.p1(), cmd.p2()]));
        let rest = data
            .get(offset..)
            .filter(|r| !r.is_empty())
            .ok_or(Stop::Sw(sw::WRONG_OFFSET))?;
        let ne = cmd.le().map_or(256, |n| n as usize);
        let can = rest.len().min(max_chunk);
        if ne > can && exact_le && ne <= 256 {
            return refuse(sw::exact_le(can));
        }
        let n = ne.min(can);
        let sw = if ne > n && n == rest.len() {
            sw::END_OF_FILE
        } else {
            sw::OK
        };
        Ok((rest.get(..n).unwrap_or_default().to_vec(), sw))
    }

    fn writable(&mut self, s: &Session, ctx: &Ctx<'_>) -> Result<(), Stop> {
        if self.state == Lifecycle::Locked {
            return Err(Stop::Sw(sw::CONDITIONS));
        }
        let need = self.current(s)?.1.write;
        Self::access(s, need, ctx.channel)
    }

    fn update_binary(&mut self, s: &Session, cmd: &Command, ctx: &mut Ctx<'_>) -> Answer {
        if ctx.defects.writes_when_locked && self.state == Lifecycle::Locked {
            let need = self.current(s)?.1.write;
            Self::access(s, need, ctx.channel)?;
        } else {
            self.writable(s, ctx)?;
        }
        if cmd.p1() & 0x80 != 0 {
            return refuse(sw::P1P2);
        }
        self.updates += 1;
        let tear = ctx.tear_update == Some(self.updates);
        let offset = usize::from(u16::from_be_bytes([cmd.p1(), cmd.p2()]));
        let (_, f) = self.current(s)?;
        match f.ef.write(offset, cmd.data(), tear) {
            Ok(()) => {
                ctx.work.card.atomic_bytes += cmd.data().len();
                ok(Vec::new())
            }
            Err(WriteError::Offset) => refuse(sw::WRONG_OFFSET),
            Err(WriteError::Capacity) => refuse(sw::NO_SPACE),
            Err(WriteError::Torn) => Err(Stop::Torn),
        }
    }

    fn erase_binary(&mut self, s: &Session, cmd: &Command, ctx: &mut Ctx<'_>) -> Answer {
        self.writable(s, ctx)?;
        if cmd.p1() & 0x80 != 0 {
            return refuse(sw::P1P2);
        }
        let offset = usize::from(u16::from_be_bytes([cmd.p1(), cmd.p2()]));
        let (_, f) = self.current(s)?;
        match f.ef.erase_from(offset) {
            Ok(()) => ok(Vec::new()),
            Err(_) => refuse(sw::WRONG_OFFSET),
        }
    }

    /// GET DATA, also answered by the card manager for CPLC.
    pub(crate) fn get_data(&self, cmd: &Command) -> Answer {
        match u16::from_be_bytes([cmd.p1(), cmd.p2()]) {
            0x9F7F => ok(tlv(&[0x9F, 0x7F], &self.cplc)),
            0xDF71 => ok(tlv(&[0xDF, 0x71], &[self.state_code()])),
            CRN_TAG => match &self.crn {
                Some(crn) => ok(tlv(&[0xDF, 0x72], crn)),
                None => refuse(sw::REF_NOT_FOUND),
            },
            _ => refuse(sw::REF_NOT_FOUND),
        }
    }

    fn put_data(&mut self, cmd: &Command, ctx: &mut Ctx<'_>) -> Answer {
        if self.state == Lifecycle::Locked {
            return refuse(sw::CONDITIONS);
        }
        if u16::from_be_bytes([cmd.p1(), cmd.p2()]) != CRN_TAG {
            return refuse(sw::REF_NOT_FOUND);
        }
        if !ctx.channel.c_mac {
            return refuse(sw::SECURITY);
        }
        let crn: [u8; 10] = cmd
            .data()
            .try_into()
            .map_err(|_| Stop::Sw(sw::WRONG_DATA))?;
        if !crn.iter().all(u8::is_ascii_digit) {
            return refuse(sw::WRONG_DATA);
        }
        self.crn = Some(crn);
        ctx.work.card.atomic_bytes += crn.len();
        ok(Vec::new())
    }

    fn pin_index(p2: u8, allow_puk: bool) -> Result<usize, Stop> {
        match p2 {
            0x81 => Ok(ID_PIN),
            0x82 => Ok(SIGN_PIN),
            0x83 if allow_puk => Ok(PUK),
            _ => Err(Stop::Sw(sw::REF_NOT_FOUND)),
        }
    }

    /// Checks `block` against PIN `i` as VERIFY does.
    fn present(&mut self, i: usize, block: &[u8]) -> Result<(), Stop> {
        self.present_with(i, block, false)
    }

    /// [`present`](Self::present); `stuck` plants the defect of a wrong try
    /// that is answered but not counted.
    fn present_with(&mut self, i: usize, block: &[u8], stuck: bool) -> Result<(), Stop> {
        let pin = &mut self.pins[i];
        if !pin.is_set() {
            return Err(Stop::Sw(sw::NOT_USABLE));
        }
        if pin.is_blocked() {
            return Err(Stop::Sw(sw::BLOCKED));
        }
        if block.len() != BLOCK_LEN {
            return Err(Stop::Sw(sw::WRONG_LENGTH));
        }
        if !pin.well_formed(block) {
            return Err(Stop::Sw(sw::WRONG_DATA));
        }
        let before = pin.tries_left();
        match pin.check(block) {
            Check::Ok => Ok(()),
            Check::Wrong(_) if stuck => {
                pin.restore_tries(before);
                Err(Stop::Sw(sw::tries(before)))
            }
            Check::Wrong(left) => Err(Stop::Sw(sw::tries(left))),
            Check::Blocked => Err(Stop::Sw(sw::BLOCKED)),
            Check::NotSet => Err(Stop::Sw(sw::NOT_USABLE)),
        }
    }

    fn verify(&mut self, s: &mut Session, cmd: &Command, stuck: bool) -> Answer {
        if cmd.p1() != 0x00 {
            return refuse(sw::P1P2);
        }
        let i = Self::pin_index(cmd.p2(), true)?;
        if cmd.data().is_empty() {
            let pin = &self.pins[i];
            return match (pin.is_set(), pin.is_blocked(), s.verified[i]) {
                (false, _, _) => refuse(sw::NOT_USABLE),
                (true, true, _) => refuse(sw::BLOCKED),
                (true, false, true) => ok(Vec::new()),
                (true, false, false) => refuse(sw::tries(pin.tries_left())),
            };
        }
        s.verified[i] = false;
        self.present_with(i, cmd.data(), stuck)?;
        s.verified[i] = true;
        ok(Vec::new())
    }

    fn change_reference_data(
        &mut self,
        s: &mut Session,
        cmd: &Command,
        ctx: &mut Ctx<'_>,
    ) -> Answer {
        let i = Self::pin_index(cmd.p2(), true)?;
        match cmd.p1() {
            0x00 => {
                if cmd.data().len() != 2 * BLOCK_LEN {
                    return refuse(sw::WRONG_LENGTH);
                }
                let (old, new) = cmd.data().split_at(BLOCK_LEN);
                if !self.pins[i].well_formed(new) {
                    return refuse(sw::WRONG_DATA);
                }
                self.present(i, old)?;
                self.pins[i].set(new);
                s.verified[i] = true;
            }
            0x01 => {
                if self.state == Lifecycle::Locked {
                    return refuse(sw::CONDITIONS);
                }
                if !(ctx.channel.c_mac && ctx.channel.c_dec) {
                    return refuse(sw::SECURITY);
                }
                if cmd.data().len() != BLOCK_LEN {
                    return refuse(sw::WRONG_LENGTH);
                }
                if !self.pins[i].well_formed(cmd.data()) {
                    return refuse(sw::WRONG_DATA);
                }
                self.pins[i].set(cmd.data());
                s.verified[i] = false;
            }
            _ => return refuse(sw::P1P2),
        }
        ctx.work.card.atomic_bytes += BLOCK_LEN;
        ok(Vec::new())
    }

    fn reset_retry_counter(&mut self, cmd: &Command) -> Answer {
        let i = Self::pin_index(cmd.p2(), false)?;
        let want = match cmd.p1() {
            0x00 => 2 * BLOCK_LEN,
            0x01 => BLOCK_LEN,
            _ => return refuse(sw::P1P2),
        };
        if cmd.data().len() != want {
            return refuse(sw::WRONG_LENGTH);
        }
        let (puk, new) = cmd.data().split_at(BLOCK_LEN);
        if !new.is_empty() && !self.pins[i].well_formed(new) {
            return refuse(sw::WRONG_DATA);
        }
        self.present(PUK, puk)?;
        if !self.pins[i].is_set() {
            return refuse(sw::NOT_USABLE);
        }
        if new.is_empty() {
            self.pins[i].unblock();
        } else {
            self.pins[i].set(new);
        }
        ok(Vec::new())
    }

    fn key_index(p2: u8) -> Result<usize, Stop> {
        match p2 {
            0x01 => Ok(0),
            0x02 => Ok(1),
            _ => Err(Stop::Sw(sw::REF_NOT_FOUND)),
        }
    }

    fn generate_key(&mut self, cmd: &Command, ctx: &mut Ctx<'_>) -> Answer {
        if !matches!(cmd.p1(), 0x80 | 0x81) {
            return refuse(sw::P1P2);
        }
        let k = Self::key_index(cmd.p2())?;
        if cmd.p1() == 0x80 {
            if self.state != Lifecycle::PrePersonalized {
                return refuse(sw::CONDITIONS);
            }
            if !ctx.channel.c_mac {
                return refuse(sw::SECURITY);
            }
            let (key, pkcs8) = CardKey::generate(self.holder_key, ctx.rng)
                .map_err(|_| Stop::Sw(sw::NO_DIAGNOSIS))?;
            self.keys[k] = Some((key, pkcs8));
            ctx.work.keygens += 1;
        }
        let (key, _) = self.keys[k].as_ref().ok_or(Stop::Sw(sw::REF_NOT_FOUND))?;
        ok(key.public_template())
    }

    fn sign(&self, k: usize, data: &[u8], ctx: &mut Ctx<'_>) -> Answer {
        let (key, _) = self.keys[k].as_ref().ok_or(Stop::Sw(sw::REF_NOT_FOUND))?;
        let signature = key
            .sign(ctx.rng, data)
            .map_err(|_| Stop::Sw(sw::NO_DIAGNOSIS))?;
        ctx.work.card.signatures += 1;
        ok(signature)
    }

    fn internal_authenticate(&mut self, cmd: &Command, ctx: &mut Ctx<'_>) -> Answer {
        if (cmd.p1(), cmd.p2()) != (0x00, 0x01) {
            return refuse(sw::P1P2);
        }
        if !(8..=MAX_CHALLENGE).contains(&cmd.data().len()) {
            return refuse(sw::WRONG_LENGTH);
        }
        self.sign(0, cmd.data(), ctx)
    }

    fn pso_sign(&mut self, s: &mut Session, cmd: &Command, ctx: &mut Ctx<'_>) -> Answer {
        if (cmd.p1(), cmd.p2()) != (0x9E, 0x9A) {
            return refuse(sw::P1P2);
        }
        if !(1..=255).contains(&cmd.data().len()) {
            return refuse(sw::WRONG_LENGTH);
        }
        if self.keys[1].is_none() {
            return refuse(sw::REF_NOT_FOUND);
        }
        if !s.verified[SIGN_PIN] {
            return refuse(sw::SECURITY);
        }
        s.verified[SIGN_PIN] = false;
        self.sign(1, cmd.data(), ctx)
    }

    fn ready_to_finalize(&self) -> bool {
        let decodes = |f: &FileEntry| {
            let tags: Vec<&TagSpec> = f.tags.iter().collect();
            f.ef.contents().is_empty() || crate::formats::check_file(f.ef.contents(), &tags).is_ok()
        };
        self.files
            .values()
            .all(|f| !f.mandatory || !f.ef.contents().is_empty())
            && self
                .files
                .iter()
                .all(|(fid, f)| *fid == PIN_STATUS_FID || decodes(f))
            && self.keys.iter().all(Option::is_some)
            && self.pins.iter().all(Pin::is_set)
            && self.crn.is_some()
    }

    fn set_status(&mut self, cmd: &Command, ctx: &mut Ctx<'_>) -> Answer {
        if cmd.p1() != 0x40 {
            return refuse(sw::P1P2);
        }
        if self.state == Lifecycle::Locked {
            return refuse(sw::CONDITIONS);
        }
        if !ctx.channel.c_mac {
            return refuse(sw::SECURITY);
        }
        let target = cmd.p2();
        let next = match self.state {
            Lifecycle::PrePersonalized if target == self.codes[1] && self.ready_to_finalize() => {
                Lifecycle::Personalized
            }
            Lifecycle::Personalized if target == self.codes[2] => Lifecycle::Locked,
            _ => return refuse(sw::CONDITIONS),
        };
        self.state = next;
        ctx.work.card.atomic_bytes += 1;
        ok(Vec::new())
    }
}

fn get_challenge(cmd: &Command, rng: &SystemRandom) -> Answer {
    use ring::rand::SecureRandom;
    if (cmd.p1(), cmd.p2()) != (0, 0) {
        return refuse(sw::P1P2);
    }
    let n = cmd.le().map_or(0, |n| n as usize);
    if !(1..=MAX_CHALLENGE).contains(&n) {
        return refuse(sw::WRONG_LENGTH);
    }
    let mut out = vec![0; n];
    rng.fill(&mut out).map_err(|_| Stop::Sw(sw::NO_DIAGNOSIS))?;
    ok(out)
}

/// The applet's non-volatile memory, as a stored card keeps it.
pub(crate) struct AppletImage {
    /// Life-cycle code.
    pub state: u8,
    pub crn: Option<[u8; 10]>,
    /// Contents of every file that holds data, by FID.
    pub files: BTreeMap<u16, Vec<u8>>,
    /// ID PIN, SIGN PIN, PUK: block (when set) and tries left.
    pub pins: [(Option<Zeroizing<[u8; BLOCK_LEN]>>, u8); 3],
    /// AUTH_KEY, SIGN_KEY as PKCS#8 (when generated).
    pub keys: [Option<Zeroizing<Vec<u8>>>; 2],
}

/// Why an image does not fit this applet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadImage(pub String);

impl Applet {
    /// The non-volatile memory.
    pub(crate) fn image(&self) -> AppletImage {
        AppletImage {
            state: self.state_code(),
            crn: self.crn,
            files: self
                .files
                .iter()
                .filter(|(fid, f)| **fid != PIN_STATUS_FID && !f.ef.contents().is_empty())
                .map(|(fid, f)| (*fid, f.ef.contents().to_vec()))
                .collect(),
            pins: [0, 1, 2].map(|i| (self.pins[i].block(), self.pins[i].tries_left())),
            keys: [0, 1].map(|k| self.keys[k].as_ref().map(|(_, p)| p.clone())),
        }
    }

    /// Puts `image` into a fresh applet: every value is checked against the
    /// spec (file sizes, PIN blocks, key documents) before anything is kept.
    pub(crate) fn restore(&mut self, image: &AppletImage) -> Result<(), BadImage> {
        let state = match image.state {
            c if c == self.codes[0] => Lifecycle::PrePersonalized,
            c if c == self.codes[1] => Lifecycle::Personalized,
            c if c == self.codes[2] => Lifecycle::Locked,
            c => return Err(BadImage(format!("unknown life-cycle code {c:02X}"))),
        };
        for (fid, data) in &image.files {
            let f = self
                .files
                .get(fid)
                .filter(|_| *fid != PIN_STATUS_FID)
                .ok_or_else(|| BadImage(format!("no file {fid:04X} in the applet")))?;
            if f.ef.write_would_fit(data.len()).is_err() {
                return Err(BadImage(format!(
                    "file {fid:04X} holds {} bytes, more than its capacity",
                    data.len()
                )));
            }
        }
        for (i, (block, tries)) in image.pins.iter().enumerate() {
            if let Some(b) = block {
                if !self.pins[i].well_formed(b.as_slice()) {
                    return Err(BadImage(format!(
                        "PIN {} is not a well-formed block",
                        i + 1
                    )));
                }
            }
            if *tries > self.pins[i].max_tries() {
                return Err(BadImage(format!("PIN {} has {tries} tries left", i + 1)));
            }
        }
        let rng = SystemRandom::new();
        let mut keys: [Option<(CardKey, Zeroizing<Vec<u8>>)>; 2] = [None, None];
        for (k, doc) in image.keys.iter().enumerate() {
            if let Some(doc) = doc {
                let key = CardKey::from_pkcs8(self.holder_key, doc, &rng).map_err(|_| {
                    BadImage(format!(
                        "key {} is not a PKCS#8 {:?} key of this profile",
                        k + 1,
                        self.holder_key
                    ))
                })?;
                keys[k] = Some((key, doc.clone()));
            }
        }
        if image.crn.is_some_and(|c| !c.iter().all(u8::is_ascii_digit)) {
            return Err(BadImage("the CRN is not 10 digits".into()));
        }
        for (fid, data) in &image.files {
            if let Some(f) = self.files.get_mut(fid) {
                f.ef.set(data);
            }
        }
        for (i, (block, tries)) in image.pins.iter().enumerate() {
            self.pins[i].restore(block.as_ref().map(|b| b.as_slice()), *tries);
        }
        self.keys = keys;
        self.state = state;
        self.crn = image.crn;
        Ok(())
    }
}

/// Encodes one BER-TLV (definite length, short or long form).
pub(crate) fn tlv(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = tag.to_vec();
    let n = value.len();
    match n {
        0..=0x7F => out.push(n as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, n as u8]),
        _ => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(value);
    out
}

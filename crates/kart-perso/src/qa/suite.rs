//! The checks of the catalogue, in the order a card can take them: those
//! that need a blank card, QA's own personalization, those that need the
//! locked card and its PINs, and the timing of everything.

// Every check has the signature `check` runs, even one that cannot fail below
// its verdict; counts and microseconds stay far below 2^52.
#![allow(clippy::unnecessary_wraps, clippy::cast_precision_loss)]

use std::collections::HashSet;
use std::fmt::Display;
use std::time::Instant;

use kart_apdu::gp::{ScpVersion, SecureChannel, SecurityLevel};
use kart_apdu::{Card, Command, Response};
use kart_spec::{AtrInfo, Protocol, Scp, WrongLe};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
use zeroize::Zeroizing;

use super::probe::{Probe, Tamper};
use super::randomness::{self, RUNS_BOUND};
use super::timing::{bound_us, command_name, model_us, per_command};
use super::{CardReport, CheckResult, CommandSamples, Outcome, QaTarget, Setup};
use crate::card_data::Cplc;
use crate::crn::crn_of;
use crate::personalize::{personalize, probe as probe_card, Job};
use crate::pin_mailer::{Pins, Secret};
use crate::pki::{verify_card_signature, Certificate};
use crate::read::CardIdentity;
use crate::security_object::SecurityObject;

/// A check's verdict before it is put in the report.
enum Verdict {
    Pass(String),
    Fail { observed: String, expected: String },
    Skip(String),
}

/// One RND-024 sample: its observations, and whether it saw repeats.
struct Sample {
    obs: Obs,
    repeats: bool,
}

/// A step failed below the check (transport, secure channel, parsing).
type Step<T> = Result<T, String>;

/// What a check saw, item by item, against what it wanted.
#[derive(Default)]
struct Obs {
    seen: Vec<String>,
    wrong: Vec<(String, String)>,
}

impl Obs {
    fn sw(&mut self, what: &str, got: u16, want: u16) {
        self.is(
            what,
            got == want,
            format!("{got:04X}"),
            format!("{want:04X}"),
        );
    }
    fn is(&mut self, what: &str, ok: bool, got: impl Display, want: impl Display) {
        self.seen.push(format!("{what}: {got}"));
        if !ok {
            self.wrong
                .push((format!("{what}: {got}"), format!("{what}: {want}")));
        }
    }
    fn verdict(self) -> Verdict {
        if self.wrong.is_empty() {
            return Verdict::Pass(self.seen.join("; "));
        }
        let (observed, expected): (Vec<_>, Vec<_>) = self.wrong.into_iter().unzip();
        Verdict::Fail {
            observed: observed.join("; "),
            expected: expected.join("; "),
        }
    }
}

const EF_ID: u16 = 0x0101;
const EF_FACE: u16 = 0x0102;
const EF_FINGER: u16 = 0x0103;
const EF_PIN_STATUS: u16 = 0x0104;
const EF_SOD: u16 = 0x011D;
const EF_CERT_AUTH: u16 = 0x0201;
const EF_CERT_SIGN: u16 = 0x0202;
const ID_PIN: u8 = 0x81;
const SIGN_PIN: u8 = 0x82;
const OK: u16 = 0x9000;
const SECURITY: u16 = 0x6982;
const BLOCKED: u16 = 0x6983;
const CONDITIONS: u16 = 0x6985;
const WRONG_LENGTH: u16 = 0x6700;
const WRONG_OFFSET: u16 = 0x6B00;
const END_OF_FILE: u16 = 0x6282;
/// Challenges asked for RND-024 and their length.
const CHALLENGES: usize = 1000;
const CHALLENGE_LEN: usize = 8;
/// Wrong tries PIN-018 spends at most trying to block a PIN.
const MAX_BLOCKING_TRIES: usize = 10;
/// Exchanges outside any check (QA's own personalization).
const NO_CHECK: usize = usize::MAX;

struct Suite<'s, 't> {
    setup: &'s Setup<'s>,
    probe: Probe<'t>,
    verdicts: Vec<Option<Verdict>>,
    rng: SystemRandom,
    /// The ID PIN digits in force (PIN-018 changes it).
    id_pin: Option<Zeroizing<Vec<u8>>>,
    pins: Option<Pins>,
    points: [Option<Vec<u8>>; 2],
}

pub(super) fn run(reader: &str, target: &mut dyn QaTarget, setup: &Setup<'_>) -> CardReport {
    let started = Instant::now();
    let atr = target.atr();
    let protocol = target.protocol();
    let mut s = Suite {
        setup,
        probe: Probe::new(target),
        verdicts: setup.spec.conformance.checks.iter().map(|_| None).collect(),
        rng: SystemRandom::new(),
        id_pin: None,
        pins: None,
        points: [None, None],
    };
    let (csn, lifecycle) = s.run_all(atr.as_deref(), protocol);
    s.report(reader, csn, lifecycle, started)
}

impl<'t> Suite<'_, 't> {
    fn run_all(
        &mut self,
        atr: Option<&[u8]>,
        protocol: Option<Protocol>,
    ) -> (Option<String>, String) {
        self.check("ATR-001", |s| s.atr_matches(atr));
        self.check("ATR-002", |s| s.atr_protocol(atr, protocol));
        let (csn, state) = match self.card_state() {
            Ok(found) => found,
            Err(e) => {
                self.fail_rest(&format!(
                    "the card did not answer as the profile's applet: {e}"
                ));
                return (None, "unknown".into());
            }
        };
        let codes = &self.setup.spec.applet;
        let blank = codes.lifecycle_code("PRE_PERSONALIZED") == Some(state);
        let locked = codes.lifecycle_code("LOCKED") == Some(state);
        let state_name = codes
            .lifecycle
            .iter()
            .find(|l| l.code.bytes().first() == Some(&state))
            .map_or_else(|| format!("{state:02X}"), |l| l.name.clone());
        self.check("APDU-003", Self::unknown_instruction);
        self.check("APDU-004", Self::unsupported_class);
        self.check("RND-024", Self::randomness);
        if blank {
            self.check("SC-009", Self::plain_writes_refused);
            self.check("SC-010", Self::channel_levels);
            self.check("SC-011", Self::wrong_mac_and_cryptogram);
            self.check("APDU-006", Self::length_limits);
            self.check("APDU-008", Self::read_past_end);
            self.check("APDU-007", Self::chaining);
            self.check("ATOM-025", Self::torn_write);
            let mut early = Obs::default();
            self.probe.check = self.index("AC-015").unwrap_or(NO_CHECK);
            if let Err(e) = self.transitions(&mut early, &["07", "83"]) {
                early.is("SET STATUS from PRE_PERSONALIZED", false, e, "6985");
            }
            self.probe.check = NO_CHECK;
            let perso = self.erase_test_files().and_then(|()| self.personalize());
            if let Err(e) = perso {
                self.fail_rest(&format!("QA could not personalize the blank card: {e}"));
                self.check("TIME-028", Self::timing);
                return (csn, state_name);
            }
            self.check("AC-015", |s| s.one_way(early));
        } else {
            let why = format!("needs a blank (PRE_PERSONALIZED) card; this one is {state_name}");
            for id in super::BLANK_CARD_CHECKS {
                self.skip(id, &why);
            }
        }
        self.check("AC-013", Self::public_files);
        self.check("APDU-005", Self::get_response);
        self.check("KEY-023", Self::certificates_match_keys);
        self.check("KEY-022", Self::active_authentication);
        if locked || blank {
            self.check("AC-014", Self::locked_refuses_writes);
        } else {
            self.skip(
                "AC-014",
                &format!("needs a LOCKED card; this one is {state_name}"),
            );
        }
        if self.pins.is_some() {
            self.check("AC-012", Self::protected_files);
            self.check("DATA-026", Self::identity_data);
            self.check("DATA-027", Self::security_object);
            self.check("KEY-021", Self::public_keys);
            self.check("PIN-017", Self::counter_query);
            self.check("PIN-019", Self::counter_survives_reset);
            self.check("PIN-016", Self::counts_down);
            self.check("PIN-018", Self::puk_unblocks);
            self.check("PIN-020", Self::sign_pin_each_time);
        } else {
            let why = "needs the card's PINs: QA knows them only for cards it personalized itself (give it a blank card)";
            for id in super::QA_PERSONALIZED_CHECKS {
                if !["APDU-005", "AC-014", "KEY-022"].contains(&id) {
                    self.skip(id, why);
                }
            }
        }
        self.check("TIME-028", Self::timing);
        (csn, state_name)
    }

    // ───────────────────────── bookkeeping ─────────────────────────

    fn index(&self, id: &str) -> Option<usize> {
        self.setup
            .spec
            .conformance
            .checks
            .iter()
            .position(|c| c.id == id)
    }

    /// Runs check `id` (if the catalogue has it) and records its verdict.
    fn check(&mut self, id: &str, f: impl FnOnce(&mut Self) -> Step<Verdict>) {
        let Some(i) = self.index(id) else { return };
        self.probe.check = i;
        self.probe.tamper = None;
        let verdict = f(self).unwrap_or_else(|e| Verdict::Fail {
            observed: e,
            expected: self.setup.spec.conformance.checks[i].pass.clone(),
        });
        self.probe.check = NO_CHECK;
        self.verdicts[i] = Some(verdict);
    }

    fn skip(&mut self, id: &str, why: &str) {
        if let Some(i) = self.index(id) {
            self.verdicts[i] = Some(Verdict::Skip(why.to_owned()));
        }
    }

    /// Fails every check that has no verdict yet.
    fn fail_rest(&mut self, why: &str) {
        for (i, v) in self.verdicts.iter_mut().enumerate() {
            if v.is_none() {
                *v = Some(Verdict::Fail {
                    observed: why.to_owned(),
                    expected: self.setup.spec.conformance.checks[i].pass.clone(),
                });
            }
        }
    }

    fn report(
        self,
        reader: &str,
        csn: Option<String>,
        lifecycle: String,
        started: Instant,
    ) -> CardReport {
        let model = &self.setup.profile.latency;
        let log = &self.probe.log;
        let checks = self
            .setup
            .spec
            .conformance
            .checks
            .iter()
            .zip(self.verdicts)
            .enumerate()
            .map(|(i, (c, v))| {
                let (outcome, observed, detail) = match v {
                    Some(Verdict::Pass(o)) => (Outcome::Pass, o, String::new()),
                    Some(Verdict::Fail { observed, expected }) => {
                        (Outcome::Fail, observed, format!("expected {expected}"))
                    }
                    Some(Verdict::Skip(why)) => (Outcome::Skipped, String::new(), why),
                    None => (
                        Outcome::Skipped,
                        String::new(),
                        format!("this QA suite does not implement {}", c.id),
                    ),
                };
                CheckResult {
                    id: c.id.clone(),
                    title: c.title.clone(),
                    clause: c.clause.clone(),
                    outcome,
                    observed,
                    detail,
                    commands: per_command(model, log.iter().filter(|e| e.check == i)),
                }
            })
            .collect();
        let mut latencies: Vec<CommandSamples> = Vec::new();
        for e in log.iter().filter(|e| e.sw.is_some()) {
            let name = command_name(e.ins);
            match latencies.iter_mut().find(|c| c.command == name) {
                Some(c) => c.samples_us.push(e.micros),
                None => latencies.push(CommandSamples {
                    command: name,
                    model_us: model_us(model, e),
                    samples_us: vec![e.micros],
                }),
            }
        }
        CardReport {
            reader: reader.to_owned(),
            profile: self.setup.profile.id.clone(),
            csn,
            lifecycle,
            checks,
            latencies,
            apdus: log.len() as u64,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }

    // ───────────────────────── wire helpers ─────────────────────────

    fn raw(&mut self, apdu: &[u8]) -> Step<Response> {
        self.probe
            .raw(apdu)
            .map_err(|e| format!("the card stopped answering: {e}"))
    }

    fn sw(&mut self, apdu: &[u8]) -> Step<u16> {
        Ok(self.raw(apdu)?.sw().0)
    }

    /// Sends through a session that does GET RESPONSE and `6Cxx` re-sends.
    fn send(&mut self, cmd: &Command) -> Step<Response> {
        let caps = self.setup.profile.caps();
        Card::with_caps(&mut self.probe, caps)
            .send(cmd)
            .map_err(|e| format!("the card stopped answering: {e}"))
    }

    fn select_applet(&mut self) -> Step<()> {
        let aid = self.setup.profile.applet_aid.bytes().to_vec();
        match self.sw(&apdu(0x00, 0xA4, 0x04, 0x0C, &aid, None))? {
            OK => Ok(()),
            sw => Err(format!(
                "SELECT of the applet {} answered {sw:04X}",
                hex::encode_upper(&aid)
            )),
        }
    }

    fn select_ef(&mut self, fid: u16) -> Step<u16> {
        self.sw(&apdu(0x00, 0xA4, 0x02, 0x0C, &fid.to_be_bytes(), None))
    }

    /// Selects the applet, opens a secure channel at `level` and runs `f` in it.
    fn with_channel<R>(
        &mut self,
        level: SecurityLevel,
        f: impl FnOnce(&mut Chan<'_, 't>) -> Step<R>,
    ) -> Step<R> {
        self.select_applet()?;
        let (keys, params) = self
            .setup
            .issuer
            .channel_keys(self.setup.profile)
            .map_err(|e| e.to_string())?;
        let caps = self.setup.profile.caps();
        let inner = Card::with_caps(&mut self.probe, caps);
        let mut ch = SecureChannel::open(inner, &keys, &params, level).map_err(|e| {
            format!(
                "the secure channel at level {:02X} did not open: {}",
                level.bits(),
                e.error
            )
        })?;
        f(&mut ch)
    }

    fn card_state(&mut self) -> Step<(Option<String>, u8)> {
        self.select_applet()?;
        let cplc = self.raw(&[0x00, 0xCA, 0x9F, 0x7F, 0x00])?;
        let csn = Cplc::parse(cplc.data()).ok().map(|c| c.csn_hex());
        let state = self.raw(&[0x00, 0xCA, 0xDF, 0x71, 0x00])?;
        match state.data() {
            [0xDF, 0x71, 0x01, code] if state.sw().0 == OK => Ok((csn, *code)),
            other => Err(format!(
                "GET DATA DF71 answered {} {:04X}, not DF71 01 <state>",
                hex::encode_upper(other),
                state.sw().0
            )),
        }
    }

    /// Reads EF `fid` to its end, as a terminal does (`6Cxx` re-sent, `6282`
    /// ends it); `Ok(Err(sw))` when the card refuses.
    fn read_ef(&mut self, fid: u16) -> Step<Result<Vec<u8>, u16>> {
        match self.select_ef(fid)? {
            OK => {}
            sw => return Ok(Err(sw)),
        }
        let p = self.setup.profile;
        let chunk = p
            .quirks
            .max_read_chunk
            .min(p.limits.max_response_data)
            .max(1);
        let mut data = Vec::new();
        while data.len() < 0x8000 {
            let [hi, lo] = u16::try_from(data.len()).unwrap_or(u16::MAX).to_be_bytes();
            let mut r = self.raw(&read_binary(hi, lo, chunk))?;
            if r.sw().0 >> 8 == 0x6C {
                r = self.raw(&read_binary(hi, lo, usize::from(r.sw().0 as u8).max(1)))?;
            }
            match r.sw().0 {
                OK if !r.data().is_empty() => data.extend_from_slice(r.data()),
                END_OF_FILE => {
                    data.extend_from_slice(r.data());
                    break;
                }
                WRONG_OFFSET if !data.is_empty() => break,
                OK => break,
                sw => return Ok(Err(sw)),
            }
        }
        Ok(Ok(data))
    }

    fn verify_pin(&mut self, reference: u8, digits: &[u8]) -> Step<u16> {
        self.sw(&apdu(0x00, 0x20, 0x00, reference, &pin_block(digits), None))
    }

    fn random<const N: usize>(&self) -> Step<[u8; N]> {
        let mut b = [0u8; N];
        self.rng
            .fill(&mut b)
            .map_err(|_| "the system random generator failed".to_owned())?;
        Ok(b)
    }

    // ───────────────────────── ATR ─────────────────────────

    fn atr_matches(&mut self, atr: Option<&[u8]>) -> Step<Verdict> {
        let Some(atr) = atr else {
            return Ok(Verdict::Skip("the reader does not report the ATR".into()));
        };
        let p = self.setup.profile;
        let mut obs = Obs::default();
        obs.is(
            "ATR",
            p.matches_atr(atr),
            hex::encode_upper(atr),
            format!("{} under mask {}", p.atr, p.atr_mask),
        );
        match AtrInfo::parse(atr) {
            Ok(_) => obs.is("structure and TCK", true, "valid", "valid"),
            Err(e) => obs.is("structure and TCK", false, e, "valid T0, TDi and TCK"),
        }
        Ok(obs.verdict())
    }

    fn atr_protocol(&mut self, atr: Option<&[u8]>, used: Option<Protocol>) -> Step<Verdict> {
        let Some(atr) = atr else {
            return Ok(Verdict::Skip("the reader does not report the ATR".into()));
        };
        let want = self.setup.profile.protocol;
        let mut obs = Obs::default();
        let name = |t1: bool| if t1 { "T=1" } else { "T=0 only" };
        match AtrInfo::parse(atr) {
            Ok(info) => obs.is(
                "ATR offers",
                info.offers_t1 == (want == Protocol::T1),
                name(info.offers_t1),
                name(want == Protocol::T1),
            ),
            Err(e) => obs.is("ATR offers", false, e, name(want == Protocol::T1)),
        }
        if let Some(used) = used {
            obs.is(
                "protocol in use",
                used == want,
                format!("{used:?}"),
                format!("{want:?}"),
            );
        }
        Ok(obs.verdict())
    }

    // ───────────────────────── APDU ─────────────────────────

    fn unknown_instruction(&mut self) -> Step<Verdict> {
        self.select_applet()?;
        let r = self.raw(&[0x00, 0x7E, 0x00, 0x00])?;
        let mut obs = Obs::default();
        obs.sw("INS 7E", r.sw().0, 0x6D00);
        obs.is("data", r.data().is_empty(), r.data().len(), 0);
        Ok(obs.verdict())
    }

    fn unsupported_class(&mut self) -> Step<Verdict> {
        let aid = self.setup.profile.applet_aid.bytes().to_vec();
        let mut obs = Obs::default();
        obs.sw(
            "SELECT with CLA 40",
            self.sw(&apdu(0x40, 0xA4, 0x04, 0x0C, &aid, None))?,
            0x6E00,
        );
        Ok(obs.verdict())
    }

    fn get_response(&mut self) -> Step<Verdict> {
        self.select_applet()?;
        let challenge: [u8; 16] = self.random()?;
        let first = self.raw(&apdu(0x00, 0x88, 0x00, 0x01, &challenge, Some(256)))?;
        let mut obs = Obs::default();
        if self.setup.profile.quirks.get_response {
            obs.sw("INTERNAL AUTHENTICATE", first.sw().0, 0x6140);
            obs.is(
                "its data",
                first.data().is_empty(),
                first.data().len(),
                "none",
            );
            let rest = self.raw(&[0x00, 0xC0, 0x00, 0x00, 0x40])?;
            obs.sw("GET RESPONSE", rest.sw().0, OK);
            obs.is(
                "signature bytes",
                rest.data().len() == 64,
                rest.data().len(),
                64,
            );
        } else {
            obs.sw("INTERNAL AUTHENTICATE", first.sw().0, OK);
            obs.is(
                "signature bytes",
                first.data().len() == 64,
                first.data().len(),
                64,
            );
        }
        Ok(obs.verdict())
    }

    fn length_limits(&mut self) -> Step<Verdict> {
        let limits = self.setup.profile.limits;
        self.select_applet()?;
        let mut obs = Obs::default();
        obs.sw("SELECT EF.CERT_AUTH", self.select_ef(EF_CERT_AUTH)?, OK);
        let max = limits.max_command_data;
        let fits = update_binary(&vec![0x5A; max], max > 255);
        let sw = self.sw(&fits)?;
        obs.is(
            &format!("UPDATE BINARY with {max} bytes"),
            sw != WRONG_LENGTH,
            format!("{sw:04X}"),
            "accepted (not 6700)",
        );
        let too_long = update_binary(&vec![0x5A; max + 1], true);
        let what = if limits.extended_length {
            format!("UPDATE BINARY with {} bytes", max + 1)
        } else {
            format!(
                "extended UPDATE BINARY with {} bytes to a short-only card",
                max + 1
            )
        };
        obs.sw(&what, self.sw(&too_long)?, WRONG_LENGTH);
        obs.sw(
            "EF.CERT_AUTH still empty (READ BINARY)",
            self.sw(&read_binary(0, 0, 1))?,
            WRONG_OFFSET,
        );
        Ok(obs.verdict())
    }

    fn read_past_end(&mut self) -> Step<Verdict> {
        let content: Vec<u8> = (0..40).collect();
        self.with_channel(SecurityLevel::C_MAC, |ch| {
            csend(
                ch,
                &cmd(0x00, 0xA4, 0x02, 0x0C, &EF_CERT_AUTH.to_be_bytes()),
            )?;
            expect_ok(
                &csend(ch, &cmd(0x00, 0xD6, 0, 0, &content))?,
                "UPDATE BINARY in the channel",
            )
        })?;
        self.select_applet()?;
        self.select_ef(EF_CERT_AUTH)?;
        let mut obs = Obs::default();
        obs.sw(
            "READ BINARY at offset 40 = length",
            self.sw(&read_binary(0, 40, 10))?,
            WRONG_OFFSET,
        );
        let r = self.raw(&read_binary(0, 30, 20))?;
        match self.setup.profile.quirks.wrong_le {
            WrongLe::EndOfFile => {
                obs.sw("READ BINARY offset 30 Le 20", r.sw().0, END_OF_FILE);
                obs.is(
                    "its data",
                    r.data() == &content[30..],
                    hex::encode_upper(r.data()),
                    hex::encode_upper(&content[30..]),
                );
            }
            WrongLe::ExactLe => obs.sw("READ BINARY offset 30 Le 20", r.sw().0, 0x6C0A),
        }
        Ok(obs.verdict())
    }

    fn chaining(&mut self) -> Step<Verdict> {
        let mut obs = Obs::default();
        if !self.setup.profile.limits.chaining {
            self.select_applet()?;
            self.select_ef(EF_CERT_AUTH)?;
            obs.sw(
                "UPDATE BINARY with CLA 10",
                self.sw(&apdu(0x10, 0xD6, 0, 0, &[1, 2, 3, 4], None))?,
                0x6884,
            );
            return Ok(obs.verdict());
        }
        let (a, b) = ([0xA1u8; 16], [0xB2u8; 16]);
        let sws = self.with_channel(SecurityLevel::C_MAC, |ch| {
            csend(
                ch,
                &cmd(0x00, 0xA4, 0x02, 0x0C, &EF_CERT_AUTH.to_be_bytes()),
            )?;
            let first = csend(ch, &cmd(0x10, 0xD6, 0, 0, &a))?.sw().0;
            let last = csend(ch, &cmd(0x00, 0xD6, 0, 0, &b))?.sw().0;
            let open = csend(ch, &cmd(0x10, 0xD6, 0, 0, &a))?.sw().0;
            let other = csend(
                ch,
                &Command::new(0x00, 0xCA, 0xDF, 0x71)
                    .with_le(256)
                    .map_err(|e| e.to_string())?,
            )?
            .sw()
            .0;
            Ok([first, last, open, other])
        })?;
        obs.sw("first part (CLA 10)", sws[0], OK);
        obs.sw("last part (CLA 00)", sws[1], OK);
        obs.sw("another chain's first part", sws[2], OK);
        obs.sw("GET DATA inside that chain", sws[3], 0x6883);
        self.select_applet()?;
        self.select_ef(EF_CERT_AUTH)?;
        let r = self.raw(&read_binary(0, 0, 32))?;
        let want: Vec<u8> = a.iter().chain(&b).copied().collect();
        obs.is(
            "EF.CERT_AUTH holds both parts",
            r.data() == want.as_slice(),
            hex::encode_upper(r.data()),
            hex::encode_upper(&want),
        );
        Ok(obs.verdict())
    }

    // ───────────────────────── secure channel ─────────────────────────

    fn plain_writes_refused(&mut self) -> Step<Verdict> {
        self.select_applet()?;
        let mut obs = Obs::default();
        self.select_ef(EF_CERT_AUTH)?;
        obs.sw(
            "UPDATE BINARY",
            self.sw(&apdu(0x00, 0xD6, 0, 0, &[0xDE, 0xAD], None))?,
            SECURITY,
        );
        obs.sw(
            "PUT DATA DF72",
            self.sw(&apdu(0x00, 0xDA, 0xDF, 0x72, b"0000000000", None))?,
            SECURITY,
        );
        obs.sw(
            "GENERATE ASYMMETRIC KEY PAIR",
            self.sw(&[0x00, 0x47, 0x80, 0x01, 0x00])?,
            SECURITY,
        );
        obs.sw(
            "SET STATUS 0F",
            self.sw(&[0x80, 0xF0, 0x40, 0x0F])?,
            SECURITY,
        );
        self.select_ef(EF_CERT_AUTH)?;
        obs.sw(
            "EF.CERT_AUTH still empty (READ BINARY)",
            self.sw(&read_binary(0, 0, 1))?,
            WRONG_OFFSET,
        );
        obs.sw(
            "CRN still unset (GET DATA DF72)",
            self.sw(&[0x00, 0xCA, 0xDF, 0x72, 0x00])?,
            0x6A88,
        );
        obs.sw(
            "no key (public key of AUTH_KEY)",
            self.sw(&[0x00, 0x47, 0x81, 0x01, 0x00])?,
            0x6A88,
        );
        Ok(obs.verdict())
    }

    fn channel_levels(&mut self) -> Step<Verdict> {
        let sc = self.setup.profile.secure_channel;
        let mut levels = vec![SecurityLevel::C_MAC, SecurityLevel::C_DEC_C_MAC];
        // GP Amendment D: i bit 6 (20) R-MAC, bit 7 (40) R-ENC support.
        if sc.scp == Scp::Scp03 && sc.i & 0x20 != 0 {
            levels.push(SecurityLevel::C_DEC_C_MAC_R_MAC);
        }
        if sc.scp == Scp::Scp03 && sc.i & 0x40 != 0 {
            levels.push(SecurityLevel::FULL);
        }
        let want_scp = match sc.scp {
            Scp::Scp02 => ScpVersion::Scp02,
            Scp::Scp03 => ScpVersion::Scp03,
        };
        let mut obs = Obs::default();
        for level in levels {
            let what = format!("level {:02X}", level.bits());
            match self.with_channel(level, |ch| {
                let info = ch.info();
                let sw = csend(
                    ch,
                    &Command::new(0x00, 0xCA, 0xDF, 0x71)
                        .with_le(256)
                        .map_err(|e| e.to_string())?,
                )?
                .sw()
                .0;
                Ok((info.version, info.key_version, sw))
            }) {
                Ok((v, kv, sw)) => obs.is(
                    &what,
                    v == want_scp && kv == sc.key_version && sw == OK,
                    format!("{v} key version {kv:02X}, secured GET DATA {sw:04X}"),
                    format!(
                        "{want_scp} key version {:02X}, secured GET DATA 9000",
                        sc.key_version
                    ),
                ),
                Err(e) => obs.is(&what, false, e, "opens"),
            }
        }
        Ok(obs.verdict())
    }

    fn wrong_mac_and_cryptogram(&mut self) -> Step<Verdict> {
        let mut obs = Obs::default();
        self.probe.tamper = Some(Tamper::Cryptogram);
        let opened = self.with_channel(SecurityLevel::C_MAC, |_| Ok(())).is_ok();
        self.probe.tamper = None;
        let sw = self.probe.last_sw(0x82).unwrap_or_default();
        // The host side keeps the session keys to itself, so the spoiled
        // cryptogram also spoils the C-MAC that covers it: README §7 then
        // allows 6982 (checked before the cryptogram) as well as 6300.
        obs.is(
            "EXTERNAL AUTHENTICATE with a flipped cryptogram bit (its C-MAC spoiled too)",
            matches!(sw, 0x6300 | 0x6982) && !opened,
            format!(
                "{sw:04X}, channel {}",
                if opened { "opened" } else { "not opened" }
            ),
            "6300 (or 6982 for the MAC), channel not opened",
        );
        let (bad, after) = self.with_channel(SecurityLevel::C_MAC, |ch| {
            ch.inner_mut().transport_mut().tamper = Some(Tamper::LastByte);
            let bad = csend(
                ch,
                &cmd(0x00, 0xA4, 0x02, 0x0C, &EF_CERT_AUTH.to_be_bytes()),
            )?
            .sw()
            .0;
            let after = csend(
                ch,
                &cmd(0x00, 0xA4, 0x02, 0x0C, &EF_CERT_AUTH.to_be_bytes()),
            )?
            .sw()
            .0;
            Ok((bad, after))
        })?;
        obs.sw("SELECT with a flipped C-MAC bit", bad, 0x6988);
        obs.sw("next secured command (channel closed)", after, SECURITY);
        Ok(obs.verdict())
    }

    // ───────────────────────── atomicity, life cycle ─────────────────────────

    fn torn_write(&mut self) -> Step<Verdict> {
        let (old, new) = ([0x11u8; 64], [0x22u8; 64]);
        self.with_channel(SecurityLevel::C_MAC, |ch| {
            csend(
                ch,
                &cmd(0x00, 0xA4, 0x02, 0x0C, &EF_CERT_SIGN.to_be_bytes()),
            )?;
            expect_ok(
                &csend(ch, &cmd(0x00, 0xD6, 0, 0, &old))?,
                "UPDATE BINARY of the old content",
            )
        })?;
        if !self.probe.target.tear_next_update() {
            return Ok(Verdict::Skip(
                "tearing a write needs the simulator's hook; a real card is not torn by QA".into(),
            ));
        }
        let torn = self.with_channel(SecurityLevel::C_MAC, |ch| {
            csend(
                ch,
                &cmd(0x00, 0xA4, 0x02, 0x0C, &EF_CERT_SIGN.to_be_bytes()),
            )?;
            csend(ch, &cmd(0x00, 0xD6, 0, 0, &new)).map(|r| r.sw().0)
        });
        self.probe
            .target
            .reinsert()
            .map_err(|e| format!("the torn card did not come back: {e}"))?;
        self.select_applet()?;
        self.select_ef(EF_CERT_SIGN)?;
        let r = self.raw(&read_binary(0, 0, 64))?;
        let mut obs = Obs::default();
        obs.is(
            "the write",
            true,
            torn.map_or_else(|e| format!("torn ({e})"), |sw| format!("answered {sw:04X}")),
            "",
        );
        let whole = r.data() == old || r.data() == new;
        obs.is(
            "EF.CERT_SIGN after reinsertion",
            whole,
            if r.data() == old {
                "the old content".to_owned()
            } else if r.data() == new {
                "the new content".to_owned()
            } else {
                hex::encode_upper(r.data())
            },
            "the old or the new content",
        );
        Ok(obs.verdict())
    }

    /// SET STATUS to each of `targets` in a channel: each must answer 6985.
    fn transitions(&mut self, obs: &mut Obs, targets: &[&str]) -> Step<()> {
        let codes: Vec<(String, u8)> = targets
            .iter()
            .filter_map(|t| u8::from_str_radix(t, 16).ok().map(|c| ((*t).to_owned(), c)))
            .collect();
        let sws = self.with_channel(SecurityLevel::C_MAC, |ch| {
            codes
                .iter()
                .map(|(_, c)| Ok(csend(ch, &Command::new(0x80, 0xF0, 0x40, *c))?.sw().0))
                .collect::<Step<Vec<u16>>>()
        })?;
        for ((name, _), sw) in codes.iter().zip(sws) {
            obs.sw(&format!("SET STATUS {name}"), sw, CONDITIONS);
        }
        Ok(())
    }

    fn one_way(&mut self, mut obs: Obs) -> Step<Verdict> {
        let done: Vec<u16> = self
            .probe
            .log
            .iter()
            .filter(|e| e.check == NO_CHECK && e.ins == 0xF0)
            .filter_map(|e| e.sw)
            .collect();
        obs.is(
            "personalization's SET STATUS 0F then 83",
            done == [OK, OK],
            format!("{done:04X?}"),
            "[9000, 9000]",
        );
        self.transitions(&mut obs, &["07", "0F", "83"])?;
        Ok(obs.verdict())
    }

    fn erase_test_files(&mut self) -> Step<()> {
        self.with_channel(SecurityLevel::C_MAC, |ch| {
            for fid in [EF_CERT_AUTH, EF_CERT_SIGN, EF_SOD] {
                csend(ch, &cmd(0x00, 0xA4, 0x02, 0x0C, &fid.to_be_bytes()))?;
                let sw = csend(ch, &Command::new(0x00, 0x0E, 0, 0))?.sw().0;
                if sw != OK && sw != WRONG_OFFSET {
                    return Err(format!("ERASE BINARY of {fid:04X} answered {sw:04X}"));
                }
            }
            Ok(())
        })
    }

    fn personalize(&mut self) -> Step<()> {
        let (setup, caps) = (self.setup, self.setup.profile.caps());
        let pins = Pins::generate(None).map_err(|e| e.to_string())?;
        let crn = crn_of(999_999_999);
        let job = Job::new(setup.record, &crn, &pins, setup.now.date());
        let mut card = Card::with_caps(&mut self.probe, caps);
        let info = probe_card(&mut card, setup.profile).map_err(|e| e.to_string())?;
        personalize(
            &mut card,
            setup.profile,
            setup.issuer,
            &info,
            &job,
            setup.now,
        )
        .map_err(|e| e.to_string())?;
        self.id_pin = Some(Zeroizing::new(pins.id_pin.expose().to_vec()));
        self.pins = Some(pins);
        Ok(())
    }

    fn locked_refuses_writes(&mut self) -> Step<Verdict> {
        let crn = crn_of(999_999_999);
        let sws = self.with_channel(SecurityLevel::C_MAC, |ch| {
            csend(
                ch,
                &cmd(0x00, 0xA4, 0x02, 0x0C, &EF_CERT_AUTH.to_be_bytes()),
            )?;
            let first = csend(
                ch,
                &Command::new(0x00, 0xB0, 0, 0)
                    .with_le(1)
                    .map_err(|e| e.to_string())?,
            )?;
            // Writes back the byte that is there: a card that wrongly accepts loses nothing.
            let same = first.data().first().copied().unwrap_or(0x30);
            Ok([
                csend(ch, &cmd(0x00, 0xD6, 0, 0, &[same]))?.sw().0,
                csend(ch, &cmd(0x00, 0xDA, 0xDF, 0x72, crn.as_str().as_bytes()))?
                    .sw()
                    .0,
                csend(
                    ch,
                    &Command::new(0x00, 0x47, 0x80, 0x01)
                        .with_le(256)
                        .map_err(|e| e.to_string())?,
                )?
                .sw()
                .0,
                csend(ch, &Command::new(0x80, 0xF0, 0x40, 0x83))?.sw().0,
            ])
        })?;
        let mut obs = Obs::default();
        for (what, sw) in [
            "UPDATE BINARY",
            "PUT DATA",
            "GENERATE ASYMMETRIC KEY PAIR",
            "SET STATUS",
        ]
        .iter()
        .zip(sws)
        {
            obs.sw(what, sw, CONDITIONS);
        }
        Ok(obs.verdict())
    }

    // ───────────────────────── access conditions, data ─────────────────────────

    fn public_files(&mut self) -> Step<Verdict> {
        self.select_applet()?;
        let mut obs = Obs::default();
        for (name, fid) in [
            ("EF.SOD", EF_SOD),
            ("EF.CERT_AUTH", EF_CERT_AUTH),
            ("EF.CERT_SIGN", EF_CERT_SIGN),
            ("EF.PIN_STATUS", EF_PIN_STATUS),
        ] {
            match self.read_ef(fid)? {
                Ok(d) => obs.is(
                    name,
                    !d.is_empty(),
                    format!("{} bytes read", d.len()),
                    "readable",
                ),
                Err(sw) => obs.is(name, false, format!("{sw:04X}"), "9000 or 6282"),
            }
        }
        Ok(obs.verdict())
    }

    fn protected_files(&mut self) -> Step<Verdict> {
        let pin = self.id_pin.clone().ok_or("no ID PIN known")?;
        self.select_applet()?;
        let files = [
            ("EF.ID", EF_ID),
            ("EF.FACE", EF_FACE),
            ("EF.FINGER", EF_FINGER),
        ];
        let mut obs = Obs::default();
        for (name, fid) in files {
            self.select_ef(fid)?;
            obs.sw(
                &format!("{name} without PIN"),
                self.sw(&read_binary(0, 0, 1))?,
                SECURITY,
            );
        }
        obs.sw("VERIFY ID_PIN", self.verify_pin(ID_PIN, &pin)?, OK);
        for (name, fid) in files {
            self.select_ef(fid)?;
            let sw = self.sw(&read_binary(0, 0, 1))?;
            let empty_optional = fid == EF_FINGER && sw == WRONG_OFFSET;
            obs.is(
                &format!("{name} after VERIFY"),
                sw == OK || empty_optional,
                format!("{sw:04X}"),
                "9000 (6B00 for an empty EF.FINGER)",
            );
        }
        Ok(obs.verdict())
    }

    fn read_with_pin(&mut self, fid: u16) -> Step<Vec<u8>> {
        let pin = self.id_pin.clone().ok_or("no ID PIN known")?;
        self.select_applet()?;
        match self.verify_pin(ID_PIN, &pin)? {
            OK => {}
            sw => return Err(format!("VERIFY ID_PIN answered {sw:04X}")),
        }
        self.read_ef(fid)?.or_else(|sw| {
            if sw == WRONG_OFFSET {
                Ok(Vec::new())
            } else {
                Err(format!("reading {fid:04X} answered {sw:04X}"))
            }
        })
    }

    fn identity_data(&mut self) -> Step<Verdict> {
        let ef_id = self.read_with_pin(EF_ID)?;
        let mut obs = Obs::default();
        match CardIdentity::decode(&ef_id) {
            Ok(_) => obs.is(
                "EF.ID",
                true,
                format!(
                    "{} bytes, template E1 with every required tag, valid",
                    ef_id.len()
                ),
                "",
            ),
            Err(e) => obs.is(
                "EF.ID",
                false,
                e,
                "template E1 with every required tag once, within bounds",
            ),
        }
        Ok(obs.verdict())
    }

    fn security_object(&mut self) -> Step<Verdict> {
        let mut files = Vec::new();
        for fid in [EF_ID, EF_FACE, EF_FINGER, EF_CERT_AUTH, EF_CERT_SIGN] {
            let data = self.read_with_pin(fid)?;
            if !data.is_empty() {
                files.push((fid, data));
            }
        }
        let sod = self.read_with_pin(EF_SOD)?;
        let mut obs = Obs::default();
        match SecurityObject::parse(&sod) {
            Err(e) => obs.is("EF.SOD", false, e, "a CMS SignedData security object"),
            Ok(so) => {
                let refs: Vec<(u16, &[u8])> =
                    files.iter().map(|(f, d)| (*f, d.as_slice())).collect();
                let v = so.verify(&self.setup.issuer.pki.root, &refs, self.setup.now);
                obs.is(
                    "passive authentication",
                    v.passed(),
                    if v.passed() {
                        format!("signature, signer and {} file hashes verify", v.files.len())
                    } else {
                        v.failures().join(", ")
                    },
                    "signature verifies and every hash matches",
                );
            }
        }
        Ok(obs.verdict())
    }

    // ───────────────────────── keys ─────────────────────────

    fn read_point(&mut self, key: u8) -> Step<Result<Vec<u8>, String>> {
        let r = self.send(
            &Command::new(0x00, 0x47, 0x81, key)
                .with_le(256)
                .map_err(|e| e.to_string())?,
        )?;
        Ok(match r.data() {
            [0x7F, 0x49, 0x43, 0x86, 0x41, 0x04, ..] if r.data().len() == 70 && r.sw().0 == OK => {
                Ok(r.data()[5..].to_vec())
            }
            d => Err(format!("{} {:04X}", hex::encode_upper(d), r.sw().0)),
        })
    }

    fn sign(&mut self, ins: u8, data: &[u8]) -> Step<Response> {
        let (p1, p2) = if ins == 0x88 {
            (0x00, 0x01)
        } else {
            (0x9E, 0x9A)
        };
        let c = Command::new(0x00, ins, p1, p2)
            .with_data(data)
            .and_then(|c| c.with_le(256))
            .map_err(|e| e.to_string())?;
        self.send(&c)
    }

    fn public_keys(&mut self) -> Step<Verdict> {
        let sign_pin = self
            .pins
            .as_ref()
            .map(|p| p.sign_pin.clone())
            .ok_or("no SIGN PIN known")?;
        self.select_applet()?;
        let mut obs = Obs::default();
        for (i, (name, key)) in [("AUTH_KEY", 0x01u8), ("SIGN_KEY", 0x02)]
            .into_iter()
            .enumerate()
        {
            match self.read_point(key)? {
                Ok(point) => {
                    obs.is(
                        &format!("{name} public key"),
                        true,
                        "7F49 { 86 <65-byte uncompressed point> }",
                        "",
                    );
                    self.points[i] = Some(point);
                }
                Err(got) => obs.is(
                    &format!("{name} public key"),
                    false,
                    got,
                    "7F49 43 86 41 04 <X> <Y>",
                ),
            }
        }
        // ring refuses a point that is not on P-256 when it verifies, so a
        // signature from each key that verifies proves the point is on the curve.
        let message: [u8; 32] = self.random()?;
        let auth = self.sign(0x88, &message[..16])?;
        obs.is(
            "AUTH_KEY point on P-256 (its signature verifies)",
            verifies(self.points[0].as_deref(), &message[..16], auth.data()),
            format!("{:04X}", auth.sw().0),
            "a verifying signature",
        );
        obs.sw(
            "VERIFY SIGN_PIN",
            self.verify_pin(SIGN_PIN, sign_pin.expose())?,
            OK,
        );
        let sig = self.sign(0x2A, &message)?;
        obs.is(
            "SIGN_KEY point on P-256 (its signature verifies)",
            verifies(self.points[1].as_deref(), &message, sig.data()),
            format!("{:04X}", sig.sw().0),
            "a verifying signature",
        );
        Ok(obs.verdict())
    }

    fn certificate(&mut self, fid: u16) -> Step<Result<Certificate, String>> {
        self.select_applet()?;
        Ok(match self.read_ef(fid)? {
            Ok(der) => Certificate::from_der(der).map_err(|e| e.to_string()),
            Err(sw) => Err(format!("reading {fid:04X} answered {sw:04X}")),
        })
    }

    fn active_authentication(&mut self) -> Step<Verdict> {
        self.select_applet()?;
        let point = self.read_point(0x01)?;
        let challenge: [u8; 16] = self.random()?;
        self.select_applet()?;
        let r = self.sign(0x88, &challenge)?;
        let mut obs = Obs::default();
        obs.is(
            "INTERNAL AUTHENTICATE",
            r.sw().0 == OK && r.data().len() == 64,
            format!("{} bytes {:04X}", r.data().len(), r.sw().0),
            "64 bytes 9000",
        );
        match point {
            Ok(p) => obs.is(
                "signature with the AUTH_KEY public key",
                verifies(Some(&p), &challenge, r.data()),
                "checked",
                "verifies",
            ),
            Err(e) => obs.is("AUTH_KEY public key", false, e, "7F49 template"),
        }
        match self.certificate(EF_CERT_AUTH)? {
            Ok(cert) => match verify_card_signature(&cert, &challenge, r.data()) {
                Ok(()) => obs.is("signature with EF.CERT_AUTH's key", true, "verifies", ""),
                Err(e) => obs.is("signature with EF.CERT_AUTH's key", false, e, "verifies"),
            },
            Err(e) => obs.is("EF.CERT_AUTH", false, e, "an X.509 certificate"),
        }
        Ok(obs.verdict())
    }

    fn certificates_match_keys(&mut self) -> Step<Verdict> {
        let mut obs = Obs::default();
        for (name, fid, key) in [
            ("EF.CERT_AUTH", EF_CERT_AUTH, 0x01u8),
            ("EF.CERT_SIGN", EF_CERT_SIGN, 0x02),
        ] {
            let cert = self.certificate(fid)?;
            self.select_applet()?;
            let point = self.read_point(key)?;
            match (cert, point) {
                (Ok(c), Ok(p)) => {
                    let in_cert = c.parsed().public_key().subject_public_key.data.to_vec();
                    obs.is(
                        &format!("{name} key = key {key:02X}"),
                        in_cert == p,
                        if in_cert == p {
                            "equal".to_owned()
                        } else {
                            hex::encode_upper(&in_cert)
                        },
                        hex::encode_upper(&p),
                    );
                }
                (Err(e), _) | (_, Err(e)) => obs.is(name, false, e, "certificate and public key"),
            }
        }
        Ok(obs.verdict())
    }

    // ───────────────────────── PINs ─────────────────────────

    fn wrong_pin(&self) -> Step<Zeroizing<Vec<u8>>> {
        let pin = self.id_pin.as_ref().ok_or("no ID PIN known")?;
        Ok(Zeroizing::new(
            pin.iter()
                .map(|d| b'0' + (d.wrapping_sub(b'0') + 1) % 10)
                .collect(),
        ))
    }

    fn max_tries(&self) -> u8 {
        self.setup
            .spec
            .applet
            .pin("ID_PIN")
            .map_or(3, |p| p.retries)
    }

    fn restore_id_pin(&mut self) -> Step<()> {
        let pin = self.id_pin.clone().ok_or("no ID PIN known")?;
        self.verify_pin(ID_PIN, &pin).map(|_| ())
    }

    fn counter_query(&mut self) -> Step<Verdict> {
        let (wrong, max) = (self.wrong_pin()?, self.max_tries());
        self.select_applet()?;
        let mut obs = Obs::default();
        obs.sw("query", self.sw(&[0x00, 0x20, 0x00, ID_PIN])?, tries(max));
        obs.sw(
            "wrong PIN",
            self.verify_pin(ID_PIN, &wrong)?,
            tries(max - 1),
        );
        obs.sw(
            "query",
            self.sw(&[0x00, 0x20, 0x00, ID_PIN])?,
            tries(max - 1),
        );
        obs.sw(
            "query again",
            self.sw(&[0x00, 0x20, 0x00, ID_PIN])?,
            tries(max - 1),
        );
        self.restore_id_pin()?;
        Ok(obs.verdict())
    }

    fn counter_survives_reset(&mut self) -> Step<Verdict> {
        let (wrong, max) = (self.wrong_pin()?, self.max_tries());
        self.select_applet()?;
        let mut obs = Obs::default();
        obs.sw(
            "wrong PIN",
            self.verify_pin(ID_PIN, &wrong)?,
            tries(max - 1),
        );
        let reset = self
            .probe
            .target
            .reset()
            .map_err(|e| format!("reset failed: {e}"))?;
        if !reset {
            self.restore_id_pin()?;
            return Ok(Verdict::Skip("the reader cannot reset the card".into()));
        }
        self.select_applet()?;
        obs.sw(
            "query after reset",
            self.sw(&[0x00, 0x20, 0x00, ID_PIN])?,
            tries(max - 1),
        );
        self.restore_id_pin()?;
        Ok(obs.verdict())
    }

    fn counts_down(&mut self) -> Step<Verdict> {
        let (wrong, max) = (self.wrong_pin()?, self.max_tries());
        let right = self.id_pin.clone().ok_or("no ID PIN known")?;
        self.select_applet()?;
        let mut obs = Obs::default();
        for left in (0..max).rev() {
            obs.sw("wrong PIN", self.verify_pin(ID_PIN, &wrong)?, tries(left));
        }
        obs.sw(
            "right PIN on the blocked PIN",
            self.verify_pin(ID_PIN, &right)?,
            BLOCKED,
        );
        Ok(obs.verdict())
    }

    fn puk_unblocks(&mut self) -> Step<Verdict> {
        let wrong = self.wrong_pin()?;
        let puk = self
            .pins
            .as_ref()
            .map(|p| p.puk.clone())
            .ok_or("no PUK known")?;
        self.select_applet()?;
        let mut obs = Obs::default();
        let mut answers = Vec::new();
        while self.sw(&[0x00, 0x20, 0x00, ID_PIN])? != BLOCKED {
            if answers.len() == MAX_BLOCKING_TRIES {
                obs.is(
                    "blocking ID_PIN",
                    false,
                    format!(
                        "{} wrong PINs answered {}",
                        answers.len(),
                        answers.join(" ")
                    ),
                    "6983 after the last try",
                );
                return Ok(obs.verdict());
            }
            answers.push(format!("{:04X}", self.verify_pin(ID_PIN, &wrong)?));
        }
        let new = Secret::random_digits(6).map_err(|e| e.to_string())?;
        let mut data = Zeroizing::new(puk.expose().to_vec());
        data.extend_from_slice(&pin_block(new.expose()));
        obs.sw(
            "RESET RETRY COUNTER with the PUK and a new PIN",
            self.sw(&apdu(0x00, 0x2C, 0x00, ID_PIN, &data, None))?,
            OK,
        );
        obs.sw(
            "VERIFY with the new PIN",
            self.verify_pin(ID_PIN, new.expose())?,
            OK,
        );
        self.id_pin = Some(Zeroizing::new(new.expose().to_vec()));
        Ok(obs.verdict())
    }

    fn sign_pin_each_time(&mut self) -> Step<Verdict> {
        let sign_pin = self
            .pins
            .as_ref()
            .map(|p| p.sign_pin.clone())
            .ok_or("no SIGN PIN known")?;
        let digest: [u8; 32] = self.random()?;
        self.select_applet()?;
        let mut obs = Obs::default();
        obs.sw(
            "PSO without VERIFY",
            self.sign(0x2A, &digest)?.sw().0,
            SECURITY,
        );
        obs.sw(
            "VERIFY SIGN_PIN",
            self.verify_pin(SIGN_PIN, sign_pin.expose())?,
            OK,
        );
        let sig = self.sign(0x2A, &digest)?;
        obs.sw("PSO after VERIFY", sig.sw().0, OK);
        obs.sw("second PSO", self.sign(0x2A, &digest)?.sw().0, SECURITY);
        Ok(obs.verdict())
    }

    // ───────────────────────── randomness, time ─────────────────────────

    /// RND-024. A good generator fails the statistical tests now and then
    /// (that is what a significance level means), so a sample that fails
    /// only them is followed by a second, independent one, and the check
    /// fails when both do; repeats or a refused GET CHALLENGE fail at once.
    fn randomness(&mut self) -> Step<Verdict> {
        self.select_applet()?;
        let first = match self.challenge_sample()? {
            Ok(obs) => obs,
            Err(refused) => return Ok(refused),
        };
        if first.obs.wrong.is_empty() || first.repeats {
            return Ok(first.obs.verdict());
        }
        let second = match self.challenge_sample()? {
            Ok(obs) => obs,
            Err(refused) => return Ok(refused),
        };
        let mut obs = second.obs;
        obs.seen.insert(
            0,
            "first sample failed the statistics, second sample".into(),
        );
        Ok(obs.verdict())
    }

    /// Asks [`CHALLENGES`] challenges and tests them; `Err` when the card refused one.
    fn challenge_sample(&mut self) -> Step<Result<Sample, Verdict>> {
        let mut seen = HashSet::with_capacity(CHALLENGES);
        let mut all = Vec::with_capacity(CHALLENGES * CHALLENGE_LEN);
        for n in 0..CHALLENGES {
            let r = self.raw(&[0x00, 0x84, 0x00, 0x00, CHALLENGE_LEN as u8])?;
            if r.sw().0 != OK || r.data().len() != CHALLENGE_LEN {
                return Ok(Err(Verdict::Fail {
                    observed: format!("challenge {n}: {} bytes {:04X}", r.data().len(), r.sw().0),
                    expected: format!("{CHALLENGE_LEN} bytes 9000"),
                }));
            }
            seen.insert(r.data().to_vec());
            all.extend_from_slice(r.data());
        }
        let mut obs = Obs::default();
        let repeats = CHALLENGES - seen.len();
        obs.is(
            &format!("repeats among {CHALLENGES} challenges"),
            repeats == 0,
            repeats,
            0,
        );
        let ones = randomness::ones(&all);
        obs.is(
            &format!(
                "ones among {} bits (SP 800-22 §2.1 frequency)",
                all.len() * 8
            ),
            (31_600..=32_400).contains(&ones),
            ones,
            "31600..32400",
        );
        match randomness::runs(&randomness::bits(&all)) {
            Some((v, stat)) => obs.is(
                "runs (SP 800-22 §2.3)",
                stat <= RUNS_BOUND,
                format!("V = {v}, statistic {stat:.3}"),
                format!("statistic ≤ {RUNS_BOUND} (P-value ≥ 0.001)"),
            ),
            None => obs.is(
                "runs (SP 800-22 §2.3)",
                false,
                "frequency prerequisite failed",
                "|π − ½| < 2/√n",
            ),
        }
        Ok(Ok(Sample {
            obs,
            repeats: repeats > 0,
        }))
    }

    fn timing(&mut self) -> Step<Verdict> {
        let model = &self.setup.profile.latency;
        let timed: Vec<_> = self.probe.log.iter().filter(|e| e.sw.is_some()).collect();
        let over: Vec<_> = timed
            .iter()
            .filter(|e| e.micros > bound_us(model, e))
            .collect();
        let Some(worst) = timed.iter().max_by_key(|e| e.micros) else {
            return Ok(Verdict::Skip("no APDU was answered".into()));
        };
        let ms = |us: u64| format!("{:.1} ms", us as f64 / 1000.0);
        if over.is_empty() {
            return Ok(Verdict::Pass(format!(
                "{} APDUs, slowest {} {} (its bound {})",
                timed.len(),
                command_name(worst.ins),
                ms(worst.micros),
                ms(bound_us(model, worst))
            )));
        }
        let mut names: Vec<String> = over.iter().map(|e| command_name(e.ins)).collect();
        names.dedup();
        let slowest = over
            .iter()
            .max_by_key(|e| e.micros)
            .copied()
            .unwrap_or(worst);
        Ok(Verdict::Fail {
            observed: format!(
                "{} of {} APDUs over their bound ({}); slowest {} {} with model {}",
                over.len(),
                timed.len(),
                names.join(", "),
                command_name(slowest.ins),
                ms(slowest.micros),
                ms(model_us(model, slowest)),
            ),
            expected: format!(
                "every APDU within 2 × the profile's latency model + {} and within 5 s (GENERATE ASYMMETRIC KEY PAIR 30 s)",
                ms(super::timing::HOST_ALLOWANCE_US)
            ),
        })
    }
}

type Chan<'p, 't> = SecureChannel<Card<&'p mut Probe<'t>>>;

/// `63CX`: X tries left.
fn tries(left: u8) -> u16 {
    0x63C0 | u16::from(left & 0x0F)
}

fn csend(ch: &mut Chan<'_, '_>, c: &Command) -> Step<Response> {
    ch.send(c)
        .map_err(|e| format!("in the secure channel: {e}"))
}

fn expect_ok(r: &Response, what: &str) -> Step<()> {
    if r.sw().0 == OK {
        Ok(())
    } else {
        Err(format!("{what} answered {:04X}", r.sw().0))
    }
}

fn cmd(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Command {
    Command::new(cla, ins, p1, p2)
        .with_data(data)
        .unwrap_or_else(|_| Command::new(cla, ins, p1, p2))
}

/// A short APDU, built by hand so that nothing adjusts it.
fn apdu(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8], le: Option<usize>) -> Vec<u8> {
    let mut v = vec![cla, ins, p1, p2];
    if !data.is_empty() {
        v.push(data.len() as u8);
        v.extend_from_slice(data);
    }
    if let Some(le) = le {
        v.push(le as u8);
    }
    v
}

/// `00 B0 P1 P2 Le`, extended when `le` is above 256.
fn read_binary(p1: u8, p2: u8, le: usize) -> Vec<u8> {
    let mut v = vec![0x00, 0xB0, p1, p2];
    if le > 256 {
        v.push(0);
        v.extend_from_slice(&u16::try_from(le).unwrap_or(0).to_be_bytes());
    } else {
        v.push(le as u8);
    }
    v
}

/// `00 D6 00 00` with `data`, in extended form when asked.
fn update_binary(data: &[u8], extended: bool) -> Vec<u8> {
    let mut v = vec![0x00, 0xD6, 0x00, 0x00];
    if extended {
        v.push(0);
        v.extend_from_slice(&u16::try_from(data.len()).unwrap_or(u16::MAX).to_be_bytes());
    } else {
        v.push(data.len() as u8);
    }
    v.extend_from_slice(data);
    v
}

/// README §3: ASCII digits right-padded with `FF` to 8 bytes.
fn pin_block(digits: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut b = Zeroizing::new(digits.to_vec());
    b.resize(8, 0xFF);
    b
}

fn verifies(point: Option<&[u8]>, message: &[u8], signature: &[u8]) -> bool {
    point.is_some_and(|p| {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, p)
            .verify(message, signature)
            .is_ok()
    })
}

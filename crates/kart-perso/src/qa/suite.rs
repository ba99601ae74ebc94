//! The checks of the catalogue, in the order a card can take them: those
//! that need a blank card, QA's own personalization, those that need the
//! locked card and its PINs, and the timing of everything.

// Every check has the signature `check` runs, even one that cannot fail below
// its verdict; counts and microseconds stay far below 2^52.
#![allow(clippy::unnecessary_wraps, clippy::cast_precision_loss)]

use std::fmt::Display;
use std::time::Instant;

use kart_apdu::gp::{CardKeySource, ScpParams, SecureChannel, SecurityLevel};
use kart_apdu::{Card, Command, Response, Status, StatusWord};
use kart_spec::Protocol;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

mod access;
mod atr;
mod channel;
mod commands;
mod keys;
mod lifecycle;
mod manager;
mod measure;
mod pins;

use super::probe::{Probe, Tamper};
use super::timing::{command_name, model_us, per_command};
use super::{CardReport, CheckResult, CommandSamples, Outcome, QaTarget, Setup};
use crate::applet::{self, PinRef};
use crate::card_data::Cplc;
use crate::pin_mailer::Pins;

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
    fn sw(&mut self, what: &str, got: StatusWord, want: StatusWord) {
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

// FIDs and PIN references as the suite's raw APDUs take them; the
// vocabulary itself is the applet module's.
const EF_ID: u16 = applet::EF_ID.fid;
const EF_SOD: u16 = applet::EF_SOD.fid;
const EF_CERT_AUTH: u16 = applet::EF_CERT_AUTH.fid;
const EF_CERT_SIGN: u16 = applet::EF_CERT_SIGN.fid;
const ID_PIN: u8 = PinRef::IdPin.reference();
const SIGN_PIN: u8 = PinRef::SignPin.reference();
const OK: StatusWord = StatusWord::SUCCESS;
const SECURITY: StatusWord = StatusWord::SECURITY_STATUS_NOT_SATISFIED;
const BLOCKED: StatusWord = StatusWord::AUTH_METHOD_BLOCKED;
const CONDITIONS: StatusWord = StatusWord::CONDITIONS_NOT_SATISFIED;
const WRONG_LENGTH: StatusWord = StatusWord::WRONG_LENGTH;
const WRONG_OFFSET: StatusWord = StatusWord::WRONG_PARAMETERS;
const END_OF_FILE: StatusWord = StatusWord::END_OF_FILE;
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
    keys: [Option<crate::pki::HolderKey>; 2],
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
        keys: [None, None],
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
        self.check("APDU-029", Self::no_le_no_data);
        self.check("APDU-030", Self::foreign_classes);
        self.check("GP-031", Self::card_manager_discovery);
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
            for id in super::LOCKED_CARD_CHECKS {
                self.skip(
                    id,
                    &format!("needs a LOCKED card; this one is {state_name}"),
                );
            }
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
                self.skip(id, why);
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
                    // TIME-028 sends nothing itself: it judges every APDU of the run.
                    commands: if c.id == "TIME-028" {
                        per_command(model, log.iter().filter(|e| e.sw.is_some()))
                    } else {
                        per_command(model, log.iter().filter(|e| e.check == i))
                    },
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

    fn sw(&mut self, apdu: &[u8]) -> Step<StatusWord> {
        Ok(self.raw(apdu)?.sw())
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

    /// Writes `content` at the start of EF `fid` in a C-MAC channel;
    /// anything but 9000 is an error naming `what`.
    fn write_in_channel(&mut self, fid: u16, content: &[u8], what: &str) -> Step<()> {
        self.with_channel(SecurityLevel::C_MAC, |ch| {
            cselect_ef(ch, fid)?;
            expect_ok(&csend(ch, &cmd(0x00, 0xD6, 0, 0, content))?, what)
        })
    }

    fn select_ef(&mut self, fid: u16) -> Step<StatusWord> {
        self.sw(&apdu(0x00, 0xA4, 0x02, 0x0C, &fid.to_be_bytes(), None))
    }

    /// Selects the applet and gives the issuer's keys for this card's profile.
    fn applet_channel_keys(&mut self) -> Step<(Box<dyn CardKeySource>, ScpParams)> {
        self.select_applet()?;
        self.setup
            .issuer
            .card_key_source(self.setup.profile)
            .map_err(|e| e.to_string())
    }

    /// Selects the applet, opens a secure channel at `level` and runs `f` in it.
    fn with_channel<R>(
        &mut self,
        level: SecurityLevel,
        f: impl FnOnce(&mut Chan<'_, 't>) -> Step<R>,
    ) -> Step<R> {
        let (keys, params) = self.applet_channel_keys()?;
        let caps = self.setup.profile.caps();
        let inner = Card::with_caps(&mut self.probe, caps);
        let isd = self.setup.spec.applet.card_manager.aid.bytes().to_vec();
        let profile = &self.setup.profile.id;
        let mut ch = SecureChannel::open_from(inner, &*keys, &params, level).map_err(|mut e| {
            let why = if matches!(e.error, kart_apdu::gp::GpError::CardCryptogramMismatch) {
                // What the card holds against what QA was given (GET DATA 00E0).
                let held = crate::keyinfo::read_key_information(&mut e.transport, &isd)
                    .ok()
                    .flatten();
                format!(
                    "the card cryptogram does not match: {}",
                    crate::keyinfo::explain_cryptogram_mismatch(
                        held.as_deref(),
                        self.setup.profile.secure_channel.key_length,
                        &params,
                        profile
                    )
                )
            } else {
                e.error.to_string()
            };
            format!(
                "the secure channel at level {:02X} did not open: {why}",
                level.bits()
            )
        })?;
        f(&mut ch)
    }

    /// EXTERNAL AUTHENTICATE with a wrong host cryptogram under a valid
    /// C-MAC (see [`SecureChannel::open_with_wrong_host_cryptogram`]): the
    /// card's status word. Costs the card one authentication try.
    fn wrong_host_cryptogram(&mut self, level: SecurityLevel) -> Step<StatusWord> {
        let (keys, params) = self.applet_channel_keys()?;
        let mut inner = Card::with_caps(&mut self.probe, self.setup.profile.caps());
        let sw = SecureChannel::wrong_host_cryptogram_from(&mut inner, &*keys, &params, level)
            .map_err(|e| format!("EXTERNAL AUTHENTICATE was not reached: {e}"))?;
        Ok(sw)
    }

    fn card_state(&mut self) -> Step<(Option<String>, u8)> {
        self.select_applet()?;
        let cplc = self.raw(&[0x00, 0xCA, 0x9F, 0x7F, 0x00])?;
        let csn = Cplc::parse(cplc.data()).ok().map(|c| c.csn_hex());
        let state = self.raw(&[0x00, 0xCA, 0xDF, 0x71, 0x00])?;
        match state.data() {
            [0xDF, 0x71, 0x01, code] if state.sw() == OK => Ok((csn, *code)),
            other => Err(format!(
                "GET DATA DF71 answered {} {:04X}, not DF71 01 <state>",
                hex::encode_upper(other),
                state.sw()
            )),
        }
    }

    /// Reads EF `fid` to its end, as a terminal does (`6Cxx` re-sent, `6282`
    /// ends it); `Ok(Err(sw))` when the card refuses.
    fn read_ef(&mut self, fid: u16) -> Step<Result<Vec<u8>, StatusWord>> {
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
            if let Status::WrongLe(exact) = r.sw().status() {
                r = self.raw(&read_binary(hi, lo, usize::from(exact).max(1)))?;
            }
            match r.sw() {
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

    fn verify_pin(&mut self, reference: u8, digits: &[u8]) -> Step<StatusWord> {
        self.sw(&apdu(
            0x00,
            0x20,
            0x00,
            reference,
            &applet::pin_block(PinRef::IdPin, digits),
            None,
        ))
    }

    fn random<const N: usize>(&self) -> Step<[u8; N]> {
        let mut b = [0u8; N];
        self.rng
            .fill(&mut b)
            .map_err(|_| "the system random generator failed".to_owned())?;
        Ok(b)
    }
}

type Chan<'p, 't> = SecureChannel<Card<&'p mut Probe<'t>>>;

/// `63CX`: X tries left.
fn tries(left: u8) -> StatusWord {
    StatusWord::verification_failed(left)
}

fn csend(ch: &mut Chan<'_, '_>, c: &Command) -> Step<Response> {
    ch.send(c)
        .map_err(|e| format!("in the secure channel: {e}"))
}

/// SELECT of EF `fid` by its identifier, sent in the channel.
fn cselect_ef(ch: &mut Chan<'_, '_>, fid: u16) -> Step<Response> {
    csend(ch, &cmd(0x00, 0xA4, 0x02, 0x0C, &fid.to_be_bytes()))
}

/// Status word of GET DATA DF71 (the life-cycle state) sent in the channel.
fn csend_get_state(ch: &mut Chan<'_, '_>) -> Step<StatusWord> {
    let get = Command::new(0x00, 0xCA, 0xDF, 0x71)
        .with_le(256)
        .map_err(|e| e.to_string())?;
    Ok(csend(ch, &get)?.sw())
}

fn expect_ok(r: &Response, what: &str) -> Step<()> {
    if r.sw() == OK {
        Ok(())
    } else {
        Err(format!("{what} answered {:04X}", r.sw()))
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

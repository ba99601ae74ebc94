//! Executing a [`Plan`] on any [`Transport`]: probe the card (SELECT the
//! applet, CPLC → CSN, life cycle, CRN), open the secure channel with the
//! master keys diversified per card, write the files, generate the key pairs
//! and certify them, build and write the security object, set the PINs and
//! lock the card.
//!
//! The session stack is `Card<SecureChannel<&mut Card<T>>>` (see
//! [`kart_apdu::gp`]): the inner card resolves `61xx` under the channel, the
//! outer one would chain or split; the plan already sizes every command to fit.
//!
//! ```no_run
//! # fn demo<T: kart_apdu::Transport>(transport: T, profile: &kart_spec::Profile,
//! #        issuer: &kart_perso::issuer::Issuer, record: &kart_perso::record::IdentityRecord)
//! #        -> Result<(), Box<dyn std::error::Error>> {
//! use kart_perso::card_data::Crn;
//! use kart_perso::personalize::{personalize, probe, Job};
//! use kart_perso::pin_mailer::Pins;
//! let mut card = kart_apdu::Card::with_caps(transport, profile.caps());
//! let info = probe(&mut card, profile)?;
//! let pins = Pins::generate(record.pin.as_ref())?;
//! let now = time::OffsetDateTime::now_utc();
//! let crn = Crn::parse("0000000017")?;
//! let job = Job::new(record, &crn, &pins, now.date());
//! let outcome = personalize(&mut card, profile, issuer, &info, &job, now)?;
//! println!("{} locked in {} APDUs", outcome.csn, outcome.counters.apdus);
//! # Ok(()) }
//! ```

use std::time::{Duration, Instant};

use kart_apdu::gp::{GpError, SecureChannel, SecurityLevel};
use kart_apdu::{Card, CardError, Command, Counters, Transport, TransportError};
use kart_spec::{Profile, Scp};
use time::{Date, OffsetDateTime};

mod error;
mod one;

pub use error::PersoError;
pub use one::personalize_one;

use crate::applet::{self, Lifecycle};
use crate::card_data::{CardFacts, Crn};
use crate::issuer::Issuer;
use crate::pin_mailer::Pins;
use crate::pki::{issue_holder_certificate, Holder, HolderKey, HOLDER_VALIDITY_YEARS};
use crate::plan::{self, Action, Derived, KeyRef, Plan, PlanInput};
/// The probe lives in [`crate::probe`]; it is re-exported here, where
/// callers of [`personalize`] look for it.
pub use crate::probe::{probe_card as probe, CardInfo};
use crate::record::IdentityRecord;
use crate::security_object::build_security_object;

/// One application to write on one card.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    /// The validated application.
    pub record: &'a IdentityRecord,
    /// The CRN assigned to this card.
    pub crn: &'a Crn,
    /// The secrets to set.
    pub pins: &'a Pins,
    /// Issue date.
    pub issued: Date,
    /// Expiry date.
    pub expires: Date,
}

impl<'a> Job<'a> {
    /// A job issued on `issued`, expiring [`HOLDER_VALIDITY_YEARS`] later
    /// (29 February becomes 28 February).
    pub fn new(record: &'a IdentityRecord, crn: &'a Crn, pins: &'a Pins, issued: Date) -> Self {
        let year = issued.year() + HOLDER_VALIDITY_YEARS as i32;
        let expires = Date::from_calendar_date(year, issued.month(), issued.day())
            .or_else(|_| Date::from_calendar_date(year, issued.month(), 28))
            .unwrap_or(issued);
        Self {
            record,
            crn,
            pins,
            issued,
            expires,
        }
    }
}

/// Measurements of one executed step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// The step's name.
    pub name: String,
    /// Wall time.
    pub duration: Duration,
    /// APDUs on the wire (wrapped, GET RESPONSE included).
    pub apdus: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
}

/// What a completed personalization produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Card serial number (hex).
    pub csn: String,
    /// Card registration number.
    pub crn: Crn,
    /// Wire counters of the whole session, probe excluded.
    pub counters: Counters,
    /// Per-step measurements.
    pub steps: Vec<StepReport>,
    /// The security object written to EF.SOD.
    pub security_object: Vec<u8>,
    /// Every file written (FID, contents), the security object included.
    pub files: Vec<(u16, Vec<u8>)>,
}

/// A step of the plan about to send its first APDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepStart<'a> {
    /// The step's name (as in [`StepReport::name`]).
    pub name: &'a str,
    /// Whether the step changes the card: every step inside the secure
    /// channel writes data, keys, PINs or the life cycle.
    pub writes: bool,
}

/// Personalizes the probed card: builds the plan, runs it inside a secure
/// channel, and returns the counters, timings and files.
pub fn personalize<T: Transport>(
    card: &mut Card<T>,
    profile: &Profile,
    issuer: &Issuer,
    info: &CardInfo,
    job: &Job<'_>,
    now: OffsetDateTime,
) -> Result<Outcome, PersoError> {
    personalize_observed(card, profile, issuer, info, job, now, &mut |_| Ok(()))
}

/// [`personalize`], telling `on_start` of each step before its first APDU
/// is sent (a station journals it, so it knows how far a card got). An
/// error from `on_start` stops the run before that step touches the card.
pub fn personalize_observed<T: Transport>(
    card: &mut Card<T>,
    profile: &Profile,
    issuer: &Issuer,
    info: &CardInfo,
    job: &Job<'_>,
    now: OffsetDateTime,
    on_start: &mut dyn FnMut(StepStart<'_>) -> Result<(), PersoError>,
) -> Result<Outcome, PersoError> {
    if info.lifecycle == Lifecycle::Locked {
        return Err(PersoError::Locked);
    }
    let facts = CardFacts {
        csn: info.cplc.csn(),
        crn: job.crn.clone(),
        issued: job.issued,
        expires: job.expires,
    };
    let plan = plan::build(&PlanInput {
        record: job.record,
        profile,
        card: &facts,
        lifecycle: info.lifecycle,
        rewrite: info.touched(),
        pins: job.pins,
    })?;
    let start = card.counters();
    let mut run = Run {
        plan: &plan,
        kdd: info.cplc.key_diversification_data(),
        issuer,
        job,
        now,
        files: plan.files.clone(),
        keys: Vec::new(),
        steps: Vec::new(),
        on_start,
    };
    run.execute(card, profile)?;
    let end = card.counters();
    let security_object = run
        .files
        .iter()
        .find(|(fid, _)| *fid == Derived::SecurityObject.fid())
        .map(|(_, d)| d.clone())
        .unwrap_or_default();
    Ok(Outcome {
        csn: info.cplc.csn_hex(),
        crn: job.crn.clone(),
        counters: diff(start, end),
        steps: run.steps,
        security_object,
        files: run.files,
    })
}

/// The state of one execution.
struct Run<'a> {
    plan: &'a Plan,
    kdd: [u8; 10],
    issuer: &'a Issuer,
    job: &'a Job<'a>,
    now: OffsetDateTime,
    files: Vec<(u16, Vec<u8>)>,
    keys: Vec<(KeyRef, HolderKey)>,
    steps: Vec<StepReport>,
    on_start: &'a mut dyn FnMut(StepStart<'_>) -> Result<(), PersoError>,
}

impl Run<'_> {
    fn execute<T: Transport>(
        &mut self,
        card: &mut Card<T>,
        profile: &Profile,
    ) -> Result<(), PersoError> {
        let mut steps = self.plan.steps.iter();
        // Steps before the channel: SELECT (resets any earlier channel).
        let mut open_step = None;
        for step in steps.by_ref() {
            (self.on_start)(StepStart {
                name: &step.name,
                writes: false,
            })?;
            let t = Instant::now();
            let before = card.counters();
            match &step.action {
                Action::SelectApplet(cmd) => {
                    send_ok(card, &step.name, cmd)?;
                }
                Action::OpenChannel => {
                    open_step = Some((step.name.clone(), t, before));
                    break;
                }
                _ => {
                    return Err(PersoError::Malformed {
                        step: step.name.clone(),
                        what: "plan sends a command before the secure channel".into(),
                    })
                }
            }
            self.record(&step.name, t, before, card.counters());
        }
        let Some((open_name, t, before)) = open_step else {
            return Ok(());
        };
        let (keys, params) = self.issuer.card_key_source(profile)?;
        let level = match profile.secure_channel.scp {
            Scp::Scp03 if profile.secure_channel.i & 0x20 != 0 => SecurityLevel::C_DEC_C_MAC_R_MAC,
            _ => SecurityLevel::C_DEC_C_MAC,
        };
        let channel = match SecureChannel::open_from(&mut *card, &*keys, &params, level) {
            Ok(channel) => channel,
            Err(e) => {
                let error = e.error;
                return Err(channel_error(card, profile, params, &open_name, error));
            }
        };
        // The card's INITIALIZE UPDATE must describe the card the CPLC described (spec §7).
        if channel.info().key_diversification_data != self.kdd {
            return Err(PersoError::Malformed {
                step: open_name,
                what: "key diversification data differs from the CPLC's batch ‖ CSN".into(),
            });
        }
        let mut secure = Card::new(channel);
        let counters =
            |s: &mut Card<SecureChannel<&mut Card<T>>>| s.transport_mut().inner_mut().counters();
        self.record(&open_name, t, before, counters(&mut secure));
        for step in steps {
            (self.on_start)(StepStart {
                name: &step.name,
                writes: true,
            })?;
            let t = Instant::now();
            let before = counters(&mut secure);
            match &step.action {
                Action::Send(cmds) => {
                    for cmd in cmds {
                        send_ok(&mut secure, &step.name, cmd)?;
                    }
                }
                Action::PublicKey(key, cmd) => {
                    let answer = send_ok(&mut secure, &step.name, cmd)?;
                    let public =
                        HolderKey::from_card(&answer).map_err(|e| malformed(&step.name, &e))?;
                    self.keys.push((*key, public));
                }
                Action::Write(derived) => {
                    let data = self.derive(*derived)?;
                    for cmd in self.plan.write_derived(*derived, &data)? {
                        send_ok(&mut secure, &step.name, &cmd)?;
                    }
                    self.files.push((derived.fid(), data));
                }
                Action::SelectApplet(_) | Action::OpenChannel => {
                    return Err(PersoError::Malformed {
                        step: step.name.clone(),
                        what: "plan selects or opens a channel twice".into(),
                    })
                }
            }
            self.record(&step.name, t, before, counters(&mut secure));
        }
        Ok(())
    }

    /// Holder certificates from the public keys read so far; the security
    /// object over every data file written so far.
    fn derive(&self, derived: Derived) -> Result<Vec<u8>, PersoError> {
        let pki = &self.issuer.pki;
        let key = match derived {
            Derived::AuthCertificate => KeyRef::Auth,
            Derived::SignCertificate => KeyRef::Sign,
            Derived::SecurityObject => {
                let files: Vec<(u16, &[u8])> =
                    self.files.iter().map(|(f, d)| (*f, d.as_slice())).collect();
                return Ok(build_security_object(
                    &files,
                    &pki.document_signer,
                    &pki.document_signer_key,
                    self.now,
                )?);
            }
        };
        let public_key = self
            .keys
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, p)| p)
            .ok_or_else(|| PersoError::Malformed {
                step: format!("{derived:?}"),
                what: "no public key was read for this certificate".into(),
            })?;
        let holder = Holder {
            crn: self.job.crn.as_str(),
            national_code: self.job.record.national_code.as_str(),
            public_key,
        };
        let cert = issue_holder_certificate(&pki.card_ca, &pki.card_ca_key, &holder, self.now)?;
        Ok(cert.der().to_vec())
    }

    fn record(&mut self, name: &str, t: Instant, before: Counters, after: Counters) {
        let d = diff(before, after);
        self.steps.push(StepReport {
            name: name.to_owned(),
            duration: t.elapsed(),
            apdus: d.apdus,
            bytes_sent: d.bytes_sent,
            bytes_received: d.bytes_received,
        });
    }
}

/// The life cycle from a SELECT FCI `6F { 84 AID, 8A state }`, when it is
/// one the spec defines.
pub fn lifecycle_of(fci: &[u8]) -> Option<Lifecycle> {
    applet::lifecycle_of_fci(fci).filter(|l| l.is_known())
}

/// Why the secure channel did not open. A card cryptogram that does not
/// match is explained from the card's key information template (GET DATA
/// `00E0`, GP 2.3.1 §11.3.3.1): what the card holds against what the issuer
/// offers.
fn channel_error<T: Transport>(
    card: &mut Card<T>,
    profile: &Profile,
    params: kart_apdu::gp::ScpParams,
    step: &str,
    error: GpError,
) -> PersoError {
    match error {
        GpError::Transport(TransportError::CardRemoved) => PersoError::CardRemoved {
            step: step.to_owned(),
        },
        GpError::CardCryptogramMismatch => {
            let isd = kart_spec::Spec::embedded()
                .map(|s| s.applet.card_manager.aid.bytes().to_vec())
                .unwrap_or_default();
            let held = crate::keyinfo::read_key_information(card, &isd)
                .ok()
                .flatten();
            PersoError::CardKeys {
                explanation: crate::keyinfo::explain_cryptogram_mismatch(
                    held.as_deref(),
                    profile.secure_channel.key_length,
                    &params,
                    &profile.id,
                ),
            }
        }
        other => PersoError::SecureChannel(other),
    }
}

/// Sends one command, mapping delivery failures to typed errors naming the step.
pub(crate) fn send<T: Transport>(
    card: &mut Card<T>,
    step: &str,
    cmd: &Command,
) -> Result<kart_apdu::Response, PersoError> {
    card.send(cmd).map_err(|e| card_error(step, e))
}

/// Sends one command and requires `9000`.
pub(crate) fn send_ok<T: Transport>(
    card: &mut Card<T>,
    step: &str,
    cmd: &Command,
) -> Result<Vec<u8>, PersoError> {
    let r = send(card, step, cmd)?;
    if r.is_success() {
        Ok(r.data().to_vec())
    } else {
        Err(PersoError::CardRefused {
            step: step.to_owned(),
            sw: r.sw(),
        })
    }
}

pub(crate) fn card_error(step: &str, e: CardError) -> PersoError {
    let step = step.to_owned();
    match e {
        CardError::Transport(TransportError::CardRemoved) => PersoError::CardRemoved { step },
        CardError::Transport(source) => PersoError::Transport { step, source },
        CardError::MalformedResponse(n) => PersoError::Malformed {
            step,
            what: format!("{n}-byte response"),
        },
        source => PersoError::Card { step, source },
    }
}

pub(crate) fn malformed(step: &str, e: &dyn std::fmt::Display) -> PersoError {
    PersoError::Malformed {
        step: step.to_owned(),
        what: e.to_string(),
    }
}

fn diff(a: Counters, b: Counters) -> Counters {
    Counters {
        commands: b.commands.saturating_sub(a.commands),
        apdus: b.apdus.saturating_sub(a.apdus),
        bytes_sent: b.bytes_sent.saturating_sub(a.bytes_sent),
        bytes_received: b.bytes_received.saturating_sub(a.bytes_received),
        get_responses: b.get_responses.saturating_sub(a.get_responses),
        le_resends: b.le_resends.saturating_sub(a.le_resends),
        chained_parts: b.chained_parts.saturating_sub(a.chained_parts),
    }
}

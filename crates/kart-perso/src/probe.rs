//! The one card probe: which applet answers, and what the card says about
//! itself before anything is written (CPLC → CSN, life cycle, CRN).
//! The card's answers are read and checked once, here: [`probe_card`]
//! (personalization) and [`read_card`](crate::read::read_card) (reading and
//! verification, after [`find_applet`]) take the CPLC and CRN from the same
//! readers and differ only in how they learn the life cycle (the FCI of
//! their SELECT, or GET DATA `DF71`). [`survey_card`] is `kart info`'s
//! tolerant variant: what the card does not say becomes a note, so a
//! damaged card can still be described.
//!
//! ```
//! use kart_perso::applet::Lifecycle;
//! use kart_perso::probe::{find_applet, probe_card};
//! let spec = kart_spec::Spec::embedded()?;
//! let profile = spec.profile("vendor-c").unwrap();
//! let mut card = kart_apdu::Card::new(kart_sim::SimCard::new(profile)?);
//! // Without an ATR every profile's AID is tried in turn.
//! assert_eq!(find_applet(&mut card, &spec, None)?.id, "vendor-c");
//! let info = probe_card(&mut card, profile)?;
//! assert_eq!(info.lifecycle, Lifecycle::PrePersonalized);
//! assert_eq!(info.crn, None);
//! assert!(!info.touched());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use kart_apdu::{tlv, Card, CardCaps, CardError, Status, StatusWord, Transport};
use kart_spec::{Profile, Spec};

use crate::applet::{self, Lifecycle, TAG_CPLC, TAG_CRN, TAG_LIFECYCLE};
use crate::card_data::{csn_of, Cplc, Crn};
use crate::keyinfo::{parse_key_information, KeyInfo};
use crate::personalize::{card_error, malformed, send_ok, PersoError};
use crate::read::ReadError;

/// What the card says about itself before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardInfo {
    /// CSN and key diversification data.
    pub cplc: Cplc,
    /// Life cycle of the applet (always one the spec defines).
    pub lifecycle: Lifecycle,
    /// The CRN, if one was set by an earlier attempt.
    pub crn: Option<Crn>,
}

impl CardInfo {
    /// Whether the card may hold data from an earlier attempt.
    pub fn touched(&self) -> bool {
        self.lifecycle != Lifecycle::PrePersonalized || self.crn.is_some()
    }
}

/// Reads what personalization needs to know first: SELECT the applet of
/// `profile` (its FCI gives the life cycle), GET DATA CPLC and CRN.
/// Touches nothing.
pub fn probe_card<T: Transport>(
    card: &mut Card<T>,
    profile: &Profile,
) -> Result<CardInfo, PersoError> {
    let step = "select applet";
    let select =
        applet::select_applet_fci(profile.applet_aid.bytes()).map_err(|e| malformed(step, &e))?;
    let fci = send_ok(card, step, &select)?;
    let lifecycle = applet::lifecycle_of_fci(&fci)
        .filter(|l| l.is_known())
        .ok_or_else(|| PersoError::Malformed {
            step: step.into(),
            what: format!("FCI {} has no life-cycle byte 8A", hex::encode_upper(&fci)),
        })?;
    let cplc = read_cplc(card)?;
    let crn = read_crn(card)?;
    Ok(CardInfo {
        cplc,
        lifecycle,
        crn,
    })
}

/// Why reading what the selected applet says about its card stopped;
/// personalization and reading each tell it as their own error.
#[derive(Debug)]
pub(crate) enum Fault {
    /// The command did not get an answer.
    Card {
        step: &'static str,
        source: CardError,
    },
    /// The card answered a status word the spec does not allow here.
    Refused { step: &'static str, sw: StatusWord },
    /// The answer is not the structure the spec describes.
    Malformed { step: &'static str, what: String },
}

impl From<Fault> for PersoError {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::Card { step, source } => card_error(step, source),
            Fault::Refused { step, sw } => PersoError::CardRefused {
                step: step.into(),
                sw,
            },
            Fault::Malformed { step, what } => PersoError::Malformed {
                step: step.into(),
                what,
            },
        }
    }
}

impl From<Fault> for ReadError {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::Card { step, source } => ReadError::card(step, source),
            Fault::Refused { step, sw } => ReadError::Unexpected {
                step: step.into(),
                sw,
            },
            Fault::Malformed { step, what } => ReadError::malformed(step, what),
        }
    }
}

const STEP_CPLC: &str = "GET DATA CPLC (9F7F)";
const STEP_CRN: &str = "GET DATA CRN (DF72)";
const STEP_LIFECYCLE: &str = "GET DATA life cycle (DF71)";

/// The selected applet's CPLC (spec §6.2): every card has one.
pub(crate) fn read_cplc<T: Transport>(card: &mut Card<T>) -> Result<Cplc, Fault> {
    let answer = get_answer(card, TAG_CPLC, STEP_CPLC)?.ok_or(Fault::Refused {
        step: STEP_CPLC,
        sw: StatusWord::REFERENCED_DATA_NOT_FOUND,
    })?;
    Cplc::parse(&answer).map_err(|e| Fault::Malformed {
        step: STEP_CPLC,
        what: e.to_string(),
    })
}

/// The selected applet's CRN, once an earlier attempt set it.
pub(crate) fn read_crn<T: Transport>(card: &mut Card<T>) -> Result<Option<Crn>, Fault> {
    let Some(value) = get_value(card, TAG_CRN, STEP_CRN)? else {
        return Ok(None);
    };
    std::str::from_utf8(&value)
        .ok()
        .and_then(|text| Crn::parse(text).ok())
        .map(Some)
        .ok_or(Fault::Malformed {
            step: STEP_CRN,
            what: "the CRN is not 10 ASCII digits".into(),
        })
}

/// The selected applet's life cycle by GET DATA (when no FCI told it),
/// any code the card holds.
pub(crate) fn read_lifecycle<T: Transport>(card: &mut Card<T>) -> Result<Lifecycle, Fault> {
    match get_value(card, TAG_LIFECYCLE, STEP_LIFECYCLE)?.as_deref() {
        Some([code]) => Ok(Lifecycle::from_code(*code)),
        other => Err(Fault::Malformed {
            step: STEP_LIFECYCLE,
            what: format!("{} bytes, expected 1", other.map_or(0, <[u8]>::len)),
        }),
    }
}

/// GET DATA `tag`: the value inside its `tag L value` answer, `None` on
/// `6A88` (no such data yet).
fn get_value<T: Transport>(
    card: &mut Card<T>,
    tag: u16,
    step: &'static str,
) -> Result<Option<Vec<u8>>, Fault> {
    let Some(answer) = get_answer(card, tag, step)? else {
        return Ok(None);
    };
    let malformed = |e: kart_apdu::tlv::TlvError| Fault::Malformed {
        step,
        what: e.to_string(),
    };
    let object = tlv::parse(&answer).map_err(malformed)?;
    tlv::value_at(&object, &[u32::from(tag)])
        .map(|v| Some(v.to_vec()))
        .map_err(malformed)
}

/// GET DATA `tag`: the whole answer, `None` on `6A88`.
fn get_answer<T: Transport>(
    card: &mut Card<T>,
    tag: u16,
    step: &'static str,
) -> Result<Option<Vec<u8>>, Fault> {
    let r = card
        .send(&applet::get_data(tag))
        .map_err(|source| Fault::Card { step, source })?;
    match r.sw() {
        _ if r.is_success() => Ok(Some(r.data().to_vec())),
        sw if sw == StatusWord::REFERENCED_DATA_NOT_FOUND => Ok(None),
        sw => Err(Fault::Refused { step, sw }),
    }
}

/// SELECTs (P2 `0C`) the applet of the profile matching `atr`, or of the
/// first profile whose AID answers, and narrows the session to that
/// profile's limits.
pub fn find_applet<'s, T: Transport>(
    card: &mut Card<T>,
    spec: &'s Spec,
    atr: Option<&[u8]>,
) -> Result<&'s Profile, ReadError> {
    let transport_caps = card.caps();
    let candidates: Vec<&Profile> = match atr.and_then(|a| spec.profile_for_atr(a)) {
        Some(p) => vec![p],
        None => spec.profiles.iter().collect(),
    };
    let mut tried: Vec<String> = Vec::new();
    for profile in candidates {
        let aid = profile.applet_aid.bytes();
        let aid_hex = hex::encode_upper(aid);
        if tried.contains(&aid_hex) {
            continue;
        }
        tried.push(aid_hex);
        let select =
            applet::select_applet(aid).map_err(|e| ReadError::card("SELECT applet", e.into()))?;
        let r = card
            .send(&select)
            .map_err(|e| ReadError::card("SELECT applet", e))?;
        match r.sw().status() {
            Status::Success => {
                card.set_caps(narrow(transport_caps, profile.caps()));
                return Ok(profile);
            }
            Status::FileNotFound | Status::IncorrectP1P2 | Status::FunctionNotSupported => {}
            _ => {
                return Err(ReadError::Unexpected {
                    step: format!("SELECT applet {}", hex::encode_upper(aid)),
                    sw: r.sw(),
                })
            }
        }
    }
    Err(ReadError::NoApplet {
        tried: tried.join(", "),
    })
}

/// What both the reader and the card can take.
fn narrow(a: CardCaps, b: CardCaps) -> CardCaps {
    CardCaps {
        extended_length: a.extended_length && b.extended_length,
        chaining: a.chaining && b.chaining,
        max_command_data: a.max_command_data.min(b.max_command_data),
        max_response_data: a.max_response_data.min(b.max_response_data),
    }
}

/// What [`survey_card`] learned; `None` where the card did not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Survey {
    /// Card serial number from the card manager's CPLC (IC fabricator, IC
    /// type, IC serial).
    pub csn: Option<Vec<u8>>,
    /// The AID under which the national-ID applet answered.
    pub applet_aid: Option<Vec<u8>>,
    /// The applet's life cycle (from its FCI, else GET DATA `DF71`).
    pub lifecycle: Option<Lifecycle>,
    /// The CRN, as the card holds it.
    pub crn: Option<String>,
    /// The card manager's key information template (GET DATA `00E0`).
    pub keys: Option<Vec<KeyInfo>>,
    /// What the card refused or answered oddly, one line each.
    pub notes: Vec<String>,
}

/// Asks the card manager for the CPLC and key information, then the applet
/// (`preferred` AID first, then every profile's, then the spec's default)
/// for its life cycle and CRN. A card that refuses is described in
/// [`Survey::notes`], not an error; a card that stops answering is.
pub fn survey_card<T: Transport>(
    card: &mut Card<T>,
    spec: &Spec,
    preferred: Option<&[u8]>,
) -> Result<Survey, CardError> {
    let mut facts = Survey::default();
    let isd = spec.applet.card_manager.aid.bytes();
    let r = card.send(&applet::select_applet(isd)?)?;
    if r.is_success() {
        match tolerant_get_data(card, TAG_CPLC)? {
            Ok(cplc) => match csn_of(&cplc) {
                Some(csn) => facts.csn = Some(csn.to_vec()),
                None => facts.notes.push(format!(
                    "CPLC of {} bytes is too short for a serial number",
                    cplc.len()
                )),
            },
            Err(sw) => facts.notes.push(format!("GET DATA CPLC answered {sw}")),
        }
        // What a GP host tool reads before opening a channel (GP 2.3.1 §11.3.3.1).
        if let Ok(kit) = tolerant_get_data(card, 0x00E0)? {
            facts.keys = parse_key_information(&kit).ok();
        }
    } else {
        facts
            .notes
            .push(format!("SELECT card manager answered {}", r.sw()));
    }
    let mut aids: Vec<&[u8]> = Vec::new();
    let candidates = preferred
        .into_iter()
        .chain(spec.profiles.iter().map(|p| p.applet_aid.bytes()))
        .chain([spec.applet.applet.default_aid.bytes()]);
    for aid in candidates {
        if !aids.contains(&aid) {
            aids.push(aid);
        }
    }
    for aid in aids {
        let r = card.send(&applet::select_applet_fci(aid)?)?;
        if !r.is_success() {
            continue;
        }
        facts.applet_aid = Some(aid.to_vec());
        facts.lifecycle = match applet::lifecycle_of_fci(r.data()) {
            Some(l) => Some(l),
            None => match tolerant_get_data(card, TAG_LIFECYCLE)? {
                Ok(v) => v.first().copied().map(Lifecycle::from_code),
                Err(sw) => {
                    facts
                        .notes
                        .push(format!("GET DATA life cycle answered {sw}"));
                    None
                }
            },
        };
        match tolerant_get_data(card, TAG_CRN)? {
            Ok(crn) => facts.crn = Some(String::from_utf8_lossy(&crn).into_owned()),
            Err(sw) if sw == StatusWord::REFERENCED_DATA_NOT_FOUND => {}
            Err(sw) => facts.notes.push(format!("GET DATA CRN answered {sw}")),
        }
        break;
    }
    if facts.applet_aid.is_none() {
        facts
            .notes
            .push("no national-ID applet answered SELECT under any known AID".to_owned());
    }
    Ok(facts)
}

/// GET DATA `tag`: the value inside the answered `tag L value` (the whole
/// answer when it is not one), or the status.
fn tolerant_get_data<T: Transport>(
    card: &mut Card<T>,
    tag: u16,
) -> Result<Result<Vec<u8>, StatusWord>, CardError> {
    let r = card.send(&applet::gp_get_data(tag))?;
    if !r.is_success() {
        return Ok(Err(r.sw()));
    }
    let value = tlv::parse(r.data())
        .ok()
        .filter(|t| tlv::tag_number(t) == u32::from(tag))
        .and_then(|t| {
            tlv::value_at(&t, &[u32::from(tag)])
                .ok()
                .map(<[u8]>::to_vec)
        });
    Ok(Ok(value.unwrap_or_else(|| r.data().to_vec())))
}

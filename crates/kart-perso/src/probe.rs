//! The one card probe: which applet answers, and what the card says about
//! itself before anything is written (CPLC → CSN, life cycle, CRN). Used by
//! personalization, by [`read_card`](crate::read::read_card) and verification,
//! and by `kart info`.
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

use kart_apdu::{tlv, Card, CardCaps, Status, StatusWord, Transport};
use kart_spec::{Profile, Spec};

use crate::applet::{self, Lifecycle, TAG_CPLC, TAG_CRN};
use crate::card_data::{Cplc, Crn};
use crate::personalize::{malformed, send, send_ok, PersoError};
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
    let step = "read CPLC";
    let cplc = send_ok(card, step, &applet::get_data(TAG_CPLC))?;
    let cplc = Cplc::parse(&cplc).map_err(|e| malformed(step, &e))?;
    let step = "read CRN";
    let crn = match send(card, step, &applet::get_data(TAG_CRN))? {
        r if r.is_success() => {
            let object = tlv::parse(r.data()).map_err(|e| malformed(step, &e))?;
            let digits =
                tlv::value_at(&object, &[u32::from(TAG_CRN)]).map_err(|e| malformed(step, &e))?;
            let text = std::str::from_utf8(digits).map_err(|e| malformed(step, &e))?;
            Some(Crn::parse(text).map_err(|e| malformed(step, &e))?)
        }
        r if r.sw() == StatusWord::REFERENCED_DATA_NOT_FOUND => None,
        r => {
            return Err(PersoError::CardRefused {
                step: step.into(),
                sw: r.sw(),
            })
        }
    };
    Ok(CardInfo {
        cplc,
        lifecycle,
        crn,
    })
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

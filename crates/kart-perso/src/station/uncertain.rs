//! Which failures leave the card's state unknown.
//!
//! Only an explicit answer from the card (a status word, a cryptogram that
//! does not match) or a failure on this side before anything was sent says
//! what the card holds. A lost answer (time-out, card removed or reset,
//! reader gone) or an answer that is not one (garbage, a broken secure
//! messaging wrapper) may come after the card carried the command out: the
//! card may be LOCKED and authentic already. Such a card is treated like a
//! pulled one: it stays bound to its application until it comes back.
//!
//! Two bytes whose SW1 is outside `61`-`6F` and `90`-`9F` are not a status
//! word (ISO/IEC 7816-4 §5.6) but garbage.

use kart_apdu::gp::GpError;
use kart_apdu::{CardError, StatusWord};

use crate::personalize::PersoError;
use crate::read::ReadError;
use crate::verify::VerifyError;

/// Whether personalization stopped without knowing what the card holds.
pub(super) fn perso(e: &PersoError) -> bool {
    match e {
        PersoError::CardRemoved { .. }
        | PersoError::Transport { .. }
        | PersoError::Malformed { .. } => true,
        PersoError::Card { source, .. } => card(source),
        PersoError::SecureChannel(gp) => secure_channel(gp),
        PersoError::CardRefused { sw, .. } => !is_status_word(*sw),
        // The issuer's token went away: nothing is wrong with the card, which
        // stays bound to its application and resumes when the token is back.
        e if issuer_unavailable(e) => true,
        _ => false,
    }
}

/// Whether personalization stopped because the issuer's token is absent or
/// was removed: the station pauses instead of taking new applications.
pub(super) fn issuer_unavailable(e: &PersoError) -> bool {
    match e {
        PersoError::Issuer(crate::pki::PkiError::Pkcs11(p))
        | PersoError::SecurityObject(crate::security_object::SecurityObjectError::Pki(
            crate::pki::PkiError::Pkcs11(p),
        )) => p.is_unavailable(),
        _ => false,
    }
}

/// Whether reading the card back failed without the card saying why.
pub(super) fn read_back(e: &VerifyError) -> bool {
    match e {
        VerifyError::Read(ReadError::Card { source, .. }) | VerifyError::Card(source) => {
            card(source)
        }
        // Refusals the card stated: its content is not what was written.
        VerifyError::Read(ReadError::Unexpected { sw, .. }) => !is_status_word(*sw),
        VerifyError::Read(ReadError::NoApplet { .. }) => false,
        // Garbage, or a failure on this side (spec, random generator): the
        // card was never judged.
        _ => true,
    }
}

/// Anything but a status word or a command that never left this side.
fn card(e: &CardError) -> bool {
    match e {
        CardError::Status(refusal) => !is_status_word(refusal.sw()),
        CardError::Command(_) | CardError::CommandTooLong { .. } => false,
        _ => true,
    }
}

/// Anything but a refusal or mismatch the card stated, or a failure on
/// this side before the command was sent.
fn secure_channel(e: &GpError) -> bool {
    if let GpError::CardRefused { sw, .. } = e {
        return !is_status_word(*sw);
    }
    !matches!(
        e,
        GpError::CardCryptogramMismatch
            | GpError::ProtocolMismatch { .. }
            | GpError::Unsupported(_)
            | GpError::InvalidKey(_)
            | GpError::Crypto(_)
            | GpError::Random
            | GpError::Command(_)
    )
}

/// ISO/IEC 7816-4 §5.6: SW1 is `6X` (not `60`) or `9X`.
fn is_status_word(sw: StatusWord) -> bool {
    matches!(sw.sw1(), 0x61..=0x6F | 0x90..=0x9F)
}

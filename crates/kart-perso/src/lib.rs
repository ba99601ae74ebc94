//! # kart-perso
//!
//! The personalization engine: identity records, issuer PKI, the security
//! object, the journal, the personalization plan and its execution, and card
//! verification. Runs on any [`kart_apdu::Transport`].
#![forbid(unsafe_code)]

pub mod applet;
pub mod card_data;
pub mod crn;
pub mod host;
pub mod issuer;
pub mod journal;
pub mod keyinfo;
pub mod personalize;
pub mod pin_mailer;
pub mod pki;
pub mod plan;
pub mod probe;
pub mod qa;
pub mod read;
pub mod record;
pub mod security_object;
pub mod station;
pub mod verify;

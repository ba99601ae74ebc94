//! The card manager (GP Issuer Security Domain) as GlobalPlatform host tools
//! discover it: GET DATA for Card Data, the Key Information Template, IIN,
//! CIN and CPLC, and GET STATUS over the card's registry (GP Card
//! Specification 2.3.1 §11.3, §11.4, §H).

use crate::applet::{tlv, Answer, Stop};
use crate::sw;
use kart_apdu::Command;
use kart_spec::{Profile, Scp};

/// GP card life cycle SECURED (GP 2.3.1 §5.1.1, Table 11-6).
const CARD_SECURED: u8 = 0x0F;
/// Executable load file life cycle LOADED.
const ELF_LOADED: u8 = 0x01;
/// ISD privileges: Security Domain, Card Lock, Card Terminate, Card Reset,
/// CVM Management (byte 1 = `9E`), none in bytes 2 and 3.
const ISD_PRIVILEGES: [u8; 3] = [0x9E, 0x00, 0x00];
/// Issuer identification number of the simulated cards (tag `42`): the
/// ISO/IEC 7812 test range, BCD.
pub(crate) const IIN: [u8; 4] = [0x89, 0x99, 0x00, 0x01];

/// What the card manager knows about the card it manages.
pub(crate) struct Registry<'a> {
    pub profile: &'a Profile,
    pub isd_aid: &'a [u8],
    /// The national-ID applet's current life-cycle code (also its GP life cycle).
    pub applet_state: u8,
    pub csn: [u8; 8],
    pub cplc: &'a [u8; 42],
}

/// The load file that holds the applet: its AID with the last byte dropped
/// (the package of the instance), as the simulated registry lists it.
fn load_file_aid(applet: &[u8]) -> &[u8] {
    applet
        .get(..applet.len().saturating_sub(1))
        .unwrap_or(applet)
}

/// GP OID arc `1.2.840.114283` followed by `tail`, DER-encoded with tag `06`.
fn gp_oid(tail: &[u8]) -> Vec<u8> {
    let mut v = vec![0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B];
    v.extend_from_slice(tail);
    tlv(&[0x06], &v)
}

impl Registry<'_> {
    /// GET DATA with the card manager selected.
    pub(crate) fn get_data(&self, cmd: &Command) -> Answer {
        match u16::from_be_bytes([cmd.p1(), cmd.p2()]) {
            0x9F7F => Ok((tlv(&[0x9F, 0x7F], self.cplc), sw::OK)),
            0x0066 => Ok((
                tlv(&[0x66], &tlv(&[0x73], &self.card_recognition_data())),
                sw::OK,
            )),
            0x00E0 => Ok((self.key_information(), sw::OK)),
            0x0042 => Ok((tlv(&[0x42], &IIN), sw::OK)),
            0x0045 => Ok((tlv(&[0x45], &self.csn), sw::OK)),
            _ => Err(Stop::Sw(sw::REF_NOT_FOUND)),
        }
    }

    /// Card Recognition Data (GP 2.3.1 §H.2): the GP OID, card management
    /// type and version (GP 2.3.1), card identification scheme, and the SCP
    /// with its i-parameter.
    fn card_recognition_data(&self) -> Vec<u8> {
        let sc = self.profile.secure_channel;
        let scp = match sc.scp {
            Scp::Scp02 => 0x02,
            Scp::Scp03 => 0x03,
        };
        let mut v = gp_oid(&[0x01]);
        v.extend(tlv(&[0x60], &gp_oid(&[0x02, 0x02, 0x03, 0x01])));
        v.extend(tlv(&[0x63], &gp_oid(&[0x03])));
        v.extend(tlv(&[0x64], &gp_oid(&[0x04, scp, sc.i])));
        v
    }

    /// Key Information Template (GP 2.3.1 §11.3.3.1): ENC, MAC and DEK
    /// (key ids 1-3) under the profile's key version, DES or AES of its length.
    fn key_information(&self) -> Vec<u8> {
        let sc = self.profile.secure_channel;
        let key_type = match sc.scp {
            Scp::Scp02 => 0x80,
            Scp::Scp03 => 0x88,
        };
        let mut v = Vec::new();
        for id in 1..=3u8 {
            v.extend(tlv(
                &[0xC0],
                &[id, sc.key_version, key_type, sc.key_length as u8],
            ));
        }
        tlv(&[0xE0], &v)
    }

    /// GET STATUS (GP 2.3.1 §11.4): `80 F2 P1 P2 Lc 4F xx [AID prefix] [Le]`.
    /// P1 `80` ISD, `40` applications, `20` load files, `10` load files with
    /// their modules; P2 `02` (TLV, `E3` per entry) or `00` (legacy), bit 1
    /// "next" is refused (everything fits in one answer).
    pub(crate) fn get_status(&self, cmd: &Command) -> Answer {
        let tlv_form = match cmd.p2() {
            0x02 => true,
            0x00 => false,
            _ => return Err(Stop::Sw(sw::P1P2)),
        };
        let prefix = match cmd.data() {
            [0x4F, n, rest @ ..] if usize::from(*n) == rest.len() => rest,
            // A search on other tags (GP Table 11-34) this card does not keep.
            [_, ..] => return Err(Stop::Sw(sw::WRONG_DATA)),
            [] => return Err(Stop::Sw(sw::WRONG_LENGTH)),
        };
        let applet = self.profile.applet_aid.bytes();
        let entries: Vec<(&[u8], u8, Vec<u8>)> = match cmd.p1() {
            0x80 => vec![(self.isd_aid, CARD_SECURED, ISD_PRIVILEGES.to_vec())],
            0x40 => vec![(applet, self.applet_state, vec![0, 0, 0])],
            0x20 | 0x10 => vec![(load_file_aid(applet), ELF_LOADED, Vec::new())],
            _ => return Err(Stop::Sw(sw::P1P2)),
        };
        let mut out = Vec::new();
        for (aid, state, privileges) in entries.into_iter().filter(|e| e.0.starts_with(prefix)) {
            if tlv_form {
                let mut e = tlv(&[0x4F], aid);
                e.extend(tlv(&[0x9F, 0x70], &[state]));
                if !privileges.is_empty() {
                    e.extend(tlv(&[0xC5], &privileges));
                }
                if cmd.p1() == 0x40 {
                    e.extend(tlv(&[0xC4], load_file_aid(applet)));
                    e.extend(tlv(&[0xCC], self.isd_aid));
                }
                if cmd.p1() == 0x10 {
                    e.extend(tlv(&[0x84], applet));
                }
                out.extend(tlv(&[0xE3], &e));
            } else {
                out.push(aid.len() as u8);
                out.extend_from_slice(aid);
                out.push(state);
                out.push(privileges.first().copied().unwrap_or(0));
                if cmd.p1() == 0x10 {
                    out.push(1);
                    out.push(applet.len() as u8);
                    out.extend_from_slice(applet);
                }
            }
        }
        if out.is_empty() {
            return Err(Stop::Sw(sw::REF_NOT_FOUND));
        }
        Ok((out, sw::OK))
    }
}

//! APDU-029 (no Le, no data), APDU-030 (classes a command does not take) and
//! GP-031 (the card manager answers `GlobalPlatform` discovery, GP Card
//! Specification 2.3.1 §11.3, §11.4, §H.2).

use kart_apdu::tlv::{self, Tlv, Value};
use kart_apdu::{Command, StatusWord};
use kart_spec::Scp;

use super::{apdu, Obs, Step, Suite, Verdict, OK};

const CLA_NOT_SUPPORTED: StatusWord = StatusWord::CLA_NOT_SUPPORTED;
const WRONG_LENGTH: StatusWord = StatusWord::WRONG_LENGTH;
const REF_NOT_FOUND: StatusWord = StatusWord::REFERENCED_DATA_NOT_FOUND;
/// The GP card-recognition-data OID `1.2.840.114283.1`, DER with its tag.
const GP_CRD_OID: [u8; 9] = [0x06, 0x07, 0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x01];

fn children(t: &Tlv) -> &[Tlv] {
    match t.value() {
        Value::Constructed(c) => c,
        Value::Primitive(_) => &[],
    }
}

fn primitive(t: &Tlv) -> &[u8] {
    match t.value() {
        Value::Primitive(v) => v,
        Value::Constructed(_) => &[],
    }
}

impl Suite<'_, '_> {
    fn select_isd(&mut self) -> Step<()> {
        let isd = self.setup.spec.applet.card_manager.aid.bytes().to_vec();
        match self.sw(&apdu(0x00, 0xA4, 0x04, 0x0C, &isd, None))? {
            OK => Ok(()),
            sw => Err(format!(
                "SELECT of the card manager {} answered {sw:04X}",
                hex::encode_upper(&isd)
            )),
        }
    }

    pub(super) fn no_le_no_data(&mut self) -> Step<Verdict> {
        let mut obs = Obs::default();
        self.select_isd()?;
        for (what, raw) in [
            (
                "card manager: GET DATA 9F7F without Le",
                [0x80, 0xCA, 0x9F, 0x7F],
            ),
            ("applet: GET DATA DF71 without Le", [0x00, 0xCA, 0xDF, 0x71]),
        ] {
            if what.starts_with("applet") {
                self.select_applet()?;
            }
            let r = self.raw(&raw)?;
            obs.sw(what, r.sw(), WRONG_LENGTH);
            obs.is(
                &format!("{what}: data"),
                r.data().is_empty(),
                r.data().len(),
                0,
            );
        }
        Ok(obs.verdict())
    }

    pub(super) fn foreign_classes(&mut self) -> Step<Verdict> {
        let mut obs = Obs::default();
        self.select_applet()?;
        for (what, raw) in [
            (
                "GET RESPONSE with CLA 80",
                apdu(0x80, 0xC0, 0, 0, &[], Some(0)),
            ),
            (
                "GET RESPONSE with CLA 84",
                apdu(0x84, 0xC0, 0, 0, &[], Some(0)),
            ),
            (
                "PUT DATA DF72 with CLA 84",
                apdu(0x84, 0xDA, 0xDF, 0x72, b"0000000000", None),
            ),
            (
                "GET CHALLENGE with CLA 80",
                apdu(0x80, 0x84, 0, 0, &[], Some(8)),
            ),
        ] {
            obs.sw(what, self.sw(&raw)?, CLA_NOT_SUPPORTED);
        }
        Ok(obs.verdict())
    }

    /// GET DATA `tag` with the ISD selected, through the session (T=0 `61xx`).
    fn isd_get_data(&mut self, tag: u16) -> Step<(Option<Tlv>, StatusWord)> {
        let [p1, p2] = tag.to_be_bytes();
        let c = Command::new(0x80, 0xCA, p1, p2)
            .with_le(256)
            .map_err(|e| e.to_string())?;
        let r = self.send(&c)?;
        Ok((tlv::parse(r.data()).ok(), r.sw()))
    }

    fn isd_get_status(&mut self, p1: u8) -> Step<(Vec<Tlv>, StatusWord)> {
        let c = Command::new(0x80, 0xF2, p1, 0x02)
            .with_data(&[0x4F, 0x00])
            .and_then(|c| c.with_le(256))
            .map_err(|e| e.to_string())?;
        let r = self.send(&c)?;
        Ok((tlv::parse_all(r.data()).unwrap_or_default(), r.sw()))
    }

    pub(super) fn card_manager_discovery(&mut self) -> Step<Verdict> {
        let p = self.setup.profile;
        let sc = p.secure_channel;
        let mut obs = Obs::default();
        self.select_isd()?;

        let (card_data, sw) = self.isd_get_data(0x0066)?;
        obs.sw("GET DATA 0066", sw, OK);
        let crd = card_data
            .as_ref()
            .filter(|t| tlv::tag_number(t) == 0x66)
            .and_then(|t| tlv::find_in(children(t), &[0x73]));
        let crd_bytes = crd.map(|t| {
            children(t)
                .iter()
                .flat_map(tlv::to_vec)
                .collect::<Vec<u8>>()
        });
        obs.is(
            "0066: 73 with the GP card-recognition OID",
            crd_bytes
                .as_deref()
                .is_some_and(|b| b.starts_with(&GP_CRD_OID)),
            crd_bytes
                .as_deref()
                .map_or_else(|| "no 66/73 template".into(), hex::encode_upper),
            "06072A864886FC6B01 first",
        );
        let scp = match sc.scp {
            Scp::Scp02 => 0x02,
            Scp::Scp03 => 0x03,
        };
        let want_scp = [0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x04, scp, sc.i];
        let scp_oid = crd
            .and_then(|t| tlv::find_in(children(t), &[0x64, 0x06]))
            .map(|t| primitive(t).to_vec());
        obs.is(
            "0066: secure channel protocol (tag 64)",
            scp_oid.as_deref() == Some(&want_scp[..]),
            scp_oid
                .as_deref()
                .map_or_else(|| "none".into(), hex::encode_upper),
            hex::encode_upper(want_scp),
        );

        let (kit, sw) = self.isd_get_data(0x00E0)?;
        obs.sw("GET DATA 00E0", sw, OK);
        let keys: Vec<Vec<u8>> = kit
            .as_ref()
            .filter(|t| tlv::tag_number(t) == 0xE0)
            .map(|t| {
                children(t)
                    .iter()
                    .filter(|c| tlv::tag_number(c) == 0xC0)
                    .map(|c| primitive(c).to_vec())
                    .collect()
            })
            .unwrap_or_default();
        for id in 1..=3u8 {
            let found = keys.iter().find(|k| k.first() == Some(&id));
            let ok = found.is_some_and(|k| {
                k.get(1) == Some(&sc.key_version) && k.get(3) == Some(&(sc.key_length as u8))
            });
            obs.is(
                &format!("00E0: key {id:02X}"),
                ok,
                found.map_or_else(|| "absent".into(), hex::encode_upper),
                format!("version {:02X}, {} bytes", sc.key_version, sc.key_length),
            );
        }
        for (tag, name) in [(0x0042, "IIN"), (0x0045, "CIN"), (0x9F7F, "CPLC")] {
            let (t, sw) = self.isd_get_data(tag)?;
            let got = t.as_ref().map(tlv::tag_number);
            obs.is(
                &format!("GET DATA {tag:04X} ({name})"),
                sw == OK && got == Some(u32::from(tag)),
                format!(
                    "{sw:04X} {}",
                    got.map_or_else(|| "no TLV".into(), |g| format!("tag {g:X}"))
                ),
                format!("9000 tag {tag:X}"),
            );
        }
        let (_, sw) = self.isd_get_data(0x00FE)?;
        obs.sw("GET DATA 00FE (unknown)", sw, REF_NOT_FOUND);
        self.registry(&mut obs)?;
        Ok(obs.verdict())
    }

    /// GP-031's GET STATUS part: the ISD and the applet in the registry.
    fn registry(&mut self, obs: &mut Obs) -> Step<()> {
        let p = self.setup.profile;
        let isd = self.setup.spec.applet.card_manager.aid.bytes().to_vec();
        let aid = p.applet_aid.bytes().to_vec();
        for (p1, what, want_aid) in [(0x80, "ISD", &isd), (0x40, "applications", &aid)] {
            let (entries, sw) = self.isd_get_status(p1)?;
            obs.sw(&format!("GET STATUS {what}"), sw, OK);
            let named = entries.iter().any(|e| {
                tlv::tag_number(e) == 0xE3
                    && tlv::find_in(children(e), &[0x4F]).map(primitive)
                        == Some(want_aid.as_slice())
                    && (p1 != 0x40
                        || tlv::find_in(children(e), &[0x9F70])
                            .map(primitive)
                            .and_then(<[u8]>::first)
                            .is_some())
            });
            obs.is(
                &format!(
                    "GET STATUS {what}: E3 with 4F {}",
                    hex::encode_upper(want_aid)
                ),
                named,
                format!("{} entries", entries.len()),
                "an E3 naming it with its life cycle (9F70)",
            );
        }
        Ok(())
    }
}

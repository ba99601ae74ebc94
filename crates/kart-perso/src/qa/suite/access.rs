//! AC-012, AC-013, DATA-026 and DATA-027: who may read what, and what the
//! files hold.

use crate::read::CardIdentity;
use crate::security_object::SecurityObject;

use super::{
    read_binary, Obs, Step, Suite, Verdict, EF_CERT_AUTH, EF_CERT_SIGN, EF_FACE, EF_FINGER, EF_ID,
    EF_PIN_STATUS, EF_SOD, ID_PIN, OK, SECURITY, WRONG_OFFSET,
};

impl Suite<'_, '_> {
    pub(super) fn public_files(&mut self) -> Step<Verdict> {
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

    pub(super) fn protected_files(&mut self) -> Step<Verdict> {
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

    pub(super) fn read_with_pin(&mut self, fid: u16) -> Step<Vec<u8>> {
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

    pub(super) fn identity_data(&mut self) -> Step<Verdict> {
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

    pub(super) fn security_object(&mut self) -> Step<Verdict> {
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
}

//! AC-012, AC-013, DATA-026 and DATA-027: who may read what, and what the
//! files hold.

use kart_spec::Access;

use crate::read::CardIdentity;
use crate::security_object::SecurityObject;

use super::{
    read_binary, Obs, Step, Suite, Verdict, EF_ID, EF_SOD, ID_PIN, OK, SECURITY, WRONG_OFFSET,
};

impl Suite<'_, '_> {
    pub(super) fn public_files(&mut self) -> Step<Verdict> {
        self.select_applet()?;
        let mut obs = Obs::default();
        // The files the spec lets anyone read.
        let files: Vec<(String, u16)> = self
            .setup
            .spec
            .applet
            .files
            .iter()
            .filter(|f| f.read == Access::Always)
            .map(|f| (f.name.clone(), f.fid_u16()))
            .collect();
        for (name, fid) in &files {
            let (name, fid) = (name.as_str(), *fid);
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
        // The files the spec guards with the ID PIN; an optional one may be empty.
        let files: Vec<(String, u16, bool)> = self
            .setup
            .spec
            .applet
            .files
            .iter()
            .filter(|f| f.read == Access::IdPin)
            .map(|f| (f.name.clone(), f.fid_u16(), !f.mandatory))
            .collect();
        let mut obs = Obs::default();
        for (name, fid, _) in &files {
            self.select_ef(*fid)?;
            obs.sw(
                &format!("{name} without PIN"),
                self.sw(&read_binary(0, 0, 1))?,
                SECURITY,
            );
        }
        obs.sw("VERIFY ID_PIN", self.verify_pin(ID_PIN, &pin)?, OK);
        for (name, fid, optional) in &files {
            self.select_ef(*fid)?;
            let sw = self.sw(&read_binary(0, 0, 1))?;
            let empty_optional = *optional && sw == WRONG_OFFSET;
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
        // The security object covers every file personalization writes
        // (the spec's SC-written files) except itself.
        let covered: Vec<u16> = self
            .setup
            .spec
            .applet
            .files
            .iter()
            .filter(|f| f.write == Access::Sc && f.fid_u16() != EF_SOD)
            .map(kart_spec::FileSpec::fid_u16)
            .collect();
        let mut files = Vec::new();
        for fid in covered {
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

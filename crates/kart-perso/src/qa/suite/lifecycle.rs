//! ATOM-025, AC-014 and AC-015, and QA's own personalization of a blank card
//! between the two halves of AC-015.

use kart_apdu::gp::SecurityLevel;
use kart_apdu::StatusWord;
use kart_apdu::{Card, Command};
use zeroize::Zeroizing;

use crate::crn::crn_of;
use crate::personalize::{personalize, probe as probe_card, Job};
use crate::pin_mailer::Pins;

use super::{
    cmd, cselect_ef, csend, read_binary, Obs, Step, Suite, Verdict, CONDITIONS, EF_CERT_AUTH,
    EF_CERT_SIGN, EF_SOD, NO_CHECK, OK, WRONG_OFFSET,
};

impl Suite<'_, '_> {
    pub(super) fn torn_write(&mut self) -> Step<Verdict> {
        let (old, new) = ([0x11u8; 64], [0x22u8; 64]);
        self.write_in_channel(EF_CERT_SIGN, &old, "UPDATE BINARY of the old content")?;
        if !self.probe.target.tear_next_update() {
            return Ok(Verdict::Skip(
                "tearing a write needs the simulator's hook; a real card is not torn by QA".into(),
            ));
        }
        let torn = self.with_channel(SecurityLevel::C_MAC, |ch| {
            cselect_ef(ch, EF_CERT_SIGN)?;
            csend(ch, &cmd(0x00, 0xD6, 0, 0, &new)).map(|r| r.sw())
        });
        self.probe
            .target
            .reinsert()
            .map_err(|e| format!("the torn card did not come back: {e}"))?;
        self.select_applet()?;
        self.select_ef(EF_CERT_SIGN)?;
        let r = self.raw(&read_binary(0, 0, 64))?;
        let mut obs = Obs::default();
        obs.is(
            "the write",
            true,
            torn.map_or_else(|e| format!("torn ({e})"), |sw| format!("answered {sw:04X}")),
            "",
        );
        let whole = r.data() == old || r.data() == new;
        obs.is(
            "EF.CERT_SIGN after reinsertion",
            whole,
            if r.data() == old {
                "the old content".to_owned()
            } else if r.data() == new {
                "the new content".to_owned()
            } else {
                hex::encode_upper(r.data())
            },
            "the old or the new content",
        );
        Ok(obs.verdict())
    }

    /// SET STATUS to each of `targets` in a channel: each must answer 6985.
    pub(super) fn transitions(&mut self, obs: &mut Obs, targets: &[&str]) -> Step<()> {
        let codes: Vec<(String, u8)> = targets
            .iter()
            .filter_map(|t| u8::from_str_radix(t, 16).ok().map(|c| ((*t).to_owned(), c)))
            .collect();
        let sws = self.with_channel(SecurityLevel::C_MAC, |ch| {
            codes
                .iter()
                .map(|(_, c)| Ok(csend(ch, &Command::new(0x80, 0xF0, 0x40, *c))?.sw()))
                .collect::<Step<Vec<StatusWord>>>()
        })?;
        for ((name, _), sw) in codes.iter().zip(sws) {
            obs.sw(&format!("SET STATUS {name}"), sw, CONDITIONS);
        }
        Ok(())
    }

    pub(super) fn one_way(&mut self, mut obs: Obs) -> Step<Verdict> {
        let done: Vec<StatusWord> = self
            .probe
            .log
            .iter()
            .filter(|e| e.check == NO_CHECK && e.ins == 0xF0)
            .filter_map(|e| e.sw)
            .collect();
        obs.is(
            "personalization's SET STATUS 0F then 83",
            done == [OK, OK],
            format!("{done:04X?}"),
            "[9000, 9000]",
        );
        self.transitions(&mut obs, &["07", "0F", "83"])?;
        Ok(obs.verdict())
    }

    pub(super) fn erase_test_files(&mut self) -> Step<()> {
        self.with_channel(SecurityLevel::C_MAC, |ch| {
            for fid in [EF_CERT_AUTH, EF_CERT_SIGN, EF_SOD] {
                cselect_ef(ch, fid)?;
                let sw = csend(ch, &Command::new(0x00, 0x0E, 0, 0))?.sw();
                if sw != OK && sw != WRONG_OFFSET {
                    return Err(format!("ERASE BINARY of {fid:04X} answered {sw:04X}"));
                }
            }
            Ok(())
        })
    }

    pub(super) fn personalize(&mut self) -> Step<()> {
        let (setup, caps) = (self.setup, self.setup.profile.caps());
        let pins = Pins::generate(None).map_err(|e| e.to_string())?;
        let crn = crn_of(999_999_999);
        let job = Job::new(setup.record, &crn, &pins, setup.now.date());
        let mut card = Card::with_caps(&mut self.probe, caps);
        let info = probe_card(&mut card, setup.profile).map_err(|e| e.to_string())?;
        personalize(
            &mut card,
            setup.profile,
            setup.issuer,
            &info,
            &job,
            setup.now,
        )
        .map_err(|e| e.to_string())?;
        self.id_pin = Some(Zeroizing::new(pins.id_pin.expose().to_vec()));
        self.pins = Some(pins);
        Ok(())
    }

    pub(super) fn locked_refuses_writes(&mut self) -> Step<Verdict> {
        let crn = crn_of(999_999_999);
        let sws = self.with_channel(SecurityLevel::C_MAC, |ch| {
            cselect_ef(ch, EF_CERT_AUTH)?;
            let first = csend(
                ch,
                &Command::new(0x00, 0xB0, 0, 0)
                    .with_le(1)
                    .map_err(|e| e.to_string())?,
            )?;
            // Writes back the byte that is there: a card that wrongly accepts loses nothing.
            let same = first.data().first().copied().unwrap_or(0x30);
            Ok([
                csend(ch, &cmd(0x00, 0xD6, 0, 0, &[same]))?.sw(),
                csend(ch, &cmd(0x00, 0xDA, 0xDF, 0x72, crn.as_str().as_bytes()))?.sw(),
                csend(
                    ch,
                    &Command::new(0x00, 0x47, 0x80, 0x01)
                        .with_le(256)
                        .map_err(|e| e.to_string())?,
                )?
                .sw(),
                csend(ch, &Command::new(0x80, 0xF0, 0x40, 0x83))?.sw(),
            ])
        })?;
        let mut obs = Obs::default();
        for (what, sw) in [
            "UPDATE BINARY",
            "PUT DATA",
            "GENERATE ASYMMETRIC KEY PAIR",
            "SET STATUS",
        ]
        .iter()
        .zip(sws)
        {
            obs.sw(what, sw, CONDITIONS);
        }
        Ok(obs.verdict())
    }
}

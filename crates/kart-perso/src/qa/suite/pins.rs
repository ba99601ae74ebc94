//! PIN-016 to PIN-020: try counters, blocking, the PUK, the SIGN PIN.

use kart_apdu::StatusWord;
use zeroize::Zeroizing;

use crate::applet::PinRef;
use crate::pin_mailer::Secret;

use super::{
    apdu, tries, Obs, Step, Suite, Verdict, BLOCKED, ID_PIN, MAX_BLOCKING_TRIES, OK, SECURITY,
    SIGN_PIN,
};

impl Suite<'_, '_> {
    pub(super) fn wrong_pin(&self) -> Step<Zeroizing<Vec<u8>>> {
        let pin = self.id_pin.as_ref().ok_or("no ID PIN known")?;
        Ok(Zeroizing::new(
            pin.iter()
                .map(|d| b'0' + (d.wrapping_sub(b'0') + 1) % 10)
                .collect(),
        ))
    }

    /// The SIGN PIN set at personalization, when QA set it.
    pub(super) fn known_sign_pin(&self) -> Step<Secret> {
        let pins = self.pins.as_ref().ok_or("no SIGN PIN known")?;
        Ok(pins.sign_pin.clone())
    }

    /// The PUK set at personalization, when QA set it.
    fn known_puk(&self) -> Step<Secret> {
        let pins = self.pins.as_ref().ok_or("no PUK known")?;
        Ok(pins.puk.clone())
    }

    pub(super) fn max_tries(&self) -> u8 {
        self.setup
            .spec
            .applet
            .pin("ID_PIN")
            .map_or(3, |p| p.retries)
    }

    pub(super) fn restore_id_pin(&mut self) -> Step<()> {
        let pin = self.id_pin.clone().ok_or("no ID PIN known")?;
        self.verify_pin(ID_PIN, &pin).map(|_| ())
    }

    /// VERIFY without data: the ID PIN's retry status, changing nothing.
    fn id_pin_tries(&mut self) -> Step<StatusWord> {
        self.sw(&[0x00, 0x20, 0x00, ID_PIN])
    }

    pub(super) fn counter_query(&mut self) -> Step<Verdict> {
        let (wrong, max) = (self.wrong_pin()?, self.max_tries());
        self.select_applet()?;
        let mut obs = Obs::default();
        obs.sw("query", self.id_pin_tries()?, tries(max));
        obs.sw(
            "wrong PIN",
            self.verify_pin(ID_PIN, &wrong)?,
            tries(max - 1),
        );
        obs.sw("query", self.id_pin_tries()?, tries(max - 1));
        obs.sw("query again", self.id_pin_tries()?, tries(max - 1));
        self.restore_id_pin()?;
        Ok(obs.verdict())
    }

    pub(super) fn counter_survives_reset(&mut self) -> Step<Verdict> {
        let (wrong, max) = (self.wrong_pin()?, self.max_tries());
        self.select_applet()?;
        let mut obs = Obs::default();
        obs.sw(
            "wrong PIN",
            self.verify_pin(ID_PIN, &wrong)?,
            tries(max - 1),
        );
        let reset = self
            .probe
            .target
            .reset()
            .map_err(|e| format!("reset failed: {e}"))?;
        if !reset {
            self.restore_id_pin()?;
            return Ok(Verdict::Skip("the reader cannot reset the card".into()));
        }
        self.select_applet()?;
        obs.sw("query after reset", self.id_pin_tries()?, tries(max - 1));
        self.restore_id_pin()?;
        Ok(obs.verdict())
    }

    pub(super) fn counts_down(&mut self) -> Step<Verdict> {
        let (wrong, max) = (self.wrong_pin()?, self.max_tries());
        let right = self.id_pin.clone().ok_or("no ID PIN known")?;
        self.select_applet()?;
        let mut obs = Obs::default();
        for left in (0..max).rev() {
            obs.sw("wrong PIN", self.verify_pin(ID_PIN, &wrong)?, tries(left));
        }
        obs.sw(
            "right PIN on the blocked PIN",
            self.verify_pin(ID_PIN, &right)?,
            BLOCKED,
        );
        Ok(obs.verdict())
    }

    pub(super) fn puk_unblocks(&mut self) -> Step<Verdict> {
        let wrong = self.wrong_pin()?;
        let puk = self.known_puk()?;
        self.select_applet()?;
        let mut obs = Obs::default();
        let mut answers = Vec::new();
        while self.id_pin_tries()? != BLOCKED {
            if answers.len() == MAX_BLOCKING_TRIES {
                obs.is(
                    "blocking ID_PIN",
                    false,
                    format!(
                        "{} wrong PINs answered {}",
                        answers.len(),
                        answers.join(" ")
                    ),
                    "6983 after the last try",
                );
                return Ok(obs.verdict());
            }
            answers.push(format!("{:04X}", self.verify_pin(ID_PIN, &wrong)?));
        }
        let new = Secret::random_digits(6).map_err(|e| e.to_string())?;
        let mut data = Zeroizing::new(puk.expose().to_vec());
        data.extend_from_slice(&crate::applet::pin_block(PinRef::IdPin, new.expose()));
        obs.sw(
            "RESET RETRY COUNTER with the PUK and a new PIN",
            self.sw(&apdu(0x00, 0x2C, 0x00, ID_PIN, &data, None))?,
            OK,
        );
        obs.sw(
            "VERIFY with the new PIN",
            self.verify_pin(ID_PIN, new.expose())?,
            OK,
        );
        self.id_pin = Some(Zeroizing::new(new.expose().to_vec()));
        Ok(obs.verdict())
    }

    pub(super) fn sign_pin_each_time(&mut self) -> Step<Verdict> {
        let sign_pin = self.known_sign_pin()?;
        let digest: [u8; 32] = self.random()?;
        self.select_applet()?;
        let mut obs = Obs::default();
        obs.sw(
            "PSO without VERIFY",
            self.sign(0x2A, &digest)?.sw(),
            SECURITY,
        );
        obs.sw(
            "VERIFY SIGN_PIN",
            self.verify_pin(SIGN_PIN, sign_pin.expose())?,
            OK,
        );
        let sig = self.sign(0x2A, &digest)?;
        obs.sw("PSO after VERIFY", sig.sw(), OK);
        obs.sw("second PSO", self.sign(0x2A, &digest)?.sw(), SECURITY);
        Ok(obs.verdict())
    }
}

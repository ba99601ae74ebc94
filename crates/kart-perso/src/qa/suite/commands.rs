//! APDU-003 to APDU-008: instructions, classes, GET RESPONSE, length limits,
//! READ BINARY at the end of a file, chaining.

use kart_apdu::gp::SecurityLevel;
use kart_apdu::StatusWord;
use kart_spec::WrongLe;

use super::{
    apdu, cmd, cselect_ef, csend, csend_get_state, read_binary, update_binary, Obs, Step, Suite,
    Verdict, EF_CERT_AUTH, END_OF_FILE, OK, WRONG_LENGTH, WRONG_OFFSET,
};

impl Suite<'_, '_> {
    pub(super) fn unknown_instruction(&mut self) -> Step<Verdict> {
        self.select_applet()?;
        let r = self.raw(&[0x00, 0x7E, 0x00, 0x00])?;
        let mut obs = Obs::default();
        obs.sw("INS 7E", r.sw(), StatusWord::INS_NOT_SUPPORTED);
        obs.is("data", r.data().is_empty(), r.data().len(), 0);
        Ok(obs.verdict())
    }

    pub(super) fn unsupported_class(&mut self) -> Step<Verdict> {
        let aid = self.setup.profile.applet_aid.bytes().to_vec();
        let mut obs = Obs::default();
        obs.sw(
            "SELECT with CLA 40",
            self.sw(&apdu(0x40, 0xA4, 0x04, 0x0C, &aid, None))?,
            StatusWord::CLA_NOT_SUPPORTED,
        );
        Ok(obs.verdict())
    }

    pub(super) fn get_response(&mut self) -> Step<Verdict> {
        self.select_applet()?;
        let challenge: [u8; 16] = self.random()?;
        let first = self.raw(&apdu(0x00, 0x88, 0x00, 0x01, &challenge, Some(256)))?;
        let mut obs = Obs::default();
        let len = self.setup.profile.holder_key.signature_len();
        let signature = if self.setup.profile.quirks.get_response {
            // 61xx: xx bytes available, 00 for 256 or more (ISO 7816-4 §5.3.4).
            obs.sw(
                "INTERNAL AUTHENTICATE",
                first.sw(),
                StatusWord::bytes_available(u8::try_from(len % 256).unwrap_or(0)),
            );
            obs.is(
                "its data",
                first.data().is_empty(),
                first.data().len(),
                "none",
            );
            let rest = self.raw(&[0x00, 0xC0, 0x00, 0x00, (len & 0xFF) as u8])?;
            obs.sw("GET RESPONSE", rest.sw(), OK);
            rest
        } else {
            obs.sw("INTERNAL AUTHENTICATE", first.sw(), OK);
            first
        };
        obs.is(
            "signature bytes",
            signature.data().len() == len,
            signature.data().len(),
            len,
        );
        Ok(obs.verdict())
    }

    pub(super) fn length_limits(&mut self) -> Step<Verdict> {
        let limits = self.setup.profile.limits;
        self.select_applet()?;
        let mut obs = Obs::default();
        obs.sw("SELECT EF.CERT_AUTH", self.select_ef(EF_CERT_AUTH)?, OK);
        let max = limits.max_command_data;
        let fits = update_binary(&vec![0x5A; max], max > 255);
        let sw = self.sw(&fits)?;
        obs.is(
            &format!("UPDATE BINARY with {max} bytes"),
            sw != WRONG_LENGTH,
            format!("{sw:04X}"),
            "accepted (not 6700)",
        );
        let too_long = update_binary(&vec![0x5A; max + 1], true);
        let what = if limits.extended_length {
            format!("UPDATE BINARY with {} bytes", max + 1)
        } else {
            format!(
                "extended UPDATE BINARY with {} bytes to a short-only card",
                max + 1
            )
        };
        obs.sw(&what, self.sw(&too_long)?, WRONG_LENGTH);
        obs.sw(
            "EF.CERT_AUTH still empty (READ BINARY)",
            self.sw(&read_binary(0, 0, 1))?,
            WRONG_OFFSET,
        );
        Ok(obs.verdict())
    }

    pub(super) fn read_past_end(&mut self) -> Step<Verdict> {
        let content: Vec<u8> = (0..40).collect();
        self.write_in_channel(EF_CERT_AUTH, &content, "UPDATE BINARY in the channel")?;
        self.select_applet()?;
        self.select_ef(EF_CERT_AUTH)?;
        let mut obs = Obs::default();
        obs.sw(
            "READ BINARY at offset 40 = length",
            self.sw(&read_binary(0, 40, 10))?,
            WRONG_OFFSET,
        );
        let r = self.raw(&read_binary(0, 30, 20))?;
        match self.setup.profile.quirks.wrong_le {
            WrongLe::EndOfFile => {
                obs.sw("READ BINARY offset 30 Le 20", r.sw(), END_OF_FILE);
                obs.is(
                    "its data",
                    r.data() == &content[30..],
                    hex::encode_upper(r.data()),
                    hex::encode_upper(&content[30..]),
                );
            }
            WrongLe::ExactLe => obs.sw(
                "READ BINARY offset 30 Le 20",
                r.sw(),
                StatusWord::wrong_le(0x0A),
            ),
        }
        Ok(obs.verdict())
    }

    pub(super) fn chaining(&mut self) -> Step<Verdict> {
        let mut obs = Obs::default();
        if !self.setup.profile.limits.chaining {
            self.select_applet()?;
            self.select_ef(EF_CERT_AUTH)?;
            obs.sw(
                "UPDATE BINARY with CLA 10",
                self.sw(&apdu(0x10, 0xD6, 0, 0, &[1, 2, 3, 4], None))?,
                StatusWord::CHAINING_NOT_SUPPORTED,
            );
            return Ok(obs.verdict());
        }
        let (a, b) = ([0xA1u8; 16], [0xB2u8; 16]);
        let sws = self.with_channel(SecurityLevel::C_MAC, |ch| {
            cselect_ef(ch, EF_CERT_AUTH)?;
            let first = csend(ch, &cmd(0x10, 0xD6, 0, 0, &a))?.sw();
            let last = csend(ch, &cmd(0x00, 0xD6, 0, 0, &b))?.sw();
            let open = csend(ch, &cmd(0x10, 0xD6, 0, 0, &a))?.sw();
            let other = csend_get_state(ch)?;
            Ok([first, last, open, other])
        })?;
        obs.sw("first part (CLA 10)", sws[0], OK);
        obs.sw("last part (CLA 00)", sws[1], OK);
        obs.sw("another chain's first part", sws[2], OK);
        obs.sw(
            "GET DATA inside that chain",
            sws[3],
            StatusWord::LAST_COMMAND_OF_CHAIN_EXPECTED,
        );
        self.select_applet()?;
        self.select_ef(EF_CERT_AUTH)?;
        let r = self.raw(&read_binary(0, 0, 32))?;
        let want: Vec<u8> = a.iter().chain(&b).copied().collect();
        obs.is(
            "EF.CERT_AUTH holds both parts",
            r.data() == want.as_slice(),
            hex::encode_upper(r.data()),
            hex::encode_upper(&want),
        );
        Ok(obs.verdict())
    }
}

//! SC-009 to SC-011: plain writes refused, the channel at every level, wrong
//! cryptogram and wrong MAC.

use kart_apdu::gp::{ScpVersion, SecurityLevel};
use kart_apdu::StatusWord;
use kart_spec::Scp;

use super::{
    apdu, cselect_ef, csend_get_state, read_binary, Obs, Step, Suite, Tamper, Verdict,
    EF_CERT_AUTH, OK, SECURITY, WRONG_OFFSET,
};

impl Suite<'_, '_> {
    pub(super) fn plain_writes_refused(&mut self) -> Step<Verdict> {
        self.select_applet()?;
        let mut obs = Obs::default();
        self.select_ef(EF_CERT_AUTH)?;
        obs.sw(
            "UPDATE BINARY",
            self.sw(&apdu(0x00, 0xD6, 0, 0, &[0xDE, 0xAD], None))?,
            SECURITY,
        );
        obs.sw(
            "PUT DATA DF72",
            self.sw(&apdu(0x00, 0xDA, 0xDF, 0x72, b"0000000000", None))?,
            SECURITY,
        );
        obs.sw(
            "GENERATE ASYMMETRIC KEY PAIR",
            self.sw(&[0x00, 0x47, 0x80, 0x01, 0x00])?,
            SECURITY,
        );
        obs.sw(
            "SET STATUS 0F",
            self.sw(&[0x80, 0xF0, 0x40, 0x0F])?,
            SECURITY,
        );
        self.select_ef(EF_CERT_AUTH)?;
        obs.sw(
            "EF.CERT_AUTH still empty (READ BINARY)",
            self.sw(&read_binary(0, 0, 1))?,
            WRONG_OFFSET,
        );
        obs.sw(
            "CRN still unset (GET DATA DF72)",
            self.sw(&[0x00, 0xCA, 0xDF, 0x72, 0x00])?,
            StatusWord::REFERENCED_DATA_NOT_FOUND,
        );
        obs.sw(
            "no key (public key of AUTH_KEY)",
            self.sw(&[0x00, 0x47, 0x81, 0x01, 0x00])?,
            StatusWord::REFERENCED_DATA_NOT_FOUND,
        );
        Ok(obs.verdict())
    }

    pub(super) fn channel_levels(&mut self) -> Step<Verdict> {
        let sc = self.setup.profile.secure_channel;
        let mut levels = vec![SecurityLevel::C_MAC, SecurityLevel::C_DEC_C_MAC];
        // GP Amendment D: i bit 6 (20) R-MAC, bit 7 (40) R-ENC support.
        if sc.scp == Scp::Scp03 && sc.i & 0x20 != 0 {
            levels.push(SecurityLevel::C_DEC_C_MAC_R_MAC);
        }
        if sc.scp == Scp::Scp03 && sc.i & 0x40 != 0 {
            levels.push(SecurityLevel::FULL);
        }
        let want_scp = match sc.scp {
            Scp::Scp02 => ScpVersion::Scp02,
            Scp::Scp03 => ScpVersion::Scp03,
        };
        let mut obs = Obs::default();
        for level in levels {
            let what = format!("level {:02X}", level.bits());
            match self.with_channel(level, |ch| {
                let info = ch.info();
                let sw = csend_get_state(ch)?;
                Ok((info.version, info.key_version, sw))
            }) {
                Ok((v, kv, sw)) => obs.is(
                    &what,
                    v == want_scp && kv == sc.key_version && sw == OK,
                    format!("{v} key version {kv:02X}, secured GET DATA {sw:04X}"),
                    format!(
                        "{want_scp} key version {:02X}, secured GET DATA 9000",
                        sc.key_version
                    ),
                ),
                Err(e) => obs.is(&what, false, e, "opens"),
            }
        }
        Ok(obs.verdict())
    }

    pub(super) fn wrong_mac_and_cryptogram(&mut self) -> Step<Verdict> {
        let mut obs = Obs::default();
        obs.sw(
            "EXTERNAL AUTHENTICATE with a flipped cryptogram bit (valid C-MAC)",
            self.wrong_host_cryptogram(SecurityLevel::C_MAC)?,
            StatusWord::AUTHENTICATION_FAILED,
        );
        let (bad, after) = self.with_channel(SecurityLevel::C_MAC, |ch| {
            ch.inner_mut().transport_mut().tamper = Some(Tamper::LastByte);
            let bad = cselect_ef(ch, EF_CERT_AUTH)?.sw();
            let after = cselect_ef(ch, EF_CERT_AUTH)?.sw();
            Ok((bad, after))
        })?;
        obs.sw(
            "SELECT with a flipped C-MAC bit",
            bad,
            StatusWord::SM_DATA_OBJECTS_INCORRECT,
        );
        obs.sw("next secured command (channel closed)", after, SECURITY);
        Ok(obs.verdict())
    }
}

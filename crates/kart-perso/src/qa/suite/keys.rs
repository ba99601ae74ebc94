//! KEY-021 to KEY-023: public keys, signatures, certificates.

use kart_apdu::{Command, Response};

use crate::pki::{verify_card_signature, Certificate};

use super::{verifies, Obs, Step, Suite, Verdict, EF_CERT_AUTH, EF_CERT_SIGN, OK, SIGN_PIN};

impl Suite<'_, '_> {
    pub(super) fn read_point(&mut self, key: u8) -> Step<Result<Vec<u8>, String>> {
        let r = self.send(
            &Command::new(0x00, 0x47, 0x81, key)
                .with_le(256)
                .map_err(|e| e.to_string())?,
        )?;
        Ok(match r.data() {
            [0x7F, 0x49, 0x43, 0x86, 0x41, 0x04, ..] if r.data().len() == 70 && r.sw().0 == OK => {
                Ok(r.data()[5..].to_vec())
            }
            d => Err(format!("{} {:04X}", hex::encode_upper(d), r.sw().0)),
        })
    }

    pub(super) fn sign(&mut self, ins: u8, data: &[u8]) -> Step<Response> {
        let (p1, p2) = if ins == 0x88 {
            (0x00, 0x01)
        } else {
            (0x9E, 0x9A)
        };
        let c = Command::new(0x00, ins, p1, p2)
            .with_data(data)
            .and_then(|c| c.with_le(256))
            .map_err(|e| e.to_string())?;
        self.send(&c)
    }

    pub(super) fn public_keys(&mut self) -> Step<Verdict> {
        let sign_pin = self
            .pins
            .as_ref()
            .map(|p| p.sign_pin.clone())
            .ok_or("no SIGN PIN known")?;
        self.select_applet()?;
        let mut obs = Obs::default();
        for (i, (name, key)) in [("AUTH_KEY", 0x01u8), ("SIGN_KEY", 0x02)]
            .into_iter()
            .enumerate()
        {
            match self.read_point(key)? {
                Ok(point) => {
                    obs.is(
                        &format!("{name} public key"),
                        true,
                        "7F49 { 86 <65-byte uncompressed point> }",
                        "",
                    );
                    self.points[i] = Some(point);
                }
                Err(got) => obs.is(
                    &format!("{name} public key"),
                    false,
                    got,
                    "7F49 43 86 41 04 <X> <Y>",
                ),
            }
        }
        // ring refuses a point that is not on P-256 when it verifies, so a
        // signature from each key that verifies proves the point is on the curve.
        let message: [u8; 32] = self.random()?;
        let auth = self.sign(0x88, &message[..16])?;
        obs.is(
            "AUTH_KEY point on P-256 (its signature verifies)",
            verifies(self.points[0].as_deref(), &message[..16], auth.data()),
            format!("{:04X}", auth.sw().0),
            "a verifying signature",
        );
        obs.sw(
            "VERIFY SIGN_PIN",
            self.verify_pin(SIGN_PIN, sign_pin.expose())?,
            OK,
        );
        let sig = self.sign(0x2A, &message)?;
        obs.is(
            "SIGN_KEY point on P-256 (its signature verifies)",
            verifies(self.points[1].as_deref(), &message, sig.data()),
            format!("{:04X}", sig.sw().0),
            "a verifying signature",
        );
        Ok(obs.verdict())
    }

    pub(super) fn certificate(&mut self, fid: u16) -> Step<Result<Certificate, String>> {
        self.select_applet()?;
        Ok(match self.read_ef(fid)? {
            Ok(der) => Certificate::from_der(der).map_err(|e| e.to_string()),
            Err(sw) => Err(format!("reading {fid:04X} answered {sw:04X}")),
        })
    }

    pub(super) fn active_authentication(&mut self) -> Step<Verdict> {
        self.select_applet()?;
        let point = self.read_point(0x01)?;
        let challenge: [u8; 16] = self.random()?;
        self.select_applet()?;
        let r = self.sign(0x88, &challenge)?;
        let mut obs = Obs::default();
        obs.is(
            "INTERNAL AUTHENTICATE",
            r.sw().0 == OK && r.data().len() == 64,
            format!("{} bytes {:04X}", r.data().len(), r.sw().0),
            "64 bytes 9000",
        );
        match point {
            Ok(p) => obs.is(
                "signature with the AUTH_KEY public key",
                verifies(Some(&p), &challenge, r.data()),
                "checked",
                "verifies",
            ),
            Err(e) => obs.is("AUTH_KEY public key", false, e, "7F49 template"),
        }
        match self.certificate(EF_CERT_AUTH)? {
            Ok(cert) => match verify_card_signature(&cert, &challenge, r.data()) {
                Ok(()) => obs.is("signature with EF.CERT_AUTH's key", true, "verifies", ""),
                Err(e) => obs.is("signature with EF.CERT_AUTH's key", false, e, "verifies"),
            },
            Err(e) => obs.is("EF.CERT_AUTH", false, e, "an X.509 certificate"),
        }
        Ok(obs.verdict())
    }

    pub(super) fn certificates_match_keys(&mut self) -> Step<Verdict> {
        let mut obs = Obs::default();
        for (name, fid, key) in [
            ("EF.CERT_AUTH", EF_CERT_AUTH, 0x01u8),
            ("EF.CERT_SIGN", EF_CERT_SIGN, 0x02),
        ] {
            let cert = self.certificate(fid)?;
            self.select_applet()?;
            let point = self.read_point(key)?;
            match (cert, point) {
                (Ok(c), Ok(p)) => {
                    let in_cert = c.parsed().public_key().subject_public_key.data.to_vec();
                    obs.is(
                        &format!("{name} key = key {key:02X}"),
                        in_cert == p,
                        if in_cert == p {
                            "equal".to_owned()
                        } else {
                            hex::encode_upper(&in_cert)
                        },
                        hex::encode_upper(&p),
                    );
                }
                (Err(e), _) | (_, Err(e)) => obs.is(name, false, e, "certificate and public key"),
            }
        }
        Ok(obs.verdict())
    }
}

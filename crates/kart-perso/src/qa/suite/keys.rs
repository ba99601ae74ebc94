//! KEY-021 to KEY-023: public keys, signatures, certificates.

use kart_apdu::{Command, Response};

use crate::pki::{verify_card_signature, Certificate, HolderKey};

use super::{Obs, Step, Suite, Verdict, EF_CERT_AUTH, EF_CERT_SIGN, OK, SIGN_PIN};

impl Suite<'_, '_> {
    pub(super) fn read_key(&mut self, key: u8) -> Step<Result<HolderKey, String>> {
        let r = self.send(
            &Command::new(0x00, 0x47, 0x81, key)
                .with_le(256)
                .map_err(|e| e.to_string())?,
        )?;
        Ok(if r.sw() == OK {
            HolderKey::from_card(r.data())
                .map_err(|e| format!("{}: {e}", hex::encode_upper(r.data())))
        } else {
            Err(format!("{:04X}", r.sw()))
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
        let sign_pin = self.known_sign_pin()?;
        self.select_applet()?;
        let mut obs = Obs::default();
        for (i, (name, key)) in [("AUTH_KEY", 0x01u8), ("SIGN_KEY", 0x02)]
            .into_iter()
            .enumerate()
        {
            match self.read_key(key)? {
                Ok(public) => {
                    obs.is(
                        &format!("{name} public key"),
                        true,
                        format!("7F49 template, {}", public.algorithm()),
                        "",
                    );
                    self.keys[i] = Some(public);
                }
                Err(got) => obs.is(
                    &format!("{name} public key"),
                    false,
                    got,
                    "7F49 { 86 <04 X Y> } or 7F49 { 81 <modulus> 82 <exponent> }",
                ),
            }
        }
        // An EC point is checked on the curve when it is read; a signature
        // from each key that verifies proves the card holds its private key.
        let message: [u8; 32] = self.random()?;
        let auth = self.sign(0x88, &message[..16])?;
        obs.is(
            "AUTH_KEY signature verifies with its public key",
            verifies(self.keys[0].as_ref(), &message[..16], auth.data()),
            format!("{:04X}", auth.sw()),
            "a verifying signature",
        );
        obs.sw(
            "VERIFY SIGN_PIN",
            self.verify_pin(SIGN_PIN, sign_pin.expose())?,
            OK,
        );
        let sig = self.sign(0x2A, &message)?;
        obs.is(
            "SIGN_KEY signature verifies with its public key",
            verifies(self.keys[1].as_ref(), &message, sig.data()),
            format!("{:04X}", sig.sw()),
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
        let public = self.read_key(0x01)?;
        let challenge: [u8; 16] = self.random()?;
        self.select_applet()?;
        let r = self.sign(0x88, &challenge)?;
        let mut obs = Obs::default();
        let expected_len = public.as_ref().map_or(64, HolderKey::signature_len);
        obs.is(
            "INTERNAL AUTHENTICATE",
            r.sw() == OK && r.data().len() == expected_len,
            format!("{} bytes {:04X}", r.data().len(), r.sw()),
            format!("{expected_len} bytes 9000"),
        );
        match public {
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
            let public = self.read_key(key)?;
            match (cert, public) {
                (Ok(c), Ok(p)) => {
                    let in_cert = HolderKey::from_certificate(&c);
                    let same = in_cert.as_ref().is_ok_and(|k| *k == p);
                    obs.is(
                        &format!("{name} key = key {key:02X}"),
                        same,
                        match &in_cert {
                            Ok(_) if same => "equal".to_owned(),
                            Ok(k) => format!("a different {} key", k.algorithm()),
                            Err(e) => e.to_string(),
                        },
                        format!("the card's {} key", p.algorithm()),
                    );
                }
                (Err(e), _) | (_, Err(e)) => obs.is(name, false, e, "certificate and public key"),
            }
        }
        Ok(obs.verdict())
    }
}

/// Whether `signature` over `message` verifies with `key`.
fn verifies(key: Option<&HolderKey>, message: &[u8], signature: &[u8]) -> bool {
    key.is_some_and(|k| k.verifies(message, signature))
}

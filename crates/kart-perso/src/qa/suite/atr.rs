//! ATR-001 and ATR-002: the Answer To Reset against the profile.

use kart_spec::{AtrInfo, Protocol};

use super::{Obs, Step, Suite, Verdict};

impl Suite<'_, '_> {
    pub(super) fn atr_matches(&mut self, atr: Option<&[u8]>) -> Step<Verdict> {
        let Some(atr) = atr else {
            return Ok(Verdict::Skip("the reader does not report the ATR".into()));
        };
        let p = self.setup.profile;
        let mut obs = Obs::default();
        obs.is(
            "ATR",
            p.matches_atr(atr),
            hex::encode_upper(atr),
            format!("{} under mask {}", p.atr, p.atr_mask),
        );
        match AtrInfo::parse(atr) {
            Ok(_) => obs.is("structure and TCK", true, "valid", "valid"),
            Err(e) => obs.is("structure and TCK", false, e, "valid T0, TDi and TCK"),
        }
        Ok(obs.verdict())
    }

    pub(super) fn atr_protocol(
        &mut self,
        atr: Option<&[u8]>,
        used: Option<Protocol>,
    ) -> Step<Verdict> {
        let Some(atr) = atr else {
            return Ok(Verdict::Skip("the reader does not report the ATR".into()));
        };
        let want = self.setup.profile.protocol;
        let mut obs = Obs::default();
        let name = |t1: bool| if t1 { "T=1" } else { "T=0 only" };
        match AtrInfo::parse(atr) {
            Ok(info) => obs.is(
                "ATR offers",
                info.offers_t1 == (want == Protocol::T1),
                name(info.offers_t1),
                name(want == Protocol::T1),
            ),
            Err(e) => obs.is("ATR offers", false, e, name(want == Protocol::T1)),
        }
        if let Some(used) = used {
            obs.is(
                "protocol in use",
                used == want,
                format!("{used:?}"),
                format!("{want:?}"),
            );
        }
        Ok(obs.verdict())
    }
}

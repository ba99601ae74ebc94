//! RND-024 and TIME-028: GET CHALLENGE statistics and every round trip
//! against the latency model.

use std::collections::HashSet;

use crate::qa::randomness::{self, RUNS_BOUND};
use crate::qa::timing::{bound_us, command_name, model_us, HOST_ALLOWANCE_US};

use super::{Obs, Sample, Step, Suite, Verdict, CHALLENGES, CHALLENGE_LEN, OK};

impl Suite<'_, '_> {
    /// RND-024. A good generator fails the statistical tests now and then
    /// (that is what a significance level means), so a sample that fails
    /// only them is followed by a second, independent one, and the check
    /// fails when both do; repeats or a refused GET CHALLENGE fail at once.
    pub(super) fn randomness(&mut self) -> Step<Verdict> {
        self.select_applet()?;
        let first = match self.challenge_sample()? {
            Ok(obs) => obs,
            Err(refused) => return Ok(refused),
        };
        if first.obs.wrong.is_empty() || first.repeats {
            return Ok(first.obs.verdict());
        }
        let second = match self.challenge_sample()? {
            Ok(obs) => obs,
            Err(refused) => return Ok(refused),
        };
        let mut obs = second.obs;
        obs.seen.insert(
            0,
            "first sample failed the statistics, second sample".into(),
        );
        Ok(obs.verdict())
    }

    /// Asks [`CHALLENGES`] challenges and tests them; `Err` when the card refused one.
    pub(super) fn challenge_sample(&mut self) -> Step<Result<Sample, Verdict>> {
        let mut seen = HashSet::with_capacity(CHALLENGES);
        let mut all = Vec::with_capacity(CHALLENGES * CHALLENGE_LEN);
        for n in 0..CHALLENGES {
            let r = self.raw(&[0x00, 0x84, 0x00, 0x00, CHALLENGE_LEN as u8])?;
            if r.sw() != OK || r.data().len() != CHALLENGE_LEN {
                return Ok(Err(Verdict::Fail {
                    observed: format!("challenge {n}: {} bytes {:04X}", r.data().len(), r.sw()),
                    expected: format!("{CHALLENGE_LEN} bytes 9000"),
                }));
            }
            seen.insert(r.data().to_vec());
            all.extend_from_slice(r.data());
        }
        let mut obs = Obs::default();
        let repeats = CHALLENGES - seen.len();
        obs.is(
            &format!("repeats among {CHALLENGES} challenges"),
            repeats == 0,
            repeats,
            0,
        );
        let ones = randomness::ones(&all);
        obs.is(
            &format!(
                "ones among {} bits (SP 800-22 §2.1 frequency)",
                all.len() * 8
            ),
            (31_600..=32_400).contains(&ones),
            ones,
            "31600..32400",
        );
        match randomness::runs(&randomness::bits(&all)) {
            Some((v, stat)) => obs.is(
                "runs (SP 800-22 §2.3)",
                stat <= RUNS_BOUND,
                format!("V = {v}, statistic {stat:.3}"),
                format!("statistic ≤ {RUNS_BOUND} (P-value ≥ 0.001)"),
            ),
            None => obs.is(
                "runs (SP 800-22 §2.3)",
                false,
                "frequency prerequisite failed",
                "|π − ½| < 2/√n",
            ),
        }
        Ok(Ok(Sample {
            obs,
            repeats: repeats > 0,
        }))
    }

    pub(super) fn timing(&mut self) -> Step<Verdict> {
        let model = &self.setup.profile.latency;
        let timed: Vec<_> = self.probe.log.iter().filter(|e| e.sw.is_some()).collect();
        let over: Vec<_> = timed
            .iter()
            .filter(|e| e.micros > bound_us(model, e))
            .collect();
        let Some(worst) = timed.iter().max_by_key(|e| e.micros) else {
            return Ok(Verdict::Skip("no APDU was answered".into()));
        };
        let ms = |us: u64| format!("{:.1} ms", us as f64 / 1000.0);
        if over.is_empty() {
            return Ok(Verdict::Pass(format!(
                "{} APDUs, slowest {} {} (its bound {})",
                timed.len(),
                command_name(worst.ins),
                ms(worst.micros),
                ms(bound_us(model, worst))
            )));
        }
        let mut names: Vec<String> = over.iter().map(|e| command_name(e.ins)).collect();
        names.dedup();
        let slowest = over
            .iter()
            .max_by_key(|e| e.micros)
            .copied()
            .unwrap_or(worst);
        Ok(Verdict::Fail {
            observed: format!(
                "{} of {} APDUs over their bound ({}); slowest {} {} with model {}",
                over.len(),
                timed.len(),
                names.join(", "),
                command_name(slowest.ins),
                ms(slowest.micros),
                ms(model_us(model, slowest)),
            ),
            expected: format!(
                "every APDU within 2 × the profile's latency model + {} and within 5 s (GENERATE ASYMMETRIC KEY PAIR 30 s)",
                ms(HOST_ALLOWANCE_US)
            ),
        })
    }
}

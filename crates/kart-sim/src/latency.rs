//! The vendor's latency model: what each APDU would cost on the real card.
//!
//! The model's fixed costs come from [`kart_spec::Latency`]; on-card key
//! generation is drawn per key from its lognormal distribution with a seeded
//! generator, so two runs of the same cards take the same modelled time.

use kart_spec::latency::Work as CardWork;
use kart_spec::{KeyGeneration, Latency};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, LogNormal};
use std::time::Duration;

/// What the simulator does with the modelled time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LatencyMode {
    /// Answer at once; the model is not computed.
    #[default]
    Off,
    /// Answer at once and add the modelled time to a virtual clock
    /// ([`SimCard::modelled_time`](crate::SimCard::modelled_time)).
    Accounted,
    /// Sleep for the modelled time before answering.
    Real,
    /// Sleep for the modelled time divided by this number (at least 1)
    /// before answering: a floor of cards at a fraction of real time, so
    /// that what the cards share (a journal, a database) is stressed more.
    Scaled(u32),
}

impl LatencyMode {
    /// How long to sleep for an APDU whose model says `t`.
    pub(crate) fn sleep_for(self, t: Duration) -> Option<Duration> {
        match self {
            Self::Off | Self::Accounted => None,
            Self::Real => Some(t),
            Self::Scaled(n) => Some(t / n.max(1)),
        }
    }
}

/// Card work done by one APDU, beyond transfer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Work {
    /// What the model charges by size and count.
    pub card: CardWork,
    /// Key pairs generated.
    pub keygens: u32,
}

/// Draws key generation times: lognormal, capped, the card's first slower.
#[derive(Debug)]
pub(crate) struct KeygenClock {
    rng: StdRng,
    generated: u64,
}

impl KeygenClock {
    /// A clock drawing from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            generated: 0,
        }
    }

    /// The time of the next key generation under `model`.
    // Milliseconds, far below 2^52: the casts lose nothing.
    #[allow(clippy::cast_precision_loss)]
    pub(crate) fn draw(&mut self, model: &KeyGeneration) -> Duration {
        let median = model.median_ms as f64;
        let cap = model.cap_ms as f64;
        // σ is checked finite and ≥ 0 when the profile loads; a median of 0
        // has no logarithm: that chip takes no time.
        let ms = match LogNormal::new(median.max(f64::MIN_POSITIVE).ln(), model.sigma) {
            Ok(d) if median > 0.0 => d.sample(&mut self.rng).min(cap),
            _ => 0.0,
        };
        let factor = if self.generated == 0 {
            model.first_call_factor
        } else {
            1.0
        };
        self.generated += 1;
        Duration::from_secs_f64((ms * factor).max(0.0) / 1000.0)
    }
}

/// Modelled time of one APDU; draws a key generation time when it made keys.
pub(crate) fn apdu_time(
    model: &Latency,
    clock: &mut KeygenClock,
    command_bytes: usize,
    response_bytes: usize,
    work: Work,
) -> Duration {
    let keygen: Duration = (0..work.keygens).map(|_| clock.draw(&model.keygen)).sum();
    model.time(command_bytes, response_bytes, work.card, keygen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_sleeps_its_share_of_the_modelled_time() {
        let t = Duration::from_millis(400);
        assert_eq!(LatencyMode::Off.sleep_for(t), None);
        assert_eq!(LatencyMode::Accounted.sleep_for(t), None);
        assert_eq!(LatencyMode::Real.sleep_for(t), Some(t));
        assert_eq!(
            LatencyMode::Scaled(20).sleep_for(t),
            Some(Duration::from_millis(20))
        );
        // A zero divisor is taken as 1, never a division by zero.
        assert_eq!(LatencyMode::Scaled(0).sleep_for(t), Some(t));
    }

    fn rsa_like() -> KeyGeneration {
        // card-timings.md, current chips: median ≈ 4 s, σ ≈ 0.8, tail ≈ 21 s.
        KeyGeneration {
            median_ms: 4000,
            sigma: 0.8,
            cap_ms: 21_000,
            first_call_factor: 1.0,
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_times() {
        let k = rsa_like();
        let (mut a, mut b) = (KeygenClock::new(7), KeygenClock::new(7));
        let ta: Vec<Duration> = (0..20).map(|_| a.draw(&k)).collect();
        let tb: Vec<Duration> = (0..20).map(|_| b.draw(&k)).collect();
        assert_eq!(ta, tb);
        let mut c = KeygenClock::new(8);
        assert_ne!(ta, (0..20).map(|_| c.draw(&k)).collect::<Vec<_>>());
    }

    /// 4000 draws with a fixed seed: the median, p10 and p90 are within a
    /// few percent of the lognormal's (z = ∓1.2816: p10 = 4 s × e^(−1.025)
    /// = 1.435 s, p90 = 11.15 s), nothing is above the cap, and the cap
    /// holds the share of the tail above it (P(X > 21 s) = 1 − Φ(2.073) ≈ 1.9 %).
    #[test]
    fn draws_follow_the_configured_lognormal() {
        let k = rsa_like();
        let mut clock = KeygenClock::new(2026);
        let mut ms: Vec<f64> = (0..4000)
            .map(|_| clock.draw(&k).as_secs_f64() * 1000.0)
            .collect();
        ms.sort_by(f64::total_cmp);
        let q = |per_mille: usize| ms[ms.len() * per_mille / 1000];
        let near = |got: f64, want: f64, tol: f64| (got / want - 1.0).abs() < tol;
        assert!(near(q(500), 4000.0, 0.05), "median {}", q(500));
        assert!(near(q(100), 1435.0, 0.07), "p10 {}", q(100));
        assert!(near(q(900), 11_150.0, 0.07), "p90 {}", q(900));
        assert!(ms.iter().all(|&t| t <= 21_000.0));
        // 1.9 % of 4000 is 76 draws.
        let at_cap = ms.iter().filter(|&&t| t >= 21_000.0).count();
        assert!((40..120).contains(&at_cap), "{at_cap}");
    }

    #[test]
    fn a_cards_first_key_generation_is_slower_by_its_factor() {
        let k = KeyGeneration {
            median_ms: 100,
            sigma: 0.0,
            cap_ms: 1000,
            first_call_factor: 1.5,
        };
        let mut clock = KeygenClock::new(1);
        assert_eq!(clock.draw(&k), Duration::from_millis(150));
        assert_eq!(clock.draw(&k), Duration::from_millis(100));
    }
}

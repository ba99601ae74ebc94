//! Sanity tests of GET CHALLENGE output from NIST SP 800-22 rev. 1a
//! ("A Statistical Test Suite for Random and Pseudorandom Number Generators
//! for Cryptographic Applications"): the frequency (monobit) test, §2.1, and
//! the runs test, §2.3. They catch a broken generator, not a weak one.

// Bit counts stay far below 2^52: f64 holds them exactly.
#![allow(clippy::cast_precision_loss)]

/// `erfc(x) = 0.001` at this x: a runs statistic above it means a P-value
/// below 0.001, the significance level QA uses for the runs test, the
/// strictest SP 800-22 recommends (§4.2.1: α in 0.001..0.01), so that a batch
/// of good cards rarely sees a false alarm.
pub(crate) const RUNS_BOUND: f64 = 2.326_753_8;

/// Number of one bits.
pub(crate) fn ones(bytes: &[u8]) -> u64 {
    bytes.iter().map(|b| u64::from(b.count_ones())).sum()
}

/// The runs test statistic of SP 800-22 §2.3.4: `V_n(obs)` and
/// `|V_n(obs) − 2nπ(1−π)| / (2·√(2n)·π(1−π))`, whose erfc is the P-value.
/// `None` when the frequency prerequisite `|π − ½| < 2/√n` fails (the test
/// is then not applicable and counts as failed, §2.3.4 step 2).
pub(crate) fn runs(bits: &[bool]) -> Option<(u64, f64)> {
    let n = bits.len() as f64;
    if bits.is_empty() {
        return None;
    }
    let pi = bits.iter().filter(|b| **b).count() as f64 / n;
    if (pi - 0.5).abs() >= 2.0 / n.sqrt() {
        return None;
    }
    let v = 1 + bits.windows(2).filter(|w| w[0] != w[1]).count() as u64;
    let statistic =
        (v as f64 - 2.0 * n * pi * (1.0 - pi)).abs() / (2.0 * (2.0 * n).sqrt() * pi * (1.0 - pi));
    Some((v, statistic))
}

/// The bits of `bytes`, most significant first.
pub(crate) fn bits(bytes: &[u8]) -> Vec<bool> {
    bytes
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| b >> i & 1 == 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `erfc(x) = 0.01`: SP 800-22's usual significance level.
    const ERFC_AT_P_001: f64 = 1.821_386_4;

    fn parse(s: &str) -> Vec<bool> {
        s.bytes().map(|b| b == b'1').collect()
    }

    #[test]
    fn runs_matches_the_worked_example_of_sp_800_22_section_2_3_4() {
        // SP 800-22 §2.3.4: ε = 1001101011, n = 10, π = 3/5, V = 7,
        // P-value = erfc(|7 − 4.8| / (2·√20·0.24)) = 0.147232; the
        // statistic is 2.2 / 2.146625… = 1.024866…
        let (v, s) = runs(&parse("1001101011")).unwrap();
        assert_eq!(v, 7);
        assert!((s - 1.024_866).abs() < 1e-5, "{s}");
        assert!(s < ERFC_AT_P_001 && ERFC_AT_P_001 < RUNS_BOUND);
    }

    #[test]
    fn runs_refuses_a_biased_sequence_as_sp_800_22_says() {
        // π = 0.9 for n = 10: |π − ½| = 0.4 ≥ 2/√10 = 0.632? no: 0.4 < 0.632,
        // so use n = 100 with 90 ones: 0.4 ≥ 0.2, not applicable.
        let mut b = vec![true; 90];
        b.extend(vec![false; 10]);
        assert_eq!(runs(&b), None);
    }

    #[test]
    fn alternating_bits_have_too_many_runs() {
        let b: Vec<bool> = (0..1000).map(|i| i % 2 == 0).collect();
        let (v, s) = runs(&b).unwrap();
        assert_eq!(v, 1000);
        assert!(s > RUNS_BOUND);
    }

    #[test]
    fn bits_are_msb_first_and_ones_are_counted() {
        assert_eq!(bits(&[0b1000_0001]), parse("10000001"));
        assert_eq!(ones(&[0xFF, 0x01, 0x00]), 9);
    }
}

//! The real national ID card families, recognized by their ATR.
//!
//! From the public reverse-engineering of the issuer's SDK (INIDOSDK,
//! summarized in the project's `shared/real-card.md`): T=0-only ATRs begin
//! `3B7F94`, `3B7D95` or `3B7818`; T=1 ones begin `3BFF96` or `3BDB97`, carry
//! `8131FE` (TD1/TD2 announcing T=1 and its IFSC) and hold ASCII "IRN" in their
//! historical bytes. The SDK does not say which prefix belongs to which
//! vendor, so neither do we.

/// A real card family recognized from an ATR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// The ATR prefix that matched, in hex.
    pub prefix: &'static str,
    /// What the family is, for people.
    pub description: &'static str,
}

const T0_PREFIXES: [&str; 3] = ["3B7F94", "3B7D95", "3B7818"];
const T1_PREFIXES: [&str; 2] = ["3BFF96", "3BDB97"];

/// The real family `atr` belongs to, if any.
pub fn recognize(atr: &[u8]) -> Option<Family> {
    let hex = hex::encode_upper(atr);
    if let Some(prefix) = T0_PREFIXES.iter().find(|p| hex.starts_with(*p)) {
        return Some(Family {
            prefix,
            description: "national ID card, T=0-only family (ATR without TD1)",
        });
    }
    let irn = atr.windows(3).any(|w| w == b"IRN");
    T1_PREFIXES
        .iter()
        .find(|p| hex.starts_with(*p) && hex.contains("8131FE"))
        .map(|prefix| Family {
            prefix,
            description: if irn {
                "national ID card, T=1 family (\"IRN\" in the historical bytes)"
            } else {
                "national ID card, T=1 family"
            },
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atr(h: &str) -> Vec<u8> {
        hex::decode(h).unwrap()
    }

    #[test]
    fn t0_and_t1_families_are_recognized_by_prefix() {
        // Prefixes and the "IRN" marker as INIDOSDK's Report.md lists them
        // (summarized in shared/real-card.md); the bytes after each prefix
        // are filler, except the T=1 one, which is vendor-c's profile ATR.
        let t0 = recognize(&atr("3B7F9600008031B865B0850300EF120FFE829000")).is_none();
        assert!(t0, "3B7F96 is not one of the listed prefixes");
        assert_eq!(
            recognize(&atr("3B7D950000803180659000")).unwrap().prefix,
            "3B7D95"
        );
        let t1 = recognize(&atr("3BDB97008131FE4580318049524E2D43019000DC")).unwrap();
        assert_eq!(t1.prefix, "3BDB97");
        assert!(t1.description.contains("IRN"));
    }

    #[test]
    fn t1_prefix_without_t1_bytes_is_not_claimed() {
        assert_eq!(recognize(&atr("3BFF9600")), None);
        assert_eq!(recognize(&atr("3B8F8001804F0CA000000306")), None);
        assert_eq!(recognize(&[]), None);
    }
}

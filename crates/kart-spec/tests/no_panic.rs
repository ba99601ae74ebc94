//! ATRs from a card and profile files from a user are untrusted input:
//! parsing them returns an error, never panics.

use kart_spec::{AtrInfo, Profile, Spec};
use proptest::prelude::*;

proptest! {
    #[test]
    fn atr_parser_never_panics(atr in proptest::collection::vec(any::<u8>(), 0..40)) {
        let _ = AtrInfo::parse(&atr);
    }

    #[test]
    fn atr_matching_never_panics(atr in proptest::collection::vec(any::<u8>(), 0..40)) {
        let spec = Spec::embedded().unwrap();
        let matched = spec.profile_for_atr(&atr);
        if let Some(p) = matched {
            prop_assert_eq!(p.atr.bytes().len(), atr.len());
        }
    }

    /// Quoting and locating input in error messages never panics (any
    /// offset, multi-byte text) and stays bounded.
    #[test]
    fn quoting_input_never_panics_and_is_bounded(
        chars in proptest::collection::vec(any::<char>(), 0..300),
        offset in 0usize..1500,
    ) {
        let text: String = chars.into_iter().collect();
        let q = kart_spec::input::quote(&text);
        prop_assert!(q.chars().count() <= kart_spec::input::QUOTE_MAX_CHARS + 1);
        let p = kart_spec::input::position(&text, offset);
        prop_assert!(p.chars().count() <= kart_spec::input::QUOTE_MAX_CHARS + 60, "{}", p);
        let shown = kart_spec::input::printable(&text);
        prop_assert!(!shown.chars().any(|c| c.is_control() && c != '\n' && c != '\t'));
    }

    #[test]
    fn profile_loader_never_panics(text in "\\PC{0,200}") {
        let _ = Profile::from_toml_str("fuzz.toml", &text);
    }

    /// Every single-byte change to a real profile either still loads or
    /// gives an error naming the file.
    #[test]
    fn mutated_profiles_fail_cleanly(at in 0usize..2000, byte in any::<u8>()) {
        let text = include_str!("../../../applets-spec/profiles/vendor-b.toml");
        let mut bytes = text.as_bytes().to_vec();
        let at = at % bytes.len();
        bytes[at] = byte;
        if let Ok(t) = String::from_utf8(bytes) {
            if let Err(e) = Profile::from_toml_str("profiles/vendor-b.toml", &t) {
                prop_assert!(e.to_string().starts_with("profiles/vendor-b.toml: "), "{}", e);
            }
        }
    }
}

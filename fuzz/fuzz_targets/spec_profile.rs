//! Any text as a vendor profile (`profiles/*.toml`): no panic; a profile
//! that loads is usable (its caps and ATR matching do not panic either).
#![no_main]

use kart_spec::Profile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    match Profile::from_toml_str("profiles/fuzz.toml", text) {
        Ok(p) => {
            let caps = p.caps();
            assert!(caps.max_response_data <= p.limits.max_response_data);
            let _ = p.matches_atr(p.atr.bytes());
            let _ = p.matches_atr(&[0x3B]);
        }
        Err(e) => {
            // Every error names the file it came from.
            assert!(e.to_string().contains("profiles/fuzz.toml"), "{e}");
        }
    }
});

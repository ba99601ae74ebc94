//! Any bytes into `Command::decode`: no panic, and whatever decodes re-encodes
//! to the same bytes.
#![no_main]

use kart_apdu::Command;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    if let Ok(cmd) = Command::decode(raw) {
        assert_eq!(cmd.to_vec(), raw);
        let _ = format!("{cmd:?}");
    }
});

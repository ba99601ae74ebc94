//! Any bytes into the BER-TLV parser: no panic, no stack overflow, and what
//! parses re-encodes to the same bytes.
#![no_main]

use kart_apdu::tlv;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    if let Ok(objects) = tlv::parse_all(raw) {
        let again: Vec<u8> = objects.iter().flat_map(tlv::to_vec).collect();
        assert_eq!(again, raw);
        for o in &objects {
            let _ = tlv::find(o, &[tlv::tag_number(o), 0x86]);
        }
    }
});

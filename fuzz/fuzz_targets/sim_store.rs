//! A stored simulated card file (`kart-sim` `store`, `--sim-dir`): any bytes
//! give a profile id or a typed error naming the file, never a panic; what
//! validates names a profile of the spec.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match kart_sim::store::validate(data) {
        Ok(profile) => {
            let spec = kart_spec::Spec::embedded().expect("embedded spec");
            assert!(spec
                .profile(&profile)
                .or_else(|| spec.test_profile(&profile))
                .is_some());
        }
        Err(e) => assert!(
            e.to_string().contains("<stored card>") || e.to_string().contains("specification"),
            "{e}"
        ),
    }
});

//! Whatever bytes a terminal sends, the simulator answers with a status word
//! (or, when pulled, nothing) and never panics.

mod common;

use common::*;
use kart_sim::vpcd::VirtualCard;
use kart_sim::SimCard;
use proptest::prelude::*;

fn apdu() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Anything at all.
        proptest::collection::vec(any::<u8>(), 0..300),
        // Plausible headers of the applet's instructions with random bodies.
        (
            prop::sample::select(vec![0x00u8, 0x04, 0x10, 0x80, 0x84, 0x0C]),
            prop::sample::select(vec![
                0xA4u8, 0xB0, 0xD6, 0x0E, 0xCA, 0xDA, 0x20, 0x24, 0x2C, 0x47, 0x88, 0x2A, 0x84,
                0xC0, 0xF0, 0x50, 0x82,
            ]),
            any::<u8>(),
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), 0..40),
        )
            .prop_map(|(cla, ins, p1, p2, body)| {
                let mut v = vec![cla, ins, p1, p2];
                v.extend(body);
                v
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_apdu_sequence_gets_a_status_word(seq in proptest::collection::vec(apdu(), 1..40), profile_ix in 0usize..profile_ids().len()) {
        let p = profile(&profile_ids()[profile_ix]);
        let mut sim = SimCard::new(&p).unwrap().with_test_mode_writes();
        sim.process(&select_aid(p.applet_aid.bytes()));
        for a in &seq {
            let r = sim.process(a).expect("no fault injected, the card stays");
            prop_assert!(r.len() >= 2);
        }
    }
}

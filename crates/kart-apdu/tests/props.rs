//! Property tests: round trips for every valid command, and no panic on any input.

use kart_apdu::{
    tlv, Card, CardCaps, Command, Response, Transport, TransportError, MAX_GET_RESPONSES,
};
use proptest::prelude::*;

/// A card that answers with the given byte strings in turn, forever.
struct Nonsense(Vec<Vec<u8>>, usize);
impl Transport for Nonsense {
    fn transmit(&mut self, _apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        rx.clear();
        rx.extend_from_slice(&self.0[self.1 % self.0.len()]);
        self.1 += 1;
        Ok(())
    }
}

/// Any valid command: every case, short and extended, forced or not.
fn command() -> impl Strategy<Value = Command> {
    (
        any::<[u8; 4]>(),
        prop_oneof![Just(0usize), 1..=255usize, 256..=70_000usize],
        prop_oneof![
            Just(None),
            (1..=256u32).prop_map(Some),
            (257..=65_536u32).prop_map(Some)
        ],
        any::<bool>(),
        any::<u8>(),
    )
        .prop_map(|([cla, ins, p1, p2], nc, le, ext, fill)| {
            let nc = nc.min(65_535);
            let mut c = Command::new(cla, ins, p1, p2)
                .with_data(&vec![fill; nc])
                .unwrap();
            if let Some(ne) = le {
                c = c.with_le(ne).unwrap();
            }
            if ext {
                c = c.extended();
            }
            c
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_then_decode_is_identity(c in command()) {
        let raw = c.to_vec();
        prop_assert_eq!(raw.len(), c.encoded_len());
        let back = Command::decode(&raw).unwrap();
        prop_assert_eq!(&back, &c);
        prop_assert_eq!(back.to_vec(), raw);
    }

    #[test]
    fn decode_never_panics_and_accepts_only_what_reencodes(raw in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(c) = Command::decode(&raw) {
            prop_assert_eq!(c.to_vec(), raw);
        }
    }

    #[test]
    fn response_from_bytes_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        match Response::from_bytes(&raw) {
            Ok(r) => prop_assert_eq!(r.to_vec(), raw.clone()),
            Err(_) => prop_assert!(raw.len() < 2),
        }
    }

    #[test]
    fn tlv_parse_never_panics_and_accepts_only_what_reencodes(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(t) = tlv::parse(&raw) {
            prop_assert_eq!(tlv::to_vec(&t), raw.clone());
        }
        if let Ok(all) = tlv::parse_all(&raw) {
            let again: Vec<u8> = all.iter().flat_map(tlv::to_vec).collect();
            prop_assert_eq!(again, raw);
        }
    }

    #[test]
    fn tlv_built_objects_round_trip(tags in proptest::collection::vec(prop_oneof![Just(0x80u32), Just(0x5F20), Just(0x9F7F)], 1..8),
                                    len in 0..400usize) {
        let children = tags.iter().map(|t| tlv::primitive(*t, &vec![0xA5; len]).unwrap()).collect();
        let outer = tlv::constructed(0x7F49, children).unwrap();
        let bytes = tlv::to_vec(&outer);
        prop_assert_eq!(tlv::parse(&bytes).unwrap(), outer);
    }

    #[test]
    fn any_card_answers_give_a_result_in_bounded_round_trips(
        answers in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..8),
                (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..300))
                    .prop_map(|(n, mut d)| { d.extend_from_slice(&[0x61, n]); d }),
                any::<u8>().prop_map(|n| vec![0x6C, n]),
            ],
            1..6,
        ),
        chaining in any::<bool>(),
        nc in 0..600usize,
    ) {
        let caps = CardCaps { chaining, ..CardCaps::SHORT_ONLY };
        let mut card = Card::with_caps(Nonsense(answers, 0), caps);
        let cmd = Command::new(0x00, 0xDA, 0x00, 0x00).with_data(&vec![7; nc]).unwrap().with_le(256).unwrap();
        let _ = card.send(&cmd);
        let parts = nc.div_ceil(255).max(1) as u64;
        prop_assert!(card.counters().apdus <= parts + 1 + 2 * MAX_GET_RESPONSES as u64);
    }
}

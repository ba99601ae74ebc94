//! The `Card` session against scripted cards. The script is the unit's input:
//! each step names the exact APDU the session must send and the card's answer.

use kart_apdu::{
    Card, CardCaps, CardError, Command, Counters, Direction, Status, Transport, TransportError,
    MAX_GET_RESPONSES,
};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// A card that expects exactly the scripted APDUs, in order.
struct Script {
    steps: VecDeque<(Vec<u8>, Vec<u8>)>,
    caps: CardCaps,
}

impl Script {
    fn new(caps: CardCaps, steps: &[(&[u8], &[u8])]) -> Self {
        let steps = steps
            .iter()
            .map(|(c, r)| (c.to_vec(), r.to_vec()))
            .collect();
        Self { steps, caps }
    }
}

impl Transport for Script {
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        let (expected, answer) = self
            .steps
            .pop_front()
            .expect("session sent more APDUs than scripted");
        assert_eq!(hex(apdu), hex(&expected), "unexpected APDU");
        rx.clear();
        rx.extend_from_slice(&answer);
        Ok(())
    }
    fn capabilities(&self) -> CardCaps {
        self.caps
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(
                self.steps.is_empty(),
                "{} scripted APDUs never sent",
                self.steps.len()
            );
        }
    }
}

/// A card that answers every APDU with the same bytes.
struct Always(Vec<u8>, usize);
impl Transport for Always {
    fn transmit(&mut self, _apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        self.1 += 1;
        rx.clear();
        rx.extend_from_slice(&self.0);
        Ok(())
    }
}

fn hex(b: &[u8]) -> String {
    hex::encode_upper(b)
}

const CHAINING: CardCaps = CardCaps {
    chaining: true,
    ..CardCaps::SHORT_ONLY
};

// ISO 7816-4 §5.3.4 / §7.6.1: 61xx announces xx bytes for GET RESPONSE.
#[test]
fn get_response_chain_collects_all_parts() {
    let mut part1 = vec![0x11; 256];
    part1.extend_from_slice(&[0x61, 0x03]);
    let script = Script::new(
        CardCaps::SHORT_ONLY,
        &[
            (&[0x00, 0xB0, 0x00, 0x00, 0x00], &[0x61, 0x00]),
            // 6100 means 256 bytes (or more) are waiting: Le 00.
            (&[0x00, 0xC0, 0x00, 0x00, 0x00], &part1),
            (
                &[0x00, 0xC0, 0x00, 0x00, 0x03],
                &[0x22, 0x22, 0x22, 0x90, 0x00],
            ),
        ],
    );
    let mut card = Card::new(script);
    let data = card
        .send_ok(&Command::new(0x00, 0xB0, 0x00, 0x00).with_le(256).unwrap())
        .unwrap();
    assert_eq!(data.len(), 259);
    assert_eq!(&data[256..], &[0x22; 3]);
    assert_eq!(
        card.counters(),
        Counters {
            commands: 1,
            apdus: 3,
            bytes_sent: 15,
            bytes_received: 2 + 258 + 5,
            get_responses: 2,
            le_resends: 0,
            chained_parts: 0,
        }
    );
}

#[test]
fn get_response_keeps_the_logical_channel() {
    // CLA 03 = channel 3 (§5.4.2); 6Cxx exact-Le re-send also on GET RESPONSE.
    let script = Script::new(
        CardCaps::SHORT_ONLY,
        &[
            (&[0x03, 0xCA, 0x9F, 0x7F, 0x00], &[0x61, 0x02]),
            (&[0x03, 0xC0, 0x00, 0x00, 0x02], &[0x6C, 0x01]),
            (&[0x03, 0xC0, 0x00, 0x00, 0x01], &[0xAB, 0x90, 0x00]),
        ],
    );
    let mut card = Card::new(script);
    let data = card
        .send_ok(&Command::new(0x03, 0xCA, 0x9F, 0x7F).with_le(256).unwrap())
        .unwrap();
    assert_eq!(data, [0xAB]);
    assert_eq!(card.counters().le_resends, 1);
}

// 6Cxx: wrong Le, xx is the exact length; the command is sent once more.
#[test]
fn wrong_le_resends_with_the_exact_le() {
    let script = Script::new(
        CardCaps::SHORT_ONLY,
        &[
            (&[0x00, 0xB0, 0x00, 0x00, 0x10], &[0x6C, 0x04]),
            (&[0x00, 0xB0, 0x00, 0x00, 0x04], &[1, 2, 3, 4, 0x90, 0x00]),
        ],
    );
    let mut card = Card::new(script);
    let data = card
        .send_ok(&Command::new(0x00, 0xB0, 0x00, 0x00).with_le(16).unwrap())
        .unwrap();
    assert_eq!(data, [1, 2, 3, 4]);
    assert_eq!((card.counters().apdus, card.counters().le_resends), (2, 1));
}

// A command with secure messaging is never sent twice: its MAC is chained
// and the card has taken it, so the same bytes again are a replay (6988).
// Its 6Cxx goes back to the secure channel above, which wraps it anew.
#[test]
fn wrong_le_on_a_secured_command_is_returned_not_resent() {
    for cla in [0x04, 0x0C, 0x84, 0x60, 0xE0] {
        let apdu = [cla, 0xB0, 0x00, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x00];
        let script = Script::new(CardCaps::SHORT_ONLY, &[(&apdu, &[0x6C, 0x04])]);
        let mut card = Card::new(script);
        let cmd = Command::new(cla, 0xB0, 0x00, 0x00)
            .with_data(&[1, 2, 3, 4, 5, 6, 7, 8])
            .unwrap()
            .with_le(256)
            .unwrap();
        let r = card.send(&cmd).unwrap();
        assert_eq!(r.sw().status(), Status::WrongLe(4), "CLA {cla:02X}");
        assert_eq!(card.counters().le_resends, 0, "CLA {cla:02X}");
    }
}

#[test]
fn a_second_6cxx_is_returned_not_looped() {
    let mut card = Card::new(Always(vec![0x6C, 0x04], 0));
    let r = card
        .send(&Command::new(0x00, 0xB0, 0x00, 0x00).with_le(16).unwrap())
        .unwrap();
    assert_eq!(r.sw().status(), Status::WrongLe(4));
    assert_eq!(card.transport().1, 2);
}

// §5.4.1 command chaining: CLA b5 on all but the last part, Le only on the last.
#[test]
fn long_data_is_chained_when_the_card_supports_it() {
    let data: Vec<u8> = (0..=255u8).chain(0..44).collect(); // 300 bytes
    let mut first = vec![0x10, 0xDB, 0x3F, 0xFF, 0xFF];
    first.extend_from_slice(&data[..255]);
    let mut last = vec![0x00, 0xDB, 0x3F, 0xFF, 45];
    last.extend_from_slice(&data[255..]);
    last.push(0x00);
    let script = Script::new(
        CHAINING,
        &[(&first, &[0x90, 0x00]), (&last, &[0xEE, 0x90, 0x00])],
    );
    let mut card = Card::new(script);
    let cmd = Command::new(0x00, 0xDB, 0x3F, 0xFF)
        .with_data(&data)
        .unwrap()
        .with_le(256)
        .unwrap();
    assert_eq!(card.send_ok(&cmd).unwrap(), [0xEE]);
    let c = card.counters();
    assert_eq!((c.commands, c.apdus, c.chained_parts), (1, 2, 1));
    assert_eq!(c.bytes_sent, (first.len() + last.len()) as u64);
}

#[test]
fn chaining_respects_a_smaller_card_limit_and_stops_on_error() {
    let caps = CardCaps {
        max_command_data: 4,
        ..CHAINING
    };
    let script = Script::new(
        caps,
        &[
            (&[0x10, 0xDA, 0x00, 0x01, 4, 1, 2, 3, 4], &[0x90, 0x00]),
            // The card refuses the second part: the chain ends there.
            (&[0x10, 0xDA, 0x00, 0x01, 4, 5, 6, 7, 8], &[0x6A, 0x84]),
        ],
    );
    let mut card = Card::new(script);
    let cmd = Command::new(0x00, 0xDA, 0x00, 0x01)
        .with_data(&[1, 2, 3, 4, 5, 6, 7, 8, 9])
        .unwrap();
    let r = card.send(&cmd).unwrap();
    assert_eq!(r.sw().status(), Status::NotEnoughMemory);
    assert_eq!(card.counters().apdus, 2);
}

#[test]
fn long_data_goes_in_one_extended_apdu_when_the_card_allows() {
    let caps = CardCaps {
        extended_length: true,
        chaining: true,
        max_command_data: 4096,
        max_response_data: 4096,
    };
    let data = vec![0x5A; 1000];
    let mut apdu = vec![0x00, 0xDA, 0x00, 0x01, 0x00, 0x03, 0xE8];
    apdu.extend_from_slice(&data);
    apdu.extend_from_slice(&[0x10, 0x00]); // Ne 65536 lowered to the card's 4096
    let script = Script::new(caps, &[(&apdu, &[0x90, 0x00])]);
    let mut card = Card::new(script);
    let cmd = Command::new(0x00, 0xDA, 0x00, 0x01)
        .with_data(&data)
        .unwrap()
        .with_le(65_536)
        .unwrap();
    assert!(card.send_ok(&cmd).unwrap().is_empty());
    assert_eq!(card.counters().chained_parts, 0);
}

#[test]
fn large_ne_is_lowered_to_the_cards_response_limit() {
    let caps = CardCaps {
        extended_length: true,
        ..CardCaps::SHORT_ONLY
    };
    let script = Script::new(caps, &[(&[0x00, 0xB0, 0x00, 0x00, 0x00], &[0x90, 0x00])]);
    let mut card = Card::new(script);
    card.send_ok(
        &Command::new(0x00, 0xB0, 0x00, 0x00)
            .with_le(65_536)
            .unwrap(),
    )
    .unwrap();
}

#[test]
fn explicit_extended_form_is_kept_for_an_extended_card() {
    let caps = CardCaps {
        extended_length: true,
        ..CardCaps::SHORT_ONLY
    };
    let script = Script::new(
        caps,
        &[(&[0x00, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x10], &[0x90, 0x00])],
    );
    let mut card = Card::new(script);
    card.send_ok(
        &Command::new(0x00, 0xB0, 0x00, 0x00)
            .with_le(16)
            .unwrap()
            .extended(),
    )
    .unwrap();
}

#[test]
fn extended_request_is_sent_short_to_a_short_only_card() {
    let script = Script::new(
        CardCaps::SHORT_ONLY,
        &[(&[0x00, 0xB0, 0x00, 0x00, 0x00], &[0x90, 0x00])],
    );
    let mut card = Card::new(script);
    let cmd = Command::new(0x00, 0xB0, 0x00, 0x00)
        .with_le(4096)
        .unwrap()
        .extended();
    card.send_ok(&cmd).unwrap();
}

#[test]
fn long_data_without_chaining_or_extended_length_is_refused_unsent() {
    let mut card = Card::new(Script::new(CardCaps::SHORT_ONLY, &[]));
    let cmd = Command::new(0x00, 0xD6, 0x00, 0x00)
        .with_data(&[0; 256])
        .unwrap();
    assert_eq!(
        card.send(&cmd),
        Err(CardError::CommandTooLong { len: 256, max: 255 })
    );
    assert_eq!(card.counters().apdus, 0);
}

// Hostile cards get a bounded number of round trips and a typed error.
#[test]
fn endless_61xx_with_data_is_bounded_by_size() {
    let mut answer = vec![0; 256];
    answer.extend_from_slice(&[0x61, 0x00]);
    let mut card = Card::new(Always(answer, 0));
    let err = card
        .send(&Command::new(0x00, 0xB0, 0x00, 0x00).with_le(256).unwrap())
        .unwrap_err();
    assert!(
        matches!(err, CardError::ResponseTooLong(n) if n > 65_536),
        "{err:?}"
    );
    assert!(card.transport().1 <= 258);
}

#[test]
fn endless_61xx_without_data_is_bounded_by_rounds() {
    let mut card = Card::new(Always(vec![0x61, 0x10], 0));
    let err = card
        .send(&Command::new(0x00, 0xB0, 0x00, 0x00).with_le(16).unwrap())
        .unwrap_err();
    assert_eq!(err, CardError::ResponseTooLong(0));
    assert_eq!(card.transport().1, 1 + MAX_GET_RESPONSES);
}

#[test]
fn a_one_byte_answer_is_a_malformed_response() {
    let mut card = Card::new(Always(vec![0x90], 0));
    let err = card
        .send(&Command::new(0x00, 0xA4, 0x04, 0x00))
        .unwrap_err();
    assert_eq!(err, CardError::MalformedResponse(1));
    assert!(err.to_string().contains("reset the card"));
}

#[test]
fn transport_errors_pass_through() {
    struct Gone;
    impl Transport for Gone {
        fn transmit(&mut self, _: &[u8], _: &mut Vec<u8>) -> Result<(), TransportError> {
            Err(TransportError::CardRemoved)
        }
    }
    let mut card = Card::new(Gone);
    let err = card
        .send(&Command::new(0x00, 0xA4, 0x04, 0x00))
        .unwrap_err();
    assert_eq!(err, CardError::Transport(TransportError::CardRemoved));
}

// A sensitive command's data never reaches the trace hook or its text.
#[test]
fn trace_redacts_pin_bytes() {
    let script = Script::new(
        CardCaps::SHORT_ONLY,
        &[
            (
                &[
                    0x00, 0x20, 0x00, 0x81, 0x06, 0x39, 0x38, 0x37, 0x36, 0x35, 0x34,
                ],
                &[0x61, 0x02],
            ),
            (&[0x00, 0xC0, 0x00, 0x00, 0x02], &[0x55, 0x66, 0x90, 0x00]),
            (&[0x00, 0xB0, 0x00, 0x00, 0x01], &[0x77, 0x90, 0x00]),
        ],
    );
    let lines = Arc::new(Mutex::new(Vec::new()));
    let raw = Arc::new(Mutex::new(Vec::new()));
    let mut card = Card::new(script);
    let (l, r) = (lines.clone(), raw.clone());
    card.set_trace(Some(Box::new(move |ev| {
        l.lock().unwrap().push(ev.to_string());
        r.lock().unwrap().extend_from_slice(ev.bytes);
        assert_eq!(
            ev.direction == Direction::Command,
            ev.to_string().starts_with(">>")
        );
    })));
    let verify = Command::new(0x00, 0x20, 0x00, 0x81)
        .with_data(b"987654")
        .unwrap()
        .sensitive();
    card.send_ok(&verify).unwrap();
    card.send_ok(&Command::new(0x00, 0xB0, 0x00, 0x00).with_le(1).unwrap())
        .unwrap();
    let lines = lines.lock().unwrap().clone();
    assert_eq!(
        lines,
        [
            ">> 00200081 <7 bytes redacted>",
            "<< <0 bytes redacted> 6102",
            ">> 00C00000 <1 bytes redacted>",
            "<< <2 bytes redacted> 9000",
            ">> 00B0000001",
            "<< 779000",
        ]
    );
    let raw = hex(&raw.lock().unwrap());
    assert!(
        !raw.contains("393837363534") && !raw.contains("5566"),
        "{raw}"
    );
}

// A Card is itself a Transport delivering complete responses.
#[test]
fn card_stacks_as_a_transport() {
    let script = Script::new(
        CardCaps::SHORT_ONLY,
        &[
            (&[0x00, 0x84, 0x00, 0x00, 0x08], &[0x61, 0x08]),
            (
                &[0x00, 0xC0, 0x00, 0x00, 0x08],
                &[1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00],
            ),
        ],
    );
    let mut inner = Card::new(script);
    let mut rx = Vec::new();
    inner
        .transmit(&[0x00, 0x84, 0x00, 0x00, 0x08], &mut rx)
        .unwrap();
    assert_eq!(rx, [1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00]);
    assert!(inner.transmit(&[0x00, 0x84], &mut rx).is_err());
}

//! Host side against card side: every protocol, key size and security level,
//! stacked as `Card<SecureChannel<Card<Sim>>>`, plus the ways a channel must
//! fail (tampering, wrong keys, replay, reordering, blocked keys).

use kart_apdu::gp::card::{CardConfig, CardSecureChannel};
use kart_apdu::gp::crypto::{aes_cmac, scp03_kdf};
use kart_apdu::gp::{
    diversify, Diversification, GpError, KeySet, ScpParams, ScpVersion, SecureChannel,
    SecurityLevel,
};
use kart_apdu::{Card, CardCaps, Command, Response, StatusWord, Transport, TransportError};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("hex")
}

/// A simulated card: the GP card side in front of an applet that echoes the
/// command data, answers INS `EE` with `6A82`, and records what it received.
struct Sim {
    gp: CardSecureChannel,
    caps: CardCaps,
    /// Answer with `61xx` and wait for GET RESPONSE, as a T=0 card does.
    t0: bool,
    pending: Vec<u8>,
    /// Flip the last byte of the next secured command before checking it.
    tamper_next: bool,
    /// Lose the next secured command (answer 9000 without processing it).
    lose_next: bool,
    /// Plain commands the applet processed.
    applet: Vec<Command>,
    /// Raw secured commands as received.
    wire: Vec<Vec<u8>>,
}

impl Sim {
    fn new(gp: CardSecureChannel) -> Self {
        Self {
            gp,
            caps: CardCaps::SHORT_ONLY,
            t0: false,
            pending: Vec::new(),
            tamper_next: false,
            lose_next: false,
            applet: Vec::new(),
            wire: Vec::new(),
        }
    }

    fn answer(&mut self, apdu: &[u8]) -> Response {
        let Ok(cmd) = Command::decode(apdu) else {
            return Response::new(vec![], StatusWord(0x6700));
        };
        if cmd.ins() == 0xC0 && cmd.cla() == 0x00 {
            let data = std::mem::take(&mut self.pending);
            return Response::new(data, StatusWord::SUCCESS);
        }
        match cmd.ins() {
            0x50 => match self.gp.initialize_update(&cmd, |c| c.fill(0x5A)) {
                Ok(d) => Response::new(d, StatusWord::SUCCESS),
                Err(sw) => Response::new(vec![], sw),
            },
            0x82 => Response::new(
                vec![],
                self.gp
                    .external_authenticate(&cmd)
                    .err()
                    .unwrap_or(StatusWord::SUCCESS),
            ),
            _ => {
                let mut raw = apdu.to_vec();
                self.wire.push(raw.clone());
                if std::mem::take(&mut self.lose_next) {
                    return Response::new(vec![], StatusWord::SUCCESS);
                }
                if std::mem::take(&mut self.tamper_next) {
                    let n = raw.len() - 1;
                    raw[n] ^= 0x01;
                }
                match self.gp.unwrap_command(&raw) {
                    Ok(plain) => {
                        let resp = if plain.ins() == 0xEE {
                            Response::new(vec![], StatusWord::FILE_NOT_FOUND)
                        } else if plain.le().is_some() {
                            Response::new(plain.data().to_vec(), StatusWord::SUCCESS)
                        } else {
                            Response::new(vec![], StatusWord::SUCCESS)
                        };
                        self.applet.push(plain);
                        self.gp.wrap_response(resp)
                    }
                    Err(sw) => Response::new(vec![], sw),
                }
            }
        }
    }
}

impl Transport for Sim {
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        let resp = self.answer(apdu);
        *rx = if self.t0 && !resp.data().is_empty() && apdu.get(1) != Some(&0xC0) {
            let n = resp.data().len();
            self.pending = resp.to_vec()[..n].to_vec();
            // T=0: the status of a case-4 command with data is 61xx.
            vec![0x61, n as u8]
        } else {
            resp.to_vec()
        };
        Ok(())
    }
    fn capabilities(&self) -> CardCaps {
        self.caps
    }
}

type Stack = Card<SecureChannel<Card<Sim>>>;

fn keys(len: usize) -> KeySet {
    let enc: Vec<u8> = (0..len as u8).collect();
    let mac: Vec<u8> = (0..len as u8).map(|b| b ^ 0x55).collect();
    let dek: Vec<u8> = (0..len as u8).map(|b| b ^ 0xAA).collect();
    KeySet::new(&enc, &mac, &dek, 0x30).unwrap()
}

fn config(version: ScpVersion) -> CardConfig {
    match version {
        ScpVersion::Scp02 => CardConfig::scp02([7; 10]),
        ScpVersion::Scp03 => CardConfig::scp03([7; 10]),
    }
}

fn open(sim: Sim, keys: &KeySet, level: SecurityLevel) -> Result<Stack, GpError> {
    let ch = SecureChannel::open(Card::new(sim), keys, &ScpParams::default(), level)?;
    Ok(Card::new(ch))
}

fn sim_of(card: &mut Stack) -> &mut Sim {
    card.transport_mut().inner_mut().transport_mut()
}

const LEVELS: [SecurityLevel; 6] = [
    SecurityLevel::NONE,
    SecurityLevel::C_MAC,
    SecurityLevel::C_DEC_C_MAC,
    SecurityLevel::C_MAC_R_MAC,
    SecurityLevel::C_DEC_C_MAC_R_MAC,
    SecurityLevel::FULL,
];
const SETUPS: [(ScpVersion, usize); 4] = [
    (ScpVersion::Scp02, 16),
    (ScpVersion::Scp03, 16),
    (ScpVersion::Scp03, 24),
    (ScpVersion::Scp03, 32),
];

fn exercise(card: &mut Stack, label: &str) {
    let mut expected = Vec::new();
    for len in [0usize, 1, 7, 8, 15, 16, 17, 31, 32, 100, 200] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        for le in [None, Some(256)] {
            let mut cmd = Command::new(0x80, 0xCA, 0x12, 0x34)
                .with_data(&data)
                .unwrap();
            if let Some(le) = le {
                cmd = cmd.with_le(le).unwrap();
            }
            let resp = card
                .send(&cmd)
                .unwrap_or_else(|e| panic!("{label}: len {len} le {le:?}: {e}"));
            assert_eq!(resp.sw(), StatusWord::SUCCESS, "{label}: len {len}");
            let echoed: &[u8] = if le.is_some() { &data } else { &[] };
            assert_eq!(resp.data(), echoed, "{label}: len {len} le {le:?}");
            expected.push((data.clone(), le));
        }
    }
    // An error status passes through every level.
    let err = card
        .send(&Command::new(0x80, 0xEE, 0, 0).with_le(256).unwrap())
        .unwrap();
    assert_eq!(err.sw(), StatusWord::FILE_NOT_FOUND, "{label}");
    let applet = &sim_of(card).applet;
    assert_eq!(applet.len(), expected.len() + 1, "{label}");
    for (got, (data, le)) in applet.iter().zip(&expected) {
        assert_eq!(
            (got.cla(), got.ins(), got.p1(), got.p2()),
            (0x80, 0xCA, 0x12, 0x34),
            "{label}: CLA bit 04 stripped"
        );
        assert_eq!(
            got.data(),
            &data[..],
            "{label}: plain data reaches the applet"
        );
        assert_eq!(got.le().is_some(), le.is_some(), "{label}");
    }
}

#[test]
fn every_protocol_key_size_and_level_round_trips() {
    for (version, len) in SETUPS {
        for level in LEVELS {
            let label = format!("{version} AES/3DES-{} level {:02X}", len * 8, level.bits());
            let k = keys(len);
            let gp = CardSecureChannel::new(k.clone(), config(version)).unwrap();
            let result = open(Sim::new(gp), &k, level);
            if version == ScpVersion::Scp02 && level.r_mac() {
                assert!(matches!(result, Err(GpError::Unsupported(_))), "{label}");
                continue;
            }
            let mut card = result.unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(card.transport().level(), level);
            assert_eq!(card.transport().info().version, version);
            assert_eq!(sim_of(&mut card).gp.level(), Some(level));
            exercise(&mut card, &label);
            // C-DEC really hides the data on the wire.
            let secret = b"sixteen byte pin";
            card.send(&Command::new(0x80, 0xCA, 0, 0).with_data(secret).unwrap())
                .unwrap();
            let wire = sim_of(&mut card).wire.last().unwrap().clone();
            let visible = wire.windows(secret.len()).any(|w| w == secret);
            assert_eq!(
                visible,
                !level.c_dec(),
                "{label}: plaintext on the wire iff no C-DEC"
            );
        }
    }
}

#[test]
fn t0_card_61xx_is_resolved_under_the_channel() {
    for (version, len) in SETUPS {
        let k = keys(len);
        let mut sim = Sim::new(CardSecureChannel::new(k.clone(), config(version)).unwrap());
        sim.t0 = true;
        let level = if version == ScpVersion::Scp02 {
            SecurityLevel::C_DEC_C_MAC
        } else {
            SecurityLevel::FULL
        };
        let mut card = open(sim, &k, level).unwrap();
        exercise(&mut card, &format!("T=0 {version}-{len}"));
        assert!(card.transport_mut().inner_mut().counters().get_responses > 0);
    }
}

#[test]
fn long_commands_are_chained_before_wrapping_and_every_part_fits() {
    for (version, len) in SETUPS {
        for level in [SecurityLevel::C_MAC, SecurityLevel::C_DEC_C_MAC] {
            let k = keys(len);
            let mut sim = Sim::new(CardSecureChannel::new(k.clone(), config(version)).unwrap());
            sim.caps = CardCaps {
                chaining: true,
                ..CardCaps::SHORT_ONLY
            };
            let mut card = open(sim, &k, level).unwrap();
            let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
            let resp = card
                .send(
                    &Command::new(0x80, 0xE2, 0x00, 0x00)
                        .with_data(&data)
                        .unwrap(),
                )
                .unwrap();
            assert!(resp.is_success());
            let sim = sim_of(&mut card);
            assert!(
                sim.wire.iter().all(|apdu| apdu.len() <= 5 + 255),
                "every wrapped part is a short APDU"
            );
            let parts: Vec<u8> = sim.applet.iter().flat_map(|c| c.data().to_vec()).collect();
            assert_eq!(
                parts, data,
                "{version}-{len} {level:?}: the parts reassemble"
            );
            assert!(sim.applet[0].cla() & 0x10 != 0, "chaining bit kept");
            assert_eq!(sim.applet.last().unwrap().cla() & 0x10, 0);
        }
    }
}

#[test]
fn capabilities_reserve_the_mac_and_padding() {
    let expect = [
        (ScpVersion::Scp02, SecurityLevel::C_MAC, 247),
        (ScpVersion::Scp02, SecurityLevel::C_DEC_C_MAC, 239),
        (ScpVersion::Scp03, SecurityLevel::C_MAC, 247),
        (ScpVersion::Scp03, SecurityLevel::C_DEC_C_MAC, 239),
        (ScpVersion::Scp03, SecurityLevel::NONE, 255),
    ];
    for (version, level, max) in expect {
        let k = keys(16);
        let card = open(
            Sim::new(CardSecureChannel::new(k.clone(), config(version)).unwrap()),
            &k,
            level,
        )
        .unwrap();
        assert_eq!(
            card.transport().capabilities().max_command_data,
            max,
            "{version} {level:?}"
        );
    }
}

#[test]
fn tampered_command_mac_is_refused_with_6988_and_closes_the_channel() {
    for (version, len) in SETUPS {
        let k = keys(len);
        let mut card = open(
            Sim::new(CardSecureChannel::new(k.clone(), config(version)).unwrap()),
            &k,
            SecurityLevel::C_DEC_C_MAC,
        )
        .unwrap();
        let cmd = Command::new(0x80, 0xCA, 0, 0).with_data(b"abc").unwrap();
        sim_of(&mut card).tamper_next = true;
        assert_eq!(
            card.send(&cmd).unwrap().sw(),
            StatusWord(0x6988),
            "{version}"
        );
        assert!(!sim_of(&mut card).gp.is_open(), "card closed the channel");
        assert_eq!(
            card.send(&cmd).unwrap().sw(),
            StatusWord(0x6982),
            "no channel any more"
        );
        assert!(
            sim_of(&mut card).applet.is_empty(),
            "the applet never saw a forged command"
        );
    }
}

#[test]
fn replayed_command_is_refused_with_6988() {
    for (version, len) in SETUPS {
        let k = keys(len);
        let mut card = open(
            Sim::new(CardSecureChannel::new(k.clone(), config(version)).unwrap()),
            &k,
            SecurityLevel::C_MAC,
        )
        .unwrap();
        let cmd = Command::new(0x80, 0xCA, 0, 0)
            .with_data(b"pay 100")
            .unwrap();
        card.send(&cmd).unwrap();
        card.send(&cmd).unwrap();
        let sim = sim_of(&mut card);
        let first = sim.wire[0].clone();
        assert_eq!(
            sim.gp.unwrap_command(&first),
            Err(StatusWord(0x6988)),
            "{version}"
        );
        assert!(!sim.gp.is_open());
        assert_eq!(sim.applet.len(), 2);
    }
}

#[test]
fn lost_command_puts_the_next_one_out_of_order_and_it_is_refused() {
    for (version, len) in SETUPS {
        for level in [SecurityLevel::C_MAC, SecurityLevel::C_DEC_C_MAC] {
            let k = keys(len);
            let mut card = open(
                Sim::new(CardSecureChannel::new(k.clone(), config(version)).unwrap()),
                &k,
                level,
            )
            .unwrap();
            let cmd = Command::new(0x80, 0xCA, 0, 0).with_data(b"step").unwrap();
            sim_of(&mut card).lose_next = true;
            card.send(&cmd).unwrap();
            assert_eq!(
                card.send(&cmd).unwrap().sw(),
                StatusWord(0x6988),
                "{version} {level:?}"
            );
        }
    }
}

#[test]
fn plain_command_inside_a_mac_session_is_refused_with_6982() {
    let k = keys(16);
    let mut gp = CardSecureChannel::new(k.clone(), config(ScpVersion::Scp03)).unwrap();
    let other = CardSecureChannel::new(k.clone(), config(ScpVersion::Scp03)).unwrap();
    let mut card = open(Sim::new(other), &k, SecurityLevel::C_MAC).unwrap();
    let sim = sim_of(&mut card);
    assert_eq!(
        sim.gp.unwrap_command(&h("80CA000000")),
        Err(StatusWord(0x6982))
    );
    assert!(!sim.gp.is_open());
    // With no channel, plain commands pass and secured ones are refused.
    assert!(gp.unwrap_command(&h("80CA000000")).is_ok());
    assert_eq!(
        gp.unwrap_command(&h("84CA000008 0102030405060708")),
        Err(StatusWord(0x6982))
    );
}

#[test]
fn wrong_keys_fail_on_the_card_cryptogram_and_cost_no_retry() {
    for (version, len) in SETUPS {
        let k = keys(len);
        let gp = CardSecureChannel::new(k.clone(), config(version)).unwrap();
        let wrong = KeySet::from_master(&vec![0x42; len], 0x30).unwrap();
        let err = SecureChannel::open(
            Card::new(Sim::new(gp)),
            &wrong,
            &ScpParams::default(),
            SecurityLevel::C_MAC,
        )
        .unwrap_err();
        assert_eq!(err.error, GpError::CardCryptogramMismatch, "{version}");
        let mut inner = err.transport;
        assert_eq!(
            inner.transport().gp.failures_left(),
            10,
            "no EXTERNAL AUTHENTICATE was sent"
        );
        // The transport came back intact: the right keys still open a channel on it.
        inner.transport_mut().applet.clear();
        assert!(
            SecureChannel::open(inner, &k, &ScpParams::default(), SecurityLevel::C_MAC).is_ok()
        );
    }
}

#[test]
fn protocol_mismatch_is_reported() {
    let k = keys(16);
    let gp = CardSecureChannel::new(k.clone(), config(ScpVersion::Scp02)).unwrap();
    let params = ScpParams {
        version: Some(ScpVersion::Scp03),
        ..ScpParams::default()
    };
    let err = SecureChannel::open(Sim::new(gp), &k, &params, SecurityLevel::C_MAC).unwrap_err();
    assert_eq!(
        err.error,
        GpError::ProtocolMismatch {
            expected: ScpVersion::Scp03,
            found: ScpVersion::Scp02
        }
    );
}

/// EXTERNAL AUTHENTICATE with a correct C-MAC but a wrong host cryptogram,
/// built from the public primitives (SCP03, AES-128, i=00).
fn bad_external_authenticate(gp: &mut CardSecureChannel, k_mac: &[u8]) -> Result<(), StatusWord> {
    let host = [0x11u8; 8];
    let iu = Command::new(0x80, 0x50, 0x00, 0x00)
        .with_data(&host)
        .unwrap();
    let resp = gp.initialize_update(&iu, |c| c.fill(0x22))?;
    let mut ctx = host.to_vec();
    ctx.extend_from_slice(&resp[13..21]);
    let s_mac = scp03_kdf(k_mac, 0x06, &ctx, 128).unwrap();
    let wrong_cryptogram = [0u8; 8];
    let header = [0x84, 0x82, 0x01, 0x00, 0x10];
    let mac = aes_cmac(&s_mac, &[&[0u8; 16], &header, &wrong_cryptogram]).unwrap();
    let mut data = wrong_cryptogram.to_vec();
    data.extend_from_slice(&mac[..8]);
    gp.external_authenticate(
        &Command::new(0x84, 0x82, 0x01, 0x00)
            .with_data(&data)
            .unwrap(),
    )
}

#[test]
fn failed_authentications_are_counted_then_the_keys_are_blocked() {
    let k_mac = [0x55u8; 16];
    let k = KeySet::new(&[0x33; 16], &k_mac, &[0x77; 16], 0x30).unwrap();
    let mut cfg = CardConfig::scp03([1; 10]);
    cfg.i = 0x00;
    cfg.max_auth_failures = 3;
    let mut gp = CardSecureChannel::new(k.clone(), cfg).unwrap();
    assert_eq!(
        bad_external_authenticate(&mut gp, &k_mac),
        Err(StatusWord(0x6300))
    );
    assert_eq!(gp.failures_left(), 2);
    // A successful authentication resets the counter.
    let mut card = open(Sim::new(gp), &k, SecurityLevel::C_MAC).unwrap();
    let gp = &mut sim_of(&mut card).gp;
    assert_eq!(gp.failures_left(), 3);
    for left in [2, 1, 0] {
        assert_eq!(
            bad_external_authenticate(gp, &k_mac),
            Err(StatusWord(0x6300))
        );
        assert_eq!(gp.failures_left(), left);
    }
    assert_eq!(
        bad_external_authenticate(gp, &k_mac),
        Err(StatusWord::AUTH_METHOD_BLOCKED)
    );
    let sim = card.into_inner().into_inner().into_inner();
    let err =
        SecureChannel::open(sim, &k, &ScpParams::default(), SecurityLevel::C_MAC).unwrap_err();
    assert_eq!(
        err.error,
        GpError::CardRefused {
            command: "INITIALIZE UPDATE",
            sw: StatusWord::AUTH_METHOD_BLOCKED
        }
    );
}

#[test]
fn a_wrong_external_authenticate_mac_is_counted_too() {
    let k = keys(16);
    let mut gp = CardSecureChannel::new(k, config(ScpVersion::Scp03)).unwrap();
    gp.initialize_update(
        &Command::new(0x80, 0x50, 0, 0).with_data(&[0; 8]).unwrap(),
        |_| {},
    )
    .unwrap();
    let ea = Command::new(0x84, 0x82, 0x01, 0x00)
        .with_data(&[0; 16])
        .unwrap();
    assert_eq!(gp.external_authenticate(&ea), Err(StatusWord(0x6982)));
    assert_eq!(gp.failures_left(), 9);
}

#[test]
fn card_side_status_words_for_malformed_handshakes() {
    let k = keys(16);
    let mut gp = CardSecureChannel::new(k, config(ScpVersion::Scp03)).unwrap();
    let iu = |cla, p1, p2, data: &[u8]| Command::new(cla, 0x50, p1, p2).with_data(data).unwrap();
    assert_eq!(
        gp.initialize_update(&iu(0x00, 0, 0, &[0; 8]), |_| {}),
        Err(StatusWord(0x6E00))
    );
    assert_eq!(
        gp.initialize_update(&iu(0x80, 0, 1, &[0; 8]), |_| {}),
        Err(StatusWord(0x6A86))
    );
    assert_eq!(
        gp.initialize_update(&iu(0x80, 0, 0, &[0; 7]), |_| {}),
        Err(StatusWord(0x6700))
    );
    assert_eq!(
        gp.initialize_update(&iu(0x80, 0x31, 0, &[0; 8]), |_| {}),
        Err(StatusWord(0x6A88))
    );
    let ea = Command::new(0x84, 0x82, 0x01, 0x00)
        .with_data(&[0; 16])
        .unwrap();
    assert_eq!(
        gp.external_authenticate(&ea),
        Err(StatusWord::CONDITIONS_NOT_SATISFIED),
        "no INITIALIZE UPDATE"
    );
    // SCP03 pseudo-random mode: the counter moves on every INITIALIZE UPDATE.
    let before = gp.sequence_counter();
    let r = gp
        .initialize_update(&iu(0x80, 0x30, 0, &[0; 8]), |_| {})
        .unwrap();
    assert_eq!(r.len(), 32);
    assert_eq!(gp.sequence_counter(), before + 1);
    let level_33 = Command::new(0x84, 0x82, 0x02, 0x00)
        .with_data(&[0; 16])
        .unwrap();
    assert_eq!(
        gp.external_authenticate(&level_33),
        Err(StatusWord(0x6A86)),
        "02 is not a level"
    );
    assert_eq!(gp.failures_left(), 10, "malformed requests cost no retry");
    // A card without R-MAC support refuses level 33, and the host does not even ask.
    let k = keys(16);
    let mut cfg = config(ScpVersion::Scp03);
    cfg.i = 0x00;
    let gp = CardSecureChannel::new(k.clone(), cfg).unwrap();
    let err = SecureChannel::open(Sim::new(gp), &k, &ScpParams::default(), SecurityLevel::FULL)
        .unwrap_err();
    assert!(matches!(err.error, GpError::Unsupported(_)));
}

#[test]
fn undecodable_commands_get_6700_and_do_not_panic() {
    let k = keys(16);
    let mut gp = CardSecureChannel::new(k.clone(), config(ScpVersion::Scp02)).unwrap();
    for raw in [&[][..], &[0x84], &[0x84, 0xCA, 0, 0, 5, 1]] {
        assert_eq!(gp.unwrap_command(raw), Err(StatusWord(0x6700)));
    }
    let mut card = open(Sim::new(gp), &k, SecurityLevel::C_DEC_C_MAC).unwrap();
    let sim = sim_of(&mut card);
    // Secured but shorter than a MAC, or ciphertext that is not whole blocks.
    assert_eq!(
        sim.gp.unwrap_command(&h("84CA000003 010203")),
        Err(StatusWord(0x6988))
    );
}

#[test]
fn host_diversifies_master_keys_to_the_card_keys_computed_by_openssl() {
    // Card keys computed with OpenSSL (commands in gp_vectors.rs's script style):
    //   EMV CPS 1.1:  tdes_ecb 4041..4F 040506070809f0XX0405060708090fXX   (XX = 01, 02, 03)
    //   VISA2:        tdes_ecb 4041..4F 000104050607f0XX0001040506070fXX
    //   KDF3:         cmac MASTER 01000000XX00‖KDD ‖ cmac MASTER 02000000XX00‖KDD
    let master_3des = h("404142434445464748494a4b4c4d4e4f");
    let master_aes = h("8c72c72cf908411653018807950d82fbad947562f0828a0b10b8b9606abf3bcd");
    let cases = [
        (
            Diversification::EmvCps11,
            ScpVersion::Scp02,
            &master_3des,
            "00010203040506070809",
            [
                "0ef59fcbf8019b62e62af6ea20b8bf25",
                "3e383eb6f2762b88155f76bdfed05a02",
                "64021e43c0c7d264a1c7c6d01e1c8761",
            ],
        ),
        (
            Diversification::Visa2,
            ScpVersion::Scp02,
            &master_3des,
            "00010203040506070809",
            [
                "8510fc973208218ca86888bcec203635",
                "1068b5fb6f06c78c7a4dfc343b21c78f",
                "2daee809c71405ff259c3be695a1f66e",
            ],
        ),
        (
            Diversification::Kdf3,
            ScpVersion::Scp03,
            &master_aes,
            "d9b1de5d0362dedce4fb",
            [
                "9aac5d0b3601f89438a0d9d0b6b256cfb47e6462dfa5228d3420c4ac7c224781",
                "8c6d4ade2aade2bdf66ef24537f7af9806c71a5cf0269cda323b54bd4c6eba99",
                "0dfb0d477168f625f751767f35c4bf73697d40a5f41d625432de8a7d607778bf",
            ],
        ),
    ];
    for (method, version, master, kdd, [enc, mac, dek]) in cases {
        let card_keys = KeySet::new(&h(enc), &h(mac), &h(dek), 0x01).unwrap();
        let mut cfg = config(version);
        cfg.key_diversification_data = h(kdd).try_into().unwrap();
        let gp = CardSecureChannel::new(card_keys, cfg).unwrap();
        let master_keys = KeySet::from_master(master, 0x01).unwrap();
        let params = ScpParams {
            diversification: method,
            ..ScpParams::default()
        };
        let ch = SecureChannel::open(
            Card::new(Sim::new(gp)),
            &master_keys,
            &params,
            SecurityLevel::C_DEC_C_MAC,
        );
        let mut card = Card::new(ch.unwrap_or_else(|e| panic!("{method:?}: {e}")));
        assert!(
            card.send(&Command::new(0x80, 0xCA, 0, 0).with_data(b"x").unwrap())
                .unwrap()
                .is_success(),
            "{method:?}"
        );
        // Undiversified master keys do not open this card.
        let gp = CardSecureChannel::new(
            diversify(&master_keys, method, &h(kdd)).unwrap(),
            config(version),
        )
        .unwrap();
        let err = SecureChannel::open(
            Sim::new(gp),
            &master_keys,
            &ScpParams::default(),
            SecurityLevel::C_MAC,
        )
        .unwrap_err();
        assert_eq!(err.error, GpError::CardCryptogramMismatch, "{method:?}");
    }
}

#[test]
fn keys_never_show_in_debug_output() {
    let k = KeySet::from_master(&h("404142434445464748494a4b4c4d4e4f"), 0x01).unwrap();
    let gp = CardSecureChannel::new(k.clone(), config(ScpVersion::Scp02)).unwrap();
    for text in [format!("{k:?}"), format!("{gp:?}")] {
        assert!(!text.to_lowercase().contains("4041"), "{text}");
        assert!(!text.contains("64, 65"), "{text}");
    }
}

#[test]
fn key_sets_of_mixed_or_bad_lengths_are_refused() {
    assert!(KeySet::new(&[0; 16], &[0; 24], &[0; 16], 1).is_err());
    assert!(KeySet::new(&[0; 8], &[0; 8], &[0; 8], 1).is_err());
    let aes256 = KeySet::from_master(&[0; 32], 1).unwrap();
    assert!(
        CardSecureChannel::new(aes256, config(ScpVersion::Scp02)).is_err(),
        "SCP02 needs 3DES keys"
    );
    let mut cfg = config(ScpVersion::Scp02);
    cfg.i = 0x1A; // ICV over the AID: not implemented, refused up front.
    assert!(matches!(
        CardSecureChannel::new(keys(16), cfg),
        Err(GpError::Unsupported(_))
    ));
}

/// A card that answers every command with the same bytes.
struct Fixed(Vec<u8>);
impl Transport for Fixed {
    fn transmit(&mut self, _apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        rx.clone_from(&self.0);
        Ok(())
    }
}

proptest::proptest! {
    /// Whatever bytes reach the card side, it answers with a status word and never panics.
    #[test]
    fn card_side_never_panics_on_arbitrary_commands(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), scp03 in proptest::prelude::any::<bool>()) {
        let version = if scp03 { ScpVersion::Scp03 } else { ScpVersion::Scp02 };
        let k = keys(16);
        let mut card = open(Sim::new(CardSecureChannel::new(k.clone(), config(version)).unwrap()), &k, SecurityLevel::C_DEC_C_MAC).unwrap();
        let gp = &mut sim_of(&mut card).gp;
        if let Ok(cmd) = gp.unwrap_command(&raw) {
            // Only a plain command can pass, and only when it is not secured.
            proptest::prop_assert_eq!(cmd.cla() & 0x04, 0);
        }
        let cmd = Command::decode(&raw);
        if let Ok(cmd) = cmd {
            let _ = gp.initialize_update(&cmd, |_| {});
            let _ = gp.external_authenticate(&cmd);
        }
    }

    /// Whatever a card answers to INITIALIZE UPDATE, the host returns a typed error, never panics.
    #[test]
    fn host_never_panics_on_arbitrary_initialize_update_answers(resp in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
        let k = keys(16);
        let result = SecureChannel::open(Fixed(resp), &k, &ScpParams::default(), SecurityLevel::FULL);
        proptest::prop_assert!(result.is_err());
    }
}

#[test]
fn key_data_encrypted_by_the_host_is_decrypted_by_the_card() {
    for (version, len) in SETUPS {
        let k = keys(len);
        let gp = CardSecureChannel::new(k.clone(), config(version)).unwrap();
        assert_eq!(
            gp.decrypt_key_data(&[0; 16]).unwrap_err(),
            StatusWord(0x6982),
            "no channel"
        );
        let mut card = open(Sim::new(gp), &k, SecurityLevel::C_MAC).unwrap();
        // AES-192 key values travel padded to whole blocks (the caller pads).
        let padded = len.div_ceil(16) * 16;
        let new_key: Vec<u8> = (100..100 + padded as u8).collect();
        let encrypted = card.transport().encrypt_key_data(&new_key).unwrap();
        assert_ne!(&encrypted[..], &new_key[..]);
        let decrypted = sim_of(&mut card).gp.decrypt_key_data(&encrypted).unwrap();
        assert_eq!(&decrypted[..], &new_key[..], "{version}-{len}");
    }
}

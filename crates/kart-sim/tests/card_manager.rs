//! The card manager as `GlobalPlatform` host tools discover it (GP Card
//! Specification 2.3.1 §11.3 GET DATA, §11.4 GET STATUS, §H.2 card
//! recognition data), and the strict forms of README §8: classes a command
//! does not take and commands without Le. Expected bytes are written here
//! from the GP specification, not taken from the simulator.

mod common;

use common::*;
use kart_sim::SimCard;

const ISD: [u8; 8] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];

fn at_isd(id: &str) -> SimCard {
    let mut sim = SimCard::new(&profile(id)).unwrap();
    expect_sw(&mut sim, "SELECT", &select_aid(&ISD), 0x9000);
    sim
}

fn get_data(sim: &mut SimCard, cla: u8, tag: u16) -> (Vec<u8>, u16) {
    let [p1, p2] = tag.to_be_bytes();
    raw(sim, &[cla, 0xCA, p1, p2, 0x00])
}

/// GP OID `1.2.840.114283.<tail>` with tag 06.
fn oid(tail: &[u8]) -> Vec<u8> {
    let mut v = vec![0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B];
    v.extend_from_slice(tail);
    tlv(&[0x06], &v)
}

#[test]
fn card_data_names_gp_2_3_1_and_the_profiles_scp() {
    for (id, scp, i) in [
        ("vendor-a", 2, 0x55),
        ("vendor-b", 3, 0x70),
        ("vendor-c", 3, 0x00),
    ] {
        let mut sim = at_isd(id);
        for cla in [0x00, 0x80] {
            let (data, sw) = get_data(&mut sim, cla, 0x0066);
            assert_eq!(sw, 0x9000, "{id}");
            let mut crd = oid(&[0x01]);
            crd.extend(tlv(&[0x60], &oid(&[0x02, 0x02, 0x03, 0x01])));
            crd.extend(tlv(&[0x63], &oid(&[0x03])));
            crd.extend(tlv(&[0x64], &oid(&[0x04, scp, i])));
            assert_eq!(
                hex::encode_upper(&data),
                hex::encode_upper(tlv(&[0x66], &tlv(&[0x73], &crd))),
                "{id}"
            );
        }
    }
    // vendor-b in full, as GP 2.3.1 §H.2 lays it out.
    let (data, _) = get_data(&mut at_isd("vendor-b"), 0x80, 0x0066);
    assert_eq!(
        hex::encode_upper(data),
        "663173\
         2F06072A864886FC6B01\
         600C060A2A864886FC6B02020301\
         630906072A864886FC6B03\
         640B06092A864886FC6B040370"
            .replace(' ', "")
    );
}

#[test]
fn key_information_lists_enc_mac_dek_under_the_profiles_key_version() {
    for (id, kvn, kind, len) in [
        ("vendor-a", 0x20, 0x80, 0x10),
        ("vendor-b", 0x30, 0x88, 0x10),
        ("vendor-c", 0x31, 0x88, 0x20),
    ] {
        let (data, sw) = get_data(&mut at_isd(id), 0x80, 0x00E0);
        assert_eq!(sw, 0x9000, "{id}");
        let mut want = vec![0xE0, 0x12];
        for key in 1..=3 {
            want.extend_from_slice(&[0xC0, 0x04, key, kvn, kind, len]);
        }
        assert_eq!(data, want, "{id}");
    }
}

#[test]
fn iin_cin_and_cplc_answer_their_tags_and_unknown_tags_6a88() {
    let mut sim = at_isd("vendor-c");
    let (cplc, sw) = get_data(&mut sim, 0x80, 0x9F7F);
    assert_eq!((sw, &cplc[..3]), (0x9000, &[0x9F, 0x7F, 42][..]));
    let (iin, sw) = get_data(&mut sim, 0x80, 0x0042);
    assert_eq!(
        (sw, iin.as_slice()),
        (0x9000, &[0x42, 4, 0x89, 0x99, 0, 1][..])
    );
    let (cin, sw) = get_data(&mut sim, 0x80, 0x0045);
    assert_eq!((sw, &cin[..2]), (0x9000, &[0x45, 8][..]));
    // CIN = CSN = CPLC IC fabricator ‖ IC type ‖ IC serial number.
    let c = &cplc[3..];
    assert_eq!(&cin[2..6], &c[..4]);
    assert_eq!(&cin[6..], &c[12..16]);
    for tag in [0x00FE_u16, 0xDF71, 0x5F50] {
        expect_sw(
            &mut sim,
            "GET DATA",
            &[0x80, 0xCA, (tag >> 8) as u8, tag as u8, 0],
            0x6A88,
        );
    }
    // An instruction the card manager does not have.
    assert_eq!(raw(&mut sim, &[0x80, 0xE6, 0x02, 0x00, 0x00]).1, 0x6D00);
}

#[test]
fn get_status_lists_the_isd_the_applet_and_its_load_file() {
    for id in &profile_ids() {
        let p = profile(id);
        let aid = p.applet_aid.bytes().to_vec();
        let elf = &aid[..aid.len() - 1];
        let mut sim = at_isd(id);
        let status = |sim: &mut SimCard, p1: u8, p2: u8| {
            let (data, sw) = raw(sim, &[0x80, 0xF2, p1, p2, 0x02, 0x4F, 0x00, 0x00]);
            if sw >> 8 != 0x61 {
                assert_eq!(sw, 0x9000, "{id} GET STATUS {p1:02X}{p2:02X}");
                return data;
            }
            // T=0 (vendor-a): a case-4 answer comes with GET RESPONSE.
            assert!(data.is_empty());
            expect_sw(
                sim,
                "GET RESPONSE",
                &[0x00, 0xC0, 0x00, 0x00, sw as u8],
                0x9000,
            )
        };
        let mut isd = tlv(&[0x4F], &ISD);
        isd.extend_from_slice(&[0x9F, 0x70, 0x01, 0x0F, 0xC5, 0x03, 0x9E, 0x00, 0x00]);
        assert_eq!(status(&mut sim, 0x80, 0x02), tlv(&[0xE3], &isd), "{id} ISD");
        let mut app = tlv(&[0x4F], &aid);
        app.extend_from_slice(&[0x9F, 0x70, 0x01, 0x07, 0xC5, 0x03, 0, 0, 0]);
        app.extend(tlv(&[0xC4], elf));
        app.extend(tlv(&[0xCC], &ISD));
        assert_eq!(
            status(&mut sim, 0x40, 0x02),
            tlv(&[0xE3], &app),
            "{id} applet"
        );
        let mut load = tlv(&[0x4F], elf);
        load.extend_from_slice(&[0x9F, 0x70, 0x01, 0x01]);
        assert_eq!(
            status(&mut sim, 0x20, 0x02),
            tlv(&[0xE3], &load),
            "{id} ELF"
        );
        load.extend(tlv(&[0x84], &aid));
        assert_eq!(
            status(&mut sim, 0x10, 0x02),
            tlv(&[0xE3], &load),
            "{id} ELF+modules"
        );
        // Legacy form: length, AID, life cycle, privileges.
        let mut legacy = vec![8];
        legacy.extend_from_slice(&ISD);
        legacy.extend_from_slice(&[0x0F, 0x9E]);
        assert_eq!(status(&mut sim, 0x80, 0x00), legacy, "{id} legacy");
        // A search for an AID the card does not hold; P2 "next"; a bad P1.
        let other = [0x80, 0xF2, 0x40, 0x02, 0x04, 0x4F, 0x02, 0xD2, 0x76, 0x00];
        expect_sw(&mut sim, "GET STATUS", &other, 0x6A88);
        let next = [0x80, 0xF2, 0x40, 0x03, 0x02, 0x4F, 0x00, 0x00];
        expect_sw(&mut sim, "GET STATUS", &next, 0x6A86);
        let bad = [0x80, 0xF2, 0x01, 0x02, 0x02, 0x4F, 0x00, 0x00];
        expect_sw(&mut sim, "GET STATUS", &bad, 0x6A86);
    }
}

#[test]
fn a_command_without_le_gets_no_response_data() {
    for id in &profile_ids() {
        let mut sim = at_isd(id);
        // Case 1: GET DATA CPLC without Le.
        assert_eq!(
            raw(&mut sim, &[0x80, 0xCA, 0x9F, 0x7F]),
            (vec![], 0x6700),
            "{id}"
        );
        let (data, sw) = raw(&mut sim, &[0x80, 0xCA, 0x9F, 0x7F, 0x00]);
        assert_eq!((sw, data.len()), (0x9000, 45), "{id}: with Le");
        let p = profile(id);
        expect_sw(
            &mut sim,
            "SELECT",
            &select_aid(p.applet_aid.bytes()),
            0x9000,
        );
        assert_eq!(
            raw(&mut sim, &[0x00, 0xCA, 0xDF, 0x71]),
            (vec![], 0x6700),
            "{id}"
        );
        assert_eq!(
            raw(&mut sim, &[0x00, 0x84, 0x00, 0x00]).0,
            Vec::<u8>::new(),
            "{id}"
        );
    }
}

#[test]
fn a_class_the_command_does_not_take_is_refused() {
    for id in &profile_ids() {
        let p = profile(id);
        let mut sim = SimCard::new(&p).unwrap();
        expect_sw(
            &mut sim,
            "SELECT",
            &select_aid(p.applet_aid.bytes()),
            0x9000,
        );
        for (name, apdu) in [
            ("GET RESPONSE", vec![0x80, 0xC0, 0x00, 0x00, 0x00]),
            ("GET RESPONSE", vec![0x84, 0xC0, 0x00, 0x00, 0x00]),
            ("PUT DATA", case3(0x84, 0xDA, 0xDF, 0x72, b"1234567890")),
            ("GET CHALLENGE", vec![0x80, 0x84, 0x00, 0x00, 0x08]),
            (
                "SELECT",
                select_aid(&ISD)
                    .into_iter()
                    .enumerate()
                    .map(|(i, b)| if i == 0 { 0x80 } else { b })
                    .collect(),
            ),
            (
                "GET STATUS",
                vec![0x00, 0xF2, 0x80, 0x02, 0x02, 0x4F, 0x00, 0x00],
            ),
        ] {
            expect_sw(&mut sim, name, &apdu, 0x6E00);
        }
        // The right classes still work: GET DATA with 00 and 80; the secured
        // ISO class 04 outside a channel is a security refusal, not a class one.
        expect_sw(
            &mut sim,
            "GET DATA",
            &[0x00, 0xCA, 0xDF, 0x71, 0x00],
            0x9000,
        );
        expect_sw(
            &mut sim,
            "GET DATA",
            &[0x80, 0xCA, 0xDF, 0x71, 0x00],
            0x9000,
        );
        expect_sw(
            &mut sim,
            "PUT DATA",
            &case3(0x04, 0xDA, 0xDF, 0x72, b"1234567890"),
            0x6982,
        );
        expect_sw(
            &mut sim,
            "GET RESPONSE",
            &[0x00, 0xC0, 0x00, 0x00, 0x00],
            0x6985,
        );
    }
}

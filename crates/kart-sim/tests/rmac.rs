//! Secure messaging with R-MAC (and R-ENC) on the SCP03 profiles whose
//! i-parameter offers it (vendor-b, vendor-d: `i = 70`), and with C-MAC on
//! SCP02 (vendor-a): a write and the reads after it, each answer checked,
//! and the channel still in step after.

use kart_apdu::gp::{SecureChannel, SecurityLevel};
use kart_apdu::{Card, Command, StatusWord};
use kart_sim::SimCard;
use kart_testkit::raw::*;

const LEVELS: [SecurityLevel; 3] = [
    SecurityLevel::C_MAC_R_MAC,
    SecurityLevel::C_DEC_C_MAC_R_MAC,
    SecurityLevel::FULL,
];

fn channel(id: &str, level: SecurityLevel) -> Channel {
    let p = profile(id);
    let inner = applet_selected(SimCard::new(&p).unwrap());
    let (keys, params) = host_keys(&p);
    let ch = SecureChannel::open(inner, &keys, &params, level)
        .unwrap_or_else(|e| panic!("{id} level {:02X}: {}", level.bits(), e.error));
    Card::new(ch)
}

fn sent(card: &mut Channel, cmd: &Command, what: &str) -> (Vec<u8>, StatusWord) {
    let r = card.send(cmd).unwrap_or_else(|e| panic!("{what}: {e}"));
    (r.data().to_vec(), r.sw())
}

/// UPDATE BINARY (`D6`) or READ BINARY (`B0`) at `offset` of the current EF.
fn binary(ins: u8, offset: u16) -> Command {
    let [p1, p2] = offset.to_be_bytes();
    Command::new(0x00, ins, p1, p2)
}

fn update(offset: u16, data: &[u8]) -> Command {
    binary(0xD6, offset).with_data(data).unwrap()
}

fn read(offset: u16, le: u32) -> Command {
    binary(0xB0, offset).with_le(le).unwrap()
}

/// READ BINARY from `offset` with Le 256: `file[offset..]` up to what the
/// card answers at once, with `9000` or (at the end of the file) `6282`.
fn check_read(card: &mut Channel, offset: u16, file: &[u8], what: &str) {
    let (data, sw) = sent(card, &read(offset, 256), what);
    assert!(
        sw == StatusWord::SUCCESS || sw == StatusWord(0x6282),
        "{what}: {sw}"
    );
    let rest = &file[usize::from(offset)..];
    assert!(
        !data.is_empty() && data.len() <= rest.len(),
        "{what}: {} bytes",
        data.len()
    );
    assert_eq!(data, rest[..data.len()], "{what}");
}

/// A channel at `level` on a fresh `id` card whose EF `011D` holds the 200
/// bytes 0, 1, 2, … written through it (SELECT and UPDATE BINARY checked).
fn written(id: &str, level: SecurityLevel) -> (Channel, Vec<u8>) {
    let at = |what: &str| format!("{id} level {:02X}: {what}", level.bits());
    let mut card = channel(id, level);
    let select = Command::new(0x00, 0xA4, 0x02, 0x0C)
        .with_data(&[0x01, 0x1D])
        .unwrap();
    assert_eq!(
        sent(&mut card, &select, &at("SELECT")).1,
        StatusWord::SUCCESS
    );
    let file: Vec<u8> = (0..200u8).collect();
    let (data, sw) = sent(&mut card, &update(0, &file), &at("UPDATE BINARY"));
    assert_eq!(
        (data.as_slice(), sw),
        (&[][..], StatusWord::SUCCESS),
        "{}",
        at("UPDATE")
    );
    (card, file)
}

#[test]
fn read_binary_after_update_binary_in_a_secure_channel() {
    // vendor-a (SCP02, C-MAC only) answers a too-large Le with 6Cxx too.
    let c_mac = [SecurityLevel::C_MAC, SecurityLevel::C_DEC_C_MAC];
    for (id, levels) in [
        ("vendor-a", &c_mac[..]),
        ("vendor-b", &LEVELS),
        ("vendor-d", &LEVELS),
    ] {
        for &level in levels {
            let at = |what: &str| format!("{id} level {:02X}: {what}", level.bits());
            let (mut card, mut file) = written(id, level);
            // The READ BINARY right after the write: the file's bytes. (The
            // channel asks the card for 256 bytes whatever Le the caller gave,
            // to leave room for the R-MAC, so the card may answer 6282 at the
            // end.)
            check_read(&mut card, 0, &file, &at("READ BINARY after UPDATE"));
            // More commands in the same session: a second write, reads at
            // offsets, a read past the end, an error answer, a third write.
            let second = vec![0xA5; 100];
            let (_, sw) = sent(&mut card, &update(50, &second), &at("second UPDATE"));
            assert_eq!(sw, StatusWord::SUCCESS, "{}", at("second UPDATE"));
            file[50..150].copy_from_slice(&second);
            check_read(&mut card, 40, &file, &at("READ at 40"));
            check_read(&mut card, 150, &file, &at("READ at 150"));
            let (data, sw) = sent(&mut card, &read(0x1000, 16), &at("READ beyond"));
            assert_eq!((data.len(), sw.sw1()), (0, 0x6B), "{}: {sw}", at("beyond"));
            let third = vec![0x5A; 30];
            let (_, sw) = sent(&mut card, &update(0, &third), &at("third UPDATE"));
            assert_eq!(sw, StatusWord::SUCCESS, "{}", at("third UPDATE"));
            file[..30].copy_from_slice(&third);
            check_read(&mut card, 0, &file, &at("last READ"));
            assert!(card.transport().is_open(), "{}", at("channel still open"));
        }
    }
}

#[test]
fn a_short_le_gets_at_most_le_bytes_under_r_mac() {
    // The channel raises a short Le to 256 to leave room for the R-MAC; the
    // card then answers up to 256 bytes, and the caller must still get only
    // the bytes it asked for, with 9000 (the file goes on past them).
    for id in ["vendor-b", "vendor-d"] {
        for level in LEVELS {
            let at = |what: &str| format!("{id} level {:02X}: {what}", level.bits());
            let (mut card, file) = written(id, level);
            for (offset, le) in [(0u16, 16u32), (10, 1), (150, 50), (190, 10)] {
                let (data, sw) = sent(&mut card, &read(offset, le), &at("READ"));
                let o = usize::from(offset);
                assert_eq!(
                    (data.as_slice(), sw),
                    (&file[o..o + le as usize], StatusWord::SUCCESS),
                    "{}",
                    at(&format!("READ {le} at {offset}"))
                );
            }
            // Past the end with a short Le: the file's last bytes, with the
            // card's 6282 (or 9000 from a card that answered 6Cxx first).
            let (data, sw) = sent(&mut card, &read(195, 10), &at("READ at 195"));
            assert_eq!(data, file[195..], "{}", at("READ at 195"));
            assert!(
                sw == StatusWord::END_OF_FILE || sw == StatusWord::SUCCESS,
                "{}: {sw}",
                at("READ at 195")
            );
            assert!(card.transport().is_open(), "{}", at("channel still open"));
        }
    }
}

//! Hand-built APDUs and TLVs for simulated cards, written here from
//! applets-spec/README.md, not taken from any engine: what the simulator's
//! tests send, and what other tests use to look at a card on their own.

use kart_apdu::gp::{Diversification, KeySet, ScpParams, ScpVersion, SecureChannel, SecurityLevel};
use kart_apdu::{Card, Command, Response, Transport};
use kart_sim::{default_test_key, SimCard};
use kart_spec::{Profile, Scp, Spec};

/// The embedded applet spec.
pub fn spec() -> Spec {
    Spec::embedded().expect("embedded spec")
}

/// The vendor profile `id` of the embedded spec.
pub fn profile(id: &str) -> Profile {
    spec().profile(id).expect("profile").clone()
}

/// The ids of every conforming profile of the spec.
pub fn profile_ids() -> Vec<String> {
    spec().profiles.into_iter().map(|p| p.id).collect()
}

/// Sends raw bytes to the simulator, no session layer.
pub fn raw(sim: &mut SimCard, apdu: &[u8]) -> (Vec<u8>, u16) {
    let mut rx = Vec::new();
    sim.transmit(apdu, &mut rx).expect("card present");
    let r = Response::from_bytes(&rx).expect("at least SW1 SW2");
    (r.data().to_vec(), r.sw().0)
}

/// Sends raw bytes and checks both the status word and that the spec lists
/// it for `command` (or among the general ones).
pub fn expect_sw(sim: &mut SimCard, command: &str, apdu: &[u8], want: u16) -> Vec<u8> {
    let (data, sw) = raw(sim, apdu);
    assert_eq!(
        sw,
        want,
        "{command} {}: got {sw:04X}, want {want:04X}",
        hex::encode_upper(apdu)
    );
    let spec = spec();
    let c = spec
        .applet
        .command(command)
        .unwrap_or_else(|| panic!("spec has no command {command}"));
    assert!(
        spec.applet.allows_sw(c, kart_apdu::StatusWord(sw)),
        "spec does not list {sw:04X} for {command}"
    );
    data
}

/// [`expect_sw`] for each `(command, apdu, status word)` in turn: a table of
/// what a card must answer.
pub fn expect_all(sim: &mut SimCard, rows: &[(&str, Vec<u8>, u16)]) {
    for (command, apdu, want) in rows {
        expect_sw(sim, command, apdu, *want);
    }
}

/// `00 A4 04 0C Lc AID`.
pub fn select_aid(aid: &[u8]) -> Vec<u8> {
    let mut v = vec![0x00, 0xA4, 0x04, 0x0C, aid.len() as u8];
    v.extend_from_slice(aid);
    v
}

/// `00 A4 02 0C 02 FID`.
pub fn select_fid(fid: u16) -> Vec<u8> {
    let [hi, lo] = fid.to_be_bytes();
    vec![0x00, 0xA4, 0x02, 0x0C, 0x02, hi, lo]
}

/// A short case-3 APDU.
pub fn case3(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![cla, ins, p1, p2, data.len() as u8];
    v.extend_from_slice(data);
    v
}

/// PIN block: ASCII digits right-padded with FF to 8 bytes (README §3).
pub fn pin_block(digits: &str) -> Vec<u8> {
    let mut b = digits.as_bytes().to_vec();
    b.resize(8, 0xFF);
    b
}

/// VERIFY of the ID PIN (reference `81`) with the PIN block of `digits`.
pub fn verify_id_pin(digits: &str) -> Vec<u8> {
    case3(0, 0x20, 0, 0x81, &pin_block(digits))
}

/// One BER-TLV with a definite length.
pub fn tlv(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = tag.to_vec();
    match value.len() {
        n @ 0..=0x7F => out.push(n as u8),
        n @ 0x80..=0xFF => out.extend_from_slice(&[0x81, n as u8]),
        n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(value);
    out
}

/// EF.ID for a sample holder, built tag by tag from README §6.1.
/// National code 0499370899: s = 0·10+4·9+9·8+9·7+3·6+7·5+0·4+8·3+9·2 = 266,
/// r = 266 mod 11 = 2, check digit 11 − 2 = 9.
pub fn identity_record(csn: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (tag, value) in [
        (0xC1, "0499370899".as_bytes()),
        (0xC2, "علی".as_bytes()),
        (0xC3, "رضایی".as_bytes()),
        (0xC4, "محمد".as_bytes()),
        (0xC5, b"ALI"),
        (0xC6, b"REZAEI"),
        (0xC7, b"MOHAMMAD"),
        (0xC8, b"13690519"),
        (0xC9, b"19900810"),
        (0xCA, b"M"),
        (0xCB, csn),
        (0xCC, b"1234567890"),
        (0xCD, b"20260101"),
        (0xCE, b"20330101"),
        (0xCF, b"4001234567"),
    ] {
        body.extend_from_slice(&tlv(&[tag], value));
    }
    tlv(&[0xE1], &body)
}

/// A JPEG-shaped facial image of `len` bytes inside tag 5F2E.
pub fn face(len: usize) -> Vec<u8> {
    let mut jpeg = vec![0xFF, 0xD8];
    jpeg.extend((0..len.saturating_sub(4)).map(|i| (i * 7 % 251) as u8));
    jpeg.extend_from_slice(&[0xFF, 0xD9]);
    tlv(&[0x5F, 0x2E], &jpeg)
}

/// The host-side key set and parameters for `profile` (GP test key).
pub fn host_keys(p: &Profile) -> (KeySet, ScpParams) {
    let sc = p.secure_channel;
    let keys = KeySet::from_master(&default_test_key(sc.key_length), sc.key_version).expect("keys");
    let params = ScpParams {
        key_version: sc.key_version,
        diversification: match sc.diversification {
            kart_spec::Diversification::None => Diversification::None,
            kart_spec::Diversification::EmvCps => Diversification::EmvCps11,
            kart_spec::Diversification::Visa2 => Diversification::Visa2,
            kart_spec::Diversification::Kdf3 => Diversification::Kdf3,
        },
        scp02_i: sc.i,
        version: Some(match sc.scp {
            Scp::Scp02 => ScpVersion::Scp02,
            Scp::Scp03 => ScpVersion::Scp03,
        }),
    };
    (keys, params)
}

/// A session over a secure channel over a simulated card.
pub type Channel = Card<SecureChannel<Card<SimCard>>>;

/// A fresh card of profile `id` with the applet selected in plain; the
/// SELECT checked against the spec's status words.
pub fn selected(id: &str) -> SimCard {
    with_applet_selected(SimCard::new(&profile(id)).expect("simulated card"))
}

/// `sim` after a SELECT of its applet in plain, checked against the spec.
pub fn with_applet_selected(mut sim: SimCard) -> SimCard {
    let aid = sim.profile().applet_aid.bytes().to_vec();
    expect_sw(&mut sim, "SELECT", &select_aid(&aid), 0x9000);
    sim
}

/// INTERNAL AUTHENTICATE (active authentication) of `challenge` with the
/// authentication key, `00 88 00 01 Lc challenge Le`.
pub fn internal_authenticate(challenge: &[u8]) -> Command {
    Command::new(0x00, 0x88, 0x00, 0x01)
        .with_data(challenge)
        .and_then(|c| c.with_le(256))
        .expect("a short challenge")
}

/// A plain session on `sim` with the applet selected (no FCI).
pub fn applet_selected(sim: SimCard) -> Card<SimCard> {
    let caps = sim.profile().caps();
    let aid = sim.profile().applet_aid.bytes().to_vec();
    let mut card = Card::with_caps(sim, caps);
    card.send_ok(
        &Command::new(0x00, 0xA4, 0x04, 0x0C)
            .with_data(&aid)
            .unwrap(),
    )
    .expect("select applet");
    card
}

/// Selects the applet in plain and opens a secure channel with C-MAC and C-DEC.
pub fn open_channel(sim: SimCard) -> Channel {
    let p = sim.profile().clone();
    let inner = applet_selected(sim);
    let (keys, params) = host_keys(&p);
    let ch = SecureChannel::open(inner, &keys, &params, SecurityLevel::C_DEC_C_MAC)
        .unwrap_or_else(|e| panic!("open channel on {}: {}", p.id, e.error));
    Card::new(ch)
}

/// Writes `data` to EF `fid` with UPDATE BINARY in parts that fit the card.
pub fn write_file<T: Transport>(card: &mut Card<T>, fid: u16, data: &[u8]) {
    let [hi, lo] = fid.to_be_bytes();
    card.send_ok(
        &Command::new(0x00, 0xA4, 0x02, 0x0C)
            .with_data(&[hi, lo])
            .unwrap(),
    )
    .expect("select EF");
    let caps = card.caps();
    let part = if caps.chaining {
        1024
    } else {
        caps.max_command_data
    };
    for (i, chunk) in data.chunks(part).enumerate() {
        let [p1, p2] = u16::try_from(i * part).unwrap().to_be_bytes();
        let cmd = Command::new(0x00, 0xD6, p1, p2).with_data(chunk).unwrap();
        card.send_ok(&cmd)
            .unwrap_or_else(|e| panic!("UPDATE BINARY {fid:04X} at {}: {e}", i * part));
    }
}

/// Reads EF `fid` to its end with READ BINARY; `Err` holds the refusing status word.
pub fn read_file<T: Transport>(card: &mut Card<T>, fid: u16) -> Result<Vec<u8>, u16> {
    let [hi, lo] = fid.to_be_bytes();
    let r = card
        .send(
            &Command::new(0x00, 0xA4, 0x02, 0x0C)
                .with_data(&[hi, lo])
                .unwrap(),
        )
        .unwrap();
    if !r.is_success() {
        return Err(r.sw().0);
    }
    let ne = u32::try_from(card.caps().max_response_data).unwrap();
    let mut out = Vec::new();
    loop {
        let [p1, p2] = u16::try_from(out.len()).unwrap().to_be_bytes();
        let r = card
            .send(&Command::new(0x00, 0xB0, p1, p2).with_le(ne).unwrap())
            .unwrap();
        match r.sw().0 {
            0x9000 => out.extend_from_slice(r.data()),
            0x6282 => {
                out.extend_from_slice(r.data());
                return Ok(out);
            }
            0x6B00 => return Ok(out),
            sw => return Err(sw),
        }
        if r.data().is_empty() {
            return Ok(out);
        }
    }
}

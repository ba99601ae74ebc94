//! Cards personalized by hand for the read/verify tests: a demo issuer,
//! card data (EF.ID TLV written here from the applet spec tables, not by the
//! engine's encoder), and test-mode personalization of simulated cards with
//! raw APDUs.

use kart_apdu::{tlv, Card, Command};
use kart_perso::pki::{
    create_demo_issuer, issue_holder_certificate, Certificate, Holder, HolderKey, IssuerPki,
    IssuerSigner, PkiError,
};
use kart_perso::security_object::build_security_object;
use kart_perso::verify::TrustAnchors;
use kart_sim::{default_test_key, SimCard, SimConfig};
use kart_spec::{Profile, Spec};
use time::OffsetDateTime;

/// The identification PIN written to the cards.
pub const ID_PIN: &str = "4821";
/// The signature PIN written to the cards.
pub const SIGN_PIN: &str = "482193";
/// The PUK written to the cards.
pub const PUK: &str = "73920481";
/// The card reference number written to the cards.
pub const CRN: &str = "2025000017";
/// Check digit by spec §6.1: s = 0·10+4·9+9·8+9·7+3·6+7·5+0·4+8·3+9·2 = 266,
/// 266 mod 11 = 2, so the check digit is 11 − 2 = 9.
pub const NATIONAL_CODE: &str = "0499370899";
/// The tracking code in EF.ID.
pub const TRACKING: &str = "140409040007";

/// The embedded applet spec.
pub fn spec() -> Spec {
    Spec::embedded().unwrap()
}

/// The vendor profile `id` of the embedded spec.
pub fn profile(id: &str) -> Profile {
    spec().profile(id).unwrap().clone()
}

/// A demo issuer in a temp dir (kept alive by the returned guard).
pub fn issuer(now: OffsetDateTime) -> (tempfile::TempDir, IssuerPki) {
    let dir = tempfile::tempdir().unwrap();
    create_demo_issuer(dir.path(), now).unwrap();
    let pki = IssuerPki::load(dir.path()).unwrap();
    (dir, pki)
}

/// The trust anchors (root and card CA) of `pki`.
pub fn trust(pki: &IssuerPki) -> TrustAnchors {
    TrustAnchors::new(pki.root.clone()).with_intermediate(pki.card_ca.clone())
}

/// A card configuration with IC serial `10 20 30 serial` and the GP test key.
pub fn config(serial: u8, profile: &Profile) -> SimConfig {
    SimConfig::new(
        [0x10, 0x20, 0x30, serial],
        &default_test_key(profile.secure_channel.key_length),
    )
}

/// A blank card of `profile` configured by `config`, that takes writes
/// without a secure channel (test mode).
pub fn blank(profile: &Profile, config: &SimConfig) -> SimCard {
    SimCard::with_config(profile, config)
        .expect("simulated card")
        .with_test_mode_writes()
}

/// EF.ID per spec §6.1, tag by tag. Birth date 1399/05/19 is 2020-08-09
/// (Nowruz 1399 fell on 2020-03-20; months 1-5 have 31 days: day 143 of the
/// year is 142 days later).
pub fn ef_id(csn: [u8; 8], crn: &str, given_en: &str) -> Vec<u8> {
    let fields: [(u32, &[u8]); 15] = [
        (0xC1, NATIONAL_CODE.as_bytes()),
        (0xC2, "زهرا".as_bytes()),
        (0xC3, "محمدی".as_bytes()),
        (0xC4, "علی".as_bytes()),
        (0xC5, given_en.as_bytes()),
        (0xC6, b"MOHAMMADI"),
        (0xC7, b"ALI"),
        (0xC8, b"13990519"),
        (0xC9, b"20200809"),
        (0xCA, b"F"),
        (0xCB, &csn),
        (0xCC, crn.as_bytes()),
        (0xCD, b"20251125"),
        (0xCE, b"20321124"),
        (0xCF, TRACKING.as_bytes()),
    ];
    let children = fields
        .iter()
        .map(|(t, v)| tlv::primitive(*t, v).unwrap())
        .collect();
    tlv::to_vec(&tlv::constructed(0xE1, children).unwrap())
}

/// EF.FACE: `5F2E` around a JPEG-framed body of `len` bytes (long enough to
/// take several READ BINARY chunks on every profile).
pub fn ef_face(len: usize) -> Vec<u8> {
    let mut jpeg = vec![0xFF, 0xD8];
    jpeg.extend((0..len).map(|i| (i % 251) as u8));
    jpeg.extend([0xFF, 0xD9]);
    tlv::to_vec(&tlv::primitive(0x5F2E, &jpeg).unwrap())
}

/// What gets written to one card.
#[derive(Clone)]
pub struct CardData {
    /// The card serial number.
    pub csn: [u8; 8],
    /// The card reference number.
    pub crn: String,
    /// (FID, content) of `EF.ID`, `EF.FACE`, `EF.CERT_AUTH`, `EF.CERT_SIGN`, `EF.SOD`.
    pub files: Vec<(u16, Vec<u8>)>,
}

impl CardData {
    /// The content of EF `fid`.
    pub fn file(&self, fid: u16) -> &[u8] {
        &self
            .files
            .iter()
            .find(|(f, _)| *f == fid)
            .expect("EF written")
            .1
    }
    /// Replaces the content of EF `fid`.
    pub fn set_file(&mut self, fid: u16, content: Vec<u8>) {
        self.files.iter_mut().find(|(f, _)| *f == fid).unwrap().1 = content;
    }
}

/// A session on `sim` with its profile's capabilities.
pub fn session(sim: &mut SimCard) -> Card<&mut SimCard> {
    let caps = sim.profile().caps();
    Card::with_caps(sim, caps)
}

fn ok(card: &mut Card<&mut SimCard>, cmd: &Command) -> Vec<u8> {
    let r = card.send(cmd).unwrap();
    assert!(r.is_success(), "{:02X?} answered {}", cmd.ins(), r.sw());
    r.into_data().unwrap()
}

/// SELECT the applet by AID (no FCI).
pub fn select_applet(card: &mut Card<&mut SimCard>) {
    let aid = card.transport().profile().applet_aid.bytes().to_vec();
    ok(
        card,
        &Command::new(0, 0xA4, 4, 0x0C).with_data(&aid).unwrap(),
    );
}

/// GENERATE ASYMMETRIC KEY PAIR for `AUTH_KEY` and `SIGN_KEY` (spec §8.9):
/// the public keys, of the algorithm the card's profile names.
pub fn generate_keys(sim: &mut SimCard) -> [HolderKey; 2] {
    let rsa = sim.profile().holder_key == kart_spec::HolderKeyAlgorithm::Rsa2048;
    let mut card = session(sim);
    select_applet(&mut card);
    [1u8, 2].map(|key| {
        let r = ok(
            &mut card,
            &Command::new(0, 0x47, 0x80, key).with_le(256).unwrap(),
        );
        // 7F49 43 86 41 <point>, or 7F49 82 0109 81 82 0100 <modulus> 82 03 <exponent>
        let template: &[u8] = if rsa {
            &[0x7F, 0x49, 0x82, 0x01, 0x09, 0x81, 0x82, 0x01, 0x00]
        } else {
            &[0x7F, 0x49, 0x43, 0x86, 0x41]
        };
        assert_eq!(&r[..template.len()], template);
        HolderKey::from_card(&r).unwrap()
    })
}

/// [`card_data`] signed by `pki`'s own document signer.
pub fn signed_card_data(
    pki: &IssuerPki,
    csn: [u8; 8],
    points: &[HolderKey; 2],
    now: OffsetDateTime,
) -> CardData {
    card_data(
        pki,
        (&pki.document_signer, &pki.document_signer_key),
        csn,
        points,
        now,
    )
}

/// Certificates and the security object for a card whose keys are `points`,
/// the SOD signed by `signer`.
pub fn card_data(
    pki: &IssuerPki,
    signer: (&Certificate, &dyn IssuerSigner),
    csn: [u8; 8],
    points: &[HolderKey; 2],
    now: OffsetDateTime,
) -> CardData {
    let cert = |public_key: &HolderKey| {
        let holder = Holder {
            crn: CRN,
            national_code: NATIONAL_CODE,
            public_key,
        };
        issue_holder_certificate(&pki.card_ca, &pki.card_ca_key, &holder, now)
            .unwrap()
            .der()
            .to_vec()
    };
    let files = vec![
        (0x0101, ef_id(csn, CRN, "ZAHRA")),
        (0x0102, ef_face(3000)),
        (0x0201, cert(&points[0])),
        (0x0202, cert(&points[1])),
    ];
    let refs: Vec<(u16, &[u8])> = files.iter().map(|(f, d)| (*f, d.as_slice())).collect();
    let sod = build_security_object(&refs, signer.0, signer.1, now).unwrap();
    let mut files = files;
    files.push((0x011D, sod));
    CardData {
        csn,
        crn: CRN.into(),
        files,
    }
}

/// Writes `content` to EF `fid` in test mode (CREATE-free: select, erase, update).
pub fn write_file(sim: &mut SimCard, fid: u16, content: &[u8]) {
    let mut card = session(sim);
    select_applet(&mut card);
    ok(
        &mut card,
        &Command::new(0, 0xA4, 2, 0x0C)
            .with_data(&fid.to_be_bytes())
            .unwrap(),
    );
    ok(&mut card, &Command::new(0, 0x0E, 0, 0));
    for (i, chunk) in content.chunks(255).enumerate() {
        let [p1, p2] = u16::try_from(i * 255).unwrap().to_be_bytes();
        ok(
            &mut card,
            &Command::new(0, 0xD6, p1, p2).with_data(chunk).unwrap(),
        );
    }
}

fn pin_block(pin: &str) -> Vec<u8> {
    let mut b = pin.as_bytes().to_vec();
    b.resize(8, 0xFF);
    b
}

/// Writes `data`, sets the CRN and the three PINs, then SET STATUS
/// PERSONALIZED and, when `lock`, LOCKED. Keys must be generated before.
pub fn write_card(sim: &mut SimCard, data: &CardData, lock: bool) {
    for (fid, content) in &data.files {
        write_file(sim, *fid, content);
    }
    let mut card = session(sim);
    select_applet(&mut card);
    ok(
        &mut card,
        &Command::new(0, 0xDA, 0xDF, 0x72)
            .with_data(data.crn.as_bytes())
            .unwrap(),
    );
    for (reference, block) in [
        (0x81, pin_block(ID_PIN)),
        (0x82, pin_block(SIGN_PIN)),
        (0x83, PUK.as_bytes().to_vec()),
    ] {
        ok(
            &mut card,
            &Command::new(0, 0x24, 0x01, reference)
                .with_data(&block)
                .unwrap()
                .sensitive(),
        );
    }
    // Test mode has no secure channel, so SET STATUS goes in plain (CLA 80).
    ok(&mut card, &Command::new(0x80, 0xF0, 0x40, 0x0F));
    if lock {
        ok(&mut card, &Command::new(0x80, 0xF0, 0x40, 0x83));
    }
}

/// A locked card of `profile` personalized by hand for the demo issuer.
pub fn genuine(profile_id: &str, pki: &IssuerPki, now: OffsetDateTime) -> (SimCard, CardData) {
    let p = profile(profile_id);
    let cfg = config(7, &p);
    let mut sim = blank(&p, &cfg);
    let points = generate_keys(&mut sim);
    let data = signed_card_data(pki, cfg.csn(), &points, now);
    write_card(&mut sim, &data, true);
    (sim, data)
}

/// A transport that keeps a copy of every command APDU sent to the card.
pub struct Recorder<'a> {
    /// The card.
    pub sim: &'a mut SimCard,
    /// Every command APDU sent, in order.
    pub commands: Vec<Vec<u8>>,
}

impl<'a> Recorder<'a> {
    /// Records what is sent to `sim`.
    pub fn new(sim: &'a mut SimCard) -> Self {
        Self {
            sim,
            commands: Vec::new(),
        }
    }

    /// Commands with this INS and P1.
    pub fn sent(&self, ins: u8, p1: u8) -> Vec<&[u8]> {
        self.commands
            .iter()
            .filter(|c| c.get(1) == Some(&ins) && c.get(2) == Some(&p1))
            .map(Vec::as_slice)
            .collect()
    }
}

impl kart_apdu::Transport for Recorder<'_> {
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), kart_apdu::TransportError> {
        self.commands.push(apdu.to_vec());
        self.sim.transmit(apdu, rx)
    }
    fn capabilities(&self) -> kart_apdu::CardCaps {
        self.sim.capabilities()
    }
}

/// The error from parsing `bytes` as a certificate, which must be
/// `Malformed` (panics otherwise).
#[track_caller]
pub fn malformed_certificate(bytes: &[u8]) -> PkiError {
    let err = Certificate::from_pem_or_der(bytes).expect_err("a malformed certificate");
    assert!(
        matches!(
            err,
            PkiError::Malformed {
                what: "certificate",
                ..
            }
        ),
        "{err:?}"
    );
    err
}

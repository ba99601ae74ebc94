//! The personalization plan: a pure function from a validated record, a
//! vendor profile and the card's facts to the ordered, named steps and their
//! APDUs. Data known in advance (identity files, CRN, PIN blocks, life-cycle
//! commands) is in the plan; data the card and issuer produce during
//! execution (public keys, holder certificates, the security object) is a
//! placeholder step that [`personalize`](crate::personalize) fills in.
//!
//! Files are split into the fewest UPDATE BINARY commands the profile allows
//! once the secure channel's C-MAC and C-DEC padding are accounted for
//! ([`max_write_chunk`]): 239 bytes on the short-APDU profiles (A, C), 2031
//! on the extended-length profile (B).
//!
//! ```
//! use kart_perso::plan::{max_write_chunk, update_binary};
//! let spec = kart_spec::Spec::embedded()?;
//! let a = spec.profile("vendor-a").unwrap();
//! assert_eq!(max_write_chunk(a), 239);
//! let cmds = update_binary(0x0102, &[0xAA; 500], max_write_chunk(a))?;
//! assert_eq!(cmds.len(), 1 + 3); // SELECT + 239 + 239 + 22 bytes
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use kart_apdu::{Command, CommandError, MAX_EXTENDED_DATA, MAX_SHORT_DATA};
use kart_spec::{Profile, Scp};

use crate::applet::{
    self, PinRef, EF_CERT_AUTH, EF_CERT_SIGN, EF_FACE, EF_FINGER, EF_ID, EF_SOD, TAG_CRN,
};
use crate::card_data::{self, CardDataError, CardFacts};
use crate::pin_mailer::Pins;
use crate::record::IdentityRecord;

/// Length of a C-MAC on the wire (GP SCP02 and SCP03).
const MAC_LEN: usize = 8;
/// Largest offset UPDATE BINARY can address (P1 bit 8 clear: 15 bits).
const MAX_OFFSET: usize = 0x7FFF;

/// The life cycle and key references are the applet's ([`crate::applet`]);
/// re-exported here, where plans name them.
pub use crate::applet::{KeyRef, Lifecycle};

/// Data that exists only during execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Derived {
    /// `EF.CERT_AUTH`: the certificate of the authentication key.
    AuthCertificate,
    /// `EF.CERT_SIGN`: the certificate of the signing key.
    SignCertificate,
    /// EF.SOD: the security object over every data file.
    SecurityObject,
}

impl Derived {
    /// The file the data goes to.
    pub fn fid(self) -> u16 {
        match self {
            Self::AuthCertificate => EF_CERT_AUTH.fid,
            Self::SignCertificate => EF_CERT_SIGN.fid,
            Self::SecurityObject => EF_SOD.fid,
        }
    }
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// SELECT the applet by AID, outside the secure channel.
    SelectApplet(Command),
    /// INITIALIZE UPDATE and EXTERNAL AUTHENTICATE (two APDUs, built by the channel).
    OpenChannel,
    /// Commands whose data is known now, sent in order inside the channel.
    Send(Vec<Command>),
    /// A command that answers a public key (generate, or read when the
    /// life cycle no longer allows generation).
    PublicKey(KeyRef, Command),
    /// SELECT + UPDATE BINARY of data derived during execution.
    Write(Derived),
}

/// One named step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// What it does, for logs, the journal and `--dry-run`.
    pub name: String,
    /// How.
    pub action: Action,
}

/// APDU and byte counts of the steps known in advance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Logical commands (before the secure channel wraps them).
    pub apdus: usize,
    /// Their encoded bytes (before wrapping).
    pub bytes: usize,
    /// Steps whose APDUs are not known yet.
    pub placeholders: usize,
}

/// What the plan is computed from.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// The validated application.
    pub record: &'a IdentityRecord,
    /// The card's vendor profile.
    pub profile: &'a Profile,
    /// CSN, CRN and dates.
    pub card: &'a CardFacts,
    /// The card's life cycle now.
    pub lifecycle: Lifecycle,
    /// Whether the card may hold data from an earlier attempt: each file is
    /// then cut to its new length after writing (ERASE BINARY).
    pub rewrite: bool,
    /// The PINs to set.
    pub pins: &'a Pins,
}

/// The ordered steps of one card's personalization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Largest UPDATE BINARY data field for this profile.
    pub chunk: usize,
    /// Whether files are cut to length after writing.
    pub rewrite: bool,
    /// The data files known in advance (FID, contents), for the security object.
    pub files: Vec<(u16, Vec<u8>)>,
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The card is locked: nothing can be written.
    #[error("the card is LOCKED; it cannot be personalized again")]
    Locked,
    /// The record does not encode.
    #[error(transparent)]
    CardData(#[from] CardDataError),
    /// A command could not be built.
    #[error("APDU cannot be built: {0}")]
    Command(#[from] CommandError),
    /// A file is larger than UPDATE BINARY can address.
    #[error("file {fid:04X} of {len} bytes is beyond the 32767-byte reach of UPDATE BINARY")]
    FileTooLarge {
        /// The file.
        fid: u16,
        /// Its length.
        len: usize,
    },
}

/// Builds the plan. Pure: the same input gives the same plan.
pub fn build(input: &PlanInput<'_>) -> Result<Plan, PlanError> {
    if input.lifecycle == Lifecycle::Locked {
        return Err(PlanError::Locked);
    }
    let chunk = max_write_chunk(input.profile);
    let rewrite = input.rewrite;
    let write = |fid, data: &[u8]| write_file(fid, data, chunk, rewrite);
    let step = |name: &str, action| Step {
        name: name.to_owned(),
        action,
    };
    let aid = input.profile.applet_aid.bytes();
    let mut files = vec![
        (EF_ID, card_data::ef_id(input.record, input.card)?),
        (EF_FACE, card_data::ef_face(input.record)?),
    ];
    if let Some(finger) = card_data::ef_finger(input.record)? {
        files.push((EF_FINGER, finger));
    }
    let mut steps = vec![
        // The probe already read the life cycle from the FCI: P2 0C asks
        // for none, which saves T=0 cards a GET RESPONSE.
        step(
            "select applet",
            Action::SelectApplet(applet::select_applet(aid)?),
        ),
        step("open secure channel", Action::OpenChannel),
        step(
            "set CRN",
            Action::Send(vec![applet::put_data(
                TAG_CRN,
                input.card.crn.as_str().as_bytes(),
            )?]),
        ),
    ];
    for (ef, data) in &files {
        let name = format!("write {}", ef.name);
        steps.push(step(&name, Action::Send(write(ef.fid, data)?)));
    }
    let files = files.into_iter().map(|(ef, data)| (ef.fid, data)).collect();
    let generate = input.lifecycle == Lifecycle::PrePersonalized;
    for (key, name) in [
        (KeyRef::Auth, "authentication key"),
        (KeyRef::Sign, "signing key"),
    ] {
        let verb = if generate { "generate" } else { "read" };
        // An RSA-2048 public key (265 bytes) needs more than a short Le:
        // a card with extended length takes one, others answer 61xx.
        let le = if input.profile.limits.extended_length {
            input.profile.limits.max_response_data.max(256)
        } else {
            256
        };
        let cmd = applet::public_key(key, generate, u32::try_from(le).unwrap_or(256))?;
        steps.push(step(&format!("{verb} {name}"), Action::PublicKey(key, cmd)));
    }
    steps.push(step(
        "write EF.CERT_AUTH",
        Action::Write(Derived::AuthCertificate),
    ));
    steps.push(step(
        "write EF.CERT_SIGN",
        Action::Write(Derived::SignCertificate),
    ));
    steps.push(step("write EF.SOD", Action::Write(Derived::SecurityObject)));
    for (pin, name, secret) in [
        (PinRef::IdPin, "set ID PIN", &input.pins.id_pin),
        (PinRef::SignPin, "set SIGN PIN", &input.pins.sign_pin),
        (PinRef::Puk, "set PUK", &input.pins.puk),
    ] {
        let block = applet::pin_block(pin, secret.expose());
        steps.push(step(
            name,
            Action::Send(vec![applet::set_pin(pin, &block)?]),
        ));
    }
    if generate {
        steps.push(step(
            "set status PERSONALIZED",
            Action::Send(vec![applet::set_status(Lifecycle::Personalized)]),
        ));
    }
    steps.push(step(
        "set status LOCKED",
        Action::Send(vec![applet::set_status(Lifecycle::Locked)]),
    ));
    Ok(Plan {
        steps,
        chunk,
        rewrite,
        files,
    })
}

impl Plan {
    /// Counts the commands known in advance, plus the two of the channel
    /// handshake; placeholder steps are counted separately.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for s in &self.steps {
            let cmds: &[Command] = match &s.action {
                Action::SelectApplet(cmd) | Action::PublicKey(_, cmd) => std::slice::from_ref(cmd),
                Action::Send(cmds) => cmds,
                Action::OpenChannel => {
                    c.apdus += 2;
                    &[]
                }
                Action::Write(_) => {
                    c.placeholders += 1;
                    &[]
                }
            };
            c.apdus += cmds.len();
            c.bytes += cmds.iter().map(Command::encoded_len).sum::<usize>();
        }
        c
    }

    /// The commands of a derived write, once its data exists.
    pub fn write_derived(&self, derived: Derived, data: &[u8]) -> Result<Vec<Command>, PlanError> {
        write_file(derived.fid(), data, self.chunk, self.rewrite)
    }
}

/// Prints the plan for `--dry-run`: step names and APDUs in hex, the data of
/// sensitive commands (PIN blocks) replaced by its length.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.steps.iter().enumerate() {
            writeln!(f, "{:2}. {}", i + 1, s.name)?;
            match &s.action {
                Action::SelectApplet(cmd) | Action::PublicKey(_, cmd) => show(f, cmd)?,
                Action::Send(cmds) => cmds.iter().try_for_each(|c| show(f, c))?,
                Action::OpenChannel => writeln!(
                    f,
                    "      INITIALIZE UPDATE, EXTERNAL AUTHENTICATE (keys diversified per card)"
                )?,
                Action::Write(d) => writeln!(
                    f,
                    "      SELECT {:04X}, UPDATE BINARY × ⌈len/{}⌉ (data made during execution)",
                    d.fid(),
                    self.chunk
                )?,
            }
        }
        let c = self.counts();
        writeln!(
            f,
            "{} APDUs, {} bytes known in advance; {} steps filled in during execution",
            c.apdus, c.bytes, c.placeholders
        )
    }
}

fn show(f: &mut fmt::Formatter<'_>, cmd: &Command) -> fmt::Result {
    let bytes = cmd.to_vec();
    if cmd.is_sensitive() {
        let header = bytes.get(..5).unwrap_or(&bytes);
        writeln!(
            f,
            "      {} <{} bytes redacted>",
            hex::encode_upper(header),
            cmd.data().len()
        )
    } else if bytes.len() > 40 {
        writeln!(
            f,
            "      {}… ({} bytes)",
            hex::encode_upper(bytes.get(..16).unwrap_or(&bytes)),
            bytes.len()
        )
    } else {
        writeln!(f, "      {}", hex::encode_upper(&bytes))
    }
}

/// The largest UPDATE BINARY data field that still fits the profile's
/// command limit once wrapped with C-MAC (8 bytes) and C-DEC (padding to
/// the cipher block, at least one byte: ISO 9797-1 method 2).
pub fn max_write_chunk(profile: &Profile) -> usize {
    let form_limit = if profile.limits.extended_length {
        MAX_EXTENDED_DATA
    } else {
        MAX_SHORT_DATA
    };
    let max = profile.limits.max_command_data.min(form_limit);
    let block = match profile.secure_channel.scp {
        Scp::Scp02 => 8,
        Scp::Scp03 => 16,
    };
    (max.saturating_sub(MAC_LEN) / block * block).saturating_sub(1)
}

/// SELECT of `fid` and UPDATE BINARY of `data` in chunks of `chunk` bytes.
pub fn update_binary(fid: u16, data: &[u8], chunk: usize) -> Result<Vec<Command>, PlanError> {
    write_file(fid, data, chunk, false)
}

fn write_file(
    fid: u16,
    data: &[u8],
    chunk: usize,
    rewrite: bool,
) -> Result<Vec<Command>, PlanError> {
    if data.len() > MAX_OFFSET {
        return Err(PlanError::FileTooLarge {
            fid,
            len: data.len(),
        });
    }
    let mut cmds = vec![applet::select_file(fid)?];
    for (i, part) in data.chunks(chunk.max(1)).enumerate() {
        cmds.push(applet::update_binary(offset(i * chunk.max(1)), part)?);
    }
    if rewrite {
        cmds.push(applet::erase_binary(offset(data.len())));
    }
    Ok(cmds)
}

fn offset(at: usize) -> u16 {
    // Callers keep `at` within MAX_OFFSET, so it fits 15 bits.
    u16::try_from(at.min(MAX_OFFSET)).unwrap_or(0x7FFF)
}

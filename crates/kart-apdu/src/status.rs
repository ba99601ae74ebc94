//! Status words SW1-SW2 (ISO/IEC 7816-4:2020 §5.6, Tables 5–6) with the
//! meanings `GlobalPlatform` Card Specification v2.3.1 gives them (§11.1.3).

use thiserror::Error;

/// The two trailer bytes of every response.
///
/// ```
/// use kart_apdu::{Status, StatusWord};
/// let sw = StatusWord::new(0x63, 0xC2);
/// assert_eq!(sw.status(), Status::VerificationFailed { retries_left: 2 });
/// assert_eq!(sw.to_string(), "63C2 (verification failed, 2 tries left)");
/// assert!(sw.check().is_err());
/// assert!(StatusWord::SUCCESS.check().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusWord(pub u16);

impl StatusWord {
    /// `9000`: normal processing.
    pub const SUCCESS: StatusWord = StatusWord(0x9000);
    /// `6281`: part of returned data may be corrupted.
    pub const CORRUPTED_DATA: StatusWord = StatusWord(0x6281);
    /// `6282`: end of file reached before reading Ne bytes.
    pub const END_OF_FILE: StatusWord = StatusWord(0x6282);
    /// `6283`: selected file deactivated.
    pub const FILE_DEACTIVATED: StatusWord = StatusWord(0x6283);
    /// `6300`: authentication failed (`GlobalPlatform`: host cryptogram wrong).
    pub const AUTHENTICATION_FAILED: StatusWord = StatusWord(0x6300);
    /// `6581`: memory failure.
    pub const MEMORY_FAILURE: StatusWord = StatusWord(0x6581);
    /// `6700`: wrong length.
    pub const WRONG_LENGTH: StatusWord = StatusWord(0x6700);
    /// `6881`: logical channel not supported.
    pub const LOGICAL_CHANNEL_NOT_SUPPORTED: StatusWord = StatusWord(0x6881);
    /// `6882`: secure messaging not supported.
    pub const SECURE_MESSAGING_NOT_SUPPORTED: StatusWord = StatusWord(0x6882);
    /// `6883`: last command of the chain expected.
    pub const LAST_COMMAND_OF_CHAIN_EXPECTED: StatusWord = StatusWord(0x6883);
    /// `6884`: command chaining not supported.
    pub const CHAINING_NOT_SUPPORTED: StatusWord = StatusWord(0x6884);
    /// `6900`: command not allowed.
    pub const COMMAND_NOT_ALLOWED: StatusWord = StatusWord(0x6900);
    /// `6981`: command incompatible with file structure.
    pub const INCOMPATIBLE_FILE_STRUCTURE: StatusWord = StatusWord(0x6981);
    /// `6982`: security status not satisfied.
    pub const SECURITY_STATUS_NOT_SATISFIED: StatusWord = StatusWord(0x6982);
    /// `6983`: authentication method blocked.
    pub const AUTH_METHOD_BLOCKED: StatusWord = StatusWord(0x6983);
    /// `6984`: reference data not usable.
    pub const REFERENCE_DATA_NOT_USABLE: StatusWord = StatusWord(0x6984);
    /// `6985`: conditions of use not satisfied.
    pub const CONDITIONS_NOT_SATISFIED: StatusWord = StatusWord(0x6985);
    /// `6986`: command not allowed (no current EF).
    pub const NO_CURRENT_EF: StatusWord = StatusWord(0x6986);
    /// `6987`: expected secure messaging data objects missing.
    pub const SM_DATA_OBJECTS_MISSING: StatusWord = StatusWord(0x6987);
    /// `6988`: incorrect secure messaging data objects (MAC wrong).
    pub const SM_DATA_OBJECTS_INCORRECT: StatusWord = StatusWord(0x6988);
    /// `6A80`: incorrect parameters in the data field.
    pub const WRONG_DATA: StatusWord = StatusWord(0x6A80);
    /// `6A81`: function not supported.
    pub const FUNCTION_NOT_SUPPORTED: StatusWord = StatusWord(0x6A81);
    /// `6A82`: file or application not found.
    pub const FILE_NOT_FOUND: StatusWord = StatusWord(0x6A82);
    /// `6A83`: record not found.
    pub const RECORD_NOT_FOUND: StatusWord = StatusWord(0x6A83);
    /// `6A84`: not enough memory space in the file.
    pub const NOT_ENOUGH_MEMORY: StatusWord = StatusWord(0x6A84);
    /// `6A85`: Nc inconsistent with TLV structure.
    pub const NC_INCONSISTENT_WITH_TLV: StatusWord = StatusWord(0x6A85);
    /// `6A86`: incorrect P1-P2.
    pub const INCORRECT_P1P2: StatusWord = StatusWord(0x6A86);
    /// `6A87`: Nc inconsistent with P1-P2.
    pub const NC_INCONSISTENT_WITH_P1P2: StatusWord = StatusWord(0x6A87);
    /// `6A88`: referenced data or reference data not found.
    pub const REFERENCED_DATA_NOT_FOUND: StatusWord = StatusWord(0x6A88);
    /// `6A89`: file already exists.
    pub const FILE_ALREADY_EXISTS: StatusWord = StatusWord(0x6A89);
    /// `6A8A`: DF name already exists.
    pub const DF_NAME_ALREADY_EXISTS: StatusWord = StatusWord(0x6A8A);
    /// `6B00`: wrong parameters P1-P2 (offset outside the EF).
    pub const WRONG_PARAMETERS: StatusWord = StatusWord(0x6B00);
    /// `6D00`: instruction code not supported or invalid.
    pub const INS_NOT_SUPPORTED: StatusWord = StatusWord(0x6D00);
    /// `6E00`: class not supported.
    pub const CLA_NOT_SUPPORTED: StatusWord = StatusWord(0x6E00);
    /// `6F00`: no precise diagnosis.
    pub const NO_PRECISE_DIAGNOSIS: StatusWord = StatusWord(0x6F00);

    /// `61xx`: `available` more bytes wait for GET RESPONSE (0 means 256 or more).
    pub const fn bytes_available(available: u8) -> Self {
        Self::new(0x61, available)
    }
    /// `63Cx`: verification failed with `retries_left` tries left (kept to 0–15).
    pub const fn verification_failed(retries_left: u8) -> Self {
        Self::new(0x63, 0xC0 | (retries_left & 0x0F))
    }
    /// `6Cxx`: wrong Le; `exact` bytes are available.
    pub const fn wrong_le(exact: u8) -> Self {
        Self::new(0x6C, exact)
    }
    /// `6700` with no qualification; ISO 7816-4 gives wrong length no SW2.
    pub const fn wrong_length() -> Self {
        Self::WRONG_LENGTH
    }

    /// Builds a status word from SW1 and SW2.
    pub const fn new(sw1: u8, sw2: u8) -> Self {
        StatusWord(u16::from_be_bytes([sw1, sw2]))
    }
    /// SW1.
    pub const fn sw1(self) -> u8 {
        (self.0 >> 8) as u8
    }
    /// SW2.
    pub const fn sw2(self) -> u8 {
        self.0 as u8
    }
    /// The two bytes as sent by the card.
    pub const fn to_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }
    /// `9000` (and nothing else) is success.
    pub const fn is_success(self) -> bool {
        self.0 == 0x9000
    }
    /// `62xx` and `63xx`: processing completed with a warning (ISO 7816-4 §5.6).
    pub const fn is_warning(self) -> bool {
        matches!(self.sw1(), 0x62 | 0x63)
    }
    /// The classified meaning.
    pub fn status(self) -> Status {
        Status::from(self)
    }
    /// `Ok(())` on `9000`, else the typed error.
    pub fn check(self) -> Result<(), StatusError> {
        if self.is_success() {
            Ok(())
        } else {
            Err(StatusError(self))
        }
    }
}

impl From<StatusWord> for u16 {
    fn from(sw: StatusWord) -> Self {
        sw.0
    }
}

impl From<u16> for StatusWord {
    fn from(v: u16) -> Self {
        StatusWord(v)
    }
}

impl std::fmt::Display for StatusWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04X} ({})", self.0, self.status())
    }
}

/// The four hex digits alone (`{:04X}` gives `6982`), for logs and reports
/// that carry the meaning elsewhere.
impl std::fmt::UpperHex for StatusWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::UpperHex::fmt(&self.0, f)
    }
}

/// A status word other than `9000`, as an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("card answered {0}")]
pub struct StatusError(pub StatusWord);

impl StatusError {
    /// The status word.
    pub fn sw(self) -> StatusWord {
        self.0
    }
    /// The classified meaning.
    pub fn status(self) -> Status {
        self.0.status()
    }
}

/// What a status word means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// `9000`.
    Success,
    /// `61xx`: xx more bytes available with GET RESPONSE (0 means 256 or more).
    BytesAvailable(u8),
    /// `6281`: part of returned data may be corrupted.
    CorruptedData,
    /// `6282`: end of file reached before reading Ne bytes.
    EndOfFile,
    /// `6283`: selected file deactivated.
    FileDeactivated,
    /// Other `62xx`: warning, memory unchanged.
    WarningUnchanged(u8),
    /// `63Cx`: verification failed, x tries left.
    VerificationFailed {
        /// Retries left on the reference data.
        retries_left: u8,
    },
    /// `6300`: authentication failed (`GlobalPlatform`: host cryptogram wrong).
    AuthenticationFailed,
    /// Other `63xx`: warning, memory changed.
    WarningChanged(u8),
    /// `64xx`: execution error, memory unchanged.
    ExecutionErrorUnchanged(u8),
    /// `6581`: memory failure.
    MemoryFailure,
    /// Other `65xx`: execution error, memory changed.
    ExecutionErrorChanged(u8),
    /// `6700`: wrong length.
    WrongLength,
    /// `6881`: logical channel not supported.
    LogicalChannelNotSupported,
    /// `6882`: secure messaging not supported.
    SecureMessagingNotSupported,
    /// `6883`: last command of the chain expected.
    LastCommandOfChainExpected,
    /// `6884`: command chaining not supported.
    ChainingNotSupported,
    /// Other `68xx`: function in CLA not supported.
    ClaFunctionNotSupported(u8),
    /// `6900`: command not allowed.
    CommandNotAllowed,
    /// `6981`: command incompatible with file structure.
    IncompatibleFileStructure,
    /// `6982`: security status not satisfied.
    SecurityStatusNotSatisfied,
    /// `6983`: authentication method blocked.
    AuthenticationMethodBlocked,
    /// `6984`: reference data not usable.
    ReferenceDataNotUsable,
    /// `6985`: conditions of use not satisfied.
    ConditionsOfUseNotSatisfied,
    /// `6986`: command not allowed (no current EF).
    NoCurrentEf,
    /// `6987`: expected secure messaging data objects missing.
    SmDataObjectsMissing,
    /// `6988`: incorrect secure messaging data objects (MAC wrong).
    SmDataObjectsIncorrect,
    /// Other `69xx`: command not allowed.
    CommandNotAllowedOther(u8),
    /// `6A80`: incorrect parameters in the data field.
    WrongData,
    /// `6A81`: function not supported.
    FunctionNotSupported,
    /// `6A82`: file or application not found.
    FileNotFound,
    /// `6A83`: record not found.
    RecordNotFound,
    /// `6A84`: not enough memory space in the file.
    NotEnoughMemory,
    /// `6A85`: Nc inconsistent with TLV structure.
    NcInconsistentWithTlv,
    /// `6A86`: incorrect P1-P2.
    IncorrectP1P2,
    /// `6A87`: Nc inconsistent with P1-P2.
    NcInconsistentWithP1P2,
    /// `6A88`: referenced data or reference data not found.
    ReferencedDataNotFound,
    /// `6A89`: file already exists.
    FileAlreadyExists,
    /// `6A8A`: DF name already exists.
    DfNameAlreadyExists,
    /// Other `6Axx`: wrong parameters P1-P2.
    WrongParametersOther(u8),
    /// `6B00`: wrong parameters P1-P2 (offset outside the EF).
    WrongParameters,
    /// `6Cxx`: wrong Le; xx is the exact length available.
    WrongLe(u8),
    /// `6D00`: instruction code not supported or invalid.
    InsNotSupported,
    /// `6E00`: class not supported.
    ClaNotSupported,
    /// `6F00`: no precise diagnosis.
    NoPreciseDiagnosis,
    /// Anything else.
    Unknown(u16),
}

impl From<StatusWord> for Status {
    fn from(sw: StatusWord) -> Self {
        let (sw1, sw2) = (sw.sw1(), sw.sw2());
        match (sw1, sw2) {
            (0x90, 0x00) => Status::Success,
            (0x61, n) => Status::BytesAvailable(n),
            (0x62, 0x81) => Status::CorruptedData,
            (0x62, 0x82) => Status::EndOfFile,
            (0x62, 0x83) => Status::FileDeactivated,
            (0x62, n) => Status::WarningUnchanged(n),
            (0x63, 0x00) => Status::AuthenticationFailed,
            (0x63, n) if n & 0xF0 == 0xC0 => Status::VerificationFailed {
                retries_left: n & 0x0F,
            },
            (0x63, n) => Status::WarningChanged(n),
            (0x64, n) => Status::ExecutionErrorUnchanged(n),
            (0x65, 0x81) => Status::MemoryFailure,
            (0x65, n) => Status::ExecutionErrorChanged(n),
            (0x67, 0x00) => Status::WrongLength,
            (0x68, 0x81) => Status::LogicalChannelNotSupported,
            (0x68, 0x82) => Status::SecureMessagingNotSupported,
            (0x68, 0x83) => Status::LastCommandOfChainExpected,
            (0x68, 0x84) => Status::ChainingNotSupported,
            (0x68, n) => Status::ClaFunctionNotSupported(n),
            (0x69, 0x00) => Status::CommandNotAllowed,
            (0x69, 0x81) => Status::IncompatibleFileStructure,
            (0x69, 0x82) => Status::SecurityStatusNotSatisfied,
            (0x69, 0x83) => Status::AuthenticationMethodBlocked,
            (0x69, 0x84) => Status::ReferenceDataNotUsable,
            (0x69, 0x85) => Status::ConditionsOfUseNotSatisfied,
            (0x69, 0x86) => Status::NoCurrentEf,
            (0x69, 0x87) => Status::SmDataObjectsMissing,
            (0x69, 0x88) => Status::SmDataObjectsIncorrect,
            (0x69, n) => Status::CommandNotAllowedOther(n),
            (0x6A, 0x80) => Status::WrongData,
            (0x6A, 0x81) => Status::FunctionNotSupported,
            (0x6A, 0x82) => Status::FileNotFound,
            (0x6A, 0x83) => Status::RecordNotFound,
            (0x6A, 0x84) => Status::NotEnoughMemory,
            (0x6A, 0x85) => Status::NcInconsistentWithTlv,
            (0x6A, 0x86) => Status::IncorrectP1P2,
            (0x6A, 0x87) => Status::NcInconsistentWithP1P2,
            (0x6A, 0x88) => Status::ReferencedDataNotFound,
            (0x6A, 0x89) => Status::FileAlreadyExists,
            (0x6A, 0x8A) => Status::DfNameAlreadyExists,
            (0x6A, n) => Status::WrongParametersOther(n),
            (0x6B, 0x00) => Status::WrongParameters,
            (0x6C, n) => Status::WrongLe(n),
            (0x6D, 0x00) => Status::InsNotSupported,
            (0x6E, 0x00) => Status::ClaNotSupported,
            (0x6F, 0x00) => Status::NoPreciseDiagnosis,
            _ => Status::Unknown(sw.0),
        }
    }
}

impl From<Status> for StatusWord {
    /// The status word a card sends for `status`: the inverse of
    /// [`Status::from`] for every status that word classifies as.
    fn from(status: Status) -> Self {
        let sw = |sw1, sw2| StatusWord::new(sw1, sw2);
        match status {
            Status::Success => StatusWord::SUCCESS,
            Status::BytesAvailable(n) => StatusWord::bytes_available(n),
            Status::CorruptedData => StatusWord::CORRUPTED_DATA,
            Status::EndOfFile => StatusWord::END_OF_FILE,
            Status::FileDeactivated => StatusWord::FILE_DEACTIVATED,
            Status::WarningUnchanged(n) => sw(0x62, n),
            Status::VerificationFailed { retries_left } => {
                StatusWord::verification_failed(retries_left)
            }
            Status::AuthenticationFailed => StatusWord::AUTHENTICATION_FAILED,
            Status::WarningChanged(n) => sw(0x63, n),
            Status::ExecutionErrorUnchanged(n) => sw(0x64, n),
            Status::MemoryFailure => StatusWord::MEMORY_FAILURE,
            Status::ExecutionErrorChanged(n) => sw(0x65, n),
            Status::WrongLength => StatusWord::WRONG_LENGTH,
            Status::LogicalChannelNotSupported => StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED,
            Status::SecureMessagingNotSupported => StatusWord::SECURE_MESSAGING_NOT_SUPPORTED,
            Status::LastCommandOfChainExpected => StatusWord::LAST_COMMAND_OF_CHAIN_EXPECTED,
            Status::ChainingNotSupported => StatusWord::CHAINING_NOT_SUPPORTED,
            Status::ClaFunctionNotSupported(n) => sw(0x68, n),
            Status::CommandNotAllowed => StatusWord::COMMAND_NOT_ALLOWED,
            Status::IncompatibleFileStructure => StatusWord::INCOMPATIBLE_FILE_STRUCTURE,
            Status::SecurityStatusNotSatisfied => StatusWord::SECURITY_STATUS_NOT_SATISFIED,
            Status::AuthenticationMethodBlocked => StatusWord::AUTH_METHOD_BLOCKED,
            Status::ReferenceDataNotUsable => StatusWord::REFERENCE_DATA_NOT_USABLE,
            Status::ConditionsOfUseNotSatisfied => StatusWord::CONDITIONS_NOT_SATISFIED,
            Status::NoCurrentEf => StatusWord::NO_CURRENT_EF,
            Status::SmDataObjectsMissing => StatusWord::SM_DATA_OBJECTS_MISSING,
            Status::SmDataObjectsIncorrect => StatusWord::SM_DATA_OBJECTS_INCORRECT,
            Status::CommandNotAllowedOther(n) => sw(0x69, n),
            Status::WrongData => StatusWord::WRONG_DATA,
            Status::FunctionNotSupported => StatusWord::FUNCTION_NOT_SUPPORTED,
            Status::FileNotFound => StatusWord::FILE_NOT_FOUND,
            Status::RecordNotFound => StatusWord::RECORD_NOT_FOUND,
            Status::NotEnoughMemory => StatusWord::NOT_ENOUGH_MEMORY,
            Status::NcInconsistentWithTlv => StatusWord::NC_INCONSISTENT_WITH_TLV,
            Status::IncorrectP1P2 => StatusWord::INCORRECT_P1P2,
            Status::NcInconsistentWithP1P2 => StatusWord::NC_INCONSISTENT_WITH_P1P2,
            Status::ReferencedDataNotFound => StatusWord::REFERENCED_DATA_NOT_FOUND,
            Status::FileAlreadyExists => StatusWord::FILE_ALREADY_EXISTS,
            Status::DfNameAlreadyExists => StatusWord::DF_NAME_ALREADY_EXISTS,
            Status::WrongParametersOther(n) => sw(0x6A, n),
            Status::WrongParameters => StatusWord::WRONG_PARAMETERS,
            Status::WrongLe(n) => StatusWord::wrong_le(n),
            Status::InsNotSupported => StatusWord::INS_NOT_SUPPORTED,
            Status::ClaNotSupported => StatusWord::CLA_NOT_SUPPORTED,
            Status::NoPreciseDiagnosis => StatusWord::NO_PRECISE_DIAGNOSIS,
            Status::Unknown(code) => StatusWord(code),
        }
    }
}

impl PartialEq<Status> for StatusWord {
    fn eq(&self, other: &Status) -> bool {
        self.status() == *other
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Success => f.write_str("success"),
            Status::BytesAvailable(0) => f.write_str("256 or more response bytes available"),
            Status::BytesAvailable(n) => write!(f, "{n} more response bytes available"),
            Status::CorruptedData => f.write_str("part of the returned data may be corrupted"),
            Status::EndOfFile => f.write_str("end of file reached before reading Le bytes"),
            Status::FileDeactivated => f.write_str("selected file is deactivated"),
            Status::WarningUnchanged(n) => write!(f, "warning {n:02X}, memory unchanged"),
            Status::VerificationFailed { retries_left: 1 } => {
                f.write_str("verification failed, 1 try left")
            }
            Status::VerificationFailed { retries_left } => {
                write!(f, "verification failed, {retries_left} tries left")
            }
            Status::AuthenticationFailed => f.write_str("authentication failed"),
            Status::WarningChanged(n) => write!(f, "warning {n:02X}, memory changed"),
            Status::ExecutionErrorUnchanged(n) => {
                write!(f, "execution error {n:02X}, memory unchanged")
            }
            Status::MemoryFailure => f.write_str("memory failure"),
            Status::ExecutionErrorChanged(n) => {
                write!(f, "execution error {n:02X}, memory changed")
            }
            Status::WrongLength => f.write_str("wrong length"),
            Status::LogicalChannelNotSupported => f.write_str("logical channel not supported"),
            Status::SecureMessagingNotSupported => f.write_str("secure messaging not supported"),
            Status::LastCommandOfChainExpected => f.write_str("last command of the chain expected"),
            Status::ChainingNotSupported => f.write_str("command chaining not supported"),
            Status::ClaFunctionNotSupported(n) => {
                write!(f, "function in CLA not supported ({n:02X})")
            }
            Status::CommandNotAllowed => f.write_str("command not allowed"),
            Status::IncompatibleFileStructure => {
                f.write_str("command incompatible with file structure")
            }
            Status::SecurityStatusNotSatisfied => f.write_str("security status not satisfied"),
            Status::AuthenticationMethodBlocked => f.write_str("authentication method blocked"),
            Status::ReferenceDataNotUsable => f.write_str("reference data not usable"),
            Status::ConditionsOfUseNotSatisfied => f.write_str("conditions of use not satisfied"),
            Status::NoCurrentEf => f.write_str("command not allowed, no current EF"),
            Status::SmDataObjectsMissing => {
                f.write_str("expected secure messaging data objects missing")
            }
            Status::SmDataObjectsIncorrect => {
                f.write_str("incorrect secure messaging data objects")
            }
            Status::CommandNotAllowedOther(n) => write!(f, "command not allowed ({n:02X})"),
            Status::WrongData => f.write_str("incorrect parameters in the data field"),
            Status::FunctionNotSupported => f.write_str("function not supported"),
            Status::FileNotFound => f.write_str("file or application not found"),
            Status::RecordNotFound => f.write_str("record not found"),
            Status::NotEnoughMemory => f.write_str("not enough memory space in the file"),
            Status::NcInconsistentWithTlv => f.write_str("Nc inconsistent with TLV structure"),
            Status::IncorrectP1P2 => f.write_str("incorrect parameters P1-P2"),
            Status::NcInconsistentWithP1P2 => f.write_str("Nc inconsistent with P1-P2"),
            Status::ReferencedDataNotFound => f.write_str("referenced data not found"),
            Status::FileAlreadyExists => f.write_str("file already exists"),
            Status::DfNameAlreadyExists => f.write_str("DF name already exists"),
            Status::WrongParametersOther(n) => write!(f, "wrong parameters ({n:02X})"),
            Status::WrongParameters => f.write_str("wrong parameters P1-P2"),
            Status::WrongLe(n) => write!(f, "wrong Le, {n} bytes available"),
            Status::InsNotSupported => f.write_str("instruction not supported"),
            Status::ClaNotSupported => f.write_str("class not supported"),
            Status::NoPreciseDiagnosis => f.write_str("no precise diagnosis"),
            Status::Unknown(_) => f.write_str("unknown status"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Status, StatusWord};

    /// ISO/IEC 7816-4:2020 Tables 5 and 6, one row per fixed meaning.
    const ISO_7816_4: &[(u16, Status)] = &[
        (0x9000, Status::Success),
        (0x6281, Status::CorruptedData),
        (0x6282, Status::EndOfFile),
        (0x6283, Status::FileDeactivated),
        (0x6581, Status::MemoryFailure),
        (0x6700, Status::WrongLength),
        (0x6881, Status::LogicalChannelNotSupported),
        (0x6882, Status::SecureMessagingNotSupported),
        (0x6883, Status::LastCommandOfChainExpected),
        (0x6884, Status::ChainingNotSupported),
        (0x6900, Status::CommandNotAllowed),
        (0x6981, Status::IncompatibleFileStructure),
        (0x6982, Status::SecurityStatusNotSatisfied),
        (0x6983, Status::AuthenticationMethodBlocked),
        (0x6984, Status::ReferenceDataNotUsable),
        (0x6985, Status::ConditionsOfUseNotSatisfied),
        (0x6986, Status::NoCurrentEf),
        (0x6987, Status::SmDataObjectsMissing),
        (0x6988, Status::SmDataObjectsIncorrect),
        (0x6A80, Status::WrongData),
        (0x6A81, Status::FunctionNotSupported),
        (0x6A82, Status::FileNotFound),
        (0x6A83, Status::RecordNotFound),
        (0x6A84, Status::NotEnoughMemory),
        (0x6A85, Status::NcInconsistentWithTlv),
        (0x6A86, Status::IncorrectP1P2),
        (0x6A87, Status::NcInconsistentWithP1P2),
        (0x6A88, Status::ReferencedDataNotFound),
        (0x6A89, Status::FileAlreadyExists),
        (0x6A8A, Status::DfNameAlreadyExists),
        (0x6B00, Status::WrongParameters),
        (0x6D00, Status::InsNotSupported),
        (0x6E00, Status::ClaNotSupported),
        (0x6F00, Status::NoPreciseDiagnosis),
        (0x63C3, Status::VerificationFailed { retries_left: 3 }),
        (0x6110, Status::BytesAvailable(0x10)),
        (0x6C0A, Status::WrongLe(0x0A)),
    ];

    #[test]
    fn iso_7816_4_table_classifies_both_ways() {
        for &(code, status) in ISO_7816_4 {
            assert_eq!(StatusWord(code).status(), status, "{code:04X}");
            assert_eq!(StatusWord::from(status), StatusWord(code), "{status:?}");
        }
    }

    #[test]
    fn every_status_word_round_trips_through_its_status() {
        for code in 0..=u16::MAX {
            let sw = StatusWord(code);
            assert_eq!(StatusWord::from(sw.status()), sw, "{code:04X}");
        }
    }

    #[test]
    fn const_constructors_build_the_iso_codes() {
        assert_eq!(StatusWord::verification_failed(2), StatusWord(0x63C2));
        assert_eq!(StatusWord::verification_failed(0x1F), StatusWord(0x63CF));
        assert_eq!(StatusWord::bytes_available(0), StatusWord(0x6100));
        assert_eq!(StatusWord::wrong_le(0x2A), StatusWord(0x6C2A));
        assert_eq!(StatusWord::wrong_length(), StatusWord(0x6700));
        assert_eq!(
            StatusWord::SECURITY_STATUS_NOT_SATISFIED,
            Status::SecurityStatusNotSatisfied
        );
        assert!(StatusWord::FILE_NOT_FOUND != Status::Success);
        assert_eq!(format!("{:04X}", StatusWord::WRONG_DATA), "6A80");
    }
}

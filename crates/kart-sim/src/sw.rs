//! The status words the spec names (ISO/IEC 7816-4, GlobalPlatform).

pub(crate) const OK: u16 = 0x9000;
pub(crate) const END_OF_FILE: u16 = 0x6282;
pub(crate) const WRONG_LENGTH: u16 = 0x6700;
pub(crate) const LOGICAL_CHANNEL: u16 = 0x6881;
pub(crate) const LAST_OF_CHAIN_EXPECTED: u16 = 0x6883;
pub(crate) const CHAINING_UNSUPPORTED: u16 = 0x6884;
pub(crate) const SECURITY: u16 = 0x6982;
pub(crate) const BLOCKED: u16 = 0x6983;
pub(crate) const NOT_USABLE: u16 = 0x6984;
pub(crate) const CONDITIONS: u16 = 0x6985;
pub(crate) const NO_CURRENT_EF: u16 = 0x6986;
pub(crate) const WRONG_DATA: u16 = 0x6A80;
pub(crate) const NOT_FOUND: u16 = 0x6A82;
pub(crate) const NO_SPACE: u16 = 0x6A84;
pub(crate) const P1P2: u16 = 0x6A86;
pub(crate) const REF_NOT_FOUND: u16 = 0x6A88;
pub(crate) const WRONG_OFFSET: u16 = 0x6B00;
pub(crate) const INS: u16 = 0x6D00;
pub(crate) const CLA: u16 = 0x6E00;
pub(crate) const NO_DIAGNOSIS: u16 = 0x6F00;

/// `63CX`.
pub(crate) fn tries(left: u8) -> u16 {
    0x63C0 | u16::from(left & 0x0F)
}
/// `6Cxx` (`00` = 256).
pub(crate) fn exact_le(len: usize) -> u16 {
    0x6C00 | (len & 0xFF) as u16
}
/// `61xx` (`00` = 256 or more).
pub(crate) fn more(len: usize) -> u16 {
    0x6100 | len.min(256) as u16 & 0xFF
}

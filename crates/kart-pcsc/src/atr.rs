//! What the ATR and the reader say about APDU sizes, turned into [`CardCaps`].

use kart_apdu::{CardCaps, MAX_EXTENDED_DATA};

/// A short APDU at its largest: header, Lc, 255 data bytes, Le.
const MAX_SHORT_APDU: usize = 4 + 1 + 255 + 1;
/// Header, 3-byte Lc and 2-byte Le around the data of an extended APDU.
const EXTENDED_OVERHEAD: usize = 4 + 3 + 2;

/// The historical bytes of an ATR (ISO/IEC 7816-3 §8.2), if the ATR is
/// well formed enough to find them.
///
/// ```
/// // ATR of a JCOP card: 3B 8A 80 01 + historical bytes + TCK.
/// let atr = [0x3B, 0x8A, 0x80, 0x01, 0x4A, 0x43, 0x4F, 0x50, 0x33, 0x31, 0x56, 0x32, 0x33, 0x32, 0x7A];
/// assert_eq!(kart_pcsc::historical_bytes(&atr), Some(&b"JCOP31V232"[..]));
/// ```
pub fn historical_bytes(atr: &[u8]) -> Option<&[u8]> {
    let t0 = *atr.get(1)?;
    let k = usize::from(t0 & 0x0F);
    let mut y = t0 >> 4;
    let mut i = 2;
    loop {
        // TA, TB, TC present per bits 1..3 of Y; TD per bit 4 chains on.
        i += usize::from(y & 1) + usize::from((y >> 1) & 1) + usize::from((y >> 2) & 1);
        if y & 0x08 == 0 {
            break;
        }
        y = *atr.get(i)? >> 4;
        i += 1;
    }
    atr.get(i..i + k)
}

/// Command chaining and extended length as announced in the "card
/// capabilities" (compact-TLV tag `7`, third software function table,
/// ISO/IEC 7816-4 §8.1.1.2.7) of the historical bytes; `(false, false)` when
/// the ATR does not say.
pub fn atr_capabilities(atr: &[u8]) -> (bool, bool) {
    let Some(hist) = historical_bytes(atr) else {
        return (false, false);
    };
    let tlvs = match hist.split_first() {
        Some((0x80, rest)) => rest,
        // Category 00: the last three bytes are a status indicator.
        Some((0x00, rest)) => rest.get(..rest.len().saturating_sub(3)).unwrap_or_default(),
        _ => return (false, false),
    };
    let mut rest = tlvs;
    while let Some((&tl, tail)) = rest.split_first() {
        let len = usize::from(tl & 0x0F);
        let Some(value) = tail.get(..len) else { break };
        if tl >> 4 == 0x7 {
            if let Some(&third) = value.get(2) {
                return (third & 0x80 != 0, third & 0x40 != 0);
            }
        }
        rest = tail.get(len..).unwrap_or_default();
    }
    (false, false)
}

/// The capabilities of a card with this ATR in a reader that takes at most
/// `max_input` bytes per command (`SCARD_ATTR_MAXINPUT`), if it says.
///
/// Extended length needs both the card (ATR) and the reader: a reader that
/// reports nothing is trusted with what the card announces, since pcscd
/// itself carries extended APDUs.
pub fn caps_for(atr: &[u8], max_input: Option<usize>) -> CardCaps {
    let (chaining, card_extended) = atr_capabilities(atr);
    let reader_limit = max_input.unwrap_or(usize::MAX);
    let extended = card_extended && reader_limit > MAX_SHORT_APDU;
    if extended {
        CardCaps {
            extended_length: true,
            chaining,
            max_command_data: reader_limit
                .saturating_sub(EXTENDED_OVERHEAD)
                .min(MAX_EXTENDED_DATA),
            max_response_data: 65_536,
        }
    } else {
        CardCaps {
            chaining,
            ..CardCaps::SHORT_ONLY
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Yubikey 5 NFC ATR (pcsc-tools smartcard_list.txt): historical bytes
    // 80 73 C0 21 C0 57 59 75 62 69 4B 65 79: card capabilities 73 C0 21 C0,
    // third byte C0 = chaining + extended Lc/Le.
    const YUBIKEY5: [u8; 23] = [
        0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57,
        0x59, 0x75, 0x62, 0x69, 0x4B, 0x65, 0x79, 0x40,
    ];

    #[test]
    fn yubikey_atr_announces_chaining_and_extended_length() {
        assert_eq!(historical_bytes(&YUBIKEY5).map(<[u8]>::len), Some(13));
        assert_eq!(atr_capabilities(&YUBIKEY5), (true, true));
        let caps = caps_for(&YUBIKEY5, None);
        assert!(caps.extended_length && caps.chaining);
        assert_eq!(caps.max_command_data, MAX_EXTENDED_DATA);
    }

    #[test]
    fn a_reader_limited_to_short_apdus_disables_extended_length() {
        let caps = caps_for(&YUBIKEY5, Some(261));
        assert!(!caps.extended_length);
        assert!(caps.chaining);
        assert_eq!(caps.max_command_data, 255);
        let big = caps_for(&YUBIKEY5, Some(1024));
        assert_eq!(big.max_command_data, 1024 - 9);
    }

    #[test]
    fn atr_without_capabilities_gives_short_only() {
        // T=0 ATR shape listed for Iranian ID cards (real-card.md): no TD1.
        let t0 = [
            0x3B, 0x7F, 0x94, 0x00, 0x00, 0x80, 0x31, 0x80, 0x65, 0xB0, 0x85, 0x03, 0x00, 0xEF,
            0x12, 0x0F, 0xFF, 0x82, 0x90, 0x00,
        ];
        assert_eq!(caps_for(&t0, None), CardCaps::SHORT_ONLY);
    }

    #[test]
    fn truncated_or_garbage_atrs_do_not_panic() {
        for atr in [
            &[][..],
            &[0x3B],
            &[0x3B, 0xFF],
            &[0x3B, 0x8F, 0x80],
            &[0x3B, 0x81, 0x80, 0x01, 0x80],
        ] {
            assert_eq!(atr_capabilities(atr), (false, false));
        }
    }
}

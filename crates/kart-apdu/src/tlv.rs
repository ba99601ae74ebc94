//! BER-TLV helpers over the `iso7816-tlv` crate (ISO 7816-4 §6.3).

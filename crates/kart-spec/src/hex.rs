//! Hex strings in the TOML files, decoded at load time.

use serde::Deserialize;

/// Bytes written as a hex string in the spec (`"A000000151000000"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Hex(pub Vec<u8>);

impl TryFrom<String> for Hex {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        hex::decode(&s)
            .map(Hex)
            .map_err(|e| format!("`{s}` is not a hex byte string: {e}"))
    }
}

impl Hex {
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
    /// The bytes as a big-endian number (FIDs, two-byte tags); `None` if longer than 4 bytes.
    pub fn to_u32(&self) -> Option<u32> {
        (self.0.len() <= 4).then(|| self.0.iter().fold(0, |acc, b| acc << 8 | u32::from(*b)))
    }
}

impl std::fmt::Display for Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode_upper(&self.0))
    }
}

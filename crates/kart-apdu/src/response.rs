//! Response APDUs: optional data field followed by SW1-SW2 (ISO 7816-4 §5.1).

use crate::status::{StatusError, StatusWord};
use thiserror::Error;

/// Why raw bytes are not a response APDU.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// Fewer than the two status bytes.
    #[error("response of {0} bytes has no complete status word")]
    TooShort(usize),
}

/// A response APDU.
///
/// ```
/// use kart_apdu::{Response, StatusWord};
/// let r = Response::from_bytes(&[0x01, 0x02, 0x90, 0x00])?;
/// assert_eq!(r.data(), &[0x01, 0x02]);
/// assert_eq!(r.sw(), StatusWord::SUCCESS);
/// assert!(Response::from_bytes(&[0x90]).is_err());
/// # Ok::<(), kart_apdu::ResponseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    data: Vec<u8>,
    sw: StatusWord,
}

impl Response {
    /// A response from its parts.
    pub fn new(data: Vec<u8>, sw: StatusWord) -> Self {
        Self { data, sw }
    }

    /// Parses raw bytes: everything before the last two bytes is data.
    pub fn from_bytes(raw: &[u8]) -> Result<Self, ResponseError> {
        match raw {
            [data @ .., sw1, sw2] => Ok(Self::new(data.to_vec(), StatusWord::new(*sw1, *sw2))),
            _ => Err(ResponseError::TooShort(raw.len())),
        }
    }

    /// The data field.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
    /// The status word.
    pub fn sw(&self) -> StatusWord {
        self.sw
    }
    /// Whether the status word is `9000`.
    pub fn is_success(&self) -> bool {
        self.sw.is_success()
    }
    /// The data on `9000`, else the status as a typed error.
    pub fn into_data(self) -> Result<Vec<u8>, StatusError> {
        self.sw.check().map(|()| self.data)
    }
    /// Data followed by SW1 SW2.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.data.len() + 2);
        v.extend_from_slice(&self.data);
        v.extend_from_slice(&self.sw.to_bytes());
        v
    }
}

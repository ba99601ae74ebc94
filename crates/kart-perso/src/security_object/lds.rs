//! The signed content: an ICAO 9303 `LDSSecurityObject` (version 0).
//!
//! ```text
//! LDSSecurityObject ::= SEQUENCE {
//!   version LDSSecurityObjectVersion,            -- v0(0)
//!   hashAlgorithm DigestAlgorithmIdentifier,
//!   dataGroupHashValues SEQUENCE OF DataGroupHash }
//! DataGroupHash ::= SEQUENCE {
//!   dataGroupNumber INTEGER,                     -- here: the file id (FID)
//!   dataGroupHashValue OCTET STRING }
//! ```

use der::asn1::OctetString;
use der::Sequence;
use x509_cert::spki::AlgorithmIdentifierOwned;

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(super) struct LdsSecurityObject {
    pub version: u8,
    pub hash_algorithm: AlgorithmIdentifierOwned,
    pub data_group_hash_values: Vec<DataGroupHash>,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(super) struct DataGroupHash {
    pub data_group_number: u16,
    pub data_group_hash_value: OctetString,
}

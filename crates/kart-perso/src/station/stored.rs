//! A record read back from the journal when its application is claimed:
//! every field parsed again by the validator's own parsers, and the photo
//! read (and checked) now, not when the batch was loaded.

use crate::journal::StoredRecord;
use crate::record::{
    Gender, IdentityRecord, LatinText, Name, NationalCode, PersianText, Photo, Pin, Problem,
    SolarDate,
};

/// The identity record of a stored record, with the batch's PIN if it set one.
pub(super) fn identity(stored: StoredRecord, pin: Option<Pin>) -> Result<IdentityRecord, Problem> {
    let name = |fa: &str, en: &str| -> Result<Name, Problem> {
        Ok(Name {
            fa: PersianText::parse(fa)?,
            en: LatinText::parse(en)?,
        })
    };
    Ok(IdentityRecord {
        line: stored.line,
        national_code: NationalCode::parse(&stored.national_code)?,
        given_name: name(&stored.given_name_fa, &stored.given_name_en)?,
        family_name: name(&stored.family_name_fa, &stored.family_name_en)?,
        father_name: name(&stored.father_name_fa, &stored.father_name_en)?,
        birth_date: SolarDate::parse(&stored.birth_date)?,
        gender: Gender::parse(&stored.gender)?,
        pin,
        photo: Photo::load(&stored.photo)?,
        photo_path: stored.photo,
        fingerprint: stored.fingerprint,
        replacement: stored.replacement,
        tracking_code: stored.tracking,
    })
}

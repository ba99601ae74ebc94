//! Batch records in the shared journal: the store's primitives for the
//! batch rules of [`super::super::records`] (written once, for every store)
//! and the record queries.

use postgres::{GenericClient, Transaction};

use super::super::records::{path_bytes, path_from, Holder, Known, RowOps};
use super::super::{parse_tracking, JournalError, State, StoredRecord, Superseded};
use super::{known_state, load, log_event, NOW_MS};
use crate::record::TrackingCode;

/// The PostgreSQL store's primitives, inside one transaction.
pub(super) struct PgRows<'a, 'c>(pub(super) &'a mut Transaction<'c>);

fn line_of(stored: i64) -> Result<u64, JournalError> {
    u64::try_from(stored).map_err(|_| JournalError::Corrupt(format!("line {stored}")))
}

impl RowOps for PgRows<'_, '_> {
    fn known(&mut self, tracking: &TrackingCode) -> Result<Option<Known>, JournalError> {
        let row = self.0.query_opt(
            "SELECT a.batch_id, b.name, a.state, a.card_serial, r.line,
                    r.national_code IS NOT NULL, a.reason
             FROM applications a JOIN batches b ON b.id = a.batch_id
             LEFT JOIN records r ON r.tracking = a.tracking
             WHERE a.tracking = $1 FOR UPDATE OF a",
            &[&tracking.as_str()],
        )?;
        row.map(|row| {
            Ok(Known {
                batch_id: row.get(0),
                batch: row.get(1),
                state: known_state(row.get(2))?,
                card_serial: row.get(3),
                line: row.get::<_, Option<i64>>(4).map(line_of).transpose()?,
                valid_row: row.get::<_, Option<bool>>(5).unwrap_or(false),
                reason: row.get(6),
            })
        })
        .transpose()
    }

    fn live_holder(
        &mut self,
        national_code: &str,
        tracking: &TrackingCode,
    ) -> Result<Option<Holder>, JournalError> {
        let row = self.0.query_opt(
            "SELECT r.tracking, a.state, b.name, a.card_serial, a.batch_id FROM records r
             JOIN applications a ON a.tracking = r.tracking JOIN batches b ON b.id = a.batch_id
             WHERE r.national_code = $1 AND r.tracking <> $2
               AND a.state IN ('queued', 'claimed', 'writing', 'written', 'verified')
               AND NOT EXISTS (SELECT 1 FROM superseded s WHERE s.tracking = r.tracking)
             ORDER BY a.updated_at_ms DESC, r.tracking LIMIT 1",
            &[&national_code, &tracking.as_str()],
        )?;
        Ok(row.map(|row| (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4))))
    }

    fn insert_application(
        &mut self,
        batch: i64,
        seq: u64,
        tracking: &TrackingCode,
    ) -> Result<(), JournalError> {
        self.0.execute(
            &format!(
                "INSERT INTO applications (tracking, batch_id, seq, state, updated_at_ms)
                 VALUES ($1, $2, $3, 'queued', {NOW_MS})"
            ),
            &[
                &tracking.as_str(),
                &batch,
                &i64::try_from(seq).unwrap_or(i64::MAX),
            ],
        )?;
        Ok(())
    }

    fn put_record(
        &mut self,
        record: Option<&StoredRecord>,
        tracking: &TrackingCode,
        line: u64,
    ) -> Result<(), JournalError> {
        let r = record;
        self.0.execute(
            "INSERT INTO records (tracking, line, national_code, given_name_fa, family_name_fa,
                 father_name_fa, given_name_en, family_name_en, father_name_en, birth_date, gender,
                 photo, fingerprint, has_pin, replacement)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             ON CONFLICT (tracking) DO UPDATE SET line = excluded.line,
                 national_code = excluded.national_code, given_name_fa = excluded.given_name_fa,
                 family_name_fa = excluded.family_name_fa, father_name_fa = excluded.father_name_fa,
                 given_name_en = excluded.given_name_en, family_name_en = excluded.family_name_en,
                 father_name_en = excluded.father_name_en, birth_date = excluded.birth_date,
                 gender = excluded.gender, photo = excluded.photo, fingerprint = excluded.fingerprint,
                 has_pin = excluded.has_pin, replacement = excluded.replacement",
            &[
                &tracking.as_str(),
                &i64::try_from(line).unwrap_or(i64::MAX),
                &r.map(|r| r.national_code.as_str()),
                &r.map(|r| r.given_name_fa.as_str()),
                &r.map(|r| r.family_name_fa.as_str()),
                &r.map(|r| r.father_name_fa.as_str()),
                &r.map(|r| r.given_name_en.as_str()),
                &r.map(|r| r.family_name_en.as_str()),
                &r.map(|r| r.father_name_en.as_str()),
                &r.map(|r| r.birth_date.as_str()),
                &r.map(|r| r.gender.as_str()),
                &r.map(|r| path_bytes(&r.photo)),
                &r.and_then(|r| r.fingerprint.as_deref().map(path_bytes)),
                &r.is_some_and(|r| r.has_pin),
                &r.is_some_and(|r| r.replacement),
            ],
        )?;
        Ok(())
    }

    fn fail_queued(&mut self, tracking: &TrackingCode, reason: &str) -> Result<bool, JournalError> {
        let mut status = load(&mut *self.0, tracking, true)?;
        if status.state != State::Queued || !State::Queued.can_go(State::Failed) {
            return Ok(false);
        }
        status.state = State::Failed;
        status.reason = Some(reason.to_owned());
        self.0.execute(
            &format!(
                "UPDATE applications SET state = 'failed', reason = $2, updated_at_ms = {NOW_MS}
                 WHERE tracking = $1"
            ),
            &[&tracking.as_str(), &reason],
        )?;
        log_event(&mut *self.0, State::Queued, &status)?;
        Ok(true)
    }

    fn supersede(
        &mut self,
        earlier: &TrackingCode,
        by: &TrackingCode,
        card: Option<&str>,
    ) -> Result<(), JournalError> {
        self.0.execute(
            &format!(
                "INSERT INTO superseded (tracking, by_tracking, card_serial, at_ms)
                 VALUES ($1, $2, $3, {NOW_MS}) ON CONFLICT (tracking) DO NOTHING"
            ),
            &[&earlier.as_str(), &by.as_str(), &card],
        )?;
        Ok(())
    }
}

/// The validated record of an application, if its batch row was valid.
pub(super) fn record(
    client: &mut impl GenericClient,
    tracking: &TrackingCode,
) -> Result<Option<StoredRecord>, JournalError> {
    let row = client.query_opt(
        "SELECT line, national_code, given_name_fa, family_name_fa, father_name_fa,
                given_name_en, family_name_en, father_name_en, birth_date, gender,
                photo, fingerprint, has_pin, replacement
         FROM records WHERE tracking = $1 AND national_code IS NOT NULL",
        &[&tracking.as_str()],
    )?;
    row.map(|row| {
        let text = |i: usize| row.get::<_, Option<String>>(i).unwrap_or_default();
        Ok(StoredRecord {
            tracking: tracking.clone(),
            line: line_of(row.get(0))?,
            national_code: text(1),
            given_name_fa: text(2),
            family_name_fa: text(3),
            father_name_fa: text(4),
            given_name_en: text(5),
            family_name_en: text(6),
            father_name_en: text(7),
            birth_date: text(8),
            gender: text(9),
            photo: path_from(&row.get::<_, Option<Vec<u8>>>(10).unwrap_or_default()),
            fingerprint: row.get::<_, Option<Vec<u8>>>(11).map(|b| path_from(&b)),
            has_pin: row.get(12),
            replacement: row.get(13),
        })
    })
    .transpose()
}

/// The application that superseded `tracking`, with the earlier card.
pub(super) fn superseded_by(
    client: &mut impl GenericClient,
    tracking: &TrackingCode,
) -> Result<Option<(TrackingCode, Option<String>)>, JournalError> {
    client
        .query_opt(
            "SELECT by_tracking, card_serial FROM superseded WHERE tracking = $1",
            &[&tracking.as_str()],
        )?
        .map(|row| Ok((parse_tracking(row.get(0))?, row.get(1))))
        .transpose()
}

/// Every superseded application, oldest first.
pub(super) fn superseded(client: &mut impl GenericClient) -> Result<Vec<Superseded>, JournalError> {
    client
        .query(
            "SELECT tracking, card_serial, by_tracking, at_ms FROM superseded ORDER BY at_ms, tracking",
            &[],
        )?
        .iter()
        .map(|row| {
            Ok(Superseded {
                tracking: parse_tracking(row.get(0))?,
                card_serial: row.get(1),
                by: parse_tracking(row.get(2))?,
                at: std::time::UNIX_EPOCH
                    + std::time::Duration::from_millis(u64::try_from(row.get::<_, i64>(3)).unwrap_or(0)),
            })
        })
        .collect()
}

//! Cross-references in PostgreSQL: the unique index `person_references` (reference → live holder), replaced with
//! every write of a person inside its transaction, and the look-up of a reference's holder.
//!
//! A live person's rows are released and claimed again; a person that is not live holds none. The claim is
//! `INSERT … ON CONFLICT ON CONSTRAINT person_references_pkey DO NOTHING`: against a writer still claiming (or
//! releasing) the same reference the insert waits for that transaction to end, then inserts or skips. A skipped
//! row means another live person holds the reference, and the holder is read by a following statement, which
//! under READ COMMITTED sees the winner's commit. A plain INSERT would fail with a unique violation instead, and
//! abort the transaction before the holder could be read in it. This module knows nothing of events, history or
//! audit.

use std::collections::BTreeSet;

use person_core::ports::StoreError;
use person_core::reference::CrossReference;
use person_core::storage::{QueryRecorder, out_of_range};
use person_core::{Person, PersonId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::PostgresStore;
use crate::error::{PostgresStoreError, failed};
use crate::queries;
use crate::recorded::{affected, found};
use crate::rows::person_id;

/// A reference of the written person and the other live person holding it: the write must be refused.
pub(crate) type TakenReference = (CrossReference, PersonId);

/// References as the two parallel text arrays the statements unnest: systems and ids.
fn columns(references: &[CrossReference]) -> (Vec<&str>, Vec<&str>) {
    references.iter().map(|r| (r.system.as_str(), r.id.as_str())).unzip()
}

/// Replaces the rows of a written person with its current references (none unless it is live). `Ok(Some(..))`:
/// another live person holds one of them; the caller refuses the write and rolls the transaction back.
pub(crate) async fn rewrite_references(
    tx: &mut PgConnection,
    q: &QueryRecorder,
    person: &Person,
) -> Result<Option<TakenReference>, StoreError> {
    let query = &queries::DELETE_REFERENCES;
    let statement = sqlx::query(query.sql).bind(person.id.as_uuid()).execute(&mut *tx);
    q.run_counted(query, statement, affected).await.map_err(failed(query.name))?;
    insert_references(tx, q, person).await
}

/// Claims the references of a written person (none unless it is live; a person just created holds none yet).
pub(crate) async fn insert_references(
    tx: &mut PgConnection,
    q: &QueryRecorder,
    person: &Person,
) -> Result<Option<TakenReference>, StoreError> {
    if !person.status.is_active() || person.references.is_empty() {
        return Ok(None);
    }
    let id = person.id.as_uuid();
    let (systems, ids) = columns(&person.references);
    let wanted = person.references.iter().collect::<BTreeSet<_>>().len();
    let query = &queries::INSERT_REFERENCES;
    let statement = sqlx::query(query.sql).bind(id).bind(&systems).bind(&ids).execute(&mut *tx);
    let claimed = q.run_counted(query, statement, affected).await.map_err(failed(query.name))?.rows_affected();
    if u64::try_from(wanted).is_ok_and(|wanted| wanted == claimed) {
        return Ok(None);
    }
    match reference_holder(tx, q, person, &systems, &ids, id).await? {
        Some(taken) => Ok(Some(taken)),
        // The holder released it between the two statements: retrying the write will take it.
        None => Err(PostgresStoreError::ReferenceReleased.into()),
    }
}

/// The first of `person`'s references (in its order) that a person other than `except` holds, with the holder.
async fn reference_holder(
    tx: &mut PgConnection,
    q: &QueryRecorder,
    person: &Person,
    systems: &[&str],
    ids: &[&str],
    except: Uuid,
) -> Result<Option<TakenReference>, StoreError> {
    let query = &queries::REFERENCE_HOLDER;
    let statement =
        sqlx::query_as::<_, (i64, Uuid)>(query.sql).bind(systems).bind(ids).bind(except).fetch_optional(&mut *tx);
    let Some((position, owner)) = q.run_counted(query, statement, found).await.map_err(failed(query.name))? else {
        return Ok(None);
    };
    // Positions count from 1 (`WITH ORDINALITY`).
    let reference = position
        .checked_sub(1)
        .and_then(|index| usize::try_from(index).ok())
        .and_then(|index| person.references.get(index))
        .ok_or_else(|| out_of_range("reference position"))?;
    Ok(Some((reference.clone(), person_id(owner)?)))
}

impl PostgresStore {
    /// The live person holding `reference`: one primary-key read on a pooled connection.
    pub(crate) async fn reference_owner(&self, reference: &CrossReference) -> Result<Option<PersonId>, StoreError> {
        let query = &queries::FIND_BY_REFERENCE;
        let statement = sqlx::query_scalar::<_, Uuid>(query.sql)
            .bind(reference.system.as_str())
            .bind(reference.id.as_str())
            .fetch_optional(&self.pool);
        self.queries.run_counted(query, statement, found).await.map_err(failed(query.name))?.map(person_id).transpose()
    }
}

//! Cross-references in SQLite: the unique index `person_references` (reference → live holder), replaced with every
//! write of a person inside its write transaction, and the look-up of a reference's holder.
//!
//! A live person's rows are released and inserted again; a person that is not live holds none. Under the write
//! lock (`BEGIN IMMEDIATE`) no other write can claim a reference between the statements, so the insert's
//! PRIMARY KEY violation is exact: it means another live person holds one of the references, and the holder is
//! then read (the failed statement is undone on its own; the transaction goes on and the caller rolls it back).
//! This module knows nothing of events, history or audit.

use crate::SqliteStore;
use crate::error::{SQLITE_CONSTRAINT_PRIMARYKEY, failed, out_of_range, sqlite_code};
use crate::execution::{WriteTx, counted};
use crate::queries;
use crate::rows::PersonIdRow;
use person_core::ports::StoreError;
use person_core::reference::CrossReference;
use person_core::storage::to_json;
use person_core::{Person, PersonId};

/// A reference of the written person and the other live person holding it: the write must be refused.
pub(crate) type TakenReference = (CrossReference, PersonId);

/// A holder found by `REFERENCE_HOLDER`: the reference's position in the bound array and its holder.
#[derive(sqlx::FromRow)]
struct HolderRow {
    position: i64,
    id: String,
}

/// Replaces the rows of a written person with its current references (none unless it is live). `Ok(Some(..))`:
/// another live person holds one of them; the caller refuses the write and rolls the transaction back.
pub(crate) async fn rewrite_references(
    tx: &mut WriteTx,
    person: &Person,
) -> Result<Option<TakenReference>, StoreError> {
    let id = person.id.to_string();
    let delete = &queries::DELETE_REFERENCES;
    let statement = sqlx::query(delete.sql).bind(&id).execute(&mut *tx.conn);
    counted(&tx.recorder, delete, statement).await.map_err(failed(delete.name))?;
    insert_references(tx, person, &id).await
}

/// Inserts the rows of a written person (none unless it is live; a person just created holds none yet).
pub(crate) async fn insert_references(
    tx: &mut WriteTx,
    person: &Person,
    id: &str,
) -> Result<Option<TakenReference>, StoreError> {
    if !person.status.is_active() || person.references.is_empty() {
        return Ok(None);
    }
    let references = to_json(&person.references, "reference list")?;
    let insert = &queries::INSERT_REFERENCES;
    let statement = sqlx::query(insert.sql).bind(id).bind(&references).execute(&mut *tx.conn);
    match counted(&tx.recorder, insert, statement).await {
        Ok(_) => Ok(None),
        Err(error) if sqlite_code(&error) == Some(SQLITE_CONSTRAINT_PRIMARYKEY) => {
            match reference_holder(tx, person, &references, id).await? {
                Some(taken) => Ok(Some(taken)),
                // A violation with no other holder: not a refusal this module can explain.
                None => Err(failed(insert.name)(error)),
            }
        }
        Err(error) => Err(failed(insert.name)(error)),
    }
}

/// The first of `person`'s references (in its order) that a person other than `except` holds, with the holder.
/// `references` is `person.references` as the JSON array bound to the statements.
async fn reference_holder(
    tx: &mut WriteTx,
    person: &Person,
    references: &str,
    except: &str,
) -> Result<Option<TakenReference>, StoreError> {
    let holder = &queries::REFERENCE_HOLDER;
    let statement =
        sqlx::query_as::<_, HolderRow>(holder.sql).bind(references).bind(except).fetch_optional(&mut *tx.conn);
    let Some(row) = counted(&tx.recorder, holder, statement).await.map_err(failed(holder.name))? else {
        return Ok(None);
    };
    let reference = usize::try_from(row.position)
        .ok()
        .and_then(|position| person.references.get(position))
        .ok_or_else(|| out_of_range("reference position"))?;
    let owner = PersonId::parse(&row.id).map_err(|_| out_of_range("person id"))?;
    Ok(Some((reference.clone(), owner)))
}

impl SqliteStore {
    /// The live person holding `reference`: one primary-key read on a reader connection.
    pub(crate) async fn reference_owner(&self, reference: &CrossReference) -> Result<Option<PersonId>, StoreError> {
        let find = &queries::FIND_BY_REFERENCE;
        let statement = sqlx::query_as::<_, PersonIdRow>(find.sql)
            .bind(reference.system.as_str())
            .bind(reference.id.as_str())
            .fetch_optional(&self.readers);
        counted(&self.recorder, find, statement).await.map_err(failed(find.name))?.map(PersonIdRow::into_id).transpose()
    }
}

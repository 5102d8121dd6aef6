//! [`ImportRepository`] for [`PostgresStore`]: bulk loading of persons that keep their ids, `personRef`s,
//! versions and timestamps (`person-api import`, migrations).
//!
//! A batch is one transaction of a fixed number of statements, whatever its size: every value travels as an array
//! parameter (`unnest`, `= ANY`), never as a statement per person.
//!
//! 1. **The import lock,** exclusively. Creates hold it shared from allocating their `personRef`, and every write
//!    that sets a dedup key from taking that key's lock, until they end. So the batch waits for those in progress
//!    and those that start later wait for it to commit: no create is ever handed a number the batch keeps, no
//!    writer sets a dedup key the batch found free, and imports run one at a time.
//! 2. **Look-ups.** The stored persons with the batch's ids, with its kept `personRef`s, the live persons holding
//!    its dedup keys and the live persons holding its cross-references: one index-probing statement each.
//! 3. **Decisions,** in Rust, record by record in batch order, against the stored persons and the records before
//!    it, exactly as the in-memory store decides ([`plan`] is a pure function).
//! 4. **`personRef`s.** One `setval` raises the sequence past the largest kept `personRef` and reserves the numbers
//!    the batch assigns.
//! 5. **Writes.** The persons, their search keys, their cross-references and one audit entry naming them: one
//!    statement each. No event, history entry or idempotency record (see the port).
//!
//! A write that sets no dedup key (a document write, an update of a person lacking one) takes no import lock: one
//! that claims a cross-reference of the batch after the look-up makes the batch's claim insert fewer rows than
//! expected, and the batch then fails as unavailable (nothing written; a retry reports the holder). This module
//! knows nothing of events or history.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use person_core::audit::AuditEntry;
use person_core::matching::SearchKey;
use person_core::ports::{ImportOutcome, ImportRepository, ImportWrite, StoreError};
use person_core::reference::CrossReference;
use person_core::storage::{QueryRecorder, out_of_range};
use person_core::{Person, PersonId, PersonRef};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::PostgresStore;
use crate::documents::insert_audit;
use crate::error::failed;
use crate::queries;
use crate::recorded::{affected, fetched, one};
use crate::repository::finish;
use crate::rows::{AuditColumns, PersonColumns, person_id};

/// A cross-reference of the batch was claimed by a concurrent update or merge between the batch's look-up and its
/// claim: the batch is rolled back, and retrying it reports the holder.
#[derive(Debug, thiserror::Error)]
#[error("a cross-reference of the import batch was claimed by a concurrent write")]
struct ReferenceClaimedConcurrently;

/// What is already stored that the batch's records are checked against, extended with each record stored.
#[derive(Debug, Default)]
struct Holders {
    /// Ids of persons in any state.
    ids: HashSet<PersonId>,
    /// `personRef`s of persons in any state, with their holder.
    person_refs: HashMap<i64, PersonId>,
    /// Dedup keys held by live persons.
    dedup_keys: HashMap<String, PersonId>,
    /// Cross-references held by live persons.
    references: HashMap<CrossReference, PersonId>,
}

/// A record the batch stores.
#[derive(Debug)]
struct Stored {
    /// Its position in the batch (and in the outcomes).
    index: usize,
    person: Person,
    assign_ref: bool,
    /// Its `person` search keys (none unless it is live).
    search_keys: Vec<SearchKey>,
    /// The dedup key it holds: none unless it is live and no other live person holds it.
    dedup_key: Option<String>,
}

/// What a batch does: an outcome per record, and the records stored.
#[derive(Debug)]
struct Plan {
    outcomes: Vec<ImportOutcome>,
    stored: Vec<Stored>,
    /// The largest `personRef` a record of the batch keeps (0: none), whatever became of the record.
    highest_kept: i64,
    /// How many stored records are assigned a `personRef`.
    to_assign: i64,
}

/// Decides, record by record in batch order, what the batch does, against `held` (what is stored) and the records
/// before each one: the in-memory store's rules. Records that are assigned a `personRef` keep their own until
/// [`Plan::assign`] gives them one.
fn plan(batch: Vec<ImportWrite>, mut held: Holders) -> Plan {
    let highest_kept = batch.iter().filter(|w| !w.assign_ref).map(|w| w.person.person_ref.0).max().unwrap_or(0);
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut stored = Vec::with_capacity(batch.len());
    let mut to_assign = 0;
    for (index, write) in batch.into_iter().enumerate() {
        let ImportWrite { person, assign_ref, search_keys, dedup_key } = write;
        if held.ids.contains(&person.id) {
            outcomes.push(ImportOutcome::AlreadyStored);
            continue;
        }
        if !assign_ref && let Some(&owner) = held.person_refs.get(&person.person_ref.0) {
            outcomes.push(ImportOutcome::PersonRefTaken { owner });
            continue;
        }
        let live = person.status.is_active();
        let taken = person.references.iter().find_map(|r| held.references.get(r).map(|&owner| (r.clone(), owner)));
        if live && let Some((reference, owner)) = taken {
            outcomes.push(ImportOutcome::ReferenceTaken { reference, owner });
            continue;
        }
        let live_key = dedup_key.filter(|_| live);
        let duplicate_of = live_key.as_ref().and_then(|key| held.dedup_keys.get(key).copied());
        let dedup_key = if duplicate_of.is_some() { None } else { live_key };
        held.ids.insert(person.id);
        if assign_ref {
            to_assign += 1;
        } else {
            held.person_refs.insert(person.person_ref.0, person.id);
        }
        if live {
            held.references.extend(person.references.iter().map(|r| (r.clone(), person.id)));
        }
        if let Some(key) = &dedup_key {
            held.dedup_keys.insert(key.clone(), person.id);
        }
        outcomes.push(ImportOutcome::Imported { person_ref: person.person_ref, duplicate_of });
        let search_keys = if live { search_keys } else { Vec::new() };
        stored.push(Stored { index, person, assign_ref, search_keys, dedup_key });
    }
    Plan { outcomes, stored, highest_kept, to_assign }
}

impl Plan {
    /// Gives the records to assign the numbers up to `last` (the reserved ones), in batch order.
    fn assign(&mut self, last: i64) {
        let mut next = last - self.to_assign;
        for stored in self.stored.iter_mut().filter(|s| s.assign_ref) {
            next += 1;
            stored.person.person_ref = PersonRef(next);
            if let Some(ImportOutcome::Imported { person_ref, .. }) = self.outcomes.get_mut(stored.index) {
                *person_ref = PersonRef(next);
            }
        }
    }
}

/// The dedup keys the batch may set: those of its live persons.
fn live_dedup_keys(batch: &[ImportWrite]) -> Vec<&str> {
    batch.iter().filter(|w| w.person.status.is_active()).filter_map(|w| w.dedup_key.as_deref()).collect()
}

/// Reads what the batch's records are checked against (four look-ups, each skipped when it has nothing to ask).
async fn holders(tx: &mut PgConnection, q: &QueryRecorder, batch: &[ImportWrite]) -> Result<Holders, StoreError> {
    let mut held = Holders::default();

    let ids: Vec<Uuid> = batch.iter().map(|w| w.person.id.as_uuid()).collect();
    if !ids.is_empty() {
        let query = &queries::IMPORT_IDS_PRESENT;
        let statement = sqlx::query_scalar::<_, Uuid>(query.sql).bind(&ids).fetch_all(&mut *tx);
        for id in q.run_counted(query, statement, fetched).await.map_err(failed(query.name))? {
            held.ids.insert(person_id(id)?);
        }
    }

    let kept: Vec<i64> = batch.iter().filter(|w| !w.assign_ref).map(|w| w.person.person_ref.0).collect();
    if !kept.is_empty() {
        let query = &queries::IMPORT_PERSON_REFS_TAKEN;
        let statement = sqlx::query_as::<_, (i64, Uuid)>(query.sql).bind(&kept).fetch_all(&mut *tx);
        for (person_ref, id) in q.run_counted(query, statement, fetched).await.map_err(failed(query.name))? {
            held.person_refs.insert(person_ref, person_id(id)?);
        }
    }

    let dedup_keys = live_dedup_keys(batch);
    if !dedup_keys.is_empty() {
        let query = &queries::IMPORT_DEDUP_HOLDERS;
        let statement = sqlx::query_as::<_, (String, Uuid)>(query.sql).bind(&dedup_keys).fetch_all(&mut *tx);
        for (key, id) in q.run_counted(query, statement, fetched).await.map_err(failed(query.name))? {
            held.dedup_keys.insert(key, person_id(id)?);
        }
    }

    // Only live persons claim references; each is asked once.
    let references: Vec<&CrossReference> = batch
        .iter()
        .filter(|w| w.person.status.is_active())
        .flat_map(|w| &w.person.references)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if !references.is_empty() {
        let (systems, reference_ids): (Vec<&str>, Vec<&str>) =
            references.iter().map(|r| (r.system.as_str(), r.id.as_str())).unzip();
        let query = &queries::IMPORT_REFERENCE_HOLDERS;
        let statement =
            sqlx::query_as::<_, (i64, Uuid)>(query.sql).bind(&systems).bind(&reference_ids).fetch_all(&mut *tx);
        for (position, id) in q.run_counted(query, statement, fetched).await.map_err(failed(query.name))? {
            // Positions count from 1 (`WITH ORDINALITY`).
            let reference = position
                .checked_sub(1)
                .and_then(|index| usize::try_from(index).ok())
                .and_then(|index| references.get(index))
                .ok_or_else(|| out_of_range("reference position"))?;
            held.references.insert((*reference).clone(), person_id(id)?);
        }
    }
    Ok(held)
}

/// Takes the import lock (see the module documentation).
async fn lock(tx: &mut PgConnection, q: &QueryRecorder) -> Result<(), StoreError> {
    let query = &queries::IMPORT_LOCK;
    q.run_counted(query, sqlx::query(query.sql).execute(&mut *tx), affected).await.map_err(failed(query.name))?;
    Ok(())
}

/// Raises the sequence past the batch's kept `personRef`s and reserves the ones it assigns; returns the last.
async fn reserve_person_refs(tx: &mut PgConnection, q: &QueryRecorder, plan: &Plan) -> Result<i64, StoreError> {
    let query = &queries::IMPORT_RESERVE_PERSON_REFS;
    let statement =
        sqlx::query_scalar::<_, i64>(query.sql).bind(plan.highest_kept).bind(plan.to_assign).fetch_one(&mut *tx);
    q.run_counted(query, statement, one).await.map_err(failed(query.name))
}

/// The `persons` rows of the stored records, one array per column.
#[derive(Default)]
struct PersonArrays {
    id: Vec<Uuid>,
    person_ref: Vec<i64>,
    version_number: Vec<i64>,
    state: Vec<&'static str>,
    merged_into: Vec<Option<Uuid>>,
    document: Vec<String>,
    created_at: Vec<chrono::DateTime<chrono::Utc>>,
    last_modified: Vec<chrono::DateTime<chrono::Utc>>,
    processing_restricted: Vec<bool>,
    dedup_key: Vec<Option<String>>,
    tenure_count: Vec<i32>,
    reference_count: Vec<i32>,
}

impl PersonArrays {
    fn push(&mut self, stored: &Stored) -> Result<(), StoreError> {
        let row = PersonColumns::new(&stored.person)?;
        self.id.push(row.id);
        self.person_ref.push(row.person_ref);
        self.version_number.push(row.version_number);
        self.state.push(row.state);
        self.merged_into.push(row.merged_into);
        self.document.push(row.document);
        self.created_at.push(row.created_at);
        self.last_modified.push(row.last_modified);
        self.processing_restricted.push(row.processing_restricted);
        self.dedup_key.push(stored.dedup_key.clone());
        self.tenure_count.push(row.tenure_count);
        self.reference_count.push(row.reference_count);
        Ok(())
    }
}

/// Writes the stored records: persons, search keys, cross-references (three statements).
async fn write(tx: &mut PgConnection, q: &QueryRecorder, stored: &[Stored]) -> Result<(), StoreError> {
    let mut persons = PersonArrays::default();
    for record in stored {
        persons.push(record)?;
    }
    let query = &queries::IMPORT_INSERT_PERSONS;
    let statement = sqlx::query(query.sql)
        .bind(&persons.id)
        .bind(&persons.person_ref)
        .bind(&persons.version_number)
        .bind(&persons.state)
        .bind(&persons.merged_into)
        .bind(&persons.document)
        .bind(&persons.created_at)
        .bind(&persons.last_modified)
        .bind(&persons.processing_restricted)
        .bind(&persons.dedup_key)
        .bind(&persons.tenure_count)
        .bind(&persons.reference_count)
        .execute(&mut *tx);
    q.run_counted(query, statement, affected).await.map_err(failed(query.name))?;

    // Each key once per person: a repeat would violate `search_keys_pkey`.
    let mut keys = Vec::new();
    let mut key_owners = Vec::new();
    for record in stored {
        let mut own: Vec<&str> = record.search_keys.iter().map(SearchKey::as_str).collect();
        own.sort_unstable();
        own.dedup();
        key_owners.extend(std::iter::repeat_n(record.person.id.as_uuid(), own.len()));
        keys.extend(own);
    }
    if !keys.is_empty() {
        let query = &queries::IMPORT_INSERT_SEARCH_KEYS;
        let statement = sqlx::query(query.sql).bind(&keys).bind(&key_owners).execute(&mut *tx);
        q.run_counted(query, statement, affected).await.map_err(failed(query.name))?;
    }

    // The plan gave each reference to one live person at most; a person naming one twice claims it once.
    let claims: BTreeMap<&CrossReference, Uuid> = stored
        .iter()
        .filter(|s| s.person.status.is_active())
        .flat_map(|s| s.person.references.iter().map(|r| (r, s.person.id.as_uuid())))
        .collect();
    if !claims.is_empty() {
        let mut systems = Vec::with_capacity(claims.len());
        let mut reference_ids = Vec::with_capacity(claims.len());
        let mut owners = Vec::with_capacity(claims.len());
        for (reference, owner) in &claims {
            systems.push(reference.system.as_str());
            reference_ids.push(reference.id.as_str());
            owners.push(*owner);
        }
        let query = &queries::IMPORT_INSERT_REFERENCES;
        let statement = sqlx::query(query.sql).bind(&systems).bind(&reference_ids).bind(&owners).execute(&mut *tx);
        let claimed = q.run_counted(query, statement, affected).await.map_err(failed(query.name))?.rows_affected();
        if u64::try_from(claims.len()).ok() != Some(claimed) {
            return Err(StoreError::Unavailable(Box::new(ReferenceClaimedConcurrently)));
        }
    }
    Ok(())
}

/// The body of an import, inside its transaction.
async fn import_in(
    tx: &mut PgConnection,
    q: &QueryRecorder,
    batch: Vec<ImportWrite>,
    mut audit: AuditEntry,
) -> Result<Vec<ImportOutcome>, StoreError> {
    lock(tx, q).await?;
    let held = holders(tx, q, &batch).await?;
    let mut plan = plan(batch, held);
    if plan.highest_kept > 0 || plan.to_assign > 0 {
        let last = reserve_person_refs(tx, q, &plan).await?;
        if last < plan.highest_kept.saturating_add(plan.to_assign) {
            return Err(out_of_range("reserved personRef"));
        }
        plan.assign(last);
    }
    if plan.stored.is_empty() {
        return Ok(plan.outcomes);
    }
    write(tx, q, &plan.stored).await?;
    audit.person_ids = plan.stored.iter().map(|s| s.person.id).collect();
    insert_audit(tx, q, &AuditColumns::new(&audit)?).await?;
    Ok(plan.outcomes)
}

#[async_trait]
impl ImportRepository for PostgresStore {
    async fn import_persons(
        &self,
        batch: Vec<ImportWrite>,
        audit: AuditEntry,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let outcome = import_in(&mut tx, &self.queries, batch, audit).await;
        finish(&self.queries, tx, outcome).await
    }
}

#[cfg(test)]
mod tests {
    use person_core::PersonStatus;
    use person_core::testkit::fixtures::{full_person, person_id as new_id};

    use super::*;

    fn write(person_ref: i64, assign_ref: bool, dedup: Option<&str>) -> ImportWrite {
        let mut person = full_person(new_id());
        person.person_ref = PersonRef(person_ref);
        ImportWrite { person, assign_ref, search_keys: Vec::new(), dedup_key: dedup.map(str::to_owned) }
    }

    #[test]
    fn records_are_checked_against_the_store_and_the_records_before_them() {
        let stored_owner = new_id();
        let first = write(10, false, Some("k"));
        let again = ImportWrite { person: first.person.clone(), ..write(11, false, None) };
        let same_ref = write(10, false, None);
        let twin = write(12, false, Some("k"));
        let held_ref = write(99, false, None);
        let mut deleted = write(13, false, Some("k2"));
        deleted.person.status = PersonStatus::Deleted;
        let assigned = write(0, true, None);
        let mut held = Holders::default();
        held.person_refs.insert(99, stored_owner);
        let batch = vec![first.clone(), again, same_ref, twin.clone(), held_ref, deleted.clone(), assigned.clone()];

        let mut plan = plan(batch, held);
        assert_eq!((plan.highest_kept, plan.to_assign), (99, 1));
        plan.assign(150);

        assert_eq!(
            plan.outcomes,
            vec![
                ImportOutcome::Imported { person_ref: PersonRef(10), duplicate_of: None },
                ImportOutcome::AlreadyStored,
                ImportOutcome::PersonRefTaken { owner: first.person.id },
                ImportOutcome::Imported { person_ref: PersonRef(12), duplicate_of: Some(first.person.id) },
                ImportOutcome::PersonRefTaken { owner: stored_owner },
                ImportOutcome::Imported { person_ref: PersonRef(13), duplicate_of: None },
                ImportOutcome::Imported { person_ref: PersonRef(150), duplicate_of: None },
            ]
        );
        let dedup: Vec<_> = plan.stored.iter().map(|s| (s.person.id, s.dedup_key.clone())).collect();
        assert_eq!(
            dedup,
            vec![
                (first.person.id, Some("k".to_owned())),
                (twin.person.id, None),
                (deleted.person.id, None),
                (assigned.person.id, None),
            ]
        );
        assert_eq!(plan.stored[3].person.person_ref, PersonRef(150));
    }

    #[test]
    fn a_refused_record_claims_nothing_and_assigned_numbers_follow_batch_order() {
        let owner = new_id();
        let refused = write(7, false, Some("k"));
        let later = write(8, false, Some("k"));
        let first_assigned = write(0, true, None);
        let second_assigned = write(0, true, None);
        let mut held = Holders::default();
        held.person_refs.insert(7, owner);
        let mut plan = plan(vec![first_assigned, refused, later.clone(), second_assigned], held);
        plan.assign(20);
        assert_eq!(
            plan.outcomes,
            vec![
                ImportOutcome::Imported { person_ref: PersonRef(19), duplicate_of: None },
                ImportOutcome::PersonRefTaken { owner },
                ImportOutcome::Imported { person_ref: PersonRef(8), duplicate_of: None },
                ImportOutcome::Imported { person_ref: PersonRef(20), duplicate_of: None },
            ]
        );
        assert_eq!(plan.stored[1].dedup_key.as_deref(), Some("k"), "the refused record never held the key");
    }

    #[test]
    fn a_reference_held_by_a_live_person_refuses_live_records_only() {
        let first = write(1, false, None);
        let reference = first.person.references[0].clone();
        let mut claims = write(2, false, None);
        claims.person.references = vec![reference.clone()];
        let mut deleted = write(3, false, None);
        deleted.person.references = vec![reference.clone()];
        deleted.person.status = PersonStatus::Deleted;
        let plan = plan(vec![first.clone(), claims, deleted], Holders::default());
        assert_eq!(plan.outcomes[1], ImportOutcome::ReferenceTaken { reference, owner: first.person.id });
        assert!(matches!(plan.outcomes[2], ImportOutcome::Imported { .. }));
    }
}

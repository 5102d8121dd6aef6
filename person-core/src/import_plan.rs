//! The rules every store decides an import batch by ([`crate::ports::ImportRepository::import_persons`]), as one
//! pure function, so that the in-memory reference store and the SQLite, PostgreSQL and DynamoDB stores cannot
//! drift apart: a store reads what it holds of the batch ([`ImportHolders`], built from the look-ups the batch
//! asks for), calls [`ImportPlan::decide`], allocates the `personRef`s the plan needs and writes
//! [`ImportPlan::accepted`].
//!
//! Records are taken in batch order, each checked against the store and the records accepted before it:
//! 1. an id already stored, or accepted earlier in the batch → [`ImportOutcome::AlreadyStored`];
//! 2. a merged person whose survivor is neither stored nor accepted earlier in the batch →
//!    [`ImportOutcome::SurvivorMissing`] (a merged person always points at a stored person; the caller imports it
//!    again once the survivor is in);
//! 3. a kept `personRef` another person has → [`ImportOutcome::PersonRefTaken`];
//! 4. a live person with a reference another live person holds → [`ImportOutcome::ReferenceTaken`];
//! 5. otherwise accepted, without its dedup key when another live person holds it (`duplicate_of`).

use std::collections::{HashMap, HashSet};

use crate::matching::SearchKey;
use crate::person::{Person, PersonId, PersonRef, PersonStatus};
use crate::ports::{ImportOutcome, ImportWrite};
use crate::reference::CrossReference;

/// What the store holds of a batch: filled by the store from its look-ups (only what the batch asks for is
/// needed), then extended by [`ImportPlan::decide`] with each record it accepts.
#[derive(Debug, Default, Clone)]
pub struct ImportHolders {
    /// Ids of stored persons (in any state) among [`Self::ids_to_read`].
    pub ids: HashSet<PersonId>,
    /// `personRef` → the person having it, among [`Self::kept_person_refs`].
    pub person_refs: HashMap<i64, PersonId>,
    /// Reference → the live person holding it, among [`Self::live_references`].
    pub references: HashMap<CrossReference, PersonId>,
    /// Dedup key → the live person holding it, among [`Self::live_dedup_keys`].
    pub dedup_keys: HashMap<String, PersonId>,
}

impl ImportHolders {
    /// The ids whose presence the batch depends on: its own, and the survivors its merged persons point at (each
    /// once, in first-seen order).
    #[must_use]
    pub fn ids_to_read(batch: &[ImportWrite]) -> Vec<PersonId> {
        let mut seen = HashSet::new();
        let ids = batch.iter().flat_map(|w| std::iter::once(w.person.id).chain(survivor(&w.person)));
        ids.filter(|id| seen.insert(*id)).collect()
    }

    /// The `personRef`s the batch keeps (records with `assign_ref` keep none).
    #[must_use]
    pub fn kept_person_refs(batch: &[ImportWrite]) -> Vec<i64> {
        let mut seen = HashSet::new();
        batch.iter().filter(|w| !w.assign_ref).map(|w| w.person.person_ref.0).filter(|r| seen.insert(*r)).collect()
    }

    /// The dedup keys of the batch's live persons, each once.
    #[must_use]
    pub fn live_dedup_keys(batch: &[ImportWrite]) -> Vec<&str> {
        let mut seen = HashSet::new();
        let keys = batch.iter().filter(|w| w.person.status.is_active()).filter_map(|w| w.dedup_key.as_deref());
        keys.filter(|k| seen.insert(*k)).collect()
    }

    /// The references of the batch's live persons (only live persons hold references), each once.
    #[must_use]
    pub fn live_references(batch: &[ImportWrite]) -> Vec<&CrossReference> {
        let mut seen = HashSet::new();
        let references = batch.iter().filter(|w| w.person.status.is_active()).flat_map(|w| &w.person.references);
        references.filter(|r| seen.insert(*r)).collect()
    }

    /// The first of a live `person`'s references (in its order) that another live person holds, with the holder.
    fn reference_holder(&self, person: &Person) -> Option<(CrossReference, PersonId)> {
        if !person.status.is_active() {
            return None;
        }
        person.references.iter().find_map(|r| self.references.get(r).map(|owner| (r.clone(), *owner)))
    }
}

/// The person a merged person was merged into.
fn survivor(person: &Person) -> Option<PersonId> {
    match person.status {
        PersonStatus::Merged { into } => Some(into),
        PersonStatus::Active | PersonStatus::Deleted => None,
    }
}

/// A record of the batch that is to be stored.
#[derive(Debug, Clone)]
pub struct AcceptedImport {
    /// Its position in the batch (and in [`ImportPlan::outcomes`]).
    pub position: usize,
    /// The person as stored; its `personRef` is set by [`ImportPlan::assign_person_refs`] when `assign_ref`.
    pub person: Person,
    /// True when it is stored with a newly allocated `personRef`.
    pub assign_ref: bool,
    /// Its search keys (none unless live).
    pub search_keys: Vec<SearchKey>,
    /// The dedup key it holds: none unless live and no other live person holds it.
    pub dedup_key: Option<String>,
    /// The live person holding its dedup key, when it is stored without it.
    pub duplicate_of: Option<PersonId>,
}

/// What a batch does: one outcome per record, and the records to store.
#[derive(Debug, Clone)]
pub struct ImportPlan {
    /// One per record, in batch order; an accepted record's is [`ImportOutcome::Imported`] (its `personRef`
    /// final once [`Self::assign_person_refs`] has run).
    pub outcomes: Vec<ImportOutcome>,
    /// The records to store, in batch order.
    pub accepted: Vec<AcceptedImport>,
    /// The largest `personRef` a record of the batch keeps (0: none), whatever became of the record: the
    /// store's sequence is raised to at least this.
    pub largest_kept: i64,
    /// How many accepted records need a newly allocated `personRef`.
    pub to_assign: i64,
}

impl ImportPlan {
    /// Decides `batch` in order against `held` (see the module documentation for the rules).
    #[must_use]
    pub fn decide(batch: Vec<ImportWrite>, mut held: ImportHolders) -> Self {
        let largest_kept = batch.iter().filter(|w| !w.assign_ref).map(|w| w.person.person_ref.0).max().unwrap_or(0);
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut accepted = Vec::with_capacity(batch.len());
        let mut to_assign = 0;
        for (position, write) in batch.into_iter().enumerate() {
            let ImportWrite { person, assign_ref, search_keys, dedup_key } = write;
            if held.ids.contains(&person.id) {
                outcomes.push(ImportOutcome::AlreadyStored);
                continue;
            }
            if let Some(into) = survivor(&person).filter(|into| !held.ids.contains(into)) {
                outcomes.push(ImportOutcome::SurvivorMissing { survivor: into });
                continue;
            }
            if !assign_ref && let Some(&owner) = held.person_refs.get(&person.person_ref.0) {
                outcomes.push(ImportOutcome::PersonRefTaken { owner });
                continue;
            }
            if let Some((reference, owner)) = held.reference_holder(&person) {
                outcomes.push(ImportOutcome::ReferenceTaken { reference, owner });
                continue;
            }
            let live = person.status.is_active();
            let live_key = dedup_key.filter(|_| live);
            let duplicate_of = live_key.as_ref().and_then(|key| held.dedup_keys.get(key).copied());
            let dedup_key = if duplicate_of.is_some() { None } else { live_key };
            held.ids.insert(person.id);
            if assign_ref {
                // Numbers are allocated after the decisions, above every kept one, so they cannot be taken.
                to_assign += 1;
            } else {
                held.person_refs.insert(person.person_ref.0, person.id);
            }
            if live {
                for reference in &person.references {
                    held.references.entry(reference.clone()).or_insert(person.id);
                }
            }
            if let Some(key) = &dedup_key {
                held.dedup_keys.insert(key.clone(), person.id);
            }
            outcomes.push(ImportOutcome::Imported { person_ref: person.person_ref, duplicate_of });
            let search_keys = if live { search_keys } else { Vec::new() };
            accepted.push(AcceptedImport { position, person, assign_ref, search_keys, dedup_key, duplicate_of });
        }
        Self { outcomes, accepted, largest_kept, to_assign }
    }

    /// Gives the accepted records that need one the `personRef`s `last - to_assign + 1 ..= last` (what the
    /// store's sequence allocated), in batch order, in their persons and their outcomes.
    pub fn assign_person_refs(&mut self, last: i64) {
        let mut next = last - self.to_assign;
        for accepted in self.accepted.iter_mut().filter(|a| a.assign_ref) {
            next += 1;
            accepted.person.person_ref = PersonRef(next);
            if let Some(ImportOutcome::Imported { person_ref, .. }) = self.outcomes.get_mut(accepted.position) {
                *person_ref = PersonRef(next);
            }
        }
    }
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use super::*;
    use crate::testkit::fixtures::{full_person, person_id};

    fn write(person_ref: i64, status: PersonStatus) -> ImportWrite {
        let mut person = full_person(person_id());
        person.person_ref = PersonRef(person_ref);
        person.status = status;
        ImportWrite { person, assign_ref: person_ref == 0, search_keys: Vec::new(), dedup_key: None }
    }

    #[test]
    fn a_merged_person_needs_its_survivor_stored_or_accepted_before_it() {
        let stored = person_id();
        let later = write(3, PersonStatus::Active);
        let batch = vec![
            write(1, PersonStatus::Merged { into: stored }),
            write(2, PersonStatus::Merged { into: later.person.id }),
            later.clone(),
            write(4, PersonStatus::Merged { into: later.person.id }),
        ];
        assert_eq!(ImportHolders::ids_to_read(&batch).len(), 5, "ids and survivors, each once");
        let held = ImportHolders { ids: HashSet::from([stored]), ..ImportHolders::default() };
        let plan = ImportPlan::decide(batch, held);
        assert!(matches!(plan.outcomes[0], ImportOutcome::Imported { .. }));
        assert_eq!(plan.outcomes[1], ImportOutcome::SurvivorMissing { survivor: later.person.id });
        assert!(matches!(plan.outcomes[2], ImportOutcome::Imported { .. }));
        assert!(matches!(plan.outcomes[3], ImportOutcome::Imported { .. }));
        assert_eq!(plan.accepted.len(), 3);
    }

    #[test]
    fn assigned_numbers_follow_the_sequence_in_batch_order() {
        let batch =
            vec![write(0, PersonStatus::Active), write(9, PersonStatus::Active), write(0, PersonStatus::Deleted)];
        let mut plan = ImportPlan::decide(batch, ImportHolders::default());
        assert_eq!((plan.largest_kept, plan.to_assign), (9, 2));
        plan.assign_person_refs(11);
        let refs: Vec<i64> = plan.accepted.iter().map(|a| a.person.person_ref.0).collect();
        assert_eq!(refs, vec![10, 9, 11]);
        assert_eq!(plan.outcomes[2], ImportOutcome::Imported { person_ref: PersonRef(11), duplicate_of: None });
    }

    fn keyed(person_ref: i64, assign_ref: bool, dedup: Option<&str>) -> ImportWrite {
        let mut person = full_person(person_id());
        person.person_ref = PersonRef(person_ref);
        ImportWrite { person, assign_ref, search_keys: Vec::new(), dedup_key: dedup.map(str::to_owned) }
    }

    #[test]
    fn records_are_checked_against_the_store_and_the_records_before_them() {
        let stored_owner = person_id();
        let first = keyed(10, false, Some("k"));
        let again = ImportWrite { person: first.person.clone(), ..keyed(11, false, None) };
        let same_ref = keyed(10, false, None);
        let twin = keyed(12, false, Some("k"));
        let held_ref = keyed(99, false, None);
        let mut deleted = keyed(13, false, Some("k2"));
        deleted.person.status = PersonStatus::Deleted;
        let assigned = keyed(0, true, None);
        let mut held = ImportHolders::default();
        held.person_refs.insert(99, stored_owner);
        let batch = vec![first.clone(), again, same_ref, twin.clone(), held_ref, deleted.clone(), assigned.clone()];

        let mut plan = ImportPlan::decide(batch, held);
        assert_eq!((plan.largest_kept, plan.to_assign), (99, 1));
        plan.assign_person_refs(150);

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
        let dedup: Vec<_> = plan.accepted.iter().map(|s| (s.person.id, s.dedup_key.clone())).collect();
        assert_eq!(
            dedup,
            vec![
                (first.person.id, Some("k".to_owned())),
                (twin.person.id, None),
                (deleted.person.id, None),
                (assigned.person.id, None),
            ]
        );
        assert_eq!(plan.accepted[3].person.person_ref, PersonRef(150));
    }

    #[test]
    fn a_refused_record_claims_nothing_and_assigned_numbers_follow_batch_order() {
        let owner = person_id();
        let refused = keyed(7, false, Some("k"));
        let later = keyed(8, false, Some("k"));
        let first_assigned = keyed(0, true, None);
        let second_assigned = keyed(0, true, None);
        let mut held = ImportHolders::default();
        held.person_refs.insert(7, owner);
        let mut plan = ImportPlan::decide(vec![first_assigned, refused, later.clone(), second_assigned], held);
        plan.assign_person_refs(20);
        assert_eq!(
            plan.outcomes,
            vec![
                ImportOutcome::Imported { person_ref: PersonRef(19), duplicate_of: None },
                ImportOutcome::PersonRefTaken { owner },
                ImportOutcome::Imported { person_ref: PersonRef(8), duplicate_of: None },
                ImportOutcome::Imported { person_ref: PersonRef(20), duplicate_of: None },
            ]
        );
        assert_eq!(plan.accepted[1].dedup_key.as_deref(), Some("k"), "the refused record never held the key");
    }

    #[test]
    fn a_reference_held_by_a_live_person_refuses_live_records_only() {
        let first = keyed(1, false, None);
        let reference = first.person.references[0].clone();
        let mut claims = keyed(2, false, None);
        claims.person.references = vec![reference.clone()];
        let mut deleted = keyed(3, false, None);
        deleted.person.references = vec![reference.clone()];
        deleted.person.status = PersonStatus::Deleted;
        let plan = ImportPlan::decide(vec![first.clone(), claims, deleted], ImportHolders::default());
        assert_eq!(plan.outcomes[1], ImportOutcome::ReferenceTaken { reference, owner: first.person.id });
        assert!(matches!(plan.outcomes[2], ImportOutcome::Imported { .. }));
    }
}

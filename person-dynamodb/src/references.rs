//! Cross-references in DynamoDB (SPEC §8): the unique index from a reference to the live person holding it.
//!
//! Each reference a live person holds is one item `REF#<system>:<id>` / `REF` naming its holder in `personId`.
//! A write of a person changes only the items of the references it takes or drops, inside the write's own
//! `TransactWriteItems`: a reference taken is put if its item is absent or already held by a writer (the person
//! itself, or either person of a merge), a reference dropped is deleted if its item is absent or held by a
//! writer. Of concurrent claims of one reference exactly one commits; the others are cancelled on that item, and
//! its old values (`ReturnValuesOnConditionCheckFailure::AllOld`) name the winner.
//!
//! Which references a person held comes from its stored document, read before the write: the person item's
//! version condition in the same transaction guarantees nothing changed since. A person that is not live
//! (deleted, merged) holds none, although its tombstone keeps the list for history.
//!
//! This module knows nothing of the rest of a write (events, keys, documents).

use std::collections::HashSet;

use person_core::ports::StoreError;
use person_core::reference::CrossReference;
use person_core::{Person, PersonId};

use crate::DynamoDbStore;
use crate::items::{self, REFERENCE_SK, key, reference_item, reference_pk};
use crate::queries;
use crate::search::free_or_held_by;
use crate::tx::{Cancelled, Role, Tx};

/// The references the index gives `person`: none unless it is live, each once, in the person's order.
fn held(person: &Person) -> Vec<&CrossReference> {
    if !person.status.is_active() {
        return Vec::new();
    }
    let mut seen = HashSet::new();
    person.references.iter().filter(|reference| seen.insert(*reference)).collect()
}

/// The reference items one write changes: one operation per item (a transaction touches an item once).
#[derive(Debug, Default)]
pub(crate) struct ReferenceChanges {
    /// References the written person takes, in its order (put; [`Role::Reference`] holds the index here).
    taken: Vec<CrossReference>,
    /// References no longer held by anyone the write stores (deleted).
    released: Vec<CrossReference>,
}

/// Why a cancelled transaction failed on a reference item it was taking.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Another live person holds the reference.
    Taken {
        /// The reference.
        reference: CrossReference,
        /// Its holder.
        owner: PersonId,
    },
    /// The cancellation carried no holder and the item is free (or a writer's) now: try the write again.
    Freed,
}

impl ReferenceChanges {
    /// The changes that give `written` its references, replacing those of `stored` (the writer as stored, `None`
    /// for a create) and of `absorbed` (the stored duplicate of a merge, whose references the survivor may take
    /// over). References unchanged for the writer are not touched.
    pub(crate) fn between(stored: Option<&Person>, absorbed: Option<&Person>, written: &Person) -> Self {
        let own: HashSet<&CrossReference> = stored.map(held).unwrap_or_default().into_iter().collect();
        let new = held(written);
        let keeps: HashSet<&CrossReference> = new.iter().copied().collect();
        let taken = new.iter().filter(|reference| !own.contains(*reference)).map(|r| (*r).clone()).collect();
        let mut seen = HashSet::new();
        let released = stored
            .into_iter()
            .chain(absorbed)
            .flat_map(held)
            .filter(|reference| !keeps.contains(reference) && seen.insert(*reference))
            .cloned()
            .collect();
        Self { taken, released }
    }

    /// Adds the changes to `tx`: each reference taken put for `holder` if its item is absent or held by one of
    /// `writers`, each reference released deleted on the same condition. `writers` are the persons whose items
    /// the write replaces: none for a create, the person for an update, both persons for a merge.
    pub(crate) fn write(&self, tx: &mut Tx, holder: PersonId, writers: &[PersonId]) -> Result<(), StoreError> {
        for (index, reference) in self.taken.iter().enumerate() {
            tx.put(Role::Reference(index), reference_item(reference, holder), Some(free_or_held_by(writers)))?;
        }
        for reference in &self.released {
            let item = key(reference_pk(reference), REFERENCE_SK);
            tx.delete(Role::ReleasedReference, item, Some(free_or_held_by(writers)))?;
        }
        Ok(())
    }
}

impl DynamoDbStore {
    /// The live person holding `reference`: one consistent `GetItem` of its reference item.
    pub(crate) async fn reference_owner(&self, reference: &CrossReference) -> Result<Option<PersonId>, StoreError> {
        self.get_item(&queries::REFERENCE_FIND, key(reference_pk(reference), REFERENCE_SK))
            .await?
            .map(|item| items::holder_of(&item, "reference"))
            .transpose()
    }

    /// Explains a cancellation by the first reference of `changes` the write could not take (`None`: every
    /// reference item's condition held). The holder comes from the item's old values; a cancellation without them
    /// is explained by reading the item again, and when that finds it free or held by one of `writers` the
    /// holder has let go meanwhile ([`Refusal::Freed`]).
    pub(crate) async fn refused_reference(
        &self,
        changes: &ReferenceChanges,
        cancelled: &Cancelled,
        writers: &[PersonId],
    ) -> Result<Option<Refusal>, StoreError> {
        let Some(reason) = cancelled.failed_where(|role| matches!(role, Role::Reference(_))) else {
            return Ok(None);
        };
        let reference = match reason.role {
            Role::Reference(index) => changes.taken.get(index),
            _ => None,
        };
        let Some(reference) = reference.cloned() else {
            return Err(cancelled.unexpected());
        };
        let owner = match &reason.old {
            Some(old) => Some(items::holder_of(old, "reference")?),
            None => self.reference_owner(&reference).await?,
        };
        Ok(Some(match owner {
            Some(owner) if !writers.contains(&owner) => Refusal::Taken { reference, owner },
            _ => Refusal::Freed,
        }))
    }
}

#[cfg(test)]
mod tests {
    use person_core::PersonStatus;
    use person_core::testkit::fixtures::{full_person, person_id, reference};

    use super::*;

    fn with_references(texts: &[&str]) -> Person {
        let mut person = full_person(person_id());
        person.references = texts.iter().map(|t| reference("tenure", t)).collect();
        person
    }

    fn names(references: &[CrossReference]) -> Vec<&str> {
        references.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn a_create_takes_each_reference_once_in_the_persons_order() {
        let person = with_references(&["b", "a", "b"]);
        let changes = ReferenceChanges::between(None, None, &person);
        assert_eq!(names(&changes.taken), ["b", "a"]);
        assert!(changes.released.is_empty());
    }

    #[test]
    fn an_update_touches_only_the_references_that_change() {
        let before = with_references(&["a", "b", "c"]);
        let mut after = before.clone();
        after.references = vec![reference("tenure", "b"), reference("tenure", "d"), reference("repairs", "a")];
        let changes = ReferenceChanges::between(Some(&before), None, &after);
        assert_eq!(names(&changes.taken), ["d", "a"], "the new tenure:d and repairs:a");
        assert_eq!(names(&changes.released), ["a", "c"]);
    }

    #[test]
    fn a_person_that_stops_being_live_releases_everything_and_a_tombstone_holds_nothing() {
        let before = with_references(&["a", "b"]);
        let mut after = before.clone();
        after.status = PersonStatus::Deleted;
        let changes = ReferenceChanges::between(Some(&before), None, &after);
        assert!(changes.taken.is_empty());
        assert_eq!(names(&changes.released), ["a", "b"]);
        let mut again = after.clone();
        again.version_number += 1;
        let none = ReferenceChanges::between(Some(&after), None, &again);
        assert!(none.taken.is_empty() && none.released.is_empty());
    }

    #[test]
    fn a_merge_moves_the_duplicates_references_with_one_operation_per_item() {
        let survivor = with_references(&["s1", "s2"]);
        let duplicate = with_references(&["d1", "d2"]);
        let mut merged = survivor.clone();
        // Takes d1, keeps s1, drops s2 and d2.
        merged.references = vec![reference("tenure", "s1"), reference("tenure", "d1")];
        let changes = ReferenceChanges::between(Some(&survivor), Some(&duplicate), &merged);
        assert_eq!(names(&changes.taken), ["d1"]);
        assert_eq!(names(&changes.released), ["s2", "d2"]);
    }
}

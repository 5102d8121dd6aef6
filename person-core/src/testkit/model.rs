//! Model-based testing of a store: random sequences of operations — creates, renames, deletes, merges, reference
//! claims, writes from a stale version, and invalid writes (a create reusing a stored id, a change to a person never
//! stored) — run against the store and against a simple reference model (a map of
//! persons and of claimed references), and the two must agree after every step: the outcome of each operation
//! (success, or which refusal), every person as read back, and every reference's holder. At the end the event feed
//! replayed from the start must hold one event per successful write, in order, each about the person it changed.
//!
//! [`operations`] is the proptest strategy; [`check`] runs one sequence on a store and returns the first divergence.
//! A store may serve many sequences one after the other: each sequence claims references of its own namespace and
//! replays the feed from where the previous one ended.

use std::collections::HashMap;

use proptest::prelude::*;

use crate::event::EventType;
use crate::person::{Person, PersonRef, PersonStatus};
use crate::ports::{InsertError, MergeWriteError, UpdateError};
use crate::reference::CrossReference;
use crate::testkit::contract::Store;
use crate::testkit::fixtures::{
    create_write, full_person, merge_write, person_id, reference, references_write, rename_write, status_write,
};

/// One operation. Targets are indexes into the persons created so far (modulo their number).
#[derive(Debug, Clone)]
pub enum Operation {
    /// Create a new person.
    Create,
    /// Change a person's middle name; `stale`: from the version before the current one (must be refused).
    Rename {
        /// The person.
        target: usize,
        /// Write from an old version.
        stale: bool,
    },
    /// Delete a person.
    Delete {
        /// The person.
        target: usize,
    },
    /// Merge `duplicate` into `survivor`.
    Merge {
        /// The survivor.
        survivor: usize,
        /// The duplicate.
        duplicate: usize,
    },
    /// Give a person the reference `legacy:R<number>` (one of a few, so that claims collide).
    Claim {
        /// The person.
        target: usize,
        /// Which reference.
        number: u8,
    },
    /// Invalid input: create a person with the id of one already stored (any state); must be refused as a
    /// duplicate id, changing nothing.
    Recreate {
        /// The person whose id is reused.
        target: usize,
    },
    /// Invalid input: change a person that was never stored; must be refused as not found, changing nothing.
    ChangeUnknown,
}

/// Sequences of 1 to `max_len` operations, creates first so that there is something to change.
pub fn operations(max_len: usize) -> impl Strategy<Value = Vec<Operation>> {
    let operation = prop_oneof![
        2 => Just(Operation::Create),
        3 => (any::<usize>(), any::<bool>()).prop_map(|(target, stale)| Operation::Rename { target, stale }),
        1 => any::<usize>().prop_map(|target| Operation::Delete { target }),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(survivor, duplicate)| Operation::Merge { survivor, duplicate }),
        2 => (any::<usize>(), 0_u8..4).prop_map(|(target, number)| Operation::Claim { target, number }),
        1 => any::<usize>().prop_map(|target| Operation::Recreate { target }),
        1 => Just(Operation::ChangeUnknown),
    ];
    proptest::collection::vec(operation, 1..max_len.max(2)).prop_map(|mut ops| {
        ops.insert(0, Operation::Create);
        ops
    })
}

/// The reference model: the persons as they must be stored, who holds each reference, and the writes made.
struct Model {
    /// The namespace of this sequence's references (`legacy:<namespace>-R<n>`).
    namespace: String,
    persons: Vec<Person>,
    holders: HashMap<CrossReference, usize>,
    /// (entity id, event type) of every successful write, in order.
    writes: Vec<(String, EventType)>,
}

impl Model {
    fn target(&self, index: usize) -> usize {
        index % self.persons.len()
    }

    fn live(&self, index: usize) -> bool {
        self.persons[index].status.is_active()
    }
}

/// Runs `operations` on `store` and on the model; the feed position after the sequence, or the first divergence.
/// `feed_from` is the feed position before the sequence (0 for a new store; what the previous call returned when a
/// store serves several sequences, one at a time).
///
/// # Errors
/// A description of the step where the store and the model disagreed.
pub async fn check(store: Store, operations: &[Operation], feed_from: u64) -> Result<u64, String> {
    let mut model = Model {
        namespace: person_id().as_uuid().simple().to_string(),
        persons: Vec::new(),
        holders: HashMap::new(),
        writes: Vec::new(),
    };
    for (step, operation) in operations.iter().enumerate() {
        apply(&store, &mut model, operation).await.map_err(|e| format!("step {step} {operation:?}: {e}"))?;
        compare(&store, &model).await.map_err(|e| format!("after step {step} {operation:?}: {e}"))?;
    }
    replay(&store, &model, feed_from).await
}

async fn apply(store: &Store, model: &mut Model, operation: &Operation) -> Result<(), String> {
    match *operation {
        Operation::Create => {
            let person = full_person(person_id());
            let created = store.insert(create_write(person.clone(), None)).await.map_err(|e| format!("create: {e}"))?;
            let largest = model.persons.iter().map(|p| p.person_ref.0).max().unwrap_or(0);
            // (Across sequences on one store, numbers only rise too; within one, each create is above the last.)
            if created.person_ref.0 <= largest {
                return Err(format!("personRef {} not above {largest}", created.person_ref.0));
            }
            let index = model.persons.len();
            for claimed in &created.references {
                model.holders.insert(claimed.clone(), index);
            }
            model.writes.push((created.id.to_string(), EventType::PersonCreatedEvent));
            model.persons.push(created);
        }
        Operation::Rename { target, stale } => {
            let index = model.target(target);
            let current = model.persons[index].clone();
            if stale && current.version_number > 0 {
                let mut old = current.clone();
                old.version_number -= 1;
                return match store.update(rename_write(&old, "Stale")).await {
                    Err(UpdateError::VersionConflict { current: stored }) if stored == current.version_number => Ok(()),
                    other => Err(format!("a stale rename answered {other:?}")),
                };
            }
            if !model.live(index) {
                return Ok(()); // the service refuses changes to deleted and merged persons before the store
            }
            let write = rename_write(&current, &format!("Renamed{}", current.version_number + 1));
            let next = write.person.clone();
            store.update(write).await.map_err(|e| format!("rename: {e}"))?;
            model.writes.push((next.id.to_string(), EventType::PersonUpdatedEvent));
            model.persons[index] = next;
        }
        Operation::Delete { target } => {
            let index = model.target(target);
            if !model.live(index) {
                return Ok(());
            }
            let write = status_write(&model.persons[index], PersonStatus::Deleted);
            let next = write.person.clone();
            store.update(write).await.map_err(|e| format!("delete: {e}"))?;
            model.holders.retain(|_, holder| *holder != index);
            model.writes.push((next.id.to_string(), EventType::PersonDeletedEvent));
            model.persons[index] = next;
        }
        Operation::Merge { survivor, duplicate } => {
            let (s, d) = (model.target(survivor), model.target(duplicate));
            if s == d || !model.live(s) || !model.live(d) {
                return Ok(());
            }
            let write = merge_write(&model.persons[s], &model.persons[d], &[], None, Vec::new());
            let (next_s, next_d) = (write.survivor.clone(), write.duplicate.clone());
            match store.merge(write).await {
                Ok(()) => {}
                Err(MergeWriteError::ReferenceTaken { reference, owner }) => {
                    return Err(format!("merge refused: {reference} held by {owner}"));
                }
                Err(e) => return Err(format!("merge: {e}")),
            }
            for holder in model.holders.values_mut() {
                if *holder == d {
                    *holder = s;
                }
            }
            model.writes.push((next_s.id.to_string(), EventType::PersonMergedEvent));
            model.persons[s] = next_s;
            model.persons[d] = next_d;
        }
        Operation::Claim { target, number } => {
            let index = model.target(target);
            if !model.live(index) {
                return Ok(());
            }
            let wanted = reference("legacy", &format!("{}-R{number}", model.namespace));
            let current = model.persons[index].clone();
            if current.references.contains(&wanted) {
                return Ok(());
            }
            let mut references = current.references.clone();
            references.push(wanted.clone());
            let write = references_write(&current, &references);
            let next = write.person.clone();
            let outcome = store.update(write).await;
            match (model.holders.get(&wanted).copied(), outcome) {
                (None, Ok(())) => {
                    model.holders.insert(wanted, index);
                    model.writes.push((next.id.to_string(), EventType::PersonUpdatedEvent));
                    model.persons[index] = next;
                }
                (Some(holder), Err(UpdateError::ReferenceTaken { owner, .. })) if owner == model.persons[holder].id => {
                }
                (expected, outcome) => {
                    return Err(format!(
                        "claim: the model expected holder {expected:?}, the store answered {outcome:?}"
                    ));
                }
            }
        }
        Operation::Recreate { target } => {
            let taken = model.persons[model.target(target)].id;
            match store.insert(create_write(full_person(taken), None)).await {
                Err(InsertError::DuplicateId) => {}
                other => return Err(format!("a create reusing {taken} answered {other:?}")),
            }
        }
        Operation::ChangeUnknown => {
            let mut unknown = full_person(person_id());
            unknown.person_ref = PersonRef(1);
            match store.update(rename_write(&unknown, "Nobody")).await {
                Err(UpdateError::NotFound) => {}
                other => return Err(format!("a change to a person never stored answered {other:?}")),
            }
        }
    }
    Ok(())
}

/// Every person reads back as the model has it, and every claimed reference names its holder.
async fn compare(store: &Store, model: &Model) -> Result<(), String> {
    for person in &model.persons {
        let stored = store.get(person.id).await.map_err(|e| format!("get: {e}"))?;
        if stored.as_ref() != Some(person) {
            return Err(format!("{} reads back differently: {stored:?}", person.id));
        }
    }
    for (claimed, holder) in &model.holders {
        let found = store.find_by_reference(claimed).await.map_err(|e| format!("find_by_reference: {e}"))?;
        if found != Some(model.persons[*holder].id) {
            return Err(format!("{claimed}: held by {found:?}, the model says {}", model.persons[*holder].id));
        }
    }
    Ok(())
}

/// The feed replayed from `feed_from`: one event per successful write, in order, about the person written; the
/// position of the last one.
async fn replay(store: &Store, model: &Model, feed_from: u64) -> Result<u64, String> {
    let limit = u32::try_from(model.writes.len() + 10).unwrap_or(u32::MAX);
    let feed = store.events_after(feed_from, limit).await.map_err(|e| format!("events_after: {e}"))?;
    let replayed: Vec<(String, EventType)> =
        feed.iter().map(|entry| (entry.event.entity_id.to_string(), entry.event.event_type)).collect();
    if replayed != model.writes {
        return Err(format!("the feed replays {replayed:?}, the writes were {:?}", model.writes));
    }
    if feed.windows(2).any(|pair| pair[0].position >= pair[1].position) {
        return Err("feed positions are not increasing".to_owned());
    }
    Ok(feed.last().map_or(feed_from, |entry| entry.position))
}

//! Import beyond the contract suite: the `personRef` sequence and claims across store handles (as several server
//! processes would hold them), and a batch larger than a transaction. Skipped unless
//! `PERSON_TEST_DYNAMODB_ENDPOINT` is set.

#[expect(dead_code, reason = "each test crate uses a different part of the shared helpers")]
mod common;

use std::time::Instant;

use common::fresh_store;
use person_core::audit::AuditAction;
use person_core::ports::{AuditLog, ImportOutcome, ImportRepository, ImportWrite, PersonRepository};
use person_core::testkit::fixtures::{audit_entry, create_write, full_person, keys, person_id};
use person_core::{Person, PersonRef};

fn kept(person_ref: i64) -> ImportWrite {
    let mut person = full_person(person_id());
    person.person_ref = PersonRef(person_ref);
    ImportWrite { person, assign_ref: false, search_keys: keys(&["import:test"]), dedup_key: None }
}

fn assigned() -> ImportWrite {
    ImportWrite { assign_ref: true, ..kept(0) }
}

fn audit() -> person_core::audit::AuditEntry {
    audit_entry(AuditAction::PersonImport, Vec::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_on_another_handle_never_takes_an_imported_number_and_an_import_names_a_created_holder() {
    let Some(table) = fresh_store().await else { return };
    let creator = table.another_handle().await;
    // The creator caches the counter as its first create left it.
    let first: Person = creator.insert(create_write(full_person(person_id()), None)).await.expect("insert succeeds");
    assert_eq!(first.person_ref, PersonRef(1));

    let outcomes = table.import_persons(vec![kept(50), assigned()], audit()).await.expect("import succeeds");
    assert_eq!(outcomes[1], ImportOutcome::Imported { person_ref: PersonRef(51), duplicate_of: None });

    let second = creator.insert(create_write(full_person(person_id()), None)).await.expect("insert succeeds");
    assert_eq!(second.person_ref, PersonRef(52), "the creator's stale counter does not set the sequence back");

    let again = table.import_persons(vec![kept(first.person_ref.0)], audit()).await.expect("import succeeds");
    assert_eq!(again, vec![ImportOutcome::PersonRefTaken { owner: first.id }], "a created person's number is held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_four_hundred_is_stored_with_one_audit_entry_and_stored_again_writes_nothing() {
    let Some(table) = fresh_store().await else { return };
    let batch: Vec<ImportWrite> =
        (0..400).map(|i| if i % 4 == 0 { assigned() } else { kept(10_000 + i64::from(i)) }).collect();

    let started = Instant::now();
    let outcomes = table.import_persons(batch.clone(), audit()).await.expect("import succeeds");
    println!("400 persons imported in {:?}", started.elapsed());
    assert!(outcomes.iter().all(|o| matches!(o, ImportOutcome::Imported { duplicate_of: None, .. })), "{outcomes:?}");
    let last = batch.last().map(|w| w.person.id).expect("a batch");
    let audited = table.entries_for_person(last, 0, 10).await.expect("audit succeeds");
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].entry.person_ids.len(), 400, "one entry names every person stored");
    assert_eq!(table.get(last).await.expect("get").map(|p| p.person_ref), Some(PersonRef(10_399)));

    let started = Instant::now();
    let again = table.import_persons(batch, audit()).await.expect("import succeeds");
    println!("the same 400 again in {:?}", started.elapsed());
    assert!(again.iter().all(|o| *o == ImportOutcome::AlreadyStored));
    assert_eq!(table.entries_for_person(last, 0, 10).await.expect("audit succeeds").len(), 1);
}

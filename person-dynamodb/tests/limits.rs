//! DynamoDB's limit of 100 items per transaction: a merge whose duplicate holds many keys still commits (the
//! duplicate's postings follow the transaction), persons holding the most cross-references are created, merged
//! and deleted in one transaction each, and a write that cannot fit is refused whole. Skipped unless
//! `PERSON_TEST_DYNAMODB_ENDPOINT` is set.

#[expect(dead_code, reason = "each test crate uses a different part of the shared helpers")]
mod common;

use common::fresh_store;
use person_core::PersonStatus;
use person_core::ports::{PersonRepository, StoreError, UpdateError};
use person_core::reference::{CrossReference, MAX_REFERENCES};
use person_core::testkit::fixtures::{
    full_person, keyed_create_write, keys, merge_write, person_id, reference, references_write, rename_write,
    status_write, with_keys,
};

fn numbered(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}:{i}")).collect()
}

fn refs(texts: &[String]) -> Vec<&str> {
    texts.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_too_big_for_one_transaction_commits_and_the_duplicates_postings_follow_it() {
    let Some(store) = fresh_store().await else { return };
    let (survivor_keys, duplicate_keys, new_keys) = (numbered("s", 30), numbered("d", 40), numbered("n", 30));
    let survivor = store
        .insert(keyed_create_write(full_person(person_id()), &refs(&survivor_keys), Some("survivor")))
        .await
        .expect("insert succeeds");
    let duplicate = store
        .insert(keyed_create_write(full_person(person_id()), &refs(&duplicate_keys), Some("duplicate")))
        .await
        .expect("insert succeeds");

    // 60 survivor postings replaced and 40 duplicate postings dropped: more than one transaction holds.
    let write = merge_write(&survivor, &duplicate, &refs(&new_keys), Some("survivor"), Vec::new());
    store.merge(write).await.expect("merge succeeds");

    let found = store.candidates(&keys(&refs(&new_keys)), 10).await.expect("candidates");
    assert_eq!(found.iter().map(|c| (c.person.id, c.matched_keys)).collect::<Vec<_>>(), vec![(survivor.id, 30)]);
    assert!(store.candidates(&keys(&refs(&survivor_keys)), 10).await.expect("candidates").is_empty());
    assert!(store.candidates(&keys(&refs(&duplicate_keys)), 10).await.expect("candidates").is_empty());
    let sent = store.sdk_operations_sent();
    assert_eq!(sent.get("BatchWriteItem"), Some(&2), "the 40 postings in two calls of 25: {sent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_that_cannot_fit_in_one_transaction_is_refused_and_writes_nothing() {
    let Some(store) = fresh_store().await else { return };
    let (old, new) = (numbered("old", 50), numbered("new", 50));
    let person =
        store.insert(keyed_create_write(full_person(person_id()), &refs(&old), None)).await.expect("insert succeeds");

    let result = store.update(with_keys(rename_write(&person, "Too big"), &refs(&new), None)).await;
    assert!(matches!(result, Err(UpdateError::Store(StoreError::Unexpected(_)))), "got {result:?}");

    assert_eq!(store.get(person.id).await.expect("get").expect("exists"), person, "the person is untouched");
    let found = store.candidates(&keys(&refs(&old)), 10).await.expect("candidates");
    assert_eq!(found.iter().map(|c| c.matched_keys).collect::<Vec<_>>(), vec![50], "its keys are untouched");
    assert_eq!(store.events_after(0, 10).await.expect("events").len(), 1, "no event for the refused update");
}

/// `MAX_REFERENCES` references of `system`.
fn most_references(system: &str) -> Vec<CrossReference> {
    (0..MAX_REFERENCES).map(|i| reference(system, &format!("{system}-{i}"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_takes_every_reference_of_a_duplicate_holding_the_most_in_its_one_transaction() {
    let Some(store) = fresh_store().await else { return };
    let (survivor_keys, duplicate_keys, new_keys) = (numbered("s", 30), numbered("d", 30), numbered("n", 30));
    let mut survivor = full_person(person_id());
    survivor.references = most_references("tenure");
    let mut duplicate = full_person(person_id());
    duplicate.references = most_references("repairs");
    // Creates with 30 keys and every reference: 8 + 30 + 25 items.
    let survivor = store
        .insert(keyed_create_write(survivor, &refs(&survivor_keys), Some("survivor")))
        .await
        .expect("insert succeeds");
    let duplicate = store
        .insert(keyed_create_write(duplicate, &refs(&duplicate_keys), Some("duplicate")))
        .await
        .expect("insert succeeds");

    // 25 references taken, 60 survivor postings replaced: the duplicate's 30 postings follow the transaction.
    let write = merge_write(&survivor, &duplicate, &refs(&new_keys), Some("survivor"), Vec::new());
    assert_eq!(write.survivor.references.len(), 2 * MAX_REFERENCES);
    store.merge(write).await.expect("merge succeeds");

    for held in most_references("tenure").iter().chain(&most_references("repairs")) {
        assert_eq!(store.find_by_reference(held).await.expect("find"), Some(survivor.id), "{held}");
    }
    let sent = store.sdk_operations_sent();
    assert_eq!(sent.get("BatchWriteItem"), Some(&2), "only the duplicate's postings follow: {sent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_person_holding_the_most_references_and_keys_releases_them_all_at_once() {
    let Some(store) = fresh_store().await else { return };
    let mut person = full_person(person_id());
    person.references = most_references("tenure");
    let person = store
        .insert(keyed_create_write(person, &refs(&numbered("k", 30)), Some("dedup")))
        .await
        .expect("insert succeeds");

    store.update(status_write(&person, PersonStatus::Deleted)).await.expect("delete succeeds");

    for held in &most_references("tenure") {
        assert_eq!(store.find_by_reference(held).await.expect("find"), None, "{held} is released");
    }
    let sent = store.sdk_operations_sent();
    assert_eq!(sent.get("BatchWriteItem"), None, "postings and references fit in the transaction: {sent:?}");
    let heir = store.insert(keyed_create_write(full_person(person_id()), &[], None)).await.expect("insert succeeds");
    let mut claimed = heir.references.clone();
    claimed.extend(most_references("tenure").into_iter().take(MAX_REFERENCES - 1));
    store.update(references_write(&heir, &claimed)).await.expect("the released references can be claimed");
    assert_eq!(store.find_by_reference(&reference("tenure", "tenure-0")).await.expect("find"), Some(heir.id));
}

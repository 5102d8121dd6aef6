//! Search keys and dedup keys in DynamoDB: the postings a write adds and removes, the dedup items it takes and
//! releases, the guard on a person's equality keys, and candidate retrieval.
//!
//! A posting is an item `KEY#<key>` / `<person id>#<source>`, so the persons holding a key are one `Query` on
//! its partition, and the cost of [`PersonRepository::candidates`](person_core::PersonRepository::candidates)
//! depends on the persons having the keys, never on the table. Keys are opaque strings computed by
//! `person-core`; this module only stores and finds them.

use std::collections::{BTreeSet, HashMap, HashSet};

use aws_sdk_dynamodb::types::KeysAndAttributes;
use futures::future::try_join_all;
use person_core::PersonId;
use person_core::documents::DocumentKind;
use person_core::matching::{KeySource, SearchKey};
use person_core::ports::{Candidate, StoreError};

use crate::DynamoDbStore;
use crate::error::{build_failed, failed};
use crate::items::{
    self, EQUALITY_KEYS_SK, EqualityKeys, Item, PERSON_SK, PK, PersonItem, SK, dedup_item, dedup_pk, distinct,
    document_sk, key, n, person_attr, person_of_posting, person_pk, posting_item, s, search_key_pk, search_key_sk,
};
use crate::queries::{self, NamedOperation};
use crate::tx::{Condition, Role, Slot, Tx};

/// Persons whose items one `BatchGetItem` reads in candidate retrieval (a person item and an equality document
/// each: 100 keys, the call's limit).
const CANDIDATES_PER_BATCH: usize = 50;

/// Keys per `BatchGetItem` call (DynamoDB's limit).
pub(crate) const BATCH_GET_LIMIT: usize = 100;

/// Adds to `tx` the postings that turn `old` into `new` for a person's keys of `source`: removed keys deleted,
/// new keys put, unchanged keys untouched (so a write spends transaction items only on what changes).
pub(crate) fn replace_postings(
    tx: &mut Tx,
    id: PersonId,
    source: KeySource,
    old: &[SearchKey],
    new: &[SearchKey],
) -> Result<(), StoreError> {
    let old: BTreeSet<&SearchKey> = old.iter().collect();
    let new: BTreeSet<&SearchKey> = new.iter().collect();
    for removed in old.difference(&new) {
        tx.delete(Role::Plain, key(search_key_pk(removed), search_key_sk(id, source)), None)?;
    }
    for added in new.difference(&old) {
        tx.put(Role::Plain, posting_item(added, id, source), None)?;
    }
    Ok(())
}

/// The guard on a person's equality-keys item: it must still be at the revision read (or still absent).
fn equality_keys_guard(keys: &EqualityKeys) -> Condition {
    match keys.rev {
        Some(rev) => Condition::new("#rev = :rev").name("#rev", items::keys_attr::REV).value(":rev", n(rev)),
        None => Condition::absent(),
    }
}

/// Adds to `tx` the replacement of a person's equality keys (`stored`, as read) by `new`, guarded by the
/// revision read: a concurrent equality write makes the transaction fail on this item, and it is retried.
pub(crate) fn replace_equality_keys(
    tx: &mut Tx,
    id: PersonId,
    slot: Slot,
    stored: &EqualityKeys,
    new: &[SearchKey],
) -> Result<(), StoreError> {
    let new = distinct(new);
    replace_postings(tx, id, KeySource::Equality, &stored.keys, &new)?;
    let item_key = key(person_pk(id), EQUALITY_KEYS_SK);
    match (new.is_empty(), stored.rev) {
        (false, _) => tx.put(Role::EqualityKeys(slot), stored.next_item(id, &new), Some(equality_keys_guard(stored))),
        (true, Some(_)) => tx.delete(Role::EqualityKeys(slot), item_key, Some(equality_keys_guard(stored))),
        (true, None) => tx.check(Role::EqualityKeys(slot), item_key, equality_keys_guard(stored)),
    }
}

/// Adds to `tx` the take-over of dedup key `new` by `holder` and the release of the keys in `released`.
///
/// The new key's item is put only if it is free or already held by one of `holders` (the writer itself, or both
/// persons of a merge, whose duplicate releases its key in the same transaction). A key both released and taken
/// is one put, never a delete and a put (a transaction touches an item once).
pub(crate) fn move_dedup(
    tx: &mut Tx,
    holder: PersonId,
    holders: &[PersonId],
    new: Option<&str>,
    released: &[Option<&str>],
) -> Result<(), StoreError> {
    let mut touched: HashSet<&str> = HashSet::new();
    if let Some(new) = new {
        tx.put(Role::Dedup, dedup_item(new, holder), Some(free_or_held_by(holders)))?;
        touched.insert(new);
    }
    for old in released.iter().flatten() {
        if touched.insert(old) {
            tx.delete(Role::Plain, key(dedup_pk(old), items::DEDUP_SK), None)?;
        }
    }
    Ok(())
}

/// The condition of an item naming its holder in `personId` (a dedup or reference item): absent, or held by one
/// of `holders` (at most two: the writer, or both persons of a merge).
pub(crate) fn free_or_held_by(holders: &[PersonId]) -> Condition {
    match holders {
        [] => Condition::absent(),
        [only] => Condition::new("attribute_not_exists(#pk) OR #holder = :a")
            .name("#pk", PK)
            .name("#holder", person_attr::PERSON_ID)
            .value(":a", s(only.to_string())),
        [first, second, ..] => Condition::new("attribute_not_exists(#pk) OR #holder = :a OR #holder = :b")
            .name("#pk", PK)
            .name("#holder", person_attr::PERSON_ID)
            .value(":a", s(first.to_string()))
            .value(":b", s(second.to_string())),
    }
}

/// Adds to `tx` the removal of every posting of a person that is no longer live: its `person` keys (as stored on
/// its item) and its equality keys (as read), and its equality-keys item (guarded by its revision).
pub(crate) fn drop_all_keys(
    tx: &mut Tx,
    id: PersonId,
    slot: Slot,
    stored_person_keys: &[SearchKey],
    equality: &EqualityKeys,
) -> Result<(), StoreError> {
    // The postings of a person that is no longer live are deleted in the transaction when there is room, and
    // just after it otherwise (see `Tx::delete_when_room`): they can no longer make the person a candidate.
    for key in stored_person_keys {
        tx.delete_when_room(items::key(search_key_pk(key), search_key_sk(id, KeySource::Person)));
    }
    for key in &equality.keys {
        tx.delete_when_room(items::key(search_key_pk(key), search_key_sk(id, KeySource::Equality)));
    }
    let item_key = key(person_pk(id), EQUALITY_KEYS_SK);
    match equality.rev {
        Some(_) => tx.delete(Role::EqualityKeys(slot), item_key, Some(equality_keys_guard(equality))),
        None => tx.check(Role::EqualityKeys(slot), item_key, equality_keys_guard(equality)),
    }
}

impl DynamoDbStore {
    /// A person's equality keys and their revision (consistent read).
    pub(crate) async fn read_equality_keys(&self, id: PersonId) -> Result<EqualityKeys, StoreError> {
        let item = self.get_item(&queries::EQUALITY_KEYS_GET, key(person_pk(id), EQUALITY_KEYS_SK)).await?;
        EqualityKeys::from_item(item.as_ref())
    }

    /// Candidate retrieval: one `Query` per distinct key (concurrently), counted per person, ranked, then the
    /// ranked persons read in batches until `limit` live, unrestricted ones are found.
    pub(crate) async fn find_candidates(&self, keys: &[SearchKey], limit: u32) -> Result<Vec<Candidate>, StoreError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if keys.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let distinct: BTreeSet<&SearchKey> = keys.iter().collect();
        let postings = try_join_all(distinct.into_iter().map(|k| self.holders_of(k))).await?;
        let mut counts: HashMap<PersonId, u32> = HashMap::new();
        for holders in postings {
            // A key held through both sources counts once.
            for id in holders {
                *counts.entry(id).or_default() += 1;
            }
        }
        let mut ranked: Vec<(PersonId, u32)> = counts.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

        let mut found = Vec::new();
        for chunk in ranked.chunks(CANDIDATES_PER_BATCH) {
            let keys = chunk
                .iter()
                .flat_map(|(id, _)| {
                    [key(person_pk(*id), PERSON_SK), key(person_pk(*id), document_sk(&DocumentKind::Equality))]
                })
                .collect();
            let items = self.batch_get(&queries::PERSON_BATCH_GET, keys, None).await?;
            for (id, matched_keys) in chunk {
                let Some(item) = items.get(&(person_pk(*id), PERSON_SK.to_owned())) else { continue };
                let person = PersonItem::from_item(item)?.person;
                if !person.status.is_active() || person.processing_restricted {
                    continue;
                }
                let nino = match items.get(&(person_pk(*id), document_sk(&DocumentKind::Equality))) {
                    Some(document) => items::nino_of(document)?,
                    None => None,
                };
                found.push(Candidate { person, nino, matched_keys: *matched_keys });
                if found.len() >= limit {
                    return Ok(found);
                }
            }
        }
        Ok(found)
    }

    /// The distinct persons holding `key` (through either source).
    async fn holders_of(&self, key: &SearchKey) -> Result<HashSet<PersonId>, StoreError> {
        let items = self
            .query(
                &queries::SEARCH_KEY_QUERY,
                "#pk = :pk",
                &[("#pk", PK), ("#sk", SK)],
                vec![(":pk", s(search_key_pk(key)))],
                Some("#sk"),
                None,
            )
            .await?;
        items.iter().map(|item| person_of_posting(items::get_s(item, SK, "search key")?)).collect()
    }

    /// Reads up to any number of items by key with `BatchGetItem` (consistent, in calls of 100 keys, retrying
    /// unprocessed keys), indexed by `(PK, SK)`.
    pub(crate) async fn batch_get(
        &self,
        operation: &'static NamedOperation,
        keys: Vec<Item>,
        projection: Option<(&'static str, &[(&'static str, &'static str)])>,
    ) -> Result<HashMap<(String, String), Item>, StoreError> {
        let mut found = HashMap::new();
        for chunk in keys.chunks(BATCH_GET_LIMIT) {
            let mut request = KeysAndAttributes::builder().set_keys(Some(chunk.to_vec())).consistent_read(true);
            if let Some((expression, names)) = projection {
                request = request.projection_expression(expression).set_expression_attribute_names(Some(
                    names.iter().map(|(p, a)| ((*p).to_owned(), (*a).to_owned())).collect(),
                ));
            }
            let mut pending =
                Some(HashMap::from([(self.table.clone(), request.build().map_err(build_failed(operation.name))?)]));
            let mut backoff = crate::tx::Backoff::new(operation, &self.options);
            while let Some(request) = pending.take() {
                let call = self.client()?.batch_get_item().set_request_items(Some(request)).send();
                let output = self
                    .options
                    .queries
                    .run_counted(operation, call, |output| {
                        Some(output.responses().map_or(0, |tables| tables.values().map(Vec::len).sum::<usize>()) as u64)
                    })
                    .await
                    .map_err(failed(operation.name))?;
                for item in output.responses.unwrap_or_default().remove(&self.table).unwrap_or_default() {
                    let pk = items::get_s(&item, PK, "batch item")?.to_owned();
                    let sk = items::get_s(&item, SK, "batch item")?.to_owned();
                    found.insert((pk, sk), item);
                }
                pending =
                    output.unprocessed_keys.filter(|unprocessed| unprocessed.values().any(|k| !k.keys().is_empty()));
                if pending.is_some() {
                    // Unprocessed keys mean throttling: back off before asking again.
                    backoff.wait().await?;
                }
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use person_core::reference::MAX_REFERENCES;
    use person_core::service::PersonKeys;
    use person_core::testkit::synthetic::{SyntheticConfig, generate};

    use crate::tx::MAX_TRANSACTION_ITEMS;

    /// Items of a create besides postings and reference items: person, personRef claim, idempotency record, dedup
    /// item, counter, event, history, audit log and index.
    const CREATE_FIXED_ITEMS: usize = 9;

    /// Items of an update besides postings and reference items: person, counter, event, history, audit log and
    /// index, two dedup items. A delete has the same number (one dedup item, and its equality-keys item).
    const UPDATE_FIXED_ITEMS: usize = 8;

    /// Items of a merge besides documents, the survivor's postings and equality keys, and reference items: both
    /// persons, three dedup items, the duplicate's equality-keys item, counter, event, two histories, the audit
    /// log and two index items.
    const MERGE_FIXED_ITEMS: usize = 13;

    /// The most `person` keys of any of 5,000 synthetic persons.
    fn most_keys() -> usize {
        let data = generate(&SyntheticConfig::new(5000, 7));
        data.persons.iter().map(|p| PersonKeys::of(&p.person, p.nino.as_deref()).person.len()).max().unwrap_or_default()
    }

    // The documented bound (docs/storage.md): an update that replaces every key of a person with as many new ones
    // fits in one transaction. The key algorithm lives in person-core; this catches a change there that would make
    // persons outgrow DynamoDB's transaction limit.
    #[test]
    fn an_update_replacing_every_key_of_any_synthetic_person_fits_in_one_transaction() {
        let most = most_keys();
        assert!(most > 0);
        assert!(UPDATE_FIXED_ITEMS + 2 * most <= MAX_TRANSACTION_ITEMS, "a person with {most} keys");
    }

    // The documented bounds with cross-references (at most MAX_REFERENCES per person; a merge's survivor may hold
    // twice as many, but only the duplicate's are new to it, so a merge changes at most MAX_REFERENCES items).
    #[test]
    fn writes_of_persons_holding_the_most_references_fit_in_one_transaction() {
        let most = most_keys();
        let create = CREATE_FIXED_ITEMS + most + MAX_REFERENCES;
        assert!(create <= MAX_TRANSACTION_ITEMS, "a create with {most} keys and every reference: {create} items");
        let replace_references = UPDATE_FIXED_ITEMS + 2 * MAX_REFERENCES;
        assert!(replace_references <= MAX_TRANSACTION_ITEMS, "every reference replaced: {replace_references} items");
        // A delete releases every reference in its transaction; its postings follow it when there is no room.
        let delete = UPDATE_FIXED_ITEMS + MAX_REFERENCES;
        assert!(delete <= MAX_TRANSACTION_ITEMS, "a delete: {delete} items");
        // A merge moving the equality document (2 items, plus the survivor's equality-keys item and NI posting),
        // adding as many keys to the survivor as a person can hold, and taking every reference of the duplicate.
        let merge = MERGE_FIXED_ITEMS + 2 + 2 + most + MAX_REFERENCES;
        assert!(merge <= MAX_TRANSACTION_ITEMS, "a merge with {most} new keys and every reference: {merge} items");
    }
}

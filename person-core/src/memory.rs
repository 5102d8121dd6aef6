//! `InMemoryStore`: a complete, honest implementation of every port, held in one mutex.
//!
//! For tests, examples and as the reference behaviour of the contract suite. Every write happens under one lock,
//! so each is atomic and the feed is in commit order by construction. Nothing survives the process.
//!
//! Search keys live in an inverted index (key → persons), so `candidates` touches only the persons having the
//! keys, as a database index would; the dedup key is a map from key to its one live holder.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use crate::audit::AuditEntry;
use crate::documents::{DocumentBody, DocumentKind, DocumentWrite, StoredDocument};
use crate::event::{FeedEntry, HistoryEntry};
use crate::import_plan::{ImportHolders, ImportPlan};
use crate::matching::{KeySource, SearchKey};
use crate::person::{Person, PersonId, PersonRef};
use crate::ports::{
    AuditLog, AuditRecord, Candidate, DocumentRepository, DocumentWriteError, IdempotencyRecord, ImportOutcome,
    ImportRepository, ImportWrite, InsertError, MergeWrite, MergeWriteError, NewPersonWrite, PersonRepository,
    PersonWrite, QueryCatalogue, RelayError, RelayLease, RelayRepository, ReportCounts, ReportQuery,
    ReportingRepository, StoreError, UpdateError,
};
use crate::reference::CrossReference;
use crate::storage::NamedQuery;

#[derive(Default)]
struct State {
    persons: HashMap<PersonId, Person>,
    history: HashMap<PersonId, Vec<HistoryEntry>>,
    events: Vec<FeedEntry>,
    idempotency: HashMap<String, IdempotencyRecord>,
    last_person_ref: i64,
    documents: HashMap<(PersonId, String), StoredDocument>,
    audit: Vec<AuditEntry>,
    /// The keys each person holds, per source.
    keys: HashMap<(PersonId, KeySource), Vec<SearchKey>>,
    /// The inverted index: which persons (and through which source) hold a key.
    key_index: HashMap<SearchKey, HashSet<(PersonId, KeySource)>>,
    /// Dedup key → the live person holding it.
    dedup: HashMap<String, PersonId>,
    /// Person → the dedup key it holds.
    dedup_of: HashMap<PersonId, String>,
    /// Cross-reference → the live person holding it.
    references: HashMap<CrossReference, PersonId>,
    /// Relay name → its lease and position.
    relays: HashMap<String, RelayLease>,
}

impl State {
    fn append_event(&mut self, event: crate::event::PersonEvent) {
        let position = self.events.len() as u64 + 1;
        self.events.push(FeedEntry { position, event });
    }

    fn set_keys(&mut self, id: PersonId, source: KeySource, keys: &[SearchKey]) {
        if let Some(old) = self.keys.remove(&(id, source)) {
            for key in old {
                if let Some(holders) = self.key_index.get_mut(&key) {
                    holders.remove(&(id, source));
                    if holders.is_empty() {
                        self.key_index.remove(&key);
                    }
                }
            }
        }
        let mut distinct: Vec<SearchKey> = keys.to_vec();
        distinct.sort();
        distinct.dedup();
        if distinct.is_empty() {
            return;
        }
        for key in &distinct {
            self.key_index.entry(key.clone()).or_default().insert((id, source));
        }
        self.keys.insert((id, source), distinct);
    }

    /// The live person other than `except` holding `key`.
    fn dedup_holder(&self, key: Option<&str>, except: &[PersonId]) -> Option<PersonId> {
        let holder = *self.dedup.get(key?)?;
        (!except.contains(&holder)).then_some(holder)
    }

    fn set_dedup(&mut self, id: PersonId, key: Option<String>) {
        if let Some(old) = self.dedup_of.remove(&id) {
            self.dedup.remove(&old);
        }
        if let Some(key) = key {
            self.dedup.insert(key.clone(), id);
            self.dedup_of.insert(id, key);
        }
    }

    /// The first of `person`'s references held by a live person other than `except`, with that person.
    fn reference_holder(&self, person: &Person, except: &[PersonId]) -> Option<(CrossReference, PersonId)> {
        if !person.status.is_active() {
            return None;
        }
        person.references.iter().find_map(|reference| {
            let owner = *self.references.get(reference)?;
            (!except.contains(&owner)).then(|| (reference.clone(), owner))
        })
    }

    /// Stores a person's keys as a write leaves them: a person no longer live holds none. Called before the
    /// person is replaced, so the stored version still names the references to release.
    fn index_person(&mut self, person: &Person, keys: &[SearchKey], dedup: Option<String>) {
        let released: Vec<CrossReference> =
            self.persons.get(&person.id).map(|p| p.references.clone()).unwrap_or_default();
        for reference in released {
            if self.references.get(&reference) == Some(&person.id) {
                self.references.remove(&reference);
            }
        }
        if person.status.is_active() {
            self.set_keys(person.id, KeySource::Person, keys);
            self.set_dedup(person.id, dedup);
            for reference in &person.references {
                self.references.insert(reference.clone(), person.id);
            }
        } else {
            self.set_keys(person.id, KeySource::Person, &[]);
            self.set_keys(person.id, KeySource::Equality, &[]);
            self.set_dedup(person.id, None);
        }
    }

    fn nino_of(&self, id: PersonId) -> Option<String> {
        match &self.documents.get(&(id, DocumentKind::Equality.key()))?.body {
            DocumentBody::Equality(data) => data.national_insurance_number.clone(),
            DocumentBody::Extended(_) => None,
        }
    }

    fn version_of(&self, id: PersonId) -> Option<u64> {
        self.persons.get(&id).map(|p| p.version_number)
    }
}

/// An in-process store; see the module documentation.
#[derive(Default)]
pub struct InMemoryStore {
    state: Mutex<State>,
}

impl InMemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        self.state.lock().map_err(|_| StoreError::unexpected("in-memory store lock poisoned"))
    }
}

impl std::fmt::Debug for InMemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryStore").finish_non_exhaustive()
    }
}

#[async_trait]
impl PersonRepository for InMemoryStore {
    async fn insert(&self, write: NewPersonWrite) -> Result<Person, InsertError> {
        let mut state = self.lock()?;
        if state.persons.contains_key(&write.id()) {
            return Err(InsertError::DuplicateId);
        }
        if let Some(key) = write.idempotency()
            && state.idempotency.contains_key(&key.key)
        {
            return Err(InsertError::IdempotencyKeyTaken);
        }
        if let Some(existing) = state.dedup_holder(write.dedup_key(), &[]) {
            return Err(InsertError::DuplicatePerson { existing });
        }
        if let Some((reference, owner)) = state.reference_holder(write.person(), &[]) {
            return Err(InsertError::ReferenceTaken { reference, owner });
        }
        let person_ref = PersonRef(state.last_person_ref + 1);
        state.last_person_ref = person_ref.0;
        let created = write.assign(person_ref);
        state.append_event(created.event);
        state.history.entry(created.person.id).or_default().push(created.history);
        state.audit.push(created.audit);
        if let Some(record) = created.idempotency {
            state.idempotency.insert(record.key.clone(), record);
        }
        state.index_person(&created.person, &created.search_keys, created.dedup_key);
        state.persons.insert(created.person.id, created.person.clone());
        Ok(created.person)
    }

    async fn get(&self, id: PersonId) -> Result<Option<Person>, StoreError> {
        Ok(self.lock()?.persons.get(&id).cloned())
    }

    async fn update(&self, write: PersonWrite) -> Result<(), UpdateError> {
        let mut state = self.lock()?;
        let stored = state.persons.get(&write.person.id).ok_or(UpdateError::NotFound)?;
        if stored.version_number != write.expected_version {
            return Err(UpdateError::VersionConflict { current: stored.version_number });
        }
        if write.person.status.is_active()
            && let Some(existing) = state.dedup_holder(write.dedup_key.as_deref(), &[write.person.id])
        {
            return Err(UpdateError::DuplicatePerson { existing });
        }
        if let Some((reference, owner)) = state.reference_holder(&write.person, &[write.person.id]) {
            return Err(UpdateError::ReferenceTaken { reference, owner });
        }
        state.append_event(write.event);
        state.history.entry(write.person.id).or_default().push(write.history);
        state.audit.push(write.audit);
        state.index_person(&write.person, &write.search_keys, write.dedup_key);
        state.persons.insert(write.person.id, write.person);
        Ok(())
    }

    async fn candidates(&self, keys: &[SearchKey], limit: u32) -> Result<Vec<Candidate>, StoreError> {
        let state = self.lock()?;
        let distinct: HashSet<&SearchKey> = keys.iter().collect();
        let mut counts: HashMap<PersonId, u32> = HashMap::new();
        for key in distinct {
            let Some(holders) = state.key_index.get(key) else { continue };
            // A key held through both sources still counts once.
            let persons: HashSet<PersonId> = holders.iter().map(|(id, _)| *id).collect();
            for id in persons {
                *counts.entry(id).or_default() += 1;
            }
        }
        let mut ranked: Vec<(PersonId, u32)> = counts
            .into_iter()
            .filter(|(id, _)| state.persons.get(id).is_some_and(|p| p.status.is_active() && !p.processing_restricted))
            .collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(limit as usize);
        Ok(ranked
            .into_iter()
            .filter_map(|(id, matched_keys)| {
                let person = state.persons.get(&id)?.clone();
                Some(Candidate { person, nino: state.nino_of(id), matched_keys })
            })
            .collect())
    }

    async fn merge(&self, write: MergeWrite) -> Result<(), MergeWriteError> {
        let mut state = self.lock()?;
        let (survivor, duplicate) = (write.survivor.id, write.duplicate.id);
        let current = state.version_of(survivor);
        if current != Some(write.survivor_expected_version) {
            return Err(MergeWriteError::SurvivorConflict { current });
        }
        let current = state.version_of(duplicate);
        if current != Some(write.duplicate_expected_version) {
            return Err(MergeWriteError::DuplicateConflict { current });
        }
        for moved in &write.documents {
            let key = moved.kind.key();
            let on_duplicate = state.documents.get(&(duplicate, key.clone())).map(|d| d.version);
            if on_duplicate != Some(moved.expected_version) || state.documents.contains_key(&(survivor, key)) {
                return Err(MergeWriteError::DocumentConflict);
            }
        }
        if let Some(existing) = state.dedup_holder(write.survivor_dedup_key.as_deref(), &[survivor, duplicate]) {
            return Err(MergeWriteError::DuplicatePerson { existing });
        }
        if let Some((reference, owner)) = state.reference_holder(&write.survivor, &[survivor, duplicate]) {
            return Err(MergeWriteError::ReferenceTaken { reference, owner });
        }
        // Checks done: apply everything (nothing below can fail).
        state.index_person(&write.duplicate, &[], None);
        state.index_person(&write.survivor, &write.survivor_keys, write.survivor_dedup_key);
        if let Some(keys) = &write.survivor_equality_keys {
            state.set_keys(survivor, KeySource::Equality, keys);
        }
        for moved in write.documents {
            let key = moved.kind.key();
            state.documents.remove(&(duplicate, key.clone()));
            state.documents.insert((survivor, key), moved.document);
        }
        state.append_event(write.event);
        state.history.entry(duplicate).or_default().push(write.duplicate_history);
        state.history.entry(survivor).or_default().push(write.survivor_history);
        state.audit.push(write.audit);
        state.persons.insert(duplicate, write.duplicate);
        state.persons.insert(survivor, write.survivor);
        Ok(())
    }

    async fn find_by_reference(&self, reference: &CrossReference) -> Result<Option<PersonId>, StoreError> {
        Ok(self.lock()?.references.get(reference).copied())
    }

    async fn history(&self, id: PersonId) -> Result<Vec<HistoryEntry>, StoreError> {
        Ok(self.lock()?.history.get(&id).cloned().unwrap_or_default())
    }

    async fn events_after(&self, after: u64, limit: u32) -> Result<Vec<FeedEntry>, StoreError> {
        let state = self.lock()?;
        let start = usize::try_from(after).unwrap_or(usize::MAX).min(state.events.len());
        Ok(state.events[start..].iter().take(limit as usize).cloned().collect())
    }

    async fn find_idempotent_create(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self.lock()?.idempotency.get(key).cloned())
    }

    async fn restricted_among(&self, ids: &[PersonId]) -> Result<Vec<PersonId>, StoreError> {
        let state = self.lock()?;
        let mut found: Vec<PersonId> =
            ids.iter().filter(|id| state.persons.get(id).is_some_and(|p| p.processing_restricted)).copied().collect();
        found.sort();
        found.dedup();
        Ok(found)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.lock().map(|_| ())
    }
}

#[async_trait]
impl DocumentRepository for InMemoryStore {
    async fn get_document(&self, person: PersonId, kind: &DocumentKind) -> Result<Option<StoredDocument>, StoreError> {
        Ok(self.lock()?.documents.get(&(person, kind.key())).cloned())
    }

    async fn list_documents(&self, person: PersonId) -> Result<Vec<StoredDocument>, StoreError> {
        let state = self.lock()?;
        Ok(state.documents.values().filter(|d| d.person_id == person).cloned().collect())
    }

    async fn write_document(&self, write: DocumentWrite) -> Result<(), DocumentWriteError> {
        let mut state = self.lock()?;
        let key = (write.person_id, write.kind.key());
        let current = state.documents.get(&key).map(|d| d.version);
        if current != write.expected_version {
            return Err(DocumentWriteError::VersionConflict { current });
        }
        match write.new {
            Some(document) => state.documents.insert(key, document),
            None => state.documents.remove(&key),
        };
        if let Some(keys) = &write.search_keys {
            state.set_keys(write.person_id, KeySource::Equality, keys);
        }
        state.audit.push(write.audit);
        Ok(())
    }
}

#[async_trait]
impl AuditLog for InMemoryStore {
    async fn append(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.lock()?.audit.push(entry);
        Ok(())
    }

    async fn entries_for_person(
        &self,
        person: PersonId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let state = self.lock()?;
        Ok(state
            .audit
            .iter()
            .enumerate()
            .map(|(i, entry)| AuditRecord { position: i as u64 + 1, entry: entry.clone() })
            .filter(|r| r.position > after && r.entry.person_ids.contains(&person))
            .take(limit as usize)
            .collect())
    }
}

/// A person that reporting shows with its data: live and not restricted.
fn reportable(person: &Person) -> bool {
    person.status.is_active() && !person.processing_restricted
}

#[async_trait]
impl ReportingRepository for InMemoryStore {
    async fn report_persons(&self, query: &ReportQuery) -> Result<Vec<Person>, StoreError> {
        let state = self.lock()?;
        let mut selected: Vec<&Person> = state
            .persons
            .values()
            .filter(|p| query.modified_since.is_none_or(|since| p.last_modified >= since))
            .filter(|p| query.after.is_none_or(|after| p.id > after))
            .collect();
        selected.sort_by_key(|p| p.id);
        let offset = usize::try_from(query.offset).unwrap_or(usize::MAX);
        Ok(selected.into_iter().skip(offset).take(query.limit as usize).cloned().collect())
    }

    async fn report_counts(&self, modified_since: Option<DateTime<Utc>>) -> Result<ReportCounts, StoreError> {
        let state = self.lock()?;
        let mut counts = ReportCounts::default();
        for person in state.persons.values().filter(|p| modified_since.is_none_or(|since| p.last_modified >= since)) {
            counts.persons += 1;
            if reportable(person) {
                counts.tenures += person.tenures.len() as u64;
                counts.references += person.references.len() as u64;
            } else {
                counts.withheld += 1;
            }
        }
        Ok(counts)
    }
}

#[async_trait]
impl RelayRepository for InMemoryStore {
    async fn acquire_relay_lease(
        &self,
        relay: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<Option<RelayLease>, StoreError> {
        let mut state = self.lock()?;
        let position = match state.relays.get(relay) {
            Some(lease) if lease.holder != holder && now < lease.expires_at => return Ok(None),
            Some(lease) => lease.position,
            None => 0,
        };
        let lease = RelayLease { holder: holder.to_owned(), position, expires_at: now + ttl };
        state.relays.insert(relay.to_owned(), lease.clone());
        Ok(Some(lease))
    }

    async fn advance_relay(
        &self,
        relay: &str,
        holder: &str,
        position: u64,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<(), RelayError> {
        let mut state = self.lock()?;
        match state.relays.get_mut(relay) {
            Some(lease) if lease.holder == holder && now < lease.expires_at => {
                lease.position = lease.position.max(position);
                lease.expires_at = now + ttl;
                Ok(())
            }
            _ => Err(RelayError::LeaseLost),
        }
    }

    async fn release_relay_lease(&self, relay: &str, holder: &str) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        if let Some(lease) = state.relays.get_mut(relay)
            && lease.holder == holder
        {
            lease.holder = String::new();
            lease.expires_at = DateTime::<Utc>::MIN_UTC;
        }
        Ok(())
    }

    async fn relay_state(&self, relay: &str) -> Result<Option<RelayLease>, StoreError> {
        Ok(self.lock()?.relays.get(relay).cloned())
    }
}

#[async_trait]
impl ImportRepository for InMemoryStore {
    async fn import_persons(
        &self,
        batch: Vec<ImportWrite>,
        mut audit: AuditEntry,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        let mut state = self.lock()?;
        let held = ImportHolders {
            ids: ImportHolders::ids_to_read(&batch).into_iter().filter(|id| state.persons.contains_key(id)).collect(),
            person_refs: {
                let kept: HashSet<i64> = ImportHolders::kept_person_refs(&batch).into_iter().collect();
                state
                    .persons
                    .values()
                    .filter(|p| kept.contains(&p.person_ref.0))
                    .map(|p| (p.person_ref.0, p.id))
                    .collect()
            },
            references: ImportHolders::live_references(&batch)
                .into_iter()
                .filter_map(|r| state.references.get(r).map(|owner| (r.clone(), *owner)))
                .collect(),
            dedup_keys: ImportHolders::live_dedup_keys(&batch)
                .into_iter()
                .filter_map(|k| state.dedup.get(k).map(|owner| (k.to_owned(), *owner)))
                .collect(),
        };
        let mut plan = ImportPlan::decide(batch, held);
        state.last_person_ref = state.last_person_ref.max(plan.largest_kept) + plan.to_assign;
        plan.assign_person_refs(state.last_person_ref);
        audit.person_ids = plan.accepted.iter().map(|a| a.person.id).collect();
        for accepted in plan.accepted {
            state.index_person(&accepted.person, &accepted.search_keys, accepted.dedup_key);
            state.persons.insert(accepted.person.id, accepted.person);
        }
        if !audit.person_ids.is_empty() {
            state.audit.push(audit);
        }
        Ok(plan.outcomes)
    }

    /// Keys are indexed with each imported person: nothing waits.
    async fn finish_import(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}

impl QueryCatalogue for InMemoryStore {
    fn store_kind(&self) -> &'static str {
        "memory"
    }

    /// The in-memory store runs no statements: every operation is a map access under one lock.
    fn statements(&self) -> &'static [NamedQuery] {
        &[]
    }
}

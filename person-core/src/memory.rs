//! `InMemoryStore`: a complete, honest implementation of every port, held in one mutex.
//!
//! For tests, examples and as the reference behaviour of the contract suite. Every write happens under one lock,
//! so each is atomic and the feed is in commit order by construction. Nothing survives the process.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::audit::AuditEntry;
use crate::documents::{DocumentKind, DocumentWrite, StoredDocument};
use crate::event::{FeedEntry, HistoryEntry};
use crate::person::{Person, PersonId, PersonRef};
use crate::ports::{
    AuditLog, AuditRecord, DocumentRepository, DocumentWriteError, IdempotencyRecord, InsertError, NewPersonWrite,
    PersonRepository, PersonWrite, StoreError, UpdateError,
};

#[derive(Default)]
struct State {
    persons: HashMap<PersonId, Person>,
    history: HashMap<PersonId, Vec<HistoryEntry>>,
    events: Vec<FeedEntry>,
    idempotency: HashMap<String, IdempotencyRecord>,
    last_person_ref: i64,
    documents: HashMap<(PersonId, String), StoredDocument>,
    audit: Vec<AuditEntry>,
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
        let person_ref = PersonRef(state.last_person_ref + 1);
        state.last_person_ref = person_ref.0;
        let created = write.assign(person_ref);
        let position = state.events.len() as u64 + 1;
        state.events.push(FeedEntry { position, event: created.event });
        state.history.entry(created.person.id).or_default().push(created.history);
        state.audit.push(created.audit);
        if let Some(record) = created.idempotency {
            state.idempotency.insert(record.key.clone(), record);
        }
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
        let position = state.events.len() as u64 + 1;
        state.events.push(FeedEntry { position, event: write.event });
        state.history.entry(write.person.id).or_default().push(write.history);
        state.audit.push(write.audit);
        state.persons.insert(write.person.id, write.person);
        Ok(())
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

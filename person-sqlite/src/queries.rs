//! Every SQL statement the store runs, as a named constant, and [`CATALOGUE`], the list the query catalogue
//! (`GET /admin/queries`, SPEC §10) shows.
//!
//! Statements bind every value as a parameter (never formatted into the text), so the text is safe to log and
//! to publish: it names columns, never values. The contract suite in `person-core` is what checks this SQL;
//! builds need no database. This module knows nothing about rows or domain types.

pub use person_core::storage::NamedQuery;

/// Starts a write transaction holding SQLite's write lock from the first statement, so the checks it makes
/// stay true until it commits (a deferred `BEGIN` would take the lock only at the first write, and could fail
/// with `SQLITE_BUSY` there instead of waiting at the start).
pub const BEGIN_IMMEDIATE: &str = "BEGIN IMMEDIATE";

/// Makes a write transaction durable (issued by sqlx's `Transaction::commit`).
pub const COMMIT: &str = "COMMIT";

/// Abandons a refused write transaction (issued by sqlx's `Transaction::rollback`).
pub const ROLLBACK: &str = "ROLLBACK";

/// Whether a person (in any state) has the id. Binds: id.
pub const PERSON_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM persons WHERE id = ?)";

/// Whether an idempotency key is stored. Binds: key.
pub const IDEMPOTENCY_KEY_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM idempotency WHERE key = ?)";

/// Allocates the next `personRef` and returns it. Inside the create's transaction, so a failed create gives its
/// number back.
pub const NEXT_PERSON_REF: &str = "UPDATE counters SET value = value + 1 WHERE name = 'person_ref' RETURNING value";

/// Stores a new person, its keys computed (`keys_indexed = 1`). Binds: id, person_ref, version_number, state,
/// merged_into, document, created_at, last_modified, processing_restricted, dedup_key.
pub const INSERT_PERSON: &str = "INSERT INTO persons \
     (id, person_ref, version_number, state, merged_into, document, created_at, last_modified, \
      processing_restricted, dedup_key, keys_indexed) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)";

/// Replaces a person if, and only if, it still has the expected version (the compare-and-set of an update).
/// Binds: version_number, state, merged_into, document, last_modified, processing_restricted, dedup_key, id,
/// expected version.
pub const UPDATE_PERSON: &str = "UPDATE persons \
     SET version_number = ?, state = ?, merged_into = ?, document = ?, last_modified = ?, \
         processing_restricted = ?, dedup_key = ?, keys_indexed = 1 \
     WHERE id = ? AND version_number = ?";

/// The live person, other than the one being written, that holds a dedup key (a read of the partial unique index
/// `persons_dedup_key_key`). Binds: dedup_key, id of the person being written.
pub const PERSON_BY_DEDUP_KEY: &str =
    "SELECT id FROM persons WHERE dedup_key = ? AND state = 'active' AND id <> ? LIMIT 1";

/// Removes a person's keys of one source, before its new ones are inserted. Binds: person_id, source.
pub const DELETE_SEARCH_KEYS: &str = "DELETE FROM search_keys WHERE person_id = ? AND source = ?";

/// Removes every key of a person (deleted or merged). Binds: person_id.
pub const DELETE_ALL_SEARCH_KEYS: &str = "DELETE FROM search_keys WHERE person_id = ?";

/// Stores a person's keys of one source, in one statement whatever their number. Binds: person_id, source, a
/// JSON array of keys (expanded by `json_each`).
pub const INSERT_SEARCH_KEYS: &str =
    "INSERT INTO search_keys (key, person_id, source) SELECT DISTINCT value, ?, ? FROM json_each(?)";

/// The live person holding a cross-reference: one read of the primary key `person_references_pkey`. Binds:
/// system, reference_id.
pub const FIND_BY_REFERENCE: &str =
    "SELECT person_id AS id FROM person_references WHERE system = ? AND reference_id = ?";

/// Releases every cross-reference a person holds, before its current ones are inserted (or because it is no
/// longer live): a read of `person_references_person_id_idx`. Binds: person_id.
pub const DELETE_REFERENCES: &str = "DELETE FROM person_references WHERE person_id = ?";

/// Claims a live person's cross-references, in one statement whatever their number. A reference another person
/// holds violates `person_references_pkey` (the whole statement is undone, the transaction goes on). Binds:
/// person_id, a JSON array of references (`{"system", "id"}`, expanded by `json_each`).
pub const INSERT_REFERENCES: &str = "INSERT INTO person_references (system, reference_id, person_id) \
     SELECT DISTINCT json_extract(value, '$.system'), json_extract(value, '$.id'), ? FROM json_each(?)";

/// The first of a person's cross-references (in the person's order) that another person holds, with its
/// position in the array and its holder: one primary-key read per reference. Binds: a JSON array of references,
/// id of the person being written.
pub const REFERENCE_HOLDER: &str = "SELECT CAST(j.key AS INTEGER) AS position, r.person_id AS id \
     FROM json_each(?) j \
     JOIN person_references r \
       ON r.system = json_extract(j.value, '$.system') AND r.reference_id = json_extract(j.value, '$.id') \
     WHERE r.person_id <> ? \
     ORDER BY j.key LIMIT 1";

/// Candidate retrieval: live, unrestricted persons having any of the keys, by number of distinct keys matched,
/// then id, with the NI number of their equality data. The inner query reads `search_keys_pkey` once per key
/// (never the whole table) and joins each hit to its person by primary key. Binds: a JSON array of keys,
/// limit.
pub const CANDIDATES: &str = "SELECT p.document, c.matched, \
        (SELECT json_extract(d.document, '$.body.nationalInsuranceNumber') FROM documents d \
          WHERE d.person_id = c.person_id AND d.kind = 'equality') AS nino \
     FROM (SELECT k.person_id AS person_id, count(DISTINCT k.key) AS matched \
             FROM search_keys k JOIN persons q ON q.id = k.person_id \
            WHERE k.key IN (SELECT value FROM json_each(?)) \
              AND q.state = 'active' AND q.processing_restricted = 0 \
            GROUP BY k.person_id \
            ORDER BY matched DESC, k.person_id \
            LIMIT ?) c \
     JOIN persons p ON p.id = c.person_id \
     ORDER BY c.matched DESC, c.person_id";

/// A batch of persons whose keys are not computed yet (rows from before migration 0003), for the backfill.
/// Binds: limit.
pub const UNINDEXED_PERSONS: &str = "SELECT document FROM persons WHERE keys_indexed = 0 ORDER BY id LIMIT ?";

/// Records a person's dedup key after the backfill computed its keys. Binds: dedup_key, id.
pub const SET_PERSON_KEYS: &str = "UPDATE persons SET dedup_key = ?, keys_indexed = 1 WHERE id = ?";

/// Marks every person for the backfill (keys recomputed after the key algorithm changed).
pub const MARK_ALL_UNINDEXED: &str = "UPDATE persons SET keys_indexed = 0, dedup_key = NULL";

/// The NI number of a person's equality data, for the backfill. Binds: person_id.
pub const EQUALITY_NINO: &str = "SELECT json_extract(document, '$.body.nationalInsuranceNumber') FROM documents \
     WHERE person_id = ? AND kind = 'equality'";

/// Which of the given persons are restricted, in one statement whatever the number of ids. Binds: a JSON array
/// of ids (expanded by `json_each`, so the statement text never depends on the number of ids).
pub const RESTRICTED_AMONG: &str = "SELECT id FROM persons \
     WHERE processing_restricted = 1 AND id IN (SELECT value FROM json_each(?))";

/// The stored version of a person, to explain why an update matched no row. Binds: id.
pub const PERSON_VERSION: &str = "SELECT version_number FROM persons WHERE id = ?";

/// Reads one person. Binds: id.
pub const GET_PERSON: &str = "SELECT document FROM persons WHERE id = ?";

/// Appends an event to the feed; its position is allocated by the insert. Binds: id, person_id, event_type,
/// document.
pub const INSERT_EVENT: &str = "INSERT INTO events (id, person_id, event_type, document) VALUES (?, ?, ?, ?)";

/// A page of the feed, in commit order. Binds: after (exclusive), limit.
pub const EVENTS_AFTER: &str = "SELECT position, document FROM events WHERE position > ? ORDER BY position LIMIT ?";

/// Appends a history entry. Binds: person_id, version_number, event_id, document.
pub const INSERT_HISTORY: &str =
    "INSERT INTO person_history (person_id, version_number, event_id, document) VALUES (?, ?, ?, ?)";

/// Every history entry of a person, oldest first. Binds: person_id.
pub const LIST_HISTORY: &str = "SELECT document FROM person_history WHERE person_id = ? ORDER BY version_number";

/// Stores an idempotency record. Binds: key, fingerprint, person_id, document, created_at.
pub const INSERT_IDEMPOTENCY: &str =
    "INSERT INTO idempotency (key, fingerprint, person_id, document, created_at) VALUES (?, ?, ?, ?, ?)";

/// Reads an idempotency record. Binds: key.
pub const GET_IDEMPOTENCY: &str = "SELECT key, fingerprint, document, created_at FROM idempotency WHERE key = ?";

/// Reads one document of a person. Binds: person_id, kind.
pub const GET_DOCUMENT: &str =
    "SELECT person_id, kind, version, document FROM documents WHERE person_id = ? AND kind = ?";

/// Every document of a person, by kind. Binds: person_id.
pub const LIST_DOCUMENTS: &str =
    "SELECT person_id, kind, version, document FROM documents WHERE person_id = ? ORDER BY kind";

/// Stores the first version of a document if, and only if, none is stored (the compare-and-set of a first
/// write: no row changed means one exists). Binds: person_id, kind, version, document, updated_at.
pub const INSERT_DOCUMENT: &str = "INSERT INTO documents (person_id, kind, version, document, updated_at) \
     VALUES (?, ?, ?, ?, ?) ON CONFLICT (person_id, kind) DO NOTHING";

/// Replaces a document if, and only if, it still has the expected version. Binds: version, document,
/// updated_at, person_id, kind, expected version.
pub const REPLACE_DOCUMENT: &str = "UPDATE documents SET version = ?, document = ?, updated_at = ? \
     WHERE person_id = ? AND kind = ? AND version = ?";

/// Deletes a document if, and only if, it still has the expected version. Binds: person_id, kind, expected
/// version.
pub const DELETE_DOCUMENT: &str = "DELETE FROM documents WHERE person_id = ? AND kind = ? AND version = ?";

/// The stored version of a document, to explain why a document write matched no row. Binds: person_id, kind.
pub const DOCUMENT_VERSION: &str = "SELECT version FROM documents WHERE person_id = ? AND kind = ?";

/// Appends an audit entry; its position is allocated by the insert. Binds: id, at, action, document.
pub const INSERT_AUDIT: &str =
    "INSERT INTO audit_log (id, at, action, document) VALUES (?, ?, ?, ?) RETURNING position";

/// Files an audit entry under each person it names (once each). Binds: position, a JSON array of person ids.
pub const INSERT_AUDIT_PERSONS: &str =
    "INSERT INTO audit_persons (position, person_id) SELECT DISTINCT ?, value FROM json_each(?)";

/// A page of the audit entries naming a person, in append order: an index range read on `audit_persons`.
/// Binds: person_id, after (exclusive), limit.
pub const AUDIT_FOR_PERSON: &str = "SELECT l.position, l.document \
     FROM audit_persons p JOIN audit_log l ON l.position = p.position \
     WHERE p.person_id = ? AND p.position > ? ORDER BY p.position LIMIT ?";

/// Checks that a connection answers.
pub const PING: &str = "SELECT 1";

/// Every statement with its stable name, for the query catalogue.
pub const CATALOGUE: &[NamedQuery] = &[
    NamedQuery { name: "transaction.begin_immediate", sql: BEGIN_IMMEDIATE },
    NamedQuery { name: "transaction.commit", sql: COMMIT },
    NamedQuery { name: "transaction.rollback", sql: ROLLBACK },
    NamedQuery { name: "person.exists", sql: PERSON_EXISTS },
    NamedQuery { name: "idempotency.exists", sql: IDEMPOTENCY_KEY_EXISTS },
    NamedQuery { name: "person_ref.next", sql: NEXT_PERSON_REF },
    NamedQuery { name: "person.insert", sql: INSERT_PERSON },
    NamedQuery { name: "person.update", sql: UPDATE_PERSON },
    NamedQuery { name: "person.version", sql: PERSON_VERSION },
    NamedQuery { name: "person.get", sql: GET_PERSON },
    NamedQuery { name: "person.restricted_among", sql: RESTRICTED_AMONG },
    NamedQuery { name: "person.by_dedup_key", sql: PERSON_BY_DEDUP_KEY },
    NamedQuery { name: "person.search_candidates", sql: CANDIDATES },
    NamedQuery { name: "person.find_by_reference", sql: FIND_BY_REFERENCE },
    NamedQuery { name: "person_references.delete", sql: DELETE_REFERENCES },
    NamedQuery { name: "person_references.insert", sql: INSERT_REFERENCES },
    NamedQuery { name: "person_references.holder", sql: REFERENCE_HOLDER },
    NamedQuery { name: "search_keys.delete", sql: DELETE_SEARCH_KEYS },
    NamedQuery { name: "search_keys.delete_all", sql: DELETE_ALL_SEARCH_KEYS },
    NamedQuery { name: "search_keys.insert", sql: INSERT_SEARCH_KEYS },
    NamedQuery { name: "search_keys.unindexed_persons", sql: UNINDEXED_PERSONS },
    NamedQuery { name: "search_keys.set_person_keys", sql: SET_PERSON_KEYS },
    NamedQuery { name: "search_keys.mark_all_unindexed", sql: MARK_ALL_UNINDEXED },
    NamedQuery { name: "search_keys.equality_nino", sql: EQUALITY_NINO },
    NamedQuery { name: "event.insert", sql: INSERT_EVENT },
    NamedQuery { name: "events.after", sql: EVENTS_AFTER },
    NamedQuery { name: "history.insert", sql: INSERT_HISTORY },
    NamedQuery { name: "history.list", sql: LIST_HISTORY },
    NamedQuery { name: "idempotency.insert", sql: INSERT_IDEMPOTENCY },
    NamedQuery { name: "idempotency.get", sql: GET_IDEMPOTENCY },
    NamedQuery { name: "document.get", sql: GET_DOCUMENT },
    NamedQuery { name: "document.list", sql: LIST_DOCUMENTS },
    NamedQuery { name: "document.insert", sql: INSERT_DOCUMENT },
    NamedQuery { name: "document.replace", sql: REPLACE_DOCUMENT },
    NamedQuery { name: "document.delete", sql: DELETE_DOCUMENT },
    NamedQuery { name: "document.version", sql: DOCUMENT_VERSION },
    NamedQuery { name: "audit.insert", sql: INSERT_AUDIT },
    NamedQuery { name: "audit.insert_persons", sql: INSERT_AUDIT_PERSONS },
    NamedQuery { name: "audit.for_person", sql: AUDIT_FOR_PERSON },
    NamedQuery { name: "store.ping", sql: PING },
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::CATALOGUE;

    #[test]
    fn catalogue_names_are_unique() {
        let names: HashSet<_> = CATALOGUE.iter().map(|q| q.name).collect();
        assert_eq!(names.len(), CATALOGUE.len());
    }
}

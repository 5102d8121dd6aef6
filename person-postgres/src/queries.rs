//! Every SQL statement the store runs, as a named constant, and [`CATALOGUE`], the list the query catalogue
//! (`GET /admin/queries`, SPEC §10) shows.
//!
//! Statements bind every value as a parameter (never formatted into the text), so the text is safe to log and to
//! publish: it names columns, never values. Tables are unqualified: they resolve through the connection's
//! `search_path` (the storage URL's `schema`). The contract suite in `person-core` is what checks this SQL; builds
//! need no database. This module knows nothing about rows or domain types.

pub use person_core::storage::NamedQuery;

/// Starts a write transaction (issued by sqlx's `Pool::begin`). READ COMMITTED: every statement sees what
/// committed before it started, and compare-and-set updates re-check their condition on the newest row version.
pub const BEGIN: &str = "BEGIN";

/// Makes a write transaction durable (issued by sqlx's `Transaction::commit`).
pub const COMMIT: &str = "COMMIT";

/// Abandons a refused write transaction (issued by sqlx's `Transaction::rollback`).
pub const ROLLBACK: &str = "ROLLBACK";

/// Serialises the writers of one dedup key until they commit, in every process: the dedup check that follows is
/// then exact. The key is hashed with the schema so that stores in different schemas never wait on each other.
/// Binds: dedup_key.
pub const LOCK_DEDUP_KEY: &str = "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ':' || $1, 0))";

/// Whether a person (in any state) has the id. Binds: id.
pub const PERSON_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM persons WHERE id = $1)";

/// Whether an idempotency key is stored. Binds: key.
pub const IDEMPOTENCY_KEY_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM idempotency WHERE key = $1)";

/// Allocates the next `personRef`. A sequence: never the same number twice, in any number of processes.
pub const NEXT_PERSON_REF: &str = "SELECT nextval('persons_person_ref_seq')";

/// Stores a new person. Binds: id, person_ref, version_number, state, merged_into, document (JSON text),
/// created_at, last_modified, processing_restricted, dedup_key.
pub const INSERT_PERSON: &str = "INSERT INTO persons \
     (id, person_ref, version_number, state, merged_into, document, created_at, last_modified, \
      processing_restricted, dedup_key) \
     VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10)";

/// Replaces a person if, and only if, it still has the expected version (the compare-and-set of an update; a
/// concurrent writer of the same row waits, then re-checks the version on the row it committed). Binds:
/// version_number, state, merged_into, document (JSON text), last_modified, processing_restricted, dedup_key, id,
/// expected version.
pub const UPDATE_PERSON: &str = "UPDATE persons \
     SET version_number = $1, state = $2, merged_into = $3, document = $4::jsonb, last_modified = $5, \
         processing_restricted = $6, dedup_key = $7 \
     WHERE id = $8 AND version_number = $9";

/// Locks the two persons of a merge, in id order (so two merges of the same pair can never deadlock), and reads
/// their versions. Binds: an array of the two ids.
pub const LOCK_PERSONS: &str = "SELECT id, version_number FROM persons WHERE id = ANY($1) ORDER BY id FOR UPDATE";

/// Locks a person against changes while a document write replaces its equality keys, and reads whether it is
/// live. Binds: id.
pub const LOCK_PERSON_SHARED: &str = "SELECT state = 'active' FROM persons WHERE id = $1 FOR SHARE";

/// The live person, other than the one being written, that holds a dedup key (a read of the partial unique index
/// `persons_dedup_key_key`). Binds: dedup_key, id of the person being written.
pub const PERSON_BY_DEDUP_KEY: &str =
    "SELECT id FROM persons WHERE dedup_key = $1 AND state = 'active' AND id <> $2 LIMIT 1";

/// Removes a person's keys of one source, before its new ones are inserted. Binds: person_id, source.
pub const DELETE_SEARCH_KEYS: &str = "DELETE FROM search_keys WHERE person_id = $1 AND source = $2";

/// Removes every key of a person (deleted or merged). Binds: person_id.
pub const DELETE_ALL_SEARCH_KEYS: &str = "DELETE FROM search_keys WHERE person_id = $1";

/// Stores a person's keys of one source, in one statement whatever their number. Binds: person_id, source, an
/// array of keys.
pub const INSERT_SEARCH_KEYS: &str =
    "INSERT INTO search_keys (key, person_id, source) SELECT DISTINCT k, $1::uuid, $2 FROM unnest($3::text[]) AS k";

/// The live person holding a cross-reference: one read of the primary key `person_references_pkey`. Binds: system,
/// reference_id.
pub const FIND_BY_REFERENCE: &str = "SELECT person_id FROM person_references WHERE system = $1 AND reference_id = $2";

/// Releases every cross-reference a person holds, before its current ones are claimed (or because it is no longer
/// live): a read of `person_references_person_id_idx`. Binds: person_id.
pub const DELETE_REFERENCES: &str = "DELETE FROM person_references WHERE person_id = $1";

/// Claims a live person's cross-references, in one statement whatever their number. A reference another
/// transaction is claiming or releasing makes the statement wait until that transaction ends; one held by another
/// person is then skipped (`DO NOTHING`, so the transaction stays usable), and fewer rows than references tells
/// the caller to read the holder. Claims are made in (system, id) order, so writers claiming overlapping
/// references queue instead of deadlocking. Binds: person_id, an array of systems, an array of ids (pairwise).
pub const INSERT_REFERENCES: &str = "INSERT INTO person_references (system, reference_id, person_id) \
     SELECT DISTINCT r.system, r.reference_id, $1::uuid FROM unnest($2::text[], $3::text[]) AS r(system, reference_id) \
     ORDER BY 1, 2 \
     ON CONFLICT ON CONSTRAINT person_references_pkey DO NOTHING";

/// The first of a person's cross-references (in the person's order) that another person holds, with its position
/// (from 1) and its holder: one primary-key read per reference. Binds: an array of systems, an array of ids
/// (pairwise), id of the person being written.
pub const REFERENCE_HOLDER: &str = "SELECT w.position, r.person_id \
     FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS w(system, reference_id, position) \
     JOIN person_references r ON r.system = w.system AND r.reference_id = w.reference_id \
     WHERE r.person_id <> $3 \
     ORDER BY w.position LIMIT 1";

/// Candidate retrieval: live, unrestricted persons having any of the keys, by number of distinct keys matched,
/// then id (uuid order is byte order, the order of the hyphenated lower-case text, as in every store), with the NI
/// number of their equality data. The inner query reads `search_keys_pkey` once per key (never the whole table)
/// and joins each hit to its person by primary key. The documents and NI numbers of the (at most `limit`) chosen
/// persons are fetched by scalar subqueries, which always run as primary-key look-ups: a join there could be
/// planned as a scan of `persons` when the planner overestimates the candidates. Binds: an array of keys, limit.
pub const CANDIDATES: &str = "SELECT \
        (SELECT p.document::text FROM persons p WHERE p.id = c.person_id) AS document, c.matched, \
        (SELECT d.document -> 'body' ->> 'nationalInsuranceNumber' FROM documents d \
          WHERE d.person_id = c.person_id AND d.kind = 'equality') AS nino \
     FROM (SELECT k.person_id AS person_id, count(DISTINCT k.key) AS matched \
             FROM search_keys k JOIN persons q ON q.id = k.person_id \
            WHERE k.key = ANY($1) \
              AND q.state = 'active' AND NOT q.processing_restricted \
            GROUP BY k.person_id \
            ORDER BY matched DESC, k.person_id \
            LIMIT $2) c \
     ORDER BY c.matched DESC, c.person_id";

/// Which of the given persons are restricted, in one statement whatever the number of ids. Binds: an array of
/// ids.
pub const RESTRICTED_AMONG: &str = "SELECT id FROM persons WHERE processing_restricted AND id = ANY($1)";

/// The stored version of a person, to explain why an update matched no row. Binds: id.
pub const PERSON_VERSION: &str = "SELECT version_number FROM persons WHERE id = $1";

/// Reads one person. Binds: id.
pub const GET_PERSON: &str = "SELECT document::text AS document FROM persons WHERE id = $1";

/// Appends an event to the feed at the next position. The counter row's lock is held until COMMIT, so
/// event-writing transactions allocate positions one at a time and commit in position order: a reader can never
/// see a position appear below one it has already read. It is the last statement of every event-writing
/// transaction, to hold that lock for as short a time as possible. Binds: id, person_id, event_type, document
/// (JSON text).
pub const INSERT_EVENT: &str = "WITH next AS ( \
         UPDATE counters SET value = value + 1 WHERE name = 'event_position' RETURNING value) \
     INSERT INTO events (position, id, person_id, event_type, document) \
     SELECT next.value, $1, $2, $3, $4::jsonb FROM next";

/// A page of the feed, in commit order. Binds: after (exclusive), limit.
pub const EVENTS_AFTER: &str =
    "SELECT position, document::text AS document FROM events WHERE position > $1 ORDER BY position LIMIT $2";

/// Appends a history entry. Binds: person_id, version_number, event_id, document (JSON text).
pub const INSERT_HISTORY: &str =
    "INSERT INTO person_history (person_id, version_number, event_id, document) VALUES ($1, $2, $3, $4::jsonb)";

/// Every history entry of a person, oldest first. Binds: person_id.
pub const LIST_HISTORY: &str =
    "SELECT document::text AS document FROM person_history WHERE person_id = $1 ORDER BY version_number";

/// Stores an idempotency record. Binds: key, fingerprint, person_id, document (JSON text), created_at.
pub const INSERT_IDEMPOTENCY: &str = "INSERT INTO idempotency (key, fingerprint, person_id, document, created_at) \
     VALUES ($1, $2, $3, $4::jsonb, $5)";

/// Reads an idempotency record. Binds: key.
pub const GET_IDEMPOTENCY: &str =
    "SELECT key, fingerprint, document::text AS document, created_at FROM idempotency WHERE key = $1";

/// Reads one document of a person. Binds: person_id, kind.
pub const GET_DOCUMENT: &str = "SELECT person_id, kind, version, document::text AS document FROM documents \
     WHERE person_id = $1 AND kind = $2";

/// Every document of a person, by kind. Binds: person_id.
pub const LIST_DOCUMENTS: &str = "SELECT person_id, kind, version, document::text AS document FROM documents \
     WHERE person_id = $1 ORDER BY kind";

/// Stores the first version of a document if, and only if, none is stored (no row inserted means one exists; a
/// concurrent first write waits for the other and then inserts nothing). Binds: person_id, kind, version,
/// document (JSON text), updated_at.
pub const INSERT_DOCUMENT: &str = "INSERT INTO documents (person_id, kind, version, document, updated_at) \
     VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT ON CONSTRAINT documents_pkey DO NOTHING";

/// Replaces a document if, and only if, it still has the expected version. Binds: version, document (JSON text),
/// updated_at, person_id, kind, expected version.
pub const REPLACE_DOCUMENT: &str = "UPDATE documents SET version = $1, document = $2::jsonb, updated_at = $3 \
     WHERE person_id = $4 AND kind = $5 AND version = $6";

/// Deletes a document if, and only if, it still has the expected version. Binds: person_id, kind, expected
/// version.
pub const DELETE_DOCUMENT: &str = "DELETE FROM documents WHERE person_id = $1 AND kind = $2 AND version = $3";

/// The stored version of a document, to explain why a document write matched no row. Binds: person_id, kind.
pub const DOCUMENT_VERSION: &str = "SELECT version FROM documents WHERE person_id = $1 AND kind = $2";

/// Appends an audit entry and files it under each person it names (once each), in one statement. Binds: id, at,
/// action, document (JSON text), an array of person ids.
pub const INSERT_AUDIT: &str = "WITH entry AS ( \
         INSERT INTO audit_log (id, at, action, document) VALUES ($1, $2, $3, $4::jsonb) RETURNING position) \
     INSERT INTO audit_persons (position, person_id) \
     SELECT DISTINCT entry.position, p FROM entry, unnest($5::uuid[]) AS p";

/// A page of the audit entries naming a person, in append order: an index range read on `audit_persons`.
/// Binds: person_id, after (exclusive), limit.
pub const AUDIT_FOR_PERSON: &str = "SELECT l.position, l.document::text AS document \
     FROM audit_persons p JOIN audit_log l ON l.position = p.position \
     WHERE p.person_id = $1 AND p.position > $2 ORDER BY p.position LIMIT $3";

/// Creates the schema named by the storage URL when it is missing (the name is validated, then quoted).
pub const CREATE_SCHEMA: &str = "CREATE SCHEMA IF NOT EXISTS";

/// Checks that a connection answers.
pub const PING: &str = "SELECT 1";

/// Every statement with its stable name, for the query catalogue.
pub const CATALOGUE: &[NamedQuery] = &[
    NamedQuery { name: "transaction.begin", sql: BEGIN },
    NamedQuery { name: "transaction.commit", sql: COMMIT },
    NamedQuery { name: "transaction.rollback", sql: ROLLBACK },
    NamedQuery { name: "person.lock_dedup_key", sql: LOCK_DEDUP_KEY },
    NamedQuery { name: "person.exists", sql: PERSON_EXISTS },
    NamedQuery { name: "idempotency.exists", sql: IDEMPOTENCY_KEY_EXISTS },
    NamedQuery { name: "person_ref.next", sql: NEXT_PERSON_REF },
    NamedQuery { name: "person.insert", sql: INSERT_PERSON },
    NamedQuery { name: "person.update", sql: UPDATE_PERSON },
    NamedQuery { name: "person.lock_pair", sql: LOCK_PERSONS },
    NamedQuery { name: "person.lock_shared", sql: LOCK_PERSON_SHARED },
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
    NamedQuery { name: "audit.for_person", sql: AUDIT_FOR_PERSON },
    NamedQuery { name: "schema.create", sql: CREATE_SCHEMA },
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

    #[test]
    fn statements_bind_values_and_never_name_a_schema() {
        for query in CATALOGUE {
            assert!(!query.sql.contains('?'), "{} uses SQLite placeholders", query.name);
            assert!(!query.sql.contains("public."), "{} names a schema", query.name);
        }
    }
}

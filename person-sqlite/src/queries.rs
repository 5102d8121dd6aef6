//! Every SQL statement the store runs, as a named [`NamedQuery`] constant (its stable name and text), and
//! [`CATALOGUE`], the list the query catalogue (`GET /admin/queries`, SPEC §10) shows. The store runs each
//! statement through its [`person_core::storage::QueryRecorder`] under the constant's name, so every execution
//! reported is of a catalogued statement.
//!
//! Statements bind every value as a parameter (never formatted into the text), so the text is safe to log and
//! to publish: it names columns, never values. The contract suite in `person-core` is what checks this SQL;
//! builds need no database. This module knows nothing about rows or domain types.

pub use person_core::storage::NamedQuery;

// Each statement a `pub const` [`NamedQuery`], and `CATALOGUE` listing them all (`person_core::named_queries!`).
person_core::named_queries! {
    /// Starts a write transaction holding SQLite's write lock from the first statement, so the checks it makes
    /// stay true until it commits (a deferred `BEGIN` would take the lock only at the first write, and could fail
    /// with `SQLITE_BUSY` there instead of waiting at the start).
    BEGIN_IMMEDIATE = "transaction.begin_immediate" => "BEGIN IMMEDIATE";

    /// Makes a write transaction durable (issued by sqlx's `Transaction::commit`).
    COMMIT = "transaction.commit" => "COMMIT";

    /// Abandons a refused write transaction (issued by sqlx's `Transaction::rollback`).
    ROLLBACK = "transaction.rollback" => "ROLLBACK";

    /// Whether a person (in any state) has the id. Binds: id.
    PERSON_EXISTS = "person.exists" => "SELECT EXISTS (SELECT 1 FROM persons WHERE id = ?)";

    /// Whether an idempotency key is stored. Binds: key.
    IDEMPOTENCY_KEY_EXISTS = "idempotency.exists" => "SELECT EXISTS (SELECT 1 FROM idempotency WHERE key = ?)";

    /// Allocates the next `personRef` and returns it. Inside the create's transaction, so a failed create gives its
    /// number back.
    NEXT_PERSON_REF = "person_ref.next" =>
        "UPDATE counters SET value = value + 1 WHERE name = 'person_ref' RETURNING value";

    /// Stores a new person, its keys computed (`keys_indexed = 1`), with the counts reporting reads. Binds: id,
    /// person_ref, version_number, state, merged_into, document, created_at, last_modified,
    /// processing_restricted, dedup_key, tenure_count, reference_count.
    INSERT_PERSON = "person.insert" => "INSERT INTO persons \
         (id, person_ref, version_number, state, merged_into, document, created_at, last_modified, \
          processing_restricted, dedup_key, tenure_count, reference_count, keys_indexed) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)";

    /// Replaces a person if, and only if, it still has the expected version (the compare-and-set of an update),
    /// with the counts reporting reads. Binds: version_number, state, merged_into, document, last_modified,
    /// processing_restricted, dedup_key, tenure_count, reference_count, id, expected version.
    UPDATE_PERSON = "person.update" => "UPDATE persons \
         SET version_number = ?, state = ?, merged_into = ?, document = ?, last_modified = ?, \
             processing_restricted = ?, dedup_key = ?, tenure_count = ?, reference_count = ?, keys_indexed = 1 \
         WHERE id = ? AND version_number = ?";

    /// The live person, other than the one being written, that holds a dedup key (a read of the partial unique index
    /// `persons_dedup_key_key`). Binds: dedup_key, id of the person being written.
    PERSON_BY_DEDUP_KEY = "person.by_dedup_key" =>
        "SELECT id FROM persons WHERE dedup_key = ? AND state = 'active' AND id <> ? LIMIT 1";

    /// Removes a person's keys of one source, before its new ones are inserted. Binds: person_id, source.
    DELETE_SEARCH_KEYS = "search_keys.delete" => "DELETE FROM search_keys WHERE person_id = ? AND source = ?";

    /// Removes every key of a person (deleted or merged). Binds: person_id.
    DELETE_ALL_SEARCH_KEYS = "search_keys.delete_all" => "DELETE FROM search_keys WHERE person_id = ?";

    /// Stores a person's keys of one source, in one statement whatever their number. Binds: person_id, source, a
    /// JSON array of keys (expanded by `json_each`).
    INSERT_SEARCH_KEYS = "search_keys.insert" =>
        "INSERT INTO search_keys (key, person_id, source) SELECT DISTINCT value, ?, ? FROM json_each(?)";

    /// The live person holding a cross-reference: one read of the primary key `person_references_pkey`. Binds:
    /// system, reference_id.
    FIND_BY_REFERENCE = "person.find_by_reference" =>
        "SELECT person_id AS id FROM person_references WHERE system = ? AND reference_id = ?";

    /// Releases every cross-reference a person holds, before its current ones are inserted (or because it is no
    /// longer live): a read of `person_references_person_id_idx`. Binds: person_id.
    DELETE_REFERENCES = "person_references.delete" => "DELETE FROM person_references WHERE person_id = ?";

    /// Claims a live person's cross-references, in one statement whatever their number. A reference another person
    /// holds violates `person_references_pkey` (the whole statement is undone, the transaction goes on). Binds:
    /// person_id, a JSON array of references (`{"system", "id"}`, expanded by `json_each`).
    INSERT_REFERENCES = "person_references.insert" => "INSERT INTO person_references (system, reference_id, person_id) \
         SELECT DISTINCT json_extract(value, '$.system'), json_extract(value, '$.id'), ? FROM json_each(?)";

    /// The first of a person's cross-references (in the person's order) that another person holds, with its
    /// position in the array and its holder: one primary-key read per reference. Binds: a JSON array of references,
    /// id of the person being written.
    REFERENCE_HOLDER = "person_references.holder" => "SELECT CAST(j.key AS INTEGER) AS position, r.person_id AS id \
         FROM json_each(?) j \
         JOIN person_references r \
           ON r.system = json_extract(j.value, '$.system') AND r.reference_id = json_extract(j.value, '$.id') \
         WHERE r.person_id <> ? \
         ORDER BY j.key LIMIT 1";

    /// Candidate retrieval: live, unrestricted persons having any of the keys, by number of distinct keys matched,
    /// then id, with the NI number of their equality data. The inner query reads `search_keys_pkey` once per key
    /// (never the whole table) and counts the hits per person **without** visiting `persons`: only live persons
    /// hold keys (every write of a deleted or merged person drops them), and restricted persons are excluded
    /// through the small partial index `persons_processing_restricted_idx`, read once per statement. Joining every
    /// key row to `persons` instead cost ~85 % of the statement at 300,000 persons (docs/benchmarks.md). Only the
    /// kept candidates are read from `persons` (their state re-checked). Binds: a JSON array of keys, limit.
    CANDIDATES = "person.search_candidates" => "SELECT p.document, c.matched, \
            (SELECT json_extract(d.document, '$.body.nationalInsuranceNumber') FROM documents d \
              WHERE d.person_id = c.person_id AND d.kind = 'equality') AS nino \
         FROM (SELECT k.person_id AS person_id, count(DISTINCT k.key) AS matched \
                 FROM search_keys k \
                WHERE k.key IN (SELECT value FROM json_each(?)) \
                  AND k.person_id NOT IN (SELECT id FROM persons WHERE processing_restricted = 1) \
                GROUP BY k.person_id \
                ORDER BY matched DESC, k.person_id \
                LIMIT ?) c \
         JOIN persons p ON p.id = c.person_id \
        WHERE p.state = 'active' \
         ORDER BY c.matched DESC, c.person_id";

    /// A batch of persons whose keys are not computed yet (rows from before migration 0003), for the backfill.
    /// Binds: limit.
    UNINDEXED_PERSONS = "search_keys.unindexed_persons" =>
        "SELECT document FROM persons WHERE keys_indexed = 0 ORDER BY id LIMIT ?";

    /// Records a person's dedup key after the backfill computed its keys. Binds: dedup_key, id.
    SET_PERSON_KEYS = "search_keys.set_person_keys" =>
        "UPDATE persons SET dedup_key = ?, keys_indexed = 1 WHERE id = ?";

    /// Marks every person for the backfill (keys recomputed after the key algorithm changed).
    MARK_ALL_UNINDEXED = "search_keys.mark_all_unindexed" => "UPDATE persons SET keys_indexed = 0, dedup_key = NULL";

    /// The NI number of a person's equality data, for the backfill. Binds: person_id.
    EQUALITY_NINO = "search_keys.equality_nino" =>
        "SELECT json_extract(document, '$.body.nationalInsuranceNumber') FROM documents \
         WHERE person_id = ? AND kind = 'equality'";

    /// Which of the given persons are restricted, in one statement whatever the number of ids. Binds: a JSON array
    /// of ids (expanded by `json_each`, so the statement text never depends on the number of ids).
    RESTRICTED_AMONG = "person.restricted_among" => "SELECT id FROM persons \
         WHERE processing_restricted = 1 AND id IN (SELECT value FROM json_each(?))";

    /// The stored version of a person, to explain why an update matched no row. Binds: id.
    PERSON_VERSION = "person.version" => "SELECT version_number FROM persons WHERE id = ?";

    /// Reads one person. Binds: id.
    GET_PERSON = "person.get" => "SELECT document FROM persons WHERE id = ?";

    /// Appends an event to the feed; its position is allocated by the insert. Binds: id, person_id, event_type,
    /// document.
    INSERT_EVENT = "event.insert" => "INSERT INTO events (id, person_id, event_type, document) VALUES (?, ?, ?, ?)";

    /// A page of the feed, in commit order. Binds: after (exclusive), limit.
    EVENTS_AFTER = "events.after" =>
        "SELECT position, document FROM events WHERE position > ? ORDER BY position LIMIT ?";

    /// Appends a history entry. Binds: person_id, version_number, event_id, document.
    INSERT_HISTORY = "history.insert" =>
        "INSERT INTO person_history (person_id, version_number, event_id, document) VALUES (?, ?, ?, ?)";

    /// Every history entry of a person, oldest first. Binds: person_id.
    LIST_HISTORY = "history.list" => "SELECT document FROM person_history WHERE person_id = ? ORDER BY version_number";

    /// Stores an idempotency record. Binds: key, fingerprint, person_id, document, created_at.
    INSERT_IDEMPOTENCY = "idempotency.insert" =>
        "INSERT INTO idempotency (key, fingerprint, person_id, document, created_at) VALUES (?, ?, ?, ?, ?)";

    /// Reads an idempotency record. Binds: key.
    GET_IDEMPOTENCY = "idempotency.get" =>
        "SELECT key, fingerprint, document, created_at FROM idempotency WHERE key = ?";

    /// Reads one document of a person. Binds: person_id, kind.
    GET_DOCUMENT = "document.get" =>
        "SELECT person_id, kind, version, document FROM documents WHERE person_id = ? AND kind = ?";

    /// Every document of a person, by kind. Binds: person_id.
    LIST_DOCUMENTS = "document.list" =>
        "SELECT person_id, kind, version, document FROM documents WHERE person_id = ? ORDER BY kind";

    /// Stores the first version of a document if, and only if, none is stored (the compare-and-set of a first
    /// write: no row changed means one exists). Binds: person_id, kind, version, document, updated_at.
    INSERT_DOCUMENT = "document.insert" => "INSERT INTO documents (person_id, kind, version, document, updated_at) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (person_id, kind) DO NOTHING";

    /// Replaces a document if, and only if, it still has the expected version. Binds: version, document,
    /// updated_at, person_id, kind, expected version.
    REPLACE_DOCUMENT = "document.replace" => "UPDATE documents SET version = ?, document = ?, updated_at = ? \
         WHERE person_id = ? AND kind = ? AND version = ?";

    /// Deletes a document if, and only if, it still has the expected version. Binds: person_id, kind, expected
    /// version.
    DELETE_DOCUMENT = "document.delete" => "DELETE FROM documents WHERE person_id = ? AND kind = ? AND version = ?";

    /// The stored version of a document, to explain why a document write matched no row. Binds: person_id, kind.
    DOCUMENT_VERSION = "document.version" => "SELECT version FROM documents WHERE person_id = ? AND kind = ?";

    /// Appends an audit entry; its position is allocated by the insert. Binds: id, at, action, document.
    INSERT_AUDIT = "audit.insert" =>
        "INSERT INTO audit_log (id, at, action, document) VALUES (?, ?, ?, ?) RETURNING position";

    /// Files an audit entry under each person it names (once each). Binds: position, a JSON array of person ids.
    INSERT_AUDIT_PERSONS = "audit.insert_persons" =>
        "INSERT INTO audit_persons (position, person_id) SELECT DISTINCT ?, value FROM json_each(?)";

    /// A page of the audit entries naming a person, in append order: an index range read on `audit_persons`.
    /// Binds: person_id, after (exclusive), limit.
    AUDIT_FOR_PERSON = "audit.for_person" => "SELECT l.position, l.document \
         FROM audit_persons p JOIN audit_log l ON l.position = p.position \
         WHERE p.person_id = ? AND p.position > ? ORDER BY p.position LIMIT ?";

    /// Writes a consistent copy of the database to a new file (`person-api backup`): one read transaction, so the
    /// copy holds every transaction committed before it started and none after; writers are not blocked (WAL).
    /// Binds: the new file's path (it must not exist).
    BACKUP_VACUUM_INTO = "store.backup" => "VACUUM INTO ?";

    /// Checks that a connection answers.
    PING = "store.ping" => "SELECT 1";

    /// A page of persons in any state for reporting, in ascending id order (the text order of the canonical
    /// lowercase ids, which is the UUIDs' byte order): a range read of `persons_report_idx` from the keyset
    /// position, testing `last_modified` in the index so only the selected rows are read from the table. Binds:
    /// after (exclusive; `''` for the first page), modified since (inclusive; `''` for every person), limit,
    /// offset. The page comes back as **one** row, the documents joined into a JSON array in id order: sqlx runs
    /// SQLite on a worker thread and hands each row to the async side through a channel, and that hand-off per row
    /// cost more than reading the row (profile in docs/benchmarks.md, CSV export).
    REPORT_PERSONS = "report.persons" => "SELECT '[' || coalesce(group_concat(document, ',' ORDER BY id), '') || ']' \
         FROM (SELECT id, document FROM persons INDEXED BY persons_report_idx \
               WHERE id > ? AND last_modified >= ? ORDER BY id LIMIT ? OFFSET ?)";

    /// The reporting counts over the persons modified since an instant, from the columns every person write
    /// keeps (no document is parsed): an index-only read of `persons_report_counts_idx`. A person is reported
    /// with its data when it is live and not restricted, and as a tombstone (withheld) otherwise. Binds:
    /// modified since (inclusive; `''` for every person).
    REPORT_COUNTS = "report.counts" => "SELECT count(*) AS persons, \
         coalesce(sum(state <> 'active' OR processing_restricted <> 0), 0) AS withheld, \
         coalesce(sum(CASE WHEN state = 'active' AND processing_restricted = 0 THEN tenure_count ELSE 0 END), 0) \
           AS tenures, \
         coalesce(sum(CASE WHEN state = 'active' AND processing_restricted = 0 THEN reference_count ELSE 0 END), 0) \
           AS reference_total \
         FROM persons WHERE last_modified >= ?";

    /// Takes a relay's lease, in one conditional upsert: creates the relay's row (position 0) when there is
    /// none, or takes it over when the caller already holds it or the holder's lease expired (`expires_at <=
    /// now`), and returns the lease; no row when another holder's lease is unexpired. Binds: relay, holder,
    /// expires at (now + ttl), now.
    RELAY_ACQUIRE = "relay.acquire" => "INSERT INTO relay_leases (relay, holder, position, expires_at) \
         VALUES (?, ?, 0, ?) \
         ON CONFLICT (relay) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
         WHERE relay_leases.holder = excluded.holder OR relay_leases.expires_at <= ? \
         RETURNING holder, position, expires_at";

    /// Stores a relay's position (never lowering it) and renews the lease, only while the caller holds it
    /// unexpired (no row changed: the lease is lost). Binds: position, expires at (now + ttl), relay, holder,
    /// now.
    RELAY_ADVANCE = "relay.advance" => "UPDATE relay_leases SET position = max(position, ?), expires_at = ? \
         WHERE relay = ? AND holder = ? AND expires_at > ?";

    /// Gives a relay's lease up when the caller holds it, keeping the position: the holder becomes empty and the
    /// lease expired since the earliest stored time, so any instance takes it at once. Binds: relay, holder.
    RELAY_RELEASE = "relay.release" => "UPDATE relay_leases \
         SET holder = '', expires_at = '0001-01-01T00:00:00.000000000Z' WHERE relay = ? AND holder = ?";

    /// A relay's lease and position. Binds: relay.
    RELAY_STATE = "relay.state" => "SELECT holder, position, expires_at FROM relay_leases WHERE relay = ?";

    /// Which ids of an import batch are stored (in any state): one read of `persons_pkey` per id. Binds: a JSON
    /// array of ids.
    IMPORT_STORED_IDS = "import.stored_ids" =>
        "SELECT id FROM persons WHERE id IN (SELECT value FROM json_each(?))";

    /// Which `personRef`s of an import batch are stored, with the person holding each: one read of
    /// `persons_person_ref_key` per number. Binds: a JSON array of `personRef`s.
    IMPORT_PERSON_REF_OWNERS = "import.person_ref_owners" =>
        "SELECT person_ref, id FROM persons WHERE person_ref IN (SELECT value FROM json_each(?))";

    /// Which dedup keys of an import batch a stored live person holds, with the holder: one read of the partial
    /// unique index `persons_dedup_key_key` per key. Binds: a JSON array of dedup keys.
    IMPORT_DEDUP_HOLDERS = "import.dedup_holders" => "SELECT dedup_key, id FROM persons \
         WHERE dedup_key IN (SELECT value FROM json_each(?)) AND state = 'active' AND dedup_key IS NOT NULL";

    /// Which cross-references of an import batch a stored live person holds, with the holder: one read of
    /// `person_references_pkey` per reference. Binds: a JSON array of references (`{"system", "id"}`).
    IMPORT_REFERENCE_HOLDERS = "import.reference_holders" => "SELECT r.system, r.reference_id, r.person_id AS id \
         FROM json_each(?) j \
         JOIN person_references r \
           ON r.system = json_extract(j.value, '$.system') AND r.reference_id = json_extract(j.value, '$.id')";

    /// Raises the `personRef` sequence to at least the largest number an import batch keeps, then allocates the
    /// numbers for the batch's persons without one, and returns the last (inside the import's transaction, so a
    /// failed import gives them back). Binds: the largest kept `personRef` (0: none), how many to allocate.
    IMPORT_RAISE_PERSON_REF = "import.person_ref_raise" =>
        "UPDATE counters SET value = max(value, ?) + ? WHERE name = 'person_ref' RETURNING value";

    /// Stores the persons of an import batch, in one statement whatever their number, with the columns a create
    /// writes (`keys_indexed = 1`). Binds: a JSON array with one array per person: id, person_ref,
    /// version_number, state, merged_into, document (as a JSON string), created_at, last_modified,
    /// processing_restricted, dedup_key, tenure_count, reference_count.
    IMPORT_INSERT_PERSONS = "import.insert_persons" => "INSERT INTO persons \
         (id, person_ref, version_number, state, merged_into, document, created_at, last_modified, \
          processing_restricted, dedup_key, tenure_count, reference_count, keys_indexed) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, \
                value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11, 1 \
         FROM json_each(?)";

    /// Sets aside the `person` search keys of the persons of an import batch (appended to `import_pending_keys`, one
    /// row per person since migration 0007, indexed by `import.finish_keys`), in one statement whatever their
    /// number. Binds: a JSON array of `[person_id, version_number, [key, …]]` triples, each person once.
    IMPORT_INSERT_PENDING_KEYS = "import.insert_pending_keys" => "INSERT INTO import_pending_keys \
         (person_id, version_number, keys) SELECT value ->> 0, value ->> 1, value -> 2 FROM json_each(?)";

    /// Reads a page of the keys set aside by an import (one row per person, in append order), with whether the
    /// person is still live at the version imported (keys of a person changed since were replaced by the change).
    /// Binds: after (a rowid, exclusive; 0 for the first page), limit.
    IMPORT_PENDING_PAGE = "import.pending_page" => "SELECT k.rowid AS position, k.person_id, k.keys, \
         p.id IS NOT NULL AS live FROM import_pending_keys k \
         LEFT JOIN persons p ON p.id = k.person_id AND p.version_number = k.version_number AND p.state = 'active' \
         WHERE k.rowid > ? ORDER BY k.rowid LIMIT ?";

    /// Appends pending keys to `search_keys`, sorted in Rust by key then person id, so that each leaf is written
    /// once. Keys the person already has (an earlier, interrupted finish) are skipped. Binds: a JSON array of
    /// `[key, person_id]` pairs.
    IMPORT_FINISH_KEYS = "import.finish_keys" => "INSERT OR IGNORE INTO search_keys (key, person_id, source) \
         SELECT value ->> 0, value ->> 1, 'person' FROM json_each(?)";

    /// Raises the page cache of the connection finishing an import to 2 GiB (in KiB when negative; pages are
    /// allocated only as they are used) when `search_keys_person_id_idx` is updated rather than rebuilt: its pages,
    /// written in person order rather than key order by `import.finish_keys`, then stay in memory until the commit
    /// writes each once. That connection is closed afterwards (the writer pool opens a fresh one), which frees the
    /// cache.
    IMPORT_RAISE_CACHE = "import.cache_raise" => "PRAGMA cache_size = -2097152";

    /// Turns foreign-key enforcement off on the connection finishing an import (before its transaction; that
    /// connection is closed afterwards). `import.finish_keys` inserts only keys of persons `import.pending_page`
    /// found live in the same transaction, so `search_keys_person_fkey` holds without a look-up of `persons` per key
    /// row (measured at a million persons: 12 s of the finish).
    IMPORT_FOREIGN_KEYS_OFF = "import.foreign_keys_off" => "PRAGMA foreign_keys = OFF";

    /// Lets SQLite sort with up to four helper threads on the connection finishing an import (the sort of
    /// `import.create_person_index`; that connection is closed afterwards).
    IMPORT_SORT_THREADS = "import.sort_threads" => "PRAGMA threads = 4";

    /// How many keys `search_keys` holds, counted up to a limit: whether `search_keys_person_id_idx` is cheaper
    /// rebuilt than updated (fewer keys are stored than wait). An insert lands on a random leaf of that index, about
    /// twice the time per key of `CREATE INDEX`'s sort; rebuilding costs in proportion to every key, waiting or
    /// stored. Binds: the limit (the number of keys waiting).
    IMPORT_STORED_KEYS_UP_TO = "import.stored_keys_up_to" => "SELECT count(*) FROM (SELECT 1 FROM search_keys LIMIT ?)";

    /// Drops `search_keys_person_id_idx` inside the finishing transaction (rebuilt by `import.create_person_index`
    /// before the commit; a rollback restores it).
    IMPORT_DROP_PERSON_INDEX = "import.drop_person_index" => "DROP INDEX search_keys_person_id_idx";

    /// Rebuilds `search_keys_person_id_idx` with the definition of migration 0003, character for character (a
    /// later migration changing that index must change this statement too; `tests/import.rs` compares them).
    IMPORT_CREATE_PERSON_INDEX = "import.create_person_index" =>
        "CREATE INDEX search_keys_person_id_idx ON search_keys (person_id, source)";

    /// Forgets the pending keys once indexed (same transaction as `import.finish_keys`).
    IMPORT_CLEAR_PENDING_KEYS = "import.clear_pending_keys" => "DELETE FROM import_pending_keys";

    /// Whether keys of an import wait to be indexed (checked when the store opens).
    IMPORT_PENDING_KEYS_EXIST = "import.pending_keys_exist" => "SELECT EXISTS (SELECT 1 FROM import_pending_keys)";

    /// Stores the cross-references of the live persons of an import batch, in one statement whatever their
    /// number. Binds: a JSON array of distinct `[system, reference_id, person_id]` triples.
    IMPORT_INSERT_REFERENCES = "import.insert_references" => "INSERT INTO person_references \
         (system, reference_id, person_id) SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)";
}

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

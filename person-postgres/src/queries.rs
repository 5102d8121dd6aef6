//! Every SQL statement the store runs, as a named [`NamedQuery`] constant, and [`CATALOGUE`], the list the query
//! catalogue (`GET /admin/queries`, SPEC §10) shows.
//!
//! Statements bind every value as a parameter (never formatted into the text), so the text is safe to log and to
//! publish: it names columns, never values. Tables are unqualified: they resolve through the connection's
//! `search_path` (the storage URL's `schema`). Each execution is reported to the store's
//! [`QueryRecorder`](person_core::storage::QueryRecorder) under the constant's `name`, and failures name the same
//! statement. The contract suite in `person-core` is what checks this SQL; builds need no database. This module
//! knows nothing about rows or domain types.

pub use person_core::storage::NamedQuery;

// Each statement a `pub const` [`NamedQuery`], and `CATALOGUE` listing them all (`person_core::named_queries!`).
person_core::named_queries! {
    /// Starts a write transaction (issued by sqlx's `Pool::begin`). READ COMMITTED: every statement sees what committed
    /// before it started, and compare-and-set updates re-check their condition on the newest row version.
    BEGIN = "transaction.begin" => "BEGIN";

    /// Makes a write transaction durable (issued by sqlx's `Transaction::commit`).
    COMMIT = "transaction.commit" => "COMMIT";

    /// Abandons a refused write transaction (issued by sqlx's `Transaction::rollback`).
    ROLLBACK = "transaction.rollback" => "ROLLBACK";

    /// Serialises the writers of one dedup key until they commit, in every process: the dedup check that follows is
    /// then exact. The key is hashed with the schema so that stores in different schemas never wait on each other.
    /// First takes the import lock shared (see `IMPORT_LOCK`): writers never wait for each other on it, and an import
    /// batch, which takes it exclusively, never sets a dedup key a writer is checking. Binds: dedup_key.
    LOCK_DEDUP_KEY = "person.lock_dedup_key" =>
        "WITH import_lock AS MATERIALIZED ( \
             SELECT pg_advisory_xact_lock_shared(hashtext(current_schema()), hashtext('import'))) \
         SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ':' || $1, 0)) FROM import_lock";

    /// Whether a person (in any state) has the id. Binds: id.
    PERSON_EXISTS = "person.exists" => "SELECT EXISTS (SELECT 1 FROM persons WHERE id = $1)";

    /// Whether an idempotency key is stored. Binds: key.
    IDEMPOTENCY_KEY_EXISTS = "idempotency.exists" => "SELECT EXISTS (SELECT 1 FROM idempotency WHERE key = $1)";

    /// Allocates the next `personRef`. A sequence: never the same number twice, in any number of processes. First
    /// takes the import lock shared (see `IMPORT_LOCK`), so no create is handed a number an import batch keeps.
    NEXT_PERSON_REF = "person_ref.next" =>
        "WITH import_lock AS MATERIALIZED ( \
             SELECT pg_advisory_xact_lock_shared(hashtext(current_schema()), hashtext('import'))) \
         SELECT nextval('persons_person_ref_seq') FROM import_lock";

    /// Stores a new person. Binds: id, person_ref, version_number, state, merged_into, document (JSON text),
    /// created_at, last_modified, processing_restricted, dedup_key, tenure_count, reference_count (the copies
    /// reporting counts read instead of the document).
    INSERT_PERSON = "person.insert" =>
        "INSERT INTO persons \
         (id, person_ref, version_number, state, merged_into, document, created_at, last_modified, \
          processing_restricted, dedup_key, tenure_count, reference_count) \
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12)";

    /// Replaces a person if, and only if, it still has the expected version (the compare-and-set of an update; a
    /// concurrent writer of the same row waits, then re-checks the version on the row it committed). Binds:
    /// version_number, state, merged_into, document (JSON text), last_modified, processing_restricted, dedup_key,
    /// tenure_count, reference_count, id, expected version.
    UPDATE_PERSON = "person.update" =>
        "UPDATE persons \
         SET version_number = $1, state = $2, merged_into = $3, document = $4::jsonb, last_modified = $5, \
             processing_restricted = $6, dedup_key = $7, tenure_count = $8, reference_count = $9 \
         WHERE id = $10 AND version_number = $11";

    /// Locks the two persons of a merge, in id order (so two merges of the same pair can never deadlock), and reads
    /// their versions. Binds: an array of the two ids.
    LOCK_PERSONS = "person.lock_pair" =>
        "SELECT id, version_number FROM persons WHERE id = ANY($1) ORDER BY id FOR UPDATE";

    /// Locks a person against changes while a document write replaces its equality keys, and reads whether it is live.
    /// Binds: id.
    LOCK_PERSON_SHARED = "person.lock_shared" => "SELECT state = 'active' FROM persons WHERE id = $1 FOR SHARE";

    /// The live person, other than the one being written, that holds a dedup key (a read of the partial unique index
    /// `persons_dedup_key_key`). Binds: dedup_key, id of the person being written.
    PERSON_BY_DEDUP_KEY = "person.by_dedup_key" =>
        "SELECT id FROM persons WHERE dedup_key = $1 AND state = 'active' AND id <> $2 LIMIT 1";

    /// Removes a person's keys of one source, before its new ones are inserted. Binds: person_id, source.
    DELETE_SEARCH_KEYS = "search_keys.delete" => "DELETE FROM search_keys WHERE person_id = $1 AND source = $2";

    /// Removes every key of a person (deleted or merged). Binds: person_id.
    DELETE_ALL_SEARCH_KEYS = "search_keys.delete_all" => "DELETE FROM search_keys WHERE person_id = $1";

    /// Stores a person's keys of one source, in one statement whatever their number. Binds: person_id, source, an array
    /// of keys.
    INSERT_SEARCH_KEYS = "search_keys.insert" =>
        "INSERT INTO search_keys (key, person_id, source) SELECT DISTINCT k, $1::uuid, $2 FROM unnest($3::text[]) AS k";

    /// The live person holding a cross-reference: one read of the primary key `person_references_pkey`. Binds: system,
    /// reference_id.
    FIND_BY_REFERENCE = "person.find_by_reference" =>
        "SELECT person_id FROM person_references WHERE system = $1 AND reference_id = $2";

    /// Releases every cross-reference a person holds, before its current ones are claimed (or because it is no longer
    /// live): a read of `person_references_person_id_idx`. Binds: person_id.
    DELETE_REFERENCES = "person_references.delete" => "DELETE FROM person_references WHERE person_id = $1";

    /// Claims a live person's cross-references, in one statement whatever their number. A reference another transaction
    /// is claiming or releasing makes the statement wait until that transaction ends; one held by another person is
    /// then skipped (`DO NOTHING`, so the transaction stays usable), and fewer rows than references tells the caller to
    /// read the holder. Claims are made in (system, id) order, so writers claiming overlapping references queue instead
    /// of deadlocking. Binds: person_id, an array of systems, an array of ids (pairwise).
    INSERT_REFERENCES = "person_references.insert" =>
        "INSERT INTO person_references (system, reference_id, person_id) \
         SELECT DISTINCT r.system, r.reference_id, $1::uuid \
         FROM unnest($2::text[], $3::text[]) AS r(system, reference_id) \
         ORDER BY 1, 2 \
         ON CONFLICT ON CONSTRAINT person_references_pkey DO NOTHING";

    /// The first of a person's cross-references (in the person's order) that another person holds, with its position
    /// (from 1) and its holder: one primary-key read per reference. Binds: an array of systems, an array of ids
    /// (pairwise), id of the person being written.
    REFERENCE_HOLDER = "person_references.holder" =>
        "SELECT w.position, r.person_id \
         FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS w(system, reference_id, position) \
         JOIN person_references r ON r.system = w.system AND r.reference_id = w.reference_id \
         WHERE r.person_id <> $3 \
         ORDER BY w.position LIMIT 1";

    /// Candidate retrieval: live, unrestricted persons having any of the keys, by number of distinct keys matched, then
    /// id (uuid order is byte order, the order of the hyphenated lower-case text, as in every store), with the NI
    /// number of their equality data. The inner query reads `search_keys_pkey` once per key (never the whole table) and
    /// counts the hits per person without visiting `persons`: only live persons hold keys (writes of deleted or merged
    /// persons drop them), and restricted persons are excluded by an anti-join on the small partial index
    /// `persons_processing_restricted_idx` (joining every key row to `persons` was most of the statement's time at
    /// scale, docs/benchmarks.md). The documents and NI numbers of the (at most `limit`) chosen
    /// persons are fetched by scalar subqueries, which always run as primary-key look-ups: a join there could be
    /// planned as a scan of `persons` when the planner overestimates the candidates. Binds: an array of keys, limit.
    CANDIDATES = "person.search_candidates" =>
        "SELECT \
            (SELECT p.document::text FROM persons p WHERE p.id = c.person_id) AS document, c.matched, \
            (SELECT d.document -> 'body' ->> 'nationalInsuranceNumber' FROM documents d \
              WHERE d.person_id = c.person_id AND d.kind = 'equality') AS nino \
         FROM (SELECT k.person_id AS person_id, count(DISTINCT k.key) AS matched \
                 FROM search_keys k \
                WHERE k.key = ANY($1) \
                  AND NOT EXISTS (SELECT 1 FROM persons q WHERE q.id = k.person_id AND q.processing_restricted) \
                GROUP BY k.person_id \
                ORDER BY matched DESC, k.person_id \
                LIMIT $2) c \
         ORDER BY c.matched DESC, c.person_id";

    /// Which of the given persons are restricted, in one statement whatever the number of ids. Binds: an array of ids.
    RESTRICTED_AMONG = "person.restricted_among" =>
        "SELECT id FROM persons WHERE processing_restricted AND id = ANY($1)";

    /// The stored version of a person, to explain why an update matched no row. Binds: id.
    PERSON_VERSION = "person.version" => "SELECT version_number FROM persons WHERE id = $1";

    /// Reads one person. Binds: id.
    GET_PERSON = "person.get" => "SELECT document::text AS document FROM persons WHERE id = $1";

    /// Appends an event to the feed at the next position. The counter row's lock is held until COMMIT, so event-writing
    /// transactions allocate positions one at a time and commit in position order: a reader can never see a position
    /// appear below one it has already read. It is the last statement of every event-writing transaction, to hold that
    /// lock for as short a time as possible. Binds: id, person_id, event_type, document (JSON text).
    INSERT_EVENT = "event.insert" =>
        "WITH next AS ( \
             UPDATE counters SET value = value + 1 WHERE name = 'event_position' RETURNING value) \
         INSERT INTO events (position, id, person_id, event_type, document) \
         SELECT next.value, $1, $2, $3, $4::jsonb FROM next";

    /// A page of the feed, in commit order. Binds: after (exclusive), limit.
    EVENTS_AFTER = "events.after" =>
        "SELECT position, document::text AS document FROM events WHERE position > $1 ORDER BY position LIMIT $2";

    /// Appends a history entry. Binds: person_id, version_number, event_id, document (JSON text).
    INSERT_HISTORY = "history.insert" =>
        "INSERT INTO person_history (person_id, version_number, event_id, document) VALUES ($1, $2, $3, $4::jsonb)";

    /// Every history entry of a person, oldest first. Binds: person_id.
    LIST_HISTORY = "history.list" =>
        "SELECT document::text AS document FROM person_history WHERE person_id = $1 ORDER BY version_number";

    /// Stores an idempotency record. Binds: key, fingerprint, person_id, document (JSON text), created_at.
    INSERT_IDEMPOTENCY = "idempotency.insert" =>
        "INSERT INTO idempotency (key, fingerprint, person_id, document, created_at) \
         VALUES ($1, $2, $3, $4::jsonb, $5)";

    /// Reads an idempotency record. Binds: key.
    GET_IDEMPOTENCY = "idempotency.get" =>
        "SELECT key, fingerprint, document::text AS document, created_at FROM idempotency WHERE key = $1";

    /// Reads one document of a person. Binds: person_id, kind.
    GET_DOCUMENT = "document.get" =>
        "SELECT person_id, kind, version, document::text AS document FROM documents \
         WHERE person_id = $1 AND kind = $2";

    /// Every document of a person, by kind. Binds: person_id.
    LIST_DOCUMENTS = "document.list" =>
        "SELECT person_id, kind, version, document::text AS document FROM documents \
         WHERE person_id = $1 ORDER BY kind";

    /// Stores the first version of a document if, and only if, none is stored (no row inserted means one exists; a
    /// concurrent first write waits for the other and then inserts nothing). Binds: person_id, kind, version, document
    /// (JSON text), updated_at.
    INSERT_DOCUMENT = "document.insert" =>
        "INSERT INTO documents (person_id, kind, version, document, updated_at) \
         VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT ON CONSTRAINT documents_pkey DO NOTHING";

    /// Replaces a document if, and only if, it still has the expected version. Binds: version, document (JSON text),
    /// updated_at, person_id, kind, expected version.
    REPLACE_DOCUMENT = "document.replace" =>
        "UPDATE documents SET version = $1, document = $2::jsonb, updated_at = $3 \
         WHERE person_id = $4 AND kind = $5 AND version = $6";

    /// Deletes a document if, and only if, it still has the expected version. Binds: person_id, kind, expected version.
    DELETE_DOCUMENT = "document.delete" => "DELETE FROM documents WHERE person_id = $1 AND kind = $2 AND version = $3";

    /// The stored version of a document, to explain why a document write matched no row. Binds: person_id, kind.
    DOCUMENT_VERSION = "document.version" => "SELECT version FROM documents WHERE person_id = $1 AND kind = $2";

    /// Appends an audit entry and files it under each person it names (once each), in one statement. Binds: id, at,
    /// action, document (JSON text), an array of person ids.
    INSERT_AUDIT = "audit.insert" =>
        "WITH entry AS ( \
             INSERT INTO audit_log (id, at, action, document) VALUES ($1, $2, $3, $4::jsonb) RETURNING position) \
         INSERT INTO audit_persons (position, person_id) \
         SELECT DISTINCT entry.position, p FROM entry, unnest($5::uuid[]) AS p";

    /// A page of the audit entries naming a person, in append order: an index range read on `audit_persons`. Binds:
    /// person_id, after (exclusive), limit.
    AUDIT_FOR_PERSON = "audit.for_person" =>
        "SELECT l.position, l.document::text AS document \
         FROM audit_persons p JOIN audit_log l ON l.position = p.position \
         WHERE p.person_id = $1 AND p.position > $2 ORDER BY p.position LIMIT $3";

    /// A page of persons for reporting, in any state, in id order (UUID order is byte order, the order of the
    /// hyphenated lower-case text): those modified at or after `modified_since` (none given: `-infinity`) with an
    /// id above `after` (none given: the nil UUID, which no person has), skipping `offset` of them. Both
    /// conditions stay index ranges whatever is bound: a full load reads `persons_pkey` from `after` (no sort),
    /// an incremental load of few recent changes reads `persons_report_idx` from `modified_since` and sorts only
    /// those. The store runs it unprepared, so each page is planned with its own values. Binds: modified_since,
    /// after, offset, limit.
    REPORT_PERSONS = "person.report_page" =>
        "SELECT document::text AS document FROM persons \
         WHERE last_modified >= COALESCE($1::timestamptz, '-infinity'::timestamptz) \
           AND id > COALESCE($2::uuid, '00000000-0000-0000-0000-000000000000'::uuid) \
         ORDER BY id OFFSET $3 LIMIT $4";

    /// Reporting counts over the persons modified at or after `modified_since` (none given: all), from the
    /// columns every person write keeps beside the document (`state`, `processing_restricted`, `tenure_count`,
    /// `reference_count`), never a parse of a document: a range of the covering `persons_report_idx` (index-only)
    /// for a recent `modified_since`; over most of the table the planner may read the table instead. Reportable
    /// persons are live and unrestricted; the others are withheld. Binds: modified_since.
    REPORT_COUNTS = "person.report_counts" =>
        "SELECT count(*) AS persons, \
                count(*) FILTER (WHERE state <> 'active' OR processing_restricted) AS withheld, \
                COALESCE(sum(tenure_count) FILTER (WHERE state = 'active' AND NOT processing_restricted), 0) \
                  AS tenures, \
                COALESCE(sum(reference_count) FILTER (WHERE state = 'active' AND NOT processing_restricted), 0) \
                  AS \"references\" \
         FROM persons WHERE last_modified >= COALESCE($1::timestamptz, '-infinity'::timestamptz)";

    /// Takes a relay's lease in one statement: inserts the relay's row (position 0) when it has none, else takes
    /// it over only when it is free (released), expired at `now`, or already `holder`'s (a renewal). Concurrent
    /// acquisitions of one relay queue on its primary key and each re-checks the condition on the row the one
    /// before it committed, so of acquisitions of a free lease exactly one returns a row; no row means another
    /// holder's lease is unexpired. Binds: relay, holder, now, expires_at (now + ttl).
    RELAY_ACQUIRE = "relay.acquire" =>
        "INSERT INTO relays AS r (relay, holder, position, expires_at) VALUES ($1, $2, 0, $4) \
         ON CONFLICT ON CONSTRAINT relays_pkey \
         DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at \
         WHERE r.holder = '' OR r.holder = EXCLUDED.holder OR r.expires_at <= $3 \
         RETURNING r.holder, r.position, r.expires_at";

    /// Stores a relay's position (never lowering it) and renews its lease, only while `holder` holds it unexpired
    /// at `now`: no row affected means the lease was lost. Binds: relay, holder, position, now, expires_at
    /// (now + ttl).
    RELAY_ADVANCE = "relay.advance" =>
        "UPDATE relays SET position = GREATEST(position, $3), expires_at = $5 \
         WHERE relay = $1 AND holder = $2 AND expires_at > $4";

    /// Gives up a relay's lease when `holder` holds it, keeping the position: the holder becomes empty and the
    /// expiry the epoch (long past on any caller's clock), so the next acquisition takes it at once. Binds: relay,
    /// holder.
    RELAY_RELEASE = "relay.release" =>
        "UPDATE relays SET holder = '', expires_at = 'epoch'::timestamptz WHERE relay = $1 AND holder = $2";

    /// A relay's lease and position. Binds: relay.
    RELAY_STATE = "relay.state" => "SELECT holder, position, expires_at FROM relays WHERE relay = $1";

    /// Takes the import lock exclusively until the transaction ends. Creates (from allocating their `personRef`) and
    /// every write that sets a dedup key (from `person.lock_dedup_key`) hold it shared until they end, always as
    /// their first lock: the batch waits for those in progress, and those that start later wait for the batch to
    /// commit. So no create is handed a `personRef` the batch keeps, no writer sets a dedup key the batch checked as
    /// free, the batch's checks of ids and `personRef`s are exact, and imports run one at a time. It is the only lock
    /// an import waits for, so it cannot deadlock with them.
    IMPORT_LOCK = "import.lock" =>
        "SELECT pg_advisory_xact_lock(hashtext(current_schema()), hashtext('import'))";

    /// Which of the batch's ids a person (in any state) has: one `persons_pkey` probe per id. Binds: an array of ids.
    IMPORT_IDS_PRESENT = "import.ids_present" => "SELECT id FROM persons WHERE id = ANY($1)";

    /// The persons (in any state) holding any of the batch's kept `personRef`s: one `persons_person_ref_key` probe per
    /// number. Binds: an array of `personRef`s.
    IMPORT_PERSON_REFS_TAKEN = "import.person_refs_taken" =>
        "SELECT person_ref, id FROM persons WHERE person_ref = ANY($1)";

    /// The live persons holding any of the batch's dedup keys: one probe of the partial unique index
    /// `persons_dedup_key_key` per key. Binds: an array of dedup keys.
    IMPORT_DEDUP_HOLDERS = "import.dedup_holders" =>
        "SELECT dedup_key, id FROM persons WHERE dedup_key = ANY($1) AND state = 'active'";

    /// The live persons holding any of the batch's cross-references, each with the position (from 1) of the
    /// reference in the arrays: one `person_references_pkey` probe per reference. Binds: an array of systems, an
    /// array of ids (pairwise).
    IMPORT_REFERENCE_HOLDERS = "import.reference_holders" =>
        "SELECT w.position, r.person_id \
         FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS w(system, reference_id, position) \
         JOIN person_references r ON r.system = w.system AND r.reference_id = w.reference_id";

    /// Raises the `personRef` sequence to at least the largest kept `personRef` of an import batch and reserves the
    /// numbers it assigns, in one step: the sequence's last number becomes GREATEST(last handed out, largest kept)
    /// + count, and the batch assigns the `count` numbers up to it. Run under `IMPORT_LOCK`, so no create allocates
    /// in between. Like `nextval`, it is not undone by a rollback (a gap, never a reuse). Binds: largest kept
    /// `personRef` (0: none), count of numbers to assign.
    IMPORT_RESERVE_PERSON_REFS = "import.reserve_person_refs" =>
        "SELECT setval('persons_person_ref_seq', \
             GREATEST(CASE WHEN is_called THEN last_value ELSE last_value - 1 END, $1::bigint) + $2::bigint) \
         FROM persons_person_ref_seq";

    /// Stores an import batch's persons, in one statement whatever their number. Binds, one array each (pairwise):
    /// id, person_ref, version_number, state, merged_into, document (JSON text), created_at, last_modified,
    /// processing_restricted, dedup_key, tenure_count, reference_count (as `person.insert`).
    IMPORT_INSERT_PERSONS = "import.insert_persons" =>
        "INSERT INTO persons \
         (id, person_ref, version_number, state, merged_into, document, created_at, last_modified, \
          processing_restricted, dedup_key, tenure_count, reference_count) \
         SELECT p.id, p.person_ref, p.version_number, p.state, p.merged_into, p.document::jsonb, p.created_at, \
                p.last_modified, p.processing_restricted, p.dedup_key, p.tenure_count, p.reference_count \
         FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::text[], $5::uuid[], $6::text[], \
                     $7::timestamptz[], $8::timestamptz[], $9::boolean[], $10::text[], $11::integer[], $12::integer[]) \
              AS p(id, person_ref, version_number, state, merged_into, document, created_at, last_modified, \
                   processing_restricted, dedup_key, tenure_count, reference_count)";

    /// Sets aside the `person` search keys of an import batch's live persons (appended to `import_pending_keys`, one
    /// row per person since migration 0005, indexed by `import.finish_keys`), in one statement whatever their number.
    /// Binds: an array of person ids, an array of their version numbers and an array of keys (pairwise, a person's
    /// keys consecutive and each once).
    IMPORT_INSERT_PENDING_KEYS = "import.insert_pending_keys" =>
        "INSERT INTO import_pending_keys (person_id, version_number, keys) \
         SELECT person_id, version_number, array_agg(key ORDER BY position) \
         FROM unnest($1::uuid[], $2::bigint[], $3::text[]) WITH ORDINALITY AS k(person_id, version_number, key, position) \
         GROUP BY person_id, version_number";

    /// For the transaction finishing an import only: lets `import.finish_keys` sort the pending keys in memory
    /// (`work_mem` 1 GB) and run past the store's statement timeout (it takes minutes for a million persons).
    IMPORT_SORT_MEMORY = "import.sort_memory" =>
        "SELECT set_config('work_mem', '1GB', true), set_config('maintenance_work_mem', '1GB', true), \
                set_config('statement_timeout', '0', true)";

    /// How many keys wait in `import_pending_keys` (the finish decides from it whether to rebuild).
    IMPORT_PENDING_COUNT = "import.pending_count" =>
        "SELECT coalesce(sum(cardinality(keys)), 0)::bigint FROM import_pending_keys";

    /// How many keys `search_keys` holds, counted up to a limit: whether its person index and foreign key are
    /// cheaper rebuilt than maintained row by row (fewer keys are stored than wait). Binds: the limit (the number
    /// of keys waiting).
    IMPORT_STORED_KEYS_UP_TO = "import.stored_keys_up_to" =>
        "SELECT count(*) FROM (SELECT 1 FROM search_keys LIMIT $1) AS stored";

    /// Drops the foreign key, the person index and the primary key of `search_keys` inside the finishing
    /// transaction (all rebuilt by `import.rebuild_person_index` before the commit; a rollback restores them). Takes
    /// `search_keys` exclusively until the commit: searches wait meanwhile.
    IMPORT_DROP_PERSON_INDEX = "import.drop_person_index" =>
        "ALTER TABLE search_keys DROP CONSTRAINT search_keys_person_fkey; DROP INDEX search_keys_person_id_idx; \
         ALTER TABLE search_keys DROP CONSTRAINT search_keys_pkey";

    /// Rebuilds the primary key, the person index and the foreign key of `search_keys` with the definitions of
    /// migration 0001 (`tests/import.rs` compares them): a sort per index and one join checking every row's person
    /// for the key, instead of two index inserts and a probe of `persons_pkey` per row (measured at a million
    /// persons: 68 s to insert the keys with the primary key in place).
    IMPORT_REBUILD_PERSON_INDEX = "import.rebuild_person_index" =>
        "ALTER TABLE search_keys ADD CONSTRAINT search_keys_pkey PRIMARY KEY (key, person_id, source); \
         CREATE INDEX search_keys_person_id_idx ON search_keys (person_id, source); \
         ALTER TABLE search_keys ADD CONSTRAINT search_keys_person_fkey FOREIGN KEY (person_id) REFERENCES persons (id)";

    /// Indexes every pending key of imported persons still live and at the version imported, in key order (the
    /// heap then holds a key's persons together; with the primary key in place, consecutive rows land on the same
    /// index pages). The order is the bytes' (`COLLATE "C"`): the sort then compares bytes instead of calling the
    /// C library's collation per comparison, equal keys are still together, and under a `C.UTF-8` database it is
    /// the index's own order. Keys the person already has are skipped (an anti-join: by the primary key when it is in place,
    /// by hashing the stored keys when it was dropped). Runs under the import lock, taken exclusively: no batch adds
    /// pending keys meanwhile. Each person has one pending row and its keys are distinct (`import.insert_pending_keys`).
    IMPORT_FINISH_KEYS = "import.finish_keys" =>
        "INSERT INTO search_keys (key, person_id, source) \
         SELECT j.key, k.person_id, 'person' FROM import_pending_keys k \
         JOIN persons p ON p.id = k.person_id AND p.version_number = k.version_number AND p.state = 'active' \
         CROSS JOIN LATERAL unnest(k.keys) AS j(key) \
         WHERE NOT EXISTS (SELECT 1 FROM search_keys s \
                           WHERE s.key = j.key AND s.person_id = k.person_id AND s.source = 'person') \
         ORDER BY j.key COLLATE \"C\", k.person_id";

    /// Forgets the pending keys once indexed (same transaction as `import.finish_keys`; `TRUNCATE` frees the pages
    /// at once, where a `DELETE` would leave millions of dead rows to vacuum).
    IMPORT_CLEAR_PENDING_KEYS = "import.clear_pending_keys" => "TRUNCATE import_pending_keys";

    /// Refreshes the planner's statistics of the tables an import filled (same transaction, after the keys are
    /// indexed; it samples, so it takes about a second at a million persons). Without it the candidate query is
    /// planned for the near-empty tables autovacuum last saw, until autovacuum analyses them: measured at 1,000,000
    /// persons just after an import, search p50 2.1 s before and milliseconds after.
    IMPORT_ANALYZE = "import.analyze" => "ANALYZE persons, search_keys";

    /// Claims the cross-references of an import batch's live persons, in one statement whatever their number, in
    /// (system, id) order as every claim is made. A reference a concurrent write claimed since the batch's look-up
    /// is skipped (`DO NOTHING`): fewer rows than references tells the store to fail the batch as unavailable (a
    /// retry reports the holder). Binds: an array of systems, an array of ids, an array of person ids (pairwise).
    IMPORT_INSERT_REFERENCES = "import.insert_references" =>
        "INSERT INTO person_references (system, reference_id, person_id) \
         SELECT r.system, r.reference_id, r.person_id \
         FROM unnest($1::text[], $2::text[], $3::uuid[]) AS r(system, reference_id, person_id) \
         ORDER BY 1, 2 \
         ON CONFLICT ON CONSTRAINT person_references_pkey DO NOTHING";

    /// Creates the schema named by the storage URL when it is missing (the name is validated, then appended).
    CREATE_SCHEMA = "schema.create" => "CREATE SCHEMA IF NOT EXISTS";

    /// Applies the embedded migrations not yet applied (sqlx's migrator: each file of `migrations/` missing from
    /// `_sqlx_migrations`, in its own transaction, under an advisory lock so concurrent migrators queue); reported
    /// as one execution.
    MIGRATE = "schema.migrate" => "sqlx migrate run: migrations/*.sql not yet recorded in _sqlx_migrations";

    /// Checks that a connection answers.
    PING = "store.ping" => "SELECT 1";
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

    #[test]
    fn statements_bind_values_and_never_name_a_schema() {
        for query in CATALOGUE {
            assert!(!query.sql.contains('?'), "{} uses SQLite placeholders", query.name);
            assert!(!query.sql.contains("public."), "{} names a schema", query.name);
        }
    }
}

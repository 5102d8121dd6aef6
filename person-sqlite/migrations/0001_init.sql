-- Person API, embedded SQLite store: the initial schema.
--
-- Names of tables, constraints and indexes are stable: code, docs/storage.md and operators refer to them.
-- Never edit a migration once released (sqlx refuses a changed checksum): add a new numbered file instead.
-- Later migrations add search-key, reference and audit tables; they join the same write transactions.
--
-- Every table is STRICT, so a value of the wrong type is refused instead of silently stored. Identifiers are
-- hyphenated lower-case UUID text; timestamps are RFC 3339 UTC text with nine fraction digits, so that text
-- order is time order.

-- One row per person ever created, in any state. `document` is the whole person (serde_json of
-- person_core::Person) and is what reads return; the other columns are copies of its fields for constraints,
-- lookups and (later) reporting.
CREATE TABLE persons (
    id             TEXT    NOT NULL,
    person_ref     INTEGER NOT NULL,
    version_number INTEGER NOT NULL,
    state          TEXT    NOT NULL,
    merged_into    TEXT,
    document       TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,
    last_modified  TEXT    NOT NULL,
    CONSTRAINT persons_pkey PRIMARY KEY (id),
    CONSTRAINT persons_person_ref_check CHECK (person_ref > 0),
    CONSTRAINT persons_version_number_check CHECK (version_number >= 0),
    CONSTRAINT persons_state_check CHECK (state IN ('active', 'deleted', 'merged')),
    CONSTRAINT persons_merged_into_check CHECK ((state = 'merged') = (merged_into IS NOT NULL)),
    CONSTRAINT persons_merged_into_fkey FOREIGN KEY (merged_into) REFERENCES persons (id)
) STRICT;

CREATE UNIQUE INDEX persons_person_ref_key ON persons (person_ref);
-- Incremental reporting loads (`modifiedSince`, SPEC §10).
CREATE INDEX persons_last_modified_idx ON persons (last_modified);

-- The outbox and change feed: one row per event, written in the same transaction as the change it describes.
-- AUTOINCREMENT guarantees a position is never reused, even after the newest rows were deleted.
CREATE TABLE events (
    position   INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL,
    person_id  TEXT NOT NULL,
    event_type TEXT NOT NULL,
    document   TEXT NOT NULL,
    CONSTRAINT events_person_fkey FOREIGN KEY (person_id) REFERENCES persons (id)
) STRICT;

CREATE UNIQUE INDEX events_id_key ON events (id);
CREATE INDEX events_person_id_idx ON events (person_id, position);

-- Every version of every person: who changed what, when and why (serde_json of person_core::HistoryEntry).
CREATE TABLE person_history (
    person_id      TEXT    NOT NULL,
    version_number INTEGER NOT NULL,
    event_id       TEXT    NOT NULL,
    document       TEXT    NOT NULL,
    CONSTRAINT person_history_pkey PRIMARY KEY (person_id, version_number),
    CONSTRAINT person_history_person_fkey FOREIGN KEY (person_id) REFERENCES persons (id)
) STRICT;

-- Idempotent creates: the caller-scoped key, the request fingerprint and the person as the create answered it.
CREATE TABLE idempotency (
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    person_id   TEXT NOT NULL,
    document    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    CONSTRAINT idempotency_pkey PRIMARY KEY (key),
    CONSTRAINT idempotency_person_fkey FOREIGN KEY (person_id) REFERENCES persons (id)
) STRICT;

-- Named sequences the store allocates inside write transactions (a failed write rolls its increment back).
CREATE TABLE counters (
    name  TEXT    NOT NULL,
    value INTEGER NOT NULL,
    CONSTRAINT counters_pkey PRIMARY KEY (name)
) STRICT;

INSERT INTO counters (name, value) VALUES ('person_ref', 0);

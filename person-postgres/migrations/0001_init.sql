-- Person API, PostgreSQL store: the whole schema of the first release (persons, the event feed, history,
-- idempotency, documents, the audit trail, search keys and duplicate prevention).
--
-- Names of tables, constraints and indexes are stable: the adapter maps errors by constraint name, and
-- docs/storage.md and operators refer to them. Never edit a migration once released (sqlx refuses a changed
-- checksum): add a new numbered file instead.
--
-- Tables are created unqualified, in the first schema of the connection's search_path: `public` by default, or
-- the schema named by the storage URL's `schema` parameter (which the store creates and puts on the path).
--
-- Documents are jsonb of the person-core domain types and are what reads return; the other columns are copies
-- of their fields for constraints, look-ups and reporting.

-- One row per person ever created, in any state.
CREATE TABLE persons (
    id                    uuid        NOT NULL,
    person_ref            bigint      NOT NULL,
    version_number        bigint      NOT NULL,
    state                 text        NOT NULL,
    merged_into           uuid,
    document              jsonb       NOT NULL,
    created_at            timestamptz NOT NULL,
    last_modified         timestamptz NOT NULL,
    -- Restriction of processing (GDPR art. 18), copied from `processingRestricted`.
    processing_restricted boolean     NOT NULL DEFAULT false,
    -- The duplicate-prevention key (same canonical forename, surname and date of birth): NULL for persons that
    -- are not live, for allowed duplicates and for persons lacking one of its parts.
    dedup_key             text,
    CONSTRAINT persons_pkey PRIMARY KEY (id),
    CONSTRAINT persons_person_ref_key UNIQUE (person_ref),
    CONSTRAINT persons_person_ref_check CHECK (person_ref > 0),
    CONSTRAINT persons_version_number_check CHECK (version_number >= 0),
    CONSTRAINT persons_state_check CHECK (state IN ('active', 'deleted', 'merged')),
    CONSTRAINT persons_merged_into_check CHECK ((state = 'merged') = (merged_into IS NOT NULL)),
    CONSTRAINT persons_merged_into_fkey FOREIGN KEY (merged_into) REFERENCES persons (id)
);

-- personRef: allocated by nextval inside the create's transaction. A sequence never hands a number out twice,
-- whatever the number of API processes; a create that fails after allocating leaves a gap (numbers are unique
-- and increasing, not dense).
CREATE SEQUENCE persons_person_ref_seq AS bigint MINVALUE 1 OWNED BY persons.person_ref;

-- At most one live person per dedup key: what makes "ten concurrent creates of the same person → one succeeds"
-- hold in the database itself, across processes. Deleted and merged persons are outside the index.
CREATE UNIQUE INDEX persons_dedup_key_key ON persons (dedup_key) WHERE state = 'active' AND dedup_key IS NOT NULL;

-- Incremental reporting loads (`modifiedSince`, SPEC §10).
CREATE INDEX persons_last_modified_idx ON persons (last_modified);

-- Only restricted persons are indexed (they are few): `restricted_among` reads this small index.
CREATE INDEX persons_processing_restricted_idx ON persons (id) WHERE processing_restricted;

-- Named counters the store allocates inside write transactions. `event_position` numbers the feed: every
-- event-writing transaction increments it as its last statement before COMMIT, and the row lock it takes is
-- held until the commit, so positions are allocated and committed in the same order (see docs/storage.md,
-- "The event feed").
CREATE TABLE counters (
    name  text   NOT NULL,
    value bigint NOT NULL,
    CONSTRAINT counters_pkey PRIMARY KEY (name)
);

INSERT INTO counters (name, value) VALUES ('event_position', 0);

-- The outbox and change feed: one row per event, written in the same transaction as the change it describes.
CREATE TABLE events (
    position   bigint      NOT NULL,
    id         uuid        NOT NULL,
    person_id  uuid        NOT NULL,
    event_type text        NOT NULL,
    document   jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_pkey PRIMARY KEY (position),
    CONSTRAINT events_id_key UNIQUE (id),
    CONSTRAINT events_position_check CHECK (position > 0),
    CONSTRAINT events_person_fkey FOREIGN KEY (person_id) REFERENCES persons (id)
);

CREATE INDEX events_person_id_idx ON events (person_id, position);

-- Every version of every person: who changed what, when and why.
CREATE TABLE person_history (
    person_id      uuid   NOT NULL,
    version_number bigint NOT NULL,
    event_id       uuid   NOT NULL,
    document       jsonb  NOT NULL,
    CONSTRAINT person_history_pkey PRIMARY KEY (person_id, version_number),
    CONSTRAINT person_history_person_fkey FOREIGN KEY (person_id) REFERENCES persons (id)
);

-- Idempotent creates: the caller-scoped key, the request fingerprint and the person as the create answered it.
CREATE TABLE idempotency (
    key         text        NOT NULL,
    fingerprint text        NOT NULL,
    person_id   uuid        NOT NULL,
    document    jsonb       NOT NULL,
    created_at  timestamptz NOT NULL,
    CONSTRAINT idempotency_pkey PRIMARY KEY (key),
    CONSTRAINT idempotency_person_fkey FOREIGN KEY (person_id) REFERENCES persons (id)
);

-- The versioned documents of a person: `kind` is `equality` or `extended:<area>`; `version` is the
-- compare-and-set column. A delete removes the row.
CREATE TABLE documents (
    person_id  uuid        NOT NULL,
    kind       text        NOT NULL,
    version    bigint      NOT NULL,
    document   jsonb       NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT documents_pkey PRIMARY KEY (person_id, kind),
    CONSTRAINT documents_kind_check CHECK (kind = 'equality' OR kind LIKE 'extended:_%'),
    CONSTRAINT documents_version_check CHECK (version >= 0),
    CONSTRAINT documents_person_fkey FOREIGN KEY (person_id) REFERENCES persons (id)
);

-- The audit trail: one row per entry, positions from an identity column. Entries hold identifiers, never
-- personal data values.
CREATE TABLE audit_log (
    position bigint      GENERATED ALWAYS AS IDENTITY,
    id       uuid        NOT NULL,
    at       timestamptz NOT NULL,
    action   text        NOT NULL,
    document jsonb       NOT NULL,
    CONSTRAINT audit_log_pkey PRIMARY KEY (position),
    CONSTRAINT audit_log_id_key UNIQUE (id)
);

-- Which persons each entry names: the primary key (person_id, position) makes a person's access log one index
-- range read, in append order. No foreign key to persons: reads of unknown ids are audited too.
CREATE TABLE audit_persons (
    position  bigint NOT NULL,
    person_id uuid   NOT NULL,
    CONSTRAINT audit_persons_pkey PRIMARY KEY (person_id, position),
    CONSTRAINT audit_persons_position_fkey FOREIGN KEY (position) REFERENCES audit_log (position)
);

-- Append-only, enforced by the database and not only by the code: changing, deleting or truncating audit rows
-- aborts the statement whoever issues it. (A superuser can still drop the triggers; they guard against mistakes,
-- not against the database's administrator — privileges and backups do that.)
CREATE FUNCTION audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_is_append_only();
CREATE TRIGGER audit_persons_append_only BEFORE UPDATE OR DELETE ON audit_persons
    FOR EACH ROW EXECUTE FUNCTION audit_is_append_only();
CREATE TRIGGER audit_persons_no_truncate BEFORE TRUNCATE ON audit_persons
    FOR EACH STATEMENT EXECUTE FUNCTION audit_is_append_only();

-- Blocking keys: one row per key, person and source (`person`: names, date of birth, postcodes; `equality`: the
-- NI number). The primary key (key, person_id, source) makes candidate retrieval an index range read per key;
-- `search_keys_person_id_idx` serves replacing a person's keys. A person that is deleted or merged has no rows.
CREATE TABLE search_keys (
    key       text NOT NULL,
    person_id uuid NOT NULL,
    source    text NOT NULL,
    CONSTRAINT search_keys_pkey PRIMARY KEY (key, person_id, source),
    CONSTRAINT search_keys_source_check CHECK (source IN ('person', 'equality')),
    CONSTRAINT search_keys_person_fkey FOREIGN KEY (person_id) REFERENCES persons (id)
);

CREATE INDEX search_keys_person_id_idx ON search_keys (person_id, source);

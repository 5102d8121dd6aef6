-- Person API, embedded SQLite store: search keys and duplicate prevention (SPEC §6, issue 4).
--
-- Adds the blocking keys persons are found by (`search_keys`), the duplicate-prevention key of each live person
-- (`persons.dedup_key`, unique among live persons) and a marker of which persons have had their keys computed
-- (`persons.keys_indexed`). Keys are computed by person-core's matching code, which SQL cannot run: rows stored
-- before this migration start with `keys_indexed = 0` and no keys, and the store computes their keys in Rust
-- right after migrating (on open and in `migrate`), in batches, before it serves (see docs/storage.md).
-- Never edit this file once released: add a new numbered migration instead.

-- The dedup key (same canonical forename, surname and date of birth): NULL for persons that are not live, for
-- allowed duplicates and for persons lacking one of its parts.
ALTER TABLE persons ADD COLUMN dedup_key TEXT;

-- 1 once the person's search keys and dedup key are stored (every insert and update writes 1); 0 for rows from
-- before this migration, until the backfill has computed them.
ALTER TABLE persons ADD COLUMN keys_indexed INTEGER NOT NULL DEFAULT 0
    CONSTRAINT persons_keys_indexed_check CHECK (keys_indexed IN (0, 1));

-- At most one live person per dedup key: what makes "ten concurrent creates of the same person → one succeeds"
-- hold in the database itself. Deleted and merged persons are outside the index, so they never block a create.
CREATE UNIQUE INDEX persons_dedup_key_key ON persons (dedup_key) WHERE state = 'active' AND dedup_key IS NOT NULL;

-- The rows the backfill still has to visit (few, and none once it has run).
CREATE INDEX persons_keys_unindexed_idx ON persons (id) WHERE keys_indexed = 0;

-- Blocking keys: one row per key, person and source (`person`: names, date of birth, postcodes, written with the
-- person; `equality`: the NI number, written with the equality data). The primary key (key, person_id, source)
-- makes candidate retrieval an index range read per key; `search_keys_person_id_idx` serves replacing a person's
-- keys. A person that is deleted or merged has no rows.
CREATE TABLE search_keys (
    key       TEXT NOT NULL,
    person_id TEXT NOT NULL,
    source    TEXT NOT NULL,
    CONSTRAINT search_keys_pkey PRIMARY KEY (key, person_id, source),
    CONSTRAINT search_keys_source_check CHECK (source IN ('person', 'equality')),
    CONSTRAINT search_keys_person_fkey FOREIGN KEY (person_id) REFERENCES persons (id)
) STRICT, WITHOUT ROWID;

CREATE INDEX search_keys_person_id_idx ON search_keys (person_id, source);

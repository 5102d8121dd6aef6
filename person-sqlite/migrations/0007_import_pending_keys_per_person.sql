-- Person API, embedded SQLite store: the search keys an import sets aside, one row per person (issue 10).
--
-- Migration 0006 kept one row per key: 14 rows per person, each repeating the person's id, so the set-aside keys
-- took more pages than the persons themselves (774 MiB of 1.8 GiB written by the batches of a million-person import)
-- and the finish joined `persons` once per key. A row now holds a person's keys as one JSON array of strings:
-- `import.finish_keys` expands it with `json_each` after joining the person once.
-- Rows pending when this migration runs (an import not yet finished) are carried over, grouped per person.
-- Never edit this file once released: add a new numbered migration instead.

-- No primary key, index or foreign key: rows are only appended, then read and deleted all at once.
CREATE TABLE import_pending_person_keys (
    person_id      TEXT    NOT NULL,
    version_number INTEGER NOT NULL,
    keys           TEXT    NOT NULL,
    CONSTRAINT import_pending_keys_keys_check CHECK (json_type(keys) = 'array')
) STRICT;

INSERT INTO import_pending_person_keys (person_id, version_number, keys)
SELECT person_id, version_number, json_group_array(key)
  FROM import_pending_keys
 GROUP BY person_id, version_number
 ORDER BY min(rowid);

DROP TABLE import_pending_keys;

ALTER TABLE import_pending_person_keys RENAME TO import_pending_keys;

-- Person API, PostgreSQL store: the search keys an import sets aside, one row per person (issue 10).
--
-- Migration 0004 kept one row per key: 14 rows per person, each repeating the person's id and version, so the
-- batches wrote more heap and WAL for the set-aside keys than for the persons. A row now holds a person's keys as
-- one array; `import.finish_keys` expands it with `unnest` after joining the person once.
-- Rows pending when this migration runs (an import not yet finished) are carried over, grouped per person.
-- Never edit this file once released: add a new numbered migration instead.

-- No primary key, index or foreign key: rows are only appended, then read and truncated all at once.
CREATE TABLE import_pending_person_keys (
    person_id      uuid   NOT NULL,
    version_number bigint NOT NULL,
    keys           text[] NOT NULL
);

INSERT INTO import_pending_person_keys (person_id, version_number, keys)
SELECT person_id, version_number, array_agg(DISTINCT key ORDER BY key)
  FROM import_pending_keys
 GROUP BY person_id, version_number;

DROP TABLE import_pending_keys;

ALTER TABLE import_pending_person_keys RENAME TO import_pending_keys;

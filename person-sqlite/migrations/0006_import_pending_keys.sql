-- Person API, embedded SQLite store: search keys of imported persons, waiting to be indexed (issue 10).
--
-- `person-api import` stores each batch's persons with their search keys here instead of in `search_keys`: an
-- insert into `search_keys` lands on a random leaf of a 15-million-row index (about one page rewritten per key,
-- 20,000 pages per 1,000 persons), while an append here writes a few pages per batch. Once the batches are in,
-- `import.finish_keys` moves every pending key into `search_keys` in one statement, in key order (each leaf
-- written once), skipping persons changed or no longer live since their import (the change indexed their keys).
-- Until then imported persons are read, updated and found by reference and dedup key, but not by search.
-- Never edit this file once released: add a new numbered migration instead.

-- No primary key, index or foreign key: rows are only appended, then read and deleted all at once.
CREATE TABLE import_pending_keys (
    person_id      TEXT    NOT NULL,
    version_number INTEGER NOT NULL,
    key            TEXT    NOT NULL
) STRICT;

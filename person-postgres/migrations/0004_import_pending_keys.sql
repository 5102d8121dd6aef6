-- Person API, PostgreSQL store: search keys of imported persons, waiting to be indexed (issue 10).
--
-- `person-api import` stores each batch's persons with their search keys here instead of in `search_keys`: an
-- insert into `search_keys` lands on random pages of two large indexes and checks `search_keys_person_fkey` per
-- row, while an append here writes a few heap pages per batch. Once the batches are in, `import.finish_keys` moves
-- every pending key into `search_keys` in one statement, in key order, skipping persons changed or no longer live
-- since their import (the change indexed their keys). Until then imported persons are read, updated and found by
-- reference and dedup key, but not by search. Never edit this file once released: add a new numbered migration.

-- No primary key, index or foreign key: rows are only appended, then read and truncated all at once.
CREATE TABLE import_pending_keys (
    person_id      uuid   NOT NULL,
    version_number bigint NOT NULL,
    key            text   NOT NULL
);

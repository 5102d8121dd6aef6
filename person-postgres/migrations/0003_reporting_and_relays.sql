-- Person API, PostgreSQL store: reporting counts and the event relay's lease (SPEC §9, §10).
--
-- Names are stable: the adapter takes leases with `ON CONFLICT ON CONSTRAINT relays_pkey`, the plan tests name
-- `persons_report_idx`, and docs/storage.md and operators refer to them. Never edit this file once released: add
-- a new numbered migration.

-- The numbers reporting counts need, copied out of the person document by every write of the person (in the
-- same statement as the document), so `report_counts` never parses a document. Whether a person is reportable
-- (live and unrestricted) is already in `state` and `processing_restricted`.
ALTER TABLE persons
    ADD COLUMN tenure_count    integer NOT NULL DEFAULT 0,
    ADD COLUMN reference_count integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT persons_tenure_count_check CHECK (tenure_count >= 0),
    ADD CONSTRAINT persons_reference_count_check CHECK (reference_count >= 0);

-- Upgraded databases: count what the stored documents already hold (`tenures` is always written; `references`
-- is left out when empty). Only rows with something to count are rewritten.
WITH counted AS (
    SELECT id,
           CASE WHEN jsonb_typeof(document -> 'tenures') = 'array'
                THEN jsonb_array_length(document -> 'tenures') ELSE 0 END AS tenures,
           CASE WHEN jsonb_typeof(document -> 'references') = 'array'
                THEN jsonb_array_length(document -> 'references') ELSE 0 END AS refs
      FROM persons)
UPDATE persons p
   SET tenure_count = c.tenures, reference_count = c.refs
  FROM counted c
 WHERE c.id = p.id
   AND (c.tenures > 0 OR c.refs > 0);

-- From now on every write states the counts: a writer that forgot them fails instead of storing zeros.
ALTER TABLE persons
    ALTER COLUMN tenure_count DROP DEFAULT,
    ALTER COLUMN reference_count DROP DEFAULT;

-- `modifiedSince` selections (report pages of recent changes, and counts): a range read on `last_modified`. It
-- covers every column `report_counts` reads, so counting is an index-only scan, never a read of the documents.
-- It replaces `persons_last_modified_idx`, whose key it starts with.
CREATE INDEX persons_report_idx ON persons (last_modified)
    INCLUDE (state, processing_restricted, tenure_count, reference_count);
DROP INDEX persons_last_modified_idx;

-- One row per event relay: who holds its lease until when, and the feed position (inclusive) it has published
-- up to. A released lease has an empty holder. Every change is one conditional statement on the primary key.
CREATE TABLE relays (
    relay      text        NOT NULL,
    holder     text        NOT NULL,
    position   bigint      NOT NULL,
    expires_at timestamptz NOT NULL,
    CONSTRAINT relays_pkey PRIMARY KEY (relay),
    CONSTRAINT relays_position_check CHECK (position >= 0)
);

-- Person API, embedded SQLite store: reporting reads and the event relay's lease (SPEC §9, §10).
--
-- Adds the two numbers reporting counts need and the documents hold (tenures and cross-references per person) as
-- columns every person write keeps in step with its document, the indexes that serve reporting pages (id order,
-- filtered by `last_modified`) and counts (an index-only read), and one row per event relay holding its lease and
-- its position in the feed. Whether a person is reported with its data (live and not restricted) is already in
-- `state` and `processing_restricted`. Existing databases upgrade in place: the counts are backfilled from the
-- documents below.
-- Never edit this file once released: add a new numbered migration instead.

-- `tenures.len()` and `references.len()` of the person document, written by every insert and update of a person in
-- the same statement as the document, so `report_counts` sums columns instead of parsing every document.
ALTER TABLE persons ADD COLUMN tenure_count INTEGER NOT NULL DEFAULT 0
    CONSTRAINT persons_tenure_count_check CHECK (tenure_count >= 0);

ALTER TABLE persons ADD COLUMN reference_count INTEGER NOT NULL DEFAULT 0
    CONSTRAINT persons_reference_count_check CHECK (reference_count >= 0);

-- Upgraded databases: count what the stored documents hold, whatever wrote them (a document without the array
-- counts 0).
UPDATE persons
   SET tenure_count = coalesce(json_array_length(document, '$.tenures'), 0),
       reference_count = coalesce(json_array_length(document, '$.references'), 0);

-- Reporting pages: ids in ascending order (BINARY collation over the canonical lower-case hyphenated text, which is
-- the UUIDs' byte order) from the keyset position, with `last_modified` in the index so a `modifiedSince` page
-- tests it without reading the (large) table row of a person it skips; only selected rows are read.
CREATE INDEX persons_report_idx ON persons (id, last_modified);

-- Reporting counts: every column `report_counts` reads, so counting is an index-only read (a range on
-- `last_modified` for `modifiedSince`, the whole index otherwise), never a read of the documents.
CREATE INDEX persons_report_counts_idx
    ON persons (last_modified, state, processing_restricted, tenure_count, reference_count);

-- One row per event relay (e.g. `sns`): which server instance holds its lease and until when, and the feed
-- position up to which (inclusive) it has published. Every change is one conditional statement (take the lease
-- when free, expired or already held; advance only while held unexpired; release only by the holder), so of
-- several instances exactly one relays at a time. `holder` is empty after a release; `expires_at` is RFC 3339 UTC
-- text with nine fraction digits like every timestamp of this schema, so text order is time order.
CREATE TABLE relay_leases (
    relay      TEXT    NOT NULL,
    holder     TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    expires_at TEXT    NOT NULL,
    CONSTRAINT relay_leases_pkey PRIMARY KEY (relay),
    CONSTRAINT relay_leases_position_check CHECK (position >= 0)
) STRICT, WITHOUT ROWID;

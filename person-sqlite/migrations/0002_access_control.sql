-- Person API, embedded SQLite store: access control and the audit trail (SPEC §7, issue 3).
--
-- Adds the restriction-of-processing column to persons, the versioned documents attached to a person (equality
-- data, extended data per service area) and the append-only audit log. Existing databases upgrade in place:
-- every person already stored is unrestricted, and there are no documents or audit entries yet.
-- Never edit this file once released: add a new numbered migration instead.

-- Restriction of processing (GDPR art. 18): a copy of `processingRestricted` from the person document, kept in
-- sync by every insert and update, so `restricted_among` need not parse documents.
ALTER TABLE persons ADD COLUMN processing_restricted INTEGER NOT NULL DEFAULT 0
    CONSTRAINT persons_processing_restricted_check CHECK (processing_restricted IN (0, 1));

-- Version 1 never wrote the flag; copy it from the document anyway, so the column matches the documents whatever
-- wrote them.
UPDATE persons SET processing_restricted = 1 WHERE json_extract(document, '$.processingRestricted') = 1;

-- Only restricted persons are indexed (they are few): `restricted_among` and any "who is restricted" question
-- read this small covering index instead of the table.
CREATE INDEX persons_processing_restricted_idx ON persons (id) WHERE processing_restricted = 1;

-- The versioned documents of a person: `kind` is `equality` or `extended:<area>` (DocumentKind::key()); `version`
-- is the compare-and-set column (0 after the first write, +1 per write); `document` is the whole stored document
-- (person id, kind, version, body, updated at, updated by) and is what reads return. A delete removes the row.
CREATE TABLE documents (
    person_id  TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    document   TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    CONSTRAINT documents_pkey PRIMARY KEY (person_id, kind),
    CONSTRAINT documents_kind_check CHECK (kind = 'equality' OR kind LIKE 'extended:_%'),
    CONSTRAINT documents_version_check CHECK (version >= 0),
    CONSTRAINT documents_person_fkey FOREIGN KEY (person_id) REFERENCES persons (id)
) STRICT;

-- The audit trail: one row per entry (serde_json of person_core::audit::AuditEntry), in append order.
-- AUTOINCREMENT: a position is never reused. Entries hold identifiers, never personal data values.
CREATE TABLE audit_log (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    id       TEXT NOT NULL,
    at       TEXT NOT NULL,
    action   TEXT NOT NULL,
    document TEXT NOT NULL
) STRICT;

CREATE UNIQUE INDEX audit_log_id_key ON audit_log (id);

-- Which persons each entry names (a search names many): the primary key (person_id, position) makes a person's
-- access log one index range read, in append order. No foreign key to persons: reads of unknown ids and searches
-- are audited too.
CREATE TABLE audit_persons (
    position  INTEGER NOT NULL,
    person_id TEXT    NOT NULL,
    CONSTRAINT audit_persons_pkey PRIMARY KEY (person_id, position),
    CONSTRAINT audit_persons_position_fkey FOREIGN KEY (position) REFERENCES audit_log (position)
) STRICT, WITHOUT ROWID;

-- Append-only, enforced by the database and not only by the code: changing or removing an audit row aborts the
-- statement (and with it the transaction) whoever issues it, the application, a script or the sqlite3 shell.
-- `INSERT OR REPLACE` over an existing row would delete it without firing a delete trigger (SQLite fires those
-- for REPLACE only with `recursive_triggers` on), so inserts that would collide are refused too.
-- Someone who can write the file can still drop the triggers; they guard against mistakes and casual edits, not
-- against an administrator of the host (file permissions and backups do that).
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log
WHEN EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id OR position = NEW.position)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_persons_no_update BEFORE UPDATE ON audit_persons
BEGIN
    SELECT RAISE(ABORT, 'audit_persons is append-only');
END;

CREATE TRIGGER audit_persons_no_delete BEFORE DELETE ON audit_persons
BEGIN
    SELECT RAISE(ABORT, 'audit_persons is append-only');
END;

CREATE TRIGGER audit_persons_no_replace BEFORE INSERT ON audit_persons
WHEN EXISTS (SELECT 1 FROM audit_persons WHERE person_id = NEW.person_id AND position = NEW.position)
BEGIN
    SELECT RAISE(ABORT, 'audit_persons is append-only');
END;

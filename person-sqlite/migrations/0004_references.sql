-- Person API, embedded SQLite store: cross-references (SPEC §8).
--
-- Adds the unique index of references to records in other systems: which live person holds each `(system, id)`.
-- The person document keeps the references (`$.references`, what reads return); this table is the copy that makes
-- them unique among live persons and finds their holder with one primary-key look-up. Every write of a person
-- replaces its rows in the same transaction; a person that is not live (deleted, merged) has none.
-- Never edit this file once released: add a new numbered migration instead.

-- One row per reference held by a live person. The primary key (system, reference_id) is the uniqueness rule
-- and the look-up of `find_by_reference`; `person_references_person_id_idx` serves replacing a person's rows.
-- Ids are compared exactly (BINARY collation): ids are case-sensitive in most systems.
CREATE TABLE person_references (
    system       TEXT NOT NULL,
    reference_id TEXT NOT NULL,
    person_id    TEXT NOT NULL,
    CONSTRAINT person_references_pkey PRIMARY KEY (system, reference_id),
    CONSTRAINT person_references_person_fkey FOREIGN KEY (person_id) REFERENCES persons (id)
) STRICT, WITHOUT ROWID;

CREATE INDEX person_references_person_id_idx ON person_references (person_id);

-- Upgraded databases: index the references the documents of live persons already hold, so the table matches the
-- documents whatever wrote them. Should two live persons name the same record, the first in id order keeps it
-- (the other's write of its references is then refused until staff resolve it); nothing fails the upgrade.
INSERT INTO person_references (system, reference_id, person_id)
SELECT json_extract(r.value, '$.system'), json_extract(r.value, '$.id'), p.id
  FROM persons p, json_each(p.document, '$.references') r
 WHERE p.state = 'active'
   AND json_type(r.value, '$.system') = 'text'
   AND json_type(r.value, '$.id') = 'text'
 ORDER BY p.id, r.key
    ON CONFLICT DO NOTHING;

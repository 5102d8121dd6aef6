-- Person API, PostgreSQL store: cross-references (SPEC §8).
--
-- Adds the unique index of references to records in other systems: which live person holds each `(system, id)`.
-- The person document keeps the references (`document -> 'references'`, what reads return); this table is the
-- copy that makes them unique among live persons, across processes, and finds their holder with one primary-key
-- look-up. Every write of a person replaces its rows in the same transaction; a person that is not live (deleted,
-- merged) has none.
--
-- Names are stable: the adapter claims references with `ON CONFLICT ON CONSTRAINT person_references_pkey`, and
-- docs/storage.md and operators refer to them. Never edit this file once released: add a new numbered migration.

-- One row per reference held by a live person. The primary key (system, reference_id) is the uniqueness rule and
-- the look-up of `find_by_reference`; `person_references_person_id_idx` serves replacing a person's rows. Ids are
-- compared exactly (`text` equality is byte-wise under any deterministic collation): ids are case-sensitive in
-- most systems.
CREATE TABLE person_references (
    system       text NOT NULL,
    reference_id text NOT NULL,
    person_id    uuid NOT NULL,
    CONSTRAINT person_references_pkey PRIMARY KEY (system, reference_id),
    CONSTRAINT person_references_person_fkey FOREIGN KEY (person_id) REFERENCES persons (id)
);

CREATE INDEX person_references_person_id_idx ON person_references (person_id);

-- Upgraded databases: index the references the documents of live persons already hold, so the table matches the
-- documents whatever wrote them. Should two live persons name the same record, the first in id order keeps it
-- (the other's write of its references is then refused until staff resolve it); nothing fails the upgrade.
INSERT INTO person_references (system, reference_id, person_id)
SELECT r.value ->> 'system', r.value ->> 'id', p.id
  FROM persons p
 CROSS JOIN LATERAL jsonb_array_elements(
           CASE WHEN jsonb_typeof(p.document -> 'references') = 'array' THEN p.document -> 'references'
                ELSE '[]'::jsonb END) WITH ORDINALITY AS r(value, position)
 WHERE p.state = 'active'
   AND jsonb_typeof(r.value -> 'system') = 'string'
   AND jsonb_typeof(r.value -> 'id') = 'string'
 ORDER BY p.id, r.position
    ON CONFLICT ON CONSTRAINT person_references_pkey DO NOTHING;

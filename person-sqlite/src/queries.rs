//! Every SQL statement the store runs, as a named constant, and [`CATALOGUE`], the list the query catalogue
//! (`GET /admin/queries`, SPEC §10) shows.
//!
//! Statements bind every value as a parameter (never formatted into the text), so the text is safe to log and
//! to publish: it names columns, never values. The contract suite in `person-core` is what checks this SQL;
//! builds need no database. This module knows nothing about rows or domain types.

/// A statement with its stable name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedQuery {
    /// Stable operation name, e.g. `person.get`.
    pub name: &'static str,
    /// The SQL text, with `?` placeholders.
    pub sql: &'static str,
}

/// Starts a write transaction holding SQLite's write lock from the first statement, so the checks it makes
/// stay true until it commits (a deferred `BEGIN` would take the lock only at the first write, and could fail
/// with `SQLITE_BUSY` there instead of waiting at the start).
pub const BEGIN_IMMEDIATE: &str = "BEGIN IMMEDIATE";

/// Makes a write transaction durable (issued by sqlx's `Transaction::commit`).
pub const COMMIT: &str = "COMMIT";

/// Abandons a refused write transaction (issued by sqlx's `Transaction::rollback`).
pub const ROLLBACK: &str = "ROLLBACK";

/// Whether a person (in any state) has the id. Binds: id.
pub const PERSON_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM persons WHERE id = ?)";

/// Whether an idempotency key is stored. Binds: key.
pub const IDEMPOTENCY_KEY_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM idempotency WHERE key = ?)";

/// Allocates the next `personRef` and returns it. Inside the create's transaction, so a failed create gives its
/// number back.
pub const NEXT_PERSON_REF: &str = "UPDATE counters SET value = value + 1 WHERE name = 'person_ref' RETURNING value";

/// Stores a new person. Binds: id, person_ref, version_number, state, merged_into, document, created_at,
/// last_modified.
pub const INSERT_PERSON: &str = "INSERT INTO persons \
     (id, person_ref, version_number, state, merged_into, document, created_at, last_modified) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

/// Replaces a person if, and only if, it still has the expected version (the compare-and-set of an update).
/// Binds: version_number, state, merged_into, document, last_modified, id, expected version.
pub const UPDATE_PERSON: &str = "UPDATE persons \
     SET version_number = ?, state = ?, merged_into = ?, document = ?, last_modified = ? \
     WHERE id = ? AND version_number = ?";

/// The stored version of a person, to explain why an update matched no row. Binds: id.
pub const PERSON_VERSION: &str = "SELECT version_number FROM persons WHERE id = ?";

/// Reads one person. Binds: id.
pub const GET_PERSON: &str = "SELECT document FROM persons WHERE id = ?";

/// Appends an event to the feed; its position is allocated by the insert. Binds: id, person_id, event_type,
/// document.
pub const INSERT_EVENT: &str = "INSERT INTO events (id, person_id, event_type, document) VALUES (?, ?, ?, ?)";

/// A page of the feed, in commit order. Binds: after (exclusive), limit.
pub const EVENTS_AFTER: &str = "SELECT position, document FROM events WHERE position > ? ORDER BY position LIMIT ?";

/// Appends a history entry. Binds: person_id, version_number, event_id, document.
pub const INSERT_HISTORY: &str =
    "INSERT INTO person_history (person_id, version_number, event_id, document) VALUES (?, ?, ?, ?)";

/// Every history entry of a person, oldest first. Binds: person_id.
pub const LIST_HISTORY: &str = "SELECT document FROM person_history WHERE person_id = ? ORDER BY version_number";

/// Stores an idempotency record. Binds: key, fingerprint, person_id, document, created_at.
pub const INSERT_IDEMPOTENCY: &str =
    "INSERT INTO idempotency (key, fingerprint, person_id, document, created_at) VALUES (?, ?, ?, ?, ?)";

/// Reads an idempotency record. Binds: key.
pub const GET_IDEMPOTENCY: &str = "SELECT key, fingerprint, document, created_at FROM idempotency WHERE key = ?";

/// Checks that a connection answers.
pub const PING: &str = "SELECT 1";

/// Every statement with its stable name, for the query catalogue.
pub const CATALOGUE: &[NamedQuery] = &[
    NamedQuery { name: "transaction.begin_immediate", sql: BEGIN_IMMEDIATE },
    NamedQuery { name: "transaction.commit", sql: COMMIT },
    NamedQuery { name: "transaction.rollback", sql: ROLLBACK },
    NamedQuery { name: "person.exists", sql: PERSON_EXISTS },
    NamedQuery { name: "idempotency.exists", sql: IDEMPOTENCY_KEY_EXISTS },
    NamedQuery { name: "person_ref.next", sql: NEXT_PERSON_REF },
    NamedQuery { name: "person.insert", sql: INSERT_PERSON },
    NamedQuery { name: "person.update", sql: UPDATE_PERSON },
    NamedQuery { name: "person.version", sql: PERSON_VERSION },
    NamedQuery { name: "person.get", sql: GET_PERSON },
    NamedQuery { name: "event.insert", sql: INSERT_EVENT },
    NamedQuery { name: "events.after", sql: EVENTS_AFTER },
    NamedQuery { name: "history.insert", sql: INSERT_HISTORY },
    NamedQuery { name: "history.list", sql: LIST_HISTORY },
    NamedQuery { name: "idempotency.insert", sql: INSERT_IDEMPOTENCY },
    NamedQuery { name: "idempotency.get", sql: GET_IDEMPOTENCY },
    NamedQuery { name: "store.ping", sql: PING },
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::CATALOGUE;

    #[test]
    fn catalogue_names_are_unique() {
        let names: HashSet<_> = CATALOGUE.iter().map(|q| q.name).collect();
        assert_eq!(names.len(), CATALOGUE.len());
    }
}

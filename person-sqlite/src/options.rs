//! [`SqliteOptions`]: the tunables of the embedded store, with durable defaults.
//!
//! Plain values only (and the handle query executions are reported to): the server maps its configuration onto
//! them, and nothing here knows about files, URLs or connections.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use person_core::storage::QueryRecorder;

/// How hard SQLite works to get a commit onto stable storage before answering (`PRAGMA synchronous`).
///
/// The store runs in WAL mode, where the levels mean:
///
/// | level | survives a killed process | survives power loss or an OS crash |
/// |---|---|---|
/// | `Normal` | yes | no: the last commits may be lost (the database stays consistent) |
/// | `Full` (default) | yes | yes: the WAL is synced on every commit |
/// | `Extra` | yes | yes (its extra directory sync matters for rollback journals, little in WAL) |
///
/// `OFF` is deliberately not offered: a power cut could corrupt the file, and this is a register of people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `NORMAL`: durable against a process crash, not against power loss.
    Normal,
    /// `FULL`: a commit answered is on stable storage.
    #[default]
    Full,
    /// `EXTRA`: `FULL` plus a directory sync after a rollback journal is deleted (little gain in WAL).
    Extra,
}

impl Synchronous {
    /// The pragma value, e.g. `FULL`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
            Self::Extra => "EXTRA",
        }
    }
}

impl fmt::Display for Synchronous {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not one of `normal`, `full`, `extra`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown synchronous level: expected normal, full or extra")]
pub struct InvalidSynchronous;

impl FromStr for Synchronous {
    type Err = InvalidSynchronous;

    /// Parses `normal`, `full` or `extra`, in any case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "normal" => Ok(Self::Normal),
            "full" => Ok(Self::Full),
            "extra" => Ok(Self::Extra),
            _ => Err(InvalidSynchronous),
        }
    }
}

/// The writer's page cache unless [`SqliteOptions::writer_cache_mib`] says otherwise (MiB).
pub const DEFAULT_WRITER_CACHE_MIB: u32 = 32;

/// The writer's page cache `person-api import` asks for (MiB).
pub const IMPORT_WRITER_CACHE_MIB: u32 = 256;

/// Options of [`crate::SqliteStore::open`].
///
/// Not comparable: [`Self::queries`] is a handle to an observer, which has no equality.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Durability of each commit; default [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// How long a connection waits for a lock held by *another process* (the `sqlite3` shell, a `migrate` run)
    /// before failing with "busy" (→ [`person_core::StoreError::Unavailable`]). Writers of this process never
    /// contend: they queue for the single writer connection. Default 5 s.
    pub busy_timeout: Duration,
    /// Number of read-only connections serving `get`, `history`, the feed and idempotency look-ups in parallel;
    /// at least 1 (0 is treated as 1). Default 4.
    pub readers: u32,
    /// How long an operation waits for a free connection (the writer, or a reader) before failing as
    /// [`person_core::StoreError::Unavailable`]. Bounds the in-process write queue. Default 30 s.
    pub acquire_timeout: Duration,
    /// The writer connection's page cache, in MiB (allocated only as pages are used). Default
    /// [`DEFAULT_WRITER_CACHE_MIB`]: enough for a write transaction of the API, which changes a few dozen pages,
    /// and small enough for the server's memory target. `person-api import` raises it (a batch of 1,000 persons
    /// changes thousands of index pages, which would otherwise spill to the WAL mid-transaction).
    pub writer_cache_mib: u32,
    /// Where every statement execution is reported (name, duration, row count, success; never values), under
    /// the names of [`crate::queries::CATALOGUE`]: each statement of a transaction, `BEGIN IMMEDIATE`, `COMMIT`
    /// and `ROLLBACK` included, is one execution. Default: reported nowhere ([`QueryRecorder::default`]).
    pub queries: QueryRecorder,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            readers: 4,
            acquire_timeout: Duration::from_secs(30),
            writer_cache_mib: DEFAULT_WRITER_CACHE_MIB,
            queries: QueryRecorder::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_durable() {
        let options = SqliteOptions::default();
        assert_eq!(options.synchronous, Synchronous::Full);
        assert!(options.readers >= 1);
    }

    #[test]
    fn synchronous_levels_parse_in_any_case_and_refuse_off() {
        assert_eq!("FULL".parse(), Ok(Synchronous::Full));
        assert_eq!(" normal ".parse(), Ok(Synchronous::Normal));
        assert_eq!("Extra".parse(), Ok(Synchronous::Extra));
        assert_eq!("off".parse::<Synchronous>(), Err(InvalidSynchronous));
    }
}

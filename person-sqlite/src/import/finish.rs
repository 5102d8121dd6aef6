//! The body of [`ImportRepository::finish_import`](person_core::ports::ImportRepository::finish_import) on
//! SQLite: the keys set aside by the batches (`import_pending_keys`, one row per person) are read, sorted in Rust and
//! appended to `search_keys` in key order.
//!
//! Why the sort is done here and not by SQLite: at a million persons (14.3 million keys) an
//! `INSERT … SELECT … ORDER BY key` spent 31 of its 34 s in SQLite's sorter, while the same rows, already in order,
//! were inserted in 3.3 s. Grouping the keys per distinct key (2.3 million at that size) and ranking the persons once
//! by id gives the `(key, person_id)` order with a sort of the distinct keys and of small integer lists.

use std::collections::HashMap;

use person_core::ports::StoreError;
use person_core::storage::{NamedQuery, QueryRecorder, corrupt, out_of_range, to_json};

use crate::error::failed;
use crate::execution::{counted, single};
use crate::queries;

/// Pending rows read per statement.
const PENDING_PAGE: i64 = 100_000;

/// Sorted key rows inserted per statement.
const INSERT_CHUNK: usize = 100_000;

/// A row of `import_pending_keys`, with whether its person is still live at the version imported.
#[derive(sqlx::FromRow)]
struct PendingRow {
    position: i64,
    person_id: String,
    keys: String,
    live: bool,
}

/// The keys waiting to be indexed, grouped per key: each distinct key with the persons (indexes into `ids`) having
/// it.
#[derive(Default)]
struct PendingKeys {
    ids: Vec<String>,
    by_key: HashMap<String, Vec<u32>>,
    rows: u64,
}

impl PendingKeys {
    fn add(&mut self, person_id: String, keys: Vec<String>) -> Result<(), StoreError> {
        let person = u32::try_from(self.ids.len()).map_err(|_| out_of_range("persons with pending keys"))?;
        self.ids.push(person_id);
        for key in keys {
            self.rows += 1;
            match self.by_key.get_mut(key.as_str()) {
                Some(persons) => persons.push(person),
                None => {
                    self.by_key.insert(key, vec![person]);
                }
            }
        }
        Ok(())
    }

    /// The persons' ids in ascending order, and each distinct key in ascending order with the positions (in that
    /// id list) of the persons having it, ascending and each once: `(key, person_id)` order.
    fn into_sorted(self) -> (Vec<String>, Vec<(String, Vec<u32>)>) {
        let Self { mut ids, by_key, .. } = self;
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_unstable_by(|&a, &b| ids[a].cmp(&ids[b]));
        let mut rank = vec![0_u32; ids.len()];
        for (position, &person) in order.iter().enumerate() {
            // Fewer than u32::MAX persons: `add` refused more.
            rank[person] = u32::try_from(position).unwrap_or(u32::MAX);
        }
        let sorted_ids: Vec<String> = order.iter().map(|&person| std::mem::take(&mut ids[person])).collect();
        let mut keys: Vec<(String, Vec<u32>)> = by_key
            .into_iter()
            .map(|(key, mut persons)| {
                for person in &mut persons {
                    *person = rank[*person as usize];
                }
                persons.sort_unstable();
                persons.dedup();
                (key, persons)
            })
            .collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        (sorted_ids, keys)
    }
}

/// Runs one statement of the finish that returns no rows, binding `bind` when given.
pub(super) async fn run_counted(
    conn: &mut sqlx::SqliteConnection,
    recorder: &QueryRecorder,
    query: &'static NamedQuery,
    bind: Option<String>,
) -> Result<u64, StoreError> {
    let statement = match bind {
        Some(value) => sqlx::query(query.sql).bind(value).execute(&mut *conn),
        None => sqlx::query(query.sql).execute(&mut *conn),
    };
    Ok(counted(recorder, query, statement).await.map_err(failed(query.name))?.rows_affected())
}

/// Reads every pending row, in append order, keeping the keys of persons still live at the version imported.
async fn read_pending(conn: &mut sqlx::SqliteConnection, recorder: &QueryRecorder) -> Result<PendingKeys, StoreError> {
    let page = &queries::IMPORT_PENDING_PAGE;
    let mut pending = PendingKeys::default();
    let mut after = 0_i64;
    loop {
        let statement = sqlx::query_as::<_, PendingRow>(page.sql).bind(after).bind(PENDING_PAGE).fetch_all(&mut *conn);
        let rows = counted(recorder, page, statement).await.map_err(failed(page.name))?;
        let Some(last) = rows.last() else { break };
        after = last.position;
        for row in rows {
            if row.live {
                let keys: Vec<String> =
                    serde_json::from_str(&row.keys).map_err(|e| corrupt("import pending keys", &e))?;
                pending.add(row.person_id, keys)?;
            }
        }
    }
    Ok(pending)
}

/// Appends the sorted keys to `search_keys`, [`INSERT_CHUNK`] rows per statement: the number of rows inserted.
async fn insert_sorted(
    conn: &mut sqlx::SqliteConnection,
    recorder: &QueryRecorder,
    ids: &[String],
    keys: &[(String, Vec<u32>)],
) -> Result<u64, StoreError> {
    let mut indexed = 0;
    let mut chunk: Vec<(&str, &str)> = Vec::with_capacity(INSERT_CHUNK);
    for (key, persons) in keys {
        for &person in persons {
            let id = ids.get(person as usize).ok_or_else(|| out_of_range("pending key person"))?;
            chunk.push((key.as_str(), id.as_str()));
            if chunk.len() == INSERT_CHUNK {
                let bind = to_json(&chunk, "import search keys")?;
                indexed += run_counted(conn, recorder, &queries::IMPORT_FINISH_KEYS, Some(bind)).await?;
                chunk.clear();
            }
        }
    }
    if !chunk.is_empty() {
        let bind = to_json(&chunk, "import search keys")?;
        indexed += run_counted(conn, recorder, &queries::IMPORT_FINISH_KEYS, Some(bind)).await?;
    }
    Ok(indexed)
}

/// The finish, inside its transaction: the number of keys indexed. When fewer keys are stored than wait (an import
/// into a new store), `search_keys_person_id_idx` is dropped and rebuilt around the appends (measured at a million
/// persons: `CREATE INDEX` takes 20 s, inserting into the index instead about 30 s more).
pub(super) async fn finish_keys(
    conn: &mut sqlx::SqliteConnection,
    recorder: &QueryRecorder,
) -> Result<u64, StoreError> {
    let pending = read_pending(conn, recorder).await?;
    let waiting = i64::try_from(pending.rows).map_err(|_| out_of_range("pending keys"))?;
    let stored = &queries::IMPORT_STORED_KEYS_UP_TO;
    let statement = sqlx::query_scalar::<_, i64>(stored.sql).bind(waiting).fetch_one(&mut *conn);
    let rebuild = single(recorder, stored, statement).await.map_err(failed(stored.name))? < waiting;
    let (ids, keys) = pending.into_sorted();
    // Rebuilding, the appends need no large cache: dirty pages beyond the writer's spill to the WAL as they are
    // written (measured: 4 s less in all than with the 2 GiB cache, whose pages are zeroed by the kernel as they are
    // first touched and all written at the commit). Inserting into the index, its random leaves stay in the cache.
    let tune = if rebuild { &queries::IMPORT_DROP_PERSON_INDEX } else { &queries::IMPORT_RAISE_CACHE };
    run_counted(conn, recorder, tune, None).await?;
    let indexed = insert_sorted(conn, recorder, &ids, &keys).await?;
    if rebuild {
        run_counted(conn, recorder, &queries::IMPORT_CREATE_PERSON_INDEX, None).await?;
    }
    run_counted(conn, recorder, &queries::IMPORT_CLEAR_PENDING_KEYS, None).await?;
    Ok(indexed)
}

#[cfg(test)]
mod tests {
    use super::PendingKeys;

    #[test]
    fn keys_come_out_in_key_then_person_id_order_each_pair_once() {
        let mut pending = PendingKeys::default();
        let keys = |list: &[&str]| list.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
        pending.add("c".to_owned(), keys(&["k2", "k1"])).unwrap();
        pending.add("a".to_owned(), keys(&["k2"])).unwrap();
        pending.add("b".to_owned(), keys(&["k1", "k3", "k1"])).unwrap();
        assert_eq!(pending.rows, 6);
        let (ids, sorted) = pending.into_sorted();
        assert_eq!(ids, ["a", "b", "c"]);
        let rows: Vec<(&str, &str)> = sorted
            .iter()
            .flat_map(|(key, persons)| persons.iter().map(|&p| (key.as_str(), ids[p as usize].as_str())))
            .collect();
        assert_eq!(rows, [("k1", "b"), ("k1", "c"), ("k2", "a"), ("k2", "c"), ("k3", "b")]);
    }
}

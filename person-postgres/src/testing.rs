//! Test support (feature `testing`): a storage URL naming a fresh, uniquely named schema in the database of
//! `PERSON_TEST_POSTGRES_URL`, so that every test gets an empty store while tests run in parallel.
//!
//! Test schemas are named `person_test_<random>` and are left behind (the CI database is disposable); to clear
//! them from a long-lived development database run
//! `psql "$PERSON_TEST_POSTGRES_URL" -Atc "SELECT 'DROP SCHEMA ' || nspname || ' CASCADE;' FROM pg_namespace WHERE nspname LIKE 'person\_test\_%'" | psql "$PERSON_TEST_POSTGRES_URL"`.

/// The environment variable naming the test database.
pub const TEST_URL_VARIABLE: &str = "PERSON_TEST_POSTGRES_URL";

/// A storage URL for a new, empty schema in the test database, or `None` (after printing a `skipped:` line)
/// when `PERSON_TEST_POSTGRES_URL` is not set.
#[must_use]
pub fn fresh_test_url() -> Option<String> {
    let Ok(base) = std::env::var(TEST_URL_VARIABLE) else {
        println!(
            "skipped: set {TEST_URL_VARIABLE} (e.g. postgres://postgres@127.0.0.1:5432/test) to run the PostgreSQL tests"
        );
        return None;
    };
    Some(with_schema(&base, &format!("person_test_{}", uuid::Uuid::new_v4().simple())))
}

/// `url` with its `schema` parameter set to `schema`.
#[must_use]
pub fn with_schema(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}schema={schema}")
}

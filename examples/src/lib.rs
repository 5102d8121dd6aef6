//! Runnable examples of the Person API, in `examples/examples/`:
//!
//! * `client_quickstart`: find or create a person with `person-client` (match, then create; a duplicate
//!   error names the winner of a race), then update it with conflict handling (re-read and retry);
//! * `host_router`: mount `person_http::router` under a prefix inside another axum application, over the
//!   embedded SQLite store;
//! * `custom_store`: implement a store (a logging decorator around `InMemoryStore`) and run the store contract
//!   suite against it;
//! * `follow_feed`: a listener that follows the event feed and persists its cursor, so it resumes after a
//!   restart.
//!
//! Run one with `cargo run -p person-examples --example <name>`; `tests/examples.rs` runs each against a local
//! server, so they are built and exercised by `cargo test`.

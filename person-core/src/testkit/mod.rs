//! Test support (feature `testkit`): the store contract suite and fixtures.
//!
//! A store is done when [`crate::store_contract_tests!`] passes against it. The suite talks only to the
//! [`crate::ports::PersonRepository`] port, so it checks the same promises for every backend.

pub mod contract;
pub mod fixtures;
pub mod guarded;
pub mod model;
pub mod synthetic;

pub use guarded::Guarded;

/// Generates one `#[tokio::test]` per contract case, for a store built by `$factory`.
///
/// `$factory` is an `async fn() -> Option<S>` where `S: ports::Store + 'static` (every port); it returns `None` (after
/// printing a `skipped: …` line) when the backend is not configured, e.g. no test database URL.
///
/// ```text
/// async fn fresh_store() -> Option<SqliteStore> { /* a new database per test */ }
/// person_core::store_contract_tests!(fresh_store);
/// ```
#[macro_export]
macro_rules! store_contract_tests {
    ($factory:path) => {
        $crate::contract_cases!([$crate::store_contract_tests] @cases $factory;);
    };
    (@cases $factory:path; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some(store) = $factory().await else { return };
                $crate::testkit::contract::$case(::std::sync::Arc::new(store)).await;
            }
        )+
    };
}

/// The one list of contract cases: `contract_cases!([callback] args…)` expands to
/// `callback! { args… case_1, case_2, … }`.
///
/// [`crate::store_contract_tests!`] makes a test of each, and [`contract::cases`] a table of them (for running
/// the suite outside `cargo test`, as `examples/custom_store.rs` does); a new case is added here only.
#[macro_export]
macro_rules! contract_cases {
    ([$($callback:tt)+] $($args:tt)*) => {
        $($callback)+! { $($args)*
            insert_assigns_a_person_ref_and_get_returns_the_person_exactly,
            person_refs_increase_with_each_create,
            concurrent_inserts_get_distinct_person_refs,
            insert_with_an_existing_id_is_refused_and_writes_nothing,
            insert_with_a_taken_idempotency_key_is_refused_and_writes_nothing,
            idempotency_record_is_stored_with_the_create,
            get_of_an_unknown_id_is_none,
            update_with_the_expected_version_replaces_the_person,
            update_with_a_stale_version_is_a_conflict_and_writes_nothing,
            update_of_an_unknown_id_is_not_found,
            concurrent_updates_with_the_same_version_let_exactly_one_win,
            deleted_and_merged_states_round_trip,
            events_are_returned_in_commit_order_and_paged,
            history_lists_every_version_in_order,
            feed_is_complete_and_ordered_under_concurrent_writers,
            ping_succeeds_on_a_working_store,
            changes_write_their_audit_entries_atomically,
            audit_entries_are_appended_and_listed_per_person_in_order,
            restricted_among_names_only_restricted_persons,
            documents_round_trip_by_version_and_can_be_deleted,
            document_writes_with_a_wrong_version_conflict_and_write_nothing,
            concurrent_document_writes_let_exactly_one_win,
            insert_stores_search_keys_and_candidates_find_the_person_by_any_of_them,
            update_replaces_the_person_keys,
            equality_writes_replace_the_equality_keys_and_candidates_carry_the_nino,
            candidates_are_ranked_by_matched_keys_then_id_and_limited,
            candidates_leave_out_deleted_merged_and_restricted_persons,
            an_insert_with_a_taken_dedup_key_is_refused_and_writes_nothing,
            an_update_with_a_taken_dedup_key_is_refused_and_writes_nothing,
            a_version_conflict_is_reported_before_a_taken_dedup_key,
            concurrent_inserts_with_the_same_dedup_key_let_exactly_one_win,
            deleting_a_person_frees_its_dedup_key_and_drops_its_keys,
            merge_is_one_atomic_write_of_both_persons_documents_event_histories_and_audit,
            merge_with_a_stale_version_conflicts_and_writes_nothing,
            merge_with_a_document_conflict_writes_nothing,
            merge_hands_dedup_keys_over_atomically_and_refuses_a_third_persons_key,
            references_are_stored_with_the_person_and_found_by_reference,
            a_reference_held_by_another_live_person_is_refused_and_writes_nothing,
            concurrent_claims_of_one_reference_let_exactly_one_win,
            deleting_a_person_releases_its_references,
            merge_moves_the_duplicates_references_and_refuses_a_third_persons_reference,
            report_persons_pages_every_state_in_id_order,
            report_persons_select_by_modified_since_inclusively,
            report_counts_cover_persons_tombstones_tenures_and_references,
            relay_lease_is_exclusive_until_it_expires_and_keeps_the_position,
            concurrent_relay_lease_acquisitions_let_exactly_one_win,
            import_keeps_ids_and_refs_and_reports_each_record,
            import_stores_a_merged_person_only_after_its_survivor,
            finished_import_finds_imported_keys_and_a_change_keeps_its_own,
            query_catalogue_names_each_statement_once
        }
    };
}

//! Test helpers: start the router on a real socket over any `PersonService`, a small HTTP client for the API,
//! JSON fixtures, and the store-independent suite (`suite`, run by `http_suite!`).
//!
//! To run the suite against another store, build a `PersonService` over it and write
//! `http_suite!(spawn(service_over_my_store()));` in a test crate that includes this module.

pub(crate) mod faults;
pub(crate) mod logs;
pub(crate) mod references_suite;
pub(crate) mod reporting_suite;
pub(crate) mod search_suite;
pub(crate) mod suite;
pub(crate) mod tokens;

use std::sync::Arc;

use chrono::{Months, NaiveDate, Utc};
use person_core::ports::{RandomIds, SystemClock};
use person_core::{InMemoryStore, PersonService, Repositories};
use person_http::{AppState, HttpConfig, StoreMetrics};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// The media type of every error body.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// Create without duplicate prevention: for tests that record the same fixture person several times.
pub(crate) const CREATE_ANYWAY: &str = "/api/v1/persons?allowDuplicate=true";

/// Generates one `#[tokio::test]` per suite function (`suite`, `search_suite`, `references_suite`,
/// `reporting_suite`), each on a fresh server from `$spawn` (an expression evaluating to a future of [`Api`]).
///
/// `reporting_suite::a_table_larger_than_one_internal_read_pages_and_streams_the_same_rows` (1,050 creates) is
/// not in the list: it runs on the in-memory, SQLite and PostgreSQL servers only, called by name, because over
/// moto (one Python process shared by every DynamoDB test) it crowds the other tests out; the DynamoDB store's
/// keyset paging is covered by the contract suite.
///
/// `http_suite!(optional $spawn)` takes a future of `Option<Api>` instead: a test whose server is `None` (a
/// backend that is not configured, after printing a `skipped:` line) returns without running.
macro_rules! http_suite {
    (optional $spawn:expr) => {
        http_suite!(@all async {
            let api: Option<crate::common::Api> = $spawn.await;
            api
        });
    };
    ($spawn:expr) => {
        http_suite!(@all async { Some::<crate::common::Api>($spawn.await) });
    };
    (@all $spawn:expr) => {
        http_suite!(@tests $spawn; search_suite;
            a_misspelt_name_finds_the_person_jon_smyth_finds_john_smith,
            search_ignores_case_kimakhe_finds_kimakhe,
            search_ignores_accents_zoe_finds_zoe_with_a_diaeresis,
            a_nickname_finds_the_full_name_bill_turner_finds_william_turner,
            free_text_finds_names_in_either_order_smith_john_finds_john_smith,
            a_hyphenated_surname_finds_each_part_and_each_part_finds_it,
            a_day_month_swapped_date_of_birth_finds_the_person_ranked_below_an_exact_match,
            a_postcode_matches_with_or_without_its_space_and_in_any_case,
            a_national_insurance_number_matches_in_any_spacing_or_case,
            deleted_merged_and_restricted_persons_never_appear_in_search_or_match_results,
            search_results_page_with_a_cursor_and_a_next_link,
            bad_search_parameters_are_400s_naming_the_parameter,
            the_hackney_person_search_answers_in_the_housing_search_shape_and_pages_from_1,
            matching_answers_ranked_candidates_with_grade_and_explanation,
            creating_a_person_already_recorded_is_a_409_listing_the_existing_person,
            allow_duplicate_true_creates_the_person_anyway,
            ten_concurrent_creates_of_the_same_new_person_have_exactly_one_winner,
            a_patch_making_a_person_a_duplicate_of_another_is_a_409,
            merging_moves_tenures_and_data_to_the_survivor_and_leaves_a_tombstone_answering_308,
            merging_a_person_into_itself_is_a_422,
            merging_without_if_match_is_428_and_with_a_stale_one_409,
            merging_a_missing_deleted_or_merged_duplicate_or_into_a_deleted_survivor_is_refused,
        );
        http_suite!(@tests $spawn; references_suite;
            adding_a_reference_is_a_new_version_with_an_event_and_history_and_finds_the_person,
            a_reference_held_by_another_person_is_a_409_naming_the_owner,
            concurrent_claims_of_one_reference_over_http_have_exactly_one_winner,
            removing_a_reference_frees_it_for_another_person,
            a_deleted_persons_references_are_released,
            merging_moves_the_duplicates_references_to_the_survivor,
            bad_references_are_refused_naming_the_field,
        );
        http_suite!(@tests $spawn; reporting_suite;
            every_table_reads_the_same_by_offset_by_next_link_and_as_csv,
            an_incremental_load_returns_exactly_what_changed_and_generated_at_misses_nothing,
            a_restricted_person_is_a_tombstone_in_every_table_and_nothing_of_theirs_is_exported,
            csv_quotes_commas_quotes_and_line_breaks_and_keeps_utf_8,
            a_gzip_compressed_csv_export_is_complete,
            bad_reporting_parameters_are_400s_naming_the_parameter,
            the_reporting_tables_are_documented_with_both_media_types_and_reporting_read,
        );
        http_suite!(@tests $spawn; suite;
            the_query_catalogue_lists_every_statement_with_statistics_that_move_with_requests,
            creating_a_valid_tenant_answers_201_with_location_etag_and_the_person,
            reading_a_created_person_answers_the_same_person_with_etag_0,
            a_housing_officer_is_created_without_title_or_date_of_birth,
            an_invalid_create_lists_every_field_error_in_one_422_and_publishes_nothing,
            a_client_supplied_id_that_is_taken_is_a_409,
            reading_an_unknown_id_is_a_404_problem,
            reading_an_id_that_is_not_a_uuid_is_a_400_problem,
            a_deleted_person_reads_as_410_and_cannot_be_deleted_again,
            a_delete_with_a_stale_if_match_is_a_409,
            patching_with_if_match_changes_the_person_records_history_and_publishes_the_changed_keys,
            patching_without_if_match_is_428,
            patching_with_a_stale_if_match_is_409_with_the_current_version,
            if_match_is_accepted_quoted_bare_or_weak_and_refused_otherwise,
            patching_an_unknown_key_is_a_400_naming_the_key,
            patching_a_read_only_key_is_a_400_naming_the_key,
            clearing_a_required_field_is_a_422,
            an_identical_patch_is_204_without_a_new_version_or_event,
            prefer_return_representation_answers_200_with_the_person,
            a_merge_patch_content_type_is_accepted,
            twenty_concurrent_patches_with_the_same_if_match_have_exactly_one_winner,
            fifty_concurrent_creates_get_fifty_distinct_person_refs,
            a_retry_with_the_same_idempotency_key_replays_the_same_201,
            concurrent_retries_with_the_same_idempotency_key_create_one_person,
            the_same_idempotency_key_with_another_body_is_a_422,
            creating_through_v2_publishes_a_v2_event,
            the_history_of_an_unknown_person_is_a_404,
            the_feed_pages_with_a_cursor_and_a_next_link,
            a_bad_feed_cursor_or_limit_is_a_400_naming_the_parameter,
            a_body_over_one_mebibyte_is_a_413_problem,
            malformed_json_is_a_400_problem,
            a_body_that_is_not_json_is_a_415_problem,
            an_unknown_enum_value_is_a_400_naming_the_field,
            a_wrong_type_is_a_400_naming_the_field,
            error_responses_echo_the_callers_correlation_id,
            a_correlation_id_is_generated_when_none_or_an_invalid_one_is_sent,
            unknown_paths_are_404_problems_and_wrong_methods_405_problems,
            the_openapi_document_is_3_1_and_lists_every_path,
            swagger_ui_is_served_with_no_external_scripts,
            health_endpoints_answer_200,
            cors_preflight_allows_the_api_headers_and_exposes_etag_location_and_correlation_id,
            responses_are_gzip_compressed_when_the_client_accepts_it,
            the_openapi_document_declares_bearer_security_and_the_permission_of_every_protected_operation,
            equality_data_round_trips_with_etag_and_if_match,
            invalid_national_insurance_numbers_and_unknown_ethnicity_codes_are_422_naming_the_field,
            a_national_insurance_number_is_stored_in_canonical_form,
            equality_values_never_appear_in_person_responses_history_or_events,
            extended_data_is_versioned_per_area_and_can_be_deleted,
            invalid_area_names_are_400_and_never_a_path_traversal,
            an_extended_document_must_be_a_json_object_of_at_most_64_kib,
            restricting_processing_is_a_new_version_shown_in_the_person,
            the_access_log_lists_what_was_done_to_a_person_with_purpose_and_pages_with_a_cursor,
            a_bad_x_purpose_header_is_a_400_naming_the_header,
            the_subject_access_export_holds_record_equality_extended_history_and_disclosure_log,
            documents_of_an_unknown_person_are_404,
        );
    };
    (@tests $spawn:expr; $module:ident; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let Some(api) = $spawn.await else { return };
                crate::common::$module::$name(&api).await;
            }
        )*
    };
}

/// A service over a fresh in-memory store, the system clock and random ids. The store is timed
/// (`person_http::store_timing::timed`), as the server's is, so every test over it answers `Server-Timing` and logs
/// its store operations; its metrics are not shown on `/metrics` (see [`timed_in_memory_service`]).
pub(crate) fn in_memory_service() -> PersonService {
    timed_in_memory_service().0
}

/// A service over a fresh, timed in-memory store, and the store metrics to hand to
/// `AppState::with_store_metrics`.
pub(crate) fn timed_in_memory_service() -> (PersonService, StoreMetrics) {
    let metrics = StoreMetrics::default();
    let store = person_http::store_timing::timed(Arc::new(InMemoryStore::new()), &metrics);
    let service = PersonService::new(Repositories::from_dyn(store), Arc::new(SystemClock), Arc::new(RandomIds));
    (service, metrics)
}

/// Starts the router over `service` with the default configuration on `127.0.0.1:<free port>`.
pub(crate) async fn spawn(service: PersonService) -> Api {
    spawn_with(service, HttpConfig::default()).await
}

/// Starts the router over `service` with `config` on `127.0.0.1:<free port>`.
pub(crate) async fn spawn_with(service: PersonService, config: HttpConfig) -> Api {
    spawn_state(AppState::new(service, config)).await
}

/// Starts the router over `state` on `127.0.0.1:<free port>`.
pub(crate) async fn spawn_state(state: AppState) -> Api {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
    let address = listener.local_addr().expect("the listener's address");
    let app = person_http::router(state);
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    Api::new(format!("http://{address}"))
}

/// A server over a fresh in-memory store.
pub(crate) async fn spawn_in_memory() -> Api {
    let (service, metrics) = timed_in_memory_service();
    spawn_state(AppState::new(service, HttpConfig::default()).with_store_metrics(metrics)).await
}

/// A client of one running server.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    /// `http://127.0.0.1:<port>`.
    pub(crate) base: String,
    /// The HTTP client (connection pooling, follows redirects).
    pub(crate) client: reqwest::Client,
    /// The bearer token the client sends, if any (for raw requests).
    pub(crate) token: Option<String>,
    /// Whatever must live as long as the server (e.g. the temporary directory of its database file).
    pub(crate) keep_alive: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl Api {
    /// A client of the server at `base`.
    pub(crate) fn new(base: String) -> Self {
        Self { base, client: reqwest::Client::new(), token: None, keep_alive: None }
    }

    /// The same client, keeping `resource` alive for as long as it lives.
    pub(crate) fn keeping(mut self, resource: impl std::any::Any + Send + Sync) -> Self {
        self.keep_alive = Some(Arc::new(resource));
        self
    }

    /// A client of the same server that sends `Authorization: Bearer <token>` with every request.
    pub(crate) fn with_token(&self, token: &str) -> Self {
        let mut headers = HeaderMap::new();
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).expect("a header value");
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
        let client = reqwest::Client::builder().default_headers(headers).build().expect("a client");
        Self { base: self.base.clone(), client, token: Some(token.to_owned()), keep_alive: self.keep_alive.clone() }
    }

    /// A client of the same server, with the same token, that does not follow redirects.
    pub(crate) fn without_redirects(&self) -> reqwest::Client {
        let mut headers = HeaderMap::new();
        if let Some(token) = &self.token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).expect("a header value");
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        reqwest::Client::builder()
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client")
    }

    /// `host:port` of the server, for raw HTTP.
    pub(crate) fn authority(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// `PUT path` with a JSON body and, when given, `If-Match`.
    pub(crate) async fn put(&self, path: &str, if_match: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.put(self.url(path)).json(body);
        if let Some(tag) = if_match {
            request = request.header("If-Match", tag);
        }
        request.send().await.expect("PUT")
    }

    /// `DELETE path`.
    pub(crate) async fn delete(&self, path: &str) -> Response {
        self.client.delete(self.url(path)).send().await.expect("DELETE")
    }

    /// The absolute URL of `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path`.
    pub(crate) async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// `POST path` with a JSON body.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> Response {
        self.client.post(self.url(path)).json(body).send().await.expect("POST")
    }

    /// `PATCH /api/v1/persons/{id}` with a JSON body and, when given, `If-Match`.
    pub(crate) async fn patch(&self, id: &str, if_match: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.patch(self.url(&format!("/api/v1/persons/{id}"))).json(body);
        if let Some(tag) = if_match {
            request = request.header("If-Match", tag);
        }
        request.send().await.expect("PATCH")
    }

    /// Creates `body` and returns the created person (asserting a 201).
    pub(crate) async fn create(&self, body: &Value) -> Value {
        let response = self.post("/api/v1/persons", body).await;
        assert_eq!(response.status(), StatusCode::CREATED, "create failed");
        response.json().await.expect("a person body")
    }

    /// Creates `body` even if the same person is recorded already (`?allowDuplicate=true`) and returns the
    /// created person (asserting a 201).
    pub(crate) async fn create_anyway(&self, body: &Value) -> Value {
        let response = self.post(CREATE_ANYWAY, body).await;
        assert_eq!(response.status(), StatusCode::CREATED, "create failed");
        response.json().await.expect("a person body")
    }

    /// Creates a valid tenant and returns its id. Every call records the same person ([`tenant`]), so this
    /// skips duplicate prevention, which has tests of its own.
    pub(crate) async fn create_tenant(&self) -> String {
        let person = self.create_anyway(&tenant()).await;
        person["id"].as_str().expect("an id").to_owned()
    }

    /// `GET /api/v1/persons?{query}`, asserting a 200; the page.
    pub(crate) async fn search(&self, query: &str) -> Value {
        let response = self.get(&format!("/api/v1/persons?{query}")).await;
        assert_eq!(response.status(), StatusCode::OK, "search {query}");
        response.json().await.expect("a search page")
    }

    /// The ids of the results of `GET /api/v1/persons?{query}`, best match first.
    pub(crate) async fn search_ids(&self, query: &str) -> Vec<String> {
        result_ids(&self.search(query).await["results"])
    }

    /// `POST /api/v1/persons/{survivor}/merge` of `duplicate`, based on the survivor's version `if_match`.
    pub(crate) async fn merge(&self, survivor: &str, duplicate: &str, if_match: Option<&str>) -> Response {
        let body = json!({ "duplicateId": duplicate, "reason": "Recorded twice" });
        let mut request = self.client.post(self.url(&format!("/api/v1/persons/{survivor}/merge"))).json(&body);
        if let Some(tag) = if_match {
            request = request.header("If-Match", tag);
        }
        request.send().await.expect("POST merge")
    }

    /// The cursor at the end of the feed now.
    pub(crate) async fn feed_end(&self) -> String {
        let mut after = "0".to_owned();
        loop {
            let page = self.feed_page(&after, 1000).await;
            if page["results"].as_array().is_none_or(Vec::is_empty) {
                return after;
            }
            after = page["nextCursor"].as_str().expect("nextCursor").to_owned();
        }
    }

    /// Every event after `after` (following the cursor to the end), as feed entries `{ position, event }`.
    pub(crate) async fn events_after(&self, after: &str) -> Vec<Value> {
        let mut after = after.to_owned();
        let mut events = Vec::new();
        loop {
            let page = self.feed_page(&after, 1000).await;
            let results = page["results"].as_array().cloned().unwrap_or_default();
            if results.is_empty() {
                return events;
            }
            events.extend(results);
            after = page["nextCursor"].as_str().expect("nextCursor").to_owned();
        }
    }

    /// The events about one person, oldest first.
    pub(crate) async fn events_of(&self, id: &str) -> Vec<Value> {
        let mut events = self.events_after("0").await;
        events.retain(|entry| entry["event"]["entityId"] == id);
        events.into_iter().map(|entry| entry["event"].clone()).collect()
    }

    async fn feed_page(&self, after: &str, limit: u32) -> Value {
        let response = self.get(&format!("/api/v1/events?after={after}&limit={limit}")).await;
        assert_eq!(response.status(), StatusCode::OK, "feed");
        response.json().await.expect("a feed page")
    }
}

/// Asserts an RFC 9457 problem: status, `application/problem+json`, `type`, `status`, `instance` (the request
/// path) and a `correlationId` equal to the echoed `x-correlation-id`. Returns the body.
pub(crate) async fn expect_problem(response: Response, status: u16, problem_type: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status of {}", response.url());
    let content_type = header(&response, "content-type");
    assert_eq!(content_type, PROBLEM_JSON, "content type of a {status}");
    let correlation_id = header(&response, "x-correlation-id");
    assert!(!correlation_id.is_empty(), "x-correlation-id is echoed on errors");
    let path = response.url().path().to_owned();
    let body: Value = response.json().await.expect("a problem body");
    assert_eq!(body["type"], problem_type, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["instance"], path, "{body}");
    assert_eq!(body["correlationId"], correlation_id.as_str(), "{body}");
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
    body
}

/// A response header as text (`""` when absent).
pub(crate) fn header(response: &Response, name: &str) -> String {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// Today (UTC).
pub(crate) fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// `YYYY-MM-DD`.
pub(crate) fn iso(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// A date `years` years ago.
pub(crate) fn years_ago(years: u32) -> NaiveDate {
    today().checked_sub_months(Months::new(12 * years)).expect("a date in range")
}

/// A valid tenant: title, names, a date of birth 30 years ago, a reason, and two tenures listed ended first
/// (an ended Introductory one and an active Secure one).
pub(crate) fn tenant() -> Value {
    json!({
        "title": "Mr",
        "firstName": "Kimakhe",
        "middleName": "Zoë",
        "surname": "O'Neill-Ndlovu",
        "dateOfBirth": iso(years_ago(30)),
        "placeOfBirth": "Hackney",
        "reason": "New tenancy",
        "personTypes": ["Tenant"],
        "tenures": [
            {
                "id": Uuid::new_v4(),
                "type": "Introductory",
                "startDate": "2010-01-01",
                "endDate": "2014-12-31",
                "assetFullAddress": "12 Old Street, London N1 6AA",
            },
            {
                "id": Uuid::new_v4(),
                "type": "Secure",
                "startDate": "2015-03-01",
                "assetFullAddress": "1 Mare Street, London E8 1DY",
                "uprn": "100021045678",
                "paymentReference": "PR123",
            },
        ],
    })
}

/// Sends `GET path` as raw HTTP/1.1 (no client-side path normalisation: `..` and `%2e%2e` arrive as sent) and
/// returns the status code.
pub(crate) async fn raw_get_status(api: &Api, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(api.authority()).await.expect("connect");
    let authorization = api.token.as_ref().map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {}\r\n{authorization}Connection: close\r\n\r\n", api.authority());
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response);
    let status_line = text.lines().next().unwrap_or_default();
    status_line.split_whitespace().nth(1).and_then(|code| code.parse().ok()).expect("a status code")
}

/// Equality data with every question answered; the National Insurance number is sent in a non-canonical form.
pub(crate) fn equality() -> Value {
    json!({
        "gender": { "code": "woman" },
        "sexRegisteredAtBirth": "female",
        "nationalities": ["GB", "ie"],
        "ethnicity": { "code": "white-other", "description": "Polish" },
        "religion": { "code": "prefer-not-to-say" },
        "sexualOrientation": { "code": "bisexual" },
        "languages": [
            { "language": "Polish", "isPrimary": true },
            { "language": "English", "isPrimary": false },
        ],
        "communicationRequirements": ["Interpreter"],
        "nationalInsuranceNumber": "ab 12 34 56 c",
    })
}

/// A housing officer: no title and no date of birth, which staff do not need.
pub(crate) fn housing_officer() -> Value {
    json!({
        "firstName": "Amina",
        "surname": "Begum",
        "reason": "New member of staff",
        "personTypes": ["HousingOfficer"],
    })
}

/// The ids of a list of search results or persons (`[{ "id": … }]`), in order.
pub(crate) fn result_ids(results: &Value) -> Vec<String> {
    results
        .as_array()
        .expect("a list of results")
        .iter()
        .map(|result| result["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// A tenant named `first_name surname`, born on `date_of_birth` (`YYYY-MM-DD`), with one active Secure tenure at
/// `address` (a full address ending in its postcode, from which the tenure's postcode is derived).
pub(crate) fn person(first_name: &str, surname: &str, date_of_birth: &str, address: &str) -> Value {
    json!({
        "title": "Mx",
        "firstName": first_name,
        "surname": surname,
        "dateOfBirth": date_of_birth,
        "reason": "New tenancy",
        "personTypes": ["Tenant"],
        "tenures": [{
            "id": Uuid::new_v4(),
            "type": "Secure",
            "startDate": "2012-06-01",
            "assetFullAddress": address,
            "paymentReference": "PR-1",
        }],
    })
}

//! The HTTP behaviour of the API, as functions over a running server ([`Api`]): independent of the store
//! behind it, so the same suite can run over every store. Each function is one test (see `http_suite!`).
//!
//! Assertions about the event feed look at events *after* a cursor taken at the start, or at the events of one
//! person, so they hold on a store shared with other tests too.

use std::collections::{BTreeSet, HashSet};

use futures::future::join_all;
use person_core::api::problem_types as types;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    Api, PROBLEM_JSON, equality, expect_problem, header, housing_officer, iso, raw_get_status, tenant, today, years_ago,
};

pub(crate) async fn creating_a_valid_tenant_answers_201_with_location_etag_and_the_person(api: &Api) {
    let response = api.post("/api/v1/persons", &tenant()).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(header(&response, "etag"), "\"0\"");
    assert!(header(&response, "content-type").starts_with("application/json"));
    let location = header(&response, "location");
    let person: Value = response.json().await.unwrap();
    let id = person["id"].as_str().unwrap();
    assert_eq!(location, format!("/api/v1/persons/{id}"));
    assert!(Uuid::parse_str(id).is_ok());
    assert!(person["personRef"].as_i64().is_some_and(|r| r > 0), "{person}");
    assert_eq!(person["versionNumber"], 0);
    assert_eq!(person["isAMinor"], false);
    assert_eq!(person["title"], "Mr");
    assert_eq!(person["firstName"], "Kimakhe");
    assert_eq!(person["surname"], "O'Neill-Ndlovu");
    assert_eq!(person["dateOfBirth"], iso(years_ago(30)));
    assert_eq!(person["personTypes"], json!(["Tenant"]));
    assert_eq!(person["reason"], "New tenancy");
    let tenures = person["tenures"].as_array().unwrap();
    assert_eq!(tenures.len(), 2);
    assert_eq!(tenures[0]["type"], "Secure", "active tenures come first");
    assert_eq!(tenures[0]["isActive"], true);
    assert_eq!(tenures[0]["postcode"], "E8 1DY", "derived from the address");
    assert_eq!(tenures[1]["type"], "Introductory");
    assert_eq!(tenures[1]["isActive"], false);
    assert!(person["createdAt"].as_str().is_some());
    assert!(person["lastModified"].as_str().is_some());
}

pub(crate) async fn reading_a_created_person_answers_the_same_person_with_etag_0(api: &Api) {
    let created = api.create(&tenant()).await;
    let id = created["id"].as_str().unwrap();

    let response = api.get(&format!("/api/v1/persons/{id}")).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "etag"), "\"0\"");
    let read: Value = response.json().await.unwrap();
    assert_eq!(read, created);
}

pub(crate) async fn a_housing_officer_is_created_without_title_or_date_of_birth(api: &Api) {
    let response = api.post("/api/v1/persons", &housing_officer()).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let person: Value = response.json().await.unwrap();
    assert_eq!(person["personTypes"], json!(["HousingOfficer"]));
    assert_eq!(person["title"], Value::Null);
    assert_eq!(person["isAMinor"], Value::Null, "unknown without a date of birth");
}

pub(crate) async fn an_invalid_create_lists_every_field_error_in_one_422_and_publishes_nothing(api: &Api) {
    let cursor = api.feed_end().await;
    let next_year = iso(today().checked_add_months(chrono::Months::new(12)).unwrap());
    let body = json!({
        "title": "Mr",
        "firstName": "",
        "surname": "",
        "personTypes": [],
        "dateOfBirth": next_year,
        "reason": "New tenancy",
        "tenures": [{ "id": Uuid::new_v4(), "type": "Secure", "startDate": "asdwsad" }],
    });

    let response = api.post("/api/v1/persons", &body).await;

    let problem = expect_problem(response, 422, types::VALIDATION).await;
    let errors = problem["errors"].as_array().unwrap();
    let codes: BTreeSet<&str> = errors.iter().map(|e| e["code"].as_str().unwrap()).collect();
    for code in ["W10", "W14", "W15", "W16"] {
        assert!(codes.contains(code), "{code} missing from {problem}");
    }
    let fields: BTreeSet<&str> = errors.iter().map(|e| e["field"].as_str().unwrap()).collect();
    for field in ["/firstName", "/surname", "/personTypes", "/dateOfBirth", "/tenures/0/startDate"] {
        assert!(fields.contains(field), "{field} missing from {problem}");
    }
    assert!(errors.iter().all(|e| e["message"].as_str().is_some_and(|m| !m.is_empty())));
    assert!(api.events_after(&cursor).await.is_empty(), "an invalid create publishes no event");
}

pub(crate) async fn a_client_supplied_id_that_is_taken_is_a_409(api: &Api) {
    let id = Uuid::new_v4().to_string();
    let mut body = tenant();
    body["id"] = json!(id);
    let first = api.create(&body).await;
    assert_eq!(first["id"], id.as_str());
    // Another person under the same id (the same person again would be refused as a duplicate person first).
    let mut other = housing_officer();
    other["id"] = json!(id);

    let response = api.post("/api/v1/persons", &other).await;

    expect_problem(response, 409, types::DUPLICATE_ID).await;
    let anyway = api.post(super::CREATE_ANYWAY, &body).await;
    expect_problem(anyway, 409, types::DUPLICATE_ID).await;
}

pub(crate) async fn reading_an_unknown_id_is_a_404_problem(api: &Api) {
    let response = api.get(&format!("/api/v1/persons/{}", Uuid::new_v4())).await;

    expect_problem(response, 404, types::NOT_FOUND).await;
}

pub(crate) async fn reading_an_id_that_is_not_a_uuid_is_a_400_problem(api: &Api) {
    let response = api.get("/api/v1/persons/12345667890").await;

    let problem = expect_problem(response, 400, types::BAD_REQUEST).await;
    assert_eq!(problem["errors"][0]["field"], "id");
}

pub(crate) async fn a_deleted_person_reads_as_410_and_cannot_be_deleted_again(api: &Api) {
    let id = api.create_tenant().await;
    let path = format!("/api/v1/persons/{id}");

    let deleted = api.client.delete(api.url(&format!("{path}?reason=Created%20in%20error"))).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);

    expect_problem(api.get(&path).await, 410, types::GONE).await;
    let again = api.client.delete(api.url(&path)).send().await.unwrap();
    expect_problem(again, 410, types::GONE).await;
    let patched = api.patch(&id, Some("\"1\""), &json!({ "firstName": "Late" })).await;
    expect_problem(patched, 410, types::GONE).await;

    let history: Value = api.get(&format!("{path}/history")).await.json().await.unwrap();
    let last = history["results"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["eventType"], "PersonDeletedEvent");
    assert_eq!(last["reason"], "Created in error");
    let events = api.events_of(&id).await;
    assert_eq!(events.last().unwrap()["eventType"], "PersonDeletedEvent");
}

pub(crate) async fn a_delete_with_a_stale_if_match_is_a_409(api: &Api) {
    let id = api.create_tenant().await;

    let response =
        api.client.delete(api.url(&format!("/api/v1/persons/{id}"))).header("If-Match", "\"4\"").send().await.unwrap();

    let problem = expect_problem(response, 409, types::VERSION_CONFLICT).await;
    assert_eq!(problem["currentVersion"], 0);
    assert_eq!(api.get(&format!("/api/v1/persons/{id}")).await.status(), StatusCode::OK);
}

pub(crate) async fn patching_with_if_match_changes_the_person_records_history_and_publishes_the_changed_keys(
    api: &Api,
) {
    let id = api.create_tenant().await;
    let death = iso(today().checked_sub_days(chrono::Days::new(10)).unwrap());
    let correlation_id = format!("test-{}", Uuid::new_v4());
    let patch = json!({
        "firstName": "Thandi",
        "surname": "Mokoena",
        "title": "Ms",
        "dateOfDeath": death,
        "reason": "Name corrected",
    });

    let response = api
        .client
        .patch(api.url(&format!("/api/v1/persons/{id}")))
        .header("If-Match", "\"0\"")
        .header("x-correlation-id", &correlation_id)
        .json(&patch)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&response, "etag"), "\"1\"");
    assert_eq!(header(&response, "x-correlation-id"), correlation_id);

    let read = api.get(&format!("/api/v1/persons/{id}")).await;
    assert_eq!(header(&read, "etag"), "\"1\"");
    let person: Value = read.json().await.unwrap();
    assert_eq!(person["firstName"], "Thandi");
    assert_eq!(person["surname"], "Mokoena");
    assert_eq!(person["title"], "Ms");
    assert_eq!(person["dateOfDeath"], death.as_str());
    assert_eq!(person["versionNumber"], 1);
    assert_eq!(person["reason"], "New tenancy", "the creation reason is kept");

    let history: Value = api.get(&format!("/api/v1/persons/{id}/history")).await.json().await.unwrap();
    let versions = history["results"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["versionNumber"], 0);
    assert_eq!(versions[0]["eventType"], "PersonCreatedEvent");
    assert_eq!(versions[1]["versionNumber"], 1);
    assert_eq!(versions[1]["eventType"], "PersonUpdatedEvent");
    assert_eq!(versions[1]["reason"], "Name corrected");
    assert_eq!(versions[1]["oldData"]["firstName"], "Kimakhe");
    assert_eq!(versions[1]["newData"]["firstName"], "Thandi");
    assert_eq!(versions[1]["correlationId"], correlation_id.as_str());

    let events = api.events_of(&id).await;
    assert_eq!(events.len(), 2);
    let updated = &events[1];
    assert_eq!(updated["eventType"], "PersonUpdatedEvent");
    assert_eq!(updated["correlationId"], correlation_id.as_str());
    assert_eq!(updated["sourceDomain"], "Person");
    assert_eq!(updated["version"], "v1");
    let keys = |data: &Value| data.as_object().unwrap().keys().cloned().collect::<BTreeSet<String>>();
    let changed: BTreeSet<String> =
        ["dateOfDeath", "firstName", "surname", "title"].into_iter().map(str::to_owned).collect();
    assert_eq!(keys(&updated["eventData"]["oldData"]), changed);
    assert_eq!(keys(&updated["eventData"]["newData"]), changed);
    assert_eq!(updated["eventData"]["oldData"]["title"], "Mr");
    assert_eq!(updated["eventData"]["newData"]["title"], "Ms");
    assert_eq!(updated["eventData"]["oldData"]["dateOfDeath"], Value::Null);
}

pub(crate) async fn patching_without_if_match_is_428(api: &Api) {
    let id = api.create_tenant().await;

    let response = api.patch(&id, None, &json!({ "firstName": "Thandi" })).await;

    expect_problem(response, 428, types::PRECONDITION_REQUIRED).await;
}

pub(crate) async fn patching_with_a_stale_if_match_is_409_with_the_current_version(api: &Api) {
    let id = api.create_tenant().await;

    let response = api.patch(&id, Some("\"5\""), &json!({ "firstName": "Thandi" })).await;

    let problem = expect_problem(response, 409, types::VERSION_CONFLICT).await;
    assert_eq!(problem["currentVersion"], 0);
}

pub(crate) async fn if_match_is_accepted_quoted_bare_or_weak_and_refused_otherwise(api: &Api) {
    let id = api.create_tenant().await;

    for (version, tag) in ["\"0\"", "1", "W/\"2\""].into_iter().enumerate() {
        let response = api.patch(&id, Some(tag), &json!({ "middleName": format!("Name{version}") })).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "If-Match: {tag}");
        assert_eq!(header(&response, "etag"), format!("\"{}\"", version + 1));
    }
    for tag in ["abc", "*", "\"3", "\"3\", \"4\""] {
        let response = api.patch(&id, Some(tag), &json!({ "middleName": "Other" })).await;
        let problem = expect_problem(response, 400, types::BAD_REQUEST).await;
        assert_eq!(problem["errors"][0]["field"], "If-Match", "If-Match: {tag}");
    }
}

pub(crate) async fn patching_an_unknown_key_is_a_400_naming_the_key(api: &Api) {
    let id = api.create_tenant().await;

    let response = api.patch(&id, Some("\"0\""), &json!({ "FirstName": "Thandi" })).await;

    let problem = expect_problem(response, 400, types::BAD_REQUEST).await;
    assert!(problem["detail"].as_str().unwrap().contains("FirstName"), "{problem}");
    assert_eq!(problem["errors"][0]["field"], "/FirstName");
    assert_eq!(problem["errors"][0]["code"], "unknown_field");
}

pub(crate) async fn patching_a_read_only_key_is_a_400_naming_the_key(api: &Api) {
    let id = api.create_tenant().await;

    let response = api.patch(&id, Some("\"0\""), &json!({ "personRef": 7 })).await;

    let problem = expect_problem(response, 400, types::BAD_REQUEST).await;
    assert!(problem["detail"].as_str().unwrap().contains("personRef"), "{problem}");
    assert_eq!(problem["errors"][0]["code"], "read_only_field");
}

pub(crate) async fn clearing_a_required_field_is_a_422(api: &Api) {
    let id = api.create_tenant().await;

    let response = api.patch(&id, Some("\"0\""), &json!({ "firstName": null })).await;

    let problem = expect_problem(response, 422, types::VALIDATION).await;
    assert_eq!(problem["errors"][0]["field"], "/firstName");
    assert_eq!(problem["errors"][0]["code"], "W15");
}

pub(crate) async fn an_identical_patch_is_204_without_a_new_version_or_event(api: &Api) {
    let id = api.create_tenant().await;
    let cursor = api.feed_end().await;

    let response = api.patch(&id, Some("\"0\""), &json!({ "firstName": "Kimakhe", "title": "Mr" })).await;

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&response, "etag"), "\"0\"");
    let person: Value = api.get(&format!("/api/v1/persons/{id}")).await.json().await.unwrap();
    assert_eq!(person["versionNumber"], 0);
    assert!(api.events_after(&cursor).await.is_empty(), "no event for a patch that changes nothing");
}

pub(crate) async fn prefer_return_representation_answers_200_with_the_person(api: &Api) {
    let id = api.create_tenant().await;

    let response = api
        .client
        .patch(api.url(&format!("/api/v1/persons/{id}")))
        .header("If-Match", "\"0\"")
        .header("Prefer", "return=representation")
        .json(&json!({ "preferredFirstName": "Kim" }))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "etag"), "\"1\"");
    assert_eq!(header(&response, "preference-applied"), "return=representation");
    let person: Value = response.json().await.unwrap();
    assert_eq!(person["preferredFirstName"], "Kim");
    assert_eq!(person["versionNumber"], 1);
}

pub(crate) async fn a_merge_patch_content_type_is_accepted(api: &Api) {
    let id = api.create_tenant().await;

    let response = api
        .client
        .patch(api.url(&format!("/api/v1/persons/{id}")))
        .header("If-Match", "0")
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"placeOfBirth": null}"#)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let person: Value = api.get(&format!("/api/v1/persons/{id}")).await.json().await.unwrap();
    assert_eq!(person["placeOfBirth"], Value::Null);
}

pub(crate) async fn twenty_concurrent_patches_with_the_same_if_match_have_exactly_one_winner(api: &Api) {
    let id = api.create_tenant().await;

    let patches = (0..20).map(|i| {
        let body = json!({ "preferredFirstName": format!("Writer{i}") });
        let (api, id) = (api.clone(), id.clone());
        tokio::spawn(async move { api.patch(&id, Some("\"0\""), &body).await })
    });
    let responses: Vec<_> = join_all(patches).await.into_iter().map(Result::unwrap).collect();

    let winners = responses.iter().filter(|r| r.status() == StatusCode::NO_CONTENT).count();
    let conflicts = responses.iter().filter(|r| r.status() == StatusCode::CONFLICT).count();
    assert_eq!((winners, conflicts), (1, 19));
    for response in responses.into_iter().filter(|r| r.status() == StatusCode::CONFLICT) {
        expect_problem(response, 409, types::VERSION_CONFLICT).await;
    }
    let events = api.events_of(&id).await;
    assert_eq!(events.len(), 2, "one create and one update");
}

pub(crate) async fn fifty_concurrent_creates_get_fifty_distinct_person_refs(api: &Api) {
    let creates = (0..50).map(|_| {
        let api = api.clone();
        tokio::spawn(async move { api.create_anyway(&tenant()).await })
    });
    let persons: Vec<Value> = join_all(creates).await.into_iter().map(Result::unwrap).collect();

    let refs: HashSet<i64> = persons.iter().map(|p| p["personRef"].as_i64().unwrap()).collect();
    assert_eq!(refs.len(), 50);
}

pub(crate) async fn a_retry_with_the_same_idempotency_key_replays_the_same_201(api: &Api) {
    let cursor = api.feed_end().await;
    let key = Uuid::new_v4().to_string();
    let body = tenant();
    let send = || api.client.post(api.url("/api/v1/persons")).header("Idempotency-Key", &key).json(&body).send();

    let first = send().await.unwrap();
    let second = send().await.unwrap();

    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(header(&second, "idempotent-replayed"), "true");
    assert_eq!(header(&first, "location"), header(&second, "location"));
    assert_eq!(header(&second, "etag"), "\"0\"");
    let (first, second): (Value, Value) = (first.json().await.unwrap(), second.json().await.unwrap());
    assert_eq!(first["id"], second["id"]);
    assert_eq!(first["personRef"], second["personRef"]);
    let events = api.events_after(&cursor).await;
    assert_eq!(events.len(), 1, "one person, one event");
}

pub(crate) async fn concurrent_retries_with_the_same_idempotency_key_create_one_person(api: &Api) {
    let cursor = api.feed_end().await;
    let key = Uuid::new_v4().to_string();
    let body = tenant();

    let retries = (0..10).map(|_| {
        let request = api.client.post(api.url("/api/v1/persons")).header("Idempotency-Key", &key).json(&body);
        tokio::spawn(async move { request.send().await.unwrap() })
    });
    let responses: Vec<_> = join_all(retries).await.into_iter().map(Result::unwrap).collect();

    let mut ids = HashSet::new();
    for response in responses {
        assert_eq!(response.status(), StatusCode::CREATED);
        let person: Value = response.json().await.unwrap();
        ids.insert(person["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "every retry answers the same person");
    let events = api.events_after(&cursor).await;
    assert_eq!(events.len(), 1, "one person, one event");
}

pub(crate) async fn the_same_idempotency_key_with_another_body_is_a_422(api: &Api) {
    let key = Uuid::new_v4().to_string();
    let post =
        |body: Value| api.client.post(api.url("/api/v1/persons")).header("Idempotency-Key", &key).json(&body).send();
    assert_eq!(post(tenant()).await.unwrap().status(), StatusCode::CREATED);

    let response = post(housing_officer()).await.unwrap();

    expect_problem(response, 422, types::IDEMPOTENCY_KEY_REUSED).await;
}

pub(crate) async fn creating_through_v2_publishes_a_v2_event(api: &Api) {
    let v1 = api.create(&tenant()).await;
    let response = api.post("/api/v2/persons?allowDuplicate=true", &tenant()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(header(&response, "location").starts_with("/api/v1/persons/"));
    let v2: Value = response.json().await.unwrap();

    let v1_events = api.events_of(v1["id"].as_str().unwrap()).await;
    let v2_events = api.events_of(v2["id"].as_str().unwrap()).await;

    assert_eq!(v1_events[0]["version"], "v1");
    assert_eq!(v2_events[0]["version"], "v2");
    assert_eq!(v2_events[0]["eventType"], "PersonCreatedEvent");
    assert_eq!(v2_events[0]["eventData"]["newData"]["personRef"], v2["personRef"]);
}

pub(crate) async fn the_history_of_an_unknown_person_is_a_404(api: &Api) {
    let response = api.get(&format!("/api/v1/persons/{}/history", Uuid::new_v4())).await;

    expect_problem(response, 404, types::NOT_FOUND).await;
}

pub(crate) async fn the_feed_pages_with_a_cursor_and_a_next_link(api: &Api) {
    let cursor = api.feed_end().await;
    for _ in 0..3 {
        api.create_tenant().await;
    }

    let first: Value = api.get(&format!("/api/v1/events?after={cursor}&limit=2")).await.json().await.unwrap();
    let results = first["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    let next_cursor = first["nextCursor"].as_str().unwrap();
    assert_eq!(results[1]["position"].to_string(), next_cursor);
    assert_eq!(first["links"]["next"], format!("/api/v1/events?after={next_cursor}&limit=2"));

    let second: Value = api.get(first["links"]["next"].as_str().unwrap()).await.json().await.unwrap();
    let rest = second["results"].as_array().unwrap();
    assert_eq!(rest.len(), 1);
    assert!(rest[0]["position"].as_u64() > results[1]["position"].as_u64());

    let end: Value = api.get(second["links"]["next"].as_str().unwrap()).await.json().await.unwrap();
    assert!(end["results"].as_array().unwrap().is_empty());
    assert_eq!(end["nextCursor"], second["nextCursor"], "an empty page keeps the cursor");

    let default: Value = api.get("/api/v1/events").await.json().await.unwrap();
    assert!(default["links"]["next"].as_str().unwrap().ends_with("&limit=100"));
}

pub(crate) async fn a_bad_feed_cursor_or_limit_is_a_400_naming_the_parameter(api: &Api) {
    for (query, parameter) in [
        ("after=abc", "after"),
        ("after=-1", "after"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
    ] {
        let response = api.get(&format!("/api/v1/events?{query}")).await;
        let problem = expect_problem(response, 400, types::BAD_REQUEST).await;
        assert_eq!(problem["errors"][0]["field"], parameter, "{query}");
    }
}

pub(crate) async fn a_body_over_one_mebibyte_is_a_413_problem(api: &Api) {
    let padding = "a".repeat(1024 * 1024);
    let body = format!(r#"{{"reason": "{padding}"}}"#);

    let response = api
        .client
        .post(api.url("/api/v1/persons"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();

    expect_problem(response, 413, types::PAYLOAD_TOO_LARGE).await;
}

pub(crate) async fn malformed_json_is_a_400_problem(api: &Api) {
    let response = api
        .client
        .post(api.url("/api/v1/persons"))
        .header("content-type", "application/json")
        .body(r#"{"firstName": "Kim""#)
        .send()
        .await
        .unwrap();

    let problem = expect_problem(response, 400, types::BAD_REQUEST).await;
    assert!(problem["detail"].as_str().unwrap().contains("JSON"), "{problem}");
}

pub(crate) async fn a_body_that_is_not_json_is_a_415_problem(api: &Api) {
    let id = api.create_tenant().await;
    let post = api.client.post(api.url("/api/v1/persons")).header("content-type", "text/plain").body("{}").send();
    expect_problem(post.await.unwrap(), 415, types::UNSUPPORTED_MEDIA_TYPE).await;

    let without_type = api.client.post(api.url("/api/v1/persons")).body("{}").send().await.unwrap();
    expect_problem(without_type, 415, types::UNSUPPORTED_MEDIA_TYPE).await;

    let patch = api
        .client
        .patch(api.url(&format!("/api/v1/persons/{id}")))
        .header("If-Match", "\"0\"")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("firstName=Kim")
        .send()
        .await
        .unwrap();
    expect_problem(patch, 415, types::UNSUPPORTED_MEDIA_TYPE).await;
}

pub(crate) async fn an_unknown_enum_value_is_a_400_naming_the_field(api: &Api) {
    let mut body = tenant();
    body["title"] = json!("Sir");

    let response = api.post("/api/v1/persons", &body).await;

    let problem = expect_problem(response, 400, types::BAD_REQUEST).await;
    assert_eq!(problem["errors"][0]["field"], "/title");
    assert_eq!(problem["errors"][0]["code"], "invalid_value");
    assert!(problem["detail"].as_str().unwrap().contains("/title"), "{problem}");
    assert!(!problem.to_string().contains("Sir"), "the submitted value is not echoed: {problem}");
}

pub(crate) async fn a_wrong_type_is_a_400_naming_the_field(api: &Api) {
    let mut body = tenant();
    body["tenures"][1]["startDate"] = json!(20150301);

    let response = api.post("/api/v1/persons", &body).await;

    let problem = expect_problem(response, 400, types::BAD_REQUEST).await;
    assert_eq!(problem["errors"][0]["field"], "/tenures/1/startDate");
}

pub(crate) async fn error_responses_echo_the_callers_correlation_id(api: &Api) {
    let correlation_id = "complaint-4711";
    let requests = [
        api.client.get(api.url(&format!("/api/v1/persons/{}", Uuid::new_v4()))),
        api.client.get(api.url("/api/v1/persons/not-a-uuid")),
        api.client.post(api.url("/api/v1/persons")).json(&json!({ "surname": "" })),
        api.client.get(api.url("/no/such/path")),
        api.client.put(api.url("/api/v1/persons")),
    ];

    for request in requests {
        let response = request.header("x-correlation-id", correlation_id).send().await.unwrap();
        assert!(response.status().is_client_error());
        assert_eq!(header(&response, "content-type"), PROBLEM_JSON);
        assert_eq!(header(&response, "x-correlation-id"), correlation_id);
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["correlationId"], correlation_id);
    }
}

pub(crate) async fn a_correlation_id_is_generated_when_none_or_an_invalid_one_is_sent(api: &Api) {
    let none = api.get("/livez").await;
    let generated = header(&none, "x-correlation-id");
    assert!(Uuid::parse_str(&generated).is_ok(), "a UUID is generated: {generated:?}");

    let too_long = "x".repeat(129);
    let replaced = api.client.get(api.url("/livez")).header("x-correlation-id", &too_long).send().await.unwrap();
    let echoed = header(&replaced, "x-correlation-id");
    assert_ne!(echoed, too_long);
    assert!(Uuid::parse_str(&echoed).is_ok());

    let created = api.post("/api/v1/persons", &tenant()).await;
    let correlation_id = header(&created, "x-correlation-id");
    let person: Value = created.json().await.unwrap();
    let events = api.events_of(person["id"].as_str().unwrap()).await;
    assert_eq!(events[0]["correlationId"], correlation_id.as_str(), "the generated id reaches the event");
}

pub(crate) async fn unknown_paths_are_404_problems_and_wrong_methods_405_problems(api: &Api) {
    expect_problem(api.get("/api/v1/nothing-here").await, 404, types::NOT_FOUND).await;

    let put = api.client.put(api.url(&format!("/api/v1/persons/{}", Uuid::new_v4()))).send().await.unwrap();
    let allow = header(&put, "allow");
    for method in ["GET", "PATCH", "DELETE"] {
        assert!(allow.contains(method), "Allow: {allow}");
    }
    expect_problem(put, 405, types::METHOD_NOT_ALLOWED).await;
    let delete_all = api.client.delete(api.url("/api/v1/persons")).send().await.unwrap();
    expect_problem(delete_all, 405, types::METHOD_NOT_ALLOWED).await;
}

pub(crate) async fn the_openapi_document_is_3_1_and_lists_every_path(api: &Api) {
    let response = api.get("/swagger/v1/swagger.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();

    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/v1/persons", &["get", "post"][..]),
        ("/api/v2/persons", &["post"]),
        ("/api/v1/persons/match", &["post"]),
        ("/api/v1/search/persons", &["get"]),
        ("/api/v1/persons/{id}", &["get", "patch", "delete"]),
        ("/api/v1/persons/{id}/merge", &["post"]),
        ("/api/v1/persons/{id}/history", &["get"]),
        ("/api/v1/events", &["get"]),
        ("/api/v1/healthcheck/ping", &["get"]),
        ("/livez", &["get"]),
        ("/readyz", &["get"]),
    ] {
        for method in methods {
            assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} is documented");
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "PersonResponse",
        "PersonDraft",
        "ProblemDetails",
        "FieldError",
        "HistoryResponse",
        "FeedResponse",
        "SearchResponse",
        "HousingSearchResponse",
        "MatchResponse",
        "DuplicatePersonProblem",
    ] {
        assert!(schemas.contains_key(schema), "schema {schema}");
    }
}

pub(crate) async fn swagger_ui_is_served_with_no_external_scripts(api: &Api) {
    let response = api.get("/swagger").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, "content-type").starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    for external in ["src=\"http", "src='http", "href=\"http", "href='http", "//cdn", "unpkg.com", "jsdelivr"] {
        assert!(!html.contains(external), "external reference {external:?} in {html}");
    }

    let initializer = api.get("/swagger/swagger-initializer.js").await;
    assert_eq!(initializer.status(), StatusCode::OK);
    let script = initializer.text().await.unwrap();
    assert!(script.contains("/swagger/v1/swagger.json"), "{script}");
    assert!(!script.contains("https://") && !script.contains("http://"), "{script}");
    assert_eq!(api.get("/swagger/swagger-ui-bundle.js").await.status(), StatusCode::OK);
}

pub(crate) async fn health_endpoints_answer_200(api: &Api) {
    let ping = api.get("/api/v1/healthcheck/ping").await;
    assert_eq!(ping.status(), StatusCode::OK);
    assert_eq!(ping.json::<Value>().await.unwrap(), json!({ "success": true }));
    let live = api.get("/livez").await;
    assert_eq!(live.status(), StatusCode::OK);
    assert_eq!(live.json::<Value>().await.unwrap(), json!({ "status": "live" }));
    let ready = api.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.json::<Value>().await.unwrap(), json!({ "status": "ready", "links": [] }));
}

pub(crate) async fn cors_preflight_allows_the_api_headers_and_exposes_etag_location_and_correlation_id(api: &Api) {
    let preflight = api
        .client
        .request(reqwest::Method::OPTIONS, api.url("/api/v1/persons/x"))
        .header("Origin", "https://frontend.example")
        .header("Access-Control-Request-Method", "PATCH")
        .header("Access-Control-Request-Headers", "if-match, content-type, x-correlation-id")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(header(&preflight, "access-control-allow-origin"), "*");
    assert!(header(&preflight, "access-control-allow-methods").contains("PATCH"));
    assert!(header(&preflight, "access-control-allow-headers").contains("if-match"));

    let read = api.client.get(api.url("/livez")).header("Origin", "https://frontend.example").send().await.unwrap();
    let exposed = header(&read, "access-control-expose-headers").to_ascii_lowercase();
    for name in ["etag", "location", "x-correlation-id"] {
        assert!(exposed.contains(name), "{name} exposed in {exposed:?}");
    }
}

pub(crate) async fn responses_are_gzip_compressed_when_the_client_accepts_it(api: &Api) {
    let compressed =
        api.client.get(api.url("/swagger/v1/swagger.json")).header("Accept-Encoding", "gzip").send().await.unwrap();
    assert_eq!(compressed.status(), StatusCode::OK);
    assert_eq!(header(&compressed, "content-encoding"), "gzip");

    let plain = api.get("/swagger/v1/swagger.json").await;
    assert_eq!(header(&plain, "content-encoding"), "");
}

pub(crate) async fn the_openapi_document_declares_bearer_security_and_the_permission_of_every_protected_operation(
    api: &Api,
) {
    let doc: Value = api.get("/swagger/v1/swagger.json").await.json().await.unwrap();

    let scheme = &doc["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!(scheme["type"], "http", "{scheme}");
    assert_eq!(scheme["scheme"], "bearer", "{scheme}");
    assert_eq!(scheme["bearerFormat"], "JWT", "{scheme}");
    for (path, method, permission) in [
        ("/api/v1/persons", "get", "persons:read"),
        ("/api/v1/persons", "post", "persons:write"),
        ("/api/v2/persons", "post", "persons:write"),
        ("/api/v1/persons/match", "post", "persons:read"),
        ("/api/v1/search/persons", "get", "persons:read"),
        ("/api/v1/persons/{id}/merge", "post", "persons:merge"),
        ("/api/v1/persons/{id}", "get", "persons:read"),
        ("/api/v1/persons/{id}", "patch", "persons:write"),
        ("/api/v1/persons/{id}", "delete", "persons:delete"),
        ("/api/v1/persons/{id}/history", "get", "persons:read"),
        ("/api/v1/persons/{id}/equality", "get", "equality:read"),
        ("/api/v1/persons/{id}/equality", "put", "equality:write"),
        ("/api/v1/persons/{id}/extended/{area}", "get", "extended:{area}:read"),
        ("/api/v1/persons/{id}/extended/{area}", "put", "extended:{area}:write"),
        ("/api/v1/persons/{id}/extended/{area}", "delete", "extended:{area}:write"),
        ("/api/v1/persons/{id}/processing-restriction", "put", "admin"),
        ("/api/v1/persons/{id}/access-log", "get", "audit:read"),
        ("/api/v1/persons/{id}/subject-access", "get", "audit:read"),
        ("/api/v1/events", "get", "events:read"),
    ] {
        let operation = &doc["paths"][path][method];
        assert_eq!(operation["security"], json!([{ "bearerAuth": [] }]), "{method} {path}");
        let description = operation["description"].as_str().unwrap_or_default();
        assert!(description.contains(&format!("`{permission}`")), "{method} {path}: {description}");
        for status in ["401", "403"] {
            assert!(operation["responses"][status].is_object(), "{method} {path} documents {status}");
        }
    }
    for path in ["/api/v1/healthcheck/ping", "/livez", "/readyz"] {
        assert!(doc["paths"][path]["get"]["security"].is_null(), "{path} is public");
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in ["EqualityData", "AccessLogResponse", "SubjectAccessResponse", "AuditEntry", "RestrictionRequest"] {
        assert!(schemas.contains_key(schema), "schema {schema}");
    }
}

pub(crate) async fn equality_data_round_trips_with_etag_and_if_match(api: &Api) {
    let id = api.create_tenant().await;
    let path = format!("/api/v1/persons/{id}/equality");
    expect_problem(api.get(&path).await, 404, types::NOT_FOUND).await;
    let nothing_to_match =
        expect_problem(api.put(&path, Some("\"0\""), &equality()).await, 409, types::VERSION_CONFLICT).await;
    assert!(nothing_to_match.get("currentVersion").is_none(), "{nothing_to_match}");

    let created = api.put(&path, None, &equality()).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(header(&created, "etag"), "\"0\"");
    assert_eq!(header(&created, "location"), path);
    let stored: Value = created.json().await.unwrap();
    assert_eq!(stored["nationalities"], json!(["GB", "IE"]));
    let read = api.get(&path).await;
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(header(&read, "etag"), "\"0\"");
    assert_eq!(read.json::<Value>().await.unwrap(), stored);

    let mut changed = equality();
    changed["religion"] = json!({ "code": "buddhist" });
    expect_problem(api.put(&path, None, &changed).await, 428, types::PRECONDITION_REQUIRED).await;
    let stale = expect_problem(api.put(&path, Some("\"7\""), &changed).await, 409, types::VERSION_CONFLICT).await;
    assert_eq!(stale["currentVersion"], 0);
    let replaced = api.put(&path, Some("\"0\""), &changed).await;
    assert_eq!(replaced.status(), StatusCode::OK);
    assert_eq!(header(&replaced, "etag"), "\"1\"");
    assert_eq!(replaced.json::<Value>().await.unwrap()["religion"]["code"], "buddhist");
    let lost_update =
        expect_problem(api.put(&path, Some("\"0\""), &equality()).await, 409, types::VERSION_CONFLICT).await;
    assert_eq!(lost_update["currentVersion"], 1);
    let reread = api.get(&path).await;
    assert_eq!(header(&reread, "etag"), "\"1\"");
    assert_eq!(reread.json::<Value>().await.unwrap()["religion"]["code"], "buddhist");
}

pub(crate) async fn invalid_national_insurance_numbers_and_unknown_ethnicity_codes_are_422_naming_the_field(api: &Api) {
    let id = api.create_tenant().await;
    let path = format!("/api/v1/persons/{id}/equality");

    for nino in ["BG123456A", "QQ12345", "AB123456E"] {
        let mut body = equality();
        body["nationalInsuranceNumber"] = json!(nino);
        let problem = expect_problem(api.put(&path, None, &body).await, 422, types::VALIDATION).await;
        assert_eq!(problem["errors"][0]["field"], "/nationalInsuranceNumber", "{nino}: {problem}");
        assert_eq!(problem["errors"][0]["code"], "invalid_nino", "{nino}: {problem}");
        assert!(!problem.to_string().contains(nino), "the number is not echoed: {problem}");
    }
    let mut body = equality();
    body["ethnicity"] = json!({ "code": "martian" });
    let problem = expect_problem(api.put(&path, None, &body).await, 422, types::VALIDATION).await;
    assert_eq!(problem["errors"][0]["field"], "/ethnicity/code", "{problem}");
    assert_eq!(problem["errors"][0]["code"], "unknown_code", "{problem}");

    expect_problem(api.get(&path).await, 404, types::NOT_FOUND).await;
}

pub(crate) async fn a_national_insurance_number_is_stored_in_canonical_form(api: &Api) {
    let id = api.create_tenant().await;
    let path = format!("/api/v1/persons/{id}/equality");

    let response = api.put(&path, None, &json!({ "nationalInsuranceNumber": "ab 12 34 56 c" })).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let read: Value = api.get(&path).await.json().await.unwrap();
    assert_eq!(read, json!({ "nationalInsuranceNumber": "AB123456C" }));
}

pub(crate) async fn equality_values_never_appear_in_person_responses_history_or_events(api: &Api) {
    let id = api.create_tenant().await;
    let path = format!("/api/v1/persons/{id}");
    assert_eq!(api.put(&format!("{path}/equality"), None, &equality()).await.status(), StatusCode::CREATED);
    let patched = api.patch(&id, Some("\"0\""), &json!({ "middleName": "Thandeka" })).await;
    assert_eq!(patched.status(), StatusCode::NO_CONTENT);

    let person = api.get(&path).await.text().await.unwrap();
    let history = api.get(&format!("{path}/history")).await.text().await.unwrap();
    let events = serde_json::to_string(&api.events_of(&id).await).unwrap();

    for (what, text) in [("person", &person), ("history", &history), ("events", &events)] {
        for value in ["AB123456C", "bisexual", "white-other", "Polish", "nationalInsuranceNumber", "equality"] {
            assert!(!text.contains(value), "{value} in the {what}: {text}");
        }
    }
}

pub(crate) async fn extended_data_is_versioned_per_area_and_can_be_deleted(api: &Api) {
    let id = api.create_tenant().await;
    let path = format!("/api/v1/persons/{id}/extended/social-care");
    let document = json!({ "caseId": "SC-1", "flags": ["carer"], "plan": { "reviewDue": "2027-01-01" } });
    expect_problem(api.get(&path).await, 404, types::NOT_FOUND).await;

    let created = api.put(&path, None, &document).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(header(&created, "etag"), "\"0\"");
    let read = api.get(&path).await;
    assert_eq!(header(&read, "etag"), "\"0\"");
    assert_eq!(read.json::<Value>().await.unwrap(), document);
    let other_area = format!("/api/v1/persons/{id}/extended/housing-needs");
    expect_problem(api.get(&other_area).await, 404, types::NOT_FOUND).await;

    let changed = json!({ "caseId": "SC-1", "flags": [] });
    expect_problem(api.put(&path, None, &changed).await, 428, types::PRECONDITION_REQUIRED).await;
    let replaced = api.put(&path, Some("\"0\""), &changed).await;
    assert_eq!(replaced.status(), StatusCode::OK);
    assert_eq!(header(&replaced, "etag"), "\"1\"");
    assert_eq!(api.get(&path).await.json::<Value>().await.unwrap(), changed);

    let stale = api.client.delete(api.url(&path)).header("If-Match", "\"0\"").send().await.unwrap();
    assert_eq!(expect_problem(stale, 409, types::VERSION_CONFLICT).await["currentVersion"], 1);
    assert_eq!(api.delete(&path).await.status(), StatusCode::NO_CONTENT);
    expect_problem(api.get(&path).await, 404, types::NOT_FOUND).await;
    expect_problem(api.delete(&path).await, 404, types::NOT_FOUND).await;
    assert_eq!(api.put(&path, None, &document).await.status(), StatusCode::CREATED, "stored afresh after a delete");
}

pub(crate) async fn invalid_area_names_are_400_and_never_a_path_traversal(api: &Api) {
    let id = api.create_tenant().await;

    for area in ["Social", "a.b", "social_care", "-care", "care-", "so--cial", "a%3Ab", "caf%C3%A9"] {
        let path = format!("/api/v1/persons/{id}/extended/{area}");
        let problem = expect_problem(api.get(&path).await, 400, types::BAD_REQUEST).await;
        assert_eq!(problem["errors"][0]["field"], "area", "{area}: {problem}");
        let put = api.put(&path, None, &json!({ "x": 1 })).await;
        assert_eq!(put.status(), StatusCode::BAD_REQUEST, "{area}");
    }
    // Sent as raw HTTP: an HTTP client would resolve the dot segments before sending.
    for area in ["..", "%2e%2e", "%2E%2E", "..%2f..%2fetc%2fpasswd", "%2e%2e%2fequality"] {
        let status = raw_get_status(api, &format!("/api/v1/persons/{id}/extended/{area}")).await;
        assert_eq!(status, 400, "{area}");
    }
}

pub(crate) async fn an_extended_document_must_be_a_json_object_of_at_most_64_kib(api: &Api) {
    let id = api.create_tenant().await;
    let path = format!("/api/v1/persons/{id}/extended/social-care");

    let too_large = json!({ "notes": "a".repeat(64 * 1024) });
    expect_problem(api.put(&path, None, &too_large).await, 413, types::PAYLOAD_TOO_LARGE).await;
    for not_an_object in [json!([1, 2, 3]), json!("text"), json!(42)] {
        expect_problem(api.put(&path, None, &not_an_object).await, 400, types::BAD_REQUEST).await;
    }
    let just_under = json!({ "notes": "a".repeat(64 * 1024 - 20) });
    assert_eq!(api.put(&path, None, &just_under).await.status(), StatusCode::CREATED);
}

pub(crate) async fn restricting_processing_is_a_new_version_shown_in_the_person(api: &Api) {
    let id = api.create_tenant().await;
    let path = format!("/api/v1/persons/{id}/processing-restriction");
    let restrict = json!({ "restricted": true, "reason": "The data subject contests the record's accuracy" });

    let response = api.put(&path, Some("\"0\""), &restrict).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "etag"), "\"1\"");
    let person: Value = response.json().await.unwrap();
    assert_eq!(person["processingRestricted"], true);
    assert_eq!(person["versionNumber"], 1);
    let read: Value = api.get(&format!("/api/v1/persons/{id}")).await.json().await.unwrap();
    assert_eq!(read["processingRestricted"], true);
    let history: Value = api.get(&format!("/api/v1/persons/{id}/history")).await.json().await.unwrap();
    let last = history["results"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["reason"], "The data subject contests the record's accuracy");

    let again = api.put(&path, None, &restrict).await;
    assert_eq!(header(&again, "etag"), "\"1\"", "the same value changes nothing");
    let stale = expect_problem(
        api.put(&path, Some("\"0\""), &json!({ "restricted": false })).await,
        409,
        types::VERSION_CONFLICT,
    )
    .await;
    assert_eq!(stale["currentVersion"], 1);
    let missing = expect_problem(api.put(&path, None, &json!({})).await, 422, types::VALIDATION).await;
    assert_eq!(missing["errors"][0]["field"], "/restricted");
    let wrong_type =
        expect_problem(api.put(&path, None, &json!({ "restricted": "yes" })).await, 400, types::BAD_REQUEST).await;
    assert_eq!(wrong_type["errors"][0]["field"], "/restricted");
    let unknown = expect_problem(
        api.put(&path, None, &json!({ "restricted": true, "colour": 1 })).await,
        400,
        types::BAD_REQUEST,
    )
    .await;
    assert_eq!(unknown["errors"][0]["field"], "/colour");

    let lifted = api.put(&path, Some("\"1\""), &json!({ "restricted": false })).await;
    assert_eq!(header(&lifted, "etag"), "\"2\"");
    assert_eq!(lifted.json::<Value>().await.unwrap()["processingRestricted"], false);
}

pub(crate) async fn the_access_log_lists_what_was_done_to_a_person_with_purpose_and_pages_with_a_cursor(api: &Api) {
    let created = api
        .client
        .post(api.url("/api/v1/persons"))
        .header("x-correlation-id", "log-create")
        .json(&tenant())
        .send()
        .await
        .unwrap();
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let person = format!("/api/v1/persons/{id}");
    let read = api
        .client
        .get(api.url(&person))
        .header("x-correlation-id", "log-read")
        .header("x-purpose", "Tenancy audit 2026")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let written = api
        .client
        .put(api.url(&format!("{person}/equality")))
        .header("x-correlation-id", "log-equality")
        .json(&equality())
        .send()
        .await
        .unwrap();
    assert_eq!(written.status(), StatusCode::CREATED);

    let first: Value = api.get(&format!("{person}/access-log?limit=2")).await.json().await.unwrap();
    let page = first["results"].as_array().unwrap();
    assert_eq!(page.len(), 2);
    let cursor = first["nextCursor"].as_str().unwrap();
    assert_eq!(page[1]["position"].to_string(), cursor);
    assert_eq!(first["links"]["next"], format!("{person}/access-log?after={cursor}&limit=2"));
    let mut entries: Vec<Value> = page.clone();
    let mut next = first["links"]["next"].as_str().unwrap().to_owned();
    // Only the first page's read is recorded, so following the links ends at an empty page.
    loop {
        let page: Value = api.get(&next).await.json().await.unwrap();
        let results = page["results"].as_array().unwrap();
        if results.is_empty() {
            break;
        }
        entries.extend(results.iter().cloned());
        next = page["links"]["next"].as_str().unwrap().to_owned();
    }
    let log_reads = entries.iter().filter(|r| r["entry"]["action"] == "access-log-read").count();
    assert_eq!(log_reads, 1, "only the first page's read is recorded");

    let find = |action: &str, correlation_id: &str| {
        entries
            .iter()
            .map(|record| &record["entry"])
            .find(|entry| entry["action"] == action && entry["correlationId"] == correlation_id)
            .unwrap_or_else(|| panic!("{action} {correlation_id} in {entries:?}"))
            .clone()
    };
    let create = find("person-create", "log-create");
    let read = find("person-read", "log-read");
    let equality_write = find("equality-write", "log-equality");
    assert_eq!(read["purpose"], "Tenancy audit 2026");
    for entry in [&create, &read, &equality_write] {
        assert_eq!(entry["outcome"], "success", "{entry}");
        assert_eq!(entry["personIds"], json!([id]), "{entry}");
        assert!(entry["actor"]["subject"].as_str().is_some_and(|s| !s.is_empty()), "{entry}");
    }
    let positions: Vec<u64> = entries.iter().map(|r| r["position"].as_u64().unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "oldest first: {positions:?}");

    let bad_limit =
        expect_problem(api.get(&format!("{person}/access-log?limit=0")).await, 400, types::BAD_REQUEST).await;
    assert_eq!(bad_limit["errors"][0]["field"], "limit");
}

pub(crate) async fn a_bad_x_purpose_header_is_a_400_naming_the_header(api: &Api) {
    let id = api.create_tenant().await;
    let path = format!("/api/v1/persons/{id}");

    for purpose in [" ".to_owned(), "x".repeat(201)] {
        let response = api.client.get(api.url(&path)).header("x-purpose", &purpose).send().await.unwrap();
        let problem = expect_problem(response, 400, types::BAD_REQUEST).await;
        assert_eq!(problem["errors"][0]["field"], "x-purpose");
    }
    let non_ascii = reqwest::header::HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap();
    let response = api.client.get(api.url(&path)).header("x-purpose", non_ascii).send().await.unwrap();
    expect_problem(response, 400, types::BAD_REQUEST).await;
    let fine = api.client.get(api.url(&path)).header("x-purpose", "x".repeat(200)).send().await.unwrap();
    assert_eq!(fine.status(), StatusCode::OK);
}

pub(crate) async fn the_subject_access_export_holds_record_equality_extended_history_and_disclosure_log(api: &Api) {
    let id = api.create_tenant().await;
    let person = format!("/api/v1/persons/{id}");
    assert_eq!(api.put(&format!("{person}/equality"), None, &equality()).await.status(), StatusCode::CREATED);
    let case = json!({ "caseId": "SC-9" });
    assert_eq!(api.put(&format!("{person}/extended/social-care"), None, &case).await.status(), StatusCode::CREATED);
    assert_eq!(
        api.patch(&id, Some("\"0\""), &json!({ "middleName": "Thandeka" })).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(api.get(&person).await.status(), StatusCode::OK);

    let response = api.get(&format!("{person}/subject-access")).await;

    assert_eq!(response.status(), StatusCode::OK);
    let export: Value = response.json().await.unwrap();
    assert_eq!(export["person"]["id"], id.as_str());
    assert_eq!(export["person"]["middleName"], "Thandeka");
    assert_eq!(export["equality"]["nationalInsuranceNumber"], "AB123456C");
    assert_eq!(export["extended"]["social-care"], json!({ "document": case, "version": 0 }));
    let history = export["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["newData"], json!({ "middleName": "Thandeka" }));
    let actions: Vec<&str> =
        export["disclosureLog"].as_array().unwrap().iter().map(|r| r["entry"]["action"].as_str().unwrap()).collect();
    for action in ["person-create", "equality-write", "extended-write", "person-update", "person-read"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }

    let again: Value = api.get(&format!("{person}/subject-access")).await.json().await.unwrap();
    let again_actions: Vec<&str> =
        again["disclosureLog"].as_array().unwrap().iter().map(|r| r["entry"]["action"].as_str().unwrap()).collect();
    assert!(again_actions.contains(&"subject-access"), "the first export is disclosed: {again_actions:?}");
    assert_eq!(again["equality"], export["equality"]);
}

pub(crate) async fn documents_of_an_unknown_person_are_404(api: &Api) {
    let person = format!("/api/v1/persons/{}", Uuid::new_v4());

    expect_problem(api.get(&format!("{person}/equality")).await, 404, types::NOT_FOUND).await;
    expect_problem(api.put(&format!("{person}/equality"), None, &equality()).await, 404, types::NOT_FOUND).await;
    expect_problem(api.get(&format!("{person}/extended/social-care")).await, 404, types::NOT_FOUND).await;
    expect_problem(api.put(&format!("{person}/extended/social-care"), None, &json!({})).await, 404, types::NOT_FOUND)
        .await;
    expect_problem(api.get(&format!("{person}/access-log")).await, 404, types::NOT_FOUND).await;
    expect_problem(api.get(&format!("{person}/subject-access")).await, 404, types::NOT_FOUND).await;
    let restrict = api.put(&format!("{person}/processing-restriction"), None, &json!({ "restricted": true })).await;
    expect_problem(restrict, 404, types::NOT_FOUND).await;
}

/// Sums the `count` of every entry of `list` (statements or operations) whose name is `name`, or of all.
fn executions(catalogue: &Value, list: &str, name: Option<&str>) -> u64 {
    catalogue[list]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| name.is_none_or(|name| entry["name"] == name))
        .map(|entry| entry["count"].as_u64().unwrap())
        .sum()
}

pub(crate) async fn the_query_catalogue_lists_every_statement_with_statistics_that_move_with_requests(api: &Api) {
    let id = api.create_tenant().await;
    let before: Value = api.get("/api/v1/admin/queries").await.json().await.unwrap();

    let read = api.get(&format!("/api/v1/persons/{id}")).await;
    assert_eq!(read.status(), StatusCode::OK);
    let after: Value = api.get("/api/v1/admin/queries").await.json().await.unwrap();

    assert!(after["store"].as_str().is_some_and(|s| !s.is_empty()), "{after}");
    assert_eq!(after["uncatalogued"], json!([]), "every statement the store ran is catalogued");
    let statements = after["statements"].as_array().unwrap();
    let names: HashSet<&str> = statements.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), statements.len(), "each statement is listed once");
    for statement in statements {
        assert!(statement["statement"].as_str().is_some_and(|text| !text.trim().is_empty()), "{statement}");
        for key in ["count", "errors", "meanMs", "p95Ms", "maxMs"] {
            assert!(statement[key].is_number(), "{key} in {statement}");
        }
    }
    assert!(
        executions(&after, "operations", Some("person.get")) > executions(&before, "operations", Some("person.get")),
        "the read moved the person.get operation"
    );
    if !statements.is_empty() {
        assert!(
            executions(&after, "statements", None) > executions(&before, "statements", None),
            "the read ran statements, and they were counted"
        );
    }
}

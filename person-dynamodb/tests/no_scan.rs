//! No request path issues a Scan: a representative workload through the service (create with the duplicate
//! check, read, search, match, update, documents, history, feed, access log, subject access, restriction,
//! merge, delete) and the reporting and relay ports run against the store, and the SDK operations the store sent
//! are inspected (an interceptor counts each by its API name). Skipped unless `PERSON_TEST_DYNAMODB_ENDPOINT` is set.

#[expect(dead_code, reason = "each test crate uses a different part of the shared helpers")]
mod common;

use std::sync::Arc;

use common::fresh_store;
use person_core::event::Actor;
use person_core::ports::{RandomIds, RelayRepository, ReportQuery, ReportingRepository, Repositories, SystemClock};
use person_core::reference::CrossReference;
use person_core::service::{CreateOptions, ReferenceRequest, SearchQuery};
use person_core::{Permission, PersonService, RequestContext, ServiceArea};

fn body(value: serde_json::Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_path_issues_a_scan() {
    let Some(store) = fresh_store().await else { return };
    let service = PersonService::new(
        Repositories::from_store(Arc::new(store.store.clone())),
        Arc::new(SystemClock),
        Arc::new(RandomIds),
    );
    let actor = Actor { subject: "officer".to_owned(), name: "Officer".to_owned(), email: "o@example.org".to_owned() };
    let ctx = RequestContext::new(actor, [Permission::Admin].into_iter().collect(), "corr-no-scan");
    let zoe = body(serde_json::json!({
        "title": "Ms", "firstName": "Zoë", "surname": "O'Neill", "dateOfBirth": "1990-05-17",
        "personTypes": ["Tenant"], "reason": "New tenancy"
    }));
    let zoe_again = body(serde_json::json!({
        "title": "Ms", "firstName": "Zoe", "surname": "ONeill", "dateOfBirth": "1990-05-17",
        "personTypes": ["Tenant"], "reason": "Typed again"
    }));

    let created = service.create(&ctx, &zoe, CreateOptions::default()).await.expect("create").person;
    let duplicate = service
        .create(&ctx, &zoe_again, CreateOptions { allow_duplicate: true, ..CreateOptions::default() })
        .await
        .expect("allowed duplicate")
        .person;
    let refused = service.create(&ctx, &zoe, CreateOptions::default()).await;
    assert!(refused.is_err(), "the same person again is refused as a duplicate");
    service.get(&ctx, created.id).await.expect("get");
    let query = SearchQuery {
        first_name: Some("Zoe".to_owned()),
        last_name: Some("O'Neill".to_owned()),
        limit: 20,
        ..SearchQuery::default()
    };
    let found = service.search(&ctx, query).await.expect("search");
    assert!(!found.hits.is_empty(), "search finds the person");
    let probe = body(serde_json::json!({ "firstName": "Zoe", "surname": "O'Neill", "dateOfBirth": "1990-05-17" }));
    service.match_person(&ctx, &probe).await.expect("match");
    service
        .update(&ctx, created.id, 0, &body(serde_json::json!({ "middleName": "Ann", "reason": "Correction" })))
        .await
        .expect("update");
    service
        .put_equality(&ctx, created.id, None, &body(serde_json::json!({ "nationalInsuranceNumber": "AB123456C" })))
        .await
        .expect("equality write");
    service.equality(&ctx, created.id).await.expect("equality read");
    let area = ServiceArea::parse("social-care").expect("valid area");
    service
        .put_extended(&ctx, duplicate.id, &area, None, &body(serde_json::json!({ "plan": "weekly visits" })))
        .await
        .expect("extended write");
    service.extended(&ctx, duplicate.id, &area).await.expect("extended read");
    let tenure = CrossReference::parse("tenure:T-1").expect("valid reference");
    let repairs = CrossReference::parse("repairs:R-1").expect("valid reference");
    service
        .add_reference(&ctx, created.id, None, ReferenceRequest { reference: tenure.clone(), reason: None })
        .await
        .expect("add reference");
    service
        .add_reference(&ctx, duplicate.id, None, ReferenceRequest { reference: repairs.clone(), reason: None })
        .await
        .expect("add reference");
    let found = service.search_by_reference(&ctx, &repairs).await.expect("search by reference");
    assert_eq!(found.hits.len(), 1, "the reference finds its holder");
    service.references(&ctx, created.id).await.expect("list references");
    let current = service.remove_reference(&ctx, created.id, None, &tenure, None).await.expect("remove reference");
    service.history(&ctx, created.id).await.expect("history");
    service.events(&ctx, 0, 100).await.expect("events");
    service.access_log(&ctx, created.id, 0, 100).await.expect("access log");
    service.subject_access(&ctx, created.id).await.expect("subject access");
    let merge = body(serde_json::json!({ "duplicateId": duplicate.id, "reason": "Same person" }));
    let survivor = service.merge(&ctx, created.id, current.person.version_number, &merge).await.expect("merge");
    let moved = service.search_by_reference(&ctx, &repairs).await.expect("search by reference");
    assert_eq!(moved.hits.iter().map(|h| h.person.id).collect::<Vec<_>>(), vec![survivor.id], "moved by the merge");
    let restricted =
        service.set_restriction(&ctx, survivor.id, true, Some(survivor.version_number), None).await.expect("restrict");
    service
        .delete(&ctx, survivor.id, Some(restricted.person.version_number), Some("Left".to_owned()))
        .await
        .expect("delete");
    let released = service.search_by_reference(&ctx, &repairs).await.expect("search by reference");
    assert!(released.hits.is_empty(), "a deleted person's references are released");
    service.ready().await.expect("ready");
    // Reports and the event relay (read by the server's reporting endpoints and relay task, through the ports).
    let everything = ReportQuery { modified_since: None, after: None, offset: 0, limit: 10 };
    let page = store.report_persons(&everything).await.expect("report page");
    assert_eq!(page.len(), 2, "both persons are reported");
    let after_first = ReportQuery { after: Some(page[0].id), offset: 1, ..everything };
    store.report_persons(&after_first).await.expect("report page by keyset and offset");
    let since = ReportQuery { modified_since: Some(chrono::Utc::now()), ..everything };
    store.report_persons(&since).await.expect("incremental report page");
    store.report_counts(None).await.expect("report counts");
    let now = chrono::Utc::now();
    let ttl = chrono::TimeDelta::seconds(30);
    store.acquire_relay_lease("sns", "a", now, ttl).await.expect("acquire").expect("a free lease");
    store.advance_relay("sns", "a", 1, now, ttl).await.expect("advance");
    store.relay_state("sns").await.expect("relay state");
    store.release_relay_lease("sns", "a").await.expect("release");

    let sent = store.sdk_operations_sent();
    assert!(!sent.contains_key("Scan"), "a request path issued a Scan: {sent:?}");
    assert!(!sent.contains_key("unknown"), "every operation is recorded by its name: {sent:?}");
    let expected = ["BatchGetItem", "BatchWriteItem", "GetItem", "Query", "TransactWriteItems", "UpdateItem"];
    for operation in ["GetItem", "Query", "TransactWriteItems", "BatchGetItem"] {
        assert!(sent.contains_key(operation), "the workload exercised {operation}: {sent:?}");
    }
    for operation in sent.keys() {
        assert!(
            expected.contains(&operation.as_str()) || operation == "DescribeTable" || operation == "CreateTable",
            "unexpected operation {operation}: {sent:?}"
        );
    }
}

//! What the API writes to its log: one line per request with the correlation id, method, matched route and
//! status, never personal data, equality values or tokens; and the cause of a 500, once. A separate test binary with a single test,
//! because the captured subscriber is thread-local and tracing caches per-callsite interest process-wide:
//! concurrent tests logging without a subscriber would make the capture flaky.

#[expect(
    dead_code,
    unused_macros,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "shared test helpers: this binary uses only the spawn helpers and the faulty store"
)]
mod common;

use person_core::api::problem_types as types;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use common::faults::{Fault, faulty_service};
use common::logs::CapturedLogs;
use common::{expect_problem, in_memory_service, iso, spawn, spawn_in_memory, tokens, years_ago};

#[tokio::test]
async fn requests_are_logged_without_personal_data_and_the_cause_of_a_500_once() {
    let logs = CapturedLogs::default();
    let _guard = logs.start();

    // A create: one line with correlation id, method, route template and status; no names, no query string.
    let api = spawn_in_memory().await;
    let response = api
        .client
        .post(api.url("/api/v1/persons?note=Kimakhe"))
        .header("x-correlation-id", "trace-create")
        .json(&common::tenant())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    let lines = logs.take();
    let completed = lines
        .iter()
        .find(|l| l["fields"]["message"] == "request completed")
        .unwrap_or_else(|| panic!("a completion line in {lines:?}"));
    assert_eq!(completed["span"]["correlation_id"], "trace-create");
    assert_eq!(completed["span"]["method"], "POST");
    assert_eq!(completed["span"]["route"], "/api/v1/persons");
    assert_eq!(completed["fields"]["status"], 201);
    let text = format!("{lines:?}");
    for personal in ["Kimakhe", "O'Neill", "Mare Street", "note="] {
        assert!(!text.contains(personal), "{personal} logged: {text}");
    }

    // A 500: the cause (with its source chain) is logged exactly once, with the correlation id.
    let api = spawn(faulty_service(Fault::Broken)).await;
    let path = format!("/api/v1/persons/{}", Uuid::new_v4());
    let response = api.client.get(api.url(&path)).header("x-correlation-id", "trace-500").send().await.unwrap();
    expect_problem(response, 500, types::INTERNAL).await;

    let causes: Vec<Value> =
        logs.take().into_iter().filter(|l| l.to_string().contains("SECRET driver detail")).collect();
    assert_eq!(causes.len(), 1, "{causes:?}");
    assert_eq!(causes[0]["level"], "ERROR");
    assert_eq!(causes[0]["fields"]["correlation_id"], "trace-500");
    assert_eq!(
        causes[0]["fields"]["error"],
        "unexpected store failure: SECRET driver detail: relation persons_pkey is corrupt"
    );

    // Token mode: tokens (valid or not), names, dates of birth and equality values never reach the log.
    let api = tokens::spawn_with_tokens(in_memory_service()).await;
    let admin_token = tokens::admin_token();
    let admin = api.with_token(&admin_token);
    let id = admin.create_tenant().await;
    let equality = format!("/api/v1/persons/{id}/equality");
    assert_eq!(admin.put(&equality, None, &common::equality()).await.status(), StatusCode::CREATED);
    assert_eq!(admin.get(&equality).await.status(), StatusCode::OK);
    let invalid = serde_json::json!({ "nationalInsuranceNumber": "QQ12345" });
    assert_eq!(admin.put(&equality, Some("\"0\""), &invalid).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused = [tokens::expired_token(), tokens::bad_signature_token(), tokens::alg_none_token()];
    for token in &refused {
        let response =
            api.client.get(api.url(&format!("/api/v1/persons/{id}"))).bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let reader_token = tokens::token("reader", &["persons:read"]);
    let reader = api.with_token(&reader_token);
    assert_eq!(reader.get(&equality).await.status(), StatusCode::FORBIDDEN);
    // Search criteria travel in the query string: names, dates of birth and NI numbers must not reach the log.
    let dob = iso(years_ago(30));
    let search = format!("/api/v1/persons?firstName=Kimakhe&lastName=O%27Neill&dateOfBirth={dob}&nino=AB123456C");
    assert_eq!(admin.get(&search).await.status(), StatusCode::OK);
    assert_eq!(reader.get(&search).await.status(), StatusCode::FORBIDDEN, "nino needs equality:read");
    let matched = admin.post("/api/v1/persons/match", &serde_json::json!({ "firstName": "Kimakhe" })).await;
    assert_eq!(matched.status(), StatusCode::OK);

    let lines = logs.take();
    assert!(lines.iter().any(|l| l["fields"]["message"] == "request completed"), "requests were logged");
    let text = format!("{lines:?}");
    let mut secrets =
        vec!["Kimakhe", "O'Neill", dob.as_str(), "AB123456C", "ab 12 34 56 c", "QQ12345", "white-other", "Polish"];
    let tokens: Vec<&String> = refused.iter().chain([&admin_token, &reader_token]).collect();
    for token in &tokens {
        secrets.extend(token.split('.').filter(|part| part.len() > 8));
    }
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} logged: {text}");
    }
}

//! Authentication and authorisation through HTTP, in token mode: every protected endpoint refuses missing and
//! invalid tokens (401) and tokens lacking its permission (403), and serves tokens holding it; RS256 / ES256
//! public keys; algorithm confusion; the scenarios of issue 3 (housing officer, social care, restriction of
//! processing, access log); and the whole shared suite again, driven with an admin token.
//!
//! Tokens are built at test time: HS256 with a test secret, RS256 / ES256 with the test-only key pairs
//! committed under `tests/fixtures/` (generated once with the `openssl` CLI, see its README).

#[macro_use]
#[expect(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "shared test helpers (this binary does not use the faulty stores); a failed unwrap is a failed test"
)]
mod common;

use jsonwebtoken::{Algorithm, EncodingKey};
use person_core::api::problem_types as types;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use common::tokens::{
    self, EC_PRIVATE, EC_PUBLIC, RSA_PRIVATE, RSA_PUBLIC, SECRET, admin_token, claims, public_key_only, secret_only,
    sign, sign_hs256, spawn_with_tokens, token, token_config,
};
use common::{Api, equality, expect_problem, header, in_memory_service, spawn_with, tenant};

mod with_an_admin_token {
    use super::*;

    http_suite!(tokens::spawn_in_memory_as_admin());
}

/// One protected endpoint, as exercised by the table-driven tests.
struct Endpoint {
    method: Method,
    /// With `{id}` for the fixture person (and a query string where the endpoint needs one).
    path: &'static str,
    /// The permission it needs (also the name of the test group granting exactly it).
    permission: &'static str,
    /// What a refusal is recorded as in the access log.
    action: &'static str,
    /// The body; the string `"{duplicate}"` stands for the id of a second fixture person.
    body: Option<Value>,
    if_match: Option<&'static str>,
    /// The status with the right permission, on the fixture.
    success: u16,
}

fn endpoint(
    method: Method,
    path: &'static str,
    permission: &'static str,
    action: &'static str,
    body: Option<Value>,
    if_match: Option<&'static str>,
    success: u16,
) -> Endpoint {
    Endpoint { method, path, permission, action, body, if_match, success }
}

/// Every endpoint that needs a token.
fn endpoints() -> Vec<Endpoint> {
    use Method as M;
    let person = "/api/v1/persons/{id}";
    vec![
        // The fixture is the same person as `tenant()`: creating it again needs `allowDuplicate`.
        endpoint(M::POST, common::CREATE_ANYWAY, "persons:write", "person-create", Some(tenant()), None, 201),
        endpoint(
            M::POST,
            "/api/v2/persons?allowDuplicate=true",
            "persons:write",
            "person-create",
            Some(tenant()),
            None,
            201,
        ),
        endpoint(M::GET, "/api/v1/persons?lastName=O%27Neill-Ndlovu", "persons:read", "search", None, None, 200),
        endpoint(M::GET, "/api/v1/search/persons?searchText=Kimakhe", "persons:read", "search", None, None, 200),
        endpoint(
            M::POST,
            "/api/v1/persons/match",
            "persons:read",
            "search",
            Some(json!({ "firstName": "Kimakhe", "surname": "O'Neill-Ndlovu" })),
            None,
            200,
        ),
        endpoint(
            M::POST,
            "/api/v1/persons/{id}/merge",
            "persons:merge",
            "person-merge",
            Some(json!({ "duplicateId": "{duplicate}", "reason": "Recorded twice" })),
            Some("\"0\""),
            200,
        ),
        endpoint(M::GET, person, "persons:read", "person-read", None, None, 200),
        endpoint(
            M::PATCH,
            person,
            "persons:write",
            "person-update",
            Some(json!({ "middleName": "Changed" })),
            Some("\"0\""),
            204,
        ),
        endpoint(M::DELETE, person, "persons:delete", "person-delete", None, None, 204),
        endpoint(M::GET, "/api/v1/persons/{id}/history", "persons:read", "history-read", None, None, 200),
        endpoint(M::GET, "/api/v1/persons/{id}/equality", "equality:read", "equality-read", None, None, 200),
        endpoint(
            M::PUT,
            "/api/v1/persons/{id}/equality",
            "equality:write",
            "equality-write",
            Some(equality()),
            Some("\"0\""),
            200,
        ),
        endpoint(
            M::GET,
            "/api/v1/persons/{id}/extended/social-care",
            "extended:social-care:read",
            "extended-read",
            None,
            None,
            200,
        ),
        endpoint(
            M::PUT,
            "/api/v1/persons/{id}/extended/social-care",
            "extended:social-care:write",
            "extended-write",
            Some(json!({ "caseId": "SC-2" })),
            Some("\"0\""),
            200,
        ),
        endpoint(
            M::DELETE,
            "/api/v1/persons/{id}/extended/social-care",
            "extended:social-care:write",
            "extended-delete",
            None,
            None,
            204,
        ),
        endpoint(
            M::PUT,
            "/api/v1/persons/{id}/processing-restriction",
            "admin",
            "person-restrict",
            Some(json!({ "restricted": true })),
            None,
            200,
        ),
        endpoint(M::GET, "/api/v1/persons/{id}/references", "persons:read", "person-read", None, None, 200),
        endpoint(
            M::POST,
            "/api/v1/persons/{id}/references",
            "references:write",
            "person-update",
            Some(json!({ "system": "tenure", "id": "{duplicate}" })),
            None,
            201,
        ),
        // Succeeds only on a person holding the reference: see `every_protected_endpoint_serves_…`.
        endpoint(
            M::DELETE,
            "/api/v1/persons/{id}/references?system=repairs&id=fixture",
            "references:write",
            "person-update",
            None,
            None,
            204,
        ),
        endpoint(M::GET, "/api/v1/persons/{id}/access-log", "audit:read", "access-log-read", None, None, 200),
        endpoint(M::GET, "/api/v1/persons/{id}/subject-access", "audit:read", "subject-access", None, None, 200),
        endpoint(M::GET, "/api/v1/events", "events:read", "events-read", None, None, 200),
    ]
}

/// The fixture persons an endpoint is called on.
struct Fixture {
    /// The person of `{id}`.
    id: String,
    /// A second person (`"{duplicate}"` in a body).
    duplicate: String,
}

impl Endpoint {
    fn path_for(&self, id: &str) -> String {
        self.path.replace("{id}", id)
    }

    #[expect(clippy::unwrap_used, reason = "test helper: a failed request is a failed test")]
    async fn send(&self, api: &Api, fixture: &Fixture, authorization: Option<&str>) -> Response {
        let mut request = api.client.request(self.method.clone(), api.url(&self.path_for(&fixture.id)));
        if let Some(body) = &self.body {
            let text = body.to_string().replace("{duplicate}", &fixture.duplicate);
            request = request.header("content-type", "application/json").body(text);
        }
        if let Some(tag) = self.if_match {
            request = request.header("If-Match", tag);
        }
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        request.send().await.unwrap()
    }
}

/// The fixture person and a second person, created by an admin.
async fn fixtures(admin: &Api) -> Fixture {
    Fixture { id: fixture(admin).await, duplicate: admin.create_tenant().await }
}

/// A person with equality data and social-care data (each at version 0), created by an admin; its id.
async fn fixture(admin: &Api) -> String {
    let id = admin.create_tenant().await;
    let equality = admin.put(&format!("/api/v1/persons/{id}/equality"), None, &equality()).await;
    assert_eq!(equality.status(), StatusCode::CREATED);
    let extended =
        admin.put(&format!("/api/v1/persons/{id}/extended/social-care"), None, &json!({ "caseId": "SC-1" })).await;
    assert_eq!(extended.status(), StatusCode::CREATED);
    id
}

/// A token-mode server over a fresh store, and a client of it acting as admin.
async fn server() -> (Api, Api) {
    let api = spawn_with_tokens(in_memory_service()).await;
    let admin = api.with_token(&admin_token());
    (api, admin)
}

async fn expect_unauthorised(response: Response, sent: Option<&str>) {
    let challenge = header(&response, "www-authenticate");
    assert!(challenge.starts_with("Bearer"), "WWW-Authenticate: {challenge:?}");
    let problem = expect_problem(response, 401, types::UNAUTHORISED).await;
    if let Some(token) = sent.and_then(|value| value.split_whitespace().last()).filter(|t| t.len() > 8) {
        let text = problem.to_string();
        for part in token.split('.').filter(|p| p.len() > 8) {
            assert!(!text.contains(part), "the token is echoed: {problem}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_protected_endpoint_answers_401_without_a_token_or_with_an_invalid_one_and_changes_nothing() {
    let (api, admin) = server().await;
    let fixture = fixtures(&admin).await;
    let id = fixture.id.clone();
    let cursor = admin.feed_end().await;
    let bearer = |token: String| Some(format!("Bearer {token}"));
    let rs256 = sign(
        Algorithm::RS256,
        &EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
        &tokens::admin_claims(tokens::now() + 3600, None),
    );
    let authorizations: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("expired", bearer(tokens::expired_token())),
        ("not yet valid", bearer(tokens::premature_token())),
        ("bad signature", bearer(tokens::bad_signature_token())),
        ("tampered payload", bearer(tokens::tampered_payload_token())),
        ("alg none", bearer(tokens::alg_none_token())),
        ("signature stripped", bearer(tokens::stripped_signature_token())),
        ("wrong secret", bearer(tokens::wrong_secret_token())),
        ("RS256 without a public key", bearer(rs256)),
        ("not a JWT", bearer("not-a-jwt".to_owned())),
        ("basic credentials", Some("Basic YWRtaW46YWRtaW4=".to_owned())),
        ("empty bearer", Some("Bearer ".to_owned())),
    ];

    for endpoint in endpoints() {
        for (what, authorization) in &authorizations {
            let response = endpoint.send(&api, &fixture, authorization.as_deref()).await;
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{} {} with {what}",
                endpoint.method,
                endpoint.path
            );
            expect_unauthorised(response, authorization.as_deref()).await;
        }
    }

    assert!(admin.events_after(&cursor).await.is_empty(), "nothing was created, changed or deleted");
    let person: Value = admin.get(&format!("/api/v1/persons/{id}")).await.json().await.unwrap();
    assert_eq!(person["versionNumber"], 0);
    assert_eq!(admin.get(&format!("/api/v1/persons/{id}/extended/social-care")).await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_protected_endpoint_answers_403_to_a_token_holding_every_other_permission_and_records_the_refusal() {
    let (api, admin) = server().await;
    let every_group: Vec<String> = tokens::every_permission().iter().map(ToString::to_string).collect();

    for endpoint in endpoints() {
        let fixture = fixtures(&admin).await;
        let id = fixture.id.clone();
        let others: Vec<&str> =
            every_group.iter().map(String::as_str).filter(|g| *g != endpoint.permission && *g != "admin").collect();
        let token = token("almost-everyone", &others);
        let authorization = format!("Bearer {token}");

        let response = endpoint.send(&api, &fixture, Some(&authorization)).await;

        let label = format!("{} {}", endpoint.method, endpoint.path);
        let problem = expect_problem(response, 403, types::FORBIDDEN).await;
        assert!(problem["detail"].as_str().unwrap().contains(endpoint.permission), "{label}: {problem}");
        assert!(!problem.to_string().contains(&token), "{label}: the token is echoed");
        let events = admin.events_of(&id).await;
        assert_eq!(events.len(), 1, "{label}: nothing changed");
        if endpoint.path.contains("{id}") {
            let log: Value = admin.get(&format!("/api/v1/persons/{id}/access-log")).await.json().await.unwrap();
            let refused = log["results"].as_array().unwrap().iter().map(|r| &r["entry"]).any(|entry| {
                entry["outcome"] == "denied"
                    && entry["action"] == endpoint.action
                    && entry["actor"]["subject"] == "almost-everyone"
            });
            assert!(refused, "{label}: the refusal is in the access log: {log}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_protected_endpoint_serves_a_token_holding_exactly_its_permission() {
    let (api, admin) = server().await;

    for endpoint in endpoints() {
        let fixture = fixtures(&admin).await;
        if endpoint.method == Method::DELETE && endpoint.path.contains("/references?") {
            let held = json!({ "system": "repairs", "id": "fixture" });
            let path = format!("/api/v1/persons/{}/references", fixture.id);
            assert_eq!(admin.post(&path, &held).await.status(), StatusCode::CREATED);
        }
        let authorization = format!("Bearer {}", token("specialist", &[endpoint.permission]));

        let response = endpoint.send(&api, &fixture, Some(&authorization)).await;

        assert_eq!(response.status().as_u16(), endpoint.success, "{} {}", endpoint.method, endpoint.path);
    }
}

#[tokio::test]
async fn health_probes_and_the_openapi_document_need_no_token() {
    let (api, _) = server().await;

    for path in ["/api/v1/healthcheck/ping", "/livez", "/readyz", "/swagger/v1/swagger.json", "/swagger"] {
        assert_eq!(api.get(path).await.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn unknown_paths_need_a_token_too_and_are_404_with_one() {
    let (api, admin) = server().await;

    expect_unauthorised(api.get("/api/v1/nothing-here").await, None).await;
    expect_problem(admin.get("/api/v1/nothing-here").await, 404, types::NOT_FOUND).await;
}

#[tokio::test]
async fn a_bad_area_name_is_a_400_for_an_authenticated_caller_and_a_401_for_anyone_else() {
    let (api, admin) = server().await;
    let id = fixture(&admin).await;
    let path = format!("/api/v1/persons/{id}/extended/Social");

    expect_unauthorised(api.get(&path).await, None).await;
    let reader = api.with_token(&token("reader", &["persons:read"]));
    let problem = expect_problem(reader.get(&path).await, 400, types::BAD_REQUEST).await;
    assert_eq!(problem["errors"][0]["field"], "area");
}

#[expect(clippy::unwrap_used, reason = "test helper: an unreadable fixture is a failed test")]
fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap()
}

#[expect(clippy::unwrap_used, reason = "test helper: an unreadable fixture is a failed test")]
fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_pem(EC_PRIVATE).unwrap()
}

#[tokio::test]
async fn rs256_tokens_are_verified_with_a_configured_rsa_public_key_and_nothing_else_is_accepted() {
    let api = spawn_with(in_memory_service(), token_config(public_key_only(RSA_PUBLIC))).await;
    let writer = claims("rsa-user", &["persons:write", "persons:read"]);
    let user = api.with_token(&sign(Algorithm::RS256, &rsa_key(), &writer));

    let created = user.create(&tenant()).await;
    let id = created["id"].as_str().unwrap();
    let history: Value = user.get(&format!("/api/v1/persons/{id}/history")).await.json().await.unwrap();
    assert_eq!(history["results"][0]["actor"]["subject"], "rsa-user");

    let refused = [
        (
            "HS256 signed with the public key as secret",
            sign(Algorithm::HS256, &EncodingKey::from_secret(RSA_PUBLIC), &writer),
        ),
        ("HS256 with the test secret, no secret configured", sign_hs256(&writer)),
        ("PS256 with the same RSA key", sign(Algorithm::PS256, &rsa_key(), &writer)),
        ("ES256", sign(Algorithm::ES256, &ec_key(), &writer)),
    ];
    for (what, token) in refused {
        let response =
            api.client.get(api.url(&format!("/api/v1/persons/{id}"))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        expect_unauthorised(response, Some(&token)).await;
    }
}

#[tokio::test]
async fn es256_tokens_are_verified_with_a_configured_ec_public_key_and_nothing_else_is_accepted() {
    let api = spawn_with(in_memory_service(), token_config(public_key_only(EC_PUBLIC))).await;
    let reader = claims("ec-user", &["events:read"]);

    let accepted = api
        .client
        .get(api.url("/api/v1/events"))
        .bearer_auth(sign(Algorithm::ES256, &ec_key(), &reader))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::OK);

    let refused = [
        (
            "HS256 signed with the public key as secret",
            sign(Algorithm::HS256, &EncodingKey::from_secret(EC_PUBLIC), &reader),
        ),
        ("HS256 with the test secret, no secret configured", sign_hs256(&reader)),
        ("RS256", sign(Algorithm::RS256, &rsa_key(), &reader)),
    ];
    for (what, token) in refused {
        let response = api.client.get(api.url("/api/v1/events")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
    }
}

#[tokio::test]
async fn with_a_secret_and_a_public_key_both_algorithms_are_accepted_and_still_no_confusion() {
    let keys =
        person_http::auth::TokenKeys { hs256_secret: Some(SECRET.to_vec()), public_key_pem: Some(RSA_PUBLIC.to_vec()) };
    let api = spawn_with(in_memory_service(), token_config(keys)).await;
    let reader = claims("both-user", &["events:read"]);
    let feed = |token: String| api.client.get(api.url("/api/v1/events")).bearer_auth(token).send();

    assert_eq!(feed(sign_hs256(&reader)).await.unwrap().status(), StatusCode::OK);
    assert_eq!(feed(sign(Algorithm::RS256, &rsa_key(), &reader)).await.unwrap().status(), StatusCode::OK);
    let confused = sign(Algorithm::HS256, &EncodingKey::from_secret(RSA_PUBLIC), &reader);
    assert_eq!(feed(confused).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(feed(sign(Algorithm::ES256, &ec_key(), &reader)).await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn rs256_and_es256_tokens_are_refused_when_only_a_secret_is_configured() {
    let api = spawn_with(in_memory_service(), token_config(secret_only())).await;
    let reader = claims("key-user", &["events:read"]);

    for token in [sign(Algorithm::RS256, &rsa_key(), &reader), sign(Algorithm::ES256, &ec_key(), &reader)] {
        let response = api.client.get(api.url("/api/v1/events")).bearer_auth(&token).send().await.unwrap();
        expect_unauthorised(response, Some(&token)).await;
    }
}

#[tokio::test]
async fn a_housing_officer_reads_and_updates_persons_but_not_equality_or_social_care_data() {
    let (api, admin) = server().await;
    let id = fixture(&admin).await;
    let officer = api.with_token(&token("housing-officer-1", &["housing-officer"]));
    let person = format!("/api/v1/persons/{id}");

    assert_eq!(officer.get(&person).await.status(), StatusCode::OK);
    assert_eq!(
        officer.patch(&id, Some("\"0\""), &json!({ "middleName": "Updated" })).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(officer.post(common::CREATE_ANYWAY, &tenant()).await.status(), StatusCode::CREATED);

    expect_problem(officer.get(&format!("{person}/equality")).await, 403, types::FORBIDDEN).await;
    expect_problem(officer.put(&format!("{person}/equality"), Some("\"0\""), &equality()).await, 403, types::FORBIDDEN)
        .await;
    expect_problem(officer.get(&format!("{person}/extended/social-care")).await, 403, types::FORBIDDEN).await;
    let write = officer.put(&format!("{person}/extended/social-care"), Some("\"0\""), &json!({})).await;
    expect_problem(write, 403, types::FORBIDDEN).await;
    expect_problem(officer.delete(&person).await, 403, types::FORBIDDEN).await;
}

#[tokio::test]
async fn a_social_care_worker_reads_and_writes_social_care_data_but_nothing_of_another_area() {
    let (api, admin) = server().await;
    let id = fixture(&admin).await;
    let worker = api.with_token(&token("social-worker-1", &["social-care"]));
    let social_care = format!("/api/v1/persons/{id}/extended/social-care");
    let housing_needs = format!("/api/v1/persons/{id}/extended/housing-needs");

    assert_eq!(worker.get(&social_care).await.status(), StatusCode::OK);
    let written = worker.put(&social_care, Some("\"0\""), &json!({ "caseId": "SC-1", "allocatedTo": "team-3" })).await;
    assert_eq!(written.status(), StatusCode::OK);
    assert_eq!(header(&written, "etag"), "\"1\"");

    expect_problem(worker.get(&housing_needs).await, 403, types::FORBIDDEN).await;
    expect_problem(worker.put(&housing_needs, None, &json!({ "band": "A" })).await, 403, types::FORBIDDEN).await;
    expect_problem(worker.delete(&housing_needs).await, 403, types::FORBIDDEN).await;
    expect_problem(worker.get(&format!("/api/v1/persons/{id}/equality")).await, 403, types::FORBIDDEN).await;
    let housing = api.with_token(&token("housing-needs-1", &["housing-needs"]));
    expect_problem(housing.get(&social_care).await, 403, types::FORBIDDEN).await;
    assert_eq!(housing.put(&housing_needs, None, &json!({ "band": "A" })).await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_restricted_person_needs_admin_to_read_and_is_absent_from_the_feed_of_everyone_else() {
    let (api, admin) = server().await;
    let id = fixture(&admin).await;
    let other = fixture(&admin).await;
    let reader = api.with_token(&token("feed-reader-1", &["feed-reader"]));
    let officer = api.with_token(&token("housing-officer-2", &["housing-officer"]));
    let person = format!("/api/v1/persons/{id}");
    assert_eq!(reader.get(&person).await.status(), StatusCode::OK);

    let restriction = json!({ "restricted": true, "reason": "Data subject request DSR-17" });
    let refused = officer.put(&format!("{person}/processing-restriction"), None, &restriction).await;
    expect_problem(refused, 403, types::FORBIDDEN).await;
    let restricted = admin.put(&format!("{person}/processing-restriction"), Some("\"0\""), &restriction).await;
    assert_eq!(restricted.status(), StatusCode::OK);

    for path in [person.clone(), format!("{person}/history")] {
        let problem = expect_problem(reader.get(&path).await, 403, types::FORBIDDEN).await;
        assert!(problem["detail"].as_str().unwrap().contains("restricted"), "{problem}");
    }
    expect_problem(officer.patch(&id, Some("\"1\""), &json!({ "middleName": "X" })).await, 403, types::FORBIDDEN).await;
    let seen_by_reader: Vec<Value> = reader.events_after("0").await;
    assert!(seen_by_reader.iter().all(|e| e["event"]["entityId"] != id.as_str()), "absent from a non-admin feed");
    assert!(seen_by_reader.iter().any(|e| e["event"]["entityId"] == other.as_str()), "others are still listed");
    assert_eq!(admin.events_of(&id).await.len(), 2, "an admin sees it (created, restricted)");
    let read = admin.get(&person).await;
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.json::<Value>().await.unwrap()["processingRestricted"], true);

    let lifted =
        admin.put(&format!("{person}/processing-restriction"), Some("\"1\""), &json!({ "restricted": false })).await;
    assert_eq!(lifted.status(), StatusCode::OK);
    assert_eq!(reader.get(&person).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_access_log_lists_reads_updates_and_equality_reads_with_their_actors_and_correlation_ids() {
    let (api, admin) = server().await;
    let id = fixture(&admin).await;
    let person = format!("/api/v1/persons/{id}");
    let alice = api.with_token(&token("alice", &["housing-officer"]));
    let bob = api.with_token(&token("bob", &["equality-officer"]));
    let auditor = api.with_token(&token("ida", &["auditor"]));

    let read = alice
        .client
        .get(alice.url(&person))
        .header("x-correlation-id", "alice-read")
        .header("x-purpose", "Tenancy check")
        .send();
    assert_eq!(read.await.unwrap().status(), StatusCode::OK);
    let update = alice
        .client
        .patch(alice.url(&person))
        .header("x-correlation-id", "alice-update")
        .header("If-Match", "\"0\"")
        .json(&json!({ "middleName": "Updated" }))
        .send();
    assert_eq!(update.await.unwrap().status(), StatusCode::NO_CONTENT);
    let equality_read =
        bob.client.get(bob.url(&format!("{person}/equality"))).header("x-correlation-id", "bob-equality").send();
    assert_eq!(equality_read.await.unwrap().status(), StatusCode::OK);
    let refused = bob
        .client
        .get(bob.url(&format!("{person}/extended/social-care")))
        .header("x-correlation-id", "bob-refused")
        .send();
    assert_eq!(refused.await.unwrap().status(), StatusCode::FORBIDDEN);
    expect_problem(alice.get(&format!("{person}/access-log")).await, 403, types::FORBIDDEN).await;

    let log = auditor
        .client
        .get(auditor.url(&format!("{person}/access-log")))
        .header("x-correlation-id", "ida-log")
        .send()
        .await
        .unwrap();
    assert_eq!(log.status(), StatusCode::OK);
    let log: Value = log.json().await.unwrap();
    let entries: Vec<&Value> = log["results"].as_array().unwrap().iter().map(|r| &r["entry"]).collect();
    let find = |action: &str, correlation_id: &str| {
        *entries
            .iter()
            .find(|e| e["action"] == action && e["correlationId"] == correlation_id)
            .unwrap_or_else(|| panic!("{action} / {correlation_id} in {log}"))
    };

    let read = find("person-read", "alice-read");
    assert_eq!(
        read["actor"],
        json!({ "subject": "alice", "name": "alice (test user)", "email": "alice@example.gov.uk" })
    );
    assert_eq!(read["purpose"], "Tenancy check");
    assert_eq!(read["outcome"], "success");
    let update = find("person-update", "alice-update");
    assert_eq!(update["actor"]["subject"], "alice");
    assert_eq!(update["outcome"], "success");
    let equality_read = find("equality-read", "bob-equality");
    assert_eq!(equality_read["actor"]["subject"], "bob");
    assert_eq!(equality_read["outcome"], "success");
    let refusal = find("extended-read", "bob-refused");
    assert_eq!(refusal["actor"]["subject"], "bob");
    assert_eq!(refusal["outcome"], "denied");
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "access-log-read" && e["actor"]["subject"] == "alice" && e["outcome"] == "denied")
    );
}

#[tokio::test]
async fn a_service_token_acts_as_its_consumer_with_the_consumer_groups_permissions() {
    let (api, admin) = server().await;
    admin.create_tenant().await;
    let service =
        json!({ "consumerName": "repairs-hub", "consumerType": 1, "iat": tokens::now(), "exp": tokens::now() + 3600 });
    let repairs = api.with_token(&sign_hs256(&service));
    let unknown = json!({ "consumerName": "unknown-consumer", "consumerType": 1, "exp": tokens::now() + 3600 });

    assert_eq!(repairs.get("/api/v1/events").await.status(), StatusCode::OK);
    expect_problem(repairs.post("/api/v1/persons", &tenant()).await, 403, types::FORBIDDEN).await;
    let stranger = api.with_token(&sign_hs256(&unknown));
    expect_problem(stranger.get("/api/v1/events").await, 403, types::FORBIDDEN).await;
}

#[tokio::test]
async fn cognito_groups_grant_permissions_like_groups() {
    let (api, admin) = server().await;
    let id = fixture(&admin).await;
    let cognito = json!({ "sub": "cognito-user", "cognito:groups": ["housing-officer"], "exp": tokens::now() + 3600 });
    let user = api.with_token(&sign_hs256(&cognito));

    let response = user.get(&format!("/api/v1/persons/{id}")).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["id"], id.as_str());
}

#[tokio::test]
async fn a_token_without_a_subject_or_expiry_is_refused() {
    let (api, _) = server().await;

    for claims in [
        json!({ "groups": ["admin"], "exp": tokens::now() + 3600 }),
        json!({ "sub": "no-expiry", "groups": ["admin"] }),
    ] {
        let token = sign_hs256(&claims);
        let response = api.client.get(api.url("/api/v1/events")).bearer_auth(&token).send().await.unwrap();
        expect_unauthorised(response, Some(&token)).await;
    }
}

#[tokio::test]
async fn a_head_request_needs_what_the_get_needs() {
    let (api, admin) = server().await;
    let id = fixture(&admin).await;
    let person = api.url(&format!("/api/v1/persons/{id}"));
    let equality = api.url(&format!("/api/v1/persons/{id}/equality"));
    let officer = token("housing-officer-3", &["housing-officer"]);

    let anonymous = api.client.head(&person).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let refused = api.client.head(&equality).bearer_auth(&officer).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&refused, "etag"), "", "no version leaks");
    let allowed = api.client.head(&person).bearer_auth(&officer).send().await.unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(header(&allowed, "etag"), "\"0\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn searching_or_matching_by_national_insurance_number_needs_equality_read() {
    let (api, admin) = server().await;
    let id = fixture(&admin).await;
    let reader = api.with_token(&token("reader-1", &["persons:read"]));
    let equality_reader = api.with_token(&token("reader-2", &["persons:read", "equality:read"]));
    let search = "/api/v1/persons?nino=AB%2012%2034%2056%20C";
    let match_body = json!({ "surname": "O'Neill-Ndlovu", "nationalInsuranceNumber": "AB123456C" });

    let refused = expect_problem(reader.get(search).await, 403, types::FORBIDDEN).await;
    assert!(refused["detail"].as_str().unwrap().contains("equality:read"), "{refused}");
    let refused_match =
        expect_problem(reader.post("/api/v1/persons/match", &match_body).await, 403, types::FORBIDDEN).await;
    assert!(refused_match["detail"].as_str().unwrap().contains("equality:read"), "{refused_match}");

    let found: Value = equality_reader.get(search).await.json().await.unwrap();
    assert_eq!(found["results"][0]["id"], id.as_str(), "{found}");
    let matched = equality_reader.post("/api/v1/persons/match", &match_body).await;
    assert_eq!(matched.status(), StatusCode::OK);
    let by_name: Value = reader.get("/api/v1/persons?lastName=O%27Neill-Ndlovu").await.json().await.unwrap();
    assert_eq!(by_name["results"][0]["id"], id.as_str(), "searching by name needs no equality:read: {by_name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restricted_person_never_appears_in_search_or_match_results_for_callers_without_admin() {
    let (api, admin) = server().await;
    let restricted = fixture(&admin).await;
    let other = admin.create_tenant().await;
    let reader = api.with_token(&token("reader-3", &["persons:read"]));
    let restriction = json!({ "restricted": true, "reason": "Data subject request DSR-18" });
    let path = format!("/api/v1/persons/{restricted}/processing-restriction");
    assert_eq!(admin.put(&path, Some("\"0\""), &restriction).await.status(), StatusCode::OK);

    for query in ["q=Kimakhe", "firstName=Kimakhe&lastName=O%27Neill-Ndlovu"] {
        let ids = reader.search_ids(query).await;
        assert!(!ids.contains(&restricted), "{query}: the restricted person is listed: {ids:?}");
        assert!(ids.contains(&other), "{query}: others still are: {ids:?}");
    }
    let housing: Value = reader.get("/api/v1/search/persons?searchText=Kimakhe").await.json().await.unwrap();
    assert!(!common::result_ids(&housing["results"]["persons"]).contains(&restricted), "{housing}");
    let body = json!({ "firstName": "Kimakhe", "surname": "O'Neill-Ndlovu" });
    let matched: Value = reader.post("/api/v1/persons/match", &body).await.json().await.unwrap();
    let candidates: Vec<&Value> = matched["results"].as_array().unwrap().iter().map(|r| &r["person"]["id"]).collect();
    assert!(!candidates.contains(&&json!(restricted)), "{matched}");
    assert!(candidates.contains(&&json!(other)), "{matched}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn merging_needs_persons_merge_and_a_housing_officer_cannot() {
    let (api, admin) = server().await;
    let survivor = fixture(&admin).await;
    let duplicate = admin.create_tenant().await;
    let officer = api.with_token(&token("housing-officer-4", &["housing-officer"]));

    let refused = officer.merge(&survivor, &duplicate, Some("\"0\"")).await;
    let problem = expect_problem(refused, 403, types::FORBIDDEN).await;
    assert!(problem["detail"].as_str().unwrap().contains("persons:merge"), "{problem}");

    let merger = api.with_token(&token("merger-1", &["persons:merge"]));
    assert_eq!(merger.merge(&survivor, &duplicate, Some("\"0\"")).await.status(), StatusCode::OK);
}

/// With a per-caller rate limit, a caller over its burst gets a 429 `too-many-requests` problem with `Retry-After`,
/// while another caller and the public health routes are served; nothing is stored by a refused request.
#[tokio::test]
async fn a_caller_over_its_rate_limit_gets_429_with_retry_after_and_other_callers_are_served() {
    let config = person_http::HttpConfig {
        rate_limit: Some(person_http::RateLimitConfig { per_second: 1, burst: 3 }),
        ..token_config(secret_only())
    };
    let api = spawn_with(in_memory_service(), config).await;
    let busy = api.with_token(&admin_token());
    for _ in 0..3 {
        assert_eq!(busy.get("/api/v1/events").await.status(), StatusCode::OK);
    }
    let refused = busy.post("/api/v1/persons", &tenant()).await;
    let retry_after: u32 = header(&refused, "retry-after").parse().unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    let problem = expect_problem(refused, 429, types::TOO_MANY_REQUESTS).await;
    assert!(problem["detail"].as_str().unwrap().contains("rate limit"), "{problem}");

    let other = api.with_token(&token("other-user", &["admin"]));
    assert_eq!(other.get("/api/v1/events").await.status(), StatusCode::OK, "another caller has its own limit");
    assert!(other.events_after("0").await.is_empty(), "the refused create stored nothing");
    for _ in 0..5 {
        assert_eq!(api.get("/livez").await.status(), StatusCode::OK, "health is not limited");
    }
}

//! The same data gives the same search and match results on every store (SPEC §6): a synthetic register is
//! loaded through `PersonService` into SQLite and into PostgreSQL or DynamoDB (opened as `PERSON_API_STORE` opens
//! them), then the same searches and matches run on both must answer the same persons, in the same order, with
//! the same scores, grades and explanations. A comparison is skipped with a message when its store is not
//! configured (`PERSON_TEST_POSTGRES_URL`, `PERSON_TEST_DYNAMODB_ENDPOINT`).

#![expect(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

use std::sync::Arc;

use chrono::NaiveDate;
use person_core::event::Actor;
use person_core::patch::draft_of;
use person_core::ports::{RandomIds, SystemClock};
use person_core::service::{CreateOptions, SearchQuery};
use person_core::storage::QueryRecorder;
use person_core::testkit::synthetic::{QueryKind, SyntheticConfig, SyntheticDataSet, generate};
use person_core::{Permission, Permissions, PersonService, Repositories, RequestContext};
use person_server::store::{StoreOptions, open_repository};
use serde_json::{Value, json};

/// A member of staff who may read and write persons and equality data (so NI numbers take part).
fn staff() -> RequestContext {
    let actor =
        Actor { subject: "parity".to_owned(), name: "Parity Test".to_owned(), email: "parity@localhost".to_owned() };
    let permissions: Permissions =
        [Permission::PersonsRead, Permission::PersonsWrite, Permission::EqualityRead, Permission::EqualityWrite]
            .into_iter()
            .collect();
    RequestContext::new(actor, permissions, "store-parity")
}

async fn service_on(url: &str) -> PersonService {
    let store = open_repository(url, &StoreOptions::default(), QueryRecorder::default()).await.unwrap();
    PersonService::new(Repositories::from_dyn(store), Arc::new(SystemClock), Arc::new(RandomIds))
}

/// Loads the register in order (so both stores allocate the same personRefs) and gives every second person with
/// an NI number its equality data. Returns what each create answered: the personRef, or the refusal.
async fn load(service: &PersonService, data: &SyntheticDataSet) -> Vec<String> {
    let ctx = staff();
    let mut outcomes = Vec::new();
    for (index, synthetic) in data.persons.iter().enumerate() {
        let mut draft = draft_of(&synthetic.person);
        draft.id = Some(synthetic.person.id.as_uuid());
        let body = serde_json::to_vec(&draft).unwrap();
        match service.create(&ctx, &body, CreateOptions::default()).await {
            Ok(created) => {
                outcomes.push(format!("ref {}", created.person.person_ref.0));
                if let Some(nino) = synthetic.nino.as_deref().filter(|_| index % 2 == 0) {
                    let equality = serde_json::to_vec(&json!({ "nationalInsuranceNumber": nino })).unwrap();
                    service.put_equality(&ctx, created.person.id, None, &equality).await.unwrap();
                }
            }
            Err(refused) => outcomes.push(format!("refused: {refused}")),
        }
    }
    outcomes
}

fn iso(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// The searches of the comparison: for each labelled query, by name, by name and date of birth, by postcode,
/// by free text and by NI number, as far as the query has those fields.
fn searches(data: &SyntheticDataSet) -> Vec<SearchQuery> {
    let mut out = Vec::new();
    for labelled in &data.queries {
        let p = &labelled.profile;
        let base = SearchQuery { limit: 50, ..SearchQuery::default() };
        out.push(SearchQuery { first_name: p.first_name.clone(), last_name: p.surname.clone(), ..base.clone() });
        out.push(SearchQuery {
            first_name: p.first_name.clone(),
            last_name: p.surname.clone(),
            date_of_birth: p.date_of_birth.map(iso),
            ..base.clone()
        });
        if let Some(postcode) = p.postcodes.first() {
            out.push(SearchQuery { postcode: Some(postcode.clone()), ..base.clone() });
        }
        let text = [p.surname.clone(), p.first_name.clone(), p.date_of_birth.map(|d| d.format("%d/%m/%Y").to_string())]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        if !text.is_empty() {
            out.push(SearchQuery { q: Some(text), ..base.clone() });
        }
        if let Some(nino) = &p.nino {
            out.push(SearchQuery { nino: Some(nino.to_lowercase()), ..base.clone() });
        }
    }
    out.retain(|q| {
        [&q.first_name, &q.last_name, &q.date_of_birth, &q.postcode, &q.q, &q.nino].iter().any(|f| f.is_some())
    });
    out
}

/// A match body for each labelled query.
fn matches(data: &SyntheticDataSet) -> Vec<Vec<u8>> {
    data.queries
        .iter()
        .map(|labelled| {
            let p = &labelled.profile;
            let mut body = serde_json::Map::new();
            let mut put = |key: &str, value: Option<String>| {
                if let Some(value) = value {
                    body.insert(key.to_owned(), Value::String(value));
                }
            };
            put("firstName", p.first_name.clone());
            put("surname", p.surname.clone());
            put("dateOfBirth", p.date_of_birth.map(iso));
            put("postcode", p.postcodes.first().cloned());
            put("nationalInsuranceNumber", p.nino.clone());
            let mut body = Value::Object(body);
            body["count"] = json!(10);
            serde_json::to_vec(&body).unwrap()
        })
        .collect()
}

/// Every answer of `service` to the searches and matches, as comparable JSON (ids, personRefs, scores and, for
/// matches, grades and explanations), or the error.
async fn answers(service: &PersonService, searches: &[SearchQuery], matches: &[Vec<u8>]) -> Vec<Value> {
    let ctx = staff();
    let mut out = Vec::new();
    for query in searches {
        out.push(match service.search(&ctx, query.clone()).await {
            Ok(page) => json!({
                "total": page.total,
                "hits": page.hits.iter().map(|h| json!([h.person.id, h.person.person_ref.0, h.score])).collect::<Vec<_>>(),
            }),
            Err(error) => json!({ "error": error.to_string() }),
        });
    }
    for body in matches {
        out.push(match service.match_person(&ctx, body).await {
            Ok(candidates) => json!(candidates.iter().map(|c| json!([c.person.id, c.score])).collect::<Vec<_>>()),
            Err(error) => json!({ "error": error.to_string() }),
        });
    }
    out
}

/// Loads the same register into SQLite and into the store named by `other` (when configured) and requires
/// identical answers to every search and match.
async fn answers_match_sqlite(other: Option<String>, name: &str, persons: usize) {
    let Some(other_url) = other else { return };
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("persons.db").display());
    let data = generate(&SyntheticConfig::new(persons, 20_261_127));
    let (searches, matches) = (searches(&data), matches(&data));
    assert!(data.queries.iter().any(|q| q.kind == QueryKind::Duplicate), "the data set has duplicate queries");
    assert!(
        searches.len() > persons && matches.len() > persons / 4,
        "{} searches, {} matches",
        searches.len(),
        matches.len()
    );

    let sqlite = service_on(&sqlite_url).await;
    let other = service_on(&other_url).await;
    let loaded = load(&sqlite, &data).await;
    assert_eq!(load(&other, &data).await, loaded, "SQLite and {name} accept and refuse the same creates");
    assert!(
        loaded.iter().filter(|o| o.starts_with("ref ")).count() > persons * 3 / 4,
        "most of the register is stored"
    );

    let on_sqlite = answers(&sqlite, &searches, &matches).await;
    let on_other = answers(&other, &searches, &matches).await;
    let with_results = on_sqlite.iter().filter(|a| a["hits"].as_array().is_some_and(|h| !h.is_empty())).count();
    assert!(with_results > searches.len() / 2, "most searches find someone ({with_results} of {})", searches.len());
    assert_eq!(on_sqlite.len(), on_other.len());
    for (index, (s, o)) in on_sqlite.iter().zip(&on_other).enumerate() {
        assert_eq!(s, o, "answer {index} differs between SQLite and {name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn searches_and_matches_answer_identically_on_sqlite_and_postgresql() {
    answers_match_sqlite(person_postgres::testing::fresh_test_url(), "PostgreSQL", 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn searches_and_matches_answer_identically_on_sqlite_and_dynamodb() {
    // A smaller register: the local DynamoDB test server (moto) answers the broad search-key queries of a large
    // one slowly (it reads whole partitions per query).
    answers_match_sqlite(person_dynamodb::testing::fresh_test_url(), "DynamoDB", 80).await;
}

//! Search, matching, duplicate prevention and merge (SPEC §6, issue 4) through HTTP, as functions over a
//! running server ([`Api`]): independent of the store behind it, so the same suite runs over every store. Each
//! function is one test (see `http_suite!`).
//!
//! Assertions are about the persons a test created (by id), never about a whole result list, so that they hold
//! whatever else a store holds; scores are compared with each other, never with fixed numbers, since the weights
//! are calibrated (docs/matching.md), not part of the contract.

use std::collections::HashSet;

use futures::future::join_all;
use person_core::api::problem_types as types;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Api, CREATE_ANYWAY, equality, expect_problem, header, person, result_ids, tenant};

/// Creates `body` (duplicate prevention on) and returns the new person's id.
async fn create_id(api: &Api, body: &Value) -> String {
    api.create(body).await["id"].as_str().unwrap().to_owned()
}

/// The result of `page` for `id`, if it is there.
fn result_for<'a>(page: &'a Value, id: &str) -> Option<&'a Value> {
    page["results"].as_array().unwrap().iter().find(|result| result["id"] == id)
}

/// The score of `id` in `page` (asserting it is a result, with a score in 0..1).
fn score_of(page: &Value, id: &str) -> f64 {
    let result = result_for(page, id).unwrap_or_else(|| panic!("{id} is not in {page}"));
    let score = result["score"].as_f64().unwrap_or_else(|| panic!("no score in {result}"));
    assert!((0.0..=1.0).contains(&score), "score {score} in {result}");
    score
}

/// Asserts that `GET /api/v1/persons?{query}` finds `id` (with a score in 0..1); returns the page.
async fn finds(api: &Api, query: &str, id: &str) -> Value {
    let page = api.search(query).await;
    score_of(&page, id);
    page
}

pub(crate) async fn a_misspelt_name_finds_the_person_jon_smyth_finds_john_smith(api: &Api) {
    let john = create_id(api, &person("John", "Smith", "1980-04-12", "14 Dalston Lane, London E8 3AH")).await;

    let by_fields = finds(api, "firstName=Jon&lastName=Smyth", &john).await;
    finds(api, "q=Jon%20Smyth", &john).await;

    let exact = finds(api, "firstName=John&lastName=Smith", &john).await;
    assert!(score_of(&exact, &john) > score_of(&by_fields, &john), "an exact name scores higher than a misspelt one");
}

pub(crate) async fn search_ignores_case_kimakhe_finds_kimakhe(api: &Api) {
    let kimakhe = create_id(api, &tenant()).await;

    finds(api, "firstName=kimakhe", &kimakhe).await;
    finds(api, "q=KIMAKHE%20o%27neill-ndlovu", &kimakhe).await;
}

pub(crate) async fn search_ignores_accents_zoe_finds_zoe_with_a_diaeresis(api: &Api) {
    let zoe = create_id(api, &person("Zoë", "Łukasiewicz", "1993-08-21", "7 Mare Street, London E8 4RP")).await;

    finds(api, "firstName=Zoe&lastName=Lukasiewicz", &zoe).await;
    finds(api, "firstName=zoe", &zoe).await;
    finds(api, "firstName=Zo%C3%AB&lastName=%C5%81ukasiewicz", &zoe).await;
}

pub(crate) async fn a_nickname_finds_the_full_name_bill_turner_finds_william_turner(api: &Api) {
    let william = create_id(api, &person("William", "Turner", "1949-01-30", "2 Well Street, London E9 7PX")).await;

    finds(api, "firstName=Bill&lastName=Turner", &william).await;
    finds(api, "q=Bill%20Turner", &william).await;
}

pub(crate) async fn free_text_finds_names_in_either_order_smith_john_finds_john_smith(api: &Api) {
    let john = create_id(api, &person("John", "Smith", "1980-04-12", "14 Dalston Lane, London E8 3AH")).await;

    finds(api, "q=Smith%20John", &john).await;
    finds(api, "q=John%20Smith", &john).await;
    finds(api, "firstName=Smith&lastName=John", &john).await;
}

pub(crate) async fn a_hyphenated_surname_finds_each_part_and_each_part_finds_it(api: &Api) {
    let sara = create_id(api, &person("Sara", "Ali-Khan", "1990-05-05", "9 Amhurst Road, London E8 1JN")).await;
    let omar = create_id(api, &person("Omar", "Khan", "1975-02-14", "40 Shacklewell Lane, London E8 2EZ")).await;

    let hyphenated = api.search_ids("lastName=Ali-Khan").await;
    assert!(hyphenated.contains(&sara) && hyphenated.contains(&omar), "Ali-Khan finds both: {hyphenated:?}");
    assert_eq!(hyphenated[0], sara, "the whole surname ranks first");
    let part = api.search_ids("lastName=Khan").await;
    assert!(part.contains(&sara) && part.contains(&omar), "Khan finds both: {part:?}");
}

pub(crate) async fn a_day_month_swapped_date_of_birth_finds_the_person_ranked_below_an_exact_match(api: &Api) {
    let exact = create_id(api, &person("Priya", "Patel", "1985-03-07", "11 Median Road, London E5 0PL")).await;
    // The same name with the day and month swapped: what duplicate prevention exists to catch, so forced in.
    let swapped = api.create_anyway(&person("Priya", "Patel", "1985-07-03", "11 Median Road, London E5 0PL")).await;
    let swapped = swapped["id"].as_str().unwrap().to_owned();

    let page = api.search("firstName=Priya&lastName=Patel&dateOfBirth=1985-03-07").await;

    let ids = result_ids(&page["results"]);
    let position = |id: &str| ids.iter().position(|r| r == id).unwrap_or_else(|| panic!("{id} not in {ids:?}"));
    assert!(position(&exact) < position(&swapped), "exact first: {page}");
    assert!(score_of(&page, &exact) > score_of(&page, &swapped), "{page}");
}

pub(crate) async fn a_postcode_matches_with_or_without_its_space_and_in_any_case(api: &Api) {
    let chidi = create_id(api, &person("Chidi", "Okafor", "1970-10-10", "3 Clapton Square, London E5 8HP")).await;

    let mut scores = Vec::new();
    for postcode in ["E5%208HP", "E58HP", "e58hp", "%20e5%208hp%20"] {
        let page = finds(api, &format!("lastName=Okafor&postcode={postcode}"), &chidi).await;
        scores.push(score_of(&page, &chidi));
        finds(api, &format!("postcode={postcode}"), &chidi).await;
    }
    assert!(scores.windows(2).all(|w| w[0] == w[1]), "the same postcode scores the same however written: {scores:?}");
}

pub(crate) async fn a_national_insurance_number_matches_in_any_spacing_or_case(api: &Api) {
    let id = create_id(api, &person("Aoife", "Brennan", "1988-02-29", "5 Lauriston Road, London E9 7HA")).await;
    let equality = api
        .put(&format!("/api/v1/persons/{id}/equality"), None, &json!({ "nationalInsuranceNumber": "JG 10 37 59 A" }))
        .await;
    assert_eq!(equality.status(), StatusCode::CREATED);

    for nino in ["JG103759A", "jg%2010%2037%2059%20a", "JG103759%20A", "%20jg103759a"] {
        let page = finds(api, &format!("nino={nino}"), &id).await;
        assert!(!page.to_string().contains("JG103759A"), "the number is not shown in results: {page}");
    }
    let other = api.search("nino=JG103759B").await;
    assert!(result_for(&other, &id).is_none(), "another number does not find the person: {other}");
}

pub(crate) async fn deleted_merged_and_restricted_persons_never_appear_in_search_or_match_results(api: &Api) {
    let address = "21 Cazenove Road, London N16 6PA";
    let astrid = create_id(api, &person("Astrid", "Lindqvist", "1966-06-06", address)).await;
    let birgit = create_id(api, &person("Birgit", "Lindqvist", "1968-08-08", address)).await;
    let cecilia = create_id(api, &person("Cecilia", "Lindqvist", "1969-09-09", address)).await;
    let dagny = create_id(api, &person("Dagny", "Lindqvist", "1971-01-21", address)).await;
    let deleted = api.delete(&format!("/api/v1/persons/{birgit}")).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(api.merge(&astrid, &cecilia, Some("\"0\"")).await.status(), StatusCode::OK);
    let restriction = json!({ "restricted": true, "reason": "Data subject request DSR-19" });
    let restricted = api.put(&format!("/api/v1/persons/{dagny}/processing-restriction"), None, &restriction).await;
    assert_eq!(restricted.status(), StatusCode::OK);
    let hidden = [(&birgit, "deleted"), (&cecilia, "merged"), (&dagny, "restricted")];

    for query in [
        "lastName=Lindqvist",
        "q=Lindqvist",
        "firstName=Birgit&lastName=Lindqvist",
        "q=Cecilia%20Lindqvist",
        "firstName=Dagny&lastName=Lindqvist&dateOfBirth=1971-01-21",
        "postcode=N16%206PA",
    ] {
        let ids = api.search_ids(query).await;
        for (id, state) in hidden {
            assert!(!ids.contains(id), "{query}: the {state} person is listed: {ids:?}");
        }
    }
    assert!(api.search_ids("lastName=Lindqvist").await.contains(&astrid), "the survivor is listed");
    let housing: Value = api.get("/api/v1/search/persons?searchText=Lindqvist").await.json().await.unwrap();
    let listed = result_ids(&housing["results"]["persons"]);
    assert!(hidden.iter().all(|(id, _)| !listed.contains(id)), "{housing}");
    for first_name in ["Birgit", "Cecilia", "Dagny"] {
        let body = json!({ "firstName": first_name, "surname": "Lindqvist", "postcode": "N16 6PA" });
        let response = api.post("/api/v1/persons/match", &body).await;
        assert_eq!(response.status(), StatusCode::OK);
        let matched: Value = response.json().await.unwrap();
        let candidates: Vec<&Value> =
            matched["results"].as_array().unwrap().iter().map(|r| &r["person"]["id"]).collect();
        for (id, state) in hidden {
            assert!(!candidates.contains(&&json!(id)), "the {state} person is a candidate: {matched}");
        }
    }
}

pub(crate) async fn search_results_page_with_a_cursor_and_a_next_link(api: &Api) {
    let mut created = HashSet::new();
    for (first_name, born) in [
        ("Ada", "1950-01-01"),
        ("Bea", "1960-02-02"),
        ("Cyd", "1970-03-03"),
        ("Dot", "1980-04-04"),
        ("Eve", "1990-05-05"),
    ] {
        let body = person(first_name, "Featherstonehaugh", born, "1 Chatsworth Road, London E5 0LH");
        created.insert(create_id(api, &body).await);
    }

    let mut pages = vec![api.search("lastName=Featherstonehaugh&limit=2").await];
    while let Some(next) = pages.last().unwrap()["links"]["next"].as_str() {
        assert!(next.starts_with("/api/v1/persons?"), "{next}");
        assert!(next.contains("lastName=Featherstonehaugh") && next.contains("limit=2"), "{next}");
        assert!(next.contains("cursor="), "{next}");
        let response = api.get(next).await;
        assert_eq!(response.status(), StatusCode::OK, "{next}");
        pages.push(response.json().await.unwrap());
        assert!(pages.len() <= 3, "five results in pages of two: {pages:?}");
    }

    let sizes: Vec<usize> = pages.iter().map(|p| p["results"].as_array().unwrap().len()).collect();
    assert_eq!(sizes, [2, 2, 1]);
    assert!(pages.iter().all(|p| p["total"] == 5), "{pages:?}");
    let ids: Vec<String> = pages.iter().flat_map(|p| result_ids(&p["results"])).collect();
    assert_eq!(ids.iter().cloned().collect::<HashSet<_>>(), created, "every person once");
    let scores: Vec<f64> = pages
        .iter()
        .flat_map(|p| p["results"].as_array().unwrap().iter().map(|r| r["score"].as_f64().unwrap()))
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "ranked across pages: {scores:?}");

    let default = api.search("lastName=Featherstonehaugh").await;
    assert_eq!(default["results"].as_array().unwrap().len(), 5);
    assert!(default["links"]["next"].is_null(), "one page holds all: {default}");
}

pub(crate) async fn bad_search_parameters_are_400s_naming_the_parameter(api: &Api) {
    for (query, parameter) in [
        ("lastName=Smith&limit=201", "limit"),
        ("lastName=Smith&limit=0", "limit"),
        ("lastName=Smith&limit=x", "limit"),
        ("lastName=Smith&cursor=abc", "cursor"),
        ("lastName=Smith&cursor=-20", "cursor"),
        ("lastName=Smith&firstname=John", "firstname"),
        ("lastName=Smith&lastName=Jones", "lastName"),
        ("lastName=Smith&surname=Jones", "surname"),
        ("lastName=Smith&personType=Landlord", "personType"),
        ("reference=housing-register", "reference"),
        ("reference=Tenure%3A1", "reference"),
        ("reference=tenure%3A1&lastName=Smith", "reference"),
        ("lastName=Smith&dateOfBirth=1980-02-30", "dateOfBirth"),
        ("surname=Smith&firstName=J", "firstName"),
        ("surname=S", "surname"),
        ("lastName=Smith&postcode=not-a-postcode", "postcode"),
    ] {
        let response = api.get(&format!("/api/v1/persons?{query}")).await;
        let problem = expect_problem(response, 400, types::BAD_REQUEST).await;
        assert_eq!(problem["errors"][0]["field"], parameter, "{query}: {problem}");
    }
    for query in ["", "?", "?limit=5", "?firstName=&lastName=%20", "?personType=Tenant"] {
        let problem = expect_problem(api.get(&format!("/api/v1/persons{query}")).await, 400, types::BAD_REQUEST).await;
        assert!(problem["detail"].as_str().unwrap().contains("criterion"), "{query}: {problem}");
    }
}

pub(crate) async fn the_hackney_person_search_answers_in_the_housing_search_shape_and_pages_from_1(api: &Api) {
    let first = create_id(api, &tenant()).await;
    let second = api.create_anyway(&tenant()).await["id"].as_str().unwrap().to_owned();

    let response = api.get("/api/v1/search/persons?searchText=Kimakhe&pageSize=1&page=1").await;
    assert_eq!(response.status(), StatusCode::OK);
    let page: Value = response.json().await.unwrap();

    assert_eq!(page["total"], 2, "{page}");
    let persons = page["results"]["persons"].as_array().unwrap();
    assert_eq!(persons.len(), 1, "{page}");
    let found = &persons[0];
    for key in [
        "id",
        "title",
        "firstname",
        "middleName",
        "surname",
        "preferredFirstname",
        "preferredSurname",
        "dateOfBirth",
        "personTypes",
        "isPersonCautionaryAlert",
        "isTenureCautionaryAlert",
        "tenures",
    ] {
        assert!(found.get(key).is_some(), "{key} in {found}");
    }
    assert_eq!(found["firstname"], "Kimakhe");
    assert_eq!(found["surname"], "O'Neill-Ndlovu");
    assert_eq!(found["personTypes"], json!(["Tenant"]));
    assert_eq!(found["isPersonCautionaryAlert"], false);
    let tenure = &found["tenures"][0];
    for key in ["id", "type", "startDate", "endDate", "assetFullAddress", "postCode", "paymentReference", "isActive"] {
        assert!(tenure.get(key).is_some(), "{key} in {tenure}");
    }
    assert_eq!(tenure["type"], "Secure", "active tenures first");
    assert_eq!(tenure["postCode"], "E8 1DY");
    assert_eq!(tenure["isActive"], true);

    let next: Value =
        api.get("/api/v1/search/persons?searchText=Kimakhe&pageSize=1&page=2").await.json().await.unwrap();
    let both: HashSet<String> = [&page, &next].iter().flat_map(|p| result_ids(&p["results"]["persons"])).collect();
    assert_eq!(both, HashSet::from([first.clone(), second]), "page 2 holds the other person");
    let defaults: Value = api.get("/api/v1/search/persons?searchText=kimakhe").await.json().await.unwrap();
    assert_eq!(defaults["results"]["persons"].as_array().unwrap().len(), 2, "{defaults}");
    let tenants: Value =
        api.get("/api/v1/search/persons?searchText=Kimakhe&personType=tenant").await.json().await.unwrap();
    assert_eq!(tenants["total"], 2, "{tenants}");
    let leaseholders: Value =
        api.get("/api/v1/search/persons?searchText=Kimakhe&personType=Leaseholder").await.json().await.unwrap();
    assert!(!result_ids(&leaseholders["results"]["persons"]).contains(&first), "{leaseholders}");

    for (query, parameter) in [
        ("searchText=K", "searchText"),
        ("pageSize=5", "searchText"),
        ("searchText=Kimakhe&pageSize=0", "pageSize"),
        ("searchText=Kimakhe&pageSize=201", "pageSize"),
        ("searchText=Kimakhe&page=x", "page"),
    ] {
        let response = api.get(&format!("/api/v1/search/persons?{query}")).await;
        let problem = expect_problem(response, 400, types::BAD_REQUEST).await;
        assert_eq!(problem["errors"][0]["field"], parameter, "{query}: {problem}");
    }
}

pub(crate) async fn matching_answers_ranked_candidates_with_grade_and_explanation(api: &Api) {
    let john = create_id(api, &person("John", "Smith", "1980-04-12", "14 Dalston Lane, London E8 3AH")).await;

    let exact = json!({ "firstName": "John", "surname": "Smith", "dateOfBirth": "1980-04-12", "postcode": "E8 3AH" });
    let misspelt = json!({ "firstName": "Jon", "surname": "Smyth", "dateOfBirth": "1980-04-12" });
    let mut scores = Vec::new();
    for body in [exact, misspelt] {
        let response = api.post("/api/v1/persons/match", &body).await;
        assert_eq!(response.status(), StatusCode::OK, "{body}");
        let answer: Value = response.json().await.unwrap();
        let candidate = answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["person"]["id"] == john.as_str())
            .unwrap_or_else(|| panic!("John Smith is a candidate for {body}: {answer}"))
            .clone();
        assert_eq!(candidate["person"]["firstName"], "John", "the whole person: {candidate}");
        let score = candidate["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&score), "{candidate}");
        let grade = candidate["grade"].as_str().unwrap_or_default();
        assert!(["certain", "probable", "possible"].contains(&grade), "{candidate}");
        let explanation = candidate["explanation"].as_array().unwrap();
        assert!(!explanation.is_empty(), "{candidate}");
        for comparison in explanation {
            assert!(comparison["field"].is_string() && comparison["level"].is_string(), "{comparison}");
            assert!(comparison["weight"].is_number(), "{comparison}");
        }
        assert!(explanation.iter().any(|c| c["field"] == "surname"), "{candidate}");
        scores.push((grade.to_owned(), score));
    }
    assert_eq!(scores[0].0, "certain", "the same name, date of birth and postcode: {scores:?}");
    assert!(scores[0].1 > scores[1].1, "{scores:?}");

    // `count` is a JSON number: `1.0` is the whole number 1 (JSON Schema's `integer` accepts it too); a fraction,
    // a negative or an out-of-range count is refused naming the field.
    let one = api.post("/api/v1/persons/match", &json!({ "surname": "Smith", "count": 1.0 })).await;
    assert_eq!(one.status(), StatusCode::OK);
    let one: Value = one.json().await.unwrap();
    assert_eq!(one["results"].as_array().map(Vec::len), Some(1), "{one}");
    for count in [json!(1.5), json!(-1), json!(1e10), json!("1")] {
        let response = api.post("/api/v1/persons/match", &json!({ "surname": "Smith", "count": count })).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "count {count}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], "/count", "{problem}");
    }

    let not_json = api.client.post(api.url("/api/v1/persons/match")).body("x").send().await.unwrap();
    expect_problem(not_json, 415, types::UNSUPPORTED_MEDIA_TYPE).await;
}

pub(crate) async fn creating_a_person_already_recorded_is_a_409_listing_the_existing_person(api: &Api) {
    let body = person("Margaret", "Okonkwo", "1962-09-30", "18 Sandringham Road, London E8 2LP");
    let existing = api.create(&body).await;
    let cursor = api.feed_end().await;

    let mut again = body.clone();
    again["tenures"][0]["id"] = json!(Uuid::new_v4());
    for path in ["/api/v1/persons", "/api/v2/persons", "/api/v1/persons?allowDuplicate=false"] {
        let response = api.post(path, &again).await;
        let problem = expect_problem(response, 409, types::DUPLICATE_PERSON).await;
        let candidates = problem["candidates"].as_array().unwrap_or_else(|| panic!("{path}: {problem}"));
        assert_eq!(candidates[0]["id"], existing["id"], "{path}: {problem}");
        assert_eq!(candidates[0]["personRef"], existing["personRef"], "{path}: {problem}");
        let score = candidates[0]["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&score), "{problem}");
    }
    // A differently written name of the same person is the same person.
    let mut shouted = again.clone();
    shouted["firstName"] = json!("MARGARET");
    shouted["surname"] = json!(" okonkwo ");
    expect_problem(api.post("/api/v1/persons", &shouted).await, 409, types::DUPLICATE_PERSON).await;

    assert!(api.events_after(&cursor).await.is_empty(), "a refused create publishes nothing");
    let bad =
        expect_problem(api.post("/api/v1/persons?allowDuplicate=yes", &again).await, 400, types::BAD_REQUEST).await;
    assert_eq!(bad["errors"][0]["field"], "allowDuplicate");
}

pub(crate) async fn allow_duplicate_true_creates_the_person_anyway(api: &Api) {
    let body = person("Margaret", "Okonkwo", "1962-09-30", "18 Sandringham Road, London E8 2LP");
    let existing = api.create(&body).await;

    let response = api.post(CREATE_ANYWAY, &body).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let forced: Value = response.json().await.unwrap();
    assert_ne!(forced["id"], existing["id"]);
    let v2 = api.post("/api/v2/persons?allowDuplicate=true", &body).await;
    assert_eq!(v2.status(), StatusCode::CREATED);
    let problem = expect_problem(api.post("/api/v1/persons", &body).await, 409, types::DUPLICATE_PERSON).await;
    let candidates = result_ids(&problem["candidates"]);
    assert!(candidates.contains(&existing["id"].as_str().unwrap().to_owned()), "{problem}");
}

pub(crate) async fn ten_concurrent_creates_of_the_same_new_person_have_exactly_one_winner(api: &Api) {
    let body = person("Tendai", "Moyo", "1977-07-17", "30 Queensbridge Road, London E8 3ND");

    let creates = (0..10).map(|_| {
        let (api, body) = (api.clone(), body.clone());
        tokio::spawn(async move { api.post("/api/v1/persons", &body).await })
    });
    let responses: Vec<_> = join_all(creates).await.into_iter().map(Result::unwrap).collect();

    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 9, "{statuses:?}");
    let mut winner = None;
    let mut listed = HashSet::new();
    for response in responses {
        if response.status() == StatusCode::CREATED {
            winner = Some(response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
        } else {
            let problem = expect_problem(response, 409, types::DUPLICATE_PERSON).await;
            listed.insert(problem["candidates"][0]["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(listed, HashSet::from([winner.unwrap()]), "every loser names the winner");
}

pub(crate) async fn a_patch_making_a_person_a_duplicate_of_another_is_a_409(api: &Api) {
    let address = "8 Reighton Road, London E5 8SG";
    let tomasz = api.create(&person("Tomasz", "Nowak", "1979-11-02", address)).await;
    let marek = create_id(api, &person("Marek", "Nowak", "1979-11-02", address)).await;

    let response = api.patch(&marek, Some("\"0\""), &json!({ "firstName": "Tomasz", "reason": "Typo" })).await;

    let problem = expect_problem(response, 409, types::DUPLICATE_PERSON).await;
    assert_eq!(problem["candidates"][0]["id"], tomasz["id"], "{problem}");
    let unchanged: Value = api.get(&format!("/api/v1/persons/{marek}")).await.json().await.unwrap();
    assert_eq!(unchanged["firstName"], "Marek");
    assert_eq!(unchanged["versionNumber"], 0);
    let fine = api.patch(&marek, Some("\"0\""), &json!({ "middleName": "Jan" })).await;
    assert_eq!(fine.status(), StatusCode::NO_CONTENT, "other changes still work");
}

pub(crate) async fn merging_moves_tenures_and_data_to_the_survivor_and_leaves_a_tombstone_answering_308(api: &Api) {
    let survivor = api.create(&person("Grace", "Adeyemi", "1958-12-01", "22 Sandringham Road, London E8 2LL")).await;
    let mut body = person("Grace", "Adeyemi", "1958-12-01", "5 Navarino Road, London E8 1AD");
    body["middleName"] = json!("Olufunke");
    body["placeOfBirth"] = json!("Lagos");
    let duplicate = api.create_anyway(&body).await;
    let (s, d) = (survivor["id"].as_str().unwrap().to_owned(), duplicate["id"].as_str().unwrap().to_owned());
    let (s_path, d_path) = (format!("/api/v1/persons/{s}"), format!("/api/v1/persons/{d}"));
    assert_eq!(api.put(&format!("{d_path}/equality"), None, &equality()).await.status(), StatusCode::CREATED);
    let case = json!({ "caseId": "SC-77" });
    assert_eq!(api.put(&format!("{d_path}/extended/social-care"), None, &case).await.status(), StatusCode::CREATED);
    let band = json!({ "band": "A" });
    assert_eq!(api.put(&format!("{s_path}/extended/housing-needs"), None, &band).await.status(), StatusCode::CREATED);
    let cursor = api.feed_end().await;

    let response = api.merge(&s, &d, Some("\"0\"")).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "etag"), "\"1\"");
    let merged: Value = response.json().await.unwrap();
    assert_eq!(merged["id"], s.as_str());
    assert_eq!(merged["versionNumber"], 1);
    assert_eq!(merged["middleName"], "Olufunke", "missing values are taken from the duplicate");
    assert_eq!(merged["placeOfBirth"], "Lagos");
    let tenures: HashSet<&str> =
        merged["tenures"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    let expected: HashSet<&str> =
        [&survivor, &duplicate].iter().map(|p| p["tenures"][0]["id"].as_str().unwrap()).collect();
    assert_eq!(tenures, expected, "the survivor holds both tenures");
    assert_eq!(api.get(&s_path).await.json::<Value>().await.unwrap(), merged);

    let equality_read: Value = api.get(&format!("{s_path}/equality")).await.json().await.unwrap();
    assert_eq!(equality_read["nationalInsuranceNumber"], "AB123456C", "equality data moved: {equality_read}");
    assert_eq!(api.get(&format!("{s_path}/extended/social-care")).await.json::<Value>().await.unwrap(), case);
    assert_eq!(api.get(&format!("{s_path}/extended/housing-needs")).await.json::<Value>().await.unwrap(), band);

    let old = api.without_redirects().get(api.url(&d_path)).send().await.unwrap();
    assert_eq!(header(&old, "location"), s_path);
    expect_problem(old, 308, types::MERGED).await;
    assert_eq!(api.get(&d_path).await.json::<Value>().await.unwrap()["id"], s.as_str(), "followed to the survivor");

    let events = api.events_after(&cursor).await;
    let merges: Vec<&Value> = events.iter().filter(|e| e["event"]["eventType"] == "PersonMergedEvent").collect();
    assert_eq!(merges.len(), 1, "one PersonMergedEvent: {events:?}");
    let text = merges[0].to_string();
    assert!(text.contains(&s) && text.contains(&d), "the event names both persons: {text}");

    for (id, label) in [(&s, "survivor"), (&d, "duplicate")] {
        let history: Value = api.get(&format!("/api/v1/persons/{id}/history")).await.json().await.unwrap();
        let entries = history["results"].as_array().unwrap();
        assert_eq!(entries[0]["eventType"], "PersonCreatedEvent", "{label}'s history starts at its creation");
        assert!(entries.len() >= 2, "{label}'s history records the merge: {history}");
    }
}

pub(crate) async fn merging_a_person_into_itself_is_a_422(api: &Api) {
    let id = api.create_tenant().await;

    let problem = expect_problem(api.merge(&id, &id, Some("\"0\"")).await, 422, types::VALIDATION).await;

    assert_eq!(problem["errors"][0]["field"], "/duplicateId", "{problem}");
    assert_eq!(problem["errors"][0]["code"], "self_merge", "{problem}");
    let person: Value = api.get(&format!("/api/v1/persons/{id}")).await.json().await.unwrap();
    assert_eq!(person["versionNumber"], 0);
}

pub(crate) async fn merging_without_if_match_is_428_and_with_a_stale_one_409(api: &Api) {
    let survivor = api.create_tenant().await;
    let duplicate = api.create_tenant().await;

    expect_problem(api.merge(&survivor, &duplicate, None).await, 428, types::PRECONDITION_REQUIRED).await;
    let stale =
        expect_problem(api.merge(&survivor, &duplicate, Some("\"3\"")).await, 409, types::VERSION_CONFLICT).await;
    assert_eq!(stale["currentVersion"], 0);

    let still_there = api.get(&format!("/api/v1/persons/{duplicate}")).await;
    assert_eq!(still_there.status(), StatusCode::OK, "nothing was merged");
}

pub(crate) async fn merging_a_missing_deleted_or_merged_duplicate_or_into_a_deleted_survivor_is_refused(api: &Api) {
    let survivor = api.create_tenant().await;
    let deleted = api.create_tenant().await;
    assert_eq!(api.delete(&format!("/api/v1/persons/{deleted}")).await.status(), StatusCode::NO_CONTENT);
    let (other, merged) = (api.create_tenant().await, api.create_tenant().await);
    assert_eq!(api.merge(&other, &merged, Some("\"0\"")).await.status(), StatusCode::OK);

    for (duplicate, code) in [
        (Uuid::new_v4().to_string(), "unknown_person"),
        (deleted.clone(), "deleted_person"),
        (merged.clone(), "merged_person"),
    ] {
        let problem =
            expect_problem(api.merge(&survivor, &duplicate, Some("\"0\"")).await, 422, types::VALIDATION).await;
        assert_eq!(problem["errors"][0]["field"], "/duplicateId", "{code}: {problem}");
        assert_eq!(problem["errors"][0]["code"], code, "{problem}");
    }
    let fresh = api.create_tenant().await;
    expect_problem(api.merge(&deleted, &fresh, Some("\"1\"")).await, 410, types::GONE).await;
    let into_merged = api.merge(&merged, &fresh, Some("\"1\"")).await;
    assert_eq!(header(&into_merged, "location"), format!("/api/v1/persons/{other}"));
    expect_problem(into_merged, 409, types::MERGED).await;
    expect_problem(api.merge(&Uuid::new_v4().to_string(), &fresh, Some("\"0\"")).await, 404, types::NOT_FOUND).await;
    let survivor_now: Value = api.get(&format!("/api/v1/persons/{survivor}")).await.json().await.unwrap();
    assert_eq!(survivor_now["versionNumber"], 0, "nothing was merged into the survivor");
}

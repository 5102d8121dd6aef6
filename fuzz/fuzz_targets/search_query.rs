//! Search query parsing: arbitrary bytes as the query string of `GET /api/v1/persons` (ranked search) or
//! `GET /api/v1/search/persons` (Hackney's housing search), or as an `If-Match` value; the first byte chooses.
//! The query string is decoded by the server's own extractor, then checked by the route's parser.
//!
//! Never panics; every refusal is a 400 `application/problem+json` whose body is a problem naming its
//! parameters; an accepted search has a page size of 1 to 200, trimmed non-blank criteria, at least one
//! criterion besides `personType`, and reads back unchanged from the query string the API would write for its
//! next page (`links.next`); an accepted housing search has at least two characters of trimmed text; a version
//! tag is all digits and reads back from each of its three notations.

#![no_main]

use libfuzzer_sys::fuzz_target;
use person_core::service::{MAX_SEARCH_LIMIT, SearchQuery};
use person_http::fuzzing::{self, PersonSearch, Refusal};

fn assert_bad_request(refusal: &Refusal) {
    assert_eq!(refusal.status.as_u16(), 400, "a query string refused with another status than 400");
    assert_eq!(refusal.content_type.as_deref(), Some("application/problem+json"), "a refusal that is not a problem");
    let problem = refusal.problem.as_ref().expect("the body of a refusal is a problem");
    assert_eq!(problem.status, 400);
    assert!(!problem.detail.is_empty(), "a refusal without a detail");
    // `errors[].field` is the parameter's name as sent, which may be empty (`?=x`); the code never is.
    for error in problem.errors.iter().flatten() {
        assert!(!error.code.is_empty(), "a parameter error without a code");
        assert!(problem.detail.contains(error.field.as_str()), "the detail does not name the parameter");
    }
}

fn assert_trimmed(value: &Option<String>) {
    if let Some(v) = value {
        assert!(!v.is_empty() && v.trim() == v, "a criterion is blank or not trimmed");
    }
}

/// The query string of the next page, as `links.next` writes it (criteria, `limit`, `cursor`).
fn next_page_query(search: &PersonSearch) -> String {
    let q = &search.query;
    let mut parts = Vec::new();
    let mut push = |name: &str, value: &Option<String>| {
        if let Some(v) = value {
            parts.push(format!("{name}={}", fuzzing::encode_query_component(v)));
        }
    };
    push("firstName", &q.first_name);
    push("lastName", &q.last_name);
    push("dateOfBirth", &q.date_of_birth);
    push("address", &q.address);
    push("postcode", &q.postcode);
    push("nino", &q.nino);
    push("q", &q.q);
    push("reference", &search.reference.as_ref().map(ToString::to_string));
    let person_type = q.person_type.map(|t| serde_json::to_value(t).expect("a type serialises"));
    push("personType", &person_type.as_ref().and_then(|v| v.as_str()).map(str::to_owned));
    parts.push(format!("limit={}&cursor={}", q.limit, q.offset));
    parts.join("&")
}

fn criteria(q: &SearchQuery) -> [&Option<String>; 7] {
    [&q.first_name, &q.last_name, &q.date_of_birth, &q.address, &q.postcode, &q.nino, &q.q]
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 3 {
        0 => match fuzzing::search_persons(rest) {
            None => {}
            Some(Err(refusal)) => assert_bad_request(&refusal),
            Some(Ok(search)) => {
                let q = &search.query;
                assert!((1..=MAX_SEARCH_LIMIT).contains(&q.limit), "page size out of range");
                criteria(q).into_iter().for_each(assert_trimmed);
                let any_criterion = criteria(q).iter().any(|c| c.is_some());
                match &search.reference {
                    Some(_) => assert!(!any_criterion && q.person_type.is_none(), "a reference with other criteria"),
                    None => assert!(any_criterion, "a search without a criterion"),
                }
                let next = next_page_query(&search);
                match fuzzing::search_persons(next.as_bytes()) {
                    Some(Ok(again)) => assert!(again == search, "the next page's query string reads differently"),
                    Some(Err(refusal)) => panic!("the next page's query string is refused: {:?}", refusal.problem),
                    None => panic!("the next page's query string is not a request target"),
                }
            }
        },
        1 => match fuzzing::housing_search(rest) {
            None => {}
            Some(Err(refusal)) => assert_bad_request(&refusal),
            Some(Ok(q)) => {
                assert!((1..=MAX_SEARCH_LIMIT).contains(&q.limit), "page size out of range");
                let text = q.q.as_deref().expect("a housing search is free text");
                assert!(text.trim() == text && text.chars().count() >= 2, "search text blank or not trimmed");
                assert_eq!(q.offset % q.limit, 0, "the offset is not a whole number of pages");
            }
        },
        _ => {
            let Ok(raw) = std::str::from_utf8(rest) else { return };
            if let Some(version) = fuzzing::version_tag(raw) {
                let digits = raw.trim().trim_start_matches("W/").trim_matches('"');
                assert!(digits.bytes().all(|b| b.is_ascii_digit()), "a version tag with other characters");
                for notation in [format!("{version}"), format!("\"{version}\""), format!("W/\"{version}\"")] {
                    assert_eq!(fuzzing::version_tag(&notation), Some(version));
                }
            }
        }
    }
});

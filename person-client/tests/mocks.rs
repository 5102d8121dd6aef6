//! Downstream-style tests: code written against `&dyn PersonApi`, tested with `MockPersonApi` and expectations,
//! as a service embedding the client would test its own logic without a server.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use chrono::{NaiveDate, Utc};
use futures::StreamExt;
use futures::stream;
use mockall::predicate::eq;
use person_client::{
    ClientError, CreateOptions, CrossReference, DuplicateCandidate, MatchQuery, MatchResult, MockPersonApi, PersonApi,
    PersonDraft, PersonId, PersonResponse, ReferenceChange, SearchCriteria, SearchResult,
};
use person_core::matching::Grade;
use person_core::{PersonRef, PersonType};

/// The service's own logic under test: find a person the register already holds, or create it — and when a
/// concurrent create wins the race (a duplicate), use the person it created.
async fn find_or_create(api: &dyn PersonApi, draft: &PersonDraft) -> Result<PersonResponse, ClientError> {
    let query = MatchQuery {
        first_name: draft.first_name.clone(),
        surname: draft.surname.clone(),
        date_of_birth: draft.date_of_birth.clone(),
        count: Some(3),
        ..MatchQuery::default()
    };
    let candidates = api.match_person(&query).await?;
    if let Some(known) = candidates.into_iter().find(|c| c.grade == Some(Grade::Certain)) {
        return Ok(known.person);
    }
    match api.create(draft, &CreateOptions::default()).await {
        Err(ClientError::Duplicate { candidates }) if !candidates.is_empty() => api.get(candidates[0].id).await,
        other => other,
    }
}

/// Counts the tenants a search finds, across every page.
async fn count_tenants<A: PersonApi>(api: &A, surname: &str) -> Result<usize, ClientError> {
    let mut results = api.search(&SearchCriteria::new().last_name(surname).person_type(PersonType::Tenant));
    let mut count = 0;
    while let Some(result) = results.next().await {
        result?;
        count += 1;
    }
    Ok(count)
}

/// Who holds a tenure after the service tried to link it to `person`.
#[derive(Debug, PartialEq, Eq)]
enum TenureHolder {
    /// `person` (it did already, or does now).
    This,
    /// Another person, to merge with or to take the tenure from.
    Other(PersonId),
    /// A person the caller may not see (restricted): ask an administrator.
    Hidden,
}

/// The service's own logic under test: link a tenure record to a person, and report who holds it when another
/// person already does.
async fn link_tenure(
    api: &dyn PersonApi,
    person: PersonId,
    tenure: &CrossReference,
) -> Result<TenureHolder, ClientError> {
    match api.add_reference(person, None, tenure, Some("Tenancy signed".to_owned())).await {
        Ok(_) => Ok(TenureHolder::This),
        Err(ClientError::ReferenceTaken { owner: Some(owner), .. }) => Ok(TenureHolder::Other(owner)),
        Err(ClientError::ReferenceTaken { owner: None, .. }) => Ok(TenureHolder::Hidden),
        Err(other) => Err(other),
    }
}

fn person(first_name: &str) -> PersonResponse {
    PersonResponse {
        id: PersonId::new(uuid::Uuid::new_v4()).unwrap(),
        person_ref: PersonRef(7),
        title: None,
        preferred_title: None,
        first_name: Some(first_name.to_owned()),
        middle_name: None,
        surname: "Mensah".to_owned(),
        single_name: false,
        preferred_first_name: None,
        preferred_middle_name: None,
        preferred_surname: None,
        place_of_birth: None,
        date_of_birth: NaiveDate::from_ymd_opt(1980, 4, 12),
        date_of_death: None,
        is_a_minor: Some(false),
        person_types: vec![PersonType::Tenant],
        tenures: Vec::new(),
        reason: "New tenancy".to_owned(),
        links: Vec::new(),
        references: Vec::new(),
        version_number: 0,
        created_at: Utc::now(),
        last_modified: Utc::now(),
        processing_restricted: false,
    }
}

fn draft() -> PersonDraft {
    PersonDraft {
        first_name: Some("Akosua".to_owned()),
        surname: Some("Mensah".to_owned()),
        date_of_birth: Some("1980-04-12".to_owned()),
        reason: Some("New tenancy".to_owned()),
        ..PersonDraft::default()
    }
}

#[tokio::test]
async fn a_certain_match_is_used_and_nothing_is_created() {
    let known = person("Akosua");
    let mut api = MockPersonApi::new();
    let answer = known.clone();
    api.expect_match_person()
        .withf(|query| query.first_name.as_deref() == Some("Akosua") && query.count == Some(3))
        .times(1)
        .returning(move |_| {
            Ok(vec![MatchResult {
                person: answer.clone(),
                score: 0.99,
                grade: Some(Grade::Certain),
                vetoed: false,
                explanation: Vec::new(),
            }])
        });
    api.expect_create().never();

    let found = find_or_create(&api, &draft()).await.unwrap();

    assert_eq!(found.id, known.id);
}

#[tokio::test]
async fn without_a_certain_match_the_person_is_created_once() {
    let created = person("Akosua");
    let mut api = MockPersonApi::new();
    api.expect_match_person().times(1).returning(|_| Ok(Vec::new()));
    let answer = created.clone();
    api.expect_create()
        .withf(|draft, options| draft.first_name.as_deref() == Some("Akosua") && !options.allow_duplicate)
        .times(1)
        .returning(move |_, _| Ok(answer.clone()));

    let result = find_or_create(&api, &draft()).await.unwrap();

    assert_eq!(result.id, created.id);
}

#[tokio::test]
async fn losing_a_create_race_reads_the_winner_named_by_the_duplicate_error() {
    let winner = person("Akosua");
    let mut api = MockPersonApi::new();
    api.expect_match_person().times(1).returning(|_| Ok(Vec::new()));
    let winner_id = winner.id;
    api.expect_create().times(1).returning(move |_, _| {
        Err(ClientError::Duplicate {
            candidates: vec![DuplicateCandidate { id: winner_id, person_ref: PersonRef(7), score: 0.99 }],
        })
    });
    let answer = winner.clone();
    api.expect_get().with(eq(winner_id)).times(1).returning(move |_| Ok(answer.clone()));

    let result = find_or_create(&api, &draft()).await.unwrap();

    assert_eq!(result.id, winner.id);
}

#[tokio::test]
async fn other_errors_are_passed_on_to_the_caller() {
    let mut api = MockPersonApi::new();
    api.expect_match_person().returning(|_| Err(ClientError::Forbidden { detail: "persons:read".to_owned() }));
    api.expect_create().never();

    let result = find_or_create(&api, &draft()).await;

    assert!(matches!(result, Err(ClientError::Forbidden { .. })));
}

#[tokio::test]
async fn a_generic_caller_consumes_a_mocked_search_stream() {
    let mut api = MockPersonApi::new();
    api.expect_search().times(1).returning(|criteria| {
        assert_eq!(criteria.last_name.as_deref(), Some("Mensah"));
        let results = ["Akosua", "Kwame"].map(|name| Ok(SearchResult { person: person(name), score: 0.8 }));
        stream::iter(results).boxed()
    });

    assert_eq!(count_tenants(&api, "Mensah").await.unwrap(), 2);
}

fn tenure() -> CrossReference {
    CrossReference::parse("tenure:0b4f6c1e/7").unwrap()
}

#[tokio::test]
async fn linking_a_tenure_adds_the_reference_without_a_version_and_with_a_reason() {
    let holder = person("Akosua");
    let mut api = MockPersonApi::new();
    let id = holder.id;
    api.expect_add_reference()
        .withf(move |person, version, reference, reason| {
            *person == id && version.is_none() && *reference == tenure() && reason.as_deref() == Some("Tenancy signed")
        })
        .times(1)
        .returning(|_, _, reference, _| {
            Ok(ReferenceChange { added: true, version_number: 1, references: vec![reference.clone()] })
        });

    assert_eq!(link_tenure(&api, holder.id, &tenure()).await.unwrap(), TenureHolder::This);
}

#[tokio::test]
async fn a_tenure_held_by_another_person_names_that_person_or_says_it_is_hidden() {
    let other = person("Kwame").id;
    let mut api = MockPersonApi::new();
    let mut answers = vec![
        ClientError::ReferenceTaken { reference: tenure(), owner: None },
        ClientError::ReferenceTaken { reference: tenure(), owner: Some(other) },
    ];
    api.expect_add_reference().times(2).returning(move |_, _, _, _| Err(answers.pop().unwrap()));
    let id = person("Akosua").id;

    assert_eq!(link_tenure(&api, id, &tenure()).await.unwrap(), TenureHolder::Other(other));
    assert_eq!(link_tenure(&api, id, &tenure()).await.unwrap(), TenureHolder::Hidden);
}

#[tokio::test]
async fn a_mocked_reference_look_up_answers_the_holder_or_none() {
    let holder = person("Akosua");
    let mut api = MockPersonApi::new();
    let answer = holder.clone();
    api.expect_find_by_reference()
        .returning(move |reference| Ok((reference.system.as_str() == "tenure").then(|| answer.clone())));

    let found = api.find_by_reference(&tenure()).await.unwrap();
    let other = api.find_by_reference(&CrossReference::parse("housing-register:HR-1").unwrap()).await.unwrap();

    assert_eq!(found.map(|p| p.id), Some(holder.id));
    assert!(other.is_none());
}

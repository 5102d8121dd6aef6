//! Quickstart for services that embed `person-client`: find a person or record it (without ever creating a
//! duplicate), then change it safely when others may be changing it at the same time.
//!
//! 1. **Find or create.** Ask `POST /persons/match` whether the person is already known; use a `certain`
//!    candidate. Otherwise create it — and if another client created the same person in the meantime, the
//!    create answers `Duplicate { candidates }`: read and use that one.
//! 2. **Update with conflict handling.** `update` sends the version you read as `If-Match`. When someone else
//!    changed the person since, the answer is `VersionConflict`: re-read, re-apply your change to what is there
//!    now, and try again.
//!
//! Run against a local server (`cargo run -p person-server`):
//!
//! ```text
//! cargo run -p person-examples --example client_quickstart -- http://127.0.0.1:8080
//! ```
//!
//! The URL comes from the first argument, else `PERSON_API_URL`, else `http://127.0.0.1:8080`; a token for a
//! secured server from `PERSON_API_TOKEN`.

use person_client::{
    ClientError, CreateOptions, MatchQuery, PersonApi, PersonClient, PersonDraft, PersonPatch, PersonResponse,
};
use person_core::matching::Grade;
use person_core::{PersonType, Title};

/// How often a change is re-applied after version conflicts before giving up.
const MAX_CONFLICT_RETRIES: u32 = 5;

#[tokio::main]
async fn main() -> Result<(), ClientError> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PERSON_API_URL").ok())
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let person = run(&url, std::env::var("PERSON_API_TOKEN").ok()).await?;
    println!("person {} (personRef {}) is at version {}", person.id, person.person_ref.0, person.version_number);
    Ok(())
}

/// Finds or records the example person on the server at `base_url`, then records her preferred name.
///
/// # Errors
/// Any [`ClientError`] the API answers that this flow does not handle itself.
pub async fn run(base_url: &str, token: Option<String>) -> Result<PersonResponse, ClientError> {
    let mut builder = PersonClient::builder(base_url).user_agent("person-examples/client-quickstart");
    if let Some(token) = token {
        builder = builder.token(token);
    }
    let client = builder.build()?;

    let person = find_or_create(&client, &example_person()).await?;
    update_with_retry(&client, person, |_current| {
        PersonPatch::new().preferred_first_name("Thandi").reason("Preferred name given at the front desk")
    })
    .await
}

/// The person this example records.
pub fn example_person() -> PersonDraft {
    PersonDraft {
        title: Some(Title::Ms),
        first_name: Some("Nomathemba".to_owned()),
        surname: Some("Khumalo".to_owned()),
        date_of_birth: Some("1991-08-23".to_owned()),
        person_types: Some(vec![PersonType::Tenant]),
        reason: Some("New tenancy".to_owned()),
        ..PersonDraft::default()
    }
}

/// Returns the recorded person `draft` describes, creating it only when it is not known yet.
///
/// # Errors
/// Any [`ClientError`] but a duplicate with candidates (which this resolves by reading the first one).
pub async fn find_or_create(api: &dyn PersonApi, draft: &PersonDraft) -> Result<PersonResponse, ClientError> {
    let query = MatchQuery {
        first_name: draft.first_name.clone(),
        surname: draft.surname.clone(),
        date_of_birth: draft.date_of_birth.clone(),
        count: Some(5),
        ..MatchQuery::default()
    };
    // Staff would be shown `probable` and `possible` candidates too; a program only trusts `certain`.
    let candidates = api.match_person(&query).await?;
    if let Some(known) = candidates.into_iter().find(|c| c.grade == Some(Grade::Certain)) {
        println!("found {} by matching", known.person.id);
        return Ok(known.person);
    }
    match api.create(draft, &CreateOptions::default()).await {
        Ok(created) => {
            println!("created {}", created.id);
            Ok(created)
        }
        // Recorded by someone else between the match and the create: the server refuses a second record and
        // names the first.
        Err(ClientError::Duplicate { candidates }) if !candidates.is_empty() => {
            println!("another client recorded the person first: using {}", candidates[0].id);
            api.get(candidates[0].id).await
        }
        Err(other) => Err(other),
    }
}

/// Applies the patch `change` builds from the person as it currently is, starting from `read` (which may
/// already be stale): on a version conflict it re-reads and re-applies, up to [`MAX_CONFLICT_RETRIES`] times.
///
/// # Errors
/// The last [`ClientError::VersionConflict`] when the person keeps changing, or any other error.
pub async fn update_with_retry(
    api: &dyn PersonApi,
    read: PersonResponse,
    change: impl Fn(&PersonResponse) -> PersonPatch,
) -> Result<PersonResponse, ClientError> {
    let mut current = read;
    let mut conflicts = 0;
    loop {
        match api.update(current.id, current.version_number, &change(&current)).await {
            Ok(updated) => return Ok(updated),
            Err(ClientError::VersionConflict { current: stored }) if conflicts < MAX_CONFLICT_RETRIES => {
                conflicts += 1;
                println!("version {} is stale (now {stored:?}): re-reading", current.version_number);
                current = api.get(current.id).await?;
            }
            Err(other) => return Err(other),
        }
    }
}

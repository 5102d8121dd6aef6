//! Search (`GET /persons`), match (`POST /persons/match`) and the duplicate check of creates and changes
//! (SPEC §6): query profiles, candidate retrieval by blocking keys, scoring, relevance, ranking and paging.
//!
//! The store only answers "which live, visible persons have these keys" ([`PersonRepository::candidates`]),
//! ranked the same way by every store; which keys to ask for, how each candidate scores, what is relevant enough
//! to show and in which order are decided here, so the same data gives the same results on every backend.
//! Nothing here logs or audits a query value: audit entries carry person ids and result counts only.
//!
//! [`PersonRepository::candidates`]: crate::ports::PersonRepository::candidates

use std::cmp::Ordering;
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use super::{LookupError, PersonService, RequestContext};
use crate::access::Permission;
use crate::audit::{AuditAction, AuditOutcome};
use crate::equality::{INVALID_NINO, normalise_nino};
use crate::matching::{
    Grade, KeySource, MatchProfile, MatchScore, SearchKey, dedup_key, person_keys, prepared::PreparedProfile,
    query_keys, score, score::score_prepared,
};
use crate::person::{Person, PersonId, PersonRef, PersonType};
use crate::ports::{Candidate, StoreError};
use crate::postcode;
use crate::validate::{self, BodyError, ValidationErrors, codes as field_codes};

/// Page size of a search when the caller gives none.
pub const DEFAULT_SEARCH_LIMIT: u32 = 20;

/// Largest page of a search.
pub const MAX_SEARCH_LIMIT: u32 = 200;

/// Candidates a match answers when the request gives no `count`.
pub const DEFAULT_MATCH_COUNT: u32 = 10;

/// Most candidates a match answers.
pub const MAX_MATCH_COUNT: u32 = 50;

/// Shortest name or free-text search (in characters): shorter prefixes would match half the register.
pub const MIN_PREFIX_CHARS: usize = 2;

/// Longest accepted search value, in characters.
const MAX_CRITERION_CHARS: usize = validate::MAX_FREE_TEXT;

/// Candidates fetched by key for a search: the ranked results are these, scored. Bounded so a search costs the
/// same at any table size; a query matching more persons than this should be narrowed.
const SEARCH_CANDIDATES: u32 = 500;

/// Candidates fetched by key for a match.
const MATCH_CANDIDATES: u32 = 200;

/// Candidates fetched by key for the duplicate check of a create: a `certain` match shares most keys with the
/// new person, so it ranks among the first.
const DUPLICATE_CANDIDATES: u32 = 50;

/// Field error codes of search and match requests, besides those of [`crate::validate::codes`].
pub mod codes {
    /// A name or free-text criterion shorter than [`super::MIN_PREFIX_CHARS`].
    pub const TOO_SHORT: &str = "too_short";
    /// A number outside its range (`limit`, `count`).
    pub const OUT_OF_RANGE: &str = "out_of_range";
}

/// A search (`GET /persons`): any combination of criteria, at least one; `person_type` filters; `limit` and
/// `offset` page the ranked results.
#[derive(Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// First name, or its prefix (≥ 2 characters).
    pub first_name: Option<String>,
    /// Surname (`lastName` or `surname`), or its prefix (≥ 2 characters).
    pub last_name: Option<String>,
    /// Date of birth as given: `YYYY-MM-DD`, an ISO date-time, `DD/MM/YYYY`, `DD-MM-YYYY`, `DD.MM.YYYY` or
    /// `YYYY/MM/DD`.
    pub date_of_birth: Option<String>,
    /// Free-text address; a postcode in it is searched as one.
    pub address: Option<String>,
    /// UK postcode, with or without its space.
    pub postcode: Option<String>,
    /// National Insurance number in any spacing or case (needs `equality:read`).
    pub nino: Option<String>,
    /// Free text over names (either order), a postcode, a date of birth and, for `equality:read` holders, an NI
    /// number.
    pub q: Option<String>,
    /// Only persons with this role.
    pub person_type: Option<PersonType>,
    /// Page size, 1..=[`MAX_SEARCH_LIMIT`] (the caller applies [`DEFAULT_SEARCH_LIMIT`] when none is given).
    pub limit: u32,
    /// How many ranked results to skip.
    pub offset: u32,
}

impl Default for SearchQuery {
    fn default() -> Self {
        Self {
            first_name: None,
            last_name: None,
            date_of_birth: None,
            address: None,
            postcode: None,
            nino: None,
            q: None,
            person_type: None,
            limit: DEFAULT_SEARCH_LIMIT,
            offset: 0,
        }
    }
}

impl fmt::Debug for SearchQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Criteria are personal data: only which ones were given is printed.
        let given = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("SearchQuery")
            .field("first_name", &given(&self.first_name))
            .field("last_name", &given(&self.last_name))
            .field("date_of_birth", &given(&self.date_of_birth))
            .field("address", &given(&self.address))
            .field("postcode", &given(&self.postcode))
            .field("nino", &given(&self.nino))
            .field("q", &given(&self.q))
            .field("person_type", &self.person_type)
            .field("limit", &self.limit)
            .field("offset", &self.offset)
            .finish()
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The person.
    pub person: Person,
    /// How well it matches the query, 0..=1.
    pub score: f64,
}

/// A page of ranked search results.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    /// The results on this page, best first (score descending, then `personRef`).
    pub hits: Vec<SearchHit>,
    /// How many results were ranked in all (every page together). Ranking considers at most the 500 persons
    /// sharing the most keys with the query, so a very broad query (a two-letter prefix) should be narrowed.
    pub total: u64,
    /// The `offset` of the next page, `None` on the last one.
    pub next_offset: Option<u32>,
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// No criterion, an unreadable date of birth or postcode or NI number, a prefix shorter than two
    /// characters, a limit out of range (→ 400/422, the HTTP layer decides).
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// A search by NI number without `equality:read` (→ 403).
    #[error("searching by National Insurance number needs equality:read")]
    Forbidden,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One candidate of a match: the person and its explained score (graded at least `possible`).
#[derive(Debug, Clone, PartialEq)]
pub struct MatchCandidate {
    /// The person.
    pub person: Person,
    /// Score, grade and per-field explanation.
    pub score: MatchScore,
}

/// Why a match failed.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    /// Not a usable body: malformed, wrong type, unknown key (→ 400).
    #[error(transparent)]
    Body(#[from] BodyError),
    /// No field given, or an unreadable value, or `count` out of range (→ 422).
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// A match on an NI number without `equality:read` (→ 403).
    #[error("matching on a National Insurance number needs equality:read")]
    Forbidden,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A recorded person that a create or change would duplicate (listed in the 409 `duplicate-person` problem).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DuplicateCandidate {
    /// The recorded person's id.
    pub id: PersonId,
    /// Its `personRef`.
    pub person_ref: PersonRef,
    /// The match score, 0..=1.
    pub score: f64,
}

/// Everything a store holds to find a person: its blocking keys per source and its dedup key.
///
/// The one definition of "the keys of a person", used by the service for every write and by stores that
/// recompute keys for data written before keys existed, so both always agree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PersonKeys {
    /// [`KeySource::Person`] keys: names, date of birth, postcodes.
    pub person: Vec<SearchKey>,
    /// [`KeySource::Equality`] keys: the NI number (empty without one).
    pub equality: Vec<SearchKey>,
    /// The duplicate-prevention key, unique among live persons.
    pub dedup: Option<String>,
}

impl PersonKeys {
    /// The keys of `person`, whose equality data holds `nino`. A person that is not live (deleted, merged) has
    /// none: it is never a candidate and never blocks a create.
    #[must_use]
    pub fn of(person: &Person, nino: Option<&str>) -> Self {
        if !person.status.is_active() {
            return Self::default();
        }
        let profile = MatchProfile::from_person(person, nino);
        Self {
            person: person_keys(&profile, KeySource::Person),
            equality: if nino.is_some() { person_keys(&profile, KeySource::Equality) } else { Vec::new() },
            dedup: dedup_key(&profile),
        }
    }
}

impl PersonService {
    /// Searches live, unrestricted persons (SPEC §6): typo-, case- and accent-tolerant, prefixes of two
    /// characters or more, nicknames and forename/surname swaps, day/month swaps of the date of birth (ranked
    /// lower). Results are ranked by score, then `personRef`, and paged; the search is audited with the ids of
    /// the persons on the page (never the criteria).
    ///
    /// # Errors
    /// See [`SearchError`].
    pub async fn search(&self, ctx: &RequestContext, query: SearchQuery) -> Result<SearchPage, SearchError> {
        let may_see_nino = ctx.permissions.allows(&Permission::EqualityRead);
        let parsed = ParsedQuery::parse(&query, may_see_nino)?;
        let candidates = self.repos.persons.candidates(&parsed.keys(), SEARCH_CANDIDATES).await?;
        let mut hits: Vec<SearchHit> = candidates
            .into_iter()
            .filter(|c| query.person_type.is_none_or(|t| c.person.person_types.contains(&t)))
            .filter_map(|c| {
                let score = parsed.relevance(&c)?;
                Some(SearchHit { person: c.person, score })
            })
            .collect();
        hits.sort_by(|a, b| by_score_then_ref(a.score, &a.person, b.score, &b.person));
        let total = hits.len();
        let offset = query.offset as usize;
        let page: Vec<SearchHit> = hits.into_iter().skip(offset).take(query.limit as usize).collect();
        let end = offset.saturating_add(page.len());
        let next_offset = if end < total { u32::try_from(end).ok() } else { None };
        let ids = page.iter().map(|h| h.person.id).collect();
        self.audit_disclosure(ctx, ids, &format!("results={}", page.len())).await?;
        Ok(SearchPage { hits: page, total: total as u64, next_offset })
    }

    /// "Is this person already known?" (SPEC §6): up to `count` recorded persons graded at least `possible`
    /// against the body, best first, each with its explained score. Audited as a search.
    ///
    /// The body is `{firstName?, middleName?, surname?, dateOfBirth?, postcode?, address?,
    /// nationalInsuranceNumber?, count?}` (`count` 1..=[`MAX_MATCH_COUNT`], default [`DEFAULT_MATCH_COUNT`]);
    /// unknown keys are refused.
    ///
    /// # Errors
    /// See [`MatchError`].
    pub async fn match_person(&self, ctx: &RequestContext, body: &[u8]) -> Result<Vec<MatchCandidate>, MatchError> {
        let request = MatchRequest::parse(body)?;
        if request.nino.is_some() && !ctx.permissions.allows(&Permission::EqualityRead) {
            return Err(MatchError::Forbidden);
        }
        let (profile, count) = request.validate()?;
        let candidates = self.repos.persons.candidates(&query_keys(&profile), MATCH_CANDIDATES).await?;
        // The query is normalised once, not once per candidate.
        let prepared = PreparedProfile::new(&profile);
        let mut matches: Vec<MatchCandidate> = candidates
            .into_iter()
            .filter_map(|c| {
                let candidate = PreparedProfile::new(&candidate_profile(&c, profile.nino.is_some()));
                let scored = score_prepared(&prepared, &candidate);
                (scored.grade.is_some() && !scored.vetoed).then_some(MatchCandidate { person: c.person, score: scored })
            })
            .collect();
        matches.sort_by(|a, b| by_score_then_ref(a.score.score, &a.person, b.score.score, &b.person));
        matches.truncate(count as usize);
        let ids = matches.iter().map(|m| m.person.id).collect();
        self.audit_disclosure(ctx, ids, &format!("match results={}", matches.len())).await?;
        Ok(matches)
    }

    /// Recorded persons (other than `exclude`) that `profile` matches `certain`ly, best first.
    pub(super) async fn certain_duplicates(
        &self,
        profile: &MatchProfile,
        exclude: Option<PersonId>,
    ) -> Result<Vec<DuplicateCandidate>, StoreError> {
        let candidates = self.repos.persons.candidates(&query_keys(profile), DUPLICATE_CANDIDATES).await?;
        let prepared = PreparedProfile::new(profile);
        let mut certain: Vec<(f64, Person)> = candidates
            .into_iter()
            .filter(|c| Some(c.person.id) != exclude)
            .filter_map(|c| {
                let scored = score_prepared(&prepared, &PreparedProfile::new(&candidate_profile(&c, false)));
                (scored.grade == Some(Grade::Certain) && !scored.vetoed).then_some((scored.score, c.person))
            })
            .collect();
        certain.sort_by(|a, b| by_score_then_ref(a.0, &a.1, b.0, &b.1));
        Ok(certain
            .into_iter()
            .map(|(score, person)| DuplicateCandidate { id: person.id, person_ref: person.person_ref, score })
            .collect())
    }

    /// The person holding the dedup key a write was refused for, as a duplicate candidate of `profile`; empty
    /// when the caller may not see it (processing restricted) or it is gone by now.
    pub(super) async fn duplicate_of(
        &self,
        ctx: &RequestContext,
        profile: &MatchProfile,
        existing: PersonId,
    ) -> Result<Vec<DuplicateCandidate>, StoreError> {
        match self.load(ctx, existing).await {
            Ok(person) => {
                let scored = score(profile, &MatchProfile::from_person(&person, None));
                Ok(vec![DuplicateCandidate { id: person.id, person_ref: person.person_ref, score: scored.score }])
            }
            Err(LookupError::Store(e)) => Err(e),
            Err(_) => Ok(Vec::new()),
        }
    }

    /// Records that persons were disclosed by a search, a match or a duplicate check: their ids and a count,
    /// never the criteria.
    pub(super) async fn audit_disclosure(
        &self,
        ctx: &RequestContext,
        ids: Vec<PersonId>,
        detail: &str,
    ) -> Result<(), StoreError> {
        let entry = self.audit_entry(ctx, AuditAction::Search, ids, Some(detail.to_owned()), AuditOutcome::Success);
        self.repos.audit.append(entry).await
    }
}

/// Best score first; equal scores by `personRef`, so ties are ordered the same everywhere.
fn by_score_then_ref(a_score: f64, a: &Person, b_score: f64, b: &Person) -> Ordering {
    b_score.total_cmp(&a_score).then_with(|| a.person_ref.cmp(&b.person_ref))
}

/// The candidate as matching sees it; its NI number only when the query has one (a caller without
/// `equality:read` never has one, and a query without one gains nothing from it).
fn candidate_profile(candidate: &Candidate, with_nino: bool) -> MatchProfile {
    let nino = if with_nino { candidate.nino.as_deref() } else { None };
    MatchProfile::from_person(&candidate.person, nino)
}

/// Folds a name for prefix comparison: accents and case removed, letters and digits only.
fn fold(text: &str) -> String {
    text.nfkd()
        .filter(|c| !is_combining_mark(*c))
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The parts of a name a prefix may match: the whole name and each hyphen- or space-separated part.
fn name_parts(name: &str) -> Vec<String> {
    let mut parts = vec![fold(name)];
    parts.extend(name.split(|c: char| c == '-' || c.is_whitespace()).map(fold).filter(|p| !p.is_empty()));
    parts
}

/// Reads a date of birth as people write it.
fn parse_search_date(raw: &str) -> Option<NaiveDate> {
    validate::parse_lenient_date(raw).or_else(|| {
        ["%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d"].iter().find_map(|f| NaiveDate::parse_from_str(raw.trim(), f).ok())
    })
}

/// A trimmed, non-blank value.
fn given(value: Option<&String>) -> Option<&str> {
    value.map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// One reading of a search: a profile to score with, and the name prefixes it asks for.
struct Interpretation {
    profile: MatchProfile,
    /// The profile normalised once, for scoring every candidate.
    prepared: PreparedProfile,
    first_prefix: Option<String>,
    surname_prefix: Option<String>,
}

impl Interpretation {
    fn new(profile: MatchProfile) -> Self {
        let prefix = |n: &Option<String>| n.as_deref().map(fold).filter(|p| p.chars().count() >= MIN_PREFIX_CHARS);
        Self {
            first_prefix: prefix(&profile.first_name),
            surname_prefix: prefix(&profile.surname),
            prepared: PreparedProfile::new(&profile),
            profile,
        }
    }

    /// True when every name prefix asked for starts one of the candidate's names (or name parts).
    fn prefixes_match(&self, person: &Person) -> bool {
        if self.first_prefix.is_none() && self.surname_prefix.is_none() {
            return false;
        }
        let starts = |prefix: &Option<String>, names: Vec<Option<&str>>| match prefix {
            None => true,
            Some(prefix) => names.into_iter().flatten().flat_map(name_parts).any(|part| part.starts_with(prefix)),
        };
        let firsts = vec![
            person.first_name.as_ref().map(|n| n.as_str()),
            person.preferred_first_name.as_ref().map(|n| n.as_str()),
        ];
        let surnames = vec![Some(person.surname.as_str()), person.preferred_surname.as_ref().map(|n| n.as_str())];
        starts(&self.first_prefix, firsts) && starts(&self.surname_prefix, surnames)
    }

    /// The candidate's score under this reading, when it is relevant: not vetoed, and either graded by the model
    /// or agreeing on what was asked (no comparison against it, at least one for it), or matching the name
    /// prefixes asked for with nothing else against it.
    fn relevance(&self, candidate: &Candidate, with_nino: bool) -> Option<f64> {
        let scored = score_prepared(&self.prepared, &PreparedProfile::new(&candidate_profile(candidate, with_nino)));
        if scored.vetoed {
            return None;
        }
        let against = |name_fields_too: bool| {
            scored.comparisons.iter().any(|c| c.weight < 0.0 && (name_fields_too || !is_name_field(&c.field)))
        };
        let agrees = scored.comparisons.iter().any(|c| c.weight > 0.0) && !against(true);
        let prefixed = self.prefixes_match(&candidate.person) && !against(false);
        (scored.grade.is_some() || agrees || prefixed).then_some(scored.score)
    }
}

fn is_name_field(field: &str) -> bool {
    field.to_ascii_lowercase().contains("name")
}

/// A validated search: its readings of the criteria.
struct ParsedQuery {
    interpretations: Vec<Interpretation>,
    with_nino: bool,
}

impl ParsedQuery {
    fn parse(query: &SearchQuery, may_see_nino: bool) -> Result<Self, SearchError> {
        let nino_given = given(query.nino.as_ref());
        if nino_given.is_some() && !may_see_nino {
            return Err(SearchError::Forbidden);
        }
        let mut errors = ValidationErrors::default();
        let first_name = given(query.first_name.as_ref());
        let last_name = given(query.last_name.as_ref());
        let q = given(query.q.as_ref());
        for (field, value) in [("firstName", first_name), ("lastName", last_name), ("q", q)] {
            let Some(value) = value else { continue };
            let chars = value.chars().count();
            if chars < MIN_PREFIX_CHARS {
                errors.push(field, codes::TOO_SHORT, format!("give at least {MIN_PREFIX_CHARS} characters"));
            }
        }
        let address = given(query.address.as_ref());
        for (field, value) in [
            ("firstName", first_name),
            ("lastName", last_name),
            ("q", q),
            ("address", address),
            ("postcode", given(query.postcode.as_ref())),
            ("dateOfBirth", given(query.date_of_birth.as_ref())),
            ("nino", nino_given),
        ] {
            if value.is_some_and(|v| v.chars().count() > MAX_CRITERION_CHARS) {
                errors.push(field, field_codes::TOO_LONG, format!("at most {MAX_CRITERION_CHARS} characters"));
            }
        }
        let date_of_birth = match given(query.date_of_birth.as_ref()) {
            None => None,
            Some(raw) => {
                let date = parse_search_date(raw);
                if date.is_none() {
                    errors.push(
                        "dateOfBirth",
                        field_codes::INVALID_DATE_OF_BIRTH,
                        "not a date: use YYYY-MM-DD or DD/MM/YYYY",
                    );
                }
                date
            }
        };
        let mut postcodes = Vec::new();
        if let Some(raw) = given(query.postcode.as_ref()) {
            match postcode::normalise(raw) {
                Some(p) => postcodes.push(p),
                None => errors.push("postcode", field_codes::INVALID_POSTCODE, "not a UK postcode"),
            }
        }
        if let Some(found) = address.and_then(postcode::find_in_address)
            && !postcodes.contains(&found)
        {
            postcodes.push(found);
        }
        let nino = match nino_given {
            None => None,
            Some(raw) => {
                let nino = normalise_nino(raw);
                if nino.is_none() {
                    errors.push("nino", INVALID_NINO, "not a National Insurance number");
                }
                nino
            }
        };
        if !(1..=MAX_SEARCH_LIMIT).contains(&query.limit) {
            errors.push("limit", codes::OUT_OF_RANGE, format!("limit must be 1 to {MAX_SEARCH_LIMIT}"));
        }
        let criteria = [first_name, last_name, q, address, given(query.postcode.as_ref())].iter().any(Option::is_some)
            || given(query.date_of_birth.as_ref()).is_some()
            || nino_given.is_some();
        if !criteria {
            errors.push(
                "",
                field_codes::REQUIRED,
                "give at least one of firstName, lastName, dateOfBirth, address, postcode, nino, q",
            );
        }
        if !errors.is_empty() {
            return Err(errors.into());
        }

        let base = MatchProfile {
            first_name: first_name.map(str::to_owned),
            middle_name: None,
            surname: last_name.map(str::to_owned),
            preferred_first_name: None,
            date_of_birth,
            postcodes,
            addresses: address.map(str::to_owned).into_iter().collect(),
            nino,
        };
        let profiles = match q {
            None => vec![base],
            Some(q) => read_free_text(q, base, may_see_nino),
        };
        let with_nino = profiles.iter().any(|p| p.nino.is_some());
        Ok(Self { interpretations: profiles.into_iter().map(Interpretation::new).collect(), with_nino })
    }

    /// Every key any reading asks for, once each, in a stable order.
    fn keys(&self) -> Vec<SearchKey> {
        let mut keys: Vec<SearchKey> = self.interpretations.iter().flat_map(|i| query_keys(&i.profile)).collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// The best score of any reading under which the candidate is relevant.
    fn relevance(&self, candidate: &Candidate) -> Option<f64> {
        self.interpretations.iter().filter_map(|i| i.relevance(candidate, self.with_nino)).reduce(f64::max)
    }
}

/// Reads free text (`q`) into the profiles it may mean: a postcode, a date of birth and (for callers who may
/// see one) an NI number are recognised wherever they are; the remaining words are names, read forename first
/// and surname first. Numbers alone (a `personRef`) are not searched.
fn read_free_text(q: &str, mut base: MatchProfile, may_see_nino: bool) -> Vec<MatchProfile> {
    let tokens: Vec<&str> = q.split(|c: char| c.is_whitespace() || c == ',').filter(|t| !t.is_empty()).collect();
    let mut names: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i];
        let pair = tokens.get(i + 1).filter(|next| next.len() == 3).map(|next| format!("{token}{next}"));
        if let Some(found) = pair.as_deref().and_then(postcode::normalise) {
            if !base.postcodes.contains(&found) {
                base.postcodes.push(found);
            }
            i += 2;
            continue;
        }
        i += 1;
        if let Some(found) = postcode::normalise(token) {
            if !base.postcodes.contains(&found) {
                base.postcodes.push(found);
            }
        } else if let Some(date) = parse_search_date(token) {
            base.date_of_birth.get_or_insert(date);
        } else if let Some(nino) = normalise_nino(token) {
            if may_see_nino {
                base.nino.get_or_insert(nino);
            }
        } else if token.chars().any(char::is_alphabetic) && token.chars().count() >= MIN_PREFIX_CHARS {
            names.push(token);
        }
    }
    let with = |first: Option<&str>, middle: Option<String>, surname: Option<String>| {
        let mut profile = base.clone();
        if profile.first_name.is_none() {
            profile.first_name = first.map(str::to_owned);
        }
        if profile.surname.is_none() {
            profile.surname = surname;
        }
        if profile.middle_name.is_none() {
            profile.middle_name = middle;
        }
        profile
    };
    match names.as_slice() {
        [] => vec![base],
        [only] => vec![with(None, None, Some((*only).to_owned())), with(Some(only), None, None)],
        [first, middle @ .., last] => {
            let middle = (!middle.is_empty()).then(|| middle.join(" "));
            let mut readings = vec![
                with(Some(first), middle, Some((*last).to_owned())),
                with(Some(last), None, Some((*first).to_owned())),
            ];
            if names.len() > 2 {
                readings.push(with(Some(first), None, Some(names[1..].join(" "))));
            }
            readings
        }
    }
}

/// The body of a match request, as sent.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MatchBody {
    first_name: Option<String>,
    middle_name: Option<String>,
    surname: Option<String>,
    date_of_birth: Option<String>,
    postcode: Option<String>,
    address: Option<String>,
    national_insurance_number: Option<String>,
    #[serde(default, deserialize_with = "whole_number")]
    count: Option<u32>,
}

/// A JSON number that is a whole number: `5` or `5.0` (JSON does not tell them apart, and JSON Schema's
/// `integer` accepts both). Fractions and negative or too large numbers are refused.
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else { return Ok(None) };
    let whole = number.as_u64().or_else(|| {
        number.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX)).map(|f| f as u64)
    });
    whole.and_then(|n| u32::try_from(n).ok()).map(Some).ok_or_else(|| {
        serde::de::Error::invalid_value(serde::de::Unexpected::Other(&number.to_string()), &"a whole number")
    })
}

/// A match request with blank values dropped.
struct MatchRequest {
    first_name: Option<String>,
    middle_name: Option<String>,
    surname: Option<String>,
    date_of_birth: Option<String>,
    postcode: Option<String>,
    address: Option<String>,
    nino: Option<String>,
    count: Option<u32>,
}

impl MatchRequest {
    fn parse(body: &[u8]) -> Result<Self, MatchError> {
        let object = validate::parse_object(body)?;
        let raw: MatchBody = serde_path_to_error::deserialize(serde_json::Value::Object(object))
            .map_err(|e| validate::body_error_from_path(e.path(), &e.inner().to_string()))?;
        let keep = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        Ok(Self {
            first_name: keep(raw.first_name),
            middle_name: keep(raw.middle_name),
            surname: keep(raw.surname),
            date_of_birth: keep(raw.date_of_birth),
            postcode: keep(raw.postcode),
            address: keep(raw.address),
            nino: keep(raw.national_insurance_number),
            count: raw.count,
        })
    }

    fn validate(self) -> Result<(MatchProfile, u32), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let any = [
            &self.first_name,
            &self.middle_name,
            &self.surname,
            &self.date_of_birth,
            &self.postcode,
            &self.address,
            &self.nino,
        ]
        .iter()
        .any(|v| v.is_some());
        if !any {
            errors.push(
                "",
                field_codes::REQUIRED,
                "give at least one of firstName, middleName, surname, dateOfBirth, postcode, address, \
                 nationalInsuranceNumber",
            );
        }
        for (field, value) in [
            ("/firstName", &self.first_name),
            ("/middleName", &self.middle_name),
            ("/surname", &self.surname),
            ("/address", &self.address),
        ] {
            if value.as_ref().is_some_and(|v| v.chars().count() > MAX_CRITERION_CHARS) {
                errors.push(field, field_codes::TOO_LONG, format!("at most {MAX_CRITERION_CHARS} characters"));
            }
        }
        let date_of_birth = self.date_of_birth.as_deref().and_then(|raw| {
            let date = parse_search_date(raw);
            if date.is_none() {
                errors.push("/dateOfBirth", field_codes::INVALID_DATE_OF_BIRTH, "not a date: use YYYY-MM-DD");
            }
            date
        });
        let mut postcodes = Vec::new();
        if let Some(raw) = &self.postcode {
            match postcode::normalise(raw) {
                Some(p) => postcodes.push(p),
                None => errors.push("/postcode", field_codes::INVALID_POSTCODE, "not a UK postcode"),
            }
        }
        if let Some(found) = self.address.as_deref().and_then(postcode::find_in_address)
            && !postcodes.contains(&found)
        {
            postcodes.push(found);
        }
        let nino = self.nino.as_deref().and_then(|raw| {
            let nino = normalise_nino(raw);
            if nino.is_none() {
                errors.push("/nationalInsuranceNumber", INVALID_NINO, "not a National Insurance number");
            }
            nino
        });
        let count = self.count.unwrap_or(DEFAULT_MATCH_COUNT);
        if !(1..=MAX_MATCH_COUNT).contains(&count) {
            errors.push("/count", codes::OUT_OF_RANGE, format!("count must be 1 to {MAX_MATCH_COUNT}"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let profile = MatchProfile {
            first_name: self.first_name,
            middle_name: self.middle_name,
            surname: self.surname,
            preferred_first_name: None,
            date_of_birth,
            postcodes,
            addresses: self.address.into_iter().collect(),
            nino,
        };
        Ok((profile, count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile_names(profiles: &[MatchProfile]) -> Vec<(Option<String>, Option<String>)> {
        profiles.iter().map(|p| (p.first_name.clone(), p.surname.clone())).collect()
    }

    fn s(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    #[test]
    fn free_text_is_read_forename_first_and_surname_first_with_postcode_and_date_recognised() {
        let profiles = read_free_text("Jon Smyth e8 1dy 17/05/1990", MatchProfile::default(), false);
        assert_eq!(profile_names(&profiles), vec![(s("Jon"), s("Smyth")), (s("Smyth"), s("Jon"))]);
        for profile in &profiles {
            assert_eq!(profile.postcodes, vec!["E8 1DY".to_owned()]);
            assert_eq!(profile.date_of_birth, NaiveDate::from_ymd_opt(1990, 5, 17));
        }
    }

    #[test]
    fn one_word_is_tried_as_surname_and_as_first_name() {
        let profiles = read_free_text("kimakhe", MatchProfile::default(), false);
        assert_eq!(profile_names(&profiles), vec![(None, s("kimakhe")), (s("kimakhe"), None)]);
    }

    #[test]
    fn an_ni_number_in_free_text_is_used_only_by_callers_who_may_see_it() {
        let hidden = read_free_text("AB 123456C smith", MatchProfile::default(), false);
        assert!(hidden.iter().all(|p| p.nino.is_none()));
        let shown = read_free_text("AB123456C smith", MatchProfile::default(), true);
        assert!(shown.iter().all(|p| p.nino.as_deref() == Some("AB123456C")));
    }

    #[test]
    fn three_names_also_read_as_a_two_word_surname() {
        let profiles = read_free_text("Mary Ali Khan", MatchProfile::default(), false);
        assert_eq!(
            profile_names(&profiles),
            vec![(s("Mary"), s("Khan")), (s("Khan"), s("Mary")), (s("Mary"), s("Ali Khan"))]
        );
        assert_eq!(profiles[0].middle_name, s("Ali"));
    }

    #[test]
    fn names_fold_accents_case_and_punctuation_for_prefixes() {
        assert_eq!(fold("Zoë"), "zoe");
        assert_eq!(fold("O'Neill"), "oneill");
        assert_eq!(name_parts("Ali-Khan"), vec!["alikhan".to_owned(), "ali".to_owned(), "khan".to_owned()]);
    }

    #[test]
    fn search_dates_are_read_leniently() {
        let expected = NaiveDate::from_ymd_opt(1990, 5, 17);
        for raw in ["1990-05-17", "17/05/1990", "17-05-1990", "17.05.1990", "1990/05/17", "1990-05-17T00:00:00"] {
            assert_eq!(parse_search_date(raw), expected, "{raw}");
        }
        assert_eq!(parse_search_date("17th May"), None);
    }

    #[test]
    fn a_query_without_criteria_or_with_short_prefixes_is_invalid() {
        let fields = |query: SearchQuery| match ParsedQuery::parse(&query, false) {
            Err(SearchError::Invalid(errors)) => {
                errors.errors().iter().map(|e| (e.field.clone(), e.code.clone())).collect::<Vec<_>>()
            }
            other => panic!("expected invalid, got {:?}", other.err()),
        };
        assert_eq!(fields(SearchQuery::default()), vec![(String::new(), "required".to_owned())]);
        let typed_only = SearchQuery { person_type: Some(PersonType::Tenant), ..SearchQuery::default() };
        assert_eq!(fields(typed_only), vec![(String::new(), "required".to_owned())]);
        let short = SearchQuery { first_name: s("J"), q: s(" x "), ..SearchQuery::default() };
        assert_eq!(
            fields(short),
            vec![("firstName".to_owned(), "too_short".to_owned()), ("q".to_owned(), "too_short".to_owned())]
        );
        let bad = SearchQuery {
            date_of_birth: s("31/02/1990"),
            postcode: s("not a postcode"),
            limit: 0,
            ..SearchQuery::default()
        };
        assert_eq!(
            fields(bad),
            vec![
                ("dateOfBirth".to_owned(), "W9".to_owned()),
                ("postcode".to_owned(), "invalid_postcode".to_owned()),
                ("limit".to_owned(), "out_of_range".to_owned()),
            ]
        );
    }

    #[test]
    fn an_ni_number_search_without_equality_read_is_forbidden() {
        let query = SearchQuery { nino: s("AB 12 34 56 C"), ..SearchQuery::default() };
        assert!(matches!(ParsedQuery::parse(&query, false), Err(SearchError::Forbidden)));
        let parsed = ParsedQuery::parse(&query, true).map_err(|e| e.to_string()).unwrap();
        assert_eq!(parsed.interpretations[0].profile.nino.as_deref(), Some("AB123456C"));
    }

    #[test]
    fn search_query_debug_redacts_the_criteria() {
        let query = SearchQuery { last_name: s("Lovelace"), ..SearchQuery::default() };
        let text = format!("{query:?}");
        assert!(!text.contains("Lovelace"), "{text}");
        assert!(text.contains("<redacted>"));
    }
}

//! A synthetic, labelled UK register for evaluating matching (feature `testkit`).
//!
//! [`generate`] builds, deterministically from a seed, a register of people across the communities of a London
//! borough (English, Irish, Scottish, Welsh, Caribbean, Nigerian, Ghanaian, Somali, Turkish, Kurdish,
//! Bangladeshi, Pakistani, Indian, Polish, Orthodox Jewish, Chinese, Vietnamese), living in households at
//! Hackney-like addresses with valid-format postcodes (E2, E5, E8, E9, N1, N4, N16), with dates of birth, NI
//! numbers, partners, children and twins. It then writes labelled queries:
//!
//! * **duplicates** — a stored person re-entered with 0–3 corruptions ([`Corruption`]: typos, nicknames,
//!   forename/surname swaps, missing fields, hyphenated surnames, diacritics stripped or added, day/month swaps,
//!   one-digit date errors, a moved address …), whose true match is that person;
//! * **negatives** — new people who are not on the register, and hard negatives: an unregistered twin or
//!   household member of a registered person (same surname and address, different first name) and namesakes
//!   (same name, different date of birth).
//!
//! It also lists the hard-negative pairs *within* the register (twins, household members, a father and son of
//! the same name). [`evaluate`] runs blocking ([`crate::matching::person_keys`] /
//! [`crate::matching::query_keys`]) and scoring ([`crate::matching::score`]) over the queries and reports
//! precision, recall and F1 per grade. Nothing here is random at run time: the same seed gives the same data.

mod names;

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use uuid::Uuid;

use crate::equality::normalise_nino;
use crate::matching::score::{DATE_OF_BIRTH, FIRST_NAME};
use crate::matching::{
    Grade, KeySource, MatchProfile, MatchScore, PreparedProfile, SearchKey, dedup_key, nicknames, person_keys,
    query_keys, score, score_prepared,
};
use crate::person::{Name, Person, PersonId, PersonRef, PersonType, TenureSummary, Title};
use crate::validate::PersonFields;

use names::{COMMUNITIES, CommunityNames, ENGLISH_FEMALE, ENGLISH_MALE, INWARD_LETTERS, NINO_PREFIXES, STREETS};

/// The communities names are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[expect(missing_docs, reason = "the variants are the communities themselves")]
pub enum Community {
    #[default]
    English,
    Irish,
    Scottish,
    Welsh,
    Caribbean,
    Nigerian,
    Ghanaian,
    Somali,
    Turkish,
    Kurdish,
    Bangladeshi,
    Pakistani,
    Indian,
    Polish,
    JewishOrthodox,
    Chinese,
    Vietnamese,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticConfig {
    /// Persons on the register.
    pub persons: usize,
    /// The seed: the same seed gives the same data set.
    pub seed: u64,
    /// Duplicate queries, as a share of `persons`.
    pub duplicate_rate: f64,
    /// Queries for new people not on the register, as a share of `persons`.
    pub new_person_rate: f64,
    /// Hard-negative queries (unregistered twins, household members, namesakes), as a share of `persons`.
    pub hard_negative_rate: f64,
}

impl SyntheticConfig {
    /// The default mix for `persons` persons: 25 % duplicates, 5 % new people, 8 % hard negatives.
    #[must_use]
    pub fn new(persons: usize, seed: u64) -> Self {
        Self { persons, seed, duplicate_rate: 0.25, new_person_rate: 0.05, hard_negative_rate: 0.08 }
    }
}

/// A person on the synthetic register.
#[derive(Debug, Clone)]
pub struct SyntheticPerson {
    /// The person as a store holds it.
    pub person: Person,
    /// The NI number from the person's equality data, if known.
    pub nino: Option<String>,
    /// The community the names come from.
    pub community: Community,
    /// The household (index) the person lives in.
    pub household: usize,
}

impl SyntheticPerson {
    /// The matching profile of the stored person (with its NI number).
    #[must_use]
    pub fn profile(&self) -> MatchProfile {
        MatchProfile::from_person(&self.person, self.nino.as_deref())
    }
}

/// How a duplicate query differs from the stored person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Corruption {
    /// A typo in the first name (substitution, deletion, doubling or transposition; first letter kept).
    #[default]
    FirstNameTypo,
    /// A typo in the surname.
    SurnameTypo,
    /// The first name replaced by a variant (Bill for William, Muhammad for Mohammed).
    Nickname,
    /// First name and surname swapped.
    ForenameSurnameSwap,
    /// Only the initial of the first name.
    InitialOnly,
    /// The date of birth left out.
    MissingDateOfBirth,
    /// The address left out.
    MissingAddress,
    /// A second surname added with a hyphen, or one part of a hyphenated surname dropped.
    HyphenatedSurname,
    /// Accents removed (Zoe for Zoë, Lukasz for Łukasz).
    DiacriticsStripped,
    /// An accent added (Zoë for Zoe).
    DiacriticsAdded,
    /// Day and month of the date of birth swapped.
    DayMonthSwap,
    /// One digit of the date of birth wrong.
    OneDigitDateError,
    /// The person has moved: a different address.
    Moved,
    /// Names typed in upper or lower case.
    CaseChanged,
    /// Apostrophes and hyphens written differently (O Neill, ONeill, Anne Marie).
    PunctuationChanged,
    /// Known by the middle name: middle name given as first name.
    MiddleNameAsFirst,
}

impl Corruption {
    /// Every corruption with its relative frequency.
    pub const ALL: &[(Self, u32)] = &[
        (Self::FirstNameTypo, 12),
        (Self::SurnameTypo, 12),
        (Self::Nickname, 10),
        (Self::ForenameSurnameSwap, 5),
        (Self::InitialOnly, 3),
        (Self::MissingDateOfBirth, 5),
        (Self::MissingAddress, 8),
        (Self::HyphenatedSurname, 5),
        (Self::DiacriticsStripped, 8),
        (Self::DiacriticsAdded, 3),
        (Self::DayMonthSwap, 6),
        (Self::OneDigitDateError, 8),
        (Self::Moved, 12),
        (Self::CaseChanged, 5),
        (Self::PunctuationChanged, 4),
        (Self::MiddleNameAsFirst, 3),
    ];
}

/// What a labelled query is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueryKind {
    /// A (corrupted) re-entry of a registered person: the true match is that person.
    Duplicate,
    /// Someone not on the register.
    NewPerson,
    /// A twin of a registered person, not on the register: same surname, date of birth and address.
    UnregisteredTwin,
    /// A household member of a registered person, not on the register: same surname and address.
    UnregisteredHouseholdMember,
    /// Someone with a registered person's first name and surname but another date of birth.
    Namesake,
}

impl QueryKind {
    /// True for the negatives that resemble a registered person closely.
    #[must_use]
    pub fn is_hard_negative(self) -> bool {
        matches!(self, Self::UnregisteredTwin | Self::UnregisteredHouseholdMember | Self::Namesake)
    }
}

/// A query with its label.
#[derive(Debug, Clone)]
pub struct LabelledQuery {
    /// What is searched for.
    pub profile: MatchProfile,
    /// The registered person it is, or `None` for a negative.
    pub expected: Option<PersonId>,
    /// What kind of query it is.
    pub kind: QueryKind,
    /// The corruptions applied (duplicates only).
    pub corruptions: Vec<Corruption>,
    /// The registered person a hard negative resembles.
    pub resembles: Option<PersonId>,
}

/// Why two registered persons are a hard negative pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HardNegativeKind {
    /// Twins: same surname, date of birth and address; different first names.
    Twins,
    /// Members of one household with the same surname and different first names.
    HouseholdMembers,
    /// A parent and child of the same first name and surname at one address.
    NamesakesInHousehold,
}

/// Two registered persons who are not the same person but look alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HardNegativePair {
    /// One person.
    pub a: PersonId,
    /// The other.
    pub b: PersonId,
    /// Why they look alike.
    pub kind: HardNegativeKind,
}

/// A generated register with its labelled queries.
#[derive(Debug, Clone)]
pub struct SyntheticDataSet {
    /// The register.
    pub persons: Vec<SyntheticPerson>,
    /// Labelled queries.
    pub queries: Vec<LabelledQuery>,
    /// Look-alike pairs within the register.
    pub hard_negative_pairs: Vec<HardNegativePair>,
}

/// Generates a register and its labelled queries (deterministic for a seed).
#[must_use]
pub fn generate(config: &SyntheticConfig) -> SyntheticDataSet {
    let mut generator = Generator::new(config.seed, config.persons);
    let mut household = 0;
    while generator.persons.len() < config.persons {
        generator.household(household, config.persons);
        household += 1;
    }
    let mut queries = Vec::new();
    let count = |rate: f64| (config.persons as f64 * rate).round() as usize;
    for _ in 0..count(config.duplicate_rate) {
        queries.push(generator.duplicate_query());
    }
    for _ in 0..count(config.new_person_rate) {
        queries.push(generator.new_person_query());
    }
    let hard = count(config.hard_negative_rate);
    for i in 0..hard {
        let query = match i % 3 {
            0 => generator.unregistered_twin_query(false),
            1 => generator.unregistered_twin_query(true),
            _ => generator.namesake_query(),
        };
        queries.extend(query);
    }
    SyntheticDataSet { persons: generator.persons, queries, hard_negative_pairs: generator.pairs }
}

/// A small deterministic PRNG (SplitMix64): good enough statistics, no dependency, stable across platforms.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1).max(1) as usize) as i64
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn pick<T: Copy + Default>(&mut self, items: &[T]) -> T {
        items.get(self.below(items.len())).copied().unwrap_or_default()
    }

    fn weighted<T: Copy + Default>(&mut self, items: &[(T, u32)]) -> T {
        let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut roll = if total == 0 { 0 } else { self.next_u64() % total };
        for (item, weight) in items {
            if roll < u64::from(*weight) {
                return *item;
            }
            roll -= u64::from(*weight);
        }
        T::default()
    }
}

#[derive(Clone, PartialEq, Eq)]
struct Address {
    line: String,
    postcode: String,
    street: usize,
}

/// A person before it becomes a [`Person`].
#[derive(Clone)]
struct Draft {
    title: Option<Title>,
    first: String,
    middle: Option<String>,
    surname: String,
    preferred: Option<String>,
    dob: NaiveDate,
    female: bool,
    address: Address,
    previous: Option<Address>,
    nino: Option<String>,
    community: Community,
    tenant: bool,
}

/// The fields of a query as typed, before corruption.
#[derive(Clone, Default)]
struct QueryDraft {
    first: Option<String>,
    middle: Option<String>,
    surname: Option<String>,
    dob: Option<NaiveDate>,
    address: Option<Address>,
    nino: Option<String>,
}

impl QueryDraft {
    fn profile(&self) -> MatchProfile {
        MatchProfile {
            first_name: self.first.clone(),
            middle_name: self.middle.clone(),
            surname: self.surname.clone(),
            preferred_first_name: None,
            date_of_birth: self.dob,
            postcodes: self.address.iter().map(|a| a.postcode.clone()).collect(),
            addresses: self.address.iter().map(|a| a.line.clone()).collect(),
            nino: self.nino.clone(),
        }
    }
}

struct Generator {
    rng: Rng,
    persons: Vec<SyntheticPerson>,
    drafts: Vec<Draft>,
    pairs: Vec<HardNegativePair>,
    dedup: HashSet<String>,
    ninos: HashSet<String>,
    /// Postcode units of each street.
    units: Vec<Vec<String>>,
}

const TODAY: (i32, u32, u32) = (2026, 1, 1);

fn created_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).single().unwrap_or_default()
}

fn names_of(community: Community) -> &'static CommunityNames {
    COMMUNITIES.iter().find(|(c, _)| *c == community).map_or(&COMMUNITIES[0].1, |(_, n)| n)
}

/// True when two first names are clearly different names (no level of agreement at all).
fn clearly_different(a: &str, b: &str) -> bool {
    let profile = |n: &str| MatchProfile { first_name: Some(n.to_owned()), ..MatchProfile::default() };
    score(&profile(a), &profile(b)).comparisons.iter().any(|c| c.field == FIRST_NAME && c.level == "disagree")
}

impl Generator {
    /// A generator whose streets have enough postcode units for about 30 persons per postcode at `persons`.
    fn new(seed: u64, persons: usize) -> Self {
        let mut rng = Rng(seed ^ 0x5EED_0FC0_FFEE);
        let mut units = Vec::new();
        let mut used = HashSet::new();
        let per_street = persons.div_ceil(STREETS.len() * 30);
        for (_, district) in STREETS {
            let count = (3 + rng.below(6)).max(per_street);
            // One sector per 300 units: a street of a large register spans several sectors.
            let sectors: Vec<usize> = (0..count.div_ceil(300)).map(|_| rng.below(10)).collect();
            let mut street_units = Vec::new();
            let mut attempts = 0;
            while street_units.len() < count && attempts < count * 20 {
                attempts += 1;
                let sector = rng.pick(&sectors);
                let a = char::from(rng.pick(INWARD_LETTERS));
                let b = char::from(rng.pick(INWARD_LETTERS));
                let postcode = format!("{district} {sector}{a}{b}");
                if used.insert(postcode.clone()) {
                    street_units.push(postcode);
                }
            }
            units.push(street_units);
        }
        Self {
            rng,
            persons: Vec::new(),
            drafts: Vec::new(),
            pairs: Vec::new(),
            dedup: HashSet::new(),
            ninos: HashSet::new(),
            units,
        }
    }

    fn address(&mut self, community: Community, avoid_street: Option<usize>) -> Address {
        let districts = names_of(community).districts;
        let street = loop {
            let street = if !districts.is_empty() && self.rng.chance(0.7) {
                let candidates: Vec<usize> =
                    (0..STREETS.len()).filter(|&s| districts.contains(&STREETS[s].1)).collect();
                self.rng.pick(&candidates)
            } else {
                self.rng.below(STREETS.len())
            };
            if Some(street) != avoid_street {
                break street;
            }
        };
        let number = 1 + self.rng.below(240);
        let unit = self.rng.below(self.units[street].len());
        let postcode = self.units[street].get(unit).cloned().unwrap_or_default();
        let flat = if self.rng.chance(0.4) { format!("Flat {}, ", 1 + self.rng.below(30)) } else { String::new() };
        Address { line: format!("{flat}{number} {}, London {postcode}", STREETS[street].0), postcode, street }
    }

    fn date_of_birth(&mut self, age: i64) -> NaiveDate {
        let year = TODAY.0 - 1 - age as i32;
        let day = 1 + self.rng.below(365) as u32;
        NaiveDate::from_yo_opt(year, day).unwrap_or_default()
    }

    fn nino(&mut self) -> Option<String> {
        for _ in 0..20 {
            let prefix = self.rng.pick(NINO_PREFIXES);
            let digits = self.rng.below(1_000_000);
            let suffix = char::from(b'A' + self.rng.below(4) as u8);
            if let Some(nino) = normalise_nino(&format!("{prefix}{digits:06}{suffix}"))
                && self.ninos.insert(nino.clone())
            {
                return Some(nino);
            }
        }
        None
    }

    fn given_name(&mut self, community: Community, female: bool) -> String {
        let names = names_of(community);
        let list = match (self.rng.chance(names.english_given_name), female) {
            (true, true) => ENGLISH_FEMALE,
            (true, false) => ENGLISH_MALE,
            (false, true) => names.female,
            (false, false) => names.male,
        };
        self.rng.pick(list).to_owned()
    }

    /// A given name clearly different from every name in `taken`.
    fn distinct_given_name(&mut self, community: Community, female: bool, taken: &[String]) -> String {
        let mut name = self.given_name(community, female);
        for _ in 0..50 {
            if taken.iter().all(|t| clearly_different(t, &name)) {
                break;
            }
            name = self.given_name(community, female);
        }
        name
    }

    fn surname(&mut self, community: Community) -> String {
        self.rng.pick(names_of(community).surnames).to_owned()
    }

    /// Polish surnames in -ski/-cki take -ska/-cka for women.
    fn gendered_surname(community: Community, surname: &str, female: bool) -> String {
        if community == Community::Polish && female && (surname.ends_with("ski") || surname.ends_with("cki")) {
            format!("{}a", &surname[..surname.len() - 1])
        } else {
            surname.to_owned()
        }
    }

    fn draft(&mut self, community: Community, female: bool, age: i64, surname: String, address: Address) -> Draft {
        let first = self.given_name(community, female);
        let middle = self.rng.chance(0.2).then(|| self.given_name(community, female));
        let dob = self.date_of_birth(age);
        let title = Some(match (age >= 18, female) {
            (true, false) if self.rng.chance(0.02) => Title::Dr,
            (true, false) if community == Community::JewishOrthodox && age > 30 && self.rng.chance(0.05) => {
                Title::Rabbi
            }
            (true, false) => Title::Mr,
            (true, true) => *[Title::Mrs, Title::Ms, Title::Miss].get(self.rng.below(3)).unwrap_or(&Title::Ms),
            (false, false) => Title::Master,
            (false, true) => Title::Miss,
        });
        let nino = if age >= 16 && self.rng.chance(0.85) { self.nino() } else { None };
        let previous = self.rng.chance(0.1).then(|| self.address(community, Some(address.street)));
        Draft {
            title,
            first,
            middle,
            surname,
            preferred: None,
            dob,
            female,
            address,
            previous,
            nino,
            community,
            tenant: false,
        }
    }

    fn pick_community(&mut self) -> Community {
        let weighted: Vec<(Community, u32)> = COMMUNITIES.iter().map(|(c, n)| (*c, n.weight)).collect();
        self.rng.weighted(&weighted)
    }

    /// Generates one household and adds its members (up to `limit` persons in all).
    fn household(&mut self, household: usize, limit: usize) {
        let community = self.pick_community();
        let names = names_of(community);
        let address = self.address(community, None);
        let roll = self.rng.below(100);
        let (adults, children, grandparent) = match roll {
            0..30 => (1, 0, false),
            30..50 => (2, 0, false),
            50..90 => (if self.rng.chance(0.75) { 2 } else { 1 }, 1 + self.rng.below(4), false),
            _ => (2, self.rng.below(3), true),
        };
        let mut members: Vec<Draft> = Vec::new();
        let family_surname = self.surname(community);
        let first_female = self.rng.chance(0.5);
        let first_age = if children > 0 { self.rng.between(24, 55) } else { self.rng.between(18, 90) };
        let mut first = self.draft(
            community,
            first_female,
            first_age,
            Self::gendered_surname(community, &family_surname, first_female),
            address.clone(),
        );
        first.tenant = true;
        members.push(first);
        if adults == 2 {
            let female = !first_female;
            let age = (first_age + self.rng.between(-6, 6)).clamp(18, 95);
            let surname = if self.rng.chance(names.shared_surname) {
                Self::gendered_surname(community, &family_surname, female)
            } else {
                self.surname(community)
            };
            let mut partner = self.draft(community, female, age, surname, address.clone());
            let taken: Vec<String> = members.iter().map(|m| m.first.clone()).collect();
            partner.first = self.distinct_given_name(community, female, &taken);
            members.push(partner);
        }
        if grandparent {
            let female = self.rng.chance(0.6);
            let age = (first_age + self.rng.between(20, 35)).min(100);
            let surname = Self::gendered_surname(community, &family_surname, female);
            let mut elder = self.draft(community, female, age, surname, address.clone());
            let taken: Vec<String> = members.iter().map(|m| m.first.clone()).collect();
            elder.first = self.distinct_given_name(community, female, &taken);
            members.push(elder);
        }
        // Children take the family surname (Somali children: the father's given name).
        let father = members.iter().find(|m| !m.female).map(|m| m.first.clone());
        let child_surname_base = match (community, &father) {
            (Community::Somali, Some(father)) => father.clone(),
            _ => family_surname.clone(),
        };
        let youngest_parent = members.iter().take(adults).map(|m| TODAY.0 - m.dob.year()).min().unwrap_or(30);
        let mut child_count = 0;
        while child_count < children {
            let female = self.rng.chance(0.5);
            let max_age = i64::from((youngest_parent - 18).clamp(0, 17));
            let age = self.rng.between(0, max_age);
            let surname = Self::gendered_surname(community, &child_surname_base, female);
            let mut child = self.draft(community, female, age, surname, address.clone());
            child.previous = None;
            let taken: Vec<String> = members.iter().map(|m| m.first.clone()).collect();
            let junior = !female && child_count == 0 && self.rng.chance(0.05);
            child.first = match (&father, junior) {
                (Some(father), true) => father.clone(),
                _ => self.distinct_given_name(community, female, &taken),
            };
            let twins = child_count + 1 < children.max(2) && self.rng.chance(0.08);
            members.push(child.clone());
            child_count += 1;
            if twins {
                let twin_female = self.rng.chance(0.5);
                let mut twin = child.clone();
                twin.female = twin_female;
                twin.surname = Self::gendered_surname(community, &child_surname_base, twin_female);
                twin.title = Some(if twin_female { Title::Miss } else { Title::Master });
                let taken: Vec<String> = members.iter().map(|m| m.first.clone()).collect();
                twin.first = self.distinct_given_name(community, twin_female, &taken);
                twin.middle = self.rng.chance(0.2).then(|| self.given_name(community, twin_female));
                twin.nino = if age >= 16 { self.nino() } else { None };
                members.push(twin);
                child_count += 1;
            }
        }
        for member in &mut members {
            if self.rng.chance(0.05) {
                member.preferred = variants_of(&member.first).first().map(|v| capitalise(v));
            }
        }
        let start = self.persons.len();
        for member in members {
            if self.persons.len() >= limit {
                break;
            }
            self.push(member, household);
        }
        self.record_pairs(start);
    }

    fn push(&mut self, mut draft: Draft, household: usize) {
        // The register holds no true duplicates: a clash of the dedup key gets another first name.
        for _ in 0..20 {
            let profile = draft_profile(&draft);
            match dedup_key(&profile) {
                Some(key) if self.dedup.contains(&key) => {
                    draft.first = self.given_name(draft.community, draft.female);
                }
                Some(key) => {
                    self.dedup.insert(key);
                    break;
                }
                None => break,
            }
        }
        let Some(person) = self.person(&draft) else { return };
        self.persons.push(SyntheticPerson { person, nino: draft.nino.clone(), community: draft.community, household });
        self.drafts.push(draft);
    }

    fn uuid(&mut self) -> Uuid {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.rng.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.rng.next_u64().to_le_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    fn person(&mut self, draft: &Draft) -> Option<Person> {
        let name = |text: &str| Name::parse(text).ok();
        let tenure = |id: Uuid, address: &Address, start: Option<NaiveDate>, end: Option<NaiveDate>| TenureSummary {
            id,
            tenure_type: Some(if end.is_some() { "Introductory" } else { "Secure" }.to_owned()),
            start_date: start,
            end_date: end,
            asset_full_address: Some(address.line.clone()),
            asset_id: None,
            uprn: None,
            postcode: Some(address.postcode.clone()),
            payment_reference: None,
            property_reference: None,
        };
        let mut tenures = vec![tenure(self.uuid(), &draft.address, NaiveDate::from_ymd_opt(2018, 4, 1), None)];
        if let Some(previous) = &draft.previous {
            let (start, end) = (NaiveDate::from_ymd_opt(2010, 4, 1), NaiveDate::from_ymd_opt(2018, 3, 31));
            tenures.push(tenure(self.uuid(), previous, start, end));
        }
        let fields = PersonFields {
            title: draft.title,
            preferred_title: None,
            first_name: name(&draft.first),
            middle_name: draft.middle.as_deref().and_then(name),
            surname: name(&draft.surname)?,
            single_name: false,
            preferred_first_name: draft.preferred.as_deref().and_then(name),
            preferred_middle_name: None,
            preferred_surname: None,
            place_of_birth: None,
            date_of_birth: Some(draft.dob),
            date_of_death: None,
            person_types: vec![if draft.tenant { PersonType::Tenant } else { PersonType::HouseholdMember }],
            tenures,
            reason: "Synthetic register".to_owned(),
        };
        let id = PersonId::new(self.uuid())?;
        let person_ref = PersonRef(self.persons.len() as i64 + 1);
        Some(Person::from_fields(id, person_ref, fields, 0, created_at()))
    }

    /// Records the look-alike pairs among the persons of the household that starts at `start`.
    fn record_pairs(&mut self, start: usize) {
        for i in start..self.persons.len() {
            for j in i + 1..self.persons.len() {
                let (a, b) = (&self.drafts[i], &self.drafts[j]);
                let same_surname = crate::matching::normalise::name(&a.surname).joined
                    == crate::matching::normalise::name(&b.surname).joined;
                if !same_surname {
                    continue;
                }
                let kind = if a.first == b.first {
                    HardNegativeKind::NamesakesInHousehold
                } else if a.dob == b.dob {
                    HardNegativeKind::Twins
                } else {
                    HardNegativeKind::HouseholdMembers
                };
                self.pairs.push(HardNegativePair { a: self.persons[i].person.id, b: self.persons[j].person.id, kind });
            }
        }
    }

    fn random_registered(&mut self) -> usize {
        self.rng.below(self.persons.len())
    }

    fn duplicate_query(&mut self) -> LabelledQuery {
        let index = self.random_registered();
        let draft = self.drafts[index].clone();
        let mut query = QueryDraft {
            first: Some(draft.first.clone()),
            middle: draft.middle.clone().filter(|_| self.rng.chance(0.3)),
            surname: Some(draft.surname.clone()),
            dob: Some(draft.dob),
            address: Some(draft.address.clone()),
            nino: draft.nino.clone().filter(|_| self.rng.chance(0.25)),
        };
        let wanted = match self.rng.below(100) {
            0..10 => 0,
            10..50 => 1,
            50..82 => 2,
            _ => 3,
        };
        let mut applied = Vec::new();
        let mut attempts = 0;
        let mut swap = false;
        while applied.len() < wanted && attempts < 50 {
            attempts += 1;
            let corruption = self.rng.weighted(Corruption::ALL);
            if applied.contains(&corruption) || conflicts(corruption, &applied) {
                continue;
            }
            // The swap comes last, so that the other corruptions act on the field they name.
            if corruption == Corruption::ForenameSurnameSwap {
                if query.first.is_some() && query.surname.is_some() {
                    swap = true;
                    applied.push(corruption);
                }
            } else if self.corrupt(&mut query, &draft, corruption) {
                applied.push(corruption);
            }
        }
        if swap {
            self.corrupt(&mut query, &draft, Corruption::ForenameSurnameSwap);
        }
        LabelledQuery {
            profile: query.profile(),
            expected: Some(self.persons[index].person.id),
            kind: QueryKind::Duplicate,
            corruptions: applied,
            resembles: None,
        }
    }

    /// Applies one corruption; false when it does not apply to this query.
    fn corrupt(&mut self, query: &mut QueryDraft, draft: &Draft, corruption: Corruption) -> bool {
        match corruption {
            Corruption::FirstNameTypo => match query.first.as_deref().and_then(|f| typo(&mut self.rng, f)) {
                Some(typoed) => {
                    query.first = Some(typoed);
                    true
                }
                None => false,
            },
            Corruption::SurnameTypo => match query.surname.as_deref().and_then(|s| typo(&mut self.rng, s)) {
                Some(typoed) => {
                    query.surname = Some(typoed);
                    true
                }
                None => false,
            },
            Corruption::Nickname => {
                let variants = query.first.as_deref().map(variants_of).unwrap_or_default();
                if variants.is_empty() {
                    return false;
                }
                query.first = Some(capitalise(self.rng.pick(&variants)));
                true
            }
            Corruption::ForenameSurnameSwap => {
                if query.first.is_none() || query.surname.is_none() {
                    return false;
                }
                std::mem::swap(&mut query.first, &mut query.surname);
                true
            }
            Corruption::InitialOnly => match query.first.as_deref().and_then(|f| f.chars().next()) {
                Some(initial) => {
                    query.first = Some(initial.to_string());
                    true
                }
                None => false,
            },
            Corruption::MissingDateOfBirth => query.dob.take().is_some(),
            Corruption::MissingAddress => query.address.take().is_some(),
            Corruption::HyphenatedSurname => {
                let Some(surname) = query.surname.clone() else { return false };
                let parts: Vec<&str> = surname.split(['-', ' ']).filter(|p| !p.is_empty()).collect();
                query.surname = Some(if parts.len() > 1 {
                    self.rng.pick(&parts).to_owned()
                } else {
                    let other = self.surname(draft.community);
                    if self.rng.chance(0.5) { format!("{surname}-{other}") } else { format!("{other}-{surname}") }
                });
                true
            }
            Corruption::DiacriticsStripped => {
                let accented = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_ascii());
                if !accented(&query.first) && !accented(&query.surname) {
                    return false;
                }
                query.first = query.first.as_deref().map(deunicode::deunicode);
                query.surname = query.surname.as_deref().map(deunicode::deunicode);
                true
            }
            Corruption::DiacriticsAdded => {
                let target = if self.rng.chance(0.5) { &mut query.first } else { &mut query.surname };
                match target.as_deref().and_then(|s| add_accent(&mut self.rng, s)) {
                    Some(accented) => {
                        *target = Some(accented);
                        true
                    }
                    None => false,
                }
            }
            Corruption::DayMonthSwap => match query.dob {
                Some(d) if d.day() <= 12 && d.day() != d.month() => {
                    query.dob = NaiveDate::from_ymd_opt(d.year(), d.day(), d.month());
                    query.dob.is_some()
                }
                _ => false,
            },
            Corruption::OneDigitDateError => match query.dob.and_then(|d| one_digit_off(&mut self.rng, d)) {
                Some(wrong) => {
                    query.dob = Some(wrong);
                    true
                }
                None => false,
            },
            Corruption::Moved => {
                if query.address.is_none() {
                    return false;
                }
                query.address = Some(self.address(draft.community, Some(draft.address.street)));
                true
            }
            Corruption::CaseChanged => {
                let upper = self.rng.chance(0.5);
                let change = |s: &str| if upper { s.to_uppercase() } else { s.to_lowercase() };
                query.first = query.first.as_deref().map(change);
                query.surname = query.surname.as_deref().map(change);
                true
            }
            Corruption::PunctuationChanged => {
                let punctuated = |s: &Option<String>| s.as_deref().is_some_and(|s| s.contains(['\'', '-']));
                if !punctuated(&query.first) && !punctuated(&query.surname) {
                    return false;
                }
                let joined = self.rng.chance(0.5);
                let change = |s: &str| if joined { s.replace(['\'', '-'], "") } else { s.replace(['\'', '-'], " ") };
                query.first = query.first.as_deref().map(change);
                query.surname = query.surname.as_deref().map(change);
                true
            }
            Corruption::MiddleNameAsFirst => match &draft.middle {
                Some(middle) if query.first.as_deref() == Some(draft.first.as_str()) => {
                    query.first = Some(middle.clone());
                    query.middle = Some(draft.first.clone());
                    true
                }
                _ => false,
            },
        }
    }

    fn new_person_query(&mut self) -> LabelledQuery {
        loop {
            let community = self.pick_community();
            let female = self.rng.chance(0.5);
            let age = self.rng.between(18, 90);
            let surname = self.surname(community);
            let surname = Self::gendered_surname(community, &surname, female);
            let address = self.address(community, None);
            let draft = self.draft(community, female, age, surname, address);
            let profile = draft_profile(&draft);
            if dedup_key(&profile).is_some_and(|k| self.dedup.contains(&k)) {
                continue;
            }
            return LabelledQuery {
                profile,
                expected: None,
                kind: QueryKind::NewPerson,
                corruptions: Vec::new(),
                resembles: None,
            };
        }
    }

    /// A twin (same date of birth) or another household member (another date of birth) of a registered person,
    /// not on the register.
    fn unregistered_twin_query(&mut self, other_date: bool) -> Option<LabelledQuery> {
        let index = self.random_registered();
        let draft = self.drafts[index].clone();
        let household = self.persons[index].household;
        let taken: Vec<String> = self
            .persons
            .iter()
            .zip(&self.drafts)
            .filter(|(p, _)| p.household == household)
            .map(|(_, d)| d.first.clone())
            .collect();
        let female = self.rng.chance(0.5);
        let first = self.distinct_given_name(draft.community, female, &taken);
        if !taken.iter().all(|t| clearly_different(t, &first)) {
            return None;
        }
        let dob = if other_date {
            let mut dob = draft.dob;
            for _ in 0..20 {
                let age = i64::from(TODAY.0 - 1 - draft.dob.year()) + self.rng.between(-12, 12);
                let candidate = self.date_of_birth(age.max(0));
                if date_level(candidate, draft.dob) == "disagree" {
                    dob = candidate;
                    break;
                }
            }
            if dob == draft.dob {
                return None;
            }
            dob
        } else {
            draft.dob
        };
        let query = QueryDraft {
            first: Some(first),
            middle: None,
            surname: Some(Self::gendered_surname(draft.community, &draft.surname, female)),
            dob: Some(dob),
            address: Some(draft.address.clone()),
            nino: None,
        };
        let profile = query.profile();
        // Someone with a registered person's canonical name and date of birth is that person, not a negative.
        if dedup_key(&profile).is_some_and(|k| self.dedup.contains(&k)) {
            return None;
        }
        Some(LabelledQuery {
            profile,
            expected: None,
            kind: if other_date { QueryKind::UnregisteredHouseholdMember } else { QueryKind::UnregisteredTwin },
            corruptions: Vec::new(),
            resembles: Some(self.persons[index].person.id),
        })
    }

    /// Someone with a registered person's names and another date of birth, living elsewhere.
    fn namesake_query(&mut self) -> Option<LabelledQuery> {
        let index = self.random_registered();
        let draft = self.drafts[index].clone();
        let age = self.rng.between(18, 90);
        let dob = self.date_of_birth(age);
        if date_level(dob, draft.dob) != "disagree" {
            return None;
        }
        let address = self.address(draft.community, Some(draft.address.street));
        let query = QueryDraft {
            first: Some(draft.first.clone()),
            middle: None,
            surname: Some(draft.surname.clone()),
            dob: Some(dob),
            address: Some(address),
            nino: None,
        };
        let profile = query.profile();
        // Someone with a registered person's canonical name and date of birth is that person, not a negative.
        if dedup_key(&profile).is_some_and(|k| self.dedup.contains(&k)) {
            return None;
        }
        Some(LabelledQuery {
            profile,
            expected: None,
            kind: QueryKind::Namesake,
            corruptions: Vec::new(),
            resembles: Some(self.persons[index].person.id),
        })
    }
}

/// The date-of-birth comparison level of two dates, as the scorer sees it.
fn date_level(a: NaiveDate, b: NaiveDate) -> String {
    let profile = |d: NaiveDate| MatchProfile { date_of_birth: Some(d), ..MatchProfile::default() };
    score(&profile(a), &profile(b))
        .comparisons
        .into_iter()
        .find(|c| c.field == DATE_OF_BIRTH)
        .map(|c| c.level)
        .unwrap_or_default()
}

/// Corruptions that make no sense together (the later one would undo or hide the earlier one).
fn conflicts(corruption: Corruption, applied: &[Corruption]) -> bool {
    use Corruption::*;
    let groups: &[&[Corruption]] = &[
        &[FirstNameTypo, Nickname, InitialOnly, MiddleNameAsFirst],
        &[MissingDateOfBirth, DayMonthSwap, OneDigitDateError],
        // A duplicate loses at most one of its full first name, its date of birth and its current address:
        // without two of them a record cannot tell household members and namesakes apart, even for a person.
        &[InitialOnly, MissingDateOfBirth, MissingAddress, Moved],
        &[ForenameSurnameSwap, InitialOnly, MiddleNameAsFirst],
        &[DiacriticsStripped, DiacriticsAdded],
    ];
    groups.iter().any(|g| g.contains(&corruption) && applied.iter().any(|a| g.contains(a)))
}

fn draft_profile(draft: &Draft) -> MatchProfile {
    QueryDraft {
        first: Some(draft.first.clone()),
        middle: draft.middle.clone(),
        surname: Some(draft.surname.clone()),
        dob: Some(draft.dob),
        address: Some(draft.address.clone()),
        nino: draft.nino.clone(),
    }
    .profile()
}

/// The other names in the given-name groups of `name` (folded).
fn variants_of(name: &str) -> Vec<&'static str> {
    let folded = crate::matching::normalise::name(name).joined;
    let mut variants = Vec::new();
    for group in nicknames::GROUPS {
        if group.contains(&folded.as_str()) {
            for v in *group {
                if *v != folded && v.len() > 1 && !variants.contains(v) {
                    variants.push(*v);
                }
            }
        }
    }
    variants
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// A typing error after the first letter: substitution, deletion, doubling or transposition. `None` for
/// names too short to mistype recognisably.
fn typo(rng: &mut Rng, text: &str) -> Option<String> {
    let mut chars: Vec<char> = text.chars().collect();
    if chars.len() < 4 {
        return None;
    }
    let at = 1 + rng.below(chars.len() - 1);
    match rng.below(4) {
        0 => {
            let replacement = char::from(b'a' + rng.below(26) as u8);
            if chars[at].to_ascii_lowercase() == replacement {
                return None;
            }
            chars[at] = replacement;
        }
        1 => {
            chars.remove(at);
        }
        2 => {
            let c = chars[at];
            chars.insert(at, c);
        }
        _ => {
            if at + 1 >= chars.len() || chars[at] == chars[at + 1] {
                return None;
            }
            chars.swap(at, at + 1);
        }
    }
    Some(chars.into_iter().collect())
}

/// Adds an accent to one vowel of an ASCII name (Zoe → Zoë).
fn add_accent(rng: &mut Rng, text: &str) -> Option<String> {
    if !text.is_ascii() {
        return None;
    }
    let vowels: Vec<usize> = text.char_indices().filter(|(_, c)| "aeiou".contains(*c)).map(|(i, _)| i).collect();
    if vowels.is_empty() {
        return None;
    }
    let at = rng.pick(&vowels);
    let accented = match text.as_bytes().get(at) {
        Some(b'a') => "á",
        Some(b'e') => {
            if rng.chance(0.5) {
                "ë"
            } else {
                "é"
            }
        }
        Some(b'i') => "í",
        Some(b'o') => "ö",
        _ => "ü",
    };
    Some(format!("{}{}{}", &text[..at], accented, &text[at + 1..]))
}

/// The date with one digit of YYYYMMDD changed (a valid date in the past).
fn one_digit_off(rng: &mut Rng, date: NaiveDate) -> Option<NaiveDate> {
    let text = date.format("%Y%m%d").to_string();
    for _ in 0..30 {
        let at = 2 + rng.below(6);
        let digit = char::from(b'0' + rng.below(10) as u8);
        let mut changed: Vec<char> = text.chars().collect();
        if changed[at] == digit {
            continue;
        }
        changed[at] = digit;
        let changed: String = changed.into_iter().collect();
        if let Ok(wrong) = NaiveDate::parse_from_str(&changed, "%Y%m%d")
            && wrong.year() < TODAY.0
            && wrong.year() > 1900
        {
            return Some(wrong);
        }
    }
    None
}

// ------------------------------------------------------------------------------------------------------------
// Evaluation
// ------------------------------------------------------------------------------------------------------------

/// An in-process blocking index: every registered person's keys → the persons, as a store's key table.
pub struct BlockingIndex {
    postings: HashMap<SearchKey, Vec<u32>>,
    prepared: Vec<PreparedProfile>,
    ids: Vec<PersonId>,
    key_counts: Vec<usize>,
}

impl std::fmt::Debug for BlockingIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingIndex").field("persons", &self.ids.len()).field("keys", &self.postings.len()).finish()
    }
}

impl BlockingIndex {
    /// Indexes the register by [`person_keys`] (person and equality sources).
    #[must_use]
    pub fn build(persons: &[SyntheticPerson]) -> Self {
        let mut postings: HashMap<SearchKey, Vec<u32>> = HashMap::new();
        let mut prepared = Vec::with_capacity(persons.len());
        let mut key_counts = Vec::with_capacity(persons.len());
        for (i, person) in persons.iter().enumerate() {
            let profile = person.profile();
            let mut keys = person_keys(&profile, KeySource::Person);
            keys.extend(person_keys(&profile, KeySource::Equality));
            key_counts.push(keys.len());
            for key in keys {
                postings.entry(key).or_default().push(i as u32);
            }
            prepared.push(PreparedProfile::new(&profile));
        }
        Self { postings, prepared, ids: persons.iter().map(|p| p.person.id).collect(), key_counts }
    }

    /// The indices of the persons sharing at least one of the query's keys, in index order.
    #[must_use]
    pub fn candidates(&self, query: &MatchProfile) -> Vec<usize> {
        let mut found: Vec<usize> =
            query_keys(query).iter().filter_map(|k| self.postings.get(k)).flatten().map(|&i| i as usize).collect();
        found.sort_unstable();
        found.dedup();
        found
    }

    /// Scores the candidates of a query, best first.
    #[must_use]
    pub fn ranked(&self, query: &MatchProfile) -> Vec<(PersonId, MatchScore)> {
        let prepared = PreparedProfile::new(query);
        let mut scored: Vec<(PersonId, MatchScore)> = self
            .candidates(query)
            .into_iter()
            .filter_map(|i| Some((*self.ids.get(i)?, score_prepared(&prepared, self.prepared.get(i)?))))
            .collect();
        scored.sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
        scored
    }

    /// Stored key rows (person × key).
    #[must_use]
    pub fn rows(&self) -> usize {
        self.key_counts.iter().sum()
    }

    /// The largest number of keys of one person.
    #[must_use]
    pub fn max_keys_per_person(&self) -> usize {
        self.key_counts.iter().copied().max().unwrap_or(0)
    }
}

/// True positives, false positives and false negatives at one grade.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Pairs graded at or above the grade that are the same person.
    pub true_positives: u64,
    /// Pairs graded at or above the grade that are not.
    pub false_positives: u64,
    /// True matches graded below the grade (or not retrieved).
    pub false_negatives: u64,
}

impl Counts {
    /// TP / (TP + FP); 1 when nothing was predicted.
    #[must_use]
    pub fn precision(&self) -> f64 {
        let predicted = self.true_positives + self.false_positives;
        if predicted == 0 { 1.0 } else { self.true_positives as f64 / predicted as f64 }
    }

    /// TP / (TP + FN); 1 when there was nothing to find.
    #[must_use]
    pub fn recall(&self) -> f64 {
        let actual = self.true_positives + self.false_negatives;
        if actual == 0 { 1.0 } else { self.true_positives as f64 / actual as f64 }
    }

    /// The harmonic mean of precision and recall.
    #[must_use]
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
    }
}

/// How often one comparison level occurred among true and false candidate pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelCount {
    /// The field.
    pub field: String,
    /// The level.
    pub level: String,
    /// Occurrences among true pairs (query, its true match).
    pub matches: u64,
    /// Occurrences among retrieved pairs that are not the same person.
    pub non_matches: u64,
}

/// A misgraded pair, for inspection.
#[derive(Debug, Clone)]
pub struct Misgraded {
    /// The query's index in [`SyntheticDataSet::queries`].
    pub query: usize,
    /// The candidate (for a false negative: the true match, if it was retrieved).
    pub candidate: Option<PersonId>,
    /// Its score, when retrieved.
    pub score: Option<MatchScore>,
    /// True for a false positive at `certain`+`probable`, false for a false negative.
    pub false_positive: bool,
}

/// Per query kind: queries, and pairs graded `certain` / `certain`+`probable`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindStats {
    /// Queries of the kind.
    pub queries: u64,
    /// Duplicates: true match graded certain. Negatives: queries with any candidate graded certain.
    pub certain: u64,
    /// The same at `certain`+`probable`.
    pub certain_or_probable: u64,
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    /// Persons on the register.
    pub persons: usize,
    /// Labelled queries.
    pub queries: usize,
    /// Of which duplicates.
    pub duplicates: usize,
    /// Counts at `certain`.
    pub certain: Counts,
    /// Counts at `certain` or `probable`.
    pub certain_or_probable: Counts,
    /// Counts at any grade (`possible` or better).
    pub possible_or_better: Counts,
    /// Share of duplicates whose true match was among the candidates.
    pub retrieval_recall: f64,
    /// Candidates per query: mean.
    pub candidates_mean: f64,
    /// Candidates per query: largest.
    pub candidates_max: usize,
    /// Stored key rows per person: mean.
    pub keys_per_person_mean: f64,
    /// Stored key rows per person: largest.
    pub keys_per_person_max: usize,
    /// Look-alike pairs within the register, by kind: (pairs, graded certain, graded probable).
    pub hard_negative_pairs: BTreeMap<HardNegativeKind, (u64, u64, u64)>,
    /// Per query kind.
    pub by_kind: BTreeMap<QueryKind, KindStats>,
    /// Per corruption: (duplicates with it, of which found at `certain`+`probable`).
    pub by_corruption: BTreeMap<Corruption, (u64, u64)>,
    /// Level frequencies among true and false candidate pairs (for estimating m and u).
    pub levels: Vec<LevelCount>,
    /// Misgraded pairs at `certain`+`probable` (the first 500).
    pub misgraded: Vec<Misgraded>,
}

impl Evaluation {
    /// Register pairs of twins graded `certain` (must be 0).
    #[must_use]
    pub fn twins_graded_certain(&self) -> u64 {
        self.hard_negative_pairs.get(&HardNegativeKind::Twins).map_or(0, |c| c.1)
    }

    /// Register look-alike pairs (twins, household members, namesakes) graded `certain` (must be 0).
    #[must_use]
    pub fn hard_negative_pairs_graded_certain(&self) -> u64 {
        self.hard_negative_pairs.values().map(|c| c.1).sum()
    }
}

/// Runs every labelled query through blocking and scoring and counts the outcome per grade.
#[must_use]
pub fn evaluate(data: &SyntheticDataSet) -> Evaluation {
    let index = BlockingIndex::build(&data.persons);
    evaluate_with(data, &index)
}

/// [`evaluate`] with an index built beforehand (to time the two separately).
#[must_use]
pub fn evaluate_with(data: &SyntheticDataSet, index: &BlockingIndex) -> Evaluation {
    let mut eval = Evaluation {
        persons: data.persons.len(),
        queries: data.queries.len(),
        keys_per_person_mean: index.rows() as f64 / data.persons.len().max(1) as f64,
        keys_per_person_max: index.max_keys_per_person(),
        ..Evaluation::default()
    };
    let mut levels: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    let mut retrieved = 0u64;
    let mut candidates_total = 0usize;
    for (qi, query) in data.queries.iter().enumerate() {
        let ranked = index.ranked(&query.profile);
        candidates_total += ranked.len();
        eval.candidates_max = eval.candidates_max.max(ranked.len());
        let stats = eval.by_kind.entry(query.kind).or_default();
        stats.queries += 1;
        let true_score = query.expected.and_then(|id| ranked.iter().find(|(c, _)| *c == id)).map(|(_, s)| s);
        if query.expected.is_some() {
            eval.duplicates += 1;
            if true_score.is_some() {
                retrieved += 1;
            }
        }
        for (grade, counts) in [
            (Grade::Certain, &mut eval.certain),
            (Grade::Probable, &mut eval.certain_or_probable),
            (Grade::Possible, &mut eval.possible_or_better),
        ] {
            for (id, s) in &ranked {
                if s.grade >= Some(grade) {
                    if Some(*id) == query.expected {
                        counts.true_positives += 1;
                    } else {
                        counts.false_positives += 1;
                    }
                }
            }
            if query.expected.is_some() && true_score.is_none_or(|s| s.grade < Some(grade)) {
                counts.false_negatives += 1;
            }
        }
        let hit = |grade: Grade| match query.expected {
            Some(_) => true_score.is_some_and(|s| s.grade >= Some(grade)),
            None => ranked.iter().any(|(_, s)| s.grade >= Some(grade)),
        };
        let (certain, probable) = (hit(Grade::Certain), hit(Grade::Probable));
        stats.certain += u64::from(certain);
        stats.certain_or_probable += u64::from(probable);
        if query.kind == QueryKind::Duplicate {
            for c in &query.corruptions {
                let entry = eval.by_corruption.entry(*c).or_default();
                entry.0 += 1;
                entry.1 += u64::from(probable);
            }
        }
        for (id, s) in &ranked {
            let is_match = Some(*id) == query.expected;
            for c in &s.comparisons {
                let entry = levels.entry((c.field.clone(), c.level.clone())).or_default();
                if is_match {
                    entry.0 += 1;
                } else {
                    entry.1 += 1;
                }
            }
            if !is_match && s.grade >= Some(Grade::Probable) && eval.misgraded.len() < 500 {
                eval.misgraded.push(Misgraded {
                    query: qi,
                    candidate: Some(*id),
                    score: Some(s.clone()),
                    false_positive: true,
                });
            }
        }
        if query.expected.is_some() && !probable && eval.misgraded.len() < 500 {
            eval.misgraded.push(Misgraded {
                query: qi,
                candidate: query.expected.filter(|_| true_score.is_some()),
                score: true_score.cloned(),
                false_positive: false,
            });
        }
    }
    eval.retrieval_recall = if eval.duplicates == 0 { 1.0 } else { retrieved as f64 / eval.duplicates as f64 };
    eval.candidates_mean = candidates_total as f64 / data.queries.len().max(1) as f64;
    eval.levels = levels
        .into_iter()
        .map(|((field, level), (matches, non_matches))| LevelCount { field, level, matches, non_matches })
        .collect();
    let by_id: HashMap<PersonId, &SyntheticPerson> = data.persons.iter().map(|p| (p.person.id, p)).collect();
    for pair in &data.hard_negative_pairs {
        let (Some(a), Some(b)) = (by_id.get(&pair.a), by_id.get(&pair.b)) else { continue };
        let s = score(&a.profile(), &b.profile());
        let entry = eval.hard_negative_pairs.entry(pair.kind).or_default();
        entry.0 += 1;
        entry.1 += u64::from(s.grade == Some(Grade::Certain));
        entry.2 += u64::from(s.grade == Some(Grade::Probable));
    }
    eval
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_for_a_seed() {
        let a = generate(&SyntheticConfig::new(300, 7));
        let b = generate(&SyntheticConfig::new(300, 7));
        let ids = |d: &SyntheticDataSet| d.persons.iter().map(|p| p.person.id).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        assert_eq!(a.queries.len(), b.queries.len());
        assert_ne!(ids(&a), ids(&generate(&SyntheticConfig::new(300, 8))));
    }

    #[test]
    fn the_register_has_the_requested_size_valid_postcodes_and_ninos() {
        let data = generate(&SyntheticConfig::new(500, 1));
        assert_eq!(data.persons.len(), 500);
        for p in &data.persons {
            for t in &p.person.tenures {
                let pc = t.postcode.as_deref().unwrap_or_default();
                assert_eq!(crate::postcode::normalise(pc).as_deref(), Some(pc));
            }
            if let Some(nino) = &p.nino {
                assert_eq!(normalise_nino(nino).as_deref(), Some(nino.as_str()));
            }
        }
        let communities: HashSet<Community> = data.persons.iter().map(|p| p.community).collect();
        assert!(communities.len() >= 12, "{communities:?}");
        let persons: HashSet<PersonId> = data.persons.iter().map(|p| p.person.id).collect();
        assert_eq!(persons.len(), 500);
    }

    #[test]
    fn queries_are_labelled_and_hard_negatives_are_listed() {
        let data = generate(&SyntheticConfig::new(2000, 3));
        let kinds: HashSet<QueryKind> = data.queries.iter().map(|q| q.kind).collect();
        assert_eq!(kinds.len(), 5, "{kinds:?}");
        assert!(data.queries.iter().filter(|q| q.kind == QueryKind::Duplicate).all(|q| q.expected.is_some()));
        assert!(data.queries.iter().filter(|q| q.kind != QueryKind::Duplicate).all(|q| q.expected.is_none()));
        assert!(data.hard_negative_pairs.iter().any(|p| p.kind == HardNegativeKind::Twins));
        assert!(data.hard_negative_pairs.iter().any(|p| p.kind == HardNegativeKind::HouseholdMembers));
        let corruptions: HashSet<Corruption> = data.queries.iter().flat_map(|q| q.corruptions.clone()).collect();
        assert_eq!(corruptions.len(), Corruption::ALL.len(), "{corruptions:?}");
    }

    #[test]
    fn typos_keep_the_first_letter() {
        let mut rng = Rng(1);
        for _ in 0..100 {
            if let Some(t) = typo(&mut rng, "Margaret") {
                assert!(t.starts_with('M'));
                assert_ne!(t, "Margaret");
            }
        }
        assert_eq!(typo(&mut rng, "Ali"), None);
    }

    #[test]
    fn counts_compute_precision_recall_and_f1() {
        let c = Counts { true_positives: 90, false_positives: 10, false_negatives: 10 };
        assert!((c.precision() - 0.9).abs() < 1e-12);
        assert!((c.recall() - 0.9).abs() < 1e-12);
        assert!((c.f1() - 0.9).abs() < 1e-12);
        assert!((Counts::default().precision() - 1.0).abs() < 1e-12);
    }
}

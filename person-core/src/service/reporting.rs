//! Reporting for Qlik (SPEC §10): the `persons`, `person-tenures` and `person-references` tables as flat rows,
//! paged (offset or cursor) or streamed whole (CSV), optionally only what changed since an instant.
//!
//! Every table is read by walking the persons in ascending id order ([`ReportingRepository::report_persons`]) in
//! bounded batches and turning each person into its rows here: the rules of what a row shows live in this module
//! only, so every store gives the same tables. A person that is deleted, merged or whose processing is restricted
//! becomes a *tombstone* (its id, `deleted: true` and nothing else of its data), so that an incremental load removes
//! it and nothing of a restricted person leaks; the output does not say why a person is a tombstone. Equality and
//! extended data are separate documents and are never read here.
//!
//! Each page and each export is recorded in the audit trail (`export`, no person ids, the table and paging in the
//! detail) before any row is handed out; a failed record fails the request. This module knows nothing of HTTP,
//! URLs or CSV.

use std::marker::PhantomData;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use uuid::Uuid;

use super::{PersonService, RequestContext};
use crate::api::{PersonReportRow, ReferenceReportRow, ReportRow, TenureReportRow};
use crate::audit::{AuditAction, AuditOutcome};
use crate::person::{Person, PersonId, PersonStatus, PersonType};
use crate::ports::{ReportCounts, ReportQuery, ReportingRepository, StoreError};
use crate::validate::ValidationErrors;

/// Page size when the request gives no `limit`.
pub const DEFAULT_REPORT_LIMIT: u32 = 1000;

/// Largest page (and largest explicit `limit` of an export).
pub const MAX_REPORT_LIMIT: u32 = 5000;

/// Persons read from the store at a time: what bounds the memory of a page or an export, whatever the table size.
pub const REPORT_BATCH: u32 = 1000;

/// How far `generatedAt` lies before the request's start.
///
/// A write takes its `lastModified` from its server's clock *before* it commits, so a change stamped just before a
/// report started may commit after the report read past it; and several servers' clocks differ a little. Were
/// `generatedAt` the report's own start, the next incremental load (`modifiedSince = generatedAt`) would miss such
/// a change for ever. Starting the next load this much earlier covers both (a request is abandoned after its
/// timeout, 30 s by default, long before): the next load repeats the rows changed in the margin, which an
/// incremental load replaces by `personId` anyway, and misses nothing.
pub const REPORT_WATERMARK_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Field error codes of reporting requests (the field is the query parameter's name).
pub mod codes {
    /// `limit` is not a number from 1 to [`super::MAX_REPORT_LIMIT`].
    pub const INVALID_LIMIT: &str = "invalid_limit";
    /// `offset` is not a non-negative number.
    pub const INVALID_OFFSET: &str = "invalid_offset";
    /// `modifiedSince` is not an RFC 3339 instant.
    pub const INVALID_TIMESTAMP: &str = "invalid_timestamp";
    /// `cursor` is not one from a previous page's `links.next`.
    pub const INVALID_CURSOR: &str = "invalid_cursor";
}

mod sealed {
    /// Only this module's tables implement [`super::ReportTable`].
    pub trait Sealed {}
}

/// One reporting table: its name, its row, and how a person becomes rows.
pub trait ReportTable: sealed::Sealed + Send + Sync + 'static {
    /// The row type.
    type Row: ReportRow + Send + 'static;
    /// The table's name, as in its path (`person-tenures`).
    const NAME: &'static str;
    /// Every person is exactly one row (so the store can skip `offset` persons itself).
    const ONE_ROW_PER_PERSON: bool;
    /// The rows of `person`, in order, with computed values as of `today`.
    fn rows(person: &Person, today: NaiveDate) -> Vec<Self::Row>;
    /// How many rows the whole table has, from the store's counts.
    fn total(counts: &ReportCounts) -> u64;
}

/// `persons`: one row per person.
#[derive(Debug)]
pub enum PersonsTable {}

/// `person-tenures`: one row per tenure of a live person, one tombstone per other person.
#[derive(Debug)]
pub enum PersonTenuresTable {}

/// `person-references`: one row per cross-reference of a live person, one tombstone per other person.
#[derive(Debug)]
pub enum PersonReferencesTable {}

impl sealed::Sealed for PersonsTable {}
impl sealed::Sealed for PersonTenuresTable {}
impl sealed::Sealed for PersonReferencesTable {}

/// A person whose data reporting shows: live and not restricted. Everyone else is a tombstone.
fn reportable(person: &Person) -> bool {
    person.status.is_active() && !person.processing_restricted
}

/// The wire name of a person type (its serde name).
fn person_type_name(person_type: PersonType) -> String {
    match serde_json::to_value(person_type) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{person_type:?}"),
    }
}

impl ReportTable for PersonsTable {
    type Row = PersonReportRow;
    const NAME: &'static str = "persons";
    const ONE_ROW_PER_PERSON: bool = true;

    fn rows(person: &Person, today: NaiveDate) -> Vec<PersonReportRow> {
        let merged_into = match person.status {
            PersonStatus::Merged { into } => Some(into),
            PersonStatus::Active | PersonStatus::Deleted => None,
        };
        let mut row = PersonReportRow {
            person_id: person.id,
            person_ref: None,
            title: None,
            preferred_title: None,
            first_name: None,
            middle_name: None,
            surname: None,
            preferred_first_name: None,
            preferred_middle_name: None,
            preferred_surname: None,
            place_of_birth: None,
            date_of_birth: None,
            date_of_death: None,
            person_types: None,
            is_a_minor: None,
            created_at: None,
            last_modified: person.last_modified,
            version_number: person.version_number,
            deleted: true,
            merged_into,
        };
        if reportable(person) {
            let name = |n: &Option<crate::person::Name>| n.as_ref().map(|n| n.as_str().to_owned());
            let types: Vec<String> = person.person_types.iter().map(|t| person_type_name(*t)).collect();
            row = PersonReportRow {
                person_ref: Some(person.person_ref),
                title: person.title,
                preferred_title: person.preferred_title,
                first_name: name(&person.first_name),
                middle_name: name(&person.middle_name),
                surname: Some(person.surname.as_str().to_owned()),
                preferred_first_name: name(&person.preferred_first_name),
                preferred_middle_name: name(&person.preferred_middle_name),
                preferred_surname: name(&person.preferred_surname),
                place_of_birth: person.place_of_birth.clone(),
                date_of_birth: person.date_of_birth,
                date_of_death: person.date_of_death,
                person_types: Some(types.join(";")),
                is_a_minor: person.is_a_minor(today),
                created_at: Some(person.created_at),
                deleted: false,
                ..row
            };
        }
        vec![row]
    }

    fn total(counts: &ReportCounts) -> u64 {
        counts.persons
    }
}

impl ReportTable for PersonTenuresTable {
    type Row = TenureReportRow;
    const NAME: &'static str = "person-tenures";
    const ONE_ROW_PER_PERSON: bool = false;

    fn rows(person: &Person, today: NaiveDate) -> Vec<TenureReportRow> {
        if !reportable(person) {
            return vec![TenureReportRow {
                person_id: person.id,
                tenure_id: None,
                tenure_type: None,
                start_date: None,
                end_date: None,
                asset_full_address: None,
                asset_id: None,
                uprn: None,
                postcode: None,
                payment_reference: None,
                property_reference: None,
                is_active: None,
                deleted: true,
            }];
        }
        person
            .tenures
            .iter()
            .map(|t| TenureReportRow {
                person_id: person.id,
                tenure_id: Some(t.id),
                tenure_type: t.tenure_type.clone(),
                start_date: t.start_date,
                end_date: t.end_date,
                asset_full_address: t.asset_full_address.clone(),
                asset_id: t.asset_id.clone(),
                uprn: t.uprn.clone(),
                postcode: t.postcode.clone(),
                payment_reference: t.payment_reference.clone(),
                property_reference: t.property_reference.clone(),
                is_active: Some(t.is_active(today)),
                deleted: false,
            })
            .collect()
    }

    fn total(counts: &ReportCounts) -> u64 {
        counts.tenures + counts.withheld
    }
}

impl ReportTable for PersonReferencesTable {
    type Row = ReferenceReportRow;
    const NAME: &'static str = "person-references";
    const ONE_ROW_PER_PERSON: bool = false;

    fn rows(person: &Person, _today: NaiveDate) -> Vec<ReferenceReportRow> {
        if !reportable(person) {
            return vec![ReferenceReportRow { person_id: person.id, system: None, reference_id: None, deleted: true }];
        }
        person
            .references
            .iter()
            .map(|r| ReferenceReportRow {
                person_id: person.id,
                system: Some(r.system.as_str().to_owned()),
                reference_id: Some(r.id.as_str().to_owned()),
                deleted: false,
            })
            .collect()
    }

    fn total(counts: &ReportCounts) -> u64 {
        counts.references + counts.withheld
    }
}

/// Where a page ended, for the next one to start: after all rows of `person`, or after its first `rows_done`.
///
/// Opaque to clients (they follow `links.next`). Its text is the person id, followed by `.n` when the page ended
/// within the person's rows. Resuming at a cursor reads from that person on with one keyset read, however far into
/// the table it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportCursor {
    person: PersonId,
    rows_done: Option<u32>,
}

impl ReportCursor {
    /// The position after the row at `index` of the `count` rows of `person`.
    fn after_row(person: PersonId, index: usize, count: usize) -> Self {
        let done = index + 1;
        let rows_done = (done < count).then(|| u32::try_from(done).unwrap_or(u32::MAX));
        Self { person, rows_done }
    }

    /// Reads a cursor from its text.
    ///
    /// # Errors
    /// [`InvalidCursor`] when the text is not a cursor.
    pub fn parse(text: &str) -> Result<Self, InvalidCursor> {
        let (id, rows) = match text.split_once('.') {
            Some((id, rows)) => (id, Some(rows)),
            None => (text, None),
        };
        let person = PersonId::parse(id).map_err(|_| InvalidCursor)?;
        let rows_done = match rows {
            None => None,
            Some(rows) if !rows.is_empty() && rows.bytes().all(|b| b.is_ascii_digit()) => {
                Some(rows.parse::<u32>().ok().filter(|n| *n > 0).ok_or(InvalidCursor)?)
            }
            Some(_) => return Err(InvalidCursor),
        };
        Ok(Self { person, rows_done })
    }
}

impl std::fmt::Display for ReportCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.rows_done {
            None => write!(f, "{}", self.person),
            Some(rows) => write!(f, "{}.{rows}", self.person),
        }
    }
}

/// The text is not a reporting cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a reporting cursor")]
pub struct InvalidCursor;

/// The query parameters of a reporting request, as sent (blank values count as absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportParams {
    /// `modifiedSince`: an RFC 3339 instant.
    pub modified_since: Option<String>,
    /// `offset`: rows to skip (default 0).
    pub offset: Option<String>,
    /// `limit`: rows per page, 1 to [`MAX_REPORT_LIMIT`] (default [`DEFAULT_REPORT_LIMIT`]).
    pub limit: Option<String>,
    /// `cursor`: from a previous page's `links.next`.
    pub cursor: Option<String>,
}

/// A checked reporting request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportRequest {
    modified_since: Option<DateTime<Utc>>,
    offset: u64,
    limit: Option<u32>,
    cursor: Option<ReportCursor>,
}

impl ReportRequest {
    /// Checks the parameters, reporting every invalid one at once (`field` is the parameter's name).
    ///
    /// # Errors
    /// [`ValidationErrors`] for a `modifiedSince` that is not an RFC 3339 instant, an `offset` that is not a
    /// non-negative number, a `limit` outside 1..=[`MAX_REPORT_LIMIT`], or a `cursor` that is not one.
    pub fn parse(params: &ReportParams) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let modified_since = given(&params.modified_since).and_then(|text| {
            let parsed = parse_instant(text);
            if parsed.is_none() {
                errors.push(
                    "modifiedSince",
                    codes::INVALID_TIMESTAMP,
                    "must be an RFC 3339 instant, e.g. 2026-01-31T18:00:00Z (a previous page's generatedAt)",
                );
            }
            parsed
        });
        let offset = match given(&params.offset) {
            None => 0,
            // At most i64::MAX: what the stores can skip, and what the OpenAPI document declares (int64).
            Some(text) => decimal(text).filter(|n| i64::try_from(*n).is_ok()).unwrap_or_else(|| {
                errors.push("offset", codes::INVALID_OFFSET, "must be a number of rows, 0 or more");
                0
            }),
        };
        let limit = given(&params.limit).and_then(|text| {
            let parsed =
                decimal(text).and_then(|n| u32::try_from(n).ok()).filter(|n| (1..=MAX_REPORT_LIMIT).contains(n));
            if parsed.is_none() {
                errors.push("limit", codes::INVALID_LIMIT, format!("must be a number from 1 to {MAX_REPORT_LIMIT}"));
            }
            parsed
        });
        let cursor = given(&params.cursor).and_then(|text| {
            let parsed = ReportCursor::parse(text).ok();
            if parsed.is_none() {
                errors.push("cursor", codes::INVALID_CURSOR, "must be the cursor of a previous page's links.next");
            }
            parsed
        });
        if errors.is_empty() { Ok(Self { modified_since, offset, limit, cursor }) } else { Err(errors) }
    }

    /// Only persons changed at or after this instant.
    #[must_use]
    pub fn modified_since(&self) -> Option<DateTime<Utc>> {
        self.modified_since
    }

    /// Rows before the page (counted from the start of the table); informational when a cursor is given.
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The `limit` given, if one was.
    #[must_use]
    pub fn limit(&self) -> Option<u32> {
        self.limit
    }

    /// The size of a page: the given `limit` or [`DEFAULT_REPORT_LIMIT`].
    #[must_use]
    pub fn page_limit(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_REPORT_LIMIT)
    }

    /// Where to start, when the request continues a previous page.
    #[must_use]
    pub fn cursor(&self) -> Option<ReportCursor> {
        self.cursor
    }

    /// The audit detail: the table and the paging, never a person id (a cursor holds one) nor any value.
    fn audit_detail(&self, table: &str, format: &str) -> String {
        let limit = self.limit.map_or_else(|| "all".to_owned(), |l| l.to_string());
        let mut detail = format!("table={table} format={format} offset={} limit={limit}", self.offset);
        if let Some(since) = self.modified_since {
            detail.push_str(&format!(" modifiedSince={}", since.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)));
        }
        if self.cursor.is_some() {
            detail.push_str(" cursor=yes");
        }
        detail
    }
}

/// An RFC 3339 instant. A `+` of an offset that arrived as a space (an unencoded `+` in a query string) is read
/// as the `+` it was.
fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    let parse = |t: &str| DateTime::parse_from_rfc3339(t).ok().map(|d| d.with_timezone(&Utc));
    parse(text).or_else(|| {
        let (before, after) = text.rsplit_once(' ')?;
        parse(&format!("{before}+{after}"))
    })
}

/// The trimmed value of a parameter, `None` when absent or blank.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A non-negative decimal without sign or spaces.
fn decimal(text: &str) -> Option<u64> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok()).flatten()
}

/// One page of a reporting table.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportPage<R> {
    /// The rows.
    pub rows: Vec<R>,
    /// Rows in the whole table (with the same `modifiedSince`).
    pub total: u64,
    /// The request's offset.
    pub offset: u64,
    /// The page size.
    pub limit: u32,
    /// The `modifiedSince` of the next incremental load: the request's start less [`REPORT_WATERMARK_MARGIN`].
    pub generated_at: DateTime<Utc>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<ReportCursor>,
}

/// A whole table (or the part an explicit `offset` / `limit` selects), read batch by batch: what a CSV export
/// streams. Holds at most one batch of persons at a time.
pub struct ReportExport<T: ReportTable> {
    scan: Scan<T>,
    first: Option<Vec<T::Row>>,
    generated_at: DateTime<Utc>,
}

impl<T: ReportTable> std::fmt::Debug for ReportExport<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportExport").field("table", &T::NAME).field("generated_at", &self.generated_at).finish()
    }
}

impl<T: ReportTable> ReportExport<T> {
    /// The `modifiedSince` of the next incremental load: the export's start less [`REPORT_WATERMARK_MARGIN`].
    #[must_use]
    pub fn generated_at(&self) -> DateTime<Utc> {
        self.generated_at
    }

    /// The next rows (one store read's worth, never empty), or `None` at the end of the table.
    ///
    /// # Errors
    /// A store failure; the export cannot continue after it.
    pub async fn next_rows(&mut self) -> Result<Option<Vec<T::Row>>, StoreError> {
        if let Some(first) = self.first.take()
            && !first.is_empty()
        {
            return Ok(Some(first));
        }
        while let Some(batch) = self.scan.next().await? {
            if !batch.is_empty() {
                return Ok(Some(batch.into_iter().map(|(_, row)| row).collect()));
            }
        }
        Ok(None)
    }
}

/// Walks a table from a starting point: persons in id order, [`Scan::batch`] at a time, turned into rows, with the
/// rows to skip (an `offset` of a table whose persons have several rows each) and to emit counted here.
struct Scan<T: ReportTable> {
    reporting: Arc<dyn ReportingRepository>,
    today: NaiveDate,
    modified_since: Option<DateTime<Utc>>,
    /// Read persons after this one.
    after: Option<PersonId>,
    /// Persons the store skips in the first read (one-row-per-person tables without a cursor).
    store_offset: u64,
    /// Rows of this person already delivered, when the first person read is it (a cursor within a person).
    resume: Option<(PersonId, u32)>,
    /// Rows still to skip.
    skip: u64,
    /// Rows still to emit; `None`: all.
    remaining: Option<u64>,
    batch: u32,
    exhausted: bool,
    table: PhantomData<fn() -> T>,
}

impl<T: ReportTable> Scan<T> {
    fn new(
        reporting: Arc<dyn ReportingRepository>,
        today: NaiveDate,
        request: &ReportRequest,
        rows: Option<u64>,
        batch: u32,
    ) -> Self {
        let (after, resume, skip, store_offset) = match request.cursor {
            Some(ReportCursor { person, rows_done: None }) => (Some(person), None, 0, 0),
            // Read from the person itself: after its predecessor in id order.
            Some(ReportCursor { person, rows_done: Some(done) }) => (predecessor(person), Some((person, done)), 0, 0),
            None if T::ONE_ROW_PER_PERSON => (None, None, 0, request.offset),
            None => (None, None, request.offset, 0),
        };
        Self {
            reporting,
            today,
            modified_since: request.modified_since,
            after,
            store_offset,
            resume,
            skip,
            remaining: rows,
            batch: batch.max(1),
            exhausted: false,
            table: PhantomData,
        }
    }

    /// The rows of the next store read, each with the cursor after it (possibly none: persons without rows);
    /// `None` when the table or the rows to emit are exhausted.
    async fn next(&mut self) -> Result<Option<Vec<(ReportCursor, T::Row)>>, StoreError> {
        if self.exhausted || self.remaining == Some(0) {
            return Ok(None);
        }
        // Read no more persons than could still be needed (a one-row table needs exactly that many).
        let needed = self.remaining.map_or(u64::MAX, |r| r.saturating_add(self.skip));
        let limit = u32::try_from(needed.min(u64::from(self.batch))).unwrap_or(self.batch).max(1);
        let query =
            ReportQuery { modified_since: self.modified_since, after: self.after, offset: self.store_offset, limit };
        let persons = self.reporting.report_persons(&query).await?;
        self.store_offset = 0;
        self.exhausted = persons.len() < limit as usize;
        if let Some(last) = persons.last() {
            self.after = Some(last.id);
        }
        let mut out = Vec::new();
        for person in &persons {
            let resumed = match self.resume.take() {
                Some((id, done)) if id == person.id => usize::try_from(done).unwrap_or(usize::MAX),
                _ => 0,
            };
            let rows = T::rows(person, self.today);
            let count = rows.len();
            let available = u64::try_from(count.saturating_sub(resumed)).unwrap_or(u64::MAX);
            if self.skip >= available {
                self.skip -= available;
                continue;
            }
            let start = resumed + usize::try_from(self.skip).unwrap_or(usize::MAX);
            self.skip = 0;
            for (index, row) in rows.into_iter().enumerate().skip(start) {
                if self.remaining == Some(0) {
                    break;
                }
                out.push((ReportCursor::after_row(person.id, index, count), row));
                if let Some(remaining) = &mut self.remaining {
                    *remaining -= 1;
                }
            }
            if self.remaining == Some(0) {
                break;
            }
        }
        Ok(Some(out))
    }
}

/// The id just before `id` in the store's order (ascending bytes, i.e. the UUID as a big-endian number); `None`
/// when that would be the nil UUID, which no person has.
fn predecessor(id: PersonId) -> Option<PersonId> {
    id.as_uuid().as_u128().checked_sub(1).map(Uuid::from_u128).and_then(PersonId::new)
}

impl PersonService {
    /// One page of a reporting table: at most `request.page_limit()` rows from the cursor, or from `offset` rows
    /// into the table, with the table's `total` and where the next page starts. Recorded in the audit trail
    /// before it is returned.
    ///
    /// A cursor page costs one keyset read per [`REPORT_BATCH`] persons. An `offset` page of the persons table
    /// lets the store skip; of the other tables (whose persons have any number of rows) it reads from the start
    /// of the table, so following the cursor is the way through a large table.
    ///
    /// # Errors
    /// A store failure (also of the audit record: nothing is returned then).
    pub async fn report_page<T: ReportTable>(
        &self,
        ctx: &RequestContext,
        request: &ReportRequest,
    ) -> Result<ReportPage<T::Row>, StoreError> {
        let generated_at = self.report_watermark();
        let limit = request.page_limit().clamp(1, MAX_REPORT_LIMIT);
        let counts = self.repos.reporting.report_counts(request.modified_since).await?;
        let (rows, next) = self.read_page::<T>(request, limit, REPORT_BATCH).await?;
        self.audit_export(ctx, request.audit_detail(T::NAME, "json")).await?;
        Ok(ReportPage { rows, total: T::total(&counts), offset: request.offset, limit, generated_at, next })
    }

    /// A whole reporting table for streaming (CSV): from the cursor or `offset` (0 unless given), all rows unless a
    /// `limit` is given. The first batch is read and the export recorded in the audit trail before this returns,
    /// so a failure of either is an error here, before anything is sent.
    ///
    /// # Errors
    /// A store failure.
    pub async fn report_export<T: ReportTable>(
        &self,
        ctx: &RequestContext,
        request: &ReportRequest,
    ) -> Result<ReportExport<T>, StoreError> {
        let generated_at = self.report_watermark();
        let rows = request.limit.map(|l| u64::from(l.clamp(1, MAX_REPORT_LIMIT)));
        let mut scan = Scan::<T>::new(self.repos.reporting.clone(), self.today(), request, rows, REPORT_BATCH);
        let first = scan.next().await?.map(|batch| batch.into_iter().map(|(_, row)| row).collect());
        self.audit_export(ctx, request.audit_detail(T::NAME, "csv")).await?;
        Ok(ReportExport { scan, first, generated_at })
    }

    /// Reads up to `limit` rows and whether more follow (the cursor after the last row when they do), reading
    /// `batch` persons at a time.
    async fn read_page<T: ReportTable>(
        &self,
        request: &ReportRequest,
        limit: u32,
        batch: u32,
    ) -> Result<(Vec<T::Row>, Option<ReportCursor>), StoreError> {
        let today = self.today();
        // One row more than the page: whether it exists says whether there is a next page.
        let mut scan = Scan::<T>::new(self.repos.reporting.clone(), today, request, Some(u64::from(limit) + 1), batch);
        let mut rows = Vec::new();
        let mut last = None;
        let mut more = false;
        while let Some(read) = scan.next().await? {
            for (cursor, row) in read {
                if rows.len() == limit as usize {
                    more = true;
                    break;
                }
                rows.push(row);
                last = Some(cursor);
            }
        }
        Ok((rows, if more { last } else { None }))
    }

    /// Now less [`REPORT_WATERMARK_MARGIN`], to the microsecond (truncated, so never later than the instant), so
    /// that a `generatedAt` passed back as `modifiedSince` never misses a change.
    fn report_watermark(&self) -> DateTime<Utc> {
        (self.clock.now() - REPORT_WATERMARK_MARGIN).trunc_subsecs(6)
    }

    async fn audit_export(&self, ctx: &RequestContext, detail: String) -> Result<(), StoreError> {
        let entry = self.audit_entry(ctx, AuditAction::Export, Vec::new(), Some(detail), AuditOutcome::Success);
        self.repos.audit.append(entry).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::TimeZone;
    use serde_json::{Value, json};

    use super::*;
    use crate::access::Permissions;
    use crate::audit::AuditEntry;
    use crate::event::Actor;
    use crate::memory::InMemoryStore;
    use crate::ports::{AuditLog, AuditRecord, FixedClock, RandomIds, Repositories};
    use crate::service::{CreateOptions, ReferenceRequest};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 14, 15, 9, 26).unwrap() + chrono::Duration::nanoseconds(535_897_932)
    }

    fn ctx() -> RequestContext {
        let actor = Actor {
            subject: "analyst".to_owned(),
            name: "Ana Lyst".to_owned(),
            email: "ana@example.gov.uk".to_owned(),
        };
        RequestContext {
            purpose: Some("monthly tenancy report".to_owned()),
            ..RequestContext::new(actor, Permissions::all(), "corr-report")
        }
    }

    /// An audit log that keeps what is appended, or refuses every append.
    #[derive(Default)]
    struct RecordingAudit {
        entries: Mutex<Vec<AuditEntry>>,
        broken: bool,
    }

    #[async_trait]
    impl AuditLog for RecordingAudit {
        async fn append(&self, entry: AuditEntry) -> Result<(), StoreError> {
            if self.broken {
                return Err(StoreError::Unavailable("the audit log is down".into()));
            }
            self.entries.lock().unwrap().push(entry);
            Ok(())
        }

        async fn entries_for_person(&self, _: PersonId, _: u64, _: u32) -> Result<Vec<AuditRecord>, StoreError> {
            Ok(Vec::new())
        }
    }

    struct Setup {
        service: PersonService,
        audit: Arc<RecordingAudit>,
    }

    fn setup_with(audit: RecordingAudit) -> Setup {
        let store = Arc::new(InMemoryStore::new());
        let audit = Arc::new(audit);
        let mut repos = Repositories::from_store(store);
        repos.audit = audit.clone();
        Setup { service: PersonService::new(repos, Arc::new(FixedClock(now())), Arc::new(RandomIds)), audit }
    }

    fn setup() -> Setup {
        setup_with(RecordingAudit::default())
    }

    fn tenure(kind: &str) -> Value {
        let address = "1 Mare Street, London E8 1DY";
        json!({ "id": Uuid::new_v4(), "type": kind, "startDate": "2015-03-01", "assetFullAddress": address })
    }

    async fn create(service: &PersonService, first_name: &str, tenures: usize) -> Person {
        let body = json!({
            "title": "Ms",
            "firstName": first_name,
            "surname": "Lovelace",
            "dateOfBirth": "2010-05-17",
            "personTypes": ["Tenant", "Leaseholder"],
            "reason": "New tenancy",
            "tenures": (0..tenures).map(|i| tenure(if i == 0 { "Secure" } else { "Introductory" })).collect::<Vec<_>>(),
        });
        let options = CreateOptions { allow_duplicate: true, ..CreateOptions::default() };
        service.create(&ctx(), body.to_string().as_bytes(), options).await.unwrap().person
    }

    async fn add_reference(service: &PersonService, id: PersonId, system: &str, reference: &str) {
        let request =
            ReferenceRequest::parse(json!({ "system": system, "id": reference }).to_string().as_bytes()).unwrap();
        service.add_reference(&ctx(), id, None, request).await.unwrap();
    }

    fn request(pairs: &[(&str, &str)]) -> ReportRequest {
        let value = |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned());
        let params = ReportParams {
            modified_since: value("modifiedSince"),
            offset: value("offset"),
            limit: value("limit"),
            cursor: value("cursor"),
        };
        ReportRequest::parse(&params).unwrap()
    }

    fn invalid_fields(pairs: &[(&str, &str)]) -> Vec<String> {
        let value = |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned());
        let params = ReportParams {
            modified_since: value("modifiedSince"),
            offset: value("offset"),
            limit: value("limit"),
            cursor: value("cursor"),
        };
        ReportRequest::parse(&params).unwrap_err().errors().iter().map(|e| e.field.clone()).collect()
    }

    /// Every row of table `T` through `read_page` pages of `limit` rows, following the cursor.
    async fn by_cursor<T: ReportTable>(service: &PersonService, limit: u32, batch: u32) -> Vec<T::Row> {
        let mut rows = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let limit_text = limit.to_string();
            let mut pairs = vec![("limit", limit_text.as_str())];
            if let Some(c) = &cursor {
                pairs.push(("cursor", c.as_str()));
            }
            let (page, next) = service.read_page::<T>(&request(&pairs), limit, batch).await.unwrap();
            assert!(page.len() <= limit as usize);
            rows.extend(page);
            match next {
                Some(next) => cursor = Some(next.to_string()),
                None => return rows,
            }
        }
    }

    /// Every row of table `T` through `read_page` pages of `limit` rows, by offset.
    async fn by_offset<T: ReportTable>(service: &PersonService, limit: u32, batch: u32) -> Vec<T::Row> {
        let mut rows = Vec::new();
        loop {
            let offset = rows.len().to_string();
            let (page, next) = service.read_page::<T>(&request(&[("offset", &offset)]), limit, batch).await.unwrap();
            let full = page.len() == limit as usize;
            rows.extend(page);
            assert!(next.is_none() || full, "a next page only after a full page");
            if next.is_none() {
                return rows;
            }
        }
    }

    /// Every row of table `T`, one batch of `batch` persons at a time, as an export reads them.
    async fn scanned<T: ReportTable>(service: &PersonService, batch: u32) -> Vec<T::Row> {
        let mut scan = Scan::<T>::new(service.repos.reporting.clone(), service.today(), &request(&[]), None, batch);
        let mut rows = Vec::new();
        while let Some(read) = scan.next().await.unwrap() {
            rows.extend(read.into_iter().map(|(_, row)| row));
        }
        rows
    }

    /// Ten persons with 0, 1, 2 or 3 tenures and 0 to 2 references; one deleted, one merged, one restricted.
    async fn varied(service: &PersonService) -> Vec<Person> {
        let mut persons = Vec::new();
        for i in 0..10 {
            let person = create(service, &format!("Ada{i}"), i % 4).await;
            for r in 0..(i % 3) {
                add_reference(service, person.id, "tenure", &format!("T-{i}-{r}")).await;
            }
            persons.push(person);
        }
        service.delete(&ctx(), persons[1].id, None, None).await.unwrap();
        let merge = json!({ "duplicateId": persons[2].id, "reason": "Recorded twice" }).to_string();
        let survivor = service.get(&ctx(), persons[3].id).await.unwrap();
        service.merge(&ctx(), persons[3].id, survivor.version_number, merge.as_bytes()).await.unwrap();
        service.set_restriction(&ctx(), persons[4].id, true, None, None).await.unwrap();
        persons.sort_by_key(|p| p.id);
        persons
    }

    #[tokio::test]
    async fn a_live_person_is_one_flat_row_with_its_types_joined_and_is_a_minor_computed() {
        let Setup { service, .. } = setup();
        let person = create(&service, "Ada", 2).await;

        let rows = PersonsTable::rows(&person, now().date_naive());

        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.person_id, person.id);
        assert_eq!(row.first_name.as_deref(), Some("Ada"));
        assert_eq!(row.surname.as_deref(), Some("Lovelace"));
        assert_eq!(row.person_types.as_deref(), Some("Tenant;Leaseholder"));
        assert_eq!(row.is_a_minor, Some(true));
        assert_eq!(row.person_ref, Some(person.person_ref));
        assert_eq!(row.created_at, Some(person.created_at));
        assert!(!row.deleted);
        assert_eq!(row.merged_into, None);
        let tenures = PersonTenuresTable::rows(&person, now().date_naive());
        assert_eq!(
            tenures.iter().map(|t| t.tenure_id).collect::<Vec<_>>(),
            person.tenures.iter().map(|t| Some(t.id)).collect::<Vec<_>>()
        );
        assert_eq!(tenures[0].tenure_type.as_deref(), Some("Secure"));
        assert_eq!(tenures[0].is_active, Some(true));
        assert!(PersonReferencesTable::rows(&person, now().date_naive()).is_empty());
    }

    #[tokio::test]
    async fn deleted_merged_and_restricted_persons_are_tombstones_in_every_table_holding_nothing_of_theirs() {
        let Setup { service, .. } = setup();
        let persons = varied(&service).await;
        let today = now().date_naive();
        let mut tombstones = 0;
        for stored in &persons {
            let Some(person) = service.repos.persons.get(stored.id).await.unwrap() else { panic!("stored") };
            if super::reportable(&person) {
                continue;
            }
            tombstones += 1;
            let row = &PersonsTable::rows(&person, today)[0];
            let shown = serde_json::to_value(row).unwrap();
            let given: Vec<&str> =
                shown.as_object().unwrap().iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k.as_str()).collect();
            let mut expected = vec!["deleted", "lastModified", "personId", "versionNumber"];
            if let PersonStatus::Merged { into } = person.status {
                assert_eq!(row.merged_into, Some(into));
                expected.push("mergedInto");
                expected.sort_unstable();
            }
            assert_eq!(given, expected, "{shown}");
            assert_eq!(
                (row.deleted, row.last_modified, row.version_number),
                (true, person.last_modified, person.version_number)
            );
            let tenures = PersonTenuresTable::rows(&person, today);
            assert_eq!(tenures.len(), 1);
            assert!(tenures[0].deleted && tenures[0].tenure_id.is_none() && tenures[0].asset_full_address.is_none());
            let references = PersonReferencesTable::rows(&person, today);
            assert_eq!(references.len(), 1);
            assert!(references[0].deleted && references[0].system.is_none() && references[0].reference_id.is_none());
        }
        assert_eq!(tombstones, 3, "the deleted, the merged and the restricted person");
    }

    #[tokio::test]
    async fn offset_pages_cursor_pages_and_a_batched_scan_give_the_same_rows_for_every_table_and_page_size() {
        let Setup { service, .. } = setup();
        varied(&service).await;
        let all_persons = scanned::<PersonsTable>(&service, 1000).await;
        let all_tenures = scanned::<PersonTenuresTable>(&service, 1000).await;
        let all_references = scanned::<PersonReferencesTable>(&service, 1000).await;
        assert_eq!(all_persons.len(), 10);
        assert!(all_persons.windows(2).all(|w| w[0].person_id < w[1].person_id), "by person id");
        // 7 live persons with 0, 1, 2 or 3 tenures, 3 tombstones; counted from the fixture's i % 4 and i % 3.
        let counts = service.repos.reporting.report_counts(None).await.unwrap();
        assert_eq!(all_tenures.len() as u64, PersonTenuresTable::total(&counts));
        assert_eq!(all_references.len() as u64, PersonReferencesTable::total(&counts));
        assert_eq!(all_persons.len() as u64, PersonsTable::total(&counts));

        for batch in [1, 2, 3, 7, 1000] {
            assert_eq!(scanned::<PersonTenuresTable>(&service, batch).await, all_tenures, "batch {batch}");
            for limit in [1, 2, 3, 5, 100] {
                let case = format!("batch {batch}, limit {limit}");
                assert_eq!(by_cursor::<PersonsTable>(&service, limit, batch).await, all_persons, "{case}");
                assert_eq!(by_offset::<PersonsTable>(&service, limit, batch).await, all_persons, "{case}");
                assert_eq!(by_cursor::<PersonTenuresTable>(&service, limit, batch).await, all_tenures, "{case}");
                assert_eq!(by_offset::<PersonTenuresTable>(&service, limit, batch).await, all_tenures, "{case}");
                assert_eq!(by_cursor::<PersonReferencesTable>(&service, limit, batch).await, all_references, "{case}");
                assert_eq!(by_offset::<PersonReferencesTable>(&service, limit, batch).await, all_references, "{case}");
            }
        }
    }

    #[tokio::test]
    async fn a_page_reports_the_total_the_offset_and_when_it_was_generated_and_is_audited_without_person_ids() {
        let Setup { service, audit } = setup();
        varied(&service).await;
        let since = "2020-01-01T00:00:00Z";

        let page = service
            .report_page::<PersonTenuresTable>(
                &ctx(),
                &request(&[("limit", "2"), ("offset", "3"), ("modifiedSince", since)]),
            )
            .await
            .unwrap();

        assert_eq!(page.rows.len(), 2);
        assert_eq!((page.offset, page.limit), (3, 2));
        let watermark = (now() - REPORT_WATERMARK_MARGIN).trunc_subsecs(6);
        assert_eq!(page.generated_at, watermark, "now less the margin, to the microsecond");
        assert!(page.next.is_some());
        let counts = service.repos.reporting.report_counts(None).await.unwrap();
        assert_eq!(page.total, counts.tenures + counts.withheld);
        let entries = audit.entries.lock().unwrap();
        let export = entries.iter().filter(|e| e.action == AuditAction::Export).collect::<Vec<_>>();
        assert_eq!(export.len(), 1);
        let entry = export[0];
        assert!(entry.person_ids.is_empty());
        assert_eq!(entry.outcome, AuditOutcome::Success);
        assert_eq!(entry.actor.subject, "analyst");
        assert_eq!(entry.correlation_id, "corr-report");
        assert_eq!(entry.purpose.as_deref(), Some("monthly tenancy report"));
        assert_eq!(
            entry.detail.as_deref(),
            Some("table=person-tenures format=json offset=3 limit=2 modifiedSince=2020-01-01T00:00:00Z")
        );
    }

    #[tokio::test]
    async fn an_export_streams_every_row_and_is_audited_once_before_its_first_rows() {
        let Setup { service, audit } = setup();
        varied(&service).await;
        let expected = scanned::<PersonReferencesTable>(&service, 1000).await;

        let mut export = service.report_export::<PersonReferencesTable>(&ctx(), &request(&[])).await.unwrap();
        let detail = audit.entries.lock().unwrap().last().and_then(|e| e.detail.clone());
        let mut rows = Vec::new();
        while let Some(batch) = export.next_rows().await.unwrap() {
            assert!(!batch.is_empty());
            rows.extend(batch);
        }

        assert_eq!(rows, expected);
        assert_eq!(detail.as_deref(), Some("table=person-references format=csv offset=0 limit=all"));
        assert_eq!(export.generated_at(), (now() - REPORT_WATERMARK_MARGIN).trunc_subsecs(6));
    }

    #[tokio::test]
    async fn a_failed_audit_record_fails_the_page_and_the_export_and_hands_out_nothing() {
        let Setup { service, .. } = setup_with(RecordingAudit { broken: true, ..RecordingAudit::default() });

        let page = service.report_page::<PersonsTable>(&ctx(), &request(&[])).await;
        let export = service.report_export::<PersonsTable>(&ctx(), &request(&[])).await;

        assert!(matches!(page, Err(StoreError::Unavailable(_))));
        assert!(matches!(export, Err(StoreError::Unavailable(_))));
    }

    #[tokio::test]
    async fn modified_since_selects_the_persons_changed_at_or_after_it() {
        let store = Arc::new(InMemoryStore::new());
        let at = |minutes: i64| now() + chrono::Duration::minutes(minutes);
        let service_at = |t: DateTime<Utc>| {
            PersonService::new(Repositories::from_store(store.clone()), Arc::new(FixedClock(t)), Arc::new(RandomIds))
        };
        let early = create(&service_at(at(0)), "Early", 1).await;
        let late = create(&service_at(at(10)), "Late", 1).await;
        let since = at(10).to_rfc3339();

        let (rows, next) = service_at(at(20))
            .read_page::<PersonsTable>(&request(&[("modifiedSince", &since)]), 10, 1000)
            .await
            .unwrap();

        assert_eq!(rows.iter().map(|r| r.person_id).collect::<Vec<_>>(), vec![late.id]);
        assert!(next.is_none());
        assert_ne!(early.id, late.id);
    }

    #[test]
    fn request_parameters_are_checked_together_and_blanks_count_as_absent() {
        let defaults = request(&[("modifiedSince", " "), ("offset", ""), ("limit", ""), ("cursor", "")]);
        assert_eq!(
            (defaults.modified_since(), defaults.offset(), defaults.limit(), defaults.cursor()),
            (None, 0, None, None)
        );
        assert_eq!(defaults.page_limit(), DEFAULT_REPORT_LIMIT);
        let full = request(&[("limit", "5000"), ("offset", "12345678901")]);
        assert_eq!((full.limit(), full.offset()), (Some(5000), 12_345_678_901));
        assert_eq!(
            invalid_fields(&[("limit", "0"), ("offset", "-1"), ("modifiedSince", "yesterday"), ("cursor", "x")]),
            vec!["modifiedSince", "offset", "limit", "cursor"]
        );
        for limit in ["5001", "1e3", "+5", "99999999999"] {
            assert_eq!(invalid_fields(&[("limit", limit)]), vec!["limit"], "{limit}");
        }
        for since in ["2026-01-31", "2026-01-31T18:00:00", "31/01/2026 18:00"] {
            assert_eq!(invalid_fields(&[("modifiedSince", since)]), vec!["modifiedSince"], "{since}");
        }
    }

    #[test]
    fn modified_since_reads_any_offset_and_an_offset_plus_sent_unencoded() {
        let expected = Utc.with_ymd_and_hms(2026, 1, 31, 17, 0, 0).unwrap();
        for text in [
            "2026-01-31T17:00:00Z",
            "2026-01-31T18:00:00+01:00",
            "2026-01-31T18:00:00 01:00",
            "2026-01-31t17:00:00.000z",
        ] {
            assert_eq!(request(&[("modifiedSince", text)]).modified_since(), Some(expected), "{text}");
        }
    }

    #[test]
    fn cursors_read_back_what_they_print_and_nothing_else() {
        let person = PersonId::new(Uuid::new_v4()).unwrap();
        for cursor in [ReportCursor { person, rows_done: None }, ReportCursor { person, rows_done: Some(3) }] {
            assert_eq!(ReportCursor::parse(&cursor.to_string()), Ok(cursor));
        }
        for bad in [
            "",
            "abc",
            "00000000-0000-0000-0000-000000000000",
            &format!("{person}."),
            &format!("{person}.0"),
            &format!("{person}.-1"),
            &format!("{person}.x"),
            &format!("{person}.99999999999"),
        ] {
            assert_eq!(ReportCursor::parse(bad), Err(InvalidCursor), "{bad}");
        }
        assert_eq!(ReportCursor::after_row(person, 2, 3), ReportCursor { person, rows_done: None });
        assert_eq!(ReportCursor::after_row(person, 0, 3), ReportCursor { person, rows_done: Some(1) });
    }

    #[test]
    fn the_predecessor_of_an_id_is_the_id_just_before_it_in_byte_order() {
        let id = PersonId::parse("0b4f6c1e-0000-4000-8000-000000000000").unwrap();
        let before = predecessor(id).unwrap();
        assert_eq!(before.to_string(), "0b4f6c1e-0000-4000-7fff-ffffffffffff");
        assert!(before < id);
        assert_eq!(predecessor(PersonId::parse("00000000-0000-0000-0000-000000000001").unwrap()), None);
    }

    #[tokio::test]
    async fn every_row_type_has_its_json_keys_as_columns_for_live_persons_and_tombstones() {
        fn keys<R: ReportRow>(row: &R) -> Vec<String> {
            let value = serde_json::to_value(row).unwrap();
            let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            keys
        }
        fn columns<R: ReportRow>() -> Vec<String> {
            let mut columns: Vec<String> = R::COLUMNS.iter().map(|c| (*c).to_owned()).collect();
            columns.sort();
            columns
        }
        let Setup { service, .. } = setup();
        let live = create(&service, "Ada", 1).await;
        add_reference(&service, live.id, "tenure", "T-1").await;
        let live = service.get(&ctx(), live.id).await.unwrap();
        let mut gone = live.clone();
        gone.status = PersonStatus::Deleted;
        let today = now().date_naive();
        for person in [&live, &gone] {
            assert_eq!(keys(&PersonsTable::rows(person, today)[0]), columns::<PersonReportRow>());
            assert_eq!(keys(&PersonTenuresTable::rows(person, today)[0]), columns::<TenureReportRow>());
            assert_eq!(keys(&PersonReferencesTable::rows(person, today)[0]), columns::<ReferenceReportRow>());
        }
    }
}

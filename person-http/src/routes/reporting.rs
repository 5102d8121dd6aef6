//! Reporting for Qlik (SPEC §10): `GET /api/v1/reporting/persons`, `/person-tenures` and `/person-references`,
//! as JSON pages or as one streamed CSV file (`docs/qlik.md`).
//!
//! The handlers read the query string (unknown, repeated or malformed parameters are 400s naming the parameter),
//! choose the format, and shape the answer: the page with its absolute `links.next`, or the CSV bytes (RFC 4180).
//! Which rows a table has, tombstones, paging and the audit record are the service's business
//! (`person_core::service::reporting`).

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::Uri;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use person_core::RequestContext;
use person_core::api::{
    PersonReportRow, ProblemDetails, ReferenceReportRow, ReportLinks, ReportResponse, ReportRow, TenureReportRow,
};
use person_core::service::reporting::{
    PersonReferencesTable, PersonTenuresTable, PersonsTable, ReportExport, ReportParams, ReportRequest, ReportTable,
};
use serde_json::Value;

use crate::error::ApiError;
use crate::extract::{Caller, Params};
use crate::links::percent_encode;
use crate::state::AppState;

/// The media type of a CSV export.
const TEXT_CSV: &str = "text/csv; charset=utf-8";

/// The response header of a CSV export giving its `generatedAt` (the body has no room for it).
const X_GENERATED_AT: HeaderName = HeaderName::from_static("x-generated-at");

/// The query parameters of the reporting endpoints.
const PARAMETERS: [&str; 5] = ["modifiedSince", "offset", "limit", "cursor", "format"];

/// The path of a table's endpoint.
fn table_path<T: ReportTable>() -> String {
    format!("/api/v1/reporting/{}", T::NAME)
}

/// A reporting query string, read: the service's parameters and the format asked for with `format`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ReportQueryString {
    params: ReportParams,
    /// `format=csv` (true) or `format=json` (false); `None`: decided by `Accept`.
    csv: Option<bool>,
}

impl ReportQueryString {
    /// Unknown parameters, a parameter repeated with another value, and a `format` other than `json` or `csv`
    /// are 400s naming the parameter; blank values count as absent. The values themselves are checked by the
    /// service.
    ///
    /// A parameter repeated with the same value is read once: a client following `links.next` may add its own
    /// fixed query parameters (`modifiedSince`, `limit`) to a URL that already holds them.
    fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut query = Self::default();
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for (key, value) in pairs {
            match seen.iter().find(|(name, _)| name == key) {
                Some((_, first)) if first.trim() == value.trim() => continue,
                Some(_) => {
                    return Err(ApiError::bad_parameter(
                        key,
                        "repeated_parameter",
                        "must be given at most once (or repeated with the same value)",
                    ));
                }
                None => seen.push((key, value)),
            }
            let value = Some(value.clone());
            match key.as_str() {
                "modifiedSince" => query.params.modified_since = value,
                "offset" => query.params.offset = value,
                "limit" => query.params.limit = value,
                "cursor" => query.params.cursor = value,
                "format" => query.csv = parse_format(value.as_deref().unwrap_or_default())?,
                name => {
                    return Err(ApiError::bad_parameter(
                        name,
                        "unknown_parameter",
                        format!(
                            "is not a reporting parameter; use {} (names are case-sensitive)",
                            PARAMETERS.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(query)
    }

    /// Whether to answer CSV: `format` when given, else `Accept` preferring `text/csv` to `application/json`.
    fn wants_csv(&self, headers: &HeaderMap) -> bool {
        self.csv.unwrap_or_else(|| prefers_csv(headers))
    }
}

fn parse_format(raw: &str) -> Result<Option<bool>, ApiError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "csv" => Ok(Some(true)),
        "json" => Ok(Some(false)),
        _ => Err(ApiError::bad_parameter("format", "invalid_value", "must be json or csv")),
    }
}

/// `Accept` lists `text/csv` with a non-zero quality, ranked above `application/json` (or, at equal quality,
/// listed before it). `*/*` and anything else leave the default, JSON.
fn prefers_csv(headers: &HeaderMap) -> bool {
    let ranges = headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
    let (mut csv, mut json) = (None, None);
    for (position, range) in ranges.enumerate() {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|p| p.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .map_or(1000, |(_, q)| thousandths(q.trim()));
        let slot = match media.as_str() {
            "text/csv" => &mut csv,
            "application/json" => &mut json,
            _ => continue,
        };
        // The first mention of a type counts; a smaller position wins a tie.
        slot.get_or_insert((quality, std::cmp::Reverse(position)));
    }
    match (csv, json) {
        (Some(csv), json) => csv.0 > 0 && json.is_none_or(|json| csv > json),
        (None, _) => false,
    }
}

/// An RFC 9110 quality value (`0` to `1` with up to three decimals) in thousandths; anything else counts as 0.
fn thousandths(q: &str) -> u16 {
    let (whole, fraction) = q.split_once('.').unwrap_or((q, ""));
    let digits = fraction.len() <= 3 && fraction.bytes().all(|b| b.is_ascii_digit());
    match whole {
        "1" if digits && fraction.bytes().all(|b| b == b'0') => 1000,
        "0" if digits => format!("{fraction:0<3}").parse().unwrap_or(0),
        _ => 0,
    }
}

/// Where the absolute `links.next` points: the configured public base URL, else the request's own host
/// (`http://` + `Host`, or the HTTP/2 authority), so that the link is absolute even without configuration (SPEC
/// §10; Qlik's "Next URL" pagination needs one). Behind a proxy that terminates TLS, configure the public base URL.
fn base_url(state: &AppState, headers: &HeaderMap, uri: &Uri) -> String {
    let configured = state.config.base_url();
    if !configured.is_empty() {
        return configured.to_owned();
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).or_else(|| uri.authority().map(|a| a.as_str()));
    // Only a plain host[:port]: the value goes into a URL the client follows.
    let plain = |h: &&str| {
        !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    };
    host.filter(plain).map_or_else(String::new, |host| format!("http://{host}"))
}

/// The link to the page after `page`: the same `modifiedSince` and `limit`, the row offset reached, and the cursor.
fn next_link<T: ReportTable, R>(base: &str, request: &ReportRequest, page: &ReportResponse<R>, cursor: &str) -> String {
    let mut link = format!("{base}{}?", table_path::<T>());
    if let Some(since) = request.modified_since() {
        let since = since.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        let _ = write!(link, "modifiedSince={}&", percent_encode(&since));
    }
    let offset = page.offset + page.results.len() as u64;
    let _ = write!(link, "offset={offset}&limit={}&cursor={}", page.limit, percent_encode(cursor));
    link
}

/// Serves one table: a JSON page, or the CSV export.
async fn serve<T: ReportTable>(
    state: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    uri: &Uri,
    pairs: &[(String, String)],
) -> Result<Response, ApiError> {
    let query = ReportQueryString::parse(pairs)?;
    let request = ReportRequest::parse(&query.params).map_err(ApiError::invalid_parameters)?;
    if query.wants_csv(headers) {
        return csv::<T>(state, ctx, &request).await;
    }
    let page = state.service.report_page::<T>(ctx, &request).await?;
    let mut response = ReportResponse {
        results: page.rows,
        total: page.total,
        offset: page.offset,
        limit: page.limit,
        generated_at: page.generated_at,
        links: ReportLinks::default(),
    };
    if let Some(cursor) = page.next {
        let base = base_url(state, headers, uri);
        response.links.next = Some(next_link::<T, _>(&base, &request, &response, &cursor.to_string()));
    }
    Ok(Json(response).into_response())
}

/// The CSV export: the header row, then the rows batch by batch, never the whole table in memory. The first batch
/// and the audit record are done before the response starts, so their failure is a problem response; a failure
/// after that can only cut the transfer short, and is logged.
async fn csv<T: ReportTable>(
    state: &AppState,
    ctx: &RequestContext,
    request: &ReportRequest,
) -> Result<Response, ApiError> {
    let export = state.service.report_export::<T>(ctx, request).await?;
    let generated_at = export.generated_at().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let correlation_id: Arc<str> = Arc::from(ctx.correlation_id.as_str());
    // Fused: a body may be polled again after its end (the gzip encoder does, to flush), and an unfused `unfold`
    // panics when it is (found by schemathesis: every compressed CSV export was cut off by that panic).
    let body = futures::StreamExt::fuse(futures::stream::unfold(CsvState::Header(export), move |state| {
        csv_chunk(state, Arc::clone(&correlation_id))
    }));
    let disposition = format!("attachment; filename=\"{}.csv\"", T::NAME);
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_CSV));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&generated_at) {
        headers.insert(X_GENERATED_AT, value);
    }
    Ok(response)
}

/// Where a CSV body is.
enum CsvState<T: ReportTable> {
    /// Nothing sent yet: the header row goes with the first rows.
    Header(ReportExport<T>),
    /// Rows follow.
    Rows(ReportExport<T>),
    /// Ended (the table, or a failure).
    Done,
}

/// The next chunk of a CSV body: the rows of one store read.
async fn csv_chunk<T: ReportTable>(
    state: CsvState<T>,
    correlation_id: Arc<str>,
) -> Option<(Result<Bytes, CsvExportError>, CsvState<T>)> {
    let (mut export, mut text) = match state {
        CsvState::Header(export) => (export, csv_record(T::Row::COLUMNS.iter().map(|c| Some(*c)))),
        CsvState::Rows(export) => (export, String::new()),
        CsvState::Done => return None,
    };
    match export.next_rows().await {
        Ok(Some(rows)) => {
            for row in &rows {
                text.push_str(&csv_row(row));
            }
            Some((Ok(Bytes::from(text)), CsvState::Rows(export)))
        }
        // An empty table is its header row alone.
        Ok(None) if !text.is_empty() => Some((Ok(Bytes::from(text)), CsvState::Done)),
        Ok(None) => None,
        Err(error) => {
            tracing::error!(
                correlation_id = %correlation_id,
                table = T::NAME,
                error = %error_chain(&error),
                "a CSV export failed after it started; the transfer is cut short"
            );
            Some((Err(CsvExportError(error)), CsvState::Done))
        }
    }
}

/// A CSV export stopped by a store failure (the client sees the transfer end early).
#[derive(Debug, thiserror::Error)]
#[error("the CSV export failed after it started")]
struct CsvExportError(#[source] person_core::StoreError);

/// `outer: inner: innermost`, following `source()`.
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let _ = write!(text, ": {cause}");
        next = cause.source();
    }
    text
}

/// One row as a CSV record, its cells in [`ReportRow::COLUMNS`] order.
fn csv_row<R: ReportRow>(row: &R) -> String {
    let value = serde_json::to_value(row).unwrap_or(Value::Null);
    let cells: Vec<Option<String>> = R::COLUMNS.iter().map(|column| cell_text(value.get(column))).collect();
    csv_record(cells.iter().map(Option::as_deref))
}

/// The text of a JSON value in a CSV cell: `None` for null (an empty field), strings as they are, booleans and
/// numbers as JSON writes them.
fn cell_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

/// One RFC 4180 record: fields separated by commas, ended by CRLF; a field holding a comma, a double quote, CR or
/// LF is enclosed in double quotes, its double quotes doubled. Empty for `None`.
fn csv_record<'a>(cells: impl IntoIterator<Item = Option<&'a str>>) -> String {
    let mut record = String::new();
    for (index, cell) in cells.into_iter().enumerate() {
        if index > 0 {
            record.push(',');
        }
        let text = cell.unwrap_or_default();
        if text.contains([',', '"', '\r', '\n']) {
            record.push('"');
            record.push_str(&text.replace('"', "\"\""));
            record.push('"');
        } else {
            record.push_str(text);
        }
    }
    record.push_str("\r\n");
    record
}

/// The query parameters every reporting table takes (for the OpenAPI document; [`serve`] parses them, refusing
/// unknown ones).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "documents the parameters; the handlers read them as raw pairs to name bad ones")]
struct ReportQueryParams {
    /// Only rows of persons changed at or after this RFC 3339 instant (tombstones included): a previous page's
    /// `generatedAt`.
    #[param(rename = "modifiedSince", schema_with = instant_or_empty)]
    modified_since: Option<String>,
    /// Rows to skip (default 0); informational when `cursor` is given. (Blank counts as absent, for every
    /// parameter here.)
    #[param(value_type = Option<String>, pattern = r"^[ \t\n\r]*([0-9]{1,18})?[ \t\n\r]*$")]
    offset: Option<u64>,
    /// Rows per page, 1 to 5000 (default 1000); a CSV export is the whole table unless given.
    #[param(value_type = Option<String>, pattern = r"^[ \t\n\r]*(0*([1-9][0-9]{0,2}|[1-4][0-9]{3}|5000))?[ \t\n\r]*$")]
    limit: Option<u32>,
    /// Opaque: from a previous page's `links.next`.
    #[param(
        pattern = r"^[ \t\n\r]*((?!0{8}-0{4}-0{4}-0{4}-0{12})[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(\.[1-9][0-9]{0,8})?)?[ \t\n\r]*$"
    )]
    cursor: Option<String>,
    /// `json` (default) or `csv`, any case; overrides `Accept`.
    #[param(pattern = r"^[ \t\n\r]*([jJ][sS][oO][nN]|[cC][sS][vV])?[ \t\n\r]*$")]
    format: Option<String>,
}

/// `modifiedSince`: an RFC 3339 instant, or empty (the same as absent).
fn instant_or_empty() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
    let instant =
        ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)));
    let empty = ObjectBuilder::new().schema_type(Type::String).max_length(Some(0));
    OneOfBuilder::new().item(instant).item(empty).into()
}

/// Export the `persons` table: one row per person, or a CSV file of the whole table.
///
/// Rows are ordered by `personId`. A person that is deleted, merged or whose processing is restricted is a
/// tombstone (`deleted: true`, only `personId`, `lastModified`, `versionNumber` and `mergedInto` given). Page with
/// `offset` / `limit` (with `total`) or by following `links.next`; load only what changed with `modifiedSince`
/// (a previous answer's `generatedAt`). `Accept: text/csv` or `format=csv` streams the whole table as RFC 4180
/// CSV with a header row (`offset` and `limit` apply only when given). Every page and export is recorded in the
/// audit trail. Equality and extended data are never included.
#[utoipa::path(
    get,
    path = "/api/v1/reporting/persons",
    tag = "reporting",
    operation_id = "reportPersons",
    params(ReportQueryParams),
    responses(
        (status = 200, description = "A page of rows, or the CSV file", content(
            (ReportResponse<PersonReportRow> = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "An unknown or repeated parameter, `limit` not 1 to 5000, a bad `offset`, `modifiedSince`, `cursor` or `format`", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn persons(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    headers: HeaderMap,
    uri: Uri,
    Params(pairs): Params<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    serve::<PersonsTable>(&state, &ctx, &headers, &uri, &pairs).await
}

/// Export the `person-tenures` table: one row per tenure of each person (`personId`, `tenureId`), or a CSV file.
///
/// Rows are ordered by `personId`, then as the person holds its tenures. A deleted, merged or restricted person
/// is one tombstone row (`deleted: true`, only `personId` given). Parameters, paging, CSV and audit as for
/// `persons`; `offset` counts rows, so a large table is best paged by following `links.next`.
#[utoipa::path(
    get,
    path = "/api/v1/reporting/person-tenures",
    tag = "reporting",
    operation_id = "reportPersonTenures",
    params(ReportQueryParams),
    responses(
        (status = 200, description = "A page of rows, or the CSV file", content(
            (ReportResponse<TenureReportRow> = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "An unknown or repeated parameter, `limit` not 1 to 5000, a bad `offset`, `modifiedSince`, `cursor` or `format`", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn person_tenures(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    headers: HeaderMap,
    uri: Uri,
    Params(pairs): Params<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    serve::<PersonTenuresTable>(&state, &ctx, &headers, &uri, &pairs).await
}

/// Export the `person-references` table: one row per cross-reference of each person (`personId`, `system`,
/// `referenceId`), or a CSV file.
///
/// Rows are ordered by `personId`, then by system and id. A deleted, merged or restricted person is one tombstone
/// row (`deleted: true`, only `personId` given). Parameters, paging, CSV and audit as for `persons`.
#[utoipa::path(
    get,
    path = "/api/v1/reporting/person-references",
    tag = "reporting",
    operation_id = "reportPersonReferences",
    params(ReportQueryParams),
    responses(
        (status = 200, description = "A page of rows, or the CSV file", content(
            (ReportResponse<ReferenceReportRow> = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "An unknown or repeated parameter, `limit` not 1 to 5000, a bad `offset`, `modifiedSince`, `cursor` or `format`", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn person_references(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    headers: HeaderMap,
    uri: Uri,
    Params(pairs): Params<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    serve::<PersonReferencesTable>(&state, &ctx, &headers, &uri, &pairs).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn accept(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn plain_fields_are_written_as_they_are_and_records_end_with_crlf() {
        assert_eq!(csv_record([Some("a"), None, Some("b c"), Some("")]), "a,,b c,\r\n");
    }

    #[test]
    fn fields_with_commas_quotes_or_line_breaks_are_quoted_with_quotes_doubled() {
        let record = csv_record([Some("O'Neill, Kim"), Some("say \"hi\""), Some("line\nbreak"), Some("cr\rhere")]);
        assert_eq!(record, "\"O'Neill, Kim\",\"say \"\"hi\"\"\",\"line\nbreak\",\"cr\rhere\"\r\n");
    }

    #[test]
    fn non_ascii_text_is_written_as_utf_8_unquoted() {
        let record = csv_record([Some("Zoë"), Some("Ndlovu-Ó Briain"), Some("李")]);
        assert_eq!(record, "Zoë,Ndlovu-Ó Briain,李\r\n");
        assert_eq!(record.as_bytes()[2..4], [0xC3, 0xAB], "ë as UTF-8");
    }

    #[test]
    fn cells_are_null_empty_strings_verbatim_and_other_values_as_json_writes_them() {
        assert_eq!(cell_text(Some(&Value::Null)), None);
        assert_eq!(cell_text(None), None);
        assert_eq!(cell_text(Some(&Value::from("x, y"))).as_deref(), Some("x, y"));
        assert_eq!(cell_text(Some(&Value::from(true))).as_deref(), Some("true"));
        assert_eq!(cell_text(Some(&Value::from(42))).as_deref(), Some("42"));
    }

    #[test]
    fn a_row_is_written_in_column_order() {
        let row = ReferenceReportRow {
            person_id: person_core::PersonId::parse("0b4f6c1e-0000-4000-8000-000000000001").unwrap(),
            system: Some("finance".to_owned()),
            reference_id: Some("RENT, 42".to_owned()),
            deleted: false,
        };
        assert_eq!(csv_row(&row), "0b4f6c1e-0000-4000-8000-000000000001,finance,\"RENT, 42\",false\r\n");
    }

    #[test]
    fn csv_is_chosen_by_format_or_by_an_accept_header_preferring_text_csv() {
        let query = |list: &[(&str, &str)]| ReportQueryString::parse(&pairs(list)).unwrap();
        assert!(query(&[("format", "csv")]).wants_csv(&HeaderMap::new()));
        assert!(query(&[("format", "CSV")]).wants_csv(&accept("application/json")));
        assert!(!query(&[("format", "json")]).wants_csv(&accept("text/csv")));
        assert!(!query(&[]).wants_csv(&HeaderMap::new()));
        for (value, csv) in [
            ("text/csv", true),
            ("text/csv; charset=utf-8", true),
            ("TEXT/CSV", true),
            ("text/csv, application/json", true),
            ("application/json, text/csv", false),
            ("application/json;q=0.5, text/csv", true),
            ("text/csv;q=0.2, application/json", false),
            ("text/csv;q=0", false),
            ("*/*", false),
            ("application/json", false),
        ] {
            assert_eq!(query(&[]).wants_csv(&accept(value)), csv, "{value}");
        }
    }

    #[test]
    fn quality_values_are_read_in_thousandths() {
        for (q, expected) in
            [("1", 1000), ("1.000", 1000), ("0.5", 500), ("0.25", 250), ("0", 0), ("2", 0), ("0.1234", 0)]
        {
            assert_eq!(thousandths(q), expected, "{q}");
        }
    }

    #[test]
    fn unknown_differently_repeated_and_bad_format_parameters_are_refused_and_blank_ones_are_absent() {
        assert!(ReportQueryString::parse(&pairs(&[("page", "2")])).is_err());
        assert!(ReportQueryString::parse(&pairs(&[("limit", "1"), ("limit", "2")])).is_err());
        let again = ReportQueryString::parse(&pairs(&[("limit", "10"), ("cursor", "c"), ("limit", "10")])).unwrap();
        assert_eq!(again.params.limit.as_deref(), Some("10"), "the same value twice is read once");
        assert!(ReportQueryString::parse(&pairs(&[("format", "xml")])).is_err());
        let blank = ReportQueryString::parse(&pairs(&[("format", ""), ("modifiedSince", "")])).unwrap();
        assert_eq!(blank.csv, None);
        assert!(ReportRequest::parse(&blank.params).unwrap().modified_since().is_none());
    }

    #[test]
    fn the_openapi_document_offers_each_table_as_json_pages_of_its_rows_and_as_csv() {
        fn check<T: ReportTable>(doc: &Value) {
            let path = table_path::<T>();
            let content = &doc["paths"][&path]["get"]["responses"]["200"]["content"];
            assert!(content["text/csv"].is_object(), "{path}: {content}");
            let reference = content["application/json"]["schema"]["$ref"].as_str().unwrap_or_default();
            let page = &doc["components"]["schemas"][reference.trim_start_matches("#/components/schemas/")];
            let items = &page["properties"]["results"]["items"];
            let row = match items["$ref"].as_str() {
                Some(reference) => &doc["components"]["schemas"][reference.trim_start_matches("#/components/schemas/")],
                None => items,
            };
            let mut properties: Vec<&str> = row["properties"].as_object().unwrap().keys().map(String::as_str).collect();
            let mut columns = T::Row::COLUMNS.to_vec();
            properties.sort_unstable();
            columns.sort_unstable();
            assert_eq!(properties, columns, "{path}");
            for member in ["total", "offset", "limit", "generatedAt", "links"] {
                assert!(page["properties"][member].is_object(), "{path}: {member}");
            }
            let parameters = doc["paths"][&path]["get"]["parameters"].as_array().unwrap();
            let names: Vec<(&str, &str)> =
                parameters.iter().map(|p| (p["name"].as_str().unwrap(), p["in"].as_str().unwrap())).collect();
            let expected = ["modifiedSince", "offset", "limit", "cursor", "format"].map(|name| (name, "query"));
            assert_eq!(names, expected, "{path}");
        }
        let doc = serde_json::to_value(crate::openapi::openapi()).unwrap();
        check::<PersonsTable>(&doc);
        check::<PersonTenuresTable>(&doc);
        check::<PersonReferencesTable>(&doc);
    }

    /// The router over an in-memory store in token mode, its audit log recording (or refusing) appends, and
    /// optionally another reporting port: what a store cannot be made to do on purpose.
    mod router {
        use std::collections::BTreeMap;
        use std::sync::Mutex;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::time::Duration;

        use async_trait::async_trait;
        use axum::Router;
        use axum::body::to_bytes;
        use chrono::{DateTime, Utc};
        use http::{Request, StatusCode};
        use person_core::audit::{AuditAction, AuditEntry, AuditOutcome};
        use person_core::ports::{
            AuditLog, AuditRecord, RandomIds, ReportCounts, ReportQuery, ReportingRepository, SystemClock,
        };
        use person_core::{
            Actor, InMemoryStore, Permission, Permissions, Person, PersonId, PersonService, Repositories, StoreError,
        };
        use serde_json::json;
        use tower::ServiceExt;
        use uuid::Uuid;

        use super::*;
        use crate::HttpConfig;
        use crate::auth::{AuthConfig, AuthMode, MintClaims, TokenKeys, mint_hs256};

        const SECRET: &[u8] = b"reporting router tests: a secret of 32 bytes or more";

        #[derive(Default)]
        struct RecordingAudit {
            entries: Mutex<Vec<AuditEntry>>,
            broken: AtomicBool,
        }

        impl RecordingAudit {
            fn exports(&self) -> Vec<AuditEntry> {
                self.entries.lock().unwrap().iter().filter(|e| e.action == AuditAction::Export).cloned().collect()
            }
        }

        #[async_trait]
        impl AuditLog for RecordingAudit {
            async fn append(&self, entry: AuditEntry) -> Result<(), StoreError> {
                if self.broken.load(Ordering::SeqCst) {
                    return Err(StoreError::Unavailable("the audit log is down".into()));
                }
                self.entries.lock().unwrap().push(entry);
                Ok(())
            }

            async fn entries_for_person(&self, _: PersonId, _: u64, _: u32) -> Result<Vec<AuditRecord>, StoreError> {
                Ok(Vec::new())
            }
        }

        /// Answers the first read with a full batch (copies of the store's first person under new ids), then fails.
        struct FailsAfterFirstRead {
            store: Arc<InMemoryStore>,
            reads: AtomicUsize,
        }

        #[async_trait]
        impl ReportingRepository for FailsAfterFirstRead {
            async fn report_persons(&self, query: &ReportQuery) -> Result<Vec<Person>, StoreError> {
                if self.reads.fetch_add(1, Ordering::SeqCst) > 0 {
                    return Err(StoreError::Unavailable("the store went away".into()));
                }
                let first = ReportQuery { limit: 1, ..*query };
                let template = self.store.report_persons(&first).await?.pop().expect("a person in the store");
                let mut persons: Vec<Person> = (0..query.limit)
                    .map(|_| Person { id: PersonId::new(Uuid::new_v4()).unwrap(), ..template.clone() })
                    .collect();
                persons.sort_by_key(|p| p.id);
                Ok(persons)
            }

            async fn report_counts(&self, _: Option<DateTime<Utc>>) -> Result<ReportCounts, StoreError> {
                Ok(ReportCounts::default())
            }
        }

        struct Fixture {
            app: Router,
            audit: Arc<RecordingAudit>,
            store: Arc<InMemoryStore>,
            service: PersonService,
        }

        fn fixture(failing_reports: bool) -> Fixture {
            let store = Arc::new(InMemoryStore::new());
            let audit = Arc::new(RecordingAudit::default());
            let mut repos = Repositories::from_store(store.clone());
            repos.audit = audit.clone();
            if failing_reports {
                repos.reporting = Arc::new(FailsAfterFirstRead { store: store.clone(), reads: AtomicUsize::new(0) });
            }
            let service = PersonService::new(repos, Arc::new(SystemClock), Arc::new(RandomIds));
            let groups = BTreeMap::from([
                ("qlik".to_owned(), vec![Permission::ReportingRead]),
                ("reader".to_owned(), vec![Permission::PersonsRead, Permission::EventsRead]),
            ]);
            let keys = TokenKeys { hs256_secret: Some(SECRET.to_vec()), public_key_pem: None };
            let config = HttpConfig {
                auth: AuthConfig { mode: AuthMode::Tokens(keys), group_permissions: groups },
                ..HttpConfig::default()
            };
            Fixture { app: crate::router(AppState::new(service.clone(), config)), audit, store, service }
        }

        fn token(groups: &[&str]) -> String {
            let claims = MintClaims {
                sub: "qlik-loader".to_owned(),
                name: Some("Qlik loader".to_owned()),
                email: None,
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            };
            mint_hs256(SECRET, &claims, Duration::from_secs(600)).unwrap()
        }

        async fn create_person(service: &PersonService) -> PersonId {
            let actor = Actor {
                subject: "setup".to_owned(),
                name: "Set Up".to_owned(),
                email: "setup@example.gov.uk".to_owned(),
            };
            let ctx = RequestContext::new(actor, Permissions::all(), "corr-setup");
            let body = json!({
                "firstName": "Tobias",
                "surname": "Exportable",
                "dateOfBirth": "1980-01-01",
                "title": "Mr",
                "personTypes": ["Tenant"],
                "reason": "New tenancy",
            });
            service.create(&ctx, body.to_string().as_bytes(), Default::default()).await.unwrap().person.id
        }

        /// `GET uri` with `headers`: the status, the headers, and the whole body (or the error that ended it).
        async fn get(
            app: &Router,
            uri: &str,
            headers: &[(&str, &str)],
        ) -> (StatusCode, HeaderMap, Result<Bytes, String>) {
            let mut request = Request::get(uri);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
            let (parts, body) = response.into_parts();
            (parts.status, parts.headers, to_bytes(body, usize::MAX).await.map_err(|e| e.to_string()))
        }

        fn content_type(headers: &HeaderMap) -> &str {
            headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default()
        }

        #[tokio::test]
        async fn reporting_needs_a_token_and_reporting_read_and_a_refusal_is_recorded() {
            let Fixture { app, audit, .. } = fixture(false);
            let reader = format!("Bearer {}", token(&["reader"]));
            let qlik = format!("Bearer {}", token(&["qlik"]));

            for table in ["persons", "person-tenures", "person-references"] {
                let uri = format!("/api/v1/reporting/{table}");
                let (anonymous, headers, _) = get(&app, &uri, &[]).await;
                assert_eq!((anonymous, content_type(&headers)), (StatusCode::UNAUTHORIZED, "application/problem+json"));
                let (refused, headers, _) = get(&app, &uri, &[("authorization", &reader)]).await;
                assert_eq!((refused, content_type(&headers)), (StatusCode::FORBIDDEN, "application/problem+json"));
                let (csv_refused, _, _) = get(&app, &uri, &[("authorization", &reader), ("accept", "text/csv")]).await;
                assert_eq!(csv_refused, StatusCode::FORBIDDEN);
                let (served, _, _) = get(&app, &uri, &[("authorization", &qlik)]).await;
                assert_eq!(served, StatusCode::OK);
            }

            let denied: Vec<AuditEntry> =
                audit.exports().into_iter().filter(|e| e.outcome == AuditOutcome::Denied).collect();
            assert_eq!(denied.len(), 6, "each refusal is recorded as a denied export");
            assert!(denied.iter().all(|e| e.person_ids.is_empty() && e.actor.subject == "qlik-loader"));
        }

        #[tokio::test]
        async fn each_page_and_each_export_records_one_export_naming_no_person_before_any_row_is_sent() {
            let Fixture { app, audit, service, .. } = fixture(false);
            create_person(&service).await;
            let qlik = format!("Bearer {}", token(&["qlik"]));
            let (first, second) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());

            let (page, _, _) = get(
                &app,
                "/api/v1/reporting/persons?limit=10&modifiedSince=2020-01-01T00:00:00Z",
                &[("authorization", &qlik), ("x-purpose", "Monthly tenancy dashboard"), ("x-correlation-id", &first)],
            )
            .await;
            let (export, headers, body) = get(
                &app,
                "/api/v1/reporting/person-tenures",
                &[("authorization", &qlik), ("accept", "text/csv"), ("x-correlation-id", &second)],
            )
            .await;

            assert_eq!((page, export), (StatusCode::OK, StatusCode::OK));
            assert_eq!(content_type(&headers), TEXT_CSV);
            assert!(body.unwrap().starts_with(b"personId,tenureId,"));
            let exports = audit.exports();
            assert_eq!(exports.len(), 2, "{exports:?}");
            for entry in &exports {
                assert_eq!((entry.outcome, entry.actor.subject.as_str()), (AuditOutcome::Success, "qlik-loader"));
                assert!(entry.person_ids.is_empty(), "no person ids: {entry:?}");
            }
            assert_eq!(exports[0].correlation_id, first);
            assert_eq!(exports[0].purpose.as_deref(), Some("Monthly tenancy dashboard"));
            assert_eq!(
                exports[0].detail.as_deref(),
                Some("table=persons format=json offset=0 limit=10 modifiedSince=2020-01-01T00:00:00Z")
            );
            assert_eq!(exports[1].correlation_id, second);
            assert_eq!(exports[1].purpose, None);
            assert_eq!(exports[1].detail.as_deref(), Some("table=person-tenures format=csv offset=0 limit=all"));
        }

        #[tokio::test]
        async fn a_failed_audit_record_is_a_503_problem_and_sends_no_rows() {
            let Fixture { app, audit, service, .. } = fixture(false);
            create_person(&service).await;
            audit.broken.store(true, Ordering::SeqCst);
            let qlik = format!("Bearer {}", token(&["qlik"]));

            for accept in ["application/json", "text/csv"] {
                let (status, headers, body) =
                    get(&app, "/api/v1/reporting/persons", &[("authorization", &qlik), ("accept", accept)]).await;
                assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{accept}");
                assert_eq!(content_type(&headers), "application/problem+json", "{accept}");
                let text = String::from_utf8(body.unwrap().to_vec()).unwrap();
                assert!(!text.contains("Exportable") && !text.contains("Tobias"), "{accept}: {text}");
            }
        }

        #[tokio::test]
        async fn a_store_failure_after_the_first_rows_cuts_the_csv_transfer_short_and_before_them_is_a_problem() {
            let Fixture { app, service, store, .. } = fixture(true);
            create_person(&service).await;
            assert!(store.report_counts(None).await.unwrap().persons == 1);
            let qlik = format!("Bearer {}", token(&["qlik"]));

            let (status, headers, body) =
                get(&app, "/api/v1/reporting/persons?format=csv", &[("authorization", &qlik)]).await;

            assert_eq!(status, StatusCode::OK, "the first rows were read: the export started");
            assert_eq!(content_type(&headers), TEXT_CSV);
            assert!(body.is_err(), "the body ends with an error, not a complete file");

            let Fixture { app, service, .. } = fixture(true);
            create_person(&service).await;
            let (status, headers, _) =
                get(&app, "/api/v1/reporting/persons?limit=5000", &[("authorization", &qlik)]).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "a JSON page fails whole, before anything is sent");
            assert_eq!(content_type(&headers), "application/problem+json");
        }
    }
}

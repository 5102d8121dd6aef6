//! Reporting for Qlik through HTTP (SPEC §10), store-independent: run by `http_suite!` over every store.
//!
//! Each table is read three ways, which must agree row for row: offset pages (`offset`/`limit` until `total`, as
//! Qlik's "Offset" pagination does), following the absolute `links.next` (Qlik's "Next URL"), and the CSV export
//! parsed back as RFC 4180. Incremental loads (`modifiedSince` = a previous `generatedAt`), tombstones, restriction
//! of processing, parameter validation and a table larger than the service's internal read batch (1,000 persons)
//! are covered here; authentication, the audit record and failing stores are the router's business, tested in
//! `person-http`'s `routes::reporting` unit tests over in-memory stores it can break on purpose.

use std::collections::HashSet;

use futures::stream::{self, StreamExt};
use person_core::api::ReportRow;
use person_core::api::problem_types as types;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Api, expect_problem, header, person};

/// The three tables, as in their paths.
const TABLES: [&str; 3] = ["persons", "person-tenures", "person-references"];

/// The keys of a persons row that a tombstone gives (the others are null).
const PERSON_TOMBSTONE_KEYS: [&str; 4] = ["deleted", "lastModified", "personId", "versionNumber"];

fn table_path(table: &str, query: &str) -> String {
    if query.is_empty() { format!("/api/v1/reporting/{table}") } else { format!("/api/v1/reporting/{table}?{query}") }
}

/// Percent-encodes a query value (an RFC 3339 instant holds `:` and may hold `+`).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `modifiedSince=…&` for `since`, or nothing.
fn since_query(since: Option<&str>) -> String {
    since.map(|s| format!("modifiedSince={}&", encode(s))).unwrap_or_default()
}

/// `GET` a JSON page by absolute URL, asserting a 200 JSON answer.
async fn page_at(api: &Api, url: &str) -> Value {
    let response = api.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    assert!(header(&response, "content-type").starts_with("application/json"), "{url}");
    response.json().await.unwrap()
}

/// `GET /api/v1/reporting/{table}?{query}` as JSON.
async fn page(api: &Api, table: &str, query: &str) -> Value {
    page_at(api, &api.url(&table_path(table, query))).await
}

fn results(page: &Value) -> Vec<Value> {
    page["results"].as_array().unwrap().clone()
}

/// Every row of `table`, by offset pages of `limit` until `total`, as Qlik's "Offset" pagination reads them.
async fn by_offset(api: &Api, table: &str, limit: u32, since: Option<&str>) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut total = None;
    loop {
        let query = format!("{}offset={}&limit={limit}", since_query(since), rows.len());
        let page = page(api, table, &query).await;
        assert_eq!(page["offset"], rows.len(), "{page}");
        assert_eq!(page["limit"], limit, "{page}");
        assert_eq!(*total.get_or_insert_with(|| page["total"].clone()), page["total"], "the total holds across pages");
        let got = results(&page);
        assert!(got.len() <= limit as usize);
        rows.extend(got.clone());
        if got.is_empty() || rows.len() as u64 >= page["total"].as_u64().unwrap() {
            assert_eq!(rows.len() as u64, page["total"].as_u64().unwrap(), "{table}: the rows add up to the total");
            return rows;
        }
    }
}

/// Every row of `table`, following the absolute `links.next` from the first page, as Qlik's "Next URL"
/// pagination reads them.
async fn by_next_link(api: &Api, table: &str, limit: u32, since: Option<&str>) -> Vec<Value> {
    let mut url = api.url(&table_path(table, &format!("{}limit={limit}", since_query(since))));
    let mut rows = Vec::new();
    for _ in 0..10_000 {
        let page = page_at(api, &url).await;
        rows.extend(results(&page));
        assert_eq!(page["offset"], rows.len() - results(&page).len(), "the informational offset: {page}");
        match &page["links"]["next"] {
            Value::Null => {
                assert_eq!(rows.len() as u64, page["total"].as_u64().unwrap(), "{table}");
                return rows;
            }
            Value::String(next) => {
                assert!(next.starts_with("http://") || next.starts_with("https://"), "absolute: {next}");
                assert!(next.contains(&format!("/api/v1/reporting/{table}?")), "{next}");
                assert!(next.contains(&format!("limit={limit}")) && next.contains("cursor="), "{next}");
                if let Some(since) = since {
                    assert!(next.contains(&format!("modifiedSince={}", encode(since))), "{next}");
                }
                assert!(results(&page).len() == limit as usize, "only a full page has a next one");
                url = next.clone();
            }
            other => panic!("links.next is a URL or null: {other}"),
        }
    }
    panic!("links.next never ended");
}

/// The CSV export of `table` (`Accept: text/csv`), checked for its headers, parsed back: the header row and the
/// records; also the raw text.
async fn csv(api: &Api, table: &str, query: &str) -> (Vec<String>, Vec<Vec<String>>, String) {
    let response =
        api.client.get(api.url(&table_path(table, query))).header("accept", "text/csv").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), "text/csv; charset=utf-8");
    assert_eq!(header(&response, "content-disposition"), format!("attachment; filename=\"{table}.csv\""));
    assert!(!header(&response, "x-generated-at").is_empty());
    let bytes = response.bytes().await.unwrap();
    let text = String::from_utf8(bytes.to_vec()).expect("UTF-8");
    let mut records = parse_csv(&text);
    assert!(!records.is_empty(), "a header row");
    let header_row = records.remove(0);
    assert!(records.iter().all(|r| r.len() == header_row.len()), "every record has every column");
    (header_row, records, text)
}

/// RFC 4180, strictly: records end with CRLF; a field is either plain (no comma, quote, CR or LF) or enclosed in
/// quotes, with quotes inside doubled.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut field_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if field_start => {
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(other) => field.push(other),
                        None => panic!("an unterminated quoted field"),
                    }
                }
                assert!(matches!(chars.peek(), Some(',' | '\r')), "a quoted field ends at a comma or CRLF");
                field_start = false;
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                field_start = true;
            }
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "CR only as part of CRLF");
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                field_start = true;
            }
            '\n' => panic!("a bare LF outside a quoted field"),
            '"' => panic!("a quote inside an unquoted field"),
            other => {
                field.push(other);
                field_start = false;
            }
        }
    }
    assert!(record.is_empty() && field.is_empty(), "the last record ends with CRLF");
    records
}

/// JSON rows as CSV cells in `columns` order (null → empty), checking each row has exactly those keys.
fn as_cells(rows: &[Value], columns: &[String]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|row| {
            let object = row.as_object().unwrap();
            let mut keys: Vec<&String> = object.keys().collect();
            let mut expected: Vec<&String> = columns.iter().collect();
            keys.sort();
            expected.sort();
            assert_eq!(keys, expected, "the JSON keys are the CSV columns");
            columns
                .iter()
                .map(|column| match &row[column] {
                    Value::Null => String::new(),
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

/// The three ways of reading `table` give the same rows, in ascending `personId` order; returns them.
async fn read_three_ways(api: &Api, table: &str, limit: u32, since: Option<&str>) -> Vec<Value> {
    let offset_rows = by_offset(api, table, limit, since).await;
    let linked_rows = by_next_link(api, table, limit, since).await;
    assert_eq!(linked_rows, offset_rows, "{table}: next links and offsets give the same rows");
    let (columns, records, _) =
        csv(api, table, since.map(|s| format!("modifiedSince={}", encode(s))).as_deref().unwrap_or("")).await;
    assert_eq!(records, as_cells(&offset_rows, &columns), "{table}: the CSV has the same rows");
    let ids: Vec<&str> = offset_rows.iter().map(|r| r["personId"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] <= w[1]), "{table}: by personId");
    offset_rows
}

fn ids_of(rows: &[Value]) -> Vec<String> {
    rows.iter().map(|r| r["personId"].as_str().unwrap().to_owned()).collect()
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

async fn create(api: &Api, first_name: &str, surname: &str) -> String {
    let created = api.create_anyway(&person(first_name, surname, "1980-02-03", "1 Mare Street, London E8 1DY")).await;
    created["id"].as_str().unwrap().to_owned()
}

async fn add_reference(api: &Api, id: &str, system: &str, reference: &str) {
    let body = json!({ "system": system, "id": reference });
    let response = api.post(&format!("/api/v1/persons/{id}/references"), &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

async fn restrict(api: &Api, id: &str) {
    let body = json!({ "restricted": true, "reason": "The data subject contests the record" });
    let response = api.put(&format!("/api/v1/persons/{id}/processing-restriction"), None, &body).await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// The keys of a row whose value is not null, sorted.
fn given_keys(row: &Value) -> Vec<String> {
    let mut keys: Vec<String> =
        row.as_object().unwrap().iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k.clone()).collect();
    keys.sort();
    keys
}

fn assert_person_tombstone(row: &Value) {
    assert_eq!(given_keys(row), PERSON_TOMBSTONE_KEYS, "{row}");
    assert_eq!(row["deleted"], true, "{row}");
}

fn assert_child_tombstone(row: &Value) {
    assert_eq!(given_keys(row), ["deleted", "personId"], "{row}");
    assert_eq!(row["deleted"], true, "{row}");
}

pub(crate) async fn every_table_reads_the_same_by_offset_by_next_link_and_as_csv(api: &Api) {
    let mut live = Vec::new();
    for (i, name) in ["Ada", "Bea", "Cyd", "Dot", "Eve", "Fay", "Gus", "Hal"].into_iter().enumerate() {
        let id = create(api, name, "Reportable").await;
        for r in 0..(i % 3) {
            add_reference(api, &id, "tenure", &format!("T-{name}-{r}")).await;
        }
        live.push(id);
    }
    // A second tenure for one person: its tenure rows stay in the order it holds them.
    let mut two = person("Ivy", "Reportable", "1970-01-01", "2 Mare Street, London E8 1DY");
    let second = json!({ "id": Uuid::new_v4(), "type": "Introductory", "startDate": "2001-01-01" });
    two["tenures"].as_array_mut().unwrap().push(second);
    let ivy = api.create_anyway(&two).await;
    live.push(ivy["id"].as_str().unwrap().to_owned());
    let deleted = create(api, "Jon", "Gone").await;
    assert_eq!(api.delete(&format!("/api/v1/persons/{deleted}")).await.status(), StatusCode::NO_CONTENT);
    let survivor = create(api, "Kit", "Twice").await;
    let duplicate = create(api, "Kit", "Twice").await;
    assert_eq!(api.merge(&survivor, &duplicate, Some("\"0\"")).await.status(), StatusCode::OK);
    live.push(survivor.clone());

    for limit in [1, 3, 1000] {
        let persons = read_three_ways(api, "persons", limit, None).await;
        let tenures = read_three_ways(api, "person-tenures", limit, None).await;
        let references = read_three_ways(api, "person-references", limit, None).await;

        assert_eq!(sorted(ids_of(&persons)), sorted([live.clone(), vec![deleted.clone(), duplicate.clone()]].concat()));
        let gone = persons.iter().find(|r| r["personId"] == deleted.as_str()).unwrap();
        assert_person_tombstone(gone);
        let merged = persons.iter().find(|r| r["personId"] == duplicate.as_str()).unwrap();
        assert_eq!(merged["mergedInto"], survivor.as_str(), "{merged}");
        assert_eq!(given_keys(merged), ["deleted", "lastModified", "mergedInto", "personId", "versionNumber"]);
        let kept = persons.iter().find(|r| r["personId"] == survivor.as_str()).unwrap();
        assert_eq!((kept["deleted"].clone(), kept["mergedInto"].clone()), (json!(false), Value::Null));
        assert_eq!(kept["personTypes"], "Tenant");
        assert_eq!(kept["surname"], "Twice");

        // Live persons: one row per tenure (the merged survivor holds its duplicate's tenure too); tombstones: one.
        assert_eq!(tenures.len(), live.len() + 2 + 2, "{tenures:?}");
        let ivys: Vec<&Value> = tenures.iter().filter(|t| t["personId"] == ivy["id"]).collect();
        assert_eq!(
            ivys.iter().map(|t| t["tenureType"].clone()).collect::<Vec<_>>(),
            [json!("Secure"), json!("Introductory")]
        );
        assert_eq!(ivys[0]["assetFullAddress"], "2 Mare Street, London E8 1DY");
        assert_eq!(ivys[0]["postcode"], "E8 1DY");
        for id in [&deleted, &duplicate] {
            let rows: Vec<&Value> = tenures.iter().filter(|t| t["personId"] == id.as_str()).collect();
            assert_eq!(rows.len(), 1);
            assert_child_tombstone(rows[0]);
        }
        assert_eq!(references.iter().filter(|r| r["deleted"] == false).count(), 1 + 2 + 1 + 2 + 1, "i % 3 each");
        assert_eq!(references.iter().filter(|r| r["deleted"] == true).count(), 2);
        let hal: Vec<&Value> = references.iter().filter(|r| r["personId"] == live[7].as_str()).collect();
        assert_eq!(hal.iter().map(|r| r["referenceId"].clone()).collect::<Vec<_>>(), [json!("T-Hal-0")]);
        assert!(references.iter().all(|r| r["deleted"] == true || r["system"] == "tenure"));
    }
}

/// One microsecond after the newest `lastModified` of `rows`, as RFC 3339: a `modifiedSince` that selects exactly
/// the changes made after them.
fn just_after_newest(rows: &[Value]) -> String {
    let instant = |text: &str| chrono::DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&chrono::Utc);
    let newest = rows.iter().map(|row| instant(row["lastModified"].as_str().unwrap())).max().unwrap();
    (newest + chrono::TimeDelta::microseconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub(crate) async fn an_incremental_load_returns_exactly_what_changed_and_generated_at_misses_nothing(api: &Api) {
    let changed = create(api, "Lola", "Incremental").await;
    let referenced = create(api, "Milo", "Incremental").await;
    let deleted = create(api, "Nora", "Incremental").await;
    let untouched = create(api, "Otto", "Incremental").await;
    let full = page(api, "persons", "").await;
    assert_eq!(full["total"], 4);
    // `generatedAt` lies a safety margin before the request (a change stamped just before a report may commit
    // after it): a load from it repeats these recent changes rather than risk missing one.
    let generated_at = full["generatedAt"].as_str().unwrap().to_owned();
    let again = page(api, "persons", &format!("modifiedSince={}", encode(&generated_at))).await;
    assert_eq!(again["total"], 4, "a load from generatedAt misses nothing");
    // The exact delta is tested from just after the newest change the full load saw.
    let since = just_after_newest(&results(&full));

    let patched = api.patch(&changed, Some("\"0\""), &json!({ "middleName": "Changed" })).await;
    assert_eq!(patched.status(), StatusCode::NO_CONTENT);
    add_reference(api, &referenced, "housing-register", "HR/1, \"A\"").await;
    assert_eq!(api.delete(&format!("/api/v1/persons/{deleted}")).await.status(), StatusCode::NO_CONTENT);

    let persons = read_three_ways(api, "persons", 2, Some(&since)).await;
    let tenures = read_three_ways(api, "person-tenures", 2, Some(&since)).await;
    let references = read_three_ways(api, "person-references", 2, Some(&since)).await;

    let delta = sorted(vec![changed.clone(), referenced.clone(), deleted.clone()]);
    assert_eq!(ids_of(&persons), delta, "exactly the changed persons and the tombstone");
    assert!(!ids_of(&persons).contains(&untouched));
    let row = |rows: &[Value], id: &str| rows.iter().find(|r| r["personId"] == id).cloned().unwrap();
    assert_eq!(row(&persons, &changed)["middleName"], "Changed");
    assert_eq!(row(&persons, &changed)["versionNumber"], 1);
    assert_person_tombstone(&row(&persons, &deleted));
    assert_eq!(ids_of(&tenures), delta, "one tenure each, a tombstone for the deleted person");
    assert_child_tombstone(&row(&tenures, &deleted));
    assert_eq!(ids_of(&references), sorted(vec![referenced.clone(), deleted.clone()]));
    assert_eq!(row(&references, &referenced)["referenceId"], "HR/1, \"A\"");
    assert_child_tombstone(&row(&references, &deleted));

    let next_since = just_after_newest(&persons);
    for table in TABLES {
        let nothing = page(api, table, &format!("modifiedSince={}", encode(&next_since))).await;
        assert_eq!((nothing["total"].clone(), results(&nothing).len()), (json!(0), 0), "{table}: {nothing}");
        assert!(nothing["links"]["next"].is_null(), "{nothing}");
        let (_, records, _) = csv(api, table, &format!("modifiedSince={}", encode(&next_since))).await;
        assert!(records.is_empty(), "{table}: only the header row");
    }
}

pub(crate) async fn a_restricted_person_is_a_tombstone_in_every_table_and_nothing_of_theirs_is_exported(api: &Api) {
    let shown = create(api, "Pia", "Visible").await;
    let hidden = create(api, "Quentin", "Zzyzx-Restricted").await;
    add_reference(api, &hidden, "social-care", "SC-SECRET-42").await;
    restrict(api, &hidden).await;

    let persons = read_three_ways(api, "persons", 10, None).await;
    let tenures = read_three_ways(api, "person-tenures", 10, None).await;
    let references = read_three_ways(api, "person-references", 10, None).await;

    let row = |rows: &[Value], id: &str| rows.iter().filter(|r| r["personId"] == id).cloned().collect::<Vec<_>>();
    let tombstone = row(&persons, &hidden);
    assert_eq!(tombstone.len(), 1);
    assert_person_tombstone(&tombstone[0]);
    assert_eq!(tombstone[0]["versionNumber"], 2, "its version still tells an incremental load it changed");
    for rows in [&tenures, &references] {
        let only = row(rows, &hidden);
        assert_eq!(only.len(), 1, "{only:?}");
        assert_child_tombstone(&only[0]);
    }
    assert_eq!(row(&persons, &shown)[0]["surname"], "Visible");
    for table in TABLES {
        let json_text = api.get(&table_path(table, "")).await.text().await.unwrap();
        let (_, _, csv_text) = csv(api, table, "").await;
        for text in [&json_text, &csv_text] {
            for secret in ["Quentin", "Zzyzx", "SC-SECRET-42", "social-care", "estrict"] {
                assert!(!text.contains(secret), "{table} shows {secret}: {text}");
            }
        }
    }
}

pub(crate) async fn csv_quotes_commas_quotes_and_line_breaks_and_keeps_utf_8(api: &Api) {
    let mut body = person("Zoë", "O'Neill, \"Jr\"", "1975-06-07", "Flat 3, \"The Maltings\", London E8 1DY");
    body["placeOfBirth"] = json!("Hackney,\nLondon");
    let created = api.create_anyway(&body).await;
    let id = created["id"].as_str().unwrap();

    let (columns, records, text) = csv(api, "persons", "").await;
    let (_, tenure_records, tenure_text) = csv(api, "person-tenures", "format=csv").await;

    assert_eq!(columns.join(","), person_core::api::PersonReportRow::COLUMNS.join(","));
    assert!(text.starts_with("personId,personRef,title,"), "{text}");
    assert!(text.contains("\"O'Neill, \"\"Jr\"\"\""), "quoted, quotes doubled: {text}");
    assert!(text.contains("\"Hackney,\nLondon\""), "a line break inside quotes: {text}");
    assert!(text.contains(",Zoë,"), "UTF-8, unquoted: {text}");
    let record = records.iter().find(|r| r[0] == id).unwrap();
    let cell = |name: &str| record[columns.iter().position(|c| c == name).unwrap()].clone();
    assert_eq!(cell("surname"), "O'Neill, \"Jr\"");
    assert_eq!(cell("placeOfBirth"), "Hackney,\nLondon");
    assert_eq!(cell("firstName"), "Zoë");
    assert_eq!(cell("deleted"), "false");
    assert_eq!(cell("mergedInto"), "", "null is an empty field");
    assert!(tenure_text.contains("\"Flat 3, \"\"The Maltings\"\", London E8 1DY\""), "{tenure_text}");
    assert_eq!(tenure_records.len(), 1);
}

/// A client that accepts gzip (every browser, Qlik, Python's requests) gets the whole export compressed: the
/// compression layer polls the body again after its end, which once panicked the CSV stream and cut the transfer.
pub(crate) async fn a_gzip_compressed_csv_export_is_complete(api: &Api) {
    let created = api.create_anyway(&person("Ada", "Lovelace", "1990-12-10", "1 Mare Street, London E8 1DY")).await;
    add_reference(api, created["id"].as_str().unwrap(), "tenure", "gzip-1").await;
    for table in ["persons", "person-tenures", "person-references"] {
        let response = api
            .client
            .get(api.url(&table_path(table, "format=csv")))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{table}");
        assert_eq!(header(&response, "content-encoding"), "gzip", "{table}");
        let compressed = response.bytes().await.expect("the whole compressed body arrives");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&compressed[..]), &mut text).unwrap();
        let (plain_columns, plain_records, _) = csv(api, table, "").await;
        let records = parse_csv(&text);
        assert_eq!(records.first(), Some(&plain_columns), "{table}: the header row");
        assert_eq!(records[1..], plain_records[..], "{table}: the same rows as uncompressed");
        assert!(records[1..].iter().any(|row| row[0] == created["id"].as_str().unwrap()), "{table}: {text}");
    }
}

pub(crate) async fn bad_reporting_parameters_are_400s_naming_the_parameter(api: &Api) {
    for (query, parameter) in [
        ("limit=0", "limit"),
        ("limit=5001", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("offset=-1", "offset"),
        ("offset=1.5", "offset"),
        ("offset=9223372036854775808", "offset"),
        ("modifiedSince=yesterday", "modifiedSince"),
        ("modifiedSince=2026-01-31", "modifiedSince"),
        ("cursor=not-a-cursor", "cursor"),
        ("format=xml", "format"),
        ("page=2", "page"),
        ("limit=1&limit=2", "limit"),
        ("format=csv&limit=0", "limit"),
    ] {
        for table in TABLES {
            let response = api.get(&table_path(table, query)).await;
            let problem = expect_problem(response, 400, types::BAD_REQUEST).await;
            assert_eq!(problem["errors"][0]["field"], parameter, "{table}?{query}: {problem}");
        }
    }
    let csv_refused =
        api.client.get(api.url(&table_path("persons", "limit=0"))).header("accept", "text/csv").send().await.unwrap();
    expect_problem(csv_refused, 400, types::BAD_REQUEST).await;
    let several =
        expect_problem(api.get(&table_path("persons", "limit=0&offset=x")).await, 400, types::BAD_REQUEST).await;
    let fields: Vec<&str> =
        several["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["offset", "limit"], "every invalid parameter at once");
    for query in [
        "limit=1",
        "limit=5000",
        "offset=0",
        "modifiedSince=2026-01-31T18:00:00%2B01:00",
        "modifiedSince=",
        "format=json",
        "limit=7&limit=7",
    ] {
        assert_eq!(api.get(&table_path("persons", query)).await.status(), StatusCode::OK, "{query}");
    }
}

pub(crate) async fn the_reporting_tables_are_documented_with_both_media_types_and_reporting_read(api: &Api) {
    let doc: Value = api.get("/swagger/v1/swagger.json").await.json().await.unwrap();
    for table in TABLES {
        let operation = &doc["paths"][table_path(table, "")]["get"];
        assert_eq!(operation["security"], json!([{ "bearerAuth": [] }]), "{table}");
        assert!(operation["description"].as_str().unwrap_or_default().contains("`reporting:read`"), "{table}");
        let content = &operation["responses"]["200"]["content"];
        assert!(content["application/json"].is_object() && content["text/csv"].is_object(), "{table}: {content}");
    }
}

pub(crate) async fn a_table_larger_than_one_internal_read_pages_and_streams_the_same_rows(api: &Api) {
    // The service reads 1,000 persons at a time: 1,050 cross that boundary in every way of reading.
    let ids: Vec<String> = stream::iter(0..1050)
        .map(|i| async move { create(api, &format!("Bulk{i}"), "Large").await })
        .buffer_unordered(16)
        .collect()
        .await;
    for id in ids.iter().step_by(50) {
        add_reference(api, id, "tenure", &format!("T-{id}")).await;
    }

    let persons = read_three_ways(api, "persons", 400, None).await;
    let tenures = read_three_ways(api, "person-tenures", 400, None).await;
    let references = read_three_ways(api, "person-references", 400, None).await;

    assert_eq!(ids_of(&persons).into_iter().collect::<HashSet<_>>(), ids.iter().cloned().collect());
    assert_eq!(persons.len(), 1050);
    assert_eq!(tenures.len(), 1050);
    assert_eq!(references.len(), 21);
    let whole = results(&page(api, "person-tenures", "limit=5000").await);
    assert_eq!(whole, tenures, "one page of 5,000 holds the whole table");
    let middle = results(&page(api, "persons", "offset=990&limit=20").await);
    let (columns, records, _) = csv(api, "persons", "format=csv&offset=990&limit=20").await;
    assert_eq!(records, as_cells(&middle, &columns), "an explicit offset and limit apply to CSV too");
    assert_eq!(middle, persons[990..1010].to_vec());
}

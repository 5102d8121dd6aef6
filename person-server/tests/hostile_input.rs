//! Hostile input against the real binary over a real socket, on a real SQLite file: SQL-injection strings,
//! HTML/script, very long strings, invalid UTF-8, deeply nested JSON, huge arrays, path traversal in area names,
//! unicode confusables and control characters. Every answer is a success that stored the input verbatim, or a
//! clear `application/problem+json` refusal (never a 500); afterwards the server is still ready, logged no panic,
//! and the database passes SQLite's integrity check with exactly the persons that were acknowledged.

#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use common::{ServerProcess, client, tenant};
use serde_json::{Value, json};
use sqlx::Connection as _;

/// The status of `response`, after checking that a refusal is a problem and that nothing failed inside.
async fn answer(response: reqwest::Response, what: &str) -> (u16, Value) {
    let status = response.status().as_u16();
    println!("{status} ← {}", what.chars().take(60).collect::<String>());
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned());
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status < 500, "{what}: no input makes the server fail: {status} {body}");
    if status >= 400 {
        assert_eq!(content_type.as_deref(), Some("application/problem+json"), "{what}: a refusal is a problem");
        assert_eq!(body["status"], json!(status), "{what}: {body}");
    }
    (status, body)
}

/// Sends raw bytes as one HTTP/1.1 request and returns the status code of the answer.
fn raw_status(base_url: &str, request: &[u8]) -> u16 {
    let address = base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(request).unwrap();
    let mut head = [0_u8; 12];
    stream.read_exact(&mut head).unwrap();
    let text = String::from_utf8_lossy(&head);
    text.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap()
}

/// `depth` nested arrays around a number.
fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_stored_verbatim_or_refused_clearly_and_never_corrupts_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("persons.db");
    let server = ServerProcess::start(&[("PERSON_API_STORE", format!("sqlite://{}", db.display()))]);
    let http = client();
    let base = server.base_url.clone();
    let persons = format!("{base}/api/v1/persons");
    let mut stored: Vec<(String, Value)> = Vec::new();

    // Names: stored exactly (after NFC) when valid, refused with a validation problem otherwise.
    let long = "A".repeat(10_000);
    let names = [
        "Robert'); DROP TABLE persons;--",
        "' OR '1'='1",
        "O'Brien",
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "Аdam",                // Cyrillic А: a confusable of "Adam", a different name
        "Ada\u{202e}ecalevol", // right-to-left override
        "Ada\u{0000}",
        "Zoë",
        long.as_str(),
        "../../etc/passwd",
        "%00%27",
    ];
    let mut tried = 0;
    for (i, name) in names.iter().enumerate() {
        let mut body = tenant(name, "Hostile");
        // Distinct dates of birth, so that duplicate prevention does not decide for the validator.
        body["dateOfBirth"] = json!(format!("19{:02}-01-01", 50 + i));
        let (status, answered) = answer(http.post(&persons).json(&body).send().await.unwrap(), name).await;
        tried += 1;
        if status == 201 {
            let id = answered["id"].as_str().unwrap().to_owned();
            let read: Value = http.get(format!("{persons}/{id}")).send().await.unwrap().json().await.unwrap();
            assert_eq!(read["firstName"], answered["firstName"], "{name}: read back as stored");
            stored.push((id, read));
        } else {
            assert!(matches!(status, 400 | 422), "{name}: refused as invalid, not {status}: {answered}");
            assert!(answered["errors"].as_array().is_some_and(|e| !e.is_empty()), "{name}: names the field");
        }
    }
    assert_eq!(tried, names.len());
    let confusable = stored.iter().find(|(_, p)| p["firstName"] == json!("Аdam"));
    assert!(confusable.is_some(), "a Cyrillic name is a valid name, stored with its own letters");

    // Searches with injection strings find nothing they should not, and fail nothing.
    for query in [
        "firstName=%27%20OR%201%3D1%20--&lastName=x",
        "lastName=%25&firstName=%25",
        "q=%27%3B%20DROP%20TABLE%20persons%3B--",
    ] {
        let (status, body) = answer(http.get(format!("{persons}?{query}")).send().await.unwrap(), query).await;
        if status == 200 {
            let text = body.to_string();
            assert!(!text.contains("Hostile"), "{query}: an injection string matches nobody: {text}");
        }
    }

    // Bodies: invalid UTF-8, deep nesting, huge arrays, over the size limit, not JSON.
    let id = stored.first().map(|(id, _)| id.clone()).unwrap();
    let invalid_utf8 = b"{\"firstName\": \"\xff\xfe\", \"surname\": \"x\"}".to_vec();
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("invalid UTF-8", invalid_utf8),
        ("nested 100,000 deep", format!("{{\"firstName\": {}}}", nested(100_000)).into_bytes()),
        ("a huge array of tenures", {
            let mut body = tenant("Huge", "Array");
            body["tenures"] = json!(vec![
                json!({ "id": "00000000-0000-4000-8000-000000000000", "type": "Secure", "startDate": "2020-01-01" });
                9_000
            ]);
            serde_json::to_vec(&body).unwrap()
        }),
        ("over 1 MiB", serde_json::to_vec(&json!({ "firstName": "x".repeat(2 * 1024 * 1024) })).unwrap()),
        ("truncated JSON", b"{\"firstName\": \"Ada".to_vec()),
    ];
    for (what, bytes) in bodies {
        let response = http.post(&persons).header("content-type", "application/json").body(bytes).send().await.unwrap();
        let (status, _) = answer(response, what).await;
        assert!(matches!(status, 400 | 413 | 422), "{what}: refused, not {status}");
    }
    let deep_document = format!("{{\"notes\": {}}}", nested(10_000));
    let response = http
        .put(format!("{persons}/{id}/extended/housing"))
        .header("content-type", "application/json")
        .body(deep_document)
        .send()
        .await
        .unwrap();
    let (status, _) = answer(response, "a deeply nested extended document").await;
    assert!(matches!(status, 400 | 413 | 422), "refused, not {status}");

    // Script in a free-form document: stored verbatim, served as JSON (never as HTML).
    let script = json!({ "note": "<script>alert('x')</script>", "sql": "'; DELETE FROM documents; --" });
    let response = http.put(format!("{persons}/{id}/extended/housing")).json(&script).send().await.unwrap();
    let (status, _) = answer(response, "a document with script").await;
    assert!(matches!(status, 200 | 201), "stored: {status}");
    let response = http.get(format!("{persons}/{id}/extended/housing")).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "application/json");
    let read: Value = response.json().await.unwrap();
    assert_eq!(read["body"].get("note").or_else(|| read.get("note")), Some(&script["note"]), "verbatim: {read}");

    // Path traversal and bad bytes where the router and the headers read them.
    for path in ["%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "..%2f..%2fetc", "housing%00", "HOUSING", "a".repeat(65).as_str()] {
        let (status, _) = answer(http.get(format!("{persons}/{id}/extended/{path}")).send().await.unwrap(), path).await;
        assert!(matches!(status, 400 | 404), "{path}: refused, not {status}");
    }
    let traversal = format!(
        "GET /api/v1/persons/{id}/extended/../../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let status = raw_status(&base, traversal.as_bytes());
    assert!(matches!(status, 400 | 404), "a raw traversal path is not served: {status}");
    let mut request = format!("GET /api/v1/persons/{id} HTTP/1.1\r\nHost: x\r\nx-purpose: ").into_bytes();
    request.extend([0xff_u8, 0xfe]);
    request.extend(b"\r\nConnection: close\r\n\r\n");
    let status = raw_status(&base, &request);
    assert_eq!(status, 400, "a header that is not text is refused");
    let mut huge_header = format!("GET /api/v1/persons/{id} HTTP/1.1\r\nHost: x\r\nx-purpose: ").into_bytes();
    huge_header.extend(std::iter::repeat_n(b'a', 1024 * 1024));
    huge_header.extend(b"\r\nConnection: close\r\n\r\n");
    let status = raw_status(&base, &huge_header);
    assert!(matches!(status, 400 | 431), "a 1 MiB header is refused: {status}");

    // Still ready, no panic, nothing stored but what was acknowledged, and the file is intact.
    assert_eq!(http.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);
    let (exit, logs) = server.terminate();
    assert!(exit.success());
    assert!(!logs.iter().any(|line| line.contains("panicked")), "no panic logged");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&mut conn).await.unwrap();
    assert_eq!(integrity, "ok");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM persons").fetch_one(&mut conn).await.unwrap();
    assert_eq!(count, i64::try_from(stored.len()).unwrap(), "exactly the acknowledged persons");
    for (id, read) in &stored {
        let document: String = sqlx::query_scalar("SELECT document FROM persons WHERE id = ?")
            .bind(id)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let document: Value = serde_json::from_str(&document).unwrap();
        assert_eq!(document["firstName"], read["firstName"], "stored verbatim");
    }
    conn.close().await.unwrap();
}

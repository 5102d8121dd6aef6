//! The storage URL: `dynamodb://<table>?region=<region>&endpoint=<URL>`, parsed into a [`TableLocation`].
//!
//! `region` is optional (the standard AWS chain is asked otherwise); `endpoint` is optional and points the
//! client at a DynamoDB-compatible server (DynamoDB Local, moto) instead of AWS. Values may be percent-encoded
//! (`endpoint=http%3A%2F%2F127.0.0.1%3A8000`). Unknown or repeated parameters are refused, so a typo never
//! silently falls back to a default. Errors describe what is wrong, never quoting the URL.

use crate::error::DynamoStoreError;

/// Where the store's table lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableLocation {
    /// The table name.
    pub(crate) table: String,
    /// The AWS region, if given in the URL.
    pub(crate) region: Option<String>,
    /// An endpoint override (a local DynamoDB-compatible server).
    pub(crate) endpoint: Option<String>,
}

fn invalid(reason: &'static str) -> DynamoStoreError {
    DynamoStoreError::InvalidUrl { reason }
}

impl TableLocation {
    /// Parses a `dynamodb://` storage URL.
    pub(crate) fn parse(url: &str) -> Result<Self, DynamoStoreError> {
        const SCHEME: &str = "dynamodb://";
        let rest = url
            .get(..SCHEME.len())
            .filter(|head| head.eq_ignore_ascii_case(SCHEME))
            .and_then(|_| url.get(SCHEME.len()..))
            .ok_or(invalid("expected dynamodb://<table>?region=<region>&endpoint=<URL>"))?;
        let (table, query) = match rest.split_once('?') {
            Some((table, query)) => (table, Some(query)),
            None => (rest, None),
        };
        let table = percent_decode(table.strip_suffix('/').unwrap_or(table))?;
        if table.is_empty() {
            return Err(invalid("the URL names no table: expected dynamodb://<table>"));
        }
        if table.len() < 3 || table.len() > 255 {
            return Err(invalid("a table name has 3 to 255 characters"));
        }
        if !table.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            return Err(invalid("a table name has only letters, digits, '_', '-' and '.'"));
        }
        let mut location = Self { table, region: None, endpoint: None };
        for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').ok_or(invalid("a query parameter has no value"))?;
            let value = percent_decode(value)?;
            if value.is_empty() {
                return Err(invalid("a query parameter has an empty value"));
            }
            let slot = match name {
                "region" => &mut location.region,
                "endpoint" => &mut location.endpoint,
                _ => return Err(invalid("unknown query parameter: only region and endpoint are accepted")),
            };
            if slot.replace(value).is_some() {
                return Err(invalid("a query parameter is repeated"));
            }
        }
        if let Some(region) = &location.region
            && !region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(invalid("a region has only letters, digits and '-' (e.g. eu-west-2)"));
        }
        if let Some(endpoint) = &location.endpoint {
            let scheme_ok = endpoint.starts_with("http://") || endpoint.starts_with("https://");
            if !scheme_ok || endpoint.len() <= "https://".len() {
                return Err(invalid("the endpoint must be an http:// or https:// URL"));
            }
        }
        Ok(location)
    }
}

/// Decodes `%XX` escapes (and refuses malformed ones or non-UTF-8 results).
fn percent_decode(text: &str) -> Result<String, DynamoStoreError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(invalid("a percent-escape is cut short"))?;
            let hex = std::str::from_utf8(hex).map_err(|_| invalid("a percent-escape is malformed"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| invalid("a percent-escape is malformed"))?);
            i += 3;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid("a percent-escape does not decode to UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(url: &str) -> &'static str {
        match TableLocation::parse(url) {
            Err(DynamoStoreError::InvalidUrl { reason }) => reason,
            other => panic!("expected an invalid URL, got {other:?}"),
        }
    }

    #[test]
    fn a_full_url_names_table_region_and_endpoint() {
        let location = TableLocation::parse("dynamodb://persons?region=eu-west-2&endpoint=http://127.0.0.1:5011")
            .expect("valid URL");
        assert_eq!(location.table, "persons");
        assert_eq!(location.region.as_deref(), Some("eu-west-2"));
        assert_eq!(location.endpoint.as_deref(), Some("http://127.0.0.1:5011"));
    }

    #[test]
    fn region_and_endpoint_are_optional_and_may_be_percent_encoded() {
        let location = TableLocation::parse("DynamoDB://person-api.prod").expect("valid URL");
        assert_eq!((location.region, location.endpoint), (None, None));
        let location =
            TableLocation::parse("dynamodb://persons?endpoint=http%3A%2F%2Flocalhost%3A8000").expect("valid URL");
        assert_eq!(location.endpoint.as_deref(), Some("http://localhost:8000"));
    }

    #[test]
    fn unusable_urls_are_refused_with_a_reason() {
        assert!(reason("sqlite://x.db").starts_with("expected dynamodb://"));
        assert!(reason("dynamodb://").contains("no table"));
        assert!(reason("dynamodb://ab").contains("3 to 255"));
        assert!(reason("dynamodb://per sons").contains("letters"));
        assert!(reason("dynamodb://persons?regoin=eu-west-2").contains("unknown"));
        assert!(reason("dynamodb://persons?region=a&region=b").contains("repeated"));
        assert!(reason("dynamodb://persons?region=").contains("empty"));
        assert!(reason("dynamodb://persons?endpoint=localhost:8000").contains("http://"));
        assert!(reason("dynamodb://persons?endpoint=http%3").contains("cut short"));
    }
}

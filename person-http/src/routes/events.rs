//! The event feed: every committed event in commit order, paged by cursor (SPEC §9).

use axum::Json;
use axum::extract::State;
use person_core::api::{FeedResponse, PageLinks, ProblemDetails};
use person_core::service::MAX_FEED_LIMIT;
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::{Caller, Params};
use crate::state::AppState;

/// Page size when `limit` is not given (the feed and access logs).
pub(crate) const DEFAULT_PAGE_LIMIT: u32 = 100;

/// A paged query string as sent (`after`, `limit`): both values are parsed here so that a bad one is a 400
/// naming it.
#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    after: Option<String>,
    limit: Option<String>,
}

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageRequest {
    /// Position to read after.
    pub(crate) after: u64,
    /// Largest page.
    pub(crate) limit: u32,
}

impl PageQuery {
    /// The cursor (default 0) and the limit (1 to `max_limit`, default 100).
    pub(crate) fn parse(&self, max_limit: u32) -> Result<PageRequest, ApiError> {
        let after = match self.after.as_deref() {
            None => 0,
            Some(raw) => decimal(raw).ok_or_else(|| {
                ApiError::bad_parameter(
                    "after",
                    "invalid_cursor",
                    "must be a cursor from this feed (a decimal position)",
                )
            })?,
        };
        let limit = match self.limit.as_deref() {
            None => DEFAULT_PAGE_LIMIT.min(max_limit),
            Some(raw) => decimal(raw)
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (1..=max_limit).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_parameter("limit", "invalid_limit", format!("must be a number from 1 to {max_limit}"))
                })?,
        };
        Ok(PageRequest { after, limit })
    }
}

fn decimal(raw: &str) -> Option<u64> {
    (!raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit())).then(|| raw.parse().ok()).flatten()
}

/// Read events after a cursor, in commit order.
///
/// Follow `links.next` (also when a page is empty: it is where to poll next) to see every event exactly once.
/// Events about persons whose processing is restricted are left out unless the caller holds `admin`; the cursor
/// still moves past them.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    operation_id = "getEvents",
    params(
        ("after" = Option<String>, Query, pattern = r"^[0-9]{1,19}$", description = "Cursor: the `nextCursor` of the previous page (default 0, the start)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Page size, 1 to 1000 (default 100)"),
    ),
    responses(
        (status = 200, description = "A page of events", body = FeedResponse),
        (status = 400, description = "A bad cursor or limit", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn feed(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Params(query): Params<PageQuery>,
) -> Result<Json<FeedResponse>, ApiError> {
    let request = query.parse(MAX_FEED_LIMIT)?;
    let page = state.service.events(&ctx, request.after, request.limit).await?;
    let next = format!("{}/api/v1/events?after={}&limit={}", state.config.base_url(), page.next_after, request.limit);
    Ok(Json(FeedResponse {
        results: page.entries,
        next_cursor: page.next_after.to_string(),
        links: PageLinks { next: Some(next) },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(after: Option<&str>, limit: Option<&str>) -> PageQuery {
        PageQuery { after: after.map(str::to_owned), limit: limit.map(str::to_owned) }
    }

    #[test]
    fn defaults_are_the_start_of_the_feed_and_100_events() {
        let parse = |q: PageQuery| q.parse(MAX_FEED_LIMIT).ok();
        assert_eq!(parse(query(None, None)), Some(PageRequest { after: 0, limit: DEFAULT_PAGE_LIMIT }));
        assert_eq!(parse(query(Some("42"), Some("1000"))), Some(PageRequest { after: 42, limit: 1000 }));
    }

    #[test]
    fn bad_cursors_and_limits_are_refused() {
        for (after, limit) in [
            (Some("-1"), None),
            (Some("abc"), None),
            (Some(""), None),
            (Some("+3"), None),
            (None, Some("0")),
            (None, Some("1001")),
            (None, Some("ten")),
            (None, Some("99999999999")),
        ] {
            assert!(query(after, limit).parse(MAX_FEED_LIMIT).is_err(), "{after:?} {limit:?}");
        }
    }
}

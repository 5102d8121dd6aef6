//! The event feed: every committed event in commit order, paged by cursor (SPEC §9).

use axum::Json;
use axum::extract::State;
use person_core::api::{FeedResponse, PageLinks, ProblemDetails};
use person_core::service::MAX_FEED_LIMIT;
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::Params;
use crate::state::AppState;

/// Page size when `limit` is not given.
pub(crate) const DEFAULT_FEED_LIMIT: u32 = 100;

/// The query string as sent: both values are parsed here so that a bad one is a 400 naming it.
#[derive(Debug, Deserialize)]
pub(crate) struct FeedQuery {
    after: Option<String>,
    limit: Option<String>,
}

/// A validated feed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FeedRequest {
    after: u64,
    limit: u32,
}

impl FeedQuery {
    fn parse(&self) -> Result<FeedRequest, ApiError> {
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
            None => DEFAULT_FEED_LIMIT,
            Some(raw) => decimal(raw)
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (1..=MAX_FEED_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_parameter(
                        "limit",
                        "invalid_limit",
                        format!("must be a number from 1 to {MAX_FEED_LIMIT}"),
                    )
                })?,
        };
        Ok(FeedRequest { after, limit })
    }
}

fn decimal(raw: &str) -> Option<u64> {
    (!raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit())).then(|| raw.parse().ok()).flatten()
}

/// Read events after a cursor, in commit order.
///
/// Follow `links.next` (also when a page is empty: it is where to poll next) to see every event exactly once.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    operation_id = "getEvents",
    params(
        ("after" = Option<String>, Query, description = "Cursor: the `nextCursor` of the previous page (default 0, the start)"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 100)"),
    ),
    responses(
        (status = 200, description = "A page of events", body = FeedResponse),
        (status = 400, description = "A bad cursor or limit", body = ProblemDetails, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn feed(
    State(state): State<AppState>,
    Params(query): Params<FeedQuery>,
) -> Result<Json<FeedResponse>, ApiError> {
    let request = query.parse()?;
    let page = state.service.events(request.after, request.limit).await?;
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

    fn query(after: Option<&str>, limit: Option<&str>) -> FeedQuery {
        FeedQuery { after: after.map(str::to_owned), limit: limit.map(str::to_owned) }
    }

    #[test]
    fn defaults_are_the_start_of_the_feed_and_100_events() {
        assert_eq!(query(None, None).parse().ok(), Some(FeedRequest { after: 0, limit: DEFAULT_FEED_LIMIT }));
        assert_eq!(query(Some("42"), Some("1000")).parse().ok(), Some(FeedRequest { after: 42, limit: 1000 }));
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
            assert!(query(after, limit).parse().is_err(), "{after:?} {limit:?}");
        }
    }
}

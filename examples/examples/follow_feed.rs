//! A feed listener that survives restarts: it follows the Person API's event feed and persists its cursor (the
//! position of the last event it handled) to a file after each event, so that after a crash or a deploy it
//! resumes where it stopped — every committed event is handled, in commit order, and none is skipped.
//!
//! Delivery to the handler is at-least-once: if the process dies after handling an event but before writing
//! the cursor, that event is handled again after the restart. Make the handler idempotent (events have a
//! unique `id` to de-duplicate on).
//!
//! ```text
//! cargo run -p person-examples --example follow_feed -- http://127.0.0.1:8080 ./feed.cursor
//! ```
//!
//! The URL comes from the first argument, else `PERSON_API_URL`, else `http://127.0.0.1:8080`; the cursor file
//! from the second argument, else `PERSON_FEED_CURSOR`, else `./feed.cursor`; a token from `PERSON_API_TOKEN`
//! (it needs `events:read`).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use person_client::{ClientError, FeedEntry, FollowOptions, PersonApi, PersonClient};
use tokio::time::Instant;

/// When [`run`] returns (it follows forever without one).
#[derive(Debug, Clone, Copy, Default)]
pub struct Stop {
    /// After handling this many events.
    pub max_events: Option<u64>,
    /// At this instant, whether or not events are arriving.
    pub deadline: Option<Instant>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .or_else(|| std::env::var("PERSON_API_URL").ok())
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let cursor = args
        .next()
        .or_else(|| std::env::var("PERSON_FEED_CURSOR").ok())
        .map_or_else(|| PathBuf::from("./feed.cursor"), PathBuf::from);
    let handled = run(&url, std::env::var("PERSON_API_TOKEN").ok(), &cursor, Stop::default()).await?;
    println!("handled {handled} event(s)");
    Ok(())
}

/// Follows the feed of the server at `base_url` from the position stored in `cursor_file` (the start of the
/// feed when the file does not exist), handling each event and storing its position, until `stop`. Returns how
/// many events were handled.
///
/// # Errors
/// An unreadable cursor file, a cursor that cannot be written, or an error that retrying cannot fix (no valid
/// token, no `events:read`, a bad request). Transient errors (the server down for a while) are reported and
/// the listener carries on.
pub async fn run(
    base_url: &str,
    token: Option<String>,
    cursor_file: &Path,
    stop: Stop,
) -> Result<u64, Box<dyn Error + Send + Sync>> {
    let mut builder = PersonClient::builder(base_url).user_agent("person-examples/follow-feed");
    if let Some(token) = token {
        builder = builder.token(token);
    }
    let client = builder.build()?;
    let after = read_cursor(cursor_file)?;
    println!("following the feed after position {after}");
    let options = FollowOptions { page_size: Some(100), poll_interval: Duration::from_millis(500) };
    let mut feed = client.follow_feed(after, options);
    let mut handled = 0;
    while stop.max_events.is_none_or(|max| handled < max) {
        let next = match stop.deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, feed.next()).await {
                Ok(next) => next,
                Err(_) => break,
            },
            None => feed.next().await,
        };
        match next {
            Some(Ok(entry)) => {
                handle(&entry);
                write_cursor(cursor_file, entry.position)?;
                handled += 1;
            }
            Some(Err(
                error @ (ClientError::Unauthorised
                | ClientError::Forbidden { .. }
                | ClientError::BadRequest { .. }
                | ClientError::Config(_)),
            )) => return Err(error.into()),
            // The stream polls again after its interval, from the same position.
            Some(Err(error)) => eprintln!("the feed is unavailable for now ({error}); retrying"),
            None => break,
        }
    }
    Ok(handled)
}

/// What this listener does with an event: here, print what happened to whom (ids only: the event's data is
/// personal data and stays out of logs).
fn handle(entry: &FeedEntry) {
    let event = &entry.event;
    println!("#{} {} {} ({})", entry.position, event.event_type.as_str(), event.entity_id, event.id);
}

// The cursor file is a few bytes: plain blocking file I/O is fine here.
fn read_cursor(path: &Path) -> Result<u64, Box<dyn Error + Send + Sync>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().parse()?),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(error.into()),
    }
}

/// Writes the cursor atomically (a temporary file renamed over the old one), so that a crash mid-write never
/// leaves a torn cursor behind.
fn write_cursor(path: &Path, position: u64) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, position.to_string())?;
    std::fs::rename(&temporary, path)
}

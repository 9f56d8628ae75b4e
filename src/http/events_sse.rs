//! `GET /v1/events` with `Accept: text/event-stream`: the public event feed, live, as
//! server-sent events. Each event is `event: <type>`, `data: <the feed's JSON>`. The last
//! event of each log entry carries `id: <cursor>`, so a client that reconnects with
//! `Last-Event-ID` (browsers do it themselves) resumes after the last whole entry it saw.
//!
//! Bounded: at most [`MAX_STREAMS`] streams per node (a 503 past that), a buffer of
//! [`BUFFER`] events per stream, and a stream ends after [`MAX_STREAM`] (the client
//! reconnects with its last id). The stream reads the partitions the answering node owns,
//! like the paged feed; a comment every 15 s keeps idle connections open.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};
use warp::reply::Response;
use warp::Reply;

use super::dto::events::Event;
use super::error::ApiError;
use crate::app::App;
use crate::events::feed::Cursor;
use crate::events::EventType;

/// Most live streams one node serves at once.
pub const MAX_STREAMS: usize = 32;
/// Events buffered per stream ahead of a slow client.
pub const BUFFER: usize = 256;
/// How long one stream lasts before the client must reconnect.
pub const MAX_STREAM: Duration = Duration::from_secs(3600);
/// Events read per poll.
const PAGE: usize = 100;

static STREAMS: Semaphore = Semaphore::const_new(MAX_STREAMS);

/// Whether an `Accept` header asks for server-sent events.
pub fn wants_sse(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',')
            .any(|t| t.trim().split(';').next().map(str::trim) == Some("text/event-stream"))
    })
}

/// The SSE events of one page: every event, and the cursor after its log entry on the
/// last event of each entry.
fn frames(
    start: &Cursor,
    events: Vec<crate::events::PublicEvent>,
    end: &Cursor,
) -> Vec<warp::sse::Event> {
    let mut cursor = start.clone();
    let n = events.len();
    let mut out = Vec::with_capacity(n);
    let entries: Vec<(u32, u64)> = events.iter().map(|e| (e.partition, e.pseq)).collect();
    for (i, ev) in events.into_iter().enumerate() {
        cursor.0.insert(ev.partition, ev.pseq);
        let ty = ev.r#type.as_str();
        let data = serde_json::to_string(&Event::from(ev)).unwrap_or_default();
        let mut frame = warp::sse::Event::default().event(ty).data(data);
        if i + 1 == n {
            frame = frame.id(end.encode());
        } else if entries[i + 1] != entries[i] {
            frame = frame.id(cursor.encode());
        }
        out.push(frame);
    }
    out
}

/// The live stream from `cursor`, of `types` (all when empty).
pub fn stream(app: App, mut cursor: Cursor, types: Vec<EventType>) -> Result<Response, ApiError> {
    let permit = STREAMS.try_acquire().map_err(|_| {
        ApiError::unavailable(
            "too_many_streams",
            format!("this node serves at most {MAX_STREAMS} event streams; try again"),
            Duration::from_secs(5),
        )
    })?;
    let (tx, mut rx) = mpsc::channel::<warp::sse::Event>(BUFFER);
    let poll = Duration::from_millis(app.config.projections.poll_ms.clamp(10, 1000));
    tokio::spawn(async move {
        let _permit = permit;
        let started = Instant::now();
        while started.elapsed() < MAX_STREAM && !tx.is_closed() {
            // A partition that cannot answer now is read on a later pass (the cursor
            // stays where it was for it).
            let page = match crate::events::feed::cluster_page(
                &app.router,
                &cursor,
                &types,
                PAGE,
                true,
            )
            .await
            {
                Ok((p, _)) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "event stream: reading the feed failed; trying again");
                    tokio::time::sleep(poll).await;
                    continue;
                }
            };
            let caught_up = page.events.len() < PAGE;
            for frame in frames(&cursor, page.events, &page.cursor) {
                if tx.send(frame).await.is_err() {
                    return; // the client left
                }
            }
            cursor = page.cursor;
            if caught_up {
                tokio::time::sleep(poll).await;
            }
        }
    });
    let events =
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|o| o.map(Ok::<_, Infallible>)));
    let body = warp::sse::keep_alive()
        .interval(Duration::from_secs(15))
        .stream(events);
    Ok(warp::sse::reply(body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_that_ask_for_a_stream() {
        assert!(wants_sse(Some("text/event-stream")));
        assert!(wants_sse(Some("application/json, text/event-stream;q=0.9")));
        assert!(!wants_sse(Some("application/json")));
        assert!(!wants_sse(Some("text/event-streams")));
        assert!(!wants_sse(None));
    }
}

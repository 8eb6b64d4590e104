//! Provider-independent answer description and its delivery: providers say
//! *what* to send (a body, or stream events with delays); this module decides
//! *how* (Content-Length vs chunked, deliberate truncation, stream stats).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use http::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Response, StatusCode};

use crate::body::{Aborted, ChunkStream, MockBody};
use crate::state::{Stats, StreamGuard};

/// Time given to hyper to flush the partial body before the deliberate abort,
/// so the client really receives the first half (hyper flushes while the body
/// is pending).
const FLUSH_GRACE: Duration = Duration::from_millis(50);

pub const JSON: &str = "application/json";
pub const TEXT: &str = "text/plain; charset=utf-8";
pub const HTML: &str = "text/html; charset=utf-8";
pub const EVENT_STREAM: &str = "text/event-stream";

/// One stream event (an SSE event, an NDJSON line, a binary frame...) and
/// the pause before it is sent.
#[derive(Debug, Clone)]
pub struct TimedEvent {
    pub delay: Duration,
    pub data: Bytes,
}

impl TimedEvent {
    /// An event sent right after the previous one.
    pub fn now(data: Bytes) -> Self {
        TimedEvent { delay: Duration::ZERO, data }
    }

    pub fn after(delay: Duration, data: Bytes) -> Self {
        TimedEvent { delay, data }
    }
}

/// Provider-specific response headers (`request-id`, `x-amzn-ErrorType`...).
/// Empty for most answers, and an empty Vec does not allocate.
pub type ExtraHeaders = Vec<(HeaderName, HeaderValue)>;

#[derive(Debug)]
pub enum Reply {
    Body {
        status: StatusCode,
        content_type: &'static str,
        body: Bytes,
        headers: ExtraHeaders,
    },
    /// A 200 answer sent event by event (chunked), with its pauses.
    Stream {
        content_type: &'static str,
        events: Vec<TimedEvent>,
        headers: ExtraHeaders,
    },
}

impl Reply {
    fn body(status: StatusCode, content_type: &'static str, body: Bytes) -> Self {
        Reply::Body { status, content_type, body, headers: Vec::new() }
    }

    pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Self {
        Reply::body(status, JSON, body.into())
    }

    pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Self {
        Reply::body(status, TEXT, body.into())
    }

    pub fn html(status: StatusCode, body: impl Into<Bytes>) -> Self {
        Reply::body(status, HTML, body.into())
    }

    /// Server-sent events (`text/event-stream`).
    pub fn sse(events: Vec<TimedEvent>) -> Self {
        Reply::stream(EVENT_STREAM, events)
    }

    /// Any other streamed body: NDJSON, a JSON array sent piecewise, AWS
    /// event-stream frames.
    pub fn stream(content_type: &'static str, events: Vec<TimedEvent>) -> Self {
        Reply::Stream { content_type, events, headers: Vec::new() }
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        match &mut self {
            Reply::Body { headers, .. } | Reply::Stream { headers, .. } => {
                headers.push((name, value));
            }
        }
        self
    }

    /// The events of a stream (`None` for a whole body); for tests.
    pub fn events(&self) -> Option<&[TimedEvent]> {
        match self {
            Reply::Stream { events, .. } => Some(events),
            Reply::Body { .. } => None,
        }
    }

    /// The body and status of a whole answer (`None` for a stream); for tests.
    pub fn whole_body(&self) -> Option<(StatusCode, &Bytes)> {
        match self {
            Reply::Body { status, body, .. } => Some((*status, body)),
            Reply::Stream { .. } => None,
        }
    }

    /// Serialize `value` as a JSON reply; a serialization failure (not
    /// expected for our types) becomes a 500 rather than a panic.
    pub fn json_value<T: serde::Serialize>(status: StatusCode, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(v) => Reply::json(status, v),
            Err(e) => Reply::text(StatusCode::INTERNAL_SERVER_ERROR, format!("mock: cannot serialize reply: {e}")),
        }
    }

    /// Build the HTTP response. `truncate` implements the `reset_mid_*`
    /// faults: half the body (or half the events), then an abort.
    pub fn into_response(self, stats: &Arc<Stats>, truncate: bool) -> Response<MockBody> {
        match self {
            Reply::Body { status, content_type, body, headers } => {
                let mut resp = if truncate {
                    let full_len = body.len();
                    let half = body.slice(..full_len / 2);
                    let inner: ChunkStream = stream::iter([Ok(half)]).chain(abort_later()).boxed();
                    let mut resp = Response::new(MockBody::stream(inner, None));
                    // Announce the full length so the client knows the body is cut short.
                    resp.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(full_len));
                    resp
                } else {
                    Response::new(MockBody::full(body))
                };
                *resp.status_mut() = status;
                let h = resp.headers_mut();
                h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
                h.extend(headers);
                resp
            }
            Reply::Stream { content_type, events, headers } => {
                let guard = StreamGuard::new(stats.clone());
                let take = if truncate { (events.len() / 2).max(1) } else { events.len() };
                // `then` with a sleep makes each delayed event its own write:
                // hyper flushes whenever the body is pending.
                let events = stream::iter(events.into_iter().take(take)).then(|ev| async move {
                    if !ev.delay.is_zero() {
                        tokio::time::sleep(ev.delay).await;
                    }
                    Ok(ev.data)
                });
                let inner: ChunkStream = if truncate { events.chain(abort_later()).boxed() } else { events.boxed() };
                let mut resp = Response::new(MockBody::stream(inner, Some(guard)));
                let h = resp.headers_mut();
                h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
                h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                h.extend(headers);
                resp
            }
        }
    }
}

fn abort_later() -> impl futures::Stream<Item = Result<Bytes, Aborted>> + Send {
    stream::once(async {
        tokio::time::sleep(FLUSH_GRACE).await;
        Err(Aborted)
    })
}

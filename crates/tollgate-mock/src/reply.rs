//! Provider-independent answer description and its delivery: providers say
//! *what* to send (a body, or SSE events with delays); this module decides
//! *how* (Content-Length vs chunked, deliberate truncation, stream stats).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
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

/// One SSE event and the pause before it is sent.
#[derive(Debug, Clone)]
pub struct TimedEvent {
    pub delay: Duration,
    pub data: Bytes,
}

#[derive(Debug)]
pub enum Reply {
    Body {
        status: StatusCode,
        content_type: &'static str,
        body: Bytes,
    },
    Sse(Vec<TimedEvent>),
}

impl Reply {
    pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Self {
        Reply::Body {
            status,
            content_type: JSON,
            body: body.into(),
        }
    }

    pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Self {
        Reply::Body {
            status,
            content_type: TEXT,
            body: body.into(),
        }
    }

    pub fn html(status: StatusCode, body: impl Into<Bytes>) -> Self {
        Reply::Body {
            status,
            content_type: HTML,
            body: body.into(),
        }
    }

    /// Serialize `value` as a JSON reply; a serialization failure (not
    /// expected for our types) becomes a 500 rather than a panic.
    pub fn json_value<T: serde::Serialize>(status: StatusCode, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(v) => Reply::json(status, v),
            Err(e) => Reply::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("mock: cannot serialize reply: {e}"),
            ),
        }
    }

    /// Build the HTTP response. `truncate` implements the `reset_mid_*`
    /// faults: half the body (or half the events), then an abort.
    pub fn into_response(self, stats: &Arc<Stats>, truncate: bool) -> Response<MockBody> {
        match self {
            Reply::Body {
                status,
                content_type,
                body,
            } => {
                let mut resp = if truncate {
                    let full_len = body.len();
                    let half = body.slice(..full_len / 2);
                    let inner: ChunkStream = stream::iter([Ok(half)]).chain(abort_later()).boxed();
                    let mut resp = Response::new(MockBody::stream(inner, None));
                    // Announce the full length so the client knows the body is cut short.
                    resp.headers_mut()
                        .insert(CONTENT_LENGTH, HeaderValue::from(full_len));
                    resp
                } else {
                    Response::new(MockBody::full(body))
                };
                *resp.status_mut() = status;
                resp.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
                resp
            }
            Reply::Sse(events) => {
                let guard = StreamGuard::new(stats.clone());
                let take = if truncate {
                    (events.len() / 2).max(1)
                } else {
                    events.len()
                };
                // `then` with a sleep makes each delayed event its own write:
                // hyper flushes whenever the body is pending.
                let events = stream::iter(events.into_iter().take(take)).then(|ev| async move {
                    if !ev.delay.is_zero() {
                        tokio::time::sleep(ev.delay).await;
                    }
                    Ok(ev.data)
                });
                let inner: ChunkStream = if truncate {
                    events.chain(abort_later()).boxed()
                } else {
                    events.boxed()
                };
                let mut resp = Response::new(MockBody::stream(inner, Some(guard)));
                let h = resp.headers_mut();
                h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
                h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
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

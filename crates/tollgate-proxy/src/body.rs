//! Reading a request body with a hard bound, refusing early when the declared
//! length is already over it.

use bytes::{Bytes, BytesMut};
use pingora_proxy::Session;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub enum BodyError {
    TooLarge {
        limit: usize,
    },
    /// The whole body did not arrive within `server.client_body_timeout`.
    TimedOut {
        limit_ms: u64,
    },
    Read(String),
}

/// When a request's body must have arrived whole (`RequestCtx::body_deadline`).
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline {
    pub at: Instant,
    pub limit_ms: u64,
}

impl BodyDeadline {
    pub fn new(start: Instant, limit_ms: u64) -> Self {
        BodyDeadline { at: start + Duration::from_millis(limit_ms), limit_ms }
    }
}

impl BodyError {
    pub fn message(&self) -> String {
        match self {
            BodyError::TooLarge { limit } => {
                format!("request body is larger than the limit of {limit} bytes (server.max_request_body_size)")
            }
            BodyError::TimedOut { limit_ms } => {
                format!("request body not received within {limit_ms} ms (server.client_body_timeout)")
            }
            BodyError::Read(e) => format!("could not read the request body: {e}"),
        }
    }
}

/// The request's Content-Length, when it has a valid one.
pub fn declared_length(session: &Session) -> Option<usize> {
    session
        .req_header()
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
}

/// Reads the whole body, or fails as soon as it is known to exceed `limit`
/// (from Content-Length before reading anything, else while reading) or when
/// it has not arrived whole by the `deadline`.
pub async fn read_bounded(session: &mut Session, limit: usize, deadline: BodyDeadline) -> Result<Bytes, BodyError> {
    let declared = declared_length(session);
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge { limit });
    }
    let expects_continue =
        session.req_header().headers.get("expect").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects_continue {
        session.write_continue_response().await.map_err(|e| BodyError::Read(e.to_string()))?;
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    loop {
        let Ok(read) = tokio::time::timeout_at(deadline.at.into(), session.read_request_body()).await else {
            return Err(BodyError::TimedOut { limit_ms: deadline.limit_ms });
        };
        match read {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > limit {
                    return Err(BodyError::TooLarge { limit });
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(buf.freeze()),
            Err(e) => return Err(BodyError::Read(e.to_string())),
        }
    }
}

/// After refusing a body, reads and discards what the client is still sending
/// (bounded in bytes and time), like nginx's lingering close: a client that is
/// mid-upload then sees the refusal instead of a reset connection.
pub async fn discard_rest(session: &mut Session, max_bytes: usize, max_time: Duration) {
    let deadline = Instant::now() + max_time;
    let mut seen = 0usize;
    while seen < max_bytes {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, session.read_request_body()).await {
            Ok(Ok(Some(chunk))) => seen += chunk.len(),
            _ => break,
        }
    }
}

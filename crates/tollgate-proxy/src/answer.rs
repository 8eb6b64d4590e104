//! Answers to one request that the gateway writes itself: errors in the
//! shape its callers read, with the headers every answer to it carries
//! (the request id, rate-limit state).

use std::time::Duration;

use pingora_proxy::Session;
use tollgate_llm::LlmError;

use crate::body::{discard_rest, BodyError};
use crate::ctx::RequestCtx;
use crate::respond::{refusal, send, PResult};

/// Answers `err` in the request's error shape (`ctx.shape`), adding
/// `headers` to the request's own.
pub async fn error(
    session: &mut Session,
    ctx: &mut RequestCtx,
    err: &LlmError,
    headers: &[(&str, &str)],
) -> PResult<()> {
    let (status, body) = ctx.shape.render(err);
    ctx.status = status;
    ctx.note_error(&err.message);
    let mut all: Vec<(&str, &str)> = Vec::with_capacity(headers.len() + 1 + ctx.response_headers.len());
    all.extend_from_slice(headers);
    all.push(("x-request-id", ctx.request_id.as_str()));
    all.extend(ctx.response_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    send(session, status, "application/json", body, &all).await
}

/// Refused bodies are discarded up to this much so the client sees the 413.
const DISCARD_BYTES: usize = 64 * 1024 * 1024;
const DISCARD_TIME: Duration = Duration::from_secs(5);

/// Refuses a body that could not be read or is too large, and closes the
/// connection (its rest is read and dropped, briefly, so the client sees
/// the answer).
pub async fn refuse_body(session: &mut Session, ctx: &mut RequestCtx, e: BodyError) -> PResult<()> {
    let status = match e {
        BodyError::TooLarge { .. } => 413,
        BodyError::TimedOut { .. } => 408,
        BodyError::Read(_) => 400,
    };
    error(session, ctx, &refusal(status, &e.message()), &[]).await?;
    session.set_keepalive(None);
    if status == 413 {
        discard_rest(session, DISCARD_BYTES, DISCARD_TIME).await;
    }
    Ok(())
}

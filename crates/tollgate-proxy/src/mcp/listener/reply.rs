//! The listener's own answers: JSON-RPC as JSON, 202 for what needs none,
//! and how a request ends early.

use bytes::Bytes;
use pingora_proxy::Session;
use serde_json::Value;

use crate::ctx::RequestCtx;
use crate::mcp::answer::Stop;
use crate::mcp::session::SESSION_HEADER;
use crate::respond::send;

/// Why a request ends early: an answer of the gateway's, or the client gone.
pub(super) enum Failed {
    Stop(Stop),
    Write(Box<pingora_error::Error>),
}

impl From<Stop> for Failed {
    fn from(s: Stop) -> Self {
        Failed::Stop(s)
    }
}

impl From<Box<pingora_error::Error>> for Failed {
    fn from(e: Box<pingora_error::Error>) -> Self {
        Failed::Write(e)
    }
}

pub(super) async fn json_answer(
    session: &mut Session,
    ctx: &mut RequestCtx,
    value: Value,
    session_id: Option<&str>,
) -> Result<(), Failed> {
    ctx.status = 200;
    let mut headers = vec![("x-request-id", ctx.request_id.as_str())];
    if let Some(id) = session_id {
        headers.push((SESSION_HEADER, id));
    }
    Ok(send(session, 200, "application/json", Bytes::from(value.to_string()), &headers).await?)
}

pub(super) async fn accepted(session: &mut Session, ctx: &mut RequestCtx) -> Result<(), Failed> {
    ctx.status = 202;
    let headers = [("x-request-id", ctx.request_id.as_str())];
    Ok(send(session, 202, "text/plain", Bytes::new(), &headers).await?)
}

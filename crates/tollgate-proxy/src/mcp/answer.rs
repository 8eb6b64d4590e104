//! The answers the gateway writes itself on MCP routes, and the stop that
//! carries one: the exchange's steps return a stop instead of writing, and
//! one place writes it (as the pipeline's steps do with their refusals).

use bytes::Bytes;
use pingora_proxy::Session;
use serde_json::Value;
use tollgate_mcp::jsonrpc;

use crate::ctx::RequestCtx;
use crate::respond::{kong_error_body, send, PResult};

/// What the gateway answers instead of the server.
#[derive(Debug)]
pub(super) enum Answer {
    /// A transport-level error in Kong's shape (the MCP SDKs show the status).
    Error { status: u16, message: String },
    /// JSON-RPC answers of the gateway's own (a body it refused, calls it
    /// refused), with `Retry-After` for a limit.
    JsonRpc { status: u16, body: Vec<u8>, retry_after: Option<u64> },
    /// A method none of MCP's transports uses.
    MethodNotAllowed,
    /// The legacy transport's answer to a POST whose JSON-RPC answers went
    /// down its session's SSE stream.
    Accepted,
}

/// Why the exchange ends before the server is asked: the decision the
/// request is logged and counted with, and the answer.
#[derive(Debug)]
pub(super) struct Stop {
    pub decision: &'static str,
    pub answer: Answer,
    /// What went wrong, for the log, when the answer does not say it.
    pub cause: Option<String>,
}

/// A step of the exchange: go on, or stop with an answer.
pub(super) type Step<T> = Result<T, Stop>;

impl Stop {
    pub fn error(decision: &'static str, status: u16, message: impl Into<String>) -> Self {
        Stop { decision, answer: Answer::Error { status, message: message.into() }, cause: None }
    }

    pub fn jsonrpc(decision: &'static str, status: u16, body: Vec<u8>) -> Self {
        Stop { decision, answer: Answer::JsonRpc { status, body, retry_after: None }, cause: None }
    }

    /// MCP's answer for a session the server does not know: 404, upon which
    /// clients start a new session.
    pub fn session_not_found() -> Self {
        let body = jsonrpc::error_body(&Value::Null, jsonrpc::INVALID_REQUEST, "Session not found");
        Stop::jsonrpc("unknown_session", 404, body)
    }
}

/// Writes a stop's answer, noting its decision.
pub(super) async fn stop(session: &mut Session, ctx: &mut RequestCtx, stop: Stop) -> PResult<()> {
    note(ctx, stop.decision);
    if let Some(cause) = &stop.cause {
        ctx.note_error(cause);
    }
    match stop.answer {
        Answer::Error { status, message } => error(session, ctx, status, &message).await,
        Answer::JsonRpc { status, body, retry_after } => {
            ctx.status = status;
            let retry_after = retry_after.map(|s| s.to_string());
            let mut headers = vec![("x-request-id", ctx.request_id.as_str())];
            if let Some(r) = &retry_after {
                headers.push(("retry-after", r.as_str()));
            }
            send(session, status, "application/json", Bytes::from(body), &headers).await
        }
        Answer::MethodNotAllowed => {
            ctx.status = 405;
            let headers = [("allow", "GET, POST, DELETE"), ("x-request-id", ctx.request_id.as_str())];
            let body = kong_error_body("MCP routes take GET, POST and DELETE");
            send(session, 405, "application/json", body, &headers).await
        }
        Answer::Accepted => {
            ctx.status = 202;
            let headers = [("x-request-id", ctx.request_id.as_str())];
            send(session, 202, "text/plain", Bytes::from_static(b"Accepted"), &headers).await
        }
    }
}

/// A transport-level error in Kong's shape (the MCP SDKs show the status).
pub(super) async fn error(session: &mut Session, ctx: &mut RequestCtx, status: u16, message: &str) -> PResult<()> {
    ctx.status = status;
    ctx.note_error(message);
    let headers = [("x-request-id", ctx.request_id.as_str())];
    send(session, status, "application/json", kong_error_body(message), &headers).await
}

/// Records what the gateway decided about the request (logged and counted).
pub(super) fn note(ctx: &mut RequestCtx, decision: &'static str) {
    if let Some(f) = ctx.mcp.as_mut() {
        f.decision = decision;
    }
}

//! Relaying an answer to the caller: a stream event by event (translated, or
//! native and read on the way), watching the caller so a hang-up stops the
//! provider at once; and the headers of relayed answers.

use std::time::Instant;

use bytes::BytesMut;
use pingora_core::protocols::http::client::HttpSession;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;
use tollgate_llm::stream::ChatStream;
use tollgate_llm::{LlmError, Usage};

use crate::ctx::RequestCtx;
use crate::llm::target::LlmTarget;
use crate::respond::PResult;

/// How a stream is relayed.
pub(crate) struct StreamRelay<'a> {
    pub target: &'a LlmTarget,
    /// Prompt tokens by the tokenizer, asked only when the provider reports no usage.
    pub prompt_estimate: &'a (dyn Fn() -> u64 + Sync),
    pub content_type: &'a str,
    pub sent_at: Instant,
}

/// Relays a stream; returns how the relay ended for the client and whether
/// the provider completed its answer.
pub(crate) async fn relay_stream(
    session: &mut Session,
    ctx: &mut RequestCtx,
    upstream: &mut HttpSession,
    mut stream: Box<dyn ChatStream>,
    relay: StreamRelay<'_>,
) -> (PResult<()>, bool) {
    let StreamRelay { target, prompt_estimate, content_type, sent_at } = relay;
    if let Err(e) = start_stream(session, ctx, target, content_type).await {
        return (Err(e), false);
    }

    let mut first_event: Option<Instant> = None;
    let mut outcome: PResult<()> = Ok(());
    loop {
        tokio::select! {
            // The provider's progress first; the idle probe must not race a
            // client that already sends its next request.
            biased;
            chunk = upstream.read_response_body() => match chunk {
                Ok(Some(bytes)) => {
                    let out = stream.feed(&bytes);
                    // Logged as the provider wrote it: the caller's PII stays out of the log.
                    let logged = stream.unrestored();
                    log_response(ctx, logged.as_deref().unwrap_or(&out));
                    if !out.is_empty() {
                        first_event.get_or_insert_with(Instant::now);
                        if let Err(e) = session.write_response_body(Some(out), false).await {
                            ctx.note_error("client went away mid-stream");
                            outcome = Err(e);
                            break;
                        }
                    }
                }
                Ok(None) => {
                    let mut rest = BytesMut::from(&stream.finish()[..]);
                    if !stream.completed() {
                        // Cut before its end: say so rather than end silently.
                        ctx.note_error("provider stream ended before its answer did");
                        rest.extend_from_slice(&stream.fail(broken(target, "ended before its answer did")));
                    }
                    let end = if rest.is_empty() { None } else { Some(rest.freeze()) };
                    outcome = session.write_response_body(end, true).await;
                    break;
                }
                Err(e) => {
                    // Bytes already reached the client: never retry (no duplicated
                    // output); end the stream with an error event instead.
                    ctx.note_error(&format!("provider stream broke: {e}"));
                    let event = stream.fail(broken(target, "broke off"));
                    if !event.is_empty() {
                        let _ = session.write_response_body(Some(event), false).await;
                    }
                    outcome = session.write_response_body(None, true).await;
                    break;
                }
            },
            gone = session.read_body_or_idle(true) => {
                let _ = gone;
                // A hang-up, or a byte of a next request eaten by the probe:
                // the connection cannot be reused either way.
                session.set_keepalive(None);
                ctx.note_error("client went away mid-stream");
                if let Some(f) = ctx.llm.as_mut() {
                    f.client_cancelled = true;
                }
                break;
            }
        }
    }
    record_stream(ctx, stream.as_ref(), sent_at, first_event, prompt_estimate);
    (outcome, stream.completed())
}

/// What the relayed stream says: latency, time to first token, model and
/// usage (the tokenizer's when the provider reported none, as for a stream
/// cut short: the prompt, and one token per content event).
fn record_stream(
    ctx: &mut RequestCtx,
    stream: &dyn ChatStream,
    sent_at: Instant,
    first_event: Option<Instant>,
    prompt_estimate: &(dyn Fn() -> u64 + Sync),
) {
    let Some(f) = ctx.llm.as_mut() else { return };
    f.latency = Some(sent_at.elapsed());
    f.ttft = first_event.map(|t| t - sent_at);
    f.response_model = stream.model().map(str::to_string);
    f.usage = stream.usage().or_else(|| {
        f.usage_estimated = true;
        let prompt = prompt_estimate();
        Some(Usage {
            prompt_tokens: prompt,
            completion_tokens: stream.events(),
            total_tokens: prompt + stream.events(),
            ..Usage::default()
        })
    });
}

fn broken(target: &LlmTarget, what: &str) -> LlmError {
    LlmError::new(502, "upstream_error", format!("provider {} stream {what}", target.provider))
}

/// The stream's response header: the client learns the answer has started.
async fn start_stream(
    session: &mut Session,
    ctx: &mut RequestCtx,
    target: &LlmTarget,
    content_type: &str,
) -> PResult<()> {
    let mut resp = ResponseHeader::build(200, Some(6))?;
    resp.insert_header("content-type", content_type)?;
    resp.insert_header("cache-control", "no-cache")?;
    resp.insert_header("x-tollgate-llm-model", target.label.as_str())?;
    resp.insert_header("x-request-id", ctx.request_id.as_str())?;
    for (k, v) in &ctx.response_headers {
        resp.append_header(k.clone(), v.as_str())?;
    }
    if !session.is_http2() {
        // Without a length or chunked framing Pingora would close the
        // connection while still announcing keep-alive.
        resp.insert_header("transfer-encoding", "chunked")?;
    }
    ctx.status = 200;
    session.write_response_header(Box::new(resp), false).await
}

/// Headers of an answer relayed from the provider.
pub(crate) fn answer_headers(ctx: &RequestCtx, label: &str, retry_after: Option<&str>) -> Vec<(String, String)> {
    let mut h = Vec::with_capacity(3 + ctx.response_headers.len());
    h.push(("x-tollgate-llm-model".to_string(), label.to_string()));
    h.push(("x-request-id".to_string(), ctx.request_id.clone()));
    if let Some(v) = retry_after {
        h.push(("retry-after".to_string(), v.to_string()));
    }
    h.extend(ctx.response_headers.iter().cloned());
    h
}

/// Keeps answer bytes for the access log when the target logs payloads.
pub(crate) fn log_response(ctx: &mut RequestCtx, bytes: &[u8]) {
    if let Some(p) = ctx.llm.as_mut().and_then(|f| f.payloads.as_mut()) {
        p.push_response(bytes);
    }
}

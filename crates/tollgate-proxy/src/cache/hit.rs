//! Answering from the cache: the stored answer rendered in the caller's
//! format, as JSON or as a whole stream (the same renderers live answers
//! use), with `X-Cache-Status: Hit`, `X-Cache-Key` and `X-Cache-Ttl`. A hit
//! reserves and charges nothing against token budgets: its rate-limit
//! headers show the budget as it stands. It is counted in the `ai_llm_*`
//! metrics with `cache_status="hit"` and no cost.

use std::sync::Arc;

use bytes::Bytes;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;
use tollgate_cache::{CachedAnswer, Clock, SystemClock};
use tollgate_llm::chat::Chat;
use tollgate_llm::completion::AnswerMeta;
use tollgate_llm::ingress::Request;

use crate::ctx::{LlmFacts, RequestCtx};
use crate::guard::{judge_answer, mask_answer, restore_answer, stream_for_caller};
use crate::limits::TokenLimitRt;
use crate::respond::{as_refs, send, PResult};
use crate::snapshot::AiProxyRt;

#[allow(clippy::too_many_arguments)] // the request's parts, each needed once
pub(crate) async fn serve(
    session: &mut Session,
    ctx: &mut RequestCtx,
    ai: &AiProxyRt,
    request: &Request,
    chat: &Chat,
    answer: CachedAnswer,
    key: &str,
    limit: Option<&TokenLimitRt>,
) -> PResult<()> {
    let now = SystemClock.now_ms();
    let meta = AnswerMeta {
        fallback_id: format!("chatcmpl-{}", ctx.request_id),
        request_id: ctx.request_id.clone(),
        echo: match request {
            Request::Responses(r) => Some(Arc::new(r.echo())),
            _ => None,
        },
        created: now / 1000,
        model: chat.model.clone(),
        client_wants_usage: chat.client_wants_usage,
    };
    ctx.llm = Some(LlmFacts {
        provider: answer.provider.clone(),
        target: answer.target.clone(),
        request_model: chat.model.clone(),
        response_model: Some(answer.model.clone()),
        request_format: ai.format_label(),
        stream: chat.stream,
        usage: answer.usage.map(|u| u.usage()),
        log_statistics: ai.targets.iter().any(|t| t.log_statistics),
        cache_status: "hit",
        // The answer is the 200 the provider once gave: the `code` label of
        // `ai_llm_requests_total` says so rather than staying empty.
        upstream_status: Some(200),
        ..LlmFacts::default()
    });
    let mut headers = vec![
        ("x-cache-key".to_string(), key.to_string()),
        ("x-cache-ttl".to_string(), (answer.expires_ms.saturating_sub(now) / 1000).to_string()),
        ("x-tollgate-llm-model".to_string(), answer.target.clone()),
        ("x-request-id".to_string(), ctx.request_id.clone()),
    ];
    if let Some(l) = limit.filter(|l| l.applies_to(&answer.provider)) {
        let who = ctx.identity(session, l.header_name.as_ref());
        ctx.response_headers.extend(l.peek_headers(&answer.provider, &who).await);
    }
    headers.extend(ctx.response_headers.iter().cloned());
    ctx.status = 200;
    let ingress = request.ingress();
    // Stored as the provider wrote it (the request's placeholders, the
    // answer unmasked): the answer-side guards apply as to a live answer.
    if chat.stream {
        return stream(session, stream_for_caller(ctx, ingress, answer.stream(ingress, &meta)), &headers).await;
    }
    let body = match judge_answer(ctx, ingress, mask_answer(ctx, answer.json(ingress, &meta))).await {
        Ok(b) => b,
        Err(e) => return crate::answer::error(session, ctx, &e, &[]).await,
    };
    send(session, 200, "application/json", restore_answer(ctx, body), &as_refs(&headers)).await
}

/// The whole stream at once, framed as live streams are.
async fn stream(session: &mut Session, body: Bytes, headers: &[(String, String)]) -> PResult<()> {
    let mut resp = ResponseHeader::build(200, Some(4 + headers.len()))?;
    resp.insert_header("content-type", "text/event-stream")?;
    resp.insert_header("cache-control", "no-cache")?;
    for (k, v) in headers {
        resp.append_header(k.clone(), v.as_str())?;
    }
    if !session.is_http2() {
        resp.insert_header("transfer-encoding", "chunked")?;
    }
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await
}

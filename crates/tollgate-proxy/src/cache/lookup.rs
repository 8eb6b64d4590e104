//! The cache's decision for one request, and its search. With
//! `cache_control`, `Cache-Control: no-store` bypasses the cache (nothing
//! read, nothing stored) and `no-cache` refreshes it (nothing read, the new
//! answer stored). Only requests that ask for determinism (`temperature =
//! 0`) or opt in (`x-tollgate-cache: on`, `cache_nondeterministic`) are
//! cached, never one whose last message is a tool result unless configured;
//! `x-tollgate-cache: off` opts out. Exact mode looks the request's key up;
//! semantic mode embeds its last messages and looks for the nearest prompt
//! of its namespace (after the exact key with `exact_caching`).

use std::future::Future;
use std::pin::Pin;

use pingora_proxy::Session;
use tollgate_cache::{exact_key, prompt_text, semantic_context, Admissibility, CachedAnswer, Clock, SystemClock};
use tollgate_llm::chat::Chat;
use tollgate_llm::ingress::Request;
use tollgate_llm::LlmError;

use crate::answer;
use crate::cache::pending::Pending;
use crate::cache::rt::{targets_digest, CacheRt};
use crate::cache::store::Call;
use crate::ctx::RequestCtx;
use crate::limits::TokenLimitRt;
use crate::llm::semantic::embed;
use crate::respond::PResult;
use crate::snapshot::{AiProxyRt, PluginRt, Slot};
use crate::upstream::Upstreams;

/// What the cache found for a request it may serve.
enum Found {
    Hit { answer: CachedAnswer, key: String },
    Miss { key: String, vector: Option<(String, Vec<f32>)> },
}

/// The route has the plugin.
pub(crate) fn applies(ctx: &RequestCtx) -> bool {
    let Some(snap) = ctx.snap.as_ref() else { return false };
    matches!(snap.plugin(Slot::Cache, ctx.route, ctx.service, ctx.consumer), Some(PluginRt::Cache(_)))
}

/// Looks `request` up when the route has the plugin: `Some` when the
/// request was answered here (a hit, or a failing cache with
/// `stop_on_failure`), `None` to go on to the providers.
pub(crate) async fn serve(
    ups: &Upstreams,
    session: &mut Session,
    ctx: &mut RequestCtx,
    ai: &AiProxyRt,
    request: &Request,
    limit: Option<&TokenLimitRt>,
) -> Option<PResult<()>> {
    let snap = ctx.snap.clone()?;
    let Some(PluginRt::Cache(rt)) = snap.plugin(Slot::Cache, ctx.route, ctx.service, ctx.consumer) else {
        return None;
    };
    let (chat, refresh) = match decide(session, rt, ai, request) {
        Ok(d) => d,
        Err(reason) => {
            tracing::debug!(request_id = %ctx.request_id, reason, "ai-semantic-cache: bypassed");
            mark(ctx, "bypass");
            return None;
        }
    };
    let namespace = namespace(ctx, rt, ai, &chat.model);
    match find(ups, ctx, rt, &chat, &namespace, refresh).await {
        Ok(Found::Hit { answer, key }) => {
            mark(ctx, "hit");
            let hit: Pin<Box<dyn Future<Output = PResult<()>> + Send + '_>> =
                Box::pin(crate::cache::hit::serve(session, ctx, ai, request, &chat, answer, &key, limit));
            Some(hit.await)
        }
        Ok(Found::Miss { key, vector }) => {
            mark(ctx, if refresh { "refresh" } else { "miss" });
            let pending =
                Pending { store: rt.store.clone(), key, vector, ttl_ms: rt.ttl_ms(), ingress: request.ingress() };
            ctx.cache = Some(Box::new(pending));
            None
        }
        Err(e) => failed(session, ctx, rt, &e).await,
    }
}

/// The cache could not be asked (Redis or the embeddings model failing):
/// serve uncached, or refuse with `stop_on_failure`.
async fn failed(session: &mut Session, ctx: &mut RequestCtx, rt: &CacheRt, e: &str) -> Option<PResult<()>> {
    tracing::warn!(request_id = %ctx.request_id, error = %e, "ai-semantic-cache: lookup failed");
    mark(ctx, "bypass");
    if !rt.config.stop_on_failure {
        return None;
    }
    let err = LlmError::new(500, "cache_error", "the answer cache is unavailable").with_code("cache_unavailable");
    Some(answer::error(session, ctx, &err, &[]).await)
}

/// Records the verdict for the answer's header, metrics and the access log.
fn mark(ctx: &mut RequestCtx, status: &'static str) {
    ctx.cache_status = status;
    let header = match status {
        "hit" => "Hit",
        "miss" => "Miss",
        "refresh" => "Refresh",
        _ => "Bypass",
    };
    ctx.response_headers.push(("x-cache-status".to_string(), header.to_string()));
}

/// Whether the request may use the cache: its neutral form and whether to
/// refresh, or why it bypasses.
fn decide(session: &Session, rt: &CacheRt, ai: &AiProxyRt, request: &Request) -> Result<(Chat, bool), &'static str> {
    let headers = &session.req_header().headers;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
    let opt = header("x-tollgate-cache");
    if opt.as_deref() == Some("off") {
        return Err("x-tollgate-cache: off");
    }
    let control = if rt.config.cache_control { header("cache-control").unwrap_or_default() } else { String::new() };
    let directive = |d: &str| control.split(',').any(|p| p.trim() == d);
    if directive("no-store") {
        return Err("cache-control: no-store");
    }
    // The key is made with the first target's model and defaults: what the
    // request asks of the route, whichever target answers.
    let defaults = ai.targets.first().map(|t| t.model.clone()).unwrap_or_default();
    let chat = request.to_chat(&defaults).map_err(|_| "not translatable")?;
    let opted_in = rt.config.cache_nondeterministic || opt.as_deref() == Some("on");
    match Admissibility::of(&chat, opted_in, rt.config.cache_tool_results) {
        Admissibility::Cacheable => Ok((chat, directive("no-cache"))),
        Admissibility::Nondeterministic => Err("not deterministic (temperature is not 0) and not opted in"),
        Admissibility::ToolResult => Err("the last message is a tool result"),
        Admissibility::Uncarried => Err("fields the key cannot tell apart"),
    }
}

/// Entries are searched within the plugin, the route, its targets, the
/// model and, unless shared, the consumer.
fn namespace(ctx: &RequestCtx, rt: &CacheRt, ai: &AiProxyRt, model: &str) -> String {
    let route = ctx.snap.as_ref().zip(ctx.route).map(|(s, r)| s.config.routes[r].name.as_str()).unwrap_or("");
    let consumer = if rt.config.scope == "shared" { "*" } else { ctx.consumer_name().unwrap_or("-") };
    let targets = targets_digest(&ai.targets);
    format!("{}|route={route}|targets={targets}|model={model}|consumer={consumer}", rt.scope)
}

/// Semantic mode searches a narrower namespace: the embeddings model (its
/// vectors compare only with its own) and what the embedded text leaves out
/// (tools, response format, sampling fields, the system prompt unless
/// ignored), so a near prompt with other tools or format is never a hit.
fn semantic_namespace(namespace: &str, rt: &CacheRt, chat: &Chat) -> String {
    let context = semantic_context(chat, rt.config.ignore_system_prompts);
    format!("{namespace}|embed={}|context={}", rt.embedder_id, &context[..16])
}

/// The exact key, then (semantic mode) the nearest prompt; a refresh reads
/// nothing but still embeds, to store the answer's vector.
async fn find(
    ups: &Upstreams,
    ctx: &RequestCtx,
    rt: &CacheRt,
    chat: &Chat,
    namespace: &str,
    refresh: bool,
) -> Result<Found, String> {
    let key = exact_key(namespace, chat);
    let now = SystemClock.now_ms();
    let exact = rt.embedder.is_none() || rt.config.exact_caching;
    if exact && !refresh {
        if let Some(answer) = rt.store.get(&key, now).await? {
            return Ok(Found::Hit { answer, key });
        }
    }
    let (Some(embedder), Some(text)) = (&rt.embedder, prompt_text(chat, rt.text_options())) else {
        return Ok(Found::Miss { key, vector: None });
    };
    // Boxed: the embeddings call's future is deep (the upstream exchange).
    let texts = [text];
    let embedding: Call<'_, Vec<Vec<f32>>> = Box::pin(embed(ups, embedder, &texts, &ctx.request_id));
    let vector = embedding.await?.into_iter().next();
    let Some(vector) = vector else {
        return Err("the embeddings model returned no vector".into());
    };
    let space = semantic_namespace(namespace, rt, chat);
    if !refresh {
        if let Some((answer, key)) = rt.store.nearest(&space, &vector, rt.config.vectordb.threshold, now).await? {
            return Ok(Found::Hit { answer, key });
        }
    }
    Ok(Found::Miss { key, vector: Some((space, vector)) })
}

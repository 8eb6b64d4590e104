//! LLM routes: the gateway owns the upstream exchange rather than Pingora's
//! proxy loop, so the request body is parsed and translated (Pingora's 64 KiB
//! retry buffer never applies), each attempt goes through the upstream
//! layer's pooled connector, and answers are read, measured and relayed in
//! the caller's format, streams event by event.
//!
//! `serve` reads what the route was asked (generation, a models list, a token
//! count), `ask` parses the request once, `failover` runs the loop over the
//! plugin's targets with every balancer update in one place, `attempt` is one
//! try at one target, `call` builds and sends the provider request, and
//! `relay` relays streams.

mod ask;
mod attempt;
mod call;
mod failover;
pub mod gcp_auth;
mod relay;
pub mod semantic;
mod spend;
pub mod target;

use bytes::Bytes;
use pingora_proxy::Session;
use tollgate_llm::ingress::anthropic::{count_tokens_body, MessagesRequest};
use tollgate_llm::ingress::{Ingress, ModelEntry};
use tollgate_llm::provider::Call;
use tollgate_llm::{LlmError, ModelDefaults, Provider};

use crate::answer;
use crate::body::read_bounded;
use crate::ctx::RequestCtx;
use crate::limits::TokenLimitRt;
use crate::llm::ask::{Ask, CallerHeaders};
use crate::llm::attempt::call_ids;
use crate::llm::call::{send_request, upstream_error};
use crate::llm::target::Api;
use crate::respond::{as_refs, send, PResult};
use crate::snapshot::AiProxyRt;
use crate::upstream::{read_all, release, Timeouts, Upstreams};

/// What a request on an LLM route asks, by its method and the end of its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `POST`: a generation (or embeddings, or a preserved native call).
    Generate,
    /// `GET .../models`: the models this route serves.
    ListModels,
    /// `GET .../models/{id}`: one of them.
    Model(String),
    /// `POST .../messages/count_tokens` on Anthropic-format routes.
    CountTokens,
}

impl Operation {
    /// `None` for a method the route does not serve.
    pub fn of(method: &str, path: &str, api: Api) -> Option<Operation> {
        let path = path.trim_end_matches('/');
        match method {
            "GET" if path.ends_with("/models") => Some(Operation::ListModels),
            "GET" => {
                let (rest, id) = path.rsplit_once('/')?;
                (rest.ends_with("/models") && !id.is_empty()).then(|| Operation::Model(id.to_string()))
            }
            "POST" if api == Api::Generate(Ingress::AnthropicMessages) && path.ends_with("/count_tokens") => {
                Some(Operation::CountTokens)
            }
            "POST" => Some(Operation::Generate),
            _ => None,
        }
    }
}

/// What the pipeline hands over: the plugin, the route's token limit and
/// what authentication already read of the body.
pub struct LlmRequest<'a> {
    pub ai: &'a AiProxyRt,
    pub limit: Option<&'a TokenLimitRt>,
    /// The body, when key-auth had to read it (`key_in_body`).
    pub body: Option<Bytes>,
    /// The body field that held the caller's key, removed before any provider sees it.
    pub body_key: Option<String>,
    pub max_body: usize,
    /// The guardrail plugins the request runs before any provider sees it.
    pub guards: crate::guard::rt::Chain<'a>,
}

/// Serves one request on an LLM route. Every outcome is answered to the
/// client here; an `Err` means the client itself went away.
pub async fn serve(ups: &Upstreams, session: &mut Session, ctx: &mut RequestCtx, req: LlmRequest<'_>) -> PResult<()> {
    let ai = req.ai;
    let method = session.req_header().method.as_str().to_string();
    let path = session.req_header().uri.path().to_string();
    let Some(op) = Operation::of(&method, &path, ai.api) else {
        let err = LlmError::new(405, "invalid_request_error", "this route takes POST (and GET for its models)");
        return answer::error(session, ctx, &err, &[("allow", "GET, POST")]).await;
    };
    match op {
        Operation::ListModels => return list_models(session, ctx, ai).await,
        Operation::Model(id) => return one_model(session, ctx, ai, &id).await,
        Operation::Generate | Operation::CountTokens => {}
    }
    if !is_json(session) {
        let err = LlmError::invalid_request("Content-Type must be application/json");
        answer::error(session, ctx, &err, &[]).await?;
        session.set_keepalive(None);
        return Ok(());
    }
    let body = match req.body {
        Some(b) => b,
        None => match read_bounded(session, req.max_body, ctx.body_deadline()).await {
            Ok(b) => b,
            Err(e) => return crate::answer::refuse_body(session, ctx, e).await,
        },
    };
    let headers = CallerHeaders {
        anthropic_version: header(session, "anthropic-version"),
        anthropic_beta: header(session, "anthropic-beta"),
    };
    // Guards run before count_tokens too: it sends the prompt to an Anthropic target.
    let body = match ai.api {
        Api::Generate(ingress) => match crate::guard::run(&req.guards, ctx, ingress, body).await {
            Ok(b) => b,
            Err(e) => return answer::error(session, ctx, &e, &[]).await,
        },
        _ => body,
    };
    if op == Operation::CountTokens {
        return count_tokens(ups, session, ctx, ai, &body, headers).await;
    }
    let ask = match Ask::parse(ai.api, &body, req.body_key.as_deref(), headers) {
        Ok(a) => a,
        Err(e) => return answer::error(session, ctx, &e, &[]).await,
    };
    if let (Ask::Generate(request), true) = (&ask, crate::cache::lookup::applies(ctx)) {
        // Boxed: only routes with the cache pay for its future.
        let lookup: std::pin::Pin<Box<dyn std::future::Future<Output = Option<PResult<()>>> + Send + '_>> =
            Box::pin(crate::cache::lookup::serve(ups, session, ctx, ai, request, req.limit));
        if let Some(answered) = lookup.await {
            return answered;
        }
    }
    failover::serve(ups, session, ctx, ai, req.limit, ask).await
}

fn is_json(session: &Session) -> bool {
    session
        .req_header()
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"))
}

fn header(session: &Session, name: &str) -> Option<String> {
    let v = session.req_header().headers.get(name)?.to_str().ok()?;
    // Only sane values travel on to a provider.
    (v.len() <= 1024 && v.bytes().all(|b| b.is_ascii_graphic() || b == b' ')).then(|| v.to_string())
}

/// The models a route serves: its targets' pinned model names, in order,
/// once each (a target without a pinned model serves what callers name and
/// lists nothing).
fn models(ai: &AiProxyRt) -> Vec<ModelEntry> {
    let mut out: Vec<ModelEntry> = Vec::new();
    for t in &ai.targets {
        if let Some(name) = &t.model.name {
            if !out.iter().any(|m| &m.id == name) {
                out.push(ModelEntry { id: name.clone(), provider: t.provider.clone() });
            }
        }
    }
    out
}

/// The caller's format (OpenAI's list for chat, Responses and embeddings routes).
fn list_format(ai: &AiProxyRt) -> Ingress {
    match ai.api {
        Api::Generate(ingress) => ingress,
        _ => Ingress::OpenAiChat,
    }
}

async fn list_models(session: &mut Session, ctx: &mut RequestCtx, ai: &AiProxyRt) -> PResult<()> {
    let body = list_format(ai).models_body(&models(ai));
    send_json(session, ctx, 200, body).await
}

async fn one_model(session: &mut Session, ctx: &mut RequestCtx, ai: &AiProxyRt, id: &str) -> PResult<()> {
    let found: Vec<ModelEntry> = models(ai).into_iter().filter(|m| m.id == id).collect();
    if found.is_empty() {
        let err = LlmError::new(404, "invalid_request_error", format!("model '{id}' is not served on this route"))
            .with_code("model_not_found");
        return answer::error(session, ctx, &err, &[]).await;
    }
    // One model: the list's single element, alone.
    let list = list_format(ai).models_body(&found);
    let body = serde_json::from_slice::<serde_json::Value>(&list)
        .ok()
        .and_then(|v| v.get("data").and_then(|d| d.get(0)).cloned())
        .map(|v| Bytes::from(v.to_string()))
        .unwrap_or(list);
    send_json(session, ctx, 200, body).await
}

async fn send_json(session: &mut Session, ctx: &mut RequestCtx, status: u16, body: Bytes) -> PResult<()> {
    ctx.status = status;
    let mut headers = vec![("x-request-id".to_string(), ctx.request_id.clone())];
    headers.extend(ctx.response_headers.iter().cloned());
    send(session, status, "application/json", body, &as_refs(&headers)).await
}

/// `count_tokens`: Anthropic counts for Anthropic targets; for the others the
/// gateway's tokenizer estimates, as it does for token budgets.
async fn count_tokens(
    ups: &Upstreams,
    session: &mut Session,
    ctx: &mut RequestCtx,
    ai: &AiProxyRt,
    body: &[u8],
    headers: CallerHeaders,
) -> PResult<()> {
    let mut request = match MessagesRequest::parse_count_tokens(body) {
        Ok(r) => r,
        Err(e) => return answer::error(session, ctx, &e, &[]).await,
    };
    let Some(pick) = ai.balancer.pick(None, &[]) else {
        return send_json(session, ctx, 200, count_tokens_body(request.prompt_estimate())).await;
    };
    let target = ai.targets[pick.index()].clone();
    drop(pick);
    if target.kind != Provider::Anthropic {
        return send_json(session, ctx, 200, count_tokens_body(request.prompt_estimate())).await;
    }
    request.version = headers.anthropic_version;
    request.beta = headers.anthropic_beta;
    // Only the model is set: count_tokens takes no max_tokens or sampling fields.
    let pinned = ModelDefaults { name: target.model.name.clone(), ..ModelDefaults::default() };
    let (body, model) = match request.native_body(&pinned, &[]) {
        Ok(b) => b,
        Err(e) => return answer::error(session, ctx, &e, &[]).await,
    };
    let mut call_headers = vec![(
        "anthropic-version",
        request.version.clone().unwrap_or_else(|| target.options.anthropic_version.clone()),
    )];
    if let Some(beta) = &request.beta {
        call_headers.push(("anthropic-beta", beta.clone()));
    }
    let call = Call { body, path: Some("/count_tokens".into()), headers: call_headers, model, ..Call::default() };
    let t = std::time::Duration::from_millis(ai.config.read_timeout);
    let timeouts = Timeouts { connect: std::time::Duration::from_millis(ai.config.connect_timeout), read: t, write: t };
    let (mut upstream, peer) = match send_request(ups, &target, &call, &call_ids(ctx), &timeouts).await {
        Ok(x) => x,
        Err(e) => return answer::error(session, ctx, &upstream_error(&e, &target.provider), &[]).await,
    };
    let status = upstream.response_header().map(|h| h.status.as_u16()).unwrap_or(502);
    let answer = match read_all(&mut upstream).await {
        Ok(b) => b,
        Err(msg) => {
            let err = LlmError::new(
                502,
                "upstream_error",
                format!("provider {} broke off its answer: {msg}", target.provider),
            );
            return answer::error(session, ctx, &err, &[]).await;
        }
    };
    release(ups, upstream, &peer).await;
    // Anthropic's answer, or its error, as Anthropic's callers read it.
    send_json(session, ctx, status, answer).await
}

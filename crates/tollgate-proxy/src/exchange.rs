//! The LLM upstream exchange, owned by the gateway rather than Pingora's proxy
//! loop: the request body is translated (so Pingora's 64 KiB retry buffer never
//! applies), sent through Pingora's pooled connector, and the answer is read,
//! measured and translated back, streams event by event.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use pingora_core::connectors::http::Connector;
use pingora_core::protocols::http::client::HttpSession;
use pingora_core::protocols::http::v1::client::{http_req_header_to_wire, HttpSession as Http1Session};
use pingora_core::upstreams::peer::{HttpPeer, ALPN};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;
use tokio::io::AsyncWriteExt;
use tollgate_balance::Success;
use tollgate_llm::completion::AnswerMeta;
use tollgate_llm::embeddings::EmbeddingsMeta;
use tollgate_llm::provider::{self, Call};
use tollgate_llm::stream::ChatStream;
use tollgate_llm::{embeddings, ChatRequest, LlmError, Usage};

use crate::ctx::{LlmFacts, Payloads, RequestCtx};
use crate::limits::{identity, Admission, Costs, TokenLimitRt};
use crate::resolver::Resolver;
use crate::respond::{as_refs, send, PResult};
use crate::metrics;
use crate::snapshot::AiProxyRt;
use crate::target::{Credential, Endpoint, LlmTarget};

/// Largest non-streamed provider answer the gateway buffers (to read its usage).
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;
/// How long an idle pooled upstream connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(60);

/// Shared upstream machinery.
pub struct Upstreams {
    pub connector: Connector,
    pub resolver: Resolver,
}

impl Upstreams {
    pub fn new() -> Self {
        Upstreams {
            connector: Connector::new(None),
            resolver: Resolver::default(),
        }
    }
}

impl Default for Upstreams {
    fn default() -> Self {
        Self::new()
    }
}

/// What went wrong talking to the provider, before the answer started.
#[derive(Debug)]
pub(crate) enum UpstreamError {
    Resolve(String),
    Connect(String),
    /// Writing the request or reading the answer's header failed.
    Exchange { msg: String, invalid_header: bool },
    Timeout(String),
    /// The provider credential could not be obtained (a service-account token).
    Auth(String),
}

impl UpstreamError {
    /// The failover criterion this failure falls under.
    fn criterion(&self) -> &'static str {
        match self {
            UpstreamError::Timeout(_) => "timeout",
            UpstreamError::Exchange { invalid_header: true, .. } => "invalid_header",
            _ => "error",
        }
    }

    pub(crate) fn to_llm(&self, provider: &str) -> LlmError {
        match self {
            UpstreamError::Resolve(m) => LlmError::new(
                502,
                "upstream_error",
                format!("provider {provider} could not be resolved: {m}"),
            ),
            UpstreamError::Connect(m) => LlmError::new(
                502,
                "upstream_error",
                format!("provider {provider} could not be reached: {m}"),
            ),
            UpstreamError::Exchange { msg, .. } => LlmError::new(
                502,
                "upstream_error",
                format!("provider {provider} failed before answering: {msg}"),
            ),
            UpstreamError::Auth(m) => LlmError::new(
                502,
                "upstream_error",
                format!("provider {provider} could not be authenticated: {m}"),
            ),
            UpstreamError::Timeout(m) => LlmError::new(
                504,
                "upstream_timeout",
                format!("provider {provider} did not answer in time: {m}"),
            ),
        }
    }
}

/// What the caller asked, parsed once and translated for the chosen target.
enum Ask {
    /// An OpenAI chat completion request (`llm/v1/chat`).
    Chat(ChatRequest),
    /// An OpenAI embeddings request (`llm/v1/embeddings`), translated per provider.
    Embeddings(Vec<u8>),
    /// A native request forwarded unchanged (`preserve`).
    Preserve(Vec<u8>),
}

impl Ask {
    fn parse(route_type: &str, body: &[u8], body_key: Option<&str>) -> Result<Ask, LlmError> {
        Ok(match route_type {
            "preserve" => Ask::Preserve(without_field(body, body_key)),
            "llm/v1/embeddings" => Ask::Embeddings(without_field(body, body_key)),
            _ => {
                let mut request = ChatRequest::parse(body)?;
                if let Some(k) = body_key {
                    request.remove_field(k);
                }
                Ask::Chat(request)
            }
        })
    }

    /// The upstream call for `target`, in its provider's format (and, for
    /// embeddings, what reading the answer needs to know of the request).
    fn call_for(&self, target: &LlmTarget) -> Result<(Call, Option<EmbeddingsMeta>), LlmError> {
        match self {
            Ask::Chat(request) => {
                let extra: Vec<(&str, &str)> = match &target.credential {
                    Credential::Body { name, value } => vec![(name.as_str(), value.as_str())],
                    _ => Vec::new(),
                };
                Ok((provider::prepare(target.kind, request, &target.model, &target.options, &extra)?, None))
            }
            Ask::Embeddings(body) => {
                let e = embeddings::prepare(target.kind, body, &target.model, &target.options)?;
                let call = Call {
                    body: with_body_credential(e.body, &target.credential)?,
                    path: e.path,
                    headers: Vec::new(),
                    model: e.model,
                    stream: false,
                    client_wants_usage: false,
                    ..Call::default()
                };
                Ok((call, Some(e.meta)))
            }
            Ask::Preserve(body) => {
                let mut call = provider::preserve(target.kind, body, target.model.name.as_deref(), &target.options);
                call.body = with_body_credential(call.body, &target.credential)?;
                Ok((call, None))
            }
        }
    }

    /// Prompt tokens to reserve against a token budget before the answer.
    fn prompt_estimate(&self, embeddings: Option<&EmbeddingsMeta>) -> u64 {
        match (self, embeddings) {
            (Ask::Chat(request), _) => tollgate_llm::tokens::estimate_prompt_tokens(request),
            (_, Some(e)) => e.estimated_prompt_tokens,
            // A native body: its text by the tokenizer would need a parse per
            // format; a byte count over-estimates a little, which errs on the
            // budget's side.
            (Ask::Embeddings(body) | Ask::Preserve(body), None) => (body.len() as u64).div_ceil(3),
        }
    }

    /// The request as the caller sent it (its own key removed), for `log_payloads`.
    fn logged_body(&self) -> Vec<u8> {
        match self {
            Ask::Chat(request) => serde_json::to_vec(request.body()).unwrap_or_default(),
            Ask::Embeddings(body) | Ask::Preserve(body) => body.clone(),
        }
    }

    fn max_completion_tokens(&self) -> Option<u64> {
        match self {
            Ask::Chat(request) => request.max_completion_tokens(),
            Ask::Embeddings(_) => Some(0),
            Ask::Preserve(_) => None,
        }
    }
}

/// The body without the caller's key (`key_in_body`): a client credential
/// never travels upstream, whatever the route type. A body that is not a JSON
/// object has no such field and passes as it is.
fn without_field(body: &[u8], field: Option<&str>) -> Vec<u8> {
    let Some(field) = field else {
        return body.to_vec();
    };
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body) {
        Ok(mut v) => match v.remove(field) {
            Some(_) => serde_json::to_vec(&v).unwrap_or_else(|_| body.to_vec()),
            None => body.to_vec(),
        },
        Err(_) => body.to_vec(),
    }
}

/// A JSON body with the target's body-located credential set at its top level
/// (`auth.param_location = "body"`); other credentials leave it unchanged.
fn with_body_credential(body: Vec<u8>, credential: &Credential) -> Result<Vec<u8>, LlmError> {
    let Credential::Body { name, value } = credential else {
        return Ok(body);
    };
    let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&body)
        .map_err(|_| LlmError::invalid_request("the request body must be a JSON object to carry the provider credential"))?;
    v.insert(name.clone(), serde_json::Value::String(value.clone()));
    serde_json::to_vec(&v).map_err(|e| LlmError::new(500, "internal_error", format!("encoding request: {e}")))
}

/// Serves one request on an LLM route: chat, embeddings or a preserved native
/// request. Every outcome is answered to the client here; an `Err` means the
/// client itself went away.
pub async fn serve_llm(
    ups: &Upstreams,
    session: &mut Session,
    ctx: &mut RequestCtx,
    ai: &AiProxyRt,
    limit: Option<&TokenLimitRt>,
    body: &[u8],
    body_key: Option<&str>,
) -> PResult<()> {
    // Every target of a plugin serves one route type (`check` makes sure).
    let ask = match Ask::parse(&ai.targets[0].route_type, body, body_key) {
        Ok(a) => a,
        Err(e) => return send_llm_error(session, ctx, &e).await,
    };
    let hash_key = hash_key(session, ctx, ai);
    let mut preferred = semantic_choice(ups, ai, &ask, ctx).await;
    let mut tried: Vec<usize> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    let mut admitted = false;
    loop {
        // The semantic choice goes first (while available); then the balancer.
        let first = preferred.take().and_then(|p| {
            let others: Vec<usize> = (0..ai.targets.len()).filter(|i| *i != p).collect();
            ai.balancer.pick(None, &others)
        });
        let Some(pick) = first.or_else(|| ai.balancer.pick(hash_key.as_deref(), &tried)) else {
            // Nothing (left) to try: every target is cooling down or its circuit is open.
            let err = LlmError::new(
                503,
                "service_unavailable",
                "no LLM target is available: every target is failing or cooling down; retry later",
            )
            .with_code("no_target_available");
            if let Some(f) = ctx.llm.as_mut() {
                f.failed_attempts = std::mem::take(&mut failed);
            }
            return send_llm_error(session, ctx, &err).await;
        };
        let idx = pick.index();
        tried.push(idx);
        let target = ai.targets[idx].clone();
        let (prepared, embeddings_meta) = match ask.call_for(&target) {
            Ok(p) => p,
            // The caller's request cannot be served as sent: a client error,
            // never a reason to try another target.
            Err(e) => return send_llm_error(session, ctx, &e).await,
        };
        ctx.llm = Some(LlmFacts {
            provider: target.provider.clone(),
            target: target.label.clone(),
            request_model: prepared.model.clone(),
            stream: prepared.stream,
            log_statistics: target.log_statistics,
            input_cost: target.input_cost,
            output_cost: target.output_cost,
            failed_attempts: failed.clone(),
            payloads: target.log_payloads.then(|| Payloads::request(&ask.logged_body())),
            ..LlmFacts::default()
        });
        // The token budget is reserved once, against the first target's
        // provider; the real usage settles it whichever target answers.
        if !admitted {
            admitted = true;
            if let Some(refused) = admit(session, ctx, limit, &ask, &target, embeddings_meta.as_ref()).await {
                return send_llm_error(session, ctx, &refused).await;
            }
        }
        let retries_left = (tried.len() as u32) <= ai.config.retries;
        let may_fail_over = retries_left
            && (0..ai.targets.len()).any(|i| !tried.contains(&i) && ai.balancer.is_available(i));
        let attempt = Attempt {
            ups,
            ai,
            idx,
            target: &target,
            ask: &ask,
            prepared: &prepared,
            embeddings_meta: embeddings_meta.as_ref(),
            may_fail_over,
        };
        if let Some(span) = ctx.span.as_mut() {
            span.start_call();
        }
        let outcome = attempt.run(session, ctx).await;
        if let Some(span) = ctx.span.as_mut() {
            let failure = match &outcome {
                Outcome::FailOver(reason) => Some(reason.as_str()),
                Outcome::Answered(_) => None,
            };
            span.end_call(&target, ctx.llm.as_ref(), failure);
        }
        match outcome {
            Outcome::Answered(r) => return r,
            Outcome::FailOver(reason) => {
                tracing::info!(request_id = %ctx.request_id, target = %target.label, %reason, "failing over to the next target");
                metrics::record_failover(&target.label, &reason);
                failed.push(format!("{}: {reason}", target.label));
            }
        }
        drop(pick);
    }
}

/// The target semantic balancing chooses for this request, if the plugin
/// balances by meaning and the embeddings model answered.
async fn semantic_choice(ups: &Upstreams, ai: &AiProxyRt, ask: &Ask, ctx: &RequestCtx) -> Option<usize> {
    let (Some(sem), Ask::Chat(request)) = (&ai.semantic, ask) else {
        return None;
    };
    match sem.choose(ups, request, &ctx.request_id).await {
        Ok(choice) => choice,
        Err(e) => {
            // Balance without semantics rather than fail the request.
            tracing::warn!(request_id = %ctx.request_id, error = %e, "semantic routing: embeddings failed");
            None
        }
    }
}

/// The consistent-hashing key: the configured header, else the consumer.
fn hash_key(session: &Session, ctx: &RequestCtx, ai: &AiProxyRt) -> Option<Vec<u8>> {
    if ai.config.algorithm != "consistent-hashing" {
        return None;
    }
    if let Some(v) = session.req_header().headers.get(ai.config.hash_on_header.as_str()) {
        return Some(v.as_bytes().to_vec());
    }
    ctx.consumer_name().map(|c| c.as_bytes().to_vec())
}

/// Reserves the request's estimated tokens; `Some` is the refusal to answer.
async fn admit(
    session: &Session,
    ctx: &mut RequestCtx,
    limit: Option<&TokenLimitRt>,
    ask: &Ask,
    target: &LlmTarget,
    embeddings_meta: Option<&EmbeddingsMeta>,
) -> Option<LlmError> {
    let limit = limit.filter(|l| l.applies_to(&target.provider))?;
    let prompt = ask.prompt_estimate(embeddings_meta);
    let cap = ask.max_completion_tokens().or(target.model.max_tokens);
    let Some(snap) = ctx.snap.clone() else {
        return Some(LlmError::new(500, "internal_error", "no config"));
    };
    let who = identity(&snap, session, ctx, limit.config.header_name.as_deref());
    let costs = Costs { input: target.input_cost, output: target.output_cost };
    match limit.admit(&target.provider, &who, prompt, cap, costs).await {
        Admission::Unlimited => None,
        Admission::Admitted { held, headers } => {
            ctx.held_limit = held;
            ctx.response_headers.extend(headers);
            None
        }
        Admission::Refused { status, message, headers } => {
            ctx.response_headers.extend(headers);
            Some(LlmError::new(status, "rate_limit_error", message).with_code("rate_limit_exceeded"))
        }
    }
}

/// How one attempt at one target ended.
enum Outcome {
    /// The client got an answer (success or a final error), or went away.
    Answered(PResult<()>),
    /// Failed before anything reached the client, in a way the failover
    /// criteria cover, and another target may be tried; the reason is a
    /// criterion name (`timeout`, `http_503`, ...).
    FailOver(String),
}

/// One attempt at one target.
struct Attempt<'a> {
    ups: &'a Upstreams,
    ai: &'a AiProxyRt,
    idx: usize,
    target: &'a LlmTarget,
    ask: &'a Ask,
    prepared: &'a Call,
    embeddings_meta: Option<&'a EmbeddingsMeta>,
    /// Another target could take over if this one fails.
    may_fail_over: bool,
}

impl Attempt<'_> {
    fn fails_over_on(&self, criterion: &str) -> bool {
        self.may_fail_over && self.ai.config.failover_criteria.iter().any(|c| c == criterion)
    }

    async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> Outcome {
        let Attempt { ups, ai, idx, target, ask, prepared, embeddings_meta, .. } = *self;
        let timeouts = Timeouts {
            connect: Duration::from_millis(ai.config.connect_timeout),
            read: Duration::from_millis(ai.config.read_timeout),
            write: Duration::from_millis(ai.config.write_timeout),
        };
        let sent_at = Instant::now();
        let (mut upstream, peer) =
            match send_request(ups, target, prepared, &CallIds::of(ctx), &timeouts).await {
                Ok(x) => x,
                Err(e) => {
                    ai.balancer.failure(idx);
                    let criterion = e.criterion();
                    if self.fails_over_on(criterion) {
                        return Outcome::FailOver(criterion.to_string());
                    }
                    let err = e.to_llm(&target.provider);
                    ctx.note_error(&err.message);
                    return Outcome::Answered(send_llm_error(session, ctx, &err).await);
                }
            };
        let Some(resp) = upstream.response_header() else {
            let err = LlmError::new(502, "upstream_error", "provider answer has no header");
            return Outcome::Answered(send_llm_error(session, ctx, &err).await);
        };
        let status = resp.status.as_u16();
        let content_type = resp
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let is_json = content_type.starts_with("application/json");
        let retry_after = resp
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok().map(str::to_string));
        if let Some(f) = ctx.llm.as_mut() {
            f.upstream_status = Some(status);
        }
        if !(200..300).contains(&status) {
            // A 429 with Retry-After rests the target for that long (when
            // another target can serve meanwhile: resting the only one would
            // just turn the provider's 429 into our 503); server errors count
            // towards its circuit breaker.
            match retry_after.as_deref().and_then(retry_after_duration) {
                Some(rest) if status == 429 && ai.targets.len() > 1 => ai.balancer.cool_down(idx, rest),
                _ if status >= 500 || status == 429 => ai.balancer.failure(idx),
                _ => {}
            }
            let criterion = format!("http_{status}");
            if self.fails_over_on(&criterion) {
                // Read the refusal to its end so the connection can be reused.
                if read_all(&mut upstream).await.is_ok() {
                    finish_upstream(ups, upstream, &peer).await;
                }
                return Outcome::FailOver(criterion);
            }
        }
        let meta = AnswerMeta {
            fallback_id: format!("chatcmpl-{}", ctx.request_id),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            model: prepared.model.clone(),
            client_wants_usage: prepared.client_wants_usage,
            request_id: ctx.request_id.clone(),
            echo: None,
        };
        let preserve = matches!(ask, Ask::Preserve(_));

        // A streamed call answers in the provider's stream format (SSE,
        // newline-delimited JSON or AWS frames); a JSON answer to it is read whole.
        if (200..300).contains(&status) && prepared.stream && !is_json {
            let (stream, content_type) = if preserve {
                (provider::observe(target.kind, meta), content_type.as_str())
            } else {
                (provider::stream(target.kind, meta), "text/event-stream")
            };
            let prompt = || ask.prompt_estimate(None);
            let relay = Relay { target, prompt_estimate: &prompt, content_type, native: preserve, sent_at };
            let (r, completed) = relay_stream(session, ctx, &mut upstream, stream, relay).await;
            finish_upstream(ups, upstream, &peer).await;
            if completed {
                report_success(ai, idx, ctx);
            } else if !ctx.llm.as_ref().is_some_and(|f| f.client_cancelled) {
                ai.balancer.failure(idx);
            }
            return Outcome::Answered(r);
        }

        // A JSON answer (or an error): read it whole, then answer with Content-Length.
        let answer = match read_all(&mut upstream).await {
            Ok(b) => b,
            Err(msg) => {
                ai.balancer.failure(idx);
                if self.fails_over_on("error") {
                    return Outcome::FailOver("error".into());
                }
                let err = LlmError::new(
                    502,
                    "upstream_error",
                    format!("provider {} broke off its answer: {msg}", target.provider),
                );
                return Outcome::Answered(send_llm_error(session, ctx, &err).await);
            }
        };
        let done_at = Instant::now();
        finish_upstream(ups, upstream, &peer).await;

        if preserve {
            // The provider's own answer, error or not, as it sent it.
            if (200..300).contains(&status) {
                let (usage, model) = provider::observe_answer(target.kind, &answer, &meta);
                if let Some(f) = ctx.llm.as_mut() {
                    f.usage = usage;
                    f.response_model = model;
                    f.latency = Some(done_at - sent_at);
                }
                report_success(ai, idx, ctx);
            } else {
                ctx.note_error(&format!("provider {} answered {status}", target.provider));
            }
            ctx.status = status;
            log_response(ctx, &answer);
            let headers = answer_headers(ctx, &target.label, retry_after);
            let ct = if content_type.is_empty() { "application/octet-stream" } else { content_type.as_str() };
            return Outcome::Answered(send(session, status, ct, answer, &as_refs(&headers)).await);
        }

        if (200..300).contains(&status) {
            let answer = match embeddings_meta {
                Some(e) => embeddings::answer(target.kind, answer, e),
                None => provider::answer(target.kind, answer, &meta),
            };
            let answer = match answer {
                Ok(a) => a,
                Err(err) => {
                    // A 200 that is not an answer: the provider is broken.
                    ai.balancer.failure(idx);
                    if self.fails_over_on("invalid_header") || self.fails_over_on("error") {
                        return Outcome::FailOver("error".into());
                    }
                    return Outcome::Answered(send_llm_error(session, ctx, &err).await);
                }
            };
            if let Some(f) = ctx.llm.as_mut() {
                f.usage = answer.usage.or_else(|| {
                    // The provider reported none (some OpenAI-compatible
                    // servers): both sides by the tokenizer, marked estimated.
                    f.usage_estimated = true;
                    let prompt = ask.prompt_estimate(embeddings_meta);
                    let completion = tollgate_llm::tokens::count_text(&answer_text(&answer.body));
                    Some(Usage {
                        prompt_tokens: prompt,
                        completion_tokens: completion,
                        total_tokens: prompt + completion,
                        cached_tokens: 0,
                        ..Usage::default()
                    })
                });
                f.response_model = answer.model;
                f.latency = Some(done_at - sent_at);
            }
            report_success(ai, idx, ctx);
            ctx.status = status;
            log_response(ctx, &answer.body);
            let headers = answer_headers(ctx, &target.label, None);
            return Outcome::Answered(send(session, status, "application/json", answer.body, &as_refs(&headers)).await);
        }

        // The provider refused: keep its status and message, in OpenAI's shape.
        let err = provider::error(target.kind, status, &answer);
        ctx.note_error(&err.message);
        ctx.status = status;
        log_response(ctx, &err.body());
        let headers = answer_headers(ctx, &target.label, retry_after);
        Outcome::Answered(send(session, status, "application/json", err.body(), &as_refs(&headers)).await)
    }
}

/// The assistant text (and tool-call arguments) of an OpenAI chat answer, for
/// counting its tokens when the provider reported none.
fn answer_text(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let mut text = String::new();
    for choice in v.get("choices").and_then(|c| c.as_array()).into_iter().flatten() {
        let message = choice.get("message");
        if let Some(t) = message.and_then(|m| m.get("content")).and_then(|c| c.as_str()) {
            text.push_str(t);
        }
        for call in message.and_then(|m| m.get("tool_calls")).and_then(|c| c.as_array()).into_iter().flatten() {
            if let Some(args) = call.pointer("/function/arguments").and_then(|a| a.as_str()) {
                text.push_str(args);
            }
        }
    }
    text
}

/// Keeps answer bytes for the access log when the target logs payloads.
fn log_response(ctx: &mut RequestCtx, bytes: &[u8]) {
    if let Some(p) = ctx.llm.as_mut().and_then(|f| f.payloads.as_mut()) {
        p.push_response(bytes);
    }
}

/// Feeds a served answer's latency and usage to the balancer.
fn report_success(ai: &AiProxyRt, idx: usize, ctx: &RequestCtx) {
    let Some(f) = ctx.llm.as_ref() else { return };
    let usage = f.usage.unwrap_or_default();
    ai.balancer.success(
        idx,
        Success {
            latency: f.latency.unwrap_or_default(),
            ttft: f.ttft,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cost: f.cost().unwrap_or(0.0),
        },
    );
}

/// `Retry-After` as delay-seconds (the HTTP-date form is rare from APIs and
/// is not honoured).
fn retry_after_duration(v: &str) -> Option<Duration> {
    let secs: u64 = v.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(3600)))
}

pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) read: Duration,
    pub(crate) write: Duration,
}

/// What identifies a call to the provider: the request id, and the trace
/// context: the gateway's call span when tracing, else the caller's.
pub(crate) struct CallIds<'a> {
    pub(crate) request_id: &'a str,
    pub(crate) traceparent: Option<String>,
    pub(crate) tracestate: Option<&'a str>,
}

impl<'a> CallIds<'a> {
    pub(crate) fn of(ctx: &'a RequestCtx) -> Self {
        let caller = ctx.trace.as_ref();
        let parent = match &ctx.span {
            Some(span) => Some(span.outgoing()),
            None => caller.map(|(t, _)| *t),
        };
        CallIds {
            request_id: &ctx.request_id,
            traceparent: parent.map(|p| p.header()),
            tracestate: caller.and_then(|(_, s)| s.as_deref()),
        }
    }
}

/// Connects (pooled), writes the request and reads the answer's header.
pub(crate) async fn send_request(
    ups: &Upstreams,
    target: &LlmTarget,
    prepared: &Call,
    ids: &CallIds<'_>,
    t: &Timeouts,
) -> Result<(HttpSession, HttpPeer), UpstreamError> {
    let ep = &target.endpoint;
    let addr = ups
        .resolver
        .resolve(&ep.host, ep.port)
        .await
        .map_err(|e| UpstreamError::Resolve(e.to_string()))?;
    let mut peer = peer_for(addr, ep, t);
    target.tls.apply(&mut peer);

    let body: &[u8] = &prepared.body;
    // Vertex AI: a service account's OAuth token, cached until near expiry.
    let bearer = match &target.gcp {
        Some(ts) => Some(ts.token().await.map_err(UpstreamError::Auth)?),
        None => None,
    };
    let session = send_on(ups, &peer, body, t, &|| {
        build_header(target, prepared, body.len(), ids, bearer.as_deref())
    })
    .await?;
    Ok((session, peer))
}

/// A peer for `ep` at a resolved address, with the exchange's timeouts.
pub(crate) fn peer_for(addr: std::net::SocketAddr, ep: &Endpoint, t: &Timeouts) -> HttpPeer {
    let mut peer = HttpPeer::new(addr, ep.tls, ep.host.clone());
    peer.options.connection_timeout = Some(t.connect);
    peer.options.read_timeout = Some(t.read);
    peer.options.write_timeout = Some(t.write);
    peer.options.idle_timeout = Some(POOL_IDLE);
    peer.options.alpn = ALPN::H1;
    peer
}

/// Sends a request on a pooled connection and reads the answer's header.
/// `header` is built anew for every attempt (a signature may depend on the time).
pub(crate) async fn send_on(
    ups: &Upstreams,
    peer: &HttpPeer,
    body: &[u8],
    t: &Timeouts,
    header: &(dyn Fn() -> Result<RequestHeader, String> + Sync),
) -> Result<HttpSession, UpstreamError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let header = header().map_err(|msg| UpstreamError::Exchange { msg, invalid_header: false })?;
        let (session, reused) = ups
            .connector
            .get_http_session(peer)
            .await
            .map_err(|e| classify_connect(&e))?;
        match exchange_head(session, peer, header, body, t).await {
            Ok(session) => return Ok(session),
            // A pooled connection the upstream closed meanwhile fails while the
            // request is being written: it cannot have been processed, so a
            // fresh connection may carry it. Once the request was written in
            // full it is never sent again: the upstream may have read it, and a
            // second copy would run (and bill) the call twice.
            Err(Phase::Write(e)) if reused && attempts < 3 => {
                tracing::debug!("pooled connection failed while writing ({e:?}); retrying on a fresh one");
                continue;
            }
            Err(Phase::Write(e)) | Err(Phase::Read(e)) => return Err(e),
        }
    }
}

/// Where an exchange failed: before or after the request was written in full.
enum Phase {
    Write(UpstreamError),
    Read(UpstreamError),
}

/// Writes the request and reads the answer's header. On HTTP/1.1 the header
/// and body go out in one write (one syscall, one segment for small requests)
/// instead of Pingora's separate flushed header write and body write; the bytes
/// on the wire are the same (Pingora's own header serialization).
async fn exchange_head(
    session: HttpSession,
    peer: &HttpPeer,
    header: RequestHeader,
    body: &[u8],
    t: &Timeouts,
) -> Result<HttpSession, Phase> {
    let w = |e: Box<pingora_error::Error>| Phase::Write(classify_io(&e));
    let mut session = match session {
        HttpSession::H1(h1) => {
            let Some(mut wire) = http_req_header_to_wire(&header) else {
                return Err(w(pingora_error::Error::explain(
                    pingora_error::ErrorType::InvalidHTTPHeader,
                    "request-line contains forbidden delimiter bytes or unsupported HTTP version",
                )));
            };
            wire.extend_from_slice(body);
            let mut stream = h1.into_inner();
            let write = async {
                stream.write_all(&wire).await?;
                stream.flush().await
            };
            match tokio::time::timeout(t.write, write).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(w(pingora_error::Error::because(
                        pingora_error::ErrorType::WriteError,
                        "while writing request",
                        e,
                    )))
                }
                Err(_) => {
                    return Err(w(pingora_error::Error::explain(
                        pingora_error::ErrorType::WriteTimedout,
                        format!("writing request, timeout: {:?}", t.write),
                    )))
                }
            }
            HttpSession::H1(Http1Session::new_with_options(stream, peer))
        }
        mut other => {
            other.set_write_timeout(Some(t.write));
            other.write_request_header(Box::new(header)).await.map_err(w)?;
            other.write_request_body(Bytes::copy_from_slice(body), true).await.map_err(w)?;
            other.finish_request_body().await.map_err(w)?;
            other
        }
    };
    // Pingora's connector does not carry the peer's timeouts over to a
    // session; without these a silent provider would hold the request forever.
    session.set_read_timeout(Some(t.read));
    session.set_write_timeout(Some(t.write));
    session
        .read_response_header()
        .await
        .map_err(|e| Phase::Read(classify_io(&e)))?;
    Ok(session)
}

fn classify_connect(e: &pingora_error::Error) -> UpstreamError {
    use pingora_error::ErrorType::*;
    match e.etype() {
        ConnectTimedout | TLSHandshakeTimedout => UpstreamError::Timeout(e.to_string()),
        _ => UpstreamError::Connect(e.to_string()),
    }
}

fn classify_io(e: &pingora_error::Error) -> UpstreamError {
    use pingora_error::ErrorType::*;
    match e.etype() {
        ReadTimedout | WriteTimedout => UpstreamError::Timeout(e.to_string()),
        InvalidHTTPHeader => UpstreamError::Exchange { msg: e.to_string(), invalid_header: true },
        _ => UpstreamError::Exchange { msg: e.to_string(), invalid_header: false },
    }
}

/// The upstream request, built from scratch: HTTP/1.1, only the headers the
/// provider needs, the target's credential, and a Content-Length that matches
/// the translated body. Nothing of the client's own credentials can leak.
fn build_header(
    target: &LlmTarget,
    prepared: &Call,
    body_len: usize,
    ids: &CallIds<'_>,
    bearer: Option<&str>,
) -> Result<RequestHeader, String> {
    let ep = &target.endpoint;
    let base = match &prepared.path {
        Some(p) => format!("{}{p}", ep.path_and_query),
        None => ep.path_and_query.clone(),
    };
    let path = match &target.credential {
        Credential::Query { name, value } => {
            let sep = if base.contains('?') { '&' } else { '?' };
            format!(
                "{base}{sep}{}={}",
                percent_encode(name),
                percent_encode(value)
            )
        }
        _ => base,
    };
    let e = |e: Box<pingora_error::Error>| e.to_string();
    let mut h = RequestHeader::build("POST", path.as_bytes(), Some(8)).map_err(e)?;
    h.insert_header("host", ep.authority.as_str()).map_err(e)?;
    h.insert_header("content-type", "application/json").map_err(e)?;
    h.insert_header("content-length", body_len.to_string()).map_err(e)?;
    h.insert_header(
        "accept",
        if prepared.stream { target.kind.stream_accept() } else { "application/json" },
    )
    .map_err(e)?;
    for (name, value) in &prepared.headers {
        h.insert_header(*name, value.as_str()).map_err(e)?;
    }
    h.insert_header("user-agent", concat!("tollgate/", env!("CARGO_PKG_VERSION")))
        .map_err(e)?;
    h.insert_header("x-request-id", ids.request_id).map_err(e)?;
    if let Some(parent) = &ids.traceparent {
        h.insert_header("traceparent", parent.as_str()).map_err(e)?;
        if let Some(state) = ids.tracestate {
            h.insert_header("tracestate", state).map_err(e)?;
        }
    }
    if let Credential::Header { name, value } = &target.credential {
        h.insert_header(name.clone(), value.clone()).map_err(e)?;
    }
    if let Some(token) = bearer {
        let mut value = http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|err| err.to_string())?;
        value.set_sensitive(true);
        h.insert_header("authorization", value).map_err(e)?;
    }
    if let Some(aws) = &target.aws {
        // Signed last, over the final path and the headers set above.
        let signed = tollgate_llm::bedrock::sign(
            &aws.credentials,
            &aws.region,
            &ep.host,
            &path,
            &[("host", ep.authority.as_str()), ("content-type", "application/json")],
            &prepared.body,
            std::time::SystemTime::now(),
        )?;
        for (name, value) in signed {
            let mut value = http::HeaderValue::from_str(&value).map_err(|err| err.to_string())?;
            value.set_sensitive(true);
            h.insert_header(name, value).map_err(e)?;
        }
    }
    Ok(h)
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) async fn read_all(upstream: &mut HttpSession) -> Result<Bytes, String> {
    let mut buf = BytesMut::new();
    loop {
        match upstream.read_response_body().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(format!("answer exceeds {MAX_ANSWER_BYTES} bytes"));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(buf.freeze()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Returns a connection to the pool when its answer was read to the end;
/// otherwise Pingora closes it.
pub(crate) async fn finish_upstream(ups: &Upstreams, upstream: HttpSession, peer: &HttpPeer) {
    ups.connector
        .release_http_session(upstream, peer, Some(POOL_IDLE))
        .await;
}

/// How a stream is relayed.
struct Relay<'a> {
    target: &'a LlmTarget,
    /// Prompt tokens by the tokenizer, asked only when the provider reports no usage.
    prompt_estimate: &'a (dyn Fn() -> u64 + Sync),
    content_type: &'a str,
    /// The caller gets the provider's own stream (`preserve`): no OpenAI
    /// error events are added to it.
    native: bool,
    sent_at: Instant,
}

/// Relays a stream event by event (translated, or native for `preserve`),
/// watching the client so a hang-up stops the provider at once.
async fn relay_stream(
    session: &mut Session,
    ctx: &mut RequestCtx,
    upstream: &mut HttpSession,
    mut stream: Box<dyn ChatStream>,
    relay: Relay<'_>,
) -> (PResult<()>, bool) {
    let Relay { target, prompt_estimate, content_type, native, sent_at } = relay;
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
                    if !out.is_empty() {
                        log_response(ctx, &out);
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
                        if !native {
                            rest.extend_from_slice(&stream_error_event(&target.provider, "ended before its answer did"));
                        }
                    }
                    let end = if rest.is_empty() { None } else { Some(rest.freeze()) };
                    outcome = session.write_response_body(end, true).await;
                    break;
                }
                Err(e) => {
                    // Bytes already reached the client: never retry (no duplicated
                    // output); end the stream with an error event instead.
                    ctx.note_error(&format!("provider stream broke: {e}"));
                    if !native {
                        let event = stream_error_event(&target.provider, "broke off");
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
    let done_at = Instant::now();
    if let Some(f) = ctx.llm.as_mut() {
        f.latency = Some(done_at - sent_at);
        f.ttft = first_event.map(|t| t - sent_at);
        f.response_model = stream.model().map(str::to_string);
        f.usage = stream.usage().or_else(|| {
            // No usage reported (a stream cut short, or a provider that gives
            // none): the prompt by the tokenizer, one token per content event.
            f.usage_estimated = true;
            let prompt = prompt_estimate();
            Some(Usage {
                prompt_tokens: prompt,
                completion_tokens: stream.events(),
                total_tokens: prompt + stream.events(),
                cached_tokens: 0,
                ..Usage::default()
            })
        });
    }
    (outcome, stream.completed())
}

/// The stream's response header: the client learns the answer has started.
async fn start_stream(session: &mut Session, ctx: &mut RequestCtx, target: &LlmTarget, content_type: &str) -> PResult<()> {
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


/// An OpenAI-shaped error event that ends a stream the provider broke off.
fn stream_error_event(provider: &str, what: &str) -> Bytes {
    let err = LlmError::new(502, "upstream_error", format!("provider {provider} stream {what}"));
    let mut event = BytesMut::from(&b"data: "[..]);
    event.extend_from_slice(&err.body());
    event.extend_from_slice(b"\n\n");
    event.freeze()
}

/// Headers of an answer relayed from the provider.
fn answer_headers(ctx: &RequestCtx, label: &str, retry_after: Option<String>) -> Vec<(String, String)> {
    let mut h = Vec::with_capacity(3 + ctx.response_headers.len());
    h.push(("x-tollgate-llm-model".to_string(), label.to_string()));
    h.push(("x-request-id".to_string(), ctx.request_id.clone()));
    if let Some(v) = retry_after {
        h.push(("retry-after".to_string(), v));
    }
    h.extend(ctx.response_headers.iter().cloned());
    h
}

/// Answers a gateway-made error in OpenAI's shape.
pub async fn send_llm_error(session: &mut Session, ctx: &mut RequestCtx, err: &LlmError) -> PResult<()> {
    ctx.status = err.status;
    ctx.note_error(&err.message);
    let mut headers = vec![("x-request-id".to_string(), ctx.request_id.clone())];
    headers.extend(ctx.response_headers.iter().cloned());
    send(session, err.status, "application/json", err.body(), &as_refs(&headers)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_credentials_are_encoded() {
        assert_eq!(percent_encode("a b&c=d"), "a%20b%26c%3Dd");
    }
}

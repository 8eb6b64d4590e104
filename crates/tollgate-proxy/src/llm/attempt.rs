//! One attempt at one target: send the call, read the answer's head, then
//! relay a stream, answer JSON, or give the failover loop a reason to move
//! on. What the attempt says of the target's health goes back to the loop,
//! which feeds the balancer in one place.

use std::time::{Duration, Instant};

use pingora_core::protocols::http::client::HttpSession;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_proxy::Session;
use tollgate_llm::completion::AnswerMeta;
use tollgate_llm::embeddings::{self, EmbeddingsMeta};
use tollgate_llm::ingress::Ingress;
use tollgate_llm::provider::{self, Call};
use tollgate_llm::{LlmError, Usage};

use crate::answer;
use crate::ctx::RequestCtx;
use crate::llm::ask::Ask;
use crate::llm::call::{send_request, upstream_error, CallIds};
use crate::llm::relay::{answer_headers, log_response, relay_stream, StreamRelay};
use crate::llm::target::LlmTarget;
use crate::respond::{as_refs, send, PResult};
use crate::snapshot::{AiProxyRt, FailoverCriterion};
use crate::upstream::{read_all, release, Timeouts, UpstreamError, Upstreams};

/// What an attempt says of its target, for the balancer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Health {
    /// It answered: its latency and usage count.
    Success,
    /// It failed in a way that counts towards its circuit breaker.
    Failure,
    /// It asked to be left alone for this long (429 with `Retry-After`).
    CoolDown(Duration),
    /// Nothing to learn (a client error, a caller that hung up).
    Neutral,
}

/// How one attempt at one target ended.
pub(crate) enum Next {
    /// The client got an answer (success or a final error), or went away.
    Answered(PResult<()>),
    /// Failed before anything reached the client, in a way the failover
    /// criteria cover, and another target may be tried.
    FailOver(FailoverCriterion),
}

pub(crate) struct Outcome {
    pub health: Health,
    pub next: Next,
}

impl Outcome {
    fn answered(health: Health, r: PResult<()>) -> Self {
        Outcome { health, next: Next::Answered(r) }
    }

    fn fail_over(health: Health, why: FailoverCriterion) -> Self {
        Outcome { health, next: Next::FailOver(why) }
    }
}

/// One attempt at one target.
pub(crate) struct Attempt<'a> {
    pub ups: &'a Upstreams,
    pub ai: &'a AiProxyRt,
    pub target: &'a LlmTarget,
    pub ask: &'a Ask,
    pub call: &'a Call,
    pub embeddings_meta: Option<&'a EmbeddingsMeta>,
    /// Another target could take over if this one fails.
    pub may_fail_over: bool,
}

impl Attempt<'_> {
    fn fails_over_on(&self, criterion: FailoverCriterion) -> bool {
        self.may_fail_over && self.ai.failover.contains(&criterion)
    }

    pub(crate) async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> Outcome {
        let sent_at = Instant::now();
        let (mut upstream, peer, head) = match self.send(session, ctx).await {
            Ok(sent) => sent,
            Err(outcome) => return outcome,
        };
        if let Some(f) = ctx.llm.as_mut() {
            f.upstream_status = Some(head.status);
        }
        let health = head.health(self.ai.targets.len());
        if !head.ok() {
            if let Some(criterion) = FailoverCriterion::of_status(head.status).filter(|c| self.fails_over_on(*c)) {
                // Read the refusal to its end so the connection can be reused.
                if read_all(&mut upstream).await.is_ok() {
                    release(self.ups, upstream, &peer).await;
                }
                return Outcome::fail_over(health, criterion);
            }
        }
        let meta = self.answer_meta(ctx);
        // A streamed call answers in the provider's stream format (SSE,
        // newline-delimited JSON or AWS frames); a JSON answer to it is read whole.
        if head.ok() && self.call.stream && !head.is_json() {
            let outcome = self.relay(session, ctx, &mut upstream, &head, meta, sent_at).await;
            release(self.ups, upstream, &peer).await;
            return outcome;
        }
        let body = match read_all(&mut upstream).await {
            Ok(b) => b,
            Err(e) => return self.broke_off(session, ctx, &e.to_string()).await,
        };
        let done_at = Instant::now();
        release(self.ups, upstream, &peer).await;
        if !head.ok() {
            return Outcome::answered(health, self.refused(session, ctx, &head, body).await);
        }
        let latency = done_at - sent_at;
        self.answer_json(session, ctx, &head, body, &meta, latency).await
    }

    /// Sends the call and reads the answer's head; a failure is the outcome.
    async fn send(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<(HttpSession, HttpPeer, Head), Outcome> {
        let Attempt { ups, ai, target, call, .. } = *self;
        let timeouts = Timeouts {
            connect: Duration::from_millis(ai.config.connect_timeout),
            read: Duration::from_millis(ai.config.read_timeout),
            write: Duration::from_millis(ai.config.write_timeout),
        };
        let (upstream, peer) = match send_request(ups, target, call, &call_ids(ctx), &timeouts).await {
            Ok(x) => x,
            Err(e) => {
                let criterion = criterion_of(&e);
                if self.fails_over_on(criterion) {
                    return Err(Outcome::fail_over(Health::Failure, criterion));
                }
                let err = upstream_error(&e, &target.provider);
                return Err(Outcome::answered(Health::Failure, answer::error(session, ctx, &err, &[]).await));
            }
        };
        let Some(head) = upstream.response_header().map(Head::of) else {
            let err = LlmError::new(502, "upstream_error", "provider answer has no header");
            return Err(Outcome::answered(Health::Failure, answer::error(session, ctx, &err, &[]).await));
        };
        Ok((upstream, peer, head))
    }

    /// What translating the answer needs to know of the request.
    fn answer_meta(&self, ctx: &RequestCtx) -> AnswerMeta {
        AnswerMeta {
            fallback_id: format!("chatcmpl-{}", ctx.request_id),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            model: self.call.model.clone(),
            client_wants_usage: self.call.client_wants_usage,
            request_id: ctx.request_id.clone(),
            echo: self.ask.echo(),
        }
    }

    /// Relays a stream: translated, native (read for usage), or `preserve`.
    async fn relay(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        upstream: &mut HttpSession,
        head: &Head,
        meta: AnswerMeta,
        sent_at: Instant,
    ) -> Outcome {
        let Attempt { target, ask, call, .. } = *self;
        let (stream, content_type) = if matches!(ask, Ask::Preserve(_)) {
            (provider::observe(target.kind, meta), head.content_type.as_str())
        } else {
            let stream = provider::stream_for(target.kind, call.ingress, call.native, meta);
            // A native stream keeps the provider's content type.
            (stream, if call.native { head.content_type.as_str() } else { "text/event-stream" })
        };
        // The cache keeps the stream as the provider wrote it (placeholders,
        // not the caller's PII); what the caller reads is restored.
        let stream = crate::cache::tee::tee(ctx, head.status, stream, target);
        let stream =
            if matches!(ask, Ask::Preserve(_)) { stream } else { crate::guard::restoring(ctx, call.ingress, stream) };
        let prompt = || ask.prompt_estimate(None);
        let relay = StreamRelay { target, prompt_estimate: &prompt, content_type, sent_at };
        let (r, completed) = relay_stream(session, ctx, upstream, stream, relay).await;
        let health = if completed {
            Health::Success
        } else if ctx.llm.as_ref().is_some_and(|f| f.client_cancelled) {
            Health::Neutral
        } else {
            Health::Failure
        };
        Outcome::answered(health, r)
    }

    /// The provider broke off a JSON answer: fail over, or say so.
    async fn broke_off(&self, session: &mut Session, ctx: &mut RequestCtx, msg: &str) -> Outcome {
        if self.fails_over_on(FailoverCriterion::Error) {
            return Outcome::fail_over(Health::Failure, FailoverCriterion::Error);
        }
        let what = format!("provider {} broke off its answer: {msg}", self.target.provider);
        let err = LlmError::new(502, "upstream_error", what);
        Outcome::answered(Health::Failure, answer::error(session, ctx, &err, &[]).await)
    }

    /// A successful JSON answer: relayed (`preserve`, native) or translated,
    /// with its usage (the tokenizer's when the provider reported none).
    async fn answer_json(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        head: &Head,
        body: bytes::Bytes,
        meta: &AnswerMeta,
        latency: Duration,
    ) -> Outcome {
        let Attempt { target, ask, call, embeddings_meta, .. } = *self;
        if matches!(ask, Ask::Preserve(_)) {
            // The provider's own answer as it sent it; usage read where it can be.
            let (usage, model) = provider::observe_answer(target.kind, &body, meta);
            if let Some(f) = ctx.llm.as_mut() {
                f.usage = usage;
                f.response_model = model;
                f.latency = Some(latency);
            }
            let ct = if head.content_type.is_empty() { "application/octet-stream" } else { head.content_type.as_str() };
            return Outcome::answered(
                Health::Success,
                self.relay_answer(session, ctx, head.status, ct, body, None).await,
            );
        }
        let translated = match embeddings_meta {
            Some(e) => embeddings::answer(target.kind, body, e),
            None => provider::answer_for(target.kind, call.ingress, call.native, body, meta),
        };
        let answer = match translated {
            Ok(a) => a,
            Err(err) => {
                // A 200 that is not an answer: the provider is broken.
                if self.fails_over_on(FailoverCriterion::InvalidHeader) || self.fails_over_on(FailoverCriterion::Error)
                {
                    return Outcome::fail_over(Health::Failure, FailoverCriterion::Error);
                }
                return Outcome::answered(Health::Failure, answer::error(session, ctx, &err, &[]).await);
            }
        };
        if let Some(f) = ctx.llm.as_mut() {
            f.usage = answer.usage.or_else(|| {
                // The provider reported none (some OpenAI-compatible
                // servers): both sides by the tokenizer, marked estimated.
                f.usage_estimated = true;
                let prompt = ask.prompt_estimate(embeddings_meta);
                let completion = answer.estimated_completion_tokens.unwrap_or(0);
                Some(Usage {
                    prompt_tokens: prompt,
                    completion_tokens: completion,
                    total_tokens: prompt + completion,
                    ..Usage::default()
                })
            });
            f.response_model = answer.model;
            f.latency = Some(latency);
        }
        // The cache keeps the answer as the provider wrote it (placeholders, not
        // the caller's PII); a hit is restored for the request that asks.
        crate::cache::tee::store_json(ctx, head.status, &answer.body, target);
        Outcome::answered(Health::Success, self.send_guarded(session, ctx, head.status, answer.body).await)
    }

    /// A translated JSON answer through the answer-side guardrails: masked
    /// (`sanitization_mode` OUTPUT or BOTH), judged by the webhook
    /// (`guarding_mode` OUTPUT or BOTH), logged before restoring (the access
    /// log never holds the PII the sanitizer hid), restored, sent.
    async fn send_guarded(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        status: u16,
        body: bytes::Bytes,
    ) -> PResult<()> {
        let body = crate::guard::mask_answer(ctx, body);
        let body = match crate::guard::judge_answer(ctx, self.call.ingress, body).await {
            Ok(b) => b,
            Err(e) => return answer::error(session, ctx, &e, &[]).await,
        };
        log_response(ctx, &body);
        let body = crate::guard::restore_answer(ctx, body);
        self.send_answer(session, ctx, status, "application/json", body, None).await
    }

    /// Sends an answer from the provider (as it came or translated), logged
    /// for `log_payloads`.
    async fn relay_answer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        status: u16,
        content_type: &str,
        body: bytes::Bytes,
        retry_after: Option<&str>,
    ) -> PResult<()> {
        log_response(ctx, &body);
        self.send_answer(session, ctx, status, content_type, body, retry_after).await
    }

    /// Sends an answer already logged.
    async fn send_answer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        status: u16,
        content_type: &str,
        body: bytes::Bytes,
        retry_after: Option<&str>,
    ) -> PResult<()> {
        ctx.status = status;
        let headers = answer_headers(ctx, &self.target.label, retry_after);
        send(session, status, content_type, body, &as_refs(&headers)).await
    }

    /// The provider refused (and no other target takes over): its status and
    /// message reach the caller. A caller speaking the provider's own format
    /// (Messages to Anthropic, Responses to OpenAI) gets its error as it was
    /// sent, as they read it; other callers get it in their shape, the
    /// provider's message kept.
    async fn refused(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        head: &Head,
        body: bytes::Bytes,
    ) -> PResult<()> {
        let Attempt { target, call, ask, .. } = *self;
        let status = head.status;
        let retry_after = head.retry_after.as_deref();
        let preserve = matches!(ask, Ask::Preserve(_));
        let as_sent = preserve || (call.native && call.ingress != Ingress::OpenAiChat);
        if as_sent && (preserve || head.is_json()) {
            ctx.note_error(&format!("provider {} answered {status}", target.provider));
            let ct = if head.content_type.is_empty() { "application/octet-stream" } else { head.content_type.as_str() };
            return self.relay_answer(session, ctx, status, ct, body, retry_after).await;
        }
        let err = provider::error(target.kind, status, &body);
        ctx.note_error(&err.message);
        let (status, body) = ctx.shape.render(&err);
        self.relay_answer(session, ctx, status, "application/json", body, retry_after).await
    }
}

/// The head of a provider's answer, as far as the attempt reads it.
struct Head {
    status: u16,
    content_type: String,
    retry_after: Option<String>,
}

impl Head {
    fn of(resp: &pingora_http::ResponseHeader) -> Head {
        let header = |name: &str| resp.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        Head {
            status: resp.status.as_u16(),
            content_type: header("content-type").unwrap_or_default(),
            retry_after: header("retry-after"),
        }
    }

    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn is_json(&self) -> bool {
        self.content_type.starts_with("application/json")
    }

    /// What the answer's status says of the target: a 429 with Retry-After
    /// rests it for that long (when another target can serve meanwhile:
    /// resting the only one would just turn the provider's 429 into our 503);
    /// server errors and other 429s count towards its circuit breaker.
    fn health(&self, targets: usize) -> Health {
        match self.retry_after.as_deref().and_then(retry_after_duration) {
            _ if self.ok() => Health::Success,
            Some(rest) if self.status == 429 && targets > 1 => Health::CoolDown(rest),
            _ if self.status >= 500 || self.status == 429 => Health::Failure,
            _ => Health::Neutral,
        }
    }
}

/// The failover criterion a failure to exchange falls under.
fn criterion_of(e: &UpstreamError) -> FailoverCriterion {
    match e {
        UpstreamError::Timeout(_) => FailoverCriterion::Timeout,
        UpstreamError::Exchange { invalid_header: true, .. } => FailoverCriterion::InvalidHeader,
        _ => FailoverCriterion::Error,
    }
}

/// The ids a provider call carries: the request id, and the trace context:
/// the gateway's call span when tracing, else the caller's.
pub(crate) fn call_ids(ctx: &RequestCtx) -> CallIds<'_> {
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

/// `Retry-After` as delay-seconds (the HTTP-date form is rare from APIs and
/// is not honoured).
fn retry_after_duration(v: &str) -> Option<Duration> {
    let secs: u64 = v.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(3600)))
}

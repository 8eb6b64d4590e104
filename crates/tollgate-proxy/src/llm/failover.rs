//! The failover loop of one LLM request: pick a target, prepare the call for
//! its provider, reserve the token budget once, run the attempt, feed the
//! balancer what the attempt learned, and move on to the next target while
//! the failover criteria allow and targets remain.

use pingora_proxy::Session;
use tollgate_balance::Success;
use tollgate_llm::provider::Call;
use tollgate_llm::LlmError;

use crate::answer;
use crate::ctx::{LlmFacts, Payloads, RequestCtx};
use crate::limits::{Admission, Costs, TokenLimitRt};
use crate::llm::ask::Ask;
use crate::llm::attempt::{Attempt, Health, Next};
use crate::llm::spend;
use crate::llm::target::LlmTarget;
use crate::metrics;
use crate::respond::PResult;
use crate::snapshot::{AiProxyRt, Selection};
use crate::upstream::Upstreams;

/// Serves `ask` from the plugin's targets. Every outcome is answered to the
/// client here; an `Err` means the client itself went away.
pub(crate) async fn serve(
    ups: &Upstreams,
    session: &mut Session,
    ctx: &mut RequestCtx,
    ai: &AiProxyRt,
    limit: Option<&TokenLimitRt>,
    ask: Ask,
) -> PResult<()> {
    let hash_key = hash_key(session, ctx, ai);
    let mut preferred = semantic_choice(ups, ai, &ask, ctx).await;
    let mut tried: Vec<usize> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    loop {
        // The semantic choice goes first (while available); then the balancer.
        let first = preferred.take().and_then(|p| {
            let others: Vec<usize> = (0..ai.targets.len()).filter(|i| *i != p).collect();
            ai.balancer.pick(None, &others)
        });
        let Some(pick) = first.or_else(|| ai.balancer.pick(hash_key.as_deref(), &tried)) else {
            return no_target_left(session, ctx, failed).await;
        };
        let idx = pick.index();
        tried.push(idx);
        let target = ai.targets[idx].clone();
        let (call, embeddings_meta) = match ask.call_for(&target) {
            Ok(p) => p,
            // The caller's request cannot be served as sent: a client error,
            // never a reason to try another target.
            Err(e) => return answer::error(session, ctx, &e, &[]).await,
        };
        ctx.llm = Some(LlmFacts { cache_status: ctx.cache_status, ..facts(ai, &target, &call, &ask, &failed) });
        // Token and spend budgets are reserved once, against the first
        // target; the real usage settles them whichever target answers.
        if tried.len() == 1 {
            let mut prompt = None;
            let mut estimate = || *prompt.get_or_insert_with(|| ask.prompt_estimate(embeddings_meta.as_ref()));
            let cap = ask.max_completion_tokens();
            let refused = match admit(session, ctx, limit, &target, &call.model, &mut estimate, cap).await {
                None => spend::admit(ctx, &target, &call.model, &mut estimate, cap).await,
                refused => refused,
            };
            if let Some(refused) = refused {
                return answer::error(session, ctx, &refused, &[]).await;
            }
        }
        let retries_left = (tried.len() as u32) <= ai.config.retries;
        let may_fail_over =
            retries_left && (0..ai.targets.len()).any(|i| !tried.contains(&i) && ai.balancer.is_available(i));
        let attempt = Attempt {
            ups,
            ai,
            target: &target,
            ask: &ask,
            call: &call,
            embeddings_meta: embeddings_meta.as_ref(),
            may_fail_over,
        };
        match run_attempt(session, ctx, ai, idx, attempt).await {
            Next::Answered(r) => return r,
            Next::FailOver(why) => failed.push(format!("{}: {}", target.label, why.as_str())),
        }
        drop(pick);
    }
}

/// Runs one attempt inside its trace span, feeding the balancer what it learned.
async fn run_attempt(
    session: &mut Session,
    ctx: &mut RequestCtx,
    ai: &AiProxyRt,
    idx: usize,
    attempt: Attempt<'_>,
) -> Next {
    let target = attempt.target;
    if let Some(span) = ctx.span.as_mut() {
        span.start_call();
    }
    let outcome = attempt.run(session, ctx).await;
    feed_balancer(ai, idx, outcome.health, ctx);
    let failure = match &outcome.next {
        Next::FailOver(why) => Some(why.as_str()),
        Next::Answered(_) => None,
    };
    if let Some(span) = ctx.span.as_mut() {
        span.end_call(target, ctx.llm.as_ref(), failure.as_deref());
    }
    if let Some(reason) = failure {
        tracing::info!(request_id = %ctx.request_id, target = %target.label, %reason, "failing over to the next target");
        metrics::record_failover(&target.label, &reason);
    }
    outcome.next
}

/// Nothing (left) to try: every target is cooling down or its circuit is open.
async fn no_target_left(session: &mut Session, ctx: &mut RequestCtx, failed: Vec<String>) -> PResult<()> {
    let err = LlmError::new(
        503,
        "service_unavailable",
        "no LLM target is available: every target is failing or cooling down; retry later",
    )
    .with_code("no_target_available");
    if let Some(f) = ctx.llm.as_mut() {
        f.failed_attempts = failed;
    }
    answer::error(session, ctx, &err, &[]).await
}

/// The facts of an attempt at `target`, before it runs.
fn facts(ai: &AiProxyRt, target: &LlmTarget, call: &Call, ask: &Ask, failed: &[String]) -> LlmFacts {
    // The target's own prices, else the shipped table's for the called model.
    let prices = target.prices(&call.model);
    LlmFacts {
        provider: target.provider.clone(),
        target: target.label.clone(),
        request_model: call.model.clone(),
        request_format: ai.format_label(),
        stream: call.stream,
        log_statistics: target.log_statistics,
        input_cost: prices.map(|p| p.input),
        output_cost: prices.map(|p| p.output),
        cache_read_cost: prices.and_then(|p| p.cache_read),
        cache_write_cost: prices.and_then(|p| p.cache_write),
        failed_attempts: failed.to_vec(),
        payloads: target.log_payloads.then(|| Payloads::request(&ask.logged_body())),
        ..LlmFacts::default()
    }
}

/// Everything the balancer learns from an attempt, in one place.
fn feed_balancer(ai: &AiProxyRt, idx: usize, health: Health, ctx: &RequestCtx) {
    match health {
        Health::Success => {
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
        Health::Failure => ai.balancer.failure(idx),
        Health::CoolDown(rest) => ai.balancer.cool_down(idx, rest),
        Health::Neutral => {}
    }
}

/// The target semantic balancing chooses for this request, if the plugin
/// balances by meaning and the embeddings model answered.
async fn semantic_choice(ups: &Upstreams, ai: &AiProxyRt, ask: &Ask, ctx: &RequestCtx) -> Option<usize> {
    let (Some(sem), Ask::Generate(request)) = (&ai.semantic, ask) else {
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
    if ai.selection != Selection::ConsistentHashing {
        return None;
    }
    if let Some(v) = ai.hash_on_header.as_ref().and_then(|h| session.req_header().headers.get(h)) {
        return Some(v.as_bytes().to_vec());
    }
    ctx.consumer_name().map(|c| c.as_bytes().to_vec())
}

/// Reserves the request's estimated tokens; `Some` is the refusal to answer.
async fn admit(
    session: &Session,
    ctx: &mut RequestCtx,
    limit: Option<&TokenLimitRt>,
    target: &LlmTarget,
    model: &str,
    prompt_estimate: &mut (dyn FnMut() -> u64 + Send),
    max_completion_tokens: Option<u64>,
) -> Option<LlmError> {
    let limit = limit.filter(|l| l.applies_to(&target.provider))?;
    let prompt = prompt_estimate();
    let cap = max_completion_tokens.or(target.model.max_tokens);
    let who = ctx.identity(session, limit.header_name.as_ref());
    let prices = target.prices(model);
    let costs = Costs { input: prices.map(|p| p.input), output: prices.map(|p| p.output) };
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

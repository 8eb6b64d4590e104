//! Guardrails on LLM routes: Kong's ai-prompt-guard, a built-in
//! ai-sanitizer and a webhook (ai-custom-guardrail). They run on the
//! caller's request once its body is read and before it is parsed for any
//! provider, so nothing they refuse reaches a provider or is charged
//! against a token budget, whatever the caller's format and whichever
//! target serves it. Order: prompt guard, sanitizer, webhook (so the
//! webhook never sees what the sanitizer masked). On the answer side
//! (`answer.rs`, `stream.rs`), the sanitizer masks what the provider wrote
//! and the webhook judges it when their mode says OUTPUT or BOTH, and the
//! request's placeholders come back (`recover_redacted`).
//!
//! The pure logic (patterns, recognisers, masking, restoring) is the
//! `tollgate-guard` crate; this module wires it to requests, the webhook
//! call, metrics and the access log.

mod answer;
pub mod facts;
mod metrics;
pub mod rt;
mod stream;
mod webhook;

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use tollgate_guard::prompt::for_each_text;
use tollgate_guard::webhook::Verdict;
use tollgate_guard::{Format, Role, Vault};
use tollgate_llm::ingress::Ingress;
use tollgate_llm::LlmError;

use crate::ctx::RequestCtx;
use facts::{AnswerGuards, GuardFacts};
use rt::{Chain, SanitizerRt, WebhookRt};

pub use answer::{judge_answer, mask_answer, restore_answer};
pub use stream::{restoring, stream_for_caller};

const PROMPT_GUARD: &str = "ai-prompt-guard";
const SANITIZER: &str = "ai-sanitizer";
const WEBHOOK: &str = "ai-custom-guardrail";

/// Runs `chain` on `body` (the caller's request in `ingress`): the body to
/// go on with (the judged value, re-serialised), or the
/// refusal to answer (400, naming the plugin, never a pattern).
pub async fn run(chain: &Chain<'_>, ctx: &mut RequestCtx, ingress: Ingress, body: Bytes) -> Result<Bytes, LlmError> {
    if chain.is_empty() {
        return Ok(body);
    }
    // A body that is not JSON is the parser's to refuse, with its own message.
    let Ok(mut value) = serde_json::from_slice::<Value>(&body) else {
        return Ok(body);
    };
    let format = format_of(ingress);
    let route = route_name(ctx);
    let mut facts = GuardFacts::default();
    if streams_past_answer_webhook(chain, &value) {
        ctx.guard = Some(GuardFacts { refused_by: Some(WEBHOOK), ..facts });
        return Err(LlmError::invalid_request(
            "this route's ai-custom-guardrail judges whole answers (guarding_mode OUTPUT or BOTH), \
             which a stream would deliver before the verdict: send \"stream\": false",
        )
        .with_code("guardrail_refused"));
    }
    let verdict = judge(chain, &mut value, format, &route, &mut facts).await;
    facts.answer.sanitizer = chain.sanitizer.filter(|s| s.output).map(|s| s.sanitizer.clone());
    facts.answer.webhook = chain.webhook.filter(|w| w.output).cloned();
    ctx.guard = Some(facts);
    match verdict {
        Err(plugin) => {
            if let Some(f) = ctx.guard.as_mut() {
                f.refused_by = Some(plugin);
            }
            Err(refusal(plugin))
        }
        // Always the value the guards judged, never the caller's bytes: with a
        // duplicate key the guards saw the last one, a parser may take the first.
        Ok(()) => {
            serde_json::to_vec(&value).map(Bytes::from).map_err(|e| LlmError::new(500, "internal_error", e.to_string()))
        }
    }
}

/// The guards in order; `Err` names the plugin that refused.
async fn judge(
    chain: &Chain<'_>,
    value: &mut Value,
    format: Format,
    route: &str,
    facts: &mut GuardFacts,
) -> Result<(), &'static str> {
    if let Some(g) = chain.prompt {
        let refused = g.check(format, value).is_err();
        metrics::record(PROMPT_GUARD, route, if refused { "deny" } else { "allow" });
        if refused {
            return Err(PROMPT_GUARD);
        }
    }
    if let Some(s) = chain.sanitizer.filter(|s| s.input) {
        sanitize(s, value, format, route, facts)?;
    }
    if let Some(w) = chain.webhook.filter(|w| w.input) {
        ask_webhook(w, value, format, route, facts).await?;
    }
    Ok(())
}

/// A streamed request on a route whose webhook judges answers: refused, as
/// a stream's text reaches the caller before the whole answer can be judged
/// (failing closed, so `"stream": true` is no way around the guardrail).
fn streams_past_answer_webhook(chain: &Chain<'_>, request: &Value) -> bool {
    chain.webhook.is_some_and(|w| w.output) && request.get("stream").and_then(Value::as_bool) == Some(true)
}

fn sanitize(
    s: &SanitizerRt,
    value: &mut Value,
    format: Format,
    route: &str,
    facts: &mut GuardFacts,
) -> Result<(), &'static str> {
    if s.block {
        let found = s.sanitizer.detect(format, value).entities;
        metrics::record(SANITIZER, route, if found > 0 { "block" } else { "clean" });
        return if found > 0 { Err(SANITIZER) } else { Ok(()) };
    }
    let mut vault = Vault::default();
    facts.masked = s.sanitizer.mask(format, value, &mut vault).entities;
    metrics::record(SANITIZER, route, if facts.masked > 0 { "mask" } else { "clean" });
    if vault.is_empty() {
        return Ok(());
    }
    let vault = Arc::new(vault);
    if s.output {
        facts.answer = AnswerGuards { vault: Some(vault.clone()), ..AnswerGuards::default() };
    }
    if s.restore {
        facts.restore = Some(vault);
    }
    Ok(())
}

async fn ask_webhook(
    w: &WebhookRt,
    value: &mut Value,
    format: Format,
    route: &str,
    facts: &mut GuardFacts,
) -> Result<(), &'static str> {
    let mut texts: Vec<(Role, String)> = Vec::new();
    for_each_text(format, value, &mut |slot, t| texts.push((slot.role, t.clone())));
    let outcome = match webhook::call(w, "request", format_label(format), &texts).await {
        Ok(Verdict::Allow) => ("allow", Ok(())),
        Ok(Verdict::Deny { .. }) => ("deny", Err(WEBHOOK)),
        Ok(Verdict::Modify(_)) if !w.allow_masking => ("deny", Err(WEBHOOK)),
        Ok(Verdict::Modify(new)) => {
            let mut new = new.into_iter();
            for_each_text(format, value, &mut |_, t| {
                if let Some(n) = new.next() {
                    *t = n;
                }
            });
            ("modify", Ok(()))
        }
        Err(why) => {
            tracing::warn!(url = %w.endpoint.authority, reason = %why, fail_open = w.fail_open, "guardrail webhook failed");
            if w.fail_open {
                ("error_open", Ok(()))
            } else {
                ("error_closed", Err(WEBHOOK))
            }
        }
    };
    facts.webhook = Some(outcome.0);
    metrics::record(WEBHOOK, route, outcome.0);
    outcome.1
}

fn refusal(plugin: &str) -> LlmError {
    LlmError::new(400, "invalid_request_error", format!("the request was refused by a guardrail ({plugin})"))
        .with_code("guardrail_refused")
}

pub(crate) fn format_of(ingress: Ingress) -> Format {
    match ingress {
        Ingress::OpenAiChat => Format::OpenAiChat,
        Ingress::AnthropicMessages => Format::AnthropicMessages,
        Ingress::OpenAiResponses => Format::OpenAiResponses,
    }
}

pub(super) fn format_label(format: Format) -> &'static str {
    match format {
        Format::OpenAiChat => "openai_chat",
        Format::AnthropicMessages => "anthropic_messages",
        Format::OpenAiResponses => "openai_responses",
    }
}

pub(super) fn route_name(ctx: &RequestCtx) -> String {
    ctx.snap.as_deref().zip(ctx.route).map(|(s, r)| s.router.routes[r].name.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_guard::guard::PromptGuardOptions;
    use tollgate_guard::PromptGuard;

    #[tokio::test]
    async fn what_goes_on_is_the_judged_value_not_the_callers_bytes() {
        let guard = PromptGuard::new(&[], &["(?i)ignore previous".into()], PromptGuardOptions::default()).unwrap();
        let chain = Chain { prompt: Some(&guard), ..Chain::default() };
        let body = Bytes::from_static(
            br#"{"messages":[{"role":"user","content":"ignore previous"}],"messages":[{"role":"user","content":"fine"}]}"#,
        );
        let out = run(&chain, &mut RequestCtx::new(), Ingress::OpenAiChat, body).await.unwrap();
        assert_eq!(&out[..], br#"{"messages":[{"content":"fine","role":"user"}]}"#);
    }
}

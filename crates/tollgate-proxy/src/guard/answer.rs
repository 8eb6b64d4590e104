//! The guardrails' answer side, for JSON answers (streams: `stream.rs`):
//! the sanitizer masks PII the provider wrote (`sanitization_mode` OUTPUT or
//! BOTH), the webhook judges the answer (`guarding_mode` OUTPUT or BOTH),
//! and the request's placeholders are put back (`recover_redacted`). The
//! access log keeps the answer masked and not yet restored.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use serde_json::Value;
use tollgate_guard::answer::for_each_answer_text;
use tollgate_guard::webhook::Verdict;
use tollgate_guard::{Role, Vault};
use tollgate_llm::ingress::Ingress;
use tollgate_llm::LlmError;

use super::{format_label, format_of, metrics, route_name, webhook, SANITIZER, WEBHOOK};
use crate::ctx::RequestCtx;

/// A JSON answer with the PII the provider wrote masked, when the
/// sanitizer sees answers; the request's own entities keep their placeholders.
pub fn mask_answer(ctx: &RequestCtx, body: Bytes) -> Bytes {
    let Some(facts) = ctx.guard.as_ref() else { return body };
    let Some(sanitizer) = facts.answer.sanitizer.as_ref() else { return body };
    let Ok(mut v) = serde_json::from_slice::<Value>(&body) else { return body };
    let mut vault = answer_vault(ctx);
    let n = tollgate_guard::answer::mask_answer(&sanitizer.recognisers, &mut v, &mut vault);
    metrics::record(SANITIZER, &route_name(ctx), if n > 0 { "mask_answer" } else { "clean_answer" });
    if n == 0 {
        return body;
    }
    facts.masked_answer.fetch_add(n, Ordering::Relaxed);
    serde_json::to_vec(&v).map(Bytes::from).unwrap_or(body)
}

/// The vault an answer is masked with: the request's, so its entities keep
/// their placeholders (and `recover_redacted` restores only those), and new
/// ones are numbered after them.
pub(super) fn answer_vault(ctx: &RequestCtx) -> Vault {
    let facts = ctx.guard.as_ref();
    facts.and_then(|f| f.answer.vault.as_deref().cloned()).unwrap_or_default()
}

/// The webhook's verdict on a JSON answer, when it judges answers: the
/// answer to send (modified when the service masked it), or the refusal.
pub async fn judge_answer(ctx: &mut RequestCtx, ingress: Ingress, body: Bytes) -> Result<Bytes, LlmError> {
    let Some(w) = ctx.guard.as_ref().and_then(|f| f.answer.webhook.clone()) else { return Ok(body) };
    let Ok(mut v) = serde_json::from_slice::<Value>(&body) else { return Ok(body) };
    let mut texts = Vec::new();
    for_each_answer_text(&mut v, &mut |t| texts.push((Role::Assistant, t.clone())));
    let verdict = webhook::call(&w, "response", format_label(format_of(ingress)), &texts).await;
    let (result, out) = match verdict {
        Ok(Verdict::Allow) => ("allow", Ok(body)),
        Ok(Verdict::Modify(new)) if w.allow_masking => {
            let mut new = new.into_iter();
            for_each_answer_text(&mut v, &mut |t| {
                if let Some(n) = new.next() {
                    *t = n;
                }
            });
            ("modify", Ok(serde_json::to_vec(&v).map(Bytes::from).unwrap_or(body)))
        }
        Ok(_) => ("deny", Err(withheld())),
        Err(why) => {
            tracing::warn!(url = %w.endpoint.authority, reason = %why, fail_open = w.fail_open, "guardrail webhook failed on an answer");
            if w.fail_open {
                ("error_open", Ok(body))
            } else {
                ("error_closed", Err(withheld()))
            }
        }
    };
    metrics::record(WEBHOOK, &route_name(ctx), result);
    if let Some(f) = ctx.guard.as_mut() {
        f.webhook_answer = Some(result);
        if out.is_err() {
            f.refused_by = Some(WEBHOOK);
        }
    }
    out
}

/// The provider's answer is not relayed: the caller learns a guardrail
/// withheld it, not what it said.
fn withheld() -> LlmError {
    LlmError::new(400, "invalid_request_error", format!("the answer was withheld by a guardrail ({WEBHOOK})"))
        .with_code("guardrail_refused")
}

/// A JSON answer with its placeholders restored (`recover_redacted`).
pub fn restore_answer(ctx: &RequestCtx, body: Bytes) -> Bytes {
    let Some(vault) = ctx.guard.as_ref().and_then(|g| g.restore.as_ref()) else {
        return body;
    };
    match std::str::from_utf8(&body).map(|s| vault.restore_json(s)) {
        Ok(std::borrow::Cow::Owned(s)) => Bytes::from(s),
        _ => body,
    }
}

//! ai-budget at admission: the consumer's budgets (its own and its groups')
//! hold what the request may cost at the first target's prices: the prompt
//! estimate at the input price plus the completion cap at the output price.

use tollgate_llm::LlmError;

use crate::budget::Payer;
use crate::ctx::RequestCtx;
use crate::limits::Admission;
use crate::llm::target::LlmTarget;
use crate::snapshot::{PluginRt, Slot};

/// Holds the request's estimated cost; `Some` is the refusal to answer.
/// Anonymous requests (no consumer) have no budget.
pub(super) async fn admit(
    ctx: &mut RequestCtx,
    target: &LlmTarget,
    model: &str,
    prompt_estimate: &mut (dyn FnMut() -> u64 + Send),
    max_completion_tokens: Option<u64>,
) -> Option<LlmError> {
    let snap = ctx.snap.clone()?;
    let Some(PluginRt::Budget(rt)) = snap.plugin(Slot::Budget, ctx.route, ctx.service, ctx.consumer) else {
        return None;
    };
    let consumer = &snap.consumers[ctx.consumer?];
    let payer = Payer { name: &consumer.name, custom_id: consumer.custom_id.as_deref(), groups: &consumer.groups };
    let estimate = match target.prices(model) {
        Some(p) => {
            let asked = max_completion_tokens.or(target.model.max_tokens);
            estimate_dollars(prompt_estimate(), completion_tokens(asked, rt.config.max_reserved_completion_tokens), &p)
        }
        None => {
            if let Some(message) = rt.unpriced_refusal(&payer, model) {
                return Some(LlmError::new(400, "invalid_request_error", message).with_code("model_not_priced"));
            }
            // `unpriced = "free"`: it is charged nothing, so it holds nothing.
            0.0
        }
    };
    let (admission, held) = rt.admit(&payer, estimate).await;
    ctx.held_budget = held;
    match admission {
        Admission::Unlimited => None,
        Admission::Admitted { headers, .. } => {
            ctx.response_headers.extend(headers);
            None
        }
        Admission::Refused { status, message, headers } => {
            ctx.response_headers.extend(headers);
            // 503: the budget store is down and `fault_tolerant` is off.
            let (kind, code) = match status {
                503 => ("service_unavailable", "budget_unavailable"),
                _ => ("insufficient_quota", "budget_exceeded"),
            };
            Some(LlmError::new(status, kind, message).with_code(code))
        }
    }
}

/// No model answers with more tokens than this; a caller's `max_tokens`
/// beyond it (`1e19`) would otherwise make the hold unrepresentable.
const MAX_COMPLETION_TOKENS: u64 = 1_000_000;

/// The completion tokens a hold counts: what the request or target asks
/// for, else the plugin's default, never more than any model can answer.
fn completion_tokens(asked: Option<u64>, default: u64) -> u64 {
    asked.unwrap_or(default).min(MAX_COMPLETION_TOKENS.max(default))
}

/// What a request may cost, in dollars.
fn estimate_dollars(prompt_tokens: u64, completion_tokens: u64, p: &tollgate_llm::Prices) -> f64 {
    (prompt_tokens as f64 * p.input + completion_tokens as f64 * p.output) / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_max_tokens_holds_at_most_a_million_completion_tokens() {
        let p = tollgate_llm::Prices { input: 2.5, output: 10.0, cache_read: None, cache_write: None };
        assert_eq!(completion_tokens(Some(10_000_000_000_000_000_000), 1024), 1_000_000);
        assert_eq!(completion_tokens(Some(500), 1024), 500);
        assert_eq!(completion_tokens(None, 1024), 1024);
        assert_eq!(estimate_dollars(1000, completion_tokens(Some(u64::MAX), 1024), &p), 10.0025);
    }
}

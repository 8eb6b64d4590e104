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
            let completion =
                max_completion_tokens.or(target.model.max_tokens).unwrap_or(rt.config.max_reserved_completion_tokens);
            (prompt_estimate() as f64 * p.input + completion as f64 * p.output) / 1_000_000.0
        }
        // Nothing prices this model: it is charged nothing, so it holds nothing.
        None => 0.0,
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

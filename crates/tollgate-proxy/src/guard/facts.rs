//! What the guardrails did to one request, for the access log and for
//! restoring the answer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde::{Serialize, Serializer};
use tollgate_guard::{Sanitizer, Vault};

use super::rt::WebhookRt;

#[derive(Debug, Default, Serialize)]
pub struct GuardFacts {
    /// The guardrail plugin that refused the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_by: Option<&'static str>,
    /// PII entities the sanitizer masked.
    #[serde(skip_serializing_if = "is_zero")]
    pub masked: usize,
    /// The webhook's verdict: `allow`, `deny`, `modify`, `error_open`, `error_closed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<&'static str>,
    /// Placeholders to put back into the answer (`recover_redacted`).
    #[serde(skip)]
    pub restore: Option<Arc<Vault>>,
    /// The guardrails that see the answer (OUTPUT or BOTH).
    #[serde(skip)]
    pub answer: AnswerGuards,
    /// PII entities masked in the answer (counted by a stream as it goes).
    #[serde(skip_serializing_if = "none_masked", serialize_with = "count")]
    pub masked_answer: Arc<AtomicUsize>,
    /// The webhook's verdict on the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_answer: Option<&'static str>,
}

/// The guardrails that see a request's answer.
#[derive(Debug, Default, Clone)]
pub struct AnswerGuards {
    pub sanitizer: Option<Arc<Sanitizer>>,
    /// The request's placeholders, which the answer's masking continues.
    pub vault: Option<Arc<Vault>>,
    pub webhook: Option<Arc<WebhookRt>>,
}

fn none_masked(n: &Arc<AtomicUsize>) -> bool {
    n.load(Ordering::Relaxed) == 0
}

fn count<S: Serializer>(n: &Arc<AtomicUsize>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(n.load(Ordering::Relaxed) as u64)
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

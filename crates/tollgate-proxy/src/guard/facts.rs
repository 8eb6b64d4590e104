//! What the guardrails did to one request, for the access log and for
//! restoring the answer.

use std::sync::Arc;

use serde::Serialize;
use tollgate_guard::Vault;

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
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

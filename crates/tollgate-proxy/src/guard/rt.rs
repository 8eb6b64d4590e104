//! The guardrail plugins compiled: patterns built once per (re)load, the
//! webhook's endpoint parsed; and the chain of them a request resolves.

use std::sync::Arc;
use std::time::Duration;

use tollgate_config::guard::ANONYMIZE;
use tollgate_config::{AiCustomGuardrailConfig, AiPromptGuardConfig, AiSanitizerConfig};
use tollgate_guard::guard::{GuardPatternError, PromptGuardOptions};
use tollgate_guard::pii::BUILT_IN;
use tollgate_guard::{PromptGuard, Recognisers, Sanitizer};

use crate::upstream::{Endpoint, InvalidUrl};

/// A guardrail config that cannot be built (validation catches these first).
#[derive(Debug, thiserror::Error)]
pub enum GuardCompileError {
    #[error("ai-prompt-guard {0}")]
    Prompt(String),
    #[error("ai-sanitizer custom_patterns: {0}")]
    Sanitizer(tollgate_guard::PatternError),
    #[error("ai-custom-guardrail: {0}")]
    Url(#[from] InvalidUrl),
}

#[derive(Debug)]
pub enum GuardRt {
    Prompt(PromptGuard),
    Sanitizer(SanitizerRt),
    /// Shared with the answers it judges (`guarding_mode` OUTPUT or BOTH).
    Webhook(Arc<WebhookRt>),
}

#[derive(Debug)]
pub struct SanitizerRt {
    /// Shared with the answers it masks (`sanitization_mode` OUTPUT or BOTH).
    pub sanitizer: Arc<Sanitizer>,
    pub block: bool,
    pub restore: bool,
    /// Masks (or blocks) requests.
    pub input: bool,
    /// Masks answers.
    pub output: bool,
}

#[derive(Debug)]
pub struct WebhookRt {
    pub endpoint: Endpoint,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub fail_open: bool,
    pub allow_masking: bool,
    /// Judges requests.
    pub input: bool,
    /// Judges answers.
    pub output: bool,
}

/// The guardrails one request runs, in order: prompt guard, sanitizer, webhook.
#[derive(Debug, Default, Clone, Copy)]
pub struct Chain<'a> {
    pub prompt: Option<&'a PromptGuard>,
    pub sanitizer: Option<&'a SanitizerRt>,
    pub webhook: Option<&'a Arc<WebhookRt>>,
}

impl Chain<'_> {
    pub fn is_empty(&self) -> bool {
        self.prompt.is_none() && self.sanitizer.is_none() && self.webhook.is_none()
    }
}

impl GuardRt {
    pub fn prompt(c: &AiPromptGuardConfig) -> Result<GuardRt, GuardCompileError> {
        let options = PromptGuardOptions {
            whole_history: c.match_all_conversation_history && !c.allow_all_conversation_history,
            match_all_roles: c.match_all_roles,
        };
        let g = PromptGuard::new(&c.allow_patterns, &c.deny_patterns, options).map_err(|e| {
            GuardCompileError::Prompt(match e {
                GuardPatternError::Allow(p) => format!("allow_patterns[{}]: {}", p.index, p.message),
                GuardPatternError::Deny(p) => format!("deny_patterns[{}]: {}", p.index, p.message),
            })
        })?;
        Ok(GuardRt::Prompt(g))
    }

    pub fn sanitizer(c: &AiSanitizerConfig) -> Result<GuardRt, GuardCompileError> {
        let covered: Vec<&str> = c
            .anonymize
            .iter()
            .filter_map(|a| ANONYMIZE.iter().find(|(n, _)| n == a))
            .flat_map(|(_, kinds)| kinds.iter().copied())
            .collect();
        let kinds: Vec<_> = BUILT_IN.iter().filter(|(n, _)| covered.contains(n)).map(|(_, k)| *k).collect();
        let custom: Vec<(String, String)> = if covered.contains(&"custom") {
            c.custom_patterns.iter().map(|p| (p.name.clone(), p.regex.clone())).collect()
        } else {
            Vec::new()
        };
        let recognisers = Recognisers::new(&kinds, &custom).map_err(GuardCompileError::Sanitizer)?;
        Ok(GuardRt::Sanitizer(SanitizerRt {
            sanitizer: Arc::new(Sanitizer { recognisers, whole_history: c.allow_all_conversation_history }),
            block: c.block_if_detected,
            restore: c.recover_redacted && !c.block_if_detected,
            input: c.sanitization_mode.input(),
            output: c.sanitization_mode.output(),
        }))
    }

    pub fn webhook(c: &AiCustomGuardrailConfig) -> Result<GuardRt, GuardCompileError> {
        Ok(GuardRt::Webhook(Arc::new(WebhookRt {
            endpoint: Endpoint::parse(&c.url)?,
            headers: c.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            timeout: Duration::from_millis(c.timeout.max(1)),
            fail_open: c.fail_open,
            allow_masking: c.allow_masking,
            input: c.guarding_mode.input(),
            output: c.guarding_mode.output(),
        })))
    }
}

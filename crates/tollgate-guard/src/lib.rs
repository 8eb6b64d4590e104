//! Guardrails on LLM prompts and answers, as pure code (no I/O, no Pingora):
//!
//! - [`patterns`]: regular expressions compiled with the linear-time `regex`
//!   engine under size limits, so no configured pattern can be made slow or huge;
//! - [`prompt`]: the texts of a request in each caller format (OpenAI chat
//!   completions, Anthropic Messages, OpenAI Responses), read and rewritten in
//!   place, with their roles and turns;
//! - [`guard`]: Kong's ai-prompt-guard decision (allow and deny patterns);
//! - [`pii`]: built-in recognisers (email, phone, credit card with Luhn, IBAN
//!   with mod-97, IPv4/IPv6, API-key-like secrets) and custom patterns;
//! - [`mask`]: placeholders per distinct entity (`<EMAIL_1>`) and their
//!   restoration in JSON answers; [`restore`]: the same across a stream whose
//!   placeholders may be split between events;
//! - [`sanitize`]: the sanitizer on a request: mask, or detect to block;
//! - [`answer`]: the sanitizer on an answer, whole or streamed;
//! - [`webhook`]: what the webhook guardrail sends and how its verdict reads.

pub mod answer;
pub mod guard;
pub mod mask;
pub mod patterns;
pub mod pii;
pub mod prompt;
pub mod restore;
pub mod sanitize;
pub mod webhook;

pub use answer::StreamMasker;
pub use guard::{PromptGuard, PromptGuardOptions};
pub use mask::{Masked, Vault};
pub use patterns::{PatternError, Patterns};
pub use pii::{Kind, Recognisers};
pub use prompt::{Format, Role};
pub use restore::StreamRestorer;
pub use sanitize::{Sanitized, Sanitizer};

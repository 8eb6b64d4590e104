//! LLM wire formats: validating OpenAI-format chat requests, preparing them for a
//! target, extracting usage from answers and streams. Pure code: no I/O, no clocks,
//! so every translation is testable on fixtures.

pub mod error;
pub mod openai;
pub mod request;
pub mod sse;
pub mod tokens;
pub mod usage;

pub use error::LlmError;
pub use request::{ChatRequest, ModelDefaults, PreparedRequest};
pub use usage::Usage;

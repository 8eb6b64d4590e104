//! LLM wire formats: validating OpenAI-format chat requests, translating them
//! into each provider's format and the answers and streams back, extracting
//! usage. Pure code: no I/O, no clocks (callers pass the time in), so every
//! translation is testable on fixtures.

pub mod anthropic;
pub mod bedrock;
pub mod chat;
pub mod cohere;
pub mod completion;
pub mod embeddings;
pub mod error;
pub mod gemini;
pub mod ingress;
pub mod mistral;
pub mod ollama;
pub mod openai;
pub mod prices;
pub mod provider;
pub mod request;
/// SSE framing, shared with the MCP relay.
pub use tollgate_sse as sse;
pub mod stream;
pub mod tokens;
pub mod usage;

pub use error::LlmError;
pub use provider::Provider;
pub use request::{ChatRequest, ModelDefaults, PreparedRequest};
pub use usage::{Prices, Usage};

//! Anthropic's Messages API on the caller's side (`llm_format = "anthropic"`):
//! Claude Code and the `anthropic` SDKs. Requests are checked here and become
//! the provider-neutral `Chat` for other providers; answers and streams from
//! any provider are rendered as Anthropic's Message object and event stream.
//!
//! STUB: the interface the gateway calls; the implementation lands next.

use bytes::Bytes;

use crate::chat::Chat;
use crate::completion::{AnswerMeta, Completion};
use crate::ingress::ModelEntry;
use crate::stream::{Delta, Render, StreamState};
use crate::{LlmError, ModelDefaults};

/// A Messages request (`POST /v1/messages`), checked.
#[derive(Debug, Clone)]
pub struct MessagesRequest {
    body: Vec<u8>,
    /// The caller's `anthropic-version` header, forwarded to Anthropic targets.
    pub version: Option<String>,
    /// The caller's `anthropic-beta` header, forwarded to Anthropic targets.
    pub beta: Option<String>,
}

impl MessagesRequest {
    pub fn parse(body: &[u8]) -> Result<Self, LlmError> {
        Ok(MessagesRequest { body: body.to_vec(), version: None, beta: None })
    }

    /// A `count_tokens` request: a Messages request without `max_tokens`.
    pub fn parse_count_tokens(body: &[u8]) -> Result<Self, LlmError> {
        Self::parse(body)
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn remove_field(&mut self, name: &str) {
        if let Ok(b) = crate::ingress::splice::remove_member(&self.body, name) {
            self.body = b;
        }
    }

    pub fn is_stream(&self) -> bool {
        false
    }

    pub fn max_tokens(&self) -> Option<u64> {
        None
    }

    pub fn model(&self) -> Option<&str> {
        None
    }

    pub fn prompt_estimate(&self) -> u64 {
        0
    }

    pub fn to_chat(&self, _defaults: &ModelDefaults) -> Result<Chat, LlmError> {
        Err(LlmError::new(501, "not_implemented", "Messages translation is not implemented yet"))
    }

    /// The body for an Anthropic target: the caller's bytes with the model
    /// (and absent option defaults, and `extra` fields) set; and the model.
    pub fn native_body(&self, _defaults: &ModelDefaults, _extra: &[(&str, &str)]) -> Result<(Vec<u8>, String), LlmError> {
        Err(LlmError::new(501, "not_implemented", "Messages passthrough is not implemented yet"))
    }
}

/// A completion as Anthropic's Message object.
pub fn render(_c: &Completion, _meta: &AnswerMeta) -> Bytes {
    Bytes::new()
}

/// Anthropic's event stream.
#[derive(Debug, Default)]
pub struct Writer {}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Render for Writer {
    fn render(&mut self, _delta: &Delta, _state: &mut StreamState, _out: &mut Vec<u8>) {}
}

/// `{"type":"error","error":{"type":...,"message":...}}`.
pub fn error_body(e: &LlmError) -> Bytes {
    e.body()
}

/// The status of a gateway-made error in Anthropic's terms.
pub fn error_status(e: &LlmError) -> u16 {
    e.status
}

/// An `error` event that ends a stream.
pub fn stream_error_event(e: &LlmError) -> Bytes {
    e.body()
}

/// `GET /v1/models` in Anthropic's shape.
pub fn models_body(_models: &[ModelEntry]) -> Bytes {
    Bytes::new()
}

/// The answer to `count_tokens`: `{"input_tokens": n}`.
pub fn count_tokens_body(input_tokens: u64) -> Bytes {
    Bytes::from(format!("{{\"input_tokens\":{input_tokens}}}"))
}

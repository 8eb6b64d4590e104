//! OpenAI's Responses API on the caller's side (`route_type =
//! "llm/v1/responses"`): Codex, the Agents SDK and `client.responses`. Requests
//! are checked here and become the provider-neutral `Chat` for providers other
//! than OpenAI; answers and streams from any provider are rendered as the
//! Response object and its typed events. The OpenAI side of the same format
//! (a Response and its stream read back into neutral terms) is here too, for
//! native calls' usage.
//!
//! STUB: the interface the gateway calls; the implementation lands next.

use bytes::Bytes;

use crate::chat::Chat;
use crate::completion::{AnswerMeta, Completion};
use crate::stream::{Decoder, Delta, Render, StreamState};
use crate::{LlmError, ModelDefaults};

/// A Responses request (`POST /v1/responses`), checked.
#[derive(Debug, Clone)]
pub struct ResponsesRequest {
    body: Vec<u8>,
}

impl ResponsesRequest {
    pub fn parse(body: &[u8]) -> Result<Self, LlmError> {
        Ok(ResponsesRequest { body: body.to_vec() })
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

    pub fn max_output_tokens(&self) -> Option<u64> {
        None
    }

    pub fn model(&self) -> Option<&str> {
        None
    }

    pub fn prompt_estimate(&self) -> u64 {
        0
    }

    /// The request fields a Response object repeats.
    pub fn echo(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }

    pub fn to_chat(&self, _defaults: &ModelDefaults) -> Result<Chat, LlmError> {
        Err(LlmError::new(501, "not_implemented", "Responses translation is not implemented yet"))
    }

    /// The body for an OpenAI target: the caller's bytes with the model (and
    /// absent option defaults, and `extra` fields) set; and the model.
    pub fn native_body(&self, _defaults: &ModelDefaults, _extra: &[(&str, &str)]) -> Result<(Vec<u8>, String), LlmError> {
        Err(LlmError::new(501, "not_implemented", "Responses passthrough is not implemented yet"))
    }
}

/// A completion as a Response object.
pub fn render(_c: &Completion, _meta: &AnswerMeta) -> Bytes {
    Bytes::new()
}

/// The Responses API's typed event stream.
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

/// An `error` event that ends a stream.
pub fn stream_error_event(e: &LlmError) -> Bytes {
    e.body()
}

/// A Response object from OpenAI, read back as a completion.
pub fn answer(_body: &[u8], _meta: &AnswerMeta) -> Result<Completion, LlmError> {
    Err(LlmError::new(502, "upstream_error", "not implemented"))
}

/// OpenAI's Responses event stream, read back as deltas.
#[derive(Debug, Default)]
pub struct StreamDecoder {}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Decoder for StreamDecoder {
    fn decode(&mut self, _input: &[u8], _out: &mut Vec<Delta>) {}
}

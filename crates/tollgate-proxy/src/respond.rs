//! Answers the gateway writes itself: errors and small JSON bodies, in the
//! shape the route's callers read.

use bytes::Bytes;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;
use tollgate_llm::LlmError;

pub type PResult<T> = pingora_error::Result<T>;

/// The error shape a route's callers read: Kong's `{"message"}` on
/// passthrough and MCP routes, OpenAI's on LLM routes, Anthropic's on
/// routes whose callers speak the Messages API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ErrorShape {
    #[default]
    Kong,
    OpenAi,
    Anthropic,
}

impl ErrorShape {
    /// The status and body of `err` in this shape.
    pub fn render(self, err: &LlmError) -> (u16, Bytes) {
        match self {
            ErrorShape::Kong => (err.status, kong_error_body(&err.message)),
            ErrorShape::OpenAi => (err.status, err.body()),
            ErrorShape::Anthropic => {
                (tollgate_llm::ingress::anthropic::error_status(err), tollgate_llm::ingress::anthropic::error_body(err))
            }
        }
    }
}

/// A refusal of the gateway's own (authentication, authorization, limits,
/// body size), with OpenAI's error type for its status.
pub fn refusal(status: u16, message: &str) -> LlmError {
    let kind = match status {
        401 => "authentication_error",
        403 => "permission_error",
        413 => "invalid_request_error",
        _ => "gateway_error",
    };
    LlmError::new(status, kind, message)
}

/// Writes a complete response with a body and Content-Length.
pub async fn send(
    session: &mut Session,
    status: u16,
    content_type: &str,
    body: Bytes,
    headers: &[(&str, &str)],
) -> PResult<()> {
    let mut resp = ResponseHeader::build(status, Some(4 + headers.len()))?;
    resp.insert_header("content-type", content_type)?;
    resp.insert_header("content-length", body.len().to_string())?;
    for (k, v) in headers {
        resp.append_header(k.to_string(), *v)?;
    }
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await?;
    Ok(())
}

/// Borrowed views of owned header pairs, for `send`.
pub fn as_refs(h: &[(String, String)]) -> Vec<(&str, &str)> {
    h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Kong's error shape, `{"message": ...}`, for routes that are not LLM routes.
pub fn kong_error_body(message: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "message": message }).to_string())
}

//! Errors that the gateway answers itself on LLM routes, in OpenAI's error shape
//! (`{"error": {"message", "type", "code"}}`) so that OpenAI SDKs surface them.

use bytes::Bytes;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {message}")]
pub struct LlmError {
    pub status: u16,
    pub message: String,
    /// OpenAI's `error.type`, e.g. `invalid_request_error`.
    pub kind: &'static str,
    /// OpenAI's `error.code`, when one fits.
    pub code: Option<&'static str>,
}

impl LlmError {
    pub fn invalid_request(message: impl Into<String>) -> Self {
        LlmError { status: 400, message: message.into(), kind: "invalid_request_error", code: None }
    }

    pub fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        LlmError { status, message: message.into(), kind, code: None }
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The JSON body in OpenAI's error shape.
    pub fn body(&self) -> Bytes {
        error_body(&self.message, self.kind, self.code)
    }
}

/// `{"error":{"message":..,"type":..,"code":..}}`.
pub fn error_body(message: &str, kind: &str, code: Option<&str>) -> Bytes {
    let v = serde_json::json!({
        "error": { "message": message, "type": kind, "code": code }
    });
    Bytes::from(v.to_string())
}

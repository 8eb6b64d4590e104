//! Providers' native wire formats, one module each, beside `openai` (which
//! also serves Azure OpenAI and Mistral). Like `openai`, every module is a set
//! of pure request -> [`Reply`] functions: latency, faults, `Retry-After` and
//! recording are applied by the server, the answer itself (text, tool call,
//! usage, stream pacing) comes from [`crate::chat::Answer`], so each module
//! only has the provider's shapes.
//!
//! | provider | endpoint | answer |
//! | --- | --- | --- |
//! | Anthropic | `POST /v1/messages` (thinking, prompt caching, Anthropic's request checks) | JSON, or SSE with `event:` lines when `"stream": true` |
//! | Anthropic token counting | `POST /v1/messages/count_tokens` | JSON `{"input_tokens": N}` |
//! | Gemini | `POST /v1beta/models/{m}:generateContent`, `:streamGenerateContent` (and the Vertex path `/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:...`) | JSON; SSE (CRLF) with `?alt=sse`, else a JSON array sent piecewise |
//! | Gemini embeddings | `POST /v1beta/models/{m}:batchEmbedContents`; Vertex AI `.../publishers/google/models/{m}:predict` | JSON |
//! | Bedrock | `POST /model/{id}/converse`, `/converse-stream` | JSON; `application/vnd.amazon.eventstream` frames |
//! | Bedrock embeddings | `POST /model/{id}/invoke` for Titan Text Embeddings and Cohere Embed models | JSON |
//! | Cohere | `POST /v2/chat`; embeddings `POST /v2/embed` | JSON, or SSE with `event:` lines when `"stream": true` |
//! | Google OAuth | `POST /oauth2/token` (a service account's JWT-bearer grant) | JSON access token |
//! | Ollama | `POST /api/chat`; embeddings `POST /api/embed` | NDJSON unless `"stream": false` (streaming is Ollama's default); JSON |
//!
//! Each module's `error` builds the provider's own error body; `mock_error`
//! answers a behaviour's error status with it (or with `error_body` verbatim).
//! Embeddings endpoints answer the vectors of [`crate::embedding`], so the
//! same text gets the same vector from every provider.

pub mod anthropic;
pub mod bedrock;
pub mod cohere;
pub mod gemini;
pub mod google_oauth;
pub mod ollama;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::behavior::Behavior;
use crate::reply::Reply;

/// Parses a request body, or answers 400 in the provider's error shape.
fn parse<'a, T: Deserialize<'a>>(body: &'a [u8], error: fn(StatusCode, &str) -> Reply) -> Result<T, Reply> {
    serde_json::from_slice(body).map_err(|e| {
        let what = if e.is_syntax() || e.is_eof() { "invalid JSON body" } else { "invalid request" };
        error(StatusCode::BAD_REQUEST, &format!("{what}: {e}"))
    })
}

/// The first key of a JSON object that is not in `allowed`, for providers
/// that refuse fields they do not know (Google's and Bedrock's schemas).
fn unknown_key<'a>(v: &'a serde_json::Value, allowed: &[&str]) -> Option<&'a str> {
    v.as_object()?.keys().map(String::as_str).find(|k| !allowed.contains(k))
}

/// Compact JSON of one of our answer types. Serializing these plain structs
/// cannot fail; an empty object keeps a stream well-formed if it ever did.
fn to_json<T: Serialize>(value: &T) -> Bytes {
    serde_json::to_vec(value).map(Bytes::from).unwrap_or_else(|_| Bytes::from_static(b"{}"))
}

/// Answer for a behaviour with `status >= 400`: `error_body` verbatim, else
/// the provider's error shape with the message `mock error <status>`.
fn mock_error(status: StatusCode, behavior: &Behavior, error: fn(StatusCode, &str) -> Reply) -> Reply {
    match &behavior.error_body {
        Some(raw) => Reply::json(status, raw.clone()),
        None => error(status, &format!("mock error {}", status.as_u16())),
    }
}

/// Adds a request-id style header; a value that is not a valid header value
/// (never the case for our ids) is left out.
fn with_id_header(reply: Reply, name: &'static str, value: &str) -> Reply {
    match HeaderValue::from_str(value) {
        Ok(v) => reply.with_header(HeaderName::from_static(name), v),
        Err(_) => reply,
    }
}

/// Decodes `%XX` escapes of a path segment (Bedrock model ids arrive with
/// `:` as `%3A`, and inference-profile ARNs with `/` as `%2F`). Invalid
/// escapes are kept as they are; invalid UTF-8 is replaced.
pub fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("anthropic.claude-3-haiku-20240307-v1%3A0"),
            "anthropic.claude-3-haiku-20240307-v1:0"
        );
        assert_eq!(
            percent_decode("arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.x"),
            "arn:aws:bedrock:us-east-1:1:inference-profile/us.x"
        );
        assert_eq!(percent_decode("a%3a"), "a:");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("plain"), "plain");
    }
}

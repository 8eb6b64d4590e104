//! Anthropic's Messages API on the caller's side (`llm_format = "anthropic"`):
//! Claude Code and the `anthropic` SDKs. Requests are checked here as
//! Anthropic checks them; for Anthropic targets the caller's bytes go out
//! with only the model (and option defaults, and a body credential) set, for
//! the others they become the provider-neutral `Chat`. Answers and streams
//! from any provider are rendered as Anthropic's Message object and event
//! stream.
//!
//! - `validate`: the request checks, with Anthropic's dotted field paths;
//! - `translate`: the neutral `Chat`, and the prompt estimate;
//! - `render`: the Message object and the event stream.

mod render;
mod translate;
mod validate;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::chat::Chat;
use crate::ingress::splice::{remove_member, set_member};
use crate::ingress::ModelEntry;
use crate::request::resolve_model;
use crate::stream::json_str;
use crate::{LlmError, ModelDefaults};

pub use render::{render, Writer};

/// A Messages request (`POST /v1/messages`), checked.
#[derive(Debug, Clone)]
pub struct MessagesRequest {
    /// The caller's bytes, relayed as they are to Anthropic targets.
    body: Vec<u8>,
    /// The same, parsed.
    parsed: Map<String, Value>,
    /// A `count_tokens` request: no `max_tokens`, and no option defaults.
    count_tokens: bool,
    /// The caller's `anthropic-version` header, forwarded to Anthropic targets.
    pub version: Option<String>,
    /// The caller's `anthropic-beta` header, forwarded to Anthropic targets.
    pub beta: Option<String>,
}

impl MessagesRequest {
    /// Parses and checks a Messages request body.
    pub fn parse(body: &[u8]) -> Result<Self, LlmError> {
        Self::parse_as(body, false)
    }

    /// A `count_tokens` request (`POST /v1/messages/count_tokens`): a
    /// Messages request without `max_tokens`.
    pub fn parse_count_tokens(body: &[u8]) -> Result<Self, LlmError> {
        Self::parse_as(body, true)
    }

    fn parse_as(body: &[u8], count_tokens: bool) -> Result<Self, LlmError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(LlmError::invalid_request("request body is empty; expected a JSON Messages API request"));
        }
        let parsed: Map<String, Value> = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(LlmError::invalid_request("request body must be a JSON object")),
            Err(e) => return Err(LlmError::invalid_request(format!("request body is not valid JSON: {e}"))),
        };
        validate::request(&parsed, count_tokens)?;
        Ok(MessagesRequest { body: body.to_vec(), parsed, count_tokens, version: None, beta: None })
    }

    /// The body as it will be relayed (its caller key removed).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Removes a top-level field (a caller key sent in the body, `key_in_body`).
    pub fn remove_field(&mut self, name: &str) {
        if self.parsed.remove(name).is_some() {
            if let Ok(b) = remove_member(&self.body, name) {
                self.body = b;
            }
        }
    }

    pub fn is_stream(&self) -> bool {
        self.parsed.get("stream").and_then(Value::as_bool) == Some(true)
    }

    /// The caller's `max_tokens`.
    pub fn max_tokens(&self) -> Option<u64> {
        self.parsed.get("max_tokens").and_then(Value::as_u64)
    }

    /// The model the caller named, if any.
    pub fn model(&self) -> Option<&str> {
        self.parsed.get("model").and_then(Value::as_str)
    }

    /// Prompt tokens by the tokenizer: system, message texts, tool inputs and
    /// results, tool definitions, and an allowance per image and document.
    /// For token-budget admission, and `count_tokens` on other providers.
    pub fn prompt_estimate(&self) -> u64 {
        translate::prompt_estimate(&self.parsed)
    }

    /// The provider-neutral form, with the target's model and defaults.
    pub fn to_chat(&self, defaults: &ModelDefaults) -> Result<Chat, LlmError> {
        translate::to_chat(&self.parsed, defaults)
    }

    /// The body for an Anthropic target: the caller's bytes with the model
    /// (and absent option defaults, and `extra` fields) set; and the model.
    /// Every other byte is the caller's: a request naming the target's model
    /// and setting every option goes out exactly as it came.
    pub fn native_body(&self, defaults: &ModelDefaults, extra: &[(&str, &str)]) -> Result<(Vec<u8>, String), LlmError> {
        let model = resolve_model(self.model(), defaults)?;
        let mut body = if self.model() == Some(model.as_str()) {
            self.body.clone()
        } else {
            set_member(&self.body, "model", &json_string(&model))?
        };
        let absent = |name: &str| self.parsed.get(name).is_none_or(Value::is_null);
        if !self.count_tokens {
            let mut set = |name: &str, value: Option<Value>| -> Result<(), LlmError> {
                if let (Some(v), true) = (value, absent(name)) {
                    body = set_member(&body, name, &v.to_string())?;
                }
                Ok(())
            };
            set("max_tokens", defaults.max_tokens.map(Value::from))?;
            // Anthropic refuses sampling settings with thinking on.
            if !translate::thinking_on(&self.parsed) {
                set("temperature", defaults.temperature.map(Value::from))?;
                set("top_p", defaults.top_p.map(Value::from))?;
                set("top_k", defaults.top_k.map(Value::from))?;
            }
        }
        for (name, value) in extra {
            body = set_member(&body, name, &json_string(value))?;
        }
        Ok((body, model))
    }
}

fn json_string(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    json_str(&mut out, s);
    String::from_utf8(out).unwrap_or_default()
}

/// Anthropic's status and `error.type` for an error the gateway answers
/// (https://docs.anthropic.com/en/api/errors). Anthropic's clients act on
/// these: the SDKs and Claude Code retry 408, 409, 429 and every 5xx, and
/// Claude Code tells 529 (overloaded) apart. The gateway's own statuses map
/// to the code that means the same thing to them:
///
/// - 503 (no target available, every circuit open) → 529 `overloaded_error`:
///   capacity is short for now and a later retry may succeed, which is what
///   529 says; Anthropic itself answers no 503.
/// - 502 (the provider failed or answered nonsense) → 500 `api_error`:
///   Anthropic documents no 502; 500 is its "unexpected error on our side",
///   retried alike. The message still names the provider.
/// - 504 (the provider timed out) → 504 `timeout_error`, which Anthropic
///   documents as is.
/// - a model the route does not serve → 404 `not_found_error`, as Anthropic
///   answers an unknown model.
/// - other 4xx keep their status as `invalid_request_error` (Anthropic uses
///   it "for other 4XX status codes"); other 5xx become 500 `api_error`.
pub(crate) fn anthropic_error(e: &LlmError) -> (u16, &'static str) {
    if e.code == Some("model_not_found") {
        return (404, "not_found_error");
    }
    match e.status {
        400 => (400, "invalid_request_error"),
        401 => (401, "authentication_error"),
        402 => (402, "billing_error"),
        403 => (403, "permission_error"),
        404 => (404, "not_found_error"),
        409 => (409, "conflict_error"),
        413 => (413, "request_too_large"),
        429 => (429, "rate_limit_error"),
        status @ 400..=499 => (status, "invalid_request_error"),
        503 | 529 => (529, "overloaded_error"),
        504 => (504, "timeout_error"),
        _ => (500, "api_error"),
    }
}

/// `{"type":"error","error":{"type":...,"message":...}}`.
pub fn error_body(e: &LlmError) -> Bytes {
    let (_, kind) = anthropic_error(e);
    let mut out = Vec::with_capacity(e.message.len() + 64);
    render::write_error(kind, &e.message, &mut out);
    Bytes::from(out)
}

/// The status of a gateway-made error in Anthropic's terms.
pub fn error_status(e: &LlmError) -> u16 {
    anthropic_error(e).0
}

/// An `error` event that ends a stream.
pub fn stream_error_event(e: &LlmError) -> Bytes {
    let (_, kind) = anthropic_error(e);
    let mut out = Vec::with_capacity(e.message.len() + 80);
    out.extend_from_slice(b"event: error\ndata: ");
    render::write_error(kind, &e.message, &mut out);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// `GET /v1/models` in Anthropic's shape: one page holding every model. The
/// gateway knows no release dates, so `created_at` is the epoch, as Anthropic
/// writes it for a date it does not know.
pub fn models_body(models: &[ModelEntry]) -> Bytes {
    let mut out = Vec::with_capacity(64 + models.len() * 160);
    out.extend_from_slice(b"{\"data\":[");
    for (i, m) in models.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"type\":\"model\",\"id\":");
        json_str(&mut out, &m.id);
        out.extend_from_slice(b",\"display_name\":");
        json_str(&mut out, &m.id);
        out.extend_from_slice(b",\"created_at\":\"1970-01-01T00:00:00Z\",\"lifecycle\":\"active\"}");
    }
    out.extend_from_slice(b"],\"has_more\":false,\"first_id\":");
    match (models.first(), models.last()) {
        (Some(first), Some(last)) => {
            json_str(&mut out, &first.id);
            out.extend_from_slice(b",\"last_id\":");
            json_str(&mut out, &last.id);
        }
        _ => out.extend_from_slice(b"null,\"last_id\":null"),
    }
    out.push(b'}');
    Bytes::from(out)
}

/// The answer to `count_tokens`: `{"input_tokens": n}`.
pub fn count_tokens_body(input_tokens: u64) -> Bytes {
    Bytes::from(format!("{{\"input_tokens\":{input_tokens}}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned(model: &str) -> ModelDefaults {
        ModelDefaults { name: Some(model.into()), ..ModelDefaults::default() }
    }

    const HELLO: &str =
        r#"{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hello"}]}"#;

    #[test]
    fn a_full_request_parses_and_reports_its_facts() {
        let body = r#"{
            "model": "claude-sonnet-4-5", "max_tokens": 4096, "stream": true,
            "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
                    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}, "title": "T"}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "xyz"},
                    {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok", "is_error": false}]}],
            "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
            "stop_sequences": ["END"], "temperature": 1, "top_p": 0.9, "top_k": 5,
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "metadata": {"user_id": "u"}, "output_config": {"effort": "high"}
        }"#;
        let r = MessagesRequest::parse(body.as_bytes()).expect("valid");
        assert!(r.is_stream());
        assert_eq!(r.max_tokens(), Some(4096));
        assert_eq!(r.model(), Some("claude-sonnet-4-5"));
        assert_eq!(r.body(), body.as_bytes());
        let r = MessagesRequest::parse(HELLO.as_bytes()).expect("valid");
        assert!(!r.is_stream());
    }

    #[test]
    fn invalid_requests_name_the_field_as_anthropic_does() {
        let m = r#""messages":[{"role":"user","content":"x"}]"#;
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "request body is empty"),
            ("{not json".into(), "not valid JSON"),
            ("[1]".into(), "must be a JSON object"),
            (format!(r#"{{{m}}}"#), "max_tokens: Field required"),
            (format!(r#"{{{m},"max_tokens":0}}"#), "max_tokens: Input should be greater than or equal to 1"),
            (format!(r#"{{{m},"max_tokens":-3}}"#), "max_tokens: Input should be greater than or equal to 1"),
            (format!(r#"{{{m},"max_tokens":"9"}}"#), "max_tokens: Input should be a valid integer"),
            (format!(r#"{{{m},"max_tokens":1,"model":7}}"#), "model: Input should be a valid string"),
            (r#"{"max_tokens":1}"#.into(), "messages: Field required"),
            (r#"{"max_tokens":1,"messages":{}}"#.into(), "messages: Input should be a valid list"),
            (r#"{"max_tokens":1,"messages":[]}"#.into(), "messages: at least one message is required"),
            (r#"{"max_tokens":1,"messages":["hi"]}"#.into(), "messages.0: Input should be a valid dictionary"),
            (r#"{"max_tokens":1,"messages":[{"content":"x"}]}"#.into(), "messages.0.role: Field required"),
            (r#"{"max_tokens":1,"messages":[{"role":"user","content":"x"},{"role":"system","content":"x"}]}"#.into(),
                "messages.1.role: Input should be 'user' or 'assistant'"),
            (r#"{"max_tokens":1,"messages":[{"role":"user"}]}"#.into(), "messages.0.content: Field required"),
            (r#"{"max_tokens":1,"messages":[{"role":"user","content":5}]}"#.into(), "messages.0.content: Input should be a valid string or a list"),
            (r#"{"max_tokens":1,"messages":[{"role":"user","content":[{"text":"x"}]}]}"#.into(), "messages.0.content.0.type: Field required"),
            (r#"{"max_tokens":1,"messages":[{"role":"user","content":[{"type":"text"}]}]}"#.into(), "messages.0.content.0.text: Field required"),
            (r#"{"max_tokens":1,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"gif"}}]}]}"#.into(),
                "messages.0.content.0.source.type: Input should be 'base64', 'url' or 'file'"),
            (r#"{"max_tokens":1,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","data":"x"}}]}]}"#.into(),
                "messages.0.content.0.source.media_type: Field required"),
            (r#"{"max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result","content":"x"}]}]}"#.into(),
                "messages.0.content.0.tool_use_id: Field required"),
            (r#"{"max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":1}]}]}]}"#.into(),
                "messages.0.content.0.content.0.text: Input should be a valid string"),
            (r#"{"max_tokens":1,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":"{}"}]}]}"#.into(),
                "messages.0.content.0.input: Input should be a valid dictionary"),
            (r#"{"max_tokens":1,"messages":[{"role":"user","content":[{"type":"text","text":"x","cache_control":{"type":"forever"}}]}]}"#.into(),
                "messages.0.content.0.cache_control.type: Input should be 'ephemeral'"),
            (format!(r#"{{{m},"max_tokens":1,"system":[{{"type":"image"}}]}}"#), "system.0.type: Input should be 'text'"),
            (format!(r#"{{{m},"max_tokens":1,"system":3}}"#), "system: Input should be a valid string or a list of text blocks"),
            (format!(r#"{{{m},"max_tokens":1,"stream":"yes"}}"#), "stream: Input should be a valid boolean"),
            (format!(r#"{{{m},"max_tokens":1,"tools":[{{"name":"f"}}]}}"#), "tools.0.input_schema: Field required"),
            (format!(r#"{{{m},"max_tokens":1,"tools":[{{"name":"","input_schema":{{}}}}]}}"#), "tools.0.name: String should have at least 1 character"),
            (format!(r#"{{{m},"max_tokens":1,"tool_choice":{{"type":"tool"}}}}"#), "tool_choice.name: Field required"),
            (format!(r#"{{{m},"max_tokens":1,"tool_choice":{{"type":"required"}}}}"#), "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"),
            (format!(r#"{{{m},"max_tokens":1,"stop_sequences":["a",1]}}"#), "stop_sequences.1: Input should be a valid string"),
            (format!(r#"{{{m},"max_tokens":1,"temperature":1.5}}"#), "temperature: Input should be less than or equal to 1"),
            (format!(r#"{{{m},"max_tokens":1,"top_p":-0.1}}"#), "top_p: Input should be greater than or equal to 0"),
            (format!(r#"{{{m},"max_tokens":1,"top_k":1.5}}"#), "top_k: Input should be a valid integer"),
            (format!(r#"{{{m},"max_tokens":4096,"thinking":{{"type":"enabled","budget_tokens":100}}}}"#),
                "thinking.budget_tokens: Input should be greater than or equal to 1024"),
            (format!(r#"{{{m},"max_tokens":4096,"thinking":{{"type":"enabled"}}}}"#), "thinking.budget_tokens: Field required"),
            (format!(r#"{{{m},"max_tokens":1,"thinking":{{"type":"on"}}}}"#), "thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'"),
            (format!(r#"{{{m},"max_tokens":1,"metadata":{{"user_id":5}}}}"#), "metadata.user_id: Input should be a valid string"),
            (format!(r#"{{{m},"max_tokens":1,"output_config":{{"effort":"extreme"}}}}"#), "output_config.effort: Input should be"),
            (format!(r#"{{{m},"max_tokens":1,"cache_control":"yes"}}"#), "cache_control: Input should be a valid dictionary"),
        ];
        for (body, want) in &cases {
            let e = MessagesRequest::parse(body.as_bytes()).expect_err(body);
            assert_eq!(e.status, 400);
            assert!(e.message.contains(want), "{body}\n  wanted: {want}\n  got: {}", e.message);
        }
    }

    #[test]
    fn newer_block_and_tool_types_pass_the_checks_for_anthropic_to_judge() {
        let body = r#"{"max_tokens":1,"messages":[{"role":"user","content":[{"type":"search_result","source":"s","title":"t","content":[]}]},
            {"role":"assistant","content":[{"type":"server_tool_use","id":"s","name":"web_search","input":{}}]}],
            "tools":[{"type":"web_search_20250305","name":"web_search","max_uses":3}],"thinking":{"type":"adaptive"},
            "container":"c1","speed":"fast"}"#;
        assert!(MessagesRequest::parse(body.as_bytes()).is_ok());
        // With interleaved thinking the budget may pass max_tokens: Anthropic judges.
        let body = r#"{"max_tokens":2000,"messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","budget_tokens":4000}}"#;
        assert!(MessagesRequest::parse(body.as_bytes()).is_ok());
    }

    #[test]
    fn count_tokens_requests_need_no_max_tokens() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#;
        assert!(MessagesRequest::parse(body).is_err());
        let r = MessagesRequest::parse_count_tokens(body).expect("valid");
        assert_eq!(r.max_tokens(), None);
        // ...and get no option defaults on their way to Anthropic.
        let d = ModelDefaults {
            name: Some("m".into()),
            max_tokens: Some(9),
            temperature: Some(0.5),
            top_p: None,
            top_k: None,
        };
        assert_eq!(r.native_body(&d, &[]).expect("ok").0, body.to_vec());
    }

    #[test]
    fn native_body_is_the_callers_bytes_when_the_model_matches() {
        let body = "{ \"model\" : \"claude-sonnet-4-5\",\n \"max_tokens\":1024, \"messages\":[{\"role\":\"user\",\"content\":\"h\\u00e9\"}] }";
        let r = MessagesRequest::parse(body.as_bytes()).expect("valid");
        let (out, model) = r.native_body(&pinned("claude-sonnet-4-5"), &[]).expect("ok");
        assert_eq!(out, body.as_bytes());
        assert_eq!(model, "claude-sonnet-4-5");
        // An open route takes the caller's model, bytes untouched too.
        let (out, _) = r.native_body(&ModelDefaults::default(), &[]).expect("ok");
        assert_eq!(out, body.as_bytes());
    }

    #[test]
    fn native_body_sets_the_pinned_model_defaults_and_extras_only() {
        let body = r#"{"max_tokens":1024,"messages":[{"role":"user","content":"hi"}],"temperature":0.2}"#;
        let r = MessagesRequest::parse(body.as_bytes()).expect("valid");
        let d = ModelDefaults {
            name: Some("claude-x".into()),
            max_tokens: Some(50),
            temperature: Some(0.9),
            top_p: Some(0.5),
            top_k: Some(3),
        };
        let (out, model) = r.native_body(&d, &[("api_key", "k\"1")]).expect("ok");
        assert_eq!(model, "claude-x");
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(
            text,
            r#"{"api_key":"k\"1","top_k":3,"top_p":0.5,"model":"claude-x","max_tokens":1024,"messages":[{"role":"user","content":"hi"}],"temperature":0.2}"#
        );
        // Another model than the pinned one is refused, as Anthropic refuses an unknown model.
        let other = MessagesRequest::parse(HELLO.as_bytes()).expect("valid");
        let e = other.native_body(&pinned("claude-x"), &[]).expect_err("refused");
        assert_eq!((error_status(&e), e.code), (404, Some("model_not_found")));
        // With thinking on, sampling defaults stay out (Anthropic refuses them).
        let thinking = r#"{"max_tokens":4096,"messages":[{"role":"user","content":"hi"}],"thinking":{"type":"enabled","budget_tokens":1024}}"#;
        let r = MessagesRequest::parse(thinking.as_bytes()).expect("valid");
        let (out, _) = r.native_body(&d, &[]).expect("ok");
        assert_eq!(String::from_utf8(out).expect("utf8"), format!("{{\"model\":\"claude-x\",{}", &thinking[1..]));
    }

    #[test]
    fn removing_a_field_updates_bytes_and_facts() {
        let mut r =
            MessagesRequest::parse(br#"{"api_key":"k","max_tokens":1,"messages":[{"role":"user","content":"x"}]}"#)
                .expect("ok");
        r.remove_field("api_key");
        assert!(!String::from_utf8_lossy(r.body()).contains("api_key"));
        let before = r.body().to_vec();
        r.remove_field("absent");
        assert_eq!(r.body(), &before[..]);
    }

    #[test]
    fn errors_take_anthropics_shape_and_codes() {
        for (e, status, kind) in [
            (LlmError::invalid_request("bad"), 400, "invalid_request_error"),
            (LlmError::new(401, "authentication_error", "m"), 401, "authentication_error"),
            (LlmError::new(402, "x", "m"), 402, "billing_error"),
            (LlmError::new(403, "x", "m"), 403, "permission_error"),
            (LlmError::new(404, "x", "m"), 404, "not_found_error"),
            (LlmError::new(413, "x", "m"), 413, "request_too_large"),
            (LlmError::new(422, "x", "m"), 422, "invalid_request_error"),
            (LlmError::new(429, "rate_limit_error", "m"), 429, "rate_limit_error"),
            (LlmError::new(500, "internal_error", "m"), 500, "api_error"),
            (LlmError::new(502, "upstream_error", "m"), 500, "api_error"),
            (LlmError::new(503, "x", "no target available"), 529, "overloaded_error"),
            (LlmError::new(504, "x", "m"), 504, "timeout_error"),
            (LlmError::new(529, "x", "m"), 529, "overloaded_error"),
        ] {
            assert_eq!(error_status(&e), status, "{e:?}");
            let v: Value = serde_json::from_slice(&error_body(&e)).expect("json");
            assert_eq!(v, serde_json::json!({"type": "error", "error": {"type": kind, "message": e.message}}));
        }
        let e = LlmError::new(502, "upstream_error", "provider \"x\" broke");
        assert_eq!(
            &stream_error_event(&e)[..],
            &b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"provider \\\"x\\\" broke\"}}\n\n"[..]
        );
    }

    #[test]
    fn models_list_in_anthropics_shape() {
        let models = [
            ModelEntry { id: "claude-x".into(), provider: "anthropic".into() },
            ModelEntry { id: "gpt-4o".into(), provider: "openai".into() },
        ];
        let v: Value = serde_json::from_slice(&models_body(&models)).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"data": [
                {"type": "model", "id": "claude-x", "display_name": "claude-x", "created_at": "1970-01-01T00:00:00Z", "lifecycle": "active"},
                {"type": "model", "id": "gpt-4o", "display_name": "gpt-4o", "created_at": "1970-01-01T00:00:00Z", "lifecycle": "active"}],
              "has_more": false, "first_id": "claude-x", "last_id": "gpt-4o"})
        );
        let v: Value = serde_json::from_slice(&models_body(&[])).expect("json");
        assert_eq!(v, serde_json::json!({"data": [], "has_more": false, "first_id": null, "last_id": null}));
        assert_eq!(&count_tokens_body(12)[..], b"{\"input_tokens\":12}");
    }
}

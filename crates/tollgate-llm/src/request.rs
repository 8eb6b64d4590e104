//! The OpenAI-format chat request as callers send it: validation, the target's
//! model and option defaults, and the provider-neutral facts the gateway needs
//! (is it a stream, did the caller ask for usage, how many tokens may it cost).

use serde_json::{Map, Value};

use crate::LlmError;

/// Numeric fields checked at the edge, with OpenAI's documented ranges: a
/// provider would refuse them anyway, after a round trip (or, for one that
/// does not check, act on nonsense such as a negative token budget).
const NUMBERS: &[(&str, Number)] = &[
    ("max_tokens", Number::Int(1, 1 << 32)),
    ("max_completion_tokens", Number::Int(1, 1 << 32)),
    ("n", Number::Int(1, 128)),
    ("top_logprobs", Number::Int(0, 20)),
    ("seed", Number::Int(i64::MIN as i128, i64::MAX as i128)),
    ("temperature", Number::Float(0.0, 2.0)),
    ("top_p", Number::Float(0.0, 1.0)),
    ("presence_penalty", Number::Float(-2.0, 2.0)),
    ("frequency_penalty", Number::Float(-2.0, 2.0)),
];

#[derive(Clone, Copy)]
enum Number {
    Int(i128, i128),
    Float(f64, f64),
}

impl Number {
    fn check(self, name: &str, v: &Value) -> Result<(), LlmError> {
        let ok = match (self, v) {
            (_, Value::Null) => true,
            (Number::Int(lo, hi), Value::Number(n)) => {
                let i = n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from));
                i.is_some_and(|i| (lo..=hi).contains(&i))
            }
            (Number::Float(lo, hi), Value::Number(n)) => n.as_f64().is_some_and(|f| (lo..=hi).contains(&f)),
            _ => false,
        };
        if ok {
            return Ok(());
        }
        Err(LlmError::invalid_request(match self {
            Number::Int(lo, hi) => format!("'{name}' must be an integer from {lo} to {hi}"),
            Number::Float(lo, hi) => format!("'{name}' must be a number from {lo} to {hi}"),
        }))
    }
}

/// Roles an OpenAI chat message may carry.
const ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool", "function"];

/// What the target configures: its model and the defaults from `model.options`.
/// Option values are defaults, as in Kong: a value the request sets wins.
#[derive(Debug, Clone, Default)]
pub struct ModelDefaults {
    /// The model served; `None` leaves the choice to the request.
    pub name: Option<String>,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
}

/// A validated chat request, still provider-neutral.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    body: Map<String, Value>,
}

/// A request ready for one target: the bytes to send and what the gateway must
/// remember while the answer comes back.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    pub body: Vec<u8>,
    /// The model asked of the provider.
    pub model: String,
    pub stream: bool,
    /// The caller asked for the usage chunk (`stream_options.include_usage`);
    /// when false the gateway asks for it anyway and drops it on the way back.
    pub client_wants_usage: bool,
}

impl ChatRequest {
    /// Parses and validates an OpenAI chat completion request body.
    pub fn parse(body: &[u8]) -> Result<Self, LlmError> {
        if body.is_empty() {
            return Err(LlmError::invalid_request("request body is empty; expected a JSON chat completion request"));
        }
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| LlmError::invalid_request(format!("request body is not valid JSON: {e}")))?;
        let Value::Object(body) = value else {
            return Err(LlmError::invalid_request("request body must be a JSON object"));
        };
        let messages = match body.get("messages") {
            None => {
                return Err(LlmError::invalid_request("'messages' is required: a non-empty array of chat messages"))
            }
            Some(Value::Array(m)) => m,
            Some(_) => return Err(LlmError::invalid_request("'messages' must be an array of chat messages")),
        };
        if messages.is_empty() {
            return Err(LlmError::invalid_request("'messages' must not be empty"));
        }
        for (i, m) in messages.iter().enumerate() {
            let Some(obj) = m.as_object() else {
                return Err(LlmError::invalid_request(format!("messages[{i}] must be an object")));
            };
            match obj.get("role").and_then(Value::as_str) {
                Some(r) if ROLES.contains(&r) => {}
                Some(r) => {
                    return Err(LlmError::invalid_request(format!(
                        "messages[{i}].role '{r}' is not one of {}",
                        ROLES.join(", ")
                    )))
                }
                None => return Err(LlmError::invalid_request(format!("messages[{i}].role is required"))),
            }
        }
        if let Some(s) = body.get("stream") {
            if !s.is_boolean() && !s.is_null() {
                return Err(LlmError::invalid_request("'stream' must be a boolean"));
            }
        }
        if let Some(m) = body.get("model") {
            if !m.is_string() && !m.is_null() {
                return Err(LlmError::invalid_request("'model' must be a string"));
            }
        }
        for (name, kind) in NUMBERS {
            if let Some(v) = body.get(*name) {
                kind.check(name, v)?;
            }
        }
        Ok(ChatRequest { body })
    }

    pub fn is_stream(&self) -> bool {
        self.body.get("stream").and_then(Value::as_bool) == Some(true)
    }

    /// The completion limit the caller set (`max_completion_tokens` or `max_tokens`).
    pub fn max_completion_tokens(&self) -> Option<u64> {
        self.body.get("max_completion_tokens").or_else(|| self.body.get("max_tokens")).and_then(Value::as_u64)
    }

    /// The model the caller named, if any.
    pub fn model(&self) -> Option<&str> {
        self.body.get("model").and_then(Value::as_str)
    }

    /// The body as parsed (read-only), for adapters and body-located credentials.
    pub fn body(&self) -> &Map<String, Value> {
        &self.body
    }

    /// Removes a top-level field (a credential sent in the body, `key_in_body`).
    pub fn remove_field(&mut self, name: &str) -> Option<Value> {
        self.body.remove(name)
    }

    /// Applies the target's model and option defaults and returns an OpenAI-format
    /// body for it. `extra` fields (e.g. a body-located provider credential) are
    /// set last.
    pub fn prepare_openai(
        &self,
        defaults: &ModelDefaults,
        extra: &[(&str, &str)],
    ) -> Result<PreparedRequest, LlmError> {
        let mut body = self.body.clone();
        let model = resolve_model(self.model(), defaults)?;
        body.insert("model".into(), Value::String(model.clone()));
        apply_defaults(&mut body, defaults);
        let stream = self.is_stream();
        let mut client_wants_usage = false;
        if stream {
            let opts = body.entry("stream_options").or_insert_with(|| Value::Object(Map::new()));
            if !opts.is_object() {
                return Err(LlmError::invalid_request("'stream_options' must be an object"));
            }
            if let Value::Object(o) = opts {
                client_wants_usage = o.get("include_usage").and_then(Value::as_bool) == Some(true);
                o.insert("include_usage".into(), Value::Bool(true));
            }
        }
        for (k, v) in extra {
            body.insert((*k).to_string(), Value::String((*v).to_string()));
        }
        let bytes = serde_json::to_vec(&Value::Object(body))
            .map_err(|e| LlmError::new(500, "internal_error", format!("encoding request: {e}")))?;
        Ok(PreparedRequest { body: bytes, model, stream, client_wants_usage })
    }
}

/// The configured model wins; a request naming another one is refused rather
/// than silently answered by a different model.
pub(crate) fn resolve_model(requested: Option<&str>, defaults: &ModelDefaults) -> Result<String, LlmError> {
    match (&defaults.name, requested) {
        (Some(configured), None) => Ok(configured.clone()),
        (Some(configured), Some(r)) if r == configured || r.is_empty() => Ok(configured.clone()),
        (Some(configured), Some(r)) => Err(LlmError::invalid_request(format!(
            "model '{r}' is not available on this route; it serves '{configured}' (omit 'model' or send '{configured}')"
        ))
        .with_code("model_not_found")),
        (None, Some(r)) if !r.is_empty() => Ok(r.to_string()),
        (None, _) => Err(LlmError::invalid_request("'model' is required: this route does not fix a model")),
    }
}

pub(crate) fn apply_defaults(body: &mut Map<String, Value>, d: &ModelDefaults) {
    if let Some(max) = d.max_tokens {
        if !body.contains_key("max_tokens") && !body.contains_key("max_completion_tokens") {
            body.insert("max_tokens".into(), Value::from(max));
        }
    }
    if let Some(t) = d.temperature {
        body.entry("temperature").or_insert_with(|| Value::from(t));
    }
    if let Some(p) = d.top_p {
        body.entry("top_p").or_insert_with(|| Value::from(p));
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn numbers_out_of_range_or_of_the_wrong_type_are_named() {
        for (field, value, fragment) in [
            ("max_tokens", "-5", "'max_tokens' must be an integer from 1 to 4294967296"),
            ("max_tokens", "18446744073709551616", "'max_tokens' must be an integer"),
            ("max_tokens", "1.5", "'max_tokens' must be an integer"),
            ("n", "0", "'n' must be an integer from 1 to 128"),
            ("temperature", "\"hot\"", "'temperature' must be a number from 0 to 2"),
            ("temperature", "2.5", "'temperature' must be a number"),
            ("top_p", "[]", "'top_p' must be a number from 0 to 1"),
            ("presence_penalty", "-3", "'presence_penalty' must be a number from -2 to 2"),
        ] {
            let body = format!(r#"{{"messages":[{{"role":"user","content":"x"}}],"{field}":{value}}}"#);
            let err = ChatRequest::parse(body.as_bytes()).expect_err(&body);
            assert!(err.message.contains(fragment), "{body}: {}", err.message);
        }
        let fine = r#"{"messages":[{"role":"user","content":"x"}],"max_tokens":1024,"temperature":0,"top_p":1,"n":1,"seed":-7,"frequency_penalty":null}"#;
        assert!(ChatRequest::parse(fine.as_bytes()).is_ok());
    }

    use super::*;

    fn defaults() -> ModelDefaults {
        ModelDefaults {
            name: Some("gpt-4o".into()),
            max_tokens: Some(1024),
            temperature: Some(0.7),
            top_p: None,
            top_k: None,
        }
    }

    fn prepared_json(p: &PreparedRequest) -> Value {
        serde_json::from_slice(&p.body).expect("valid json")
    }

    #[test]
    fn rejects_bad_bodies_with_clear_messages() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"{not json", "not valid JSON"),
            (b"[1,2]", "must be a JSON object"),
            (b"{}", "'messages' is required"),
            (br#"{"messages":"hi"}"#, "must be an array"),
            (br#"{"messages":[]}"#, "must not be empty"),
            (br#"{"messages":[{"content":"x"}]}"#, "messages[0].role is required"),
            (br#"{"messages":[{"role":"wizard"}]}"#, "'wizard' is not one of"),
            (br#"{"messages":[{"role":"user"}],"stream":"yes"}"#, "'stream' must be a boolean"),
        ];
        for (body, want) in cases {
            let err = ChatRequest::parse(body).expect_err("must fail");
            assert_eq!(err.status, 400);
            assert!(err.message.contains(want), "{:?} -> {}", want, err.message);
        }
    }

    #[test]
    fn applies_model_and_defaults_without_overriding_the_request() {
        let req =
            ChatRequest::parse(br#"{"messages":[{"role":"user","content":"hi"}],"temperature":0.1}"#).expect("valid");
        let p = req.prepare_openai(&defaults(), &[]).expect("prepared");
        let v = prepared_json(&p);
        assert_eq!(v["model"], "gpt-4o");
        assert_eq!(v["max_tokens"], 1024);
        assert_eq!(v["temperature"], 0.1);
        assert!(!p.stream);
    }

    #[test]
    fn max_completion_tokens_counts_as_a_request_limit() {
        let req = ChatRequest::parse(br#"{"messages":[{"role":"user","content":"hi"}],"max_completion_tokens":5}"#)
            .expect("valid");
        let v = prepared_json(&req.prepare_openai(&defaults(), &[]).expect("prepared"));
        assert!(v.get("max_tokens").is_none());
    }

    #[test]
    fn another_model_is_refused_unless_the_target_leaves_it_open() {
        let req =
            ChatRequest::parse(br#"{"model":"gpt-3.5","messages":[{"role":"user","content":"hi"}]}"#).expect("valid");
        let err = req.prepare_openai(&defaults(), &[]).expect_err("refused");
        assert!(err.message.contains("'gpt-3.5' is not available"));
        let open = ModelDefaults::default();
        let p = req.prepare_openai(&open, &[]).expect("open target");
        assert_eq!(p.model, "gpt-3.5");
    }

    #[test]
    fn streams_always_ask_for_usage_and_remember_whether_the_client_did() {
        let req = ChatRequest::parse(br#"{"messages":[{"role":"user","content":"hi"}],"stream":true}"#).expect("valid");
        let p = req.prepare_openai(&defaults(), &[]).expect("prepared");
        assert!(p.stream && !p.client_wants_usage);
        assert_eq!(prepared_json(&p)["stream_options"]["include_usage"], true);

        let req = ChatRequest::parse(
            br#"{"messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#,
        )
        .expect("valid");
        assert!(req.prepare_openai(&defaults(), &[]).expect("prepared").client_wants_usage);
    }
}

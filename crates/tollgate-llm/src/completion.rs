//! The provider-neutral form of an answer, and its OpenAI `chat.completion` JSON.
//! Adapters parse a provider's answer into a `Completion`; the gateway sends
//! the OpenAI form to the caller.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::chat::ToolCall;
use crate::Usage;

/// Why generation stopped, in OpenAI's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
        }
    }
}

/// What the gateway knows of the request while it translates the answer.
#[derive(Debug, Clone, Default)]
pub struct AnswerMeta {
    /// Used as the completion id when the provider gives none (`chatcmpl-<request id>`).
    pub fallback_id: String,
    /// Unix seconds, the completion's `created`.
    pub created: u64,
    /// The model asked of the provider, used when the answer names none.
    pub model: String,
    /// The caller asked for the usage chunk at the end of a stream.
    pub client_wants_usage: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub id: String,
    pub created: u64,
    pub model: String,
    /// `None` when the answer only calls tools.
    pub text: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<FinishReason>,
    pub usage: Option<Usage>,
}

impl Completion {
    /// An empty completion carrying the request's identity, for adapters to fill.
    pub fn new(meta: &AnswerMeta) -> Self {
        Completion {
            id: meta.fallback_id.clone(),
            created: meta.created,
            model: meta.model.clone(),
            text: None,
            tool_calls: Vec::new(),
            finish_reason: None,
            usage: None,
        }
    }

    /// OpenAI's `chat.completion` object.
    pub fn to_openai(&self) -> Bytes {
        let mut message = json!({ "role": "assistant", "content": self.text, "refusal": null });
        if !self.tool_calls.is_empty() {
            message["tool_calls"] = Value::Array(
                self.tool_calls
                    .iter()
                    .map(|c| {
                        json!({"id": c.id, "type": "function",
                               "function": {"name": c.name, "arguments": c.arguments}})
                    })
                    .collect(),
            );
        }
        let mut v = json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": self.finish_reason.map(FinishReason::as_str),
            }],
        });
        if let Some(u) = &self.usage {
            v["usage"] = usage_json(u);
        }
        Bytes::from(v.to_string())
    }
}

/// OpenAI's `usage` object.
pub fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_shape_with_tool_calls_and_usage() {
        let c = Completion {
            id: "msg_1".into(),
            created: 7,
            model: "claude".into(),
            text: None,
            tool_calls: vec![ToolCall { id: "t1".into(), name: "f".into(), arguments: "{\"a\":1}".into() }],
            finish_reason: Some(FinishReason::ToolCalls),
            usage: Some(Usage { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7, cached_tokens: 1 }),
        };
        let v: Value = serde_json::from_slice(&c.to_openai()).expect("json");
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"], "{\"a\":1}");
        assert_eq!(v["usage"]["total_tokens"], 7);
        assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 1);
    }
}

//! The provider-neutral form of an answer, and its OpenAI `chat.completion` JSON.
//! Adapters parse a provider's answer into a `Completion`; the gateway sends
//! the OpenAI form to the caller.

use bytes::Bytes;
use serde::Serialize;

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
    /// The gateway's request id, from which caller formats with ids of
    /// their own make one (`msg_<id>`, `resp_<id>`) when the provider gives none.
    pub request_id: String,
    /// Request fields the caller's answer format repeats (the Responses API
    /// echoes `instructions`, `tools`, `temperature`...), when it does.
    pub echo: Option<std::sync::Arc<serde_json::Map<String, serde_json::Value>>>,
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
    /// Reasoning the model showed before its answer, in order.
    pub thinking: Vec<crate::chat::Thinking>,
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
            thinking: Vec::new(),
            tool_calls: Vec::new(),
            finish_reason: None,
            usage: None,
        }
    }

    /// OpenAI's `chat.completion` object, serialized straight from the
    /// completion (no JSON tree: this runs once per translated answer).
    pub fn to_openai(&self) -> Bytes {
        let wire = WireCompletion {
            id: &self.id,
            object: "chat.completion",
            created: self.created,
            model: &self.model,
            choices: [WireChoice {
                index: 0,
                message: WireMessage {
                    role: "assistant",
                    content: self.text.as_deref(),
                    refusal: None,
                    tool_calls: self
                        .tool_calls
                        .iter()
                        .map(|c| WireToolCall {
                            id: &c.id,
                            kind: "function",
                            function: WireFunction { name: &c.name, arguments: &c.arguments },
                        })
                        .collect(),
                },
                logprobs: None,
                finish_reason: self.finish_reason.map(FinishReason::as_str),
            }],
            usage: self.usage.as_ref().map(WireUsage::from),
        };
        // Serializing these borrowed structs cannot fail (string keys, no maps).
        Bytes::from(serde_json::to_vec(&wire).unwrap_or_default())
    }
}

#[derive(Serialize)]
struct WireCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [WireChoice<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<WireUsage>,
}

#[derive(Serialize)]
struct WireChoice<'a> {
    index: u32,
    message: WireMessage<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    refusal: Option<()>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    arguments: &'a str,
}

/// OpenAI's `usage` object.
#[derive(Serialize)]
struct WireUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: WireUsageDetails,
}

#[derive(Serialize)]
struct WireUsageDetails {
    cached_tokens: u64,
}

impl From<&Usage> for WireUsage {
    fn from(u: &Usage) -> Self {
        WireUsage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
            prompt_tokens_details: WireUsageDetails { cached_tokens: u.cached_tokens },
        }
    }
}

/// Appends OpenAI's `usage` object (a stream's usage chunk).
pub fn write_usage(u: &Usage, out: &mut Vec<u8>) {
    // Writing plain structs into a Vec cannot fail.
    let _ = serde_json::to_writer(out, &WireUsage::from(u));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn openai_shape_with_tool_calls_and_usage() {
        let c = Completion {
            id: "msg_1".into(),
            created: 7,
            model: "claude".into(),
            text: None,
            thinking: Vec::new(),
            tool_calls: vec![ToolCall { id: "t1".into(), name: "f".into(), arguments: "{\"a\":1}".into() }],
            finish_reason: Some(FinishReason::ToolCalls),
            usage: Some(Usage {
                prompt_tokens: 3,
                completion_tokens: 4,
                total_tokens: 7,
                cached_tokens: 1,
                ..Default::default()
            }),
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

//! Cohere's Chat API v2 (`POST /v2/chat`): OpenAI chat requests become v2
//! chat requests, v2 answers and their SSE streams become OpenAI completions
//! and chunks.
//!
//! Reference: https://docs.cohere.com/reference/chat and
//! https://docs.cohere.com/reference/chat-stream (the `cohere-openapi.yaml` of
//! github.com/cohere-ai/cohere-developer-experience), streaming guides
//! https://docs.cohere.com/v2/docs/streaming and
//! https://docs.cohere.com/v2/docs/tool-use-streaming.
//!
//! Choices where the formats differ:
//! - `tool_plan` (the model's plan before it calls tools) has no neutral field:
//!   answers and streams drop it. An assistant turn the caller replays with
//!   text *and* tool calls sends that text back as `tool_plan`, the shape
//!   Cohere's own tool-calling turns have.
//! - Reasoning (https://docs.cohere.com/docs/reasoning): `thinking` with a
//!   `token_budget` in requests; `thinking` content blocks of answers and
//!   streams are the answer's thinking, and replayed thinking goes back as
//!   `thinking` content of the assistant turn.
//! - Finish reasons: COMPLETE and STOP_SEQUENCE are `stop`, MAX_TOKENS and
//!   TIMEOUT (the generation was cut short) are `length`, TOOL_CALL is
//!   `tool_calls`, v1's ERROR_TOXIC is `content_filter`. ERROR means the
//!   generation failed: the answer becomes a 502, a stream ends with an error.
//! - Cohere's answers do not name the model; the one asked is reported.

use serde_json::{json, Map, Value};

use crate::chat::{Chat, Image, Message, Part, ResponseFormat, Thinking, ToolCall, ToolChoice};
use crate::completion::{AnswerMeta, Completion, FinishReason};
use crate::provider::ProviderOptions;
use crate::sse::{event_data, EventSplitter};
use crate::stream::{Decoder, Delta, UsageUpdate};
use crate::{LlmError, Usage};

const PROVIDER: &str = "cohere";

/// Optional fields v2 chat honours. `parallel_tool_calls: false` has no
/// equivalent and is dropped; a `tool_choice` naming one function is refused
/// below (v2 only knows REQUIRED and NONE).
const SUPPORTED: &[&str] = &[
    "thinking",
    "stop",
    "top_k",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
    "tools",
    "tool_choice",
];

/// The v2 chat request body for a chat request.
pub fn request(chat: &Chat, _opts: &ProviderOptions) -> Result<Map<String, Value>, LlmError> {
    chat.refuse_unsupported(PROVIDER, SUPPORTED)?;
    let mut body = Map::new();
    body.insert("model".into(), Value::from(chat.model.as_str()));
    body.insert("messages".into(), Value::Array(chat.messages.iter().map(message).collect()));
    body.insert("stream".into(), Value::Bool(chat.stream));
    // max_tokens is optional: Cohere defaults to the model's output limit.
    if let Some(n) = chat.max_tokens {
        body.insert("max_tokens".into(), Value::from(n));
    }
    if let Some(t) = chat.temperature {
        body.insert("temperature".into(), Value::from(t));
    }
    if let Some(p) = chat.top_p {
        body.insert("p".into(), Value::from(p));
    }
    if let Some(k) = chat.top_k {
        body.insert("k".into(), Value::from(k));
    }
    if let Some(seed) = chat.seed {
        // Cohere's seed is unsigned; a negative one would be rejected upstream
        // with a less helpful message.
        let seed = u64::try_from(seed)
            .map_err(|_| LlmError::invalid_request("'seed' must be a non-negative integer for provider cohere"))?;
        body.insert("seed".into(), Value::from(seed));
    }
    if !chat.stop.is_empty() {
        body.insert("stop_sequences".into(), Value::from(chat.stop.clone()));
    }
    if let Some(f) = chat.frequency_penalty {
        body.insert("frequency_penalty".into(), Value::from(f));
    }
    if let Some(p) = chat.presence_penalty {
        body.insert("presence_penalty".into(), Value::from(p));
    }
    if let Some(r) = chat.reasoning {
        body.insert("thinking".into(), json!({"type": "enabled", "token_budget": r.budget()}));
    }
    if !chat.tools.is_empty() {
        let tools = chat
            .tools
            .iter()
            .map(|t| {
                let mut function = Map::new();
                function.insert("name".into(), Value::from(t.name.as_str()));
                if let Some(d) = &t.description {
                    function.insert("description".into(), Value::from(d.as_str()));
                }
                function.insert("parameters".into(), t.parameters.clone());
                json!({"type": "function", "function": function})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    match &chat.tool_choice {
        // Leaving tool_choice out lets the model choose: OpenAI's `auto`.
        None | Some(ToolChoice::Auto) => {}
        Some(ToolChoice::None) => {
            body.insert("tool_choice".into(), Value::from("NONE"));
        }
        Some(ToolChoice::Required) => {
            body.insert("tool_choice".into(), Value::from("REQUIRED"));
        }
        Some(ToolChoice::Function(_)) => {
            return Err(LlmError::invalid_request(
                "'tool_choice' naming a function is not supported by provider cohere (it takes 'required' or 'none'); \
                 use one of those or route to a provider that supports it",
            )
            .with_code("unsupported_parameter"))
        }
    }
    match &chat.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            body.insert("response_format".into(), json!({"type": "json_object"}));
        }
        // Cohere enforces a given schema by constrained decoding, so a
        // non-strict request gets at least what it asked for.
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            body.insert("response_format".into(), json!({"type": "json_object", "json_schema": schema}));
        }
    }
    Ok(body)
}

/// One message; v2 keeps OpenAI's roles (developer messages are system ones).
fn message(m: &Message) -> Value {
    match m {
        Message::System { text } => json!({"role": "system", "content": text}),
        Message::User { parts } => json!({"role": "user", "content": user_content(parts)}),
        Message::Assistant { text, tool_calls, thinking } => {
            let mut out = Map::new();
            out.insert("role".into(), Value::from("assistant"));
            // Thinking goes back as content blocks (redacted thinking, being
            // another provider's opaque data, cannot).
            let mut content: Vec<Value> = thinking
                .iter()
                .filter(|t| t.redacted.is_none() && !t.text.is_empty())
                .map(|t| json!({"type": "thinking", "thinking": t.text}))
                .collect();
            if tool_calls.is_empty() {
                let text = text.clone().unwrap_or_default();
                if content.is_empty() {
                    out.insert("content".into(), Value::from(text));
                } else {
                    if !text.is_empty() {
                        content.push(json!({"type": "text", "text": text}));
                    }
                    out.insert("content".into(), Value::Array(content));
                }
            } else {
                if !content.is_empty() {
                    out.insert("content".into(), Value::Array(content));
                }
                if let Some(plan) = text.as_deref().filter(|t| !t.is_empty()) {
                    out.insert("tool_plan".into(), Value::from(plan));
                }
                let calls = tool_calls
                    .iter()
                    .map(|c| {
                        json!({"id": c.id, "type": "function",
                               "function": {"name": c.name, "arguments": crate::chat::arguments_or_empty_object(&c.arguments)}})
                    })
                    .collect();
                out.insert("tool_calls".into(), Value::Array(calls));
            }
            Value::Object(out)
        }
        Message::Tool { tool_call_id, content, .. } => {
            json!({"role": "tool", "tool_call_id": tool_call_id, "content": content})
        }
    }
}

/// A user turn's content: a plain string when it is one text, else blocks.
/// Images go as `image_url` blocks, which take a web URL or a data: URI.
fn user_content(parts: &[Part]) -> Value {
    match parts {
        [] => Value::from(""),
        [Part::Text(t)] => Value::from(t.as_str()),
        _ => Value::Array(
            parts
                .iter()
                .map(|p| match p {
                    Part::Text(t) => json!({"type": "text", "text": t}),
                    Part::Image(Image::Url(url)) => json!({"type": "image_url", "image_url": {"url": url}}),
                    Part::Image(Image::Base64 { media_type, data }) => json!({
                        "type": "image_url",
                        "image_url": {"url": format!("data:{media_type};base64,{data}")}
                    }),
                    // Refused before translation (not in SUPPORTED).
                    Part::Document(_) => json!({"type": "text", "text": ""}),
                })
                .collect(),
        ),
    }
}

/// A successful v2 chat answer, parsed.
pub fn answer(body: &[u8], meta: &AnswerMeta) -> Result<Completion, LlmError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| not_an_answer())?;
    let message = v.get("message").filter(|m| m.is_object()).ok_or_else(not_an_answer)?;
    let reason = v.get("finish_reason").and_then(Value::as_str);
    if reason == Some("ERROR") {
        return Err(upstream("reported that the generation failed (finish_reason ERROR)".into()));
    }
    let mut c = Completion::new(meta);
    if let Some(id) = v.get("id").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        c.id = id.to_string();
    }
    c.tool_calls = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| calls.iter().enumerate().map(|(i, call)| tool_call(call, i)).collect())
        .unwrap_or_default();
    let text = answer_text(message.get("content"));
    let thinking = answer_thinking(message.get("content"));
    if !thinking.is_empty() {
        c.thinking.push(Thinking { text: thinking, ..Thinking::default() });
    }
    // Text-free turns that call tools have no content, as in OpenAI.
    c.text = if text.is_empty() && !c.tool_calls.is_empty() { None } else { Some(text) };
    c.finish_reason = reason.map(finish_reason);
    c.usage = v.get("usage").map(|u| {
        let u = usage(u);
        let (prompt, completion) = (u.prompt.unwrap_or(0), u.completion.unwrap_or(0));
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt.saturating_add(completion),
            cached_tokens: u.cached.unwrap_or(0),
            ..Usage::default()
        }
    });
    Ok(c)
}

/// The text blocks of an answer's content (thinking blocks are left out); v2
/// sends an array of blocks, a plain string is read too.
fn answer_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// The thinking blocks of an answer's content.
fn answer_thinking(content: Option<&Value>) -> String {
    match content {
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("thinking"))
            .filter_map(|b| b.get("thinking").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// A v2 tool call; `index` names it when Cohere gave no id.
fn tool_call(call: &Value, index: usize) -> ToolCall {
    let function = call.get("function");
    ToolCall {
        id: call
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("call_{index}")),
        name: function.and_then(|f| f.get("name")).and_then(Value::as_str).unwrap_or_default().to_string(),
        arguments: arguments(function.and_then(|f| f.get("arguments"))),
    }
}

/// Arguments as JSON text: v2 sends a string; an object is serialised.
fn arguments(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Maps a finish reason other than ERROR (see the module comment).
fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "MAX_TOKENS" | "TIMEOUT" | "ERROR_LIMIT" => FinishReason::Length,
        "TOOL_CALL" => FinishReason::ToolCalls,
        "ERROR_TOXIC" => FinishReason::ContentFilter,
        // COMPLETE, STOP_SEQUENCE, and any reason added later.
        _ => FinishReason::Stop,
    }
}

/// v2's usage: `tokens` counts what the model read and wrote, `billed_units`
/// what was billed (without the preamble Cohere adds); `tokens` is preferred,
/// field by field. Counts are JSON numbers that may be written as floats.
fn usage(u: &Value) -> UsageUpdate {
    let count = |group: &str, field: &str| u.get(group).and_then(|g| g.get(field)).and_then(token_count);
    UsageUpdate {
        prompt: count("tokens", "input_tokens").or_else(|| count("billed_units", "input_tokens")),
        completion: count("tokens", "output_tokens").or_else(|| count("billed_units", "output_tokens")),
        cached: u.get("cached_tokens").and_then(token_count),
        ..UsageUpdate::default()
    }
}

fn token_count(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            // `as` saturates: no panic on a huge float.
            .map(|f| f.round() as u64)
    })
}

fn upstream(what: String) -> LlmError {
    LlmError::new(502, "upstream_error", format!("provider {PROVIDER} {what}"))
}

fn not_an_answer() -> LlmError {
    upstream("returned an answer that is not a chat completion".into())
}

/// Decodes v2's SSE stream: typed events (`message-start`, `content-delta`,
/// `tool-call-start`, `message-end`, ...) and a final `data: [DONE]`.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    splitter: EventSplitter,
    /// Cohere's `index` of each tool call started so far; the position is the
    /// call's OpenAI index.
    tool_calls: Vec<Option<u64>>,
    /// Content blocks that hold thinking, whose deltas are thinking, not text.
    thinking_blocks: Vec<u64>,
    /// `message-end` or an error arrived: the rest is ignored.
    ended: bool,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn event(&mut self, event: &[u8], out: &mut Vec<Delta>) {
        if event_name(event).is_some_and(|name| SKIPPED.contains(&name)) {
            return;
        }
        let Some(data) = event_data(event) else {
            return;
        };
        let data = data.trim_ascii();
        if data.is_empty() || data == b"[DONE]" {
            return;
        }
        let Ok(v) = serde_json::from_slice::<Value>(data) else {
            return self.fail(out, "sent a stream event that is not JSON".into());
        };
        let delta = v.get("delta");
        let index = v.get("index").and_then(Value::as_u64);
        match v.get("type").and_then(Value::as_str) {
            Some("message-start") => {
                let id = v.get("id").and_then(Value::as_str).map(str::to_string);
                if id.is_some() {
                    out.push(Delta::Meta { id, model: None });
                }
            }
            Some("content-start") => {
                let content = delta.and_then(|d| d.get("message")).and_then(|m| m.get("content"));
                if content.and_then(|c| c.get("type")).and_then(Value::as_str) == Some("thinking") {
                    self.thinking_blocks.push(index.unwrap_or(0));
                    push_thinking(out, content);
                } else {
                    push_text(out, content);
                }
            }
            Some("content-delta") => {
                let content = delta.and_then(|d| d.get("message")).and_then(|m| m.get("content"));
                if self.thinking_blocks.contains(&index.unwrap_or(0)) {
                    push_thinking(out, content);
                } else {
                    push_text(out, content);
                }
            }
            Some("tool-call-start") => self.tool_call_start(index, delta, out),
            Some("tool-call-delta") => self.tool_call_delta(index, delta, out),
            Some("message-end") => self.message_end(delta, out),
            // An error event is not documented; read one if it comes.
            Some("error") => self.fail(out, format!("reported an error mid-stream: {}", error_text(&v))),
            // content-end, tool-plan-delta, tool-call-end, citations, debug and
            // any type added later carry nothing the OpenAI stream has.
            Some(_) => {}
            // An object without a type is Cohere's error body (`{"message"}`).
            None => self.fail(out, format!("reported an error mid-stream: {}", error_text(&v))),
        }
    }

    fn tool_call_start(&mut self, index: Option<u64>, delta: Option<&Value>, out: &mut Vec<Delta>) {
        let Some(call) = delta.and_then(|d| d.get("message")).and_then(|m| m.get("tool_calls")) else {
            return;
        };
        // The documented shape is one call object; tolerate a one-call array.
        let call = match call {
            Value::Array(calls) => calls.first().unwrap_or(&Value::Null),
            one => one,
        };
        let ours = self.tool_calls.len();
        self.tool_calls.push(index);
        let call = tool_call(call, ours);
        out.push(Delta::ToolCall {
            index: u32::try_from(ours).unwrap_or(u32::MAX),
            id: Some(call.id),
            name: Some(call.name),
            arguments: call.arguments,
        });
    }

    fn tool_call_delta(&mut self, index: Option<u64>, delta: Option<&Value>, out: &mut Vec<Delta>) {
        let fragment = delta
            .and_then(|d| d.get("message"))
            .and_then(|m| m.get("tool_calls"))
            .and_then(|c| c.get("function"))
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        // The call Cohere's index names, else the latest one; a fragment
        // before any call started has nothing to belong to.
        let ours = self
            .tool_calls
            .iter()
            .position(|i| index.is_some() && *i == index)
            .or_else(|| self.tool_calls.len().checked_sub(1));
        if let (Some(ours), false) = (ours, fragment.is_empty()) {
            out.push(Delta::ToolCall {
                index: u32::try_from(ours).unwrap_or(u32::MAX),
                id: None,
                name: None,
                arguments: fragment.to_string(),
            });
        }
    }

    fn message_end(&mut self, delta: Option<&Value>, out: &mut Vec<Delta>) {
        let error = delta.and_then(|d| d.get("error")).and_then(Value::as_str).filter(|e| !e.is_empty());
        let reason = delta.and_then(|d| d.get("finish_reason")).and_then(Value::as_str);
        if let Some(e) = error {
            return self.fail(out, format!("reported an error mid-stream: {e}"));
        }
        if reason == Some("ERROR") {
            return self.fail(out, "reported that the generation failed (finish_reason ERROR)".into());
        }
        // A message-end without a reason still ends the answer normally.
        out.push(Delta::Finish(reason.map(finish_reason).unwrap_or(FinishReason::Stop)));
        if let Some(u) = delta.and_then(|d| d.get("usage")) {
            out.push(Delta::Usage(usage(u)));
        }
        out.push(Delta::Done);
        self.ended = true;
    }

    fn fail(&mut self, out: &mut Vec<Delta>, what: String) {
        out.push(Delta::Error(upstream(what)));
        self.ended = true;
    }
}

/// Events that carry nothing the OpenAI stream has, by their `event:` name:
/// they are not even parsed (a tool plan alone can be dozens of events).
const SKIPPED: &[&[u8]] =
    &[b"tool-plan-delta", b"content-end", b"tool-call-end", b"citation-start", b"citation-end", b"debug"];

/// The `event:` name of an SSE event.
fn event_name(event: &[u8]) -> Option<&[u8]> {
    event.split(|b| *b == b'\n').find_map(|line| line.strip_prefix(b"event:")).map(<[u8]>::trim_ascii)
}

/// The non-empty `text` of a content object.
fn push_text(out: &mut Vec<Delta>, content: Option<&Value>) {
    if let Some(t) = content.and_then(|c| c.get("text")).and_then(Value::as_str).filter(|t| !t.is_empty()) {
        out.push(Delta::Text(t.to_string()));
    }
}

/// The non-empty `thinking` of a content object.
fn push_thinking(out: &mut Vec<Delta>, content: Option<&Value>) {
    if let Some(t) = content.and_then(|c| c.get("thinking")).and_then(Value::as_str).filter(|t| !t.is_empty()) {
        out.push(Delta::Thinking(t.to_string()));
    }
}

/// The message of an error object, else the object itself (briefly).
fn error_text(v: &Value) -> String {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    s(v.get("message"))
        .or_else(|| s(v.get("error")))
        .or_else(|| s(v.get("error").and_then(|e| e.get("message"))))
        .unwrap_or_else(|| v.to_string().chars().take(200).collect())
}

impl Decoder for StreamDecoder {
    fn decode(&mut self, input: &[u8], out: &mut Vec<Delta>) {
        self.splitter.push(input);
        while let Some(event) = self.splitter.next_event() {
            if !self.ended {
                self.event(&event, out);
            }
        }
    }

    fn end(&mut self, _out: &mut Vec<Delta>) {
        // An event the body ended inside is not dispatched (as the SSE spec
        // says); a stream cut before message-end is reported by the gateway.
        let _ = self.splitter.take_rest();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::assert_split_invariant;
    use crate::stream::openai_events as events;
    use crate::{ChatRequest, ModelDefaults};

    fn chat(body: &str) -> Result<Chat, LlmError> {
        let req = ChatRequest::parse(body.as_bytes()).expect("parses");
        Chat::from_request(&req, &ModelDefaults { name: Some("command-a-03-2025".into()), ..ModelDefaults::default() })
    }

    fn meta() -> AnswerMeta {
        AnswerMeta {
            fallback_id: "chatcmpl-r1".into(),
            created: 7,
            model: "command-a-03-2025".into(),
            client_wants_usage: true,
            ..AnswerMeta::default()
        }
    }

    // https://docs.cohere.com/reference/chat-stream, "Default" example.
    const STREAM_TEXT: &[u8] = include_bytes!("../tests/golden/answers/cohere/stream_text.sse");

    #[test]
    fn unsupported_fields_are_refused_by_name() {
        let opts = ProviderOptions::default();
        for (body, name) in [
            (
                r#"{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"f"}}}"#,
                "'tool_choice'",
            ),
            (r#"{"messages":[{"role":"user","content":"x"}],"logprobs":true}"#, "'logprobs'"),
            (r#"{"messages":[{"role":"user","content":"x"}],"n":2}"#, "'n'"),
            (r#"{"messages":[{"role":"user","content":"x"}],"seed":-1}"#, "'seed'"),
        ] {
            let e = request(&chat(body).expect("valid"), &opts).expect_err(body);
            assert_eq!(e.status, 400);
            assert!(e.message.contains(name), "{body}: {}", e.message);
        }
        // One call at a time cannot be asked of Cohere: the wish is dropped.
        let body = r#"{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"parallel_tool_calls":false}"#;
        let v = request(&chat(body).expect("valid"), &opts).expect("dropped, not refused");
        assert!(!v.contains_key("parallel_tool_calls"));
    }

    #[test]
    fn finish_reasons_and_faults() {
        // billed_units alone and the rest: tests/golden/answers/cohere/max_tokens.json.
        for (reason, want) in [
            ("STOP_SEQUENCE", FinishReason::Stop),
            ("TIMEOUT", FinishReason::Length),
            ("ERROR_TOXIC", FinishReason::ContentFilter),
        ] {
            let body =
                format!(r#"{{"id":"x","finish_reason":"{reason}","message":{{"role":"assistant","content":[]}}}}"#);
            assert_eq!(answer(body.as_bytes(), &meta()).expect("answer").finish_reason, Some(want));
        }
        let e = answer(br#"{"id":"x","finish_reason":"ERROR","message":{"role":"assistant"}}"#, &meta())
            .expect_err("error");
        assert_eq!((e.status, e.kind), (502, "upstream_error"));
        assert!(e.message.contains("cohere"));
        for bad in [&b"<html>"[..], b"{}", b"[]", b"{\"message\":\"x\"}"] {
            assert_eq!(answer(bad, &meta()).expect_err("not an answer").status, 502);
        }
    }

    #[test]
    fn garbage_and_cut_streams() {
        // Thinking blocks and CRLF framing: tests/golden/answers/cohere/stream_thinking.sse.
        let out = assert_split_invariant(StreamDecoder::new, &meta(), b"data: <html>oops</html>\n\n");
        assert_eq!(events(&out)[0]["error"]["type"], "upstream_error");

        let cut = &STREAM_TEXT[..STREAM_TEXT.len() / 2];
        let (out, _, completed) = crate::stream::translate_in_pieces(StreamDecoder::new(), meta(), &[cut]);
        assert!(!completed);
        assert!(events(&out).iter().all(|e| e.get("error").is_none()));
    }
}

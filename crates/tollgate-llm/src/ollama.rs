//! Ollama's native chat API (`POST /api/chat`): OpenAI chat requests become
//! Ollama chat requests, its answers and newline-delimited JSON streams become
//! OpenAI completions and chunks.
//!
//! Reference: https://github.com/ollama/ollama/blob/main/docs/api.md#generate-a-chat-completion,
//! https://docs.ollama.com/api/streaming and https://docs.ollama.com/api/errors.
//!
//! Choices where the formats differ:
//! - Ollama streams unless told not to, so `stream` is always sent.
//! - Images are base64 only: an image URL is refused (send a data: URI).
//!   A user turn's text parts are joined by newlines, its images go in `images`.
//! - Tool call arguments are JSON objects on Ollama's side, strings on OpenAI's.
//!   Tool results carry `tool_call_id` (newer Ollama) and `tool_name` (older),
//!   the name looked up from the assistant turn that made the call.
//! - Answers have no id: the gateway's fallback id is used. Tool calls without
//!   an id are named `call_<index>`. `done_reason` `length` is `length`,
//!   anything else `stop`, or `tool_calls` when the answer calls tools.
//! - Reasoning (https://docs.ollama.com/capabilities/thinking): `think: true`,
//!   or the effort for models that take levels (gpt-oss: low, medium, high);
//!   `message.thinking` of answers and stream lines is the answer's thinking,
//!   and replayed thinking goes back in the assistant message's `thinking`.
//! - Sampling settings the caller leaves out keep the model's own defaults
//!   (its Modelfile), as Ollama does.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::chat::{unsupported, Chat, Effort, Image, Message, Part, ResponseFormat, Thinking, ToolCall, ToolChoice};
use crate::completion::{AnswerMeta, Completion, FinishReason};
use crate::provider::ProviderOptions;
use crate::stream::{Decoder, Delta, UsageUpdate};
use crate::{LlmError, Usage};

const PROVIDER: &str = "ollama";

/// Optional fields /api/chat honours. `parallel_tool_calls: false` has no
/// equivalent and is dropped; `tool_choice` is accepted here only to refuse
/// every value but `auto` by name below (Ollama always lets the model choose).
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

/// The /api/chat request body for a chat request.
pub fn request(chat: &Chat, _opts: &ProviderOptions) -> Result<Map<String, Value>, LlmError> {
    chat.refuse_unsupported(PROVIDER, SUPPORTED)?;
    if !matches!(chat.tool_choice, None | Some(ToolChoice::Auto)) {
        return Err(unsupported(PROVIDER, "tool_choice"));
    }
    let mut body = Map::new();
    body.insert("model".into(), Value::from(chat.model.as_str()));
    body.insert("messages".into(), Value::Array(messages(&chat.messages)?));
    body.insert("stream".into(), Value::Bool(chat.stream));
    if let Some(r) = chat.reasoning {
        body.insert("think".into(), think(&chat.model, r));
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
    match &chat.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            body.insert("format".into(), Value::from("json"));
        }
        // Ollama constrains the output to the schema by grammar, so a
        // non-strict request gets at least what it asked for.
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            body.insert("format".into(), schema.clone());
        }
    }
    let options = options(chat);
    if !options.is_empty() {
        body.insert("options".into(), Value::Object(options));
    }
    Ok(body)
}

/// `think`: a level for models that take levels (gpt-oss, whose levels are
/// low, medium and high; Ollama silently ignores a value outside a model's
/// list), `true` for the others.
fn think(model: &str, r: crate::chat::Reasoning) -> Value {
    if model.contains("gpt-oss") {
        Value::from(match r.effort() {
            Effort::Minimal | Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
        })
    } else {
        Value::Bool(true)
    }
}

/// Sampling settings, which Ollama reads from `options`.
fn options(chat: &Chat) -> Map<String, Value> {
    let mut o = Map::new();
    if let Some(n) = chat.max_tokens {
        o.insert("num_predict".into(), Value::from(n));
    }
    if let Some(t) = chat.temperature {
        o.insert("temperature".into(), Value::from(t));
    }
    if let Some(p) = chat.top_p {
        o.insert("top_p".into(), Value::from(p));
    }
    if let Some(k) = chat.top_k {
        o.insert("top_k".into(), Value::from(k));
    }
    if let Some(s) = chat.seed {
        o.insert("seed".into(), Value::from(s));
    }
    if !chat.stop.is_empty() {
        o.insert("stop".into(), Value::from(chat.stop.clone()));
    }
    if let Some(p) = chat.presence_penalty {
        o.insert("presence_penalty".into(), Value::from(p));
    }
    if let Some(f) = chat.frequency_penalty {
        o.insert("frequency_penalty".into(), Value::from(f));
    }
    o
}

fn messages(list: &[Message]) -> Result<Vec<Value>, LlmError> {
    // Tool results name their tool for Ollama versions that read `tool_name`.
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        out.push(match m {
            Message::System { text } => json!({"role": "system", "content": text}),
            Message::User { parts } => user_message(i, parts)?,
            Message::Assistant { text, tool_calls, thinking } => {
                let mut msg = Map::new();
                msg.insert("role".into(), Value::from("assistant"));
                msg.insert("content".into(), Value::from(text.clone().unwrap_or_default()));
                let thought: String = thinking.iter().filter(|t| t.redacted.is_none()).map(|t| t.text.as_str()).collect();
                if !thought.is_empty() {
                    msg.insert("thinking".into(), Value::from(thought));
                }
                if !tool_calls.is_empty() {
                    let mut calls = Vec::with_capacity(tool_calls.len());
                    for (j, c) in tool_calls.iter().enumerate() {
                        names.insert(c.id.as_str(), c.name.as_str());
                        let arguments = object_arguments(&c.arguments).ok_or_else(|| {
                            LlmError::invalid_request(format!(
                                "messages[{i}].tool_calls[{j}].function.arguments must be a JSON object for provider ollama"
                            ))
                        })?;
                        calls.push(json!({"id": c.id, "function": {"name": c.name, "arguments": arguments}}));
                    }
                    msg.insert("tool_calls".into(), Value::Array(calls));
                }
                Value::Object(msg)
            }
            Message::Tool { tool_call_id, content, .. } => {
                let mut msg = Map::new();
                msg.insert("role".into(), Value::from("tool"));
                msg.insert("content".into(), Value::from(content.as_str()));
                msg.insert("tool_call_id".into(), Value::from(tool_call_id.as_str()));
                if let Some(name) = names.get(tool_call_id.as_str()) {
                    msg.insert("tool_name".into(), Value::from(*name));
                }
                Value::Object(msg)
            }
        });
    }
    Ok(out)
}

/// A user turn: its text, and its images as bare base64 (Ollama takes no URLs
/// and no data: prefix).
fn user_message(i: usize, parts: &[Part]) -> Result<Value, LlmError> {
    let mut texts = Vec::new();
    let mut images = Vec::new();
    for (j, p) in parts.iter().enumerate() {
        match p {
            Part::Text(t) => texts.push(t.as_str()),
            Part::Image(Image::Base64 { data, .. }) => images.push(Value::from(data.as_str())),
            Part::Image(Image::Url(_)) => {
                return Err(LlmError::invalid_request(format!(
                    "messages[{i}].content[{j}].image_url: provider ollama does not fetch image URLs; \
                     send the image inline as a data: URI (data:image/png;base64,...)"
                ))
                .with_code("unsupported_parameter"))
            }
            // Refused before translation (not in SUPPORTED).
            Part::Document(_) => {}
        }
    }
    let mut msg = Map::new();
    msg.insert("role".into(), Value::from("user"));
    msg.insert("content".into(), Value::from(texts.join("\n")));
    if !images.is_empty() {
        msg.insert("images".into(), Value::Array(images));
    }
    Ok(Value::Object(msg))
}

/// OpenAI's argument text as the JSON object Ollama expects; empty text is
/// no arguments.
fn object_arguments(text: &str) -> Option<Value> {
    if text.trim().is_empty() {
        return Some(json!({}));
    }
    serde_json::from_str::<Value>(text).ok().filter(Value::is_object)
}

/// A successful /api/chat answer (`"stream": false`), parsed.
pub fn answer(body: &[u8], meta: &AnswerMeta) -> Result<Completion, LlmError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| not_an_answer())?;
    if let Some(e) = v.get("error") {
        return Err(upstream(format!("reported an error: {}", error_text(e))));
    }
    let message = v.get("message").filter(|m| m.is_object()).ok_or_else(not_an_answer)?;
    let mut c = Completion::new(meta);
    if let Some(model) = v.get("model").and_then(Value::as_str).filter(|m| !m.is_empty()) {
        c.model = model.to_string();
    }
    c.tool_calls = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| calls.iter().enumerate().map(|(i, call)| tool_call(call, i)).collect())
        .unwrap_or_default();
    let text = message.get("content").and_then(Value::as_str).unwrap_or_default();
    if let Some(t) = message.get("thinking").and_then(Value::as_str).filter(|t| !t.is_empty()) {
        c.thinking.push(Thinking { text: t.to_string(), ..Thinking::default() });
    }
    // Text-free turns that call tools have no content, as in OpenAI.
    c.text = if text.is_empty() && !c.tool_calls.is_empty() { None } else { Some(text.to_string()) };
    if is_done(&v) {
        c.finish_reason = Some(finish_reason(&v, !c.tool_calls.is_empty()));
    }
    let u = usage(&v);
    if u.prompt.is_some() || u.completion.is_some() {
        let (prompt, completion) = (u.prompt.unwrap_or(0), u.completion.unwrap_or(0));
        c.usage = Some(Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt.saturating_add(completion),
            ..Usage::default()
        });
    }
    Ok(c)
}

/// An Ollama tool call: arguments are an object, serialised to OpenAI's text.
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
        arguments: match function.and_then(|f| f.get("arguments")) {
            None | Some(Value::Null) => "{}".to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        },
    }
}

fn is_done(v: &Value) -> bool {
    v.get("done").and_then(Value::as_bool) == Some(true)
}

/// `length` when the token limit cut the answer; otherwise the answer ended
/// on its own: `tool_calls` if it called tools, else `stop`.
fn finish_reason(v: &Value, called_tools: bool) -> FinishReason {
    match v.get("done_reason").and_then(Value::as_str) {
        Some("length") => FinishReason::Length,
        _ if called_tools => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

/// `prompt_eval_count` is left out when the whole prompt came from Ollama's
/// cache, so a final object with `eval_count` alone means a prompt of 0.
fn usage(v: &Value) -> UsageUpdate {
    let prompt = v.get("prompt_eval_count").and_then(Value::as_u64);
    let completion = v.get("eval_count").and_then(Value::as_u64);
    UsageUpdate { prompt: prompt.or(completion.map(|_| 0)), completion, ..UsageUpdate::default() }
}

fn error_text(e: &Value) -> String {
    match e {
        Value::String(s) => s.clone(),
        other => other
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| other.to_string().chars().take(200).collect()),
    }
}

fn upstream(what: String) -> LlmError {
    LlmError::new(502, "upstream_error", format!("provider {PROVIDER} {what}"))
}

fn not_an_answer() -> LlmError {
    upstream("returned an answer that is not a chat completion".into())
}

/// Decodes Ollama's stream: one JSON object per line, the last with
/// `"done": true`, or an `{"error": ...}` line when generation fails.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    /// Bytes of a line not yet ended.
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no newline, so a long line arriving
    /// in many small reads is scanned once.
    scanned: usize,
    model_sent: bool,
    /// Tool calls seen so far (each arrives whole in one chunk).
    tool_calls: u32,
    /// The final object or an error arrived: the rest is ignored.
    ended: bool,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<Delta>) {
        let line = line.trim_ascii();
        if line.is_empty() || self.ended {
            return;
        }
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            return self.fail(out, "sent a stream line that is not JSON".into());
        };
        if !v.is_object() {
            return self.fail(out, "sent a stream line that is not a JSON object".into());
        }
        if let Some(e) = v.get("error") {
            return self.fail(out, format!("reported an error mid-stream: {}", error_text(e)));
        }
        if !self.model_sent {
            if let Some(model) = v.get("model").and_then(Value::as_str) {
                self.model_sent = true;
                out.push(Delta::Meta { id: None, model: Some(model.to_string()) });
            }
        }
        let message = v.get("message");
        if let Some(t) = message.and_then(|m| m.get("thinking")).and_then(Value::as_str).filter(|t| !t.is_empty()) {
            out.push(Delta::Thinking(t.to_string()));
        }
        if let Some(t) = message.and_then(|m| m.get("content")).and_then(Value::as_str).filter(|t| !t.is_empty()) {
            out.push(Delta::Text(t.to_string()));
        }
        if let Some(calls) = message.and_then(|m| m.get("tool_calls")).and_then(Value::as_array) {
            for call in calls {
                let index = self.tool_calls;
                self.tool_calls = self.tool_calls.saturating_add(1);
                let c = tool_call(call, index as usize);
                out.push(Delta::ToolCall { index, id: Some(c.id), name: Some(c.name), arguments: c.arguments });
            }
        }
        if is_done(&v) {
            out.push(Delta::Finish(finish_reason(&v, self.tool_calls > 0)));
            let u = usage(&v);
            if u.prompt.is_some() || u.completion.is_some() {
                out.push(Delta::Usage(u));
            }
            out.push(Delta::Done);
            self.ended = true;
        }
    }

    fn fail(&mut self, out: &mut Vec<Delta>, what: String) {
        out.push(Delta::Error(upstream(what)));
        self.ended = true;
    }
}

impl Decoder for StreamDecoder {
    fn decode(&mut self, input: &[u8], out: &mut Vec<Delta>) {
        if self.ended {
            return;
        }
        self.buf.extend_from_slice(input);
        let buf = std::mem::take(&mut self.buf);
        let mut start = 0;
        let mut search = self.scanned;
        while let Some(pos) = buf.get(search..).and_then(|rest| memchr::memchr(b'\n', rest)) {
            let end = search + pos;
            self.line(buf.get(start..end).unwrap_or_default(), out);
            start = end + 1;
            search = start;
        }
        self.buf = buf;
        self.buf.drain(..start.min(self.buf.len()));
        self.scanned = self.buf.len();
    }

    fn end(&mut self, out: &mut Vec<Delta>) {
        // The last line may lack its newline. A partial line (the body cut
        // mid-object) is dropped: the gateway reports a stream cut short.
        let rest = std::mem::take(&mut self.buf);
        self.scanned = 0;
        if serde_json::from_slice::<Value>(rest.trim_ascii()).is_ok() {
            self.line(&rest, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::openai_events as events;
    use crate::stream::{assert_split_invariant, translate_in_pieces};
    use crate::{ChatRequest, ModelDefaults};

    fn chat(body: &str) -> Result<Chat, LlmError> {
        let req = ChatRequest::parse(body.as_bytes()).expect("parses");
        Chat::from_request(&req, &ModelDefaults { name: Some("llama3.2".into()), ..ModelDefaults::default() })
    }

    fn meta() -> AnswerMeta {
        AnswerMeta {
            fallback_id: "chatcmpl-r1".into(),
            created: 7,
            model: "llama3.2".into(),
            client_wants_usage: true,
            ..AnswerMeta::default()
        }
    }

    const STREAM_TEXT: &[u8] = include_bytes!("../tests/golden/answers/ollama/stream_text.ndjson");

    #[test]
    fn unsupported_fields_are_refused_by_name() {
        let tools = r#""tools":[{"type":"function","function":{"name":"f"}}]"#;
        for (body, name) in [
            (
                format!(r#"{{"messages":[{{"role":"user","content":"x"}}],{tools},"tool_choice":"required"}}"#),
                "'tool_choice'",
            ),
            (
                format!(r#"{{"messages":[{{"role":"user","content":"x"}}],{tools},"tool_choice":"none"}}"#),
                "'tool_choice'",
            ),
            (
                format!(
                    r#"{{"messages":[{{"role":"user","content":"x"}}],{tools},"tool_choice":{{"type":"function","function":{{"name":"f"}}}}}}"#
                ),
                "'tool_choice'",
            ),
            (r#"{"messages":[{"role":"user","content":"x"}],"logit_bias":{"1":2}}"#.to_string(), "'logit_bias'"),
        ] {
            let e = request(&chat(&body).expect("valid"), &ProviderOptions::default()).expect_err(&body);
            assert_eq!(e.status, 400);
            assert!(e.message.contains(name) && e.message.contains("ollama"), "{body}: {}", e.message);
        }
        // Ollama has no knob for one call at a time: the wish is dropped.
        let body = format!(r#"{{"messages":[{{"role":"user","content":"x"}}],{tools},"parallel_tool_calls":false}}"#);
        assert!(request(&chat(&body).expect("valid"), &ProviderOptions::default()).is_ok());
    }

    #[test]
    fn what_is_not_an_answer_is_a_502() {
        // Cut answers and error bodies: tests/golden/answers/ollama/{length,error}.json.
        for bad in [&b"<html>"[..], b"{}", b"null", b"{\"message\":\"x\"}"] {
            assert_eq!(answer(bad, &meta()).expect_err("not an answer").status, 502);
        }
    }

    #[test]
    fn a_stream_that_is_not_ndjson_ends_with_an_error() {
        let out = assert_split_invariant(StreamDecoder::new, &meta(), b"<html>502 Bad Gateway</html>\n");
        assert_eq!(events(&out)[0]["error"]["type"], "upstream_error");
    }

    #[test]
    fn a_cut_stream_is_not_completed() {
        let cut = &STREAM_TEXT[..STREAM_TEXT.len() - 20];
        let (out, usage, completed) = translate_in_pieces(StreamDecoder::new(), meta(), &[cut]);
        assert!(!completed && usage.is_none());
        assert!(events(&out).iter().all(|e| e.get("error").is_none()));
    }
}

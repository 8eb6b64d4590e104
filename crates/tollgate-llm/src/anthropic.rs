//! Anthropic's Messages API (`POST /v1/messages`, `anthropic-version: 2023-06-01`):
//! OpenAI chat requests become Messages requests, Messages answers and their
//! SSE streams become OpenAI completions and chunks.
//!
//! Reference: https://docs.anthropic.com/en/api/messages and
//! https://docs.anthropic.com/en/docs/build-with-claude/streaming

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::chat::{
    push_turn, CachePoint, Chat, Document, DocumentSource, Image, Message, Part, ResponseFormat, Thinking, ToolCall,
    ToolChoice,
};
use crate::completion::{AnswerMeta, Completion, FinishReason};
use crate::provider::ProviderOptions;
use crate::sse::{event_data, EventSplitter};
use crate::stream::{Decoder, Delta, UsageUpdate};
use crate::{LlmError, Usage};

const PROVIDER: &str = "anthropic";

/// Anthropic requires `max_tokens`. When neither the caller nor the target sets
/// it we ask for 4096, the largest output every current Claude model accepts
/// (Claude 3 Haiku and Opus stop at 4096), so no model rejects the default.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Optional fields the Messages API honours. `seed`, `presence_penalty` and
/// `frequency_penalty` have no equivalent and are refused; `response_format`
/// is honoured for JSON schemas only (see `output_config`).
const SUPPORTED: &[&str] =
    &["documents", "thinking", "stop", "top_k", "parallel_tool_calls", "tools", "tool_choice", "response_format"];

/// The smallest thinking budget Anthropic accepts.
const MIN_THINKING_BUDGET: u64 = 1024;

/// The `cache_control` mark of a prompt-cache breakpoint
/// (https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching).
fn cache_control() -> Value {
    json!({ "type": "ephemeral" })
}

/// The Messages request body for a chat request.
pub fn request(chat: &Chat, _opts: &ProviderOptions) -> Result<Map<String, Value>, LlmError> {
    chat.refuse_unsupported(PROVIDER, SUPPORTED)?;
    let budget = chat.reasoning.map(|r| r.budget());
    let mut body = Map::new();
    body.insert("model".into(), Value::from(chat.model.as_str()));
    body.insert("max_tokens".into(), Value::from(max_tokens(chat.max_tokens, budget)?));
    // Extended thinking: https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking
    if let Some(budget) = budget {
        body.insert("thinking".into(), json!({ "type": "enabled", "budget_tokens": budget }));
    }
    if let Some(system) = system(chat) {
        body.insert("system".into(), system);
    }
    body.insert("messages".into(), Value::Array(messages(&chat.messages, &chat.cache_points)?));
    if let Some(t) = chat.temperature {
        body.insert("temperature".into(), Value::from(t));
    }
    if let Some(p) = chat.top_p {
        body.insert("top_p".into(), Value::from(p));
    }
    if let Some(k) = chat.top_k {
        body.insert("top_k".into(), Value::from(k));
    }
    if !chat.stop.is_empty() {
        body.insert("stop_sequences".into(), Value::from(chat.stop.clone()));
    }
    if !chat.tools.is_empty() {
        let mut tools: Vec<Value> = chat
            .tools
            .iter()
            .map(|t| {
                let mut tool = Map::new();
                tool.insert("name".into(), Value::from(t.name.as_str()));
                if let Some(d) = &t.description {
                    tool.insert("description".into(), Value::from(d.as_str()));
                }
                tool.insert("input_schema".into(), t.parameters.clone());
                Value::Object(tool)
            })
            .collect();
        if chat.cache_points.contains(&CachePoint::Tools) {
            if let Some(Value::Object(last)) = tools.last_mut() {
                last.insert("cache_control".into(), cache_control());
            }
        }
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = tool_choice(chat) {
        body.insert("tool_choice".into(), choice);
    }
    if let Some(config) = output_config(chat.response_format.as_ref())? {
        body.insert("output_config".into(), config);
    }
    if chat.stream {
        body.insert("stream".into(), Value::Bool(true));
    }
    Ok(body)
}

/// `max_tokens`: the caller's, else the default. With extended thinking the
/// budget counts against it and Anthropic wants it above the budget (and the
/// budget at least 1,024): a caller's limit that leaves no room is refused,
/// naming both; the default grows to the budget plus the default.
fn max_tokens(asked: Option<u64>, budget: Option<u64>) -> Result<u64, LlmError> {
    match (asked, budget) {
        (_, Some(b)) if b < MIN_THINKING_BUDGET => Err(LlmError::invalid_request(format!(
            "the thinking budget ({b} tokens) is below the {MIN_THINKING_BUDGET} tokens provider anthropic requires for 'budget_tokens'"
        ))),
        (Some(m), Some(b)) if m <= b => Err(LlmError::invalid_request(format!(
            "'max_tokens' ({m}) must be greater than the thinking budget 'budget_tokens' ({b}) for provider anthropic, \
             which counts thinking in max_tokens; raise max_tokens or lower the budget"
        ))),
        (Some(m), _) => Ok(m),
        (None, Some(b)) if b >= DEFAULT_MAX_TOKENS => Ok(b.saturating_add(DEFAULT_MAX_TOKENS)),
        (None, _) => Ok(DEFAULT_MAX_TOKENS),
    }
}

/// The top-level system prompt: Anthropic has no system role, so every system
/// and developer message joins it. Marked for caching, it is a list of text
/// blocks (one per message) whose last carries `cache_control`.
fn system(chat: &Chat) -> Option<Value> {
    let marked = chat.cache_points.iter().any(|p| match p {
        CachePoint::System => true,
        // A mark on a system message caches the system prompt.
        CachePoint::Message(i) => matches!(chat.messages.get(*i), Some(Message::System { .. })),
        CachePoint::Tools => false,
    });
    if !marked {
        return chat.system_text().map(Value::String);
    }
    let mut blocks: Vec<Value> = chat
        .messages
        .iter()
        .filter_map(|m| match m {
            Message::System { text } if !text.is_empty() => Some(json!({ "type": "text", "text": text })),
            _ => None,
        })
        .collect();
    let Value::Object(last) = blocks.last_mut()? else {
        return None;
    };
    last.insert("cache_control".into(), cache_control());
    Some(Value::Array(blocks))
}

/// `response_format` as structured outputs: `output_config.format` takes a
/// JSON schema (https://platform.claude.com/docs/en/build-with-claude/structured-outputs,
/// generally available without a beta header; models that predate it answer
/// 400 themselves). Anthropic always constrains decoding, so `strict: false`
/// gets an answer that conforms all the same. JSON mode without a schema has
/// no equivalent and is refused.
fn output_config(format: Option<&ResponseFormat>) -> Result<Option<Value>, LlmError> {
    match format {
        None | Some(ResponseFormat::Text) => Ok(None),
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            Ok(Some(json!({ "format": { "type": "json_schema", "schema": schema } })))
        }
        Some(ResponseFormat::JsonObject) => Err(LlmError::invalid_request(
            "'response_format' of type 'json_object' is not supported by provider anthropic; \
             send a 'json_schema' response_format or route to a provider that supports JSON mode",
        )
        .with_code("unsupported_parameter")),
    }
}

/// The conversation without its system messages. Anthropic requires user and
/// assistant turns to alternate and takes tool results as `tool_result`
/// blocks of a user turn, so consecutive turns of the same role are merged.
/// A message marked for caching puts `cache_control` on the last block sent
/// so far (its own last block, or the one before it when it had none).
fn messages(list: &[Message], cache_points: &[CachePoint]) -> Result<Vec<Value>, LlmError> {
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let (role, blocks) = match m {
            Message::System { .. } => continue,
            Message::User { parts } => ("user", parts.iter().filter_map(part_block).collect()),
            Message::Assistant { text, tool_calls, thinking } => {
                ("assistant", assistant_blocks(i, text.as_deref(), tool_calls, thinking)?)
            }
            Message::Tool { tool_call_id, content, is_error } => {
                ("user", vec![tool_result(tool_call_id, content, *is_error)])
            }
        };
        push_turn(&mut turns, role, blocks);
        if cache_points.contains(&CachePoint::Message(i)) {
            mark_last_block(&mut turns);
        }
    }
    Ok(turns.into_iter().map(|(role, content)| json!({ "role": role, "content": content })).collect())
}

/// Puts `cache_control` on the last block of the conversation so far that
/// can carry it (thinking blocks cannot).
fn mark_last_block(turns: &mut [(&'static str, Vec<Value>)]) {
    let block = turns
        .iter_mut()
        .rev()
        .flat_map(|(_, blocks)| blocks.iter_mut().rev())
        .find(|b| !matches!(b.get("type").and_then(Value::as_str), Some("thinking" | "redacted_thinking")));
    if let Some(Value::Object(block)) = block {
        block.insert("cache_control".into(), cache_control());
    }
}

/// A user content part as a content block; `None` for empty text.
fn part_block(part: &Part) -> Option<Value> {
    Some(match part {
        Part::Text(t) if t.is_empty() => return None,
        Part::Text(t) => json!({ "type": "text", "text": t }),
        Part::Image(Image::Url(url)) => json!({ "type": "image", "source": { "type": "url", "url": url } }),
        Part::Image(Image::Base64 { media_type, data }) => json!({
            "type": "image",
            "source": { "type": "base64", "media_type": media_type, "data": data },
        }),
        Part::Document(d) => document_block(d),
    })
}

/// A document as a `document` content block.
fn document_block(d: &Document) -> Value {
    let source = match &d.source {
        DocumentSource::Base64 { media_type, data } => {
            json!({ "type": "base64", "media_type": media_type, "data": data })
        }
        DocumentSource::Url(url) => json!({ "type": "url", "url": url }),
        DocumentSource::Text(text) => json!({ "type": "text", "media_type": "text/plain", "data": text }),
    };
    let mut block = json!({ "type": "document", "source": source });
    if let Some(title) = &d.title {
        block["title"] = Value::from(title.as_str());
    }
    block
}

/// An assistant turn: the reasoning it showed (replayed first, as Anthropic
/// wants it back with tool use), its text, then a `tool_use` block per tool
/// call. Only signed or redacted thinking is replayed: Anthropic refuses
/// thinking it cannot verify. `i` is the message's index, to name it when its
/// arguments are not JSON.
fn assistant_blocks(
    i: usize,
    text: Option<&str>,
    calls: &[ToolCall],
    thinking: &[Thinking],
) -> Result<Vec<Value>, LlmError> {
    let mut blocks = Vec::with_capacity(thinking.len() + calls.len() + 1);
    for t in thinking {
        match (&t.redacted, &t.signature) {
            (Some(data), _) => blocks.push(json!({ "type": "redacted_thinking", "data": data })),
            (None, Some(signature)) => {
                blocks.push(json!({ "type": "thinking", "thinking": t.text, "signature": signature }))
            }
            (None, None) => {}
        }
    }
    if let Some(t) = text.filter(|t| !t.is_empty()) {
        blocks.push(json!({ "type": "text", "text": t }));
    }
    for (j, call) in calls.iter().enumerate() {
        let input = tool_input(&call.arguments).map_err(|why| {
            LlmError::invalid_request(format!("messages[{i}].tool_calls[{j}].function.arguments {why}"))
        })?;
        blocks.push(json!({ "type": "tool_use", "id": call.id, "name": call.name, "input": input }));
    }
    Ok(blocks)
}

/// A tool call's arguments (OpenAI's JSON text) as Anthropic's `input` object.
fn tool_input(arguments: &str) -> Result<Value, String> {
    // A call without arguments is sometimes sent with an empty string.
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err("must be a JSON object: Anthropic's tool_use input is an object".into()),
        Err(e) => Err(format!("is not valid JSON ({e}); Anthropic needs the arguments as an object")),
    }
}

fn tool_result(tool_call_id: &str, content: &str, is_error: bool) -> Value {
    let mut block = Map::new();
    block.insert("type".into(), Value::from("tool_result"));
    block.insert("tool_use_id".into(), Value::from(tool_call_id));
    // `content` is optional; an empty text would be an empty block.
    if !content.is_empty() {
        block.insert("content".into(), Value::from(content));
    }
    if is_error {
        block.insert("is_error".into(), Value::Bool(true));
    }
    Value::Object(block)
}

/// Anthropic's `tool_choice`, which also carries `disable_parallel_tool_use`.
fn tool_choice(chat: &Chat) -> Option<Value> {
    let has_tools = !chat.tools.is_empty();
    let one_call_at_most = has_tools && chat.parallel_tool_calls == Some(false);
    let kind = match &chat.tool_choice {
        // Without tools, `auto` and `none` both mean no tool call: nothing to say.
        Some(ToolChoice::Auto | ToolChoice::None) if !has_tools => return None,
        None if !one_call_at_most => return None,
        None | Some(ToolChoice::Auto) => "auto",
        // `none` takes no other field; with no calls there is nothing to parallelise.
        Some(ToolChoice::None) => return Some(json!({ "type": "none" })),
        Some(ToolChoice::Required) => "any",
        Some(ToolChoice::Function(_)) => "tool",
    };
    let mut choice = Map::new();
    choice.insert("type".into(), Value::from(kind));
    if let Some(ToolChoice::Function(name)) = &chat.tool_choice {
        choice.insert("name".into(), Value::from(name.as_str()));
    }
    if one_call_at_most {
        choice.insert("disable_parallel_tool_use".into(), Value::Bool(true));
    }
    Some(Value::Object(choice))
}

/// The parts of a Messages answer the gateway reads, borrowed from the body
/// where its strings have no escapes.
#[derive(Debug, Deserialize)]
struct WireMessage<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(borrow)]
    content: Vec<WireBlock<'a>>,
    #[serde(default, borrow)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// One content block: text, tool_use, thinking, redacted_thinking, or a kind
/// the neutral form has no place for.
#[derive(Debug, Deserialize)]
struct WireBlock<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    signature: Option<Cow<'a, str>>,
    /// A redacted_thinking block's opaque data.
    #[serde(default, borrow)]
    data: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    input: Option<Value>,
}

/// Anthropic's `usage`: prompt tokens are split between uncached input and the
/// cache reads and writes, which all count as the prompt.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    fn prompt(&self) -> Option<u64> {
        let parts = [self.input_tokens, self.cache_read_input_tokens, self.cache_creation_input_tokens];
        parts.iter().flatten().copied().reduce(u64::saturating_add)
    }

    fn to_usage(self) -> Usage {
        let prompt = self.prompt().unwrap_or(0);
        let completion = self.output_tokens.unwrap_or(0);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt.saturating_add(completion),
            cached_tokens: self.cache_read_input_tokens.unwrap_or(0),
            cache_write_tokens: self.cache_creation_input_tokens.unwrap_or(0),
            reasoning_tokens: 0,
        }
    }

    /// Fields a later report sets replace the earlier ones (stream usage is cumulative).
    fn merge(&mut self, later: WireUsage) {
        self.input_tokens = later.input_tokens.or(self.input_tokens);
        self.output_tokens = later.output_tokens.or(self.output_tokens);
        self.cache_creation_input_tokens = later.cache_creation_input_tokens.or(self.cache_creation_input_tokens);
        self.cache_read_input_tokens = later.cache_read_input_tokens.or(self.cache_read_input_tokens);
    }
}

fn upstream(message: impl Into<String>) -> LlmError {
    LlmError::new(502, "upstream_error", message)
}

/// Anthropic's `stop_reason` in OpenAI's vocabulary.
fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        // `end_turn`, `stop_sequence`, `pause_turn` and reasons added later:
        // the model stopped of its own accord.
        _ => FinishReason::Stop,
    }
}

/// `error.type` and `error.message` of an Anthropic error object.
fn error_text(v: &Value) -> String {
    let error = v.get("error");
    let field = |name| error.and_then(|e| e.get(name)).and_then(Value::as_str);
    let message = field("message").unwrap_or("unknown error");
    match field("type") {
        Some(kind) => format!("{kind}: {message}"),
        None => message.to_string(),
    }
}

/// A successful JSON answer (a Message object), parsed.
pub fn answer(body: &[u8], meta: &AnswerMeta) -> Result<Completion, LlmError> {
    let not_a_message = || upstream("provider anthropic returned an answer that is not a Messages API message");
    // Typed in one pass; an error object (or anything else) has no `content`
    // array and is looked at as a tree.
    let msg = match serde_json::from_slice::<WireMessage>(body) {
        Ok(msg) if msg.kind.as_deref() != Some("error") => msg,
        _ => {
            let value: Value = serde_json::from_slice(body).map_err(|_| not_a_message())?;
            if value.get("type").and_then(Value::as_str) == Some("error") {
                return Err(upstream(format!("provider anthropic answered with an error: {}", error_text(&value))));
            }
            return Err(not_a_message());
        }
    };
    let mut c = Completion::new(meta);
    if let Some(id) = msg.id.filter(|s| !s.is_empty()) {
        c.id = id;
    }
    if let Some(model) = msg.model.filter(|s| !s.is_empty()) {
        c.model = model;
    }
    for block in &msg.content {
        match block.kind.as_deref() {
            Some("text") => {
                let t = block.text.as_deref().unwrap_or_default();
                c.text.get_or_insert_with(String::new).push_str(t);
            }
            Some("tool_use") => c.tool_calls.push(answer_tool_call(block).ok_or_else(not_a_message)?),
            Some("thinking") => c.thinking.push(Thinking {
                text: block.thinking.as_deref().unwrap_or_default().to_string(),
                signature: block.signature.as_deref().filter(|s| !s.is_empty()).map(str::to_string),
                redacted: None,
            }),
            Some("redacted_thinking") => c.thinking.push(Thinking {
                redacted: Some(block.data.as_deref().unwrap_or_default().to_string()),
                ..Thinking::default()
            }),
            // Server tool results and blocks added later.
            _ => {}
        }
    }
    c.finish_reason = msg.stop_reason.as_deref().map(finish_reason);
    c.usage = msg.usage.map(WireUsage::to_usage);
    Ok(c)
}

/// A `tool_use` block as an OpenAI tool call, its input serialized as JSON text.
fn answer_tool_call(block: &WireBlock<'_>) -> Option<ToolCall> {
    let id = block.id.as_deref()?;
    let name = block.name.as_deref()?;
    let arguments = match &block.input {
        None | Some(Value::Null) => "{}".to_string(),
        Some(input) => input.to_string(),
    };
    Some(ToolCall { id: id.to_string(), name: name.to_string(), arguments })
}

/// A stream event read for its content delta, borrowing its strings from the
/// event's data where they have no escapes.
#[derive(Deserialize)]
struct WireDeltaEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    index: Option<u64>,
    #[serde(default, borrow)]
    delta: Option<WireDelta<'a>>,
}

#[derive(Deserialize)]
struct WireDelta<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    partial_json: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    signature: Option<Cow<'a, str>>,
}

/// Decodes Anthropic's SSE stream: `message_start`, `content_block_start` /
/// `_delta` / `_stop` per content block, `message_delta` (stop reason and
/// cumulative usage), `message_stop`; `ping` and `error` may come anywhere.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    splitter: EventSplitter,
    /// (content block index, tool call index) of the `tool_use` blocks seen:
    /// text blocks take content indexes too, OpenAI counts tool calls only.
    tool_blocks: Vec<(u64, u32)>,
    tool_calls: u32,
    /// The latest usage figures of each kind.
    usage: WireUsage,
    finished: bool,
    /// An error was emitted: the rest of the stream is ignored.
    failed: bool,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn event(&mut self, event: &[u8], out: &mut Vec<Delta>) {
        // Comments and events without data carry nothing.
        let Some(data) = event_data(event) else {
            return;
        };
        // Nearly every event is a content delta: read those typed and
        // borrowed, without building a JSON tree; the few others (and any
        // delta of an unexpected shape) take the general path.
        if let Ok(e) = serde_json::from_slice::<WireDeltaEvent>(&data) {
            if e.kind == "content_block_delta" {
                return self.block_delta(e.index, e.delta, out);
            }
        }
        let Ok(v) = serde_json::from_slice::<Value>(&data) else {
            return self.fail(out, "provider anthropic sent a stream event that is not JSON".into());
        };
        // The event's `type` repeats the SSE event name; the data is authoritative.
        match v.get("type").and_then(Value::as_str) {
            Some("message_start") => self.message_start(&v, out),
            Some("content_block_start") => self.block_start(&v, out),
            // A delta that did not read as one above has an unexpected shape:
            // there is nothing in it to relay.
            Some("content_block_delta") => {}
            Some("message_delta") => {
                let reason = v.get("delta").and_then(|d| d.get("stop_reason")).and_then(Value::as_str);
                if let (Some(reason), false) = (reason, self.finished) {
                    self.finished = true;
                    out.push(Delta::Finish(finish_reason(reason)));
                }
                self.usage_update(v.get("usage"), out);
            }
            Some("message_stop") => out.push(Delta::Done),
            Some("error") => self.fail(out, format!("provider anthropic stream error: {}", error_text(&v))),
            Some(_) => {} // ping, content_block_stop, and event types added later
            None => self.fail(out, "provider anthropic sent a stream event without a type".into()),
        }
    }

    fn message_start(&mut self, v: &Value, out: &mut Vec<Delta>) {
        let message = v.get("message");
        let text = |name| message.and_then(|m| m.get(name)).and_then(Value::as_str).map(str::to_string);
        out.push(Delta::Meta { id: text("id"), model: text("model") });
        self.usage_update(message.and_then(|m| m.get("usage")), out);
    }

    fn block_start(&mut self, v: &Value, out: &mut Vec<Delta>) {
        let Some(block) = v.get("content_block") else {
            return;
        };
        let field = |name| block.get(name).and_then(Value::as_str);
        match field("type") {
            Some("text") => {
                if let Some(t) = field("text").filter(|t| !t.is_empty()) {
                    out.push(Delta::Text(t.to_string()));
                }
            }
            Some("tool_use") => {
                let index = self.tool_calls;
                self.tool_calls = self.tool_calls.saturating_add(1);
                if let Some(block_index) = v.get("index").and_then(Value::as_u64) {
                    self.tool_blocks.push((block_index, index));
                }
                // The input arrives as `input_json_delta` fragments; the block
                // starts with an empty `input`.
                out.push(Delta::ToolCall {
                    index,
                    id: field("id").map(str::to_string),
                    name: field("name").map(str::to_string),
                    arguments: String::new(),
                });
            }
            Some("thinking") => {
                if let Some(t) = field("thinking").filter(|t| !t.is_empty()) {
                    out.push(Delta::Thinking(t.to_string()));
                }
                if let Some(s) = field("signature").filter(|s| !s.is_empty()) {
                    out.push(Delta::ThinkingSignature(s.to_string()));
                }
            }
            Some("redacted_thinking") => {
                out.push(Delta::RedactedThinking(field("data").unwrap_or_default().to_string()));
            }
            _ => {} // server tool blocks and kinds added later
        }
    }

    fn block_delta<'a>(&mut self, block_index: Option<u64>, delta: Option<WireDelta<'a>>, out: &mut Vec<Delta>) {
        let Some(delta) = delta else {
            return;
        };
        let nonempty = |s: Option<Cow<'a, str>>| s.filter(|s| !s.is_empty());
        match delta.kind.as_deref() {
            Some("text_delta") => {
                if let Some(t) = nonempty(delta.text) {
                    out.push(Delta::Text(t.into_owned()));
                }
            }
            Some("input_json_delta") => {
                let tool = self.tool_blocks.iter().find(|(b, _)| Some(*b) == block_index).map(|(_, t)| *t);
                if let (Some(index), Some(json)) = (tool, nonempty(delta.partial_json)) {
                    out.push(Delta::ToolCall { index, id: None, name: None, arguments: json.into_owned() });
                }
            }
            Some("thinking_delta") => {
                if let Some(t) = nonempty(delta.thinking) {
                    out.push(Delta::Thinking(t.into_owned()));
                }
            }
            Some("signature_delta") => {
                if let Some(s) = nonempty(delta.signature) {
                    out.push(Delta::ThinkingSignature(s.into_owned()));
                }
            }
            _ => {} // citation deltas and kinds added later
        }
    }

    /// Usage from `message_start` or `message_delta` (cumulative counts).
    fn usage_update(&mut self, usage: Option<&Value>, out: &mut Vec<Delta>) {
        let Some(Ok(reported)) = usage.map(WireUsage::deserialize) else {
            return;
        };
        self.usage.merge(reported);
        let update = UsageUpdate {
            prompt: self.usage.prompt(),
            completion: self.usage.output_tokens,
            cached: self.usage.cache_read_input_tokens,
            cache_write: self.usage.cache_creation_input_tokens,
            ..UsageUpdate::default()
        };
        if update != UsageUpdate::default() {
            out.push(Delta::Usage(update));
        }
    }

    fn fail(&mut self, out: &mut Vec<Delta>, message: String) {
        self.failed = true;
        out.push(Delta::Error(upstream(message)));
    }
}

impl Decoder for StreamDecoder {
    fn decode(&mut self, input: &[u8], out: &mut Vec<Delta>) {
        if self.failed {
            return;
        }
        self.splitter.push(input);
        while let Some(event) = self.splitter.next_event() {
            self.event(&event, out);
            if self.failed {
                return;
            }
        }
    }

    fn end(&mut self, out: &mut Vec<Delta>) {
        if self.failed {
            return;
        }
        // An event the upstream did not end with a blank line: decode it (a
        // stream cut mid-event then reports that it is not JSON).
        let rest = self.splitter.take_rest();
        self.event(&rest, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChatRequest, ModelDefaults};

    const MODEL: &str = "claude-sonnet-4-20250514";

    fn chat(body: &str) -> Chat {
        let req = ChatRequest::parse(body.as_bytes()).expect("parses");
        Chat::from_request(&req, &ModelDefaults { name: Some(MODEL.into()), ..ModelDefaults::default() })
            .expect("valid")
    }

    fn body(openai: &str) -> Value {
        Value::Object(request(&chat(openai), &ProviderOptions::default()).expect("translated"))
    }

    fn meta(wants_usage: bool) -> AnswerMeta {
        AnswerMeta {
            fallback_id: "chatcmpl-r1".into(),
            created: 1700000000,
            model: MODEL.into(),
            client_wants_usage: wants_usage,
            ..AnswerMeta::default()
        }
    }

    #[test]
    fn invalid_tool_arguments_name_the_message() {
        for (args, want) in [(r#"{\"a\":"#, "is not valid JSON"), (r#"[1]"#, "must be a JSON object")] {
            let c = chat(&format!(
                r#"{{"messages":[{{"role":"user","content":"hi"}},
                    {{"role":"assistant","tool_calls":[{{"id":"t1","type":"function","function":{{"name":"f","arguments":"{args}"}}}}]}},
                    {{"role":"tool","tool_call_id":"t1","content":"x"}}]}}"#
            ));
            let e = request(&c, &ProviderOptions::default()).expect_err("bad arguments");
            assert_eq!(e.status, 400);
            assert!(
                e.message.contains("messages[1].tool_calls[0].function.arguments") && e.message.contains(want),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn unsupported_fields_are_refused_by_name() {
        for (extra, name) in [
            (r#""seed":42"#, "seed"),
            (r#""presence_penalty":0.5"#, "presence_penalty"),
            (r#""frequency_penalty":0.5"#, "frequency_penalty"),
            (r#""response_format":{"type":"json_object"}"#, "response_format' of type 'json_object"),
            (r#""n":2"#, "n"),
            (r#""logprobs":true"#, "logprobs"),
        ] {
            let c = chat(&format!(r#"{{"messages":[{{"role":"user","content":"hi"}}],{extra}}}"#));
            let e = request(&c, &ProviderOptions::default()).expect_err(extra);
            assert_eq!((e.status, e.code), (400, Some("unsupported_parameter")));
            assert!(e.message.contains(&format!("'{name}' is not supported by provider anthropic")), "{}", e.message);
        }
    }

    #[test]
    fn stop_reasons_and_faults() {
        for (reason, want) in [
            ("stop_sequence", FinishReason::Stop),
            ("refusal", FinishReason::ContentFilter),
            ("pause_turn", FinishReason::Stop),
        ] {
            assert_eq!(finish_reason(reason), want);
        }
        for bad in [&b"<html>"[..], b"{}", br#"{"content":"x"}"#, br#"{"content":[{"type":"tool_use","input":{}}]}"#] {
            let e = answer(bad, &meta(false)).expect_err("not a message");
            assert_eq!(e.status, 502);
            assert!(e.message.contains("provider anthropic"), "{}", e.message);
        }
    }

    /// https://docs.anthropic.com/en/docs/build-with-claude/streaming (see tests/golden/answers/anthropic/).
    const STREAM_TEXT: &str = include_str!("../tests/golden/answers/anthropic/stream_text.sse");

    #[test]
    fn undecodable_and_cut_streams_become_errors() {
        let mut d = StreamDecoder::new();
        let mut out = Vec::new();
        d.decode(b": comment\n\nevent: x\ndata: {not json\n\ndata: {\"type\":\"message_stop\"}\n\n", &mut out);
        d.end(&mut out);
        assert!(
            matches!(out.as_slice(), [Delta::Error(e)] if e.status == 502 && e.message.contains("not JSON")),
            "{out:?}"
        );

        // Cut mid-event: the tail is not JSON; cut between events: no Done.
        let cut = &STREAM_TEXT.as_bytes()[..STREAM_TEXT.len() - 10];
        let mut d = StreamDecoder::new();
        let mut out = Vec::new();
        d.decode(cut, &mut out);
        d.end(&mut out);
        assert!(matches!(out.last(), Some(Delta::Error(_))), "{out:?}");
        assert!(!out.contains(&Delta::Done));

        // A last event without its blank line still counts.
        let mut d = StreamDecoder::new();
        let mut out = Vec::new();
        d.decode(b"data: {\"type\":\"message_stop\"}\n", &mut out);
        d.end(&mut out);
        assert_eq!(out, vec![Delta::Done]);
    }

    /// A neutral chat built by hand: what the Messages and Responses
    /// ingresses produce (replayed thinking, tool errors, cache marks).
    fn neutral(messages: Vec<Message>) -> Chat {
        let mut c = chat(r#"{"messages":[{"role":"user","content":"x"}]}"#);
        c.messages = messages;
        c
    }

    fn translated(c: &Chat) -> Value {
        Value::Object(request(c, &ProviderOptions::default()).expect("translated"))
    }

    #[test]
    fn reasoning_becomes_a_thinking_budget_within_max_tokens() {
        // https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking
        use crate::chat::{Effort, Reasoning};
        let mut c = chat(
            r#"{"messages":[{"role":"user","content":"Are there an infinite number of prime numbers such that n mod 4 == 3?"}],"max_tokens":16000}"#,
        );
        c.reasoning = Some(Reasoning { effort: None, budget_tokens: Some(10000) });
        let v = translated(&c);
        assert_eq!(
            (v["max_tokens"].clone(), v["thinking"].clone()),
            (json!(16000), json!({"type": "enabled", "budget_tokens": 10000}))
        );
        // A limit that leaves no room for the answer names both.
        c.max_tokens = Some(10000);
        let e = request(&c, &ProviderOptions::default()).expect_err("no room");
        assert_eq!(e.status, 400);
        assert!(
            e.message.contains("'max_tokens' (10000)") && e.message.contains("'budget_tokens' (10000)"),
            "{}",
            e.message
        );
        // Only the default limit: it grows past the budget.
        c.max_tokens = None;
        assert_eq!(translated(&c)["max_tokens"], json!(10000 + DEFAULT_MAX_TOKENS));
        c.reasoning = Some(Reasoning { effort: Some(Effort::Low), budget_tokens: None });
        let v = translated(&c);
        assert_eq!(
            (v["max_tokens"].clone(), v["thinking"]["budget_tokens"].clone()),
            (json!(DEFAULT_MAX_TOKENS), json!(1024))
        );
        c.reasoning = Some(Reasoning { effort: None, budget_tokens: Some(500) });
        let e = request(&c, &ProviderOptions::default()).expect_err("below the minimum");
        assert!(e.message.contains("1024"), "{}", e.message);
        // From an OpenAI caller's reasoning_effort too.
        let v = body(r#"{"messages":[{"role":"user","content":"hi"}],"reasoning_effort":"high"}"#);
        assert_eq!(
            (v["max_tokens"].clone(), v["thinking"]["budget_tokens"].clone()),
            (json!(16384 + DEFAULT_MAX_TOKENS), json!(16384))
        );
    }

    #[test]
    fn replayed_thinking_comes_first_and_tool_errors_are_flagged() {
        // Preserving thinking blocks with tool use, and is_error on tool results:
        // https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#extended-thinking-with-tool-use
        // https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use#handling-tool-use-and-tool-result-content-blocks
        let c = neutral(vec![
            Message::User { parts: vec![Part::Text("What's the weather in Paris?".into())] },
            Message::Assistant {
                text: None,
                tool_calls: vec![ToolCall {
                    id: "toolu_01".into(),
                    name: "get_weather".into(),
                    arguments: "{\"location\":\"Paris\"}".into(),
                }],
                thinking: vec![
                    Thinking {
                        text: "The user wants the weather.".into(),
                        signature: Some("BDaL4VrbR2Oj0hO4".into()),
                        redacted: None,
                    },
                    Thinking { text: String::new(), signature: None, redacted: Some("EmwKAhgBEgy3va3pzix".into()) },
                    Thinking { text: "unsigned, from another provider".into(), signature: None, redacted: None },
                ],
            },
            Message::Tool {
                tool_call_id: "toolu_01".into(),
                content: "ConnectionError: the weather service API is not available (HTTP 500)".into(),
                is_error: true,
            },
        ]);
        assert_eq!(
            translated(&c)["messages"],
            json!([
                {"role": "user", "content": [{"type": "text", "text": "What's the weather in Paris?"}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "The user wants the weather.", "signature": "BDaL4VrbR2Oj0hO4"},
                    {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
                    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"location": "Paris"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01",
                     "content": "ConnectionError: the weather service API is not available (HTTP 500)", "is_error": true},
                ]},
            ])
        );
    }

    #[test]
    fn cache_marks_land_on_the_system_prompt_the_tools_and_the_marked_block() {
        // https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching
        let mut c = neutral(vec![
            Message::System { text: "You are an AI assistant tasked with analyzing literary works.".into() },
            Message::System { text: "<the entire contents of Pride and Prejudice>".into() },
            Message::User { parts: vec![Part::Text("Analyze the major themes.".into())] },
            // Merged into the same user turn as the message before: the mark
            // goes on this message's last block, not the turn's first.
            Message::User { parts: vec![Part::Text("Be thorough.".into()), Part::Text("Start now.".into())] },
            Message::Assistant {
                text: Some("Themes: pride, prejudice.".into()),
                tool_calls: Vec::new(),
                thinking: Vec::new(),
            },
            Message::User { parts: vec![Part::Text("And class?".into())] },
        ]);
        c.tools = vec![
            crate::chat::Tool { name: "a".into(), description: None, parameters: json!({"type": "object"}) },
            crate::chat::Tool { name: "b".into(), description: None, parameters: json!({"type": "object"}) },
        ];
        c.cache_points = vec![CachePoint::Tools, CachePoint::System, CachePoint::Message(3)];
        let v = translated(&c);
        assert_eq!(
            v["system"],
            json!([
                {"type": "text", "text": "You are an AI assistant tasked with analyzing literary works."},
                {"type": "text", "text": "<the entire contents of Pride and Prejudice>", "cache_control": {"type": "ephemeral"}},
            ])
        );
        assert!(v["tools"][0].get("cache_control").is_none());
        assert_eq!(v["tools"][1]["cache_control"], json!({"type": "ephemeral"}));
        assert_eq!(
            v["messages"][0]["content"],
            json!([
                {"type": "text", "text": "Analyze the major themes."},
                {"type": "text", "text": "Be thorough."},
                {"type": "text", "text": "Start now.", "cache_control": {"type": "ephemeral"}},
            ])
        );
        assert!(v["messages"][2]["content"][0].get("cache_control").is_none());
        // Unmarked, the system prompt stays one string; a mark on an empty
        // message lands on the block before it.
        c.cache_points = vec![CachePoint::Message(4)];
        c.messages[4] = Message::Assistant { text: Some(String::new()), tool_calls: Vec::new(), thinking: Vec::new() };
        let v = translated(&c);
        assert!(v["system"].is_string());
        assert_eq!(v["messages"][0]["content"][2]["cache_control"], json!({"type": "ephemeral"}));
    }
}

//! Google Gemini adapter: `generateContent` and `streamGenerateContent?alt=sse`
//! (Google AI Studio v1beta and Vertex AI share the body format; provider.rs
//! builds the path). Reference: https://ai.google.dev/api/generate-content
//!
//! Requests: system and developer messages become `systemInstruction`; user and
//! assistant turns become `contents` with roles `user` and `model`, consecutive
//! turns of one role merged (tool results are user-role `functionResponse`
//! parts). Answers and streams: text parts are concatenated, thought parts
//! (`"thought": true`, the summaries `includeThoughts` asks for) are the
//! answer's thinking, `functionCall` parts become tool calls.
//!
//! Tool call ids: Gemini names none (or sometimes a part `id`), so ids are
//! `call_<index>` (or the part's `id`). Gemini 3 models attach an opaque
//! `thoughtSignature` to function-call parts and answer 400 when a later request
//! replays the call without it; the OpenAI form has no place for it, so it
//! travels in the tool call id as `<id>__thought__<signature>` (the caller echoes
//! ids back verbatim) and is restored on the way back in.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::chat::{
    push_turn, Chat, DocumentSource, Effort, Image, Message, Part, ResponseFormat, Thinking, Tool, ToolCall, ToolChoice,
};
use crate::completion::{AnswerMeta, Completion, FinishReason};
use crate::provider::ProviderOptions;
use crate::sse::{event_data, EventSplitter};
use crate::stream::{Decoder, Delta, UsageUpdate};
use crate::{LlmError, Usage};

const PROVIDER: &str = "gemini";

/// Optional request fields Gemini has an equivalent for. `parallel_tool_calls:
/// false` has none and is dropped (Gemini may always call several functions
/// at once; see `Chat::refuse_unsupported`).
const SUPPORTED: &[&str] = &[
    "documents",
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

/// Separates a tool call id from the thought signature carried in it.
const SIGNATURE_SEPARATOR: &str = "__thought__";

/// The value Google documents for function calls that have no real signature
/// (history from another model, or a caller that rewrote the ids): it tells
/// Gemini 3 to skip validation instead of refusing the request.
/// https://ai.google.dev/gemini-api/docs/thought-signatures
const NO_SIGNATURE: &str = "skip_thought_signature_validator";

// ---------------------------------------------------------------------------
// Requests

/// The provider's request body for a chat request.
pub fn request(chat: &Chat, _opts: &ProviderOptions) -> Result<Map<String, Value>, LlmError> {
    chat.refuse_unsupported(PROVIDER, SUPPORTED)?;
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents(&chat.messages)?));
    if let Some(system) = chat.system_text() {
        body.insert("systemInstruction".into(), json!({ "parts": [{ "text": system }] }));
    }
    if !chat.tools.is_empty() {
        body.insert("tools".into(), tools(&chat.tools));
    }
    if let Some(config) = tool_config(chat)? {
        body.insert("toolConfig".into(), config);
    }
    let generation = generation_config(chat);
    if !generation.is_empty() {
        body.insert("generationConfig".into(), Value::Object(generation));
    }
    Ok(body)
}

/// The conversation as Gemini `Content`s (system messages go to `systemInstruction`).
fn contents(messages: &[Message]) -> Result<Vec<Value>, LlmError> {
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let (role, parts) = match m {
            Message::System { .. } => continue,
            Message::User { parts } => ("user", parts.iter().filter_map(user_part).collect()),
            Message::Assistant { text, tool_calls, .. } => ("model", model_parts(i, text.as_deref(), tool_calls)?),
            Message::Tool { tool_call_id, content, is_error } => {
                ("user", vec![function_response(&messages[..i], i, tool_call_id, content, *is_error)?])
            }
        };
        push_turn(&mut turns, role, parts);
    }
    if turns.is_empty() {
        return Err(LlmError::invalid_request(
            "'messages' must hold a user or assistant message with content for provider gemini",
        ));
    }
    Ok(turns.into_iter().map(|(role, parts)| json!({ "role": role, "parts": parts })).collect())
}

/// A user content part; empty text is skipped (Gemini refuses empty text parts).
fn user_part(p: &Part) -> Option<Value> {
    Some(match p {
        Part::Text(t) if t.is_empty() => return None,
        Part::Text(t) => json!({ "text": t }),
        Part::Image(Image::Base64 { media_type, data }) => {
            json!({ "inlineData": { "mimeType": media_type, "data": data } })
        }
        Part::Image(Image::Url(url)) => {
            json!({ "fileData": { "mimeType": image_mime_type(url), "fileUri": url } })
        }
        // Document understanding: PDFs and other documents inline or by URI,
        // https://ai.google.dev/gemini-api/docs/document-processing
        Part::Document(d) => match &d.source {
            DocumentSource::Text(t) if t.is_empty() => return None,
            DocumentSource::Text(t) => json!({ "text": t }),
            DocumentSource::Base64 { media_type, data } => {
                json!({ "inlineData": { "mimeType": media_type, "data": data } })
            }
            DocumentSource::Url(url) => json!({ "fileData": { "mimeType": document_mime_type(url), "fileUri": url } }),
        },
    })
}

/// A document URL's media type, from its extension; PDF (what document URLs
/// nearly always are) when it names none Gemini reads.
fn document_mime_type(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let last = path.rsplit('/').next().unwrap_or(path);
    let ext = last.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "txt" => "text/plain",
        "md" => "text/markdown",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "xml" => "text/xml",
        _ => "application/pdf",
    }
}

/// `fileData` needs a media type and an OpenAI image URL names none: it is
/// guessed from the path's extension. URLs without a known extension (common
/// for CDN links) are sent as `image/jpeg` rather than refused: the image is
/// still decoded from its bytes, and refusing would reject valid requests.
fn image_mime_type(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let last = path.rsplit('/').next().unwrap_or(path);
    let ext = last.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "gif" => "image/gif",
        _ => "image/jpeg",
    }
}

/// An assistant turn: its text, then one `functionCall` part per tool call.
fn model_parts(i: usize, text: Option<&str>, calls: &[ToolCall]) -> Result<Vec<Value>, LlmError> {
    let mut parts = Vec::with_capacity(calls.len() + 1);
    if let Some(t) = text.filter(|t| !t.is_empty()) {
        parts.push(json!({ "text": t }));
    }
    for (j, call) in calls.iter().enumerate() {
        let args = call_args(&call.arguments).ok_or_else(|| {
            LlmError::invalid_request(format!(
                "messages[{i}].tool_calls[{j}].function.arguments must be a JSON object for provider gemini"
            ))
        })?;
        let mut part = Map::new();
        part.insert("functionCall".into(), json!({ "name": call.name, "args": args }));
        // Gemini signs the first call of a step only; the others carry none.
        match split_id(&call.id).1 {
            Some(signature) => {
                part.insert("thoughtSignature".into(), Value::String(signature.into()));
            }
            None if j == 0 => {
                part.insert("thoughtSignature".into(), Value::String(NO_SIGNATURE.into()));
            }
            None => {}
        }
        parts.push(Value::Object(part));
    }
    Ok(parts)
}

/// Tool call arguments as the JSON object Gemini's `args` is (empty text is no arguments).
fn call_args(arguments: &str) -> Option<Value> {
    if arguments.trim().is_empty() {
        return Some(json!({}));
    }
    match serde_json::from_str(arguments) {
        Ok(v @ Value::Object(_)) => Some(v),
        _ => None,
    }
}

/// A tool call id and the thought signature carried in it, if any.
fn split_id(id: &str) -> (&str, Option<&str>) {
    match id.split_once(SIGNATURE_SEPARATOR) {
        Some((base, sig)) if !sig.is_empty() => (base, Some(sig)),
        _ => (id, None),
    }
}

/// A tool result. Gemini matches results to calls by function name, which the
/// OpenAI form only gives on the assistant's call: the latest earlier call
/// with this id names it.
fn function_response(
    earlier: &[Message],
    i: usize,
    id: &str,
    content: &str,
    is_error: bool,
) -> Result<Value, LlmError> {
    let name = earlier
        .iter()
        .rev()
        .find_map(|m| match m {
            Message::Assistant { tool_calls, .. } => tool_calls.iter().find(|c| c.id == id).map(|c| c.name.as_str()),
            _ => None,
        })
        .ok_or_else(|| {
            LlmError::invalid_request(format!(
                "messages[{i}].tool_call_id '{id}' answers no earlier assistant tool call; provider gemini needs the function's name"
            ))
        })?;
    // A JSON object result is passed as structure, anything else as text; a
    // failed call's result goes under `error`, as Gemini documents it.
    let content = match serde_json::from_str::<Value>(content) {
        Ok(v @ Value::Object(_)) => v,
        _ => Value::String(content.to_string()),
    };
    let key = if is_error { "error" } else { "content" };
    Ok(json!({ "functionResponse": { "name": name, "response": { key: content } } }))
}

/// Function declarations. The caller's JSON Schema goes in
/// `parametersJsonSchema`, which takes JSON Schema as is; `parameters` takes an
/// OpenAPI subset that refuses keywords OpenAI schemas often carry
/// (`additionalProperties`, `$schema`...).
fn tools(tools: &[Tool]) -> Value {
    let declarations: Vec<Value> = tools
        .iter()
        .map(|t| {
            let mut d = Map::new();
            d.insert("name".into(), Value::String(t.name.clone()));
            if let Some(desc) = &t.description {
                d.insert("description".into(), Value::String(desc.clone()));
            }
            d.insert("parametersJsonSchema".into(), t.parameters.clone());
            Value::Object(d)
        })
        .collect();
    json!([{ "functionDeclarations": declarations }])
}

fn tool_config(chat: &Chat) -> Result<Option<Value>, LlmError> {
    let Some(choice) = &chat.tool_choice else {
        return Ok(None);
    };
    if chat.tools.is_empty() {
        return match choice {
            // Nothing to choose from: "auto" and "none" ask for nothing.
            ToolChoice::Auto | ToolChoice::None => Ok(None),
            _ => Err(LlmError::invalid_request("'tool_choice' requires 'tools'")),
        };
    }
    let config = match choice {
        ToolChoice::Auto => json!({ "mode": "AUTO" }),
        ToolChoice::None => json!({ "mode": "NONE" }),
        ToolChoice::Required => json!({ "mode": "ANY" }),
        ToolChoice::Function(name) => {
            if !chat.tools.iter().any(|t| &t.name == name) {
                return Err(LlmError::invalid_request(format!(
                    "'tool_choice' names function '{name}', which is not in 'tools'"
                )));
            }
            json!({ "mode": "ANY", "allowedFunctionNames": [name] })
        }
    };
    Ok(Some(json!({ "functionCallingConfig": config })))
}

/// Sampling settings; no field is required (Gemini's default output limit
/// applies when the caller sets no `max_tokens`).
fn generation_config(chat: &Chat) -> Map<String, Value> {
    let mut g = Map::new();
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            g.insert(k.into(), v);
        }
    };
    set("maxOutputTokens", chat.max_tokens.map(Value::from));
    set("temperature", chat.temperature.map(Value::from));
    set("topP", chat.top_p.map(Value::from));
    set("topK", chat.top_k.map(Value::from));
    set("stopSequences", (!chat.stop.is_empty()).then(|| Value::from(chat.stop.clone())));
    set("seed", chat.seed.map(Value::from));
    set("presencePenalty", chat.presence_penalty.map(Value::from));
    set("frequencyPenalty", chat.frequency_penalty.map(Value::from));
    set("thinkingConfig", chat.reasoning.map(|r| thinking_config(&chat.model, r)));
    match &chat.response_format {
        Some(ResponseFormat::JsonObject) => set("responseMimeType", Some("application/json".into())),
        // `responseJsonSchema` takes JSON Schema, as OpenAI's `json_schema` is;
        // `responseSchema` takes an OpenAPI subset.
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            set("responseMimeType", Some("application/json".into()));
            set("responseJsonSchema", Some(schema.clone()));
        }
        Some(ResponseFormat::Text) | None => {}
    }
    g
}

/// `thinkingConfig` (https://ai.google.dev/gemini-api/docs/thinking), with
/// thought summaries included so the answer shows its reasoning. Gemini 2.5
/// takes a token budget; Gemini 3 takes a thinking level (a budget is only
/// accepted there for backward compatibility), of which `low` and `high` are
/// the ones every Gemini 3 model knows.
fn thinking_config(model: &str, r: crate::chat::Reasoning) -> Value {
    if model.contains("gemini-3") {
        let level = match r.effort() {
            Effort::Minimal | Effort::Low => "low",
            Effort::Medium | Effort::High => "high",
        };
        json!({ "thinkingLevel": level, "includeThoughts": true })
    } else {
        json!({ "thinkingBudget": r.budget(), "includeThoughts": true })
    }
}

// ---------------------------------------------------------------------------
// Answers (a stream event is a partial answer of the same shape)

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct GenerateContentResponse {
    candidates: Option<Vec<Candidate>>,
    prompt_feedback: Option<PromptFeedback>,
    usage_metadata: Option<UsageMetadata>,
    model_version: Option<String>,
    response_id: Option<String>,
    /// Only in a stream's error event.
    error: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Candidate {
    content: Option<Content>,
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Content {
    parts: Option<Vec<AnswerPart>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct AnswerPart {
    text: Option<String>,
    /// A thought summary, not answer text.
    thought: Option<bool>,
    function_call: Option<FunctionCall>,
    thought_signature: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FunctionCall {
    id: Option<String>,
    name: Option<String>,
    args: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct PromptFeedback {
    block_reason: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct UsageMetadata {
    prompt_token_count: Option<u64>,
    /// Prompt tokens of built-in tool results; billed as input.
    tool_use_prompt_token_count: Option<u64>,
    candidates_token_count: Option<u64>,
    /// Thinking tokens; billed as output.
    thoughts_token_count: Option<u64>,
    cached_content_token_count: Option<u64>,
}

impl UsageMetadata {
    /// Later figures replace earlier ones field by field.
    fn merge(&mut self, later: UsageMetadata) {
        let keep = |old: &mut Option<u64>, new: Option<u64>| *old = new.or(*old);
        keep(&mut self.prompt_token_count, later.prompt_token_count);
        keep(&mut self.tool_use_prompt_token_count, later.tool_use_prompt_token_count);
        keep(&mut self.candidates_token_count, later.candidates_token_count);
        keep(&mut self.thoughts_token_count, later.thoughts_token_count);
        keep(&mut self.cached_content_token_count, later.cached_content_token_count);
    }

    fn update(&self) -> UsageUpdate {
        let sum = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
        };
        UsageUpdate {
            prompt: sum(self.prompt_token_count, self.tool_use_prompt_token_count),
            completion: sum(self.candidates_token_count, self.thoughts_token_count),
            cached: self.cached_content_token_count,
            reasoning: self.thoughts_token_count,
            ..UsageUpdate::default()
        }
    }

    fn usage(&self) -> Usage {
        let u = self.update();
        let prompt = u.prompt.unwrap_or(0);
        let completion = u.completion.unwrap_or(0);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt.saturating_add(completion),
            cached_tokens: u.cached.unwrap_or(0),
            cache_write_tokens: 0,
            reasoning_tokens: u.reasoning.unwrap_or(0),
        }
    }
}

/// What one answer part says.
enum Said {
    Text(String),
    Thought(String),
    Call(ToolCall),
}

/// Reads answer parts in order, numbering tool calls across the whole answer
/// (one JSON answer, or every event of a stream).
#[derive(Debug, Default)]
struct PartReader {
    calls: u32,
}

impl PartReader {
    fn read(&mut self, part: AnswerPart) -> Option<Said> {
        if let Some(call) = part.function_call {
            let index = self.calls;
            self.calls += 1;
            let base = call.id.filter(|id| !id.is_empty()).unwrap_or_else(|| format!("call_{index}"));
            let id = match part.thought_signature.filter(|s| !s.is_empty()) {
                Some(sig) => format!("{base}{SIGNATURE_SEPARATOR}{sig}"),
                None => base,
            };
            let arguments = match call.args {
                None | Some(Value::Null) => "{}".to_string(),
                Some(args) => args.to_string(),
            };
            return Some(Said::Call(ToolCall { id, name: call.name.unwrap_or_default(), arguments }));
        }
        match part.text {
            Some(t) if t.is_empty() => None,
            Some(t) if part.thought == Some(true) => Some(Said::Thought(t)),
            Some(t) => Some(Said::Text(t)),
            None => None,
        }
    }

    fn saw_calls(&self) -> bool {
        self.calls > 0
    }
}

/// Gemini's finish reason in OpenAI's terms. Reasons with no OpenAI
/// equivalent (OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL...) end the answer as
/// `stop` (or `tool_calls` when the answer calls tools).
fn finish_reason(reason: &str, called_tools: bool) -> FinishReason {
    match reason {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => FinishReason::ContentFilter,
        _ if called_tools => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

fn upstream(message: String) -> LlmError {
    LlmError::new(502, "upstream_error", message)
}

/// The message of a Gemini error object (`{"code","message","status"}`).
fn error_message(error: &Value) -> String {
    let message = error.get("message").and_then(Value::as_str).unwrap_or("unknown error");
    match error.get("status").and_then(Value::as_str) {
        Some(status) => format!("provider gemini reported an error: {status}: {message}"),
        None => format!("provider gemini reported an error: {message}"),
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// A successful JSON answer, parsed. Only the first candidate is read (the
/// request never asks for more).
pub fn answer(body: &[u8], meta: &AnswerMeta) -> Result<Completion, LlmError> {
    let r: GenerateContentResponse = serde_json::from_slice(body).map_err(|e| {
        upstream(format!("provider gemini returned an answer that is not a GenerateContentResponse: {e}"))
    })?;
    if let Some(error) = &r.error {
        return Err(upstream(error_message(error)));
    }
    let mut c = Completion::new(meta);
    if let Some(id) = non_empty(r.response_id) {
        c.id = id;
    }
    if let Some(model) = non_empty(r.model_version) {
        c.model = model;
    }
    c.usage = r.usage_metadata.map(|u| u.usage());
    let candidate = r.candidates.and_then(|c| c.into_iter().next());
    let Some(candidate) = candidate else {
        // No candidate: the prompt itself was blocked.
        if r.prompt_feedback.and_then(|f| f.block_reason).is_some() {
            c.text = Some(String::new());
            c.finish_reason = Some(FinishReason::ContentFilter);
            return Ok(c);
        }
        return Err(upstream("provider gemini returned an answer with no candidates".into()));
    };
    let mut reader = PartReader::default();
    let mut text: Option<String> = None;
    let mut thought = String::new();
    let parts = candidate.content.and_then(|c| c.parts).unwrap_or_default();
    for part in parts {
        match reader.read(part) {
            Some(Said::Text(t)) => text.get_or_insert_with(String::new).push_str(&t),
            Some(Said::Thought(t)) => thought.push_str(&t),
            Some(Said::Call(call)) => c.tool_calls.push(call),
            None => {}
        }
    }
    // A thought summary has no signature another provider could check.
    if !thought.is_empty() {
        c.thinking.push(Thinking { text: thought, ..Thinking::default() });
    }
    // `None` only when the answer just calls tools.
    c.text = if text.is_none() && reader.saw_calls() { None } else { Some(text.unwrap_or_default()) };
    c.finish_reason = candidate.finish_reason.map(|f| finish_reason(&f, reader.saw_calls()));
    Ok(c)
}

// ---------------------------------------------------------------------------
// Streams

/// Decodes the provider's stream: SSE events, each `data:` a partial
/// `GenerateContentResponse`. Gemini sends no end marker: the stream ended
/// normally when an event carried a finish reason.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    splitter: EventSplitter,
    meta_sent: bool,
    reader: PartReader,
    finished: bool,
    usage: UsageMetadata,
    /// An error was emitted; everything after it is ignored.
    failed: bool,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn event(&mut self, event: &[u8], out: &mut Vec<Delta>) {
        if !is_sse(event) {
            return self.fail(upstream("provider gemini sent a stream that is not server-sent events".into()), out);
        }
        let Some(data) = event_data(event) else {
            return;
        };
        if data.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let r: GenerateContentResponse = match serde_json::from_slice(&data) {
            Ok(r) => r,
            Err(e) => {
                return self.fail(
                    upstream(format!("provider gemini sent a stream event that is not a GenerateContentResponse: {e}")),
                    out,
                )
            }
        };
        if let Some(error) = &r.error {
            return self.fail(upstream(error_message(error)), out);
        }
        if !self.meta_sent && (r.response_id.is_some() || r.model_version.is_some()) {
            self.meta_sent = true;
            out.push(Delta::Meta { id: non_empty(r.response_id), model: non_empty(r.model_version) });
        }
        match r.candidates.and_then(|c| c.into_iter().next()) {
            Some(candidate) => self.candidate(candidate, out),
            None => {
                if r.prompt_feedback.and_then(|f| f.block_reason).is_some() {
                    self.finish(FinishReason::ContentFilter, out);
                }
            }
        }
        if let Some(u) = r.usage_metadata {
            self.usage.merge(u);
            out.push(Delta::Usage(self.usage.update()));
        }
    }

    fn candidate(&mut self, candidate: Candidate, out: &mut Vec<Delta>) {
        for part in candidate.content.and_then(|c| c.parts).unwrap_or_default() {
            let index = self.reader.calls;
            match self.reader.read(part) {
                Some(Said::Text(t)) => out.push(Delta::Text(t)),
                Some(Said::Thought(t)) => out.push(Delta::Thinking(t)),
                // A function call arrives whole in one event.
                Some(Said::Call(c)) => {
                    out.push(Delta::ToolCall { index, id: Some(c.id), name: Some(c.name), arguments: c.arguments })
                }
                None => {}
            }
        }
        if let Some(reason) = candidate.finish_reason {
            let reason = finish_reason(&reason, self.reader.saw_calls());
            self.finish(reason, out);
        }
    }

    fn finish(&mut self, reason: FinishReason, out: &mut Vec<Delta>) {
        if !self.finished {
            self.finished = true;
            out.push(Delta::Finish(reason));
        }
    }

    fn fail(&mut self, e: LlmError, out: &mut Vec<Delta>) {
        self.failed = true;
        out.push(Delta::Error(e));
    }
}

/// Whether every line of an event is an SSE field or comment: a body that is
/// not SSE at all (an HTML page, a JSON array from a call without `alt=sse`)
/// must fail rather than pass as an empty stream.
fn is_sse(event: &[u8]) -> bool {
    event.split(|b| *b == b'\n').all(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let field = line.split(|b| *b == b':').next().unwrap_or_default();
        line.is_empty() || line.starts_with(b":") || matches!(field, b"data" | b"event" | b"id" | b"retry")
    })
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
        // A last event without its blank line is still an event; a cut one
        // fails to parse and becomes an error.
        let rest = self.splitter.take_rest();
        if !rest.is_empty() {
            self.event(&rest, out);
        }
        if self.finished && !self.failed {
            out.push(Delta::Done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChatRequest, ModelDefaults};

    fn chat(body: &str) -> Chat {
        let req = ChatRequest::parse(body.as_bytes()).expect("parses");
        let d = ModelDefaults { name: Some("gemini-2.5-flash".into()), ..ModelDefaults::default() };
        Chat::from_request(&req, &d).expect("valid chat")
    }

    fn translate(body: &str) -> Result<Value, LlmError> {
        request(&chat(body), &ProviderOptions::default()).map(Value::Object)
    }

    fn meta() -> AnswerMeta {
        AnswerMeta {
            fallback_id: "chatcmpl-r1".into(),
            created: 1_700_000_000,
            model: "gemini-2.5-flash".into(),
            client_wants_usage: true,
            ..AnswerMeta::default()
        }
    }

    fn decode_all(stream: &[u8]) -> Vec<Delta> {
        let mut d = StreamDecoder::new();
        let mut out = Vec::new();
        d.decode(stream, &mut out);
        d.end(&mut out);
        out
    }

    #[test]
    fn bad_tool_history_is_refused_by_name() {
        let e = translate(
            r#"{"messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"call_9","content":"r"}]}"#,
        )
        .expect_err("unknown id");
        assert_eq!(e.status, 400);
        assert!(e.message.contains("messages[1].tool_call_id 'call_9'"), "{}", e.message);
        let e = translate(
            r#"{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}"#,
        )
        .expect_err("array arguments");
        assert!(e.message.contains("messages[1].tool_calls[0].function.arguments"), "{}", e.message);
        let e =
            translate(r#"{"messages":[{"role":"system","content":"only a system prompt"}]}"#).expect_err("no turns");
        assert!(e.message.contains("'messages'"), "{}", e.message);
    }

    #[test]
    fn unsupported_fields_are_refused_by_name() {
        for (body, field) in [
            (r#"{"messages":[{"role":"user","content":"x"}],"n":2}"#, "'n'"),
            (r#"{"messages":[{"role":"user","content":"x"}],"logprobs":true}"#, "'logprobs'"),
            (r#"{"messages":[{"role":"user","content":"x"}],"logit_bias":{"50256":-100}}"#, "'logit_bias'"),
        ] {
            let e = translate(body).expect_err(body);
            assert_eq!((e.status, e.code), (400, Some("unsupported_parameter")));
            assert!(e.message.contains(field) && e.message.contains("provider gemini"), "{}", e.message);
        }
        // Gemini may always call several functions at once: the wish is dropped.
        let body = r#"{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"parallel_tool_calls":false}"#;
        assert!(translate(body).is_ok());
    }

    // Function calls with a thought signature: https://ai.google.dev/gemini-api/docs/function-calling
    // and https://ai.google.dev/gemini-api/docs/thought-signatures
    const ANSWER_CALLS: &str = include_str!("../tests/golden/answers/gemini/function_calls.json");

    #[test]
    fn answered_ids_carry_the_signature_back_into_the_next_request() {
        let c = answer(ANSWER_CALLS.as_bytes(), &meta()).expect("parsed");
        let v: Value = serde_json::from_slice(&c.to_openai()).expect("json");
        let call = &v["choices"][0]["message"]["tool_calls"][0];
        let body = json!({"messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "14C"}]});
        let v = translate(&body.to_string()).expect("translated");
        assert_eq!(v["contents"][1]["parts"][0]["thoughtSignature"], "CiQB0e2Kb7yqZ3xbfw==");
        assert_eq!(v["contents"][2]["parts"][0]["functionResponse"]["name"], "get_current_temperature");
    }

    #[test]
    fn finish_reasons_and_candidates_without_content() {
        for (reason, want) in [
            ("SAFETY", FinishReason::ContentFilter),
            ("RECITATION", FinishReason::ContentFilter),
            ("BLOCKLIST", FinishReason::ContentFilter),
            ("PROHIBITED_CONTENT", FinishReason::ContentFilter),
            ("SPII", FinishReason::ContentFilter),
            ("MAX_TOKENS", FinishReason::Length),
            ("OTHER", FinishReason::Stop),
        ] {
            let body = format!(
                r#"{{"candidates":[{{"content":{{"parts":[{{"text":"a"}}],"role":"model"}},"finishReason":"{reason}"}}]}}"#
            );
            let c = answer(body.as_bytes(), &meta()).expect("parsed");
            assert_eq!(c.finish_reason, Some(want), "{reason}");
            assert_eq!((c.id.as_str(), c.model.as_str()), ("chatcmpl-r1", "gemini-2.5-flash"));
        }
        // A candidate stopped before any content (no `content` at all).
        let c = answer(br#"{"candidates":[{"finishReason":"SAFETY","index":0}]}"#, &meta()).expect("parsed");
        assert_eq!((c.text.as_deref(), c.finish_reason), (Some(""), Some(FinishReason::ContentFilter)));
    }

    #[test]
    fn what_is_not_an_answer_is_a_502() {
        for body in [
            &b"<html>"[..],
            b"{}",
            b"[]",
            br#"{"candidates":5}"#,
            br#"{"error":{"code":500,"message":"boom","status":"INTERNAL"}}"#,
        ] {
            let e = answer(body, &meta()).expect_err("not an answer");
            assert_eq!((e.status, e.kind), (502, "upstream_error"));
            assert!(e.message.contains("gemini"), "{}", e.message);
        }
    }

    // SSE framing of streamGenerateContent?alt=sse: https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent
    const STREAM_TEXT: &str = include_str!("../tests/golden/answers/gemini/stream_text.sse");

    #[test]
    fn stream_ends_and_garbage() {
        // Cut before any finish reason: no Done.
        let first_event = STREAM_TEXT.split_inclusive("\r\n\r\n").next().expect("an event");
        let deltas = decode_all(first_event.as_bytes());
        assert!(!deltas.contains(&Delta::Done));
        assert!(matches!(deltas.first(), Some(Delta::Meta { .. })));
        // A last event without its blank line still counts.
        let deltas = decode_all(STREAM_TEXT.trim_end().as_bytes());
        assert_eq!(deltas.last(), Some(&Delta::Done));
        // Cut mid-event, or not Gemini's format: an error, and nothing after it.
        for stream in [
            &STREAM_TEXT.as_bytes()[..STREAM_TEXT.len() - 20],
            b"data: {\"candidates\":\n\n",
            b"data: [DONE]\n\n",
            b"\xff\xfe\n\n",
        ] {
            let deltas = decode_all(stream);
            match deltas.last() {
                Some(Delta::Error(e)) => assert_eq!((e.status, e.kind), (502, "upstream_error")),
                other => panic!("{other:?}"),
            }
        }
        // Comments, other SSE fields and empty data say nothing.
        assert!(decode_all(b": keep-alive\n\nevent: ping\nid: 3\n\ndata:\n\n").is_empty());
    }
}

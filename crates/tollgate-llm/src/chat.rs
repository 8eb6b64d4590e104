//! The provider-neutral form of an OpenAI chat request: typed messages, content
//! parts, tools and sampling settings, with the target's model and defaults
//! applied. Adapters for non-OpenAI providers build their wire format from this,
//! so each one translates from one checked shape instead of raw JSON.

use serde_json::{Map, Value};

use crate::request::{apply_defaults, resolve_model};
use crate::{ChatRequest, LlmError, ModelDefaults};

/// One image, as the caller gave it.
#[derive(Debug, Clone, PartialEq)]
pub enum Image {
    /// A URL the provider fetches itself.
    Url(String),
    /// Inline bytes from a `data:<media_type>;base64,<data>` URI.
    Base64 { media_type: String, data: String },
}

/// A document the model reads: Anthropic's `document` block, OpenAI's
/// `file` part, Gemini's inline data, Bedrock's `document` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub source: DocumentSource,
    /// A title or file name, where the caller gave one.
    pub title: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DocumentSource {
    /// Inline bytes (a PDF, usually), base64-encoded.
    Base64 { media_type: String, data: String },
    /// A URL the provider fetches itself.
    Url(String),
    /// Plain text given as a document.
    Text(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Image(Image),
    Document(Document),
}

/// A block of reasoning an assistant turn showed, replayed in a later turn
/// (Anthropic and Bedrock check the signature of what they produced).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Thinking {
    pub text: String,
    pub signature: Option<String>,
    /// A `redacted_thinking` block's opaque data (then `text` is empty).
    pub redacted: Option<String>,
}

/// How hard the model should think before it answers, in the caller's terms:
/// an effort (OpenAI's `reasoning_effort`, the Responses API's
/// `reasoning.effort`) or a token budget (Anthropic's `thinking`). Each
/// provider takes the form it knows; the other is derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reasoning {
    pub effort: Option<Effort>,
    pub budget_tokens: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    Minimal,
    Low,
    Medium,
    High,
}

impl Effort {
    pub fn as_str(self) -> &'static str {
        match self {
            Effort::Minimal => "minimal",
            Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<Effort> {
        Some(match s {
            "minimal" => Effort::Minimal,
            "low" => Effort::Low,
            "medium" => Effort::Medium,
            "high" => Effort::High,
            _ => return None,
        })
    }
}

impl Reasoning {
    /// The thinking budget in tokens: the caller's, else one for the effort
    /// (Anthropic's minimum is 1,024).
    pub fn budget(&self) -> u64 {
        if let Some(b) = self.budget_tokens {
            return b;
        }
        match self.effort.unwrap_or(Effort::Medium) {
            Effort::Minimal | Effort::Low => 1024,
            Effort::Medium => 4096,
            Effort::High => 16384,
        }
    }

    /// The effort: the caller's, else one for the budget.
    pub fn effort(&self) -> Effort {
        if let Some(e) = self.effort {
            return e;
        }
        match self.budget_tokens.unwrap_or(4096) {
            0..=2048 => Effort::Low,
            2049..=8192 => Effort::Medium,
            _ => Effort::High,
        }
    }
}

/// Where the caller marked the end of a prompt prefix to cache (Anthropic's
/// `cache_control`): after the system prompt, after the tool definitions, or
/// after a message (by its index in `Chat::messages`). Anthropic and Bedrock
/// targets get the marks (`cache_control`, `cachePoint`); the others cache
/// by themselves or not at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePoint {
    System,
    Tools,
    Message(usize),
}

/// A tool call the assistant made; `arguments` is the JSON text as OpenAI sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A `system` or `developer` message.
    System {
        text: String,
    },
    User {
        parts: Vec<Part>,
    },
    /// `text` is `None` when the turn only calls tools; `thinking` is the
    /// reasoning it showed, for providers that want it replayed.
    Assistant {
        text: Option<String>,
        tool_calls: Vec<ToolCall>,
        thinking: Vec<Thinking>,
    },
    /// The result of a tool call; `is_error` when the tool failed.
    Tool {
        tool_call_id: String,
        content: String,
        is_error: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments (an empty object schema when the caller gave none).
    pub parameters: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    Function(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { name: String, schema: Value, strict: bool },
}

/// A validated chat request for one target.
#[derive(Debug, Clone, PartialEq)]
pub struct Chat {
    pub model: String,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    pub stop: Vec<String>,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub response_format: Option<ResponseFormat>,
    /// `parallel_tool_calls: false`; `None` leaves the provider's default.
    pub parallel_tool_calls: Option<bool>,
    /// Extended thinking / reasoning effort, when the caller asked for it.
    pub reasoning: Option<Reasoning>,
    /// Prompt-cache marks, in order.
    pub cache_points: Vec<CachePoint>,
    pub stream: bool,
    /// The caller asked for the usage chunk (`stream_options.include_usage`).
    pub client_wants_usage: bool,
    /// Fields set in the request that change the answer and that this form does
    /// not carry (`n` above 1, `logprobs`, `logit_bias`, unknown fields...).
    /// Adapters other than OpenAI's refuse a request that sets any of them.
    pub uncarried: Vec<String>,
}

/// Request fields that never change the answer, dropped for providers that have
/// no equivalent.
const HARMLESS: &[&str] =
    &["user", "metadata", "store", "service_tier", "stream_options", "safety_identifier", "prompt_cache_key"];

/// Fields this form reads itself.
const CARRIED: &[&str] = &[
    "model",
    "messages",
    "tools",
    "tool_choice",
    "stop",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
    "parallel_tool_calls",
    "stream",
    "n",
    "reasoning_effort",
];

impl Chat {
    /// Validates the request's shape and applies the target's model and defaults.
    pub fn from_request(req: &ChatRequest, defaults: &ModelDefaults) -> Result<Chat, LlmError> {
        let mut body = req.body().clone();
        let model = resolve_model(req.model(), defaults)?;
        apply_defaults(&mut body, defaults);
        if let Some(k) = defaults.top_k {
            body.entry("top_k").or_insert_with(|| Value::from(k));
        }
        let mut uncarried = Vec::new();
        for (k, v) in &body {
            if CARRIED.contains(&k.as_str()) || HARMLESS.contains(&k.as_str()) || v.is_null() {
                continue;
            }
            // `logprobs: false` and an empty `logit_bias` ask for nothing.
            if v == &Value::Bool(false) || v.as_object().is_some_and(Map::is_empty) {
                continue;
            }
            uncarried.push(k.clone());
        }
        if let Some(n) = body.get("n") {
            match n.as_u64() {
                Some(1) => {}
                Some(_) => uncarried.push("n".into()),
                None if n.is_null() => {}
                None => return Err(field("n", "must be a positive integer")),
            }
        }
        let stream = req.is_stream();
        let client_wants_usage = stream
            && body.get("stream_options").and_then(|o| o.get("include_usage")).and_then(Value::as_bool) == Some(true);
        Ok(Chat {
            model,
            messages: messages(&body)?,
            tools: tools(&body)?,
            tool_choice: tool_choice(body.get("tool_choice"))?,
            stop: stop(body.get("stop"))?,
            max_tokens: opt_u64(&body, "max_completion_tokens")?.or(opt_u64(&body, "max_tokens")?),
            temperature: opt_f64(&body, "temperature")?,
            top_p: opt_f64(&body, "top_p")?,
            top_k: opt_u64(&body, "top_k")?,
            seed: match body.get("seed") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_i64().ok_or_else(|| field("seed", "must be an integer"))?),
            },
            presence_penalty: opt_f64(&body, "presence_penalty")?,
            frequency_penalty: opt_f64(&body, "frequency_penalty")?,
            response_format: response_format(body.get("response_format"))?,
            parallel_tool_calls: match body.get("parallel_tool_calls") {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(_) => return Err(field("parallel_tool_calls", "must be a boolean")),
            },
            reasoning: reasoning_effort(body.get("reasoning_effort"))?,
            cache_points: Vec::new(),
            stream,
            client_wants_usage,
            uncarried,
        })
    }

    /// Refuses a request that sets a field the provider cannot honour, naming
    /// the field: silently dropping it would change the answer. `supported`
    /// lists the optional fields the provider maps.
    pub fn refuse_unsupported(&self, provider: &str, supported: &[&str]) -> Result<(), LlmError> {
        let has_documents = self.messages.iter().any(|m| match m {
            Message::User { parts } => parts.iter().any(|p| matches!(p, Part::Document(_))),
            _ => false,
        });
        // `parallel_tool_calls: false` is honoured where a provider has the
        // knob and dropped elsewhere, not refused: agent clients (Codex sends it
        // on every turn) handle several calls in one turn all the same, and
        // refusing would shut them out of those providers.
        let set: [(&str, bool); 10] = [
            ("documents", has_documents),
            ("thinking", self.reasoning.is_some()),
            ("stop", !self.stop.is_empty()),
            ("top_k", self.top_k.is_some()),
            ("seed", self.seed.is_some()),
            ("presence_penalty", self.presence_penalty.is_some()),
            ("frequency_penalty", self.frequency_penalty.is_some()),
            (
                "response_format",
                matches!(self.response_format, Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. })),
            ),
            ("tools", !self.tools.is_empty()),
            ("tool_choice", self.tool_choice.is_some()),
        ];
        for (name, is_set) in set {
            if is_set && !supported.contains(&name) {
                return Err(unsupported(provider, name));
            }
        }
        if let Some(name) = self.uncarried.first() {
            return Err(unsupported(provider, name));
        }
        Ok(())
    }

    /// All system and developer messages, in order, joined by a blank line: for
    /// providers that take one system prompt beside the conversation.
    pub fn system_text(&self) -> Option<String> {
        let texts: Vec<&str> = self
            .messages
            .iter()
            .filter_map(|m| match m {
                Message::System { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        if texts.is_empty() {
            None
        } else {
            Some(texts.join("\n\n"))
        }
    }
}

/// Appends a turn to a provider conversation, merged into the previous one
/// when the role repeats (Anthropic, Gemini and Bedrock want roles to
/// alternate, and several tool results answer one assistant turn). A turn
/// without content is dropped: those providers refuse empty turns, and it says
/// nothing (its neighbours may then merge).
pub(crate) fn push_turn(turns: &mut Vec<(&'static str, Vec<Value>)>, role: &'static str, content: Vec<Value>) {
    if content.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some((last, blocks)) if *last == role => blocks.extend(content),
        _ => turns.push((role, content)),
    }
}

/// A tool call's arguments as OpenAI-format providers want them: a call
/// without arguments (sent as an empty string by some callers) is `{}`.
pub(crate) fn arguments_or_empty_object(arguments: &str) -> &str {
    if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    }
}

/// 400 naming a field a provider cannot honour.
pub fn unsupported(provider: &str, name: &str) -> LlmError {
    LlmError::invalid_request(format!(
        "'{name}' is not supported by provider {provider}; remove it or route to a provider that supports it"
    ))
    .with_code("unsupported_parameter")
}

fn field(name: &str, what: &str) -> LlmError {
    LlmError::invalid_request(format!("'{name}' {what}"))
}

fn opt_u64(body: &Map<String, Value>, name: &str) -> Result<Option<u64>, LlmError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| field(name, "must be a non-negative integer")),
    }
}

fn opt_f64(body: &Map<String, Value>, name: &str) -> Result<Option<f64>, LlmError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| field(name, "must be a number")),
    }
}

fn messages(body: &Map<String, Value>) -> Result<Vec<Message>, LlmError> {
    // ChatRequest::parse checked that messages is a non-empty array of objects with roles.
    let list = body.get("messages").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let at = |what: &str| LlmError::invalid_request(format!("messages[{i}].{what}"));
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        let content = m.get("content");
        out.push(match role {
            "system" | "developer" => {
                Message::System { text: text_only(content).map_err(|w| at(&format!("content {w}")))? }
            }
            "user" => Message::User { parts: parts(content).map_err(|w| at(&format!("content{w}")))? },
            "assistant" => {
                let text = match content {
                    None | Some(Value::Null) => None,
                    c => Some(text_only(c).map_err(|w| at(&format!("content {w}")))?),
                }
                .filter(|t| !t.is_empty());
                let mut tool_calls = Vec::new();
                if let Some(calls) = m.get("tool_calls").filter(|v| !v.is_null()) {
                    let calls = calls.as_array().ok_or_else(|| at("tool_calls must be an array"))?;
                    for (j, c) in calls.iter().enumerate() {
                        let f = c.get("function");
                        let name = f.and_then(|f| f.get("name")).and_then(Value::as_str);
                        let args = f.and_then(|f| f.get("arguments"));
                        let (Some(id), Some(name)) = (c.get("id").and_then(Value::as_str), name) else {
                            return Err(at(&format!("tool_calls[{j}] needs an id and function.name")));
                        };
                        let arguments = match args {
                            Some(Value::String(s)) => s.clone(),
                            None | Some(Value::Null) => "{}".to_string(),
                            Some(other) => other.to_string(),
                        };
                        tool_calls.push(ToolCall { id: id.into(), name: name.into(), arguments });
                    }
                }
                if text.is_none() && tool_calls.is_empty() {
                    Message::Assistant { text: Some(String::new()), tool_calls, thinking: Vec::new() }
                } else {
                    Message::Assistant { text, tool_calls, thinking: Vec::new() }
                }
            }
            "tool" => Message::Tool {
                tool_call_id: m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| at("tool_call_id is required on a tool message"))?
                    .to_string(),
                content: text_only(content).map_err(|w| at(&format!("content {w}")))?,
                is_error: false,
            },
            _ => {
                return Err(at(
                    "role 'function' is deprecated and only OpenAI accepts it; send tool results with role 'tool'",
                ))
            }
        });
    }
    Ok(out)
}

/// Content that may only hold text: a string, or text parts joined.
fn text_only(content: Option<&Value>) -> Result<String, String> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(items)) => {
            let mut out = String::new();
            for (j, p) in items.iter().enumerate() {
                match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str)) {
                    (Some("text"), Some(t)) => out.push_str(t),
                    _ => return Err(format!("[{j}] must be a text part here")),
                }
            }
            Ok(out)
        }
        Some(_) => Err("must be a string or an array of content parts".into()),
    }
}

fn parts(content: Option<&Value>) -> Result<Vec<Part>, String> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![Part::Text(s.clone())]),
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (j, p) in items.iter().enumerate() {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => match p.get("text").and_then(Value::as_str) {
                        Some(t) => out.push(Part::Text(t.to_string())),
                        None => return Err(format!("[{j}].text must be a string")),
                    },
                    Some("image_url") => {
                        let url = match p.get("image_url") {
                            Some(Value::String(u)) => u.as_str(),
                            Some(o) => o.get("url").and_then(Value::as_str).unwrap_or_default(),
                            None => "",
                        };
                        if url.is_empty() {
                            return Err(format!("[{j}].image_url.url is required"));
                        }
                        out.push(Part::Image(image(url).map_err(|w| format!("[{j}].image_url.url {w}"))?));
                    }
                    Some("file") => {
                        out.push(Part::Document(file(p.get("file")).map_err(|w| format!("[{j}].file{w}"))?))
                    }
                    Some(other) => {
                        return Err(format!(
                            "[{j}].type '{other}' is not supported here; use 'text', 'image_url' or 'file'"
                        ))
                    }
                    None => return Err(format!("[{j}].type is required")),
                }
            }
            Ok(out)
        }
        Some(_) => Err(" must be a string or an array of content parts".into()),
    }
}

/// An image URL, or the media type and base64 payload of a `data:` URI.
fn image(url: &str) -> Result<Image, String> {
    match url.strip_prefix("data:") {
        None => Ok(Image::Url(url.to_string())),
        Some(rest) => {
            let (media_type, data) = data_uri(rest)?;
            Ok(Image::Base64 { media_type, data })
        }
    }
}

/// The media type and base64 payload of a `data:` URI (after `data:`).
fn data_uri(rest: &str) -> Result<(String, String), String> {
    let Some((meta, data)) = rest.split_once(',') else {
        return Err("is a data: URI without a ',' before its payload".into());
    };
    let Some(media_type) = meta.strip_suffix(";base64") else {
        return Err("must be a base64 data: URI (data:<type>;base64,...)".into());
    };
    if media_type.is_empty() {
        return Err("names no media type".into());
    }
    Ok((media_type.to_string(), data.to_string()))
}

/// An OpenAI `file` content part (`{"file_data": "data:application/pdf;base64,...",
/// "filename": ...}`, https://platform.openai.com/docs/guides/pdf-files) as a
/// document. A `file_id` names a file uploaded to OpenAI, which no other
/// provider can read. `file_data` without a `data:` prefix is taken as a PDF,
/// the one type OpenAI's chat API reads.
fn file(f: Option<&Value>) -> Result<Document, String> {
    let title = f.and_then(|f| f.get("filename")).and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_string);
    let data = f.and_then(|f| f.get("file_data")).and_then(Value::as_str).filter(|d| !d.is_empty());
    let source = match data {
        Some(d) => match d.strip_prefix("data:") {
            Some(rest) => {
                let (media_type, data) = data_uri(rest).map_err(|w| format!(".file_data {w}"))?;
                DocumentSource::Base64 { media_type, data }
            }
            None => DocumentSource::Base64 { media_type: "application/pdf".into(), data: d.to_string() },
        },
        None if f.and_then(|f| f.get("file_id")).is_some_and(|id| !id.is_null()) => {
            return Err(".file_id names a file uploaded to OpenAI, which this provider cannot read; send the file inline as file_data".into())
        }
        None => return Err(".file_data is required (data:<type>;base64,...)".into()),
    };
    Ok(Document { source, title })
}

/// `reasoning_effort` (https://platform.openai.com/docs/api-reference/chat/create#chat-create-reasoning_effort);
/// `none` asks for no reasoning.
fn reasoning_effort(v: Option<&Value>) -> Result<Option<Reasoning>, LlmError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s == "none" => Ok(None),
        Some(Value::String(s)) if Effort::parse(s).is_some() => {
            Ok(Some(Reasoning { effort: Effort::parse(s), budget_tokens: None }))
        }
        Some(_) => Err(field("reasoning_effort", "must be 'none', 'minimal', 'low', 'medium' or 'high'")),
    }
}

fn tools(body: &Map<String, Value>) -> Result<Vec<Tool>, LlmError> {
    if body.get("functions").is_some_and(|f| !f.is_null()) {
        return Err(LlmError::invalid_request("'functions' is deprecated and only OpenAI accepts it; use 'tools'"));
    }
    let Some(list) = body.get("tools").filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let list = list.as_array().ok_or_else(|| field("tools", "must be an array"))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let at = |what: &str| LlmError::invalid_request(format!("tools[{i}].{what}"));
        match t.get("type").and_then(Value::as_str) {
            Some("function") => {}
            Some(other) => return Err(at(&format!("type '{other}' is not supported; only 'function' tools are"))),
            None => return Err(at("type is required ('function')")),
        }
        let f = t.get("function").ok_or_else(|| at("function is required"))?;
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| at("function.name is required"))?;
        let parameters = match f.get("parameters") {
            None | Some(Value::Null) => serde_json::json!({"type": "object", "properties": {}}),
            Some(p @ Value::Object(_)) => p.clone(),
            Some(_) => return Err(at("function.parameters must be a JSON Schema object")),
        };
        out.push(Tool {
            name: name.to_string(),
            description: f.get("description").and_then(Value::as_str).map(str::to_string),
            parameters,
        });
    }
    Ok(out)
}

fn tool_choice(v: Option<&Value>) -> Result<Option<ToolChoice>, LlmError> {
    let bad = || {
        field(
            "tool_choice",
            "must be 'auto', 'none', 'required' or {\"type\":\"function\",\"function\":{\"name\":...}}",
        )
    };
    Ok(match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => return Err(bad()),
        }),
        Some(o) => {
            let name = o.get("function").and_then(|f| f.get("name")).and_then(Value::as_str).ok_or_else(bad)?;
            Some(ToolChoice::Function(name.to_string()))
        }
    })
}

fn stop(v: Option<&Value>) -> Result<Vec<String>, LlmError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| {
                s.as_str().map(str::to_string).ok_or_else(|| field("stop", "must be a string or an array of strings"))
            })
            .collect(),
        Some(_) => Err(field("stop", "must be a string or an array of strings")),
    }
}

fn response_format(v: Option<&Value>) -> Result<Option<ResponseFormat>, LlmError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    Ok(Some(match v.get("type").and_then(Value::as_str) {
        Some("text") => ResponseFormat::Text,
        Some("json_object") => ResponseFormat::JsonObject,
        Some("json_schema") => {
            let js = v.get("json_schema").ok_or_else(|| field("response_format.json_schema", "is required"))?;
            ResponseFormat::JsonSchema {
                name: js.get("name").and_then(Value::as_str).unwrap_or("response").to_string(),
                schema: js
                    .get("schema")
                    .cloned()
                    .ok_or_else(|| field("response_format.json_schema.schema", "is required"))?,
                strict: js.get("strict").and_then(Value::as_bool).unwrap_or(false),
            }
        }
        _ => return Err(field("response_format.type", "must be 'text', 'json_object' or 'json_schema'")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body through the gateway's two checks: parsing (shapes and numbers
    /// of the OpenAI request), then the provider-neutral form.
    fn chat(body: &str) -> Result<Chat, LlmError> {
        let req = ChatRequest::parse(body.as_bytes())?;
        Chat::from_request(&req, &ModelDefaults { name: Some("m".into()), ..ModelDefaults::default() })
    }

    #[test]
    fn reads_every_message_kind() {
        let c = chat(
            r#"{"messages":[
                {"role":"system","content":"be brief"},
                {"role":"developer","content":[{"type":"text","text":"no jokes"}]},
                {"role":"user","content":[{"type":"text","text":"what is this?"},
                    {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
                    {"type":"image_url","image_url":{"url":"https://example.com/cat.jpg"}}]},
                {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"look","arguments":"{\"x\":1}"}}]},
                {"role":"tool","tool_call_id":"call_1","content":"a cat"}],
              "tools":[{"type":"function","function":{"name":"look","parameters":{"type":"object"}}}],
              "tool_choice":{"type":"function","function":{"name":"look"}},
              "stop":"END","stream":true,"stream_options":{"include_usage":true}}"#,
        )
        .expect("valid");
        assert_eq!(c.system_text().as_deref(), Some("be brief\n\nno jokes"));
        assert_eq!(
            c.messages[2],
            Message::User {
                parts: vec![
                    Part::Text("what is this?".into()),
                    Part::Image(Image::Base64 { media_type: "image/png".into(), data: "iVBORw0KGgo=".into() }),
                    Part::Image(Image::Url("https://example.com/cat.jpg".into())),
                ]
            }
        );
        assert_eq!(
            c.messages[3],
            Message::Assistant {
                text: None,
                tool_calls: vec![ToolCall { id: "call_1".into(), name: "look".into(), arguments: "{\"x\":1}".into() }],
                thinking: Vec::new(),
            }
        );
        assert_eq!(c.tool_choice, Some(ToolChoice::Function("look".into())));
        assert_eq!(c.stop, vec!["END".to_string()]);
        assert!(c.stream && c.client_wants_usage);
        assert!(c.uncarried.is_empty());
    }

    #[test]
    fn answer_changing_fields_are_refused_by_name() {
        let c = chat(r#"{"messages":[{"role":"user","content":"hi"}],"n":2,"user":"u1"}"#).expect("valid");
        let e = c.refuse_unsupported("anthropic", &[]).expect_err("n>1");
        assert!(e.message.contains("'n' is not supported by provider anthropic"), "{}", e.message);
        let c =
            chat(r#"{"messages":[{"role":"user","content":"hi"}],"n":1,"logprobs":false,"seed":3}"#).expect("valid");
        assert!(c.refuse_unsupported("x", &["seed"]).is_ok());
        let e = c.refuse_unsupported("x", &[]).expect_err("seed");
        assert!(e.message.contains("'seed'"));
    }

    #[test]
    fn bad_shapes_name_the_field() {
        for (body, want) in [
            (r#"{"messages":[{"role":"tool","content":"x"}]}"#, "messages[0].tool_call_id"),
            (r#"{"messages":[{"role":"user","content":[{"type":"audio"}]}]}"#, "messages[0].content[0].type 'audio'"),
            (
                r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,xx"}}]}]}"#,
                "base64 data: URI",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]}"#,
                "tools[0].function is required",
            ),
            (r#"{"messages":[{"role":"user","content":"x"}],"tool_choice":"always"}"#, "'tool_choice'"),
            (r#"{"messages":[{"role":"user","content":"x"}],"max_tokens":-1}"#, "'max_tokens'"),
        ] {
            let e = chat(body).expect_err(body);
            assert!(e.message.contains(want), "{body}: {}", e.message);
        }
    }

    #[test]
    fn reasoning_effort_is_carried() {
        // https://platform.openai.com/docs/api-reference/chat/create#chat-create-reasoning_effort
        let c = chat(r#"{"messages":[{"role":"user","content":"hi"}],"reasoning_effort":"high"}"#).expect("valid");
        assert_eq!(c.reasoning, Some(Reasoning { effort: Some(Effort::High), budget_tokens: None }));
        assert!(c.uncarried.is_empty());
        let e = c.refuse_unsupported("cohere", &[]).expect_err("no thinking");
        assert!(e.message.contains("'thinking' is not supported by provider cohere"), "{}", e.message);
        let c = chat(r#"{"messages":[{"role":"user","content":"hi"}],"reasoning_effort":"none"}"#).expect("valid");
        assert_eq!(c.reasoning, None);
        let e = chat(r#"{"messages":[{"role":"user","content":"hi"}],"reasoning_effort":"extreme"}"#)
            .expect_err("bad effort");
        assert!(e.message.contains("'reasoning_effort' must be"), "{}", e.message);
    }

    #[test]
    fn file_parts_become_documents() {
        // File inputs: https://platform.openai.com/docs/guides/pdf-files
        let c = chat(
            r#"{"messages":[{"role":"user","content":[
                {"type":"file","file":{"filename":"draconomicon.pdf","file_data":"data:application/pdf;base64,JVBERi0x"}},
                {"type":"file","file":{"file_data":"JVBERi0y"}},
                {"type":"text","text":"What is the first dragon in the book?"}]}]}"#,
        )
        .expect("valid");
        assert_eq!(
            c.messages[0],
            Message::User {
                parts: vec![
                    Part::Document(Document {
                        source: DocumentSource::Base64 {
                            media_type: "application/pdf".into(),
                            data: "JVBERi0x".into()
                        },
                        title: Some("draconomicon.pdf".into()),
                    }),
                    Part::Document(Document {
                        source: DocumentSource::Base64 {
                            media_type: "application/pdf".into(),
                            data: "JVBERi0y".into()
                        },
                        title: None,
                    }),
                    Part::Text("What is the first dragon in the book?".into()),
                ]
            }
        );
        assert!(c.refuse_unsupported("x", &[]).is_err_and(|e| e.message.contains("'documents'")));
        for (part, want) in [
            (
                r#"{"type":"file","file":{"file_id":"file-abc"}}"#,
                "messages[0].content[0].file.file_id names a file uploaded to OpenAI",
            ),
            (r#"{"type":"file","file":{}}"#, "messages[0].content[0].file.file_data is required"),
            (
                r#"{"type":"file","file":{"file_data":"data:application/pdf,xx"}}"#,
                "messages[0].content[0].file.file_data must be a base64 data: URI",
            ),
        ] {
            let e = chat(&format!(r#"{{"messages":[{{"role":"user","content":[{part}]}}]}}"#)).expect_err(part);
            assert!(e.message.contains(want), "{part}: {}", e.message);
        }
    }

    #[test]
    fn target_defaults_apply_and_the_request_wins() {
        let req =
            ChatRequest::parse(br#"{"messages":[{"role":"user","content":"hi"}],"temperature":0.2}"#).expect("ok");
        let d = ModelDefaults {
            name: Some("m".into()),
            max_tokens: Some(99),
            temperature: Some(1.0),
            top_p: None,
            top_k: Some(5),
        };
        let c = Chat::from_request(&req, &d).expect("ok");
        assert_eq!((c.max_tokens, c.temperature, c.top_k), (Some(99), Some(0.2), Some(5)));
    }
}

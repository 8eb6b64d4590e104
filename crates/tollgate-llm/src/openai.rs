//! The OpenAI chat-completions wire format. Native callers: usage and model
//! from JSON answers, and a stream tap that reads usage from SSE chunks and
//! drops the usage chunk the gateway asked for on the caller's behalf.
//! Translated callers (Anthropic Messages, Responses): requests built from the
//! neutral form for OpenAI, Azure, Mistral and OpenAI-compatible servers, and
//! their answers and chunk streams read back into neutral terms.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::chat::{
    Chat, Document, DocumentSource, Image, Message, Part, ResponseFormat, Thinking, ToolCall, ToolChoice,
};
use crate::completion::{AnswerMeta, Completion, FinishReason};
use crate::provider::{Provider, ProviderOptions};
use crate::sse::{event_data, EventSplitter};
use crate::stream::{Decoder, Delta, UsageUpdate};
use crate::usage::OpenAiUsage;
use crate::{LlmError, Usage};

/// Default endpoint when a target sets no `upstream_url`.
pub const DEFAULT_CHAT_URL: &str = "https://api.openai.com/v1/chat/completions";
/// Default endpoint of Responses routes whose target is OpenAI.
pub const DEFAULT_RESPONSES_URL: &str = "https://api.openai.com/v1/responses";

/// The parts of an answer the gateway reads; everything else passes untouched.
#[derive(Debug, Deserialize)]
struct AnswerFacts {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

/// Usage and model of a JSON chat completion. `None` when the body is not an
/// OpenAI answer (the caller then treats it as a provider fault).
pub fn answer_facts(body: &[u8]) -> Option<(Option<Usage>, Option<String>)> {
    let facts: AnswerFacts = serde_json::from_slice(body).ok()?;
    Some((facts.usage.map(Usage::from), facts.model))
}

/// A chunk as far as the tap cares.
#[derive(Debug, Deserialize)]
struct ChunkFacts {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

/// Watches an OpenAI SSE stream on its way to the client.
#[derive(Debug)]
pub struct StreamTap {
    splitter: EventSplitter,
    client_wants_usage: bool,
    pub usage: Option<Usage>,
    pub model: Option<String>,
    /// Content-bearing events forwarded so far.
    pub events: u64,
    pub saw_done: bool,
}

impl StreamTap {
    pub fn new(client_wants_usage: bool) -> Self {
        StreamTap {
            splitter: EventSplitter::new(),
            client_wants_usage,
            usage: None,
            model: None,
            events: 0,
            saw_done: false,
        }
    }

    /// Feeds upstream bytes; returns what to send downstream now (complete
    /// events only, in order, unchanged except the dropped usage chunk).
    pub fn feed(&mut self, input: &[u8]) -> Bytes {
        self.splitter.push(input);
        let mut out = BytesMut::new();
        while let Some(event) = self.splitter.next_event() {
            let event = match self.keep(&event) {
                Keep::Drop => continue,
                Keep::As => event,
                Keep::Rewritten(e) => e,
            };
            if out.is_empty() {
                out = BytesMut::from(&event[..]);
            } else {
                out.extend_from_slice(&event);
            }
        }
        out.freeze()
    }

    /// Whatever is buffered when the upstream ends (a cut stream's tail).
    pub fn finish(&mut self) -> Bytes {
        self.splitter.take_rest()
    }

    fn keep(&mut self, event: &[u8]) -> Keep {
        let Some(data) = event_data(event) else {
            return Keep::As;
        };
        if *data == *b"[DONE]" {
            self.saw_done = true;
            return Keep::As;
        }
        self.events += 1;
        // Only chunks that carry a usage object (or the first, for the model)
        // are parsed; the rest pass as bytes.
        let has_usage = memchr::memmem::find(&data, b"\"usage\"").is_some()
            && memchr::memmem::find(&data, b"\"usage\":null").is_none()
            && memchr::memmem::find(&data, b"\"usage\": null").is_none();
        if !has_usage && self.model.is_some() {
            return Keep::As;
        }
        let Ok(facts) = serde_json::from_slice::<ChunkFacts>(&data) else {
            return Keep::As;
        };
        if self.model.is_none() {
            self.model = facts.model;
        }
        if let Some(u) = facts.usage {
            self.usage = Some(u.into());
            if self.client_wants_usage {
                return Keep::As;
            }
            let usage_only = facts.choices.map(|c| c.is_empty()).unwrap_or(true);
            if usage_only {
                self.events -= 1;
                return Keep::Drop;
            }
            // Usage riding on a content chunk (Mistral's last chunk): the
            // caller did not ask for it, so the chunk goes without it.
            return without_usage(&data).map_or(Keep::As, Keep::Rewritten);
        }
        Keep::As
    }
}

/// What becomes of one upstream event.
enum Keep {
    Drop,
    As,
    Rewritten(Bytes),
}

/// The event for a chunk's JSON with its `usage` field removed.
fn without_usage(data: &[u8]) -> Option<Bytes> {
    let mut chunk: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(data).ok()?;
    chunk.remove("usage");
    let mut out = b"data: ".to_vec();
    serde_json::to_writer(&mut out, &chunk).ok()?;
    out.extend_from_slice(b"\n\n");
    Some(Bytes::from(out))
}

impl crate::stream::ChatStream for StreamTap {
    fn feed(&mut self, input: &[u8]) -> Bytes {
        StreamTap::feed(self, input)
    }

    fn finish(&mut self) -> Bytes {
        StreamTap::finish(self)
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    fn events(&self) -> u64 {
        self.events
    }

    fn completed(&self) -> bool {
        self.saw_done
    }

    fn fail(&mut self, error: crate::LlmError) -> Bytes {
        let mut event = BytesMut::from(&b"data: "[..]);
        event.extend_from_slice(&error.body());
        event.extend_from_slice(b"\n\n");
        event.freeze()
    }
}

// ---------------------------------------------------------------------------
// Translation: callers that speak another format (Anthropic Messages, the
// Responses API) reach OpenAI-format providers through the neutral form.
// Reference: https://platform.openai.com/docs/api-reference/chat/create and
// https://platform.openai.com/docs/api-reference/chat/streaming

/// Optional fields OpenAI-format providers honour. `top_k` is not an OpenAI
/// field and is refused.
const SUPPORTED: &[&str] = &[
    "documents",
    "thinking",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
    "parallel_tool_calls",
    "tools",
    "tool_choice",
];

/// A chat-completions body for an OpenAI-format provider, built from the
/// neutral form. Replayed reasoning is dropped (OpenAI takes none back) and
/// cache marks are ignored (OpenAI caches prompt prefixes by itself).
pub fn request(chat: &Chat, provider: Provider, opts: &ProviderOptions) -> Result<Map<String, Value>, LlmError> {
    chat.refuse_unsupported(provider.name(), SUPPORTED)?;
    let mut body = Map::new();
    body.insert("model".into(), Value::from(chat.model.as_str()));
    body.insert("messages".into(), Value::Array(messages(chat, provider)?));
    if let Some(n) = chat.max_tokens {
        body.insert(max_tokens_field(provider, opts).into(), Value::from(n));
    }
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            body.insert(k.into(), v);
        }
    };
    set("temperature", chat.temperature.map(Value::from));
    set("top_p", chat.top_p.map(Value::from));
    set("seed", chat.seed.map(Value::from));
    set("presence_penalty", chat.presence_penalty.map(Value::from));
    set("frequency_penalty", chat.frequency_penalty.map(Value::from));
    set("stop", (!chat.stop.is_empty()).then(|| Value::from(chat.stop.clone())));
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
                json!({ "type": "function", "function": function })
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
        // OpenAI refuses `parallel_tool_calls` without tools.
        if let Some(p) = chat.parallel_tool_calls {
            body.insert("parallel_tool_calls".into(), Value::Bool(p));
        }
    }
    if let Some(choice) = &chat.tool_choice {
        body.insert(
            "tool_choice".into(),
            match choice {
                ToolChoice::Auto => Value::from("auto"),
                ToolChoice::None => Value::from("none"),
                ToolChoice::Required => Value::from("required"),
                ToolChoice::Function(name) => json!({ "type": "function", "function": { "name": name } }),
            },
        );
    }
    match &chat.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            body.insert("response_format".into(), json!({ "type": "json_object" }));
        }
        Some(ResponseFormat::JsonSchema { name, schema, strict }) => {
            body.insert(
                "response_format".into(),
                json!({ "type": "json_schema", "json_schema": { "name": name, "schema": schema, "strict": strict } }),
            );
        }
    }
    if let Some(r) = &chat.reasoning {
        // Mistral's adjustable reasoning takes `high` or `none` only
        // (https://docs.mistral.ai/capabilities/reasoning/adjustable).
        let effort = if provider == Provider::Mistral { "high" } else { r.effort().as_str() };
        body.insert("reasoning_effort".into(), Value::from(effort));
    }
    if chat.stream {
        body.insert("stream".into(), Value::Bool(true));
        // Usage is needed for limits whether or not the caller asked for it.
        body.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    Ok(body)
}

/// The output limit's name. OpenAI deprecated `max_tokens` for
/// `max_completion_tokens`, which its reasoning models require; Azure has it
/// since API version 2024-09-01-preview
/// (https://learn.microsoft.com/azure/ai-services/openai/api-version-deprecation).
/// Mistral and most OpenAI-compatible servers only know `max_tokens`.
fn max_tokens_field(provider: Provider, opts: &ProviderOptions) -> &'static str {
    match provider {
        Provider::OpenAi => "max_completion_tokens",
        // Dated versions compare as text; `preview`, `latest` and `v1` sort after them.
        Provider::Azure if opts.azure_api_version.as_str() >= "2024-09-01" => "max_completion_tokens",
        _ => "max_tokens",
    }
}

fn messages(chat: &Chat, provider: Provider) -> Result<Vec<Value>, LlmError> {
    let mut out = Vec::with_capacity(chat.messages.len());
    for (i, m) in chat.messages.iter().enumerate() {
        out.push(match m {
            Message::System { text } => json!({ "role": "system", "content": text }),
            Message::User { parts } => json!({ "role": "user", "content": user_content(i, parts, provider)? }),
            Message::Assistant { text, tool_calls, .. } => {
                let mut msg = Map::new();
                msg.insert("role".into(), Value::from("assistant"));
                let text = text.as_deref().filter(|t| !t.is_empty());
                // A turn that only calls tools has `content: null`.
                let content = match text {
                    Some(t) => Value::from(t),
                    None if !tool_calls.is_empty() => Value::Null,
                    None => Value::from(""),
                };
                msg.insert("content".into(), content);
                if !tool_calls.is_empty() {
                    let calls = tool_calls
                        .iter()
                        .map(|c| json!({ "id": c.id, "type": "function", "function": { "name": c.name, "arguments": crate::chat::arguments_or_empty_object(&c.arguments) } }))
                        .collect();
                    msg.insert("tool_calls".into(), Value::Array(calls));
                }
                Value::Object(msg)
            }
            // OpenAI's tool message has no error flag: the result's text says it.
            Message::Tool { tool_call_id, content, .. } => {
                json!({ "role": "tool", "tool_call_id": tool_call_id, "content": content })
            }
        });
    }
    Ok(out)
}

/// A user turn's content: a string when it is one text, else content parts.
fn user_content(i: usize, parts: &[Part], provider: Provider) -> Result<Value, LlmError> {
    if let [Part::Text(t)] = parts {
        return Ok(Value::from(t.as_str()));
    }
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        out.push(match p {
            Part::Text(t) => json!({ "type": "text", "text": t }),
            Part::Image(Image::Url(url)) => json!({ "type": "image_url", "image_url": { "url": url } }),
            Part::Image(Image::Base64 { media_type, data }) => {
                json!({ "type": "image_url", "image_url": { "url": format!("data:{media_type};base64,{data}") } })
            }
            Part::Document(d) => document_part(i, j, d, provider)?,
        });
    }
    Ok(Value::Array(out))
}

/// A document as a content part. OpenAI reads inline files as `file` parts
/// (`file_data` a data: URI, with a `filename`;
/// https://platform.openai.com/docs/guides/pdf-files) and has no document
/// URLs. Mistral takes `document_url` chunks, a URL or (as its OCR API
/// documents for the same chunk) a base64 data: URI
/// (https://docs.mistral.ai/capabilities/OCR/document_understanding). Text
/// documents are text parts everywhere.
fn document_part(i: usize, j: usize, d: &Document, provider: Provider) -> Result<Value, LlmError> {
    let mistral = provider == Provider::Mistral;
    Ok(match &d.source {
        DocumentSource::Text(text) => json!({ "type": "text", "text": text }),
        DocumentSource::Base64 { media_type, data } if mistral => {
            mistral_document(format!("data:{media_type};base64,{data}"), d.title.as_deref())
        }
        DocumentSource::Url(url) if mistral => mistral_document(url.clone(), d.title.as_deref()),
        DocumentSource::Base64 { media_type, data } => {
            let filename = d.title.clone().unwrap_or_else(|| {
                if media_type == "application/pdf" {
                    "document.pdf".into()
                } else {
                    "document".into()
                }
            });
            json!({ "type": "file", "file": { "file_data": format!("data:{media_type};base64,{data}"), "filename": filename } })
        }
        DocumentSource::Url(_) => {
            return Err(LlmError::invalid_request(format!(
                "messages[{i}].content[{j}]: provider {} takes documents inline only, not by URL \
                 (OpenAI's chat API reads no document URLs); send the document as base64 data",
                provider.name()
            ))
            .with_code("unsupported_parameter"))
        }
    })
}

fn mistral_document(url: String, name: Option<&str>) -> Value {
    let mut part = Map::new();
    part.insert("type".into(), Value::from("document_url"));
    part.insert("document_url".into(), Value::from(url));
    if let Some(name) = name {
        part.insert("document_name".into(), Value::from(name));
    }
    Value::Object(part)
}

// ---------------------------------------------------------------------------
// Answers and streams, read typed and borrowed from the body

/// Text as OpenAI-format servers send it: a string, or a list of content
/// chunks (Mistral's reasoning models answer `[{"type":"thinking","thinking":
/// [{"type":"text","text":..}]}, {"type":"text","text":..}]`). Anything else
/// (null, an object) carries no text.
#[derive(Debug, Default)]
struct Content<'a> {
    text: Vec<Cow<'a, str>>,
    thinking: Vec<Cow<'a, str>>,
}

impl Content<'_> {
    fn is_empty(&self) -> bool {
        self.text.iter().all(|t| t.is_empty()) && self.thinking.iter().all(|t| t.is_empty())
    }
}

/// One content chunk of a list.
#[derive(Deserialize)]
struct ContentChunk<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    thinking: Content<'a>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Content<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a list of content chunks")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Content<'a>, E> {
                Ok(Content { text: vec![Cow::Borrowed(v)], thinking: Vec::new() })
            }
            fn visit_str<E>(self, v: &str) -> Result<Content<'a>, E> {
                Ok(Content { text: vec![Cow::Owned(v.to_string())], thinking: Vec::new() })
            }
            fn visit_string<E>(self, v: String) -> Result<Content<'a>, E> {
                Ok(Content { text: vec![Cow::Owned(v)], thinking: Vec::new() })
            }
            fn visit_unit<E>(self) -> Result<Content<'a>, E> {
                Ok(Content::default())
            }
            fn visit_none<E>(self) -> Result<Content<'a>, E> {
                Ok(Content::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Content<'a>, E> {
                Ok(Content::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Content<'a>, E> {
                Ok(Content::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Content<'a>, E> {
                Ok(Content::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Content<'a>, E> {
                Ok(Content::default())
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Content<'a>, A::Error> {
                while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
                Ok(Content::default())
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Content<'a>, A::Error> {
                let mut out = Content::default();
                while let Some(chunk) = seq.next_element::<ContentChunk<'a>>()? {
                    match chunk.kind.as_deref() {
                        Some("thinking") => {
                            // A thinking chunk's own text parts are all thinking.
                            let inner = chunk.thinking;
                            out.thinking.extend(inner.text);
                            out.thinking.extend(inner.thinking);
                        }
                        Some("text") | None => out.text.extend(chunk.text),
                        // Images, references and chunk kinds added later.
                        Some(_) => {}
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_any(Visit(std::marker::PhantomData))
    }
}

/// A `chat.completion` or one `chat.completion.chunk`: the same shape, with
/// `message` in an answer's choices and `delta` in a chunk's.
#[derive(Deserialize)]
struct WireCompletion<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    choices: Option<Vec<WireChoice<'a>>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    /// An error object instead of an answer (or mid-stream).
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct WireChoice<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default, borrow)]
    message: Option<WireMessage<'a>>,
    #[serde(default, borrow)]
    delta: Option<WireMessage<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct WireMessage<'a> {
    #[serde(default, borrow)]
    content: Content<'a>,
    /// Reasoning as DeepSeek, vLLM and other OpenAI-compatible servers send it.
    #[serde(default, borrow)]
    reasoning_content: Content<'a>,
    /// The same under the name OpenRouter, Groq and newer vLLM use.
    #[serde(default, borrow)]
    reasoning: Content<'a>,
    #[serde(default, borrow)]
    refusal: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<WireToolCall<'a>>>,
}

impl<'a> WireMessage<'a> {
    /// The reasoning shown: `reasoning_content`, else `reasoning`, then
    /// thinking chunks of the content.
    fn thinking(&mut self) -> Vec<Cow<'a, str>> {
        let mut out = if !self.reasoning_content.is_empty() {
            std::mem::take(&mut self.reasoning_content.text)
        } else {
            std::mem::take(&mut self.reasoning.text)
        };
        out.append(&mut self.content.thinking);
        out.retain(|t| !t.is_empty());
        out
    }
}

#[derive(Deserialize)]
struct WireToolCall<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    function: Option<WireFunction<'a>>,
}

#[derive(Deserialize)]
struct WireFunction<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    /// JSON text; an object is taken too (servers that send one).
    #[serde(default, borrow)]
    arguments: Option<&'a RawValue>,
}

impl WireFunction<'_> {
    fn arguments(&self) -> String {
        match self.arguments {
            None => String::new(),
            Some(raw) => match serde_json::from_str::<Option<String>>(raw.get()) {
                Ok(Some(s)) => s,
                Ok(None) => String::new(),
                Err(_) => raw.get().to_string(),
            },
        }
    }
}

/// OpenAI's `usage`, with the cache and reasoning details.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<WirePromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<WireCompletionDetails>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
struct WirePromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    cache_write_tokens: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
struct WireCompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl WireUsage {
    fn update(&self) -> UsageUpdate {
        UsageUpdate {
            prompt: self.prompt_tokens,
            completion: self.completion_tokens,
            cached: self.prompt_tokens_details.and_then(|d| d.cached_tokens),
            cache_write: self.prompt_tokens_details.and_then(|d| d.cache_write_tokens),
            reasoning: self.completion_tokens_details.and_then(|d| d.reasoning_tokens),
        }
    }

    fn usage(&self) -> Usage {
        let u = self.update();
        let prompt = u.prompt.unwrap_or(0);
        let completion = u.completion.unwrap_or(0);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: self.total_tokens.unwrap_or(prompt.saturating_add(completion)),
            cached_tokens: u.cached.unwrap_or(0),
            cache_write_tokens: u.cache_write.unwrap_or(0),
            reasoning_tokens: u.reasoning.unwrap_or(0),
        }
    }
}

/// A finish reason in the neutral vocabulary; `Err` for Mistral's `error`
/// (the generation failed).
fn finish_reason(reason: &str) -> Result<FinishReason, ()> {
    Ok(match reason {
        // `model_length` is Mistral's: the context window ran out.
        "length" | "model_length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        "error" => return Err(()),
        // `stop` and reasons added later: the model ended of its own accord.
        _ => FinishReason::Stop,
    })
}

fn upstream(message: String) -> LlmError {
    LlmError::new(502, "upstream_error", message)
}

/// The message of an OpenAI-format error object (`{"message","type","code"}`,
/// or a bare string).
fn error_text(error: &Value) -> String {
    let field = |name| error.get(name).and_then(Value::as_str);
    match (error.as_str(), field("message"), field("type").or(field("code"))) {
        (Some(s), _, _) => s.to_string(),
        (None, Some(m), Some(kind)) => format!("{kind}: {m}"),
        (None, Some(m), None) => m.to_string(),
        (None, None, _) => error.to_string().chars().take(200).collect(),
    }
}

fn non_empty(s: Option<Cow<'_, str>>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(Cow::into_owned)
}

/// A `chat.completion` read into neutral terms. Only the first choice is
/// read (the request never asks for more).
pub fn answer(body: &[u8], meta: &AnswerMeta) -> Result<Completion, LlmError> {
    let not_a_completion = || upstream("the provider returned an answer that is not an OpenAI chat completion".into());
    let wire: WireCompletion = serde_json::from_slice(body).map_err(|_| not_a_completion())?;
    if let Some(error) = wire.error.as_ref().filter(|e| !e.is_null()) {
        return Err(upstream(format!("the provider answered with an error: {}", error_text(error))));
    }
    let mut choices = wire.choices.ok_or_else(not_a_completion)?;
    let mut c = Completion::new(meta);
    if let Some(id) = non_empty(wire.id) {
        c.id = id;
    }
    if let Some(model) = non_empty(wire.model) {
        c.model = model;
    }
    c.usage = wire.usage.map(|u| u.usage());
    let Some(choice) = choices.iter_mut().find(|ch| ch.index.unwrap_or(0) == 0) else {
        return Err(upstream("the provider returned a chat completion without choices".into()));
    };
    if let Some(reason) = choice.finish_reason.as_deref() {
        c.finish_reason =
            Some(finish_reason(reason).map_err(|()| {
                upstream("the provider reported that the generation failed (finish_reason error)".into())
            })?);
    }
    let Some(mut message) = choice.message.take() else {
        return Err(not_a_completion());
    };
    let thinking: String = message.thinking().concat();
    if !thinking.is_empty() {
        c.thinking.push(Thinking { text: thinking, ..Thinking::default() });
    }
    for (i, call) in message.tool_calls.iter().flatten().enumerate() {
        let f = call.function.as_ref();
        c.tool_calls.push(ToolCall {
            id: non_empty(call.id.clone()).unwrap_or_else(|| format!("call_{i}")),
            name: f.and_then(|f| f.name.as_deref()).unwrap_or_default().to_string(),
            arguments: f.map(WireFunction::arguments).filter(|a| !a.is_empty()).unwrap_or_else(|| "{}".into()),
        });
    }
    let mut text: String = message.content.text.concat();
    // A refusal comes instead of content: it is what the model said.
    if text.is_empty() {
        if let Some(refusal) = message.refusal.as_deref() {
            text.push_str(refusal);
        }
    }
    // `None` only when the answer just calls tools.
    c.text = if text.is_empty() && !c.tool_calls.is_empty() { None } else { Some(text) };
    Ok(c)
}

/// Decodes `chat.completion.chunk` SSE events into deltas: the stream ends
/// with `data: [DONE]`; an `{"error": ...}` event (or data that is not JSON)
/// ends it with an error.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    splitter: EventSplitter,
    meta_sent: bool,
    /// Each tool call so far, by its neutral index: the provider's `index`
    /// and id. A new id at a known index starts a new call (servers that
    /// number every call 0).
    calls: Vec<(u64, Option<String>)>,
    finished: bool,
    /// `Done` or an error was emitted: the rest is ignored.
    ended: bool,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn event(&mut self, event: &[u8], out: &mut Vec<Delta>) {
        let Some(data) = event_data(event) else {
            return;
        };
        let data = data.trim_ascii();
        if data.is_empty() {
            return;
        }
        if data == b"[DONE]" {
            self.ended = true;
            return out.push(Delta::Done);
        }
        let chunk: WireCompletion = match serde_json::from_slice(data) {
            Ok(c) => c,
            Err(_) => return self.fail("the provider sent a stream event that is not JSON".into(), out),
        };
        if let Some(error) = chunk.error.as_ref().filter(|e| !e.is_null()) {
            return self.fail(format!("the provider reported an error mid-stream: {}", error_text(error)), out);
        }
        if !self.meta_sent {
            let (id, model) = (non_empty(chunk.id), non_empty(chunk.model));
            if id.is_some() || model.is_some() {
                self.meta_sent = true;
                out.push(Delta::Meta { id, model });
            }
        }
        for choice in chunk.choices.into_iter().flatten().filter(|c| c.index.unwrap_or(0) == 0) {
            if let Some(delta) = choice.delta {
                self.delta(delta, out);
            }
            if let (Some(reason), false) = (choice.finish_reason.as_deref(), self.finished) {
                match finish_reason(reason) {
                    Ok(reason) => {
                        self.finished = true;
                        out.push(Delta::Finish(reason));
                    }
                    Err(()) => {
                        return self
                            .fail("the provider reported that the generation failed (finish_reason error)".into(), out)
                    }
                }
            }
        }
        if let Some(u) = chunk.usage {
            out.push(Delta::Usage(u.update()));
        }
    }

    fn delta(&mut self, mut delta: WireMessage<'_>, out: &mut Vec<Delta>) {
        for t in delta.thinking() {
            out.push(Delta::Thinking(t.into_owned()));
        }
        for t in delta.content.text.into_iter().chain(delta.refusal).filter(|t| !t.is_empty()) {
            out.push(Delta::Text(t.into_owned()));
        }
        for call in delta.tool_calls.into_iter().flatten() {
            let upstream_index = call.index.unwrap_or(0);
            let id = non_empty(call.id);
            let name = call.function.as_ref().and_then(|f| non_empty(f.name.clone()));
            let arguments = call.function.as_ref().map(WireFunction::arguments).unwrap_or_default();
            let known = match call.index {
                Some(_) => self.calls.iter().rposition(|(i, _)| *i == upstream_index),
                // Without indexes, a delta without an id continues the last call.
                None if id.is_none() => self.calls.len().checked_sub(1),
                None => None,
            };
            let same = known.filter(|&k| match (&self.calls[k].1, &id) {
                (Some(known_id), Some(id)) => known_id == id,
                _ => true,
            });
            match same {
                Some(k) => {
                    if name.is_some() || !arguments.is_empty() {
                        let index = u32::try_from(k).unwrap_or(u32::MAX);
                        out.push(Delta::ToolCall { index, id: None, name, arguments });
                    }
                }
                None => {
                    let k = self.calls.len();
                    let id = id.unwrap_or_else(|| format!("call_{k}"));
                    self.calls.push((upstream_index, Some(id.clone())));
                    let index = u32::try_from(k).unwrap_or(u32::MAX);
                    out.push(Delta::ToolCall { index, id: Some(id), name, arguments });
                }
            }
        }
    }

    fn fail(&mut self, message: String, out: &mut Vec<Delta>) {
        self.ended = true;
        out.push(Delta::Error(upstream(message)));
    }
}

impl Decoder for StreamDecoder {
    fn decode(&mut self, input: &[u8], out: &mut Vec<Delta>) {
        if self.ended {
            return;
        }
        self.splitter.push(input);
        while let Some(event) = self.splitter.next_event() {
            self.event(&event, out);
            if self.ended {
                return;
            }
        }
    }

    fn end(&mut self, out: &mut Vec<Delta>) {
        if self.ended {
            return;
        }
        // A last event without its blank line still counts; a cut one is not JSON.
        let rest = self.splitter.take_rest();
        self.event(&rest, out);
        // Servers that end without `[DONE]` after the finish reason ended
        // the answer all the same.
        if !self.ended && self.finished {
            self.ended = true;
            out.push(Delta::Done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shape from OpenAI's API reference (chat completion chunk object, with
    // stream_options.include_usage).
    const STREAM: &str = concat!(
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n",
        "data: [DONE]\n\n",
    );

    fn run(tap: &mut StreamTap, pieces: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in pieces {
            out.extend_from_slice(&tap.feed(p));
        }
        out.extend_from_slice(&tap.finish());
        out
    }

    #[test]
    fn usage_chunk_is_dropped_when_the_client_did_not_ask() {
        let mut tap = StreamTap::new(false);
        let out = run(&mut tap, &[STREAM.as_bytes()]);
        let out = String::from_utf8(out).expect("utf8");
        assert!(!out.contains("prompt_tokens"));
        assert!(out.ends_with("data: [DONE]\n\n"));
        assert_eq!(
            tap.usage,
            Some(Usage {
                prompt_tokens: 9,
                completion_tokens: 2,
                total_tokens: 11,
                cached_tokens: 4,
                ..Default::default()
            })
        );
        assert_eq!(tap.model.as_deref(), Some("gpt-4o-2024-08-06"));
        assert!(tap.saw_done);
        assert_eq!(tap.events, 3);
    }

    #[test]
    fn usage_chunk_is_kept_when_the_client_asked() {
        let mut tap = StreamTap::new(true);
        let out = run(&mut tap, &[STREAM.as_bytes()]);
        assert_eq!(out, STREAM.as_bytes());
    }

    #[test]
    fn any_split_gives_the_same_output() {
        let whole = run(&mut StreamTap::new(false), &[STREAM.as_bytes()]);
        let b = STREAM.as_bytes();
        for cut in 0..=b.len() {
            let mut tap = StreamTap::new(false);
            assert_eq!(run(&mut tap, &[&b[..cut], &b[cut..]]), whole, "cut at {cut}");
            assert_eq!(tap.usage.map(|u| u.total_tokens), Some(11));
        }
        let ones: Vec<&[u8]> = b.chunks(1).collect();
        assert_eq!(run(&mut StreamTap::new(false), &ones), whole);
    }

    #[test]
    fn usage_on_a_content_chunk_is_removed_when_the_client_did_not_ask() {
        // Mistral's last chunk: finish_reason and usage together.
        let stream = concat!(
            "data: {\"id\":\"m1\",\"model\":\"mistral-large\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"m1\",\"model\":\"mistral-large\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}\n\n",
            "data: [DONE]\n\n",
        );
        let mut tap = StreamTap::new(false);
        let out = String::from_utf8(run(&mut tap, &[stream.as_bytes()])).expect("utf8");
        assert!(!out.contains("usage") && out.contains("\"finish_reason\":\"stop\""), "{out}");
        assert_eq!(tap.usage.map(|u| u.total_tokens), Some(6));
        let mut tap = StreamTap::new(true);
        assert_eq!(run(&mut tap, &[stream.as_bytes()]), stream.as_bytes());
    }

    #[test]
    fn json_answer_facts() {
        let body = br#"{"id":"x","object":"chat.completion","model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;
        let (usage, model) = answer_facts(body).expect("parsed");
        assert_eq!(usage.map(|u| u.total_tokens), Some(7));
        assert_eq!(model.as_deref(), Some("gpt-4o-2024-08-06"));
        assert!(answer_facts(b"<html>").is_none());
    }
}

#[cfg(test)]
mod translation_tests {
    use super::*;

    fn base() -> Chat {
        Chat {
            model: "gpt-4.1".into(),
            messages: vec![Message::User { parts: vec![Part::Text("hi".into())] }],
            tools: Vec::new(),
            tool_choice: None,
            stop: Vec::new(),
            max_tokens: None,
            temperature: None,
            top_p: None,
            top_k: None,
            seed: None,
            presence_penalty: None,
            frequency_penalty: None,
            response_format: None,
            parallel_tool_calls: None,
            reasoning: None,
            cache_points: Vec::new(),
            stream: false,
            client_wants_usage: false,
            uncarried: Vec::new(),
        }
    }

    fn meta() -> AnswerMeta {
        AnswerMeta {
            fallback_id: "chatcmpl-r1".into(),
            created: 7,
            model: "asked".into(),
            client_wants_usage: true,
            ..AnswerMeta::default()
        }
    }

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("../tests/golden/answers/", $name))
        };
    }

    #[test]
    fn what_openai_cannot_take_is_refused_by_name() {
        let mut c = base();
        c.top_k = Some(40);
        let e = request(&c, Provider::OpenAi, &ProviderOptions::default()).expect_err("top_k");
        assert_eq!((e.status, e.code), (400, Some("unsupported_parameter")));
        assert!(e.message.contains("'top_k' is not supported by provider openai"), "{}", e.message);
        let mut c = base();
        c.uncarried = vec!["top_logprobs".into()];
        let e = request(&c, Provider::Mistral, &ProviderOptions::default()).expect_err("uncarried");
        assert!(e.message.contains("'top_logprobs' is not supported by provider mistral"), "{}", e.message);
    }

    /// What the golden files (tests/golden/answers/openai*) do not show:
    /// arguments sent as an object, a call without id, `reasoning` as
    /// OpenRouter names it, a failed generation and bodies that are no answer.
    #[test]
    fn answer_oddities_and_faults() {
        let c = answer(br#"{"choices":[{"message":{"reasoning":"think","tool_calls":[{"function":{"name":"f","arguments":{"a":1}}}]},"finish_reason":"tool_calls"}]}"#, &meta()).expect("parsed");
        assert_eq!(
            c.tool_calls,
            vec![ToolCall { id: "call_0".into(), name: "f".into(), arguments: "{\"a\":1}".into() }]
        );
        assert_eq!(c.thinking[0].text, "think");
        let e = answer(br#"{"choices":[{"message":{"content":""},"finish_reason":"error"}]}"#, &meta())
            .expect_err("failed generation");
        assert!(e.message.contains("generation failed"), "{}", e.message);
        for bad in [&b"<html>"[..], b"{}", b"[]", br#"{"choices":[]}"#, br#"{"choices":[{"delta":{}}]}"#] {
            assert_eq!(answer(bad, &meta()).expect_err("not a completion").status, 502);
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
    fn what_is_not_a_chunk_ends_the_stream() {
        for bad in [
            &b"data: <html>oops</html>\n\n"[..],
            b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"error\"}]}\n\n",
        ] {
            assert!(
                matches!(decode_all(bad).as_slice(), [Delta::Error(e)] if e.status == 502),
                "{:?}",
                decode_all(bad)
            );
        }
    }

    #[test]
    fn streams_cut_short_or_without_done() {
        let whole = fixture!("openai/stream_text.sse");
        // Cut inside the last event before [DONE]: not JSON, an error.
        let deltas = decode_all(&whole[..whole.len() - 30]);
        assert!(matches!(deltas.last(), Some(Delta::Error(_))), "{deltas:?}");
        // Cut between events before the finish: nothing more, no Done.
        let upto = String::from_utf8_lossy(whole).find("\"finish_reason\":\"stop\"").expect("finish");
        let head = &whole[..String::from_utf8_lossy(&whole[..upto]).rfind("data:").expect("event")];
        assert!(!decode_all(head).iter().any(|d| matches!(d, Delta::Done | Delta::Error(_))));
        // A server that ends after the finish reason without [DONE] still ended.
        let no_done = b"data: {\"choices\":[{\"delta\":{\"content\":\"x\"},\"finish_reason\":\"stop\"}]}\n\n";
        assert_eq!(decode_all(no_done).last(), Some(&Delta::Done));
        // Comments, blank data and events after [DONE] are ignored.
        assert_eq!(decode_all(b": ping\n\ndata: \n\ndata: [DONE]\n\ndata: {\"x\"\n\n"), vec![Delta::Done]);
    }
}

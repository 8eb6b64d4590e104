//! A checked Messages request in provider-neutral terms (`Chat`), for
//! providers other than Anthropic, and its prompt size by the tokenizer.
//! What has no neutral form (Anthropic's server tools, Files API sources,
//! server tool blocks replayed in the conversation) is refused with a 400
//! naming the field: another provider cannot run it, and dropping it would
//! change the answer.

use serde_json::{Map, Value};

use super::validate::{At, EFFORTS};
use crate::chat::{
    CachePoint, Chat, Document, DocumentSource, Effort, Image, Message, Part, Reasoning, ResponseFormat, Thinking,
    Tool, ToolCall, ToolChoice,
};
use crate::request::resolve_model;
use crate::{LlmError, ModelDefaults};

/// Top-level fields the neutral form carries.
const CARRIED: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "stream",
    "tools",
    "tool_choice",
    "stop_sequences",
    "temperature",
    "top_p",
    "top_k",
    "thinking",
    "output_config",
    "cache_control",
];

/// Top-level fields that never change the answer: dropped for other providers.
/// `context_management` is among them: its edits (clearing old thinking and
/// tool results once a prompt grows past a threshold, which Claude Code
/// asks for) only shorten the prompt Anthropic reads; another provider reads
/// the whole conversation the caller sent. `container` is not: it names a
/// code-execution sandbox that only Anthropic's server tools use.
const HARMLESS: &[&str] = &[
    "metadata",
    "service_tier",
    "inference_geo",
    "speed",
    "diagnostics",
    "user_profile_id",
    "workspace_id",
    "context_management",
];

/// Whether the request asks for thinking: then the target's sampling
/// defaults are left out, as Anthropic refuses `temperature` other than 1,
/// `top_k`, and most `top_p` with thinking on (and reasoning models of other
/// providers refuse sampling settings too). A caller's own values still go.
pub(crate) fn thinking_on(body: &Map<String, Value>) -> bool {
    let kind = body.get("thinking").and_then(|t| t.get("type")).and_then(Value::as_str);
    matches!(kind, Some("enabled" | "adaptive" | "between_tools"))
}

/// The neutral chat request. `body` passed `validate::request`.
pub(crate) fn to_chat(body: &Map<String, Value>, defaults: &ModelDefaults) -> Result<Chat, LlmError> {
    let model = resolve_model(body.get("model").and_then(Value::as_str), defaults)?;
    let mut cache_points = Vec::new();
    let (tools, tools_cached) = tools(body.get("tools"))?;
    if tools_cached {
        cache_points.push(CachePoint::Tools);
    }
    let mut messages = Vec::new();
    if let Some((text, cached)) = system(body.get("system")) {
        messages.push(Message::System { text });
        if cached {
            cache_points.push(CachePoint::System);
        }
    }
    if let Some(Value::Array(list)) = body.get("messages") {
        let at = At::root("messages");
        for (i, m) in list.iter().enumerate() {
            conversation_turn(&at.idx(i), m, &mut messages, &mut cache_points)?;
        }
    }
    // A top-level mark caches up to the last cacheable block: the end of the conversation.
    if body.get("cache_control").is_some_and(|c| !c.is_null()) && !messages.is_empty() {
        mark(&mut cache_points, CachePoint::Message(messages.len() - 1));
    }
    let (tool_choice, parallel_tool_calls) = tool_choice(body.get("tool_choice"));
    let reasoning = reasoning(body);
    let sampling_defaults = !thinking_on(body);
    let float = |name: &str, default: Option<f64>| {
        body.get(name).and_then(Value::as_f64).or(default.filter(|_| sampling_defaults))
    };
    let mut uncarried = Vec::new();
    for (k, v) in body {
        if !v.is_null() && !CARRIED.contains(&k.as_str()) && !HARMLESS.contains(&k.as_str()) {
            uncarried.push(k.clone());
        }
    }
    if let Some(Value::Object(config)) = body.get("output_config") {
        for (k, v) in config {
            if !v.is_null() && k != "effort" && k != "format" {
                uncarried.push(format!("output_config.{k}"));
            }
        }
    }
    let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
    Ok(Chat {
        model,
        messages,
        tools,
        tool_choice,
        stop: body
            .get("stop_sequences")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default(),
        max_tokens: body.get("max_tokens").and_then(Value::as_u64).or(defaults.max_tokens),
        temperature: float("temperature", defaults.temperature),
        top_p: float("top_p", defaults.top_p),
        top_k: body.get("top_k").and_then(Value::as_u64).or(defaults.top_k.filter(|_| sampling_defaults)),
        seed: None,
        presence_penalty: None,
        frequency_penalty: None,
        response_format: response_format(body),
        parallel_tool_calls,
        reasoning,
        cache_points,
        stream,
        // Anthropic's stream always reports usage.
        client_wants_usage: true,
        uncarried,
    })
}

/// Adds a cache mark once.
fn mark(points: &mut Vec<CachePoint>, p: CachePoint) {
    if !points.contains(&p) {
        points.push(p);
    }
}

fn has_cache_control(b: &Value) -> bool {
    b.get("cache_control").is_some_and(|c| !c.is_null())
}

/// The system prompt (blocks joined by a blank line) and whether a block is
/// marked for caching.
fn system(v: Option<&Value>) -> Option<(String, bool)> {
    match v? {
        Value::String(s) if !s.is_empty() => Some((s.clone(), false)),
        Value::Array(blocks) => {
            let texts: Vec<&str> = blocks.iter().filter_map(|b| b.get("text").and_then(Value::as_str)).collect();
            let text = texts.join("\n\n");
            if text.is_empty() {
                return None;
            }
            Some((text, blocks.iter().any(has_cache_control)))
        }
        _ => None,
    }
}

/// One caller message, as one or more neutral messages.
fn conversation_turn(
    at: &At<'_>,
    m: &Value,
    out: &mut Vec<Message>,
    cache: &mut Vec<CachePoint>,
) -> Result<(), LlmError> {
    let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
    let content = m.get("content");
    if let Some(Value::String(s)) = content {
        out.push(match role {
            "assistant" => Message::Assistant { text: Some(s.clone()), tool_calls: Vec::new(), thinking: Vec::new() },
            _ => Message::User { parts: vec![Part::Text(s.clone())] },
        });
        return Ok(());
    }
    let empty = Vec::new();
    let blocks = content.and_then(Value::as_array).unwrap_or(&empty);
    let cat = at.key("content");
    if role == "assistant" {
        return assistant_turn(&cat, blocks, out, cache);
    }
    // Tool results first, each its own message; the rest of the turn after,
    // with any images and documents the tool results held (most providers
    // take none in a tool result).
    let mut parts = Vec::new();
    let mut carried = Vec::new();
    let mut cached = false;
    let mut carried_cached = false;
    let mut saw_tool_result = false;
    for (j, b) in blocks.iter().enumerate() {
        let bat = cat.idx(j);
        match block_type(b) {
            "tool_result" => {
                saw_tool_result = true;
                let before = carried.len();
                let content = tool_result_content(&bat, b, &mut carried)?;
                out.push(Message::Tool {
                    tool_call_id: b.get("tool_use_id").and_then(Value::as_str).unwrap_or_default().to_string(),
                    content,
                    is_error: b.get("is_error").and_then(Value::as_bool) == Some(true),
                });
                if has_cache_control(b) {
                    // Its images land in the user message after: the mark goes there.
                    if carried.len() > before {
                        carried_cached = true;
                    } else {
                        mark(cache, CachePoint::Message(out.len() - 1));
                    }
                }
                continue;
            }
            _ => parts.push(user_part(&bat, b)?),
        }
        cached |= has_cache_control(b);
    }
    if parts.is_empty() && carried.is_empty() && saw_tool_result {
        return Ok(());
    }
    carried.extend(parts);
    out.push(Message::User { parts: carried });
    if cached || carried_cached {
        mark(cache, CachePoint::Message(out.len() - 1));
    }
    Ok(())
}

fn block_type(b: &Value) -> &str {
    b.get("type").and_then(Value::as_str).unwrap_or_default()
}

fn str_of<'v>(v: &'v Value, name: &str) -> &'v str {
    v.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// A text, image or document block of a user turn.
fn user_part(at: &At<'_>, b: &Value) -> Result<Part, LlmError> {
    Ok(match block_type(b) {
        "text" => Part::Text(str_of(b, "text").to_string()),
        "image" => Part::Image(image(at, b)?),
        "document" => Part::Document(document(at, b)?),
        kind @ ("tool_use" | "thinking" | "redacted_thinking") => {
            return Err(at.key("type").error(format_args!("'{kind}' blocks belong in assistant messages")))
        }
        kind => return Err(untranslatable(at, kind)),
    })
}

/// A block type that has no neutral form.
fn untranslatable(at: &At<'_>, kind: &str) -> LlmError {
    at.key("type")
        .error(format_args!(
            "'{kind}' blocks are only understood by Anthropic; route this request to an Anthropic target or leave them out"
        ))
        .with_code("unsupported_parameter")
}

/// A Files API source: the file lives at Anthropic.
fn file_source(at: &At<'_>) -> LlmError {
    at.key("source")
        .key("type")
        .error("'file' sources name files uploaded to Anthropic and reach Anthropic targets only; send the content inline (base64, text or url)")
        .with_code("unsupported_parameter")
}

fn image(at: &At<'_>, b: &Value) -> Result<Image, LlmError> {
    let source = b.get("source").unwrap_or(&Value::Null);
    Ok(match str_of(source, "type") {
        "base64" => Image::Base64 {
            media_type: str_of(source, "media_type").to_string(),
            data: str_of(source, "data").to_string(),
        },
        "url" => Image::Url(str_of(source, "url").to_string()),
        _ => return Err(file_source(at)),
    })
}

fn document(at: &At<'_>, b: &Value) -> Result<Document, LlmError> {
    let source = b.get("source").unwrap_or(&Value::Null);
    let source = match str_of(source, "type") {
        "base64" => DocumentSource::Base64 {
            media_type: str_of(source, "media_type").to_string(),
            data: str_of(source, "data").to_string(),
        },
        "text" => DocumentSource::Text(str_of(source, "data").to_string()),
        "url" => DocumentSource::Url(str_of(source, "url").to_string()),
        "content" => match source.get("content") {
            Some(Value::String(s)) => DocumentSource::Text(s.clone()),
            Some(Value::Array(blocks)) => {
                let cat = at.key("source");
                let cat = cat.key("content");
                let mut texts = Vec::with_capacity(blocks.len());
                for (k, inner) in blocks.iter().enumerate() {
                    match block_type(inner) {
                        "text" => texts.push(str_of(inner, "text")),
                        _ => return Err(cat.idx(k).key("type").error(
                            "only text blocks can be translated in a document's content; send images as image blocks",
                        )),
                    }
                }
                DocumentSource::Text(texts.join("\n\n"))
            }
            _ => DocumentSource::Text(String::new()),
        },
        _ => return Err(file_source(at)),
    };
    Ok(Document { source, title: b.get("title").and_then(Value::as_str).map(str::to_string) })
}

/// A tool result's text (text blocks joined by a line break); its images and
/// documents are appended to `carried`.
fn tool_result_content(at: &At<'_>, b: &Value, carried: &mut Vec<Part>) -> Result<String, LlmError> {
    match b.get("content") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(blocks)) => {
            let cat = at.key("content");
            let mut text = String::new();
            for (k, inner) in blocks.iter().enumerate() {
                let iat = cat.idx(k);
                match block_type(inner) {
                    "text" => {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(str_of(inner, "text"));
                    }
                    "image" | "document" => carried.push(user_part(&iat, inner)?),
                    kind => return Err(untranslatable(&iat, kind)),
                }
            }
            Ok(text)
        }
        _ => Ok(String::new()),
    }
}

fn assistant_turn(
    at: &At<'_>,
    blocks: &[Value],
    out: &mut Vec<Message>,
    cache: &mut Vec<CachePoint>,
) -> Result<(), LlmError> {
    let mut text: Option<String> = None;
    let mut tool_calls = Vec::new();
    let mut thinking = Vec::new();
    let mut cached = false;
    for (j, b) in blocks.iter().enumerate() {
        let bat = at.idx(j);
        match block_type(b) {
            "text" => text.get_or_insert_with(String::new).push_str(str_of(b, "text")),
            "tool_use" => tool_calls.push(ToolCall {
                id: str_of(b, "id").to_string(),
                name: str_of(b, "name").to_string(),
                arguments: match b.get("input") {
                    Some(input @ Value::Object(_)) => input.to_string(),
                    _ => "{}".to_string(),
                },
            }),
            "thinking" => thinking.push(Thinking {
                text: str_of(b, "thinking").to_string(),
                signature: b.get("signature").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string),
                redacted: None,
            }),
            "redacted_thinking" => thinking.push(Thinking {
                text: String::new(),
                signature: None,
                redacted: Some(str_of(b, "data").to_string()),
            }),
            kind @ ("tool_result" | "image" | "document") => {
                return Err(bat.key("type").error(format_args!("'{kind}' blocks belong in user messages")))
            }
            kind => return Err(untranslatable(&bat, kind)),
        }
        cached |= has_cache_control(b);
    }
    let text = text.filter(|t| !t.is_empty());
    let text = if text.is_none() && tool_calls.is_empty() { Some(String::new()) } else { text };
    out.push(Message::Assistant { text, tool_calls, thinking });
    if cached {
        mark(cache, CachePoint::Message(out.len() - 1));
    }
    Ok(())
}

/// Custom tools, and whether one is marked for caching. Any marked tool
/// becomes the one neutral mark after the tool definitions: a longer prefix
/// than an early mark names, which caches more, never less.
fn tools(v: Option<&Value>) -> Result<(Vec<Tool>, bool), LlmError> {
    let Some(Value::Array(list)) = v else {
        return Ok((Vec::new(), false));
    };
    let at = At::root("tools");
    let mut out = Vec::with_capacity(list.len());
    let mut cached = false;
    for (i, t) in list.iter().enumerate() {
        match t.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            Some(kind) => {
                return Err(at
                    .idx(i)
                    .key("type")
                    .error(format_args!(
                        "'{kind}' is a tool Anthropic defines and only Anthropic models run; route this request to an \
                         Anthropic target, or declare a custom tool with a name and an input_schema"
                    ))
                    .with_code("unsupported_parameter"))
            }
        }
        cached |= has_cache_control(t);
        out.push(Tool {
            name: str_of(t, "name").to_string(),
            description: t.get("description").and_then(Value::as_str).map(str::to_string),
            parameters: t.get("input_schema").cloned().unwrap_or_else(|| serde_json::json!({"type": "object"})),
        });
    }
    Ok((out, cached))
}

/// The tool choice, and `Some(false)` for `disable_parallel_tool_use`.
fn tool_choice(v: Option<&Value>) -> (Option<ToolChoice>, Option<bool>) {
    let Some(c) = v.filter(|v| v.is_object()) else {
        return (None, None);
    };
    let choice = match str_of(c, "type") {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "tool" => ToolChoice::Function(str_of(c, "name").to_string()),
        _ => ToolChoice::None,
    };
    let parallel = (c.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true)).then_some(false);
    (Some(choice), parallel)
}

/// `thinking` and `output_config.effort` as neutral reasoning: a budget
/// when thinking is enabled with one, an effort when one is named (`xhigh`
/// and `max` are the neutral `high`), the provider's default depth for
/// adaptive thinking.
fn reasoning(body: &Map<String, Value>) -> Option<Reasoning> {
    let effort = body
        .get("output_config")
        .and_then(|c| c.get("effort"))
        .and_then(Value::as_str)
        .filter(|e| EFFORTS.contains(e))
        .map(|e| Effort::parse(e).unwrap_or(Effort::High));
    let thinking = body.get("thinking").filter(|t| !t.is_null());
    match thinking.map(|t| str_of(t, "type")) {
        Some("enabled") => Some(Reasoning {
            effort,
            budget_tokens: thinking.and_then(|t| t.get("budget_tokens")).and_then(Value::as_u64),
        }),
        Some("adaptive" | "between_tools") => Some(Reasoning { effort, budget_tokens: None }),
        Some(_) => None,
        None => effort.map(|e| Reasoning { effort: Some(e), budget_tokens: None }),
    }
}

/// `output_config.format` (structured outputs): always strict at Anthropic.
fn response_format(body: &Map<String, Value>) -> Option<ResponseFormat> {
    let format = body.get("output_config")?.get("format").filter(|f| !f.is_null())?;
    Some(ResponseFormat::JsonSchema {
        name: "response".into(),
        schema: format.get("schema").cloned().unwrap_or(Value::Null),
        strict: true,
    })
}

/// Framing per message (role, separators), as `tokens.rs` counts it.
const PER_MESSAGE: u64 = 3;
const REPLY_PRIMING: u64 = 3;
/// An image at the size Anthropic scales large ones to (about 1.15
/// megapixels, `width * height / 750` tokens): the estimate errs high, as
/// budgets want.
const PER_IMAGE: u64 = 1600;
/// A PDF or URL document whose text is unknown: a page's worth (Anthropic
/// counts 1,500 to 3,000 tokens per PDF page).
const PER_DOCUMENT: u64 = 1500;
/// The system prompt Anthropic adds when tools are given (346 tokens for
/// `auto` and `none` with current models).
const TOOLS_PREAMBLE: u64 = 346;

/// Prompt tokens of a checked request, by the o200k tokenizer.
pub(crate) fn prompt_estimate(body: &Map<String, Value>) -> u64 {
    let mut est = Estimate::default();
    match body.get("system") {
        Some(Value::String(s)) => est.text(s),
        Some(Value::Array(blocks)) => blocks.iter().for_each(|b| est.block(b)),
        _ => {}
    }
    let mut messages = 0u64;
    if let Some(Value::Array(list)) = body.get("messages") {
        for m in list {
            messages += 1;
            match m.get("content") {
                Some(Value::String(s)) => est.text(s),
                Some(Value::Array(blocks)) => blocks.iter().for_each(|b| est.block(b)),
                _ => {}
            }
        }
    }
    let mut preamble = 0;
    if let Some(Value::Array(tools)) = body.get("tools") {
        if !tools.is_empty() {
            preamble = TOOLS_PREAMBLE;
            for t in tools {
                est.text(&t.to_string());
            }
        }
    }
    crate::tokens::count_text(&est.text)
        .saturating_add(est.allowance)
        .saturating_add(messages * PER_MESSAGE + REPLY_PRIMING + preamble)
}

#[derive(Default)]
struct Estimate {
    text: String,
    /// Images and documents, by allowance.
    allowance: u64,
}

impl Estimate {
    fn text(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.text.push_str(s);
    }

    fn block(&mut self, b: &Value) {
        match block_type(b) {
            "text" => self.text(str_of(b, "text")),
            "image" => self.allowance += PER_IMAGE,
            "document" => {
                let source = b.get("source").unwrap_or(&Value::Null);
                match (str_of(source, "type"), source.get("content")) {
                    ("text", _) => self.text(str_of(source, "data")),
                    ("content", Some(Value::String(s))) => self.text(s),
                    ("content", Some(Value::Array(blocks))) => blocks.iter().for_each(|inner| self.block(inner)),
                    _ => self.allowance += PER_DOCUMENT,
                }
                if let Some(title) = b.get("title").and_then(Value::as_str) {
                    self.text(title);
                }
            }
            "tool_result" => match b.get("content") {
                Some(Value::String(s)) => self.text(s),
                Some(Value::Array(blocks)) => blocks.iter().for_each(|inner| self.block(inner)),
                _ => {}
            },
            "tool_use" => {
                self.text(str_of(b, "name"));
                if let Some(input) = b.get("input") {
                    self.text(&input.to_string());
                }
            }
            "thinking" => self.text(str_of(b, "thinking")),
            // Server tool blocks and kinds added later: their JSON is a fair size.
            _ => self.text(&b.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingress::anthropic::MessagesRequest;

    fn chat_with(body: &str, defaults: &ModelDefaults) -> Result<Chat, LlmError> {
        MessagesRequest::parse(body.as_bytes()).expect("valid request").to_chat(defaults)
    }

    fn chat(body: &str) -> Result<Chat, LlmError> {
        chat_with(body, &ModelDefaults { name: Some("m".into()), ..ModelDefaults::default() })
    }

    fn text(s: &str) -> Part {
        Part::Text(s.into())
    }

    #[test]
    fn every_block_kind_becomes_its_neutral_form() {
        let c = chat(
            r#"{"max_tokens": 4096,
            "system": [{"type": "text", "text": "be brief"}, {"type": "text", "text": "no jokes", "cache_control": {"type": "ephemeral"}}],
            "messages": [
              {"role": "user", "content": "hi"},
              {"role": "assistant", "content": "hello"},
              {"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
                {"type": "image", "source": {"type": "url", "url": "https://x/cat.jpg"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}, "title": "paper.pdf"},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}},
                {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}},
                {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}}]},
              {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Let me look.", "signature": "EqQB"},
                {"type": "redacted_thinking", "data": "EmwKAhgB"},
                {"type": "text", "text": "I'll check."},
                {"type": "tool_use", "id": "toolu_1", "name": "look", "input": {"x": 1}},
                {"type": "tool_use", "id": "toolu_2", "name": "time", "input": {}}]},
              {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "a cat"}, {"type": "text", "text": "grey"}]},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "no clock", "is_error": true},
                {"type": "text", "text": "and now?"}]}]}"#,
        )
        .expect("translated");
        assert_eq!(
            c.messages,
            vec![
                Message::System { text: "be brief\n\nno jokes".into() },
                Message::User { parts: vec![text("hi")] },
                Message::Assistant { text: Some("hello".into()), tool_calls: vec![], thinking: vec![] },
                Message::User {
                    parts: vec![
                        text("what is this?"),
                        Part::Image(Image::Base64 { media_type: "image/png".into(), data: "iVBOR".into() }),
                        Part::Image(Image::Url("https://x/cat.jpg".into())),
                        Part::Document(Document {
                            source: DocumentSource::Base64 {
                                media_type: "application/pdf".into(),
                                data: "JVBER".into()
                            },
                            title: Some("paper.pdf".into()),
                        }),
                        Part::Document(Document { source: DocumentSource::Text("plain words".into()), title: None }),
                        Part::Document(Document { source: DocumentSource::Url("https://x/a.pdf".into()), title: None }),
                        Part::Document(Document { source: DocumentSource::Text("a\n\nb".into()), title: None }),
                    ]
                },
                Message::Assistant {
                    text: Some("I'll check.".into()),
                    tool_calls: vec![
                        ToolCall { id: "toolu_1".into(), name: "look".into(), arguments: r#"{"x":1}"#.into() },
                        ToolCall { id: "toolu_2".into(), name: "time".into(), arguments: "{}".into() },
                    ],
                    thinking: vec![
                        Thinking { text: "Let me look.".into(), signature: Some("EqQB".into()), redacted: None },
                        Thinking { text: String::new(), signature: None, redacted: Some("EmwKAhgB".into()) },
                    ],
                },
                Message::Tool { tool_call_id: "toolu_1".into(), content: "a cat\ngrey".into(), is_error: false },
                Message::Tool { tool_call_id: "toolu_2".into(), content: "no clock".into(), is_error: true },
                Message::User { parts: vec![text("and now?")] },
            ]
        );
        assert_eq!(c.cache_points, vec![CachePoint::System]);
        assert_eq!(c.model, "m");
        assert_eq!(c.max_tokens, Some(4096));
        assert!(c.uncarried.is_empty() && !c.stream && c.client_wants_usage);
    }

    #[test]
    fn images_in_tool_results_follow_as_a_user_message() {
        let c = chat(
            r#"{"max_tokens": 10, "messages": [
              {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}]},
              {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "cache_control": {"type": "ephemeral"},
                 "content": [{"type": "text", "text": "screenshot:"},
                             {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}}]}]}]}"#,
        )
        .expect("translated");
        assert_eq!(
            &c.messages[1..],
            &[
                Message::Tool { tool_call_id: "t1".into(), content: "screenshot:".into(), is_error: false },
                Message::User {
                    parts: vec![Part::Image(Image::Base64 { media_type: "image/jpeg".into(), data: "/9j/".into() })]
                },
            ]
        );
        // The mark of the tool result goes where its image landed.
        assert_eq!(c.cache_points, vec![CachePoint::Message(2)]);
    }

    #[test]
    fn cache_marks_land_on_the_neutral_message_and_tools() {
        let c = chat(
            r#"{"max_tokens": 10, "system": "sys",
              "tools": [{"name": "a", "input_schema": {"type": "object"}},
                        {"name": "b", "description": "B", "input_schema": {"type": "object", "properties": {}}, "cache_control": {"type": "ephemeral"}}],
              "messages": [
                {"role": "user", "content": [{"type": "text", "text": "q", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},
                {"role": "assistant", "content": [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}]},
                {"role": "user", "content": [
                  {"type": "tool_result", "tool_use_id": "t", "content": "r", "cache_control": {"type": "ephemeral"}},
                  {"type": "text", "text": "more"}]}]}"#,
        )
        .expect("translated");
        // system 0, user 1, assistant 2, tool 3, user 4.
        assert_eq!(
            c.cache_points,
            vec![CachePoint::Tools, CachePoint::Message(1), CachePoint::Message(2), CachePoint::Message(3)]
        );
        assert_eq!(
            c.tools[1],
            Tool {
                name: "b".into(),
                description: Some("B".into()),
                parameters: serde_json::json!({"type": "object", "properties": {}})
            }
        );
        // A top-level mark caches the whole conversation.
        let c = chat(r#"{"max_tokens": 10, "cache_control": {"type": "ephemeral"}, "messages": [{"role": "user", "content": "q"}]}"#)
            .expect("translated");
        assert_eq!(c.cache_points, vec![CachePoint::Message(0)]);
    }

    #[test]
    fn options_tool_choice_thinking_and_defaults() {
        let d = ModelDefaults {
            name: Some("m".into()),
            max_tokens: Some(99),
            temperature: Some(0.5),
            top_p: Some(0.8),
            top_k: Some(7),
        };
        let c = chat_with(
            r#"{"max_tokens": 10, "messages": [{"role": "user", "content": "q"}], "temperature": 0.1, "stream": true,
               "stop_sequences": ["END", "STOP"], "metadata": {"user_id": "u"}, "service_tier": "auto",
               "tools": [{"name": "f", "input_schema": {"type": "object"}}],
               "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": true}}"#,
            &d,
        )
        .expect("translated");
        assert_eq!((c.max_tokens, c.temperature, c.top_p, c.top_k), (Some(10), Some(0.1), Some(0.8), Some(7)));
        assert_eq!(c.stop, vec!["END".to_string(), "STOP".to_string()]);
        assert_eq!(c.tool_choice, Some(ToolChoice::Function("f".into())));
        assert_eq!(c.parallel_tool_calls, Some(false));
        assert!(c.stream && c.client_wants_usage && c.reasoning.is_none() && c.uncarried.is_empty());
        for (choice, want) in [("auto", ToolChoice::Auto), ("any", ToolChoice::Required), ("none", ToolChoice::None)] {
            let body = format!(
                r#"{{"max_tokens": 1, "messages": [{{"role": "user", "content": "q"}}], "tool_choice": {{"type": "{choice}"}}}}"#
            );
            let c = chat(&body).expect("translated");
            assert_eq!((c.tool_choice, c.parallel_tool_calls), (Some(want), None));
        }

        // Thinking: a budget, the caller's effort, and no sampling defaults.
        let c = chat_with(
            r#"{"max_tokens": 4096, "messages": [{"role": "user", "content": "q"}],
               "thinking": {"type": "enabled", "budget_tokens": 2048}, "output_config": {"effort": "max"}}"#,
            &d,
        )
        .expect("translated");
        assert_eq!(c.reasoning, Some(Reasoning { effort: Some(Effort::High), budget_tokens: Some(2048) }));
        assert_eq!((c.temperature, c.top_p, c.top_k), (None, None, None));
        let c = chat(
            r#"{"max_tokens": 1, "messages": [{"role": "user", "content": "q"}], "thinking": {"type": "adaptive"}}"#,
        )
        .expect("ok");
        assert_eq!(c.reasoning, Some(Reasoning { effort: None, budget_tokens: None }));
        let c = chat(
            r#"{"max_tokens": 1, "messages": [{"role": "user", "content": "q"}], "thinking": {"type": "disabled"}}"#,
        )
        .expect("ok");
        assert_eq!(c.reasoning, None);
        let c = chat(
            r#"{"max_tokens": 1, "messages": [{"role": "user", "content": "q"}], "output_config": {"effort": "low",
            "format": {"type": "json_schema", "schema": {"type": "object"}}}}"#,
        )
        .expect("ok");
        assert_eq!(c.reasoning, Some(Reasoning { effort: Some(Effort::Low), budget_tokens: None }));
        assert_eq!(
            c.response_format,
            Some(ResponseFormat::JsonSchema {
                name: "response".into(),
                schema: serde_json::json!({"type": "object"}),
                strict: true
            })
        );
    }

    #[test]
    fn unknown_fields_are_uncarried_and_the_model_is_resolved() {
        let c = chat(
            r#"{"max_tokens": 1, "messages": [{"role": "user", "content": "q"}], "container": "c", "speed": "fast",
            "output_config": {"task_budget": 5}, "unknown": null,
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}}"#,
        )
        .expect("ok");
        assert_eq!(c.uncarried, vec!["container".to_string(), "output_config.task_budget".to_string()]);
        let e = chat(r#"{"model": "other", "max_tokens": 1, "messages": [{"role": "user", "content": "q"}]}"#)
            .expect_err("pinned");
        assert_eq!(e.code, Some("model_not_found"));
        let c = chat_with(
            r#"{"model": "mine", "max_tokens": 1, "messages": [{"role": "user", "content": "q"}]}"#,
            &ModelDefaults::default(),
        )
        .expect("open route");
        assert_eq!(c.model, "mine");
    }

    #[test]
    fn what_only_anthropic_runs_is_refused_by_path() {
        let q = r#"{"role": "user", "content": "q"}"#;
        for (body, want) in [
            (format!(r#"{{"max_tokens": 1, "messages": [{q}], "tools": [{{"name": "f", "input_schema": {{}}}}, {{"type": "web_search_20250305", "name": "web_search"}}]}}"#),
                "tools.1.type: 'web_search_20250305' is a tool Anthropic defines"),
            (format!(r#"{{"max_tokens": 1, "messages": [{q}], "tools": [{{"type": "bash_20250124", "name": "bash"}}]}}"#), "tools.0.type: 'bash_20250124'"),
            (format!(r#"{{"max_tokens": 1, "messages": [{q}], "tools": [{{"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}}]}}"#),
                "tools.0.type: 'text_editor_20250728'"),
            (r#"{"max_tokens": 1, "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": [{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}]}]}"#.into(),
                "messages.1.content.0.type: 'server_tool_use' blocks are only understood by Anthropic"),
            (r#"{"max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f1"}}]}]}"#.into(),
                "messages.0.content.0.source.type: 'file' sources"),
            (r#"{"max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "search_result", "source": "s", "title": "t", "content": []}]}]}]}"#.into(),
                "messages.0.content.0.content.0.type: 'search_result'"),
            (r#"{"max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]}"#.into(),
                "messages.0.content.0.type: 'tool_use' blocks belong in assistant messages"),
            (r#"{"max_tokens": 1, "messages": [{"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]}"#.into(),
                "messages.0.content.0.type: 'tool_result' blocks belong in user messages"),
        ] {
            let e = chat(&body).expect_err(&body);
            assert_eq!(e.status, 400);
            assert!(e.message.contains(want), "{body}\n  wanted: {want}\n  got: {}", e.message);
        }
    }

    #[test]
    fn prompt_estimate_counts_text_tools_and_allowances() {
        let r = MessagesRequest::parse(
            br#"{"max_tokens": 1, "system": "You are a mathematician",
               "messages": [{"role": "user", "content": [{"type": "text", "text": "What is 1+1?"},
                 {"type": "image", "source": {"type": "url", "url": "https://x"}},
                 {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}}]}]}"#,
        )
        .expect("valid");
        let text = crate::tokens::count_text("You are a mathematician\nWhat is 1+1?");
        assert_eq!(r.prompt_estimate(), text + PER_IMAGE + PER_DOCUMENT + PER_MESSAGE + REPLY_PRIMING);
        let with_tools = MessagesRequest::parse(
            br#"{"max_tokens": 1, "messages": [{"role": "user", "content": "hi"}],
               "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]}"#,
        )
        .expect("valid");
        let without = MessagesRequest::parse(br#"{"max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}"#)
            .expect("valid");
        assert!(with_tools.prompt_estimate() > without.prompt_estimate() + TOOLS_PREAMBLE);
    }
}

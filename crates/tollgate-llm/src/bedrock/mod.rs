//! Amazon Bedrock's Converse API (`POST /model/{modelId}/converse` and
//! `/converse-stream`; provider.rs builds the path): OpenAI chat requests
//! become Converse requests, Converse answers and ConverseStream's binary
//! event streams become OpenAI completions and chunks. Requests are signed
//! with SigV4 by `sign`.
//!
//! References:
//! https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html,
//! https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html,
//! https://docs.aws.amazon.com/bedrock/latest/userguide/tool-use-inference-call.html

mod events;
mod sign;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::chat::{
    push_turn, CachePoint, Chat, Document, DocumentSource, Effort, Image, Message, Part, Thinking, ToolCall, ToolChoice,
};
use crate::completion::{AnswerMeta, Completion, FinishReason};
use crate::provider::ProviderOptions;
use crate::stream::UsageUpdate;
use crate::{LlmError, Usage};

pub use events::{test_stream, StreamDecoder};
pub use sign::{sign, sign_for_service, AwsCredentials};

const PROVIDER: &str = "bedrock";

/// Optional fields Converse honours. `seed`, `presence_penalty`,
/// `frequency_penalty` and `response_format` (JSON mode or schema) have no
/// Converse equivalent and are refused; `parallel_tool_calls: false` is
/// dropped (see `Chat::refuse_unsupported`).
const SUPPORTED: &[&str] = &["documents", "thinking", "stop", "top_k", "tools", "tool_choice"];

/// A prompt-cache checkpoint
/// (https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html).
fn cache_point() -> Value {
    json!({ "cachePoint": { "type": "default" } })
}

/// The Converse request body for a chat request (the model is in the path).
pub fn request(chat: &Chat, _opts: &ProviderOptions) -> Result<Map<String, Value>, LlmError> {
    chat.refuse_unsupported(PROVIDER, SUPPORTED)?;
    let mut body = Map::new();
    // Converse takes system prompts beside the conversation, one block each.
    let mut system: Vec<Value> = chat
        .messages
        .iter()
        .filter_map(|m| match m {
            Message::System { text } if !text.is_empty() => Some(json!({ "text": text })),
            _ => None,
        })
        .collect();
    let cache_system = chat.cache_points.iter().any(|p| match p {
        CachePoint::System => true,
        // A mark on a system message caches the system prompt.
        CachePoint::Message(i) => matches!(chat.messages.get(*i), Some(Message::System { .. })),
        CachePoint::Tools => false,
    });
    if cache_system && !system.is_empty() {
        system.push(cache_point());
    }
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    body.insert("messages".into(), Value::Array(messages(&chat.messages, &chat.cache_points)?));
    let mut inference = inference_config(chat);
    let mut additional = Map::new();
    if let Some(k) = chat.top_k {
        merge(&mut additional, top_k_fields(&chat.model, k));
    }
    if let Some(r) = chat.reasoning {
        merge(&mut additional, reasoning_fields(&chat.model, r, &mut inference)?);
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if !additional.is_empty() {
        body.insert("additionalModelRequestFields".into(), Value::Object(additional));
    }
    if let Some(config) = tool_config(chat)? {
        body.insert("toolConfig".into(), config);
    }
    Ok(body)
}

/// Merges model-specific fields, objects key by key (Nova's `inferenceConfig`
/// may hold both `topK` and more).
fn merge(into: &mut Map<String, Value>, fields: Value) {
    let Value::Object(fields) = fields else {
        return;
    };
    for (k, v) in fields {
        match (into.get_mut(&k), v) {
            (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// Reasoning in the model's own `additionalModelRequestFields`: Amazon Nova 2
/// takes `reasoningConfig` with an effort
/// (https://docs.aws.amazon.com/nova/latest/nova2-userguide/extended-thinking.html);
/// Anthropic Claude, and other models by default, `thinking` with a token
/// budget (https://docs.aws.amazon.com/bedrock/latest/userguide/claude-messages-extended-thinking.html).
/// Claude counts the budget in `maxTokens` and wants the limit above it, as on
/// Anthropic's own API: a caller's limit without room is refused, naming both,
/// and a missing one is set to the budget plus Anthropic's default.
fn reasoning_fields(
    model: &str,
    r: crate::chat::Reasoning,
    inference: &mut Map<String, Value>,
) -> Result<Value, LlmError> {
    if model.contains("amazon.nova") {
        let effort = match r.effort() {
            Effort::Minimal | Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
        };
        return Ok(json!({ "reasoningConfig": { "type": "enabled", "maxReasoningEffort": effort } }));
    }
    let budget = r.budget();
    let default = crate::anthropic::DEFAULT_MAX_TOKENS;
    match inference.get("maxTokens").and_then(Value::as_u64) {
        Some(m) if m <= budget => {
            return Err(LlmError::invalid_request(format!(
                "'max_tokens' ({m}) must be greater than the thinking budget 'budget_tokens' ({budget}) for provider \
                 {PROVIDER}, whose Claude models count thinking in max_tokens; raise max_tokens or lower the budget"
            )))
        }
        Some(_) => {}
        None => {
            inference.insert("maxTokens".into(), Value::from(budget.saturating_add(default)));
        }
    }
    Ok(json!({ "thinking": { "type": "enabled", "budget_tokens": budget } }))
}

/// The conversation without its system messages. Converse takes tool results
/// as `toolResult` blocks of a user turn and wants user and assistant turns to
/// alternate, so consecutive turns of the same role are merged. A message
/// marked for caching is followed by a `cachePoint` block (after the content
/// sent so far, when it had none of its own).
fn messages(list: &[Message], cache_points: &[CachePoint]) -> Result<Vec<Value>, LlmError> {
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut names = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let (role, blocks) = match m {
            Message::System { .. } => continue,
            Message::User { parts } => ("user", user_blocks(i, parts, &mut names)?),
            Message::Assistant { text, tool_calls, thinking } => {
                ("assistant", assistant_blocks(i, text.as_deref(), tool_calls, thinking)?)
            }
            Message::Tool { tool_call_id, content, is_error } => {
                ("user", vec![tool_result(tool_call_id, content, *is_error)])
            }
        };
        push_turn(&mut turns, role, blocks);
        if cache_points.contains(&CachePoint::Message(i)) {
            if let Some((_, blocks)) = turns.last_mut() {
                if blocks.last().is_some_and(|b| b.get("cachePoint").is_none()) {
                    blocks.push(cache_point());
                }
            }
        }
    }
    Ok(turns.into_iter().map(|(role, content)| json!({ "role": role, "content": content })).collect())
}

/// A user turn's parts as content blocks; `i` is the message's index, `names`
/// the document names used so far (Converse wants a name per document).
fn user_blocks(i: usize, parts: &[Part], names: &mut Vec<String>) -> Result<Vec<Value>, LlmError> {
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        match part {
            Part::Text(t) if t.is_empty() => {}
            Part::Text(t) => blocks.push(json!({ "text": t })),
            Part::Image(Image::Base64 { media_type, data }) => {
                let format = image_format(media_type).ok_or_else(|| {
                    LlmError::invalid_request(format!(
                        "messages[{i}].content[{j}].image_url: provider {PROVIDER} takes png, jpeg, gif or webp images, not {media_type}"
                    ))
                })?;
                // JSON carries Converse's image bytes as base64, as the data: URI does.
                blocks.push(json!({ "image": { "format": format, "source": { "bytes": data } } }));
            }
            Part::Image(Image::Url(_)) => {
                return Err(LlmError::invalid_request(format!(
                    "messages[{i}].content[{j}].image_url: provider {PROVIDER} only takes inline images; \
                     send the image as a data: URI (data:image/png;base64,...) instead of a URL"
                ))
                .with_code("unsupported_parameter"))
            }
            Part::Document(d) => blocks.push(document_block(i, j, d, names)?),
        }
    }
    Ok(blocks)
}

/// A `document` block (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_DocumentBlock.html):
/// inline bytes (base64 in JSON) with the format their media type names, text
/// as a text source, an `s3://` URI as an S3 location; other URLs cannot be read.
fn document_block(i: usize, j: usize, d: &Document, names: &mut Vec<String>) -> Result<Value, LlmError> {
    let at = format!("messages[{i}].content[{j}]");
    let (format, source) = match &d.source {
        DocumentSource::Base64 { media_type, data } => {
            let format = document_format(media_type).ok_or_else(|| {
                LlmError::invalid_request(format!(
                    "{at}: provider {PROVIDER} takes pdf, csv, doc, docx, xls, xlsx, html, txt or md documents, not {media_type}"
                ))
                .with_code("unsupported_parameter")
            })?;
            (format, json!({ "bytes": data }))
        }
        DocumentSource::Text(text) => ("txt", json!({ "text": text })),
        DocumentSource::Url(url) if url.starts_with("s3://") => {
            (document_format_of_path(url).unwrap_or("pdf"), json!({ "s3Location": { "uri": url } }))
        }
        DocumentSource::Url(_) => {
            return Err(LlmError::invalid_request(format!(
                "{at}: provider {PROVIDER} reads documents inline or from S3 (s3://...), not by URL; send the document as base64 data"
            ))
            .with_code("unsupported_parameter"))
        }
    };
    let name = document_name(d.title.as_deref(), names);
    Ok(json!({ "document": { "format": format, "name": name, "source": source } }))
}

/// Converse's document `format` for a media type.
fn document_format(media_type: &str) -> Option<&'static str> {
    Some(match media_type.to_ascii_lowercase().as_str() {
        "application/pdf" => "pdf",
        "text/csv" => "csv",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "text/html" => "html",
        "text/plain" => "txt",
        "text/markdown" => "md",
        _ => return None,
    })
}

/// The format an S3 object's extension names.
fn document_format_of_path(uri: &str) -> Option<&'static str> {
    let ext = uri.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
    ["pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md"].into_iter().find(|f| *f == ext)
}

/// A document name Converse accepts: it allows only letters and digits,
/// single spaces, hyphens, parentheses and square brackets, 1 to 200
/// characters, and each document needs its own. Other characters become
/// hyphens; a document without a usable title is `document-<n>`.
fn document_name(title: Option<&str>, names: &mut Vec<String>) -> String {
    let mut name = String::new();
    for c in title.unwrap_or_default().chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '-' | '(' | ')' | '[' | ']') {
            c
        } else if c.is_whitespace() {
            ' '
        } else {
            '-'
        };
        if !(c == ' ' && (name.is_empty() || name.ends_with(' '))) {
            name.push(c);
        }
    }
    // Every character is ASCII: cutting at a byte count is safe.
    name.truncate(180);
    let mut name = name.trim().to_string();
    if name.trim_matches('-').is_empty() {
        name = format!("document-{}", names.len() + 1);
    }
    let base = name.clone();
    let mut n = 2;
    while names.contains(&name) {
        name = format!("{base} ({n})");
        n += 1;
    }
    names.push(name.clone());
    name
}

/// Converse's image `format` for a media type.
fn image_format(media_type: &str) -> Option<&'static str> {
    Some(match media_type.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => return None,
    })
}

/// An assistant turn: the reasoning it showed (first, as Claude wants it back
/// with tool use), its text, then a `toolUse` block per tool call. Only signed
/// or redacted reasoning is replayed: the model refuses what it cannot verify.
fn assistant_blocks(
    i: usize,
    text: Option<&str>,
    calls: &[ToolCall],
    thinking: &[Thinking],
) -> Result<Vec<Value>, LlmError> {
    let mut blocks = Vec::with_capacity(thinking.len() + calls.len() + 1);
    for t in thinking {
        match (&t.redacted, &t.signature) {
            (Some(data), _) => blocks.push(json!({ "reasoningContent": { "redactedContent": data } })),
            (None, Some(signature)) => blocks.push(json!({
                "reasoningContent": { "reasoningText": { "text": t.text, "signature": signature } }
            })),
            (None, None) => {}
        }
    }
    if let Some(t) = text.filter(|t| !t.is_empty()) {
        blocks.push(json!({ "text": t }));
    }
    for (j, call) in calls.iter().enumerate() {
        let input = tool_input(&call.arguments).map_err(|why| {
            LlmError::invalid_request(format!("messages[{i}].tool_calls[{j}].function.arguments {why}"))
        })?;
        blocks.push(json!({ "toolUse": { "toolUseId": call.id, "name": call.name, "input": input } }));
    }
    Ok(blocks)
}

/// A tool call's arguments (OpenAI's JSON text) as Converse's `input` document.
fn tool_input(arguments: &str) -> Result<Value, String> {
    // A call without arguments is sometimes sent with an empty string.
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_str(arguments).map_err(|e| format!("is not valid JSON ({e}); Bedrock needs the arguments as JSON"))
}

/// A tool message as a `toolResult` block. A result that is a JSON object
/// goes as a `json` block (some Bedrock models, Mistral's for one, only read
/// JSON results), anything else as text; a failed tool's has `status: error`.
fn tool_result(tool_call_id: &str, content: &str, is_error: bool) -> Value {
    let items = match serde_json::from_str::<Value>(content) {
        Ok(v @ Value::Object(_)) => vec![json!({ "json": v })],
        _ if content.is_empty() => Vec::new(),
        _ => vec![json!({ "text": content })],
    };
    let mut result = Map::new();
    result.insert("toolUseId".into(), Value::from(tool_call_id));
    result.insert("content".into(), Value::Array(items));
    if is_error {
        result.insert("status".into(), Value::from("error"));
    }
    json!({ "toolResult": result })
}

/// `inferenceConfig`: the sampling settings every Converse model takes.
/// Without `max_tokens` the model's own default applies (Converse does not
/// require it).
fn inference_config(chat: &Chat) -> Map<String, Value> {
    let mut config = Map::new();
    if let Some(n) = chat.max_tokens {
        config.insert("maxTokens".into(), Value::from(n));
    }
    if let Some(t) = chat.temperature {
        config.insert("temperature".into(), Value::from(t));
    }
    if let Some(p) = chat.top_p {
        config.insert("topP".into(), Value::from(p));
    }
    if !chat.stop.is_empty() {
        config.insert("stopSequences".into(), Value::from(chat.stop.clone()));
    }
    config
}

/// `top_k` is not a Converse parameter: it goes in the model-specific
/// `additionalModelRequestFields`. Amazon Nova reads it as
/// `{"inferenceConfig":{"topK":n}}`; Anthropic Claude and Mistral as
/// `{"top_k":n}`, which is what other models get too (Bedrock answers 400 for
/// a model that takes no such field, so it is never silently dropped).
fn top_k_fields(model: &str, k: u64) -> Value {
    if model.contains("amazon.nova") {
        json!({ "inferenceConfig": { "topK": k } })
    } else {
        json!({ "top_k": k })
    }
}

/// `toolConfig`: the tools and the choice among them.
fn tool_config(chat: &Chat) -> Result<Option<Value>, LlmError> {
    let choice = match &chat.tool_choice {
        // Converse has no "none". Leaving the tools out means the same, but
        // Converse refuses toolUse and toolResult blocks without a toolConfig.
        Some(ToolChoice::None) if holds_tool_blocks(&chat.messages) => {
            return Err(LlmError::invalid_request(format!(
                "'tool_choice': 'none' is not supported by provider {PROVIDER} in a conversation that holds tool calls \
                 or tool results (Converse has no 'none' and needs the tools declared); remove it or route to a \
                 provider that supports it"
            ))
            .with_code("unsupported_parameter"))
        }
        Some(ToolChoice::None) => return Ok(None),
        None | Some(ToolChoice::Auto) if chat.tools.is_empty() => return Ok(None),
        Some(ToolChoice::Required | ToolChoice::Function(_)) if chat.tools.is_empty() => {
            return Err(LlmError::invalid_request("'tool_choice' requires 'tools'"))
        }
        None => None,
        Some(ToolChoice::Auto) => Some(json!({ "auto": {} })),
        Some(ToolChoice::Required) => Some(json!({ "any": {} })),
        Some(ToolChoice::Function(name)) => Some(json!({ "tool": { "name": name } })),
    };
    let mut tools: Vec<Value> = chat
        .tools
        .iter()
        .map(|t| {
            let mut spec = Map::new();
            spec.insert("name".into(), Value::from(t.name.as_str()));
            // Converse refuses an empty description.
            if let Some(d) = t.description.as_deref().filter(|d| !d.is_empty()) {
                spec.insert("description".into(), Value::from(d));
            }
            spec.insert("inputSchema".into(), json!({ "json": t.parameters }));
            json!({ "toolSpec": spec })
        })
        .collect();
    if chat.cache_points.contains(&CachePoint::Tools) && !tools.is_empty() {
        tools.push(cache_point());
    }
    let mut config = Map::new();
    config.insert("tools".into(), Value::Array(tools));
    if let Some(choice) = choice {
        config.insert("toolChoice".into(), choice);
    }
    Ok(Some(Value::Object(config)))
}

fn holds_tool_blocks(messages: &[Message]) -> bool {
    messages.iter().any(|m| match m {
        Message::Assistant { tool_calls, .. } => !tool_calls.is_empty(),
        Message::Tool { .. } => true,
        _ => false,
    })
}

/// The parts of a Converse answer the gateway reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAnswer {
    output: WireOutput,
    stop_reason: Option<String>,
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct WireOutput {
    message: WireMessage,
}

#[derive(Debug, Deserialize)]
struct WireMessage {
    content: Vec<Value>,
}

/// Converse's `usage`. Input tokens do not count the prompt tokens read from
/// or written to the cache, which OpenAI's `prompt_tokens` does: they are added.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_write_input_tokens: Option<u64>,
}

impl WireUsage {
    fn prompt(&self) -> u64 {
        let parts = [self.input_tokens, self.cache_read_input_tokens, self.cache_write_input_tokens];
        parts.iter().flatten().fold(0u64, |sum, n| sum.saturating_add(*n))
    }

    fn usage(&self) -> Usage {
        let prompt = self.prompt();
        let completion = self.output_tokens.unwrap_or(0);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt.saturating_add(completion),
            cached_tokens: self.cache_read_input_tokens.unwrap_or(0),
            cache_write_tokens: self.cache_write_input_tokens.unwrap_or(0),
            reasoning_tokens: 0,
        }
    }

    fn update(&self) -> UsageUpdate {
        UsageUpdate {
            prompt: Some(self.prompt()),
            completion: self.output_tokens,
            cached: Some(self.cache_read_input_tokens.unwrap_or(0)),
            cache_write: self.cache_write_input_tokens,
            ..UsageUpdate::default()
        }
    }
}

/// Converse's stop reason in OpenAI's vocabulary.
fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        // end_turn, stop_sequence, and reasons OpenAI has no word for
        // (malformed_model_output, malformed_tool_use).
        _ => FinishReason::Stop,
    }
}

/// A successful Converse answer. Converse names neither the answer nor the
/// model: the completion keeps the request's id and model from `meta`.
pub fn answer(body: &[u8], meta: &AnswerMeta) -> Result<Completion, LlmError> {
    let not_an_answer = |why: String| {
        LlmError::new(
            502,
            "upstream_error",
            format!("provider {PROVIDER} returned an answer that is not a Converse response: {why}"),
        )
    };
    let wire: WireAnswer = serde_json::from_slice(body).map_err(|e| not_an_answer(e.to_string()))?;
    let mut completion = Completion::new(meta);
    let mut text: Option<String> = None;
    for block in &wire.output.message.content {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            text.get_or_insert_with(String::new).push_str(t);
        } else if let Some(tool) = block.get("toolUse") {
            let id = tool.get("toolUseId").and_then(Value::as_str);
            let name = tool.get("name").and_then(Value::as_str);
            let (Some(id), Some(name)) = (id, name) else {
                return Err(not_an_answer("a toolUse block without toolUseId and name".into()));
            };
            let arguments = tool.get("input").map_or_else(|| "{}".to_string(), Value::to_string);
            completion.tool_calls.push(ToolCall { id: id.into(), name: name.into(), arguments });
        } else if let Some(reasoning) = block.get("reasoningContent") {
            // ReasoningContentBlock: reasoningText {text, signature} or redactedContent.
            if let Some(r) = reasoning.get("reasoningText") {
                let field = |name| r.get(name).and_then(Value::as_str);
                completion.thinking.push(Thinking {
                    text: field("text").unwrap_or_default().to_string(),
                    signature: field("signature").filter(|s| !s.is_empty()).map(str::to_string),
                    redacted: None,
                });
            } else if let Some(data) = reasoning.get("redactedContent").and_then(Value::as_str) {
                completion.thinking.push(Thinking { redacted: Some(data.to_string()), ..Thinking::default() });
            }
        }
        // Images, documents and citations in an answer have no neutral field.
    }
    completion.text = text;
    completion.finish_reason = wire.stop_reason.as_deref().map(finish_reason);
    completion.usage = wire.usage.map(|u| u.usage());
    Ok(completion)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChatRequest, ModelDefaults};

    fn chat(body: &str) -> Result<Chat, LlmError> {
        chat_for("anthropic.claude-3-haiku-20240307-v1:0", body)
    }

    fn chat_for(model: &str, body: &str) -> Result<Chat, LlmError> {
        let req = ChatRequest::parse(body.as_bytes()).expect("parses");
        Chat::from_request(&req, &ModelDefaults { name: Some(model.into()), ..ModelDefaults::default() })
    }

    fn converse(body: &str) -> Result<Value, LlmError> {
        request(&chat(body)?, &ProviderOptions::default()).map(Value::Object)
    }

    fn meta() -> AnswerMeta {
        AnswerMeta {
            fallback_id: "chatcmpl-req1".into(),
            created: 1_700_000_000,
            model: "anthropic.claude-3-haiku-20240307-v1:0".into(),
            client_wants_usage: true,
            ..AnswerMeta::default()
        }
    }

    #[test]
    fn unsupported_fields_are_refused_by_name() {
        for (field, body) in [
            ("seed", r#""seed":1"#),
            ("presence_penalty", r#""presence_penalty":0.5"#),
            ("frequency_penalty", r#""frequency_penalty":0.5"#),
            ("response_format", r#""response_format":{"type":"json_object"}"#),
            ("logprobs", r#""logprobs":true"#),
        ] {
            let e = converse(&format!(r#"{{"messages":[{{"role":"user","content":"hi"}}],{body}}}"#)).expect_err(field);
            assert_eq!(e.status, 400);
            assert!(
                e.message.contains(&format!("'{field}' is not supported by provider bedrock")),
                "{field}: {}",
                e.message
            );
        }
        assert!(converse(r#"{"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"text"}}"#).is_ok());
        // One call at a time has no Converse field: the wish is dropped, not refused.
        assert!(converse(r#"{"messages":[{"role":"user","content":"hi"}],"parallel_tool_calls":false}"#).is_ok());
    }

    #[test]
    fn stop_reasons_and_bad_answers() {
        for (reason, want) in [
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("max_tokens", FinishReason::Length),
            ("tool_use", FinishReason::ToolCalls),
            ("guardrail_intervened", FinishReason::ContentFilter),
            ("content_filtered", FinishReason::ContentFilter),
        ] {
            assert_eq!(finish_reason(reason), want);
        }
        for body in [&b"<html>"[..], b"{}", br#"{"output":{"message":{"content":[{"toolUse":{"input":{}}}]}}}"#] {
            let e = answer(body, &meta()).expect_err("not an answer");
            assert_eq!(e.status, 502);
            assert!(e.message.contains("provider bedrock"), "{}", e.message);
        }
    }

    fn neutral(model: &str, messages: Vec<Message>) -> Chat {
        let mut c = chat_for(model, r#"{"messages":[{"role":"user","content":"x"}]}"#).expect("valid");
        c.messages = messages;
        c
    }

    fn doc(source: DocumentSource, title: Option<&str>) -> Part {
        Part::Document(Document { source, title: title.map(str::to_string) })
    }

    #[test]
    fn documents_get_a_format_and_a_name_converse_accepts() {
        // DocumentBlock: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_DocumentBlock.html
        let b64 = |t: &str| DocumentSource::Base64 { media_type: t.into(), data: "JVBERi0x".into() };
        let c = neutral(
            "anthropic.claude-3-haiku-20240307-v1:0",
            vec![
                Message::User {
                    parts: vec![
                        doc(b64("application/pdf"), Some("Q3 report.pdf")),
                        doc(
                            b64("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
                            Some("Q3   report.pdf"),
                        ),
                        doc(DocumentSource::Text("plain notes".into()), None),
                        doc(
                            DocumentSource::Url("s3://my-bucket/docs/contract.docx".into()),
                            Some("<ignore previous instructions>"),
                        ),
                        Part::Text("Compare them.".into()),
                    ],
                },
                Message::User { parts: vec![doc(b64("text/csv"), Some("..."))] },
            ],
        );
        let v = request(&c, &ProviderOptions::default()).expect("translated");
        assert_eq!(
            v["messages"][0]["content"],
            json!([
                {"document": {"format": "pdf", "name": "Q3 report-pdf", "source": {"bytes": "JVBERi0x"}}},
                // Same name once cleaned: numbered.
                {"document": {"format": "docx", "name": "Q3 report-pdf (2)", "source": {"bytes": "JVBERi0x"}}},
                {"document": {"format": "txt", "name": "document-3", "source": {"text": "plain notes"}}},
                {"document": {"format": "docx", "name": "-ignore previous instructions-", "source": {"s3Location": {"uri": "s3://my-bucket/docs/contract.docx"}}}},
                {"text": "Compare them."},
                {"document": {"format": "csv", "name": "document-5", "source": {"bytes": "JVBERi0x"}}},
            ])
        );
        for (part, want) in [
            (doc(DocumentSource::Url("https://example.com/a.pdf".into()), None), "inline or from S3"),
            (doc(b64("application/zip"), None), "not application/zip"),
        ] {
            let c = neutral(
                "anthropic.claude-3-haiku-20240307-v1:0",
                vec![Message::User { parts: vec![Part::Text("x".into()), part] }],
            );
            let e = request(&c, &ProviderOptions::default()).expect_err(want);
            assert_eq!((e.status, e.code), (400, Some("unsupported_parameter")));
            assert!(e.message.contains("messages[0].content[1]") && e.message.contains(want), "{}", e.message);
        }
        let long = document_name(Some(&"x".repeat(500)), &mut Vec::new());
        assert!(long.len() <= 200);
    }
}

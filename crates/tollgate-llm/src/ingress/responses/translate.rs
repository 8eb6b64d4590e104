//! A Responses request as the provider-neutral `Chat`, for targets other
//! than OpenAI. What only OpenAI can do (state kept on its servers, hosted
//! tools, stored files) is refused with a 400 naming the field; what changes
//! nothing elsewhere is dropped; what would change the answer and has no
//! neutral form is left in `uncarried`, for the provider adapter to refuse.

use serde_json::{Map, Value};

use super::request::{bad, item_type, ResponsesRequest, EFFORTS};
use crate::chat::{
    CachePoint, Chat, Document, DocumentSource, Effort, Image, Message, Part, Reasoning, ResponseFormat, Thinking,
    Tool, ToolCall, ToolChoice,
};
use crate::request::resolve_model;
use crate::{LlmError, ModelDefaults};

/// Fields the neutral form reads.
const CARRIED: &[&str] = &[
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "text",
    "reasoning",
    "max_output_tokens",
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "stream",
    // Refused below when they ask for server state; harmless otherwise.
    "store",
    "background",
    "previous_response_id",
    "conversation",
    "prompt",
];

/// Fields that do not change the answer (or only OpenAI's bookkeeping of
/// it), dropped for other providers. `include` asks for extra output data
/// (encrypted reasoning, logprobs, sources) nobody else produces;
/// `truncation` only matters past the context window, where the provider
/// refuses anyway; `max_tool_calls` counts hosted tool calls.
const HARMLESS: &[&str] = &[
    "user",
    "metadata",
    "service_tier",
    "stream_options",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "prompt_cache_options",
    "include",
    "truncation",
    "max_tool_calls",
];

fn stateless(what: &str) -> LlmError {
    bad(format!(
        "{what}: tollgate keeps no conversation state, and this route's target is not OpenAI, \
         so only routes to OpenAI can use it; send the whole conversation in 'input' instead"
    ))
}

fn hosted(path: &str, kind: &str) -> LlmError {
    bad(format!(
        "{path} '{kind}' runs only on OpenAI's servers and this route's target is not OpenAI; \
         only function tools can be translated"
    ))
}

impl ResponsesRequest {
    /// The provider-neutral form, with the target's model and defaults.
    pub fn to_chat(&self, defaults: &ModelDefaults) -> Result<Chat, LlmError> {
        let b = self.json();
        let set = |name: &str| b.get(name).is_some_and(|v| !v.is_null());
        if b.get("store").and_then(Value::as_bool) == Some(true) {
            return Err(stateless("'store': true keeps the response on the server to continue later"));
        }
        if set("previous_response_id") {
            return Err(stateless("'previous_response_id' continues a conversation stored on the server"));
        }
        if set("conversation") {
            return Err(stateless("'conversation' continues a conversation stored on the server"));
        }
        if set("prompt") {
            return Err(stateless("'prompt' names a prompt template stored on OpenAI's servers"));
        }
        if b.get("background").and_then(Value::as_bool) == Some(true) {
            return Err(stateless("'background': true runs the response on the server to fetch later"));
        }
        let model = resolve_model(self.model(), defaults)?;
        let mut uncarried = Vec::new();
        for (k, v) in b {
            if CARRIED.contains(&k.as_str()) || HARMLESS.contains(&k.as_str()) || v.is_null() {
                continue;
            }
            // `top_logprobs: 0` and empty objects ask for nothing.
            if v == &Value::Bool(false) || v.as_u64() == Some(0) || v.as_object().is_some_and(Map::is_empty) {
                continue;
            }
            uncarried.push(k.clone());
        }
        let (mut messages, cache_points) = messages(b)?;
        if messages.is_empty() {
            return Err(bad("'input' must hold at least one item"));
        }
        if let Some(Value::String(s)) = b.get("instructions") {
            messages.insert(0, Message::System { text: s.clone() });
        }
        let cache_points = match b.get("instructions") {
            Some(Value::String(_)) => cache_points
                .into_iter()
                .map(|p| match p {
                    CachePoint::Message(i) => CachePoint::Message(i + 1),
                    other => other,
                })
                .collect(),
            _ => cache_points,
        };
        let mut tools = tools(b.get("tools"))?;
        let tool_choice = tool_choice(b.get("tool_choice"), &mut tools)?;
        let num = |name: &str| b.get(name).and_then(Value::as_f64);
        Ok(Chat {
            model,
            messages,
            tools,
            tool_choice,
            stop: Vec::new(),
            max_tokens: b.get("max_output_tokens").and_then(Value::as_u64).or(defaults.max_tokens),
            temperature: num("temperature").or(defaults.temperature),
            top_p: num("top_p").or(defaults.top_p),
            top_k: defaults.top_k,
            seed: None,
            presence_penalty: None,
            frequency_penalty: None,
            response_format: response_format(b.get("text"))?,
            parallel_tool_calls: b.get("parallel_tool_calls").and_then(Value::as_bool),
            reasoning: reasoning(b.get("reasoning")),
            cache_points,
            stream: self.is_stream(),
            // The usage always ends a Responses stream (`response.completed`).
            client_wants_usage: true,
            uncarried,
        })
    }
}

/// The conversation: every input item in order, as neutral messages, and
/// the prompt-cache marks the caller set on content parts.
fn messages(b: &Map<String, Value>) -> Result<(Vec<Message>, Vec<CachePoint>), LlmError> {
    let items = match b.get("input") {
        Some(Value::String(s)) => return Ok((vec![Message::User { parts: vec![Part::Text(s.clone())] }], Vec::new())),
        Some(Value::Array(items)) => items,
        _ => return Err(bad("'input' is required: a string or an array of input items")),
    };
    let mut out: Vec<Message> = Vec::with_capacity(items.len());
    let mut cache_points = Vec::new();
    // Reasoning shown before the next assistant turn.
    let mut thinking: Vec<Thinking> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        // `ResponsesRequest::parse` checked that items are objects.
        let Some(o) = item.as_object() else { continue };
        let path = format!("input[{i}]");
        match item_type(i, o)? {
            "message" => {
                let role = o.get("role").and_then(Value::as_str).unwrap_or_default();
                let content = o.get("content");
                let (message, cache) = match role {
                    "system" | "developer" => {
                        // Reasoning answers the turn after it; a new prompt orphans it.
                        thinking.clear();
                        (Message::System { text: text_only(&path, content)? }, false)
                    }
                    "assistant" => {
                        // Empty text is none (providers refuse empty text blocks).
                        let text = Some(text_only(&path, content)?).filter(|t| !t.is_empty());
                        let thinking = std::mem::take(&mut thinking);
                        (Message::Assistant { text, tool_calls: Vec::new(), thinking }, false)
                    }
                    _ => {
                        thinking.clear();
                        let (parts, cache) = parts(&path, content)?;
                        (Message::User { parts }, cache)
                    }
                };
                out.push(message);
                if cache {
                    cache_points.push(CachePoint::Message(out.len() - 1));
                }
            }
            "function_call" => {
                let text = |name| o.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
                let call = ToolCall { id: text("call_id"), name: text("name"), arguments: text("arguments") };
                // Calls that follow an assistant turn (its text or other calls) join it.
                match out.last_mut() {
                    Some(Message::Assistant { tool_calls, thinking: shown, .. }) => {
                        shown.append(&mut thinking);
                        tool_calls.push(call);
                    }
                    _ => out.push(Message::Assistant {
                        text: None,
                        tool_calls: vec![call],
                        thinking: std::mem::take(&mut thinking),
                    }),
                }
            }
            "function_call_output" => {
                let Some(call_id) = o.get("call_id").and_then(Value::as_str) else {
                    return Err(bad(format!("{path}.call_id is required")));
                };
                let content = match o.get("output") {
                    Some(Value::String(s)) => s.clone(),
                    output => text_only(&format!("{path}.output"), output).map_err(|_| {
                        bad(format!(
                            "{path}.output holds an image or a file; only text tool outputs can be translated for this route's provider"
                        ))
                    })?,
                };
                out.push(Message::Tool { tool_call_id: call_id.to_string(), content, is_error: false });
            }
            "reasoning" => {
                // The summary the model showed; its encrypted content is
                // OpenAI's alone and cannot be replayed elsewhere.
                let text = joined_texts(o.get("summary")).or_else(|| joined_texts(o.get("content")));
                if let Some(text) = text {
                    thinking.push(Thinking { text, signature: None, redacted: None });
                }
            }
            "item_reference" => {
                return Err(stateless(&format!("{path} is an item_reference to an item stored on the server")))
            }
            other => return Err(hosted(&format!("{path}.type"), other)),
        }
    }
    // An assistant turn that says nothing at all still takes its place.
    for m in &mut out {
        if let Message::Assistant { text: text @ None, tool_calls, .. } = m {
            if tool_calls.is_empty() {
                *text = Some(String::new());
            }
        }
    }
    Ok((out, cache_points))
}

/// The texts of summary or reasoning parts, joined; `None` when there are none.
fn joined_texts(v: Option<&Value>) -> Option<String> {
    let texts: Vec<&str> =
        v?.as_array()?.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).filter(|t| !t.is_empty()).collect();
    if texts.is_empty() {
        None
    } else {
        Some(texts.join("\n\n"))
    }
}

/// Content that may only hold text (system, developer and assistant turns,
/// tool outputs): a string, or its text parts joined.
fn text_only(path: &str, content: Option<&Value>) -> Result<String, LlmError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut out = String::new();
            for (j, p) in parts.iter().enumerate() {
                let kind = p.get("type").and_then(Value::as_str).unwrap_or_default();
                let key = match kind {
                    "input_text" | "output_text" => "text",
                    "refusal" => "refusal",
                    _ => {
                        return Err(bad(format!(
                            "{path}.content[{j}].type '{kind}' cannot be translated here: this turn takes text only"
                        )))
                    }
                };
                out.push_str(p.get(key).and_then(Value::as_str).unwrap_or_default());
            }
            Ok(out)
        }
        Some(_) => Err(bad(format!("{path}.content must be a string or an array of content parts"))),
    }
}

/// A user turn's parts, and whether one of them marks a prompt-cache breakpoint.
fn parts(path: &str, content: Option<&Value>) -> Result<(Vec<Part>, bool), LlmError> {
    let list = match content {
        Some(Value::String(s)) => return Ok((vec![Part::Text(s.clone())], false)),
        Some(Value::Array(list)) => list,
        _ => return Ok((Vec::new(), false)),
    };
    let mut out = Vec::with_capacity(list.len());
    let mut cache = false;
    for (j, p) in list.iter().enumerate() {
        let at = format!("{path}.content[{j}]");
        let field = |name| p.get(name).and_then(Value::as_str);
        cache |= p.get("prompt_cache_breakpoint").is_some_and(|b| !b.is_null());
        match field("type").unwrap_or_default() {
            "input_text" | "output_text" => out.push(Part::Text(field("text").unwrap_or_default().to_string())),
            "refusal" => out.push(Part::Text(field("refusal").unwrap_or_default().to_string())),
            "input_image" => {
                let Some(url) = field("image_url") else {
                    return Err(bad(format!(
                        "{at}.file_id names a file stored at OpenAI, which this route's provider cannot read; send image_url (a URL or a data: URI)"
                    )));
                };
                out.push(Part::Image(image(url).map_err(|w| bad(format!("{at}.image_url {w}")))?));
            }
            "input_file" => out.push(Part::Document(document(&at, p)?)),
            other => {
                return Err(bad(format!(
                    "{at}.type '{other}' cannot be translated for this route's provider; use input_text, input_image or input_file"
                )))
            }
        }
    }
    Ok((out, cache))
}

/// An image URL, or the media type and payload of a base64 `data:` URI.
fn image(url: &str) -> Result<Image, String> {
    match data_uri(url)? {
        Some((media_type, data)) => Ok(Image::Base64 { media_type, data }),
        None => Ok(Image::Url(url.to_string())),
    }
}

/// `Some((media type, base64 payload))` for a `data:` URI, `None` for another URL.
fn data_uri(s: &str) -> Result<Option<(String, String)>, String> {
    let Some(rest) = s.strip_prefix("data:") else {
        return Ok(None);
    };
    let Some((meta, data)) = rest.split_once(',') else {
        return Err("is a data: URI without a ',' before its payload".into());
    };
    let Some(media_type) = meta.strip_suffix(";base64") else {
        return Err("must be a base64 data: URI (data:<type>;base64,...)".into());
    };
    if media_type.is_empty() {
        return Err("names no media type".into());
    }
    Ok(Some((media_type.to_string(), data.to_string())))
}

/// An `input_file` part: inline bytes (a data: URI, or bare base64 typed by
/// the file name) or a URL; a stored file id only OpenAI can read.
fn document(at: &str, p: &Value) -> Result<Document, LlmError> {
    let field = |name| p.get(name).and_then(Value::as_str);
    let title = field("filename").map(str::to_string);
    let source = if let Some(data) = field("file_data") {
        match data_uri(data).map_err(|w| bad(format!("{at}.file_data {w}")))? {
            Some((media_type, data)) => DocumentSource::Base64 { media_type, data },
            None => DocumentSource::Base64 {
                media_type: media_type_of(title.as_deref().unwrap_or_default()).to_string(),
                data: data.to_string(),
            },
        }
    } else if let Some(url) = field("file_url") {
        DocumentSource::Url(url.to_string())
    } else {
        return Err(bad(format!(
            "{at}.file_id names a file stored at OpenAI, which this route's provider cannot read; send file_data or file_url"
        )));
    };
    Ok(Document { source, title })
}

/// The media type of a file by its name's extension (PDF when unknown, the
/// one documents providers all read).
fn media_type_of(filename: &str) -> &'static str {
    let ext = filename.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "txt" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        _ => "application/pdf",
    }
}

fn tools(v: Option<&Value>) -> Result<Vec<Tool>, LlmError> {
    let Some(Value::Array(list)) = v else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let field = |name| t.get(name).and_then(Value::as_str);
        match field("type").unwrap_or_default() {
            "function" => out.push(Tool {
                name: field("name").unwrap_or_default().to_string(),
                description: field("description").map(str::to_string),
                parameters: match t.get("parameters") {
                    Some(p @ Value::Object(_)) => p.clone(),
                    _ => serde_json::json!({"type": "object", "properties": {}}),
                },
            }),
            other => return Err(hosted(&format!("tools[{i}].type"), other)),
        }
    }
    Ok(out)
}

/// The tool choice; `allowed_tools` narrows `tools` to the ones it names.
fn tool_choice(v: Option<&Value>, tools: &mut Vec<Tool>) -> Result<Option<ToolChoice>, LlmError> {
    Ok(match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => ToolChoice::Auto,
        }),
        Some(o) => match o.get("type").and_then(Value::as_str).unwrap_or_default() {
            "function" => {
                Some(ToolChoice::Function(o.get("name").and_then(Value::as_str).unwrap_or_default().to_string()))
            }
            "allowed_tools" => {
                let allowed = o.get("tools").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
                let mut names = Vec::with_capacity(allowed.len());
                for (i, t) in allowed.iter().enumerate() {
                    match (t.get("type").and_then(Value::as_str), t.get("name").and_then(Value::as_str)) {
                        (Some("function"), Some(name)) => names.push(name),
                        (kind, _) => return Err(hosted(&format!("tool_choice.tools[{i}].type"), kind.unwrap_or("?"))),
                    }
                }
                tools.retain(|t| names.contains(&t.name.as_str()));
                Some(match o.get("mode").and_then(Value::as_str) {
                    Some("required") => ToolChoice::Required,
                    _ => ToolChoice::Auto,
                })
            }
            other => return Err(hosted("tool_choice.type", other)),
        },
    })
}

fn response_format(text: Option<&Value>) -> Result<Option<ResponseFormat>, LlmError> {
    let Some(f) = text.and_then(|t| t.get("format")).filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    Ok(Some(match f.get("type").and_then(Value::as_str).unwrap_or_default() {
        "json_object" => ResponseFormat::JsonObject,
        "json_schema" => ResponseFormat::JsonSchema {
            name: f.get("name").and_then(Value::as_str).unwrap_or("response").to_string(),
            schema: f.get("schema").cloned().ok_or_else(|| bad("text.format.schema is required"))?,
            strict: f.get("strict").and_then(Value::as_bool).unwrap_or(false),
        },
        _ => ResponseFormat::Text,
    }))
}

/// `reasoning.effort` (`none` asks for none; `xhigh` and `max` are the most
/// other providers offer, `high`). The summary setting only shapes what
/// OpenAI shows of it.
fn reasoning(v: Option<&Value>) -> Option<Reasoning> {
    let effort = v?.get("effort")?.as_str()?;
    debug_assert!(EFFORTS.contains(&effort));
    let effort = match effort {
        "none" => return None,
        "xhigh" | "max" => Effort::High,
        e => Effort::parse(e)?,
    };
    Some(Reasoning { effort: Some(effort), budget_tokens: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> ModelDefaults {
        ModelDefaults { name: Some("claude-x".into()), ..ModelDefaults::default() }
    }

    fn chat(body: &str) -> Result<Chat, LlmError> {
        ResponsesRequest::parse(body.as_bytes())?.to_chat(&defaults())
    }

    fn user(text: &str) -> Message {
        Message::User { parts: vec![Part::Text(text.into())] }
    }

    #[test]
    fn a_string_input_is_one_user_turn_after_the_instructions() {
        let c = chat(r#"{"input":"hi","instructions":"be brief","stream":true}"#).expect("valid");
        assert_eq!(c.model, "claude-x");
        assert_eq!(c.messages, vec![Message::System { text: "be brief".into() }, user("hi")]);
        assert!(c.stream && c.client_wants_usage);
        assert!(c.uncarried.is_empty());
    }

    #[test]
    fn items_become_turns_in_order() {
        let c = chat(
            r#"{"input":[
                {"role":"developer","content":[{"type":"input_text","text":"no jokes"}]},
                {"role":"user","content":[{"type":"input_text","text":"what is this?"},
                    {"type":"input_image","image_url":"data:image/png;base64,iVBORw0KGgo=","detail":"auto"},
                    {"type":"input_image","image_url":"https://example.com/cat.jpg"},
                    {"type":"input_file","file_data":"data:application/pdf;base64,JVBERi0=","filename":"a.pdf"},
                    {"type":"input_file","file_data":"aGVsbG8=","filename":"notes.txt"},
                    {"type":"input_file","file_url":"https://example.com/b.pdf"}]},
                {"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"look first"}],"encrypted_content":"gAAA"},
                {"type":"message","role":"assistant","id":"msg_1","status":"completed",
                    "content":[{"type":"output_text","text":"Let me look.","annotations":[]}]},
                {"type":"function_call","call_id":"call_1","name":"look","arguments":"{\"x\":1}"},
                {"type":"function_call","call_id":"call_2","name":"zoom","arguments":"{}"},
                {"type":"function_call_output","call_id":"call_1","output":"a cat"},
                {"type":"function_call_output","call_id":"call_2","output":[{"type":"input_text","text":"big "},{"type":"input_text","text":"cat"}]},
                {"type":"reasoning","id":"rs_2","summary":[],"encrypted_content":"gBBB"},
                {"type":"function_call","call_id":"call_3","name":"look","arguments":"{}"},
                {"type":"function_call_output","call_id":"call_3","output":"done"},
                {"role":"user","content":"thanks"}]}"#,
        )
        .expect("valid");
        assert_eq!(
            c.messages,
            vec![
                Message::System { text: "no jokes".into() },
                Message::User {
                    parts: vec![
                        Part::Text("what is this?".into()),
                        Part::Image(Image::Base64 { media_type: "image/png".into(), data: "iVBORw0KGgo=".into() }),
                        Part::Image(Image::Url("https://example.com/cat.jpg".into())),
                        Part::Document(Document {
                            source: DocumentSource::Base64 {
                                media_type: "application/pdf".into(),
                                data: "JVBERi0=".into()
                            },
                            title: Some("a.pdf".into()),
                        }),
                        Part::Document(Document {
                            source: DocumentSource::Base64 { media_type: "text/plain".into(), data: "aGVsbG8=".into() },
                            title: Some("notes.txt".into()),
                        }),
                        Part::Document(Document {
                            source: DocumentSource::Url("https://example.com/b.pdf".into()),
                            title: None
                        }),
                    ]
                },
                Message::Assistant {
                    text: Some("Let me look.".into()),
                    tool_calls: vec![
                        ToolCall { id: "call_1".into(), name: "look".into(), arguments: "{\"x\":1}".into() },
                        ToolCall { id: "call_2".into(), name: "zoom".into(), arguments: "{}".into() },
                    ],
                    thinking: vec![Thinking { text: "look first".into(), signature: None, redacted: None }],
                },
                Message::Tool { tool_call_id: "call_1".into(), content: "a cat".into(), is_error: false },
                Message::Tool { tool_call_id: "call_2".into(), content: "big cat".into(), is_error: false },
                // Encrypted-only reasoning says nothing other providers can read.
                Message::Assistant {
                    text: None,
                    tool_calls: vec![ToolCall { id: "call_3".into(), name: "look".into(), arguments: "{}".into() }],
                    thinking: Vec::new(),
                },
                Message::Tool { tool_call_id: "call_3".into(), content: "done".into(), is_error: false },
                user("thanks"),
            ]
        );
    }

    #[test]
    fn empty_assistant_text_is_none_and_orphaned_reasoning_is_dropped() {
        let c = chat(
            r#"{"input":[
                {"type":"reasoning","id":"rs_0","summary":[{"type":"summary_text","text":"stale"}]},
                {"role":"user","content":"hi"},
                {"role":"assistant","content":""},
                {"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},
                {"type":"function_call_output","call_id":"c1","output":"ok"},
                {"role":"assistant","content":[]},
                {"role":"user","content":"again"}]}"#,
        )
        .expect("valid");
        assert_eq!(
            c.messages,
            vec![
                user("hi"),
                Message::Assistant {
                    text: None,
                    tool_calls: vec![ToolCall { id: "c1".into(), name: "f".into(), arguments: "{}".into() }],
                    thinking: Vec::new(),
                },
                Message::Tool { tool_call_id: "c1".into(), content: "ok".into(), is_error: false },
                Message::Assistant { text: Some(String::new()), tool_calls: Vec::new(), thinking: Vec::new() },
                user("again"),
            ]
        );
    }

    #[test]
    fn a_codex_turn_translates() {
        // The shape Codex CLI sends (stateless: store false, encrypted reasoning included).
        let c = chat(
            r#"{"model":"claude-x","instructions":"You are Codex.","input":[
                {"type":"message","role":"user","content":[{"type":"input_text","text":"<environment_context>cwd</environment_context>"}]},
                {"type":"message","role":"user","content":[{"type":"input_text","text":"list the files"}]},
                {"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"**Listing**"}],"content":null,"encrypted_content":"gAAAA"},
                {"type":"function_call","id":"fc_1","name":"shell","arguments":"{\"command\":[\"ls\"]}","call_id":"call_1"},
                {"type":"function_call_output","call_id":"call_1","output":"{\"output\":\"a\\nb\",\"metadata\":{\"exit_code\":0}}"}],
              "tools":[{"type":"function","name":"shell","description":"Runs a command","strict":false,
                "parameters":{"type":"object","properties":{"command":{"type":"array","items":{"type":"string"}}},"required":["command"],"additionalProperties":false}}],
              "tool_choice":"auto","parallel_tool_calls":false,"reasoning":{"effort":"medium","summary":"auto"},"store":false,"stream":true,
              "include":["reasoning.encrypted_content"],"prompt_cache_key":"0199a0e4"}"#,
        )
        .expect("a Codex turn translates");
        assert_eq!(c.messages.len(), 5);
        assert_eq!(c.messages[0], Message::System { text: "You are Codex.".into() });
        assert_eq!(
            c.messages[3],
            Message::Assistant {
                text: None,
                tool_calls: vec![ToolCall {
                    id: "call_1".into(),
                    name: "shell".into(),
                    arguments: "{\"command\":[\"ls\"]}".into()
                }],
                thinking: vec![Thinking { text: "**Listing**".into(), signature: None, redacted: None }],
            }
        );
        assert!(matches!(&c.messages[4], Message::Tool { tool_call_id, .. } if tool_call_id == "call_1"));
        assert_eq!((c.tool_choice, c.parallel_tool_calls, c.stream), (Some(ToolChoice::Auto), Some(false), true));
        assert_eq!(c.reasoning.and_then(|r| r.effort), Some(Effort::Medium));
        assert!(c.uncarried.is_empty(), "{:?}", c.uncarried);
    }

    #[test]
    fn options_tools_and_formats_carry_over() {
        let c = chat(
            r#"{"input":"hi","max_output_tokens":50,"temperature":0.2,"top_p":0.9,"parallel_tool_calls":false,
                "tools":[{"type":"function","name":"look","description":"Look.","parameters":{"type":"object","properties":{"x":{"type":"number"}}},"strict":true},
                         {"type":"function","name":"bare"}],
                "tool_choice":{"type":"function","name":"look"},
                "text":{"format":{"type":"json_schema","name":"out","schema":{"type":"object"},"strict":true},"verbosity":"low"},
                "reasoning":{"effort":"low","summary":"auto"},
                "store":false,"user":"u","metadata":{"a":"b"},"include":["reasoning.encrypted_content"],"truncation":"auto",
                "top_logprobs":0,"service_tier":"auto","prompt_cache_key":"k","safety_identifier":"s"}"#,
        )
        .expect("valid");
        assert_eq!(
            (c.max_tokens, c.temperature, c.top_p, c.parallel_tool_calls),
            (Some(50), Some(0.2), Some(0.9), Some(false))
        );
        assert_eq!(c.tools.len(), 2);
        assert_eq!(c.tools[0].description.as_deref(), Some("Look."));
        assert_eq!(c.tools[1].parameters, serde_json::json!({"type":"object","properties":{}}));
        assert_eq!(c.tool_choice, Some(ToolChoice::Function("look".into())));
        assert_eq!(
            c.response_format,
            Some(ResponseFormat::JsonSchema {
                name: "out".into(),
                schema: serde_json::json!({"type":"object"}),
                strict: true
            })
        );
        assert_eq!(c.reasoning, Some(Reasoning { effort: Some(Effort::Low), budget_tokens: None }));
        assert!(c.uncarried.is_empty(), "{:?}", c.uncarried);
        assert!(!c.stream);

        let c = chat(r#"{"input":"hi","text":{"format":{"type":"json_object"}},"reasoning":{"effort":"none"},"tool_choice":"required"}"#).expect("valid");
        assert_eq!(c.response_format, Some(ResponseFormat::JsonObject));
        assert_eq!(c.reasoning, None);
        assert_eq!(c.tool_choice, Some(ToolChoice::Required));
        let c = chat(r#"{"input":"hi","reasoning":{"effort":"xhigh"}}"#).expect("valid");
        assert_eq!(c.reasoning.and_then(|r| r.effort), Some(Effort::High));
    }

    #[test]
    fn target_defaults_fill_what_the_request_leaves_out() {
        let req = ResponsesRequest::parse(br#"{"input":"hi","temperature":0.2}"#).expect("valid");
        let d = ModelDefaults {
            name: Some("m".into()),
            max_tokens: Some(99),
            temperature: Some(1.0),
            top_p: Some(0.5),
            top_k: Some(5),
        };
        let c = req.to_chat(&d).expect("ok");
        assert_eq!((c.max_tokens, c.temperature, c.top_p, c.top_k), (Some(99), Some(0.2), Some(0.5), Some(5)));
    }

    #[test]
    fn allowed_tools_narrow_the_tool_list() {
        let c = chat(
            r#"{"input":"hi","tools":[{"type":"function","name":"a"},{"type":"function","name":"b"}],
                "tool_choice":{"type":"allowed_tools","mode":"required","tools":[{"type":"function","name":"b"}]}}"#,
        )
        .expect("valid");
        assert_eq!(c.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["b"]);
        assert_eq!(c.tool_choice, Some(ToolChoice::Required));
    }

    #[test]
    fn cache_breakpoints_mark_their_turn() {
        let c = chat(
            r#"{"instructions":"sys","input":[{"role":"user","content":[{"type":"input_text","text":"long doc","prompt_cache_breakpoint":{"mode":"explicit"}}]},
                {"role":"user","content":"q"}]}"#,
        )
        .expect("valid");
        assert_eq!(c.cache_points, vec![CachePoint::Message(1)]);
    }

    #[test]
    fn server_state_and_hosted_tools_are_refused_by_name() {
        for (body, want) in [
            (r#"{"input":"hi","store":true}"#, "'store': true"),
            (r#"{"input":"hi","previous_response_id":"resp_1"}"#, "'previous_response_id'"),
            (r#"{"previous_response_id":"resp_1"}"#, "tollgate keeps no conversation state"),
            (r#"{"input":"hi","conversation":"conv_1"}"#, "'conversation'"),
            (r#"{"input":"hi","background":true}"#, "'background'"),
            (r#"{"prompt":{"id":"pmpt_1"}}"#, "'prompt'"),
            (r#"{"input":[{"type":"item_reference","id":"msg_1"}]}"#, "input[0] is an item_reference"),
            (r#"{"input":[{"id":"msg_1"}]}"#, "input[0] is an item_reference"),
            (
                r#"{"input":"hi","tools":[{"type":"function","name":"f"},{"type":"web_search"}]}"#,
                "tools[1].type 'web_search' runs only on OpenAI's servers",
            ),
            (r#"{"input":"hi","tools":[{"type":"custom","name":"apply_patch"}]}"#, "tools[0].type 'custom'"),
            (r#"{"input":"hi","tool_choice":{"type":"file_search"}}"#, "tool_choice.type 'file_search'"),
            (
                r#"{"input":[{"type":"web_search_call","id":"ws_1","status":"completed"}]}"#,
                "input[0].type 'web_search_call'",
            ),
            (
                r#"{"input":[{"role":"user","content":[{"type":"input_image","file_id":"file-1"}]}]}"#,
                "input[0].content[0].file_id",
            ),
            (
                r#"{"input":[{"role":"user","content":[{"type":"input_file","file_id":"file-1"}]}]}"#,
                "input[0].content[0].file_id",
            ),
            (
                r#"{"input":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}"#,
                "input[0].content[0].type 'input_audio'",
            ),
            (
                r#"{"input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/png,xx"}]}]}"#,
                "base64 data: URI",
            ),
            (
                r#"{"input":[{"role":"system","content":[{"type":"input_image","image_url":"https://x"}]}]}"#,
                "input[0].content[0].type 'input_image' cannot be translated here",
            ),
            (r#"{"input":[{"type":"function_call_output","output":"x"}]}"#, "input[0].call_id is required"),
            (
                r#"{"input":[{"type":"function_call_output","call_id":"c","output":[{"type":"input_image","image_url":"https://x"}]}]}"#,
                "input[0].output holds an image",
            ),
            (r#"{"input":[]}"#, "at least one item"),
            (r#"{"model":"gpt-4.1","input":"hi"}"#, "'gpt-4.1' is not available"),
        ] {
            let e = chat(body).expect_err(body);
            assert_eq!(e.status, 400, "{body}");
            assert!(e.message.contains(want), "{body}: {}", e.message);
        }
    }

    #[test]
    fn unknown_answer_changing_fields_are_left_for_the_adapter_to_refuse() {
        let c = chat(r#"{"input":"hi","top_logprobs":5,"context_management":[{"type":"compaction"}],"moderation":{}}"#)
            .expect("valid");
        let mut uncarried = c.uncarried.clone();
        uncarried.sort();
        assert_eq!(uncarried, ["context_management", "top_logprobs"]);
        let e = c.refuse_unsupported("anthropic", &[]).expect_err("refused");
        assert!(e.message.contains("is not supported by provider anthropic"), "{}", e.message);
    }
}

//! OpenAI wire format: `/v1/chat/completions` (JSON and SSE) and
//! `/v1/embeddings`, also spoken by Azure OpenAI and, in its dialect, Mistral.
//! Pure request -> [`Reply`] functions; delays, faults and delivery are
//! handled by the caller.

use std::borrow::Cow;

use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::behavior::Behavior;
use crate::chat::{
    first_tool, unix_now, Answer, Content, Message, Prompt, Stop, Tool, DEFAULT_MODEL, TOOL_ARGS, TOOL_ARG_PIECES,
};
use crate::embedding;
use crate::reply::{Reply, TimedEvent};
use crate::sse;
use crate::state::AppState;
use crate::tokens::Usage;

// ---------- errors ----------

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    code: Option<&'a str>,
}

pub fn error(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Reply {
    Reply::json_value(status, &ErrorEnvelope { error: ErrorBody { message, kind, code } })
}

pub fn invalid_request(message: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, message, "invalid_request_error", None)
}

/// Answer for a behaviour with `status >= 400`.
pub fn mock_error(status: StatusCode, behavior: &Behavior) -> Reply {
    match &behavior.error_body {
        Some(raw) => Reply::json(status, raw.clone()),
        None => {
            let code = status.as_u16().to_string();
            error(status, &format!("mock error {code}"), "mock_error", Some(&code))
        }
    }
}

// ---------- chat completions ----------

#[derive(Deserialize)]
struct ChatRequest<'a> {
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    messages: Vec<Message<'a>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default, borrow)]
    tools: Option<Vec<Tool<'a>>>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    finish_reason: &'static str,
    logprobs: Option<()>,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCall<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionCall<'a>,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChunkChoice<'a>],
    /// Absent without `include_usage`; `null` on ordinary chunks and the
    /// object on the final one with it (as OpenAI does).
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Usage>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallDelta<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCallDelta<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionDelta<'a>,
}

#[derive(Serialize)]
struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

/// `data: <json>\n\n` for one chunk.
fn chunk_event(head: &ChunkHead<'_>, choices: &[ChunkChoice<'_>], usage: Option<Option<Usage>>) -> Bytes {
    let chunk = Chunk {
        id: head.id,
        object: "chat.completion.chunk",
        created: head.created,
        model: head.model,
        choices,
        usage,
    };
    // Serializing these plain structs cannot fail; an empty object keeps the
    // stream well-formed if it ever did.
    let json = serde_json::to_vec(&chunk).unwrap_or_else(|_| b"{}".to_vec());
    sse::data_event(&json)
}

/// Fields repeated in every chunk of one stream.
struct ChunkHead<'a> {
    id: &'a str,
    created: u64,
    model: &'a str,
    /// `Some(None)` (= `"usage":null`) when include_usage is on.
    usage_null: Option<Option<Usage>>,
    /// Mistral's dialect: the finish chunk always carries the usage.
    usage_on_finish: bool,
}

fn delta_choice<'a>(delta: Delta<'a>, finish_reason: Option<&'a str>) -> [ChunkChoice<'a>; 1] {
    [ChunkChoice { index: 0, delta, finish_reason }]
}

/// Which provider's OpenAI dialect an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    /// Mistral (`/mistral/v1/...` on the mock): `stream_options` is an
    /// unknown field (422, as Mistral refuses extra fields) and the last
    /// content chunk of a stream always carries the usage; see [`embeddings`]
    /// for its embeddings.
    Mistral,
}

/// `POST .../chat/completions`. `default_model` answers for a request that
/// names no model (Azure's deployment name).
pub fn chat(
    state: &AppState,
    behavior: &Behavior,
    body: &[u8],
    default_model: Option<&str>,
    dialect: Dialect,
) -> Reply {
    let req: ChatRequest<'_> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) if e.is_syntax() || e.is_eof() => return invalid_request(&format!("invalid JSON body: {e}")),
        Err(e) => return invalid_request(&format!("invalid request: {e}")),
    };
    if dialect == Dialect::Mistral && req.stream_options.is_some() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "stream_options: Extra inputs are not permitted",
            "invalid_request_error",
            None,
        );
    }
    if let Err(message) = check_tool_messages(&req.messages) {
        return invalid_request(&message);
    }
    let model = req.model.as_deref().or(default_model).unwrap_or(DEFAULT_MODEL);
    let first_tool = first_tool(req.tools.as_deref());
    let answer = Answer::new(&Prompt::of_messages(&req.messages), behavior, first_tool);
    let n = state.next_id();
    let id = format!("chatcmpl-mock-{n}");
    let created = unix_now();

    if req.stream.unwrap_or(false) {
        let include_usage = req.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
        let head = ChunkHead {
            id: &id,
            created,
            model,
            usage_null: include_usage.then_some(None),
            usage_on_finish: dialect == Dialect::Mistral,
        };
        let call_id = format!("call_mock_{n}");
        return match answer.tool_name() {
            Some(name) => stream_tool_call(&head, &answer, name, &call_id),
            None => stream_text(&head, &answer),
        };
    }

    let (message, finish_reason);
    let call_id;
    match &answer.content {
        Content::ToolCall { name } => {
            call_id = format!("call_mock_{n}");
            message = AssistantMessage {
                role: "assistant",
                content: None,
                tool_calls: Some([ToolCall {
                    id: &call_id,
                    kind: "function",
                    function: FunctionCall { name, arguments: TOOL_ARGS },
                }]),
            };
            finish_reason = "tool_calls";
        }
        Content::Text(text) => {
            message = AssistantMessage { role: "assistant", content: Some(text), tool_calls: None };
            finish_reason = finish_reason_of(answer.stop);
        }
    }
    let usage = Usage::new(answer.prompt_tokens, answer.completion_tokens);
    Reply::json_value(
        StatusCode::OK,
        &Completion {
            id: &id,
            object: "chat.completion",
            created,
            model,
            choices: [Choice { index: 0, message, finish_reason, logprobs: None }],
            usage: (!behavior.omit_usage).then_some(usage),
        },
    )
}

/// OpenAI's check of tool turns: each `tool` message answers a call of the
/// assistant message before it (other `tool` messages may come between), by
/// `tool_call_id`. Messages as OpenAI words them (typo included).
fn check_tool_messages(messages: &[Message<'_>]) -> Result<(), String> {
    // Ids of the tool calls the current run of tool messages answers.
    let mut calls: Option<Vec<&str>> = None;
    for m in messages {
        match m.role.as_deref() {
            Some("tool") => {
                let Some(ids) = &calls else {
                    return Err("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.".into());
                };
                let Some(id) = m.tool_call_id.as_deref() else {
                    return Err(
                        "Missing parameter 'tool_call_id': messages with role 'tool' must have a 'tool_call_id'."
                            .into(),
                    );
                };
                if !ids.contains(&id) {
                    return Err(format!(
                        "Invalid parameter: 'tool_call_id' of '{id}' not found in 'tool_calls' of previous message."
                    ));
                }
            }
            Some("assistant") => {
                calls = m
                    .tool_calls
                    .as_ref()
                    .filter(|c| !c.is_empty())
                    .map(|c| c.iter().filter_map(|c| c.id.as_deref()).collect());
            }
            _ => calls = None,
        }
    }
    Ok(())
}

fn finish_reason_of(stop: Stop) -> &'static str {
    match stop {
        Stop::End => "stop",
        Stop::MaxTokens => "length",
        Stop::ToolUse => "tool_calls",
    }
}

/// Events common to the end of every stream: finish chunk, optional usage
/// chunk, `[DONE]`.
fn push_tail(events: &mut Vec<TimedEvent>, head: &ChunkHead<'_>, finish: &str, usage: Usage) {
    let finish_usage = if head.usage_on_finish { Some(Some(usage)) } else { head.usage_null };
    events.push(TimedEvent::now(chunk_event(head, &delta_choice(Delta::default(), Some(finish)), finish_usage)));
    if head.usage_null.is_some() {
        events.push(TimedEvent::now(chunk_event(head, &[], Some(Some(usage)))));
    }
    events.push(TimedEvent::now(Bytes::from_static(sse::DONE)));
}

/// Stream timing (see `chat`): the role chunk after `ttft_ms`, then each
/// content piece after `chunk_delay_ms`.
fn stream_text(head: &ChunkHead<'_>, answer: &Answer<'_>) -> Reply {
    let pieces = answer.text_pieces();
    let mut events = Vec::with_capacity(pieces.len() + 4);
    events.push(TimedEvent::after(
        answer.pacing.ttft,
        chunk_event(
            head,
            &delta_choice(Delta { role: Some("assistant"), content: Some(Some("")), tool_calls: None }, None),
            head.usage_null,
        ),
    ));
    for piece in pieces {
        events.push(TimedEvent::after(
            answer.pacing.chunk,
            chunk_event(
                head,
                &delta_choice(Delta { content: Some(Some(piece)), ..Delta::default() }, None),
                head.usage_null,
            ),
        ));
    }
    let usage = Usage::new(answer.prompt_tokens, answer.completion_tokens);
    push_tail(&mut events, head, finish_reason_of(answer.stop), usage);
    Reply::sse(events)
}

fn stream_tool_call(head: &ChunkHead<'_>, answer: &Answer<'_>, name: &str, call_id: &str) -> Reply {
    let mut events = Vec::with_capacity(TOOL_ARG_PIECES.len() + 4);
    events.push(TimedEvent::after(
        answer.pacing.ttft,
        chunk_event(
            head,
            &delta_choice(
                Delta {
                    role: Some("assistant"),
                    content: Some(None),
                    tool_calls: Some([ToolCallDelta {
                        index: 0,
                        id: Some(call_id),
                        kind: Some("function"),
                        function: FunctionDelta { name: Some(name), arguments: "" },
                    }]),
                },
                None,
            ),
            head.usage_null,
        ),
    ));
    for piece in TOOL_ARG_PIECES {
        events.push(TimedEvent::after(
            answer.pacing.chunk,
            chunk_event(
                head,
                &delta_choice(
                    Delta {
                        tool_calls: Some([ToolCallDelta {
                            index: 0,
                            id: None,
                            kind: None,
                            function: FunctionDelta { name: None, arguments: piece },
                        }]),
                        ..Delta::default()
                    },
                    None,
                ),
                head.usage_null,
            ),
        ));
    }
    let usage = Usage::new(answer.prompt_tokens, answer.completion_tokens);
    push_tail(&mut events, head, "tool_calls", usage);
    Reply::sse(events)
}

// ---------- embeddings ----------

#[derive(Serialize)]
struct EmbeddingList<'a> {
    /// Mistral's answers carry an id; OpenAI's do not.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    object: &'static str,
    data: Vec<EmbeddingItem>,
    model: &'a str,
    usage: EmbeddingUsage,
}

#[derive(Serialize)]
struct EmbeddingItem {
    object: &'static str,
    index: usize,
    embedding: Vector,
}

/// `encoding_format`: floats, or base64 of the little-endian `f32` values.
#[derive(Serialize)]
#[serde(untagged)]
enum Vector {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u64,
    /// Mistral reports a (zero) completion count too.
    #[serde(skip_serializing_if = "Option::is_none")]
    completion_tokens: Option<u64>,
    total_tokens: u64,
}

/// One embedding input: its hash key and token count.
fn embedding_input(v: &Value) -> Option<(Vec<u8>, u64)> {
    match v {
        Value::String(s) => Some((s.as_bytes().to_vec(), embedding::text_tokens(s))),
        // Pre-tokenized input: an array of token ids.
        Value::Array(ids) if !ids.is_empty() && ids.iter().all(Value::is_u64) => {
            Some((v.to_string().into_bytes(), ids.len() as u64))
        }
        _ => None,
    }
}

/// The inputs of an OpenAI request: a string, an array of strings, an array
/// of token ids, or an array of such arrays.
fn openai_inputs(input: &Value) -> Option<Vec<(Vec<u8>, u64)>> {
    let inputs: Option<Vec<_>> = match input {
        Value::Array(items) if !items.is_empty() && !items.iter().all(Value::is_u64) => {
            items.iter().map(embedding_input).collect()
        }
        other => embedding_input(other).map(|i| vec![i]),
    };
    inputs.filter(|i| !i.is_empty())
}

/// Fields Mistral's embeddings endpoint takes; any other is a 422, as
/// Mistral refuses extra fields (https://docs.mistral.ai/api/endpoint/embeddings).
const MISTRAL_FIELDS: &[&str] = &["model", "input", "output_dimension", "output_dtype", "encoding_format", "metadata"];

/// Mistral's own refusal of a request that does not fit its schema.
fn unprocessable(message: &str) -> Reply {
    error(StatusCode::UNPROCESSABLE_ENTITY, message, "invalid_request_error", None)
}

/// The inputs of a Mistral request: a string or an array of strings.
fn mistral_inputs(input: &Value) -> Option<Vec<(Vec<u8>, u64)>> {
    let text = |s: &str| (s.as_bytes().to_vec(), embedding::text_tokens(s));
    match input {
        Value::String(s) => Some(vec![text(s)]),
        Value::Array(items) if !items.is_empty() => items.iter().map(|v| v.as_str().map(text)).collect(),
        _ => None,
    }
}

/// `POST .../embeddings`: OpenAI's `/v1/embeddings`, Azure OpenAI's
/// `/openai/deployments/{deployment}/embeddings` (`default_model` is the
/// deployment, answered when the body names no model) and, in Mistral's
/// dialect, `/mistral/v1/embeddings`.
///
/// OpenAI takes a string, an array of strings, an array of token ids or an
/// array of such arrays, `dimensions` and `encoding_format` (`float` or
/// `base64`). Mistral takes text only, `output_dimension` instead of
/// `dimensions`, refuses other fields with 422, and answers with an `id` and
/// a zero `completion_tokens`.
pub fn embeddings(state: &AppState, body: &[u8], default_model: Option<&str>, dialect: Dialect) -> Reply {
    let req: serde_json::Map<String, Value> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) if e.is_syntax() || e.is_eof() => return invalid_request(&format!("invalid JSON body: {e}")),
        Err(e) => return invalid_request(&format!("invalid request: {e}")),
    };
    let mistral = dialect == Dialect::Mistral;
    if mistral {
        if let Some(k) = req.keys().find(|k| !MISTRAL_FIELDS.contains(&k.as_str())) {
            return unprocessable(&format!("{k}: Extra inputs are not permitted"));
        }
        if !req.get("model").is_some_and(Value::is_string) {
            return unprocessable("model: Field required");
        }
        if let Some(t) = req.get("output_dtype").filter(|t| !t.is_null()) {
            if t != "float" {
                return invalid_request(&format!("mock: output_dtype {t} is not supported"));
            }
        }
    }
    let model = req.get("model").and_then(Value::as_str).or(default_model).unwrap_or(DEFAULT_MODEL);
    let input = req.get("input").unwrap_or(&Value::Null);
    let inputs = if mistral {
        match mistral_inputs(input) {
            Some(i) => i,
            None => return unprocessable("input: Input should be a valid string or list of strings"),
        }
    } else {
        match openai_inputs(input) {
            Some(i) => i,
            None => {
                return invalid_request("input must be a non-empty string, array of strings, or array of token arrays")
            }
        }
    };
    let dims_field = if mistral { "output_dimension" } else { "dimensions" };
    let requested = match req.get(dims_field) {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(d) => Some(d),
            None => return invalid_request(&format!("{dims_field} must be an integer")),
        },
    };
    let dims = match embedding::dimensions(requested, dims_field) {
        Ok(d) => d,
        Err(message) => return invalid_request(&message),
    };
    let base64 = match req.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(f) if f == "float" => false,
        Some(f) if f == "base64" => true,
        Some(f) => return invalid_request(&format!("encoding_format must be 'float' or 'base64', got {f}")),
    };
    let tokens = inputs.iter().map(|(_, t)| t).sum::<u64>().max(1);
    let data = inputs
        .iter()
        .enumerate()
        .map(|(index, (key, _))| {
            let v = embedding::vector(key, dims);
            EmbeddingItem {
                object: "embedding",
                index,
                embedding: if base64 { Vector::Base64(embedding::base64_f32(&v)) } else { Vector::Float(v) },
            }
        })
        .collect();
    let n = state.next_id();
    Reply::json_value(
        StatusCode::OK,
        &EmbeddingList {
            id: mistral.then(|| format!("embd-mock-{n}")),
            object: "list",
            data,
            model,
            usage: EmbeddingUsage {
                prompt_tokens: tokens,
                completion_tokens: mistral.then_some(0),
                total_tokens: tokens,
            },
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use serde_json::json;

    fn state() -> AppState {
        AppState::new(Config::default())
    }

    fn body_json(r: &Reply) -> Value {
        let (_, body) = r.whole_body().expect("expected body");
        serde_json::from_slice(body).expect("json")
    }

    fn events(r: &Reply) -> Vec<String> {
        r.events().expect("expected stream").iter().map(|e| String::from_utf8_lossy(&e.data).into_owned()).collect()
    }

    fn chat(state: &AppState, behavior: &Behavior, body: &[u8]) -> Reply {
        super::chat(state, behavior, body, None, Dialect::OpenAi)
    }

    #[test]
    fn mistral_dialect_puts_usage_on_the_finish_chunk_and_refuses_stream_options() {
        let body = br#"{"model":"m","stream":true,"messages":[{"role":"user","content":"abcd"}]}"#;
        let ev = events(&super::chat(&state(), &Behavior::default(), body, None, Dialect::Mistral));
        let finish = ev.iter().rev().find(|e| e.contains("finish_reason\":\"stop")).expect("finish chunk");
        assert!(payload(finish)["usage"]["total_tokens"].as_u64().is_some_and(|t| t > 0));
        let with_options = br#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"abcd"}]}"#;
        let r = super::chat(&state(), &Behavior::default(), with_options, None, Dialect::Mistral);
        assert_eq!(r.whole_body().map(|(s, _)| s), Some(StatusCode::UNPROCESSABLE_ENTITY));
    }

    fn payload(event: &str) -> Value {
        let json = event.strip_prefix("data: ").and_then(|s| s.strip_suffix("\n\n")).expect("sse framing");
        serde_json::from_str(json).expect("json")
    }

    #[test]
    fn json_answer_with_usage() {
        let body = br#"{"model":"gpt-x","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there"}]}"#;
        let v = body_json(&chat(&state(), &Behavior::default(), body));
        assert_eq!(v["model"], "gpt-x");
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["message"]["content"], "mock reply to: hello there");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        // 8 + 11 = 19 chars -> 5 tokens
        assert_eq!(v["usage"]["prompt_tokens"], 5);
        assert_eq!(v["usage"]["completion_tokens"], 8);
        assert_eq!(v["usage"]["total_tokens"], 13);
        assert!(v["id"].as_str().is_some_and(|s| s.starts_with("chatcmpl-mock-")));
    }

    #[test]
    fn content_parts_and_echo_limit() {
        let long = "x".repeat(100);
        let body = serde_json::to_vec(&serde_json::json!({
            "messages":[{"role":"user","content":[{"type":"text","text": long},{"type":"image_url","image_url":{"url":"u"}}]}]
        }))
        .expect("json");
        let b = Behavior { completion_tokens: Some(42), ..Behavior::default() };
        let v = body_json(&chat(&state(), &b, &body));
        assert_eq!(v["model"], "mock-model");
        assert_eq!(v["choices"][0]["message"]["content"], format!("mock reply to: {}", "x".repeat(60)));
        assert_eq!(v["usage"]["prompt_tokens"], 25);
        assert_eq!(v["usage"]["completion_tokens"], 42);
    }

    #[test]
    fn bad_requests_get_openai_error_shape() {
        for body in [&b"{nope"[..], br#"{"model":"m"}"#, br#"{"messages":3}"#] {
            let r = chat(&state(), &Behavior::default(), body);
            assert_eq!(r.whole_body().map(|b| b.0), Some(StatusCode::BAD_REQUEST));
            let v = body_json(&r);
            assert_eq!(v["error"]["type"], "invalid_request_error");
            assert!(v["error"]["code"].is_null());
        }
    }

    #[test]
    fn stream_with_usage() {
        let body = br#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"abcd"}]}"#;
        let b = Behavior { chunks: 3, ..Behavior::default() };
        let ev = events(&chat(&state(), &b, body));
        // role, 3 pieces, finish, usage, DONE
        assert_eq!(ev.len(), 7);
        let first = payload(&ev[0]);
        assert_eq!(first["choices"][0]["delta"], serde_json::json!({"role":"assistant","content":""}));
        assert!(first["usage"].is_null() && first.get("usage").is_some());
        let text: String = ev[1..4]
            .iter()
            .map(|e| payload(e)["choices"][0]["delta"]["content"].as_str().unwrap_or("").to_owned())
            .collect();
        assert_eq!(text, "mock reply to: abcd");
        let fin = payload(&ev[4]);
        assert_eq!(fin["choices"][0]["finish_reason"], "stop");
        assert_eq!(fin["choices"][0]["delta"], serde_json::json!({}));
        let usage = payload(&ev[5]);
        assert_eq!(usage["choices"], serde_json::json!([]));
        assert_eq!(usage["usage"], serde_json::json!({"prompt_tokens":1,"completion_tokens":3,"total_tokens":4}));
        assert_eq!(ev[6], "data: [DONE]\n\n");
    }

    #[test]
    fn stream_without_usage_has_no_usage_field() {
        let body = br#"{"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
        let ev = events(&chat(&state(), &Behavior::default(), body));
        assert_eq!(ev.len(), 8 + 3);
        for e in &ev[..ev.len() - 1] {
            assert!(payload(e).get("usage").is_none());
        }
        assert_eq!(ev.last().map(String::as_str), Some("data: [DONE]\n\n"));
    }

    #[test]
    fn stream_delays() {
        let body = br#"{"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
        let b = Behavior { ttft_ms: 100, chunk_delay_ms: 10, chunks: 2, ..Behavior::default() };
        let r = chat(&state(), &b, body);
        let d: Vec<u64> = r.events().expect("expected stream").iter().map(|e| e.delay.as_millis() as u64).collect();
        assert_eq!(d, vec![100, 10, 10, 0, 0]);
    }

    #[test]
    fn tool_call_answers() {
        let body = br#"{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{}}}]}"#;
        let b = Behavior { tool_call: true, ..Behavior::default() };
        let v = body_json(&chat(&state(), &b, body));
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        let call = &v["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(call["function"]["name"], "get_weather");
        assert_eq!(call["function"]["arguments"], r#"{"x":1}"#);
        assert_eq!(call["type"], "function");
        assert!(v["choices"][0]["message"]["content"].is_null());

        // Without the behaviour switch, tools are ignored.
        let v = body_json(&chat(&state(), &Behavior::default(), body));
        assert_eq!(v["choices"][0]["finish_reason"], "stop");

        let stream_body = br#"{"stream":true,"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}"#;
        let ev = events(&chat(&state(), &b, stream_body));
        let first = payload(&ev[0]);
        assert_eq!(first["choices"][0]["delta"]["tool_calls"][0]["function"]["name"], "f");
        let args: String = ev[1..3]
            .iter()
            .map(|e| {
                payload(e)["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        assert_eq!(args, r#"{"x":1}"#);
        assert_eq!(payload(&ev[3])["choices"][0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn tool_messages_must_answer_the_previous_assistant_calls() {
        let call = |id: &str| json!({"id": id, "type": "function", "function": {"name": "f", "arguments": "{}"}});
        let user = json!({"role": "user", "content": "hi"});
        let asks = json!({"role": "assistant", "content": null, "tool_calls": [call("call_1"), call("call_2")]});
        let answer = |id: &str| json!({"role": "tool", "tool_call_id": id, "content": "2"});
        let status = |messages: Value| {
            let body = serde_json::to_vec(&json!({"messages": messages})).expect("json");
            let r = chat(&state(), &Behavior::default(), &body);
            let (status, body) = r.whole_body().expect("body");
            let v: Value = serde_json::from_slice(body).expect("json");
            (status.as_u16(), v["error"]["message"].as_str().unwrap_or("").to_owned())
        };
        let ok = status(json!([user, asks, answer("call_1"), answer("call_2")]));
        assert_eq!(ok.0, 200);
        let (code, msg) = status(json!([user, asks, answer("call_9")]));
        assert_eq!(code, 400);
        assert!(msg.contains("'call_9' not found in 'tool_calls'"), "{msg}");
        let (code, msg) = status(json!([user, answer("call_1")]));
        assert_eq!(code, 400);
        assert!(msg.contains("must be a response to a preceeding message with 'tool_calls'"), "{msg}");
        // A user turn between the calls and the answer breaks the link.
        assert_eq!(status(json!([user, asks, user, answer("call_1")])).0, 400);
        assert_eq!(status(json!([user, asks, {"role": "tool", "content": "2"}])).0, 400);
    }

    #[test]
    fn hit_max_tokens_ends_with_length() {
        let b = Behavior { hit_max_tokens: true, ..Behavior::default() };
        let body = br#"{"messages":[{"role":"user","content":"hi"}]}"#;
        let v = body_json(&chat(&state(), &b, body));
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        let body = br#"{"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
        let ev = events(&chat(&state(), &b, body));
        assert_eq!(payload(&ev[ev.len() - 2])["choices"][0]["finish_reason"], "length");
        // Azure: the deployment names the model when the body does not.
        let r = super::chat(&state(), &Behavior::default(), br#"{"messages":[]}"#, Some("dep"), Dialect::OpenAi);
        assert_eq!(body_json(&r)["model"], "dep");
    }

    #[test]
    fn mock_error_shapes() {
        let v = body_json(&mock_error(StatusCode::TOO_MANY_REQUESTS, &Behavior::default()));
        assert_eq!(v, serde_json::json!({"error":{"message":"mock error 429","type":"mock_error","code":"429"}}));
        let b = Behavior { error_body: Some("raw!".into()), ..Behavior::default() };
        let r = mock_error(StatusCode::BAD_GATEWAY, &b);
        let (status, body) = r.whole_body().expect("expected body");
        assert_eq!(&body[..], b"raw!");
        assert_eq!(status, StatusCode::BAD_GATEWAY);
    }

    fn embeddings(body: &[u8]) -> Reply {
        super::embeddings(&state(), body, None, Dialect::OpenAi)
    }

    #[test]
    fn embeddings_inputs() {
        let v = body_json(&embeddings(br#"{"model":"e","input":"abcdefgh"}"#));
        assert_eq!(v["data"][0]["embedding"].as_array().map(Vec::len), Some(8));
        assert_eq!(v["usage"], serde_json::json!({"prompt_tokens": 2, "total_tokens": 2}));
        assert_eq!(v["model"], "e");
        assert!(v.get("id").is_none());

        let v = body_json(&embeddings(br#"{"input":["a","abcdefgh"]}"#));
        assert_eq!(v["data"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["data"][1]["index"], 1);
        assert_eq!(v["usage"]["total_tokens"], 3);

        let v = body_json(&embeddings(br#"{"input":[1,2,3]}"#));
        assert_eq!(v["data"].as_array().map(Vec::len), Some(1));
        assert_eq!(v["usage"]["prompt_tokens"], 3);

        let v = body_json(&embeddings(br#"{"input":[[1,2],[3]]}"#));
        assert_eq!(v["data"].as_array().map(Vec::len), Some(2));

        for bad in [
            &br#"{"input":[]}"#[..],
            br#"{"input":{}}"#,
            br#"{}"#,
            b"{",
            br#"{"input":"a","dimensions":0}"#,
            br#"{"input":"a","dimensions":"8"}"#,
            br#"{"input":"a","encoding_format":"int8"}"#,
        ] {
            let r = embeddings(bad);
            assert_eq!(r.whole_body().map(|b| b.0), Some(StatusCode::BAD_REQUEST));
        }
    }

    #[test]
    fn embeddings_are_the_shared_vectors_in_float_or_base64() {
        let v = body_json(&embeddings(br#"{"input":["x","y"]}"#));
        // Parsed back, the body's numbers are the shortest f32 forms.
        let want = embedding::json_vector(&embedding::embedding_of(b"y"));
        assert_eq!(v["data"][1]["embedding"], want);
        let v = body_json(&embeddings(br#"{"input":"x","dimensions":20}"#));
        assert_eq!(v["data"][0]["embedding"], embedding::json_vector(&embedding::vector(b"x", 20)));
        let v = body_json(&embeddings(br#"{"input":"x","encoding_format":"base64"}"#));
        assert_eq!(v["data"][0]["embedding"], embedding::base64_f32(&embedding::embedding_of(b"x")));
    }

    #[test]
    fn azure_answers_with_the_deployment_and_mistral_in_its_dialect() {
        let r = super::embeddings(&state(), br#"{"input":"x"}"#, Some("emb-dep"), Dialect::OpenAi);
        assert_eq!(body_json(&r)["model"], "emb-dep");

        let mistral = |body: &[u8]| super::embeddings(&state(), body, None, Dialect::Mistral);
        let v = body_json(&mistral(br#"{"model":"mistral-embed","input":["x","abcdefgh"],"output_dimension":16}"#));
        assert!(v["id"].as_str().is_some_and(|i| i.starts_with("embd-mock-")));
        assert_eq!(v["data"][0]["embedding"].as_array().map(Vec::len), Some(16));
        assert_eq!(v["usage"], serde_json::json!({"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3}));
        let v = body_json(&mistral(br#"{"model":"m","input":"x","encoding_format":"base64","output_dtype":"float"}"#));
        assert!(v["data"][0]["embedding"].is_string());
        for (body, status) in [
            (&br#"{"model":"m","input":"x","dimensions":8}"#[..], 422),
            (br#"{"model":"m","input":"x","user":"u"}"#, 422),
            (br#"{"input":"x"}"#, 422),
            (br#"{"model":"m","input":[[1,2]]}"#, 422),
            (br#"{"model":"m","input":[1,2]}"#, 422),
            (br#"{"model":"m","input":"x","output_dtype":"int8"}"#, 400),
        ] {
            let r = mistral(body);
            assert_eq!(r.whole_body().map(|b| b.0.as_u16()), Some(status), "{body:?}");
        }
        let v = body_json(&mistral(br#"{"model":"m","input":"x","user":"u"}"#));
        assert_eq!(v["error"]["message"], "user: Extra inputs are not permitted");
    }
}

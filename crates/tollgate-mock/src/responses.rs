//! OpenAI Responses API: `POST /v1/responses` (any path ending in
//! `/responses`, so Azure's `/openai/v1/responses` too), JSON or SSE.
//!
//! Shapes follow OpenAI's API reference ("Responses": create, the response
//! object, streaming events) and the SDK's types. The request is read for
//! what the answer depends on: `model` (required), `input` (a string, or
//! items: messages with `input_text`/`output_text` parts or string content,
//! `function_call`, `function_call_output`; others are ignored),
//! `instructions`, `tools` (the first `function` tool is the one called),
//! `max_output_tokens` (at least 16, as OpenAI requires), `reasoning`,
//! `include`, `store` and `previous_response_id`. Every other field the
//! response object echoes comes back as sent, or with OpenAI's default.
//!
//! The answer is [`crate::chat::Answer`], as in every format: the echoed
//! text as one `message` item with an `output_text` part, or (behaviour
//! `tool_call` and a function tool) one `function_call` item; behaviour
//! `hit_max_tokens` makes a text answer `status: "incomplete"` with
//! `incomplete_details: {"reason": "max_output_tokens"}`. With
//! `reasoning.effort` set (and not `"none"`), the output starts with a
//! `reasoning` item, its `summary` holding [`crate::chat::Reasoning`]'s text
//! when `reasoning.summary` is asked (else empty), `encrypted_content` when
//! `include` has `reasoning.encrypted_content`; `usage.output_tokens` then
//! counts the reasoning tokens, reported in
//! `output_tokens_details.reasoning_tokens`.
//!
//! A stream is SSE with `event:` lines, each payload with its
//! `sequence_number` (from 0): `response.created` (after `ttft_ms`),
//! `response.in_progress`, then per output item `response.output_item.added`,
//! its events (reasoning summary: `response.reasoning_summary_part.added`,
//! `response.reasoning_summary_text.delta`s, `...text.done`, `...part.done`;
//! message: `response.content_part.added`, `response.output_text.delta`s,
//! `response.output_text.done`, `response.content_part.done`; function call:
//! `response.function_call_arguments.delta`s and `.done`) and
//! `response.output_item.done`; and last `response.completed` (or
//! `response.incomplete`) with the whole response and its usage. Each delta
//! comes `chunk_delay_ms` after the previous event.
//!
//! Stored responses (`store` not false) are remembered, so a request's
//! `previous_response_id` must name one the mock produced (404
//! `previous_response_not_found` otherwise, as OpenAI answers), and a
//! `function_call_output` must answer a `function_call` of the input or of
//! the previous response (400 otherwise). A follow-up counts the previous
//! conversation in its input tokens.

use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::StatusCode;
use serde_json::{json, Map, Value};

use crate::behavior::Behavior;
use crate::chat::{unix_now, Answer, Content, Prompt, Reasoning, Stop, TOOL_ARGS, TOOL_ARG_PIECES};
use crate::reply::{Reply, TimedEvent};
use crate::sse;
use crate::state::{AppState, StoredResponse};

/// OpenAI's SSE content type.
const EVENT_STREAM: &str = "text/event-stream; charset=utf-8";
/// OpenAI's lower bound on `max_output_tokens`.
const MIN_OUTPUT_TOKENS: u64 = 16;

// ---------- errors ----------

/// `{"error": {"message", "type", "param", "code"}}`.
pub fn error(status: StatusCode, message: &str, param: Option<&str>, code: Option<&str>) -> Reply {
    Reply::json_value(
        status,
        &json!({"error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": code,
        }}),
    )
}

fn invalid(message: &str, param: Option<&str>, code: Option<&str>) -> Reply {
    error(StatusCode::BAD_REQUEST, message, param, code)
}

/// Answer for a behaviour with `status >= 400`: `error_body` verbatim, else
/// the chat endpoint's mock error (plus OpenAI's `param`).
pub fn mock_error(status: StatusCode, behavior: &Behavior) -> Reply {
    match &behavior.error_body {
        Some(raw) => Reply::json(status, raw.clone()),
        None => {
            let code = status.as_u16().to_string();
            Reply::json_value(
                status,
                &json!({"error": {
                    "message": format!("mock error {code}"),
                    "type": "mock_error",
                    "param": null,
                    "code": code,
                }}),
            )
        }
    }
}

// ---------- request ----------

/// A request field, when present and not null.
fn field<'v>(req: &'v Value, key: &str) -> Option<&'v Value> {
    req.get(key).filter(|v| !v.is_null())
}

/// A request field as the response echoes it: as sent, or OpenAI's default.
fn echo(req: &Value, key: &str, default: Value) -> Value {
    field(req, key).cloned().unwrap_or(default)
}

/// What the request's input amounts to.
struct Input<'r> {
    prompt: Prompt,
    /// `call_id`s of the input's `function_call` items.
    calls: Vec<&'r str>,
}

/// Reads `input` (and `instructions`) into the prompt, checking that every
/// `function_call_output` answers a known call.
fn read_input<'r>(req: &'r Value, previous: Option<&StoredResponse>) -> Result<Input<'r>, Reply> {
    let mut prompt = Prompt::default();
    if let Some(p) = previous {
        prompt.chars = p.context_chars;
        prompt.last_user.clone_from(&p.last_user);
    }
    match field(req, "instructions") {
        Some(Value::String(s)) => prompt.add(&Value::String(s.clone())),
        Some(Value::Array(items)) => {
            for i in items {
                if let Some(c) = i.get("content") {
                    prompt.add(c);
                }
            }
        }
        _ => {}
    }
    let mut calls = Vec::new();
    match field(req, "input") {
        None => {}
        Some(text @ Value::String(_)) => prompt.add_message(Some("user"), text),
        Some(Value::Array(items)) => {
            for item in items {
                let role = item.get("role").and_then(Value::as_str);
                let kind = item.get("type").and_then(Value::as_str).or(role.map(|_| "message"));
                match kind {
                    Some("message") => {
                        if let Some(c) = item.get("content") {
                            prompt.add_message(role, c);
                        }
                    }
                    Some("function_call") => {
                        calls.extend(item.get("call_id").and_then(Value::as_str));
                    }
                    Some("function_call_output") => {
                        let id = item.get("call_id").and_then(Value::as_str).unwrap_or("");
                        let known = calls.contains(&id) || previous.is_some_and(|p| p.call_ids.iter().any(|c| c == id));
                        if !known {
                            return Err(invalid(
                                &format!("No tool call found for function call output with call_id {id}."),
                                Some("input"),
                                None,
                            ));
                        }
                        if let Some(out) = item.get("output") {
                            prompt.add(out);
                        }
                    }
                    _ => {}
                }
            }
        }
        Some(_) => {
            return Err(invalid(
                "Invalid type for 'input': expected one of a string or array of input items.",
                Some("input"),
                Some("invalid_type"),
            ))
        }
    }
    Ok(Input { prompt, calls })
}

/// The name of the first function tool (`{"type": "function", "name": ...}`).
fn first_function_tool(req: &Value) -> Option<&str> {
    field(req, "tools")?.as_array()?.iter().find_map(|t| {
        (t.get("type").and_then(Value::as_str) == Some("function"))
            .then(|| t.get("name").and_then(Value::as_str))
            .flatten()
    })
}

/// What the request asks of reasoning: whether there is any, with a summary,
/// with encrypted content.
#[derive(Debug, Clone, Copy, Default)]
struct ReasoningAsk {
    on: bool,
    summary: bool,
    encrypted: bool,
}

impl ReasoningAsk {
    fn of(req: &Value) -> Self {
        let r = field(req, "reasoning");
        let effort = r.and_then(|r| field(r, "effort")).and_then(Value::as_str);
        let summary = r.is_some_and(|r| field(r, "summary").is_some() || field(r, "generate_summary").is_some());
        let encrypted = field(req, "include")
            .and_then(Value::as_array)
            .is_some_and(|i| i.iter().any(|v| v == "reasoning.encrypted_content"));
        ReasoningAsk { on: effort.is_some_and(|e| e != "none"), summary, encrypted }
    }
}

// ---------- answer ----------

/// Ids of one answer's objects.
struct Ids {
    response: String,
    message: String,
    function: String,
    call: String,
    reasoning: String,
}

impl Ids {
    fn new(n: u64) -> Self {
        Ids {
            response: format!("resp_mock_{n}"),
            message: format!("msg_mock_{n}"),
            function: format!("fc_mock_{n}"),
            call: format!("call_mock_{n}"),
            reasoning: format!("rs_mock_{n}"),
        }
    }
}

/// One answer, before serialization.
struct Answered<'r> {
    req: &'r Value,
    model: &'r str,
    answer: Answer<'r>,
    reasoning: Option<(Reasoning, ReasoningAsk)>,
    ids: Ids,
    created_at: u64,
    omit_usage: bool,
}

impl Answered<'_> {
    fn incomplete(&self) -> bool {
        self.answer.stop == Stop::MaxTokens
    }

    fn reasoning_tokens(&self) -> u64 {
        self.reasoning.as_ref().map_or(0, |(r, _)| r.tokens)
    }

    fn usage(&self) -> Value {
        if self.omit_usage {
            return Value::Null;
        }
        let output = self.answer.completion_tokens + self.reasoning_tokens();
        json!({
            "input_tokens": self.answer.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens()},
            "total_tokens": self.answer.prompt_tokens + output,
        })
    }

    /// The reasoning item, with its summary (empty while streaming it).
    fn reasoning_item(&self, done: bool) -> Option<Value> {
        let (r, ask) = self.reasoning.as_ref()?;
        let summary = if ask.summary && done { json!([{"type": "summary_text", "text": r.text}]) } else { json!([]) };
        let mut item = json!({"id": self.ids.reasoning, "type": "reasoning", "summary": summary});
        if ask.encrypted && done {
            item["encrypted_content"] =
                json!(crate::b64::encode(format!("tollgate-mock reasoning:{}", r.text).as_bytes()));
        }
        Some(item)
    }

    fn text_part(text: &str) -> Value {
        json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
    }

    /// The message or function call item: in progress (empty) or done.
    fn answer_item(&self, done: bool) -> Value {
        match &self.answer.content {
            Content::Text(text) => {
                let status = match (done, self.incomplete()) {
                    (false, _) => "in_progress",
                    (true, true) => "incomplete",
                    (true, false) => "completed",
                };
                let content = if done { json!([Self::text_part(text)]) } else { json!([]) };
                json!({
                    "id": self.ids.message, "type": "message", "status": status,
                    "role": "assistant", "content": content,
                })
            }
            Content::ToolCall { name } => json!({
                "id": self.ids.function, "type": "function_call",
                "status": if done { "completed" } else { "in_progress" },
                "arguments": if done { TOOL_ARGS } else { "" },
                "call_id": self.ids.call, "name": name,
            }),
        }
    }

    fn output(&self) -> Vec<Value> {
        self.reasoning_item(true).into_iter().chain([self.answer_item(true)]).collect()
    }

    /// The Response object; `done: false` is its in-progress form (no output,
    /// no usage) that a stream opens with.
    fn response(&self, done: bool) -> Value {
        let req = self.req;
        let status = match (done, self.incomplete()) {
            (false, _) => "in_progress",
            (true, true) => "incomplete",
            (true, false) => "completed",
        };
        let reasoning = field(req, "reasoning");
        json!({
            "id": self.ids.response,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": false,
            "completed_at": (done && !self.incomplete()).then(unix_now),
            "error": null,
            "incomplete_details": (done && self.incomplete())
                .then(|| json!({"reason": "max_output_tokens"})),
            "instructions": echo(req, "instructions", Value::Null),
            "max_output_tokens": echo(req, "max_output_tokens", Value::Null),
            "max_tool_calls": echo(req, "max_tool_calls", Value::Null),
            "metadata": echo(req, "metadata", json!({})),
            "model": self.model,
            "output": if done { self.output() } else { Vec::new() },
            "parallel_tool_calls": echo(req, "parallel_tool_calls", json!(true)),
            "previous_response_id": echo(req, "previous_response_id", Value::Null),
            "prompt_cache_key": echo(req, "prompt_cache_key", Value::Null),
            "reasoning": {
                "effort": reasoning.map_or(Value::Null, |r| echo(r, "effort", Value::Null)),
                "summary": reasoning.map_or(Value::Null, |r| echo(r, "summary", Value::Null)),
            },
            "safety_identifier": echo(req, "safety_identifier", Value::Null),
            "service_tier": "default",
            "store": echo(req, "store", json!(true)),
            "temperature": echo(req, "temperature", json!(1.0)),
            "text": echo(req, "text", json!({"format": {"type": "text"}, "verbosity": "medium"})),
            "tool_choice": echo(req, "tool_choice", json!("auto")),
            "tools": echo(req, "tools", json!([])),
            "top_logprobs": echo(req, "top_logprobs", json!(0)),
            "top_p": echo(req, "top_p", json!(1.0)),
            "truncation": echo(req, "truncation", json!("disabled")),
            "usage": if done { self.usage() } else { Value::Null },
            "user": echo(req, "user", Value::Null),
        })
    }
}

/// `POST .../responses`.
pub fn create(state: &AppState, behavior: &Behavior, body: &[u8]) -> Reply {
    let req: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return invalid("The request body must be a JSON object.", None, None),
        Err(e) => return invalid(&format!("invalid JSON body: {e}"), None, None),
    };
    let Some(model) = field(&req, "model").and_then(Value::as_str) else {
        return invalid("Missing required parameter: 'model'.", Some("model"), Some("missing_required_parameter"));
    };
    if let Some(max) = field(&req, "max_output_tokens") {
        match max.as_u64() {
            Some(m) if m >= MIN_OUTPUT_TOKENS => {}
            _ => {
                return invalid(
                    &format!("Invalid 'max_output_tokens': integer below minimum value. Expected a value >= {MIN_OUTPUT_TOKENS}, but got {max} instead."),
                    Some("max_output_tokens"),
                    Some("integer_below_min_value"),
                )
            }
        }
    }
    let previous = match field(&req, "previous_response_id").and_then(Value::as_str) {
        None => None,
        Some(id) => match state.stored_response(id) {
            Some(p) => Some(p),
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    &format!("Previous response with id '{id}' not found."),
                    Some("previous_response_id"),
                    Some("previous_response_not_found"),
                )
            }
        },
    };
    let input = match read_input(&req, previous.as_ref()) {
        Ok(i) => i,
        Err(reply) => return reply,
    };
    let answer = Answer::new(&input.prompt, behavior, first_function_tool(&req));
    let ask = ReasoningAsk::of(&req);
    let reasoning = ask.on.then(|| (Reasoning::new(&input.prompt, behavior), ask));
    let n = state.next_id();
    let a = Answered {
        req: &req,
        model,
        answer,
        reasoning,
        ids: Ids::new(n),
        created_at: unix_now(),
        omit_usage: behavior.omit_usage,
    };

    if field(&req, "store").and_then(Value::as_bool) != Some(false) {
        let (reply_chars, call_ids) = match &a.answer.content {
            Content::Text(t) => (t.chars().count(), Vec::new()),
            Content::ToolCall { .. } => (0, vec![a.ids.call.clone()]),
        };
        // Calls of the input stay answerable by the follow-up too.
        let call_ids = input.calls.iter().map(|c| (*c).to_owned()).chain(call_ids).collect();
        state.store_response(
            a.ids.response.clone(),
            StoredResponse {
                context_chars: input.prompt.chars + reply_chars,
                last_user: input.prompt.last_user.clone(),
                call_ids,
            },
        );
    }

    let reply = if field(&req, "stream").and_then(Value::as_bool) == Some(true) {
        stream(&a)
    } else {
        Reply::json_value(StatusCode::OK, &a.response(true))
    };
    match HeaderValue::from_str(&format!("req_mock_{n}")) {
        Ok(v) => reply.with_header(HeaderName::from_static("x-request-id"), v),
        Err(_) => reply,
    }
}

// ---------- stream ----------

/// Events of one stream, numbered as they are pushed.
struct Events {
    events: Vec<TimedEvent>,
}

impl Events {
    fn push(&mut self, delay: Duration, mut payload: Value) {
        let seq = self.events.len();
        let kind = payload.get("type").and_then(Value::as_str).unwrap_or("").to_owned();
        if let Value::Object(o) = &mut payload {
            o.insert("sequence_number".into(), json!(seq));
        }
        let data = serde_json::to_vec(&payload).unwrap_or_else(|_| b"{}".to_vec());
        self.events.push(TimedEvent::after(delay, sse::named_event(&kind, &data)));
    }

    fn now(&mut self, payload: Value) {
        self.push(Duration::ZERO, payload);
    }
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(o) => o,
        _ => Map::new(),
    }
}

fn stream(a: &Answered<'_>) -> Reply {
    let pacing = a.answer.pacing;
    let mut ev = Events { events: Vec::with_capacity(a.answer.pieces() + 16) };
    ev.push(pacing.ttft, json!({"type": "response.created", "response": a.response(false)}));
    ev.now(json!({"type": "response.in_progress", "response": a.response(false)}));
    let mut output_index = 0;
    if let (Some((r, ask)), Some(added)) = (&a.reasoning, a.reasoning_item(false)) {
        let item_id = &a.ids.reasoning;
        ev.now(json!({"type": "response.output_item.added", "output_index": output_index, "item": added}));
        if ask.summary {
            let at = |v: Value| {
                let mut o = object(v);
                o.insert("item_id".into(), json!(item_id));
                o.insert("output_index".into(), json!(output_index));
                o.insert("summary_index".into(), json!(0));
                Value::Object(o)
            };
            ev.now(at(json!({"type": "response.reasoning_summary_part.added",
                "part": {"type": "summary_text", "text": ""}})));
            for piece in r.pieces() {
                ev.push(pacing.chunk, at(json!({"type": "response.reasoning_summary_text.delta", "delta": piece})));
            }
            ev.now(at(json!({"type": "response.reasoning_summary_text.done", "text": r.text})));
            ev.now(at(json!({"type": "response.reasoning_summary_part.done",
                "part": {"type": "summary_text", "text": r.text}})));
        }
        ev.now(json!({"type": "response.output_item.done", "output_index": output_index,
            "item": a.reasoning_item(true)}));
        output_index += 1;
    }
    ev.now(json!({"type": "response.output_item.added", "output_index": output_index,
        "item": a.answer_item(false)}));
    match &a.answer.content {
        Content::Text(text) => {
            let at = |v: Value| {
                let mut o = object(v);
                o.insert("item_id".into(), json!(a.ids.message));
                o.insert("output_index".into(), json!(output_index));
                o.insert("content_index".into(), json!(0));
                Value::Object(o)
            };
            ev.now(at(json!({"type": "response.content_part.added", "part": Answered::text_part("")})));
            for piece in a.answer.text_pieces() {
                ev.push(
                    pacing.chunk,
                    at(json!({"type": "response.output_text.delta", "delta": piece, "logprobs": []})),
                );
            }
            ev.now(at(json!({"type": "response.output_text.done", "text": text, "logprobs": []})));
            ev.now(at(json!({"type": "response.content_part.done", "part": Answered::text_part(text)})));
        }
        Content::ToolCall { .. } => {
            let at = |v: Value| {
                let mut o = object(v);
                o.insert("item_id".into(), json!(a.ids.function));
                o.insert("output_index".into(), json!(output_index));
                Value::Object(o)
            };
            for piece in TOOL_ARG_PIECES {
                ev.push(pacing.chunk, at(json!({"type": "response.function_call_arguments.delta", "delta": piece})));
            }
            ev.now(at(json!({"type": "response.function_call_arguments.done", "arguments": TOOL_ARGS})));
        }
    }
    ev.now(json!({"type": "response.output_item.done", "output_index": output_index,
        "item": a.answer_item(true)}));
    let last = if a.incomplete() { "response.incomplete" } else { "response.completed" };
    ev.now(json!({"type": last, "response": a.response(true)}));
    Reply::stream(EVENT_STREAM, ev.events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn state() -> AppState {
        AppState::new(Config::default())
    }

    fn body_json(r: &Reply) -> (u16, Value) {
        let (status, body) = r.whole_body().expect("expected body");
        (status.as_u16(), serde_json::from_slice(body).expect("json"))
    }

    fn create_json(st: &AppState, b: &Behavior, req: Value) -> (u16, Value) {
        body_json(&create(st, b, &serde_json::to_vec(&req).expect("json")))
    }

    /// `(event name, payload)` of each SSE event.
    fn events(r: &Reply) -> Vec<(String, Value)> {
        r.events()
            .expect("expected stream")
            .iter()
            .map(|e| {
                let text = std::str::from_utf8(&e.data).expect("utf8");
                let (name, data) = text
                    .strip_prefix("event: ")
                    .and_then(|t| t.strip_suffix("\n\n"))
                    .and_then(|t| t.split_once("\ndata: "))
                    .expect("sse framing");
                (name.to_owned(), serde_json::from_str(data).expect("json"))
            })
            .collect()
    }

    const TOOL: &str = r#"{"type":"function","name":"get_weather","parameters":{"type":"object"}}"#;

    #[test]
    fn json_text_answer_echoes_the_request() {
        let (status, v) = create_json(
            &state(),
            &Behavior::default(),
            json!({"model": "gpt-x", "instructions": "be brief", "input": "hello there",
                "max_output_tokens": 100, "metadata": {"k": "v"}, "temperature": 0.5}),
        );
        assert_eq!(status, 200);
        assert!(v["id"].as_str().is_some_and(|i| i.starts_with("resp_")));
        assert_eq!(v["object"], "response");
        assert_eq!(v["status"], "completed");
        assert_eq!(v["model"], "gpt-x");
        assert!(v["created_at"].is_u64() && v["completed_at"].is_u64());
        assert_eq!(v["output"].as_array().map(Vec::len), Some(1));
        let msg = &v["output"][0];
        assert_eq!(
            (msg["type"].clone(), msg["role"].clone(), msg["status"].clone()),
            (json!("message"), json!("assistant"), json!("completed"))
        );
        assert!(msg["id"].as_str().is_some_and(|i| i.starts_with("msg_")));
        assert_eq!(
            msg["content"],
            json!([{"type": "output_text", "annotations": [], "logprobs": [], "text": "mock reply to: hello there"}])
        );
        // 8 + 11 = 19 chars -> 5 tokens; 8 chunks by default.
        assert_eq!(
            v["usage"],
            json!({
                "input_tokens": 5, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": 8, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 13,
            })
        );
        assert_eq!(v["instructions"], "be brief");
        assert_eq!(v["max_output_tokens"], 100);
        assert_eq!(v["metadata"], json!({"k": "v"}));
        assert_eq!(v["temperature"], 0.5);
        assert_eq!(v["top_p"], 1.0);
        assert_eq!(v["tools"], json!([]));
        assert_eq!(v["tool_choice"], "auto");
        assert_eq!(v["reasoning"], json!({"effort": null, "summary": null}));
        assert!(v["incomplete_details"].is_null() && v["error"].is_null());
        assert!(v["previous_response_id"].is_null());
    }

    #[test]
    fn input_items_count_and_the_last_user_text_is_echoed() {
        let (_, v) = create_json(
            &state(),
            &Behavior::default(),
            json!({"model": "m", "input": [
                {"role": "developer", "content": "abcd"},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "first"}]},
                {"role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
                {"role": "user", "content": [{"type": "input_text", "text": "second"}, {"type": "input_image", "image_url": "u"}]},
            ]}),
        );
        assert_eq!(v["output"][0]["content"][0]["text"], "mock reply to: second");
        // 4 + 5 + 2 + 6 = 17 chars -> 5 tokens.
        assert_eq!(v["usage"]["input_tokens"], 5);
    }

    #[test]
    fn function_call_and_its_output() {
        let st = state();
        let b = Behavior { tool_call: true, ..Behavior::default() };
        let tools: Value = serde_json::from_str(&format!("[{TOOL}]")).expect("json");
        let (_, v) = create_json(&st, &b, json!({"model": "m", "input": "weather?", "tools": tools}));
        let call = &v["output"][0];
        assert_eq!(call["type"], "function_call");
        assert_eq!(call["name"], "get_weather");
        assert_eq!(call["arguments"], TOOL_ARGS);
        assert_eq!(call["status"], "completed");
        assert!(call["call_id"].as_str().is_some_and(|c| c.starts_with("call_")));
        assert!(call["id"].as_str().is_some_and(|c| c.starts_with("fc_")));
        assert_eq!(v["usage"]["output_tokens"], 2);
        assert_eq!(v["tools"], tools);
        let call_id = call["call_id"].clone();

        // Stateless follow-up: the call and its output in the input.
        let (status, v) = create_json(
            &st,
            &Behavior::default(),
            json!({"model": "m", "tools": tools, "input": [
                {"role": "user", "content": "weather?"},
                {"type": "function_call", "call_id": call_id, "name": "get_weather", "arguments": TOOL_ARGS},
                {"type": "function_call_output", "call_id": call_id, "output": "sunny"},
            ]}),
        );
        assert_eq!(status, 200);
        assert_eq!(v["output"][0]["content"][0]["text"], "mock reply to: weather?");
        // An output for a call nobody made.
        let (status, v) = create_json(
            &st,
            &Behavior::default(),
            json!({"model": "m", "input": [
                {"type": "function_call_output", "call_id": "call_nope", "output": "sunny"},
            ]}),
        );
        assert_eq!(status, 400);
        assert_eq!(v["error"]["message"], "No tool call found for function call output with call_id call_nope.");
        assert_eq!(v["error"]["param"], "input");
        // Tools that are not functions are not called.
        let (_, v) = create_json(&st, &b, json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}));
        assert_eq!(v["output"][0]["type"], "message");
    }

    #[test]
    fn previous_response_id_must_name_a_stored_response() {
        let st = state();
        let b = Behavior { tool_call: true, ..Behavior::default() };
        let tools: Value = serde_json::from_str(&format!("[{TOOL}]")).expect("json");
        let (_, first) = create_json(&st, &b, json!({"model": "m", "input": "abcdefgh", "tools": tools}));
        let call_id = first["output"][0]["call_id"].clone();
        // The output of the previous response's call, with no other input.
        let (status, v) = create_json(
            &st,
            &Behavior::default(),
            json!({"model": "m",
            "previous_response_id": first["id"],
            "input": [{"type": "function_call_output", "call_id": call_id, "output": "abcd"}]}),
        );
        assert_eq!(status, 200);
        assert_eq!(v["previous_response_id"], first["id"]);
        assert_eq!(v["output"][0]["content"][0]["text"], "mock reply to: abcdefgh");
        // The previous conversation counts: 8 + 4 chars -> 3 tokens.
        assert_eq!(v["usage"]["input_tokens"], 3);

        let (status, v) = create_json(
            &st,
            &Behavior::default(),
            json!({"model": "m", "input": "x", "previous_response_id": "resp_elsewhere"}),
        );
        assert_eq!(status, 404);
        assert_eq!(
            v,
            json!({"error": {"message": "Previous response with id 'resp_elsewhere' not found.",
            "type": "invalid_request_error", "param": "previous_response_id", "code": "previous_response_not_found"}})
        );
        // store: false responses cannot be continued.
        let (_, unstored) = create_json(&st, &Behavior::default(), json!({"model": "m", "input": "x", "store": false}));
        assert_eq!(unstored["store"], false);
        let (status, _) = create_json(
            &st,
            &Behavior::default(),
            json!({"model": "m", "input": "y", "previous_response_id": unstored["id"]}),
        );
        assert_eq!(status, 404);
        st.reset();
        let (status, _) = create_json(
            &st,
            &Behavior::default(),
            json!({"model": "m", "input": "y", "previous_response_id": first["id"]}),
        );
        assert_eq!(status, 404);
    }

    #[test]
    fn reasoning_item_summary_and_tokens() {
        let st = state();
        let (_, v) = create_json(
            &st,
            &Behavior::default(),
            json!({"model": "o", "input": "why",
            "reasoning": {"effort": "low"}}),
        );
        assert_eq!(v["output"][0], json!({"id": v["output"][0]["id"], "type": "reasoning", "summary": []}));
        assert_eq!(v["output"][1]["type"], "message");
        // 25-character reasoning text -> 7 tokens, on top of the 8 answer tokens.
        assert_eq!(v["usage"]["output_tokens_details"]["reasoning_tokens"], 7);
        assert_eq!(v["usage"]["output_tokens"], 15);
        assert_eq!(v["reasoning"], json!({"effort": "low", "summary": null}));

        let b = Behavior { reasoning_tokens: Some(50), ..Behavior::default() };
        let (_, v) = create_json(
            &st,
            &b,
            json!({"model": "o", "input": "why",
            "reasoning": {"effort": "high", "summary": "auto"}, "include": ["reasoning.encrypted_content"]}),
        );
        let r = &v["output"][0];
        assert_eq!(r["summary"], json!([{"type": "summary_text", "text": "mock reasoning about: why"}]));
        assert!(r["encrypted_content"].as_str().is_some_and(|e| !e.is_empty()));
        assert_eq!(v["usage"]["output_tokens_details"]["reasoning_tokens"], 50);
        assert_eq!(v["usage"]["output_tokens"], 58);

        let (_, v) = create_json(
            &st,
            &Behavior::default(),
            json!({"model": "o", "input": "why",
            "reasoning": {"effort": "none"}}),
        );
        assert_eq!(v["output"][0]["type"], "message");
        assert_eq!(v["usage"]["output_tokens_details"]["reasoning_tokens"], 0);
    }

    #[test]
    fn hit_max_tokens_is_incomplete() {
        let b = Behavior { hit_max_tokens: true, ..Behavior::default() };
        let (_, v) = create_json(&state(), &b, json!({"model": "m", "input": "x", "max_output_tokens": 16}));
        assert_eq!(v["status"], "incomplete");
        assert_eq!(v["incomplete_details"], json!({"reason": "max_output_tokens"}));
        assert_eq!(v["output"][0]["status"], "incomplete");
        assert!(v["completed_at"].is_null());
    }

    #[test]
    fn bad_requests_get_openai_errors() {
        let st = state();
        let (status, v) = create_json(&st, &Behavior::default(), json!({"input": "x"}));
        assert_eq!(status, 400);
        assert_eq!(v["error"]["code"], "missing_required_parameter");
        assert_eq!(v["error"]["param"], "model");
        let (status, v) =
            create_json(&st, &Behavior::default(), json!({"model": "m", "input": "x", "max_output_tokens": 8}));
        assert_eq!(status, 400);
        assert_eq!(v["error"]["param"], "max_output_tokens");
        let (status, _) = create_json(&st, &Behavior::default(), json!({"model": "m", "input": 3}));
        assert_eq!(status, 400);
        let (status, v) = body_json(&create(&st, &Behavior::default(), b"{nope"));
        assert_eq!(status, 400);
        assert_eq!(v["error"]["type"], "invalid_request_error");
        let (status, v) = body_json(&mock_error(StatusCode::TOO_MANY_REQUESTS, &Behavior::default()));
        assert_eq!(status, 429);
        assert_eq!(
            v,
            json!({"error": {"message": "mock error 429", "type": "mock_error", "param": null, "code": "429"}})
        );
    }

    /// The stream's event names, after checking every event's type, its
    /// sequence number and that the events of an item carry its index/id.
    fn checked_names(ev: &[(String, Value)]) -> Vec<&str> {
        for (i, (name, v)) in ev.iter().enumerate() {
            assert_eq!(v["type"], name.as_str());
            assert_eq!(v["sequence_number"], i, "{name}");
        }
        ev.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn text_stream_events_in_order() {
        let b = Behavior { chunks: 3, ttft_ms: 40, chunk_delay_ms: 5, ..Behavior::default() };
        let r = create(&state(), &b, br#"{"model":"m","input":"abcd","stream":true}"#);
        let delays: Vec<u64> = r.events().expect("stream").iter().map(|e| e.delay.as_millis() as u64).collect();
        assert_eq!(delays, [40, 0, 0, 0, 5, 5, 5, 0, 0, 0, 0]);
        let ev = events(&r);
        assert_eq!(
            checked_names(&ev),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let created = &ev[0].1["response"];
        assert_eq!(
            (created["status"].clone(), created["output"].clone(), created["usage"].clone()),
            (json!("in_progress"), json!([]), Value::Null)
        );
        let item_id = ev[2].1["item"]["id"].clone();
        assert_eq!(
            ev[2].1["item"],
            json!({"id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []})
        );
        for (_, v) in &ev[3..9] {
            assert_eq!(
                (v["item_id"].clone(), v["output_index"].clone(), v["content_index"].clone()),
                (item_id.clone(), json!(0), json!(0))
            );
        }
        let text: String = ev[4..7].iter().map(|(_, v)| v["delta"].as_str().unwrap_or("").to_owned()).collect();
        assert_eq!(text, "mock reply to: abcd");
        assert_eq!(ev[7].1["text"], "mock reply to: abcd");
        assert_eq!(ev[8].1["part"]["text"], "mock reply to: abcd");
        assert_eq!(ev[9].1["item"]["status"], "completed");
        let done = &ev[10].1["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["id"], created["id"]);
        assert_eq!(done["output"][0], ev[9].1["item"]);
        assert_eq!(done["usage"]["output_tokens"], 3);
    }

    #[test]
    fn function_call_and_reasoning_stream_events() {
        let b = Behavior { tool_call: true, ..Behavior::default() };
        let body = format!(
            r#"{{"model":"m","input":"w","stream":true,"tools":[{TOOL}],"reasoning":{{"effort":"medium","summary":"detailed"}}}}"#
        );
        let ev = events(&create(&state(), &b, body.as_bytes()));
        assert_eq!(
            checked_names(&ev),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        assert_eq!(ev[2].1["item"]["summary"], json!([]));
        let summary: String = ev[4..6].iter().map(|(_, v)| v["delta"].as_str().unwrap_or("").to_owned()).collect();
        assert_eq!(summary, "mock reasoning about: w");
        assert_eq!(ev[7].1["part"], json!({"type": "summary_text", "text": summary}));
        assert_eq!(ev[8].1["item"]["summary"][0]["text"], summary.as_str());
        let added = &ev[9].1;
        assert_eq!(added["output_index"], 1);
        assert_eq!(
            (added["item"]["arguments"].clone(), added["item"]["name"].clone()),
            (json!(""), json!("get_weather"))
        );
        let args: String = ev[10..12]
            .iter()
            .map(|(_, v)| {
                assert_eq!(v["item_id"], added["item"]["id"]);
                v["delta"].as_str().unwrap_or("").to_owned()
            })
            .collect();
        assert_eq!(args, TOOL_ARGS);
        assert_eq!(ev[12].1["arguments"], TOOL_ARGS);
        let usage = &ev[14].1["response"]["usage"];
        assert_eq!(usage["output_tokens_details"]["reasoning_tokens"], 6);
        assert_eq!(usage["output_tokens"], 2 + 6);
    }

    #[test]
    fn incomplete_stream_ends_with_response_incomplete() {
        let b = Behavior { hit_max_tokens: true, ..Behavior::default() };
        let ev = events(&create(&state(), &b, br#"{"model":"m","input":"x","stream":true}"#));
        let (name, last) = ev.last().expect("events");
        assert_eq!(name, "response.incomplete");
        assert_eq!(last["response"]["incomplete_details"]["reason"], "max_output_tokens");
        assert_eq!(ev[ev.len() - 2].1["item"]["status"], "incomplete");
    }
}

//! Anthropic Messages API: `POST /v1/messages`, JSON or SSE, and
//! `POST /v1/messages/count_tokens`.
//!
//! Shapes follow Anthropic's API reference ("Messages", "Streaming
//! Messages", "Count tokens", "Extended thinking", "Prompt caching",
//! "Errors": docs.anthropic.com/en/api/messages,
//! /en/docs/build-with-claude/streaming, /en/api/errors). A stream is
//! `message_start` (usage with the input tokens and a placeholder
//! `output_tokens: 1`), then for each content block `content_block_start`
//! (the first one followed by `ping`), its deltas (`thinking_delta`s and a
//! `signature_delta`, `text_delta`s, or `input_json_delta` pieces of a
//! `tool_use` block) and `content_block_stop`; then `message_delta` (stop
//! reason and the final, cumulative `output_tokens`) and `message_stop`, each
//! SSE event named after its `type`.
//!
//! What a real API checks and a translation bug would trip is checked too,
//! with Anthropic's messages (400 `invalid_request_error`): `max_tokens`
//! present, roles `user`/`assistant` only, `tool_use.input` an object, every
//! `tool_result` answering a `tool_use` of the previous assistant turn and
//! every `tool_use` answered in the next turn, the `thinking` config (budget
//! at least 1024 and below `max_tokens`), and that a replayed `thinking` block
//! carries the signature the mock issued for its text ([`thinking_signature`]:
//! derived from the text, so no state is needed).
//!
//! Thinking: with `thinking: {"type": "enabled"|"adaptive"}` the answer starts
//! with a `thinking` block ([`crate::chat::Reasoning`]'s text, streamed in
//! [`crate::chat::REASONING_PIECES`] deltas after `chunk_delay_ms` each); its
//! tokens count in `output_tokens` on top of the answer's.
//!
//! Prompt caching: when the request has `cache_control` marks (on tools,
//! system blocks, message blocks, or top-level for the last block), the
//! prefix up to each mark (in Anthropic's order: tools, system, messages) is
//! cached; a later request whose prefix, at a mark or up to 20 blocks before
//! one, hashes the same reads it. The usage then reports
//! `cache_read_input_tokens` (the longest cached prefix),
//! `cache_creation_input_tokens` (the rest up to the last mark) and
//! `input_tokens` (what follows the last mark), which add up to the
//! request's uncached count (`count_tokens`). The cache has no minimum
//! length and no expiry; `POST /_mock/reset` empties it.

use std::borrow::Cow;

use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{mock_error as native_mock_error, parse, to_json, with_id_header};
use crate::behavior::Behavior;
use crate::chat::{tool_args_value, Answer, Content, Prompt, Reasoning, Stop, DEFAULT_MODEL, TOOL_ARG_PIECES};
use crate::reply::{Reply, TimedEvent};
use crate::sse;
use crate::state::AppState;
use crate::tokens;

/// Anthropic's SSE content type.
const EVENT_STREAM: &str = "text/event-stream; charset=utf-8";

// ---------- errors ----------

/// Anthropic's error `type` for an HTTP status.
fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

/// `{"type":"error","error":{"type":...,"message":...}}`.
pub fn error(status: StatusCode, message: &str) -> Reply {
    Reply::json(
        status,
        to_json(&json!({
            "type": "error",
            "error": {"type": error_type(status), "message": message},
        })),
    )
}

pub fn mock_error(status: StatusCode, behavior: &Behavior) -> Reply {
    native_mock_error(status, behavior, error)
}

// ---------- messages ----------

#[derive(Deserialize)]
struct MessagesRequest<'a> {
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    messages: Vec<Message<'a>>,
    /// A string or an array of text blocks.
    #[serde(default)]
    system: Option<Value>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    thinking: Option<Value>,
    /// Automatic caching: a breakpoint on the last block.
    #[serde(default)]
    cache_control: Option<Value>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default, borrow)]
    role: Option<Cow<'a, str>>,
    /// A string or an array of content blocks.
    #[serde(default)]
    content: Option<Value>,
}

fn stop_reason(stop: Stop) -> &'static str {
    match stop {
        Stop::End => "end_turn",
        Stop::MaxTokens => "max_tokens",
        Stop::ToolUse => "tool_use",
    }
}

/// The signature the mock gives a thinking block: base64 of a SHA-256 over
/// the thinking text, so a replayed block can be checked without state.
pub fn thinking_signature(thinking: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"tollgate-mock thinking signature\0");
    h.update(thinking.as_bytes());
    crate::b64::encode(&h.finalize())
}

/// The blocks of a content that is an array (a string content has none).
fn blocks(content: Option<&Value>) -> &[Value] {
    match content {
        Some(Value::Array(b)) => b,
        _ => &[],
    }
}

fn block_type(b: &Value) -> Option<&str> {
    b.get("type").and_then(Value::as_str)
}

/// The tool_use ids of a turn that the next turn must answer, with the
/// index of the message that asked first.
type Asked<'m> = Option<(usize, Vec<&'m str>)>;

/// Anthropic's "each `tool_use` answered in the next turn" check, when the
/// turn after the asking one ends.
fn all_answered(asked: Asked<'_>, answered: &[&str]) -> Result<(), String> {
    let Some((k, ids)) = asked else {
        return Ok(());
    };
    let missing: Vec<&str> = ids.into_iter().filter(|id| !answered.contains(id)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "messages.{k}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
        missing.join(", ")
    ))
}

/// Anthropic's checks of the conversation (see the module docs). Like
/// Anthropic, consecutive messages of one role make one turn, so tool
/// results may be spread over consecutive user messages.
fn check_messages(messages: &[Message<'_>]) -> Result<(), String> {
    let mut turn_role = None;
    // Asked by the turn before the current one, and answered in this one.
    let mut expected: Asked<'_> = None;
    let mut answered: Vec<&str> = Vec::new();
    // Asked by the current turn.
    let mut asking: Asked<'_> = None;
    for (i, m) in messages.iter().enumerate() {
        let role = match m.role.as_deref() {
            Some(r @ ("user" | "assistant")) => r,
            Some(_) => return Err(format!("messages.{i}.role: Input should be 'user' or 'assistant'")),
            None => return Err(format!("messages.{i}.role: Field required")),
        };
        if turn_role != Some(role) {
            all_answered(expected.take(), &answered)?;
            answered.clear();
            expected = asking.take();
            turn_role = Some(role);
        }
        for (j, b) in blocks(m.content.as_ref()).iter().enumerate() {
            match (role, block_type(b)) {
                ("assistant", Some("tool_use")) => {
                    if !b.get("input").is_some_and(Value::is_object) {
                        return Err(format!(
                            "messages.{i}.content.{j}.tool_use.input: Input should be a valid dictionary"
                        ));
                    }
                    if let Some(id) = b.get("id").and_then(Value::as_str) {
                        asking.get_or_insert_with(|| (i, Vec::new())).1.push(id);
                    }
                }
                ("assistant", Some("thinking")) => {
                    let text = b.get("thinking").and_then(Value::as_str).unwrap_or("");
                    match b.get("signature").and_then(Value::as_str) {
                        None => return Err(format!("messages.{i}.content.{j}.thinking.signature: Field required")),
                        Some(sig) if sig != thinking_signature(text) => {
                            return Err(format!("messages.{i}.content.{j}: Invalid `signature` in `thinking` block"))
                        }
                        Some(_) => {}
                    }
                }
                ("user", Some("tool_result")) => {
                    let id = b.get("tool_use_id").and_then(Value::as_str).unwrap_or("");
                    if !expected.as_ref().is_some_and(|(_, ids)| ids.contains(&id)) {
                        return Err(format!(
                            "messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                        ));
                    }
                    answered.push(id);
                }
                _ => {}
            }
        }
    }
    // The last turn must answer the one before it; a last assistant turn's
    // own tool_use has no next turn yet.
    all_answered(expected, &answered)
}

/// Whether the answer starts with a thinking block, after Anthropic's checks
/// of the `thinking` config (`max_tokens` is `None` for count_tokens).
fn thinking_on(thinking: Option<&Value>, max_tokens: Option<u64>) -> Result<bool, String> {
    let Some(t) = thinking else {
        return Ok(false);
    };
    match t.get("type").and_then(Value::as_str) {
        Some("disabled") => Ok(false),
        Some("adaptive") => Ok(true),
        Some("enabled") => {
            let budget = match t.get("budget_tokens") {
                None => return Err("thinking.enabled.budget_tokens: Field required".into()),
                Some(b) => b.as_u64().ok_or_else(|| {
                    "thinking.enabled.budget_tokens: Input should be a valid integer".to_owned()
                })?,
            };
            if budget < 1024 {
                return Err("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024".into());
            }
            if max_tokens.is_some_and(|m| m <= budget) {
                return Err("`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size".into());
            }
            Ok(true)
        }
        _ => Err("thinking: Input tag found using 'type' does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'".into()),
    }
}

/// The request's prompt, counted as [`Prompt`] does for every format.
fn prompt_of(req: &MessagesRequest<'_>) -> Prompt {
    let mut prompt = Prompt::default();
    if let Some(system) = &req.system {
        prompt.add(system);
    }
    for m in &req.messages {
        if let Some(c) = &m.content {
            prompt.add_message(m.role.as_deref(), c);
        }
    }
    prompt
}

/// Parses and checks a Messages (or count_tokens) request.
fn checked<'a>(body: &'a [u8], count_only: bool) -> Result<(MessagesRequest<'a>, bool), Reply> {
    let req: MessagesRequest<'_> = parse(body, error)?;
    let bad = |m: String| error(StatusCode::BAD_REQUEST, &m);
    if !count_only && req.max_tokens.is_none() {
        return Err(bad("max_tokens: Field required".into()));
    }
    check_messages(&req.messages).map_err(bad)?;
    let thinking = thinking_on(req.thinking.as_ref(), req.max_tokens).map_err(bad)?;
    Ok((req, thinking))
}

// ---------- prompt caching ----------

fn marked(b: &Value) -> bool {
    b.get("cache_control").is_some_and(|c| !c.is_null())
}

/// Whether the request has any `cache_control` mark (a cheap scan, so
/// requests without caching skip the hashing).
fn has_cache_marks(req: &MessagesRequest<'_>) -> bool {
    req.cache_control.as_ref().is_some_and(|c| !c.is_null())
        || req.tools.iter().flatten().any(marked)
        || blocks(req.system.as_ref()).iter().any(marked)
        || req.messages.iter().any(|m| blocks(m.content.as_ref()).iter().any(marked))
}

/// The request's blocks in Anthropic's cache order (tools, system, messages),
/// each with the hash of the prefix ending with it, the prompt characters up
/// to it, and whether a mark ends a cached prefix there.
#[derive(Default)]
struct Prefixes {
    hasher: Sha256,
    chars: usize,
    digests: Vec<[u8; 32]>,
    chars_upto: Vec<usize>,
    marks: Vec<usize>,
    /// `ttl` of the last mark (`"5m"` or `"1h"`).
    last_ttl_1h: bool,
}

impl Prefixes {
    fn push(&mut self, tag: &str, block: &Value) {
        let mark = block.get("cache_control").filter(|c| !c.is_null());
        // The mark itself is not part of the prefix: moving it keeps the hash.
        let canonical = match block {
            Value::Object(o) if mark.is_some() => {
                let mut o = o.clone();
                o.remove("cache_control");
                Value::Object(o).to_string()
            }
            other => other.to_string(),
        };
        self.hasher.update(tag.as_bytes());
        self.hasher.update([0]);
        self.hasher.update(canonical.as_bytes());
        self.hasher.update([0]);
        // The characters Prompt counts: a string, or a block's `text`.
        self.chars += match block {
            Value::String(s) => s.chars().count(),
            b => b.get("text").and_then(Value::as_str).map_or(0, |t| t.chars().count()),
        };
        self.digests.push(self.hasher.clone().finalize().into());
        self.chars_upto.push(self.chars);
        if let Some(m) = mark {
            self.mark(m);
        }
    }

    fn mark(&mut self, cache_control: &Value) {
        if let Some(last) = self.digests.len().checked_sub(1) {
            if self.marks.last() != Some(&last) {
                self.marks.push(last);
            }
            self.last_ttl_1h = cache_control.get("ttl").and_then(Value::as_str) == Some("1h");
        }
    }

    fn content(&mut self, tag: &str, content: &Value) {
        match content {
            Value::Array(bs) => bs.iter().for_each(|b| self.push(tag, b)),
            other => self.push(tag, other),
        }
    }

    fn of(req: &MessagesRequest<'_>, model: &str) -> Self {
        let mut p = Prefixes::default();
        p.hasher.update(model.as_bytes());
        p.hasher.update([0]);
        for t in req.tools.iter().flatten() {
            p.push("tool", t);
        }
        if let Some(s) = &req.system {
            p.content("system", s);
        }
        for m in &req.messages {
            if let Some(c) = &m.content {
                p.content(m.role.as_deref().unwrap_or(""), c);
            }
        }
        if let Some(c) = req.cache_control.as_ref().filter(|c| !c.is_null()) {
            p.mark(c);
        }
        p
    }
}

/// How many blocks before a breakpoint Anthropic looks for a cached prefix.
const CACHE_LOOKBACK: usize = 20;

/// Prompt-cache usage of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CacheUsage {
    input: u64,
    creation: u64,
    read: u64,
    creation_1h: bool,
}

impl CacheUsage {
    fn of(state: &AppState, req: &MessagesRequest<'_>, model: &str, prompt_tokens: u64) -> Option<Self> {
        if !has_cache_marks(req) {
            return None;
        }
        let p = Prefixes::of(req, model);
        let last = *p.marks.last()?;
        // Candidate prefix ends, ascending: each mark and the blocks before it.
        let mut ends: Vec<usize> = p.marks.iter().flat_map(|&m| m.saturating_sub(CACHE_LOOKBACK - 1)..=m).collect();
        ends.sort_unstable();
        ends.dedup();
        let candidates: Vec<[u8; 32]> = ends.iter().map(|&e| p.digests[e]).collect();
        let writes: Vec<[u8; 32]> = p.marks.iter().map(|&m| p.digests[m]).collect();
        let read_chars = state.prompt_cache_lookup(&candidates, &writes).map_or(0, |i| p.chars_upto[ends[i]]);
        let read = tokens::approx_tokens(read_chars);
        let cached = tokens::approx_tokens(p.chars_upto[last]);
        Some(CacheUsage {
            input: prompt_tokens.saturating_sub(cached),
            creation: cached - read,
            read,
            creation_1h: p.last_ttl_1h,
        })
    }
}

/// `usage` of an answer (`output_tokens` as given: 1 in `message_start`).
fn usage(prompt_tokens: u64, cache: Option<CacheUsage>, output_tokens: u64) -> Value {
    match cache {
        None => json!({"input_tokens": prompt_tokens, "output_tokens": output_tokens}),
        Some(c) => {
            let (m5, h1) = if c.creation_1h { (0, c.creation) } else { (c.creation, 0) };
            json!({
                "input_tokens": c.input,
                "cache_creation_input_tokens": c.creation,
                "cache_read_input_tokens": c.read,
                "cache_creation": {"ephemeral_5m_input_tokens": m5, "ephemeral_1h_input_tokens": h1},
                "output_tokens": output_tokens,
            })
        }
    }
}

// ---------- endpoints ----------

/// `POST /v1/messages/count_tokens`: the prompt tokens a Messages request
/// with this body would report (before caching splits them).
pub fn count_tokens(body: &[u8]) -> Reply {
    match checked(body, true) {
        Ok((req, _)) => Reply::json(StatusCode::OK, to_json(&json!({"input_tokens": prompt_of(&req).tokens()}))),
        Err(reply) => reply,
    }
}

/// One answer, before serialization: the optional thinking block and the
/// text or tool call.
struct MessageAnswer<'a> {
    answer: Answer<'a>,
    thinking: Option<(Reasoning, String)>,
    cache: Option<CacheUsage>,
    output_tokens: u64,
}

/// `POST /v1/messages`.
pub fn messages(state: &AppState, behavior: &Behavior, body: &[u8]) -> Reply {
    let (req, thinking) = match checked(body, false) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let prompt = prompt_of(&req);
    let first_tool = req.tools.as_deref().and_then(|t| t.iter().find_map(|t| t.get("name").and_then(Value::as_str)));
    let answer = Answer::new(&prompt, behavior, first_tool);
    let thinking = thinking.then(|| {
        let r = Reasoning::new(&prompt, behavior);
        let sig = thinking_signature(&r.text);
        (r, sig)
    });
    let model = req.model.as_deref().unwrap_or(DEFAULT_MODEL);
    let cache = CacheUsage::of(state, &req, model, answer.prompt_tokens);
    let output_tokens = answer.completion_tokens + thinking.as_ref().map_or(0, |(r, _)| r.tokens);
    let a = MessageAnswer { answer, thinking, cache, output_tokens };
    let n = state.next_id();
    let id = format!("msg_mock_{n}");
    let tool_id = format!("toolu_mock_{n}");

    let reply = if req.stream.unwrap_or(false) {
        stream(&a, &id, model, &tool_id)
    } else {
        let mut content = Vec::with_capacity(2);
        if let Some((r, sig)) = &a.thinking {
            content.push(json!({"type": "thinking", "thinking": r.text, "signature": sig}));
        }
        content.push(match &a.answer.content {
            Content::Text(text) => json!({"type": "text", "text": text}),
            Content::ToolCall { name } => json!({
                "type": "tool_use", "id": tool_id, "name": name, "input": tool_args_value(),
            }),
        });
        Reply::json(
            StatusCode::OK,
            to_json(&json!({
                "id": id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": stop_reason(a.answer.stop),
                "stop_sequence": null,
                "usage": usage(a.answer.prompt_tokens, a.cache, a.output_tokens),
            })),
        )
    };
    with_id_header(reply, "request-id", &format!("req_mock_{n}"))
}

/// `event: <type>` + `data: <json>`; the event is named after the payload's type.
fn event(kind: &str, payload: &Value) -> bytes::Bytes {
    sse::named_event(kind, &to_json(payload))
}

fn stream(a: &MessageAnswer<'_>, id: &str, model: &str, tool_id: &str) -> Reply {
    let answer = &a.answer;
    let pacing = answer.pacing;
    let mut events = Vec::with_capacity(answer.pieces() + 12);
    events.push(TimedEvent::after(
        pacing.ttft,
        event(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": usage(answer.prompt_tokens, a.cache, 1),
            }}),
        ),
    ));
    // (start block, paced deltas, closing deltas) of each content block.
    let mut blocks: Vec<(Value, Vec<Value>, Option<Value>)> = Vec::with_capacity(2);
    if let Some((r, sig)) = &a.thinking {
        blocks.push((
            json!({"type": "thinking", "thinking": "", "signature": ""}),
            r.pieces().into_iter().map(|t| json!({"type": "thinking_delta", "thinking": t})).collect(),
            Some(json!({"type": "signature_delta", "signature": sig})),
        ));
    }
    blocks.push(match answer.content {
        Content::Text(_) => (
            json!({"type": "text", "text": ""}),
            answer.text_pieces().into_iter().map(|t| json!({"type": "text_delta", "text": t})).collect(),
            None,
        ),
        Content::ToolCall { name } => (
            json!({"type": "tool_use", "id": tool_id, "name": name, "input": {}}),
            TOOL_ARG_PIECES.iter().map(|p| json!({"type": "input_json_delta", "partial_json": p})).collect(),
            None,
        ),
    });
    for (index, (start, deltas, closing)) in blocks.into_iter().enumerate() {
        events.push(TimedEvent::now(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": start}),
        )));
        if index == 0 {
            events.push(TimedEvent::now(event("ping", &json!({"type": "ping"}))));
        }
        let delta = |d: Value| {
            event("content_block_delta", &json!({"type": "content_block_delta", "index": index, "delta": d}))
        };
        for d in deltas {
            events.push(TimedEvent::after(pacing.chunk, delta(d)));
        }
        if let Some(d) = closing {
            events.push(TimedEvent::now(delta(d)));
        }
        events
            .push(TimedEvent::now(event("content_block_stop", &json!({"type": "content_block_stop", "index": index}))));
    }
    events.push(TimedEvent::now(event(
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(answer.stop), "stop_sequence": null},
            "usage": {"output_tokens": a.output_tokens},
        }),
    )));
    events.push(TimedEvent::now(event("message_stop", &json!({"type": "message_stop"}))));
    Reply::stream(EVENT_STREAM, events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn state() -> AppState {
        AppState::new(Config::default())
    }

    fn body_json(r: &Reply) -> Value {
        let (_, body) = r.whole_body().expect("expected body");
        serde_json::from_slice(body).expect("json")
    }

    /// (event name, payload) of each SSE event.
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

    const BODY: &[u8] = br#"{"model":"claude-x","max_tokens":100,"system":"be brief","messages":[{"role":"user","content":[{"type":"text","text":"hello there"}]}],"tools":[{"name":"get_weather","input_schema":{"type":"object"}}]}"#;

    #[test]
    fn json_text_answer() {
        let v = body_json(&messages(&state(), &Behavior::default(), BODY));
        assert_eq!(v["type"], "message");
        assert_eq!(v["role"], "assistant");
        assert_eq!(v["model"], "claude-x");
        assert!(v["id"].as_str().is_some_and(|s| s.starts_with("msg_")));
        assert_eq!(v["content"], json!([{"type": "text", "text": "mock reply to: hello there"}]));
        assert_eq!(v["stop_reason"], "end_turn");
        assert!(v["stop_sequence"].is_null());
        // 8 + 11 = 19 chars -> 5 tokens
        assert_eq!(v["usage"], json!({"input_tokens": 5, "output_tokens": 8}));
    }

    #[test]
    fn json_tool_use_and_max_tokens() {
        let b = Behavior { tool_call: true, ..Behavior::default() };
        let v = body_json(&messages(&state(), &b, BODY));
        assert_eq!(v["stop_reason"], "tool_use");
        let block = &v["content"][0];
        assert_eq!(block["type"], "tool_use");
        assert_eq!(block["name"], "get_weather");
        assert_eq!(block["input"], json!({"x": 1}));
        assert!(block["id"].as_str().is_some_and(|s| s.starts_with("toolu_")));
        assert_eq!(v["usage"]["output_tokens"], 2);

        let b = Behavior { hit_max_tokens: true, ..Behavior::default() };
        let v = body_json(&messages(&state(), &b, BODY));
        assert_eq!(v["stop_reason"], "max_tokens");
    }

    #[test]
    fn text_stream_events() {
        let body = br#"{"model":"m","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"abcd"}]}"#;
        let b = Behavior { chunks: 3, ttft_ms: 50, chunk_delay_ms: 5, ..Behavior::default() };
        let r = messages(&state(), &b, body);
        let delays: Vec<u64> = r.events().expect("stream").iter().map(|e| e.delay.as_millis() as u64).collect();
        assert_eq!(delays, vec![50, 0, 0, 5, 5, 5, 0, 0, 0]);
        let ev = events(&r);
        let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        for (name, v) in &ev {
            assert_eq!(v["type"], name.as_str());
        }
        assert_eq!(ev[0].1["message"]["usage"]["input_tokens"], 1);
        assert_eq!(ev[0].1["message"]["content"], json!([]));
        let text: String = ev[3..6]
            .iter()
            .map(|(_, v)| {
                assert_eq!(v["delta"]["type"], "text_delta");
                v["delta"]["text"].as_str().unwrap_or("").to_owned()
            })
            .collect();
        assert_eq!(text, "mock reply to: abcd");
        assert_eq!(ev[7].1["delta"]["stop_reason"], "end_turn");
        assert_eq!(ev[7].1["usage"]["output_tokens"], 3);
    }

    #[test]
    fn tool_stream_events() {
        let mut body: Value = serde_json::from_slice(BODY).expect("json");
        body["stream"] = json!(true);
        let body = serde_json::to_vec(&body).expect("json");
        let b = Behavior { tool_call: true, ..Behavior::default() };
        let ev = events(&messages(&state(), &b, &body));
        assert_eq!(ev.len(), 8);
        let block = &ev[1].1["content_block"];
        assert_eq!(block["type"], "tool_use");
        assert_eq!(block["name"], "get_weather");
        assert_eq!(block["input"], json!({}));
        let args: String = ev[3..5]
            .iter()
            .map(|(_, v)| {
                assert_eq!(v["delta"]["type"], "input_json_delta");
                v["delta"]["partial_json"].as_str().unwrap_or("").to_owned()
            })
            .collect();
        assert_eq!(args, r#"{"x":1}"#);
        assert_eq!(ev[6].1["delta"]["stop_reason"], "tool_use");
    }

    #[test]
    fn errors_are_native() {
        let v = body_json(&mock_error(StatusCode::TOO_MANY_REQUESTS, &Behavior::default()));
        assert_eq!(v, json!({"type": "error", "error": {"type": "rate_limit_error", "message": "mock error 429"}}));
        assert_eq!(error_type(StatusCode::from_u16(529).expect("status")), "overloaded_error");
        assert_eq!(error_type(StatusCode::BAD_GATEWAY), "api_error");
        let r = messages(&state(), &Behavior::default(), b"{nope");
        assert_eq!(r.whole_body().map(|b| b.0), Some(StatusCode::BAD_REQUEST));
        assert_eq!(body_json(&r)["error"]["type"], "invalid_request_error");
    }

    fn status_and_message(r: &Reply) -> (u16, String) {
        let (status, body) = r.whole_body().expect("expected body");
        let v: Value = serde_json::from_slice(body).expect("json");
        assert_eq!(v["type"], "error");
        (status.as_u16(), v["error"]["message"].as_str().unwrap_or("").to_owned())
    }

    fn request(messages: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"model": "m", "max_tokens": 2048, "messages": messages})).expect("json")
    }

    #[test]
    fn requests_are_checked_like_anthropic_does() {
        let run = |body: &[u8]| status_and_message(&messages(&state(), &Behavior::default(), body));
        let no_max = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
        assert_eq!(run(no_max), (400, "max_tokens: Field required".into()));
        // count_tokens does not need max_tokens.
        let v = body_json(&count_tokens(no_max));
        assert_eq!(v, json!({"input_tokens": 1}));

        let (code, msg) = run(&request(json!([{"role": "system", "content": "x"}])));
        assert_eq!((code, msg.as_str()), (400, "messages.0.role: Input should be 'user' or 'assistant'"));

        let user = json!({"role": "user", "content": "hi"});
        let asks = |input: Value| {
            json!({"role": "assistant", "content": [
                {"type": "text", "text": "let me see"},
                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": input},
            ]})
        };
        let result = |id: &str| {
            json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": id, "content": "42"},
            ]})
        };
        let ok = messages(&state(), &Behavior::default(), &request(json!([user, asks(json!({})), result("toolu_1")])));
        assert_eq!(ok.whole_body().map(|b| b.0), Some(StatusCode::OK));

        let (code, msg) = run(&request(json!([user, asks(json!("x")), result("toolu_1")])));
        assert_eq!(
            (code, msg.as_str()),
            (400, "messages.1.content.1.tool_use.input: Input should be a valid dictionary")
        );
        let (code, msg) = run(&request(json!([user, asks(json!({})), result("toolu_9")])));
        assert_eq!(code, 400);
        assert!(
            msg.starts_with("messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_9."),
            "{msg}"
        );
        // A tool result with no tool_use before it.
        let (code, msg) = run(&request(json!([result("toolu_1")])));
        assert!(code == 400 && msg.contains("unexpected `tool_use_id`"), "{msg}");
        // Results spread over consecutive user messages: one turn, as Anthropic merges them.
        let two = json!({"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
            {"type": "tool_use", "id": "toolu_2", "name": "f", "input": {}},
        ]});
        let split = request(json!([user, two, result("toolu_1"), result("toolu_2"), user]));
        let r = messages(&state(), &Behavior::default(), &split);
        assert_eq!(r.whole_body().map(|b| b.0), Some(StatusCode::OK));
        let (code, msg) = run(&request(json!([user, two, result("toolu_2"), user])));
        assert_eq!(code, 400);
        assert!(
            msg.starts_with(
                "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1."
            ),
            "{msg}"
        );
        // A tool_use the next turn does not answer.
        let (code, msg) = run(&request(json!([user, asks(json!({})), user])));
        assert_eq!(code, 400);
        assert!(
            msg.starts_with(
                "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1."
            ),
            "{msg}"
        );
    }

    #[test]
    fn thinking_config_is_checked() {
        let run = |thinking: Value, max: u64| {
            let body = serde_json::to_vec(&json!({"model": "m", "max_tokens": max, "thinking": thinking,
                "messages": [{"role": "user", "content": "hi"}]}))
            .expect("json");
            let r = messages(&state(), &Behavior::default(), &body);
            r.whole_body().map(|b| b.0.as_u16())
        };
        assert_eq!(run(json!({"type": "enabled", "budget_tokens": 1024}), 2048), Some(200));
        assert_eq!(run(json!({"type": "enabled", "budget_tokens": 1000}), 2048), Some(400));
        assert_eq!(run(json!({"type": "enabled", "budget_tokens": 2048}), 2048), Some(400));
        assert_eq!(run(json!({"type": "enabled"}), 2048), Some(400));
        assert_eq!(run(json!({"type": "adaptive"}), 100), Some(200));
        assert_eq!(run(json!({"type": "disabled"}), 100), Some(200));
        assert_eq!(run(json!({"type": "sometimes"}), 100), Some(400));
    }

    const THINKING: &[u8] = br#"{"model":"m","max_tokens":4096,"thinking":{"type":"enabled","budget_tokens":2048},"messages":[{"role":"user","content":"why"}]}"#;

    #[test]
    fn thinking_block_comes_first_and_counts_in_output_tokens() {
        let v = body_json(&messages(&state(), &Behavior::default(), THINKING));
        let text = "mock reasoning about: why";
        assert_eq!(
            v["content"],
            json!([
                {"type": "thinking", "thinking": text, "signature": thinking_signature(text)},
                {"type": "text", "text": "mock reply to: why"},
            ])
        );
        // 8 answer tokens + 7 of the 25-character thinking text.
        assert_eq!(v["usage"], json!({"input_tokens": 1, "output_tokens": 15}));
    }

    #[test]
    fn thinking_stream_has_thinking_and_signature_deltas() {
        let mut body: Value = serde_json::from_slice(THINKING).expect("json");
        body["stream"] = json!(true);
        let b = Behavior { chunks: 2, chunk_delay_ms: 5, ..Behavior::default() };
        let r = messages(&state(), &b, &serde_json::to_vec(&body).expect("json"));
        let delays: Vec<u64> = r.events().expect("stream").iter().map(|e| e.delay.as_millis() as u64).collect();
        let ev = events(&r);
        let kinds: Vec<String> = ev
            .iter()
            .map(|(n, v)| match v["delta"]["type"].as_str() {
                Some(d) => format!("{n}:{d}"),
                None => n.clone(),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta:thinking_delta",
                "content_block_delta:thinking_delta",
                "content_block_delta:signature_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta:text_delta",
                "content_block_delta:text_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        assert_eq!(delays, [0, 0, 0, 5, 5, 0, 0, 0, 5, 5, 0, 0, 0]);
        assert_eq!(ev[1].1["content_block"], json!({"type": "thinking", "thinking": "", "signature": ""}));
        let thinking: String =
            ev[3..5].iter().map(|(_, v)| v["delta"]["thinking"].as_str().unwrap_or("").to_owned()).collect();
        assert_eq!(ev[5].1["delta"]["signature"], thinking_signature(&thinking).as_str());
        assert_eq!((ev[6].1["index"].clone(), ev[7].1["index"].clone()), (json!(0), json!(1)));
        assert_eq!(ev[7].1["content_block"]["type"], "text");
        assert_eq!(ev[11].1["usage"]["output_tokens"], 2 + 7);
    }

    #[test]
    fn replayed_thinking_needs_the_issued_signature() {
        let turn = |thinking: Value| {
            let body = serde_json::to_vec(&json!({"model": "m", "max_tokens": 4096,
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "messages": [
                {"role": "user", "content": "why"},
                {"role": "assistant", "content": [thinking, {"type": "text", "text": "because"}]},
                {"role": "user", "content": "really?"},
            ]}))
            .expect("json");
            let r = messages(&state(), &Behavior::default(), &body);
            let (status, body) = r.whole_body().expect("body");
            let v: Value = serde_json::from_slice(body).expect("json");
            (status.as_u16(), v["error"]["message"].as_str().unwrap_or("").to_owned())
        };
        let text = "mock reasoning about: why";
        let good = json!({"type": "thinking", "thinking": text, "signature": thinking_signature(text)});
        assert_eq!(turn(good).0, 200);
        let forged = json!({"type": "thinking", "thinking": "I changed this", "signature": thinking_signature(text)});
        assert_eq!(turn(forged), (400, "messages.1.content.0: Invalid `signature` in `thinking` block".into()));
        let unsigned = json!({"type": "thinking", "thinking": text});
        assert_eq!(turn(unsigned), (400, "messages.1.content.0.thinking.signature: Field required".into()));
        let redacted = json!({"type": "redacted_thinking", "data": "opaque"});
        assert_eq!(turn(redacted).0, 200);
    }

    #[test]
    fn cache_marks_write_then_read_the_prefix() {
        let st = state();
        let system = "s".repeat(400); // 100 tokens
        let body = |question: &str| {
            serde_json::to_vec(&json!({"model": "m", "max_tokens": 100,
                "system": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
                "messages": [{"role": "user", "content": question}]}))
            .expect("json")
        };
        let usage = |b: &[u8]| body_json(&messages(&st, &Behavior::default(), b))["usage"].clone();
        let count = |b: &[u8]| body_json(&count_tokens(b))["input_tokens"].clone();
        let first = usage(&body("abcdefgh"));
        assert_eq!(first["cache_creation_input_tokens"], 100);
        assert_eq!(first["cache_read_input_tokens"], 0);
        assert_eq!(first["input_tokens"], 2);
        assert_eq!(first["cache_creation"]["ephemeral_5m_input_tokens"], 100);
        assert_eq!(count(&body("abcdefgh")), 102);
        let second = usage(&body("another question"));
        assert_eq!(second["cache_creation_input_tokens"], 0);
        assert_eq!(second["cache_read_input_tokens"], 100);
        assert_eq!(second["input_tokens"], 4);
        // Another model has its own cache.
        let mut other: Value = serde_json::from_slice(&body("x")).expect("json");
        other["model"] = json!("m2");
        let other = usage(&serde_json::to_vec(&other).expect("json"));
        assert_eq!(other["cache_creation_input_tokens"], 100);
        st.reset();
        assert_eq!(usage(&body("x"))["cache_creation_input_tokens"], 100);
    }

    #[test]
    fn a_moved_mark_reads_the_earlier_prefix_and_writes_the_rest() {
        // Claude Code's pattern: the mark moves to the newest turn.
        let st = state();
        let turn = |n: usize| {
            let mut msgs = Vec::new();
            for i in 0..n {
                let role = if i % 2 == 0 { "user" } else { "assistant" };
                let mut block = json!({"type": "text", "text": format!("turn {i} {}", "x".repeat(33))}); // 40 chars
                if i == n - 1 {
                    block["cache_control"] = json!({"type": "ephemeral", "ttl": "1h"});
                }
                msgs.push(json!({"role": role, "content": [block]}));
            }
            serde_json::to_vec(&json!({"model": "m", "max_tokens": 100, "messages": msgs})).expect("json")
        };
        let usage = |b: &[u8]| body_json(&messages(&st, &Behavior::default(), b))["usage"].clone();
        let u = usage(&turn(3));
        assert_eq!(
            (u["cache_creation_input_tokens"].clone(), u["cache_read_input_tokens"].clone()),
            (json!(30), json!(0))
        );
        assert_eq!(u["cache_creation"]["ephemeral_1h_input_tokens"], 30);
        assert_eq!(u["input_tokens"], 0);
        let u = usage(&turn(5));
        assert_eq!(
            (u["cache_creation_input_tokens"].clone(), u["cache_read_input_tokens"].clone()),
            (json!(20), json!(30))
        );
        // Without marks, no cache fields at all (as before).
        let plain = br#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
        assert_eq!(usage(plain), json!({"input_tokens": 1, "output_tokens": 8}));
    }

    #[test]
    fn cache_usage_is_in_message_start() {
        let body = serde_json::to_vec(&json!({"model": "m", "max_tokens": 100, "stream": true,
            "cache_control": {"type": "ephemeral"},
            "messages": [{"role": "user", "content": "abcdefgh"}]}))
        .expect("json");
        let ev = events(&messages(&state(), &Behavior::default(), &body));
        let u = &ev[0].1["message"]["usage"];
        assert_eq!(u["cache_creation_input_tokens"], 2);
        assert_eq!(u["input_tokens"], 0);
        assert_eq!(u["output_tokens"], 1);
    }
}

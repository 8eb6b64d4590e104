//! Anthropic Messages API: `POST /v1/messages`, JSON or SSE.
//!
//! Shapes follow Anthropic's API reference ("Messages", "Streaming
//! Messages", "Errors": docs.anthropic.com/en/api/messages,
//! /en/docs/build-with-claude/streaming, /en/api/errors). A stream is
//! `message_start` (usage with the input tokens and a placeholder
//! `output_tokens: 1`), `content_block_start`, `ping`, the deltas
//! (`text_delta`, or `input_json_delta` pieces of a `tool_use` block),
//! `content_block_stop`, `message_delta` (stop reason and the final, cumulative
//! `output_tokens`) and `message_stop`, each SSE event named after its `type`.

use std::borrow::Cow;

use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{mock_error as native_mock_error, parse, to_json, with_id_header};
use crate::behavior::Behavior;
use crate::chat::{tool_args_value, Answer, Content, Prompt, Stop, DEFAULT_MODEL, TOOL_ARG_PIECES};
use crate::reply::{Reply, TimedEvent};
use crate::sse;
use crate::state::AppState;

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
    #[serde(default, borrow)]
    tools: Option<Vec<Tool<'a>>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default, borrow)]
    role: Option<Cow<'a, str>>,
    /// A string or an array of content blocks.
    #[serde(default)]
    content: Option<Value>,
}

#[derive(Deserialize)]
struct Tool<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
}

fn stop_reason(stop: Stop) -> &'static str {
    match stop {
        Stop::End => "end_turn",
        Stop::MaxTokens => "max_tokens",
        Stop::ToolUse => "tool_use",
    }
}

/// `POST /v1/messages`.
pub fn messages(state: &AppState, behavior: &Behavior, body: &[u8]) -> Reply {
    let req: MessagesRequest<'_> = match parse(body, error) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let mut prompt = Prompt::default();
    if let Some(system) = &req.system {
        prompt.add(system);
    }
    for m in &req.messages {
        if let Some(c) = &m.content {
            prompt.add_message(m.role.as_deref(), c);
        }
    }
    let first_tool = req
        .tools
        .as_deref()
        .and_then(|t| t.iter().find_map(|t| t.name.as_deref()));
    let answer = Answer::new(&prompt, behavior, first_tool);
    let model = req.model.as_deref().unwrap_or(DEFAULT_MODEL);
    let n = state.next_id();
    let id = format!("msg_mock_{n}");
    let tool_id = format!("toolu_mock_{n}");

    let reply = if req.stream.unwrap_or(false) {
        stream(&answer, &id, model, &tool_id)
    } else {
        let block = match &answer.content {
            Content::Text(text) => json!({"type": "text", "text": text}),
            Content::ToolCall { name } => json!({
                "type": "tool_use", "id": tool_id, "name": name, "input": tool_args_value(),
            }),
        };
        Reply::json(
            StatusCode::OK,
            to_json(&json!({
                "id": id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [block],
                "stop_reason": stop_reason(answer.stop),
                "stop_sequence": null,
                "usage": {
                    "input_tokens": answer.prompt_tokens,
                    "output_tokens": answer.completion_tokens,
                },
            })),
        )
    };
    with_id_header(reply, "request-id", &format!("req_mock_{n}"))
}

/// `event: <type>` + `data: <json>`; the event is named after the payload's type.
fn event(kind: &str, payload: &Value) -> bytes::Bytes {
    sse::named_event(kind, &to_json(payload))
}

fn stream(answer: &Answer<'_>, id: &str, model: &str, tool_id: &str) -> Reply {
    let pacing = answer.pacing;
    let mut events = Vec::with_capacity(answer.pieces() + 6);
    events.push(TimedEvent::after(
        pacing.ttft,
        event(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": answer.prompt_tokens, "output_tokens": 1},
            }}),
        ),
    ));
    let block = match answer.content {
        Content::Text(_) => json!({"type": "text", "text": ""}),
        Content::ToolCall { name } => {
            json!({"type": "tool_use", "id": tool_id, "name": name, "input": {}})
        }
    };
    events.push(TimedEvent::now(event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": 0, "content_block": block}),
    )));
    events.push(TimedEvent::now(event("ping", &json!({"type": "ping"}))));
    let deltas: Vec<Value> = match answer.content {
        Content::Text(_) => answer
            .text_pieces()
            .into_iter()
            .map(|t| json!({"type": "text_delta", "text": t}))
            .collect(),
        Content::ToolCall { .. } => TOOL_ARG_PIECES
            .iter()
            .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
            .collect(),
    };
    for delta in deltas {
        events.push(TimedEvent::after(
            pacing.chunk,
            event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": 0, "delta": delta}),
            ),
        ));
    }
    events.push(TimedEvent::now(event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    )));
    events.push(TimedEvent::now(event(
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(answer.stop), "stop_sequence": null},
            "usage": {"output_tokens": answer.completion_tokens},
        }),
    )));
    events.push(TimedEvent::now(event(
        "message_stop",
        &json!({"type": "message_stop"}),
    )));
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
        assert_eq!(
            v["content"],
            json!([{"type": "text", "text": "mock reply to: hello there"}])
        );
        assert_eq!(v["stop_reason"], "end_turn");
        assert!(v["stop_sequence"].is_null());
        // 8 + 11 = 19 chars -> 5 tokens
        assert_eq!(v["usage"], json!({"input_tokens": 5, "output_tokens": 8}));
    }

    #[test]
    fn json_tool_use_and_max_tokens() {
        let b = Behavior {
            tool_call: true,
            ..Behavior::default()
        };
        let v = body_json(&messages(&state(), &b, BODY));
        assert_eq!(v["stop_reason"], "tool_use");
        let block = &v["content"][0];
        assert_eq!(block["type"], "tool_use");
        assert_eq!(block["name"], "get_weather");
        assert_eq!(block["input"], json!({"x": 1}));
        assert!(block["id"]
            .as_str()
            .is_some_and(|s| s.starts_with("toolu_")));
        assert_eq!(v["usage"]["output_tokens"], 2);

        let b = Behavior {
            hit_max_tokens: true,
            ..Behavior::default()
        };
        let v = body_json(&messages(&state(), &b, BODY));
        assert_eq!(v["stop_reason"], "max_tokens");
    }

    #[test]
    fn text_stream_events() {
        let body = br#"{"model":"m","stream":true,"messages":[{"role":"user","content":"abcd"}]}"#;
        let b = Behavior {
            chunks: 3,
            ttft_ms: 50,
            chunk_delay_ms: 5,
            ..Behavior::default()
        };
        let r = messages(&state(), &b, body);
        let delays: Vec<u64> = r
            .events()
            .expect("stream")
            .iter()
            .map(|e| e.delay.as_millis() as u64)
            .collect();
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
        let b = Behavior {
            tool_call: true,
            ..Behavior::default()
        };
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
        let v = body_json(&mock_error(
            StatusCode::TOO_MANY_REQUESTS,
            &Behavior::default(),
        ));
        assert_eq!(
            v,
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "mock error 429"}})
        );
        assert_eq!(
            error_type(StatusCode::from_u16(529).expect("status")),
            "overloaded_error"
        );
        assert_eq!(error_type(StatusCode::BAD_GATEWAY), "api_error");
        let r = messages(&state(), &Behavior::default(), b"{nope");
        assert_eq!(r.whole_body().map(|b| b.0), Some(StatusCode::BAD_REQUEST));
        assert_eq!(body_json(&r)["error"]["type"], "invalid_request_error");
    }
}

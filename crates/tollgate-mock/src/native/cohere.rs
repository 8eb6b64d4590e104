//! Cohere Chat API v2: `POST /v2/chat`, JSON, or SSE when `"stream": true`.
//!
//! Shapes follow Cohere's references ("Chat", "Chat with Streaming",
//! "Streaming for tool use", "Errors": docs.cohere.com/reference/chat,
//! /reference/chat-stream, /docs/streaming, /docs/tool-use-streaming,
//! /reference/errors). A stream is `message-start`, then `content-start`,
//! `content-delta`s and `content-end` for text, or `tool-plan-delta`,
//! `tool-call-start`, `tool-call-delta`s (pieces of the arguments string) and
//! `tool-call-end` for a tool call, and `message-end` with the finish reason
//! and usage; each SSE event is named after its payload's `type`. Usage comes
//! twice, as `billed_units` and `tokens` (the same numbers here). Errors are
//! `{"message": ...}`.
//!
//! Embeddings: `POST /v2/embed` (docs.cohere.com/reference/embed): `model`,
//! `input_type` and `texts` (at most 96), `embedding_types` (float only
//! here, the default), `output_dimension`; answered by type,
//! `{"id","embeddings":{"float":[...]},"texts","meta":{"billed_units":{"input_tokens"}}}`.

use std::borrow::Cow;

use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{mock_error as native_mock_error, parse, to_json};
use crate::behavior::Behavior;
use crate::chat::{first_tool, Answer, Content, Message, Prompt, Stop, Tool, TOOL_ARGS, TOOL_ARG_PIECES};
use crate::embedding;
use crate::reply::{Reply, TimedEvent};
use crate::sse;
use crate::state::AppState;

// ---------- errors ----------

/// `{"message": ...}`.
pub fn error(status: StatusCode, message: &str) -> Reply {
    Reply::json(status, to_json(&json!({"message": message})))
}

pub fn mock_error(status: StatusCode, behavior: &Behavior) -> Reply {
    native_mock_error(status, behavior, error)
}

// ---------- chat ----------

#[derive(Deserialize)]
struct ChatRequest<'a> {
    messages: Vec<Message<'a>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default, borrow)]
    tools: Option<Vec<Tool<'a>>>,
}

fn finish_reason(stop: Stop) -> &'static str {
    match stop {
        Stop::End => "COMPLETE",
        Stop::MaxTokens => "MAX_TOKENS",
        Stop::ToolUse => "TOOL_CALL",
    }
}

fn usage(answer: &Answer<'_>) -> Value {
    let counts = json!({
        "input_tokens": answer.prompt_tokens,
        "output_tokens": answer.completion_tokens,
    });
    json!({"billed_units": counts, "tokens": counts})
}

fn tool_plan(name: &str) -> String {
    format!("I will call {name}.")
}

/// Cohere answers carry UUIDs; this one is derived from the mock's counter.
fn uuid(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// `POST /v2/chat`.
pub fn chat(state: &AppState, behavior: &Behavior, body: &[u8]) -> Reply {
    let req: ChatRequest<'_> = match parse(body, error) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let prompt = Prompt::of_messages(&req.messages);
    let first_tool = first_tool(req.tools.as_deref());
    let answer = Answer::new(&prompt, behavior, first_tool);
    let n = state.next_id();
    let id = uuid(n);
    let call_id = format!("{}-{n}", first_tool.unwrap_or("call"));

    if req.stream.unwrap_or(false) {
        return stream(&answer, &id, &call_id);
    }
    let message = match &answer.content {
        Content::Text(text) => json!({
            "role": "assistant",
            "content": [{"type": "text", "text": text}],
        }),
        Content::ToolCall { name } => json!({
            "role": "assistant",
            "tool_plan": tool_plan(name),
            "tool_calls": [{
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": TOOL_ARGS},
            }],
        }),
    };
    Reply::json(
        StatusCode::OK,
        to_json(&json!({
            "id": id,
            "message": message,
            "finish_reason": finish_reason(answer.stop),
            "usage": usage(&answer),
        })),
    )
}

/// `event: <type>` + `data: <json>`.
fn event(payload: &Value) -> bytes::Bytes {
    let kind = payload["type"].as_str().unwrap_or("unknown");
    sse::named_event(kind, &to_json(payload))
}

fn stream(answer: &Answer<'_>, id: &str, call_id: &str) -> Reply {
    let pacing = answer.pacing;
    let mut events = Vec::with_capacity(answer.pieces() + 6);
    events.push(TimedEvent::after(
        pacing.ttft,
        event(&json!({
            "type": "message-start",
            "id": id,
            "delta": {"message": {
                "role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": [],
            }},
        })),
    ));
    match answer.content {
        Content::Text(_) => {
            events.push(TimedEvent::now(event(&json!({
                "type": "content-start",
                "index": 0,
                "delta": {"message": {"content": {"type": "text", "text": ""}}},
            }))));
            for piece in answer.text_pieces() {
                events.push(TimedEvent::after(
                    pacing.chunk,
                    event(&json!({
                        "type": "content-delta",
                        "index": 0,
                        "delta": {"message": {"content": {"text": piece}}},
                    })),
                ));
            }
            events.push(TimedEvent::now(event(&json!({"type": "content-end", "index": 0}))));
        }
        Content::ToolCall { name } => {
            events.push(TimedEvent::now(event(&json!({
                "type": "tool-plan-delta",
                "delta": {"message": {"tool_plan": tool_plan(name)}},
            }))));
            events.push(TimedEvent::now(event(&json!({
                "type": "tool-call-start",
                "index": 0,
                "delta": {"message": {"tool_calls": {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }}},
            }))));
            for piece in TOOL_ARG_PIECES {
                events.push(TimedEvent::after(
                    pacing.chunk,
                    event(&json!({
                        "type": "tool-call-delta",
                        "index": 0,
                        "delta": {"message": {"tool_calls": {"function": {"arguments": piece}}}},
                    })),
                ));
            }
            events.push(TimedEvent::now(event(&json!({"type": "tool-call-end", "index": 0}))));
        }
    }
    events.push(TimedEvent::now(event(&json!({
        "type": "message-end",
        "delta": {"finish_reason": finish_reason(answer.stop), "usage": usage(answer)},
    }))));
    Reply::sse(events)
}

// ---------- embed ----------

/// Texts in one embed call.
pub const EMBED_MAX_TEXTS: usize = 96;

/// `model` and `input_type` are required (a request without them is a 400)
/// but change nothing in the mock's answer.
#[derive(Deserialize)]
struct EmbedRequest<'a> {
    #[serde(rename = "model")]
    _model: String,
    #[serde(rename = "input_type")]
    _input_type: String,
    #[serde(default, borrow)]
    texts: Option<Vec<Cow<'a, str>>>,
    #[serde(default)]
    images: Option<Value>,
    #[serde(default)]
    inputs: Option<Value>,
    #[serde(default, borrow)]
    embedding_types: Option<Vec<Cow<'a, str>>>,
    #[serde(default)]
    output_dimension: Option<u64>,
}

fn bad_request(message: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, message)
}

/// `POST /v2/embed`.
pub fn embed(state: &AppState, body: &[u8]) -> Reply {
    let req: EmbedRequest<'_> = match parse(body, error) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    if req.images.is_some() || req.inputs.is_some() {
        return bad_request("mock: only texts can be embedded");
    }
    let Some(texts) = req.texts.as_deref().filter(|t| !t.is_empty()) else {
        return bad_request("invalid request: one of texts, images or inputs must be given");
    };
    if texts.len() > EMBED_MAX_TEXTS {
        return bad_request(&format!(
            "invalid request: total number of texts must be at most {EMBED_MAX_TEXTS} - received {}",
            texts.len()
        ));
    }
    if let Some(t) = req.embedding_types.iter().flatten().find(|t| *t != "float") {
        return bad_request(&format!("mock: embedding type {t} is not supported"));
    }
    let dims = match embedding::dimensions(req.output_dimension, "output_dimension") {
        Ok(d) => d,
        Err(message) => return bad_request(&format!("invalid request: {message}")),
    };
    let vectors: Vec<Value> =
        texts.iter().map(|t| embedding::json_vector(&embedding::vector(t.as_bytes(), dims))).collect();
    let tokens = embedding::total_tokens(texts.iter().map(|t| t.as_ref()));
    Reply::json(
        StatusCode::OK,
        to_json(&json!({
            "id": uuid(state.next_id()),
            "embeddings": {"float": vectors},
            "texts": texts,
            "meta": {
                "api_version": {"version": "2"},
                "billed_units": {"input_tokens": tokens},
            },
            "response_type": "embeddings_by_type",
        })),
    )
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

    const BODY: &[u8] = br#"{"model":"command-r","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{}}}]}"#;

    fn with_stream(body: &[u8]) -> Vec<u8> {
        let mut v: Value = serde_json::from_slice(body).expect("json");
        v["stream"] = json!(true);
        serde_json::to_vec(&v).expect("json")
    }

    #[test]
    fn json_text_answer() {
        let v = body_json(&chat(&state(), &Behavior::default(), BODY));
        assert_eq!(
            v["message"],
            json!({"role": "assistant", "content": [{"type": "text", "text": "mock reply to: hello there"}]})
        );
        assert_eq!(v["finish_reason"], "COMPLETE");
        let counts = json!({"input_tokens": 5, "output_tokens": 8});
        assert_eq!(v["usage"], json!({"billed_units": counts, "tokens": counts}));
        assert_eq!(v["id"].as_str().map(str::len), Some(36));
    }

    #[test]
    fn json_tool_call_and_max_tokens() {
        let b = Behavior { tool_call: true, ..Behavior::default() };
        let v = body_json(&chat(&state(), &b, BODY));
        assert_eq!(v["finish_reason"], "TOOL_CALL");
        let call = &v["message"]["tool_calls"][0];
        assert_eq!(call["type"], "function");
        assert_eq!(call["function"]["name"], "get_weather");
        assert_eq!(call["function"]["arguments"], r#"{"x":1}"#);
        assert!(v["message"]["tool_plan"].is_string());
        let b = Behavior { hit_max_tokens: true, ..Behavior::default() };
        assert_eq!(body_json(&chat(&state(), &b, BODY))["finish_reason"], "MAX_TOKENS");
    }

    #[test]
    fn text_stream_events() {
        let b = Behavior { chunks: 3, ttft_ms: 30, chunk_delay_ms: 5, ..Behavior::default() };
        let r = chat(&state(), &b, &with_stream(BODY));
        let delays: Vec<u64> = r.events().expect("stream").iter().map(|e| e.delay.as_millis() as u64).collect();
        assert_eq!(delays, vec![30, 0, 5, 5, 5, 0, 0]);
        let ev = events(&r);
        for (name, v) in &ev {
            assert_eq!(v["type"], name.as_str());
        }
        let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message-start",
                "content-start",
                "content-delta",
                "content-delta",
                "content-delta",
                "content-end",
                "message-end"
            ]
        );
        let text: String = ev[2..5]
            .iter()
            .map(|(_, v)| v["delta"]["message"]["content"]["text"].as_str().unwrap_or("").to_owned())
            .collect();
        assert_eq!(text, "mock reply to: hello there");
        assert_eq!(ev[6].1["delta"]["finish_reason"], "COMPLETE");
        assert_eq!(ev[6].1["delta"]["usage"]["billed_units"]["output_tokens"], 3);
    }

    #[test]
    fn tool_stream_events() {
        let b = Behavior { tool_call: true, ..Behavior::default() };
        let ev = events(&chat(&state(), &b, &with_stream(BODY)));
        let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message-start",
                "tool-plan-delta",
                "tool-call-start",
                "tool-call-delta",
                "tool-call-delta",
                "tool-call-end",
                "message-end"
            ]
        );
        let start = &ev[2].1["delta"]["message"]["tool_calls"];
        assert_eq!(start["function"]["name"], "get_weather");
        assert_eq!(start["type"], "function");
        let args: String = ev[3..5]
            .iter()
            .map(|(_, v)| {
                v["delta"]["message"]["tool_calls"]["function"]["arguments"].as_str().unwrap_or("").to_owned()
            })
            .collect();
        assert_eq!(args, r#"{"x":1}"#);
        assert_eq!(ev[6].1["delta"]["finish_reason"], "TOOL_CALL");
    }

    #[test]
    fn embed_answers_by_type_with_billed_tokens() {
        let body = br#"{"model":"embed-v4.0","texts":["x","abcdefgh"],"input_type":"search_document","embedding_types":["float"],"output_dimension":16}"#;
        let v = body_json(&embed(&state(), body));
        assert_eq!(v["embeddings"]["float"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            v["embeddings"]["float"][1],
            crate::embedding::json_vector(&crate::embedding::vector(b"abcdefgh", 16))
        );
        assert_eq!(v["texts"], json!(["x", "abcdefgh"]));
        assert_eq!(v["meta"]["billed_units"], json!({"input_tokens": 3}));
        assert_eq!(v["response_type"], "embeddings_by_type");
        assert_eq!(v["id"].as_str().map(str::len), Some(36));

        let many = json!({"model": "m", "input_type": "search_document", "texts": vec!["t"; 97]}).to_string();
        for body in [
            &br#"{"model":"m","texts":["x"]}"#[..],
            br#"{"input_type":"search_document","texts":["x"]}"#,
            br#"{"model":"m","input_type":"search_document"}"#,
            br#"{"model":"m","input_type":"search_document","texts":["x"],"embedding_types":["int8"]}"#,
            many.as_bytes(),
        ] {
            let r = embed(&state(), body);
            assert_eq!(r.whole_body().map(|b| b.0), Some(StatusCode::BAD_REQUEST));
            assert!(body_json(&r)["message"].is_string());
        }
    }

    #[test]
    fn errors_are_native() {
        let v = body_json(&mock_error(StatusCode::TOO_MANY_REQUESTS, &Behavior::default()));
        assert_eq!(v, json!({"message": "mock error 429"}));
        let r = chat(&state(), &Behavior::default(), br#"{"model":"m"}"#);
        assert_eq!(r.whole_body().map(|b| b.0), Some(StatusCode::BAD_REQUEST));
    }
}

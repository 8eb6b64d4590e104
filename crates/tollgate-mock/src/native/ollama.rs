//! Ollama's native chat API: `POST /api/chat`.
//!
//! Shapes follow Ollama's API docs ("Generate a chat completion", "Streaming
//! responses", "Errors": github.com/ollama/ollama/blob/main/docs/api.md,
//! docs.ollama.com/api/chat, docs.ollama.com/api/streaming). Streaming is
//! the default: unless the body says `"stream": false` the answer is NDJSON
//! (`application/x-ndjson`), one object per line, text pieces with
//! `done: false`, then a last line with `done: true`, `done_reason`, the token
//! counts and durations (nanoseconds). A tool call arrives whole, with its
//! `arguments` as an object, in one `done: false` line. Errors are
//! `{"error": "..."}`.
//!
//! Embeddings: `POST /api/embed` (docs.ollama.com/api/embed): `model`,
//! `input` (a string or an array of strings), `dimensions`; `truncate`,
//! `keep_alive` and `options` are accepted and ignored. The answer is
//! `{"model","embeddings":[[...]],"total_duration","load_duration","prompt_eval_count"}`.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{mock_error as native_mock_error, parse, to_json};
use crate::behavior::Behavior;
use crate::chat::{first_tool, tool_args_value, Answer, Content, Message, Prompt, Stop, Tool, DEFAULT_MODEL};
use crate::embedding;
use crate::reply::{Reply, TimedEvent};
use crate::state::AppState;

pub const NDJSON: &str = "application/x-ndjson";

// ---------- errors ----------

/// `{"error": "..."}`.
pub fn error(status: StatusCode, message: &str) -> Reply {
    Reply::json(status, to_json(&json!({"error": message})))
}

pub fn mock_error(status: StatusCode, behavior: &Behavior) -> Reply {
    native_mock_error(status, behavior, error)
}

// ---------- chat ----------

#[derive(Deserialize)]
struct ChatRequest<'a> {
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    messages: Vec<Message<'a>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default, borrow)]
    tools: Option<Vec<Tool<'a>>>,
}

fn done_reason(stop: Stop) -> &'static str {
    match stop {
        // Ollama ends a tool call with "stop" too.
        Stop::End | Stop::ToolUse => "stop",
        Stop::MaxTokens => "length",
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `2024-08-07T03:57:33.036588800Z`: RFC 3339 in UTC with nanoseconds, as
/// Ollama's `created_at`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// One NDJSON line.
fn line(value: &Value) -> Bytes {
    let json = to_json(value);
    let mut buf = BytesMut::with_capacity(json.len() + 1);
    buf.put_slice(&json);
    buf.put_u8(b'\n');
    buf.freeze()
}

/// `POST /api/chat`.
pub fn chat(state: &AppState, behavior: &Behavior, body: &[u8]) -> Reply {
    let req: ChatRequest<'_> = match parse(body, error) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let prompt = Prompt::of_messages(&req.messages);
    let first_tool = first_tool(req.tools.as_deref());
    let answer = Answer::new(&prompt, behavior, first_tool);
    let model = req.model.as_deref().unwrap_or(DEFAULT_MODEL);
    // Ids are not part of Ollama's answers; the counter still moves so that
    // every format numbers requests alike.
    let _ = state.next_id();
    let stream = req.stream.unwrap_or(true);
    let created_at = rfc3339(SystemTime::now());

    let pacing = answer.pacing;
    let message = |content: &str| json!({"role": "assistant", "content": content});
    let tool_message = |name: &str| {
        json!({"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": name, "arguments": tool_args_value()}},
        ]})
    };
    let last = |message: Value| {
        json!({
            "model": model,
            "created_at": created_at,
            "message": message,
            "done": true,
            "done_reason": done_reason(answer.stop),
            "total_duration": nanos(answer.duration(stream)),
            "load_duration": 0,
            "prompt_eval_count": answer.prompt_tokens,
            "prompt_eval_duration": if stream { nanos(pacing.ttft) } else { 0 },
            "eval_count": answer.completion_tokens,
            "eval_duration": if stream { nanos(pacing.chunk * answer.pieces() as u32) } else { 0 },
        })
    };

    if !stream {
        let message = match &answer.content {
            Content::Text(text) => message(text),
            Content::ToolCall { name } => tool_message(name),
        };
        return Reply::json(StatusCode::OK, to_json(&last(message)));
    }

    // Pacing (see `crate::chat`): no opening line, so the first piece comes
    // after ttft + chunk_delay; a tool call comes whole when its last argument
    // piece would have.
    let partial =
        |message: Value| line(&json!({"model": model, "created_at": created_at, "message": message, "done": false}));
    let mut events = Vec::with_capacity(answer.pieces() + 1);
    match answer.content {
        Content::Text(_) => {
            for (i, piece) in answer.text_pieces().into_iter().enumerate() {
                let delay = if i == 0 { pacing.ttft + pacing.chunk } else { pacing.chunk };
                events.push(TimedEvent::after(delay, partial(message(piece))));
            }
        }
        Content::ToolCall { name } => {
            events.push(TimedEvent::after(pacing.stream_total(answer.pieces()), partial(tool_message(name))))
        }
    }
    events.push(TimedEvent::now(line(&last(message("")))));
    Reply::stream(NDJSON, events)
}

// ---------- embed ----------

#[derive(Deserialize)]
struct EmbedRequest<'a> {
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    input: Value,
    #[serde(default)]
    dimensions: Option<u64>,
}

/// `POST /api/embed`. `total_duration` is the behaviour's latency.
pub fn embed(state: &AppState, behavior: &Behavior, body: &[u8]) -> Reply {
    let req: EmbedRequest<'_> = match parse(body, error) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let Some(model) = req.model.as_deref().filter(|m| !m.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "model is required");
    };
    // No input (or an empty list) only loads the model: no embeddings.
    let texts: Vec<&str> = match &req.input {
        Value::Null => Vec::new(),
        Value::String(s) => vec![s],
        Value::Array(items) => match items.iter().map(Value::as_str).collect() {
            Some(t) => t,
            None => return error(StatusCode::BAD_REQUEST, "invalid input type"),
        },
        _ => return error(StatusCode::BAD_REQUEST, "invalid input type"),
    };
    let dims = match embedding::dimensions(req.dimensions, "dimensions") {
        Ok(d) => d,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let embeddings: Vec<Value> =
        texts.iter().map(|t| embedding::json_vector(&embedding::vector(t.as_bytes(), dims))).collect();
    let _ = state.next_id();
    Reply::json(
        StatusCode::OK,
        to_json(&json!({
            "model": model,
            "embeddings": embeddings,
            "total_duration": nanos(Duration::from_millis(behavior.latency_ms)),
            "load_duration": 0,
            "prompt_eval_count": embedding::total_tokens(texts.iter().copied()),
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

    fn lines(r: &Reply) -> Vec<Value> {
        r.events()
            .expect("expected stream")
            .iter()
            .map(|e| {
                let text = std::str::from_utf8(&e.data).expect("utf8");
                let json = text.strip_suffix('\n').expect("one line");
                assert!(!json.contains('\n'));
                serde_json::from_str(json).expect("json")
            })
            .collect()
    }

    const BODY: &[u8] = br#"{"model":"llama3.2","stream":false,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{}}}]}"#;
    const STREAM_BODY: &[u8] = br#"{"model":"llama3.2","messages":[{"role":"user","content":"hello there"}],"tools":[{"type":"function","function":{"name":"get_weather"}}]}"#;

    #[test]
    fn created_at_format() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let t = UNIX_EPOCH + Duration::new(1_723_003_053, 36_588_800);
        assert_eq!(rfc3339(t), "2024-08-07T03:57:33.036588800Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // leap day
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn json_answer_when_stream_false() {
        let r = chat(&state(), &Behavior::default(), BODY);
        let v = body_json(&r);
        assert_eq!(v["model"], "llama3.2");
        assert_eq!(v["message"], json!({"role": "assistant", "content": "mock reply to: hello there"}));
        assert_eq!(v["done"], true);
        assert_eq!(v["done_reason"], "stop");
        assert_eq!(v["prompt_eval_count"], 5);
        assert_eq!(v["eval_count"], 8);
        assert!(v["total_duration"].is_u64());
        assert!(v["created_at"].as_str().is_some_and(|s| s.ends_with('Z')));

        let b = Behavior { tool_call: true, ..Behavior::default() };
        let v = body_json(&chat(&state(), &b, BODY));
        assert_eq!(v["message"]["tool_calls"], json!([{"function": {"name": "get_weather", "arguments": {"x": 1}}}]));
        assert_eq!(v["eval_count"], 2);
        let b = Behavior { hit_max_tokens: true, ..Behavior::default() };
        assert_eq!(body_json(&chat(&state(), &b, BODY))["done_reason"], "length");
    }

    #[test]
    fn streams_by_default() {
        let b = Behavior { chunks: 3, ttft_ms: 30, chunk_delay_ms: 5, ..Behavior::default() };
        let r = chat(&state(), &b, STREAM_BODY);
        let Reply::Stream { content_type, .. } = &r else { panic!("expected stream") };
        assert_eq!(*content_type, NDJSON);
        let delays: Vec<u64> = r.events().expect("stream").iter().map(|e| e.delay.as_millis() as u64).collect();
        assert_eq!(delays, vec![35, 5, 5, 0]);
        let l = lines(&r);
        let text: String = l[..3]
            .iter()
            .map(|v| {
                assert_eq!(v["done"], false);
                v["message"]["content"].as_str().unwrap_or("").to_owned()
            })
            .collect();
        assert_eq!(text, "mock reply to: hello there");
        let last = &l[3];
        assert_eq!(last["done"], true);
        assert_eq!(last["done_reason"], "stop");
        assert_eq!(last["message"]["content"], "");
        assert_eq!(last["eval_count"], 3);
        assert_eq!(last["prompt_eval_count"], 3);
        assert_eq!(last["total_duration"], 45_000_000);
    }

    #[test]
    fn tool_call_stream() {
        let b = Behavior { tool_call: true, ..Behavior::default() };
        let l = lines(&chat(&state(), &b, STREAM_BODY));
        assert_eq!(l.len(), 2);
        assert_eq!(l[0]["done"], false);
        assert_eq!(l[0]["message"]["tool_calls"][0]["function"]["arguments"], json!({"x": 1}));
        assert_eq!(l[1]["done"], true);
        assert_eq!(l[1]["eval_count"], 2);
    }

    #[test]
    fn embed_answers_one_vector_per_input() {
        let v = body_json(&embed(
            &state(),
            &Behavior::default(),
            br#"{"model":"all-minilm","input":["x","abcdefgh"],"dimensions":16,"truncate":true}"#,
        ));
        assert_eq!(v["model"], "all-minilm");
        assert_eq!(v["embeddings"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["embeddings"][0], crate::embedding::json_vector(&crate::embedding::vector(b"x", 16)));
        assert_eq!(v["prompt_eval_count"], 3);
        assert!(v["total_duration"].is_u64() && v["load_duration"].is_u64());
        let v = body_json(&embed(&state(), &Behavior::default(), br#"{"model":"m","input":"x"}"#));
        assert_eq!(v["embeddings"][0], crate::embedding::json_vector(&crate::embedding::embedding_of(b"x")));
        for body in [&br#"{"input":"x"}"#[..], br#"{"model":"m","input":[[1,2]]}"#, br#"{"model":"m","input":3}"#] {
            let r = embed(&state(), &Behavior::default(), body);
            assert_eq!(r.whole_body().map(|b| b.0), Some(StatusCode::BAD_REQUEST));
            assert!(body_json(&r)["error"].is_string());
        }
    }

    #[test]
    fn errors_are_native() {
        let v = body_json(&mock_error(StatusCode::TOO_MANY_REQUESTS, &Behavior::default()));
        assert_eq!(v, json!({"error": "mock error 429"}));
        let r = chat(&state(), &Behavior::default(), b"nope");
        assert_eq!(r.whole_body().map(|b| b.0), Some(StatusCode::BAD_REQUEST));
        assert!(body_json(&r)["error"].is_string());
    }
}

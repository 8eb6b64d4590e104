//! Google Gemini `generateContent` / `streamGenerateContent`, on the Gemini
//! API path (`/v1beta/models/{model}:...`) and the Vertex AI one
//! (`/v1/projects/{p}/locations/{l}/publishers/google/models/{model}:...`),
//! which answer alike.
//!
//! Shapes follow Google's references ("Generating content", `GenerateContentResponse`,
//! "API errors": ai.google.dev/api/generate-content, ai.google.dev/gemini-api/docs/troubleshooting;
//! cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.publishers.models/streamGenerateContent).
//! A stream with `?alt=sse` is one `data: <GenerateContentResponse>` event per
//! piece, CRLF-terminated as Google's servers send them, with no `[DONE]`:
//! the last event carries `finishReason` and `usageMetadata`. Without
//! `alt=sse` the same responses come as one JSON array, sent element by
//! element. A function call arrives whole, in a single response.
//! Errors are `{"error":{"code","message","status"}}` with the gRPC status name.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{mock_error as native_mock_error, parse, to_json};
use crate::behavior::Behavior;
use crate::chat::{tool_args_value, Answer, Content, Prompt, Stop};
use crate::reply::{self, Reply, TimedEvent};
use crate::sse;
use crate::state::AppState;

/// How `streamGenerateContent` frames its responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `generateContent`: one JSON response.
    Whole,
    /// `streamGenerateContent?alt=sse`.
    Sse,
    /// `streamGenerateContent` without `alt=sse`: a JSON array.
    JsonArray,
}

impl Framing {
    /// `stream` is whether the method is `streamGenerateContent`; `query` the
    /// request's query string.
    pub fn of(stream: bool, query: Option<&str>) -> Self {
        let alt_sse = query.is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"));
        match (stream, alt_sse) {
            (false, _) => Framing::Whole,
            (true, true) => Framing::Sse,
            (true, false) => Framing::JsonArray,
        }
    }
}

// ---------- errors ----------

/// The gRPC status name Google puts beside an HTTP status.
fn status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        s if s >= 500 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    }
}

/// `{"error":{"code":429,"message":...,"status":"RESOURCE_EXHAUSTED"}}`.
pub fn error(status: StatusCode, message: &str) -> Reply {
    Reply::json(
        status,
        to_json(&json!({"error": {
            "code": status.as_u16(),
            "message": message,
            "status": status_name(status),
        }})),
    )
}

pub fn mock_error(status: StatusCode, behavior: &Behavior) -> Reply {
    native_mock_error(status, behavior, error)
}

// ---------- generateContent ----------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateRequest<'a> {
    #[serde(default)]
    contents: Vec<ContentIn<'a>>,
    /// `{"parts": [{"text": ...}]}`; the REST API also takes snake_case names.
    #[serde(default, alias = "system_instruction")]
    system_instruction: Option<PartsIn>,
    #[serde(default, borrow)]
    tools: Option<Vec<Tool<'a>>>,
}

#[derive(Deserialize)]
struct ContentIn<'a> {
    #[serde(default, borrow)]
    role: Option<Cow<'a, str>>,
    #[serde(default)]
    parts: Value,
}

#[derive(Deserialize)]
struct PartsIn {
    #[serde(default)]
    parts: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tool<'a> {
    #[serde(default, borrow, alias = "function_declarations")]
    function_declarations: Option<Vec<FunctionDeclaration<'a>>>,
}

#[derive(Deserialize)]
struct FunctionDeclaration<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

fn finish_reason(stop: Stop) -> &'static str {
    match stop {
        // Gemini ends a function call with STOP too.
        Stop::End | Stop::ToolUse => "STOP",
        Stop::MaxTokens => "MAX_TOKENS",
    }
}

/// Fields of every response of one answer.
struct Head<'a> {
    model: &'a str,
    response_id: &'a str,
}

/// One `GenerateContentResponse`; `last` adds finishReason and usageMetadata.
fn response(head: &Head<'_>, parts: Value, last: Option<&Answer<'_>>) -> Value {
    let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
    let mut v = json!({"candidates": []});
    if let Some(a) = last {
        candidate["finishReason"] = json!(finish_reason(a.stop));
        v["usageMetadata"] = json!({
            "promptTokenCount": a.prompt_tokens,
            "candidatesTokenCount": a.completion_tokens,
            "totalTokenCount": a.total_tokens(),
        });
    }
    v["candidates"] = json!([candidate]);
    v["modelVersion"] = json!(head.model);
    v["responseId"] = json!(head.response_id);
    v
}

/// `POST .../models/{model}:generateContent` or `:streamGenerateContent`.
pub fn generate(
    state: &AppState,
    behavior: &Behavior,
    body: &[u8],
    model: &str,
    framing: Framing,
) -> Reply {
    let req: GenerateRequest<'_> = match parse(body, error) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let mut prompt = Prompt::default();
    if let Some(s) = &req.system_instruction {
        prompt.add(&s.parts);
    }
    for c in &req.contents {
        prompt.add_message(c.role.as_deref(), &c.parts);
    }
    let first_tool = req.tools.as_deref().and_then(|tools| {
        tools
            .iter()
            .flat_map(|t| t.function_declarations.iter().flatten())
            .map(|f| f.name.as_ref())
            .next()
    });
    let answer = Answer::new(&prompt, behavior, first_tool);
    let response_id = format!("mock-{}", state.next_id());
    let head = Head {
        model,
        response_id: &response_id,
    };

    let function_call =
        |name: &str| json!([{"functionCall": {"name": name, "args": tool_args_value()}}]);
    if framing == Framing::Whole {
        let parts = match &answer.content {
            Content::Text(text) => json!([{"text": text}]),
            Content::ToolCall { name } => function_call(name),
        };
        return Reply::json(
            StatusCode::OK,
            to_json(&response(&head, parts, Some(&answer))),
        );
    }

    // Pacing (see `crate::chat`): no opening event, so the first piece comes
    // after ttft + chunk_delay; a function call comes whole when its last
    // argument piece would have.
    let pacing = answer.pacing;
    let responses: Vec<(std::time::Duration, Value)> = match answer.content {
        Content::Text(_) => {
            let pieces = answer.text_pieces();
            let last = pieces.len() - 1;
            pieces
                .into_iter()
                .enumerate()
                .map(|(i, t)| {
                    let delay = if i == 0 {
                        pacing.ttft + pacing.chunk
                    } else {
                        pacing.chunk
                    };
                    let r = response(&head, json!([{"text": t}]), (i == last).then_some(&answer));
                    (delay, r)
                })
                .collect()
        }
        Content::ToolCall { name } => vec![(
            pacing.stream_total(answer.pieces()),
            response(&head, function_call(name), Some(&answer)),
        )],
    };
    let count = responses.len();
    let events = responses
        .into_iter()
        .enumerate()
        .map(|(i, (delay, r))| {
            let json = to_json(&r);
            let data = match framing {
                Framing::Sse => sse::data_event_crlf(&json),
                _ => array_element(&json, i == 0, i + 1 == count),
            };
            TimedEvent::after(delay, data)
        })
        .collect();
    match framing {
        Framing::Sse => Reply::sse(events),
        _ => Reply::stream(reply::JSON, events),
    }
}

/// One element of a JSON array sent piecewise: `[` before the first, `,\r\n`
/// between elements, `]` after the last.
fn array_element(json: &[u8], first: bool, last: bool) -> Bytes {
    let mut buf = BytesMut::with_capacity(json.len() + 4);
    buf.put_slice(if first { b"[" } else { b",\r\n" });
    buf.put_slice(json);
    if last {
        buf.put_slice(b"]");
    }
    buf.freeze()
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

    fn sse_payloads(r: &Reply) -> Vec<Value> {
        r.events()
            .expect("expected stream")
            .iter()
            .map(|e| {
                let text = std::str::from_utf8(&e.data).expect("utf8");
                let json = text
                    .strip_prefix("data: ")
                    .and_then(|t| t.strip_suffix("\r\n\r\n"))
                    .expect("CRLF sse framing");
                serde_json::from_str(json).expect("json")
            })
            .collect()
    }

    const BODY: &[u8] = br#"{"systemInstruction":{"parts":[{"text":"be brief"}]},"contents":[{"role":"user","parts":[{"text":"hello there"}]}],"tools":[{"functionDeclarations":[{"name":"get_weather","parameters":{"type":"object"}}]}]}"#;

    #[test]
    fn framing_from_method_and_query() {
        assert_eq!(Framing::of(false, Some("alt=sse")), Framing::Whole);
        assert_eq!(Framing::of(true, Some("key=k&alt=sse")), Framing::Sse);
        assert_eq!(Framing::of(true, None), Framing::JsonArray);
        assert_eq!(Framing::of(true, Some("alt=json")), Framing::JsonArray);
    }

    #[test]
    fn json_text_answer() {
        let r = generate(
            &state(),
            &Behavior::default(),
            BODY,
            "gemini-x",
            Framing::Whole,
        );
        let v = body_json(&r);
        let c = &v["candidates"][0];
        assert_eq!(c["content"]["role"], "model");
        assert_eq!(
            c["content"]["parts"],
            json!([{"text": "mock reply to: hello there"}])
        );
        assert_eq!(c["finishReason"], "STOP");
        assert_eq!(c["index"], 0);
        assert_eq!(
            v["usageMetadata"],
            json!({"promptTokenCount": 5, "candidatesTokenCount": 8, "totalTokenCount": 13})
        );
        assert_eq!(v["modelVersion"], "gemini-x");
        assert!(v["responseId"].is_string());
    }

    #[test]
    fn json_function_call_and_max_tokens() {
        let b = Behavior {
            tool_call: true,
            ..Behavior::default()
        };
        let v = body_json(&generate(&state(), &b, BODY, "g", Framing::Whole));
        assert_eq!(
            v["candidates"][0]["content"]["parts"],
            json!([{"functionCall": {"name": "get_weather", "args": {"x": 1}}}])
        );
        assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 2);
        let b = Behavior {
            hit_max_tokens: true,
            ..Behavior::default()
        };
        let v = body_json(&generate(&state(), &b, BODY, "g", Framing::Whole));
        assert_eq!(v["candidates"][0]["finishReason"], "MAX_TOKENS");
    }

    #[test]
    fn sse_stream() {
        let b = Behavior {
            chunks: 3,
            ttft_ms: 50,
            chunk_delay_ms: 5,
            ..Behavior::default()
        };
        let r = generate(&state(), &b, BODY, "g", Framing::Sse);
        let delays: Vec<u64> = r
            .events()
            .expect("stream")
            .iter()
            .map(|e| e.delay.as_millis() as u64)
            .collect();
        assert_eq!(delays, vec![55, 5, 5]);
        let p = sse_payloads(&r);
        assert_eq!(p.len(), 3);
        let text: String = p
            .iter()
            .map(|v| {
                v["candidates"][0]["content"]["parts"][0]["text"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        assert_eq!(text, "mock reply to: hello there");
        assert!(p[0]["candidates"][0].get("finishReason").is_none());
        assert!(p[0].get("usageMetadata").is_none());
        assert_eq!(p[2]["candidates"][0]["finishReason"], "STOP");
        assert_eq!(p[2]["usageMetadata"]["candidatesTokenCount"], 3);
    }

    #[test]
    fn function_call_stream_is_one_response() {
        let b = Behavior {
            tool_call: true,
            ttft_ms: 20,
            chunk_delay_ms: 5,
            ..Behavior::default()
        };
        let r = generate(&state(), &b, BODY, "g", Framing::Sse);
        assert_eq!(r.events().expect("stream")[0].delay.as_millis(), 30);
        let p = sse_payloads(&r);
        assert_eq!(p.len(), 1);
        assert_eq!(
            p[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["name"],
            "get_weather"
        );
        assert_eq!(p[0]["usageMetadata"]["totalTokenCount"], 7);
    }

    #[test]
    fn json_array_stream() {
        let b = Behavior {
            chunks: 2,
            ..Behavior::default()
        };
        let r = generate(&state(), &b, BODY, "g", Framing::JsonArray);
        let body: Vec<u8> = r
            .events()
            .expect("stream")
            .iter()
            .flat_map(|e| e.data.to_vec())
            .collect();
        let v: Value = serde_json::from_slice(&body).expect("a JSON array");
        assert_eq!(v.as_array().map(Vec::len), Some(2));
        assert_eq!(v[1]["candidates"][0]["finishReason"], "STOP");
    }

    #[test]
    fn errors_are_native() {
        let v = body_json(&mock_error(
            StatusCode::TOO_MANY_REQUESTS,
            &Behavior::default(),
        ));
        assert_eq!(
            v,
            json!({"error": {"code": 429, "message": "mock error 429", "status": "RESOURCE_EXHAUSTED"}})
        );
        assert_eq!(status_name(StatusCode::SERVICE_UNAVAILABLE), "UNAVAILABLE");
        let r = generate(&state(), &Behavior::default(), b"[", "g", Framing::Whole);
        assert_eq!(body_json(&r)["error"]["status"], "INVALID_ARGUMENT");
    }
}

//! Amazon Bedrock Converse API: `POST /model/{modelId}/converse` (JSON) and
//! `/converse-stream` (AWS event-stream binary frames).
//!
//! Shapes follow the Bedrock API reference (docs.aws.amazon.com/bedrock/latest/APIReference/:
//! API_runtime_Converse, API_runtime_ConverseStream, API_runtime_ConverseStreamOutput,
//! API_runtime_ContentBlockDeltaEvent, API_runtime_ConverseStreamMetadataEvent) and,
//! for the framing, the AWS event-stream encoding (prelude, headers, payload,
//! CRCs) written with `aws-smithy-eventstream`, the AWS SDKs' own codec. Each
//! frame has the headers `:event-type`, `:content-type: application/json` and
//! `:message-type: event`; its payload is the event's JSON, padded with the
//! `p` field Bedrock adds to event payloads. A text block has no
//! `contentBlockStart`; a tool call opens with one (`toolUseId`, `name`) and
//! streams its input as JSON-string pieces.
//!
//! Errors are `{"message": ...}` with the exception name in `x-amzn-ErrorType`.
//! The model id arrives percent-encoded in the path (`%3A` for `:`, `%2F` in
//! ARNs); it is decoded, and an empty one is refused as Bedrock does.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue as FrameValue, Message};

use super::{mock_error as native_mock_error, parse, percent_decode, to_json, with_id_header};
use crate::behavior::Behavior;
use crate::chat::{tool_args_value, Answer, Content, Prompt, Stop, TOOL_ARG_PIECES};
use crate::reply::{Reply, TimedEvent};
use crate::state::AppState;

pub const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";
/// Padding Bedrock puts in event payloads (clients ignore it).
const PADDING: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGH";

// ---------- errors ----------

/// The Bedrock exception for an HTTP status.
fn exception(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        s if s >= 500 => "InternalServerException",
        _ => "ValidationException",
    }
}

fn with_error_type(reply: Reply, status: StatusCode) -> Reply {
    reply.with_header(
        HeaderName::from_static("x-amzn-errortype"),
        HeaderValue::from_static(exception(status)),
    )
}

/// `{"message": ...}` and `x-amzn-ErrorType: <Exception>`.
pub fn error(status: StatusCode, message: &str) -> Reply {
    with_error_type(
        Reply::json(status, to_json(&json!({"message": message}))),
        status,
    )
}

/// Like the other formats, plus `x-amzn-ErrorType` even with a raw `error_body`.
pub fn mock_error(status: StatusCode, behavior: &Behavior) -> Reply {
    match behavior.error_body {
        Some(_) => with_error_type(native_mock_error(status, behavior, error), status),
        None => native_mock_error(status, behavior, error),
    }
}

// ---------- converse ----------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseRequest {
    #[serde(default)]
    messages: Vec<MessageIn>,
    /// `[{"text": ...}]`.
    #[serde(default)]
    system: Option<Value>,
    #[serde(default)]
    tool_config: Option<ToolConfig>,
}

#[derive(Deserialize)]
struct MessageIn {
    #[serde(default)]
    role: Option<String>,
    /// `[{"text": ...}, {"toolUse": ...}, ...]`.
    #[serde(default)]
    content: Value,
}

#[derive(Deserialize)]
struct ToolConfig {
    #[serde(default)]
    tools: Vec<ToolIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolIn {
    #[serde(default)]
    tool_spec: Option<ToolSpec>,
}

#[derive(Deserialize)]
struct ToolSpec {
    name: String,
}

fn stop_reason(stop: Stop) -> &'static str {
    match stop {
        Stop::End => "end_turn",
        Stop::MaxTokens => "max_tokens",
        Stop::ToolUse => "tool_use",
    }
}

/// `POST /model/{model_id}/converse` (`stream` false) or `/converse-stream`.
/// `model_id` is the raw (percent-encoded) path segment.
pub fn converse(
    state: &AppState,
    behavior: &Behavior,
    body: &[u8],
    model_id: &str,
    stream: bool,
) -> Reply {
    let model_id = percent_decode(model_id);
    if model_id.trim().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "The provided model identifier is invalid.",
        );
    }
    let req: ConverseRequest = match parse(body, error) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let mut prompt = Prompt::default();
    if let Some(system) = &req.system {
        prompt.add(system);
    }
    for m in &req.messages {
        prompt.add_message(m.role.as_deref(), &m.content);
    }
    let first_tool = req.tool_config.as_ref().and_then(|c| {
        c.tools
            .iter()
            .find_map(|t| t.tool_spec.as_ref())
            .map(|s| s.name.as_str())
    });
    let answer = Answer::new(&prompt, behavior, first_tool);
    let n = state.next_id();
    let tool_use_id = format!("tooluse_mock_{n}");
    let usage = json!({
        "inputTokens": answer.prompt_tokens,
        "outputTokens": answer.completion_tokens,
        "totalTokens": answer.total_tokens(),
    });
    let latency_ms = answer.duration(stream).as_millis() as u64;

    let reply = if stream {
        converse_stream(&answer, &tool_use_id, usage, latency_ms)
    } else {
        let block = match &answer.content {
            Content::Text(text) => json!({"text": text}),
            Content::ToolCall { name } => json!({"toolUse": {
                "toolUseId": tool_use_id, "name": name, "input": tool_args_value(),
            }}),
        };
        Reply::json(
            StatusCode::OK,
            to_json(&json!({
                "output": {"message": {"role": "assistant", "content": [block]}},
                "stopReason": stop_reason(answer.stop),
                "usage": usage,
                "metrics": {"latencyMs": latency_ms},
            })),
        )
    };
    with_id_header(
        reply,
        "x-amzn-requestid",
        &format!("00000000-0000-4000-8000-{n:012x}"),
    )
}

/// One event-stream frame carrying the event `event_type` with a JSON payload.
pub fn frame(event_type: &'static str, payload: &Value) -> Bytes {
    let json = to_json(payload);
    let mut buf = Vec::with_capacity(json.len() + 128);
    let message = Message::new(json)
        .add_header(Header::new(
            ":event-type",
            FrameValue::String(event_type.into()),
        ))
        .add_header(Header::new(
            ":content-type",
            FrameValue::String("application/json".into()),
        ))
        .add_header(Header::new(
            ":message-type",
            FrameValue::String("event".into()),
        ));
    // Fails only for oversized headers, which ours are not; an empty frame
    // would then make the client report a framing error, which is fair.
    let _ = write_message_to(&message, &mut buf);
    Bytes::from(buf)
}

/// `frame` with Bedrock's padding field added to the payload.
fn padded(event_type: &'static str, mut payload: Value) -> Bytes {
    payload["p"] = json!(PADDING);
    frame(event_type, &payload)
}

fn converse_stream(answer: &Answer<'_>, tool_use_id: &str, usage: Value, latency_ms: u64) -> Reply {
    let pacing = answer.pacing;
    let mut events = Vec::with_capacity(answer.pieces() + 5);
    events.push(TimedEvent::after(
        pacing.ttft,
        padded("messageStart", json!({"role": "assistant"})),
    ));
    match answer.content {
        Content::Text(_) => {
            for piece in answer.text_pieces() {
                events.push(TimedEvent::after(
                    pacing.chunk,
                    padded(
                        "contentBlockDelta",
                        json!({"contentBlockIndex": 0, "delta": {"text": piece}}),
                    ),
                ));
            }
        }
        Content::ToolCall { name } => {
            events.push(TimedEvent::now(padded(
                "contentBlockStart",
                json!({"contentBlockIndex": 0, "start": {"toolUse": {
                    "toolUseId": tool_use_id, "name": name,
                }}}),
            )));
            for piece in TOOL_ARG_PIECES {
                events.push(TimedEvent::after(
                    pacing.chunk,
                    padded(
                        "contentBlockDelta",
                        json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": piece}}}),
                    ),
                ));
            }
        }
    }
    events.push(TimedEvent::now(padded(
        "contentBlockStop",
        json!({"contentBlockIndex": 0}),
    )));
    events.push(TimedEvent::now(padded(
        "messageStop",
        json!({"stopReason": stop_reason(answer.stop)}),
    )));
    events.push(TimedEvent::now(padded(
        "metadata",
        json!({"usage": usage, "metrics": {"latencyMs": latency_ms}}),
    )));
    Reply::stream(EVENT_STREAM, events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};

    fn state() -> AppState {
        AppState::new(Config::default())
    }

    fn body_json(r: &Reply) -> Value {
        let (_, body) = r.whole_body().expect("expected body");
        serde_json::from_slice(body).expect("json")
    }

    /// (event type, payload) of every frame of a stream, decoded with the SDK's decoder.
    fn frames(r: &Reply) -> Vec<(String, Value)> {
        let mut all: Vec<u8> = Vec::new();
        for e in r.events().expect("expected stream") {
            all.extend_from_slice(&e.data);
        }
        let mut buf = Bytes::from(all);
        let mut decoder = MessageFrameDecoder::new();
        let mut out = Vec::new();
        while !buf.is_empty() {
            match decoder.decode_frame(&mut buf).expect("valid frame") {
                DecodedFrame::Complete(m) => {
                    let header = |name: &str| {
                        m.headers()
                            .iter()
                            .find(|h| h.name().as_str() == name)
                            .and_then(|h| h.value().as_string().ok())
                            .map(|s| s.as_str().to_owned())
                            .expect("header")
                    };
                    assert_eq!(header(":message-type"), "event");
                    assert_eq!(header(":content-type"), "application/json");
                    let payload = serde_json::from_slice(m.payload()).expect("json payload");
                    out.push((header(":event-type"), payload));
                }
                DecodedFrame::Incomplete => panic!("truncated frame"),
            }
        }
        out
    }

    const BODY: &[u8] = br#"{"system":[{"text":"be brief"}],"messages":[{"role":"user","content":[{"text":"hello there"}]}],"inferenceConfig":{"maxTokens":100},"toolConfig":{"tools":[{"toolSpec":{"name":"get_weather","inputSchema":{"json":{"type":"object"}}}}]}}"#;
    const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1%3A0";

    #[test]
    fn json_text_answer() {
        let b = Behavior {
            latency_ms: 7,
            ..Behavior::default()
        };
        let r = converse(&state(), &b, BODY, MODEL, false);
        let v = body_json(&r);
        assert_eq!(
            v["output"],
            json!({"message": {"role": "assistant", "content": [{"text": "mock reply to: hello there"}]}})
        );
        assert_eq!(v["stopReason"], "end_turn");
        assert_eq!(
            v["usage"],
            json!({"inputTokens": 5, "outputTokens": 8, "totalTokens": 13})
        );
        assert_eq!(v["metrics"], json!({"latencyMs": 7}));
    }

    #[test]
    fn json_tool_use() {
        let b = Behavior {
            tool_call: true,
            ..Behavior::default()
        };
        let v = body_json(&converse(&state(), &b, BODY, MODEL, false));
        assert_eq!(v["stopReason"], "tool_use");
        let tool = &v["output"]["message"]["content"][0]["toolUse"];
        assert_eq!(tool["name"], "get_weather");
        assert_eq!(tool["input"], json!({"x": 1}));
        assert!(tool["toolUseId"].is_string());
    }

    #[test]
    fn text_stream_frames() {
        let b = Behavior {
            chunks: 3,
            ttft_ms: 40,
            chunk_delay_ms: 5,
            ..Behavior::default()
        };
        let r = converse(&state(), &b, BODY, MODEL, true);
        let delays: Vec<u64> = r
            .events()
            .expect("stream")
            .iter()
            .map(|e| e.delay.as_millis() as u64)
            .collect();
        assert_eq!(delays, vec![40, 5, 5, 5, 0, 0, 0]);
        let f = frames(&r);
        let kinds: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "messageStart",
                "contentBlockDelta",
                "contentBlockDelta",
                "contentBlockDelta",
                "contentBlockStop",
                "messageStop",
                "metadata"
            ]
        );
        assert_eq!(f[0].1["role"], "assistant");
        let text: String = f[1..4]
            .iter()
            .map(|(_, v)| {
                assert_eq!(v["contentBlockIndex"], 0);
                v["delta"]["text"].as_str().unwrap_or("").to_owned()
            })
            .collect();
        assert_eq!(text, "mock reply to: hello there");
        assert_eq!(f[5].1["stopReason"], "end_turn");
        assert_eq!(
            f[6].1["usage"],
            json!({"inputTokens": 5, "outputTokens": 3, "totalTokens": 8})
        );
        assert_eq!(f[6].1["metrics"]["latencyMs"], 40 + 3 * 5);
    }

    #[test]
    fn tool_stream_frames() {
        let b = Behavior {
            tool_call: true,
            ..Behavior::default()
        };
        let f = frames(&converse(&state(), &b, BODY, MODEL, true));
        assert_eq!(f[1].0, "contentBlockStart");
        assert_eq!(f[1].1["start"]["toolUse"]["name"], "get_weather");
        let input: String = f[2..4]
            .iter()
            .map(|(_, v)| {
                v["delta"]["toolUse"]["input"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        assert_eq!(input, r#"{"x":1}"#);
        assert_eq!(f[4].0, "contentBlockStop");
        assert_eq!(f[5].1["stopReason"], "tool_use");
        assert_eq!(f[6].1["usage"]["outputTokens"], 2);
    }

    #[test]
    fn errors_are_native() {
        let r = mock_error(StatusCode::TOO_MANY_REQUESTS, &Behavior::default());
        let Reply::Body { headers, .. } = &r else {
            panic!("expected body")
        };
        assert_eq!(
            headers[0],
            (
                HeaderName::from_static("x-amzn-errortype"),
                HeaderValue::from_static("ThrottlingException")
            )
        );
        assert_eq!(body_json(&r), json!({"message": "mock error 429"}));
        let raw = Behavior {
            error_body: Some("{}".into()),
            ..Behavior::default()
        };
        let r = mock_error(StatusCode::SERVICE_UNAVAILABLE, &raw);
        let Reply::Body { headers, body, .. } = &r else {
            panic!("expected body")
        };
        assert_eq!(&body[..], b"{}");
        assert_eq!(headers[0].1, "ServiceUnavailableException");
        let r = converse(&state(), &Behavior::default(), BODY, "", false);
        assert_eq!(r.whole_body().map(|b| b.0), Some(StatusCode::BAD_REQUEST));
        let r = converse(&state(), &Behavior::default(), b"{", MODEL, false);
        assert_eq!(r.whole_body().map(|b| b.0), Some(StatusCode::BAD_REQUEST));
    }
}

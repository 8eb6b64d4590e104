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
//! Embeddings: `POST /model/{modelId}/invoke` (InvokeModel) for Amazon Titan
//! Text Embeddings (docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html:
//! one `inputText`, `dimensions`, `normalize` and `embeddingTypes` from v2;
//! `{"embedding","inputTextTokenCount","embeddingsByType"}`) and Cohere Embed
//! (model-parameters-embed-v3.html, model-parameters-embed-v4.html: `texts`
//! (at most 96) and `input_type` required, `output_dimension` from v4;
//! `embeddings` a list of vectors (`response_type: embeddings_floats`), or by
//! type when `embedding_types` is set or the model is v4). Keys a model does
//! not take are refused with Bedrock's "extraneous key" 400, and the input
//! token count comes in `x-amzn-bedrock-input-token-count`, as Bedrock sends
//! it. InvokeModel answers no other model family.
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

use super::{mock_error as native_mock_error, parse, percent_decode, to_json, unknown_key, with_id_header};
use crate::behavior::Behavior;
use crate::chat::{tool_args_value, Answer, Content, Prompt, Stop, TOOL_ARG_PIECES};
use crate::embedding;
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
    reply.with_header(HeaderName::from_static("x-amzn-errortype"), HeaderValue::from_static(exception(status)))
}

/// `{"message": ...}` and `x-amzn-ErrorType: <Exception>`.
pub fn error(status: StatusCode, message: &str) -> Reply {
    with_error_type(Reply::json(status, to_json(&json!({"message": message}))), status)
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
pub fn converse(state: &AppState, behavior: &Behavior, body: &[u8], model_id: &str, stream: bool) -> Reply {
    let model_id = percent_decode(model_id);
    if model_id.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "The provided model identifier is invalid.");
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
    let first_tool = req
        .tool_config
        .as_ref()
        .and_then(|c| c.tools.iter().find_map(|t| t.tool_spec.as_ref()).map(|s| s.name.as_str()));
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
    with_id_header(reply, "x-amzn-requestid", &format!("00000000-0000-4000-8000-{n:012x}"))
}

/// One event-stream frame carrying the event `event_type` with a JSON payload.
pub fn frame(event_type: &'static str, payload: &Value) -> Bytes {
    let json = to_json(payload);
    let mut buf = Vec::with_capacity(json.len() + 128);
    let message = Message::new(json)
        .add_header(Header::new(":event-type", FrameValue::String(event_type.into())))
        .add_header(Header::new(":content-type", FrameValue::String("application/json".into())))
        .add_header(Header::new(":message-type", FrameValue::String("event".into())));
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
    events.push(TimedEvent::after(pacing.ttft, padded("messageStart", json!({"role": "assistant"}))));
    match answer.content {
        Content::Text(_) => {
            for piece in answer.text_pieces() {
                events.push(TimedEvent::after(
                    pacing.chunk,
                    padded("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": piece}})),
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
    events.push(TimedEvent::now(padded("contentBlockStop", json!({"contentBlockIndex": 0}))));
    events.push(TimedEvent::now(padded("messageStop", json!({"stopReason": stop_reason(answer.stop)}))));
    events.push(TimedEvent::now(padded("metadata", json!({"usage": usage, "metrics": {"latencyMs": latency_ms}}))));
    Reply::stream(EVENT_STREAM, events)
}

// ---------- InvokeModel: embeddings ----------

/// Texts in one Cohere Embed call.
pub const COHERE_MAX_TEXTS: usize = 96;

/// The embeddings model families InvokeModel answers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EmbedFamily {
    /// `amazon.titan-embed-text-v1` (only `inputText`) or `-v2:0`.
    Titan { v2: bool },
    /// `cohere.embed-*-v3` or `cohere.embed-v4:0`.
    Cohere { v4: bool },
}

/// The family of a model id, also behind a cross-region inference profile
/// prefix (`us.`, `eu.`...) or as an ARN's last segment.
fn embed_family(model_id: &str) -> Option<EmbedFamily> {
    let id = model_id.rsplit('/').next().unwrap_or(model_id);
    let id = match id.split_once('.') {
        Some((prefix, rest))
            if (rest.starts_with("amazon.") || rest.starts_with("cohere."))
                && prefix.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') =>
        {
            rest
        }
        _ => id,
    };
    if id.starts_with("amazon.titan-embed-text") {
        Some(EmbedFamily::Titan { v2: id.starts_with("amazon.titan-embed-text-v2") })
    } else if id.starts_with("cohere.embed-") {
        Some(EmbedFamily::Cohere { v4: id.starts_with("cohere.embed-v4") })
    } else {
        None
    }
}

/// Bedrock's refusal of a body that does not fit the model's schema.
fn malformed(detail: &str) -> Reply {
    error(
        StatusCode::BAD_REQUEST,
        &format!("Malformed input request: {detail}, please reformat your input and try again."),
    )
}

/// A requested dimension count, or Bedrock's 400.
fn dims(v: Option<&Value>, field: &str) -> Result<usize, Reply> {
    let requested = match v {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| malformed(&format!("#/{field}: expected type: Integer")))?),
    };
    embedding::dimensions(requested, field).map_err(|m| malformed(&format!("#/{field}: {m}")))
}

/// `POST /model/{model_id}/invoke` for an embeddings model. `model_id` is the
/// raw (percent-encoded) path segment.
pub fn invoke(state: &AppState, body: &[u8], model_id: &str) -> Reply {
    let model_id = percent_decode(model_id);
    if model_id.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "The provided model identifier is invalid.");
    }
    let Some(family) = embed_family(&model_id) else {
        return error(
            StatusCode::BAD_REQUEST,
            &format!(
                "mock: InvokeModel answers Titan Text Embeddings (amazon.titan-embed-text-*) and Cohere Embed (cohere.embed-*) models only, not {model_id}"
            ),
        );
    };
    let req: Value = match parse(body, error) {
        Ok(v) => v,
        Err(reply) => return reply,
    };
    let n = state.next_id();
    let answer = match family {
        EmbedFamily::Titan { v2 } => titan(&req, v2),
        EmbedFamily::Cohere { v4 } => cohere_embed(&req, v4, n),
    };
    let (reply, tokens) = match answer {
        Ok(a) => a,
        Err(reply) => return reply,
    };
    let reply = with_id_header(reply, "x-amzn-bedrock-input-token-count", &tokens.to_string());
    with_id_header(reply, "x-amzn-requestid", &format!("00000000-0000-4000-8000-{n:012x}"))
}

/// Titan Text Embeddings: one text per call.
fn titan(req: &Value, v2: bool) -> Result<(Reply, u64), Reply> {
    let allowed: &[&str] =
        if v2 { &["inputText", "dimensions", "normalize", "embeddingTypes"] } else { &["inputText"] };
    if let Some(k) = unknown_key(req, allowed) {
        return Err(malformed(&format!("#: extraneous key [{k}] is not permitted")));
    }
    let text = match req.get("inputText") {
        None => return Err(malformed("#: required key [inputText] not found")),
        Some(Value::String(t)) if t.is_empty() => {
            return Err(malformed("#/inputText: expected minLength: 1, actual: 0"))
        }
        Some(Value::String(t)) => t,
        Some(_) => return Err(malformed("#/inputText: expected type: String")),
    };
    let vector = embedding::vector(text.as_bytes(), dims(req.get("dimensions"), "dimensions")?);
    let tokens = embedding::total_tokens([text.as_str()]);
    let values = embedding::json_vector(&vector);
    let mut answer = json!({"embedding": values, "inputTextTokenCount": tokens});
    if v2 {
        let types: Vec<&str> = match req.get("embeddingTypes") {
            None | Some(Value::Null) => vec!["float"],
            Some(Value::Array(t)) => t.iter().filter_map(Value::as_str).collect(),
            Some(_) => return Err(malformed("#/embeddingTypes: expected type: JSONArray")),
        };
        let mut by_type = serde_json::Map::new();
        for t in types {
            match t {
                "float" => {
                    by_type.insert("float".into(), values.clone());
                }
                "binary" => {
                    let bits: Vec<u8> = vector.iter().map(|v| u8::from(*v > 0.0)).collect();
                    by_type.insert("binary".into(), json!(bits));
                }
                other => return Err(malformed(&format!("#/embeddingTypes: {other} is not a valid enum value"))),
            }
        }
        answer["embeddingsByType"] = Value::Object(by_type);
    }
    Ok((Reply::json(StatusCode::OK, to_json(&answer)), tokens))
}

/// Cohere Embed: up to 96 texts per call.
fn cohere_embed(req: &Value, v4: bool, n: u64) -> Result<(Reply, u64), Reply> {
    let allowed: &[&str] = if v4 {
        &["texts", "images", "inputs", "input_type", "truncate", "embedding_types", "output_dimension", "max_tokens"]
    } else {
        &["texts", "images", "input_type", "truncate", "embedding_types"]
    };
    if let Some(k) = unknown_key(req, allowed) {
        return Err(malformed(&format!("#: extraneous key [{k}] is not permitted")));
    }
    if !req.get("input_type").is_some_and(Value::is_string) {
        return Err(malformed("#: required key [input_type] not found"));
    }
    if req.get("images").is_some() || req.get("inputs").is_some() {
        return Err(malformed("mock: only texts can be embedded"));
    }
    let texts: Vec<&str> = match req.get("texts") {
        Some(Value::Array(t)) => match t.iter().map(Value::as_str).collect::<Option<_>>() {
            Some(t) => t,
            None => return Err(malformed("#/texts: expected type: String")),
        },
        Some(_) => return Err(malformed("#/texts: expected type: JSONArray")),
        None => return Err(malformed("#: required key [texts] not found")),
    };
    if texts.len() > COHERE_MAX_TEXTS {
        return Err(malformed(&format!("#/texts: expected maxItems: {COHERE_MAX_TEXTS}, actual: {}", texts.len())));
    }
    let by_type = match req.get("embedding_types") {
        None | Some(Value::Null) => v4,
        Some(Value::Array(t)) if t.iter().all(|t| t == "float") => true,
        Some(_) => return Err(malformed("mock: embedding_types other than float are not supported")),
    };
    let n_dims = dims(req.get("output_dimension"), "output_dimension")?;
    let vectors: Vec<Value> =
        texts.iter().map(|t| embedding::json_vector(&embedding::vector(t.as_bytes(), n_dims))).collect();
    let (embeddings, response_type) = if by_type {
        (json!({"float": vectors}), "embeddings_by_type")
    } else {
        (Value::Array(vectors), "embeddings_floats")
    };
    let answer = json!({
        "id": format!("00000000-0000-4000-8000-{n:012x}"),
        "embeddings": embeddings,
        "response_type": response_type,
        "texts": texts,
    });
    Ok((Reply::json(StatusCode::OK, to_json(&answer)), embedding::total_tokens(texts)))
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
        let b = Behavior { latency_ms: 7, ..Behavior::default() };
        let r = converse(&state(), &b, BODY, MODEL, false);
        let v = body_json(&r);
        assert_eq!(
            v["output"],
            json!({"message": {"role": "assistant", "content": [{"text": "mock reply to: hello there"}]}})
        );
        assert_eq!(v["stopReason"], "end_turn");
        assert_eq!(v["usage"], json!({"inputTokens": 5, "outputTokens": 8, "totalTokens": 13}));
        assert_eq!(v["metrics"], json!({"latencyMs": 7}));
    }

    #[test]
    fn json_tool_use() {
        let b = Behavior { tool_call: true, ..Behavior::default() };
        let v = body_json(&converse(&state(), &b, BODY, MODEL, false));
        assert_eq!(v["stopReason"], "tool_use");
        let tool = &v["output"]["message"]["content"][0]["toolUse"];
        assert_eq!(tool["name"], "get_weather");
        assert_eq!(tool["input"], json!({"x": 1}));
        assert!(tool["toolUseId"].is_string());
    }

    #[test]
    fn text_stream_frames() {
        let b = Behavior { chunks: 3, ttft_ms: 40, chunk_delay_ms: 5, ..Behavior::default() };
        let r = converse(&state(), &b, BODY, MODEL, true);
        let delays: Vec<u64> = r.events().expect("stream").iter().map(|e| e.delay.as_millis() as u64).collect();
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
        assert_eq!(f[6].1["usage"], json!({"inputTokens": 5, "outputTokens": 3, "totalTokens": 8}));
        assert_eq!(f[6].1["metrics"]["latencyMs"], 40 + 3 * 5);
    }

    #[test]
    fn tool_stream_frames() {
        let b = Behavior { tool_call: true, ..Behavior::default() };
        let f = frames(&converse(&state(), &b, BODY, MODEL, true));
        assert_eq!(f[1].0, "contentBlockStart");
        assert_eq!(f[1].1["start"]["toolUse"]["name"], "get_weather");
        let input: String =
            f[2..4].iter().map(|(_, v)| v["delta"]["toolUse"]["input"].as_str().unwrap_or("").to_owned()).collect();
        assert_eq!(input, r#"{"x":1}"#);
        assert_eq!(f[4].0, "contentBlockStop");
        assert_eq!(f[5].1["stopReason"], "tool_use");
        assert_eq!(f[6].1["usage"]["outputTokens"], 2);
    }

    fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a HeaderValue> {
        let Reply::Body { headers, .. } = r else { panic!("expected body") };
        headers.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    #[test]
    fn embed_families_by_model_id() {
        assert_eq!(embed_family("amazon.titan-embed-text-v2:0"), Some(EmbedFamily::Titan { v2: true }));
        assert_eq!(embed_family("amazon.titan-embed-text-v1"), Some(EmbedFamily::Titan { v2: false }));
        assert_eq!(embed_family("us.cohere.embed-v4:0"), Some(EmbedFamily::Cohere { v4: true }));
        assert_eq!(
            embed_family("arn:aws:bedrock:us-east-1:1:inference-profile/eu.cohere.embed-english-v3"),
            Some(EmbedFamily::Cohere { v4: false })
        );
        assert_eq!(embed_family("anthropic.claude-3-haiku-20240307-v1:0"), None);
    }

    #[test]
    fn titan_embeds_one_text() {
        let r = invoke(
            &state(),
            br#"{"inputText":"abcdefgh","dimensions":16,"normalize":true}"#,
            "amazon.titan-embed-text-v2%3A0",
        );
        assert_eq!(header(&r, "x-amzn-bedrock-input-token-count").map(|v| v.as_bytes()), Some(&b"2"[..]));
        assert!(header(&r, "x-amzn-requestid").is_some());
        let v = body_json(&r);
        let want = embedding::json_vector(&embedding::vector(b"abcdefgh", 16));
        assert_eq!(v, json!({"embedding": want, "inputTextTokenCount": 2, "embeddingsByType": {"float": want}}));
        let v = body_json(&invoke(
            &state(),
            br#"{"inputText":"x","embeddingTypes":["binary"]}"#,
            "amazon.titan-embed-text-v2:0",
        ));
        assert!(v["embeddingsByType"].get("float").is_none());
        assert_eq!(v["embeddingsByType"]["binary"].as_array().map(Vec::len), Some(8));
        // v1: only inputText, no embeddingsByType.
        let v = body_json(&invoke(&state(), br#"{"inputText":"x"}"#, "amazon.titan-embed-text-v1"));
        assert!(v.get("embeddingsByType").is_none());
        for (body, model, want) in [
            (
                &br#"{"inputText":"x","dimensions":256}"#[..],
                "amazon.titan-embed-text-v1",
                "extraneous key [dimensions]",
            ),
            (br#"{"texts":["x"]}"#, "amazon.titan-embed-text-v2:0", "extraneous key [texts]"),
            (br#"{}"#, "amazon.titan-embed-text-v2:0", "required key [inputText]"),
            (br#"{"inputText":""}"#, "amazon.titan-embed-text-v2:0", "minLength"),
            (br#"{"inputText":"x"}"#, "anthropic.claude-v2", "Titan Text Embeddings"),
        ] {
            let r = invoke(&state(), body, model);
            assert_eq!(r.whole_body().map(|b| b.0), Some(StatusCode::BAD_REQUEST));
            assert_eq!(header(&r, "x-amzn-errortype").map(|v| v.as_bytes()), Some(&b"ValidationException"[..]));
            let m = body_json(&r)["message"].as_str().unwrap_or("").to_owned();
            assert!(m.contains(want), "{m}");
        }
    }

    #[test]
    fn cohere_embed_lists_or_by_type() {
        let r = invoke(
            &state(),
            br#"{"texts":["x","abcdefgh"],"input_type":"search_document"}"#,
            "cohere.embed-english-v3",
        );
        assert_eq!(header(&r, "x-amzn-bedrock-input-token-count").map(|v| v.as_bytes()), Some(&b"3"[..]));
        let v = body_json(&r);
        assert_eq!(v["response_type"], "embeddings_floats");
        assert_eq!(v["embeddings"][0], embedding::json_vector(&embedding::embedding_of(b"x")));
        assert_eq!(v["texts"], json!(["x", "abcdefgh"]));
        let v = body_json(&invoke(
            &state(),
            br#"{"texts":["x"],"input_type":"search_query","embedding_types":["float"]}"#,
            "cohere.embed-multilingual-v3",
        ));
        assert_eq!(v["response_type"], "embeddings_by_type");
        assert_eq!(v["embeddings"]["float"][0], embedding::json_vector(&embedding::embedding_of(b"x")));
        let v = body_json(&invoke(
            &state(),
            br#"{"texts":["x"],"input_type":"search_document","output_dimension":256}"#,
            "cohere.embed-v4%3A0",
        ));
        assert_eq!(v["response_type"], "embeddings_by_type");
        assert_eq!(v["embeddings"]["float"][0].as_array().map(Vec::len), Some(256));
        let many = json!({"texts": vec!["t"; 97], "input_type": "search_document"}).to_string();
        for (body, model, want) in [
            (r#"{"texts":["x"]}"#, "cohere.embed-english-v3", "required key [input_type]"),
            (
                r#"{"texts":["x"],"input_type":"search_document","output_dimension":256}"#,
                "cohere.embed-english-v3",
                "extraneous key [output_dimension]",
            ),
            (many.as_str(), "cohere.embed-english-v3", "maxItems: 96"),
            (r#"{"input_type":"search_document"}"#, "cohere.embed-english-v3", "required key [texts]"),
        ] {
            let r = invoke(&state(), body.as_bytes(), model);
            assert_eq!(r.whole_body().map(|b| b.0), Some(StatusCode::BAD_REQUEST));
            let m = body_json(&r)["message"].as_str().unwrap_or("").to_owned();
            assert!(m.contains(want), "{m}");
        }
    }

    #[test]
    fn errors_are_native() {
        let r = mock_error(StatusCode::TOO_MANY_REQUESTS, &Behavior::default());
        let Reply::Body { headers, .. } = &r else { panic!("expected body") };
        assert_eq!(
            headers[0],
            (HeaderName::from_static("x-amzn-errortype"), HeaderValue::from_static("ThrottlingException"))
        );
        assert_eq!(body_json(&r), json!({"message": "mock error 429"}));
        let raw = Behavior { error_body: Some("{}".into()), ..Behavior::default() };
        let r = mock_error(StatusCode::SERVICE_UNAVAILABLE, &raw);
        let Reply::Body { headers, body, .. } = &r else { panic!("expected body") };
        assert_eq!(&body[..], b"{}");
        assert_eq!(headers[0].1, "ServiceUnavailableException");
        let r = converse(&state(), &Behavior::default(), BODY, "", false);
        assert_eq!(r.whole_body().map(|b| b.0), Some(StatusCode::BAD_REQUEST));
        let r = converse(&state(), &Behavior::default(), b"{", MODEL, false);
        assert_eq!(r.whole_body().map(|b| b.0), Some(StatusCode::BAD_REQUEST));
    }
}

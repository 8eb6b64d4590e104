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
//!
//! Embeddings: the Gemini API's `batchEmbedContents`
//! (ai.google.dev/api/embeddings#method:-models.batchembedcontents), one
//! `EmbedContentRequest` per text, each naming the batch's model, answered
//! with `{"embeddings":[{"values":[...]}]}` and no usage; and Vertex AI's text
//! embeddings `predict` (cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api),
//! `{"instances":[{"content"}],"parameters":{"outputDimensionality"}}`,
//! answered with `predictions[].embeddings.{values,statistics.token_count}`.
//! Both refuse fields they do not know with Google's "Unknown name" 400, and
//! Vertex AI's limits hold: 250 instances a call, one for gemini-embedding models.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{mock_error as native_mock_error, parse, percent_decode, to_json, unknown_key};
use crate::behavior::Behavior;
use crate::chat::{tool_args_value, Answer, Content, Prompt, Stop};
use crate::embedding;
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
pub fn generate(state: &AppState, behavior: &Behavior, body: &[u8], model: &str, framing: Framing) -> Reply {
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
        tools.iter().flat_map(|t| t.function_declarations.iter().flatten()).map(|f| f.name.as_ref()).next()
    });
    let answer = Answer::new(&prompt, behavior, first_tool);
    let response_id = format!("mock-{}", state.next_id());
    let head = Head { model, response_id: &response_id };

    let function_call = |name: &str| json!([{"functionCall": {"name": name, "args": tool_args_value()}}]);
    if framing == Framing::Whole {
        let parts = match &answer.content {
            Content::Text(text) => json!([{"text": text}]),
            Content::ToolCall { name } => function_call(name),
        };
        return Reply::json(StatusCode::OK, to_json(&response(&head, parts, Some(&answer))));
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
                    let delay = if i == 0 { pacing.ttft + pacing.chunk } else { pacing.chunk };
                    let r = response(&head, json!([{"text": t}]), (i == last).then_some(&answer));
                    (delay, r)
                })
                .collect()
        }
        Content::ToolCall { name } => {
            vec![(pacing.stream_total(answer.pieces()), response(&head, function_call(name), Some(&answer)))]
        }
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

// ---------- embeddings ----------

/// Requests in one `batchEmbedContents` call.
pub const BATCH_MAX: usize = 100;
/// Instances in one Vertex AI `predict` call (one for gemini-embedding models).
pub const PREDICT_MAX: usize = 250;

const EMBED_REQUEST_FIELDS: &[&str] =
    &["model", "content", "taskType", "task_type", "title", "outputDimensionality", "output_dimensionality"];

/// Google's refusal of a field its schema does not have.
fn unknown_name(name: &str, at: &str) -> Reply {
    let at = if at.is_empty() { String::new() } else { format!(" at '{at}'") };
    error(
        StatusCode::BAD_REQUEST,
        &format!("Invalid JSON payload received. Unknown name \"{name}\"{at}: Cannot find field."),
    )
}

fn invalid(message: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, message)
}

/// A requested dimension count, or Google's 400.
fn dims(v: Option<&Value>, field: &str) -> Result<usize, Reply> {
    let requested = match v {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| invalid(&format!("{field}: expected an integer")))?),
    };
    embedding::dimensions(requested, field).map_err(|m| invalid(&m))
}

/// The text of an embed request's `content`: its text parts, concatenated.
fn content_text(content: Option<&Value>, at: &str) -> Result<String, Reply> {
    let Some(content) = content else {
        return Err(invalid(&format!("* BatchEmbedContentsRequest.{at}.content: content is required")));
    };
    if let Some(k) = unknown_key(content, &["parts", "role"]) {
        return Err(unknown_name(k, &format!("{at}.content")));
    }
    let parts = content.get("parts").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    if parts.is_empty() {
        return Err(invalid(&format!(
            "* BatchEmbedContentsRequest.{at}.content.parts: contents.parts must not be empty"
        )));
    }
    let mut text = String::new();
    for p in parts {
        match p.get("text").and_then(Value::as_str) {
            Some(t) => text.push_str(t),
            None => return Err(invalid(&format!("mock: only text parts can be embedded ({at})"))),
        }
    }
    Ok(text)
}

/// `POST /v1beta/models/{model}:batchEmbedContents`. `model` is the raw path segment.
pub fn batch_embed(state: &AppState, body: &[u8], model: &str) -> Reply {
    let req: Value = match parse(body, error) {
        Ok(v) => v,
        Err(reply) => return reply,
    };
    if let Some(k) = unknown_key(&req, &["requests"]) {
        return unknown_name(k, "");
    }
    let requests = match req.get("requests").and_then(Value::as_array) {
        Some(r) if !r.is_empty() => r,
        _ => return invalid("* BatchEmbedContentsRequest.requests: at least one request is required"),
    };
    if requests.len() > BATCH_MAX {
        return invalid(&format!(
            "* BatchEmbedContentsRequest.requests: at most {BATCH_MAX} requests can be in one batch, got {}",
            requests.len()
        ));
    }
    let resource = format!("models/{}", percent_decode(model));
    let mut embeddings = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        let at = format!("requests[{i}]");
        if let Some(k) = unknown_key(r, EMBED_REQUEST_FIELDS) {
            return unknown_name(k, &at);
        }
        if r.get("model").and_then(Value::as_str) != Some(resource.as_str()) {
            return invalid(&format!(
                "* BatchEmbedContentsRequest.{at}.model: the model of every request must be the batch's model ({resource})"
            ));
        }
        let text = match content_text(r.get("content"), &at) {
            Ok(t) => t,
            Err(reply) => return reply,
        };
        let field =
            if r.get("output_dimensionality").is_some() { "output_dimensionality" } else { "outputDimensionality" };
        let n = match dims(r.get(field), field) {
            Ok(n) => n,
            Err(reply) => return reply,
        };
        embeddings.push(json!({"values": embedding::json_vector(&embedding::vector(text.as_bytes(), n))}));
    }
    let _ = state.next_id();
    Reply::json(StatusCode::OK, to_json(&json!({"embeddings": embeddings})))
}

/// `POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:predict`
/// (Vertex AI text embeddings). `model` is the raw path segment.
pub fn predict(state: &AppState, body: &[u8], model: &str) -> Reply {
    let model = percent_decode(model);
    let req: Value = match parse(body, error) {
        Ok(v) => v,
        Err(reply) => return reply,
    };
    if let Some(k) = unknown_key(&req, &["instances", "parameters"]) {
        return unknown_name(k, "");
    }
    let instances = match req.get("instances").and_then(Value::as_array) {
        Some(i) if !i.is_empty() => i,
        _ => return invalid("instances: at least one instance is required"),
    };
    let max = if model.starts_with("gemini-embedding") { 1 } else { PREDICT_MAX };
    if instances.len() > max {
        return invalid(&format!(
            "mock: {model} takes at most {max} instance(s) per predict request, got {}",
            instances.len()
        ));
    }
    let parameters = req.get("parameters").unwrap_or(&Value::Null);
    const PARAMETERS: &[&str] = &["autoTruncate", "auto_truncate", "outputDimensionality", "output_dimensionality"];
    if let Some(k) = unknown_key(parameters, PARAMETERS) {
        return unknown_name(k, "parameters");
    }
    let field = if parameters.get("output_dimensionality").is_some() {
        "output_dimensionality"
    } else {
        "outputDimensionality"
    };
    let n = match dims(parameters.get(field), field) {
        Ok(n) => n,
        Err(reply) => return reply,
    };
    let mut predictions = Vec::with_capacity(instances.len());
    let mut chars = 0;
    for (i, instance) in instances.iter().enumerate() {
        if let Some(k) = unknown_key(instance, &["content", "task_type", "taskType", "title"]) {
            return unknown_name(k, &format!("instances[{i}]"));
        }
        let Some(text) = instance.get("content").and_then(Value::as_str) else {
            return invalid(&format!("instances[{i}].content: a string is required"));
        };
        chars += text.chars().count();
        predictions.push(json!({"embeddings": {
            "statistics": {"truncated": false, "token_count": embedding::text_tokens(text)},
            "values": embedding::json_vector(&embedding::vector(text.as_bytes(), n)),
        }}));
    }
    let _ = state.next_id();
    Reply::json(
        StatusCode::OK,
        to_json(&json!({
            "predictions": predictions,
            "metadata": {"billableCharacterCount": chars},
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

    fn sse_payloads(r: &Reply) -> Vec<Value> {
        r.events()
            .expect("expected stream")
            .iter()
            .map(|e| {
                let text = std::str::from_utf8(&e.data).expect("utf8");
                let json =
                    text.strip_prefix("data: ").and_then(|t| t.strip_suffix("\r\n\r\n")).expect("CRLF sse framing");
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
        let r = generate(&state(), &Behavior::default(), BODY, "gemini-x", Framing::Whole);
        let v = body_json(&r);
        let c = &v["candidates"][0];
        assert_eq!(c["content"]["role"], "model");
        assert_eq!(c["content"]["parts"], json!([{"text": "mock reply to: hello there"}]));
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
        let b = Behavior { tool_call: true, ..Behavior::default() };
        let v = body_json(&generate(&state(), &b, BODY, "g", Framing::Whole));
        assert_eq!(
            v["candidates"][0]["content"]["parts"],
            json!([{"functionCall": {"name": "get_weather", "args": {"x": 1}}}])
        );
        assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 2);
        let b = Behavior { hit_max_tokens: true, ..Behavior::default() };
        let v = body_json(&generate(&state(), &b, BODY, "g", Framing::Whole));
        assert_eq!(v["candidates"][0]["finishReason"], "MAX_TOKENS");
    }

    #[test]
    fn sse_stream() {
        let b = Behavior { chunks: 3, ttft_ms: 50, chunk_delay_ms: 5, ..Behavior::default() };
        let r = generate(&state(), &b, BODY, "g", Framing::Sse);
        let delays: Vec<u64> = r.events().expect("stream").iter().map(|e| e.delay.as_millis() as u64).collect();
        assert_eq!(delays, vec![55, 5, 5]);
        let p = sse_payloads(&r);
        assert_eq!(p.len(), 3);
        let text: String = p
            .iter()
            .map(|v| v["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap_or("").to_owned())
            .collect();
        assert_eq!(text, "mock reply to: hello there");
        assert!(p[0]["candidates"][0].get("finishReason").is_none());
        assert!(p[0].get("usageMetadata").is_none());
        assert_eq!(p[2]["candidates"][0]["finishReason"], "STOP");
        assert_eq!(p[2]["usageMetadata"]["candidatesTokenCount"], 3);
    }

    #[test]
    fn function_call_stream_is_one_response() {
        let b = Behavior { tool_call: true, ttft_ms: 20, chunk_delay_ms: 5, ..Behavior::default() };
        let r = generate(&state(), &b, BODY, "g", Framing::Sse);
        assert_eq!(r.events().expect("stream")[0].delay.as_millis(), 30);
        let p = sse_payloads(&r);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["name"], "get_weather");
        assert_eq!(p[0]["usageMetadata"]["totalTokenCount"], 7);
    }

    #[test]
    fn json_array_stream() {
        let b = Behavior { chunks: 2, ..Behavior::default() };
        let r = generate(&state(), &b, BODY, "g", Framing::JsonArray);
        let body: Vec<u8> = r.events().expect("stream").iter().flat_map(|e| e.data.to_vec()).collect();
        let v: Value = serde_json::from_slice(&body).expect("a JSON array");
        assert_eq!(v.as_array().map(Vec::len), Some(2));
        assert_eq!(v[1]["candidates"][0]["finishReason"], "STOP");
    }

    fn embed_body(model: &str, texts: &[&str]) -> Vec<u8> {
        let requests: Vec<Value> =
            texts.iter().map(|t| json!({"model": model, "content": {"parts": [{"text": t}]}})).collect();
        serde_json::to_vec(&json!({"requests": requests})).expect("json")
    }

    #[test]
    fn batch_embed_answers_one_vector_per_request() {
        let body = embed_body("models/gemini-embedding-001", &["x", "y"]);
        let r = batch_embed(&state(), &body, "gemini-embedding-001");
        let v = body_json(&r);
        assert_eq!(
            v,
            json!({"embeddings": [
                {"values": embedding::json_vector(&embedding::embedding_of(b"x"))},
                {"values": embedding::json_vector(&embedding::embedding_of(b"y"))},
            ]})
        );
        let body = json!({"requests": [{"model": "models/g", "content": {"parts": [{"text": "x"}]}, "outputDimensionality": 24, "taskType": "RETRIEVAL_DOCUMENT"}]});
        let v = body_json(&batch_embed(&state(), body.to_string().as_bytes(), "g"));
        assert_eq!(v["embeddings"][0]["values"].as_array().map(Vec::len), Some(24));
    }

    #[test]
    fn batch_embed_refusals() {
        let status = |body: &Value| {
            let r = batch_embed(&state(), body.to_string().as_bytes(), "g");
            let v = body_json(&r);
            assert_eq!(v["error"]["status"], "INVALID_ARGUMENT", "{v}");
            v["error"]["message"].as_str().unwrap_or("").to_owned()
        };
        let part = json!({"parts": [{"text": "x"}]});
        let m = status(&json!({"requests": [{"model": "models/g", "content": part, "dimensions": 8}]}));
        assert!(m.contains("Unknown name \"dimensions\" at 'requests[0]'"), "{m}");
        let m = status(&json!({"requests": [{"model": "models/other", "content": part}]}));
        assert!(m.contains("models/g"), "{m}");
        let m = status(&json!({"requests": [{"model": "models/g", "content": {"parts": []}}]}));
        assert!(m.contains("must not be empty"), "{m}");
        let m = status(&json!({"requests": []}));
        assert!(m.contains("at least one"), "{m}");
        let many: Vec<Value> = (0..101).map(|_| json!({"model": "models/g", "content": part})).collect();
        assert!(status(&json!({"requests": many})).contains("at most 100"));
        assert!(status(&json!({"input": "x"})).contains("Unknown name \"input\""));
    }

    #[test]
    fn vertex_predict_answers_with_token_counts() {
        let body = json!({"instances": [{"content": "abcdefgh"}, {"content": "y", "task_type": "RETRIEVAL_DOCUMENT"}], "parameters": {"outputDimensionality": 16}});
        let v = body_json(&predict(&state(), body.to_string().as_bytes(), "text-embedding-005"));
        let p = &v["predictions"];
        assert_eq!(p.as_array().map(Vec::len), Some(2));
        assert_eq!(p[0]["embeddings"]["statistics"], json!({"truncated": false, "token_count": 2}));
        assert_eq!(p[1]["embeddings"]["values"], embedding::json_vector(&embedding::vector(b"y", 16)));
        assert_eq!(v["metadata"]["billableCharacterCount"], 9);

        let one = |n: usize, model: &str| {
            let instances: Vec<Value> = (0..n).map(|_| json!({"content": "x"})).collect();
            predict(&state(), json!({"instances": instances}).to_string().as_bytes(), model)
        };
        assert_eq!(one(2, "gemini-embedding-001").whole_body().map(|b| b.0), Some(StatusCode::BAD_REQUEST));
        assert_eq!(one(1, "gemini-embedding-001").whole_body().map(|b| b.0), Some(StatusCode::OK));
        assert_eq!(one(251, "text-embedding-005").whole_body().map(|b| b.0), Some(StatusCode::BAD_REQUEST));
        let r = predict(&state(), br#"{"instances":[{"content":"x"}],"parameters":{"dimensions":8}}"#, "m");
        assert!(body_json(&r)["error"]["message"].as_str().is_some_and(|m| m.contains("at 'parameters'")));
    }

    #[test]
    fn errors_are_native() {
        let v = body_json(&mock_error(StatusCode::TOO_MANY_REQUESTS, &Behavior::default()));
        assert_eq!(v, json!({"error": {"code": 429, "message": "mock error 429", "status": "RESOURCE_EXHAUSTED"}}));
        assert_eq!(status_name(StatusCode::SERVICE_UNAVAILABLE), "UNAVAILABLE");
        let r = generate(&state(), &Behavior::default(), b"[", "g", Framing::Whole);
        assert_eq!(body_json(&r)["error"]["status"], "INVALID_ARGUMENT");
    }
}

//! The providers' native wire formats over real HTTP: JSON and stream
//! answers, tool calls, embeddings, native error bodies, recording and
//! faults, one in-process mock on port 0 per test.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use bytes::Bytes;
use common::{start, Mock};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

const QUESTION: &str = "What is the capital of France?";
const REPLY: &str = "mock reply to: What is the capital of France?";

/// `(event name, payload)` of an SSE body with `event:` lines.
fn named_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (name, data) = e
                .strip_prefix("event: ")
                .and_then(|e| e.split_once("\ndata: "))
                .unwrap_or_else(|| panic!("named event framing: {e:?}"));
            (name.to_owned(), serde_json::from_str(data).expect("json"))
        })
        .collect()
}

/// Payloads of an SSE body of CRLF-terminated `data:` events (Google).
fn crlf_data_events(body: &str) -> Vec<Value> {
    assert!(body.ends_with("\r\n\r\n"), "{body:?}");
    body.split("\r\n\r\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let data = e.strip_prefix("data: ").expect("data event");
            serde_json::from_str(data).expect("json")
        })
        .collect()
}

/// `(:event-type, payload)` of AWS event-stream frames, with the SDK's decoder.
/// Stops at the first incomplete frame (a cut stream).
fn frames(body: &[u8]) -> (Vec<(String, Value)>, bool) {
    let mut buf = Bytes::copy_from_slice(body);
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
                        .unwrap_or_else(|| panic!("frame header {name}"))
                };
                assert_eq!(header(":message-type"), "event");
                assert_eq!(header(":content-type"), "application/json");
                let payload = serde_json::from_slice(m.payload()).expect("json payload");
                out.push((header(":event-type"), payload));
            }
            DecodedFrame::Incomplete => return (out, false),
        }
    }
    (out, true)
}

/// Last recorded request.
async fn last_record(m: &Mock) -> Value {
    let recs = m.get("/_mock/requests").await.json();
    recs.as_array().and_then(|a| a.last()).cloned().expect("a recorded request")
}

/// Arrival time of each body frame, from just before the request.
async fn arrivals(m: &Mock, path: &str, body: &Value) -> (Vec<Duration>, Vec<u8>) {
    let req = Request::post(format!("http://{}{}", m.addr, path))
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let t0 = Instant::now();
    let resp = m.client.request(req).await.expect("response");
    let mut body = resp.into_body();
    let mut times = Vec::new();
    let mut all = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("frame").into_data() {
            times.push(t0.elapsed());
            all.extend_from_slice(&data);
        }
    }
    (times, all)
}

// ---------- Azure OpenAI ----------

#[tokio::test]
async fn azure_deployment_path_answers_openai_format() {
    let m = start().await;
    let path = "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21";
    let a = m
        .send(
            Method::POST,
            path,
            Some(json!({"messages": [{"role": "user", "content": QUESTION}]})),
            &[("api-key", "azure-secret")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let v = a.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "my-gpt4o", "no model in the body: the deployment");
    assert_eq!(v["choices"][0]["message"]["content"], REPLY);
    let r = last_record(&m).await;
    assert_eq!(r["path"], "/openai/deployments/my-gpt4o/chat/completions");
    assert_eq!(r["query"], "api-version=2024-10-21");
    assert_eq!(r["headers"]["api-key"], "azure-secret");
}

// ---------- Anthropic ----------

fn anthropic_body(stream: bool) -> Value {
    json!({
        "model": "claude-test",
        "max_tokens": 256,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": QUESTION}],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
        "stream": stream,
    })
}

#[tokio::test]
async fn anthropic_messages_json_and_stream() {
    let m = start().await;
    let a = m
        .send(
            Method::POST,
            "/v1/messages",
            Some(anthropic_body(false)),
            &[("x-api-key", "sk-ant"), ("anthropic-version", "2023-06-01")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["content-type"], "application/json");
    assert!(a.headers.contains_key("request-id"));
    let v = a.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["model"], "claude-test");
    assert_eq!(v["content"], json!([{"type": "text", "text": REPLY}]));
    assert_eq!(v["stop_reason"], "end_turn");
    // 14 + 30 = 44 chars -> 11 tokens; 8 chunks by default.
    assert_eq!(v["usage"], json!({"input_tokens": 11, "output_tokens": 8}));
    let r = last_record(&m).await;
    assert_eq!(r["headers"]["anthropic-version"], "2023-06-01");
    assert_eq!(r["body"], anthropic_body(false));

    m.behave(json!({"chunks": 4})).await;
    let a = m.post("/v1/messages", anthropic_body(true)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.headers["content-type"].to_str().is_ok_and(|t| t.starts_with("text/event-stream")));
    let ev = named_events(&a.text());
    assert_eq!(ev.len(), 3 + 4 + 3);
    assert_eq!(ev[0].0, "message_start");
    assert_eq!(ev[0].1["message"]["usage"]["input_tokens"], 11);
    let text: String = ev
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, v)| v["delta"]["text"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(text, REPLY);
    let delta = &ev[ev.len() - 2];
    assert_eq!(delta.0, "message_delta");
    assert_eq!(delta.1["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta.1["usage"]["output_tokens"], 4);
    assert_eq!(ev[ev.len() - 1].0, "message_stop");
}

#[tokio::test]
async fn anthropic_tool_use_and_errors() {
    let m = start().await;
    m.behave(json!({"tool_call": true})).await;
    let v = m.post("/v1/messages", anthropic_body(false)).await.json();
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(v["content"][0]["type"], "tool_use");
    assert_eq!(v["content"][0]["name"], "get_weather");
    assert_eq!(v["content"][0]["input"], json!({"x": 1}));

    let ev = named_events(&m.post("/v1/messages", anthropic_body(true)).await.text());
    assert_eq!(ev[1].1["content_block"]["type"], "tool_use");
    let args: String = ev
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, v)| v["delta"]["partial_json"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&args).expect("json"), json!({"x": 1}));

    m.behave(json!({"status": 529, "retry_after": 3, "times": 1})).await;
    let a = m.post("/v1/messages", anthropic_body(true)).await;
    assert_eq!(a.status.as_u16(), 529);
    assert_eq!(a.headers["retry-after"], "3");
    assert_eq!(a.json(), json!({"type": "error", "error": {"type": "overloaded_error", "message": "mock error 529"}}));
    let a = m.send(Method::POST, "/v1/messages", None, &[]).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn anthropic_count_tokens_matches_the_usage() {
    let m = start().await;
    let mut body = anthropic_body(false);
    let a = m.post("/v1/messages/count_tokens", body.clone()).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json(), json!({"input_tokens": 11}));
    let v = m.post("/v1/messages", body.clone()).await.json();
    assert_eq!(v["usage"]["input_tokens"], 11);
    // count_tokens needs no max_tokens; messages does.
    body.as_object_mut().map(|o| o.remove("max_tokens"));
    assert_eq!(m.post("/v1/messages/count_tokens", body.clone()).await.status, StatusCode::OK);
    let a = m.post("/v1/messages", body).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.json(),
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"}})
    );
}

fn thinking_body(stream: bool) -> Value {
    let mut b = anthropic_body(stream);
    b["max_tokens"] = json!(4096);
    b["thinking"] = json!({"type": "enabled", "budget_tokens": 2048});
    b
}

#[tokio::test]
async fn anthropic_thinking_json_stream_and_signature_check() {
    let m = start().await;
    let v = m.post("/v1/messages", thinking_body(false)).await.json();
    let thinking = v["content"][0].clone();
    assert_eq!(thinking["type"], "thinking");
    let text = thinking["thinking"].as_str().expect("thinking text").to_owned();
    assert!(!text.is_empty());
    assert_eq!(thinking["signature"], tollgate_mock::native::anthropic::thinking_signature(&text).as_str());
    assert_eq!(v["content"][1], json!({"type": "text", "text": REPLY}));
    // 8 answer tokens plus the thinking's.
    let output = v["usage"]["output_tokens"].as_u64().expect("output tokens");
    assert!(output > 8, "{output}");

    let a = m.post("/v1/messages", thinking_body(true)).await;
    let ev = named_events(&a.text());
    assert_eq!(ev[1].1["content_block"]["type"], "thinking");
    let streamed: String = ev
        .iter()
        .filter(|(_, v)| v["delta"]["type"] == "thinking_delta")
        .map(|(_, v)| v["delta"]["thinking"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(streamed, text);
    let sig = ev
        .iter()
        .find(|(_, v)| v["delta"]["type"] == "signature_delta")
        .map(|(_, v)| v["delta"]["signature"].clone())
        .expect("signature delta");
    assert_eq!(sig, thinking["signature"]);
    let text_start = ev.iter().position(|(n, v)| n == "content_block_start" && v["index"] == 1).expect("second block");
    assert_eq!(ev[text_start].1["content_block"]["type"], "text");
    assert_eq!(ev[ev.len() - 2].1["usage"]["output_tokens"], output);

    // The next turn replays the block: as issued it passes, edited it fails.
    let next = |block: Value| {
        let mut b = thinking_body(false);
        b["messages"] = json!([
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": [block, {"type": "text", "text": REPLY}]},
            {"role": "user", "content": "And of Italy?"},
        ]);
        b
    };
    let a = m.post("/v1/messages", next(thinking.clone())).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let mut edited = thinking;
    edited["thinking"] = json!("something else");
    let a = m.post("/v1/messages", next(edited)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"]["message"], "messages.1.content.0: Invalid `signature` in `thinking` block");
}

#[tokio::test]
async fn anthropic_prompt_cache_creation_then_read() {
    let m = start().await;
    let body = |question: &str| {
        json!({
            "model": "claude-test",
            "max_tokens": 256,
            "system": [{"type": "text", "text": "You are terse. ".repeat(40), "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": question}],
        })
    };
    let count = m.post("/v1/messages/count_tokens", body(QUESTION)).await.json()["input_tokens"].clone();
    let u = m.post("/v1/messages", body(QUESTION)).await.json()["usage"].clone();
    // 15 * 40 = 600 system chars -> 150 tokens cached; the question is the rest.
    assert_eq!(u["cache_creation_input_tokens"], 150);
    assert_eq!(u["cache_read_input_tokens"], 0);
    assert_eq!(u["input_tokens"], 8);
    assert_eq!(count, json!(158));
    let u = m.post("/v1/messages", body("Another question")).await.json()["usage"].clone();
    assert_eq!(u["cache_creation_input_tokens"], 0);
    assert_eq!(u["cache_read_input_tokens"], 150);
    let ev = named_events(
        &m.post("/v1/messages", {
            let mut b = body(QUESTION);
            b["stream"] = json!(true);
            b
        })
        .await
        .text(),
    );
    assert_eq!(ev[0].1["message"]["usage"]["cache_read_input_tokens"], 150);

    m.post("/_mock/reset", json!({})).await;
    let u = m.post("/v1/messages", body(QUESTION)).await.json()["usage"].clone();
    assert_eq!(u["cache_creation_input_tokens"], 150, "reset empties the cache");
}

#[tokio::test]
async fn anthropic_tool_results_must_answer_the_previous_tool_use() {
    let m = start().await;
    let body = |result_id: &str| {
        let mut b = anthropic_body(false);
        b["messages"] = json!([
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": result_id, "content": "sunny"}]},
        ]);
        b
    };
    let a = m.post("/v1/messages", body("toolu_1")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.json()["content"][0]["text"], REPLY);
    let a = m.post("/v1/messages", body("call_1")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.json(),
        json!({"type": "error", "error": {"type": "invalid_request_error", "message":
            "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: call_1. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."}})
    );
    let mut b = body("toolu_1");
    b["messages"][1]["content"][0]["input"] = json!("{\"city\":\"Paris\"}");
    let a = m.post("/v1/messages", b).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.text().contains("tool_use.input: Input should be a valid dictionary"));
    let mut b = body("toolu_1");
    b["messages"][0]["role"] = json!("system");
    assert_eq!(m.post("/v1/messages", b).await.status, StatusCode::BAD_REQUEST);
}

// ---------- Gemini ----------

fn gemini_body() -> Value {
    json!({
        "systemInstruction": {"parts": [{"text": "You are terse."}]},
        "contents": [{"role": "user", "parts": [{"text": QUESTION}]}],
        "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "object"}}]}],
    })
}

#[tokio::test]
async fn gemini_generate_and_stream() {
    let m = start().await;
    let a = m
        .send(
            Method::POST,
            "/v1beta/models/gemini-2.0-flash:generateContent",
            Some(gemini_body()),
            &[("x-goog-api-key", "g-key")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let v = a.json();
    let c = &v["candidates"][0];
    assert_eq!(c["content"], json!({"role": "model", "parts": [{"text": REPLY}]}));
    assert_eq!(c["finishReason"], "STOP");
    assert_eq!(v["usageMetadata"], json!({"promptTokenCount": 11, "candidatesTokenCount": 8, "totalTokenCount": 19}));
    assert_eq!(v["modelVersion"], "gemini-2.0-flash");
    assert_eq!(last_record(&m).await["headers"]["x-goog-api-key"], "g-key");

    m.behave(json!({"chunks": 3})).await;
    let a = m.post("/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse", gemini_body()).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["content-type"], "text/event-stream");
    let text = a.text();
    assert!(!text.contains("[DONE]"));
    let p = crlf_data_events(&text);
    assert_eq!(p.len(), 3);
    let joined: String =
        p.iter().map(|v| v["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(joined, REPLY);
    assert!(p[0].get("usageMetadata").is_none());
    assert_eq!(p[2]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(p[2]["usageMetadata"]["totalTokenCount"], 14);
    assert_eq!(last_record(&m).await["query"], "alt=sse");

    // Without alt=sse: one JSON array. Vertex AI's path answers alike.
    let a = m
        .post(
            "/v1/projects/proj/locations/us-central1/publishers/google/models/gemini-1.5-pro:streamGenerateContent",
            gemini_body(),
        )
        .await;
    assert_eq!(a.headers["content-type"], "application/json");
    let arr = a.json();
    assert_eq!(arr.as_array().map(Vec::len), Some(3));
    assert_eq!(arr[2]["modelVersion"], "gemini-1.5-pro");
}

#[tokio::test]
async fn gemini_function_call_and_errors() {
    let m = start().await;
    m.behave(json!({"tool_call": true})).await;
    let v = m.post("/v1beta/models/g:generateContent", gemini_body()).await.json();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["functionCall"],
        json!({"name": "get_weather", "args": {"x": 1}})
    );
    let p = crlf_data_events(&m.post("/v1beta/models/g:streamGenerateContent?alt=sse", gemini_body()).await.text());
    assert_eq!(p.len(), 1);
    assert_eq!(p[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["name"], "get_weather");
    assert_eq!(p[0]["usageMetadata"]["candidatesTokenCount"], 2);

    m.behave(json!({"status": 503, "times": 1})).await;
    let a = m.post("/v1beta/models/g:streamGenerateContent?alt=sse", gemini_body()).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.json(), json!({"error": {"code": 503, "message": "mock error 503", "status": "UNAVAILABLE"}}));
    // error_body replaces the native body in every format.
    m.behave(json!({"status": 400, "error_body": "{\"raw\":true}", "times": 1})).await;
    let a = m.post("/v1beta/models/g:generateContent", gemini_body()).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json(), json!({"raw": true}));
}

// ---------- Bedrock ----------

const BEDROCK_MODEL: &str = "anthropic.claude-3-haiku-20240307-v1%3A0";

fn bedrock_body() -> Value {
    json!({
        "system": [{"text": "You are terse."}],
        "messages": [{"role": "user", "content": [{"text": QUESTION}]}],
        "inferenceConfig": {"maxTokens": 256},
        "toolConfig": {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}]},
    })
}

#[tokio::test]
async fn bedrock_converse_and_stream() {
    let m = start().await;
    let path = format!("/model/{BEDROCK_MODEL}/converse");
    let a =
        m.send(Method::POST, &path, Some(bedrock_body()), &[("authorization", "AWS4-HMAC-SHA256 Credential=x")]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.headers.contains_key("x-amzn-requestid"));
    let v = a.json();
    assert_eq!(v["output"]["message"], json!({"role": "assistant", "content": [{"text": REPLY}]}));
    assert_eq!(v["stopReason"], "end_turn");
    assert_eq!(v["usage"], json!({"inputTokens": 11, "outputTokens": 8, "totalTokens": 19}));
    assert!(v["metrics"]["latencyMs"].is_u64());
    // Recorded as sent: still percent-encoded.
    assert_eq!(last_record(&m).await["path"], path);

    m.behave(json!({"chunks": 3})).await;
    let a = m.post(&format!("/model/{BEDROCK_MODEL}/converse-stream"), bedrock_body()).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["content-type"], "application/vnd.amazon.eventstream");
    let (f, whole) = frames(&a.body);
    assert!(whole);
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
    let text: String = f.iter().filter_map(|(_, v)| v["delta"]["text"].as_str()).collect();
    assert_eq!(text, REPLY);
    assert_eq!(f[5].1["stopReason"], "end_turn");
    assert_eq!(f[6].1["usage"], json!({"inputTokens": 11, "outputTokens": 3, "totalTokens": 14}));
}

#[tokio::test]
async fn bedrock_tool_use_errors_and_cut_stream() {
    let m = start().await;
    let stream_path = format!("/model/{BEDROCK_MODEL}/converse-stream");
    m.behave(json!({"tool_call": true})).await;
    let v = m.post(&format!("/model/{BEDROCK_MODEL}/converse"), bedrock_body()).await.json();
    assert_eq!(v["stopReason"], "tool_use");
    let tool = &v["output"]["message"]["content"][0]["toolUse"];
    assert_eq!((&tool["name"], &tool["input"]), (&json!("get_weather"), &json!({"x": 1})));
    let (f, _) = frames(&m.post(&stream_path, bedrock_body()).await.body);
    assert_eq!(f[1].0, "contentBlockStart");
    assert_eq!(f[1].1["start"]["toolUse"]["name"], "get_weather");
    let input: String = f.iter().filter_map(|(_, v)| v["delta"]["toolUse"]["input"].as_str()).collect();
    assert_eq!(input, r#"{"x":1}"#);

    m.behave(json!({"tool_call": false, "status": 429, "retry_after": "1", "times": 1})).await;
    let a = m.post(&stream_path, bedrock_body()).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.headers["x-amzn-errortype"], "ThrottlingException");
    assert_eq!(a.headers["retry-after"], "1");
    assert_eq!(a.json(), json!({"message": "mock error 429"}));

    // Half the frames, then the connection drops.
    m.behave(json!({"tool_call": false, "fault": "reset_mid_stream", "times": 1})).await;
    let (got, _) = m.raw_to(&stream_path, &bedrock_body()).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("application/vnd.amazon.eventstream"));
    assert!(!text.contains("messageStop"), "cut before the end");
    assert!(text.contains("messageStart"));
}

// ---------- Cohere ----------

fn cohere_body(stream: bool) -> Value {
    json!({
        "model": "command-r-plus",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": QUESTION}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}],
        "stream": stream,
    })
}

#[tokio::test]
async fn cohere_chat_json_stream_tool_error() {
    let m = start().await;
    let v = m.post("/v2/chat", cohere_body(false)).await.json();
    assert_eq!(v["message"]["content"], json!([{"type": "text", "text": REPLY}]));
    assert_eq!(v["finish_reason"], "COMPLETE");
    assert_eq!(v["usage"]["billed_units"], json!({"input_tokens": 11, "output_tokens": 8}));
    assert_eq!(v["usage"]["tokens"], json!({"input_tokens": 11, "output_tokens": 8}));

    let a = m.post("/v2/chat", cohere_body(true)).await;
    assert_eq!(a.headers["content-type"], "text/event-stream");
    let ev = named_events(&a.text());
    assert_eq!(ev[0].0, "message-start");
    let text: String = ev
        .iter()
        .filter(|(n, _)| n == "content-delta")
        .map(|(_, v)| v["delta"]["message"]["content"]["text"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(text, REPLY);
    let end = &ev[ev.len() - 1];
    assert_eq!(end.0, "message-end");
    assert_eq!(end.1["delta"]["finish_reason"], "COMPLETE");
    assert_eq!(end.1["delta"]["usage"]["tokens"]["output_tokens"], 8);

    m.behave(json!({"tool_call": true})).await;
    let v = m.post("/v2/chat", cohere_body(false)).await.json();
    assert_eq!(v["finish_reason"], "TOOL_CALL");
    assert_eq!(v["message"]["tool_calls"][0]["function"], json!({"name": "get_weather", "arguments": "{\"x\":1}"}));
    let ev = named_events(&m.post("/v2/chat", cohere_body(true)).await.text());
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"tool-call-start") && names.contains(&"tool-call-end"));
    assert_eq!(ev[ev.len() - 1].1["delta"]["finish_reason"], "TOOL_CALL");

    m.behave(json!({"status": 500, "times": 1})).await;
    let a = m.post("/v2/chat", cohere_body(false)).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(a.json(), json!({"message": "mock error 500"}));
}

// ---------- Ollama ----------

fn ollama_body(stream: Option<bool>) -> Value {
    let mut b = json!({
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": QUESTION}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}],
    });
    if let Some(s) = stream {
        b["stream"] = json!(s);
    }
    b
}

#[tokio::test]
async fn ollama_chat_streams_by_default() {
    let m = start().await;
    m.behave(json!({"chunks": 3})).await;
    let a = m.post("/api/chat", ollama_body(None)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["content-type"], "application/x-ndjson");
    let text = a.text();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert_eq!(lines.len(), 4);
    let joined: String = lines[..3]
        .iter()
        .map(|v| {
            assert_eq!(v["done"], false);
            v["message"]["content"].as_str().unwrap_or("").to_owned()
        })
        .collect();
    assert_eq!(joined, REPLY);
    let last = &lines[3];
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!((&last["prompt_eval_count"], &last["eval_count"]), (&json!(11), &json!(3)));

    let v = m.post("/api/chat", ollama_body(Some(false))).await.json();
    assert_eq!(v["message"], json!({"role": "assistant", "content": REPLY}));
    assert_eq!(v["done"], true);
    assert_eq!(v["model"], "llama3.2");

    m.behave(json!({"tool_call": true})).await;
    let v = m.post("/api/chat", ollama_body(Some(false))).await.json();
    assert_eq!(v["message"]["tool_calls"], json!([{"function": {"name": "get_weather", "arguments": {"x": 1}}}]));

    m.behave(json!({"status": 404, "times": 1})).await;
    let a = m.post("/api/chat", ollama_body(None)).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.json(), json!({"error": "mock error 404"}));
}

// ---------- shared behaviour ----------

/// ttft and chunk pacing mean the same in every format: first byte no
/// sooner than ttft, whole stream no sooner than ttft + chunks * delay.
#[tokio::test]
async fn pacing_is_the_same_in_every_format() {
    let m = start().await;
    m.behave(json!({"ttft_ms": 120, "chunk_delay_ms": 25, "chunks": 3})).await;
    let bedrock = format!("/model/{BEDROCK_MODEL}/converse-stream");
    let cases = [
        ("/v1/messages", anthropic_body(true)),
        ("/v1beta/models/g:streamGenerateContent?alt=sse", gemini_body()),
        (bedrock.as_str(), bedrock_body()),
        ("/v2/chat", cohere_body(true)),
        ("/api/chat", ollama_body(None)),
    ];
    for (path, body) in &cases {
        let (times, bytes) = arrivals(&m, path, body).await;
        assert!(!bytes.is_empty(), "{path}");
        assert!(times[0] >= Duration::from_millis(120), "{path}: {times:?}");
        let total = times[times.len() - 1];
        assert!(total >= Duration::from_millis(120 + 3 * 25), "{path}: {times:?}");
        assert!(times.len() >= 3, "{path}: pieces arrive apart: {times:?}");
    }
    let s = m.stats().await;
    assert_eq!((s["open_streams"].clone(), s["cancelled_streams"].clone()), (json!(0), json!(0)));
}

#[tokio::test]
async fn faults_apply_to_native_endpoints() {
    let m = start().await;
    m.behave(json!({"fault": "reset_before_headers", "times": 1})).await;
    let (got, err) = m.raw_to("/v1beta/models/g:generateContent", &gemini_body()).await;
    assert!(got.is_empty());
    assert_eq!(err.map(|e| e.kind()), Some(std::io::ErrorKind::ConnectionReset));

    m.behave(json!({"fault": "garbage", "times": 1})).await;
    let a = m.post("/v1/messages", anthropic_body(false)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&a.body).is_err());

    m.behave(json!({"fault": "html", "times": 1})).await;
    let a = m.post("/api/chat", ollama_body(None)).await;
    assert_eq!(a.status, StatusCode::BAD_GATEWAY);

    m.behave(json!({"fault": "reset_mid_body", "times": 1})).await;
    let (got, _) = m.raw_to("/v2/chat", &cohere_body(false)).await;
    let text = String::from_utf8_lossy(&got);
    let (head, body) = text.split_once("\r\n\r\n").expect("headers were sent");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("content-length");
    assert!(!body.is_empty() && body.len() < len, "{text}");

    m.behave(json!({"fault": "reset_mid_stream", "chunk_delay_ms": 2, "times": 1})).await;
    let (got, _) = m.raw_to("/v1/messages", &anthropic_body(true)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("message_start"), "{text}");
    assert!(!text.contains("message_stop"), "{text}");

    // Unknown paths and wrong methods.
    assert_eq!(m.post("/v1beta/models/g:countTokens", json!({})).await.status, StatusCode::NOT_FOUND);
    let a = m.get("/v1/messages").await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.json()["type"], "error");
}

// ---------- embeddings ----------

const TEXTS: [&str; 2] = [QUESTION, "Paris"];

/// A native embeddings endpoint: its path, a request for `TEXTS` in its
/// provider's shape, and how to read the vectors back from its answer.
type EmbeddingsEndpoint = (&'static str, Value, fn(&Value) -> Vec<Value>);

/// Every provider's native embeddings endpoint.
fn embeddings_endpoints() -> Vec<EmbeddingsEndpoint> {
    fn list(v: &Value, key: &str) -> Vec<Value> {
        v[key].as_array().cloned().unwrap_or_default()
    }
    vec![
        ("/v1/embeddings", json!({"model": "text-embedding-3-small", "input": TEXTS}), |v| {
            list(v, "data").iter().map(|d| d["embedding"].clone()).collect()
        }),
        ("/openai/deployments/emb/embeddings?api-version=2024-10-21", json!({"input": TEXTS}), |v| {
            list(v, "data").iter().map(|d| d["embedding"].clone()).collect()
        }),
        ("/mistral/v1/embeddings", json!({"model": "mistral-embed", "input": TEXTS}), |v| {
            list(v, "data").iter().map(|d| d["embedding"].clone()).collect()
        }),
        (
            "/v1beta/models/gemini-embedding-001:batchEmbedContents",
            json!({"requests": TEXTS.map(|t| json!({
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": t}]},
            }))}),
            |v| list(v, "embeddings").iter().map(|e| e["values"].clone()).collect(),
        ),
        (
            "/v1/projects/p/locations/us-central1/publishers/google/models/text-embedding-005:predict",
            json!({"instances": TEXTS.map(|t| json!({"content": t}))}),
            |v| list(v, "predictions").iter().map(|p| p["embeddings"]["values"].clone()).collect(),
        ),
        ("/model/cohere.embed-english-v3/invoke", json!({"texts": TEXTS, "input_type": "search_document"}), |v| {
            list(v, "embeddings")
        }),
        (
            "/v2/embed",
            json!({"model": "embed-v4.0", "texts": TEXTS, "input_type": "search_document", "embedding_types": ["float"]}),
            |v| v["embeddings"]["float"].as_array().cloned().unwrap_or_default(),
        ),
        ("/api/embed", json!({"model": "all-minilm", "input": TEXTS}), |v| list(v, "embeddings")),
    ]
}

#[tokio::test]
async fn every_embeddings_endpoint_answers_the_same_vectors() {
    let m = start().await;
    let want = tollgate_mock::embedding::json_vector(&tollgate_mock::embedding::embedding_of(QUESTION.as_bytes()));
    let mut first: Option<Vec<Value>> = None;
    for (path, body, vectors) in embeddings_endpoints() {
        let a = m.post(path, body.clone()).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text());
        assert_eq!(a.headers["content-type"], "application/json", "{path}");
        let got = vectors(&a.json());
        assert_eq!(got.len(), 2, "{path}: {}", a.text());
        assert_eq!(got[0], want, "{path}");
        match &first {
            None => first = Some(got),
            Some(f) => assert_eq!(&got, f, "{path}"),
        }
        let r = last_record(&m).await;
        assert_eq!(r["body"], body, "{path}: recorded as sent");
    }
    // Titan embeds one text per call: the same vector for the same text.
    let a = m.post("/model/amazon.titan-embed-text-v2%3A0/invoke", json!({"inputText": QUESTION})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.headers["x-amzn-bedrock-input-token-count"], "8");
    let v = a.json();
    assert_eq!(v["embedding"], want);
    assert_eq!(v["inputTextTokenCount"], 8);
    assert_eq!(v["embeddingsByType"]["float"], want);
}

#[tokio::test]
async fn embeddings_usage_and_dimensions_in_each_format() {
    let m = start().await;
    // 30 + 5 chars -> 8 + 2 tokens.
    let v = m.post("/v1/embeddings", json!({"input": TEXTS, "dimensions": 12})).await.json();
    assert_eq!(v["usage"], json!({"prompt_tokens": 10, "total_tokens": 10}));
    assert_eq!(v["data"][0]["embedding"].as_array().map(Vec::len), Some(12));
    let v = m
        .post("/mistral/v1/embeddings", json!({"model": "codestral-embed", "input": TEXTS, "output_dimension": 12}))
        .await
        .json();
    assert_eq!(v["usage"]["completion_tokens"], 0);
    assert_eq!(v["data"][1]["embedding"].as_array().map(Vec::len), Some(12));
    let v = m
        .post(
            "/v2/embed",
            json!({"model": "embed-v4.0", "texts": TEXTS, "input_type": "search_query", "output_dimension": 12}),
        )
        .await
        .json();
    assert_eq!(v["meta"]["billed_units"]["input_tokens"], 10);
    let v = m.post("/api/embed", json!({"model": "m", "input": QUESTION, "dimensions": 12})).await.json();
    assert_eq!(v["prompt_eval_count"], 8);
    assert_eq!(v["embeddings"][0].as_array().map(Vec::len), Some(12));
    let v = m
        .post(
            "/v1/projects/p/locations/l/publishers/google/models/text-embedding-005:predict",
            json!({"instances": [{"content": QUESTION}], "parameters": {"outputDimensionality": 12}}),
        )
        .await
        .json();
    assert_eq!(v["predictions"][0]["embeddings"]["statistics"]["token_count"], 8);
    assert_eq!(v["predictions"][0]["embeddings"]["values"].as_array().map(Vec::len), Some(12));
    let a = m
        .post(
            "/model/cohere.embed-v4%3A0/invoke",
            json!({"texts": TEXTS, "input_type": "search_document", "output_dimension": 12}),
        )
        .await;
    assert_eq!(a.headers["x-amzn-bedrock-input-token-count"], "10");
    let v = a.json();
    assert_eq!(v["response_type"], "embeddings_by_type");
    assert_eq!(v["embeddings"]["float"][0].as_array().map(Vec::len), Some(12));
    // base64, as OpenAI's SDKs ask by default: little-endian f32.
    let v = m.post("/v1/embeddings", json!({"input": "x", "encoding_format": "base64"})).await.json();
    assert_eq!(
        v["data"][0]["embedding"],
        tollgate_mock::embedding::base64_f32(&tollgate_mock::embedding::embedding_of(b"x"))
    );
}

#[tokio::test]
async fn embeddings_endpoints_refuse_like_their_providers() {
    let m = start().await;
    let a = m.post("/mistral/v1/embeddings", json!({"model": "mistral-embed", "input": TEXTS, "dimensions": 8})).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.json()["error"]["message"], "dimensions: Extra inputs are not permitted");
    let a = m
        .post(
            "/v1beta/models/gemini-embedding-001:batchEmbedContents",
            json!({"requests": [{"model": "models/other", "content": {"parts": [{"text": "x"}]}}]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"]["status"], "INVALID_ARGUMENT");
    let a = m
        .post(
            "/v1/projects/p/locations/l/publishers/google/models/gemini-embedding-001:predict",
            json!({"instances": [{"content": "a"}, {"content": "b"}]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "one instance per call");
    let a = m.post("/model/amazon.titan-embed-text-v2%3A0/invoke", json!({"texts": TEXTS})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.headers["x-amzn-errortype"], "ValidationException");
    assert!(a.json()["message"].as_str().is_some_and(|m| m.contains("extraneous key [texts]")));
    let a = m.post("/model/anthropic.claude-v2/invoke", json!({"prompt": "x"})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = m.post("/api/embed", json!({"input": "x"})).await;
    assert_eq!((a.status, a.json()), (StatusCode::BAD_REQUEST, json!({"error": "model is required"})));
    let a = m.post("/v2/embed", json!({"model": "embed-v4.0", "texts": ["x"]})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.json()["message"].is_string());
}

#[tokio::test]
async fn embeddings_errors_latency_and_faults_are_shared() {
    let m = start().await;
    let endpoints = embeddings_endpoints();
    // A behaviour's error status, in each provider's own error body.
    let native_errors = [
        json!({"error": {"message": "mock error 429", "type": "mock_error", "code": "429"}}),
        json!({"error": {"message": "mock error 429", "type": "mock_error", "code": "429"}}),
        json!({"error": {"message": "mock error 429", "type": "mock_error", "code": "429"}}),
        json!({"error": {"code": 429, "message": "mock error 429", "status": "RESOURCE_EXHAUSTED"}}),
        json!({"error": {"code": 429, "message": "mock error 429", "status": "RESOURCE_EXHAUSTED"}}),
        json!({"message": "mock error 429"}),
        json!({"message": "mock error 429"}),
        json!({"error": "mock error 429"}),
    ];
    for ((path, body, _), want) in endpoints.iter().zip(native_errors) {
        m.behave(json!({"status": 429, "retry_after": 2, "times": 1})).await;
        let a = m.post(path, body.clone()).await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{path}");
        assert_eq!(a.headers["retry-after"], "2", "{path}");
        assert_eq!(a.json(), want, "{path}");
        if path.starts_with("/model/") {
            assert_eq!(a.headers["x-amzn-errortype"], "ThrottlingException");
        }
    }

    m.behave(json!({"latency_ms": 150, "times": 1})).await;
    let (path, body, _) = &endpoints[3];
    let t0 = Instant::now();
    assert_eq!(m.post(path, body.clone()).await.status, StatusCode::OK);
    assert!(t0.elapsed() >= Duration::from_millis(150));

    m.behave(json!({"fault": "garbage", "times": 1})).await;
    let (path, body, _) = &endpoints[6];
    let a = m.post(path, body.clone()).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&a.body).is_err());

    m.behave(json!({"fault": "reset_before_headers", "times": 1})).await;
    let (path, body, _) = &endpoints[7];
    let (got, err) = m.raw_to(path, body).await;
    assert!(got.is_empty());
    assert_eq!(err.map(|e| e.kind()), Some(std::io::ErrorKind::ConnectionReset));

    m.behave(json!({"fault": "reset_mid_body", "times": 1})).await;
    let (got, _) = m.raw_to("/model/cohere.embed-english-v3/invoke", &endpoints[5].1).await;
    let text = String::from_utf8_lossy(&got);
    let (head, body) = text.split_once("\r\n\r\n").expect("headers were sent");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("content-length");
    assert!(!body.is_empty() && body.len() < len, "{text}");

    let a = m.get("/v2/embed").await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(a.json()["message"].is_string(), "Cohere's error shape");
}

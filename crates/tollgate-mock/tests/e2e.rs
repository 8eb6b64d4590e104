//! End-to-end checks of the mock over real HTTP: an in-process server on
//! port 0 per test, plus one test of the binary's startup line.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{start, Mock};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tollgate_mock::{AppState, Config};

fn chat_body(stream: bool, include_usage: bool) -> Value {
    let mut b = json!({
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is the capital of France?"}
        ]
    });
    if stream {
        b["stream"] = json!(true);
    }
    if include_usage {
        b["stream_options"] = json!({"include_usage": true});
    }
    b
}

/// The `data:` payloads of an SSE body.
fn sse_payloads(body: &str) -> Vec<&str> {
    body.split("\n\n").filter(|e| !e.is_empty()).map(|e| e.strip_prefix("data: ").expect("data event")).collect()
}

#[tokio::test]
async fn json_answer_with_usage() {
    let m = start().await;
    let a = m.post("/v1/chat/completions", chat_body(false, false)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["content-type"], "application/json");
    assert_eq!(a.headers["content-length"], a.body.len().to_string().as_str());
    let v = a.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-test");
    assert_eq!(v["choices"][0]["message"]["content"], "mock reply to: What is the capital of France?");
    // 14 + 30 = 44 chars -> 11 tokens; 8 chunks by default.
    assert_eq!(v["usage"], json!({"prompt_tokens": 11, "completion_tokens": 8, "total_tokens": 19}));

    // Azure-like path and invalid JSON.
    let a = m.post("/openai/deployments/gpt/chat/completions", chat_body(false, false)).await;
    assert_eq!(a.status, StatusCode::OK);
    let bad = m.send(Method::POST, "/v1/chat/completions", None, &[]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["error"]["type"], "invalid_request_error");
    assert_eq!(m.stats().await["requests"], 3);
}

#[tokio::test]
async fn stream_with_include_usage_ends_with_usage_and_done() {
    let m = start().await;
    let a = m.post("/v1/chat/completions", chat_body(true, true)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["content-type"], "text/event-stream");
    assert!(a.headers.get("content-length").is_none());
    let text = a.text();
    let p = sse_payloads(&text);
    assert_eq!(p.len(), 1 + 8 + 1 + 1 + 1);
    assert_eq!(p[p.len() - 1], "[DONE]");
    let usage: Value = serde_json::from_str(p[p.len() - 2]).expect("json");
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["total_tokens"], 19);
    let finish: Value = serde_json::from_str(p[p.len() - 3]).expect("json");
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert!(finish["usage"].is_null());
    let content: String = p[1..9]
        .iter()
        .map(|e| {
            let v: Value = serde_json::from_str(e).expect("json");
            v["choices"][0]["delta"]["content"].as_str().expect("content").to_owned()
        })
        .collect();
    assert_eq!(content, "mock reply to: What is the capital of France?");
    let s = m.stats().await;
    assert_eq!(s["open_streams"], 0);
    assert_eq!(s["cancelled_streams"], 0);
}

#[tokio::test]
async fn stream_without_include_usage_has_no_usage() {
    let m = start().await;
    let a = m.post("/v1/chat/completions", chat_body(true, false)).await;
    let text = a.text();
    assert!(!text.contains("usage"), "{text}");
    let p = sse_payloads(&text);
    assert_eq!(p.len(), 1 + 8 + 1 + 1);
    assert_eq!(p[p.len() - 1], "[DONE]");
}

#[tokio::test]
async fn stream_timing_follows_ttft_and_chunk_delay() {
    let m = start().await;
    m.behave(json!({"ttft_ms": 150, "chunk_delay_ms": 30, "chunks": 3})).await;
    let req = Request::post(format!("http://{}/v1/chat/completions", m.addr))
        .body(Full::new(Bytes::from(chat_body(true, false).to_string())))
        .expect("request");
    let t0 = Instant::now();
    let resp = m.client.request(req).await.expect("response");
    let mut body = resp.into_body();
    let mut arrivals = Vec::new();
    while let Some(frame) = body.frame().await {
        if frame.expect("frame").is_data() {
            arrivals.push(t0.elapsed());
        }
    }
    assert!(arrivals[0] >= Duration::from_millis(150), "{arrivals:?}");
    let total = arrivals[arrivals.len() - 1];
    assert!(total >= Duration::from_millis(150 + 3 * 30), "{arrivals:?}");
    // Delayed events are separate writes, so at least role + 3 pieces arrive apart.
    assert!(arrivals.len() >= 4, "{arrivals:?}");
}

#[tokio::test]
async fn status_override_with_times_then_normal() {
    let m = start().await;
    m.behave(json!({"status": 429, "retry_after": "2", "times": 1})).await;
    let a = m.post("/v1/chat/completions", chat_body(false, false)).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.headers["retry-after"], "2");
    assert_eq!(a.json(), json!({"error": {"message": "mock error 429", "type": "mock_error", "code": "429"}}));
    let a = m.post("/v1/chat/completions", chat_body(false, false)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.headers.get("retry-after").is_none());

    // Raw error body, permanent until reset.
    m.behave(json!({"status": 503, "error_body": "upstream sad"})).await;
    for _ in 0..2 {
        let a = m.post("/v1/chat/completions", chat_body(true, false)).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(a.text(), "upstream sad");
    }
    assert_eq!(m.post("/_mock/reset", json!({})).await.status, StatusCode::OK);
    let a = m.post("/v1/chat/completions", chat_body(false, false)).await;
    assert_eq!(a.status, StatusCode::OK);

    // Typos in a behaviour are refused.
    let a = m.post("/_mock/behavior", json!({"stauts": 500})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn requests_are_recorded_with_headers_and_body() {
    let m = start().await;
    let body = chat_body(false, false);
    m.send(
        Method::POST,
        "/v1/chat/completions?api-version=1",
        Some(body.clone()),
        &[("authorization", "Bearer sk-test"), ("x-multi", "a"), ("x-multi", "b")],
    )
    .await;
    m.get("/_mock/stats").await;
    m.get("/health").await;
    let recs = m.get("/_mock/requests").await.json();
    let recs = recs.as_array().expect("array");
    assert_eq!(recs.len(), 1, "control and health requests are not recorded: {recs:?}");
    let r = &recs[0];
    assert_eq!(r["method"], "POST");
    assert_eq!(r["path"], "/v1/chat/completions");
    assert_eq!(r["query"], "api-version=1");
    assert_eq!(r["headers"]["authorization"], "Bearer sk-test");
    assert_eq!(r["headers"]["x-multi"], "a, b");
    assert_eq!(r["body"], body);
    assert_eq!(r["body_len"], body.to_string().len());
    assert_eq!(r["body_sha256"].as_str().map(str::len), Some(64));

    m.post("/_mock/reset", json!({})).await;
    assert_eq!(m.get("/_mock/requests").await.json(), json!([]));
}

#[tokio::test]
async fn records_keep_the_exact_body_bytes_and_every_header() {
    let m = start().await;
    // Spacing, a line break and a \u escape: a JSON round trip would change them.
    const BODY: &[u8] = br#"{ "model":"claude-x",  "max_tokens" :  100,
 "messages":[{"role":"user","content":"h\u00e9"}]}"#;
    let a = m
        .post_bytes(
            "/v1/messages/count_tokens",
            BODY,
            &[
                ("x-api-key", "sk-ant-test"),
                ("anthropic-version", "2023-06-01"),
                ("anthropic-beta", "prompt-caching-2024-07-31,token-counting-2024-11-01"),
                ("authorization", "Bearer other"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let recs = m.get("/_mock/requests").await.json();
    let r = &recs[0];
    assert_eq!(r["body_base64"], tollgate_mock::b64::encode(BODY).as_str());
    assert_eq!(r["body_len"], BODY.len());
    assert_eq!(r["body_sha256"], tollgate_mock::record::hex_sha256(BODY).as_str());
    assert_eq!(r["body"]["messages"][0]["content"], "hé");
    assert_eq!(r["headers"]["x-api-key"], "sk-ant-test");
    assert_eq!(r["headers"]["anthropic-version"], "2023-06-01");
    assert_eq!(r["headers"]["anthropic-beta"], "prompt-caching-2024-07-31,token-counting-2024-11-01");
    assert_eq!(r["headers"]["authorization"], "Bearer other");
}

#[tokio::test]
async fn chat_tool_messages_must_answer_a_call_of_the_assistant_turn() {
    let m = start().await;
    let body = |id: &str| {
        json!({"model": "gpt-test", "messages": [
            {"role": "user", "content": "What is 1+1?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": id, "content": "2"},
        ]})
    };
    let a = m.post("/v1/chat/completions", body("call_1")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["choices"][0]["message"]["content"], "mock reply to: What is 1+1?");
    let a = m.post("/v1/chat/completions", body("call_2")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let v = a.json();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(
        v["error"]["message"],
        "Invalid parameter: 'tool_call_id' of 'call_2' not found in 'tool_calls' of previous message."
    );
}

// ---------- Responses API ----------

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

/// Checks each event's `type` and `sequence_number`; returns the names.
fn sequenced(ev: &[(String, Value)]) -> Vec<&str> {
    for (i, (name, v)) in ev.iter().enumerate() {
        assert_eq!(v["type"], name.as_str());
        assert_eq!(v["sequence_number"], i, "{name}");
    }
    ev.iter().map(|(n, _)| n.as_str()).collect()
}

const RESPONSES_TOOLS: &str =
    r#"[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{}}}]"#;

fn responses_body(stream: bool) -> Value {
    json!({
        "model": "gpt-5",
        "instructions": "You are terse.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "What is the capital of France?"}]}],
        "tools": serde_json::from_str::<Value>(RESPONSES_TOOLS).expect("json"),
        "stream": stream,
    })
}

#[tokio::test]
async fn responses_json_and_stream() {
    let m = start().await;
    let a = m.post("/v1/responses", responses_body(false)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["content-type"], "application/json");
    assert!(a.headers.contains_key("x-request-id"));
    let v = a.json();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["output"][0]["content"][0]["text"], "mock reply to: What is the capital of France?");
    // 14 + 30 = 44 chars -> 11 tokens; 8 chunks by default.
    assert_eq!(v["usage"]["input_tokens"], 11);
    assert_eq!(v["usage"]["output_tokens"], 8);
    assert_eq!(v["usage"]["total_tokens"], 19);
    assert_eq!(v["instructions"], "You are terse.");

    m.behave(json!({"chunks": 4})).await;
    let a = m.post("/openai/v1/responses", responses_body(true)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.headers["content-type"].to_str().is_ok_and(|t| t.starts_with("text/event-stream")));
    let ev = named_events(&a.text());
    let names = sequenced(&ev);
    let mut want =
        vec!["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"];
    want.extend(["response.output_text.delta"; 4]);
    want.extend([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(names, want);
    let text: String = ev
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, v)| v["delta"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(text, "mock reply to: What is the capital of France?");
    let done = &ev[ev.len() - 1].1["response"];
    assert_eq!(done["usage"]["output_tokens"], 4);
    assert_eq!(done["output"][0]["content"][0]["text"], text.as_str());
}

#[tokio::test]
async fn responses_function_call_continues_with_previous_response_id() {
    let m = start().await;
    m.behave(json!({"tool_call": true, "times": 2})).await;
    let first = m.post("/v1/responses", responses_body(false)).await.json();
    let call = &first["output"][0];
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["arguments"], r#"{"x":1}"#);

    let ev = named_events(&m.post("/v1/responses", responses_body(true)).await.text());
    assert_eq!(
        sequenced(&ev),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );

    let follow_up = json!({
        "model": "gpt-5",
        "previous_response_id": first["id"],
        "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}],
    });
    let a = m.post("/v1/responses", follow_up.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let v = a.json();
    assert_eq!(v["previous_response_id"], first["id"]);
    assert_eq!(v["output"][0]["content"][0]["text"], "mock reply to: What is the capital of France?");

    let mut unknown = follow_up;
    unknown["previous_response_id"] = json!("resp_from_the_real_openai");
    let a = m.post("/v1/responses", unknown).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.json()["error"]["code"], "previous_response_not_found");
}

#[tokio::test]
async fn responses_incomplete_errors_and_faults() {
    let m = start().await;
    m.behave(json!({"hit_max_tokens": true, "times": 2})).await;
    let v = m.post("/v1/responses", responses_body(false)).await.json();
    assert_eq!(v["status"], "incomplete");
    assert_eq!(v["incomplete_details"]["reason"], "max_output_tokens");
    let ev = named_events(&m.post("/v1/responses", responses_body(true)).await.text());
    assert_eq!(ev.last().map(|(n, _)| n.as_str()), Some("response.incomplete"));

    m.behave(json!({"status": 429, "retry_after": 2, "times": 1})).await;
    let a = m.post("/v1/responses", responses_body(true)).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.headers["retry-after"], "2");
    assert_eq!(
        a.json(),
        json!({"error": {"message": "mock error 429", "type": "mock_error", "param": null, "code": "429"}})
    );

    m.behave(json!({"fault": "reset_mid_stream", "chunk_delay_ms": 2, "times": 1})).await;
    let (got, _) = m.raw_to("/v1/responses", &responses_body(true)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("response.created"), "{text}");
    assert!(!text.contains("response.completed"), "{text}");

    let a = m.post("/v1/responses", json!({"input": "no model"})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"]["param"], "model");
    let a = m.get("/v1/responses").await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(a.json()["error"]["message"].is_string());
}

#[tokio::test]
async fn embeddings_and_health() {
    let m = start().await;
    let a = m.post("/v1/embeddings", json!({"model": "emb", "input": ["hello", "world!!!"]})).await;
    assert_eq!(a.status, StatusCode::OK);
    let v = a.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(v["data"][0]["embedding"].as_array().map(Vec::len), Some(8));
    assert_eq!(v["usage"], json!({"prompt_tokens": 4, "total_tokens": 4}));
    let again = m.post("/v1/embeddings", json!({"model": "emb", "input": ["hello", "world!!!"]})).await.json();
    assert_eq!(again["data"], v["data"], "deterministic");

    let h = m.get("/health").await;
    assert_eq!((h.status, h.text().as_str()), (StatusCode::OK, "ok"));
    assert_eq!(m.get("/v1/nothing").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn fault_reset_before_headers() {
    let m = start().await;
    m.behave(json!({"fault": "reset_before_headers", "times": 1})).await;
    let (got, err) = m.raw(&chat_body(false, false)).await;
    assert!(got.is_empty(), "nothing must be answered: {:?}", String::from_utf8_lossy(&got));
    let err = err.expect("connection must be reset, not closed cleanly");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    // The override was one-shot.
    let a = m.post("/v1/chat/completions", chat_body(false, false)).await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn fault_reset_mid_body() {
    let m = start().await;
    m.behave(json!({"fault": "reset_mid_body"})).await;
    let (got, _err) = m.raw(&chat_body(false, false)).await;
    let text = String::from_utf8_lossy(&got);
    let (head, body) = text.split_once("\r\n\r\n").expect("headers were sent");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("content-length");
    assert!(!body.is_empty() && body.len() < len, "got {} of {len}", body.len());
}

#[tokio::test]
async fn fault_reset_mid_stream() {
    let m = start().await;
    m.behave(json!({"fault": "reset_mid_stream", "chunk_delay_ms": 5})).await;
    let (got, _err) = m.raw(&chat_body(true, false)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("transfer-encoding: chunked"), "{text}");
    assert!(text.contains("chat.completion.chunk"), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    assert!(!text.ends_with("0\r\n\r\n"), "no terminating chunk: {text}");
    let s = m.stats().await;
    assert_eq!(s["open_streams"], 0);
    assert_eq!(s["cancelled_streams"], 0, "a deliberate fault is not a client cancel");
}

#[tokio::test]
async fn fault_bodies() {
    let m = start().await;
    m.behave(json!({"fault": "garbage", "times": 1})).await;
    m.behave(json!({"fault": "empty_body", "times": 1})).await;
    m.behave(json!({"fault": "html", "times": 1})).await;
    let a = m.post("/v1/chat/completions", chat_body(false, false)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["content-type"], "application/json");
    assert!(serde_json::from_slice::<Value>(&a.body).is_err());
    let a = m.post("/v1/chat/completions", chat_body(false, false)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.is_empty());
    let a = m.post("/v1/chat/completions", chat_body(false, false)).await;
    assert_eq!(a.status, StatusCode::BAD_GATEWAY);
    assert!(a.headers["content-type"].to_str().is_ok_and(|v| v.starts_with("text/html")));
    let a = m.post("/v1/chat/completions", chat_body(false, false)).await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn client_going_away_counts_as_cancelled_stream() {
    let m = start().await;
    m.behave(json!({"chunk_delay_ms": 200})).await;
    let mut tcp = TcpStream::connect(m.addr).await.expect("connect");
    let body = chat_body(true, false).to_string();
    let req =
        format!("POST /v1/chat/completions HTTP/1.1\r\nhost: mock\r\ncontent-length: {}\r\n\r\n{}", body.len(), body);
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut buf = [0u8; 1024];
    let n = tcp.read(&mut buf).await.expect("read");
    assert!(n > 0);
    assert_eq!(m.stats().await["open_streams"], 1);
    drop(tcp);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = m.stats().await;
        if s["cancelled_streams"] == 1 && s["open_streams"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "stream not seen as cancelled: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Shared state is reachable in-process too.
    assert!(m.state.recorder.is_some());
}

#[tokio::test]
async fn binary_prints_listening_line() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tollgate-mock"))
        .args(["--listen", "127.0.0.1:0", "--no-record", "--chunks", "2"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(10), tokio::io::BufReader::new(stdout).read_line(&mut line))
        .await
        .expect("startup line in time")
        .expect("read");
    let addr: SocketAddr =
        line.trim_end().strip_prefix("tollgate-mock listening on ").expect("line format").parse().expect("address");
    assert_ne!(addr.port(), 0);
    let m = Mock {
        addr,
        state: Arc::new(AppState::new(Config::default())),
        client: Client::builder(TokioExecutor::new()).build_http(),
    };
    let v = m.post("/v1/chat/completions", chat_body(false, false)).await.json();
    assert_eq!(v["usage"]["completion_tokens"], 2, "CLI default applied");
    assert_eq!(m.get("/_mock/requests").await.json(), json!([]), "--no-record");
    child.kill().await.expect("kill");
}

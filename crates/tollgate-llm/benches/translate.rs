//! Translation throughput per provider, for each caller format: a 64 KiB
//! conversation (OpenAI chat, Anthropic Messages, Responses) into the
//! provider's format, and a 1,000-chunk stream in the provider's format
//! rendered as OpenAI chunks, Anthropic events and Responses events, fed in
//! 4 KiB reads as a socket would deliver it. Where the caller speaks the
//! provider's format (chat to OpenAI, Messages to Anthropic, Responses to
//! OpenAI) the request and the stream relay natively (`*_native`): the
//! stream is only observed.
//!
//! Groups are named `request_64k[_messages|_responses]` and
//! `stream_1000_chunks[_messages|_responses]`, each with one entry per
//! provider, so the results read as a table.
//! `cargo bench -p tollgate-llm --bench translate`; criterion prints MB/s.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tollgate_llm::completion::AnswerMeta;
use tollgate_llm::ingress::{Ingress, Request};
use tollgate_llm::provider::{prepare, prepare_request, stream, stream_for, Provider, ProviderOptions};
use tollgate_llm::{ChatRequest, ModelDefaults};

const CHUNKS: usize = 1000;
const READ: usize = 4096;

/// About 64 KiB of conversation: system prompt, turns, a tool.
fn request_64k() -> Vec<u8> {
    let mut messages = vec![serde_json::json!({"role": "system", "content": "You are a careful assistant."})];
    let turn = "Explain the borrow checker in a few sentences, with an example. ".repeat(4);
    while serde_json::to_vec(&messages).map(|v| v.len()).unwrap_or(0) < 64 * 1024 {
        messages.push(serde_json::json!({"role": "user", "content": turn}));
        messages.push(serde_json::json!({"role": "assistant", "content": turn}));
    }
    messages.push(serde_json::json!({"role": "user", "content": "Thanks. And lifetimes?"}));
    serde_json::to_vec(&serde_json::json!({
        "model": "m",
        "messages": messages,
        "max_tokens": 512,
        "temperature": 0.2,
        "stream": true,
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
    }))
    .unwrap_or_default()
}

/// The same conversation as an Anthropic Messages request.
fn messages_64k() -> Vec<u8> {
    let mut messages = Vec::new();
    let turn = "Explain the borrow checker in a few sentences, with an example. ".repeat(4);
    while serde_json::to_vec(&messages).map(|v| v.len()).unwrap_or(0) < 64 * 1024 {
        messages.push(serde_json::json!({"role": "user", "content": turn}));
        messages.push(serde_json::json!({"role": "assistant", "content": turn}));
    }
    messages.push(serde_json::json!({"role": "user", "content": "Thanks. And lifetimes?"}));
    serde_json::to_vec(&serde_json::json!({
        "system": "You are a careful assistant.",
        "messages": messages,
        "max_tokens": 512,
        "temperature": 0.2,
        "stream": true,
        "tools": [{"name": "lookup", "input_schema": {"type": "object"}}],
    }))
    .unwrap_or_default()
}

/// The same conversation as a Responses request.
fn responses_64k() -> Vec<u8> {
    let mut input = Vec::new();
    let turn = "Explain the borrow checker in a few sentences, with an example. ".repeat(4);
    while serde_json::to_vec(&input).map(|v| v.len()).unwrap_or(0) < 64 * 1024 {
        input.push(serde_json::json!({"role": "user", "content": turn}));
        input.push(serde_json::json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": turn}]}));
    }
    input.push(serde_json::json!({"role": "user", "content": "Thanks. And lifetimes?"}));
    serde_json::to_vec(&serde_json::json!({
        "instructions": "You are a careful assistant.",
        "input": input,
        "max_output_tokens": 512,
        "temperature": 0.2,
        "stream": true,
        "store": false,
        "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
    }))
    .unwrap_or_default()
}

/// A 1,000-delta answer of OpenAI's Responses API, as OpenAI streams it to
/// a Responses caller (the native relay's input).
fn responses_stream() -> Vec<u8> {
    let mut s = String::new();
    let mut n = 0;
    let mut event = |s: &mut String, kind: &str, body: &str| {
        s.push_str(&format!("event: {kind}\ndata: {{\"type\":\"{kind}\",\"sequence_number\":{n},{body}}}\n\n"));
        n += 1;
    };
    let response = |status: &str, output: &str, usage: &str| {
        format!("\"response\":{{\"id\":\"resp_1\",\"object\":\"response\",\"created_at\":1,\"status\":\"{status}\",\"model\":\"gpt-4.1\",\"output\":[{output}],\"usage\":{usage}}}")
    };
    event(&mut s, "response.created", &response("in_progress", "", "null"));
    event(&mut s, "response.output_item.added", "\"output_index\":0,\"item\":{\"id\":\"msg_1\",\"type\":\"message\",\"status\":\"in_progress\",\"role\":\"assistant\",\"content\":[]}");
    event(&mut s, "response.content_part.added", "\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"\",\"annotations\":[]}");
    for _ in 0..CHUNKS {
        event(
            &mut s,
            "response.output_text.delta",
            "\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"token \",\"logprobs\":[]",
        );
    }
    let text = "token ".repeat(CHUNKS);
    event(
        &mut s,
        "response.output_text.done",
        &format!("\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"text\":\"{text}\",\"logprobs\":[]"),
    );
    let item = format!("{{\"id\":\"msg_1\",\"type\":\"message\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":[{{\"type\":\"output_text\",\"text\":\"{text}\",\"annotations\":[]}}]}}");
    event(&mut s, "response.output_item.done", &format!("\"output_index\":0,\"item\":{item}"));
    let usage = "{\"input_tokens\":10,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":1000,\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":1010}";
    event(&mut s, "response.completed", &response("completed", &item, usage));
    s.into_bytes()
}

/// A 1,000-chunk answer in the provider's own stream format.
fn native_stream(p: Provider) -> Vec<u8> {
    let piece = "token ";
    let mut s = String::new();
    match p {
        Provider::Anthropic => {
            s.push_str("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n");
            s.push_str("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
            for _ in 0..CHUNKS {
                s.push_str(&format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{piece}\"}}}}\n\n"));
            }
            s.push_str("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
            s.push_str("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":1000}}\n\n");
            s.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        }
        Provider::Gemini => {
            for i in 0..CHUNKS {
                let finish = if i + 1 == CHUNKS { ",\"finishReason\":\"STOP\"" } else { "" };
                s.push_str(&format!("data: {{\"candidates\":[{{\"content\":{{\"parts\":[{{\"text\":\"{piece}\"}}],\"role\":\"model\"}},\"index\":0{finish}}}],\"usageMetadata\":{{\"promptTokenCount\":10,\"candidatesTokenCount\":{i},\"totalTokenCount\":{}}},\"modelVersion\":\"gemini-2.0-flash\"}}\r\n\r\n", i + 10));
            }
        }
        Provider::Cohere => {
            s.push_str("event: message-start\ndata: {\"id\":\"c1\",\"type\":\"message-start\",\"delta\":{\"message\":{\"role\":\"assistant\",\"content\":[],\"tool_plan\":\"\",\"tool_calls\":[],\"citations\":[]}}}\n\n");
            s.push_str("event: content-start\ndata: {\"type\":\"content-start\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"type\":\"text\",\"text\":\"\"}}}}\n\n");
            for _ in 0..CHUNKS {
                s.push_str(&format!("event: content-delta\ndata: {{\"type\":\"content-delta\",\"index\":0,\"delta\":{{\"message\":{{\"content\":{{\"text\":\"{piece}\"}}}}}}}}\n\n"));
            }
            s.push_str("event: content-end\ndata: {\"type\":\"content-end\",\"index\":0}\n\n");
            s.push_str("event: message-end\ndata: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\",\"usage\":{\"billed_units\":{\"input_tokens\":10,\"output_tokens\":1000},\"tokens\":{\"input_tokens\":10,\"output_tokens\":1000}}}}\n\n");
        }
        Provider::Ollama => {
            for _ in 0..CHUNKS {
                s.push_str(&format!("{{\"model\":\"llama3.2\",\"created_at\":\"2024-01-01T00:00:00Z\",\"message\":{{\"role\":\"assistant\",\"content\":\"{piece}\"}},\"done\":false}}\n"));
            }
            s.push_str("{\"model\":\"llama3.2\",\"created_at\":\"2024-01-01T00:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":10,\"eval_count\":1000}\n");
        }
        Provider::Bedrock => return tollgate_llm::bedrock::test_stream(CHUNKS, piece),
        _ => {
            for _ in 0..CHUNKS {
                s.push_str(&format!("data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{piece}\"}},\"finish_reason\":null}}],\"usage\":null}}\n\n"));
            }
            s.push_str("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":1000,\"total_tokens\":1010}}\n\ndata: [DONE]\n\n");
        }
    }
    s.into_bytes()
}

const PROVIDERS: [Provider; 6] =
    [Provider::OpenAi, Provider::Anthropic, Provider::Gemini, Provider::Bedrock, Provider::Cohere, Provider::Ollama];

fn requests(c: &mut Criterion) {
    let body = request_64k();
    let defaults = ModelDefaults { name: Some("m".into()), ..ModelDefaults::default() };
    let opts = ProviderOptions::default();
    let mut g = c.benchmark_group("request_64k");
    g.throughput(Throughput::Bytes(body.len() as u64));
    for p in PROVIDERS {
        g.bench_with_input(BenchmarkId::from_parameter(p.name()), &body, |b, body| {
            b.iter(|| {
                let req = ChatRequest::parse(body).ok();
                req.and_then(|r| prepare(p, &r, &defaults, &opts, &[]).ok())
            })
        });
    }
    g.finish();
    for (group, ingress, body) in [
        ("request_64k_messages", Ingress::AnthropicMessages, messages_64k()),
        ("request_64k_responses", Ingress::OpenAiResponses, responses_64k()),
    ] {
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Bytes(body.len() as u64));
        for p in PROVIDERS {
            let id = if ingress.is_native(p) { format!("{}_native", p.name()) } else { p.name().to_string() };
            g.bench_with_input(BenchmarkId::from_parameter(id), &body, |b, body| {
                b.iter(|| {
                    let req = Request::parse(ingress, body);
                    let call = req.and_then(|r| prepare_request(p, &r, &defaults, &opts, &[]));
                    assert!(call.is_ok(), "{} request into {}: {call:?}", ingress.label(), p.name());
                    call.map(|c| c.body.len()).unwrap_or(0)
                })
            });
        }
        g.finish();
    }
}

fn meta() -> AnswerMeta {
    AnswerMeta { model: "m".into(), request_id: "r1".into(), client_wants_usage: true, ..AnswerMeta::default() }
}

/// Feeds the stream in socket-sized reads; the bytes sent to the caller.
fn relay(s: &mut dyn tollgate_llm::stream::ChatStream, input: &[u8], what: &str) -> usize {
    let mut out = 0;
    for read in input.chunks(READ) {
        out += s.feed(read).len();
    }
    out += s.finish().len();
    assert!(s.completed(), "{what} did not complete");
    out
}

fn streams(c: &mut Criterion) {
    let mut g = c.benchmark_group("stream_1000_chunks");
    for p in PROVIDERS {
        let input = native_stream(p);
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(p.name()), &input, |b, input| {
            b.iter(|| relay(stream(p, meta()).as_mut(), input, p.name()))
        });
    }
    g.finish();
    for (group, ingress) in [
        ("stream_1000_chunks_messages", Ingress::AnthropicMessages),
        ("stream_1000_chunks_responses", Ingress::OpenAiResponses),
    ] {
        let mut g = c.benchmark_group(group);
        // Every provider's stream rendered in the caller's format (for the
        // provider the caller speaks natively too: the translated path).
        for p in PROVIDERS {
            let input = native_stream(p);
            g.throughput(Throughput::Bytes(input.len() as u64));
            g.bench_with_input(BenchmarkId::from_parameter(p.name()), &input, |b, input| {
                b.iter(|| relay(stream_for(p, ingress, false, meta()).as_mut(), input, p.name()))
            });
        }
        // The native relay: the provider's own stream, only observed.
        let (p, input) = match ingress {
            Ingress::AnthropicMessages => (Provider::Anthropic, native_stream(Provider::Anthropic)),
            _ => (Provider::OpenAi, responses_stream()),
        };
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(format!("{}_native", p.name())), &input, |b, input| {
            b.iter(|| relay(stream_for(p, ingress, true, meta()).as_mut(), input, "native relay"))
        });
        g.finish();
    }
}

criterion_group!(benches, requests, streams);
criterion_main!(benches);

//! Anthropic Messages callers reaching other providers, whole: a Messages
//! request through `prepare_request`, a provider's answer and stream (the
//! Gemini fixtures) rendered as Anthropic's Message object and event stream,
//! the same however the upstream bytes are chunked; and an Anthropic target
//! getting the caller's bytes untouched.
//!
//! With `ANTHROPIC_INGRESS_DUMP=<dir>` set, the rendered answers and streams
//! are written there, for `anthropic_ingress_sdk_check.py` to feed through
//! the official `anthropic` SDK.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use tollgate_llm::chat::Thinking;
use tollgate_llm::completion::{AnswerMeta, Completion, FinishReason};
use tollgate_llm::ingress::anthropic::{render, MessagesRequest, Writer};
use tollgate_llm::ingress::{Ingress, ModelEntry, Request};
use tollgate_llm::provider::{answer_for, prepare_request, stream_for, Provider, ProviderOptions};
use tollgate_llm::stream::{render_in_pieces, Decoder, Delta, Translator, UsageUpdate};
use tollgate_llm::{gemini, LlmError, ModelDefaults, Usage};

const GEMINI_TEXT: &str = include_str!("golden/answers/gemini/stream_text.sse");
const GEMINI_CALLS: &str = include_str!("golden/answers/gemini/stream_function_calls.sse");
const GEMINI_ERROR: &str = include_str!("golden/answers/gemini/stream_error.sse");
const GEMINI_ANSWER_CALLS: &str = include_str!("golden/answers/gemini/function_calls.json");

fn meta() -> AnswerMeta {
    AnswerMeta {
        fallback_id: "chatcmpl-req7".into(),
        request_id: "req7".into(),
        created: 1_700_000_000,
        model: "gemini-2.5-flash".into(),
        client_wants_usage: true,
        ..AnswerMeta::default()
    }
}

/// Writes `bytes` to the dump directory, when one is set.
fn dump(name: &str, bytes: &[u8]) {
    if let Some(dir) = std::env::var_os("ANTHROPIC_INGRESS_DUMP") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("dump dir");
        std::fs::write(dir.join(name), bytes).expect("dump");
    }
}

/// (event name, data) of each SSE event.
fn events(out: &[u8]) -> Vec<(String, Value)> {
    String::from_utf8(out.to_vec())
        .expect("utf8")
        .split_terminator("\n\n")
        .map(|e| {
            let (name, data) = e.split_once('\n').expect("event and data lines");
            let name = name.strip_prefix("event: ").expect("event line").to_string();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").expect("data line")).expect("JSON data");
            assert_eq!(data["type"], name.as_str());
            (name, data)
        })
        .collect()
}

fn names(ev: &[(String, Value)]) -> Vec<&str> {
    ev.iter().map(|(n, _)| n.as_str()).collect()
}

/// The stream rendered whole, and checked to render the same split at every
/// byte and in one-byte pieces.
fn gemini_stream(stream: &str) -> (Vec<u8>, Option<Usage>, bool) {
    let bytes = stream.as_bytes();
    let whole = render_in_pieces(gemini::StreamDecoder::new(), Writer::new(), meta(), &[bytes]);
    for cut in 0..=bytes.len() {
        let split =
            render_in_pieces(gemini::StreamDecoder::new(), Writer::new(), meta(), &[&bytes[..cut], &bytes[cut..]]);
        assert_eq!(split, whole, "split at byte {cut} renders differently");
    }
    let ones: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(render_in_pieces(gemini::StreamDecoder::new(), Writer::new(), meta(), &ones), whole);
    whole
}

#[test]
fn a_gemini_text_stream_as_anthropic_events() {
    let (out, usage, completed) = gemini_stream(GEMINI_TEXT);
    dump("stream_text.sse", &out);
    assert!(completed);
    assert_eq!(usage.map(|u| (u.prompt_tokens, u.completion_tokens)), Some((8, 7)));
    let ev = events(&out);
    assert_eq!(
        names(&ev),
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
    let start = &ev[0].1["message"];
    assert_eq!(start["id"], "msg_req7");
    assert_eq!(start["model"], "gemini-2.0-flash");
    // Gemini's usage follows the text of its chunk, after message_start
    // went out: the input figures reach the caller in message_delta.
    assert_eq!(start["usage"]["input_tokens"], 0);
    let text: String = ev.iter().filter_map(|(_, d)| d["delta"]["text"].as_str()).collect();
    assert_eq!(text, "The quick brown fox jumps \"high\".");
    assert_eq!(
        ev[7].1,
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"input_tokens": 8, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 7}})
    );
}

#[test]
fn gemini_function_calls_as_tool_use_blocks() {
    let (out, _, completed) = gemini_stream(GEMINI_CALLS);
    dump("stream_tools.sse", &out);
    assert!(completed);
    let ev = events(&out);
    let starts: Vec<&Value> =
        ev.iter().filter(|(n, _)| n == "content_block_start").map(|(_, d)| &d["content_block"]).collect();
    assert_eq!(starts.len(), 3, "{}", String::from_utf8_lossy(&out));
    assert_eq!(starts[0], &json!({"type": "text", "text": ""}));
    assert_eq!(starts[1]["type"], "tool_use");
    assert_eq!(starts[1]["name"], "get_current_temperature");
    assert_eq!(starts[2]["name"], "get_current_time");
    let args: Vec<Value> = ev
        .iter()
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .map(|j| serde_json::from_str(j).expect("whole arguments"))
        .collect();
    assert_eq!(args, [json!({"location": "Boston, MA"}), json!({"timezone": "America/New_York"})]);
    let delta = &ev.iter().find(|(n, _)| n == "message_delta").expect("message_delta").1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["cache_read_input_tokens"], 32);
    assert_eq!(delta["usage"]["input_tokens"], 95 - 32);
}

#[test]
fn a_provider_error_mid_stream_ends_it_with_an_error_event() {
    let (out, _, completed) = gemini_stream(GEMINI_ERROR);
    dump("stream_error.sse", &out);
    assert!(!completed);
    let ev = events(&out);
    assert_eq!(names(&ev).last(), Some(&"error"));
    assert!(!names(&ev).contains(&"message_stop"));
    assert_eq!(ev.last().expect("error").1["error"]["type"], "api_error");
    // The same through the gateway's entry point.
    let mut s = stream_for(Provider::Gemini, Ingress::AnthropicMessages, false, meta());
    let mut all = s.feed(GEMINI_ERROR.as_bytes()).to_vec();
    all.extend_from_slice(&s.finish());
    assert_eq!(all, out);
}

/// Deltas written by hand: no decoder emits thinking yet on this branch.
struct Hand;
impl Decoder for Hand {
    fn decode(&mut self, _: &[u8], _: &mut Vec<Delta>) {}
}

#[test]
fn a_thinking_stream_for_the_sdk() {
    let mut t = Translator::new(Hand, Writer::new(), meta());
    let mut out = Vec::new();
    for d in [
        Delta::Meta { id: Some("resp-1".into()), model: Some("o3".into()) },
        Delta::Thinking("The user wants ".into()),
        Delta::Thinking("a haiku.".into()),
        Delta::ThinkingSignature("EqQBCgIYAhIM".into()),
        Delta::RedactedThinking("EmwKAhgBEgy3va3pzix".into()),
        Delta::Text("Autumn moonlight—".into()),
        Delta::Text("\na worm digs silently".into()),
        Delta::ToolCall {
            index: 0,
            id: Some("call_9".into()),
            name: Some("save".into()),
            arguments: "{\"poem\":".into(),
        },
        Delta::ToolCall { index: 0, id: None, name: None, arguments: "\"haiku\"}".into() },
        Delta::Finish(FinishReason::ToolCalls),
        Delta::Usage(UsageUpdate {
            prompt: Some(120),
            completion: Some(80),
            cached: Some(20),
            cache_write: Some(30),
            reasoning: Some(50),
        }),
        Delta::Done,
    ] {
        t.write(d, &mut out);
    }
    dump("stream_thinking.sse", &out);
    let ev = events(&out);
    let blocks: Vec<&str> = ev
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .filter_map(|(_, d)| d["content_block"]["type"].as_str())
        .collect();
    assert_eq!(blocks, ["thinking", "redacted_thinking", "text", "tool_use"]);
    let last = &ev[ev.len() - 2].1;
    assert_eq!(
        last["usage"],
        json!({"input_tokens": 70, "cache_creation_input_tokens": 30, "cache_read_input_tokens": 20, "output_tokens": 80})
    );
}

#[test]
fn json_answers_as_message_objects() {
    let a = answer_for(Provider::Gemini, Ingress::AnthropicMessages, false, GEMINI_ANSWER_CALLS.into(), &meta())
        .expect("answer");
    dump("answer_tools.json", &a.body);
    let v: Value = serde_json::from_slice(&a.body).expect("json");
    assert_eq!(v["type"], "message");
    assert_eq!(v["id"], "msg_req7");
    assert_eq!(v["model"], "gemini-3-pro-preview");
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(v["content"][0]["type"], "tool_use");
    assert_eq!(v["content"][0]["input"], json!({"location": "London"}));
    assert_eq!(v["content"][1]["input"], json!({"timezone": "Europe/London"}));
    assert_eq!(v["usage"]["input_tokens"], 70);

    let c = Completion {
        id: "msg_01abc".into(),
        created: 1,
        model: "o3".into(),
        text: Some("Done.".into()),
        thinking: vec![
            Thinking { text: "plan".into(), signature: Some("sig".into()), redacted: None },
            Thinking { text: String::new(), signature: None, redacted: Some("opaque".into()) },
        ],
        tool_calls: Vec::new(),
        finish_reason: Some(FinishReason::Length),
        usage: Some(Usage { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15, ..Usage::default() }),
    };
    let body = render(&c, &meta());
    dump("answer_thinking.json", &body);
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["id"], "msg_01abc");
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["content"][2], json!({"type": "text", "text": "Done."}));
}

const CLAUDE_CODE_LIKE: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":32000,"stream":true,
  "system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],
  "messages":[{"role":"user","content":[{"type":"text","text":"list files"}]},
    {"role":"assistant","content":[{"type":"tool_use","id":"toolu_01","name":"Bash","input":{"command":"ls"}}]},
    {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":"a.txt\nb.txt","cache_control":{"type":"ephemeral"}}]}],
  "tools":[{"name":"Bash","description":"Run a command","input_schema":{"type":"object","properties":{"command":{"type":"string"}},"required":["command"]}}],
  "metadata":{"user_id":"user_abc"}}"#;

#[test]
fn a_claude_code_request_reaches_gemini_translated_and_anthropic_untouched() {
    let mut req = Request::parse(Ingress::AnthropicMessages, CLAUDE_CODE_LIKE.as_bytes()).expect("parsed");
    assert!(req.is_stream());
    assert_eq!(req.max_completion_tokens(), Some(32000));
    assert!(req.prompt_estimate() > 0);

    let opts = ProviderOptions::default();
    let gemini = ModelDefaults { name: Some("gemini-2.5-flash".into()), ..ModelDefaults::default() };
    let call = prepare_request(Provider::Gemini, &req, &ModelDefaults { name: None, ..gemini.clone() }, &opts, &[]);
    // The caller named a Claude model; an open Gemini route passes it on.
    assert_eq!(call.expect("prepared").model, "claude-sonnet-4-5");
    let e = prepare_request(Provider::Gemini, &req, &gemini, &opts, &[]).expect_err("pinned elsewhere");
    assert_eq!(Ingress::AnthropicMessages.error_status(&e), 404);

    if let Request::Messages(m) = &mut req {
        let without_model = CLAUDE_CODE_LIKE.replacen("\"model\":\"claude-sonnet-4-5\",", "", 1);
        *m = MessagesRequest::parse(without_model.as_bytes()).expect("parsed");
        m.version = Some("2023-06-01".into());
        m.beta = Some("interleaved-thinking-2025-05-14".into());
    }
    let call = prepare_request(Provider::Gemini, &req, &gemini, &opts, &[]).expect("prepared");
    assert!(!call.native && call.stream && call.client_wants_usage);
    let body: Value = serde_json::from_slice(&call.body).expect("gemini body");
    assert_eq!(body["systemInstruction"]["parts"][0]["text"], "You are Claude Code.");
    assert_eq!(body["contents"][1]["parts"][0]["functionCall"]["name"], "Bash");
    assert!(body["contents"][2]["parts"][0].get("functionResponse").is_some(), "{body}");

    let claude = ModelDefaults { name: Some("claude-sonnet-4-5".into()), ..ModelDefaults::default() };
    let call = prepare_request(Provider::Anthropic, &req, &claude, &opts, &[]).expect("prepared");
    assert!(call.native);
    let body = String::from_utf8(call.body).expect("utf8");
    assert!(body.starts_with("{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":32000,"), "{body}");
    assert_eq!(
        call.headers,
        vec![
            ("anthropic-version", "2023-06-01".to_string()),
            ("anthropic-beta", "interleaved-thinking-2025-05-14".to_string())
        ]
    );
}

#[test]
fn error_bodies_and_the_models_list_for_the_sdk() {
    let e = LlmError::new(503, "service_unavailable", "no target available");
    assert_eq!(Ingress::AnthropicMessages.error_status(&e), 529);
    dump("error_529.json", &Ingress::AnthropicMessages.error_body(&e));
    let models = [
        ModelEntry { id: "claude-sonnet-4-5".into(), provider: "anthropic".into() },
        ModelEntry { id: "gemini-2.5-flash".into(), provider: "gemini".into() },
    ];
    let body = Ingress::AnthropicMessages.models_body(&models);
    dump("models.json", &body);
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!((v["first_id"].clone(), v["last_id"].clone()), (json!("claude-sonnet-4-5"), json!("gemini-2.5-flash")));
}

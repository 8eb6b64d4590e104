//! Random and mutated Messages requests through every step of the Anthropic
//! ingress (checks, the neutral form, the native body, the estimate) give a
//! value or a 400, never a panic; random deltas through the Writer give
//! events that are each JSON, whatever their order.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::Value;
use tollgate_llm::completion::{AnswerMeta, FinishReason};
use tollgate_llm::ingress::anthropic::{MessagesRequest, Writer};
use tollgate_llm::stream::{Decoder, Delta, Translator, UsageUpdate};
use tollgate_llm::{LlmError, ModelDefaults};

const REQUEST: &str = r#"{"model":"claude-x","max_tokens":4096,"stream":true,
 "system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}],
 "messages":[{"role":"user","content":[{"type":"text","text":"hi"},
   {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA=="}},
   {"type":"document","source":{"type":"content","content":[{"type":"text","text":"d"}]},"title":"t"}]},
  {"role":"assistant","content":[{"type":"thinking","thinking":"x","signature":"s"},{"type":"redacted_thinking","data":"r"},
   {"type":"tool_use","id":"t","name":"f","input":{"a":1}}]},
  {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"r"},
   {"type":"image","source":{"type":"url","url":"https://x"}}],"is_error":true,"cache_control":{"type":"ephemeral"}}]}],
 "tools":[{"name":"f","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral"}}],
 "tool_choice":{"type":"any","disable_parallel_tool_use":true},"stop_sequences":["x"],"top_k":3,
 "thinking":{"type":"enabled","budget_tokens":1024},"output_config":{"effort":"high"},"cache_control":{"type":"ephemeral"}}"#;

fn mutate(base: &[u8], at: usize, cut: usize, bytes: &[u8]) -> Vec<u8> {
    let at = at.min(base.len());
    let end = (at + cut).min(base.len());
    let mut v = base[..at].to_vec();
    v.extend_from_slice(bytes);
    v.extend_from_slice(&base[end..]);
    v
}

/// Every step of a request; errors must be 400s.
fn exercise(body: &[u8]) {
    let defaults = [
        ModelDefaults::default(),
        ModelDefaults {
            name: Some("claude-x".into()),
            max_tokens: Some(9),
            temperature: Some(0.5),
            top_p: Some(0.5),
            top_k: Some(2),
        },
    ];
    for r in [MessagesRequest::parse(body), MessagesRequest::parse_count_tokens(body)] {
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                assert_eq!(e.status, 400);
                continue;
            }
        };
        let _ = r.prompt_estimate();
        for d in &defaults {
            if let Err(e) = r.to_chat(d) {
                assert_eq!(e.status, 400, "{e}");
            }
            match r.native_body(d, &[("k", "v")]) {
                Ok((b, _)) => assert!(serde_json::from_slice::<Value>(&b).is_ok(), "native body stays JSON"),
                Err(e) => assert_eq!(e.status, 400, "{e}"),
            }
        }
    }
}

#[test]
fn the_sample_request_takes_every_path() {
    let r = MessagesRequest::parse(REQUEST.as_bytes()).expect("valid");
    assert!(r.to_chat(&ModelDefaults::default()).is_ok());
    exercise(REQUEST.as_bytes());
}

struct Hand;
impl Decoder for Hand {
    fn decode(&mut self, _: &[u8], _: &mut Vec<Delta>) {}
}

fn delta() -> impl Strategy<Value = Delta> {
    let text = "[a-z\"\\\\é\n]{0,6}";
    prop_oneof![
        (proptest::option::of("[a-z_]{0,5}"), proptest::option::of("[a-z]{0,5}"))
            .prop_map(|(id, model)| Delta::Meta { id, model }),
        text.prop_map(Delta::Text),
        text.prop_map(Delta::Thinking),
        text.prop_map(Delta::ThinkingSignature),
        text.prop_map(Delta::RedactedThinking),
        (0u32..3, proptest::option::of("[a-z]{0,4}"), proptest::option::of("[a-z]{0,4}"), text)
            .prop_map(|(index, id, name, arguments)| Delta::ToolCall { index, id, name, arguments }),
        prop_oneof![
            Just(FinishReason::Stop),
            Just(FinishReason::Length),
            Just(FinishReason::ToolCalls),
            Just(FinishReason::ContentFilter)
        ]
        .prop_map(Delta::Finish),
        (proptest::option::of(0u64..100), proptest::option::of(0u64..100), proptest::option::of(0u64..200)).prop_map(
            |(prompt, completion, cached)| Delta::Usage(UsageUpdate {
                prompt,
                completion,
                cached,
                ..UsageUpdate::default()
            })
        ),
        Just(Delta::Done),
        (400u16..600).prop_map(|s| Delta::Error(LlmError::new(s, "x", "boom"))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_requests_never_panic(at in 0usize..1400, cut in 0usize..8, bytes in proptest::collection::vec(any::<u8>(), 0..6)) {
        exercise(&mutate(REQUEST.as_bytes(), at, cut, &bytes));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        exercise(&bytes);
    }

    #[test]
    fn any_delta_sequence_renders_json_events(deltas in proptest::collection::vec(delta(), 0..24)) {
        let meta = AnswerMeta { request_id: "r".into(), model: "m".into(), ..AnswerMeta::default() };
        let mut t = Translator::new(Hand, Writer::new(), meta);
        let mut out = Vec::new();
        for d in deltas {
            t.write(d, &mut out);
        }
        let text = String::from_utf8(out).expect("utf8");
        let mut stops = 0;
        for event in text.split_terminator("\n\n") {
            let (name, data) = event.split_once('\n').expect("two lines");
            let name = name.strip_prefix("event: ").expect("event line");
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").expect("data line")).expect("JSON");
            prop_assert_eq!(data["type"].as_str(), Some(name));
            stops += usize::from(name == "message_stop" || name == "error");
        }
        prop_assert!(stops <= 1, "one end at most: {}", text);
    }
}

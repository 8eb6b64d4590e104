//! The Responses ingress on random and mutated input: requests, answers and
//! streams give a value or an error, never a panic; whatever deltas a
//! provider's decoder produces, the event stream is well formed (JSON
//! events, consecutive sequence numbers, every item closed, one terminal
//! event) and reads back, through tollgate's own decoder of OpenAI's
//! Responses streams, as the same text, reasoning, calls and usage.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::Value;
use tollgate_llm::completion::{AnswerMeta, FinishReason};
use tollgate_llm::ingress::responses::{answer, render, NativeStream, ResponsesRequest, StreamDecoder, Writer};
use tollgate_llm::stream::{
    render_in_pieces, ChatStream, Decoder, Delta, Render, StreamState, Translator, UsageUpdate,
};
use tollgate_llm::{LlmError, ModelDefaults};

const REQUEST: &[u8] = br#"{"model":"m","instructions":"be brief","input":[{"role":"user","content":[{"type":"input_text","text":"hi"},{"type":"input_image","image_url":"data:image/png;base64,AA=="}]},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"ok"},{"type":"reasoning","id":"rs","summary":[{"type":"summary_text","text":"t"}]}],"tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"tool_choice":"auto","text":{"format":{"type":"json_schema","name":"x","schema":{}}},"reasoning":{"effort":"low"},"max_output_tokens":9,"stream":true}"#;

const ANSWER: &[u8] = br#"{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"m","output":[{"id":"rs","type":"reasoning","summary":[{"type":"summary_text","text":"t"}]},{"id":"msg","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"hi","annotations":[]}]},{"id":"fc","type":"function_call","call_id":"c","name":"f","arguments":"{}"}],"usage":{"input_tokens":3,"input_tokens_details":{"cached_tokens":1},"output_tokens":2,"output_tokens_details":{"reasoning_tokens":1},"total_tokens":5}}"#;

fn mutate(base: &[u8], at: usize, bytes: &[u8]) -> Vec<u8> {
    let at = at.min(base.len());
    let mut v = base[..at].to_vec();
    v.extend_from_slice(bytes);
    v.extend_from_slice(&base[at..]);
    v
}

fn exercise(body: &[u8]) {
    if let Ok(req) = ResponsesRequest::parse(body) {
        let d = ModelDefaults {
            name: Some("m".into()),
            max_tokens: Some(5),
            temperature: Some(1.0),
            top_p: Some(1.0),
            top_k: None,
        };
        let _ = req.to_chat(&d);
        let _ = req.to_chat(&ModelDefaults::default());
        let _ = req.native_body(&d, &[("k", "v")]);
        let _ = (req.echo(), req.prompt_estimate(), req.is_stream(), req.max_output_tokens(), req.model());
    }
}

fn meta() -> AnswerMeta {
    AnswerMeta {
        fallback_id: "chatcmpl-r".into(),
        request_id: "r".into(),
        created: 1,
        model: "m".into(),
        ..AnswerMeta::default()
    }
}

/// Deltas handed over as they are.
struct Scripted(Vec<Delta>);

impl Decoder for Scripted {
    fn decode(&mut self, _: &[u8], out: &mut Vec<Delta>) {
        out.append(&mut self.0);
    }
}

/// Records the deltas a decoder produced.
#[derive(Default)]
struct Record;

impl Render for Record {
    fn render(&mut self, delta: &Delta, _: &mut StreamState, out: &mut Vec<u8>) {
        out.extend_from_slice(serde_json::to_string(&format!("{delta:?}")).unwrap_or_default().as_bytes());
        out.push(b'\n');
    }
}

fn events(sse: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(sse).expect("UTF-8");
    text.split_terminator("\n\n")
        .map(|e| {
            let (name, data) = e.split_once('\n').expect("an event line and a data line");
            let name = name.strip_prefix("event: ").expect("event line").to_string();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").expect("data line")).expect("JSON");
            (name, data)
        })
        .collect()
}

fn text_strategy() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z \"\\\\\n]{1,6}", "\\PC{1,4}"]
}

fn delta_strategy() -> impl Strategy<Value = Delta> {
    prop_oneof![
        4 => text_strategy().prop_map(Delta::Text),
        2 => text_strategy().prop_map(Delta::Thinking),
        1 => text_strategy().prop_map(Delta::ThinkingSignature),
        3 => (0u32..3, proptest::option::of("[a-z_0-9]{0,5}"), proptest::option::of("[a-z]{1,5}"), text_strategy())
            .prop_map(|(index, id, name, arguments)| Delta::ToolCall { index, id, name, arguments }),
        1 => prop_oneof![Just(FinishReason::Stop), Just(FinishReason::Length), Just(FinishReason::ToolCalls), Just(FinishReason::ContentFilter)]
            .prop_map(Delta::Finish),
        1 => (proptest::option::of(0u64..100), proptest::option::of(0u64..100))
            .prop_map(|(prompt, completion)| Delta::Usage(UsageUpdate { prompt, completion, ..UsageUpdate::default() })),
        1 => (proptest::option::of("[a-z_]{1,6}"), proptest::option::of("[a-z]{1,4}")).prop_map(|(id, model)| Delta::Meta { id, model }),
    ]
}

fn text_of(d: &Delta) -> Option<&str> {
    if let Delta::Text(t) = d {
        Some(t)
    } else {
        None
    }
}

fn thinking_of(d: &Delta) -> Option<&str> {
    if let Delta::Thinking(t) = d {
        Some(t)
    } else {
        None
    }
}

fn concat(deltas: &[Delta], pick: fn(&Delta) -> Option<&str>) -> String {
    deltas.iter().filter_map(pick).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn requests_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        exercise(&bytes);
    }

    #[test]
    fn mutated_requests_never_panic(at in 0usize..REQUEST.len(), ins in proptest::collection::vec(any::<u8>(), 0..8)) {
        exercise(&mutate(REQUEST, at, &ins));
    }

    #[test]
    fn answers_never_panic(at in 0usize..ANSWER.len(), ins in proptest::collection::vec(any::<u8>(), 0..8)) {
        if let Ok(c) = answer(&mutate(ANSWER, at, &ins), &meta()) {
            let _ = render(&c, &meta());
        }
    }

    #[test]
    fn streams_never_panic_on_garbage(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let pieces: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        let _ = render_in_pieces(StreamDecoder::new(), Writer::new(), meta(), &pieces);
        let mut native = NativeStream::new(meta());
        for p in &pieces {
            let _ = native.feed(p);
        }
        let _ = native.finish();
        let _ = native.fail(LlmError::new(502, "upstream_error", "x"));
    }

    #[test]
    fn any_deltas_make_a_well_formed_stream_that_reads_back(
        deltas in proptest::collection::vec(delta_strategy(), 0..24),
        end in 0u8..3,
    ) {
        let mut all = deltas.clone();
        match end {
            0 => all.push(Delta::Done),
            1 => all.push(Delta::Error(LlmError::new(502, "upstream_error", "boom"))),
            _ => {}
        }
        let (out, _, _) = render_in_pieces(Scripted(all), Writer::new(), meta(), &[b"go"]);
        let ev = events(&out);
        prop_assert!(!ev.is_empty() || deltas.is_empty() && end == 2);
        let mut open = std::collections::BTreeSet::new();
        for (i, (name, data)) in ev.iter().enumerate() {
            prop_assert_eq!(data["type"].as_str(), Some(name.as_str()));
            prop_assert_eq!(data["sequence_number"].as_u64(), Some(i as u64));
            match name.as_str() {
                "response.output_item.added" => prop_assert!(open.insert(data["output_index"].as_u64())),
                "response.output_item.done" => prop_assert!(open.remove(&data["output_index"].as_u64())),
                _ => {}
            }
        }
        if let Some((first, _)) = ev.first() {
            prop_assert_eq!(first.as_str(), "response.created");
        }
        let terminal = ev.iter().filter(|(n, _)| matches!(n.as_str(), "response.completed" | "response.incomplete" | "response.failed")).count();
        prop_assert_eq!(terminal, usize::from(end < 2));
        if end != 0 {
            return Ok(());
        }
        // Every item closed, and the final output says what the deltas said.
        prop_assert!(open.is_empty(), "items left open: {:?}", open);
        let response = &ev[ev.len() - 1].1["response"];
        let output = response["output"].as_array().cloned().unwrap_or_default();
        let texts: String = output.iter().filter(|o| o["type"] == "message").map(|o| o["content"][0]["text"].as_str().unwrap_or_default().to_string()).collect();
        prop_assert_eq!(&texts, &concat(&deltas, text_of));
        let thinking: String = output.iter().filter(|o| o["type"] == "reasoning").map(|o| o["summary"][0]["text"].as_str().unwrap_or_default().to_string()).collect();
        prop_assert_eq!(&thinking, &concat(&deltas, thinking_of));
        let calls = output.iter().filter(|o| o["type"] == "function_call").count();
        let indexes: std::collections::BTreeSet<u32> = deltas.iter().filter_map(|d| if let Delta::ToolCall { index, .. } = d { Some(*index) } else { None }).collect();
        prop_assert_eq!(calls, indexes.len());
        // tollgate's reader of OpenAI's streams reads the same back.
        let mut decoder = StreamDecoder::new();
        let mut back = Vec::new();
        decoder.decode(&out, &mut back);
        decoder.end(&mut back);
        prop_assert_eq!(back.last(), Some(&Delta::Done));
        prop_assert_eq!(concat(&back, text_of), concat(&deltas, text_of));
        prop_assert_eq!(concat(&back, thinking_of), concat(&deltas, thinking_of));
        let calls_back = back.iter().filter(|d| matches!(d, Delta::ToolCall { id: Some(_), .. })).count();
        prop_assert_eq!(calls_back, indexes.len());
        let usage_sent = deltas.iter().any(|d| matches!(d, Delta::Usage(_)));
        prop_assert_eq!(back.iter().any(|d| matches!(d, Delta::Usage(_))), usage_sent);
    }

    #[test]
    fn a_native_stream_is_relayed_byte_for_byte(cuts in proptest::collection::vec(0usize..4096, 0..6), deltas in proptest::collection::vec(delta_strategy(), 0..12)) {
        let mut all = deltas;
        all.push(Delta::Done);
        let (stream, _, _) = render_in_pieces(Scripted(all), Writer::new(), meta(), &[b"go"]);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
        cuts.sort_unstable();
        let mut native = NativeStream::new(meta());
        let mut out = Vec::new();
        let mut start = 0;
        for c in cuts.into_iter().chain([stream.len()]) {
            out.extend_from_slice(&native.feed(&stream[start..c]));
            start = c;
        }
        out.extend_from_slice(&native.finish());
        prop_assert_eq!(out, stream);
        prop_assert!(native.completed());
    }
}

#[test]
fn a_translated_stream_reads_back_as_its_deltas() {
    let deltas = vec![
        Delta::Meta { id: Some("resp_x".into()), model: Some("m2".into()) },
        Delta::Thinking("hmm".into()),
        Delta::Text("Hi \"there\"".into()),
        Delta::ToolCall { index: 0, id: Some("call_1".into()), name: Some("f".into()), arguments: String::new() },
        Delta::ToolCall { index: 0, id: None, name: None, arguments: "{\"a\":1}".into() },
        // (the usage a Response reports comes before its finish)
        Delta::Usage(UsageUpdate {
            prompt: Some(7),
            completion: Some(3),
            cached: Some(1),
            cache_write: Some(2),
            reasoning: Some(1),
        }),
        Delta::Finish(FinishReason::ToolCalls),
        Delta::Done,
    ];
    let (out, _, _) = render_in_pieces(Scripted(deltas.clone()), Writer::new(), meta(), &[b"go"]);
    let mut t = Translator::new(StreamDecoder::new(), Record, meta());
    let back = t.feed(&out);
    let _ = t.finish();
    let back: Vec<String> = String::from_utf8(back.to_vec())
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str::<String>(l).expect("a recorded delta"))
        .collect();
    let want: Vec<String> = deltas.iter().map(|d| format!("{d:?}")).collect();
    assert_eq!(back, want);
}

#[test]
fn a_rendered_answer_reads_back_as_its_completion() {
    let c = answer(ANSWER, &meta()).expect("answer");
    let back = answer(&render(&c, &meta()), &meta()).expect("rendered answer reads");
    assert_eq!(back, c);
}

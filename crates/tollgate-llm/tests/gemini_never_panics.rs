//! Random and mutated bytes fed to the Gemini adapter: answers, streams and
//! requests give a value or an error, never a panic, and a stream translates
//! the same however it is chunked.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use tollgate_llm::completion::AnswerMeta;
use tollgate_llm::gemini::{answer, StreamDecoder};
use tollgate_llm::provider::{prepare, Provider, ProviderOptions};
use tollgate_llm::stream::translate_in_pieces;
use tollgate_llm::{ChatRequest, ModelDefaults};

// Fixture sources are cited beside the unit tests in src/gemini.rs.
const ANSWERS: &[&str] = &[
    include_str!("golden/answers/gemini/text.json"),
    include_str!("golden/answers/gemini/function_calls.json"),
    include_str!("golden/answers/gemini/blocked.json"),
];
const STREAMS: &[&str] = &[
    include_str!("golden/answers/gemini/stream_text.sse"),
    include_str!("golden/answers/gemini/stream_function_calls.sse"),
    include_str!("golden/answers/gemini/stream_error.sse"),
    include_str!("golden/answers/gemini/stream_blocked.sse"),
];
const REQUEST: &str = r#"{"model":"gemini-2.5-flash","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]},{"role":"assistant","tool_calls":[{"id":"c__thought__x","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c__thought__x","content":"{\"a\":1}"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"auto","stream":true}"#;

fn meta() -> AnswerMeta {
    AnswerMeta {
        fallback_id: "chatcmpl-x".into(),
        created: 1,
        model: "m".into(),
        client_wants_usage: true,
        ..AnswerMeta::default()
    }
}

/// `base` with `bytes` inserted at `at` and `cut` bytes removed after them.
fn mutate(base: &[u8], at: usize, bytes: &[u8], cut: usize) -> Vec<u8> {
    let at = at.min(base.len());
    let mut v = base[..at].to_vec();
    v.extend_from_slice(bytes);
    v.extend_from_slice(&base[(at + cut).min(base.len())..]);
    v
}

fn decode(chunks: &[&[u8]]) -> (Vec<u8>, Option<tollgate_llm::Usage>, bool) {
    translate_in_pieces(StreamDecoder::new(), meta(), chunks)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_answers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = answer(&bytes, &meta());
    }

    #[test]
    fn mutated_answers_never_panic(which in 0..ANSWERS.len(), at in 0usize..900, ins in proptest::collection::vec(any::<u8>(), 0..6), cut in 0usize..6) {
        let body = mutate(ANSWERS[which].as_bytes(), at, &ins, cut);
        if let Ok(c) = answer(&body, &meta()) {
            // Whatever parses translates to JSON.
            prop_assert!(serde_json::from_slice::<serde_json::Value>(&c.to_openai()).is_ok());
        }
    }

    #[test]
    fn random_streams_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let pieces: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        let _ = decode(&pieces);
    }

    #[test]
    fn mutated_streams_never_panic_and_ignore_chunking(
        which in 0..STREAMS.len(),
        at in 0usize..800,
        ins in proptest::collection::vec(any::<u8>(), 0..6),
        cut in 0usize..6,
        cuts in proptest::collection::vec(0usize..900, 0..5),
    ) {
        let stream = mutate(STREAMS[which].as_bytes(), at, &ins, cut);
        let whole = decode(&[&stream]);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut from = 0;
        for c in cuts {
            pieces.push(&stream[from..c]);
            from = c;
        }
        pieces.push(&stream[from..]);
        prop_assert_eq!(decode(&pieces), whole);
    }

    #[test]
    fn mutated_requests_never_panic(at in 0usize..700, ins in proptest::collection::vec(any::<u8>(), 0..6), cut in 0usize..6) {
        let body = mutate(REQUEST.as_bytes(), at, &ins, cut);
        if let Ok(req) = ChatRequest::parse(&body) {
            let _ = prepare(Provider::Gemini, &req, &ModelDefaults::default(), &ProviderOptions::default(), &[]);
        }
    }
}

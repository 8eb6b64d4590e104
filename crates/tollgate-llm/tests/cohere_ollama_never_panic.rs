//! Random and mutated bytes fed to the Cohere and Ollama adapters' request
//! translation, answer parser and stream decoder: they give a value or an
//! error, never a panic, and the decoder's output does not depend on how the
//! stream is chunked. One suite, generated per provider.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use tollgate_llm::chat::Chat;
use tollgate_llm::completion::AnswerMeta;
use tollgate_llm::provider::ProviderOptions;
use tollgate_llm::stream::translate_in_pieces;
use tollgate_llm::{ChatRequest, ModelDefaults};

/// An OpenAI request using every part of the translation.
const REQUEST: &[u8] = br#"{"model":"m","messages":[{"role":"system","content":"s"},
{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]},
{"role":"assistant","content":"ok","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},
{"role":"tool","tool_call_id":"c1","content":"r"}],
"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"auto",
"max_tokens":9,"temperature":0.5,"top_p":0.9,"top_k":3,"seed":1,"stop":["x"],"stream":true,
"response_format":{"type":"json_object"}}"#;

/// The suite for one adapter module, its fixtures, and how far into them
/// mutations may land.
macro_rules! never_panics {
    ($name:ident, $m:path, model: $model:literal, answers: [$($a:literal),*], streams: [$($s:literal),*],
     answer_len: $answer_len:literal, stream_len: $stream_len:literal) => {
    mod $name {
        use super::*;
        use $m as adapter;

        const ANSWERS: &[&[u8]] = &[$(include_bytes!($a)),*];
        const STREAMS: &[&[u8]] = &[$(include_bytes!($s)),*];

        fn meta() -> AnswerMeta {
            AnswerMeta { fallback_id: "chatcmpl-r".into(), created: 1, model: $model.into(), client_wants_usage: true, ..AnswerMeta::default() }
        }

        /// `base` with `bytes` written over it at `at` (the rest shifted when `insert`).
        fn mutate(base: &[u8], at: usize, bytes: &[u8], insert: bool) -> Vec<u8> {
            let at = at.min(base.len());
            let mut v = base[..at].to_vec();
            v.extend_from_slice(bytes);
            let skip = if insert { 0 } else { bytes.len() };
            v.extend_from_slice(base.get(at + skip..).unwrap_or_default());
            v
        }

        fn run(pieces: &[&[u8]]) -> (Vec<u8>, bool) {
            let (out, _, completed) = translate_in_pieces(adapter::StreamDecoder::new(), meta(), pieces);
            (out, completed)
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            #[test]
            fn mutated_requests_never_panic(at in 0usize..700, ins in proptest::collection::vec(any::<u8>(), 0..8), insert in any::<bool>()) {
                let defaults = ModelDefaults { name: Some("m".into()), ..ModelDefaults::default() };
                if let Ok(req) = ChatRequest::parse(&mutate(REQUEST, at, &ins, insert)) {
                    if let Ok(chat) = Chat::from_request(&req, &defaults) {
                        let _ = adapter::request(&chat, &ProviderOptions::default());
                    }
                }
            }

            #[test]
            fn random_answers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
                let _ = adapter::answer(&bytes, &meta());
            }

            #[test]
            fn mutated_answers_never_panic(which in 0usize..ANSWERS.len(), at in 0usize..$answer_len, ins in proptest::collection::vec(any::<u8>(), 0..8), insert in any::<bool>()) {
                let body = mutate(ANSWERS[which], at, &ins, insert);
                if let Ok(c) = adapter::answer(&body, &meta()) {
                    let _ = c.to_openai();
                }
            }

            #[test]
            fn random_streams_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
                let pieces: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
                let _ = run(&pieces);
            }

            #[test]
            fn mutated_streams_never_panic_and_ignore_chunking(
                which in 0usize..STREAMS.len(), at in 0usize..$stream_len, ins in proptest::collection::vec(any::<u8>(), 0..8),
                insert in any::<bool>(), cut in 0usize..$stream_len,
            ) {
                let stream = mutate(STREAMS[which], at, &ins, insert);
                let whole = run(&[&stream]);
                let cut = cut.min(stream.len());
                prop_assert_eq!(run(&[&stream[..cut], &stream[cut..]]), whole);
            }
        }
    }
    };
}

// Fixtures from https://docs.cohere.com/reference/chat and
// https://docs.cohere.com/reference/chat-stream (see golden/answers/cohere/README.md).
never_panics!(cohere, tollgate_llm::cohere, model: "command-a-03-2025",
    answers: ["golden/answers/cohere/text.json", "golden/answers/cohere/tool_calls.json"],
    streams: ["golden/answers/cohere/stream_text.sse", "golden/answers/cohere/stream_tools.sse", "golden/answers/cohere/stream_error.sse"],
    answer_len: 3000, stream_len: 9000);

// Fixtures from https://github.com/ollama/ollama/blob/main/docs/api.md and
// https://docs.ollama.com/api/errors (see golden/answers/ollama/README.md).
never_panics!(ollama, tollgate_llm::ollama, model: "llama3.2",
    answers: ["golden/answers/ollama/text.json", "golden/answers/ollama/tool_calls.json"],
    streams: ["golden/answers/ollama/stream_text.ndjson", "golden/answers/ollama/stream_tools.ndjson", "golden/answers/ollama/stream_error.ndjson"],
    answer_len: 600, stream_len: 800);

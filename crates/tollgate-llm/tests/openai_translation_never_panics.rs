//! Random and mutated bytes fed to the OpenAI-format translation (the path
//! of callers that speak another format): requests, answers and the chunk
//! decoder give a value, an error or error deltas, never a panic; a valid
//! stream decodes the same whatever the chunking.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use tollgate_llm::chat::Chat;
use tollgate_llm::completion::AnswerMeta;
use tollgate_llm::openai::{answer, request, StreamDecoder};
use tollgate_llm::provider::{Provider, ProviderOptions};
use tollgate_llm::stream::{translate_in_pieces, Decoder, Delta};
use tollgate_llm::{ChatRequest, ModelDefaults};

const ANSWERS: [&str; 2] = [
    include_str!("golden/answers/openai/tool_calls.json"),
    include_str!("golden/answers/openai-compatible/reasoning.json"),
];

const STREAMS: [&str; 3] = [
    include_str!("golden/answers/openai/stream_tool_calls.sse"),
    include_str!("golden/answers/openai-compatible/stream_reasoning.sse"),
    include_str!("golden/answers/mistral/stream_thinking.sse"),
];

const REQUEST: &str = r#"{"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}},{"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBE"}}]},{"role":"assistant","tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"t","content":"r"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required","stop":"x","reasoning_effort":"low","max_tokens":9,"stream":true}"#;

fn meta() -> AnswerMeta {
    AnswerMeta {
        fallback_id: "chatcmpl-1".into(),
        created: 1,
        model: "gpt".into(),
        client_wants_usage: true,
        ..AnswerMeta::default()
    }
}

fn mutate(base: &[u8], at: usize, cut: usize, bytes: &[u8]) -> Vec<u8> {
    let at = at.min(base.len());
    let end = (at + cut).min(base.len());
    let mut v = base[..at].to_vec();
    v.extend_from_slice(bytes);
    v.extend_from_slice(&base[end..]);
    v
}

fn decode_all(chunks: &[&[u8]]) -> Vec<Delta> {
    let mut d = StreamDecoder::new();
    let mut out = Vec::new();
    for c in chunks {
        d.decode(c, &mut out);
    }
    d.end(&mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_answers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = answer(&bytes, &meta());
    }

    #[test]
    fn mutated_answers_never_panic(which in 0usize..2, at in 0usize..1200, cut in 0usize..8, ins in proptest::collection::vec(any::<u8>(), 0..8)) {
        if let Err(e) = answer(&mutate(ANSWERS[which].as_bytes(), at, cut, &ins), &meta()) {
            prop_assert_eq!(e.status, 502);
        }
    }

    #[test]
    fn random_streams_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let pieces: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        let out = decode_all(&pieces);
        // Nothing follows the end of a stream.
        if let Some(i) = out.iter().position(|d| matches!(d, Delta::Done | Delta::Error(_))) {
            prop_assert_eq!(i, out.len() - 1);
        }
    }

    #[test]
    fn mutated_streams_never_panic_and_ignore_chunking(which in 0usize..3, at in 0usize..2500, cut in 0usize..8, ins in proptest::collection::vec(any::<u8>(), 0..8), split in 0usize..2500) {
        let bytes = mutate(STREAMS[which].as_bytes(), at, cut, &ins);
        let split = split.min(bytes.len());
        let whole = translate_in_pieces(StreamDecoder::new(), meta(), &[&bytes]);
        let halves = translate_in_pieces(StreamDecoder::new(), meta(), &[&bytes[..split], &bytes[split..]]);
        prop_assert_eq!(whole, halves);
    }

    #[test]
    fn mutated_requests_never_panic(at in 0usize..REQUEST.len(), cut in 0usize..8, ins in proptest::collection::vec(any::<u8>(), 0..8), provider in 0usize..4) {
        let provider = [Provider::OpenAi, Provider::Azure, Provider::Mistral, Provider::OpenAiCompatible][provider];
        if let Ok(req) = ChatRequest::parse(&mutate(REQUEST.as_bytes(), at, cut, &ins)) {
            let defaults = ModelDefaults { name: Some("gpt-4.1".into()), ..ModelDefaults::default() };
            if let Ok(chat) = Chat::from_request(&req, &defaults) {
                let _ = request(&chat, provider, &ProviderOptions::default());
            }
        }
    }
}

#[test]
fn the_fixtures_decode_to_a_done() {
    for s in STREAMS {
        assert_eq!(decode_all(&[s.as_bytes()]).last(), Some(&Delta::Done));
    }
}

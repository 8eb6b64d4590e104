//! Random and mutated bytes fed to the Anthropic adapter: requests, answers and
//! the stream decoder give a value, an error or error deltas, never a panic;
//! a valid stream decodes the same whatever the chunking.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use tollgate_llm::anthropic::{answer, request, StreamDecoder};
use tollgate_llm::chat::Chat;
use tollgate_llm::completion::AnswerMeta;
use tollgate_llm::provider::ProviderOptions;
use tollgate_llm::stream::{translate_in_pieces, Decoder, Delta};
use tollgate_llm::{ChatRequest, ModelDefaults};

// Shapes from https://docs.anthropic.com/en/api/messages and
// https://docs.anthropic.com/en/docs/build-with-claude/streaming
const ANSWER: &str = r#"{"id":"msg_01Aq9w938a90dw8q","type":"message","role":"assistant","model":"claude-opus-4-20250514","stop_reason":"tool_use","content":[{"type":"text","text":"I'll check."},{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"location":"San Francisco, CA"}}],"usage":{"input_tokens":472,"cache_read_input_tokens":5,"output_tokens":89}}"#;

const STREAM: &str = concat!(
    "event: message_start\n",
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-opus-4-20250514\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\n",
    "data: {\"type\":\"ping\"}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi \u{e9}\"}}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"f\",\"input\":{}}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":1}\"}}\n\n",
    "event: message_delta\n",
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
    "event: message_stop\n",
    "data: {\"type\":\"message_stop\"}\n\n",
);

const REQUEST: &str = r#"{"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]},{"role":"assistant","tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"t","content":"r"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required","stop":"x","stream":true}"#;

fn meta() -> AnswerMeta {
    AnswerMeta {
        fallback_id: "chatcmpl-1".into(),
        created: 1,
        model: "claude".into(),
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

fn decode_all(chunks: &[Vec<u8>]) -> Vec<Delta> {
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
    fn answers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = answer(&bytes, &meta());
    }

    #[test]
    fn mutated_answers_never_panic(at in 0usize..ANSWER.len(), cut in 0usize..8, ins in proptest::collection::vec(any::<u8>(), 0..8)) {
        if let Err(e) = answer(&mutate(ANSWER.as_bytes(), at, cut, &ins), &meta()) {
            prop_assert_eq!(e.status, 502);
        }
    }

    #[test]
    fn the_decoder_never_panics_on_garbage(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let _ = decode_all(&chunks);
    }

    #[test]
    fn mutated_streams_never_panic(at in 0usize..STREAM.len(), cut in 0usize..16, ins in proptest::collection::vec(any::<u8>(), 0..8), split in 0usize..STREAM.len()) {
        let bytes = mutate(STREAM.as_bytes(), at, cut, &ins);
        let split = split.min(bytes.len());
        let out = decode_all(&[bytes[..split].to_vec(), bytes[split..].to_vec()]);
        // Nothing follows an error.
        if let Some(pos) = out.iter().position(|d| matches!(d, Delta::Error(_))) {
            prop_assert_eq!(pos + 1, out.len());
        }
        let _ = translate_in_pieces(StreamDecoder::new(), meta(), &[&bytes[..split], &bytes[split..]]);
    }

    #[test]
    fn the_stream_does_not_depend_on_chunking(cuts in proptest::collection::vec(0usize..STREAM.len(), 0..6)) {
        let whole = decode_all(&[STREAM.as_bytes().to_vec()]);
        let mut cuts = cuts;
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for c in cuts.into_iter().chain([STREAM.len()]) {
            chunks.push(STREAM.as_bytes()[start..c].to_vec());
            start = c;
        }
        prop_assert_eq!(decode_all(&chunks), whole.clone());
        prop_assert_eq!(whole.last(), Some(&Delta::Done));
    }

    #[test]
    fn mutated_requests_never_panic(at in 0usize..REQUEST.len(), cut in 0usize..8, ins in proptest::collection::vec(any::<u8>(), 0..8)) {
        if let Ok(req) = ChatRequest::parse(&mutate(REQUEST.as_bytes(), at, cut, &ins)) {
            let defaults = ModelDefaults { name: Some("claude".into()), ..ModelDefaults::default() };
            if let Ok(chat) = Chat::from_request(&req, &defaults) {
                let _ = request(&chat, &ProviderOptions::default());
            }
        }
    }
}

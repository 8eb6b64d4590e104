//! Random and mutated bytes fed to Bedrock's answer parser, stream decoder,
//! request translation and signer: a value or an error, never a panic; a
//! broken stream yields at most one error and nothing after it.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, UNIX_EPOCH};

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use proptest::prelude::*;
use tollgate_llm::bedrock::{answer, request, sign, AwsCredentials, StreamDecoder};
use tollgate_llm::chat::Chat;
use tollgate_llm::completion::AnswerMeta;
use tollgate_llm::provider::ProviderOptions;
use tollgate_llm::stream::{Decoder, Delta};
use tollgate_llm::{ChatRequest, ModelDefaults};

const ANSWER: &str = r#"{"output":{"message":{"role":"assistant","content":[{"text":"Hi"},{"toolUse":{"toolUseId":"t1","name":"f","input":{"a":1}}}]}},"stopReason":"tool_use","usage":{"inputTokens":3,"outputTokens":4,"totalTokens":7,"cacheReadInputTokens":1}}"#;

fn frame(message_type: &str, kind: &str, payload: &str) -> Vec<u8> {
    let type_header = if message_type == "exception" { ":exception-type" } else { ":event-type" };
    let message = Message::new(payload.as_bytes().to_vec())
        .add_header(Header::new(":message-type", HeaderValue::String(message_type.to_string().into())))
        .add_header(Header::new(type_header, HeaderValue::String(kind.to_string().into())))
        .add_header(Header::new(":content-type", HeaderValue::String("application/json".into())));
    let mut out = Vec::new();
    write_message_to(&message, &mut out).expect("encodes");
    out
}

fn stream() -> Vec<u8> {
    [
        frame("event", "messageStart", r#"{"role":"assistant"}"#),
        frame("event", "contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#),
        frame(
            "event",
            "contentBlockStart",
            r#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"t1","name":"f"}}}"#,
        ),
        frame("event", "contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"a\":1}"}}}"#),
        frame("event", "messageStop", r#"{"stopReason":"tool_use"}"#),
        frame("event", "metadata", r#"{"usage":{"inputTokens":3,"outputTokens":4,"totalTokens":7}}"#),
    ]
    .concat()
}

/// A frame whose prelude and message CRCs are right around arbitrary header
/// and payload bytes: it gets past the checksums to the header parser.
fn checksummed(headers: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = (16 + headers.len() + payload.len()) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(headers);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn mutate(base: &[u8], at: usize, bytes: &[u8], cut: usize) -> Vec<u8> {
    let at = at.min(base.len());
    let end = (at + cut).min(base.len());
    let mut v = base[..at].to_vec();
    v.extend_from_slice(bytes);
    v.extend_from_slice(&base[end..]);
    v
}

fn meta() -> AnswerMeta {
    AnswerMeta {
        fallback_id: "chatcmpl-x".into(),
        created: 1,
        model: "m".into(),
        client_wants_usage: true,
        ..AnswerMeta::default()
    }
}

/// Decodes `bytes` fed in pieces of the given sizes; checks the error rule.
fn decode_in_pieces(bytes: &[u8], sizes: &[usize]) -> Vec<Delta> {
    let mut d = StreamDecoder::new();
    let mut out = Vec::new();
    let mut rest = bytes;
    for size in sizes.iter().copied().cycle().take(bytes.len() + 1) {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(size.clamp(1, rest.len()));
        d.decode(piece, &mut out);
        rest = tail;
    }
    d.decode(rest, &mut out);
    d.end(&mut out);
    let errors = out.iter().filter(|d| matches!(d, Delta::Error(_))).count();
    assert!(errors <= 1, "{out:?}");
    if let Some(pos) = out.iter().position(|d| matches!(d, Delta::Error(_) | Delta::Done)) {
        assert_eq!(pos, out.len() - 1, "nothing after an error or Done: {out:?}");
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn answers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = answer(&bytes, &meta());
    }

    #[test]
    fn mutated_answers_never_panic(at in 0usize..ANSWER.len(), ins in proptest::collection::vec(any::<u8>(), 0..8), cut in 0usize..8) {
        if let Err(e) = answer(&mutate(ANSWER.as_bytes(), at, &ins, cut), &meta()) {
            prop_assert_eq!(e.status, 502);
        }
    }

    #[test]
    fn random_streams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), sizes in proptest::collection::vec(1usize..64, 1..6)) {
        decode_in_pieces(&bytes, &sizes);
    }

    #[test]
    fn mutated_streams_never_panic(at in 0usize..600, ins in proptest::collection::vec(any::<u8>(), 0..6), cut in 0usize..6, sizes in proptest::collection::vec(1usize..64, 1..6)) {
        let base = stream();
        let mutated = mutate(&base, at, &ins, cut);
        let out = decode_in_pieces(&mutated, &sizes);
        if mutated != base {
            // A changed byte breaks a checksum: the stream ends in one error
            // (unless the change only cut the tail after the last frame).
            prop_assert!(out.iter().any(|d| matches!(d, Delta::Error(_) | Delta::Done)));
        }
    }

    #[test]
    fn checksummed_garbage_never_panics(headers in proptest::collection::vec(any::<u8>(), 0..80), payload in proptest::collection::vec(any::<u8>(), 0..80)) {
        let out = decode_in_pieces(&checksummed(&headers, &payload), &[7]);
        prop_assert!(out.len() <= 2);
    }

    #[test]
    fn checksummed_events_with_random_json_never_panic(kind in prop::sample::select(vec!["messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata", "other"]), payload in "[{}\\[\\]\":,a-z0-9 ]{0,60}") {
        let _ = decode_in_pieces(&frame("event", kind, &payload), &[5]);
        let _ = decode_in_pieces(&frame("exception", kind, &payload), &[5]);
    }

    #[test]
    fn requests_never_panic(at in 0usize..160, ins in proptest::collection::vec(any::<u8>(), 0..8)) {
        let base = br#"{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},{"role":"assistant","content":null,"tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"a","content":"{}"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"auto","top_k":3}"#;
        if let Ok(req) = ChatRequest::parse(&mutate(base, at, &ins, 0)) {
            if let Ok(chat) = Chat::from_request(&req, &ModelDefaults::default()) {
                let _ = request(&chat, &ProviderOptions::default());
            }
        }
    }

    #[test]
    fn signing_never_panics(host in "\\PC{0,20}", path in "\\PC{0,30}", region in "[a-z0-9-]{0,12}", value in "\\PC{0,20}", secs in 0u64..4_000_000_000) {
        let creds = AwsCredentials { access_key_id: "AKID".into(), secret_access_key: "secret".into(), session_token: Some(value.clone()) };
        let _ = sign(&creds, &region, &host, &path, &[("content-type", &value)], b"{}", UNIX_EPOCH + Duration::from_secs(secs));
    }
}

#[test]
fn the_sample_stream_translates() {
    let out = decode_in_pieces(&stream(), &[3]);
    assert_eq!(out.last(), Some(&Delta::Done));
    assert!(answer(ANSWER.as_bytes(), &meta()).is_ok());
}

//! ConverseStream's answer: `application/vnd.amazon.eventstream` binary frames
//! (decoded by AWS's `aws-smithy-eventstream`), each carrying one JSON event,
//! become provider-neutral deltas.
//!
//! Events (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html):
//! `messageStart`, `contentBlockStart` (a tool call's id and name),
//! `contentBlockDelta` (text, reasoning, or a fragment of a tool call's JSON input),
//! `contentBlockStop`, `messageStop` (the stop reason) and `metadata` (usage;
//! the last event). Exceptions (`:message-type` `exception`) carry
//! `{"message"}`.

use aws_smithy_eventstream::frame::{read_message_from, write_message_to};
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::{Buf, BytesMut};
use serde_json::Value;

use super::{finish_reason, WireUsage, PROVIDER};
use crate::stream::{Decoder, Delta};
use crate::LlmError;

/// Total length, headers length and prelude CRC, 4 bytes each.
const PRELUDE_LEN: usize = 12;
/// A frame's smallest size: the prelude and the message CRC.
const MIN_FRAME_LEN: usize = 16;
/// The event-stream format's largest message (16 MiB). A prelude naming more
/// is refused at once rather than buffered for.
const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// Decodes ConverseStream's binary event stream.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    buf: BytesMut,
    /// `contentBlockIndex` of each tool-call block, by tool-call index.
    tool_blocks: Vec<u64>,
    /// `messageStop` arrived.
    finished: bool,
    /// `Done` or an error was emitted: the rest of the body is ignored.
    ended: bool,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next complete frame, `None` while it is still arriving.
    fn next_frame(&mut self) -> Result<Option<Message>, String> {
        let Some(prelude) = self.buf.get(..PRELUDE_LEN) else {
            return Ok(None);
        };
        let (Some(total), Some(crc)) = (be_u32(prelude, 0), be_u32(prelude, 8)) else {
            return Ok(None);
        };
        // The prelude's own CRC tells garbage from a frame before its length is trusted.
        if prelude.get(..8).map(crc32fast::hash) != Some(crc) {
            return Err("a frame's prelude checksum does not match".into());
        }
        let total = total as usize;
        if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&total) {
            return Err(format!("a frame claims {total} bytes"));
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let frame = self.buf.split_to(total).freeze();
        read_message_from(frame.chunk()).map(Some).map_err(|e| format!("undecodable frame: {e}"))
    }

    fn handle(&mut self, message: &Message, out: &mut Vec<Delta>) {
        match header(message, ":message-type") {
            Some("event") => {
                let kind = header(message, ":event-type").unwrap_or_default();
                match serde_json::from_slice::<Value>(message.payload()) {
                    Ok(event) => self.event(kind, &event, out),
                    Err(e) => self.fail(format!("event {kind} is not JSON: {e}"), out),
                }
            }
            Some("exception") => {
                let kind = header(message, ":exception-type").unwrap_or("exception");
                let text = serde_json::from_slice::<Value>(message.payload())
                    .ok()
                    .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_else(|| quote(message.payload()));
                self.fail(format!("{kind}: {text}"), out);
            }
            // The framing layer's own errors carry their code and message as headers.
            Some("error") => {
                let code = header(message, ":error-code").unwrap_or("error");
                let text = header(message, ":error-message").unwrap_or_default();
                self.fail(format!("{code}: {text}"), out);
            }
            other => self.fail(format!("a frame of message type {other:?}"), out),
        }
    }

    fn event(&mut self, kind: &str, event: &Value, out: &mut Vec<Delta>) {
        let block = event.get("contentBlockIndex").and_then(Value::as_u64).unwrap_or(0);
        match kind {
            "contentBlockStart" => {
                let Some(tool) = event.get("start").and_then(|s| s.get("toolUse")) else {
                    return;
                };
                let id = tool.get("toolUseId").and_then(Value::as_str);
                let name = tool.get("name").and_then(Value::as_str);
                let (Some(id), Some(name)) = (id, name) else {
                    return self.fail("a tool call without toolUseId and name".into(), out);
                };
                let index = self.tool_blocks.len() as u32;
                self.tool_blocks.push(block);
                out.push(Delta::ToolCall {
                    index,
                    id: Some(id.into()),
                    name: Some(name.into()),
                    arguments: String::new(),
                });
            }
            "contentBlockDelta" => {
                let Some(delta) = event.get("delta") else {
                    return;
                };
                if let Some(text) = delta.get("text").and_then(Value::as_str) {
                    if !text.is_empty() {
                        out.push(Delta::Text(text.into()));
                    }
                } else if let Some(input) = delta.get("toolUse").and_then(|t| t.get("input")).and_then(Value::as_str) {
                    let Some(index) = self.tool_blocks.iter().rposition(|b| *b == block) else {
                        return self
                            .fail(format!("tool input for content block {block}, which started no tool call"), out);
                    };
                    if !input.is_empty() {
                        out.push(Delta::ToolCall {
                            index: index as u32,
                            id: None,
                            name: None,
                            arguments: input.into(),
                        });
                    }
                } else if let Some(reasoning) = delta.get("reasoningContent") {
                    // ReasoningContentBlockDelta: one of text, signature, redactedContent.
                    let field = |name| reasoning.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
                    if let Some(text) = field("text") {
                        out.push(Delta::Thinking(text.into()));
                    } else if let Some(signature) = field("signature") {
                        out.push(Delta::ThinkingSignature(signature.into()));
                    } else if let Some(data) = field("redactedContent") {
                        out.push(Delta::RedactedThinking(data.into()));
                    }
                }
                // Citation deltas have no neutral form.
            }
            "messageStop" => {
                let reason = event.get("stopReason").and_then(Value::as_str).unwrap_or("end_turn");
                out.push(Delta::Finish(finish_reason(reason)));
                self.finished = true;
            }
            "metadata" => {
                if let Some(usage) =
                    event.get("usage").and_then(|u| serde_json::from_value::<WireUsage>(u.clone()).ok())
                {
                    out.push(Delta::Usage(usage.update()));
                }
                // Metadata is the stream's last event.
                out.push(Delta::Done);
                self.ended = true;
            }
            // messageStart (the role), contentBlockStop, and events added later.
            _ => {}
        }
    }

    /// Emits the one error of this stream; what follows is ignored.
    fn fail(&mut self, why: String, out: &mut Vec<Delta>) {
        out.push(Delta::Error(LlmError::new(
            502,
            "upstream_error",
            format!("provider {PROVIDER} stream error: {why}"),
        )));
        self.ended = true;
        self.buf.clear();
    }
}

impl Decoder for StreamDecoder {
    fn decode(&mut self, input: &[u8], out: &mut Vec<Delta>) {
        if self.ended {
            return;
        }
        self.buf.extend_from_slice(input);
        while !self.ended {
            match self.next_frame() {
                Ok(Some(message)) => self.handle(&message, out),
                Ok(None) => break,
                Err(why) => self.fail(why, out),
            }
        }
    }

    fn end(&mut self, out: &mut Vec<Delta>) {
        if self.ended {
            return;
        }
        if !self.buf.is_empty() {
            self.fail(format!("the stream ended inside a frame ({} bytes left)", self.buf.len()), out);
        } else if self.finished {
            // The answer ended (messageStop) but its metadata never came.
            out.push(Delta::Done);
            self.ended = true;
        }
    }
}

/// A ConverseStream body of `chunks` text deltas of `piece` (then the stop
/// and the usage), encoded with AWS's encoder: for benchmarks and for tests
/// outside this crate.
#[doc(hidden)]
pub fn test_stream(chunks: usize, piece: &str) -> Vec<u8> {
    let mut out = Vec::new();
    push_event(&mut out, "messageStart", r#"{"role":"assistant"}"#);
    let delta = serde_json::json!({ "contentBlockIndex": 0, "delta": { "text": piece } }).to_string();
    for _ in 0..chunks {
        push_event(&mut out, "contentBlockDelta", &delta);
    }
    push_event(&mut out, "contentBlockStop", r#"{"contentBlockIndex":0}"#);
    push_event(&mut out, "messageStop", r#"{"stopReason":"end_turn"}"#);
    let usage =
        serde_json::json!({ "usage": { "inputTokens": 10, "outputTokens": chunks, "totalTokens": chunks + 10 } });
    push_event(&mut out, "metadata", &usage.to_string());
    out
}

/// Appends one event frame as Bedrock sends it.
fn push_event(out: &mut Vec<u8>, kind: &str, payload: &str) {
    let string = |v: &str| HeaderValue::String(v.to_string().into());
    let message = Message::new(payload.as_bytes().to_vec())
        .add_header(Header::new(":event-type", string(kind)))
        .add_header(Header::new(":content-type", string("application/json")))
        .add_header(Header::new(":message-type", string("event")));
    // Only headers or payloads beyond the format's limits fail to encode.
    let _ = write_message_to(&message, out);
}

/// A string header's value.
fn header<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    message
        .headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| h.value().as_string().ok())
        .map(|s| s.as_str())
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let four: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(four))
}

/// A short quote of a payload that is not the expected JSON.
fn quote(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(payload);
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::completion::{AnswerMeta, FinishReason};
    use crate::stream::{assert_split_invariant, UsageUpdate};

    /// One frame as Bedrock sends it, encoded by AWS's encoder.
    fn frame(message_type: &str, kind: &str, payload: &[u8]) -> Vec<u8> {
        let type_header = if message_type == "exception" { ":exception-type" } else { ":event-type" };
        let message = Message::new(payload.to_vec())
            .add_header(Header::new(type_header, HeaderValue::String(kind.to_string().into())))
            .add_header(Header::new(":content-type", HeaderValue::String("application/json".into())))
            .add_header(Header::new(":message-type", HeaderValue::String(message_type.to_string().into())));
        let mut out = Vec::new();
        write_message_to(&message, &mut out).expect("encodes");
        out
    }

    fn event(kind: &str, payload: Value) -> Vec<u8> {
        frame("event", kind, payload.to_string().as_bytes())
    }

    fn decode_all(bytes: &[u8]) -> Vec<Delta> {
        let mut d = StreamDecoder::new();
        let mut out = Vec::new();
        d.decode(bytes, &mut out);
        d.end(&mut out);
        out
    }

    fn meta() -> AnswerMeta {
        AnswerMeta {
            fallback_id: "chatcmpl-r1".into(),
            created: 7,
            model: "m".into(),
            client_wants_usage: true,
            ..AnswerMeta::default()
        }
    }

    // An event-stream message encoded by an independent implementation (the
    // Elixir `event_stream` package's documented example, CRCs checked by
    // hand with zlib.crc32): https://hex.pm/packages/event_stream/0.1.0/files/lib/event_stream.ex
    const INDEPENDENT_FRAME: &[u8] = &[
        0, 0, 0, 62, 0, 0, 0, 32, 64, 93, 249, 70, 12, 99, 111, 110, 116, 101, 110, 116, 45, 116, 121, 112, 101, 7, 0,
        16, 97, 112, 112, 108, 105, 99, 97, 116, 105, 111, 110, 47, 106, 115, 111, 110, 123, 34, 102, 111, 111, 34, 58,
        32, 34, 98, 97, 114, 34, 125, 111, 162, 191, 59,
    ];

    #[test]
    fn the_encoder_used_for_fixtures_matches_an_independent_one() {
        let message = Message::new(&b"{\"foo\": \"bar\"}"[..])
            .add_header(Header::new("content-type", HeaderValue::String("application/json".into())));
        let mut out = Vec::new();
        write_message_to(&message, &mut out).expect("encodes");
        assert_eq!(out, INDEPENDENT_FRAME);
        // It decodes, and without a :message-type it is not a Bedrock event.
        let deltas = decode_all(INDEPENDENT_FRAME);
        assert!(
            matches!(deltas.as_slice(), [Delta::Error(e)] if e.message.contains("message type None")),
            "{deltas:?}"
        );
    }

    #[test]
    fn text_tool_calls_finish_usage_done() {
        let mut bytes = Vec::new();
        for f in [
            event("messageStart", json!({"role": "assistant", "p": "abcd"})),
            event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}})),
            event("contentBlockStop", json!({"contentBlockIndex": 0})),
            event(
                "contentBlockStart",
                json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t1", "name": "f"}}}),
            ),
            event("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"a\":"}}})),
            event("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "1}"}}})),
            event("contentBlockStop", json!({"contentBlockIndex": 1})),
            event("messageStop", json!({"stopReason": "tool_use"})),
            event(
                "metadata",
                json!({"usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8}, "metrics": {"latencyMs": 9}}),
            ),
        ] {
            bytes.extend(f);
        }
        assert_eq!(
            decode_all(&bytes),
            vec![
                Delta::Text("Hi".into()),
                Delta::ToolCall { index: 0, id: Some("t1".into()), name: Some("f".into()), arguments: String::new() },
                Delta::ToolCall { index: 0, id: None, name: None, arguments: "{\"a\":".into() },
                Delta::ToolCall { index: 0, id: None, name: None, arguments: "1}".into() },
                Delta::Finish(FinishReason::ToolCalls),
                Delta::Usage(UsageUpdate {
                    prompt: Some(5),
                    completion: Some(3),
                    cached: Some(0),
                    ..UsageUpdate::default()
                }),
                Delta::Done,
            ]
        );
        assert_split_invariant(StreamDecoder::new, &meta(), &bytes);
    }

    #[test]
    fn the_benchmark_stream_decodes() {
        let deltas = decode_all(&test_stream(3, "tok "));
        assert_eq!(deltas.iter().filter(|d| **d == Delta::Text("tok ".into())).count(), 3);
        assert_eq!(deltas.last(), Some(&Delta::Done));
    }

    #[test]
    fn bad_bytes_are_one_error() {
        let good = event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}}));
        // A flipped payload byte breaks the message CRC.
        let mut bad_crc = good.clone();
        if let Some(b) = bad_crc.get_mut(40) {
            *b ^= 1;
        }
        // A flipped length breaks the prelude CRC.
        let mut bad_prelude = good.clone();
        bad_prelude[3] ^= 1;
        for (bytes, want) in [
            ([good.clone(), bad_crc].concat(), "undecodable frame"),
            ([good.clone(), bad_prelude].concat(), "prelude checksum"),
            ([good.clone(), b"<html>502 Bad Gateway</html>".to_vec()].concat(), "prelude checksum"),
            ([good.clone(), good[..20].to_vec()].concat(), "ended inside a frame"),
            ([good.clone(), frame("event", "contentBlockDelta", b"not json")].concat(), "is not JSON"),
        ] {
            let deltas = decode_all(&bytes);
            assert_eq!(deltas.first(), Some(&Delta::Text("Hi".into())));
            let errors: Vec<_> = deltas.iter().filter(|d| matches!(d, Delta::Error(_))).collect();
            assert_eq!(errors.len(), 1, "{want}: {deltas:?}");
            assert!(
                matches!(errors[0], Delta::Error(e) if e.status == 502 && e.message.contains("provider bedrock") && e.message.contains(want)),
                "{want}: {deltas:?}"
            );
            assert_eq!(deltas.len(), 2, "nothing after the error: {deltas:?}");
        }
    }

    #[test]
    fn exceptions_and_a_stream_cut_after_message_stop() {
        let bytes = frame(
            "exception",
            "throttlingException",
            br#"{"message":"Too many requests, please wait before trying again."}"#,
        );
        let deltas = decode_all(&bytes);
        assert!(
            matches!(deltas.as_slice(), [Delta::Error(e)] if e.message == "provider bedrock stream error: throttlingException: Too many requests, please wait before trying again."),
            "{deltas:?}"
        );
        let bytes = event("messageStop", json!({"stopReason": "end_turn"}));
        assert_eq!(decode_all(&bytes), vec![Delta::Finish(FinishReason::Stop), Delta::Done]);
        assert_eq!(decode_all(b""), vec![]);
        let bytes = event("contentBlockDelta", json!({"contentBlockIndex": 3, "delta": {"toolUse": {"input": "{}"}}}));
        assert!(
            matches!(decode_all(&bytes).as_slice(), [Delta::Error(e)] if e.message.contains("started no tool call"))
        );
    }
}

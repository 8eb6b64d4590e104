//! Stream translation. A provider's decoder turns its wire format (SSE events,
//! newline-delimited JSON, AWS binary frames) into provider-neutral `Delta`s,
//! whatever the TCP chunk boundaries; the `ChunkWriter` turns deltas into
//! OpenAI `chat.completion.chunk` events as soon as they arrive.

use std::io::Write;

use bytes::Bytes;

use crate::completion::{write_usage, AnswerMeta, FinishReason};
use crate::{LlmError, Usage};

/// What a provider's stream said, in provider-neutral terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    /// The answer's id or model, when the provider names them (usually first).
    Meta { id: Option<String>, model: Option<String> },
    Text(String),
    /// A tool call: its first delta carries `id` and `name`, later ones
    /// fragments of the JSON arguments. `index` counts tool calls in the answer
    /// from 0.
    ToolCall { index: u32, id: Option<String>, name: Option<String>, arguments: String },
    Finish(FinishReason),
    /// Usage figures as the provider reports them; later figures replace
    /// earlier ones field by field.
    Usage(UsageUpdate),
    /// The provider ended its answer normally.
    Done,
    /// The provider reported an error mid-stream, or sent what is not its format.
    Error(LlmError),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageUpdate {
    pub prompt: Option<u64>,
    pub completion: Option<u64>,
    pub cached: Option<u64>,
}

/// A provider's stream format, incrementally decoded.
pub trait Decoder: Send {
    /// Consumes the next bytes of the upstream body and appends what they say.
    /// A partial frame is kept until the rest arrives.
    fn decode(&mut self, input: &[u8], out: &mut Vec<Delta>);
    /// The upstream body ended; emit what the buffered rest means (providers
    /// whose streams have no end marker emit `Done` here).
    fn end(&mut self, _out: &mut Vec<Delta>) {}
}

/// What the gateway relays: upstream bytes in, OpenAI SSE bytes out.
pub trait ChatStream: Send {
    /// Bytes to send to the client now (possibly empty).
    fn feed(&mut self, input: &[u8]) -> Bytes;
    /// The upstream ended: the last bytes to send.
    fn finish(&mut self) -> Bytes;
    fn usage(&self) -> Option<Usage>;
    fn model(&self) -> Option<&str>;
    /// Content-bearing events sent so far.
    fn events(&self) -> u64;
    /// The provider ended its answer properly (and no error event was sent).
    fn completed(&self) -> bool;
}

/// Writes OpenAI chunk events for deltas.
#[derive(Debug)]
pub struct ChunkWriter {
    meta: AnswerMeta,
    id: Option<String>,
    model: Option<String>,
    /// `data: {"id":..,"object":..,"created":..,"model":..,"choices":[{"index":0,"delta":`
    prefix: Vec<u8>,
    role_sent: bool,
    usage: UsageUpdate,
    saw_usage: bool,
    events: u64,
    done: bool,
    failed: bool,
}

impl ChunkWriter {
    pub fn new(meta: AnswerMeta) -> Self {
        ChunkWriter {
            meta,
            id: None,
            model: None,
            prefix: Vec::new(),
            role_sent: false,
            usage: UsageUpdate::default(),
            saw_usage: false,
            events: 0,
            done: false,
            failed: false,
        }
    }

    /// Appends the events for one delta to `out`.
    pub fn write(&mut self, delta: Delta, out: &mut Vec<u8>) {
        if self.done || self.failed {
            return;
        }
        match delta {
            Delta::Meta { id, model } => {
                if self.prefix.is_empty() {
                    self.id = id.or(self.id.take());
                    self.model = model.or(self.model.take());
                } else if self.model.is_none() {
                    self.model = model;
                }
            }
            Delta::Text(t) => {
                if t.is_empty() && self.role_sent {
                    return;
                }
                self.events += 1;
                self.open(out);
                out.extend_from_slice(b"{\"content\":");
                json_str(out, &t);
                out.extend_from_slice(b"},\"finish_reason\":null}]}\n\n");
            }
            Delta::ToolCall { index, id, name, arguments } => {
                self.events += 1;
                self.open(out);
                let _ = write!(out, "{{\"tool_calls\":[{{\"index\":{index}");
                if let Some(id) = id {
                    out.extend_from_slice(b",\"id\":");
                    json_str(out, &id);
                    out.extend_from_slice(b",\"type\":\"function\"");
                }
                out.extend_from_slice(b",\"function\":{");
                if let Some(name) = name {
                    out.extend_from_slice(b"\"name\":");
                    json_str(out, &name);
                    out.push(b',');
                }
                out.extend_from_slice(b"\"arguments\":");
                json_str(out, &arguments);
                out.extend_from_slice(b"}}]},\"finish_reason\":null}]}\n\n");
            }
            Delta::Finish(reason) => {
                self.open(out);
                let _ = write!(out, "{{}},\"finish_reason\":\"{}\"}}]}}\n\n", reason.as_str());
            }
            Delta::Usage(u) => {
                self.saw_usage = true;
                self.usage.prompt = u.prompt.or(self.usage.prompt);
                self.usage.completion = u.completion.or(self.usage.completion);
                self.usage.cached = u.cached.or(self.usage.cached);
            }
            Delta::Done => {
                if self.meta.client_wants_usage {
                    if let Some(u) = self.usage() {
                        self.ensure_prefix();
                        // The usage chunk has no choices: cut the prefix before them.
                        let cut = self.prefix.len() - b"\"choices\":[{\"index\":0,\"delta\":".len();
                        out.extend_from_slice(&self.prefix[..cut]);
                        out.extend_from_slice(b"\"choices\":[],\"usage\":");
                        write_usage(&u, out);
                        out.extend_from_slice(b"}\n\n");
                    }
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
                self.done = true;
            }
            Delta::Error(e) => {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(&e.body());
                out.extend_from_slice(b"\n\n");
                self.failed = true;
            }
        }
    }

    pub fn usage(&self) -> Option<Usage> {
        if !self.saw_usage {
            return None;
        }
        let prompt = self.usage.prompt.unwrap_or(0);
        let completion = self.usage.completion.unwrap_or(0);
        Some(Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt.saturating_add(completion),
            cached_tokens: self.usage.cached.unwrap_or(0),
        })
    }

    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    fn ensure_prefix(&mut self) {
        if !self.prefix.is_empty() {
            return;
        }
        let id = self.id.clone().unwrap_or_else(|| self.meta.fallback_id.clone());
        let model = self.model.clone().unwrap_or_else(|| self.meta.model.clone());
        let p = &mut self.prefix;
        p.extend_from_slice(b"data: {\"id\":");
        json_str(p, &id);
        let _ = write!(p, ",\"object\":\"chat.completion.chunk\",\"created\":{},\"model\":", self.meta.created);
        json_str(p, &model);
        p.extend_from_slice(b",\"choices\":[{\"index\":0,\"delta\":");
    }

    /// Starts a chunk; the first one announces the assistant role.
    fn open(&mut self, out: &mut Vec<u8>) {
        self.ensure_prefix();
        if !self.role_sent {
            self.role_sent = true;
            out.extend_from_slice(&self.prefix);
            out.extend_from_slice(b"{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n");
        }
        out.extend_from_slice(&self.prefix);
    }
}

/// A JSON string literal.
fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A decoder and a writer: one provider's stream, translated.
pub struct Translator<D> {
    decoder: D,
    writer: ChunkWriter,
    deltas: Vec<Delta>,
}

impl<D: Decoder> Translator<D> {
    pub fn new(decoder: D, meta: AnswerMeta) -> Self {
        Translator { decoder, writer: ChunkWriter::new(meta), deltas: Vec::new() }
    }

    fn drain(&mut self) -> Bytes {
        let mut out = Vec::new();
        for d in self.deltas.drain(..) {
            self.writer.write(d, &mut out);
        }
        Bytes::from(out)
    }
}

impl<D: Decoder> ChatStream for Translator<D> {
    fn feed(&mut self, input: &[u8]) -> Bytes {
        self.decoder.decode(input, &mut self.deltas);
        self.drain()
    }

    fn finish(&mut self) -> Bytes {
        self.decoder.end(&mut self.deltas);
        self.drain()
    }

    fn usage(&self) -> Option<Usage> {
        self.writer.usage()
    }

    fn model(&self) -> Option<&str> {
        self.writer.model()
    }

    fn events(&self) -> u64 {
        self.writer.events
    }

    fn completed(&self) -> bool {
        self.writer.done && !self.writer.failed
    }
}

/// A native stream relayed unchanged (`route_type = "preserve"`) while its
/// decoder reads usage and model for logs and limits.
pub struct Observer<D> {
    inner: Translator<D>,
}

impl<D: Decoder> Observer<D> {
    pub fn new(decoder: D, meta: AnswerMeta) -> Self {
        Observer { inner: Translator::new(decoder, meta) }
    }
}

impl<D: Decoder> ChatStream for Observer<D> {
    fn feed(&mut self, input: &[u8]) -> Bytes {
        let _ = self.inner.feed(input);
        Bytes::copy_from_slice(input)
    }

    fn finish(&mut self) -> Bytes {
        let _ = self.inner.finish();
        Bytes::new()
    }

    fn usage(&self) -> Option<Usage> {
        self.inner.usage()
    }

    fn model(&self) -> Option<&str> {
        self.inner.model()
    }

    fn events(&self) -> u64 {
        self.inner.events()
    }

    fn completed(&self) -> bool {
        self.inner.completed()
    }
}

/// The OpenAI chunks of a translated stream, as JSON (`[DONE]` left out), for
/// tests: a chunk that is not JSON fails the test.
#[cfg(test)]
#[allow(clippy::expect_used)]
pub(crate) fn openai_events(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("each event is JSON"))
        .collect()
}

/// Runs a whole stream through a fresh translator, fed in the given pieces.
/// For tests of every adapter: the output must not depend on the pieces.
pub fn translate_in_pieces<D: Decoder>(decoder: D, meta: AnswerMeta, pieces: &[&[u8]]) -> (Vec<u8>, Option<Usage>, bool) {
    let mut t = Translator::new(decoder, meta);
    let mut out = Vec::new();
    for p in pieces {
        out.extend_from_slice(&t.feed(p));
    }
    out.extend_from_slice(&t.finish());
    (out, t.usage(), t.completed())
}

/// Checks that a stream translates the same whole, split at every byte
/// boundary, and in one-byte pieces; returns the whole translation.
pub fn assert_split_invariant<D: Decoder>(make: impl Fn() -> D, meta: &AnswerMeta, stream: &[u8]) -> Vec<u8> {
    let whole = translate_in_pieces(make(), meta.clone(), &[stream]);
    for cut in 0..=stream.len() {
        let split = translate_in_pieces(make(), meta.clone(), &[&stream[..cut], &stream[cut..]]);
        assert_eq!(split, whole, "stream split at byte {cut} translates differently");
    }
    let ones: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(translate_in_pieces(make(), meta.clone(), &ones), whole, "one-byte pieces translate differently");
    whole.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::openai_events as events;

    fn meta(wants_usage: bool) -> AnswerMeta {
        AnswerMeta { fallback_id: "chatcmpl-r1".into(), created: 9, model: "m".into(), client_wants_usage: wants_usage }
    }



    #[test]
    fn deltas_become_openai_chunks() {
        let mut w = ChunkWriter::new(meta(true));
        let mut out = Vec::new();
        for d in [
            Delta::Meta { id: Some("msg_1".into()), model: Some("claude-x".into()) },
            Delta::Usage(UsageUpdate { prompt: Some(10), completion: Some(1), cached: None }),
            Delta::Text("Hel\"lo".into()),
            Delta::ToolCall { index: 0, id: Some("t1".into()), name: Some("f".into()), arguments: String::new() },
            Delta::ToolCall { index: 0, id: None, name: None, arguments: "{\"a\":".into() },
            Delta::Finish(FinishReason::ToolCalls),
            Delta::Usage(UsageUpdate { prompt: None, completion: Some(5), cached: None }),
            Delta::Done,
        ] {
            w.write(d, &mut out);
        }
        let text = String::from_utf8(out.clone()).expect("utf8");
        assert!(text.ends_with("data: [DONE]\n\n"));
        let ev = events(&out);
        assert_eq!(ev[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(ev[0]["id"], "msg_1");
        assert_eq!(ev[0]["model"], "claude-x");
        assert_eq!(ev[0]["object"], "chat.completion.chunk");
        assert_eq!(ev[1]["choices"][0]["delta"]["content"], "Hel\"lo");
        assert_eq!(ev[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"], "f");
        assert_eq!(ev[2]["choices"][0]["delta"]["tool_calls"][0]["id"], "t1");
        assert_eq!(ev[3]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"], "{\"a\":");
        assert_eq!(ev[4]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(ev[5]["choices"], serde_json::json!([]));
        assert_eq!(ev[5]["usage"]["total_tokens"], 15);
        assert_eq!(w.usage().map(|u| u.completion_tokens), Some(5));
    }

    #[test]
    fn usage_chunk_only_when_asked_and_errors_end_the_stream() {
        let mut w = ChunkWriter::new(meta(false));
        let mut out = Vec::new();
        w.write(Delta::Usage(UsageUpdate { prompt: Some(1), completion: Some(1), cached: None }), &mut out);
        w.write(Delta::Text("x".into()), &mut out);
        w.write(Delta::Error(LlmError::new(502, "upstream_error", "boom")), &mut out);
        w.write(Delta::Done, &mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert!(!text.contains("usage"));
        assert!(text.ends_with("data: {\"error\":{\"code\":null,\"message\":\"boom\",\"type\":\"upstream_error\"}}\n\n"), "{text}");
        assert!(!text.contains("[DONE]"));
        assert_eq!(w.usage().map(|u| u.total_tokens), Some(2));
    }
}

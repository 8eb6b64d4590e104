//! Stream translation. A provider's decoder turns its wire format (SSE events,
//! newline-delimited JSON, AWS binary frames) into provider-neutral `Delta`s,
//! whatever the TCP chunk boundaries; a renderer turns deltas into the
//! caller's own events (OpenAI chat chunks, Anthropic Messages events,
//! Responses events) as soon as they arrive. What every renderer needs to know
//! of the stream so far (id, model, usage, whether it ended) is kept once, in
//! `StreamState`.

use std::io::Write;

use bytes::Bytes;

use crate::completion::{write_usage, AnswerMeta, FinishReason};
use crate::{LlmError, Usage};

/// What a provider's stream said, in provider-neutral terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    /// The answer's id or model, when the provider names them (usually first).
    Meta {
        id: Option<String>,
        model: Option<String>,
    },
    Text(String),
    /// Reasoning the model shows before it answers (Anthropic `thinking`,
    /// Gemini thought parts, Bedrock `reasoningContent`, `reasoning_content`
    /// of OpenAI-compatible servers).
    Thinking(String),
    /// The signature that closes a thinking block (Anthropic, Bedrock): a
    /// caller replaying the block in a later turn must send it back.
    ThinkingSignature(String),
    /// A redacted thinking block's opaque data.
    RedactedThinking(String),
    /// A tool call: its first delta carries `id` and `name`, later ones
    /// fragments of the JSON arguments. `index` counts tool calls in the answer
    /// from 0.
    ToolCall {
        index: u32,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
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
    /// Every prompt token, cache reads and writes included.
    pub prompt: Option<u64>,
    pub completion: Option<u64>,
    /// Prompt tokens read from the provider's cache.
    pub cached: Option<u64>,
    /// Prompt tokens written to the provider's cache.
    pub cache_write: Option<u64>,
    /// Completion tokens spent reasoning.
    pub reasoning: Option<u64>,
}

impl UsageUpdate {
    /// Later figures replace earlier ones, field by field.
    pub fn merge(&mut self, later: UsageUpdate) {
        self.prompt = later.prompt.or(self.prompt);
        self.completion = later.completion.or(self.completion);
        self.cached = later.cached.or(self.cached);
        self.cache_write = later.cache_write.or(self.cache_write);
        self.reasoning = later.reasoning.or(self.reasoning);
    }
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

/// What the gateway relays: upstream bytes in, the caller's events out.
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
    /// The provider broke off: the caller's error event that ends the stream
    /// (empty where the caller's format has none to add).
    fn fail(&mut self, error: LlmError) -> Bytes;
    /// The last `feed`'s output before a wrapper rewrote it for the caller
    /// (placeholders restored), when one did: what `log_payloads` keeps, so
    /// the access log never holds PII the sanitizer hid from the provider.
    fn unrestored(&mut self) -> Option<Bytes> {
        None
    }
}

/// What is known of a stream so far, whatever format the caller reads it in.
#[derive(Debug)]
pub struct StreamState {
    pub meta: AnswerMeta,
    id: Option<String>,
    model: Option<String>,
    /// Set by the renderer once it has written the answer's identity to the
    /// caller: a later `Meta` may then only fill in a model still unknown.
    pub started: bool,
    usage: UsageUpdate,
    saw_usage: bool,
    /// Content-bearing deltas (text, thinking, tool calls) seen.
    pub events: u64,
    pub finish: Option<FinishReason>,
    pub done: bool,
    pub failed: bool,
}

impl StreamState {
    pub fn new(meta: AnswerMeta) -> Self {
        StreamState {
            meta,
            id: None,
            model: None,
            started: false,
            usage: UsageUpdate::default(),
            saw_usage: false,
            events: 0,
            finish: None,
            done: false,
            failed: false,
        }
    }

    /// Takes in what a delta says of the stream, before it is rendered.
    fn apply(&mut self, delta: &Delta) {
        match delta {
            Delta::Meta { id, model } => {
                if !self.started {
                    if id.is_some() {
                        self.id = id.clone();
                    }
                    if model.is_some() {
                        self.model = model.clone();
                    }
                } else if self.model.is_none() {
                    self.model = model.clone();
                }
            }
            Delta::Text(t) | Delta::Thinking(t) if !t.is_empty() => self.events += 1,
            Delta::ToolCall { .. } => self.events += 1,
            Delta::Finish(reason) => self.finish = Some(*reason),
            Delta::Usage(u) => {
                self.saw_usage = true;
                self.usage.merge(*u);
            }
            _ => {}
        }
    }

    /// The answer's id: the provider's, else the request's fallback.
    pub fn id(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.meta.fallback_id)
    }

    /// The model that answers: the provider's word, else the one asked.
    pub fn answer_model(&self) -> &str {
        self.model.as_deref().unwrap_or(&self.meta.model)
    }

    /// The model the provider named, if it did.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// The usage figures so far, as reported (no figure is zero).
    pub fn usage_so_far(&self) -> UsageUpdate {
        self.usage
    }

    pub fn usage(&self) -> Option<Usage> {
        if !self.saw_usage {
            return None;
        }
        let u = self.usage;
        let prompt = u.prompt.unwrap_or(0);
        let completion = u.completion.unwrap_or(0);
        Some(Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt.saturating_add(completion),
            cached_tokens: u.cached.unwrap_or(0),
            cache_write_tokens: u.cache_write.unwrap_or(0),
            reasoning_tokens: u.reasoning.unwrap_or(0),
        })
    }
}

/// The caller's stream format: events for each delta.
pub trait Render: Send {
    /// Appends the caller's events for one delta. `state` already includes
    /// the delta (usage merged, model known, events counted); after `Done`
    /// or `Error` nothing more is rendered.
    fn render(&mut self, delta: &Delta, state: &mut StreamState, out: &mut Vec<u8>);
}

/// Renders nothing: a native stream relayed as it is, read only for its facts.
#[derive(Debug, Default)]
pub struct Silent;

impl Render for Silent {
    fn render(&mut self, _: &Delta, _: &mut StreamState, _: &mut Vec<u8>) {}
}

/// OpenAI `chat.completion.chunk` events.
#[derive(Debug, Default)]
pub struct ChunkWriter {
    /// `data: {"id":..,"object":..,"created":..,"model":..,"choices":[{"index":0,"delta":`
    prefix: Vec<u8>,
    role_sent: bool,
}

impl ChunkWriter {
    pub fn new() -> Self {
        Self::default()
    }

    fn ensure_prefix(&mut self, state: &mut StreamState) {
        if !self.prefix.is_empty() {
            return;
        }
        state.started = true;
        let p = &mut self.prefix;
        p.extend_from_slice(b"data: {\"id\":");
        json_str(p, state.id());
        let _ = write!(p, ",\"object\":\"chat.completion.chunk\",\"created\":{},\"model\":", state.meta.created);
        json_str(p, state.answer_model());
        p.extend_from_slice(b",\"choices\":[{\"index\":0,\"delta\":");
    }

    /// Starts a chunk; the first one announces the assistant role.
    fn open(&mut self, state: &mut StreamState, out: &mut Vec<u8>) {
        self.ensure_prefix(state);
        if !self.role_sent {
            self.role_sent = true;
            out.extend_from_slice(&self.prefix);
            out.extend_from_slice(b"{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n");
        }
        out.extend_from_slice(&self.prefix);
    }
}

impl Render for ChunkWriter {
    fn render(&mut self, delta: &Delta, state: &mut StreamState, out: &mut Vec<u8>) {
        match delta {
            Delta::Text(t) => {
                if t.is_empty() && self.role_sent {
                    return;
                }
                self.open(state, out);
                out.extend_from_slice(b"{\"content\":");
                json_str(out, t);
                out.extend_from_slice(b"},\"finish_reason\":null}]}\n\n");
            }
            Delta::ToolCall { index, id, name, arguments } => {
                self.open(state, out);
                let _ = write!(out, "{{\"tool_calls\":[{{\"index\":{index}");
                if let Some(id) = id {
                    out.extend_from_slice(b",\"id\":");
                    json_str(out, id);
                    out.extend_from_slice(b",\"type\":\"function\"");
                }
                out.extend_from_slice(b",\"function\":{");
                if let Some(name) = name {
                    out.extend_from_slice(b"\"name\":");
                    json_str(out, name);
                    out.push(b',');
                }
                out.extend_from_slice(b"\"arguments\":");
                json_str(out, arguments);
                out.extend_from_slice(b"}}]},\"finish_reason\":null}]}\n\n");
            }
            Delta::Finish(reason) => {
                self.open(state, out);
                let _ = write!(out, "{{}},\"finish_reason\":\"{}\"}}]}}\n\n", reason.as_str());
            }
            Delta::Done => {
                if state.meta.client_wants_usage {
                    if let Some(u) = state.usage() {
                        self.ensure_prefix(state);
                        // The usage chunk has no choices: cut the prefix before them.
                        let cut = self.prefix.len() - b"\"choices\":[{\"index\":0,\"delta\":".len();
                        out.extend_from_slice(&self.prefix[..cut]);
                        out.extend_from_slice(b"\"choices\":[],\"usage\":");
                        write_usage(&u, out);
                        out.extend_from_slice(b"}\n\n");
                    }
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
            }
            Delta::Error(e) => {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(&e.body());
                out.extend_from_slice(b"\n\n");
            }
            // OpenAI's chat chunk has no place for reasoning; ids and usage
            // are in `state`.
            Delta::Meta { .. }
            | Delta::Thinking(_)
            | Delta::ThinkingSignature(_)
            | Delta::RedactedThinking(_)
            | Delta::Usage(_) => {}
        }
    }
}

/// A JSON string literal.
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A decoder and a renderer: one provider's stream, in the caller's format.
pub struct Translator<D, R> {
    decoder: D,
    render: R,
    state: StreamState,
    deltas: Vec<Delta>,
}

impl<D: Decoder, R: Render> Translator<D, R> {
    pub fn new(decoder: D, render: R, meta: AnswerMeta) -> Self {
        Translator { decoder, render, state: StreamState::new(meta), deltas: Vec::new() }
    }

    /// Takes in and renders one delta.
    pub fn write(&mut self, delta: Delta, out: &mut Vec<u8>) {
        write_delta(&mut self.render, &mut self.state, delta, out);
    }

    pub fn state(&self) -> &StreamState {
        &self.state
    }

    fn drain(&mut self) -> Bytes {
        let mut out = Vec::new();
        for d in self.deltas.drain(..) {
            write_delta(&mut self.render, &mut self.state, d, &mut out);
        }
        Bytes::from(out)
    }
}

/// The one place a delta meets the state and the renderer.
fn write_delta<R: Render>(render: &mut R, state: &mut StreamState, delta: Delta, out: &mut Vec<u8>) {
    if state.done || state.failed {
        return;
    }
    state.apply(&delta);
    render.render(&delta, state, out);
    match delta {
        Delta::Done => state.done = true,
        Delta::Error(_) => state.failed = true,
        _ => {}
    }
}

impl<D: Decoder, R: Render> ChatStream for Translator<D, R> {
    fn feed(&mut self, input: &[u8]) -> Bytes {
        self.decoder.decode(input, &mut self.deltas);
        self.drain()
    }

    fn finish(&mut self) -> Bytes {
        self.decoder.end(&mut self.deltas);
        self.drain()
    }

    fn usage(&self) -> Option<Usage> {
        self.state.usage()
    }

    fn model(&self) -> Option<&str> {
        self.state.model()
    }

    fn events(&self) -> u64 {
        self.state.events
    }

    fn completed(&self) -> bool {
        self.state.done && !self.state.failed
    }

    fn fail(&mut self, error: LlmError) -> Bytes {
        let mut out = Vec::new();
        write_delta(&mut self.render, &mut self.state, Delta::Error(error), &mut out);
        Bytes::from(out)
    }
}

/// A native stream relayed unchanged (`route_type = "preserve"`, or a caller
/// that speaks the provider's own format) while its decoder reads usage and
/// model for logs and limits.
pub struct Observer<D> {
    inner: Translator<D, Silent>,
    /// The format's own error event, for a stream the provider broke off;
    /// none for `preserve`, whose callers get the provider's bytes only.
    error_event: Option<fn(&LlmError) -> Bytes>,
}

impl<D: Decoder> Observer<D> {
    pub fn new(decoder: D, meta: AnswerMeta) -> Self {
        Observer { inner: Translator::new(decoder, Silent, meta), error_event: None }
    }

    /// The same, ending a broken stream with the format's error event.
    pub fn with_errors(decoder: D, meta: AnswerMeta, error_event: fn(&LlmError) -> Bytes) -> Self {
        Observer { inner: Translator::new(decoder, Silent, meta), error_event: Some(error_event) }
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

    fn fail(&mut self, error: LlmError) -> Bytes {
        let _ = self.inner.fail(error.clone());
        self.error_event.map(|event| event(&error)).unwrap_or_default()
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
pub fn translate_in_pieces<D: Decoder>(
    decoder: D,
    meta: AnswerMeta,
    pieces: &[&[u8]],
) -> (Vec<u8>, Option<Usage>, bool) {
    render_in_pieces(decoder, ChunkWriter::new(), meta, pieces)
}

/// The same, into any caller format.
pub fn render_in_pieces<D: Decoder, R: Render>(
    decoder: D,
    render: R,
    meta: AnswerMeta,
    pieces: &[&[u8]],
) -> (Vec<u8>, Option<Usage>, bool) {
    let mut t = Translator::new(decoder, render, meta);
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
        AnswerMeta {
            fallback_id: "chatcmpl-r1".into(),
            created: 9,
            model: "m".into(),
            client_wants_usage: wants_usage,
            ..AnswerMeta::default()
        }
    }

    /// Deltas written by hand.
    struct NoDecoder;
    impl Decoder for NoDecoder {
        fn decode(&mut self, _: &[u8], _: &mut Vec<Delta>) {}
    }

    #[test]
    fn deltas_become_openai_chunks() {
        let mut w = Translator::new(NoDecoder, ChunkWriter::new(), meta(true));
        let mut out = Vec::new();
        for d in [
            Delta::Meta { id: Some("msg_1".into()), model: Some("claude-x".into()) },
            Delta::Usage(UsageUpdate { prompt: Some(10), completion: Some(1), ..UsageUpdate::default() }),
            Delta::Text("Hel\"lo".into()),
            Delta::ToolCall { index: 0, id: Some("t1".into()), name: Some("f".into()), arguments: String::new() },
            Delta::ToolCall { index: 0, id: None, name: None, arguments: "{\"a\":".into() },
            Delta::Finish(FinishReason::ToolCalls),
            Delta::Usage(UsageUpdate { completion: Some(5), ..UsageUpdate::default() }),
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
        let mut w = Translator::new(NoDecoder, ChunkWriter::new(), meta(false));
        let mut out = Vec::new();
        w.write(Delta::Usage(UsageUpdate { prompt: Some(1), completion: Some(1), ..UsageUpdate::default() }), &mut out);
        w.write(Delta::Text("x".into()), &mut out);
        w.write(Delta::Error(LlmError::new(502, "upstream_error", "boom")), &mut out);
        w.write(Delta::Done, &mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert!(!text.contains("usage"));
        assert!(
            text.ends_with("data: {\"error\":{\"code\":null,\"message\":\"boom\",\"type\":\"upstream_error\"}}\n\n"),
            "{text}"
        );
        assert!(!text.contains("[DONE]"));
        assert_eq!(w.usage().map(|u| u.total_tokens), Some(2));
    }
}

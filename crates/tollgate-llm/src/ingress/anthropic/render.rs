//! Any provider's answer in Anthropic's terms: the Message object of a JSON
//! answer, and the event stream of a streamed one, byte for byte as the
//! Messages API writes them (https://docs.anthropic.com/en/api/messages,
//! https://docs.anthropic.com/en/docs/build-with-claude/streaming).

use std::borrow::Cow;
use std::io::Write;

use bytes::Bytes;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use crate::completion::{AnswerMeta, Completion, FinishReason};
use crate::stream::{json_str, Delta, Render, StreamState, UsageUpdate};
use crate::Usage;

/// The answer's id in Anthropic's form: the provider's when it is one
/// (`msg_...`), else one made of the gateway's request id.
fn message_id<'a>(provider_id: &'a str, request_id: &str) -> Cow<'a, str> {
    if provider_id.starts_with("msg_") {
        Cow::Borrowed(provider_id)
    } else if !request_id.is_empty() {
        Cow::Owned(format!("msg_{request_id}"))
    } else {
        Cow::Owned(format!("msg_{provider_id}"))
    }
}

/// A tool call id for a provider that gave none (the caller must send it back
/// in its `tool_result`).
fn tool_id(request_id: &str, index: usize) -> String {
    format!("toolu_{request_id}_{index}")
}

/// Anthropic's `stop_reason`. Providers that end a tool-calling turn with a
/// plain stop (or none) still called tools: agent loops check for `tool_use`.
fn stop_reason(finish: Option<FinishReason>, called_tools: bool) -> &'static str {
    match finish {
        Some(FinishReason::Length) => "max_tokens",
        Some(FinishReason::ContentFilter) => "refusal",
        Some(FinishReason::ToolCalls) => "tool_use",
        Some(FinishReason::Stop) | None if called_tools => "tool_use",
        Some(FinishReason::Stop) | None => "end_turn",
    }
}

/// Anthropic's `usage`: `input_tokens` excludes the cache reads and writes,
/// which it reports beside.
#[derive(Serialize)]
struct WireUsage {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

impl From<&Usage> for WireUsage {
    fn from(u: &Usage) -> Self {
        WireUsage {
            input_tokens: u.prompt_tokens.saturating_sub(u.cached_tokens).saturating_sub(u.cache_write_tokens),
            cache_creation_input_tokens: u.cache_write_tokens,
            cache_read_input_tokens: u.cached_tokens,
            output_tokens: u.completion_tokens,
        }
    }
}

#[derive(Serialize)]
struct WireMessage<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<WireBlock<'a>>,
    stop_reason: &'static str,
    stop_sequence: Option<()>,
    usage: WireUsage,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock<'a> {
    Thinking { thinking: &'a str, signature: &'a str },
    RedactedThinking { data: &'a str },
    Text { text: &'a str },
    ToolUse { id: Cow<'a, str>, name: &'a str, input: Input<'a> },
}

/// A tool call's arguments as the `input` object, embedded as the provider
/// wrote them; `{}` for arguments that are not a JSON object (a call cut
/// short by the token limit).
enum Input<'a> {
    Raw(&'a RawValue),
    Empty,
}

impl<'a> Input<'a> {
    fn of(arguments: &'a str) -> Input<'a> {
        match serde_json::from_str::<&RawValue>(arguments) {
            Ok(raw) if raw.get().starts_with('{') => Input::Raw(raw),
            _ => Input::Empty,
        }
    }
}

impl Serialize for Input<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Input::Raw(raw) => raw.serialize(s),
            Input::Empty => s.serialize_map(Some(0))?.end(),
        }
    }
}

/// A completion as Anthropic's Message object: thinking first, then the
/// text, then a `tool_use` block per call.
pub fn render(c: &Completion, meta: &AnswerMeta) -> Bytes {
    let id = message_id(&c.id, &meta.request_id);
    let mut content = Vec::with_capacity(c.thinking.len() + 1 + c.tool_calls.len());
    for t in &c.thinking {
        content.push(match &t.redacted {
            Some(data) => WireBlock::RedactedThinking { data },
            None => WireBlock::Thinking { thinking: &t.text, signature: t.signature.as_deref().unwrap_or_default() },
        });
    }
    // Anthropic refuses empty text blocks when a conversation is replayed.
    if let Some(text) = c.text.as_deref().filter(|t| !t.is_empty()) {
        content.push(WireBlock::Text { text });
    }
    for (i, call) in c.tool_calls.iter().enumerate() {
        let id = if call.id.is_empty() { Cow::Owned(tool_id(&meta.request_id, i)) } else { Cow::Borrowed(call.id.as_str()) };
        content.push(WireBlock::ToolUse { id, name: &call.name, input: Input::of(&call.arguments) });
    }
    let wire = WireMessage {
        id: &id,
        kind: "message",
        role: "assistant",
        model: &c.model,
        content,
        stop_reason: stop_reason(c.finish_reason, !c.tool_calls.is_empty()),
        stop_sequence: None,
        usage: c.usage.as_ref().map(WireUsage::from).unwrap_or(WireUsage::from(&Usage::default())),
    };
    // Serializing these borrowed structs cannot fail (string keys only).
    Bytes::from(serde_json::to_vec(&wire).unwrap_or_default())
}

/// Anthropic's `error` object: `{"type":"error","error":{"type":..,"message":..}}`.
pub(crate) fn write_error(kind: &str, message: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"type\":\"error\",\"error\":{\"type\":");
    json_str(out, kind);
    out.extend_from_slice(b",\"message\":");
    json_str(out, message);
    out.extend_from_slice(b"}}");
}

/// The block open in the stream.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Open {
    #[default]
    None,
    Text,
    /// `signed` once its signature was sent: more thinking starts a new block.
    Thinking { signed: bool },
    /// A tool call, by its index among the answer's calls.
    Tool(u32),
}

/// Anthropic's event stream: `message_start`, then per content block
/// `content_block_start`, its deltas and `content_block_stop` (one block per
/// run of text, run of thinking, redacted block and tool call), then
/// `message_delta` with the stop reason and usage, and `message_stop`. A
/// `ping` follows the first block's start, as Anthropic sends it.
#[derive(Debug, Default)]
pub struct Writer {
    open: Open,
    /// The index of the next block.
    next: u32,
    pinged: bool,
    /// (tool call index, block index) of each tool block started.
    tools: Vec<(u32, u32)>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    /// `message_start`, once, when the first event needs it: the provider's
    /// id and model are known by then, where it names them first.
    fn start(&mut self, state: &mut StreamState, out: &mut Vec<u8>) {
        if state.started {
            return;
        }
        state.started = true;
        let id = message_id(state.id(), &state.meta.request_id);
        out.extend_from_slice(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":");
        json_str(out, &id);
        out.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
        json_str(out, state.answer_model());
        out.extend_from_slice(b",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
        let u = state.usage_so_far();
        let (input, write, read) = input_figures(&u);
        let _ = write!(
            out,
            "{{\"input_tokens\":{input},\"cache_creation_input_tokens\":{write},\"cache_read_input_tokens\":{read},\"output_tokens\":{}}}}}}}\n\n",
            u.completion.unwrap_or(0)
        );
    }

    /// Ends the open block.
    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open == Open::None {
            return;
        }
        self.open = Open::None;
        let _ = write!(
            out,
            "event: content_block_stop\ndata: {{\"type\":\"content_block_stop\",\"index\":{}}}\n\n",
            self.next.saturating_sub(1)
        );
    }

    /// Ends the open block and starts one of `kind`; `block` writes its
    /// `content_block` object.
    fn open(&mut self, kind: Open, state: &mut StreamState, out: &mut Vec<u8>, block: impl FnOnce(&mut Vec<u8>)) {
        self.start(state, out);
        self.close(out);
        let _ = write!(
            out,
            "event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":{},\"content_block\":",
            self.next
        );
        block(out);
        out.extend_from_slice(b"}\n\n");
        self.next = self.next.saturating_add(1);
        self.open = kind;
        if !self.pinged {
            self.pinged = true;
            out.extend_from_slice(b"event: ping\ndata: {\"type\": \"ping\"}\n\n");
        }
    }

    /// A `content_block_delta` of block `index`: `delta_type` and its one
    /// string field.
    fn delta(out: &mut Vec<u8>, index: u32, delta_type: &str, field: &str, value: &str) {
        let _ = write!(
            out,
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":{index},\"delta\":{{\"type\":\"{delta_type}\",\"{field}\":"
        );
        json_str(out, value);
        out.extend_from_slice(b"}}\n\n");
    }

    fn current(&self) -> u32 {
        self.next.saturating_sub(1)
    }

    fn tool_call(&mut self, index: u32, id: Option<&str>, name: Option<&str>, arguments: &str, state: &mut StreamState, out: &mut Vec<u8>) {
        let block = if self.open == Open::Tool(index) {
            self.current()
        } else if let Some(&(_, block)) = self.tools.iter().find(|(t, _)| *t == index) {
            // A late fragment of a call whose block was closed when another
            // began: it joins its own block (clients gather deltas by index).
            block
        } else {
            let made;
            let id = match id.filter(|id| !id.is_empty()) {
                Some(id) => id,
                None => {
                    made = tool_id(&state.meta.request_id, index as usize);
                    made.as_str()
                }
            };
            self.open(Open::Tool(index), state, out, |out| {
                out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
                json_str(out, id);
                out.extend_from_slice(b",\"name\":");
                json_str(out, name.unwrap_or_default());
                out.extend_from_slice(b",\"input\":{}}");
            });
            let block = self.current();
            self.tools.push((index, block));
            block
        };
        if !arguments.is_empty() {
            Self::delta(out, block, "input_json_delta", "partial_json", arguments);
        }
    }

    fn finish(&mut self, state: &mut StreamState, out: &mut Vec<u8>) {
        self.start(state, out);
        self.close(out);
        let reason = stop_reason(state.finish, !self.tools.is_empty());
        let _ = write!(
            out,
            "event: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"{reason}\",\"stop_sequence\":null}},\"usage\":{{"
        );
        // Translated providers report usage at the end: the input figures go
        // here too (clients take them from `message_delta` when present).
        let u = state.usage_so_far();
        if u.prompt.is_some() {
            let (input, write, read) = input_figures(&u);
            let _ = write!(out, "\"input_tokens\":{input},\"cache_creation_input_tokens\":{write},\"cache_read_input_tokens\":{read},");
        }
        let _ = write!(out, "\"output_tokens\":{}}}}}\n\n", u.completion.unwrap_or(0));
        out.extend_from_slice(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    }
}

/// (input without cache, cache writes, cache reads) of the usage so far.
fn input_figures(u: &UsageUpdate) -> (u64, u64, u64) {
    let read = u.cached.unwrap_or(0);
    let write = u.cache_write.unwrap_or(0);
    (u.prompt.unwrap_or(0).saturating_sub(read).saturating_sub(write), write, read)
}

impl Render for Writer {
    fn render(&mut self, delta: &Delta, state: &mut StreamState, out: &mut Vec<u8>) {
        match delta {
            Delta::Text(t) => {
                if t.is_empty() {
                    return;
                }
                if self.open != Open::Text {
                    self.open(Open::Text, state, out, |out| out.extend_from_slice(b"{\"type\":\"text\",\"text\":\"\"}"));
                }
                Self::delta(out, self.current(), "text_delta", "text", t);
            }
            Delta::Thinking(t) => {
                if t.is_empty() {
                    return;
                }
                if self.open != (Open::Thinking { signed: false }) {
                    self.open(Open::Thinking { signed: false }, state, out, thinking_block);
                }
                Self::delta(out, self.current(), "thinking_delta", "thinking", t);
            }
            Delta::ThinkingSignature(s) => {
                if s.is_empty() {
                    return;
                }
                if !matches!(self.open, Open::Thinking { .. }) {
                    self.open(Open::Thinking { signed: false }, state, out, thinking_block);
                }
                Self::delta(out, self.current(), "signature_delta", "signature", s);
                self.open = Open::Thinking { signed: true };
            }
            Delta::RedactedThinking(data) => {
                self.open(Open::Thinking { signed: true }, state, out, |out| {
                    out.extend_from_slice(b"{\"type\":\"redacted_thinking\",\"data\":");
                    json_str(out, data);
                    out.push(b'}');
                });
                self.close(out);
            }
            Delta::ToolCall { index, id, name, arguments } => {
                self.tool_call(*index, id.as_deref(), name.as_deref(), arguments, state, out)
            }
            Delta::Done => self.finish(state, out),
            Delta::Error(e) => {
                let (_, kind) = super::anthropic_error(e);
                out.extend_from_slice(b"event: error\ndata: ");
                write_error(kind, &e.message, out);
                out.extend_from_slice(b"\n\n");
            }
            // The id, model, stop reason and usage are in `state` for the
            // events that carry them.
            Delta::Meta { .. } | Delta::Finish(_) | Delta::Usage(_) => {}
        }
    }
}

fn thinking_block(out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}");
}

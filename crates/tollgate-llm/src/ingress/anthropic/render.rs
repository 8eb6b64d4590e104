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
        let id =
            if call.id.is_empty() { Cow::Owned(tool_id(&meta.request_id, i)) } else { Cow::Borrowed(call.id.as_str()) };
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
    Thinking {
        signed: bool,
    },
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
    /// The open block's `content_block_delta` event up to its value (text,
    /// thinking or partial JSON), written once per block rather than per
    /// token.
    prefix: Vec<u8>,
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
        self.open = kind;
        let field = match kind {
            Open::Text => Some(("text_delta", "text")),
            Open::Thinking { .. } => Some(("thinking_delta", "thinking")),
            Open::Tool(_) => Some(("input_json_delta", "partial_json")),
            Open::None => None,
        };
        self.prefix.clear();
        if let Some((delta_type, field)) = field {
            delta_prefix(&mut self.prefix, self.next, delta_type, field);
        }
        self.next = self.next.saturating_add(1);
        if !self.pinged {
            self.pinged = true;
            out.extend_from_slice(b"event: ping\ndata: {\"type\": \"ping\"}\n\n");
        }
    }

    /// A `content_block_delta` of block `index`: `delta_type` and its one
    /// string field.
    fn delta(out: &mut Vec<u8>, index: u32, delta_type: &str, field: &str, value: &str) {
        delta_prefix(out, index, delta_type, field);
        json_str(out, value);
        out.extend_from_slice(b"}}\n\n");
    }

    /// The open block's own kind of delta.
    fn delta_here(&self, out: &mut Vec<u8>, value: &str) {
        out.extend_from_slice(&self.prefix);
        json_str(out, value);
        out.extend_from_slice(b"}}\n\n");
    }

    fn current(&self) -> u32 {
        self.next.saturating_sub(1)
    }

    fn tool_call(
        &mut self,
        index: u32,
        id: Option<&str>,
        name: Option<&str>,
        arguments: &str,
        state: &mut StreamState,
        out: &mut Vec<u8>,
    ) {
        if self.open == Open::Tool(index) {
            if !arguments.is_empty() {
                self.delta_here(out, arguments);
            }
            return;
        }
        let block = if let Some(&(_, block)) = self.tools.iter().find(|(t, _)| *t == index) {
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
            let _ = write!(
                out,
                "\"input_tokens\":{input},\"cache_creation_input_tokens\":{write},\"cache_read_input_tokens\":{read},"
            );
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
                    self.open(Open::Text, state, out, |out| {
                        out.extend_from_slice(b"{\"type\":\"text\",\"text\":\"\"}")
                    });
                }
                self.delta_here(out, t);
            }
            Delta::Thinking(t) => {
                if t.is_empty() {
                    return;
                }
                if self.open != (Open::Thinking { signed: false }) {
                    self.open(Open::Thinking { signed: false }, state, out, thinking_block);
                }
                self.delta_here(out, t);
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

/// `event: content_block_delta` up to the delta's string value.
fn delta_prefix(out: &mut Vec<u8>, index: u32, delta_type: &str, field: &str) {
    let _ = write!(
        out,
        "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":{index},\"delta\":{{\"type\":\"{delta_type}\",\"{field}\":"
    );
}

fn thinking_block(out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{Thinking, ToolCall};
    use crate::stream::{Decoder, Translator};
    use crate::LlmError;
    use serde_json::{json, Value};

    fn meta() -> AnswerMeta {
        AnswerMeta {
            fallback_id: "chatcmpl-r1".into(),
            request_id: "r1".into(),
            created: 9,
            model: "gpt-4o".into(),
            client_wants_usage: true,
            ..AnswerMeta::default()
        }
    }

    fn completion() -> Completion {
        Completion {
            id: "chatcmpl-abc".into(),
            created: 9,
            model: "gpt-4o-2024-08-06".into(),
            text: Some("Hi \"there\"".into()),
            thinking: Vec::new(),
            tool_calls: Vec::new(),
            finish_reason: Some(FinishReason::Stop),
            usage: Some(Usage {
                prompt_tokens: 100,
                completion_tokens: 7,
                total_tokens: 107,
                cached_tokens: 60,
                cache_write_tokens: 10,
                reasoning_tokens: 0,
            }),
        }
    }

    #[test]
    fn a_text_answer_is_anthropics_message_object() {
        let out = render(&completion(), &meta());
        assert_eq!(
            std::str::from_utf8(&out).expect("utf8"),
            concat!(
                r#"{"id":"msg_r1","type":"message","role":"assistant","model":"gpt-4o-2024-08-06","#,
                r#""content":[{"type":"text","text":"Hi \"there\""}],"stop_reason":"end_turn","stop_sequence":null,"#,
                r#""usage":{"input_tokens":30,"cache_creation_input_tokens":10,"cache_read_input_tokens":60,"output_tokens":7}}"#
            )
        );
    }

    #[test]
    fn thinking_tools_ids_and_stop_reasons() {
        let mut c = completion();
        c.id = "msg_01XYZ".into();
        c.text = None;
        c.usage = None;
        c.finish_reason = Some(FinishReason::Stop);
        c.thinking = vec![
            Thinking { text: "step 1".into(), signature: Some("sig".into()), redacted: None },
            Thinking { text: "from gemini".into(), signature: None, redacted: None },
            Thinking { text: String::new(), signature: None, redacted: Some("opaque".into()) },
        ];
        c.tool_calls = vec![
            ToolCall { id: "call_1".into(), name: "f".into(), arguments: r#"{ "a" : [1, 2] }"#.into() },
            ToolCall { id: String::new(), name: "g".into(), arguments: r#"{"cut":"#.into() },
        ];
        let v: Value = serde_json::from_slice(&render(&c, &meta())).expect("json");
        assert_eq!(v["id"], "msg_01XYZ");
        assert_eq!(
            v["content"],
            json!([
                {"type": "thinking", "thinking": "step 1", "signature": "sig"},
                {"type": "thinking", "thinking": "from gemini", "signature": ""},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": [1, 2]}},
                {"type": "tool_use", "id": "toolu_r1_1", "name": "g", "input": {}}
            ])
        );
        // A plain stop after tool calls is a tool_use turn.
        assert_eq!(v["stop_reason"], "tool_use");
        assert_eq!(
            v["usage"],
            json!({"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0})
        );
        for (reason, want) in [
            (Some(FinishReason::Length), "max_tokens"),
            (Some(FinishReason::ContentFilter), "refusal"),
            (Some(FinishReason::ToolCalls), "tool_use"),
            (None, "end_turn"),
        ] {
            assert_eq!(stop_reason(reason, false), want);
        }
        // An empty text makes no block; no request id falls back on the provider's.
        let mut c = completion();
        c.text = Some(String::new());
        let m = AnswerMeta { request_id: String::new(), ..meta() };
        let v: Value = serde_json::from_slice(&render(&c, &m)).expect("json");
        assert_eq!((v["id"].clone(), v["content"].clone()), (json!("msg_chatcmpl-abc"), json!([])));
    }

    /// Deltas written by hand.
    struct NoDecoder;
    impl Decoder for NoDecoder {
        fn decode(&mut self, _: &[u8], _: &mut Vec<Delta>) {}
    }

    fn stream(deltas: Vec<Delta>) -> String {
        let mut t = Translator::new(NoDecoder, Writer::new(), meta());
        let mut out = Vec::new();
        for d in deltas {
            t.write(d, &mut out);
        }
        String::from_utf8(out).expect("utf8")
    }

    /// (event name, data) of each event; every data line must be JSON whose
    /// `type` repeats the event name.
    fn events(s: &str) -> Vec<(String, Value)> {
        s.split_terminator("\n\n")
            .map(|e| {
                let (name, data) = e.split_once('\n').expect("two lines");
                let name = name.strip_prefix("event: ").expect("event line");
                let data: Value = serde_json::from_str(data.strip_prefix("data: ").expect("data line")).expect("JSON");
                assert_eq!(data["type"], name, "{e}");
                (name.to_string(), data)
            })
            .collect()
    }

    fn names(ev: &[(String, Value)]) -> Vec<&str> {
        ev.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn a_text_stream_is_anthropics_exact_event_sequence() {
        let out = stream(vec![
            Delta::Meta { id: Some("chatcmpl-1".into()), model: Some("gpt-4o-2024".into()) },
            Delta::Text(String::new()),
            Delta::Text("Hel".into()),
            Delta::Text("lo \u{1F600}".into()),
            Delta::Finish(FinishReason::Stop),
            Delta::Usage(UsageUpdate {
                prompt: Some(25),
                completion: Some(15),
                cached: Some(5),
                ..UsageUpdate::default()
            }),
            Delta::Done,
            Delta::Text("after the end".into()),
        ]);
        assert_eq!(
            out,
            concat!(
                "event: message_start\n",
                "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_r1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"gpt-4o-2024\",",
                "\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,\"cache_creation_input_tokens\":0,",
                "\"cache_read_input_tokens\":0,\"output_tokens\":0}}}\n\n",
                "event: content_block_start\n",
                "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
                "event: ping\n",
                "data: {\"type\": \"ping\"}\n\n",
                "event: content_block_delta\n",
                "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
                "event: content_block_delta\n",
                "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo \u{1F600}\"}}\n\n",
                "event: content_block_stop\n",
                "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
                "event: message_delta\n",
                "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},",
                "\"usage\":{\"input_tokens\":20,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":5,\"output_tokens\":15}}\n\n",
                "event: message_stop\n",
                "data: {\"type\":\"message_stop\"}\n\n",
            )
        );
    }

    #[test]
    fn thinking_text_and_tool_calls_each_get_their_blocks() {
        let out = stream(vec![
            Delta::Usage(UsageUpdate { prompt: Some(40), ..UsageUpdate::default() }),
            Delta::Thinking("Let me ".into()),
            Delta::Thinking("think.".into()),
            Delta::ThinkingSignature("sig1".into()),
            Delta::Thinking("More.".into()),
            Delta::RedactedThinking("opaque".into()),
            Delta::Text("Checking.".into()),
            Delta::ToolCall {
                index: 0,
                id: Some("call_a".into()),
                name: Some("weather".into()),
                arguments: String::new(),
            },
            Delta::ToolCall { index: 0, id: None, name: None, arguments: "{\"city\":".into() },
            Delta::ToolCall { index: 0, id: None, name: None, arguments: "\"Paris\"}".into() },
            Delta::ToolCall { index: 1, id: None, name: Some("time".into()), arguments: "{}".into() },
            Delta::Finish(FinishReason::ToolCalls),
            Delta::Done,
        ]);
        let ev = events(&out);
        assert_eq!(
            names(&ev),
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        // Input figures known before the first block are in message_start.
        assert_eq!(ev[0].1["message"]["usage"]["input_tokens"], 40);
        assert_eq!(ev[1].1["content_block"], json!({"type": "thinking", "thinking": "", "signature": ""}));
        assert_eq!(ev[3].1["delta"], json!({"type": "thinking_delta", "thinking": "Let me "}));
        assert_eq!(ev[5].1["delta"], json!({"type": "signature_delta", "signature": "sig1"}));
        // Thinking after a signature is a new block.
        assert_eq!((ev[7].1["index"].clone(), ev[8].1["delta"]["thinking"].clone()), (json!(1), json!("More.")));
        assert_eq!(ev[10].1["content_block"], json!({"type": "redacted_thinking", "data": "opaque"}));
        assert_eq!(ev[13].1["delta"], json!({"type": "text_delta", "text": "Checking."}));
        assert_eq!(
            ev[15].1,
            json!({"type": "content_block_start", "index": 4,
            "content_block": {"type": "tool_use", "id": "call_a", "name": "weather", "input": {}}})
        );
        assert_eq!(ev[16].1["delta"], json!({"type": "input_json_delta", "partial_json": "{\"city\":"}));
        assert_eq!(
            ev[19].1["content_block"],
            json!({"type": "tool_use", "id": "toolu_r1_1", "name": "time", "input": {}})
        );
        assert_eq!(ev[20].1["index"], 5);
        assert_eq!(ev[22].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(
            ev[22].1["usage"],
            json!({"input_tokens": 40, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0})
        );
    }

    #[test]
    fn a_signature_alone_opens_its_thinking_block_and_late_fragments_join_their_block() {
        let ev = events(&stream(vec![
            Delta::ThinkingSignature("sig".into()),
            Delta::ToolCall { index: 0, id: Some("a".into()), name: Some("f".into()), arguments: "{".into() },
            Delta::ToolCall { index: 1, id: Some("b".into()), name: Some("g".into()), arguments: "{}".into() },
            Delta::ToolCall { index: 0, id: None, name: None, arguments: "}".into() },
            Delta::Done,
        ]));
        assert_eq!(ev[1].1["content_block"]["type"], "thinking");
        assert_eq!(ev[3].1["delta"], json!({"type": "signature_delta", "signature": "sig"}));
        let late = ev.iter().rfind(|(n, _)| n == "content_block_delta").expect("delta");
        assert_eq!((late.1["index"].clone(), late.1["delta"]["partial_json"].clone()), (json!(1), json!("}")));
    }

    #[test]
    fn an_empty_answer_still_starts_and_ends_and_errors_end_the_stream() {
        let ev = events(&stream(vec![Delta::Finish(FinishReason::Length), Delta::Done]));
        assert_eq!(names(&ev), ["message_start", "message_delta", "message_stop"]);
        assert_eq!(ev[1].1["delta"]["stop_reason"], "max_tokens");
        assert!(ev[1].1["usage"].get("input_tokens").is_none());

        let out = stream(vec![
            Delta::Text("Hel".into()),
            Delta::Error(LlmError::new(502, "upstream_error", "provider openai broke off")),
            Delta::Done,
        ]);
        assert!(out.ends_with(
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"provider openai broke off\"}}\n\n"
        ), "{out}");
        assert!(!out.contains("message_stop"));
        // The gateway's error for a stream cut short, in the same shape.
        let mut t = Translator::new(NoDecoder, Writer::new(), meta());
        let mut out = Vec::new();
        t.write(Delta::Text("x".into()), &mut out);
        let tail = crate::stream::ChatStream::fail(&mut t, LlmError::new(503, "x", "gone"));
        assert_eq!(&tail[..], &b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"gone\"}}\n\n"[..]);
    }
}

//! OpenAI's side of the Responses API, read back into neutral terms: a
//! Response object as a `Completion`, its event stream as `Delta`s. Native
//! calls relay OpenAI's bytes untouched and read these for usage and model;
//! a native stream that breaks off ends with the format's `error` event.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::error_code;
use crate::chat::{Thinking, ToolCall};
use crate::completion::{AnswerMeta, Completion, FinishReason};
use crate::sse::{event_data, EventSplitter};
use crate::stream::{json_str, ChatStream, Decoder, Delta, Silent, Translator, UsageUpdate};
use crate::{LlmError, Usage};

fn upstream(message: impl Into<String>) -> LlmError {
    LlmError::new(502, "upstream_error", message)
}

/// A Response object from OpenAI, read back as a completion. Lenient: any
/// JSON object reads (a field of an unexpected shape is left out), since a
/// native answer is relayed whatever tollgate makes of it.
pub fn answer(body: &[u8], meta: &AnswerMeta) -> Result<Completion, LlmError> {
    let Ok(Value::Object(r)) = serde_json::from_slice::<Value>(body) else {
        return Err(upstream("provider openai returned an answer that is not a Response object"));
    };
    let text = |name: &str| r.get(name).and_then(Value::as_str).map(str::to_string);
    let mut c = Completion::new(meta);
    if let Some(id) = text("id") {
        c.id = id;
    }
    if let Some(model) = text("model") {
        c.model = model;
    }
    if let Some(created) = r.get("created_at").and_then(Value::as_f64) {
        c.created = created as u64;
    }
    let mut message: Option<String> = None;
    for item in r.get("output").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        let field = |name: &str| item.get(name).and_then(Value::as_str);
        match field("type") {
            Some("message") => {
                let m = message.get_or_insert_with(String::new);
                for part in item.get("content").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
                    let key =
                        if part.get("type").and_then(Value::as_str) == Some("refusal") { "refusal" } else { "text" };
                    m.push_str(part.get(key).and_then(Value::as_str).unwrap_or_default());
                }
            }
            Some("reasoning") => {
                let text = summary_text(item.get("summary")).or_else(|| summary_text(item.get("content")));
                if let Some(text) = text {
                    c.thinking.push(Thinking { text, signature: None, redacted: None });
                }
            }
            Some("function_call") => c.tool_calls.push(ToolCall {
                id: field("call_id").unwrap_or_default().to_string(),
                name: field("name").unwrap_or_default().to_string(),
                arguments: field("arguments").unwrap_or_default().to_string(),
            }),
            _ => {} // hosted tool calls and later item types
        }
    }
    c.text = message;
    c.finish_reason = finish(r.get("status"), r.get("incomplete_details"), !c.tool_calls.is_empty());
    c.usage = r.get("usage").and_then(usage).map(|u| {
        let prompt = u.prompt.unwrap_or(0);
        let completion = u.completion.unwrap_or(0);
        let total = r["usage"].get("total_tokens").and_then(Value::as_u64);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: total.unwrap_or(prompt.saturating_add(completion)),
            cached_tokens: u.cached.unwrap_or(0),
            cache_write_tokens: u.cache_write.unwrap_or(0),
            reasoning_tokens: u.reasoning.unwrap_or(0),
        }
    });
    Ok(c)
}

/// The texts of a reasoning item's summary (or content) parts, joined.
fn summary_text(parts: Option<&Value>) -> Option<String> {
    let texts: Vec<&str> = parts?
        .as_array()?
        .iter()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .filter(|t| !t.is_empty())
        .collect();
    if texts.is_empty() {
        None
    } else {
        Some(texts.join("\n\n"))
    }
}

/// Why a Response ended, in neutral terms.
fn finish(status: Option<&Value>, incomplete: Option<&Value>, calls: bool) -> Option<FinishReason> {
    match status.and_then(Value::as_str) {
        Some("completed") if calls => Some(FinishReason::ToolCalls),
        Some("completed") => Some(FinishReason::Stop),
        Some("incomplete") => Some(match incomplete.and_then(|d| d.get("reason")).and_then(Value::as_str) {
            Some("content_filter") => FinishReason::ContentFilter,
            _ => FinishReason::Length,
        }),
        _ => None,
    }
}

/// A Response's `usage` object, as figures.
fn usage(u: &Value) -> Option<UsageUpdate> {
    let n = |v: Option<&Value>| v.and_then(Value::as_u64);
    let input = u.get("input_tokens_details");
    let output = u.get("output_tokens_details");
    let update = UsageUpdate {
        prompt: n(u.get("input_tokens")),
        completion: n(u.get("output_tokens")),
        cached: n(input.and_then(|d| d.get("cached_tokens"))),
        cache_write: n(input.and_then(|d| d.get("cache_write_tokens"))),
        reasoning: n(output.and_then(|d| d.get("reasoning_tokens"))),
    };
    (update != UsageUpdate::default()).then_some(update)
}

/// The fields of a stream event the decoder reads, borrowed where it can:
/// nearly every event is a delta, read without building a JSON tree.
#[derive(Deserialize)]
struct WireEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    sequence_number: Option<u64>,
    #[serde(default)]
    output_index: Option<u64>,
    #[serde(default, borrow)]
    delta: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    response: Option<&'a RawValue>,
    #[serde(default, borrow)]
    item: Option<&'a RawValue>,
    /// An `error` event's own fields (or its nested `error` object).
    #[serde(default, borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    error: Option<&'a RawValue>,
}

/// OpenAI's Responses event stream, read back as deltas.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    splitter: EventSplitter,
    /// (output index, tool call index) of each function call item.
    calls: Vec<(u64, u32)>,
    started: bool,
    /// The highest `sequence_number` seen.
    last_seq: Option<u64>,
    /// An error was emitted: the rest of the stream is ignored.
    failed: bool,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The sequence number an event added after the last one seen takes.
    pub fn next_sequence_number(&self) -> u64 {
        self.last_seq.map_or(0, |n| n.saturating_add(1))
    }

    /// Decodes one whole SSE event.
    fn event(&mut self, event: &[u8], out: &mut Vec<Delta>) {
        if self.failed {
            return;
        }
        // Comments and events without data carry nothing.
        let Some(data) = event_data(event) else {
            return;
        };
        let data = data.trim_ascii();
        if data.is_empty() || data == b"[DONE]" {
            return;
        }
        let Ok(e) = serde_json::from_slice::<WireEvent>(data) else {
            return self
                .fail(out, upstream("provider openai sent a Responses stream event that is not JSON with a type"));
        };
        if let Some(n) = e.sequence_number {
            self.last_seq = Some(self.last_seq.map_or(n, |last| last.max(n)));
        }
        let delta = || e.delta.as_deref().filter(|d| !d.is_empty()).map(str::to_string);
        match &*e.kind {
            "response.output_text.delta" | "response.refusal.delta" => out.extend(delta().map(Delta::Text)),
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                out.extend(delta().map(Delta::Thinking))
            }
            "response.function_call_arguments.delta" => {
                let call = self.calls.iter().find(|(at, _)| Some(*at) == e.output_index).map(|(_, i)| *i);
                if let (Some(index), Some(arguments)) = (call, delta()) {
                    out.push(Delta::ToolCall { index, id: None, name: None, arguments });
                }
            }
            "response.created" | "response.queued" | "response.in_progress" if !self.started => {
                self.started = true;
                let r = e.response.and_then(|r| serde_json::from_str::<Value>(r.get()).ok());
                let text = |name| r.as_ref().and_then(|r| r.get(name)).and_then(Value::as_str).map(str::to_string);
                out.push(Delta::Meta { id: text("id"), model: text("model") });
            }
            "response.output_item.added" | "response.output_item.done" => self.item(&e, out),
            "response.completed" | "response.incomplete" => {
                let r = e.response.and_then(|r| serde_json::from_str::<Value>(r.get()).ok()).unwrap_or_default();
                if let Some(u) = r.get("usage").and_then(usage) {
                    out.push(Delta::Usage(u));
                }
                let status = if &*e.kind == "response.completed" { "completed" } else { "incomplete" };
                let reason = finish(Some(&Value::from(status)), r.get("incomplete_details"), !self.calls.is_empty());
                out.extend(reason.map(Delta::Finish));
                out.push(Delta::Done);
            }
            "response.failed" => {
                let r = e.response.and_then(|r| serde_json::from_str::<Value>(r.get()).ok()).unwrap_or_default();
                self.fail(out, failure(r.get("error"), "the response failed"));
            }
            "error" => {
                let nested = e.error.and_then(|v| serde_json::from_str::<Value>(v.get()).ok());
                let error = match (&nested, e.message.as_deref()) {
                    (Some(n @ Value::Object(_)), _) => failure(Some(n), "stream error"),
                    (_, Some(message)) => upstream(format!("provider openai stream error: {message}")),
                    _ => upstream("provider openai stream error"),
                };
                self.fail(out, error);
            }
            _ => {} // content part and done events repeat what the deltas said
        }
    }

    /// A function call item added (its id and name; the arguments follow as
    /// deltas) or done without having been added (all of it at once).
    fn item(&mut self, e: &WireEvent, out: &mut Vec<Delta>) {
        let Some(item) = e.item.and_then(|i| serde_json::from_str::<Value>(i.get()).ok()) else {
            return;
        };
        if item.get("type").and_then(Value::as_str) != Some("function_call") {
            return;
        }
        let Some(at) = e.output_index else {
            return;
        };
        if self.calls.iter().any(|(known, _)| *known == at) {
            return;
        }
        let index = self.calls.len() as u32;
        self.calls.push((at, index));
        let text = |name| item.get(name).and_then(Value::as_str).map(str::to_string);
        out.push(Delta::ToolCall {
            index,
            id: text("call_id"),
            name: text("name"),
            arguments: text("arguments").unwrap_or_default(),
        });
    }

    fn fail(&mut self, out: &mut Vec<Delta>, error: LlmError) {
        self.failed = true;
        out.push(Delta::Error(error));
    }
}

/// The error a failed Response (or an `error` event) reports, in gateway terms.
fn failure(error: Option<&Value>, what: &str) -> LlmError {
    let field = |name| error.and_then(|e| e.get(name)).and_then(Value::as_str);
    let message = field("message").unwrap_or(what);
    let status = match field("code") {
        Some("rate_limit_exceeded") => 429,
        _ => 502,
    };
    LlmError::new(status, "upstream_error", format!("provider openai: {message}"))
}

impl Decoder for StreamDecoder {
    fn decode(&mut self, input: &[u8], out: &mut Vec<Delta>) {
        if self.failed {
            return;
        }
        self.splitter.push(input);
        while let Some(event) = self.splitter.next_event() {
            self.event(&event, out);
            if self.failed {
                return;
            }
        }
    }

    fn end(&mut self, out: &mut Vec<Delta>) {
        // An event the upstream did not end with a blank line: decode it (a
        // stream cut mid-event then reports that it is not JSON).
        let rest = self.splitter.take_rest();
        self.event(&rest, out);
    }
}

/// Deltas handed in by `NativeStream`, which decodes whole events itself.
struct Fed;

impl Decoder for Fed {
    fn decode(&mut self, _: &[u8], _: &mut Vec<Delta>) {}
}

/// OpenAI's own Responses stream relayed to a Responses caller: whole events,
/// byte for byte, read on the way for usage and model. A stream the provider
/// breaks off ends with an `error` event numbered after the last one relayed
/// (and never inside a half-relayed event).
pub struct NativeStream {
    splitter: EventSplitter,
    decoder: StreamDecoder,
    facts: Translator<Fed, Silent>,
    deltas: Vec<Delta>,
}

impl NativeStream {
    pub fn new(meta: AnswerMeta) -> Self {
        NativeStream {
            splitter: EventSplitter::new(),
            decoder: StreamDecoder::new(),
            facts: Translator::new(Fed, Silent, meta),
            deltas: Vec::new(),
        }
    }

    fn take_in(&mut self) {
        let mut sink = Vec::new();
        for d in self.deltas.drain(..) {
            self.facts.write(d, &mut sink);
        }
    }
}

impl ChatStream for NativeStream {
    fn feed(&mut self, input: &[u8]) -> Bytes {
        self.splitter.push(input);
        let mut first: Option<Bytes> = None;
        let mut more = BytesMut::new();
        while let Some(event) = self.splitter.next_event() {
            self.decoder.event(&event, &mut self.deltas);
            match &first {
                None => first = Some(event),
                Some(f) => {
                    if more.is_empty() {
                        more.extend_from_slice(f);
                    }
                    more.extend_from_slice(&event);
                }
            }
        }
        self.take_in();
        if more.is_empty() {
            first.unwrap_or_default()
        } else {
            more.freeze()
        }
    }

    fn finish(&mut self) -> Bytes {
        let rest = self.splitter.take_rest();
        self.decoder.event(&rest, &mut self.deltas);
        self.take_in();
        rest
    }

    fn usage(&self) -> Option<Usage> {
        self.facts.usage()
    }

    fn model(&self) -> Option<&str> {
        self.facts.model()
    }

    fn events(&self) -> u64 {
        self.facts.events()
    }

    fn completed(&self) -> bool {
        self.facts.completed()
    }

    fn fail(&mut self, error: LlmError) -> Bytes {
        let _ = self.facts.fail(error.clone());
        error_event(&error, self.decoder.next_sequence_number())
    }
}

/// The `error` event that ends a stream, numbered `sequence_number`.
fn error_event(e: &LlmError, sequence_number: u64) -> Bytes {
    let mut out = Vec::with_capacity(96 + e.message.len());
    out.extend_from_slice(b"event: error\ndata: {\"type\":\"error\",\"sequence_number\":");
    out.extend_from_slice(sequence_number.to_string().as_bytes());
    out.extend_from_slice(b",\"code\":");
    json_str(&mut out, error_code(e));
    out.extend_from_slice(b",\"message\":");
    json_str(&mut out, &e.message);
    out.extend_from_slice(b",\"param\":null}\n\n");
    Bytes::from(out)
}

/// An `error` event that ends a stream of which nothing was relayed (a
/// stream with events before it ends through `NativeStream`, which numbers
/// it after them).
pub fn stream_error_event(e: &LlmError) -> Bytes {
    error_event(e, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{render_in_pieces, Render, StreamState};

    fn meta() -> AnswerMeta {
        AnswerMeta {
            fallback_id: "chatcmpl-r1".into(),
            request_id: "r1".into(),
            created: 9,
            model: "gpt-4.1".into(),
            ..AnswerMeta::default()
        }
    }

    /// Records the deltas, so decoding can be checked split by split.
    #[derive(Default)]
    struct Record(Vec<Delta>);
    impl Render for Record {
        fn render(&mut self, delta: &Delta, _: &mut StreamState, out: &mut Vec<u8>) {
            out.extend_from_slice(format!("{delta:?}\n").as_bytes());
            self.0.push(delta.clone());
        }
    }

    fn decode_all(stream: &[u8]) -> Vec<u8> {
        let whole = render_in_pieces(StreamDecoder::new(), Record::default(), meta(), &[stream]);
        for cut in 0..=stream.len() {
            let split =
                render_in_pieces(StreamDecoder::new(), Record::default(), meta(), &[&stream[..cut], &stream[cut..]]);
            assert_eq!(split, whole, "split at {cut}");
        }
        let ones: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(render_in_pieces(StreamDecoder::new(), Record::default(), meta(), &ones), whole);
        whole.0
    }

    const ANSWER: &str = r#"{"id":"resp_67cc","object":"response","created_at":1741476542,"status":"completed","error":null,
      "incomplete_details":null,"model":"gpt-4.1-2025-04-14","output":[
        {"id":"rs_1","type":"reasoning","summary":[{"type":"summary_text","text":"Think."},{"type":"summary_text","text":"More."}],"encrypted_content":"gAAA"},
        {"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi there","annotations":[]}]},
        {"id":"fc_1","type":"function_call","status":"completed","call_id":"call_1","name":"f","arguments":"{\"a\":1}"},
        {"id":"ws_1","type":"web_search_call","status":"completed"}],
      "usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":4},"output_tokens":87,
               "output_tokens_details":{"reasoning_tokens":10},"total_tokens":123}}"#;

    #[test]
    fn a_response_reads_as_a_completion() {
        let c = answer(ANSWER.as_bytes(), &meta()).expect("answer");
        assert_eq!(c.id, "resp_67cc");
        assert_eq!(c.model, "gpt-4.1-2025-04-14");
        assert_eq!(c.created, 1_741_476_542);
        assert_eq!(c.text.as_deref(), Some("Hi there"));
        assert_eq!(c.thinking, vec![Thinking { text: "Think.\n\nMore.".into(), signature: None, redacted: None }]);
        assert_eq!(
            c.tool_calls,
            vec![ToolCall { id: "call_1".into(), name: "f".into(), arguments: "{\"a\":1}".into() }]
        );
        assert_eq!(c.finish_reason, Some(FinishReason::ToolCalls));
        assert_eq!(
            c.usage,
            Some(Usage {
                prompt_tokens: 36,
                completion_tokens: 87,
                total_tokens: 123,
                cached_tokens: 4,
                cache_write_tokens: 0,
                reasoning_tokens: 10
            })
        );
    }

    #[test]
    fn answers_of_other_shapes_read_leniently() {
        let c = answer(
            br#"{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[],"usage":"odd"}"#,
            &meta(),
        )
        .expect("lenient");
        assert_eq!((c.id.as_str(), c.model.as_str()), ("chatcmpl-r1", "gpt-4.1"));
        assert_eq!(c.finish_reason, Some(FinishReason::Length));
        assert_eq!((c.text, c.usage), (None, None));
        let c = answer(br#"{"status":"incomplete","incomplete_details":{"reason":"content_filter"}}"#, &meta())
            .expect("lenient");
        assert_eq!(c.finish_reason, Some(FinishReason::ContentFilter));
        assert!(answer(b"<html>", &meta()).is_err());
        assert!(answer(b"[]", &meta()).is_err());
    }

    /// A stream as OpenAI sends it (shapes from the API reference), with a
    /// reasoning summary, text and a function call.
    pub(crate) const STREAM: &str = concat!(
        "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"created_at\":1,\"status\":\"in_progress\",\"model\":\"gpt-4.1-2025-04-14\",\"output\":[],\"usage\":null}}\n\n",
        "event: response.in_progress\ndata: {\"type\":\"response.in_progress\",\"sequence_number\":1,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"created_at\":1,\"status\":\"in_progress\",\"model\":\"gpt-4.1-2025-04-14\",\"output\":[],\"usage\":null}}\n\n",
        "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"sequence_number\":2,\"output_index\":0,\"item\":{\"id\":\"rs_1\",\"type\":\"reasoning\",\"summary\":[]}}\n\n",
        "event: response.reasoning_summary_text.delta\ndata: {\"type\":\"response.reasoning_summary_text.delta\",\"sequence_number\":3,\"item_id\":\"rs_1\",\"output_index\":0,\"summary_index\":0,\"delta\":\"Hmm\"}\n\n",
        "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"sequence_number\":4,\"output_index\":1,\"item\":{\"id\":\"msg_1\",\"type\":\"message\",\"status\":\"in_progress\",\"content\":[],\"role\":\"assistant\"}}\n\n",
        ": keep-alive\n\n",
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":5,\"item_id\":\"msg_1\",\"output_index\":1,\"content_index\":0,\"delta\":\"Hi \\\"x\\\"\",\"logprobs\":[]}\n\n",
        "event: response.output_text.done\ndata: {\"type\":\"response.output_text.done\",\"sequence_number\":6,\"item_id\":\"msg_1\",\"output_index\":1,\"content_index\":0,\"text\":\"Hi \\\"x\\\"\",\"logprobs\":[]}\n\n",
        "event: response.output_item.added\r\ndata: {\"type\":\"response.output_item.added\",\"sequence_number\":7,\"output_index\":2,\"item\":{\"id\":\"fc_1\",\"type\":\"function_call\",\"status\":\"in_progress\",\"arguments\":\"\",\"call_id\":\"call_1\",\"name\":\"f\"}}\r\n\r\n",
        "event: response.function_call_arguments.delta\ndata: {\"type\":\"response.function_call_arguments.delta\",\"sequence_number\":8,\"item_id\":\"fc_1\",\"output_index\":2,\"delta\":\"{\\\"a\\\":1}\"}\n\n",
        "event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"sequence_number\":9,\"output_index\":2,\"item\":{\"id\":\"fc_1\",\"type\":\"function_call\",\"status\":\"completed\",\"arguments\":\"{\\\"a\\\":1}\",\"call_id\":\"call_1\",\"name\":\"f\"}}\n\n",
        "event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"sequence_number\":10,\"output_index\":3,\"item\":{\"id\":\"fc_2\",\"type\":\"function_call\",\"status\":\"completed\",\"arguments\":\"{}\",\"call_id\":\"call_2\",\"name\":\"g\"}}\n\n",
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":11,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"created_at\":1,\"status\":\"completed\",\"model\":\"gpt-4.1-2025-04-14\",\"output\":[],\"usage\":{\"input_tokens\":12,\"input_tokens_details\":{\"cached_tokens\":2},\"output_tokens\":7,\"output_tokens_details\":{\"reasoning_tokens\":3},\"total_tokens\":19}}}\n\n",
    );

    fn deltas(stream: &str) -> Vec<Delta> {
        let mut out = Vec::new();
        let mut d = StreamDecoder::new();
        d.decode(stream.as_bytes(), &mut out);
        d.end(&mut out);
        out
    }

    #[test]
    fn the_stream_reads_as_deltas_whatever_the_splits() {
        decode_all(STREAM.as_bytes());
        assert_eq!(
            deltas(STREAM),
            vec![
                Delta::Meta { id: Some("resp_1".into()), model: Some("gpt-4.1-2025-04-14".into()) },
                Delta::Thinking("Hmm".into()),
                Delta::Text("Hi \"x\"".into()),
                Delta::ToolCall {
                    index: 0,
                    id: Some("call_1".into()),
                    name: Some("f".into()),
                    arguments: String::new()
                },
                Delta::ToolCall { index: 0, id: None, name: None, arguments: "{\"a\":1}".into() },
                Delta::ToolCall { index: 1, id: Some("call_2".into()), name: Some("g".into()), arguments: "{}".into() },
                Delta::Usage(UsageUpdate {
                    prompt: Some(12),
                    completion: Some(7),
                    cached: Some(2),
                    cache_write: None,
                    reasoning: Some(3)
                }),
                Delta::Finish(FinishReason::ToolCalls),
                Delta::Done,
            ]
        );
    }

    #[test]
    fn incomplete_failed_error_and_garbage_end_the_stream() {
        let incomplete = "data: {\"type\":\"response.incomplete\",\"sequence_number\":3,\"response\":{\"status\":\"incomplete\",\"incomplete_details\":{\"reason\":\"max_output_tokens\"}}}\n\n";
        assert_eq!(deltas(incomplete), vec![Delta::Finish(FinishReason::Length), Delta::Done]);
        let failed = "event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":3,\"response\":{\"status\":\"failed\",\"error\":{\"code\":\"rate_limit_exceeded\",\"message\":\"Slow down\"}}}\n\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"late\"}\n\n";
        let d = deltas(failed);
        assert_eq!(d.len(), 1);
        let Delta::Error(e) = &d[0] else { panic!("{d:?}") };
        assert_eq!((e.status, e.message.as_str()), (429, "provider openai: Slow down"));
        for error in [
            "event: error\ndata: {\"type\":\"error\",\"sequence_number\":1,\"code\":\"server_error\",\"message\":\"boom\",\"param\":null}\n\n",
            "event: error\ndata: {\"type\":\"error\",\"sequence_number\":1,\"error\":{\"type\":\"server_error\",\"code\":\"server_error\",\"message\":\"boom\"}}\n\n",
        ] {
            let d = deltas(error);
            let [Delta::Error(e)] = &d[..] else { panic!("{d:?}") };
            assert!(e.message.contains("boom"), "{}", e.message);
        }
        let d = deltas("data: {\"type\":\"response.output_text.delta\",\"delta\":\"a\"}\n\ndata: {not json}\n\n");
        assert!(matches!(&d[..], [Delta::Text(_), Delta::Error(_)]), "{d:?}");
        let d = deltas("data: {\"type\":\"response.output_text.delta\",\"delta\":\"a\"}\n\ndata: {\"type\":\"respo");
        assert!(matches!(&d[..], [Delta::Text(_), Delta::Error(_)]), "a stream cut mid-event: {d:?}");
    }

    #[test]
    fn native_streams_relay_whole_events_and_read_their_facts() {
        let stream = STREAM.as_bytes();
        for cut in [0, 1, 40, 300, stream.len() / 2, stream.len() - 3, stream.len()] {
            let mut s = NativeStream::new(meta());
            let mut out = s.feed(&stream[..cut]).to_vec();
            // Only whole events go out.
            assert!(out.is_empty() || out.ends_with(b"\n\n") || out.ends_with(b"\r\n\r\n"), "cut {cut}");
            out.extend_from_slice(&s.feed(&stream[cut..]));
            out.extend_from_slice(&s.finish());
            assert_eq!(out, stream, "relayed byte for byte (cut {cut})");
            assert!(s.completed());
            assert_eq!(
                s.usage().map(|u| (u.prompt_tokens, u.total_tokens, u.cached_tokens, u.reasoning_tokens)),
                Some((12, 19, 2, 3))
            );
            assert_eq!(s.model(), Some("gpt-4.1-2025-04-14"));
            assert_eq!(s.events(), 5);
        }
    }

    #[test]
    fn a_broken_native_stream_ends_with_an_error_event_numbered_after_the_last() {
        let stream = STREAM.as_bytes();
        let cut = STREAM.find("event: response.function_call_arguments.delta").expect("event") + 30;
        let mut s = NativeStream::new(meta());
        let relayed = s.feed(&stream[..cut]);
        assert!(relayed.ends_with(b"\r\n\r\n"), "the last whole event (it ends with CRLFs)");
        let end = s.fail(LlmError::new(502, "upstream_error", "provider closed the connection"));
        assert_eq!(
            &end[..],
            b"event: error\ndata: {\"type\":\"error\",\"sequence_number\":8,\"code\":\"server_error\",\"message\":\"provider closed the connection\",\"param\":null}\n\n"
        );
        assert!(!s.completed());
        assert_eq!(&stream_error_event(&LlmError::new(429, "x", "slow"))[..], &b"event: error\ndata: {\"type\":\"error\",\"sequence_number\":0,\"code\":\"rate_limit_exceeded\",\"message\":\"slow\",\"param\":null}\n\n"[..]);
    }
}

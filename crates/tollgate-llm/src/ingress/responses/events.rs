//! The Responses API's typed event stream, rendered from any provider's
//! deltas as OpenAI emits it: `response.created` and `response.in_progress`,
//! then each output item opened (`output_item.added`, its part added),
//! streamed (`output_text.delta`, `reasoning_summary_text.delta`,
//! `function_call_arguments.delta`) and closed (the `done` events, then
//! `output_item.done`), and last `response.completed` (or `.incomplete`, or
//! `.failed`) with the whole response. Each event is `event: <type>` and its
//! JSON with a `sequence_number` counting from 0.

use std::io::Write;

use super::render::{
    echo_block, final_status, write_added_item, write_item, write_items, write_response, write_summary_part,
    write_text_part, Head, Ids, Item, Kind, Status,
};
use super::{error_code, response_id};
use crate::stream::{json_str, Delta, Render, StreamState};
use crate::LlmError;

/// The Responses event stream of one answer.
#[derive(Debug, Default)]
pub struct Writer {
    started: bool,
    seq: u64,
    id: String,
    ids: Ids,
    /// The request fields every Response repeats, written once.
    echo: Vec<u8>,
    /// Every output item so far, in output order (what the final response
    /// and the `done` events repeat).
    items: Vec<Item>,
    /// The output index of the item still taking deltas.
    open: Option<usize>,
    /// `"item_id":...,"output_index":N` of the open item.
    prefix: Vec<u8>,
    /// (tool call index, output index) of every call.
    calls: Vec<(u32, usize)>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    fn event(&mut self, out: &mut Vec<u8>, kind: &str) {
        event(out, &mut self.seq, kind);
    }

    /// `response.created` and `response.in_progress`, once, before anything else.
    fn start(&mut self, state: &mut StreamState, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        state.started = true;
        self.id = response_id(state.id(), &state.meta.request_id);
        self.ids = Ids::new(&self.id);
        self.echo = echo_block(state.meta.echo.as_deref());
        for kind in ["response.created", "response.in_progress"] {
            self.event(out, kind);
            out.extend_from_slice(b",\"response\":");
            let head = Head {
                id: &self.id,
                created: state.meta.created,
                status: "in_progress",
                model: state.answer_model(),
                error: None,
                incomplete: None,
            };
            write_response(out, &head, |_| {}, None, &self.echo);
            end(out);
        }
    }

    /// Closes the open item, if any, and opens `item` after it.
    fn open(&mut self, item: Item, out: &mut Vec<u8>) -> usize {
        self.close(Status::Completed, out);
        let index = self.items.len();
        self.prefix.clear();
        self.prefix.extend_from_slice(b"\"item_id\":");
        let id = match &item {
            Item::Reasoning { id, .. } | Item::Message { id, .. } | Item::Call { id, .. } => id,
        };
        json_str(&mut self.prefix, id);
        let _ = write!(self.prefix, ",\"output_index\":{index}");
        self.event(out, "response.output_item.added");
        let _ = write!(out, ",\"output_index\":{index},\"item\":");
        write_added_item(out, &item);
        end(out);
        match item {
            Item::Message { .. } => {
                self.event(out, "response.content_part.added");
                self.item_fields(out);
                out.extend_from_slice(b",\"content_index\":0,\"part\":");
                write_text_part(out, "");
                end(out);
            }
            Item::Reasoning { .. } => {
                self.event(out, "response.reasoning_summary_part.added");
                self.item_fields(out);
                out.extend_from_slice(b",\"summary_index\":0,\"part\":");
                write_summary_part(out, "");
                end(out);
            }
            Item::Call { .. } => {}
        }
        self.items.push(item);
        self.open = Some(index);
        index
    }

    /// `,"item_id":...,"output_index":N` of the open item.
    fn item_fields(&self, out: &mut Vec<u8>) {
        fields(out, &self.prefix);
    }

    /// The `done` events of the open item, which ends with `status`.
    fn close(&mut self, status: Status, out: &mut Vec<u8>) {
        let Some(index) = self.open.take() else {
            return;
        };
        let Writer { items, seq, prefix, .. } = self;
        let item = &mut items[index];
        if let Item::Message { status: s, .. } | Item::Call { status: s, .. } = item {
            *s = status;
        }
        match &*item {
            Item::Message { text, .. } => {
                event(out, seq, "response.output_text.done");
                fields(out, prefix);
                out.extend_from_slice(b",\"content_index\":0,\"text\":");
                json_str(out, text);
                out.extend_from_slice(b",\"logprobs\":[]");
                end(out);
                event(out, seq, "response.content_part.done");
                fields(out, prefix);
                out.extend_from_slice(b",\"content_index\":0,\"part\":");
                write_text_part(out, text);
                end(out);
            }
            Item::Reasoning { text, .. } => {
                event(out, seq, "response.reasoning_summary_text.done");
                fields(out, prefix);
                out.extend_from_slice(b",\"summary_index\":0,\"text\":");
                json_str(out, text);
                end(out);
                event(out, seq, "response.reasoning_summary_part.done");
                fields(out, prefix);
                out.extend_from_slice(b",\"summary_index\":0,\"part\":");
                write_summary_part(out, text);
                end(out);
            }
            Item::Call { arguments, .. } => {
                event(out, seq, "response.function_call_arguments.done");
                fields(out, prefix);
                out.extend_from_slice(b",\"arguments\":");
                json_str(out, arguments);
                end(out);
            }
        }
        event(out, seq, "response.output_item.done");
        let _ = write!(out, ",\"output_index\":{index},\"item\":");
        write_item(out, item);
        end(out);
    }

    fn text(&mut self, t: &str, out: &mut Vec<u8>) {
        let index = match self.open {
            Some(i) if matches!(self.items[i], Item::Message { .. }) => i,
            _ => {
                let item =
                    Item::Message { id: self.ids.next(Kind::Message), text: String::new(), status: Status::InProgress };
                self.open(item, out)
            }
        };
        self.event(out, "response.output_text.delta");
        self.item_fields(out);
        out.extend_from_slice(b",\"content_index\":0,\"delta\":");
        json_str(out, t);
        out.extend_from_slice(b",\"logprobs\":[]");
        end(out);
        if let Item::Message { text, .. } = &mut self.items[index] {
            text.push_str(t);
        }
    }

    fn thinking(&mut self, t: &str, out: &mut Vec<u8>) {
        let index = match self.open {
            Some(i) if matches!(self.items[i], Item::Reasoning { .. }) => i,
            _ => {
                let item = Item::Reasoning { id: self.ids.next(Kind::Reasoning), text: String::new() };
                self.open(item, out)
            }
        };
        self.event(out, "response.reasoning_summary_text.delta");
        self.item_fields(out);
        out.extend_from_slice(b",\"summary_index\":0,\"delta\":");
        json_str(out, t);
        end(out);
        if let Item::Reasoning { text, .. } = &mut self.items[index] {
            text.push_str(t);
        }
    }

    fn tool_call(&mut self, index: u32, id: Option<&str>, name: Option<&str>, arguments: &str, out: &mut Vec<u8>) {
        let at = match self.calls.iter().find(|(i, _)| *i == index) {
            Some((_, at)) => *at,
            None => {
                let call_id = id.filter(|id| !id.is_empty()).map_or_else(|| self.ids.call_id(index), str::to_string);
                let item = Item::Call {
                    id: self.ids.next(Kind::Call),
                    call_id,
                    name: name.unwrap_or_default().to_string(),
                    arguments: String::new(),
                    status: Status::InProgress,
                };
                let at = self.open(item, out);
                self.calls.push((index, at));
                at
            }
        };
        if let (Some(name), Item::Call { name: known, .. }) = (name, &mut self.items[at]) {
            if known.is_empty() {
                name.clone_into(known);
            }
        }
        if arguments.is_empty() {
            return;
        }
        // A fragment for a call already closed (a provider interleaving its
        // calls) still counts in the final response, but its events are over.
        if self.open == Some(at) {
            self.event(out, "response.function_call_arguments.delta");
            self.item_fields(out);
            out.extend_from_slice(b",\"delta\":");
            json_str(out, arguments);
            end(out);
        }
        if let Item::Call { arguments: all, .. } = &mut self.items[at] {
            all.push_str(arguments);
        }
    }

    /// `response.completed` (or `.incomplete`) with the whole response.
    fn finish(&mut self, state: &StreamState, out: &mut Vec<u8>) {
        self.close(Status::at_finish(state.finish), out);
        let (status, incomplete) = final_status(state.finish);
        self.event(out, if incomplete.is_some() { "response.incomplete" } else { "response.completed" });
        out.extend_from_slice(b",\"response\":");
        let head = Head {
            id: &self.id,
            created: state.meta.created,
            status,
            model: state.answer_model(),
            error: None,
            incomplete,
        };
        let usage = state.usage();
        write_response(out, &head, |out| write_items(out, &self.items), usage.as_ref(), &self.echo);
        end(out);
    }

    /// `response.failed`: what was produced so far (the open item cut
    /// short), the usage known, and the error.
    fn fail(&mut self, e: &LlmError, state: &StreamState, out: &mut Vec<u8>) {
        if let Some(index) = self.open.take() {
            if let Item::Message { status, .. } | Item::Call { status, .. } = &mut self.items[index] {
                *status = Status::Incomplete;
            }
        }
        self.event(out, "response.failed");
        out.extend_from_slice(b",\"response\":");
        let head = Head {
            id: &self.id,
            created: state.meta.created,
            status: "failed",
            model: state.answer_model(),
            error: Some((error_code(e), &e.message)),
            incomplete: None,
        };
        let usage = state.usage();
        write_response(out, &head, |out| write_items(out, &self.items), usage.as_ref(), &self.echo);
        end(out);
    }
}

/// `event: <kind>\ndata: {"type":"<kind>","sequence_number":N` (the caller
/// writes the rest of the object, then `end`).
fn event(out: &mut Vec<u8>, seq: &mut u64, kind: &str) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: {\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    let _ = write!(out, "\",\"sequence_number\":{seq}");
    *seq += 1;
}

fn end(out: &mut Vec<u8>) {
    out.extend_from_slice(b"}\n\n");
}

/// `,"item_id":...,"output_index":N` of an item.
fn fields(out: &mut Vec<u8>, prefix: &[u8]) {
    out.push(b',');
    out.extend_from_slice(prefix);
}

impl Render for Writer {
    fn render(&mut self, delta: &Delta, state: &mut StreamState, out: &mut Vec<u8>) {
        self.start(state, out);
        let state = &*state;
        match delta {
            Delta::Text(t) if !t.is_empty() => self.text(t, out),
            Delta::Thinking(t) if !t.is_empty() => self.thinking(t, out),
            Delta::ToolCall { index, id, name, arguments } => {
                self.tool_call(*index, id.as_deref(), name.as_deref(), arguments, out)
            }
            Delta::Finish(reason) => self.close(Status::at_finish(Some(*reason)), out),
            Delta::Done => self.finish(state, out),
            Delta::Error(e) => self.fail(e, state, out),
            // Ids and usage are in `state`; signatures and redacted thinking
            // are other providers' and have no place in a Response.
            Delta::Text(_)
            | Delta::Thinking(_)
            | Delta::Meta { .. }
            | Delta::Usage(_)
            | Delta::ThinkingSignature(_)
            | Delta::RedactedThinking(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::completion::{AnswerMeta, FinishReason};
    use crate::stream::{ChatStream, Decoder, Translator, UsageUpdate};
    use serde_json::Value;

    struct NoDecoder;
    impl Decoder for NoDecoder {
        fn decode(&mut self, _: &[u8], _: &mut Vec<Delta>) {}
    }

    fn meta() -> AnswerMeta {
        AnswerMeta {
            fallback_id: "chatcmpl-r1".into(),
            request_id: "r1".into(),
            created: 9,
            model: "m".into(),
            ..AnswerMeta::default()
        }
    }

    /// Each event as (SSE event name, JSON data).
    pub(crate) fn events(out: &[u8]) -> Vec<(String, Value)> {
        let text = std::str::from_utf8(out).expect("utf8");
        assert!(text.is_empty() || text.ends_with("\n\n"), "events end with a blank line");
        text.split_terminator("\n\n")
            .map(|e| {
                let (name, data) = e.split_once('\n').expect("two lines");
                let name = name.strip_prefix("event: ").expect("event line").to_string();
                let data: Value = serde_json::from_str(data.strip_prefix("data: ").expect("data line")).expect("JSON");
                assert_eq!(data["type"], name.as_str(), "the data's type is the event's name");
                (name, data)
            })
            .collect()
    }

    fn run(deltas: Vec<Delta>) -> Vec<(String, Value)> {
        let mut t = Translator::new(NoDecoder, Writer::new(), meta());
        let mut out = Vec::new();
        for d in deltas {
            t.write(d, &mut out);
        }
        let ev = events(&out);
        for (i, (_, data)) in ev.iter().enumerate() {
            assert_eq!(data["sequence_number"], i as u64);
        }
        ev
    }

    fn names(ev: &[(String, Value)]) -> Vec<&str> {
        ev.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn a_text_answer_streams_as_openai_does() {
        let ev = run(vec![
            Delta::Meta { id: Some("msg_01".into()), model: Some("claude-x".into()) },
            Delta::Usage(UsageUpdate { prompt: Some(10), ..UsageUpdate::default() }),
            Delta::Text("Hel".into()),
            Delta::Text(String::new()),
            Delta::Text("lo \"you\"".into()),
            Delta::Finish(FinishReason::Stop),
            Delta::Usage(UsageUpdate { completion: Some(3), ..UsageUpdate::default() }),
            Delta::Done,
        ]);
        assert_eq!(
            names(&ev),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let created = &ev[0].1["response"];
        assert_eq!(created["id"], "resp_r1");
        assert_eq!(created["status"], "in_progress");
        assert_eq!(created["model"], "claude-x");
        assert_eq!(created["output"], serde_json::json!([]));
        assert_eq!(
            ev[2].1["item"],
            serde_json::json!({"id":"msg_r1","type":"message","status":"in_progress","content":[],"role":"assistant"})
        );
        assert_eq!(
            ev[4].1,
            serde_json::json!({"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_r1","output_index":0,"content_index":0,"delta":"Hel","logprobs":[]})
        );
        assert_eq!(ev[6].1["text"], "Hello \"you\"");
        assert_eq!(ev[7].1["part"]["text"], "Hello \"you\"");
        assert_eq!(ev[8].1["item"]["status"], "completed");
        let done = &ev[9].1["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["output"][0], ev[8].1["item"]);
        assert_eq!(done["usage"]["input_tokens"], 10);
        assert_eq!(done["usage"]["output_tokens"], 3);
        assert_eq!(done["usage"]["total_tokens"], 13);
        assert_eq!(done["created_at"], 9);
    }

    #[test]
    fn reasoning_then_text_then_calls_are_separate_items() {
        let ev = run(vec![
            Delta::Thinking("Let me ".into()),
            Delta::Thinking("think.".into()),
            Delta::ThinkingSignature("sig".into()),
            Delta::Text("Checking.".into()),
            Delta::ToolCall {
                index: 0,
                id: Some("toolu_1".into()),
                name: Some("weather".into()),
                arguments: String::new(),
            },
            Delta::ToolCall { index: 0, id: None, name: None, arguments: "{\"city\":".into() },
            Delta::ToolCall { index: 0, id: None, name: None, arguments: "\"Paris\"}".into() },
            Delta::ToolCall { index: 1, id: None, name: Some("time".into()), arguments: "{}".into() },
            Delta::Finish(FinishReason::ToolCalls),
            Delta::Done,
        ]);
        assert_eq!(
            names(&ev),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        assert_eq!(ev[6].1["text"], "Let me think.");
        assert_eq!(
            ev[8].1["item"],
            serde_json::json!({"id":"rs_r1","type":"reasoning","summary":[{"type":"summary_text","text":"Let me think."}]})
        );
        assert_eq!(ev[11].1["output_index"], 1);
        assert_eq!(
            ev[15].1["item"],
            serde_json::json!({"id":"fc_r1","type":"function_call","status":"in_progress","arguments":"","call_id":"toolu_1","name":"weather"})
        );
        assert_eq!(ev[18].1["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(ev[20].1["item"]["call_id"], "call_r1_1");
        assert_eq!(ev[20].1["item"]["name"], "time");
        assert_eq!(ev[20].1["output_index"], 3);
        let output = ev[24].1["response"]["output"].as_array().expect("output").clone();
        assert_eq!(output.len(), 4);
        assert_eq!(output[2]["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(output[3]["status"], "completed");
        assert_eq!(ev[24].1["response"]["usage"], Value::Null);
    }

    #[test]
    fn a_length_cut_is_incomplete() {
        let ev = run(vec![Delta::Text("abc".into()), Delta::Finish(FinishReason::Length), Delta::Done]);
        let (name, last) = ev.last().expect("events");
        assert_eq!(name, "response.incomplete");
        assert_eq!(last["response"]["status"], "incomplete");
        assert_eq!(last["response"]["incomplete_details"]["reason"], "max_output_tokens");
        assert_eq!(last["response"]["output"][0]["status"], "incomplete");
    }

    #[test]
    fn an_error_fails_the_response_with_what_came_before() {
        let mut t = Translator::new(NoDecoder, Writer::new(), meta());
        let mut out = Vec::new();
        t.write(Delta::Text("partial".into()), &mut out);
        out.extend_from_slice(&t.fail(LlmError::new(429, "rate_limit_error", "slow down")));
        t.write(Delta::Done, &mut out);
        let ev = events(&out);
        let (name, last) = ev.last().expect("events");
        assert_eq!(name, "response.failed");
        assert_eq!(last["sequence_number"], ev.len() as u64 - 1);
        let r = &last["response"];
        assert_eq!(r["status"], "failed");
        assert_eq!(r["error"], serde_json::json!({"code":"rate_limit_exceeded","message":"slow down"}));
        assert_eq!(r["output"][0]["status"], "incomplete");
        assert_eq!(r["output"][0]["content"][0]["text"], "partial");
        assert!(!t.completed());
        // An error before anything still opens the stream properly.
        let ev = run(vec![Delta::Error(LlmError::new(502, "upstream_error", "boom"))]);
        assert_eq!(names(&ev), ["response.created", "response.in_progress", "response.failed"]);
        assert_eq!(ev[2].1["response"]["error"]["code"], "server_error");
    }

    #[test]
    fn an_openai_id_is_kept_and_echo_is_repeated() {
        let mut m = meta();
        let Value::Object(echo) = serde_json::json!({"instructions":"be brief","tools":[]}) else { unreachable!() };
        m.echo = Some(std::sync::Arc::new(echo));
        let mut t = Translator::new(NoDecoder, Writer::new(), m);
        let mut out = Vec::new();
        t.write(Delta::Meta { id: Some("resp_up".into()), model: None }, &mut out);
        t.write(Delta::Done, &mut out);
        let ev = events(&out);
        assert_eq!(names(&ev), ["response.created", "response.in_progress", "response.completed"]);
        for (_, e) in &ev {
            assert_eq!(e["response"]["id"], "resp_up");
            assert_eq!(e["response"]["instructions"], "be brief");
            assert_eq!(e["response"]["model"], "m");
        }
    }
}

//! The Response object, written straight into bytes: output items, usage,
//! and the request fields a Response repeats. Shared by the JSON answer
//! ([`render`]) and the event stream, which repeats the response in its
//! lifecycle events and every item in its `added` and `done` events.

use std::io::Write;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::response_id;
use crate::completion::{AnswerMeta, Completion, FinishReason};
use crate::stream::json_str;
use crate::Usage;

/// An item's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    InProgress,
    Completed,
    Incomplete,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Incomplete => "incomplete",
        }
    }

    /// The status of an item that ended with the answer: cut short when the
    /// answer was.
    pub(super) fn at_finish(finish: Option<FinishReason>) -> Status {
        match finish {
            Some(FinishReason::Length | FinishReason::ContentFilter) => Status::Incomplete,
            _ => Status::Completed,
        }
    }
}

/// One output item.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Item {
    /// Reasoning shown as a summary (one `summary_text` part).
    Reasoning {
        id: String,
        text: String,
    },
    Message {
        id: String,
        text: String,
        status: Status,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        status: Status,
    },
}

/// Item ids made from the Response's: `msg_<base>`, then `msg_<base>_1`...
#[derive(Debug, Default)]
pub(super) struct Ids {
    base: String,
    counts: [u32; 3],
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    Reasoning = 0,
    Message = 1,
    Call = 2,
}

impl Ids {
    pub(super) fn new(response_id: &str) -> Self {
        Ids { base: response_id.strip_prefix("resp_").unwrap_or(response_id).to_string(), counts: [0; 3] }
    }

    pub(super) fn next(&mut self, kind: Kind) -> String {
        let prefix = match kind {
            Kind::Reasoning => "rs",
            Kind::Message => "msg",
            Kind::Call => "fc",
        };
        let n = &mut self.counts[kind as usize];
        let id = if *n == 0 { format!("{prefix}_{}", self.base) } else { format!("{prefix}_{}_{n}", self.base) };
        *n += 1;
        id
    }

    /// A call id for a tool call the provider gave none.
    pub(super) fn call_id(&self, index: u32) -> String {
        format!("call_{}_{index}", self.base)
    }
}

/// An output text part.
pub(super) fn write_text_part(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":");
    json_str(out, text);
    out.push(b'}');
}

/// A reasoning summary part.
pub(super) fn write_summary_part(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"{\"type\":\"summary_text\",\"text\":");
    json_str(out, text);
    out.push(b'}');
}

/// An item as a `done` event and the final output show it.
pub(super) fn write_item(out: &mut Vec<u8>, item: &Item) {
    match item {
        Item::Reasoning { id, text } => {
            out.extend_from_slice(b"{\"id\":");
            json_str(out, id);
            out.extend_from_slice(b",\"type\":\"reasoning\",\"summary\":[");
            write_summary_part(out, text);
            out.extend_from_slice(b"]}");
        }
        Item::Message { id, text, status } => {
            out.extend_from_slice(b"{\"id\":");
            json_str(out, id);
            let _ = write!(out, ",\"type\":\"message\",\"status\":\"{}\",\"content\":[", status.as_str());
            write_text_part(out, text);
            out.extend_from_slice(b"],\"role\":\"assistant\"}");
        }
        Item::Call { id, call_id, name, arguments, status } => {
            out.extend_from_slice(b"{\"id\":");
            json_str(out, id);
            let _ = write!(out, ",\"type\":\"function_call\",\"status\":\"{}\",\"arguments\":", status.as_str());
            json_str(out, arguments);
            out.extend_from_slice(b",\"call_id\":");
            json_str(out, call_id);
            out.extend_from_slice(b",\"name\":");
            json_str(out, name);
            out.push(b'}');
        }
    }
}

/// An item as its `added` event shows it: no content yet.
pub(super) fn write_added_item(out: &mut Vec<u8>, item: &Item) {
    match item {
        Item::Reasoning { id, .. } => {
            out.extend_from_slice(b"{\"id\":");
            json_str(out, id);
            out.extend_from_slice(b",\"type\":\"reasoning\",\"summary\":[]}");
        }
        Item::Message { id, .. } => {
            out.extend_from_slice(b"{\"id\":");
            json_str(out, id);
            out.extend_from_slice(
                b",\"type\":\"message\",\"status\":\"in_progress\",\"content\":[],\"role\":\"assistant\"}",
            );
        }
        Item::Call { id, call_id, name, .. } => {
            out.extend_from_slice(b"{\"id\":");
            json_str(out, id);
            out.extend_from_slice(
                b",\"type\":\"function_call\",\"status\":\"in_progress\",\"arguments\":\"\",\"call_id\":",
            );
            json_str(out, call_id);
            out.extend_from_slice(b",\"name\":");
            json_str(out, name);
            out.push(b'}');
        }
    }
}

/// The Responses API's `usage` object.
pub(super) fn write_usage(out: &mut Vec<u8>, u: &Usage) {
    let _ = write!(
        out,
        "{{\"input_tokens\":{},\"input_tokens_details\":{{\"cached_tokens\":{},\"cache_write_tokens\":{}}},\
         \"output_tokens\":{},\"output_tokens_details\":{{\"reasoning_tokens\":{}}},\"total_tokens\":{}}}",
        u.prompt_tokens, u.cached_tokens, u.cache_write_tokens, u.completion_tokens, u.reasoning_tokens, u.total_tokens
    );
}

/// The request fields a Response repeats, each as the caller set it or as
/// the API shows it when unset: `"instructions":...,...,"metadata":{...}`.
/// Written once per answer (a stream repeats it in three events).
pub(super) fn echo_block(echo: Option<&Map<String, Value>>) -> Vec<u8> {
    // (field, what the API shows when the request leaves it out)
    const FIELDS: &[(&str, &str)] = &[
        ("instructions", "null"),
        ("max_output_tokens", "null"),
        ("max_tool_calls", "null"),
        ("parallel_tool_calls", "true"),
        ("previous_response_id", "null"),
        ("prompt_cache_key", "null"),
        ("reasoning", "{\"effort\":null,\"summary\":null}"),
        ("safety_identifier", "null"),
        ("service_tier", "\"default\""),
        ("temperature", "1.0"),
        ("text", ""),
        ("tool_choice", "\"auto\""),
        ("tools", "[]"),
        ("top_logprobs", "0"),
        ("top_p", "1.0"),
        ("truncation", "\"disabled\""),
        ("user", "null"),
        ("metadata", "{}"),
    ];
    let mut out = Vec::with_capacity(512);
    for (name, default) in FIELDS {
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        let given = echo.and_then(|e| e.get(*name)).filter(|v| !v.is_null());
        if *name == "text" {
            write_text_config(&mut out, given);
            out.push(b',');
            continue;
        }
        match given {
            // Writing a Value into a Vec cannot fail.
            Some(v) => {
                let _ = serde_json::to_writer(&mut out, v);
            }
            None => out.extend_from_slice(default.as_bytes()),
        }
        out.push(b',');
    }
    // Nothing is kept: a translated answer is never stored.
    out.extend_from_slice(b"\"store\":false");
    out
}

/// `text` as a Response shows it: the caller's, with the plain-text format
/// and medium verbosity where it left them out.
fn write_text_config(out: &mut Vec<u8>, given: Option<&Value>) {
    let mut text = given.and_then(Value::as_object).cloned().unwrap_or_default();
    if text.get("format").is_none_or(Value::is_null) {
        text.insert("format".into(), serde_json::json!({"type": "text"}));
    }
    if text.get("verbosity").is_none_or(Value::is_null) {
        text.insert("verbosity".into(), Value::from("medium"));
    }
    let _ = serde_json::to_writer(out, &text);
}

/// What a Response says of itself, beside its output and usage.
pub(super) struct Head<'a> {
    pub id: &'a str,
    pub created: u64,
    pub status: &'static str,
    pub model: &'a str,
    /// `(code, message)` of a failed response.
    pub error: Option<(&'a str, &'a str)>,
    /// `incomplete_details.reason` of a response cut short.
    pub incomplete: Option<&'static str>,
}

/// The status and `incomplete_details.reason` of a finished answer.
pub(super) fn final_status(finish: Option<FinishReason>) -> (&'static str, Option<&'static str>) {
    match finish {
        Some(FinishReason::Length) => ("incomplete", Some("max_output_tokens")),
        Some(FinishReason::ContentFilter) => ("incomplete", Some("content_filter")),
        _ => ("completed", None),
    }
}

/// A whole Response object; `output` writes the items between the brackets.
pub(super) fn write_response(
    out: &mut Vec<u8>,
    head: &Head,
    output: impl FnOnce(&mut Vec<u8>),
    usage: Option<&Usage>,
    echo: &[u8],
) {
    out.extend_from_slice(b"{\"id\":");
    json_str(out, head.id);
    let _ = write!(
        out,
        ",\"object\":\"response\",\"created_at\":{},\"status\":\"{}\",\"background\":false,\"error\":",
        head.created, head.status
    );
    match head.error {
        Some((code, message)) => {
            out.extend_from_slice(b"{\"code\":");
            json_str(out, code);
            out.extend_from_slice(b",\"message\":");
            json_str(out, message);
            out.push(b'}');
        }
        None => out.extend_from_slice(b"null"),
    }
    match head.incomplete {
        Some(reason) => {
            let _ = write!(out, ",\"incomplete_details\":{{\"reason\":\"{reason}\"}}");
        }
        None => out.extend_from_slice(b",\"incomplete_details\":null"),
    }
    out.extend_from_slice(b",\"model\":");
    json_str(out, head.model);
    out.extend_from_slice(b",\"output\":[");
    output(out);
    out.extend_from_slice(b"],\"usage\":");
    match usage {
        Some(u) => write_usage(out, u),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b',');
    out.extend_from_slice(echo);
    out.push(b'}');
}

pub(super) fn write_items(out: &mut Vec<u8>, items: &[Item]) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_item(out, item);
    }
}

/// A completion as a Response object: reasoning summaries, the message,
/// then the function calls, in that order.
pub fn render(c: &Completion, meta: &AnswerMeta) -> Bytes {
    let id = response_id(&c.id, &meta.request_id);
    let mut ids = Ids::new(&id);
    let status = Status::at_finish(c.finish_reason);
    let mut items = Vec::with_capacity(c.thinking.len() + 1 + c.tool_calls.len());
    for t in c.thinking.iter().filter(|t| !t.text.is_empty()) {
        items.push(Item::Reasoning { id: ids.next(Kind::Reasoning), text: t.text.clone() });
    }
    if let Some(text) = c.text.as_ref().filter(|t| !t.is_empty()) {
        items.push(Item::Message { id: ids.next(Kind::Message), text: text.clone(), status });
    }
    for (i, call) in c.tool_calls.iter().enumerate() {
        let call_id = if call.id.is_empty() { ids.call_id(i as u32) } else { call.id.clone() };
        items.push(Item::Call {
            id: ids.next(Kind::Call),
            call_id,
            name: call.name.clone(),
            arguments: call.arguments.clone(),
            status,
        });
    }
    let (status, incomplete) = final_status(c.finish_reason);
    let head = Head { id: &id, created: c.created, status, model: &c.model, error: None, incomplete };
    let echo = echo_block(meta.echo.as_deref());
    let mut out = Vec::with_capacity(512 + echo.len() + c.text.as_ref().map_or(0, String::len));
    write_response(&mut out, &head, |out| write_items(out, &items), c.usage.as_ref(), &echo);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{Thinking, ToolCall};
    use std::sync::Arc;

    fn meta(echo: Option<Map<String, Value>>) -> AnswerMeta {
        AnswerMeta {
            fallback_id: "chatcmpl-r1".into(),
            request_id: "r1".into(),
            echo: echo.map(Arc::new),
            created: 1_700_000_000,
            model: "claude-x".into(),
            client_wants_usage: false,
        }
    }

    fn completion() -> Completion {
        Completion {
            id: "msg_01abc".into(),
            created: 1_700_000_000,
            model: "claude-x-2025".into(),
            text: Some("It is \"sunny\".".into()),
            thinking: vec![Thinking { text: "check the sky".into(), signature: Some("sig".into()), redacted: None }],
            tool_calls: vec![ToolCall {
                id: "toolu_1".into(),
                name: "weather".into(),
                arguments: "{\"city\":\"Paris\"}".into(),
            }],
            finish_reason: Some(FinishReason::ToolCalls),
            usage: Some(Usage {
                prompt_tokens: 20,
                completion_tokens: 10,
                total_tokens: 30,
                cached_tokens: 5,
                cache_write_tokens: 2,
                reasoning_tokens: 4,
            }),
        }
    }

    fn json(b: &[u8]) -> Value {
        serde_json::from_slice(b).expect("a Response is JSON")
    }

    #[test]
    fn a_completion_is_a_response_with_every_item_in_order() {
        let v = json(&render(&completion(), &meta(None)));
        assert_eq!(
            v,
            serde_json::json!({
                "id": "resp_r1", "object": "response", "created_at": 1_700_000_000, "status": "completed",
                "background": false, "error": null, "incomplete_details": null, "model": "claude-x-2025",
                "output": [
                    {"id": "rs_r1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "check the sky"}]},
                    {"id": "msg_r1", "type": "message", "status": "completed", "role": "assistant",
                     "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "It is \"sunny\"."}]},
                    {"id": "fc_r1", "type": "function_call", "status": "completed", "arguments": "{\"city\":\"Paris\"}",
                     "call_id": "toolu_1", "name": "weather"}
                ],
                "usage": {"input_tokens": 20, "input_tokens_details": {"cached_tokens": 5, "cache_write_tokens": 2},
                          "output_tokens": 10, "output_tokens_details": {"reasoning_tokens": 4}, "total_tokens": 30},
                "instructions": null, "max_output_tokens": null, "max_tool_calls": null, "parallel_tool_calls": true,
                "previous_response_id": null, "prompt_cache_key": null, "reasoning": {"effort": null, "summary": null},
                "safety_identifier": null, "service_tier": "default", "temperature": 1.0,
                "text": {"format": {"type": "text"}, "verbosity": "medium"}, "tool_choice": "auto", "tools": [],
                "top_logprobs": 0, "top_p": 1.0, "truncation": "disabled", "user": null, "metadata": {}, "store": false
            })
        );
    }

    #[test]
    fn the_request_fields_are_echoed() {
        let echo = serde_json::json!({
            "instructions": "be brief", "temperature": 0.2, "max_output_tokens": 50,
            "tools": [{"type": "function", "name": "weather", "parameters": {"type": "object"}}],
            "tool_choice": "required", "text": {"format": {"type": "json_object"}}, "metadata": {"k": "v"},
            "reasoning": {"effort": "low"}, "parallel_tool_calls": false, "user": "u1", "truncation": "auto", "store": false
        });
        let Value::Object(echo) = echo else { unreachable!() };
        let v = json(&render(&completion(), &meta(Some(echo))));
        assert_eq!(v["instructions"], "be brief");
        assert_eq!(v["temperature"], 0.2);
        assert_eq!(v["max_output_tokens"], 50);
        assert_eq!(v["tools"][0]["name"], "weather");
        assert_eq!(v["tool_choice"], "required");
        assert_eq!(v["text"], serde_json::json!({"format": {"type": "json_object"}, "verbosity": "medium"}));
        assert_eq!(v["metadata"]["k"], "v");
        assert_eq!(v["reasoning"]["effort"], "low");
        assert_eq!(v["parallel_tool_calls"], false);
        assert_eq!(
            (v["user"].as_str(), v["truncation"].as_str(), v["store"].as_bool()),
            (Some("u1"), Some("auto"), Some(false))
        );
    }

    #[test]
    fn an_answer_cut_short_is_incomplete() {
        let mut c = completion();
        c.tool_calls.clear();
        c.thinking.clear();
        c.finish_reason = Some(FinishReason::Length);
        c.usage = None;
        c.id = "resp_upstream".into();
        let v = json(&render(&c, &meta(None)));
        assert_eq!(v["id"], "resp_upstream");
        assert_eq!(v["status"], "incomplete");
        assert_eq!(v["incomplete_details"]["reason"], "max_output_tokens");
        assert_eq!(v["output"][0]["status"], "incomplete");
        assert_eq!(v["output"][0]["id"], "msg_upstream");
        assert_eq!(v["usage"], Value::Null);
        c.finish_reason = Some(FinishReason::ContentFilter);
        let v = json(&render(&c, &meta(None)));
        assert_eq!(v["incomplete_details"]["reason"], "content_filter");
    }

    #[test]
    fn calls_without_ids_get_ones_and_empty_text_makes_no_message() {
        let mut c = completion();
        c.text = Some(String::new());
        c.thinking = vec![Thinking { text: String::new(), signature: None, redacted: Some("opaque".into()) }];
        c.tool_calls.push(ToolCall { id: String::new(), name: "other".into(), arguments: "{}".into() });
        let v = json(&render(&c, &meta(None)));
        let output = v["output"].as_array().expect("output");
        assert_eq!(output.len(), 2);
        assert_eq!(output[1]["id"], "fc_r1_1");
        assert_eq!(output[1]["call_id"], "call_r1_1");
    }
}

//! The texts of a request in its caller's format, read and rewritten in
//! place: OpenAI chat completions (`messages[].content`, a string or text
//! parts; tool call arguments), Anthropic Messages (`system`,
//! `messages[].content` strings, text, thinking and text-document blocks,
//! tool uses' inputs and tool results) and OpenAI Responses (`instructions`,
//! `input` as a string or items with text content, function call arguments
//! and outputs); tool descriptions in all three. Guards work
//! on these texts, so the same rules hold whatever the caller speaks and
//! whichever provider serves the request.

use serde_json::Value;

/// The caller's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenAiChat,
    AnthropicMessages,
    OpenAiResponses,
}

/// Who wrote a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
    /// A tool's result (or anything else).
    Other,
}

impl Role {
    fn of(role: Option<&str>) -> Role {
        match role {
            Some("system" | "developer") => Role::System,
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            _ => Role::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Other => "tool",
        }
    }
}

/// Where a text sits: its role and turn (`None`: the system prompt outside
/// the turns, Anthropic's `system` or Responses' `instructions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub role: Role,
    pub turn: Option<usize>,
}

/// Calls `f` on every text of `body`, in order, with where it sits.
pub fn for_each_text(format: Format, body: &mut Value, f: &mut dyn FnMut(Slot, &mut String)) {
    let Some(obj) = body.as_object_mut() else { return };
    if let Some(tools) = obj.get_mut("tools") {
        tool_texts(tools, f);
    }
    match format {
        Format::OpenAiChat | Format::AnthropicMessages => {
            if let Some(system) = obj.get_mut("system") {
                content_texts(system, Slot { role: Role::System, turn: None }, f);
            }
            if let Some(Value::Array(messages)) = obj.get_mut("messages") {
                for (i, m) in messages.iter_mut().enumerate() {
                    message_texts(m, i, f);
                }
            }
        }
        Format::OpenAiResponses => {
            if let Some(Value::String(s)) = obj.get_mut("instructions") {
                f(Slot { role: Role::System, turn: None }, s);
            }
            match obj.get_mut("input") {
                Some(Value::String(s)) => f(Slot { role: Role::User, turn: Some(0) }, s),
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter_mut().enumerate() {
                        message_texts(item, i, f);
                    }
                }
                _ => {}
            }
        }
    }
}

/// The number of turns (messages or input items) of `body`.
pub fn turns(format: Format, body: &Value) -> usize {
    let key = match format {
        Format::OpenAiResponses => "input",
        _ => "messages",
    };
    match body.get(key) {
        Some(Value::Array(a)) => a.len(),
        Some(Value::String(_)) => 1,
        _ => 0,
    }
}

/// The last turn holding a text whose role `judged` accepts: where a guard
/// that judges "the last turn" starts. Picking the last message of any role
/// would let a trailing assistant or tool message hide the user's ask.
pub fn last_turn(format: Format, body: &mut Value, judged: &dyn Fn(Role) -> bool) -> Option<usize> {
    let mut last = None;
    for_each_text(format, body, &mut |slot, _| {
        if judged(slot.role) && slot.turn.is_some() {
            last = last.max(slot.turn);
        }
    });
    last
}

/// One message or input item: its `content`, a tool's `output` (a string or
/// parts) and the JSON arguments of the tool calls it makes.
fn message_texts(m: &mut Value, turn: usize, f: &mut dyn FnMut(Slot, &mut String)) {
    let Some(obj) = m.as_object_mut() else { return };
    let role = Role::of(obj.get("role").and_then(Value::as_str));
    let slot = Slot { role, turn: Some(turn) };
    if let Some(content) = obj.get_mut("content") {
        content_texts(content, slot, f);
    }
    let tool = Slot { role: Role::Other, turn: Some(turn) };
    match obj.get_mut("output") {
        Some(Value::String(s)) => f(tool, s),
        Some(parts @ Value::Array(_)) => content_texts(parts, tool, f),
        _ => {}
    }
    // A Responses `function_call` item: the model wrote its arguments.
    if let Some(Value::String(args)) = obj.get_mut("arguments") {
        json_string_texts(args, Slot { role: Role::Assistant, turn: Some(turn) }, f);
    }
    if let Some(Value::Array(calls)) = obj.get_mut("tool_calls") {
        for call in calls {
            if let Some(Value::String(args)) = call.pointer_mut("/function/arguments") {
                json_string_texts(args, slot, f);
            }
        }
    }
}

/// Tool descriptions (chat's `function.description`, Anthropic's and
/// Responses' `description`): text the provider reads like a system prompt.
fn tool_texts(tools: &mut Value, f: &mut dyn FnMut(Slot, &mut String)) {
    let Value::Array(tools) = tools else { return };
    let slot = Slot { role: Role::System, turn: None };
    for t in tools {
        if let Some(Value::String(s)) = t.get_mut("description") {
            f(slot, s);
        }
        if let Some(Value::String(s)) = t.pointer_mut("/function/description") {
            f(slot, s);
        }
    }
}

/// A content value: a string, or parts and blocks whose `text` is text, a
/// tool result's nested `content`, a tool use's `input` (every string), a
/// text document's `data` and a thinking block's `thinking`.
fn content_texts(content: &mut Value, slot: Slot, f: &mut dyn FnMut(Slot, &mut String)) {
    match content {
        Value::String(s) => f(slot, s),
        Value::Array(parts) => {
            for p in parts {
                block_texts(p, slot, f);
            }
        }
        _ => {}
    }
}

fn block_texts(block: &mut Value, slot: Slot, f: &mut dyn FnMut(Slot, &mut String)) {
    let Some(obj) = block.as_object_mut() else { return };
    if let Some(Value::String(s)) = obj.get_mut("text") {
        return f(slot, s);
    }
    match obj.get("type").and_then(Value::as_str) {
        Some("tool_result") => {
            if let Some(inner) = obj.get_mut("content") {
                content_texts(inner, Slot { role: Role::Other, ..slot }, f);
            }
        }
        Some("tool_use") => {
            if let Some(input) = obj.get_mut("input") {
                string_leaves(input, slot, f);
            }
        }
        Some("thinking") => {
            if let Some(Value::String(s)) = obj.get_mut("thinking") {
                f(slot, s);
            }
        }
        Some("document") => {
            let source = obj.get_mut("source").and_then(Value::as_object_mut);
            if let Some(source) = source.filter(|s| s.get("type").and_then(Value::as_str) == Some("text")) {
                if let Some(Value::String(s)) = source.get_mut("data") {
                    f(slot, s);
                }
            }
        }
        _ => {}
    }
}

/// Every string in `v` (values, not keys).
fn string_leaves(v: &mut Value, slot: Slot, f: &mut dyn FnMut(Slot, &mut String)) {
    match v {
        Value::String(s) => f(slot, s),
        Value::Array(a) => a.iter_mut().for_each(|x| string_leaves(x, slot, f)),
        Value::Object(o) => o.values_mut().for_each(|x| string_leaves(x, slot, f)),
        _ => {}
    }
}

/// Tool call arguments: JSON inside a JSON string. Its string values are the
/// texts, so a rewrite keeps the arguments valid JSON; arguments that are not
/// JSON are one text.
fn json_string_texts(args: &mut String, slot: Slot, f: &mut dyn FnMut(Slot, &mut String)) {
    let Ok(mut parsed) = serde_json::from_str::<Value>(args) else {
        return f(slot, args);
    };
    let mut changed = false;
    string_leaves(&mut parsed, slot, &mut |slot, s| {
        let before = s.clone();
        f(slot, s);
        changed |= *s != before;
    });
    if changed {
        if let Ok(out) = serde_json::to_string(&parsed) {
            *args = out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn texts(format: Format, mut body: Value) -> Vec<(Role, Option<usize>, String)> {
        let mut out = Vec::new();
        for_each_text(format, &mut body, &mut |slot, s| out.push((slot.role, slot.turn, s.clone())));
        out
    }

    #[test]
    fn chat_strings_and_parts() {
        let body = json!({"messages": [
            {"role": "system", "content": "be nice"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {}}]},
            {"role": "assistant", "content": null, "tool_calls": []},
            {"role": "tool", "content": "42"}
        ]});
        assert_eq!(
            texts(Format::OpenAiChat, body),
            vec![
                (Role::System, Some(0), "be nice".into()),
                (Role::User, Some(1), "hi".into()),
                (Role::Other, Some(3), "42".into())
            ]
        );
    }

    #[test]
    fn messages_system_blocks_and_tool_results() {
        let body = json!({"system": [{"type": "text", "text": "sys"}], "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "out"},
                                         {"type": "text", "text": "q"}]}
        ]});
        assert_eq!(
            texts(Format::AnthropicMessages, body),
            vec![
                (Role::System, None, "sys".into()),
                (Role::Other, Some(0), "out".into()),
                (Role::User, Some(0), "q".into())
            ]
        );
    }

    #[test]
    fn responses_instructions_input_and_outputs() {
        let body = json!({"instructions": "sys", "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "q"}]},
            {"type": "function_call_output", "call_id": "c", "output": "res"}
        ]});
        assert_eq!(
            texts(Format::OpenAiResponses, body),
            vec![
                (Role::System, None, "sys".into()),
                (Role::User, Some(0), "q".into()),
                (Role::Other, Some(1), "res".into())
            ]
        );
        assert_eq!(
            texts(Format::OpenAiResponses, json!({"input": "hello"})),
            vec![(Role::User, Some(0), "hello".into())]
        );
    }

    #[test]
    fn chat_tool_call_arguments_and_tool_descriptions() {
        let body = json!({"tools": [{"type": "function", "function": {"name": "f", "description": "desc"}}],
            "messages": [{"role": "assistant", "content": null, "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{\"to\":\"a@x.io\",\"n\":[\"b\"]}"}}]}]});
        assert_eq!(
            texts(Format::OpenAiChat, body),
            vec![
                (Role::System, None, "desc".into()),
                (Role::Assistant, Some(0), "b".into()),
                (Role::Assistant, Some(0), "a@x.io".into())
            ]
        );
    }

    #[test]
    fn arguments_stay_valid_json_when_rewritten_and_non_json_arguments_are_one_text() {
        let mut body = json!({"messages": [{"role": "assistant", "tool_calls": [
            {"function": {"name": "f", "arguments": "{\"to\":\"a\\\"b\"}"}},
            {"function": {"name": "g", "arguments": "not json"}}]}]});
        for_each_text(Format::OpenAiChat, &mut body, &mut |_, s| *s = format!("<{s}>"));
        let args = body["messages"][0]["tool_calls"][0]["function"]["arguments"].as_str().unwrap();
        assert_eq!(serde_json::from_str::<Value>(args).unwrap(), json!({"to": "<a\"b>"}));
        assert_eq!(body["messages"][0]["tool_calls"][1]["function"]["arguments"], "<not json>");
    }

    #[test]
    fn messages_tool_use_inputs_documents_thinking_and_tool_descriptions() {
        let body = json!({"tools": [{"name": "f", "description": "desc", "input_schema": {}}], "messages": [
            {"role": "user", "content": [{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}},
                                         {"type": "document", "source": {"type": "base64", "data": "QUJD"}}]},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"},
                                              {"type": "tool_use", "id": "t", "name": "f", "input": {"q": "x", "o": {"k": ["y"]}, "n": 1}}]}
        ]});
        assert_eq!(
            texts(Format::AnthropicMessages, body),
            vec![
                (Role::System, None, "desc".into()),
                (Role::User, Some(0), "doc".into()),
                (Role::Assistant, Some(1), "hmm".into()),
                (Role::Assistant, Some(1), "y".into()),
                (Role::Assistant, Some(1), "x".into())
            ]
        );
    }

    #[test]
    fn responses_function_call_arguments_array_outputs_and_tool_descriptions() {
        let body = json!({"tools": [{"type": "function", "name": "f", "description": "desc"}], "input": [
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{\"q\":\"x\"}"},
            {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_text", "text": "res"}]}
        ]});
        assert_eq!(
            texts(Format::OpenAiResponses, body),
            vec![
                (Role::System, None, "desc".into()),
                (Role::Assistant, Some(0), "x".into()),
                (Role::Other, Some(1), "res".into())
            ]
        );
    }

    #[test]
    fn texts_are_rewritten_in_place() {
        let mut body = json!({"messages": [{"role": "user", "content": "a"}]});
        for_each_text(Format::OpenAiChat, &mut body, &mut |_, s| s.push('!'));
        assert_eq!(body["messages"][0]["content"], "a!");
        assert_eq!(turns(Format::OpenAiChat, &body), 1);
    }
}

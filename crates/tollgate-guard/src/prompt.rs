//! The texts of a request in its caller's format, read and rewritten in
//! place: OpenAI chat completions (`messages[].content`, a string or text
//! parts), Anthropic Messages (`system`, `messages[].content` strings, text
//! blocks and tool results) and OpenAI Responses (`instructions`, `input` as
//! a string or items with text content, function call outputs). Guards work
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

/// One message or input item: its `content` (or a function call's `output`).
fn message_texts(m: &mut Value, turn: usize, f: &mut dyn FnMut(Slot, &mut String)) {
    let Some(obj) = m.as_object_mut() else { return };
    let role = Role::of(obj.get("role").and_then(Value::as_str));
    let slot = Slot { role, turn: Some(turn) };
    if let Some(content) = obj.get_mut("content") {
        content_texts(content, slot, f);
    }
    if let Some(Value::String(s)) = obj.get_mut("output") {
        f(Slot { role: Role::Other, turn: Some(turn) }, s);
    }
}

/// A content value: a string, or parts and blocks whose `text` (or a tool
/// result's nested `content`) is text.
fn content_texts(content: &mut Value, slot: Slot, f: &mut dyn FnMut(Slot, &mut String)) {
    match content {
        Value::String(s) => f(slot, s),
        Value::Array(parts) => {
            for p in parts {
                let Some(obj) = p.as_object_mut() else { continue };
                if let Some(Value::String(s)) = obj.get_mut("text") {
                    f(slot, s);
                } else if obj.get("type").and_then(Value::as_str) == Some("tool_result") {
                    if let Some(inner) = obj.get_mut("content") {
                        content_texts(inner, Slot { role: Role::Other, ..slot }, f);
                    }
                }
            }
        }
        _ => {}
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
    fn texts_are_rewritten_in_place() {
        let mut body = json!({"messages": [{"role": "user", "content": "a"}]});
        for_each_text(Format::OpenAiChat, &mut body, &mut |_, s| s.push('!'));
        assert_eq!(body["messages"][0]["content"], "a!");
        assert_eq!(turns(Format::OpenAiChat, &body), 1);
    }
}

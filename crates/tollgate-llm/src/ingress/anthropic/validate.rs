//! The checks Anthropic makes of a Messages request, made at the edge with
//! errors worded as Anthropic words them: a dotted path to the field
//! (`messages.1.content.0.type`), then what is wrong with it. A request
//! Anthropic would refuse is refused before it costs a round trip; what only
//! a newer API knows (block and tool types added later) is let through, for
//! Anthropic targets to judge, and refused by name only when it must be
//! translated (see `chat.rs`).

use std::fmt;

use serde_json::{Map, Value};

use crate::LlmError;

/// A field's path, built only when an error names it.
#[derive(Clone, Copy)]
pub(crate) struct At<'a> {
    parent: Option<&'a At<'a>>,
    seg: Seg<'a>,
}

#[derive(Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

impl<'a> At<'a> {
    pub(crate) const fn root(key: &'a str) -> At<'a> {
        At { parent: None, seg: Seg::Key(key) }
    }

    pub(crate) fn key(&'a self, key: &'a str) -> At<'a> {
        At { parent: Some(self), seg: Seg::Key(key) }
    }

    pub(crate) fn idx(&'a self, i: usize) -> At<'a> {
        At { parent: Some(self), seg: Seg::Index(i) }
    }

    /// A 400 naming this field.
    pub(crate) fn error(&self, what: impl fmt::Display) -> LlmError {
        LlmError::invalid_request(format!("{self}: {what}"))
    }
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.parent {
            write!(f, "{p}.")?;
        }
        match self.seg {
            Seg::Key(k) => f.write_str(k),
            Seg::Index(i) => write!(f, "{i}"),
        }
    }
}

const REQUIRED: &str = "Field required";
const STRING: &str = "Input should be a valid string";
const OBJECT: &str = "Input should be a valid dictionary";
const LIST: &str = "Input should be a valid list";
const BOOL: &str = "Input should be a valid boolean";
const INT: &str = "Input should be a valid integer";
const NUMBER: &str = "Input should be a valid number";

fn object<'v>(at: &At<'_>, v: &'v Value) -> Result<&'v Map<String, Value>, LlmError> {
    v.as_object().ok_or_else(|| at.error(OBJECT))
}

/// A required string member.
fn string<'v>(at: &At<'_>, obj: &'v Map<String, Value>, name: &str) -> Result<&'v str, LlmError> {
    match obj.get(name) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(at.key(name).error(REQUIRED)),
        Some(_) => Err(at.key(name).error(STRING)),
    }
}

/// An optional string member.
fn opt_string(at: &At<'_>, obj: &Map<String, Value>, name: &str) -> Result<(), LlmError> {
    match obj.get(name) {
        None | Some(Value::Null | Value::String(_)) => Ok(()),
        Some(_) => Err(at.key(name).error(STRING)),
    }
}

fn opt_bool(at: &At<'_>, obj: &Map<String, Value>, name: &str) -> Result<(), LlmError> {
    match obj.get(name) {
        None | Some(Value::Null | Value::Bool(_)) => Ok(()),
        Some(_) => Err(at.key(name).error(BOOL)),
    }
}

/// A required object member.
fn member_object<'v>(at: &At<'_>, obj: &'v Map<String, Value>, name: &str) -> Result<&'v Map<String, Value>, LlmError> {
    match obj.get(name) {
        None | Some(Value::Null) => Err(at.key(name).error(REQUIRED)),
        Some(v) => object(&at.key(name), v),
    }
}

/// An integer of at least `min`.
fn integer(at: &At<'_>, v: &Value, min: u64) -> Result<u64, LlmError> {
    let Some(n) = v.as_u64() else {
        // A negative integer reads as a range error, as Anthropic reports it.
        if v.as_i64().is_some() {
            return Err(at.error(format_args!("Input should be greater than or equal to {min}")));
        }
        return Err(at.error(INT));
    };
    if n < min {
        return Err(at.error(format_args!("Input should be greater than or equal to {min}")));
    }
    Ok(n)
}

/// A number from `lo` to `hi`.
fn number(at: &At<'_>, v: &Value, lo: f64, hi: f64) -> Result<(), LlmError> {
    let n = v.as_f64().ok_or_else(|| at.error(NUMBER))?;
    if n < lo {
        return Err(at.error(format_args!("Input should be greater than or equal to {lo}")));
    }
    if n > hi {
        return Err(at.error(format_args!("Input should be less than or equal to {hi}")));
    }
    Ok(())
}

/// A `cache_control` member, where one is set.
fn cache_control(at: &At<'_>, obj: &Map<String, Value>) -> Result<(), LlmError> {
    match obj.get("cache_control").filter(|v| !v.is_null()) {
        Some(cc) => cache_control_value(&at.key("cache_control"), cc),
        None => Ok(()),
    }
}

/// `{"type": "ephemeral"}`, with a `ttl` Anthropic checks.
fn cache_control_value(at: &At<'_>, cc: &Value) -> Result<(), LlmError> {
    let cc = object(at, cc)?;
    match string(at, cc, "type")? {
        "ephemeral" => Ok(()),
        _ => Err(at.key("type").error("Input should be 'ephemeral'")),
    }
}

/// Checks a whole request. `count_tokens` requests carry no `max_tokens`.
pub(crate) fn request(body: &Map<String, Value>, count_tokens: bool) -> Result<(), LlmError> {
    match body.get("model") {
        None | Some(Value::Null | Value::String(_)) => {}
        Some(_) => return Err(At::root("model").error(STRING)),
    }
    if !count_tokens {
        match body.get("max_tokens") {
            None | Some(Value::Null) => return Err(At::root("max_tokens").error(REQUIRED)),
            Some(v) => integer(&At::root("max_tokens"), v, 1)?,
        };
    }
    messages(body.get("messages"))?;
    system(body.get("system"))?;
    match body.get("stream") {
        None | Some(Value::Null | Value::Bool(_)) => {}
        Some(_) => return Err(At::root("stream").error(BOOL)),
    }
    tools(body.get("tools"))?;
    tool_choice(body.get("tool_choice"))?;
    if let Some(stop) = body.get("stop_sequences").filter(|v| !v.is_null()) {
        let at = At::root("stop_sequences");
        let list = stop.as_array().ok_or_else(|| at.error(LIST))?;
        for (i, s) in list.iter().enumerate() {
            if !s.is_string() {
                return Err(at.idx(i).error(STRING));
            }
        }
    }
    for (name, hi) in [("temperature", 1.0), ("top_p", 1.0)] {
        if let Some(v) = body.get(name).filter(|v| !v.is_null()) {
            number(&At::root(name), v, 0.0, hi)?;
        }
    }
    if let Some(v) = body.get("top_k").filter(|v| !v.is_null()) {
        integer(&At::root("top_k"), v, 0)?;
    }
    thinking(body.get("thinking"))?;
    if let Some(m) = body.get("metadata").filter(|v| !v.is_null()) {
        let at = At::root("metadata");
        opt_string(&at, object(&at, m)?, "user_id")?;
    }
    output_config(body.get("output_config"))?;
    match body.get("cache_control").filter(|v| !v.is_null()) {
        Some(cc) => cache_control_value(&At::root("cache_control"), cc),
        None => Ok(()),
    }
}

fn messages(v: Option<&Value>) -> Result<(), LlmError> {
    let at = At::root("messages");
    let list = match v {
        None | Some(Value::Null) => return Err(at.error(REQUIRED)),
        Some(Value::Array(l)) => l,
        Some(_) => return Err(at.error(LIST)),
    };
    if list.is_empty() {
        return Err(at.error("at least one message is required"));
    }
    for (i, m) in list.iter().enumerate() {
        let at = at.idx(i);
        let m = object(&at, m)?;
        match string(&at, m, "role")? {
            "user" | "assistant" => {}
            _ => return Err(at.key("role").error("Input should be 'user' or 'assistant'")),
        }
        let cat = at.key("content");
        match m.get("content") {
            None | Some(Value::Null) => return Err(cat.error(REQUIRED)),
            Some(Value::String(_)) => {}
            Some(Value::Array(blocks)) => {
                for (j, b) in blocks.iter().enumerate() {
                    block(&cat.idx(j), b)?;
                }
            }
            Some(_) => return Err(cat.error("Input should be a valid string or a list of content blocks")),
        }
    }
    Ok(())
}

/// A content block of a message (or of a tool result). Types this gateway
/// does not translate are left for Anthropic to judge.
pub(crate) fn block(at: &At<'_>, b: &Value) -> Result<(), LlmError> {
    let b = object(at, b)?;
    let kind = string(at, b, "type")?;
    cache_control(at, b)?;
    match kind {
        "text" => {
            string(at, b, "text")?;
        }
        "image" => {
            let sat = at.key("source");
            let source = member_object(at, b, "source")?;
            match string(&sat, source, "type")? {
                "base64" => {
                    string(&sat, source, "media_type")?;
                    string(&sat, source, "data")?;
                }
                "url" => {
                    string(&sat, source, "url")?;
                }
                "file" => {
                    string(&sat, source, "file_id")?;
                }
                _ => return Err(sat.key("type").error("Input should be 'base64', 'url' or 'file'")),
            }
        }
        "document" => {
            let sat = at.key("source");
            let source = member_object(at, b, "source")?;
            match string(&sat, source, "type")? {
                "base64" => {
                    string(&sat, source, "media_type")?;
                    string(&sat, source, "data")?;
                }
                "text" => {
                    opt_string(&sat, source, "media_type")?;
                    string(&sat, source, "data")?;
                }
                "url" => {
                    string(&sat, source, "url")?;
                }
                "content" => match source.get("content") {
                    Some(Value::String(_)) => {}
                    Some(Value::Array(blocks)) => {
                        let cat = sat.key("content");
                        for (k, inner) in blocks.iter().enumerate() {
                            block(&cat.idx(k), inner)?;
                        }
                    }
                    None | Some(Value::Null) => return Err(sat.key("content").error(REQUIRED)),
                    Some(_) => {
                        return Err(sat
                            .key("content")
                            .error("Input should be a valid string or a list of content blocks"))
                    }
                },
                "file" => {
                    string(&sat, source, "file_id")?;
                }
                _ => return Err(sat.key("type").error("Input should be 'base64', 'text', 'url', 'content' or 'file'")),
            }
            opt_string(at, b, "title")?;
            opt_string(at, b, "context")?;
        }
        "tool_result" => {
            string(at, b, "tool_use_id")?;
            opt_bool(at, b, "is_error")?;
            let cat = at.key("content");
            match b.get("content") {
                None | Some(Value::Null | Value::String(_)) => {}
                Some(Value::Array(blocks)) => {
                    for (k, inner) in blocks.iter().enumerate() {
                        block(&cat.idx(k), inner)?;
                    }
                }
                Some(_) => return Err(cat.error("Input should be a valid string or a list of content blocks")),
            }
        }
        "tool_use" => {
            string(at, b, "id")?;
            string(at, b, "name")?;
            member_object(at, b, "input")?;
        }
        "thinking" => {
            string(at, b, "thinking")?;
            opt_string(at, b, "signature")?;
        }
        "redacted_thinking" => {
            string(at, b, "data")?;
        }
        _ => {}
    }
    Ok(())
}

fn system(v: Option<&Value>) -> Result<(), LlmError> {
    let at = At::root("system");
    match v {
        None | Some(Value::Null | Value::String(_)) => Ok(()),
        Some(Value::Array(blocks)) => {
            for (i, b) in blocks.iter().enumerate() {
                let at = at.idx(i);
                let obj = object(&at, b)?;
                if string(&at, obj, "type")? != "text" {
                    return Err(at.key("type").error("Input should be 'text'"));
                }
                block(&at, b)?;
            }
            Ok(())
        }
        Some(_) => Err(at.error("Input should be a valid string or a list of text blocks")),
    }
}

fn tools(v: Option<&Value>) -> Result<(), LlmError> {
    let at = At::root("tools");
    let list = match v {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(l)) => l,
        Some(_) => return Err(at.error(LIST)),
    };
    for (i, t) in list.iter().enumerate() {
        let at = at.idx(i);
        let t = object(&at, t)?;
        cache_control(&at, t)?;
        match t.get("type") {
            None | Some(Value::Null) => {}
            Some(Value::String(kind)) if kind == "custom" => {}
            // A server tool (web search, code execution...) or a client tool
            // whose schema Anthropic defines (bash, text editor, computer):
            // Anthropic checks its fields.
            Some(Value::String(_)) => {
                string(&at, t, "name")?;
                continue;
            }
            Some(_) => return Err(at.key("type").error(STRING)),
        }
        if string(&at, t, "name")?.is_empty() {
            return Err(at.key("name").error("String should have at least 1 character"));
        }
        opt_string(&at, t, "description")?;
        member_object(&at, t, "input_schema")?;
    }
    Ok(())
}

fn tool_choice(v: Option<&Value>) -> Result<(), LlmError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let at = At::root("tool_choice");
    let c = object(&at, v)?;
    match string(&at, c, "type")? {
        "auto" | "any" | "none" => {}
        "tool" => {
            string(&at, c, "name")?;
        }
        _ => return Err(at.key("type").error("Input should be 'auto', 'any', 'tool' or 'none'")),
    }
    opt_bool(&at, c, "disable_parallel_tool_use")
}

fn thinking(v: Option<&Value>) -> Result<(), LlmError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let at = At::root("thinking");
    let t = object(&at, v)?;
    match string(&at, t, "type")? {
        "enabled" => {
            // Not checked against `max_tokens`: with interleaved thinking
            // (a beta Claude Code uses) the budget may exceed it.
            let bat = at.key("budget_tokens");
            match t.get("budget_tokens") {
                None | Some(Value::Null) => return Err(bat.error(REQUIRED)),
                Some(b) => integer(&bat, b, 1024)?,
            };
        }
        "disabled" | "adaptive" | "between_tools" => {}
        _ => return Err(at.key("type").error("Input should be 'enabled', 'disabled' or 'adaptive'")),
    }
    match t.get("display") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s == "summarized" || s == "omitted" => Ok(()),
        Some(_) => Err(at.key("display").error("Input should be 'summarized' or 'omitted'")),
    }
}

/// Effort levels of `output_config.effort`.
pub(crate) const EFFORTS: &[&str] = &["low", "medium", "high", "xhigh", "max"];

fn output_config(v: Option<&Value>) -> Result<(), LlmError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let at = At::root("output_config");
    let c = object(&at, v)?;
    match c.get("effort") {
        None | Some(Value::Null) => {}
        Some(Value::String(e)) if EFFORTS.contains(&e.as_str()) => {}
        Some(_) => return Err(at.key("effort").error("Input should be 'low', 'medium', 'high', 'xhigh' or 'max'")),
    }
    if let Some(f) = c.get("format").filter(|v| !v.is_null()) {
        let fat = at.key("format");
        let f = object(&fat, f)?;
        if string(&fat, f, "type")? != "json_schema" {
            return Err(fat.key("type").error("Input should be 'json_schema'"));
        }
        member_object(&fat, f, "schema")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_as_anthropic_prints_them() {
        let root = At::root("messages");
        let m = root.idx(1);
        let c = m.key("content");
        let b = c.idx(0);
        assert_eq!(b.key("type").to_string(), "messages.1.content.0.type");
        assert_eq!(b.key("type").error("Field required").message, "messages.1.content.0.type: Field required");
    }
}

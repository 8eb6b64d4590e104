//! The Responses request as callers send it: checked at the edge (every
//! field a 400 can name), kept byte for byte for OpenAI targets, and read for
//! the facts the gateway needs (stream, model, limits, a token estimate, the
//! fields a Response repeats).

use serde_json::{Map, Value};

use crate::ingress::splice::set_member;
use crate::request::resolve_model;
use crate::{LlmError, ModelDefaults};

/// A Responses request (`POST /v1/responses`), checked.
#[derive(Debug, Clone)]
pub struct ResponsesRequest {
    /// The caller's bytes, sent on unchanged (but for the model) to OpenAI.
    body: Vec<u8>,
    /// The same, parsed.
    json: Map<String, Value>,
}

/// Roles a message item may carry.
const ROLES: &[&str] = &["user", "assistant", "system", "developer"];

/// `reasoning.effort` values OpenAI accepts.
pub(super) const EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh", "max"];

/// Request fields a Response object repeats.
const ECHOED: &[&str] = &[
    "background",
    "instructions",
    "max_output_tokens",
    "max_tool_calls",
    "metadata",
    "parallel_tool_calls",
    "previous_response_id",
    "prompt_cache_key",
    "reasoning",
    "safety_identifier",
    "service_tier",
    "store",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "truncation",
    "user",
];

/// What an image part is assumed to cost (OpenAI's low-detail tile).
const PER_IMAGE: u64 = 85;
/// Framing per input item, and reply priming (as for chat messages).
const PER_ITEM: u64 = 3;
const REPLY_PRIMING: u64 = 3;

pub(super) fn bad(message: impl Into<String>) -> LlmError {
    LlmError::invalid_request(message)
}

impl ResponsesRequest {
    /// Parses and checks a Responses request body. Shapes are checked for
    /// what tollgate reads; item and tool types it does not know pass (OpenAI
    /// targets judge them, other targets refuse them in `to_chat`).
    pub fn parse(body: &[u8]) -> Result<Self, LlmError> {
        if body.is_empty() {
            return Err(bad("request body is empty; expected a JSON Responses request"));
        }
        let value: Value =
            serde_json::from_slice(body).map_err(|e| bad(format!("request body is not valid JSON: {e}")))?;
        let Value::Object(json) = value else {
            return Err(bad("request body must be a JSON object"));
        };
        check(&json)?;
        Ok(ResponsesRequest { body: body.to_vec(), json })
    }

    /// The caller's bytes (its own key removed, if it sent one in the body).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The request as parsed.
    pub(super) fn json(&self) -> &Map<String, Value> {
        &self.json
    }

    /// Removes a top-level field (a caller key sent in the body, `key_in_body`).
    pub fn remove_field(&mut self, name: &str) {
        if self.json.remove(name).is_none() {
            return;
        }
        if let Ok(b) = crate::ingress::splice::remove_member(&self.body, name) {
            self.body = b;
        }
    }

    pub fn is_stream(&self) -> bool {
        self.json.get("stream").and_then(Value::as_bool) == Some(true)
    }

    /// The caller's output limit (`max_output_tokens`), reasoning included.
    pub fn max_output_tokens(&self) -> Option<u64> {
        self.json.get("max_output_tokens").and_then(Value::as_u64)
    }

    /// The model the caller named, if any.
    pub fn model(&self) -> Option<&str> {
        self.json.get("model").and_then(Value::as_str)
    }

    /// Prompt tokens by the o200k tokenizer: instructions, the text of every
    /// input item, tool definitions; images at a flat rate.
    pub fn prompt_estimate(&self) -> u64 {
        let mut text = String::new();
        let mut images = 0u64;
        let mut items = 0u64;
        if let Some(Value::String(s)) = self.json.get("instructions") {
            push(&mut text, s);
        }
        match self.json.get("input") {
            Some(Value::String(s)) => {
                items += 1;
                push(&mut text, s);
            }
            Some(Value::Array(list)) => {
                for item in list {
                    items += 1;
                    estimate_item(item, &mut text, &mut images);
                }
            }
            _ => {}
        }
        if let Some(tools) = self.json.get("tools").filter(|t| !t.is_null()) {
            push(&mut text, &tools.to_string());
        }
        crate::tokens::count_text(&text) + images * PER_IMAGE + items * PER_ITEM + REPLY_PRIMING
    }

    /// The request fields a Response object repeats, as the caller set them
    /// (the renderers supply the API's defaults for the others).
    pub fn echo(&self) -> Map<String, Value> {
        ECHOED.iter().filter_map(|k| self.json.get(*k).map(|v| ((*k).to_string(), v.clone()))).collect()
    }

    /// The body for an OpenAI target: the caller's bytes with the model (and
    /// absent option defaults, and `extra` fields) set; and the model. Every
    /// other byte is the caller's: a request naming the pinned model, with no
    /// default to add, goes out identical.
    pub fn native_body(&self, defaults: &ModelDefaults, extra: &[(&str, &str)]) -> Result<(Vec<u8>, String), LlmError> {
        let model = resolve_model(self.model(), defaults)?;
        let mut body = if self.model() == Some(model.as_str()) {
            self.body.clone()
        } else {
            set_member(&self.body, "model", &json_string(&model))?
        };
        let absent = |name: &str| !self.json.contains_key(name);
        if let Some(max) = defaults.max_tokens.filter(|_| absent("max_output_tokens")) {
            body = set_member(&body, "max_output_tokens", &max.to_string())?;
        }
        if let Some(t) = defaults.temperature.filter(|_| absent("temperature")) {
            body = set_member(&body, "temperature", &Value::from(t).to_string())?;
        }
        if let Some(p) = defaults.top_p.filter(|_| absent("top_p")) {
            body = set_member(&body, "top_p", &Value::from(p).to_string())?;
        }
        for (k, v) in extra {
            body = set_member(&body, k, &json_string(v))?;
        }
        Ok((body, model))
    }
}

fn json_string(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    crate::stream::json_str(&mut out, s);
    String::from_utf8(out).unwrap_or_default()
}

fn push(buf: &mut String, s: &str) {
    if !buf.is_empty() {
        buf.push('\n');
    }
    buf.push_str(s);
}

/// The text an input item puts before the model, and its images.
fn estimate_item(item: &Value, text: &mut String, images: &mut u64) {
    let field = |name| item.get(name).and_then(Value::as_str);
    match item.get("content").or_else(|| item.get("output")) {
        Some(Value::String(s)) => push(text, s),
        Some(Value::Array(parts)) => {
            for p in parts {
                match p.get("type").and_then(Value::as_str) {
                    Some("input_image") => *images += 1,
                    _ => {
                        for key in ["text", "refusal"] {
                            if let Some(t) = p.get(key).and_then(Value::as_str) {
                                push(text, t);
                            }
                        }
                    }
                }
            }
        }
        _ => {}
    }
    for key in ["name", "arguments"] {
        if let Some(s) = field(key) {
            push(text, s);
        }
    }
    if let Some(Value::Array(summary)) = item.get("summary") {
        for s in summary {
            if let Some(t) = s.get("text").and_then(Value::as_str) {
                push(text, t);
            }
        }
    }
}

/// The type of an input item: its `type`, else a message when it has a role
/// or a reference when it has only an id (both may omit the type).
pub(super) fn item_type(i: usize, item: &Map<String, Value>) -> Result<&str, LlmError> {
    match item.get("type") {
        Some(Value::String(t)) => Ok(t),
        None | Some(Value::Null) if item.contains_key("role") => Ok("message"),
        None | Some(Value::Null) if item.contains_key("id") => Ok("item_reference"),
        None | Some(Value::Null) => Err(bad(format!("input[{i}].type is required"))),
        Some(_) => Err(bad(format!("input[{i}].type must be a string"))),
    }
}

fn check(b: &Map<String, Value>) -> Result<(), LlmError> {
    for name in [
        "model",
        "instructions",
        "previous_response_id",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "service_tier",
    ] {
        check_type(b, name, Value::is_string, "a string")?;
    }
    for name in ["stream", "store", "parallel_tool_calls", "background"] {
        check_type(b, name, Value::is_boolean, "a boolean")?;
    }
    for name in ["metadata", "stream_options"] {
        check_type(b, name, Value::is_object, "an object")?;
    }
    check_int(b, "max_output_tokens", 1, 1 << 32)?;
    check_int(b, "max_tool_calls", 0, 1 << 32)?;
    check_int(b, "top_logprobs", 0, 20)?;
    check_float(b, "temperature", 0.0, 2.0)?;
    check_float(b, "top_p", 0.0, 1.0)?;
    if let Some(v) = b.get("include").filter(|v| !v.is_null()) {
        if !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
            return Err(bad("'include' must be an array of strings"));
        }
    }
    check_enum(b.get("truncation"), "'truncation'", &["auto", "disabled"])?;
    match b.get("input") {
        None | Some(Value::Null) => {
            let stateful = ["previous_response_id", "conversation", "prompt"]
                .iter()
                .any(|k| b.get(*k).is_some_and(|v| !v.is_null()));
            if !stateful {
                return Err(bad("'input' is required: a string or an array of input items"));
            }
        }
        Some(Value::String(_)) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                check_item(i, item)?;
            }
        }
        Some(_) => return Err(bad("'input' must be a string or an array of input items")),
    }
    check_tools(b.get("tools"))?;
    check_tool_choice(b.get("tool_choice"))?;
    check_text(b.get("text"))?;
    check_reasoning(b.get("reasoning"))
}

fn check_type(b: &Map<String, Value>, name: &str, ok: fn(&Value) -> bool, what: &str) -> Result<(), LlmError> {
    match b.get(name) {
        Some(v) if !v.is_null() && !ok(v) => Err(bad(format!("'{name}' must be {what}"))),
        _ => Ok(()),
    }
}

fn check_int(b: &Map<String, Value>, name: &str, lo: u64, hi: u64) -> Result<(), LlmError> {
    match b.get(name) {
        None | Some(Value::Null) => Ok(()),
        Some(v) if v.as_u64().is_some_and(|n| (lo..=hi).contains(&n)) => Ok(()),
        Some(_) => Err(bad(format!("'{name}' must be an integer from {lo} to {hi}"))),
    }
}

fn check_float(b: &Map<String, Value>, name: &str, lo: f64, hi: f64) -> Result<(), LlmError> {
    match b.get(name) {
        None | Some(Value::Null) => Ok(()),
        Some(v) if v.as_f64().is_some_and(|n| (lo..=hi).contains(&n)) => Ok(()),
        Some(_) => Err(bad(format!("'{name}' must be a number from {lo} to {hi}"))),
    }
}

/// A string among `allowed` (or absent / null); `path` names the field.
fn check_enum(v: Option<&Value>, path: &str, allowed: &[&str]) -> Result<(), LlmError> {
    match v {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        Some(_) => Err(bad(format!("{path} must be one of {}", quoted(allowed)))),
    }
}

pub(super) fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
}

fn required_str<'a>(o: &'a Map<String, Value>, path: &str, name: &str) -> Result<&'a str, LlmError> {
    match o.get(name) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(bad(format!("{path}.{name} is required"))),
        Some(_) => Err(bad(format!("{path}.{name} must be a string"))),
    }
}

fn check_item(i: usize, item: &Value) -> Result<(), LlmError> {
    let path = format!("input[{i}]");
    let Some(o) = item.as_object() else {
        return Err(bad(format!("{path} must be an object (an input item)")));
    };
    match item_type(i, o)? {
        "message" => {
            match o.get("role") {
                Some(Value::String(r)) if ROLES.contains(&r.as_str()) => {}
                None | Some(Value::Null) => return Err(bad(format!("{path}.role is required"))),
                Some(_) => return Err(bad(format!("{path}.role must be one of {}", quoted(ROLES)))),
            }
            match o.get("content") {
                Some(Value::String(_)) => Ok(()),
                Some(Value::Array(parts)) => {
                    for (j, p) in parts.iter().enumerate() {
                        check_part(&format!("{path}.content[{j}]"), p)?;
                    }
                    Ok(())
                }
                None | Some(Value::Null) => Err(bad(format!("{path}.content is required"))),
                Some(_) => Err(bad(format!("{path}.content must be a string or an array of content parts"))),
            }
        }
        "function_call" => {
            for name in ["call_id", "name", "arguments"] {
                required_str(o, &path, name)?;
            }
            Ok(())
        }
        "function_call_output" => {
            if let Some(id) = o.get("call_id").filter(|v| !v.is_null()) {
                if !id.is_string() {
                    return Err(bad(format!("{path}.call_id must be a string")));
                }
            }
            match o.get("output") {
                Some(Value::String(_)) => Ok(()),
                Some(Value::Array(parts)) => {
                    for (j, p) in parts.iter().enumerate() {
                        check_part(&format!("{path}.output[{j}]"), p)?;
                    }
                    Ok(())
                }
                None | Some(Value::Null) => Err(bad(format!("{path}.output is required"))),
                Some(_) => Err(bad(format!("{path}.output must be a string or an array of content parts"))),
            }
        }
        "reasoning" => match o.get("summary") {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Array(parts)) => {
                for (j, p) in parts.iter().enumerate() {
                    if !p.get("text").is_some_and(Value::is_string) {
                        return Err(bad(format!("{path}.summary[{j}].text must be a string")));
                    }
                }
                Ok(())
            }
            Some(_) => Err(bad(format!("{path}.summary must be an array of summary_text parts"))),
        },
        "item_reference" => required_str(o, &path, "id").map(|_| ()),
        // Outputs of OpenAI's hosted tools and newer item types: OpenAI
        // judges them; other targets refuse them by name.
        _ => Ok(()),
    }
}

fn check_part(path: &str, part: &Value) -> Result<(), LlmError> {
    let Some(p) = part.as_object() else {
        return Err(bad(format!("{path} must be an object (a content part)")));
    };
    let kind = match p.get("type") {
        Some(Value::String(t)) => t.as_str(),
        None | Some(Value::Null) => return Err(bad(format!("{path}.type is required"))),
        Some(_) => return Err(bad(format!("{path}.type must be a string"))),
    };
    let has = |name: &str| p.get(name).is_some_and(Value::is_string);
    match kind {
        "input_text" | "output_text" => required_str(p, path, "text").map(|_| ()),
        "refusal" => required_str(p, path, "refusal").map(|_| ()),
        "input_image" if !has("image_url") && !has("file_id") => {
            Err(bad(format!("{path} needs an image_url (a URL or a data: URI) or a file_id")))
        }
        "input_file" if !has("file_data") && !has("file_id") && !has("file_url") => {
            Err(bad(format!("{path} needs file_data, file_url or a file_id")))
        }
        _ => Ok(()),
    }
}

fn check_tools(v: Option<&Value>) -> Result<(), LlmError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let list = v.as_array().ok_or_else(|| bad("'tools' must be an array"))?;
    for (i, t) in list.iter().enumerate() {
        let path = format!("tools[{i}]");
        let o = t.as_object().ok_or_else(|| bad(format!("{path} must be an object")))?;
        if required_str(o, &path, "type")? != "function" {
            continue;
        }
        if required_str(o, &path, "name")?.is_empty() {
            return Err(bad(format!("{path}.name must not be empty")));
        }
        match o.get("parameters") {
            None | Some(Value::Null | Value::Object(_)) => {}
            Some(_) => return Err(bad(format!("{path}.parameters must be a JSON Schema object"))),
        }
        if o.get("description").is_some_and(|d| !d.is_null() && !d.is_string()) {
            return Err(bad(format!("{path}.description must be a string")));
        }
        if o.get("strict").is_some_and(|s| !s.is_null() && !s.is_boolean()) {
            return Err(bad(format!("{path}.strict must be a boolean")));
        }
    }
    Ok(())
}

fn check_tool_choice(v: Option<&Value>) -> Result<(), LlmError> {
    match v {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(_)) => check_enum(v, "'tool_choice'", &["auto", "none", "required"]),
        Some(Value::Object(o)) => match required_str(o, "tool_choice", "type")? {
            "function" => required_str(o, "tool_choice", "name").map(|_| ()),
            "allowed_tools" => {
                check_enum(o.get("mode"), "tool_choice.mode", &["auto", "required"])?;
                if !o.get("tools").is_some_and(Value::is_array) {
                    return Err(bad("tool_choice.tools must be an array of tools"));
                }
                Ok(())
            }
            _ => Ok(()),
        },
        Some(_) => Err(bad("'tool_choice' must be 'auto', 'none', 'required' or an object naming a tool")),
    }
}

fn check_text(v: Option<&Value>) -> Result<(), LlmError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let o = v.as_object().ok_or_else(|| bad("'text' must be an object"))?;
    check_enum(o.get("verbosity"), "text.verbosity", &["low", "medium", "high"])?;
    let Some(format) = o.get("format").filter(|f| !f.is_null()) else {
        return Ok(());
    };
    let f = format.as_object().ok_or_else(|| bad("text.format must be an object"))?;
    match required_str(f, "text.format", "type")? {
        "text" | "json_object" => Ok(()),
        "json_schema" => {
            required_str(f, "text.format", "name")?;
            if !f.get("schema").is_some_and(Value::is_object) {
                return Err(bad("text.format.schema is required: a JSON Schema object"));
            }
            if f.get("strict").is_some_and(|s| !s.is_null() && !s.is_boolean()) {
                return Err(bad("text.format.strict must be a boolean"));
            }
            Ok(())
        }
        other => Err(bad(format!("text.format.type '{other}' is not one of 'text', 'json_object', 'json_schema'"))),
    }
}

fn check_reasoning(v: Option<&Value>) -> Result<(), LlmError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let o = v.as_object().ok_or_else(|| bad("'reasoning' must be an object"))?;
    check_enum(o.get("effort"), "reasoning.effort", EFFORTS)?;
    check_enum(o.get("summary"), "reasoning.summary", &["auto", "concise", "detailed"])?;
    check_enum(o.get("generate_summary"), "reasoning.generate_summary", &["auto", "concise", "detailed"])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<ResponsesRequest, LlmError> {
        ResponsesRequest::parse(body.as_bytes())
    }

    #[test]
    fn accepts_every_documented_input_shape() {
        let r = parse(
            r#"{"model":"gpt-4.1","instructions":"be brief","stream":true,"store":false,
              "input":[
                {"role":"user","content":"hi"},
                {"type":"message","role":"developer","content":[{"type":"input_text","text":"no jokes"}]},
                {"type":"message","role":"user","content":[
                    {"type":"input_text","text":"what is this?"},
                    {"type":"input_image","image_url":"data:image/png;base64,iVBORw0KGgo=","detail":"auto"},
                    {"type":"input_image","file_id":"file-1","detail":"low"},
                    {"type":"input_file","file_data":"data:application/pdf;base64,JVBERi0=","filename":"a.pdf"}]},
                {"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"thinking"}],"encrypted_content":"gAAA"},
                {"type":"message","id":"msg_1","role":"assistant","status":"completed",
                 "content":[{"type":"output_text","text":"let me look","annotations":[]},{"type":"refusal","refusal":"no"}]},
                {"type":"function_call","id":"fc_1","call_id":"call_1","name":"look","arguments":"{}"},
                {"type":"function_call_output","call_id":"call_1","output":[{"type":"input_text","text":"a cat"}]},
                {"type":"web_search_call","id":"ws_1","status":"completed"},
                {"id":"msg_0"}],
              "tools":[{"type":"function","name":"look","description":"d","parameters":{"type":"object"},"strict":true},
                       {"type":"web_search"}],
              "tool_choice":{"type":"function","name":"look"},
              "text":{"format":{"type":"json_schema","name":"x","schema":{"type":"object"},"strict":true},"verbosity":"low"},
              "reasoning":{"effort":"high","summary":"auto"},
              "max_output_tokens":100,"temperature":0.5,"top_p":1,"parallel_tool_calls":false,
              "metadata":{"k":"v"},"user":"u","include":["reasoning.encrypted_content"],"truncation":"auto"}"#,
        )
        .expect("valid");
        assert!(r.is_stream());
        assert_eq!(r.model(), Some("gpt-4.1"));
        assert_eq!(r.max_output_tokens(), Some(100));
        assert!(parse(r#"{"input":"hello"}"#).is_ok());
        assert!(parse(r#"{"previous_response_id":"resp_1"}"#).is_ok(), "input may come from server state");
    }

    #[test]
    fn bad_shapes_name_the_field() {
        for (body, want) in [
            ("", "empty"),
            ("[1]", "must be a JSON object"),
            ("{", "not valid JSON"),
            ("{}", "'input' is required"),
            (r#"{"input":5}"#, "'input' must be a string or an array"),
            (r#"{"input":[1]}"#, "input[0] must be an object"),
            (r#"{"input":[{"content":"x"}]}"#, "input[0].type is required"),
            (r#"{"input":[{"role":"tool","content":"x"}]}"#, "input[0].role must be one of"),
            (r#"{"input":[{"role":"user"}]}"#, "input[0].content is required"),
            (r#"{"input":[{"role":"user","content":[{"text":"x"}]}]}"#, "input[0].content[0].type is required"),
            (
                r#"{"input":[{"role":"user","content":[{"type":"input_text"}]}]}"#,
                "input[0].content[0].text is required",
            ),
            (
                r#"{"input":[{"role":"user","content":[{"type":"input_image"}]}]}"#,
                "input[0].content[0] needs an image_url",
            ),
            (r#"{"input":[{"role":"user","content":[{"type":"input_file"}]}]}"#, "input[0].content[0] needs file_data"),
            (r#"{"input":[{"type":"function_call","call_id":"c","name":"f"}]}"#, "input[0].arguments is required"),
            (
                r#"{"input":[{"type":"function_call","call_id":"c","name":"f","arguments":{}}]}"#,
                "input[0].arguments must be a string",
            ),
            (r#"{"input":[{"type":"function_call_output","call_id":"c"}]}"#, "input[0].output is required"),
            (r#"{"input":[{"type":"reasoning","summary":[{"type":"summary_text"}]}]}"#, "input[0].summary[0].text"),
            (r#"{"input":[{"type":"item_reference"}]}"#, "input[0].id is required"),
            (r#"{"input":"x","tools":{}}"#, "'tools' must be an array"),
            (r#"{"input":"x","tools":[{"name":"f"}]}"#, "tools[0].type is required"),
            (r#"{"input":"x","tools":[{"type":"function"}]}"#, "tools[0].name is required"),
            (r#"{"input":"x","tools":[{"type":"function","name":"f","parameters":"x"}]}"#, "tools[0].parameters"),
            (r#"{"input":"x","tool_choice":"always"}"#, "'tool_choice' must be one of"),
            (r#"{"input":"x","tool_choice":{"type":"function"}}"#, "tool_choice.name is required"),
            (r#"{"input":"x","text":{"format":{"type":"yaml"}}}"#, "text.format.type 'yaml'"),
            (r#"{"input":"x","text":{"format":{"type":"json_schema","name":"n"}}}"#, "text.format.schema is required"),
            (r#"{"input":"x","reasoning":{"effort":"extreme"}}"#, "reasoning.effort must be one of"),
            (r#"{"input":"x","max_output_tokens":0}"#, "'max_output_tokens' must be an integer from 1"),
            (r#"{"input":"x","temperature":3}"#, "'temperature' must be a number from 0 to 2"),
            (r#"{"input":"x","top_p":"1"}"#, "'top_p' must be a number"),
            (r#"{"input":"x","stream":"yes"}"#, "'stream' must be a boolean"),
            (r#"{"input":"x","model":7}"#, "'model' must be a string"),
            (r#"{"input":"x","instructions":["a"]}"#, "'instructions' must be a string"),
            (r#"{"input":"x","include":[1]}"#, "'include' must be an array of strings"),
            (r#"{"input":"x","truncation":"maybe"}"#, "'truncation' must be one of"),
        ] {
            let e = parse(body).expect_err(body);
            assert_eq!(e.status, 400);
            assert!(e.message.contains(want), "{body}: {}", e.message);
        }
    }

    #[test]
    fn the_pinned_model_leaves_the_body_byte_identical() {
        let body = r#"{ "model" : "gpt-4.1",  "input":[{"role":"user","content":"model"}],"x": 1.50 }"#;
        let r = parse(body).expect("valid");
        let d = ModelDefaults { name: Some("gpt-4.1".into()), ..ModelDefaults::default() };
        let (out, model) = r.native_body(&d, &[]).expect("native");
        assert_eq!(out, body.as_bytes());
        assert_eq!(model, "gpt-4.1");
    }

    #[test]
    fn native_body_sets_the_model_absent_defaults_and_extras_only() {
        let body = r#"{"input":"hi",  "temperature":0.2}"#;
        let r = parse(body).expect("valid");
        let d = ModelDefaults {
            name: Some("gpt-4.1".into()),
            max_tokens: Some(64),
            temperature: Some(1.0),
            top_p: Some(0.5),
            top_k: Some(3),
        };
        let (out, model) = r.native_body(&d, &[("api_key", "k\"1")]).expect("native");
        assert_eq!(model, "gpt-4.1");
        assert_eq!(
            std::str::from_utf8(&out).expect("utf8"),
            r#"{"api_key":"k\"1","top_p":0.5,"max_output_tokens":64,"model":"gpt-4.1","input":"hi",  "temperature":0.2}"#
        );
        // An open target takes the caller's model; a pinned one refuses another.
        let r = parse(r#"{"model":"o3","input":"hi"}"#).expect("valid");
        assert_eq!(r.native_body(&ModelDefaults::default(), &[]).expect("open").1, "o3");
        let e = r
            .native_body(&ModelDefaults { name: Some("gpt-4.1".into()), ..ModelDefaults::default() }, &[])
            .expect_err("pinned");
        assert!(e.message.contains("'o3' is not available"), "{}", e.message);
        // The model replaced in place, the rest kept.
        let r = parse(r#"{"input":"hi","model":""}"#).expect("valid");
        let (out, _) =
            r.native_body(&ModelDefaults { name: Some("m".into()), ..ModelDefaults::default() }, &[]).expect("native");
        assert_eq!(out, br#"{"input":"hi","model":"m"}"#);
    }

    #[test]
    fn removing_the_callers_key_changes_both_forms() {
        let mut r = parse(r#"{"input":"hi","api_key":"secret"}"#).expect("valid");
        r.remove_field("api_key");
        assert!(!String::from_utf8_lossy(r.body()).contains("secret"));
        assert!(!r.json().contains_key("api_key"));
        let before = r.body().to_vec();
        r.remove_field("absent");
        assert_eq!(r.body(), &before[..]);
    }

    #[test]
    fn echo_keeps_what_a_response_repeats() {
        let r = parse(r#"{"input":"hi","instructions":"be brief","temperature":0.3,"stream":true,"tools":[]}"#)
            .expect("valid");
        let e = r.echo();
        assert_eq!(e.get("instructions"), Some(&Value::from("be brief")));
        assert_eq!(e.get("temperature"), Some(&Value::from(0.3)));
        assert!(e.contains_key("tools"));
        assert!(!e.contains_key("input") && !e.contains_key("stream"));
    }

    #[test]
    fn prompt_estimate_counts_instructions_items_tools_and_images() {
        let r = parse(
            r#"{"instructions":"You are a mathematician","input":[{"role":"user","content":[
                {"type":"input_text","text":"What is 1+1?"},{"type":"input_image","image_url":"https://x/y.png"}]}]}"#,
        )
        .expect("valid");
        let text = crate::tokens::count_text("You are a mathematician\nWhat is 1+1?");
        assert_eq!(r.prompt_estimate(), text + PER_IMAGE + PER_ITEM + REPLY_PRIMING);
        let plain = parse(r#"{"input":"hello there"}"#).expect("valid");
        assert_eq!(plain.prompt_estimate(), crate::tokens::count_text("hello there") + PER_ITEM + REPLY_PRIMING);
    }
}

//! Redaction of logged payloads (`server.payload_redact_fields`): the value of
//! every JSON object member with one of the configured names, at any depth, is
//! replaced before the access log sees it.
//!
//! A payload is JSON (a request, a JSON answer) or SSE (a streamed answer,
//! one JSON document per `data:` line). What does not parse (a payload cut
//! at the size cap, say) cannot be redacted field by field: if it mentions one
//! of the names, it is withheld whole rather than risk logging the value.

use serde_json::Value;

pub const REDACTED: &str = "[REDACTED]";
pub const WITHHELD: &str = "[withheld: not JSON, and it names a redacted field]";

/// `text` with the values of `fields` redacted; unchanged when `fields` is empty.
pub fn payload(text: &str, fields: &[String]) -> String {
    if fields.is_empty() {
        return text.to_string();
    }
    if let Some(redacted) = document(text.trim(), fields) {
        return redacted;
    }
    // SSE: redact each data line; every other line passes as it is.
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match line.strip_prefix("data:") {
            Some(data) => {
                let data = data.strip_prefix(' ').unwrap_or(data);
                out.push_str("data: ");
                match document(data.trim_end_matches('\r'), fields) {
                    Some(redacted) => out.push_str(&redacted),
                    None => out.push_str(&withheld_if_named(data, fields)),
                }
            }
            None => out.push_str(&withheld_if_named(line, fields)),
        }
    }
    out
}

/// One JSON document redacted, or `None` when `text` is not JSON.
fn document(text: &str, fields: &[String]) -> Option<String> {
    let mut v: Value = serde_json::from_str(text).ok()?;
    redact(&mut v, fields);
    Some(v.to_string())
}

fn withheld_if_named(text: &str, fields: &[String]) -> String {
    if fields.iter().any(|f| text.contains(&format!("\"{f}\""))) {
        WITHHELD.to_string()
    } else {
        text.to_string()
    }
}

fn redact(v: &mut Value, fields: &[String]) {
    match v {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if fields.iter().any(|f| f == key) {
                    *value = Value::String(REDACTED.into());
                } else {
                    redact(value, fields);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact(item, fields)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<String> {
        vec!["ssn".into(), "api_token".into()]
    }

    #[test]
    fn json_members_are_redacted_at_any_depth() {
        let text =
            r#"{"messages":[{"role":"user","content":"hi","ssn":"123-45-6789"}],"meta":{"api_token":{"a":1}},"n":1}"#;
        let out = payload(text, &fields());
        assert!(!out.contains("123-45-6789") && !out.contains("\"a\":1"), "{out}");
        let v: Value = serde_json::from_str(&out).expect("json");
        assert_eq!(v["messages"][0]["ssn"], REDACTED);
        assert_eq!(v["messages"][0]["content"], "hi");
        assert_eq!(v["meta"]["api_token"], REDACTED);
    }

    #[test]
    fn sse_data_lines_are_redacted_and_cut_json_naming_a_field_is_withheld() {
        let text = "data: {\"ssn\":\"1\",\"x\":2}\n\ndata: [DONE]\n\ndata: {\"ssn\":\"12";
        let out = payload(text, &fields());
        assert!(out.starts_with("data: {\"ssn\":\"[REDACTED]\",\"x\":2}\n\ndata: [DONE]\n\n"), "{out}");
        assert!(out.ends_with(WITHHELD) && !out.contains("\"12"), "{out}");
        // Not JSON and naming no field: kept as it is.
        assert_eq!(payload("plain text", &fields()), "plain text");
        assert_eq!(payload("{\"cut", &fields()), "{\"cut");
    }

    #[test]
    fn nothing_changes_without_fields() {
        assert_eq!(payload("{\"ssn\": 1}", &[]), "{\"ssn\": 1}");
    }
}

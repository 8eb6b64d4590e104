//! The webhook guardrail's wire format. The gateway POSTs
//!
//! ```json
//! {"phase": "request", "format": "openai_chat",
//!  "messages": [{"role": "user", "content": "..."}, ...]}
//! ```
//!
//! (every text of the request, in order; `phase` is `"response"` with the
//! answer's text when answers are guarded) and reads a verdict:
//! `{"action": "allow"}`, `{"action": "deny", "reason": "..."}` or
//! `{"action": "modify", "messages": [{"content": "..."}, ...]}`, the last
//! replacing each text by position (as many messages as were sent).

use serde_json::{json, Value};

use crate::prompt::Role;

/// What the service decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny {
        reason: Option<String>,
    },
    /// The new texts, one per text sent.
    Modify(Vec<String>),
}

/// The body sent to the service.
pub fn request_body(phase: &str, format: &str, texts: &[(Role, String)]) -> Vec<u8> {
    let messages: Vec<Value> = texts.iter().map(|(r, t)| json!({"role": r.as_str(), "content": t})).collect();
    json!({"phase": phase, "format": format, "messages": messages}).to_string().into_bytes()
}

/// The verdict in the service's answer (`status` and body); `sent` texts
/// were sent. An answer that is not a verdict is an error, which the
/// plugin's `fail_open` decides.
pub fn parse_verdict(status: u16, body: &[u8], sent: usize) -> Result<Verdict, String> {
    if !(200..300).contains(&status) {
        return Err(format!("answered {status}"));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("answered something not JSON: {e}"))?;
    let action = v.get("action").and_then(Value::as_str).ok_or("answered without an \"action\"")?;
    match action {
        "allow" => Ok(Verdict::Allow),
        "deny" | "block" => {
            Ok(Verdict::Deny { reason: v.get("reason").and_then(Value::as_str).map(|s| s.chars().take(200).collect()) })
        }
        "modify" => {
            let messages = v.get("messages").and_then(Value::as_array).ok_or("modify without \"messages\"")?;
            if messages.len() != sent {
                return Err(format!("modify with {} messages for {sent} sent", messages.len()));
            }
            let texts = messages.iter().map(|m| m.get("content").and_then(Value::as_str).map(str::to_string));
            texts
                .collect::<Option<Vec<_>>>()
                .map(Verdict::Modify)
                .ok_or_else(|| "modify with a non-text content".into())
        }
        other => Err(format!("answered an unknown action {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_lists_texts_with_roles() {
        let b = request_body("request", "openai_chat", &[(Role::User, "hi".into())]);
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            v,
            json!({"phase": "request", "format": "openai_chat", "messages": [{"role": "user", "content": "hi"}]})
        );
    }

    #[test]
    fn verdicts() {
        assert_eq!(parse_verdict(200, br#"{"action":"allow"}"#, 1), Ok(Verdict::Allow));
        assert_eq!(
            parse_verdict(200, br#"{"action":"deny","reason":"toxic"}"#, 1),
            Ok(Verdict::Deny { reason: Some("toxic".into()) })
        );
        assert_eq!(
            parse_verdict(200, br#"{"action":"modify","messages":[{"content":"x"}]}"#, 1),
            Ok(Verdict::Modify(vec!["x".into()]))
        );
    }

    #[test]
    fn anything_else_is_an_error() {
        assert!(parse_verdict(500, br#"{"action":"allow"}"#, 1).is_err());
        assert!(parse_verdict(200, b"ok", 1).is_err());
        assert!(parse_verdict(200, br#"{"action":"maybe"}"#, 1).is_err());
        assert!(parse_verdict(200, br#"{"action":"modify","messages":[]}"#, 1).is_err());
        assert!(parse_verdict(200, br#"{"action":"modify","messages":[{"content":1}]}"#, 1).is_err());
    }
}

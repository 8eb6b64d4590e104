//! Mistral speaks OpenAI's chat format with a few differences in the request:
//! `random_seed` for `seed`, `tool_choice: "any"` for `"required"`, no
//! `stream_options` (its last stream chunk always carries usage), and tool
//! call ids of exactly nine letters and digits (Mistral answers 400 "Tool
//! call id was ... but must be a-z, A-Z, 0-9, with a length of 9" for ids
//! other providers made, such as Anthropic's `toolu_...`). Answers and
//! streams pass through as OpenAI's.

use serde_json::{Map, Value};

use crate::LlmError;

/// Fields Mistral does not know and that never change the answer.
const DROPPED: &[&str] = &["stream_options", "user", "metadata", "store", "service_tier"];

/// Rewrites a prepared OpenAI body for Mistral.
pub fn adjust(openai_body: &[u8]) -> Result<Vec<u8>, LlmError> {
    let mut body: Map<String, Value> = serde_json::from_slice(openai_body)
        .map_err(|e| LlmError::new(500, "internal_error", format!("re-reading request: {e}")))?;
    for k in DROPPED {
        body.remove(*k);
    }
    if let Some(seed) = body.remove("seed") {
        body.insert("random_seed".into(), seed);
    }
    if body.get("tool_choice").and_then(Value::as_str) == Some("required") {
        body.insert("tool_choice".into(), Value::String("any".into()));
    }
    if let Some(Value::Array(messages)) = body.get_mut("messages") {
        for m in messages.iter_mut() {
            if let Some(Value::String(id)) = m.get_mut("tool_call_id") {
                *id = tool_call_id(id);
            }
            if let Some(Value::Array(calls)) = m.get_mut("tool_calls") {
                for call in calls {
                    if let Some(Value::String(id)) = call.get_mut("id") {
                        *id = tool_call_id(id);
                    }
                }
            }
        }
    }
    serde_json::to_vec(&body).map_err(|e| LlmError::new(500, "internal_error", format!("encoding request: {e}")))
}

/// A tool call id Mistral accepts: the id itself when it is nine letters and
/// digits (Mistral's own), else nine base-62 digits of its FNV-1a hash. The
/// same id always maps the same way, so a call and its result still match.
fn tool_call_id(id: &str) -> String {
    if id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return id.to_string();
    }
    const DIGITS: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (0..9)
        .map(|_| {
            let digit = DIGITS[(hash % 62) as usize];
            hash /= 62;
            char::from(digit)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_call_ids_become_nine_letters_and_digits() {
        let out = adjust(
            br#"{"messages":[
                {"role":"assistant","content":null,"tool_calls":[
                    {"id":"toolu_01A09q90qw90lq917835lq9","type":"function","function":{"name":"f","arguments":"{}"}},
                    {"id":"D681PevKs","type":"function","function":{"name":"g","arguments":"{}"}}]},
                {"role":"tool","tool_call_id":"toolu_01A09q90qw90lq917835lq9","content":"x"},
                {"role":"tool","tool_call_id":"D681PevKs","content":"y"}]}"#,
        )
        .expect("adjusted");
        let v: Value = serde_json::from_slice(&out).expect("json");
        let first = v["messages"][0]["tool_calls"][0]["id"].as_str().expect("id");
        assert!(first.len() == 9 && first.bytes().all(|b| b.is_ascii_alphanumeric()), "{first}");
        assert_eq!(v["messages"][1]["tool_call_id"], first, "the result still matches its call");
        assert_eq!(v["messages"][0]["tool_calls"][1]["id"], "D681PevKs", "Mistral's own ids are kept");
        assert_eq!(v["messages"][2]["tool_call_id"], "D681PevKs");
        assert_ne!(tool_call_id("call_1"), tool_call_id("call_2"));
    }
}

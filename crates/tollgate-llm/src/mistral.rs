//! Mistral speaks OpenAI's chat format with a few differences in the request:
//! `random_seed` for `seed`, `tool_choice: "any"` for `"required"`, and no
//! `stream_options` (its last stream chunk always carries usage). Answers and
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
    serde_json::to_vec(&body).map_err(|e| LlmError::new(500, "internal_error", format!("encoding request: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_and_drops_what_mistral_does_not_know() {
        let out = adjust(br#"{"model":"mistral-large-latest","messages":[],"seed":7,"tool_choice":"required","stream":true,"stream_options":{"include_usage":true},"user":"u"}"#)
            .expect("adjusted");
        let v: Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["random_seed"], 7);
        assert_eq!(v["tool_choice"], "any");
        assert!(v.get("seed").is_none() && v.get("stream_options").is_none() && v.get("user").is_none());
        assert_eq!(v["stream"], true);
    }
}

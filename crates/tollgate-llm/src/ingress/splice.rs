//! Setting one top-level member of a JSON object without re-encoding the
//! rest: a caller's native request reaches its provider byte for byte, but
//! for the model the target pins (and a credential it carries in the body).

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::value::RawValue;

use crate::LlmError;

/// `body` (a JSON object) with its top-level `name` set to the JSON `value`:
/// the old value's bytes replaced in place, or the member added first when
/// absent. Every other byte is kept. A member named twice has every copy
/// replaced, so no parser can read the old value.
pub fn set_member(body: &[u8], name: &str, value: &str) -> Result<Vec<u8>, LlmError> {
    let members: HashMap<Cow<'_, str>, Vec<&RawValue>> = members(body)?;
    let spans: Vec<(usize, usize)> = match members.get(name) {
        Some(values) => values.iter().map(|v| span(body, v)).collect(),
        None => Vec::new(),
    };
    if spans.is_empty() {
        // Insert right after the opening brace.
        let open = body.iter().position(|b| *b == b'{').unwrap_or(0);
        let mut out = Vec::with_capacity(body.len() + name.len() + value.len() + 6);
        out.extend_from_slice(&body[..=open]);
        crate::stream::json_str(&mut out, name);
        out.push(b':');
        out.extend_from_slice(value.as_bytes());
        let rest_is_empty = body[open + 1..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
        if !rest_is_empty {
            out.push(b',');
        }
        out.extend_from_slice(&body[open + 1..]);
        return Ok(out);
    }
    let mut out = Vec::with_capacity(body.len() + value.len());
    let mut at = 0;
    let mut sorted = spans;
    sorted.sort_unstable();
    for (start, end) in sorted {
        out.extend_from_slice(&body[at..start]);
        out.extend_from_slice(value.as_bytes());
        at = end;
    }
    out.extend_from_slice(&body[at..]);
    Ok(out)
}

/// `body` without its top-level member `name` (every copy), other bytes kept.
pub fn remove_member(body: &[u8], name: &str) -> Result<Vec<u8>, LlmError> {
    let parsed: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)
        .map_err(|e| LlmError::invalid_request(format!("request body is not a JSON object: {e}")))?;
    if !parsed.contains_key(name) {
        return Ok(body.to_vec());
    }
    // Removal changes the separators around the member: re-encode. This runs
    // only for a caller key sent in the body (`key_in_body`).
    let mut parsed = parsed;
    parsed.remove(name);
    serde_json::to_vec(&parsed).map_err(|e| LlmError::new(500, "internal_error", format!("encoding request: {e}")))
}

/// Every top-level member's raw value(s), borrowed from `body`.
fn members(body: &[u8]) -> Result<HashMap<Cow<'_, str>, Vec<&RawValue>>, LlmError> {
    struct Members<'a>(HashMap<Cow<'a, str>, Vec<&'a RawValue>>);
    impl<'de> serde::Deserialize<'de> for Members<'de> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Members<'de>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                    let mut out: HashMap<Cow<'de, str>, Vec<&'de RawValue>> = HashMap::new();
                    while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                        let v: &'de RawValue = map.next_value()?;
                        out.entry(k).or_default().push(v);
                    }
                    Ok(Members(out))
                }
            }
            d.deserialize_map(V)
        }
    }
    serde_json::from_slice::<Members>(body)
        .map(|m| m.0)
        .map_err(|e| LlmError::invalid_request(format!("request body is not a JSON object: {e}")))
}

/// Where a borrowed raw value sits in `body`.
fn span(body: &[u8], v: &RawValue) -> (usize, usize) {
    let raw = v.get().as_bytes();
    let start = raw.as_ptr() as usize - body.as_ptr() as usize;
    (start, start + raw.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_in_place_and_keeps_every_other_byte() {
        let body = br#"{ "model" : "a",  "messages":[{"role":"user","content":"model"}], "x": {"model": 1} }"#;
        let out = set_member(body, "model", r#""claude-x""#).expect("ok");
        assert_eq!(
            std::str::from_utf8(&out).expect("utf8"),
            r#"{ "model" : "claude-x",  "messages":[{"role":"user","content":"model"}], "x": {"model": 1} }"#
        );
    }

    #[test]
    fn adds_a_missing_member_first_and_replaces_duplicates() {
        assert_eq!(set_member(br#"{"a":1}"#, "model", r#""m""#).expect("ok"), br#"{"model":"m","a":1}"#);
        assert_eq!(set_member(b"{ }", "model", r#""m""#).expect("ok"), br#"{"model":"m" }"#);
        let out = set_member(br#"{"model":"a","model":"b"}"#, "model", r#""c""#).expect("ok");
        assert_eq!(out, br#"{"model":"c","model":"c"}"#);
    }

    #[test]
    fn escaped_keys_and_non_objects() {
        let out = set_member(br#"{"mod\u0065l":"a"}"#, "model", r#""c""#).expect("ok");
        assert_eq!(out, br#"{"mod\u0065l":"c"}"#);
        assert!(set_member(b"[1]", "model", "1").is_err());
        assert!(set_member(b"{\"a\":", "model", "1").is_err());
    }

    #[test]
    fn removes_a_member() {
        let out = remove_member(br#"{"apikey":"k","a":1}"#, "apikey").expect("ok");
        assert_eq!(out, br#"{"a":1}"#);
        assert_eq!(remove_member(br#"{"a" : 1}"#, "apikey").expect("ok"), br#"{"a" : 1}"#);
    }
}

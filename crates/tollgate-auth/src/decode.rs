//! Bounded decoding shared by token and key-set parsing. Everything here runs on
//! attacker-controlled bytes before any signature is checked, so it bounds nesting
//! (serde_json's own recursion limit is 128, far more than any JWT or JWKS needs) and
//! never panics.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde_json::{Map, Value};

/// Deepest `{`/`[` nesting accepted in a JWT header, payload or JWKS.
pub(crate) const MAX_JSON_DEPTH: usize = 32;

/// JWK members are base64url (RFC 7518 section 6) without padding, but some issuers pad
/// them anyway; key material is not signed data, so being lenient costs nothing.
const B64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes a JWS segment: unpadded base64url only (RFC 7515 section 2), canonical.
pub(crate) fn b64_strict(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

/// Decodes a JWK member: base64url with or without padding.
pub(crate) fn b64_lenient(s: &str) -> Option<Vec<u8>> {
    B64_LENIENT.decode(s).ok()
}

/// Parses `bytes` as a JSON object, refusing nesting deeper than [`MAX_JSON_DEPTH`].
pub(crate) fn json_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    if !depth_within(bytes, MAX_JSON_DEPTH) {
        return None;
    }
    serde_json::from_slice(bytes).ok()
}

/// True when no `{`/`[` nesting (outside strings) exceeds `max`. Only a pre-filter:
/// it does not validate JSON, serde_json does that afterwards.
fn depth_within(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_only_outside_strings() {
        assert!(depth_within(br#"{"a":[[1]]}"#, 3));
        assert!(!depth_within(br#"{"a":[[1]]}"#, 2));
        assert!(depth_within(br#"{"a":"[[[[[[\"[[["}"#, 1));
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let deep = "[".repeat(100_000);
        assert!(json_object(deep.as_bytes()).is_none());
    }

    #[test]
    fn strict_base64_rejects_padding_and_lenient_accepts_it() {
        assert_eq!(b64_strict("AQAB"), Some(vec![1, 0, 1]));
        assert_eq!(b64_strict("AQ"), Some(vec![1]));
        assert_eq!(b64_strict("AQ=="), None);
        assert_eq!(b64_lenient("AQ=="), Some(vec![1]));
        assert_eq!(b64_lenient("AQ"), Some(vec![1]));
        assert_eq!(b64_strict("A+/B"), None);
    }
}

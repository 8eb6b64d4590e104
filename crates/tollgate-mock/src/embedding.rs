//! What the mock answers to an embeddings request, whatever the wire format:
//! a deterministic vector per input text and its token count. Each format
//! module (`openai` for OpenAI, Azure and Mistral, `native::*` for Gemini and
//! Vertex AI, Bedrock's Titan and Cohere Embed, Cohere v2, Ollama) only parses
//! its request into texts and a dimension count and serializes the vectors in
//! its own shapes, so the same text gets the same vector from every provider
//! and a test can compare answers across providers:
//!
//! * the vector of a text is derived from the SHA-256 of its UTF-8 bytes, each
//!   value in [-1, 1]; it has 8 values unless the request asks for another
//!   count (`dimensions`, `output_dimension`, `outputDimensionality`...), and
//!   the first 8 values are the same whatever the count;
//! * a text counts `ceil(chars / 4)` tokens, like the chat prompts.
//!
//! Values are `f32`: OpenAI's base64 encoding is their little-endian bytes,
//! and JSON carries each in its shortest round-trip form.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::tokens;

/// Values in a vector when the request asks for no dimension count.
pub const DEFAULT_DIMENSIONS: usize = 8;
/// A larger dimension count is refused (no real model goes beyond 4096).
pub const MAX_DIMENSIONS: u64 = 8192;

/// Deterministic 8-dimensional vector in [-1, 1] from the SHA-256 of the input.
pub fn embedding_of(input: &[u8]) -> [f32; 8] {
    let d = Sha256::digest(input);
    block_values(&d)
}

fn block_values(digest: &[u8]) -> [f32; 8] {
    let mut out = [0f32; 8];
    for (i, v) in out.iter_mut().enumerate() {
        let j = i * 4;
        let x = u32::from_be_bytes([digest[j], digest[j + 1], digest[j + 2], digest[j + 3]]);
        *v = (f64::from(x) / f64::from(u32::MAX) * 2.0 - 1.0) as f32;
    }
    out
}

/// The vector of `input` with `dimensions` values: [`embedding_of`] for the
/// first 8, then 8 more from the SHA-256 of the input and the block number
/// for each further block.
pub fn vector(input: &[u8], dimensions: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(dimensions.next_multiple_of(8));
    let mut block: u32 = 0;
    while out.len() < dimensions {
        let values = if block == 0 {
            embedding_of(input)
        } else {
            let mut h = Sha256::new();
            h.update(input);
            h.update(block.to_le_bytes());
            block_values(&h.finalize())
        };
        out.extend_from_slice(&values);
        block += 1;
    }
    out.truncate(dimensions);
    out
}

/// A vector as a JSON array whose numbers print as the `f32` values do (the
/// shortest decimal that reads back as the same `f32`), as a typed `Vec<f32>`
/// would serialize: `serde_json::Value` keeps numbers as `f64`, and a plain
/// `f32 -> f64` conversion would print `0.1f32` as `0.10000000149011612`.
pub fn json_vector(values: &[f32]) -> Value {
    Value::Array(
        values
            .iter()
            .map(|v| {
                v.to_string()
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            })
            .collect(),
    )
}

/// A requested dimension count, checked: `None` means the default, 0 and
/// more than [`MAX_DIMENSIONS`] are refused with a message naming `field`.
pub fn dimensions(requested: Option<u64>, field: &str) -> Result<usize, String> {
    match requested {
        None => Ok(DEFAULT_DIMENSIONS),
        Some(d) if (1..=MAX_DIMENSIONS).contains(&d) => Ok(d as usize),
        Some(d) => Err(format!("{field} must be between 1 and {MAX_DIMENSIONS}, got {d}")),
    }
}

/// Tokens of one input text (0 for an empty one).
pub fn text_tokens(text: &str) -> u64 {
    tokens::approx_tokens(text.chars().count())
}

/// Total tokens of a request's texts: never 0, as providers count at least one.
pub fn total_tokens<'a>(texts: impl IntoIterator<Item = &'a str>) -> u64 {
    texts.into_iter().map(text_tokens).sum::<u64>().max(1)
}

/// OpenAI's base64 embedding: standard padded base64 of the little-endian
/// `f32` values.
pub fn base64_f32(values: &[f32]) -> String {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    crate::b64::encode(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_deterministic_and_extend_the_first_block() {
        assert_eq!(embedding_of(b"x"), embedding_of(b"x"));
        assert_ne!(embedding_of(b"x"), embedding_of(b"y"));
        assert!(embedding_of(b"z").iter().all(|v| (-1.0..=1.0).contains(v)));
        assert_eq!(vector(b"x", 8), embedding_of(b"x").to_vec());
        let long = vector(b"x", 20);
        assert_eq!(long.len(), 20);
        assert_eq!(long[..8], embedding_of(b"x"));
        assert_ne!(long[8..16], long[..8], "later blocks differ from the first");
        assert_eq!(vector(b"x", 3), embedding_of(b"x")[..3].to_vec());
        assert!(long.iter().all(|v| (-1.0..=1.0).contains(v)));
    }

    #[test]
    fn json_vectors_print_like_f32() {
        let v = json_vector(&[0.1, -0.25, 1.0]);
        assert_eq!(v.to_string(), "[0.1,-0.25,1.0]");
        let typed = serde_json::to_string(&embedding_of(b"q")).expect("json");
        assert_eq!(json_vector(&embedding_of(b"q")).to_string(), typed);
    }

    #[test]
    fn dimension_counts_are_checked() {
        assert_eq!(dimensions(None, "d"), Ok(8));
        assert_eq!(dimensions(Some(256), "d"), Ok(256));
        assert!(dimensions(Some(0), "dimensions").is_err_and(|e| e.contains("dimensions")));
        assert!(dimensions(Some(MAX_DIMENSIONS + 1), "d").is_err());
    }

    #[test]
    fn tokens_per_text_and_in_total() {
        assert_eq!(text_tokens("abcdefgh"), 2);
        assert_eq!(text_tokens(""), 0);
        assert_eq!(total_tokens(["a", "abcdefgh"]), 3);
        assert_eq!(total_tokens([""]), 1);
    }

    #[test]
    fn base64_is_little_endian_f32() {
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[1.0, -2.0]), "AACAPwAAAMA=");
        assert_eq!(base64_f32(&[1.0, -2.0, 0.5]), "AACAPwAAAMAAAAA/");
        assert_eq!(base64_f32(&[]), "");
    }
}

//! Token estimates made before the provider answers: what a request may cost,
//! for admission against token budgets. The provider's reported usage always
//! replaces these figures once the answer ends.

use serde_json::Value;

use crate::ChatRequest;

/// OpenAI's per-message framing overhead (role, separators) and reply priming.
const PER_MESSAGE: u64 = 3;
const REPLY_PRIMING: u64 = 3;
/// What an image part is assumed to cost (OpenAI's low-detail tile).
const PER_IMAGE: u64 = 85;
/// Past this much text the tokenizer's cost is not worth it for an estimate:
/// bytes / 3 over-counts typical English and code a little, which errs on the
/// side of the budget.
const TOKENIZE_LIMIT: usize = 256 * 1024;

/// Prompt tokens of a chat request, counted with the o200k tokenizer (GPT-4o's).
pub fn estimate_prompt_tokens(req: &ChatRequest) -> u64 {
    let mut text = String::new();
    let mut images = 0u64;
    let mut messages = 0u64;
    if let Some(Value::Array(list)) = req.body().get("messages") {
        for m in list {
            messages += 1;
            match m.get("content") {
                Some(Value::String(s)) => push(&mut text, s),
                Some(Value::Array(parts)) => {
                    for p in parts {
                        match p.get("type").and_then(Value::as_str) {
                            Some("text") => {
                                if let Some(t) = p.get("text").and_then(Value::as_str) {
                                    push(&mut text, t)
                                }
                            }
                            Some("image_url") | Some("input_image") => images += 1,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
            if let Some(calls) = m.get("tool_calls") {
                push(&mut text, &calls.to_string());
            }
        }
    }
    if let Some(tools) = req.body().get("tools") {
        push(&mut text, &tools.to_string());
    }
    count_text(&text) + images * PER_IMAGE + messages * PER_MESSAGE + REPLY_PRIMING
}

fn push(buf: &mut String, s: &str) {
    if !buf.is_empty() {
        buf.push('\n');
    }
    buf.push_str(s);
}

/// Tokens in `text` (o200k), or a conservative bytes/3 for very long text.
pub fn count_text(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    if text.len() > TOKENIZE_LIMIT {
        return (text.len() as u64).div_ceil(3);
    }
    tiktoken_rs::o200k_base_singleton().encode_ordinary(text).len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_text_parts_messages_and_images() {
        let req = ChatRequest::parse(
            br#"{"messages":[{"role":"system","content":"You are a mathematician"},
                {"role":"user","content":[{"type":"text","text":"What is 1+1?"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#,
        )
        .expect("valid");
        let n = estimate_prompt_tokens(&req);
        // 4 + 6 text tokens, one image, two messages, priming.
        let text = count_text("You are a mathematician\nWhat is 1+1?");
        assert_eq!(n, text + PER_IMAGE + 2 * PER_MESSAGE + REPLY_PRIMING);
        assert!((8..=14).contains(&text), "{text}");
    }

    #[test]
    fn long_text_is_estimated_by_size() {
        let long = "a ".repeat(TOKENIZE_LIMIT);
        assert_eq!(count_text(&long), (long.len() as u64).div_ceil(3));
    }
}

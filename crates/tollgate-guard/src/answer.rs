//! The sanitizer's answer side (Kong's `sanitization_mode = "OUTPUT"` or
//! `"BOTH"`): PII the provider wrote is masked before the caller reads it.
//!
//! - [`mask_answer`] walks an answer (or a stream event other than a text
//!   delta) in any caller format and masks its texts: `text`, `content`,
//!   `refusal`, tool-call `arguments` (parsed, so they stay JSON) and
//!   Anthropic tool `input` objects. Thinking and reasoning blocks are left
//!   alone (their signatures cover the text) and so are `delta` objects,
//!   whose pieces only make sense joined.
//! - [`StreamMasker`] masks text that arrives in pieces: it holds back the
//!   tail after the last whitespace at least [`HOLD`] bytes from the end, so
//!   an entity is masked whole; entities that span whitespace (phone, card,
//!   IBAN groups) are at most 45 bytes long, and a cut that would fall inside
//!   one found in the held text moves past it.

use serde_json::Value;

use crate::mask::{mask, Vault};
use crate::pii::{Found, Recognisers};

/// Bytes of text held back from the end of a stream's text; more than the
/// longest entity that spans whitespace.
pub const HOLD: usize = 64;
/// A text without whitespace is cut anyway once this much is held, so a
/// stream of one endless token is not held to its end.
pub const MAX_HELD: usize = 4096;

/// Masks every answer text of `v`; the entities masked.
pub fn mask_answer(recognisers: &Recognisers, v: &mut Value, vault: &mut Vault) -> usize {
    let mut scratch = Vec::new();
    let mut n = 0;
    walk(v, &mut |t| n += mask(recognisers, t, vault, &mut scratch).entities);
    n
}

/// Calls `f` on every answer text of `v` (see the module's comment).
pub fn for_each_answer_text(v: &mut Value, f: &mut dyn FnMut(&mut String)) {
    walk(v, f)
}

fn walk(v: &mut Value, f: &mut dyn FnMut(&mut String)) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(|i| walk(i, f)),
        Value::Object(o) => {
            let kind = o.get("type").and_then(Value::as_str).unwrap_or("");
            if matches!(kind, "thinking" | "redacted_thinking" | "reasoning") {
                return;
            }
            for (k, child) in o.iter_mut() {
                match (k.as_str(), child) {
                    ("delta", _) => {}
                    ("text" | "content" | "refusal", Value::String(s)) => f(s),
                    ("arguments", Value::String(s)) => json_text(s, f),
                    ("input", input @ Value::Object(_)) => leaves(input, f),
                    (_, child @ (Value::Array(_) | Value::Object(_))) => walk(child, f),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// A string holding JSON (tool-call arguments): its string leaves, so the
/// result stays JSON; as plain text when it does not parse.
fn json_text(s: &mut String, f: &mut dyn FnMut(&mut String)) {
    match serde_json::from_str::<Value>(s) {
        Ok(mut v) => {
            leaves(&mut v, f);
            if let Ok(back) = serde_json::to_string(&v) {
                *s = back;
            }
        }
        Err(_) => f(s),
    }
}

/// Every string leaf of `v`.
fn leaves(v: &mut Value, f: &mut dyn FnMut(&mut String)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter_mut().for_each(|i| leaves(i, f)),
        Value::Object(o) => o.values_mut().for_each(|i| leaves(i, f)),
        _ => {}
    }
}

/// Masks a text that arrives in pieces (see the module's comment).
#[derive(Debug, Default)]
pub struct StreamMasker {
    held: String,
    scratch: Vec<Found>,
    /// Entities masked so far.
    pub entities: usize,
}

impl StreamMasker {
    /// The text to send now for `piece`, its complete entities masked.
    pub fn push(&mut self, recognisers: &Recognisers, vault: &mut Vault, piece: &str) -> String {
        self.held.push_str(piece);
        let Some(cut) = self.cut(recognisers) else { return String::new() };
        let rest = self.held.split_off(cut);
        let mut out = std::mem::replace(&mut self.held, rest);
        self.entities += mask(recognisers, &mut out, vault, &mut self.scratch).entities;
        out
    }

    /// The rest, masked (the text ends).
    pub fn flush(&mut self, recognisers: &Recognisers, vault: &mut Vault) -> String {
        let mut out = std::mem::take(&mut self.held);
        self.entities += mask(recognisers, &mut out, vault, &mut self.scratch).entities;
        out
    }

    pub fn holds(&self) -> bool {
        !self.held.is_empty()
    }

    /// Where the held text may be cut: after the last whitespace at least
    /// `HOLD` bytes from its end, moved past any entity the cut would split.
    fn cut(&mut self, recognisers: &Recognisers) -> Option<usize> {
        let b = self.held.as_bytes();
        let limit = b.len().checked_sub(HOLD)?;
        let at_space = b[..limit].iter().rposition(u8::is_ascii_whitespace).map(|i| i + 1);
        let mut cut = match at_space {
            Some(c) => c,
            None if b.len() >= MAX_HELD => (0..=limit).rev().find(|&i| self.held.is_char_boundary(i))?,
            None => return None,
        };
        recognisers.find(&self.held, &mut self.scratch);
        if let Some(f) = self.scratch.iter().find(|f| f.start < cut && cut < f.end) {
            cut = f.end;
        }
        (cut > 0).then_some(cut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pii::Kind;
    use serde_json::json;

    fn recognisers() -> Recognisers {
        Recognisers::new(&[Kind::Email, Kind::Phone, Kind::CreditCard], &[]).unwrap()
    }

    #[test]
    fn answers_are_masked_in_every_format_and_tool_arguments_stay_json() {
        let r = recognisers();
        let mut chat = json!({"choices": [{"message": {"role": "assistant", "content": "mail a@x.io",
            "tool_calls": [{"function": {"name": "send", "arguments": "{\"to\":\"b@x.io\"}"}}]}}]});
        let mut vault = Vault::default();
        assert_eq!(mask_answer(&r, &mut chat, &mut vault), 2);
        assert_eq!(chat["choices"][0]["message"]["content"], "mail <EMAIL_1>");
        let args: Value = serde_json::from_str(
            chat["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(args, json!({"to": "<EMAIL_2>"}));
        let mut messages = json!({"content": [{"type": "thinking", "thinking": "a@x.io", "signature": "s"},
            {"type": "text", "text": "call +14155552671"}, {"type": "tool_use", "name": "f", "input": {"to": ["a@x.io"]}}]});
        mask_answer(&r, &mut messages, &mut vault);
        assert_eq!(messages["content"][0]["thinking"], "a@x.io", "signed thinking is left alone");
        assert_eq!(messages["content"][1]["text"], "call <PHONE_1>");
        assert_eq!(messages["content"][2]["input"]["to"][0], "<EMAIL_1>");
        let mut responses = json!({"type": "response.completed", "response": {"output": [{"type": "message",
            "content": [{"type": "output_text", "text": "card 4111 1111 1111 1111"}]}]}});
        mask_answer(&r, &mut responses, &mut vault);
        assert_eq!(responses["response"]["output"][0]["content"][0]["text"], "card <CREDIT_CARD_1>");
    }

    /// `pieces` through a masker, as the caller reads them.
    fn stream(pieces: &[&str]) -> (Vec<String>, usize) {
        let (r, mut vault, mut m) = (recognisers(), Vault::default(), StreamMasker::default());
        let mut out: Vec<String> = pieces.iter().map(|p| m.push(&r, &mut vault, p)).collect();
        out.push(m.flush(&r, &mut vault));
        (out, m.entities)
    }

    #[test]
    fn an_entity_split_across_pieces_is_masked_whole() {
        let prose = "words to pad the stream well past the hold-back window of the masker, ";
        let (out, n) = stream(&[prose, "write to jane.do", "e@example.com or call +1 415 ", "555 2671 today. ", prose]);
        let text = out.concat();
        assert_eq!(text, format!("{prose}write to <EMAIL_1> or call <PHONE_1> today. {prose}"));
        assert_eq!(n, 2);
        assert!(out.iter().all(|o| !o.contains("jane") && !o.contains("2671")), "{out:?}");
        assert!(!out[1].is_empty() || !out[0].is_empty(), "text is released before the end: {out:?}");
    }

    #[test]
    fn a_cut_never_splits_an_entity_that_spans_whitespace() {
        // The card's groups straddle where the cut would fall.
        let pad = "x".repeat(10);
        let text = format!("{pad} 4111 1111 1111 1111 {}", "y ".repeat(40));
        for size in [1, 3, 7, 16] {
            let pieces: Vec<String> =
                text.as_bytes().chunks(size).map(|c| String::from_utf8(c.to_vec()).unwrap()).collect();
            let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
            let (out, _) = stream(&refs);
            assert_eq!(out.concat(), format!("{pad} <CREDIT_CARD_1> {}", "y ".repeat(40)), "pieces of {size}");
        }
    }

    #[test]
    fn a_text_without_whitespace_is_released_past_the_cap() {
        let (out, _) = stream(&[&"z".repeat(MAX_HELD + 10)]);
        assert_eq!(out[0].len(), MAX_HELD + 10 - HOLD);
    }
}

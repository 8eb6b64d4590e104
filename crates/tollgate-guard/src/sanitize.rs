//! The ai-sanitizer's request side: find PII in a request's texts, and
//! either mask it (placeholders, remembered in a vault for restoring the
//! answer) or report it so the request can be blocked.

use serde_json::Value;

use crate::mask::{mask, Vault};
use crate::pii::Recognisers;
use crate::prompt::{for_each_text, last_turn, turns, Format, Role};

#[derive(Debug, Clone)]
pub struct Sanitizer {
    pub recognisers: Recognisers,
    /// Every turn (Kong's `allow_all_conversation_history`, default true), or the last one only.
    pub whole_history: bool,
}

/// What sanitizing found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sanitized {
    /// Entities found (and, when masking, replaced).
    pub entities: usize,
}

impl Sanitizer {
    /// Masks every entity of `body`'s texts, recording placeholders in `vault`.
    pub fn mask(&self, format: Format, body: &mut Value, vault: &mut Vault) -> Sanitized {
        let last = self.first_turn(format, body);
        let mut scratch = Vec::new();
        let mut entities = 0;
        for_each_text(format, body, &mut |slot, text| {
            if self.whole_history || matches!((slot.turn, last), (Some(t), Some(f)) if t >= f) {
                entities += mask(&self.recognisers, text, vault, &mut scratch).entities;
            }
        });
        Sanitized { entities }
    }

    /// Counts the entities of `body`'s texts without changing them (to block).
    pub fn detect(&self, format: Format, body: &mut Value) -> Sanitized {
        let last = self.first_turn(format, body);
        let mut scratch = Vec::new();
        let mut entities = 0;
        for_each_text(format, body, &mut |slot, text| {
            if self.whole_history || matches!((slot.turn, last), (Some(t), Some(f)) if t >= f) {
                self.recognisers.find(text, &mut scratch);
                entities += scratch.len();
            }
        });
        Sanitized { entities }
    }

    /// Where "the last turn" starts: the last user turn, so a trailing
    /// assistant or tool message neither hides it nor is left unmasked.
    fn first_turn(&self, format: Format, body: &mut Value) -> Option<usize> {
        if self.whole_history {
            return None;
        }
        last_turn(format, body, &|r| r == Role::User).or_else(|| turns(format, body).checked_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pii::Kind;
    use serde_json::json;

    fn sanitizer(whole_history: bool) -> Sanitizer {
        Sanitizer { recognisers: Recognisers::new(&[Kind::Email, Kind::Phone], &[]).unwrap(), whole_history }
    }

    #[test]
    fn masks_every_turn_and_remembers_placeholders() {
        let mut body = json!({"messages": [
            {"role": "system", "content": "support for a@x.io"},
            {"role": "user", "content": [{"type": "text", "text": "I am a@x.io, call +14155552671"}]}
        ]});
        let mut vault = Vault::default();
        assert_eq!(sanitizer(true).mask(Format::OpenAiChat, &mut body, &mut vault), Sanitized { entities: 3 });
        assert_eq!(body["messages"][0]["content"], "support for <EMAIL_1>");
        assert_eq!(body["messages"][1]["content"][0]["text"], "I am <EMAIL_1>, call <PHONE_1>");
        assert_eq!(vault.restore("<PHONE_1>"), "+14155552671");
    }

    #[test]
    fn the_last_turn_only_when_history_is_left_alone() {
        let mut body = json!({"input": [
            {"role": "user", "content": "old a@x.io"}, {"role": "user", "content": "new b@x.io"}
        ]});
        let mut vault = Vault::default();
        sanitizer(false).mask(Format::OpenAiResponses, &mut body, &mut vault);
        assert_eq!(body["input"][0]["content"], "old a@x.io");
        assert_eq!(body["input"][1]["content"], "new <EMAIL_1>");
    }

    #[test]
    fn the_last_turn_is_the_last_user_turn_and_what_follows() {
        let mut body = json!({"messages": [
            {"role": "user", "content": "old a@x.io"}, {"role": "user", "content": "new b@x.io"},
            {"role": "assistant", "content": "Sure c@x.io"}
        ]});
        let mut vault = Vault::default();
        assert_eq!(sanitizer(false).mask(Format::AnthropicMessages, &mut body, &mut vault).entities, 2);
        assert_eq!(body["messages"][0]["content"], "old a@x.io");
        assert_eq!(body["messages"][1]["content"], "new <EMAIL_1>");
        assert_eq!(body["messages"][2]["content"], "Sure <EMAIL_2>");
        assert_eq!(sanitizer(false).detect(Format::AnthropicMessages, &mut body.clone()).entities, 0);
    }

    #[test]
    fn tool_call_arguments_are_masked_and_stay_json() {
        let mut body = json!({"messages": [{"role": "assistant", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{\"to\": \"a@x.io\"}"}}]}]});
        let mut vault = Vault::default();
        assert_eq!(sanitizer(true).mask(Format::OpenAiChat, &mut body, &mut vault).entities, 1);
        let args = body["messages"][0]["tool_calls"][0]["function"]["arguments"].as_str().unwrap();
        assert_eq!(serde_json::from_str::<Value>(args).unwrap(), json!({"to": "<EMAIL_1>"}));
    }

    #[test]
    fn detect_counts_without_changing() {
        let mut body = json!({"messages": [{"role": "user", "content": "a@x.io"}]});
        assert_eq!(sanitizer(true).detect(Format::AnthropicMessages, &mut body).entities, 1);
        assert_eq!(body["messages"][0]["content"], "a@x.io");
    }
}

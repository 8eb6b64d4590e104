//! What a request is cached under. The exact key hashes the normalised,
//! provider-neutral request (the caller's format, key and headers play no
//! part): model, messages, tools, tool choice, stop sequences and sampling
//! fields. Whether the request is streamed, asks for usage, or marks prompt
//! caching does not change the answer, so it does not change the key either.

use sha2::{Digest, Sha256};
use tollgate_llm::chat::{Chat, Message, Part};

/// Bumped when the key's input or the entry's format changes, so replicas
/// of different versions never read each other's entries.
const KEY_VERSION: &str = "v2";

/// The exact key of `chat` in `namespace` (the plugin and, per consumer,
/// the consumer): lower-case hex SHA-256.
pub fn exact_key(namespace: &str, chat: &Chat) -> String {
    digest(namespace, &(&chat.model, &chat.messages, settings(chat)))
}

/// What semantic mode does not embed but the answer depends on: the tools,
/// tool choice, response format, stop, sampling fields and token limit, and
/// the system prompts unless `ignore_system` (Kong's `ignore_system_prompts`).
/// Part of the semantic namespace, so a request with tools or a JSON schema
/// never finds an answer stored without them.
pub fn semantic_context(chat: &Chat, ignore_system: bool) -> String {
    let systems: Vec<&Message> =
        chat.messages.iter().filter(|m| !ignore_system && matches!(m, Message::System { .. })).collect();
    digest("semantic", &(systems, settings(chat)))
}

/// Every field but the model and the messages that the answer depends on.
fn settings(chat: &Chat) -> impl std::fmt::Debug + '_ {
    (
        &chat.tools,
        &chat.tool_choice,
        &chat.stop,
        (chat.max_tokens, chat.temperature, chat.top_p, chat.top_k, chat.seed),
        (chat.presence_penalty, chat.frequency_penalty, &chat.response_format, chat.parallel_tool_calls),
        &chat.reasoning,
    )
}

/// SHA-256 of `namespace` and `normal`, in hex. The neutral form's Debug
/// rendering is a deterministic, complete serialisation of its fields, and
/// replicas sharing a store run the same build (KEY_VERSION guards the rest).
fn digest(namespace: &str, normal: &dyn std::fmt::Debug) -> String {
    let mut h = Sha256::new();
    for part in [KEY_VERSION, namespace] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.update(format!("{normal:?}").as_bytes());
    hex(&h.finalize())
}

/// Lower-case hex of `bytes` (the one encoder of keys and digests).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Which messages semantic mode embeds (Kong's `message_countback` and `ignore_*_prompts`).
#[derive(Debug, Clone, Copy)]
pub struct TextOptions {
    pub countback: usize,
    pub ignore_system: bool,
    pub ignore_assistant: bool,
    pub ignore_tool: bool,
}

/// The text semantic mode embeds: the last `countback` messages that are
/// not ignored, their text joined by newlines; `None` when there is none.
pub fn prompt_text(chat: &Chat, o: TextOptions) -> Option<String> {
    let texts: Vec<String> = chat
        .messages
        .iter()
        .filter_map(|m| match m {
            Message::System { text } if !o.ignore_system => Some(text.clone()),
            Message::User { parts } => {
                let t: Vec<&str> = parts
                    .iter()
                    .filter_map(|p| match p {
                        Part::Text(t) => Some(t.as_str()),
                        _ => None,
                    })
                    .collect();
                Some(t.join("\n"))
            }
            Message::Assistant { text, .. } if !o.ignore_assistant => text.clone(),
            Message::Tool { content, .. } if !o.ignore_tool => Some(content.clone()),
            _ => None,
        })
        .filter(|t| !t.is_empty())
        .collect();
    let start = texts.len().saturating_sub(o.countback.max(1));
    let joined = texts[start..].join("\n");
    (!joined.is_empty()).then_some(joined)
}

/// Whether a request may be cached, and if not why (logged as the bypass reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admissibility {
    Cacheable,
    /// It did not ask for determinism (`temperature = 0`) and did not opt in.
    Nondeterministic,
    /// Its last message is a tool result: the answer depends on tool state.
    ToolResult,
    /// It sets fields the neutral form does not carry (`n`, `logprobs`, ...),
    /// whose values the key could not tell apart.
    Uncarried,
}

impl Admissibility {
    /// Judges `chat`: `opted_in` is the caller's `x-tollgate-cache: on` or
    /// `cache_nondeterministic`; `tool_results` is `cache_tool_results`.
    pub fn of(chat: &Chat, opted_in: bool, tool_results: bool) -> Self {
        if !chat.uncarried.is_empty() {
            return Admissibility::Uncarried;
        }
        if !tool_results && matches!(chat.messages.last(), Some(Message::Tool { .. })) {
            return Admissibility::ToolResult;
        }
        if !opted_in && chat.temperature != Some(0.0) {
            return Admissibility::Nondeterministic;
        }
        Admissibility::Cacheable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_llm::{ChatRequest, ModelDefaults};

    fn chat(body: &str) -> Chat {
        let req = ChatRequest::parse(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {}", e.message));
        Chat::from_request(&req, &ModelDefaults::default()).unwrap_or_else(|e| panic!("{}", e.message))
    }

    const BASE: &str = r#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]"#;

    fn with(extra: &str) -> Chat {
        chat(&format!("{BASE}{extra}}}"))
    }

    #[test]
    fn the_key_ignores_streaming_usage_and_extra_fields_that_change_nothing() {
        let k = exact_key("ns", &with(""));
        assert_eq!(k.len(), 64);
        assert_eq!(k, exact_key("ns", &with(r#","stream":true,"stream_options":{"include_usage":true}"#)));
        assert_eq!(k, exact_key("ns", &with(r#","user":"someone""#)));
    }

    #[test]
    fn the_key_changes_with_anything_that_changes_the_answer() {
        let k = exact_key("ns", &with(""));
        assert_ne!(k, exact_key("other", &with("")), "namespace");
        assert_ne!(
            k,
            exact_key("ns", &chat(r#"{"model":"m2","temperature":0,"messages":[{"role":"user","content":"hi"}]}"#))
        );
        assert_ne!(
            k,
            exact_key("ns", &chat(r#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi!"}]}"#))
        );
        assert_ne!(k, exact_key("ns", &with(r#","max_tokens":5"#)));
        assert_ne!(k, exact_key("ns", &with(r#","top_p":0.5"#)));
        assert_ne!(k, exact_key("ns", &with(r#","stop":["x"]"#)));
        let tools = r#","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]"#;
        assert_ne!(k, exact_key("ns", &with(tools)));
        let choice = r#","tool_choice":"required""#;
        assert_ne!(exact_key("ns", &with(tools)), exact_key("ns", &with(&format!("{tools}{choice}"))), "tool_choice");
        assert_ne!(k, exact_key("ns", &with(r#","response_format":{"type":"json_object"}"#)), "response_format");
        assert_ne!(k, exact_key("ns", &with(r#","seed":7"#)), "seed");
        let warm = r#"{"model":"m","temperature":0.5,"messages":[{"role":"user","content":"hi"}]}"#;
        assert_ne!(k, exact_key("ns", &chat(warm)), "temperature");
        let system = r#"{"model":"m","temperature":0,"messages":[{"role":"system","content":"be brief"},
            {"role":"user","content":"hi"}]}"#;
        assert_ne!(k, exact_key("ns", &chat(system)), "system prompt");
    }

    #[test]
    fn the_semantic_context_is_what_the_embedded_text_leaves_out() {
        let plain = semantic_context(&with(""), false);
        assert_eq!(plain, semantic_context(&with(r#","stream":true"#), false));
        let tools = r#","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]"#;
        for extra in [tools, r#","response_format":{"type":"json_object"}"#, r#","max_tokens":5"#, r#","seed":7"#] {
            assert_ne!(plain, semantic_context(&with(extra), false), "{extra}");
        }
        let system = chat(
            r#"{"model":"m","temperature":0,"messages":[{"role":"system","content":"be brief"},
            {"role":"user","content":"hi"}]}"#,
        );
        assert_ne!(plain, semantic_context(&system, false), "the system prompt counts");
        assert_eq!(plain, semantic_context(&system, true), "unless ignored");
        let other_question = chat(r#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"yo"}]}"#);
        assert_eq!(plain, semantic_context(&other_question, false), "the embedded text is not part of it");
    }

    #[test]
    fn determinism_or_an_opt_in_is_required() {
        assert_eq!(Admissibility::of(&with(""), false, false), Admissibility::Cacheable);
        let warm = chat(r#"{"model":"m","temperature":0.7,"messages":[{"role":"user","content":"hi"}]}"#);
        assert_eq!(Admissibility::of(&warm, false, false), Admissibility::Nondeterministic);
        assert_eq!(Admissibility::of(&warm, true, false), Admissibility::Cacheable);
        let unset = chat(r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#);
        assert_eq!(Admissibility::of(&unset, false, false), Admissibility::Nondeterministic);
        assert_eq!(Admissibility::of(&with(r#","n":2"#), true, false), Admissibility::Uncarried);
    }

    #[test]
    fn a_tool_result_last_is_not_cached_unless_configured() {
        let body = r#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"weather?"},
            {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"w","arguments":"{}"}}]},
            {"role":"tool","tool_call_id":"c1","content":"sunny"}]}"#;
        let c = chat(body);
        assert_eq!(Admissibility::of(&c, true, false), Admissibility::ToolResult);
        assert_eq!(Admissibility::of(&c, false, true), Admissibility::Cacheable);
    }

    #[test]
    fn prompt_text_takes_the_last_messages_not_ignored() {
        let c = chat(
            r#"{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"one"},
            {"role":"assistant","content":"two"},{"role":"user","content":[{"type":"text","text":"three"}]}]}"#,
        );
        let o = TextOptions { countback: 1, ignore_system: false, ignore_assistant: false, ignore_tool: false };
        assert_eq!(prompt_text(&c, o).as_deref(), Some("three"));
        assert_eq!(prompt_text(&c, TextOptions { countback: 3, ..o }).as_deref(), Some("one\ntwo\nthree"));
        let skip = TextOptions { countback: 9, ignore_system: true, ignore_assistant: true, ..o };
        assert_eq!(prompt_text(&c, skip).as_deref(), Some("one\nthree"));
    }
}

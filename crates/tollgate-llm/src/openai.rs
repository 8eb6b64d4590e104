//! The OpenAI wire format on the way back: usage and model from JSON answers,
//! and a stream tap that reads usage from SSE chunks and drops the usage chunk
//! the gateway asked for on the caller's behalf.

use bytes::{Bytes, BytesMut};
use serde::Deserialize;

use crate::sse::{event_data, EventSplitter};
use crate::usage::OpenAiUsage;
use crate::Usage;

/// Default endpoint when a target sets no `upstream_url`.
pub const DEFAULT_CHAT_URL: &str = "https://api.openai.com/v1/chat/completions";
/// Default endpoint of Responses routes whose target is OpenAI.
pub const DEFAULT_RESPONSES_URL: &str = "https://api.openai.com/v1/responses";

/// The parts of an answer the gateway reads; everything else passes untouched.
#[derive(Debug, Deserialize)]
struct AnswerFacts {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

/// Usage and model of a JSON chat completion. `None` when the body is not an
/// OpenAI answer (the caller then treats it as a provider fault).
pub fn answer_facts(body: &[u8]) -> Option<(Option<Usage>, Option<String>)> {
    let facts: AnswerFacts = serde_json::from_slice(body).ok()?;
    Some((facts.usage.map(Usage::from), facts.model))
}

/// A chunk as far as the tap cares.
#[derive(Debug, Deserialize)]
struct ChunkFacts {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

/// Watches an OpenAI SSE stream on its way to the client.
#[derive(Debug)]
pub struct StreamTap {
    splitter: EventSplitter,
    client_wants_usage: bool,
    pub usage: Option<Usage>,
    pub model: Option<String>,
    /// Content-bearing events forwarded so far.
    pub events: u64,
    pub saw_done: bool,
}

impl StreamTap {
    pub fn new(client_wants_usage: bool) -> Self {
        StreamTap {
            splitter: EventSplitter::new(),
            client_wants_usage,
            usage: None,
            model: None,
            events: 0,
            saw_done: false,
        }
    }

    /// Feeds upstream bytes; returns what to send downstream now (complete
    /// events only, in order, unchanged except the dropped usage chunk).
    pub fn feed(&mut self, input: &[u8]) -> Bytes {
        self.splitter.push(input);
        let mut out = BytesMut::new();
        while let Some(event) = self.splitter.next_event() {
            let event = match self.keep(&event) {
                Keep::Drop => continue,
                Keep::As => event,
                Keep::Rewritten(e) => e,
            };
            if out.is_empty() {
                out = BytesMut::from(&event[..]);
            } else {
                out.extend_from_slice(&event);
            }
        }
        out.freeze()
    }

    /// Whatever is buffered when the upstream ends (a cut stream's tail).
    pub fn finish(&mut self) -> Bytes {
        self.splitter.take_rest()
    }

    fn keep(&mut self, event: &[u8]) -> Keep {
        let Some(data) = event_data(event) else {
            return Keep::As;
        };
        if *data == *b"[DONE]" {
            self.saw_done = true;
            return Keep::As;
        }
        self.events += 1;
        // Only chunks that carry a usage object (or the first, for the model)
        // are parsed; the rest pass as bytes.
        let has_usage = memchr::memmem::find(&data, b"\"usage\"").is_some()
            && memchr::memmem::find(&data, b"\"usage\":null").is_none()
            && memchr::memmem::find(&data, b"\"usage\": null").is_none();
        if !has_usage && self.model.is_some() {
            return Keep::As;
        }
        let Ok(facts) = serde_json::from_slice::<ChunkFacts>(&data) else {
            return Keep::As;
        };
        if self.model.is_none() {
            self.model = facts.model;
        }
        if let Some(u) = facts.usage {
            self.usage = Some(u.into());
            if self.client_wants_usage {
                return Keep::As;
            }
            let usage_only = facts.choices.map(|c| c.is_empty()).unwrap_or(true);
            if usage_only {
                self.events -= 1;
                return Keep::Drop;
            }
            // Usage riding on a content chunk (Mistral's last chunk): the
            // caller did not ask for it, so the chunk goes without it.
            return without_usage(&data).map_or(Keep::As, Keep::Rewritten);
        }
        Keep::As
    }
}

/// What becomes of one upstream event.
enum Keep {
    Drop,
    As,
    Rewritten(Bytes),
}

/// The event for a chunk's JSON with its `usage` field removed.
fn without_usage(data: &[u8]) -> Option<Bytes> {
    let mut chunk: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(data).ok()?;
    chunk.remove("usage");
    let mut out = b"data: ".to_vec();
    serde_json::to_writer(&mut out, &chunk).ok()?;
    out.extend_from_slice(b"\n\n");
    Some(Bytes::from(out))
}

impl crate::stream::ChatStream for StreamTap {
    fn feed(&mut self, input: &[u8]) -> Bytes {
        StreamTap::feed(self, input)
    }

    fn finish(&mut self) -> Bytes {
        StreamTap::finish(self)
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    fn events(&self) -> u64 {
        self.events
    }

    fn completed(&self) -> bool {
        self.saw_done
    }

    fn fail(&mut self, error: crate::LlmError) -> Bytes {
        let mut event = BytesMut::from(&b"data: "[..]);
        event.extend_from_slice(&error.body());
        event.extend_from_slice(b"\n\n");
        event.freeze()
    }
}

/// A chat request for an OpenAI-format provider, built from the neutral form
/// (callers that speak another format). STUB.
pub fn request(_chat: &crate::chat::Chat, _opts: &crate::provider::ProviderOptions) -> Result<serde_json::Map<String, serde_json::Value>, crate::LlmError> {
    Err(crate::LlmError::new(501, "not_implemented", "OpenAI translation is not implemented yet"))
}

/// A chat completion read into neutral terms. STUB.
pub fn answer(_body: &[u8], _meta: &crate::completion::AnswerMeta) -> Result<crate::completion::Completion, crate::LlmError> {
    Err(crate::LlmError::new(502, "upstream_error", "not implemented"))
}

/// OpenAI chat chunks decoded into deltas. STUB.
#[derive(Debug, Default)]
pub struct StreamDecoder {}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }
}

impl crate::stream::Decoder for StreamDecoder {
    fn decode(&mut self, _input: &[u8], _out: &mut Vec<crate::stream::Delta>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shape from OpenAI's API reference (chat completion chunk object, with
    // stream_options.include_usage).
    const STREAM: &str = concat!(
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n",
        "data: [DONE]\n\n",
    );

    fn run(tap: &mut StreamTap, pieces: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in pieces {
            out.extend_from_slice(&tap.feed(p));
        }
        out.extend_from_slice(&tap.finish());
        out
    }

    #[test]
    fn usage_chunk_is_dropped_when_the_client_did_not_ask() {
        let mut tap = StreamTap::new(false);
        let out = run(&mut tap, &[STREAM.as_bytes()]);
        let out = String::from_utf8(out).expect("utf8");
        assert!(!out.contains("prompt_tokens"));
        assert!(out.ends_with("data: [DONE]\n\n"));
        assert_eq!(
            tap.usage,
            Some(Usage { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11, cached_tokens: 4, ..Default::default() })
        );
        assert_eq!(tap.model.as_deref(), Some("gpt-4o-2024-08-06"));
        assert!(tap.saw_done);
        assert_eq!(tap.events, 3);
    }

    #[test]
    fn usage_chunk_is_kept_when_the_client_asked() {
        let mut tap = StreamTap::new(true);
        let out = run(&mut tap, &[STREAM.as_bytes()]);
        assert_eq!(out, STREAM.as_bytes());
    }

    #[test]
    fn any_split_gives_the_same_output() {
        let whole = run(&mut StreamTap::new(false), &[STREAM.as_bytes()]);
        let b = STREAM.as_bytes();
        for cut in 0..=b.len() {
            let mut tap = StreamTap::new(false);
            assert_eq!(run(&mut tap, &[&b[..cut], &b[cut..]]), whole, "cut at {cut}");
            assert_eq!(tap.usage.map(|u| u.total_tokens), Some(11));
        }
        let ones: Vec<&[u8]> = b.chunks(1).collect();
        assert_eq!(run(&mut StreamTap::new(false), &ones), whole);
    }

    #[test]
    fn usage_on_a_content_chunk_is_removed_when_the_client_did_not_ask() {
        // Mistral's last chunk: finish_reason and usage together.
        let stream = concat!(
            "data: {\"id\":\"m1\",\"model\":\"mistral-large\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"m1\",\"model\":\"mistral-large\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}\n\n",
            "data: [DONE]\n\n",
        );
        let mut tap = StreamTap::new(false);
        let out = String::from_utf8(run(&mut tap, &[stream.as_bytes()])).expect("utf8");
        assert!(!out.contains("usage") && out.contains("\"finish_reason\":\"stop\""), "{out}");
        assert_eq!(tap.usage.map(|u| u.total_tokens), Some(6));
        let mut tap = StreamTap::new(true);
        assert_eq!(run(&mut tap, &[stream.as_bytes()]), stream.as_bytes());
    }

    #[test]
    fn json_answer_facts() {
        let body = br#"{"id":"x","object":"chat.completion","model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;
        let (usage, model) = answer_facts(body).expect("parsed");
        assert_eq!(usage.map(|u| u.total_tokens), Some(7));
        assert_eq!(model.as_deref(), Some("gpt-4o-2024-08-06"));
        assert!(answer_facts(b"<html>").is_none());
    }
}

//! Restoring placeholders in a relayed stream, in the caller's format: the
//! text deltas (chat chunks' `delta.content`, Messages' `text_delta`,
//! Responses' `output_text.delta`) go through a `StreamRestorer`, which
//! holds back only a tail that could still grow into a placeholder, across
//! pings, keep-alives and chunks without text, until the text ends
//! (`content_block_stop`, a `finish_reason`, `output_text.done`, `[DONE]`,
//! an error, the end of the stream); every other event gets whole
//! placeholders restored. Events without `<` pass as they are, unparsed.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use serde_json::Value;
use tollgate_guard::{Format, StreamRestorer, Vault};
use tollgate_llm::ingress::Ingress;
use tollgate_llm::sse::{event_data, with_data, EventSplitter};
use tollgate_llm::stream::ChatStream;
use tollgate_llm::{LlmError, Usage};

use crate::ctx::RequestCtx;

/// `stream`, restoring the request's placeholders when the sanitizer asked to.
pub fn restoring(ctx: &RequestCtx, ingress: Ingress, stream: Box<dyn ChatStream>) -> Box<dyn ChatStream> {
    match ctx.guard.as_ref().and_then(|g| g.restore.clone()) {
        Some(vault) => Box::new(Restoring {
            inner: stream,
            vault,
            format: super::format_of(ingress),
            split: EventSplitter::new(),
            restorer: StreamRestorer::default(),
            template: None,
            unrestored: Bytes::new(),
        }),
        None => stream,
    }
}

struct Restoring {
    inner: Box<dyn ChatStream>,
    vault: Arc<Vault>,
    format: Format,
    split: EventSplitter,
    restorer: StreamRestorer,
    /// The last text-delta event, to carry held-back text when the deltas end.
    template: Option<(Bytes, Value)>,
    /// The last feed's bytes as the provider wrote them, for the access log.
    unrestored: Bytes,
}

/// The text of a delta event in `format`.
fn delta_text(format: Format, v: &mut Value) -> Option<&mut String> {
    let text = match format {
        Format::OpenAiChat => v.get_mut("choices")?.get_mut(0)?.get_mut("delta")?.get_mut("content")?,
        Format::AnthropicMessages => {
            if v.get("type")?.as_str()? != "content_block_delta" {
                return None;
            }
            v.get_mut("delta")?.get_mut("text")?
        }
        Format::OpenAiResponses => {
            if v.get("type")?.as_str()? != "response.output_text.delta" {
                return None;
            }
            v.get_mut("delta")?
        }
    };
    match text {
        Value::String(s) => Some(s),
        _ => None,
    }
}

impl Restoring {
    fn process(&mut self, bytes: &[u8], end: bool) -> Bytes {
        self.split.push(bytes);
        let mut out = BytesMut::new();
        while let Some(ev) = self.split.next_event() {
            self.event(ev, &mut out);
        }
        if end {
            let rest = self.split.take_rest();
            if !rest.is_empty() {
                self.event(rest, &mut out);
            }
            self.flush(&mut out);
        }
        out.freeze()
    }

    fn event(&mut self, ev: Bytes, out: &mut BytesMut) {
        let has_lt = memchr_lt(&ev);
        if !has_lt && !self.restorer.holds() {
            out.extend_from_slice(&ev);
            return;
        }
        let data = event_data(&ev);
        let parsed = data.as_ref().and_then(|d| serde_json::from_slice::<Value>(d).ok());
        let Some(mut v) = parsed else {
            // `[DONE]` (or other non-JSON data) ends the text; a comment or
            // keep-alive does not, so the held tail stays held across it.
            if data.is_some() {
                self.flush(out);
            }
            out.extend_from_slice(&ev);
            return;
        };
        if let Some(text) = delta_text(self.format, &mut v) {
            *text = self.restorer.push(&self.vault, text);
            let data = serde_json::to_vec(&v).unwrap_or_default();
            out.extend_from_slice(&with_data(&ev, &data));
            self.template = Some((ev, v));
            return;
        }
        if ends_text(self.format, &v) {
            self.flush(out);
        }
        match std::str::from_utf8(&ev) {
            Ok(s) => out.extend_from_slice(self.vault.restore_json(s).as_bytes()),
            Err(_) => out.extend_from_slice(&ev),
        }
    }

    /// Sends what the restorer holds as one more delta, like the last one.
    fn flush(&mut self, out: &mut BytesMut) {
        if !self.restorer.holds() {
            return;
        }
        let carry = self.restorer.flush();
        let Some((ev, mut v)) = self.template.clone() else { return };
        if let Some(text) = delta_text(self.format, &mut v) {
            *text = carry;
            out.extend_from_slice(&with_data(&ev, &serde_json::to_vec(&v).unwrap_or_default()));
        }
    }
}

/// Whether `v` (an event that is not a text delta) ends the text deltas, so
/// a held tail must go out before it. Others (Anthropic's `ping`, chat chunks
/// without content, tool call deltas) pass while the tail stays held: a
/// placeholder split around them still comes out whole.
fn ends_text(format: Format, v: &Value) -> bool {
    if v.get("error").is_some() {
        return true;
    }
    let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
    match format {
        Format::OpenAiChat => {
            let choice = v.get("choices").and_then(|c| c.get(0));
            choice.is_none_or(|c| c.get("finish_reason").is_some_and(|f| !f.is_null()))
        }
        Format::AnthropicMessages => {
            matches!(kind, "content_block_stop" | "message_delta" | "message_stop" | "error")
        }
        Format::OpenAiResponses => matches!(
            kind,
            "response.output_text.done"
                | "response.content_part.done"
                | "response.output_item.done"
                | "response.completed"
                | "response.failed"
                | "response.incomplete"
                | "error"
        ),
    }
}

fn memchr_lt(b: &[u8]) -> bool {
    b.contains(&b'<')
}

impl ChatStream for Restoring {
    fn feed(&mut self, input: &[u8]) -> Bytes {
        let out = self.inner.feed(input);
        self.unrestored = out.clone();
        self.process(&out, false)
    }

    fn unrestored(&mut self) -> Option<Bytes> {
        Some(std::mem::take(&mut self.unrestored))
    }

    fn finish(&mut self) -> Bytes {
        let out = self.inner.finish();
        self.process(&out, true)
    }

    fn usage(&self) -> Option<Usage> {
        self.inner.usage()
    }

    fn model(&self) -> Option<&str> {
        self.inner.model()
    }

    fn events(&self) -> u64 {
        self.inner.events()
    }

    fn completed(&self) -> bool {
        self.inner.completed()
    }

    fn fail(&mut self, error: LlmError) -> Bytes {
        let mut out = BytesMut::new();
        self.flush(&mut out);
        out.extend_from_slice(&self.inner.fail(error));
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::facts::GuardFacts;

    /// A provider stream already in the caller's format: bytes pass as they come.
    struct Echo;

    impl ChatStream for Echo {
        fn feed(&mut self, input: &[u8]) -> Bytes {
            Bytes::copy_from_slice(input)
        }
        fn finish(&mut self) -> Bytes {
            Bytes::new()
        }
        fn usage(&self) -> Option<Usage> {
            None
        }
        fn model(&self) -> Option<&str> {
            None
        }
        fn events(&self) -> u64 {
            0
        }
        fn completed(&self) -> bool {
            true
        }
        fn fail(&mut self, _: LlmError) -> Bytes {
            Bytes::new()
        }
    }

    fn ctx_with_vault() -> RequestCtx {
        let mut vault = Vault::default();
        vault.placeholder("EMAIL", "a@x.io");
        let mut ctx = RequestCtx::new();
        ctx.guard = Some(GuardFacts { restore: Some(Arc::new(vault)), ..GuardFacts::default() });
        ctx
    }

    fn chunk(content: &str) -> String {
        format!("data: {}\n\n", serde_json::json!({"choices": [{"index": 0, "delta": {"content": content}}]}))
    }

    /// The text deltas of an OpenAI chat stream.
    fn texts(out: &[u8]) -> Vec<String> {
        let mut split = EventSplitter::new();
        split.push(out);
        let mut texts = Vec::new();
        while let Some(ev) = split.next_event() {
            let Some(d) = event_data(&ev) else { continue };
            if let Ok(mut v) = serde_json::from_slice::<Value>(&d) {
                if let Some(t) = delta_text(Format::OpenAiChat, &mut v) {
                    texts.push(t.clone());
                }
            }
        }
        texts
    }

    #[test]
    fn a_placeholder_split_across_events_and_reads_is_restored() {
        let mut s = restoring(&ctx_with_vault(), Ingress::OpenAiChat, Box::new(Echo));
        let input = [chunk("mail <EM"), chunk("AIL_"), chunk("1> now"), "data: [DONE]\n\n".into()].concat();
        // Fed in reads that cut events anywhere.
        let mut out = Vec::new();
        for piece in input.as_bytes().chunks(7) {
            out.extend_from_slice(&s.feed(piece));
        }
        out.extend_from_slice(&s.finish());
        assert_eq!(texts(&out).concat(), "mail a@x.io now");
        assert!(String::from_utf8_lossy(&out).ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn the_unrestored_bytes_are_kept_for_the_log() {
        let mut s = restoring(&ctx_with_vault(), Ingress::OpenAiChat, Box::new(Echo));
        let input = chunk("mail <EMAIL_1> now");
        let out = s.feed(input.as_bytes());
        assert_eq!(texts(&out).concat(), "mail a@x.io now");
        assert_eq!(s.unrestored().as_deref(), Some(input.as_bytes()));
    }

    #[test]
    fn a_held_tail_is_released_before_an_ending_event() {
        let mut s = restoring(&ctx_with_vault(), Ingress::OpenAiChat, Box::new(Echo));
        let out = s.feed(format!("{}data: [DONE]\n\n", chunk("a <EMAIL")).as_bytes());
        assert_eq!(texts(&out), vec!["a ", "<EMAIL"]);
        let mut s = restoring(&ctx_with_vault(), Ingress::OpenAiChat, Box::new(Echo));
        let finish = format!(
            "data: {}\n\n",
            serde_json::json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        );
        let out = s.feed(format!("{}{finish}", chunk("a <EMAIL")).as_bytes());
        assert_eq!(texts(&out), vec!["a ", "<EMAIL"]);
    }

    #[test]
    fn a_placeholder_split_around_a_keep_alive_or_an_empty_chunk_is_restored() {
        let mut s = restoring(&ctx_with_vault(), Ingress::OpenAiChat, Box::new(Echo));
        let empty = format!("data: {}\n\n", serde_json::json!({"choices": [{"index": 0, "delta": {}}]}));
        let input =
            [chunk("mail <EM"), ": keep-alive\n\n".into(), empty, chunk("AIL_1> now"), "data: [DONE]\n\n".into()];
        let mut out = Vec::new();
        for piece in input {
            out.extend_from_slice(&s.feed(piece.as_bytes()));
        }
        out.extend_from_slice(&s.finish());
        assert_eq!(texts(&out).concat(), "mail a@x.io now");
        assert!(!String::from_utf8_lossy(&out).contains("<EM"));
    }

    #[test]
    fn a_placeholder_split_around_an_anthropic_ping_is_restored() {
        let mut s = restoring(&ctx_with_vault(), Ingress::AnthropicMessages, Box::new(Echo));
        let delta = |t: &str| {
            let v = serde_json::json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}});
            format!("event: content_block_delta\ndata: {v}\n\n")
        };
        let ping = "event: ping\ndata: {\"type\": \"ping\"}\n\n".to_string();
        let stop = "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n".to_string();
        let mut out = Vec::new();
        for piece in [delta("to <EMA"), ping, delta("IL_1>"), stop] {
            out.extend_from_slice(&s.feed(piece.as_bytes()));
        }
        let out = String::from_utf8_lossy(&out).to_string();
        assert!(out.contains("a@x.io") && !out.contains("<EMA"), "{out}");
        assert!(out.ends_with("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"));
    }

    #[test]
    fn without_a_vault_the_stream_is_left_alone() {
        let mut s = restoring(&RequestCtx::new(), Ingress::OpenAiChat, Box::new(Echo));
        let input = format!("{}: keep-alive\n\n{}", chunk("mail <EMAIL_1> now <EM"), chunk("AIL_1>"));
        let mut out = s.feed(input.as_bytes()).to_vec();
        out.extend_from_slice(&s.finish());
        assert_eq!(out, input.as_bytes());
    }
}

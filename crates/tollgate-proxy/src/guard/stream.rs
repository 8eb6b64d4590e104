//! The guardrails' answer side in a relayed stream, in the caller's format.
//! Text deltas (chat chunks' `delta.content`, Messages' `text_delta`,
//! Responses' `output_text.delta`) go through the sanitizer's
//! `StreamMasker` when it sees answers (OUTPUT or BOTH), then through a
//! `StreamRestorer` (`recover_redacted`), which holds back only a tail that
//! could still grow into a placeholder. Held text waits across pings,
//! keep-alives and chunks without text, until the text ends
//! (`content_block_stop`, a `finish_reason`, `output_text.done`, `[DONE]`,
//! an error, the end of the stream). Every other event is masked whole and
//! gets whole placeholders restored; without masking, events without `<`
//! pass as they are, unparsed. Tool-call argument deltas are not masked
//! (their pieces are not text); the events that carry them whole are.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use serde_json::Value;
use tollgate_guard::{Format, Sanitizer, StreamMasker, StreamRestorer, Vault};
use tollgate_llm::ingress::Ingress;
use tollgate_llm::sse::{event_data, with_data, EventSplitter};
use tollgate_llm::stream::ChatStream;
use tollgate_llm::{LlmError, Usage};

use crate::ctx::RequestCtx;

/// `stream` as the caller may read it: masked when the sanitizer sees
/// answers, placeholders restored when it asked to.
pub fn restoring(ctx: &RequestCtx, ingress: Ingress, stream: Box<dyn ChatStream>) -> Box<dyn ChatStream> {
    let Some(facts) = ctx.guard.as_ref() else { return stream };
    let masking = facts.answer.sanitizer.clone().map(|sanitizer| Masking {
        sanitizer,
        vault: super::answer::answer_vault(ctx),
        text: StreamMasker::default(),
        counted: facts.masked_answer.clone(),
    });
    if facts.restore.is_none() && masking.is_none() {
        return stream;
    }
    Box::new(Restoring {
        inner: stream,
        vault: facts.restore.clone().unwrap_or_default(),
        masking,
        format: super::format_of(ingress),
        split: EventSplitter::new(),
        restorer: StreamRestorer::default(),
        template: None,
        logged: BytesMut::new(),
    })
}

/// A whole stream at once (a cached answer replayed) as the caller may read it.
pub fn stream_for_caller(ctx: &RequestCtx, ingress: Ingress, sse: Bytes) -> Bytes {
    let mut s = restoring(ctx, ingress, Box::new(Replay));
    let mut out = BytesMut::from(&s.feed(&sse)[..]);
    out.extend_from_slice(&s.finish());
    out.freeze()
}

/// A stream already in the caller's format: bytes pass as they come.
struct Replay;

impl ChatStream for Replay {
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

struct Restoring {
    inner: Box<dyn ChatStream>,
    /// The request's placeholders to restore (empty: none).
    vault: Arc<Vault>,
    masking: Option<Masking>,
    format: Format,
    split: EventSplitter,
    restorer: StreamRestorer,
    /// The last text-delta event, to carry held-back text when the deltas end.
    template: Option<(Bytes, Value)>,
    /// The last feed's output masked but not restored, for the access log.
    logged: BytesMut,
}

/// The sanitizer on the answer.
struct Masking {
    sanitizer: Arc<Sanitizer>,
    /// The request's placeholders and the answer's new ones.
    vault: Vault,
    text: StreamMasker,
    counted: Arc<AtomicUsize>,
}

impl Masking {
    fn text(&mut self, piece: &str, end: bool) -> String {
        let before = self.text.entities;
        let out = match end {
            false => self.text.push(&self.sanitizer.recognisers, &mut self.vault, piece),
            true => self.text.flush(&self.sanitizer.recognisers, &mut self.vault),
        };
        self.counted.fetch_add(self.text.entities - before, Ordering::Relaxed);
        out
    }

    fn event(&mut self, v: &mut Value) -> bool {
        let n = tollgate_guard::answer::mask_answer(&self.sanitizer.recognisers, v, &mut self.vault);
        self.counted.fetch_add(n, Ordering::Relaxed);
        n > 0
    }
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
        self.logged.clear();
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

    fn holds(&self) -> bool {
        self.restorer.holds() || self.masking.as_ref().is_some_and(|m| m.text.holds())
    }

    fn event(&mut self, ev: Bytes, out: &mut BytesMut) {
        if self.masking.is_none() && !memchr_lt(&ev) && !self.holds() {
            self.pass(&ev, out);
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
            self.pass(&ev, out);
            return;
        };
        if let Some(text) = delta_text(self.format, &mut v) {
            // The log keeps the provider's bytes unless masking rewrote the text.
            match self.masking.as_mut() {
                Some(m) => {
                    *text = m.text(text, false);
                    self.logged.extend_from_slice(&with_data(&ev, &serde_json::to_vec(&v).unwrap_or_default()));
                }
                None => self.logged.extend_from_slice(&ev),
            }
            if let Some(text) = delta_text(self.format, &mut v) {
                *text = self.restorer.push(&self.vault, text);
            }
            out.extend_from_slice(&with_data(&ev, &serde_json::to_vec(&v).unwrap_or_default()));
            self.template = Some((ev, v));
            return;
        }
        if ends_text(self.format, &v) {
            self.flush(out);
        }
        let masked = self.masking.as_mut().is_some_and(|m| m.event(&mut v));
        let ev = if masked { with_data(&ev, &serde_json::to_vec(&v).unwrap_or_default()) } else { ev };
        self.logged.extend_from_slice(&ev);
        match std::str::from_utf8(&ev) {
            Ok(s) => out.extend_from_slice(self.vault.restore_json(s).as_bytes()),
            Err(_) => out.extend_from_slice(&ev),
        }
    }

    /// An event sent as it came (and logged so).
    fn pass(&mut self, ev: &[u8], out: &mut BytesMut) {
        self.logged.extend_from_slice(ev);
        out.extend_from_slice(ev);
    }

    /// Sends what the masker and the restorer hold as one more delta, like the last one.
    fn flush(&mut self, out: &mut BytesMut) {
        if !self.holds() {
            return;
        }
        let Some((ev, mut v)) = self.template.clone() else { return };
        let masked = self.masking.as_mut().map(|m| m.text("", true)).unwrap_or_default();
        let mut carry = self.restorer.push(&self.vault, &masked);
        carry.push_str(&self.restorer.flush());
        // The restorer's held text was logged when it arrived; only the
        // masker's tail is new to the log.
        if let (false, Some(text)) = (masked.is_empty(), delta_text(self.format, &mut v)) {
            *text = masked;
            self.logged.extend_from_slice(&with_data(&ev, &serde_json::to_vec(&v).unwrap_or_default()));
        }
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
        self.process(&out, false)
    }

    fn unrestored(&mut self) -> Option<Bytes> {
        Some(std::mem::take(&mut self.logged).freeze())
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
        let mut s = restoring(&ctx_with_vault(), Ingress::OpenAiChat, Box::new(Replay));
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
        let mut s = restoring(&ctx_with_vault(), Ingress::OpenAiChat, Box::new(Replay));
        let input = chunk("mail <EMAIL_1> now");
        let out = s.feed(input.as_bytes());
        assert_eq!(texts(&out).concat(), "mail a@x.io now");
        assert_eq!(s.unrestored().as_deref(), Some(input.as_bytes()));
    }

    #[test]
    fn a_held_tail_is_released_before_an_ending_event() {
        let mut s = restoring(&ctx_with_vault(), Ingress::OpenAiChat, Box::new(Replay));
        let out = s.feed(format!("{}data: [DONE]\n\n", chunk("a <EMAIL")).as_bytes());
        assert_eq!(texts(&out), vec!["a ", "<EMAIL"]);
        let mut s = restoring(&ctx_with_vault(), Ingress::OpenAiChat, Box::new(Replay));
        let finish = format!(
            "data: {}\n\n",
            serde_json::json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        );
        let out = s.feed(format!("{}{finish}", chunk("a <EMAIL")).as_bytes());
        assert_eq!(texts(&out), vec!["a ", "<EMAIL"]);
    }

    #[test]
    fn a_placeholder_split_around_a_keep_alive_or_an_empty_chunk_is_restored() {
        let mut s = restoring(&ctx_with_vault(), Ingress::OpenAiChat, Box::new(Replay));
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
        let mut s = restoring(&ctx_with_vault(), Ingress::AnthropicMessages, Box::new(Replay));
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
    fn an_answer_is_masked_and_only_the_requests_own_entities_are_restored() {
        let mut ctx = ctx_with_vault();
        let recognisers = tollgate_guard::Recognisers::new(&[tollgate_guard::Kind::Email], &[]).unwrap();
        let sanitizer = Arc::new(Sanitizer { recognisers, whole_history: true });
        if let Some(f) = ctx.guard.as_mut() {
            f.answer.sanitizer = Some(sanitizer);
            f.answer.vault = f.restore.clone();
        }
        let mut s = restoring(&ctx, Ingress::OpenAiChat, Box::new(Replay));
        let pad = "padding words to push the text past the masker's hold-back window ".repeat(2);
        let input = [chunk("mail <EM"), chunk("AIL_1> and b@y"), chunk(".io, also a@x.io "), chunk(&pad)];
        let (mut out, mut logged) = (Vec::new(), Vec::new());
        for piece in input.iter().chain(std::iter::once(&"data: [DONE]\n\n".to_string())) {
            out.extend_from_slice(&s.feed(piece.as_bytes()));
            logged.extend_from_slice(&s.unrestored().unwrap_or_default());
        }
        out.extend_from_slice(&s.finish());
        // The caller's own a@x.io comes back; the provider's b@y.io is masked.
        assert_eq!(texts(&out).concat(), format!("mail a@x.io and <EMAIL_2>, also a@x.io {pad}"));
        assert_eq!(texts(&logged).concat(), format!("mail <EMAIL_1> and <EMAIL_2>, also <EMAIL_1> {pad}"));
        assert_eq!(ctx.guard.as_ref().unwrap().masked_answer.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn without_a_vault_the_stream_is_left_alone() {
        let mut s = restoring(&RequestCtx::new(), Ingress::OpenAiChat, Box::new(Replay));
        let input = format!("{}: keep-alive\n\n{}", chunk("mail <EMAIL_1> now <EM"), chunk("AIL_1>"));
        let mut out = s.feed(input.as_bytes()).to_vec();
        out.extend_from_slice(&s.finish());
        assert_eq!(out, input.as_bytes());
    }
}

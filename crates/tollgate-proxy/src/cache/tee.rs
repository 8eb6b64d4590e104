//! Storing what a provider answered on a miss: only a 200, only complete.
//! A JSON answer is read whole as the caller was sent it; a stream is read
//! event by event as it passes, and stored only if it ended with its end
//! event (a cut, broken or abandoned stream stores nothing).

use bytes::Bytes;
use tollgate_cache::{CachedAnswer, Collector};
use tollgate_llm::stream::ChatStream;
use tollgate_llm::{LlmError, Usage};

use crate::cache::pending::Pending;
use crate::ctx::RequestCtx;
use crate::llm::target::LlmTarget;

/// Stores a complete JSON answer of status `status` (the caller's format).
pub(crate) fn store_json(ctx: &mut RequestCtx, status: u16, body: &[u8], target: &LlmTarget) {
    let Some(pending) = ctx.cache.take() else { return };
    if status != 200 {
        return;
    }
    if let Some(answer) = CachedAnswer::from_json(pending.ingress, body) {
        pending.save(answer, &target.provider, &target.label);
    }
}

/// The stream, read on its way to the caller when this request may store it.
pub(crate) fn tee(
    ctx: &mut RequestCtx,
    status: u16,
    stream: Box<dyn ChatStream>,
    target: &LlmTarget,
) -> Box<dyn ChatStream> {
    let Some(pending) = ctx.cache.take() else { return stream };
    if status != 200 {
        return stream;
    }
    let collector = Collector::new(pending.ingress);
    Box::new(Tee {
        inner: stream,
        collector: Some(collector),
        pending: Some(pending),
        provider: target.provider.clone(),
        label: target.label.clone(),
    })
}

struct Tee {
    inner: Box<dyn ChatStream>,
    collector: Option<Collector>,
    pending: Option<Box<Pending>>,
    provider: String,
    label: String,
}

impl ChatStream for Tee {
    fn feed(&mut self, input: &[u8]) -> Bytes {
        let out = self.inner.feed(input);
        if let Some(c) = self.collector.as_mut() {
            c.feed(&out);
        }
        out
    }

    fn finish(&mut self) -> Bytes {
        let rest = self.inner.finish();
        if let Some(mut c) = self.collector.take() {
            c.feed(&rest);
            let mut answer = if self.inner.completed() { c.finish() } else { None };
            // The provider's own count: the caller's bytes carry usage only
            // when it asked (`include_usage`), and a hit must have it anyway.
            if let (Some(a), Some(u)) = (answer.as_mut(), self.inner.usage()) {
                a.usage = Some(u.into());
            }
            if let (Some(answer), Some(pending)) = (answer, self.pending.take()) {
                pending.save(answer, &self.provider, &self.label);
            }
        }
        rest
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
        self.collector = None;
        self.pending = None;
        self.inner.fail(error)
    }
}

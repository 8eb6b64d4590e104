//! Incremental Server-Sent Events framing: bytes arrive split anywhere, events
//! leave whole. An event ends at a blank line (`\n\n` or `\r\n\r\n`).
//! Shared by the LLM adapters (provider streams) and the MCP relay (server
//! streams, passed on byte for byte unless an event must change).

use std::borrow::Cow;

use bytes::{Buf, Bytes, BytesMut};

/// Splits a byte stream into complete SSE events (each returned with its
/// terminating blank line, so a pass-through writes the original bytes).
#[derive(Debug, Default)]
pub struct EventSplitter {
    buf: BytesMut,
    /// Where to resume looking for a terminator, so a long event arriving in
    /// many small reads is scanned once, not once per read.
    scanned: usize,
}

impl EventSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, input: &[u8]) {
        self.buf.extend_from_slice(input);
    }

    /// The next complete event, if one is buffered.
    pub fn next_event(&mut self) -> Option<Bytes> {
        let start = self.scanned.saturating_sub(3);
        let hay = &self.buf[start..];
        let mut search = 0;
        while let Some(pos) = memchr::memchr(b'\n', &hay[search..]) {
            let nl = start + search + pos;
            // `\n\n` or `\n\r\n` ends the event.
            let end = if self.buf.get(nl + 1) == Some(&b'\n') {
                Some(nl + 2)
            } else if self.buf.get(nl + 1) == Some(&b'\r') && self.buf.get(nl + 2) == Some(&b'\n') {
                Some(nl + 3)
            } else {
                None
            };
            if let Some(end) = end {
                self.scanned = 0;
                return Some(self.buf.split_to(end).freeze());
            }
            search += pos + 1;
        }
        self.scanned = self.buf.len();
        None
    }

    /// Bytes left over after the last complete event (a stream cut mid-event).
    pub fn take_rest(&mut self) -> Bytes {
        self.scanned = 0;
        self.buf.split().freeze()
    }

    pub fn is_empty(&self) -> bool {
        !self.buf.has_remaining()
    }

    /// Bytes held while waiting for an event's end (a bound for callers that
    /// must not buffer an endless event).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

fn lines(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    raw_lines(event).filter(|l| !l.is_empty())
}

/// Every line of `event`, without its `\n` or `\r\n`, found with memchr (a
/// byte-by-byte split was a tenth of a translated stream's CPU).
fn raw_lines(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(event);
    std::iter::from_fn(move || {
        let text = rest?;
        let line = match memchr::memchr(b'\n', text) {
            Some(i) => {
                rest = Some(&text[i + 1..]).filter(|r| !r.is_empty());
                &text[..i]
            }
            None => {
                rest = None;
                text
            }
        };
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    })
}

/// The value of a `name:` field line (`None` when the line is another field).
fn field<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let rest = line.strip_prefix(name)?;
    if rest.is_empty() {
        return Some(rest);
    }
    let value = rest.strip_prefix(b":")?;
    Some(value.strip_prefix(b" ").unwrap_or(value))
}

/// The event's `event:` name (`message` when absent, as the SSE spec says).
pub fn event_name(event: &[u8]) -> &[u8] {
    lines(event).find_map(|l| field(l, b"event")).unwrap_or(b"message")
}

/// The same event with its data replaced; other fields (id, event, retry,
/// comments) keep their place, and `data` is split into lines as SSE requires.
pub fn with_data(event: &[u8], data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(event.len() + data.len());
    let mut placed = false;
    for line in lines(event) {
        if field(line, b"data").is_some() {
            if !placed {
                for d in data.split(|&b| b == b'\n') {
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(d);
                    out.extend_from_slice(b"\n");
                }
                placed = true;
            }
            continue;
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"\n");
    out.freeze()
}

/// The concatenated `data:` lines of an event (without the `data:` prefix and
/// the optional single space), or `None` for comment-only or empty events.
pub fn event_data(event: &[u8]) -> Option<Cow<'_, [u8]>> {
    // Borrowed when the event has one data line (nearly always): no copy per event.
    let mut data: Option<Cow<'_, [u8]>> = None;
    for line in raw_lines(event) {
        if let Some(rest) = line.strip_prefix(b"data:") {
            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
            match &mut data {
                Some(d) => {
                    let d = d.to_mut();
                    d.push(b'\n');
                    d.extend_from_slice(rest);
                }
                None => data = Some(Cow::Borrowed(rest)),
            }
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &[u8] = b"data: {\"a\":1}\n\n: keep-alive\n\ndata: {\"b\":2}\r\n\r\ndata: [DONE]\n\n";

    fn split_all(pieces: &[&[u8]]) -> Vec<Bytes> {
        let mut s = EventSplitter::new();
        let mut out = Vec::new();
        for p in pieces {
            s.push(p);
            while let Some(e) = s.next_event() {
                out.push(e);
            }
        }
        assert!(s.is_empty());
        out
    }

    #[test]
    fn same_events_whatever_the_chunk_boundaries() {
        let whole = split_all(&[STREAM]);
        assert_eq!(whole.len(), 4);
        for cut in 0..=STREAM.len() {
            assert_eq!(split_all(&[&STREAM[..cut], &STREAM[cut..]]), whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(split_all(&bytes), whole);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let mut s = EventSplitter::new();
            s.push(&bytes);
            while let Some(e) = s.next_event() {
                let _ = (event_data(&e), event_name(&e), with_data(&e, b"x\ny"));
            }
            let _ = s.take_rest();
        }
    }

    #[test]
    fn names_and_replaced_data_keep_the_other_fields() {
        assert_eq!(event_name(b"event: endpoint\r\ndata: /m\r\n\r\n"), b"endpoint");
        assert_eq!(event_name(b"data: x\n\n"), b"message");
        let e = b"event: message\nid: 7\ndata: {\"old\":\ndata: 1}\nretry: 10\n\n";
        let out = with_data(e, b"{\"new\":2}");
        assert_eq!(&out[..], b"event: message\nid: 7\ndata: {\"new\":2}\nretry: 10\n\n");
    }

    #[test]
    fn data_lines_are_extracted() {
        assert_eq!(event_data(b"data: {\"a\":1}\n\n").as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(event_data(b": comment\n\n"), None);
        assert_eq!(event_data(b"event: x\ndata: a\ndata:b\n\n").as_deref(), Some(&b"a\nb"[..]));
    }
}

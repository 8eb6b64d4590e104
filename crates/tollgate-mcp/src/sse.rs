//! Server-sent events, one event at a time: a splitter for a byte stream that
//! arrives in arbitrary pieces, and helpers to read and replace an event's data.
//! Events that need no change are passed on byte for byte.

use bytes::{Bytes, BytesMut};

/// Largest single event held while waiting for its end (16 MiB).
pub const MAX_EVENT: usize = 16 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct EventSplitter {
    buf: BytesMut,
    /// Where to resume looking for an event's end.
    scanned: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub struct EventTooLarge;

impl EventSplitter {
    /// Complete events (each with its terminating blank line) found so far.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Bytes>, EventTooLarge> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = event_end(&self.buf, self.scanned) {
            out.push(self.buf.split_to(end).freeze());
            self.scanned = 0;
        }
        // Resume one byte early: a terminator may straddle two chunks.
        self.scanned = self.buf.len().saturating_sub(3);
        if self.buf.len() > MAX_EVENT {
            return Err(EventTooLarge);
        }
        Ok(out)
    }

    /// What is left when the stream ends (an event without its blank line).
    pub fn rest(&mut self) -> Bytes {
        self.scanned = 0;
        self.buf.split().freeze()
    }
}

/// The end (exclusive) of the first event in `buf`: a line feed followed by
/// an empty line (`\n\n` or `\n\r\n`).
fn event_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = memchr::memchr(b'\n', &buf[at..]).map(|i| i + at) {
        match buf.get(i + 1) {
            Some(b'\n') => return Some(i + 2),
            Some(b'\r') if buf.get(i + 2) == Some(&b'\n') => return Some(i + 3),
            _ => at = i + 1,
        }
    }
    None
}

fn lines(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    event
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
}

fn field<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let rest = line.strip_prefix(name)?;
    if rest.is_empty() {
        return Some(rest);
    }
    let value = rest.strip_prefix(b":")?;
    Some(value.strip_prefix(b" ").unwrap_or(value))
}

/// The event's data: its `data:` lines joined by line feeds; `None` without any.
pub fn data(event: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for value in lines(event).filter_map(|l| field(l, b"data")) {
        match &mut out {
            Some(d) => {
                d.push(b'\n');
                d.extend_from_slice(value);
            }
            None => out = Some(value.to_vec()),
        }
    }
    out
}

/// The event's `event:` name (`message` when absent, as the SSE spec says).
pub fn name(event: &[u8]) -> &[u8] {
    lines(event).find_map(|l| field(l, b"event")).unwrap_or(b"message")
}

/// The same event with its data replaced; other fields (id, event, retry,
/// comments) keep their place. `data` is split into lines as SSE requires.
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STREAM: &[u8] = b": ping\n\nevent: message\nid: 1\ndata: {\"a\":1}\n\nevent: endpoint\r\ndata: /messages/?session_id=x\r\n\r\ndata: a\ndata: b\n\n";

    #[test]
    fn splits_events_whatever_the_line_endings() {
        let mut s = EventSplitter::default();
        let events = s.feed(STREAM).unwrap();
        assert_eq!(events.len(), 4);
        assert_eq!(&events[0][..], b": ping\n\n");
        assert_eq!(data(&events[1]).unwrap(), b"{\"a\":1}");
        assert_eq!(name(&events[2]), b"endpoint");
        assert_eq!(data(&events[2]).unwrap(), b"/messages/?session_id=x");
        assert_eq!(data(&events[3]).unwrap(), b"a\nb");
        assert_eq!(name(&events[3]), b"message");
        assert!(data(&events[0]).is_none());
        assert!(s.rest().is_empty());
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_events_and_bytes(cuts in proptest::collection::vec(0..STREAM.len(), 0..8)) {
            let mut cuts = cuts;
            cuts.sort();
            let mut s = EventSplitter::default();
            let mut events = Vec::new();
            let mut at = 0;
            for c in cuts.into_iter().chain([STREAM.len()]) {
                events.extend(s.feed(&STREAM[at..c]).unwrap());
                at = c;
            }
            prop_assert_eq!(events.len(), 4);
            let joined: Vec<u8> = events.concat();
            prop_assert_eq!(&joined[..], STREAM);
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut s = EventSplitter::default();
            for e in s.feed(&bytes).unwrap() {
                let _ = data(&e);
                let _ = name(&e);
                let _ = with_data(&e, b"x\ny");
            }
        }
    }

    #[test]
    fn replacing_data_keeps_the_other_fields() {
        let e = b"event: message\nid: 7\ndata: {\"old\":\ndata: 1}\nretry: 10\n\n";
        let out = with_data(e, b"{\"new\":2}");
        assert_eq!(&out[..], b"event: message\nid: 7\ndata: {\"new\":2}\nretry: 10\n\n");
    }

    #[test]
    fn oversized_events_are_refused() {
        let mut s = EventSplitter::default();
        assert_eq!(s.feed(&vec![b'a'; MAX_EVENT + 1]), Err(EventTooLarge));
    }
}

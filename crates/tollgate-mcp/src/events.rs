//! Event ids the gateway gives a session's SSE events, so that a stream cut
//! off on one gateway replica can be resumed (`Last-Event-ID`) on any other
//! from a shared event log: `tge1.<stream>.<seq>`, where `stream` names one
//! relayed stream (32 hex digits, random) and `seq` counts its events from 1.
//!
//! The log holds entries `<seq>\n<event as sent>`, and `end` once the stream
//! is over; this module reads and writes them, the proxy stores them.

use bytes::{Bytes, BytesMut};

const PREFIX: &str = "tge1.";
/// The entry that closes a stream's log.
pub const END: &[u8] = b"end";

/// Where an event id points: its stream and its place in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventId {
    pub stream: String,
    pub seq: u64,
}

impl EventId {
    /// An id this gateway wrote; `None` for any other (a server's own).
    pub fn parse(s: &str) -> Option<Self> {
        let (stream, seq) = s.strip_prefix(PREFIX)?.split_once('.')?;
        if stream.len() != 32 || !stream.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(EventId { stream: stream.to_string(), seq: seq.parse().ok()? })
    }

    pub fn render(&self) -> String {
        format!("{PREFIX}{}.{}", self.stream, self.seq)
    }
}

/// The event with its `id:` field set to `id`: the server's own id, if any,
/// is replaced (a client resuming names the gateway's id).
pub fn with_id(event: &[u8], id: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(event.len() + id.len() + 5);
    out.extend_from_slice(b"id: ");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b"\n");
    for line in event.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line == b"id" || line.starts_with(b"id:") {
            continue;
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"\n");
    out.freeze()
}

/// A log entry for the event `seq` of a stream.
pub fn entry(seq: u64, event: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(event.len() + 21);
    out.extend_from_slice(seq.to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(event);
    out
}

/// What a log entry holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Entry<'a> {
    Event { seq: u64, event: &'a [u8] },
    End,
}

/// Reads a log entry; `None` for one that is neither.
pub fn parse_entry(entry: &[u8]) -> Option<Entry<'_>> {
    if entry == END {
        return Some(Entry::End);
    }
    let nl = memchr::memchr(b'\n', entry)?;
    let seq = std::str::from_utf8(&entry[..nl]).ok()?.parse().ok()?;
    Some(Entry::Event { seq, event: &entry[nl + 1..] })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_foreign_ones_are_not_ours() {
        let id = EventId { stream: "0123456789abcdef0123456789abcdef".into(), seq: 7 };
        assert_eq!(EventId::parse(&id.render()), Some(id));
        for other in ["", "42", "tge1.", "tge1.abc.1", "tge1.0123456789abcdef0123456789abcdef.x", "x.y.z"] {
            assert_eq!(EventId::parse(other), None, "{other}");
        }
    }

    #[test]
    fn an_event_gets_our_id_in_place_of_the_servers() {
        let event = b"event: message\r\nid: server-3\r\ndata: {\"a\":1}\r\n\r\n";
        assert_eq!(&with_id(event, "tge1.x.1")[..], b"id: tge1.x.1\nevent: message\ndata: {\"a\":1}\n\n");
        assert_eq!(&with_id(b"data: x\n\n", "i")[..], b"id: i\ndata: x\n\n");
    }

    #[test]
    fn entries_round_trip() {
        let e = entry(12, b"id: i\ndata: x\n\n");
        assert_eq!(parse_entry(&e), Some(Entry::Event { seq: 12, event: b"id: i\ndata: x\n\n" }));
        assert_eq!(parse_entry(END), Some(Entry::End));
        assert_eq!(parse_entry(b"junk"), None);
    }
}

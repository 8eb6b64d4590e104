//! Server-sent events framing. OpenAI uses bare `data:` events, Gemini the
//! same with CRLF line ends; Anthropic and Cohere use named `event:` lines.

use bytes::{BufMut, Bytes, BytesMut};

/// `data: <payload>\n\n`. The payload must not contain newlines (compact JSON
/// never does).
pub fn data_event(payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(payload.len() + 8);
    buf.put_slice(b"data: ");
    buf.put_slice(payload);
    buf.put_slice(b"\n\n");
    buf.freeze()
}

/// `data: <payload>\r\n\r\n`: Google's servers end SSE lines with CRLF.
pub fn data_event_crlf(payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(payload.len() + 10);
    buf.put_slice(b"data: ");
    buf.put_slice(payload);
    buf.put_slice(b"\r\n\r\n");
    buf.freeze()
}

/// `event: <name>\ndata: <payload>\n\n`.
pub fn named_event(name: &str, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(name.len() + payload.len() + 16);
    buf.put_slice(b"event: ");
    buf.put_slice(name.as_bytes());
    buf.put_slice(b"\ndata: ");
    buf.put_slice(payload);
    buf.put_slice(b"\n\n");
    buf.freeze()
}

/// OpenAI's end-of-stream sentinel.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_event_format() {
        assert_eq!(&data_event(br#"{"a":1}"#)[..], b"data: {\"a\":1}\n\n");
    }

    #[test]
    fn crlf_data_event_format() {
        assert_eq!(&data_event_crlf(b"{}")[..], b"data: {}\r\n\r\n");
    }

    #[test]
    fn named_event_format() {
        assert_eq!(&named_event("ping", b"{}")[..], b"event: ping\ndata: {}\n\n");
    }
}

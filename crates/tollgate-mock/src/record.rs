//! Request recording for `GET /_mock/requests`: lets tests assert what the
//! gateway actually sent upstream (rewritten headers, injected keys, body).
//!
//! Each record has every request header (`authorization`, `x-api-key`,
//! `anthropic-version`, `anthropic-beta`... lower-case names), the body as
//! parsed JSON (`body`, handy but not byte-exact: keys come back sorted and
//! numbers re-printed), and the exact bytes as `body_base64` plus
//! `body_sha256` and `body_len`, so a test can assert a body arrived
//! byte-for-byte.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Oldest records are dropped beyond this, so a long benchmark run without
/// `--no-record` cannot grow memory without bound.
pub const MAX_RECORDS: usize = 1000;
/// Bodies above this are neither parsed nor kept in the record (hash and
/// length still are).
pub const MAX_PARSED_BODY: usize = 1 << 20;

#[derive(Debug, Clone, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Lower-case names; repeated headers joined with ", ".
    pub headers: BTreeMap<String, String>,
    pub body_len: usize,
    pub body_sha256: String,
    /// The body as JSON, when it is JSON.
    pub body: Option<serde_json::Value>,
    /// The exact body bytes, standard padded base64 (`""` for no body).
    pub body_base64: Option<String>,
}

impl RecordedRequest {
    pub fn new(parts: &http::request::Parts, body: &[u8]) -> Self {
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &parts.headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            headers
                .entry(name.as_str().to_owned())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert_with(|| value.into_owned());
        }
        let kept = body.len() < MAX_PARSED_BODY;
        let parsed = if body.is_empty() || !kept { None } else { serde_json::from_slice(body).ok() };
        RecordedRequest {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers,
            body_len: body.len(),
            body_sha256: hex_sha256(body),
            body: parsed,
            body_base64: kept.then(|| crate::b64::encode(body)),
        }
    }
}

pub fn hex_sha256(data: &[u8]) -> String {
    use std::fmt::Write;
    let digest = Sha256::digest(data);
    let mut out = String::with_capacity(64);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[derive(Debug, Default)]
pub struct Recorder {
    records: Mutex<VecDeque<RecordedRequest>>,
}

impl Recorder {
    pub fn new() -> Self {
        Recorder::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<RecordedRequest>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn push(&self, rec: RecordedRequest) {
        let mut q = self.lock();
        if q.len() >= MAX_RECORDS {
            q.pop_front();
        }
        q.push_back(rec);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    /// JSON array, oldest first.
    pub fn to_json(&self) -> Vec<u8> {
        let q = self.lock();
        serde_json::to_vec(&*q).unwrap_or_else(|_| b"[]".to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_headers_joined_and_body_parsed() {
        let req = http::Request::builder()
            .method("POST")
            .uri("/v1/chat/completions?a=1")
            .header("X-Thing", "one")
            .header("x-thing", "two")
            .body(())
            .expect("request");
        let (parts, ()) = req.into_parts();
        let rec = RecordedRequest::new(&parts, br#"{"k":1}"#);
        assert_eq!(rec.headers["x-thing"], "one, two");
        assert_eq!(rec.query.as_deref(), Some("a=1"));
        assert_eq!(rec.body, Some(serde_json::json!({"k":1})));
        assert_eq!(rec.body_len, 7);
        assert_eq!(rec.body_sha256.len(), 64);
        assert_eq!(rec.body_base64.as_deref(), Some("eyJrIjoxfQ=="));
        let rec = RecordedRequest::new(&parts, b"not json");
        assert_eq!(rec.body, None);
        assert_eq!(rec.body_base64.as_deref(), Some("bm90IGpzb24="));
        let big = vec![b' '; MAX_PARSED_BODY];
        let rec = RecordedRequest::new(&parts, &big);
        assert_eq!((rec.body_base64, rec.body_len), (None, MAX_PARSED_BODY));
    }

    #[test]
    fn keeps_last_records_only() {
        let r = Recorder::new();
        let (parts, ()) = http::Request::new(()).into_parts();
        for _ in 0..MAX_RECORDS + 5 {
            r.push(RecordedRequest::new(&parts, b""));
        }
        assert_eq!(r.lock().len(), MAX_RECORDS);
    }

    #[test]
    fn sha256_hex() {
        assert_eq!(hex_sha256(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}

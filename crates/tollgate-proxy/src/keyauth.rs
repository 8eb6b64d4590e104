//! key-auth: finding the caller's key and mapping it to a consumer.
//!
//! Keys are stored and looked up as SHA-256 digests: the lookup compares
//! digests, so its timing says nothing about how much of a guessed key matched,
//! and no plaintext key is kept in memory after the snapshot is built.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use tollgate_config::schema::KeyAuthConfig;

pub type KeyDigest = [u8; 32];

pub fn digest(key: &[u8]) -> KeyDigest {
    Sha256::digest(key).into()
}

/// The first 8 bytes of a digest in lower-case hex: a short, non-secret id of
/// the credential.
pub fn digest_prefix_hex(d: &KeyDigest) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(16);
    for b in &d[..8] {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

/// Consumer index by key digest.
#[derive(Debug, Default)]
pub struct KeyIndex {
    by_digest: HashMap<KeyDigest, usize>,
}

impl KeyIndex {
    pub fn insert(&mut self, key: &str, consumer: usize) {
        self.by_digest.insert(digest(key.as_bytes()), consumer);
    }

    pub fn lookup(&self, key: &[u8]) -> Option<usize> {
        self.lookup_digest(&digest(key))
    }

    /// The same, for a digest already computed.
    pub fn lookup_digest(&self, d: &KeyDigest) -> Option<usize> {
        self.by_digest.get(d).copied()
    }

    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

/// Where a key was found, so it can be hidden from the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLocation {
    Header(String),
    Query(String),
    Body(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundKey {
    pub key: Vec<u8>,
    pub location: KeyLocation,
}

/// The request parts key-auth reads; `body` only when `key_in_body` needs it.
pub struct KeySources<'a> {
    pub header: &'a dyn Fn(&str) -> Option<&'a [u8]>,
    pub query: Option<&'a str>,
    pub body: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// key-auth's places compiled once: where to look, and each key name with
/// whether it is the `Authorization` header.
#[derive(Debug, Clone)]
pub struct KeyFinder {
    /// The key names, each with `true` for `Authorization`.
    names: Vec<(String, bool)>,
    in_header: bool,
    in_query: bool,
    in_body: bool,
}

impl KeyFinder {
    pub fn new(conf: &KeyAuthConfig) -> Self {
        KeyFinder {
            names: conf.key_names.iter().map(|n| (n.clone(), n.eq_ignore_ascii_case("authorization"))).collect(),
            in_header: conf.key_in_header,
            in_query: conf.key_in_query,
            in_body: conf.key_in_body,
        }
    }

    /// Looks for a key in the configured places, in Kong's order: headers, then
    /// query string, then body. An empty value counts as no key.
    pub fn find(&self, src: &KeySources<'_>) -> Option<FoundKey> {
        self.in_headers(src).or_else(|| self.in_query(src)).or_else(|| self.in_body(src))
    }

    fn in_headers(&self, src: &KeySources<'_>) -> Option<FoundKey> {
        if !self.in_header {
            return None;
        }
        for (name, authorization) in &self.names {
            if let Some(v) = (src.header)(name) {
                let v = v.trim_ascii();
                // `Authorization: Bearer <key>`, as the OpenAI and Anthropic
                // SDKs send their key, is read without its scheme.
                let v = if *authorization { without_bearer(v) } else { v };
                if !v.is_empty() {
                    return Some(FoundKey { key: v.to_vec(), location: KeyLocation::Header(name.clone()) });
                }
            }
        }
        None
    }

    fn in_query(&self, src: &KeySources<'_>) -> Option<FoundKey> {
        let q = src.query.filter(|_| self.in_query)?;
        for (name, _) in &self.names {
            if let Some(v) = query_param(q, name) {
                if !v.is_empty() {
                    return Some(FoundKey { key: v, location: KeyLocation::Query(name.clone()) });
                }
            }
        }
        None
    }

    fn in_body(&self, src: &KeySources<'_>) -> Option<FoundKey> {
        let body = src.body.filter(|_| self.in_body)?;
        for (name, _) in &self.names {
            if let Some(serde_json::Value::String(v)) = body.get(name) {
                if !v.is_empty() {
                    return Some(FoundKey { key: v.as_bytes().to_vec(), location: KeyLocation::Body(name.clone()) });
                }
            }
        }
        None
    }
}

/// A credential without its `Bearer ` scheme (any case), else as it is.
fn without_bearer(v: &[u8]) -> &[u8] {
    match (v.get(..6), v.get(6)) {
        (Some(scheme), None | Some(b' ')) if scheme.eq_ignore_ascii_case(b"bearer") => v[6..].trim_ascii(),
        _ => v,
    }
}

/// The percent-decoded value of the first `name=` parameter.
pub fn query_param(query: &str, name: &str) -> Option<Vec<u8>> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k.as_bytes()) == name.as_bytes()).then(|| percent_decode(v.as_bytes()))
    })
}

/// The query string without any parameter named `name`.
pub fn remove_query_param(query: &str, name: &str) -> String {
    query
        .split('&')
        .filter(|pair| {
            let k = pair.split_once('=').map(|(k, _)| k).unwrap_or(pair);
            percent_decode(k.as_bytes()) != name.as_bytes()
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(s[i + 1]), hex(s[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn digest_prefix_is_lower_hex_of_eight_bytes() {
        let d = super::digest(b"some key");
        let slow: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(super::digest_prefix_hex(&d), slow);
    }

    use super::*;

    fn conf() -> KeyAuthConfig {
        KeyAuthConfig {
            key_names: vec!["apikey".into(), "x-api-key".into()],
            key_in_header: true,
            key_in_query: true,
            key_in_body: true,
            hide_credentials: false,
            anonymous: None,
        }
    }

    #[test]
    fn header_then_query_then_body() {
        let none = |_: &str| -> Option<&[u8]> { None };
        let hdr = |n: &str| -> Option<&[u8]> { (n == "x-api-key").then_some(&b"h"[..]) };
        let body: serde_json::Map<String, serde_json::Value> = serde_json::from_str(r#"{"apikey":"b"}"#).expect("json");
        let c = conf();
        let k = KeyFinder::new(&c).find(&KeySources { header: &hdr, query: Some("apikey=q"), body: Some(&body) });
        assert_eq!(k.map(|k| k.key), Some(b"h".to_vec()));
        let k =
            KeyFinder::new(&c).find(&KeySources { header: &none, query: Some("a=1&apikey=q%2B1"), body: Some(&body) });
        assert_eq!(k, Some(FoundKey { key: b"q+1".to_vec(), location: KeyLocation::Query("apikey".into()) }));
        let k = KeyFinder::new(&c).find(&KeySources { header: &none, query: None, body: Some(&body) });
        assert_eq!(k.map(|k| k.location), Some(KeyLocation::Body("apikey".into())));
        let empty = |_: &str| -> Option<&[u8]> { Some(&b"  "[..]) };
        assert_eq!(KeyFinder::new(&c).find(&KeySources { header: &empty, query: Some("apikey="), body: None }), None);
    }

    #[test]
    fn sdk_credentials_are_read_from_authorization_and_x_api_key() {
        let c =
            KeyAuthConfig { key_names: vec!["apikey".into(), "x-api-key".into(), "authorization".into()], ..conf() };
        let bearer = |n: &str| -> Option<&[u8]> { (n == "authorization").then_some(&b"Bearer  sk-gw-1 "[..]) };
        let k = KeyFinder::new(&c).find(&KeySources { header: &bearer, query: None, body: None });
        assert_eq!(
            k,
            Some(FoundKey { key: b"sk-gw-1".to_vec(), location: KeyLocation::Header("authorization".into()) })
        );
        let lower = |n: &str| -> Option<&[u8]> { (n == "authorization").then_some(&b"bearer k2"[..]) };
        assert_eq!(
            KeyFinder::new(&c).find(&KeySources { header: &lower, query: None, body: None }).map(|k| k.key),
            Some(b"k2".to_vec())
        );
        let empty = |n: &str| -> Option<&[u8]> { (n == "authorization").then_some(&b"Bearer "[..]) };
        assert_eq!(KeyFinder::new(&c).find(&KeySources { header: &empty, query: None, body: None }), None);
        // Another header name keeps its value whole.
        let x = |n: &str| -> Option<&[u8]> { (n == "x-api-key").then_some(&b"Bearer k3"[..]) };
        assert_eq!(
            KeyFinder::new(&c).find(&KeySources { header: &x, query: None, body: None }).map(|k| k.key),
            Some(b"Bearer k3".to_vec())
        );
    }

    #[test]
    fn index_finds_by_digest() {
        let mut idx = KeyIndex::default();
        idx.insert("secret-chat-key", 3);
        assert_eq!(idx.lookup(b"secret-chat-key"), Some(3));
        assert_eq!(idx.lookup(b"secret-chat-kez"), None);
    }

    #[test]
    fn query_param_removal_keeps_the_rest() {
        assert_eq!(remove_query_param("a=1&apikey=x&b=2", "apikey"), "a=1&b=2");
        assert_eq!(percent_decode(b"%zz%4"), b"%zz%4".to_vec());
    }
}

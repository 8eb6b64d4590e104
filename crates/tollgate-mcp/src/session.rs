//! Session ids sealed with the replica that created them.
//!
//! With several replicas of an MCP server behind several gateway replicas, a
//! session must reach the replica that created it whichever gateway receives
//! the request. The gateway hands the client not the server's session id but
//! a sealed one: the replica and the server's id, encrypted and authenticated
//! (ChaCha20-Poly1305) under a key derived from the configured secret. Any
//! gateway replica with the same secret opens it; a client can neither read
//! it nor forge one that points at another replica or session.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// Marks the format, so a later one can be told apart.
const PREFIX: &str = "tg1.";
/// Bound on a sealed id's length we will try to open.
const MAX_SEALED: usize = 1024;

pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer { .. }")
    }
}

impl Sealer {
    pub fn new(secret: &[u8]) -> Self {
        // Domain-separated digest of the secret: 32 bytes whatever its length.
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"tollgate mcp session v1\0");
        ctx.update(secret);
        let digest = ctx.finish();
        let key = match UnboundKey::new(&CHACHA20_POLY1305, digest.as_ref()) {
            Ok(k) => LessSafeKey::new(k),
            // A 32-byte key is always accepted by ChaCha20-Poly1305.
            Err(_) => unreachable!("32-byte key"),
        };
        Sealer { key, rng: SystemRandom::new() }
    }

    /// Seals (replica, upstream session id) into a client-visible session id
    /// (visible ASCII, as MCP requires); `None` past `MAX_SEALED` characters,
    /// which `open` would refuse (a client would then get 404 for every
    /// request and initialize again and again).
    pub fn seal(&self, replica: &str, upstream_id: &str) -> Option<String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let replica_len = u16::try_from(replica.len()).ok()?;
        let mut plain = Vec::with_capacity(2 + replica.len() + upstream_id.len() + 16);
        plain.extend_from_slice(&replica_len.to_be_bytes());
        plain.extend_from_slice(replica.as_bytes());
        plain.extend_from_slice(upstream_id.as_bytes());
        self.key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(PREFIX), &mut plain).ok()?;
        let mut wire = nonce.to_vec();
        wire.extend_from_slice(&plain);
        let sealed = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(wire));
        (sealed.len() <= MAX_SEALED).then_some(sealed)
    }

    /// (replica, upstream session id), or `None` for anything not sealed by
    /// this secret.
    pub fn open(&self, sealed: &str) -> Option<(String, String)> {
        if sealed.len() > MAX_SEALED {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(sealed.strip_prefix(PREFIX)?).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = rest.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::from(PREFIX), &mut buf).ok()?;
        if plain.len() < 2 {
            return None;
        }
        let n = u16::from_be_bytes([plain[0], plain[1]]) as usize;
        let replica = std::str::from_utf8(plain.get(2..2 + n)?).ok()?;
        let id = std::str::from_utf8(plain.get(2 + n..)?).ok()?;
        Some((replica.to_string(), id.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_across_instances_with_one_secret() {
        let a = Sealer::new(b"0123456789abcdef");
        let b = Sealer::new(b"0123456789abcdef");
        let sealed = a.seal("http://10.0.0.2:8080/mcp", "4f1c2e").unwrap();
        assert!(sealed.starts_with(PREFIX));
        assert!(sealed.bytes().all(|c| (0x21..=0x7e).contains(&c)));
        assert!(!sealed.contains("4f1c2e"), "the server's id is not readable");
        assert_eq!(b.open(&sealed), Some(("http://10.0.0.2:8080/mcp".into(), "4f1c2e".into())));
        assert_ne!(a.seal("r", "id"), a.seal("r", "id"), "fresh nonce every time");
    }

    #[test]
    fn an_id_too_long_to_open_is_not_sealed() {
        let s = Sealer::new(b"k");
        assert!(s.seal("r1", &"x".repeat(700)).is_some_and(|id| s.open(&id).is_some()));
        assert_eq!(s.seal("r1", &"x".repeat(800)), None);
    }

    #[test]
    fn forged_tampered_and_foreign_ids_do_not_open() {
        let a = Sealer::new(b"0123456789abcdef");
        let other = Sealer::new(b"another secret!!");
        let sealed = a.seal("r1", "abc").unwrap();
        assert_eq!(other.open(&sealed), None);
        let mut bytes = sealed.clone().into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(a.open(&String::from_utf8(bytes).unwrap()), None);
        for junk in ["", "tg1.", "tg1.!!!", "abc", "tg1.AAAA", &"tg1.".repeat(400)] {
            assert_eq!(a.open(junk), None, "{junk}");
        }
    }
}

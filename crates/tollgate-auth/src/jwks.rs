//! RFC 7517 JWK Sets, reduced to the keys this crate can verify with: RSA (RS256,
//! RS384, RS512) and EC P-256 (ES256). Anything else — other key types or curves,
//! encryption keys, keys restricted to other algorithms or operations, malformed
//! entries — is skipped and counted rather than failing the whole set, because real
//! issuers publish mixed sets and one odd key must not lock every client out.

use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};

use crate::decode::{b64_lenient, json_object};
use crate::error::JwksError;

/// A JWS signature algorithm this crate verifies. Symmetric (HS*) and `none` are
/// deliberately absent: see the crate docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// ECDSA on P-256 with SHA-256, fixed-size `r || s` signature (RFC 7518 section 3.4).
    Es256,
}

impl Algorithm {
    /// Parses a JOSE `alg` name (case-sensitive, as RFC 7515 requires).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Self::Rs256),
            "RS384" => Some(Self::Rs384),
            "RS512" => Some(Self::Rs512),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }

    /// The JOSE `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Es256 => "ES256",
        }
    }
}

/// Public key bytes in the form `ring` wants them.
#[derive(Clone)]
enum KeyMaterial {
    /// Big-endian modulus and exponent, leading zeros stripped (ring rejects them).
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// Uncompressed SEC1 point `0x04 || x || y`.
    P256 { point: Vec<u8> },
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rsa { n, .. } => write!(f, "RSA-{}", n.len() * 8),
            Self::P256 { .. } => f.write_str("EC-P256"),
        }
    }
}

/// One usable verification key.
#[derive(Clone, Debug)]
struct Jwk {
    kid: Option<String>,
    /// The key's own `alg` restriction, if it declared one.
    alg: Option<Algorithm>,
    material: KeyMaterial,
}

impl Jwk {
    /// Whether this key may verify a token signed with `alg`: right key type, and the
    /// key's own `alg` (if any) agrees. Prevents using an RSA key for ES256 and the
    /// like.
    fn fits(&self, alg: Algorithm) -> bool {
        let type_ok = match self.material {
            KeyMaterial::Rsa { .. } => alg != Algorithm::Es256,
            KeyMaterial::P256 { .. } => alg == Algorithm::Es256,
        };
        type_ok && self.alg.is_none_or(|a| a == alg)
    }

    fn verify(&self, alg: Algorithm, message: &[u8], sig: &[u8]) -> bool {
        match (&self.material, alg) {
            (KeyMaterial::Rsa { n, e }, _) => {
                let params = match alg {
                    Algorithm::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    Algorithm::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    Algorithm::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    Algorithm::Es256 => return false,
                };
                RsaPublicKeyComponents { n, e }.verify(params, message, sig).is_ok()
            }
            (KeyMaterial::P256 { point }, Algorithm::Es256) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(message, sig).is_ok()
            }
            (KeyMaterial::P256 { .. }, _) => false,
        }
    }
}

/// A parsed JWK Set: the usable verification keys, plus how many entries were skipped.
#[derive(Clone, Debug)]
pub struct Jwks {
    keys: Vec<Jwk>,
    skipped: usize,
}

impl Jwks {
    /// Largest accepted JWKS document. Real sets are a few KiB.
    pub const MAX_BYTES: usize = 256 * 1024;
    /// Most entries accepted in `keys`; a token without `kid` is tried against every
    /// fitting key, so this bounds the work one request can cause.
    pub const MAX_KEYS: usize = 64;

    /// Parses an RFC 7517 JWK Set (`{"keys": [...]}`). Unsupported or invalid entries
    /// are skipped (see [`Jwks::skipped`]); a set left with no usable key is an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, JwksError> {
        if bytes.len() > Self::MAX_BYTES {
            return Err(JwksError::TooLarge);
        }
        let doc = json_object(bytes).ok_or(JwksError::Malformed("not a JSON object"))?;
        let entries = doc.get("keys").and_then(Value::as_array).ok_or(JwksError::Malformed("no `keys` array"))?;
        if entries.len() > Self::MAX_KEYS {
            return Err(JwksError::TooManyKeys);
        }
        let keys: Vec<Jwk> = entries.iter().filter_map(|entry| entry.as_object().and_then(parse_key)).collect();
        let skipped = entries.len() - keys.len();
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys { skipped });
        }
        Ok(Self { keys, skipped })
    }

    /// Number of usable keys (never zero for a parsed set).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false for a set returned by [`Jwks::parse`]; present for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Entries skipped as unsupported or invalid; worth logging when non-zero.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The `kid`s of the usable keys that have one.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().filter_map(|k| k.kid.as_deref())
    }

    /// Verifies `sig` over `message` for a token with header `kid` and `alg`.
    ///
    /// With a `kid`, only keys with that `kid` are considered (RFC 7515 section 4.1.4);
    /// without one, every key that fits `alg`. `None` when no key fits at all (the
    /// caller's cue to refetch), `Some(verified)` otherwise.
    pub(crate) fn verify(&self, kid: Option<&str>, alg: Algorithm, message: &[u8], sig: &[u8]) -> Option<bool> {
        let mut candidates =
            self.keys.iter().filter(|k| kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)) && k.fits(alg)).peekable();
        candidates.peek()?;
        Some(candidates.any(|k| k.verify(alg, message, sig)))
    }
}

/// Parses one JWK entry; `None` means "skip it".
fn parse_key(jwk: &Map<String, Value>) -> Option<Jwk> {
    // `use`, if present, must be "sig" (RFC 7517 section 4.2): never verify with an
    // encryption key.
    if let Some(u) = jwk.get("use") {
        if u.as_str() != Some("sig") {
            return None;
        }
    }
    // `key_ops`, if present, must allow "verify" (RFC 7517 section 4.3).
    if let Some(ops) = jwk.get("key_ops") {
        let ops = ops.as_array()?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return None;
        }
    }
    let alg = match jwk.get("alg") {
        None => None,
        Some(a) => Some(Algorithm::from_name(a.as_str()?)?),
    };
    let kid = match jwk.get("kid") {
        None => None,
        Some(k) => Some(k.as_str()?.to_owned()),
    };
    let material = match jwk.get("kty")?.as_str()? {
        "RSA" => rsa_material(jwk)?,
        "EC" => p256_material(jwk)?,
        _ => return None,
    };
    let key = Jwk { kid, alg, material };
    // A declared `alg` for the wrong key type (e.g. ES256 on an RSA key) makes the
    // key unusable for anything.
    if let Some(a) = alg {
        if !key.fits(a) {
            return None;
        }
    }
    Some(key)
}

fn member_bytes(jwk: &Map<String, Value>, name: &str) -> Option<Vec<u8>> {
    b64_lenient(jwk.get(name)?.as_str()?)
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.drain(..zeros);
    bytes
}

/// RSA key: `n` of 2048–8192 bits (the range ring's PKCS#1 verifiers accept; smaller
/// keys are too weak anyway), `e` non-zero and at most 64 bits.
fn rsa_material(jwk: &Map<String, Value>) -> Option<KeyMaterial> {
    let n = strip_leading_zeros(member_bytes(jwk, "n")?);
    let e = strip_leading_zeros(member_bytes(jwk, "e")?);
    let bits = n.first().map(|&top| n.len() * 8 - top.leading_zeros() as usize)?;
    if !(2048..=8192).contains(&bits) || e.is_empty() || e.len() > 8 {
        return None;
    }
    Some(KeyMaterial::Rsa { n, e })
}

/// EC key on P-256 with 32-byte coordinates. The point itself is validated by ring at
/// verification time (an off-curve point simply never verifies).
fn p256_material(jwk: &Map<String, Value>) -> Option<KeyMaterial> {
    if jwk.get("crv")?.as_str()? != "P-256" {
        return None;
    }
    let x = member_bytes(jwk, "x")?;
    let y = member_bytes(jwk, "y")?;
    if x.len() != 32 || y.len() != 32 {
        return None;
    }
    let mut point = Vec::with_capacity(65);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Some(KeyMaterial::P256 { point })
}

//! Bearer JWT access-token validation (RFC 7519, RFC 9068 profile, RFC 8725 best
//! practices). The signature is checked before the payload is even decoded, so claims
//! of a forged token are never looked at.

use serde_json::{Map, Value};

use crate::decode::{b64_strict, json_object};
use crate::error::AuthError;
use crate::jwks::{Algorithm, Jwks};

/// Longest accepted token, in bytes. Real access tokens are 1–2 KiB; the bound keeps
/// base64 and JSON work per request small.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Clock-skew allowance used by [`Validator::new`].
pub const DEFAULT_LEEWAY_SECS: u64 = 60;

/// What a token must satisfy to be accepted for a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    /// Exact `iss` expected (the authorization server's issuer identifier). Empty
    /// accepts no token.
    pub issuer: String,
    /// Accepted `aud` values, typically the resource's canonical URI (RFC 8707). The
    /// token's `aud` must contain at least one. Empty accepts no token: audience
    /// binding is mandatory for MCP, so a misconfiguration fails closed.
    pub audiences: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway_secs: u64,
    /// Scopes the token must all carry (`scope` or `scp` claim).
    pub required_scopes: Vec<String>,
}

impl Validator {
    /// A validator with [`DEFAULT_LEEWAY_SECS`] and no required scopes.
    pub fn new(issuer: impl Into<String>, audiences: Vec<String>) -> Self {
        Self { issuer: issuer.into(), audiences, leeway_secs: DEFAULT_LEEWAY_SECS, required_scopes: Vec::new() }
    }

    /// Validates a compact-serialised JWS access token (the text after `Bearer `)
    /// against `jwks` at time `now_unix` (seconds since the Unix epoch).
    ///
    /// Checks, in order: size and shape, header (`alg`, `typ`, `crit`, `kid`),
    /// signature, `exp`/`nbf`/`iat`, `iss`, `aud`, required scopes.
    pub fn validate(&self, token: &str, jwks: &Jwks, now_unix: u64) -> Result<Claims, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed("token too large"));
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed("not a compact JWS"));
        };

        let header = segment_object(header_b64).ok_or(AuthError::Malformed("bad header"))?;
        let alg = check_header(&header)?;
        let kid = match header.get("kid") {
            None => None,
            Some(k) => Some(k.as_str().ok_or(AuthError::Malformed("kid is not a string"))?),
        };

        let sig = b64_strict(sig_b64).ok_or(AuthError::Malformed("signature is not base64url"))?;
        // The signing input is the ASCII of `header.payload`, exactly as received.
        let signing_input = token
            .as_bytes()
            .get(..header_b64.len() + 1 + payload_b64.len())
            .ok_or(AuthError::Malformed("not a compact JWS"))?;
        match jwks.verify(kid, alg, signing_input, &sig) {
            None => return Err(AuthError::UnknownKey),
            Some(false) => return Err(AuthError::BadSignature),
            Some(true) => {}
        }

        let claims = segment_object(payload_b64).map(Claims).ok_or(AuthError::Malformed("bad payload"))?;
        self.check_time(&claims, now_unix)?;
        self.check_issuer_audience(&claims)?;
        self.check_scopes(&claims)?;
        Ok(claims)
    }

    fn check_time(&self, claims: &Claims, now: u64) -> Result<(), AuthError> {
        let leeway = self.leeway_secs;
        let exp = claims
            .get("exp")
            .ok_or(AuthError::Malformed("missing exp"))
            .and_then(|v| numeric_date(v, false).ok_or(AuthError::Malformed("exp is not a number")))?;
        if now >= exp.saturating_add(leeway) {
            return Err(AuthError::Expired);
        }
        for (name, bad) in [("nbf", "nbf is not a number"), ("iat", "iat is not a number")] {
            if let Some(v) = claims.get(name) {
                let t = numeric_date(v, true).ok_or(AuthError::Malformed(bad))?;
                if t > now.saturating_add(leeway) {
                    return Err(AuthError::NotYetValid);
                }
            }
        }
        Ok(())
    }

    fn check_issuer_audience(&self, claims: &Claims) -> Result<(), AuthError> {
        match claims.iss() {
            Some(iss) if !iss.is_empty() && iss == self.issuer => {}
            _ => return Err(AuthError::WrongIssuer),
        }
        let accepted = |aud: &str| self.audiences.iter().any(|a| a == aud);
        let ok = match claims.get("aud") {
            Some(Value::String(aud)) => accepted(aud),
            Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(accepted),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(AuthError::WrongAudience)
        }
    }

    fn check_scopes(&self, claims: &Claims) -> Result<(), AuthError> {
        if self.required_scopes.is_empty() {
            return Ok(());
        }
        let have = claims.scopes();
        let missing: Vec<String> =
            self.required_scopes.iter().filter(|r| !have.contains(&r.as_str())).cloned().collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(AuthError::InsufficientScope { missing })
        }
    }
}

/// A JWS segment holding a JSON object (header or payload).
fn segment_object(segment: &str) -> Option<Map<String, Value>> {
    json_object(&b64_strict(segment)?)
}

/// Header checks that need no key: supported `alg`, acceptable `typ`, no `crit`.
fn check_header(header: &Map<String, Value>) -> Result<Algorithm, AuthError> {
    let name = header.get("alg").and_then(Value::as_str).ok_or(AuthError::Malformed("missing alg"))?;
    let alg = Algorithm::from_name(name).ok_or_else(|| AuthError::UnsupportedAlgorithm(sanitize(name)))?;
    if let Some(typ) = header.get("typ") {
        // RFC 7515 section 4.1.9 lets `application/` be omitted; RFC 9068 access
        // tokens use `at+jwt`, plain JWTs `JWT`.
        let typ = typ.as_str().ok_or(AuthError::Malformed("typ is not a string"))?;
        let typ = match (typ.get(..12), typ.get(12..)) {
            (Some(prefix), Some(rest)) if prefix.eq_ignore_ascii_case("application/") => rest,
            _ => typ,
        };
        if !typ.eq_ignore_ascii_case("jwt") && !typ.eq_ignore_ascii_case("at+jwt") {
            return Err(AuthError::Malformed("unexpected typ"));
        }
    }
    // RFC 7515 section 4.1.11: extensions listed in `crit` must be understood; we
    // understand none (this also rules out unencoded payloads, RFC 7797).
    if header.contains_key("crit") {
        return Err(AuthError::Malformed("unsupported critical header"));
    }
    Ok(alg)
}

/// Keeps an attacker-chosen `alg` name printable and short before it goes into an
/// error (and possibly a log line or `error_description`).
fn sanitize(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '_' | '.')).take(16).collect()
}

/// RFC 7519 NumericDate: seconds, possibly fractional. Rounded in the caller's
/// disfavour (`exp` down, `nbf`/`iat` up); negative values clamp to 0.
fn numeric_date(v: &Value, round_up: bool) -> Option<u64> {
    if let Some(u) = v.as_u64() {
        return Some(u);
    }
    let f = v.as_f64()?;
    if !f.is_finite() {
        return None;
    }
    let f = if round_up { f.ceil() } else { f.floor() };
    // `as` saturates: negative -> 0, huge -> u64::MAX.
    Some(f as u64)
}

/// The verified payload of an accepted token.
#[derive(Clone, Debug, PartialEq)]
pub struct Claims(Map<String, Value>);

impl Claims {
    /// All claims.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// All claims, owned.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }

    /// One claim by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// `sub`: the resource owner (or client, for client-credentials tokens).
    pub fn sub(&self) -> Option<&str> {
        self.0.get("sub").and_then(Value::as_str)
    }

    /// `iss`.
    pub fn iss(&self) -> Option<&str> {
        self.0.get("iss").and_then(Value::as_str)
    }

    /// `client_id` (RFC 9068 section 2.2): the OAuth client the token was issued to.
    pub fn client_id(&self) -> Option<&str> {
        self.0.get("client_id").and_then(Value::as_str)
    }

    /// `exp` in whole seconds, if present and numeric.
    pub fn exp(&self) -> Option<u64> {
        self.0.get("exp").and_then(|v| numeric_date(v, false))
    }

    /// Granted scopes: the union of `scope` (RFC 9068 / RFC 8693: space-separated
    /// string) and `scp` (array, used by several issuers), each also accepted in the
    /// other form. Order of first appearance, no duplicates.
    pub fn scopes(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for name in ["scope", "scp"] {
            let words: Vec<&str> = match self.0.get(name) {
                Some(Value::String(s)) => s.split_ascii_whitespace().collect(),
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            for w in words {
                if seen.insert(w) {
                    out.push(w);
                }
            }
        }
        out
    }

    /// Whether `scope` is among [`Claims::scopes`].
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().contains(&scope)
    }
}

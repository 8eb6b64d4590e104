//! Error types. [`AuthError`] variants map one-to-one onto the gateway's answer
//! (RFC 6750 section 3.1 error code and HTTP status), and none of them carries the token
//! or any other caller-supplied text except a sanitised, truncated `alg` name, so
//! errors are safe to log and to echo in `error_description`.

/// Why a bearer token was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not a well-formed compact JWS/JWT, or a claim has the wrong type, or the token
    /// exceeds [`crate::MAX_TOKEN_LEN`]. The text is a fixed description.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// Header `alg` is not RS256/RS384/RS512/ES256 (`none` and HS* included).
    /// Holds the name, reduced to at most 16 token characters.
    #[error("unsupported signing algorithm `{0}`")]
    UnsupportedAlgorithm(String),
    /// `exp` is at or before now, beyond the leeway.
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` lies in the future, beyond the leeway.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is missing or not exactly the configured issuer.
    #[error("token issuer not accepted")]
    WrongIssuer,
    /// `aud` is missing or names none of the configured audiences.
    #[error("token audience not accepted")]
    WrongAudience,
    /// A key fit the token but the signature did not verify with any of them.
    #[error("token signature invalid")]
    BadSignature,
    /// No key in the set fits the token (unknown `kid`, or no key for its `alg`).
    /// Kept distinct because the gateway refetches the JWKS once on it: the issuer
    /// may have rotated keys since the last fetch. Any client can provoke it with a
    /// made-up `kid`, so refetches must be rate-limited by the caller.
    #[error("token signing key not found")]
    UnknownKey,
    /// Token is valid but lacks required scopes (RFC 6750: 403, `insufficient_scope`).
    #[error("insufficient scope: requires {}", .missing.join(" "))]
    InsufficientScope {
        /// The configured scopes the token does not carry.
        missing: Vec<String>,
    },
}

impl AuthError {
    /// RFC 6750 section 3.1 `error` code for the `WWW-Authenticate` challenge.
    pub fn error_code(&self) -> &'static str {
        match self {
            Self::InsufficientScope { .. } => "insufficient_scope",
            _ => "invalid_token",
        }
    }

    /// HTTP status to answer with: 403 for insufficient scope, 401 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            Self::InsufficientScope { .. } => 403,
            _ => 401,
        }
    }
}

/// Why a JWK Set could not be used. The gateway should keep serving with its previous
/// set (if any) and log this; it is never the client's fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Larger than [`crate::Jwks::MAX_BYTES`].
    #[error("JWKS too large")]
    TooLarge,
    /// More entries in `keys` than [`crate::Jwks::MAX_KEYS`]. Bounded because a
    /// token without `kid` is tried against every fitting key.
    #[error("JWKS has too many keys")]
    TooManyKeys,
    /// Not a JSON object with a `keys` array (or nested too deeply).
    #[error("malformed JWKS: {0}")]
    Malformed(&'static str),
    /// Parsed, but no key is usable for signature verification.
    #[error("JWKS has no usable signing key ({skipped} skipped)")]
    NoUsableKeys {
        /// Entries skipped as unsupported or invalid.
        skipped: usize,
    },
}

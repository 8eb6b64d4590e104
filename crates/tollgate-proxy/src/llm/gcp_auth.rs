//! OAuth access tokens for Vertex AI from a Google service-account key.
//!
//! The two-legged flow of Google's "OAuth 2.0 for server to server
//! applications": a JWT naming the service account (`iss`), the scope, the
//! token endpoint (`aud`) and a validity of one hour (`iat`, `exp`), signed
//! RS256 with the account's private key, is POSTed to the key's `token_uri` as
//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<jwt>`;
//! the answer's `access_token` goes on Vertex calls as
//! `Authorization: Bearer <token>`.
//!
//! [`TokenSource`] caches the token and refreshes it five minutes before it
//! expires. One refresh runs at a time: callers that need a token while it is
//! in flight wait for it (or, while the old token is still valid, use that),
//! and callers that waited on a failed refresh share its error instead of
//! each trying again. The next request after a failure retries.
//!
//! Signing uses `ring` (already built for rustls) on the PKCS#8 key that
//! Google's key files carry; the token endpoint is reached through Pingora's
//! connector, the TLS stack of every other upstream call.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivatePkcs8KeyDer;
use serde::{Deserialize, Serialize};

use crate::upstream::fetch::Fetch;
use crate::upstream::{Endpoint, FetchError, InvalidUrl};

/// A service-account key file that cannot be used. No message repeats the key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("service-account key is not valid JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("service-account key has type '{0}', expected 'service_account'")]
    NotServiceAccount(String),
    #[error("service-account key has no '{0}'")]
    Missing(&'static str),
    #[error("service-account key's 'private_key' is not a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----)")]
    NotPkcs8Pem,
    #[error("service-account key's 'private_key' is not a usable RSA key: {0}")]
    NotRsa(ring::error::KeyRejected),
    #[error("service-account key's 'token_uri': {0}")]
    TokenUri(InvalidUrl),
    #[error(
        "service-account key's 'token_uri' {0} must be https \
         (plain http is accepted only for a loopback test server)"
    )]
    PlainHttp(String),
}

/// One attempt at a token failed: the assertion, the request, or the answer.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("encoding the JWT failed: {0}")]
    Encode(serde_json::Error),
    #[error("signing the service-account JWT failed")]
    Sign,
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("token endpoint answered HTTP {status}: {detail}")]
    Status { status: u16, detail: String },
    #[error("token endpoint answered non-JSON: {0}")]
    NotJson(String),
    #[error("token endpoint answered token_type '{0}', expected 'Bearer'")]
    NotBearer(String),
    #[error("token endpoint answered no access_token")]
    NoAccessToken,
    #[error("token endpoint answered an access_token that is not a valid header value")]
    InvalidAccessToken,
    #[error("token endpoint answered expires_in {0}, not a number of seconds")]
    ExpiresIn(serde_json::Value),
    #[error("token endpoint answered an already expired token (expires_in 0)")]
    Expired,
}

/// No token for a call: the account, its token endpoint and why. Shared by
/// the callers that waited for the failed refresh.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no Google access token for {account} from {token_uri}: {cause}")]
pub struct TokenError {
    pub account: String,
    pub token_uri: String,
    pub cause: Arc<GrantError>,
}

/// The scope Vertex AI needs.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Google's token endpoint, for a key file without `token_uri`.
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Validity of a signed assertion; Google accepts at most one hour.
const ASSERTION_LIFETIME: u64 = 3600;
/// How long before expiry a token is refreshed.
const REFRESH_EARLY: Duration = Duration::from_secs(300);
/// A token with less validity left than this is not handed out any more.
const MIN_REMAINING: Duration = Duration::from_secs(10);
/// Lifetime assumed when the token endpoint names none (Google's own).
const DEFAULT_EXPIRES_IN: u64 = 3600;
/// A longer lifetime claimed by the endpoint is not believed.
const MAX_EXPIRES_IN: u64 = 24 * 3600;

/// A clock, injectable for tests.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// A parsed service-account key. Its `Debug` never shows the private key.
pub struct ServiceAccount {
    client_email: String,
    private_key_id: Option<String>,
    token_uri: String,
    endpoint: Endpoint,
    key: RsaKeyPair,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("token_uri", &self.token_uri)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// The fields of a key file that are used; everything else is ignored.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key: Option<String>,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

/// The JWT header.
#[derive(Serialize)]
struct JwtHeader<'a> {
    alg: &'a str,
    typ: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
}

/// The JWT claim set of Google's server-to-server flow.
#[derive(Serialize)]
struct JwtClaims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

impl ServiceAccount {
    /// Parses a service-account key file (the JSON Google's console downloads).
    /// `client_email` and `private_key` are required; `private_key_id` becomes
    /// the JWT's `kid` when present; `token_uri` defaults to Google's endpoint
    /// and must be https (plain http only for a loopback test server).
    pub fn from_json(json: &str) -> Result<Self, KeyError> {
        let file: KeyFile = serde_json::from_str(json).map_err(KeyError::NotJson)?;
        if let Some(kind) = file.kind.as_deref() {
            if kind != "service_account" {
                return Err(KeyError::NotServiceAccount(kind.to_string()));
            }
        }
        let required = |value: Option<String>, name: &'static str| {
            value.filter(|v| !v.trim().is_empty()).ok_or(KeyError::Missing(name))
        };
        let client_email = required(file.client_email, "client_email")?;
        let pem = required(file.private_key, "private_key")?;
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| KeyError::NotPkcs8Pem)?;
        let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).map_err(KeyError::NotRsa)?;
        let private_key_id = file.private_key_id.filter(|v| !v.is_empty());
        let token_uri =
            file.token_uri.filter(|v| !v.trim().is_empty()).unwrap_or_else(|| DEFAULT_TOKEN_URI.to_string());
        let endpoint = Endpoint::parse(&token_uri).map_err(KeyError::TokenUri)?;
        if !endpoint.tls && !is_loopback(&endpoint.host) {
            return Err(KeyError::PlainHttp(token_uri));
        }
        Ok(ServiceAccount { client_email, private_key_id, token_uri, endpoint, key })
    }

    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    pub fn token_uri(&self) -> &str {
        &self.token_uri
    }

    /// The signed JWT asking for a cloud-platform token, issued at `now`.
    pub fn assertion(&self, now: SystemTime) -> Result<String, GrantError> {
        let iat = unix_secs(now);
        let header = JwtHeader { alg: "RS256", typ: "JWT", kid: self.private_key_id.as_deref() };
        let claims = JwtClaims {
            iss: &self.client_email,
            scope: CLOUD_PLATFORM_SCOPE,
            aud: &self.token_uri,
            iat,
            exp: iat.saturating_add(ASSERTION_LIFETIME),
        };
        let mut jwt = String::with_capacity(1024);
        jwt.push_str(&URL_SAFE_NO_PAD.encode(to_json(&header)?));
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(to_json(&claims)?));
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), jwt.as_bytes(), &mut signature)
            .map_err(|_| GrantError::Sign)?;
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(jwt)
    }
}

fn to_json<T: Serialize>(part: &T) -> Result<Vec<u8>, GrantError> {
    serde_json::to_vec(part).map_err(GrantError::Encode)
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The token request body.
fn token_form(assertion: &str) -> String {
    format!(
        "grant_type={}&assertion={}",
        form_encode("urn:ietf:params:oauth:grant-type:jwt-bearer"),
        form_encode(assertion)
    )
}

fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An access token and how long it is valid from when it was asked for.
#[derive(Debug, Clone)]
struct Granted {
    token: Arc<str>,
    expires_in: Duration,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    token_type: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Reads the token endpoint's answer.
fn parse_answer(status: u16, body: &[u8]) -> Result<Granted, GrantError> {
    let answer: Option<TokenAnswer> = serde_json::from_slice(body).ok();
    if status != 200 {
        let detail = match &answer {
            Some(TokenAnswer { error: Some(error), error_description, .. }) => match error_description {
                Some(d) => format!("{error}: {d}"),
                None => error.clone(),
            },
            _ => printable_prefix(body, 200),
        };
        return Err(GrantError::Status { status, detail });
    }
    let Some(answer) = answer else {
        return Err(GrantError::NotJson(printable_prefix(body, 200)));
    };
    if let Some(kind) = &answer.token_type {
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(GrantError::NotBearer(kind.clone()));
        }
    }
    let token = answer.access_token.filter(|t| !t.is_empty()).ok_or(GrantError::NoAccessToken)?;
    // The token goes into an Authorization header: refuse what could not.
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(GrantError::InvalidAccessToken);
    }
    let secs = match &answer.expires_in {
        None => DEFAULT_EXPIRES_IN,
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .ok_or_else(|| GrantError::ExpiresIn(v.clone()))?,
    };
    if secs == 0 {
        return Err(GrantError::Expired);
    }
    Ok(Granted { token: token.into(), expires_in: Duration::from_secs(secs.min(MAX_EXPIRES_IN)) })
}

/// At most `max` characters of `body`, control characters replaced.
fn printable_prefix(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(max).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    if out.trim().is_empty() {
        out = "(empty body)".into();
    }
    out
}

/// How the token request travels: Pingora in the gateway, a fake in tests.
#[async_trait]
pub trait TokenFetch: Send + Sync {
    /// POSTs `form` (`application/x-www-form-urlencoded`) to `endpoint`;
    /// the answer's status and body.
    async fn post_form(&self, endpoint: &Endpoint, form: String) -> Result<(u16, Bytes), FetchError>;
}

#[async_trait]
impl TokenFetch for Fetch {
    async fn post_form(&self, ep: &Endpoint, form: String) -> Result<(u16, Bytes), FetchError> {
        Fetch::post_form(self, ep, form).await
    }
}

/// The cached token.
struct Cached {
    token: Arc<str>,
    /// From here on the next caller refreshes it.
    refresh_at: SystemTime,
    /// Valid until here (as of when it was asked for).
    expires_at: SystemTime,
}

impl Cached {
    fn new(granted: Granted, asked_at: SystemTime) -> Self {
        let lifetime = granted.expires_in;
        // Five minutes early, or halfway for a token that lives less than ten.
        let early = REFRESH_EARLY.min(lifetime / 2);
        // A clock at the end of time leaves the token due at once, not a panic.
        let after = |d: Duration| asked_at.checked_add(d).unwrap_or(asked_at);
        Cached { token: granted.token, refresh_at: after(lifetime - early), expires_at: after(lifetime) }
    }

    fn fresh(&self, now: SystemTime) -> bool {
        now < self.refresh_at
    }

    /// Still valid long enough to be used while a refresh is due.
    fn usable(&self, now: SystemTime) -> bool {
        now.checked_add(MIN_REMAINING).is_some_and(|t| t < self.expires_at)
    }
}

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    /// Refreshes run so far, each success or failure.
    attempts: u64,
    /// The error of the last refresh, when it failed.
    last_error: Option<TokenError>,
}

/// A service account's access token, shared by all requests of a target.
pub struct TokenSource {
    account: ServiceAccount,
    clock: Clock,
    fetch: Arc<dyn TokenFetch>,
    state: Mutex<State>,
    /// Held by the one refresh in flight.
    refresh: tokio::sync::Mutex<()>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource").field("account", &self.account).finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A token source fetching through Pingora's connector.
    pub fn new(account: ServiceAccount, clock: Clock) -> Self {
        Self::with_fetch(account, clock, Arc::new(Fetch::shared()))
    }

    /// A token source fetching through `fetch`.
    pub fn with_fetch(account: ServiceAccount, clock: Clock, fetch: Arc<dyn TokenFetch>) -> Self {
        TokenSource { account, clock, fetch, state: Mutex::new(State::default()), refresh: tokio::sync::Mutex::new(()) }
    }

    pub fn account(&self) -> &ServiceAccount {
        &self.account
    }

    /// A valid access token, fetched or refreshed when needed. An error names
    /// the account and the token endpoint and says what went wrong; it is
    /// never cached: the next call tries again.
    pub async fn token(&self) -> Result<Arc<str>, TokenError> {
        let seen = {
            let state = self.state();
            if let Some(c) = state.cached.as_ref().filter(|c| c.fresh((self.clock)())) {
                return Ok(c.token.clone());
            }
            state.attempts
        };
        let _refreshing = match self.refresh.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                // A refresh is in flight: the old token, while it lasts, saves waiting.
                if let Some(token) = self.usable_token() {
                    return Ok(token);
                }
                self.refresh.lock().await
            }
        };
        {
            let state = self.state();
            if let Some(c) = state.cached.as_ref().filter(|c| c.fresh((self.clock)())) {
                return Ok(c.token.clone());
            }
            // The refresh this caller waited for failed: its error, not another try.
            if state.attempts != seen {
                if let Some(e) = &state.last_error {
                    return Err(e.clone());
                }
            }
        }
        let asked_at = (self.clock)();
        let result = self.fetch_token(asked_at).await;
        let mut state = self.state();
        state.attempts += 1;
        match result {
            Ok(granted) => {
                let cached = Cached::new(granted, asked_at);
                let token = cached.token.clone();
                state.cached = Some(cached);
                state.last_error = None;
                Ok(token)
            }
            Err(e) => {
                let err = TokenError {
                    account: self.account.client_email.clone(),
                    token_uri: self.account.token_uri.clone(),
                    cause: Arc::new(e),
                };
                state.last_error = Some(err.clone());
                match state.cached.as_ref().filter(|c| c.usable((self.clock)())) {
                    Some(c) => {
                        tracing::warn!("{err}; the current token is used until it expires");
                        Ok(c.token.clone())
                    }
                    None => Err(err),
                }
            }
        }
    }

    async fn fetch_token(&self, now: SystemTime) -> Result<Granted, GrantError> {
        let form = token_form(&self.account.assertion(now)?);
        let (status, body) = self.fetch.post_form(&self.account.endpoint, form).await?;
        parse_answer(status, &body)
    }

    fn usable_token(&self) -> Option<Arc<str>> {
        let now = (self.clock)();
        self.state().cached.as_ref().filter(|c| c.usable(now)).map(|c| c.token.clone())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned lock still holds a sound state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A throwaway RSA key made with `openssl genrsa 2048` for these tests
    /// only. It signs nothing anywhere else and grants nothing.
    const TEST_ONLY_PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCUB4nA2lvEkkOp
FVrF7eh93NAbPGTLy/gkXOyLJQ1BzBv1vffum3ekqmrxJLmd/5q/QoQIpzF5kG6l
tIzCV3XaaCwf8KoLjgYgeRMGIxbQiLjIifaAITOEOJZbdebjedGuw7Q49KS3cxCF
ayT7XwzPVf+36OmvGQn3f3ljvehlxIvM5+s0l0kvwqRj+DmnXpAlOQ1mfsKnl1Bx
kkttiubnZg21ap7IxCdvOZJM9t1WVCyXeOCnmfMIGiGthkK3y+E4mfzSLxPo0EKi
VPDlc5HuMVBaa67OHKFCMHdlrBh8NgmNrsTKg7Sq4Mi7teh0glFqycELBoo6lp29
OArkvKcvAgMBAAECggEAOb7FDH/B66k5DrT/X5Xiq3KflfhVw7ByQNElD1SpWsEC
KTdth92K6yf1ptMyO4HR/ok2k1+Ra8AdgbOwc0GF/mjDycPqua4yEqnYc3ztsfSb
zNMQ30PUYmBmuw//vT4wv1GltNAuj0eqKrm0yAB4sUr1geswebc1TaCjHHchOM0+
6WMAKJOor6YFiPhSor1UsLsqdKWVwJzO8Nx7bmpVRGIfvQgVysWtof+BpCa8iwtg
lwxly4JX44UZgKv7zO1pyo3e6wdrEST9x2+Yw+Ezswz9p0xifgfQ1TJGzI6z7fzd
HSx0TQ1/jXsY2YAfDyVjJ2WW8VMAhv+bj+vyoVnTxQKBgQDGhnIEUK9zhPeCyb3S
m/A8AlZbYs9N6Kp9dg3wrT+yyFsgzEwsEgzQr+BgQSCmwW+dqG9lDx51mKa8GpEE
AYZnxYik7F5PH8h17Hhpd46p7moYX9MHQhuUTBBo2pfP9DmJg5ce9GlvSwWDgYnx
IyZY7YUVVj0nmJ5c/Ib/FiX0vQKBgQC+4qMMHBFwJbO5DoBSGIYhpcnTMiwwrVX1
1nfFBTgQ5EEpjQBmPQR4ACEbx5dNLePJM/hWFL0LWlzKhHLVoZs84NBkHsTWLt9E
CrywaOSLgxAvWXBRNNVjXiTxhVTbAG5DL+HzYDIbaHi9RJ25SqK/f+tcqmDQ2zIM
24M73mfIWwKBgQC+WKg3lPk0xNfgcfhsWBHWJ9OPGcV0iNH3K1sgWazKiao+X0Pl
uYTKDugOwkNBQBT50EbGWeG1lSDBGKPUeHXbR53Fq9CdAvdcgdfOH9ENA8h8CFy5
B9yTqv7M2lJXFG6aeC5MgsIY8JCfz3NoXnBlMY+5ro9CSOYGeCYjrKPF7QKBgCSv
Q6yJHGTUKhUPj2O3qNeAmCgJhWqZdWK4o+3uUdcVNty4Z3I+mcRCKhq/oflIL3W0
ki5g7+/lnt2g1LzvwPjTL9l9/FA5U9kswxSYJAwX1R10b9x7beMZ7bmo6STpkUdC
RYdTXm3cBxBAxpscl+h7ugzmBZM9/QFxkmgIFyPvAoGAdU7n2JiPM9NZYXMAncUy
TddaPV/RGlSqkSzT9gdKmYLp41tbdo4sB4RTJSdvJRvLRUhsYzBgNbWSaOuatoOy
LnKA5hxJ+Pr12GpBp8heLRqMvaJffqumlv6+uXR5P/Jpb4cI4g4VEzR/Vf/V3YB4
9/wilVGMFRzD82wK+7KZ1zc=
-----END PRIVATE KEY-----
";

    /// Its public key as `openssl rsa -RSAPublicKey_out` prints it (PKCS#1).
    const TEST_ONLY_PUBLIC_KEY: &str = "-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAlAeJwNpbxJJDqRVaxe3ofdzQGzxky8v4JFzsiyUNQcwb9b337pt3
pKpq8SS5nf+av0KECKcxeZBupbSMwld12mgsH/CqC44GIHkTBiMW0Ii4yIn2gCEz
hDiWW3Xm43nRrsO0OPSkt3MQhWsk+18Mz1X/t+jprxkJ9395Y73oZcSLzOfrNJdJ
L8KkY/g5p16QJTkNZn7Cp5dQcZJLbYrm52YNtWqeyMQnbzmSTPbdVlQsl3jgp5nz
CBohrYZCt8vhOJn80i8T6NBColTw5XOR7jFQWmuuzhyhQjB3ZawYfDYJja7EyoO0
quDIu7XodIJRasnBCwaKOpadvTgK5LynLwIDAQAB
-----END RSA PUBLIC KEY-----
";

    const EMAIL: &str = "tollgate-test@example-project.iam.gserviceaccount.com";
    const T0: u64 = 1_700_000_000;

    fn key_json(token_uri: Option<&str>) -> String {
        let mut v = serde_json::json!({
            "type": "service_account",
            "project_id": "example-project",
            "private_key_id": "0123456789abcdef",
            "private_key": TEST_ONLY_PRIVATE_KEY,
            "client_email": EMAIL,
            "client_id": "1234567890",
        });
        if let Some(uri) = token_uri {
            v["token_uri"] = uri.into();
        }
        v.to_string()
    }

    fn account() -> ServiceAccount {
        ServiceAccount::from_json(&key_json(Some(DEFAULT_TOKEN_URI))).unwrap()
    }

    /// A clock tests move by hand.
    fn manual_clock() -> (Clock, Arc<AtomicU64>) {
        let secs = Arc::new(AtomicU64::new(T0));
        let s = secs.clone();
        (Arc::new(move || UNIX_EPOCH + Duration::from_secs(s.load(Ordering::SeqCst))), secs)
    }

    /// Verifies `jwt` against the test public key; its header and claims.
    fn decode(jwt: &str) -> (serde_json::Value, serde_json::Value) {
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3, "a JWS has three parts: {jwt}");
        let b64 = |p: &str| URL_SAFE_NO_PAD.decode(p).unwrap();
        let public_der = base64::engine::general_purpose::STANDARD
            .decode(TEST_ONLY_PUBLIC_KEY.lines().filter(|l| !l.starts_with("-----")).collect::<String>())
            .unwrap();
        let signed = format!("{}.{}", parts[0], parts[1]);
        ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, &public_der)
            .verify(signed.as_bytes(), &b64(parts[2]))
            .expect("the signature verifies with the test public key");
        (serde_json::from_slice(&b64(parts[0])).unwrap(), serde_json::from_slice(&b64(parts[1])).unwrap())
    }

    /// Reads the assertion out of a token request body.
    fn assertion_of(form: &str) -> String {
        let mut grant = None;
        let mut assertion = None;
        for pair in form.split('&') {
            match pair.split_once('=') {
                Some(("grant_type", v)) => grant = Some(v.to_string()),
                Some(("assertion", v)) => assertion = Some(v.to_string()),
                _ => panic!("unexpected form field {pair}"),
            }
        }
        assert_eq!(grant.as_deref(), Some("urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"));
        assertion.unwrap()
    }

    type Answer = Result<(u16, Bytes), FetchError>;

    /// A request that failed before any answer, as `reason`.
    fn failed(reason: &str) -> Answer {
        Err(FetchError::Connect { authority: "oauth2.googleapis.com".into(), reason: reason.into() })
    }
    type Answering = Box<dyn Fn(usize, &str) -> Answer + Send + Sync>;

    /// A token endpoint in memory: counts requests, answers per `answer`.
    struct FakeFetch {
        calls: AtomicUsize,
        delay: Duration,
        /// When set, each fetch waits for a permit before answering.
        gate: Option<tokio::sync::Semaphore>,
        answer: Answering,
    }

    impl FakeFetch {
        fn new(delay: Duration, answer: impl Fn(usize, &str) -> Answer + Send + Sync + 'static) -> Arc<Self> {
            Arc::new(FakeFetch { calls: AtomicUsize::new(0), delay, gate: None, answer: Box::new(answer) })
        }

        /// A fake whose fetches answer only as `release` lets them.
        fn gated(answer: impl Fn(usize, &str) -> Answer + Send + Sync + 'static) -> Arc<Self> {
            Arc::new(FakeFetch {
                calls: AtomicUsize::new(0),
                delay: Duration::ZERO,
                gate: Some(tokio::sync::Semaphore::new(0)),
                answer: Box::new(answer),
            })
        }

        fn release(&self, fetches: usize) {
            if let Some(g) = &self.gate {
                g.add_permits(fetches);
            }
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl TokenFetch for FakeFetch {
        async fn post_form(&self, endpoint: &Endpoint, form: String) -> Result<(u16, Bytes), FetchError> {
            assert_eq!(endpoint.host, "oauth2.googleapis.com");
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            decode(&assertion_of(&form));
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            if let Some(g) = &self.gate {
                g.acquire().await.unwrap().forget();
            }
            (self.answer)(n, &form)
        }
    }

    fn ok_answer(token: &str, expires_in: u64) -> Answer {
        Ok((
            200,
            Bytes::from(format!(r#"{{"access_token":"{token}","expires_in":{expires_in},"token_type":"Bearer"}}"#)),
        ))
    }

    #[test]
    fn jwt_header_and_claims() {
        let account = account();
        let now = UNIX_EPOCH + Duration::from_secs(T0);
        let (header, claims) = decode(&account.assertion(now).unwrap());
        assert_eq!(header, serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "0123456789abcdef"}));
        assert_eq!(
            claims,
            serde_json::json!({
                "iss": EMAIL,
                "scope": "https://www.googleapis.com/auth/cloud-platform",
                "aud": "https://oauth2.googleapis.com/token",
                "iat": T0,
                "exp": T0 + 3600,
            })
        );
    }

    #[test]
    fn key_without_kid_or_token_uri() {
        let mut v: serde_json::Value = serde_json::from_str(&key_json(None)).unwrap();
        v.as_object_mut().unwrap().remove("private_key_id");
        let account = ServiceAccount::from_json(&v.to_string()).unwrap();
        assert_eq!(account.token_uri(), DEFAULT_TOKEN_URI);
        let (header, claims) = decode(&account.assertion(SystemTime::now()).unwrap());
        assert_eq!(header, serde_json::json!({"alg": "RS256", "typ": "JWT"}));
        assert_eq!(claims["aud"], DEFAULT_TOKEN_URI);
    }

    #[test]
    fn debug_hides_the_private_key() {
        let shown = format!("{:?}", account());
        assert!(shown.contains(EMAIL) && shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains("MIIE") && !shown.contains("PRIVATE KEY"), "{shown}");
    }

    #[test]
    fn from_json_errors() {
        let base: serde_json::Value = serde_json::from_str(&key_json(Some(DEFAULT_TOKEN_URI))).unwrap();
        let without = |field: &str| {
            let mut v = base.clone();
            v.as_object_mut().unwrap().remove(field);
            ServiceAccount::from_json(&v.to_string()).unwrap_err().to_string()
        };
        let with = |field: &str, value: &str| {
            let mut v = base.clone();
            v[field] = value.into();
            ServiceAccount::from_json(&v.to_string()).unwrap_err().to_string()
        };
        assert!(without("client_email").contains("no 'client_email'"));
        assert!(without("private_key").contains("no 'private_key'"));
        assert!(with("client_email", " ").contains("no 'client_email'"));
        assert!(with("type", "authorized_user").contains("'authorized_user', expected 'service_account'"));
        assert!(with("private_key", "not a pem").contains("not a PKCS#8 PEM"));
        let garbage = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(with("private_key", garbage).contains("not a usable RSA key"));
        assert!(with("token_uri", "ftp://x/token").contains("'token_uri'"));
        assert!(with("token_uri", "http://oauth2.googleapis.com/token").contains("must be https"));
        assert!(ServiceAccount::from_json("{").unwrap_err().to_string().contains("not valid JSON"));
        assert!(ServiceAccount::from_json(&key_json(Some("http://127.0.0.1:9/token"))).is_ok());
        // No error repeats the key.
        for e in [with("private_key", garbage), without("client_email")] {
            assert!(!e.contains("MIIE"), "{e}");
        }
    }

    #[test]
    fn token_answers() {
        let ok = parse_answer(200, br#"{"access_token":"ya29.a","expires_in":"3599","token_type":"bearer"}"#).unwrap();
        assert_eq!((&*ok.token, ok.expires_in), ("ya29.a", Duration::from_secs(3599)));
        let e = parse_answer(400, br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "token endpoint answered HTTP 400: invalid_grant: Invalid JWT Signature.");
        assert!(parse_answer(502, b"<html>\nbad gateway</html>")
            .unwrap_err()
            .to_string()
            .contains("HTTP 502: <html> bad gateway"));
        assert!(parse_answer(200, b"{}").unwrap_err().to_string().contains("no access_token"));
        assert!(parse_answer(200, br#"{"access_token":"a b"}"#).unwrap_err().to_string().contains("header value"));
        assert!(parse_answer(200, br#"{"access_token":"a","token_type":"MAC"}"#)
            .unwrap_err()
            .to_string()
            .contains("'MAC'"));
        assert!(parse_answer(200, br#"{"access_token":"a","expires_in":0}"#)
            .unwrap_err()
            .to_string()
            .contains("expires_in 0"));
        let huge = parse_answer(200, br#"{"access_token":"a","expires_in":18446744073709551615}"#);
        assert_eq!(huge.unwrap().expires_in, Duration::from_secs(MAX_EXPIRES_IN));
        assert!(parse_answer(200, b"oops").unwrap_err().to_string().contains("non-JSON"));
    }

    #[tokio::test]
    async fn caches_until_shortly_before_expiry() {
        let (clock, secs) = manual_clock();
        let fetch = FakeFetch::new(Duration::ZERO, |n, _| ok_answer(&format!("tok{n}"), 3600));
        let source = TokenSource::with_fetch(account(), clock, fetch.clone());
        assert_eq!(&*source.token().await.unwrap(), "tok0");
        assert_eq!(fetch.calls(), 1);
        // Cached through the hour but its last five minutes.
        secs.store(T0 + 3600 - 301, Ordering::SeqCst);
        assert_eq!(&*source.token().await.unwrap(), "tok0");
        assert_eq!(fetch.calls(), 1);
        // Five minutes before expiry: refreshed.
        secs.store(T0 + 3600 - 300, Ordering::SeqCst);
        assert_eq!(&*source.token().await.unwrap(), "tok1");
        assert_eq!(fetch.calls(), 2);
        assert_eq!(&*source.token().await.unwrap(), "tok1");
        assert_eq!(fetch.calls(), 2);
        // A short-lived token is refreshed halfway.
        let (clock, secs) = manual_clock();
        let fetch = FakeFetch::new(Duration::ZERO, |n, _| ok_answer(&format!("short{n}"), 60));
        let source = TokenSource::with_fetch(account(), clock, fetch.clone());
        assert_eq!(&*source.token().await.unwrap(), "short0");
        secs.store(T0 + 29, Ordering::SeqCst);
        assert_eq!(&*source.token().await.unwrap(), "short0");
        secs.store(T0 + 30, Ordering::SeqCst);
        assert_eq!(&*source.token().await.unwrap(), "short1");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_refresh_for_twenty_concurrent_callers() {
        let (clock, _) = manual_clock();
        let fetch = FakeFetch::new(Duration::from_millis(250), |n, _| ok_answer(&format!("tok{n}"), 3600));
        let source = Arc::new(TokenSource::with_fetch(account(), clock, fetch.clone()));
        let callers: Vec<_> = (0..20)
            .map(|_| {
                let s = source.clone();
                tokio::spawn(async move { s.token().await })
            })
            .collect();
        for c in callers {
            assert_eq!(&*c.await.unwrap().unwrap(), "tok0");
        }
        assert_eq!(fetch.calls(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn failed_refresh_is_shared_by_its_waiters_then_retried() {
        let (clock, _) = manual_clock();
        let fetch = FakeFetch::new(Duration::from_millis(250), |n, _| match n {
            0 => failed("connection refused"),
            _ => ok_answer("tok-after-retry", 3600),
        });
        let source = Arc::new(TokenSource::with_fetch(account(), clock, fetch.clone()));
        let callers: Vec<_> = (0..20)
            .map(|_| {
                let s = source.clone();
                tokio::spawn(async move { s.token().await })
            })
            .collect();
        for c in callers {
            let e = c.await.unwrap().unwrap_err().to_string();
            assert!(e.contains(EMAIL) && e.contains(DEFAULT_TOKEN_URI) && e.contains("connection refused"), "{e}");
        }
        assert_eq!(fetch.calls(), 1, "the waiters share the failure instead of stampeding");
        // The next request tries again.
        assert_eq!(&*source.token().await.unwrap(), "tok-after-retry");
        assert_eq!(fetch.calls(), 2);
    }

    #[tokio::test]
    async fn failed_fetch_errors_and_the_next_call_retries() {
        let (clock, secs) = manual_clock();
        let fetch = FakeFetch::new(Duration::ZERO, |n, _| match n {
            0 => Ok((
                400,
                Bytes::from_static(br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#),
            )),
            1 => ok_answer("tok1", 3600),
            2 => failed("connection reset"),
            _ => ok_answer("tok3", 3600),
        });
        let source = TokenSource::with_fetch(account(), clock, fetch.clone());
        let e = source.token().await.unwrap_err().to_string();
        assert!(e.contains("HTTP 400: invalid_grant: Invalid JWT Signature."), "{e}");
        assert_eq!(&*source.token().await.unwrap(), "tok1");
        // In the refresh window the refresh fails: the still-valid token serves.
        secs.store(T0 + 3400, Ordering::SeqCst);
        assert_eq!(&*source.token().await.unwrap(), "tok1");
        assert_eq!(fetch.calls(), 3);
        // ...and the next call retries.
        assert_eq!(&*source.token().await.unwrap(), "tok3");
        assert_eq!(fetch.calls(), 4);
    }

    #[tokio::test]
    async fn an_expired_token_is_never_served() {
        let (clock, secs) = manual_clock();
        let fetch = FakeFetch::new(Duration::ZERO, |n, _| match n {
            0 => ok_answer("tok0", 3600),
            _ => failed("down"),
        });
        let source = TokenSource::with_fetch(account(), clock, fetch.clone());
        assert_eq!(&*source.token().await.unwrap(), "tok0");
        secs.store(T0 + 3600 - 5, Ordering::SeqCst);
        assert!(source.token().await.unwrap_err().to_string().contains("down"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn callers_during_a_refresh_use_the_still_valid_token() {
        let (clock, secs) = manual_clock();
        let fetch = FakeFetch::gated(|n, _| ok_answer(&format!("tok{n}"), 3600));
        let source = Arc::new(TokenSource::with_fetch(account(), clock, fetch.clone()));
        fetch.release(1);
        assert_eq!(&*source.token().await.unwrap(), "tok0");
        secs.store(T0 + 3400, Ordering::SeqCst);
        let refresher = {
            let s = source.clone();
            tokio::spawn(async move { s.token().await })
        };
        while fetch.calls() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The refresh hangs until released: these return without it.
        for _ in 0..5 {
            let t = tokio::time::timeout(Duration::from_secs(5), source.token()).await;
            assert_eq!(&*t.expect("did not wait for the refresh").unwrap(), "tok0");
        }
        fetch.release(1);
        assert_eq!(&*refresher.await.unwrap().unwrap(), "tok1");
        assert_eq!(&*source.token().await.unwrap(), "tok1");
        assert_eq!(fetch.calls(), 2);
    }

    /// Plays `token_uri` over plain http on loopback: checks the request,
    /// answers `status` and `body`; returns the address and the requests seen.
    async fn token_server(status: u16, body: &'static str) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let count = seen.clone();
        let uri = format!("http://{addr}/token");
        let aud = uri.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let n = conn.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "request ended early");
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8(buf[..head_end].to_vec()).unwrap().to_ascii_lowercase();
                assert!(head.starts_with("post /token http/1.1\r\n"), "{head}");
                assert!(head.contains("\r\ncontent-type: application/x-www-form-urlencoded\r\n"), "{head}");
                assert!(head.contains(&format!("\r\nhost: {addr}\r\n")), "{head}");
                let len: usize =
                    head.lines().find_map(|l| l.strip_prefix("content-length: ")).unwrap().trim().parse().unwrap();
                while buf.len() < head_end + len {
                    let n = conn.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "body ended early");
                    buf.extend_from_slice(&chunk[..n]);
                }
                let form = String::from_utf8(buf[head_end..head_end + len].to_vec()).unwrap();
                let (_, claims) = decode(&assertion_of(&form));
                assert_eq!(claims["aud"], aud.as_str());
                assert_eq!(claims["iss"], EMAIL);
                count.fetch_add(1, Ordering::SeqCst);
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                conn.write_all(answer.as_bytes()).await.unwrap();
                conn.shutdown().await.ok();
            }
        });
        (uri, seen)
    }

    #[tokio::test]
    async fn end_to_end_against_a_local_token_endpoint() {
        let (uri, seen) =
            token_server(200, r#"{"access_token":"ya29.local-test","expires_in":3599,"token_type":"Bearer"}"#).await;
        let account = ServiceAccount::from_json(&key_json(Some(&uri))).unwrap();
        let source = TokenSource::new(account, Arc::new(SystemTime::now));
        assert_eq!(&*source.token().await.unwrap(), "ya29.local-test");
        assert_eq!(&*source.token().await.unwrap(), "ya29.local-test");
        assert_eq!(seen.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn end_to_end_errors() {
        let (uri, seen) =
            token_server(400, r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#).await;
        let source =
            TokenSource::new(ServiceAccount::from_json(&key_json(Some(&uri))).unwrap(), Arc::new(SystemTime::now));
        let e = source.token().await.unwrap_err().to_string();
        assert!(e.contains("HTTP 400: invalid_grant: Invalid JWT Signature."), "{e}");
        assert!(source.token().await.is_err());
        assert_eq!(seen.load(Ordering::SeqCst), 2, "each call after a failure retries");

        // Nothing listens: an error, not a panic.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = format!("http://{}/token", closed.local_addr().unwrap());
        drop(closed);
        let source =
            TokenSource::new(ServiceAccount::from_json(&key_json(Some(&dead))).unwrap(), Arc::new(SystemTime::now));
        let e = source.token().await.unwrap_err().to_string();
        assert!(e.contains("could not be reached"), "{e}");
    }
}

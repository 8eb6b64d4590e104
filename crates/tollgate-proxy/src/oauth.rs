//! ai-mcp-proxy's OAuth 2.1 resource-server mode: bearer JWTs checked against
//! the issuer's key set, which is fetched, cached and refetched when a token
//! names a key the cache does not know (the issuer rotated its keys).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use once_cell::sync::Lazy;
use tollgate_auth::{AuthError, Claims, Jwks, Validator};
use tollgate_config::schema::McpOauthConfig;

use crate::survivors::Survivors;
use crate::upstream::fetch::Fetch;
use crate::upstream::{Endpoint, FetchError, InvalidUrl};

/// An `oauth` block naming a URL that is not one.
#[derive(Debug, thiserror::Error)]
pub enum OauthConfigError {
    #[error("oauth.jwks_uri: {0}")]
    JwksUri(InvalidUrl),
    #[error("oauth.resource: {0}")]
    Resource(InvalidUrl),
}

/// The issuer's key set could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("key set answered {0}")]
    Status(u16),
    #[error("key set unusable: {0}")]
    Unusable(tollgate_auth::JwksError),
}

/// A key set older than this is fetched again before use.
const JWKS_TTL: Duration = Duration::from_secs(3600);
/// Unknown `kid`s are free for any client to send: refetch at most this often.
const REFETCH_EVERY: Duration = Duration::from_secs(30);

pub struct OauthRt {
    validator: Validator,
    keys: Arc<KeySet>,
    pub consumer_claim: String,
    /// Where the RFC 9728 document is, advertised in every challenge.
    pub metadata_url: String,
    /// The document's path on this gateway and its body.
    pub metadata_path: String,
    pub metadata: Bytes,
    scope_hint: Option<String>,
}

impl std::fmt::Debug for OauthRt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OauthRt").field("metadata_url", &self.metadata_url).finish_non_exhaustive()
    }
}

/// Why a request was not let in, ready to answer.
pub struct Refusal {
    pub status: u16,
    pub message: String,
    pub challenge: String,
}

impl OauthRt {
    pub fn compile(c: &McpOauthConfig) -> Result<Self, OauthConfigError> {
        let jwks = Endpoint::parse(&c.jwks_uri).map_err(OauthConfigError::JwksUri)?;
        let resource = Endpoint::parse(&c.resource).map_err(OauthConfigError::Resource)?;
        let path = tollgate_auth::metadata_path(resource.path_and_query.split('?').next().unwrap_or("/"));
        let scheme = if resource.tls { "https" } else { "http" };
        let servers =
            if c.authorization_servers.is_empty() { vec![c.issuer.clone()] } else { c.authorization_servers.clone() };
        let doc = tollgate_auth::protected_resource_metadata(&c.resource, &servers, &c.scopes_supported);
        let mut validator = Validator::new(c.issuer.clone(), c.audiences.clone());
        validator.leeway_secs = c.leeway_seconds;
        validator.required_scopes = c.required_scopes.clone();
        Ok(OauthRt {
            validator,
            keys: shared_key_set(&c.jwks_uri, jwks),
            consumer_claim: c.consumer_claim.clone(),
            metadata_url: format!("{scheme}://{}{path}", resource.authority),
            metadata_path: path,
            metadata: Bytes::from(doc.to_string()),
            scope_hint: (!c.required_scopes.is_empty()).then(|| c.required_scopes.join(" ")),
        })
    }

    /// Checks the request's `Authorization` header; the token's claims, or
    /// the answer to give.
    pub async fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Claims, Refusal> {
        let Some(token) = authorization.and_then(bearer) else {
            return Err(self.refuse(None, "a bearer token is required"));
        };
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let keys = match self.keys.current(false).await {
            Ok(k) => k,
            Err(e) => return Err(self.unavailable(e)),
        };
        match self.validator.validate(token, &keys, now) {
            Err(AuthError::UnknownKey) => {
                let keys = match self.keys.current(true).await {
                    Ok(k) => k,
                    Err(e) => return Err(self.unavailable(e)),
                };
                self.validator.validate(token, &keys, now).map_err(|e| self.refuse(Some(&e), &e.to_string()))
            }
            r => r.map_err(|e| self.refuse(Some(&e), &e.to_string())),
        }
    }

    fn refuse(&self, e: Option<&AuthError>, message: &str) -> Refusal {
        Refusal {
            status: e.map(AuthError::status).unwrap_or(401),
            message: message.to_string(),
            challenge: tollgate_auth::www_authenticate(&self.metadata_url, e, self.scope_hint.as_deref()),
        }
    }

    fn unavailable(&self, e: KeySetError) -> Refusal {
        tracing::warn!("OAuth key set unavailable: {e}");
        Refusal {
            status: 503,
            message: "the token issuer's keys cannot be fetched; try again later".into(),
            challenge: tollgate_auth::www_authenticate(&self.metadata_url, None, None),
        }
    }
}

/// The token of an `Authorization: Bearer ...` header.
fn bearer(v: &[u8]) -> Option<&str> {
    let v = std::str::from_utf8(v).ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// One issuer's key set, shared by every plugin (and config) that names the
/// same `jwks_uri`, so a reload does not refetch it.
struct KeySet {
    endpoint: Endpoint,
    state: Mutex<Option<(Arc<Jwks>, Instant)>>,
    /// One fetch at a time; the others wait for its result.
    fetching: tokio::sync::Mutex<()>,
}

impl KeySet {
    /// The cached keys, fetched when absent or stale, or (`refresh`) when a
    /// token named an unknown key and the last fetch is not too recent.
    async fn current(&self, refresh: bool) -> Result<Arc<Jwks>, KeySetError> {
        let fresh_enough = |at: Instant| {
            let age = at.elapsed();
            age < JWKS_TTL && (!refresh || age < REFETCH_EVERY)
        };
        if let Some((keys, at)) = self.cached() {
            if fresh_enough(at) {
                return Ok(keys);
            }
        }
        let _one = self.fetching.lock().await;
        // Someone else may have fetched while this one waited.
        if let Some((keys, at)) = self.cached() {
            if fresh_enough(at) || (refresh && at.elapsed() < REFETCH_EVERY) {
                return Ok(keys);
            }
        }
        match self.fetch().await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                if let Ok(mut s) = self.state.lock() {
                    *s = Some((keys.clone(), Instant::now()));
                }
                Ok(keys)
            }
            // A stale set beats none while the issuer is unreachable.
            Err(e) => self.cached().map(|(k, _)| k).ok_or(e),
        }
    }

    fn cached(&self) -> Option<(Arc<Jwks>, Instant)> {
        self.state.lock().ok().and_then(|s| s.clone())
    }

    async fn fetch(&self) -> Result<Jwks, KeySetError> {
        let (status, body) = Fetch::shared().get(&self.endpoint).await?;
        if status != 200 {
            return Err(KeySetError::Status(status));
        }
        Jwks::parse(&body).map_err(KeySetError::Unusable)
    }
}

static KEY_SETS: Lazy<Survivors<KeySet>> = Lazy::new(Survivors::default);

fn shared_key_set(uri: &str, endpoint: Endpoint) -> Arc<KeySet> {
    KEY_SETS.get_or_build(uri, || KeySet { endpoint, state: Mutex::new(None), fetching: tokio::sync::Mutex::new(()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        assert_eq!(bearer(b"Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(bearer(b"bearer  tok "), Some("tok"));
        assert_eq!(bearer(b"Basic dXNlcg=="), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bearer"), None);
    }
}

//! Small one-off requests on fresh connections: a service account's token,
//! a JWKS key set, an OTLP export. Each is bounded in time and answer size;
//! none is pooled, as they come minutes apart, long after an upstream closed
//! an idle connection.

use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use pingora_http::RequestHeader;

use super::{peer_for, read_body, send_on, BodyError, Endpoint, HeaderError, Timeouts, UpstreamError, Upstreams};

/// What went wrong with a one-off request: the upstream named, as these
/// messages reach logs and the errors of the token, JWKS and OTLP callers.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{host} could not be resolved: {reason}")]
    Resolve { host: String, reason: String },
    #[error("{authority} could not be reached: {reason}")]
    Connect { authority: String, reason: String },
    /// Writing the request or reading the answer's header failed, or timed out.
    #[error("{authority} {source}")]
    Exchange { authority: String, source: UpstreamError },
    #[error("no response header")]
    NoHeader,
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Connect, write and read timeouts of one request, each.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a whole request, unless the caller gives one.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest answer read (a token, a key set, a collector's reply).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Requests through Pingora's connector: TLS with SNI and certificate checks,
/// timeouts on every step.
pub struct Fetch {
    upstreams: &'static Upstreams,
}

/// One connector for every fetch of the process.
static FETCH_UPSTREAMS: LazyLock<Upstreams> = LazyLock::new(Upstreams::new);

impl Fetch {
    pub fn shared() -> Self {
        Fetch { upstreams: &FETCH_UPSTREAMS }
    }
}

impl Fetch {
    /// POSTs a form (`application/x-www-form-urlencoded`): the answer's status and body.
    pub async fn post_form(&self, ep: &Endpoint, form: String) -> Result<(u16, Bytes), FetchError> {
        let body = Some(("application/x-www-form-urlencoded", Bytes::from(form)));
        self.exchange(ep, "POST", body, &[], FETCH_TIMEOUT).await
    }

    /// GETs `ep` (a key set, a discovery document): the answer's status and body.
    pub async fn get(&self, ep: &Endpoint) -> Result<(u16, Bytes), FetchError> {
        self.exchange(ep, "GET", None, &[], FETCH_TIMEOUT).await
    }

    /// GETs `ep` with `headers` (a secret from a vault, behind its token).
    pub async fn get_with(&self, ep: &Endpoint, headers: &[(String, String)]) -> Result<(u16, Bytes), FetchError> {
        self.exchange(ep, "GET", None, headers, FETCH_TIMEOUT).await
    }

    /// POSTs `body` as `content_type` with `headers` (an export to a
    /// collector), all of it within `limit`: the answer's status and body.
    pub async fn post(
        &self,
        ep: &Endpoint,
        content_type: &str,
        body: Bytes,
        headers: &[(String, String)],
        limit: Duration,
    ) -> Result<(u16, Bytes), FetchError> {
        self.exchange(ep, "POST", Some((content_type, body)), headers, limit).await
    }

    /// One request on the upstream layer, bounded in time (`limit` in all,
    /// each step at most `STEP_TIMEOUT`) and answer size; `connection:
    /// close`, as the next one comes long after an upstream closed an idle
    /// connection.
    async fn exchange(
        &self,
        ep: &Endpoint,
        method: &str,
        body: Option<(&str, Bytes)>,
        headers: &[(String, String)],
        limit: Duration,
    ) -> Result<(u16, Bytes), FetchError> {
        let step = STEP_TIMEOUT.min(limit);
        let t = Timeouts { connect: step, read: step, write: step };
        let run = async {
            let addr = self
                .upstreams
                .resolver
                .resolve(&ep.host, ep.port)
                .await
                .map_err(|e| FetchError::Resolve { host: ep.host.clone(), reason: e.to_string() })?;
            let peer = peer_for(addr, ep, &t);
            let build = || {
                let e = HeaderError::from;
                let mut h = RequestHeader::build(method, ep.path_and_query.as_bytes(), Some(6)).map_err(e)?;
                h.insert_header("host", ep.authority.as_str()).map_err(e)?;
                if let Some((content_type, bytes)) = &body {
                    h.insert_header("content-type", *content_type).map_err(e)?;
                    h.insert_header("content-length", bytes.len().to_string()).map_err(e)?;
                }
                h.insert_header("accept", "application/json").map_err(e)?;
                h.insert_header("user-agent", concat!("tollgate/", env!("CARGO_PKG_VERSION"))).map_err(e)?;
                h.insert_header("connection", "close").map_err(e)?;
                for (name, value) in headers {
                    h.insert_header(name.clone(), value.as_str()).map_err(e)?;
                }
                Ok::<_, HeaderError>(h)
            };
            let bytes: &[u8] = body.as_ref().map(|(_, b)| &b[..]).unwrap_or_default();
            let mut session = send_on(self.upstreams, &peer, bytes, &t, &build).await.map_err(|e| match e {
                UpstreamError::Connect(reason) => FetchError::Connect { authority: ep.authority.clone(), reason },
                source => FetchError::Exchange { authority: ep.authority.clone(), source },
            })?;
            let status = session.response_header().map(|h| h.status.as_u16()).ok_or(FetchError::NoHeader)?;
            let answer = read_body(&mut session, MAX_ANSWER_BYTES).await?;
            Ok((status, answer))
        };
        match tokio::time::timeout(limit, run).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(limit)),
        }
    }
}

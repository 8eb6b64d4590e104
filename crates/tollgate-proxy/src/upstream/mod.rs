//! The crate's one HTTP client, at the bottom of its layers: the connector
//! and its pools, DNS, peers with their TLS settings, sending a request and
//! reading the answer's header and body, and the errors of all that. The LLM
//! exchange, the MCP relay, semantic routing, the GCP token exchange, JWKS
//! fetching and OTLP export all go through it; it knows nothing of them.

pub mod endpoint;
pub mod fetch;
pub mod resolver;
pub mod tls;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pingora_core::connectors::http::Connector;
use pingora_core::protocols::http::client::HttpSession;
use pingora_core::protocols::http::v1::client::{http_req_header_to_wire, HttpSession as Http1Session};
use pingora_core::upstreams::peer::{HttpPeer, ALPN};
use pingora_http::RequestHeader;
use tokio::io::AsyncWriteExt;

pub use endpoint::{Endpoint, InvalidUrl};
pub use fetch::FetchError;
pub use resolver::Resolver;

/// Largest answer body the gateway buffers whole (to read its usage, to
/// filter a tool list, a token or a key set).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;
/// How long an idle pooled upstream connection is kept.
pub const POOL_IDLE: Duration = Duration::from_secs(60);

/// Shared upstream machinery: one connector (with its pools) and one resolver.
pub struct Upstreams {
    pub connector: Connector,
    pub resolver: Resolver,
}

impl Upstreams {
    pub fn new() -> Self {
        Upstreams { connector: Connector::new(None), resolver: Resolver::default() }
    }
}

impl Default for Upstreams {
    fn default() -> Self {
        Self::new()
    }
}

/// What went wrong talking to an upstream, before its answer started.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("could not be resolved: {0}")]
    Resolve(String),
    #[error("could not be reached: {0}")]
    Connect(String),
    /// Writing the request or reading the answer's header failed.
    #[error("failed before answering: {msg}")]
    Exchange { msg: String, invalid_header: bool },
    #[error("did not answer in time: {0}")]
    Timeout(String),
    /// The upstream credential could not be obtained (a service-account token).
    #[error("could not be authenticated: {0}")]
    Auth(String),
}

/// A request header that could not be built (a name or value not allowed).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct HeaderError(pub String);

impl From<Box<pingora_error::Error>> for HeaderError {
    fn from(e: Box<pingora_error::Error>) -> Self {
        HeaderError(e.to_string())
    }
}

/// Reading an answer's body failed.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("answer exceeds {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Read(String),
}

/// Per-operation time limits of one exchange.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
    pub write: Duration,
}

/// A peer for `ep` at a resolved address, with the exchange's timeouts.
pub fn peer_for(addr: std::net::SocketAddr, ep: &Endpoint, t: &Timeouts) -> HttpPeer {
    let mut peer = HttpPeer::new(addr, ep.tls, ep.host.clone());
    peer.options.connection_timeout = Some(t.connect);
    peer.options.read_timeout = Some(t.read);
    peer.options.write_timeout = Some(t.write);
    peer.options.idle_timeout = Some(POOL_IDLE);
    peer.options.alpn = ALPN::H1;
    peer
}

/// Sends a request on a pooled connection and reads the answer's header.
/// `header` is built anew for every attempt (a signature may depend on the time).
pub async fn send_on(
    ups: &Upstreams,
    peer: &HttpPeer,
    body: &[u8],
    t: &Timeouts,
    header: &(dyn Fn() -> Result<RequestHeader, HeaderError> + Sync),
) -> Result<HttpSession, UpstreamError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let header = header().map_err(|e| UpstreamError::Exchange { msg: e.0, invalid_header: false })?;
        let (session, reused) = ups.connector.get_http_session(peer).await.map_err(|e| classify_connect(&e))?;
        match exchange_head(session, peer, header, body, t).await {
            Ok(session) => return Ok(session),
            // A pooled connection the upstream closed meanwhile fails while the
            // request is being written: it cannot have been processed, so a
            // fresh connection may carry it. Once the request was written in
            // full it is never sent again: the upstream may have read it, and a
            // second copy would run (and bill) the call twice.
            Err(Phase::Write(e)) if reused && attempts < 3 => {
                tracing::debug!("pooled connection failed while writing ({e:?}); retrying on a fresh one");
                continue;
            }
            Err(Phase::Write(e)) | Err(Phase::Read(e)) => return Err(e),
        }
    }
}

/// Where an exchange failed: before or after the request was written in full.
enum Phase {
    Write(UpstreamError),
    Read(UpstreamError),
}

/// Writes the request and reads the answer's header. On HTTP/1.1 the header
/// and body go out in one write (one syscall, one segment for small requests)
/// instead of Pingora's separate flushed header write and body write; the bytes
/// on the wire are the same (Pingora's own header serialization).
async fn exchange_head(
    session: HttpSession,
    peer: &HttpPeer,
    header: RequestHeader,
    body: &[u8],
    t: &Timeouts,
) -> Result<HttpSession, Phase> {
    let w = |e: Box<pingora_error::Error>| Phase::Write(classify_io(&e));
    let mut session = match session {
        HttpSession::H1(h1) => {
            let Some(mut wire) = http_req_header_to_wire(&header) else {
                return Err(w(pingora_error::Error::explain(
                    pingora_error::ErrorType::InvalidHTTPHeader,
                    "request-line contains forbidden delimiter bytes or unsupported HTTP version",
                )));
            };
            wire.extend_from_slice(body);
            let mut stream = h1.into_inner();
            let write = async {
                stream.write_all(&wire).await?;
                stream.flush().await
            };
            match tokio::time::timeout(t.write, write).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(w(pingora_error::Error::because(
                        pingora_error::ErrorType::WriteError,
                        "while writing request",
                        e,
                    )))
                }
                Err(_) => {
                    return Err(w(pingora_error::Error::explain(
                        pingora_error::ErrorType::WriteTimedout,
                        format!("writing request, timeout: {:?}", t.write),
                    )))
                }
            }
            HttpSession::H1(Http1Session::new_with_options(stream, peer))
        }
        mut other => {
            other.set_write_timeout(Some(t.write));
            other.write_request_header(Box::new(header)).await.map_err(w)?;
            other.write_request_body(Bytes::copy_from_slice(body), true).await.map_err(w)?;
            other.finish_request_body().await.map_err(w)?;
            other
        }
    };
    // Pingora's connector does not carry the peer's timeouts over to a
    // session; without these a silent provider would hold the request forever.
    session.set_read_timeout(Some(t.read));
    session.set_write_timeout(Some(t.write));
    session.read_response_header().await.map_err(|e| Phase::Read(classify_io(&e)))?;
    Ok(session)
}

fn classify_connect(e: &pingora_error::Error) -> UpstreamError {
    use pingora_error::ErrorType::*;
    match e.etype() {
        ConnectTimedout | TLSHandshakeTimedout => UpstreamError::Timeout(e.to_string()),
        _ => UpstreamError::Connect(e.to_string()),
    }
}

fn classify_io(e: &pingora_error::Error) -> UpstreamError {
    use pingora_error::ErrorType::*;
    match e.etype() {
        ReadTimedout | WriteTimedout => UpstreamError::Timeout(e.to_string()),
        InvalidHTTPHeader => UpstreamError::Exchange { msg: e.to_string(), invalid_header: true },
        _ => UpstreamError::Exchange { msg: e.to_string(), invalid_header: false },
    }
}

/// Reads an answer's body to its end, at most `MAX_ANSWER_BYTES`.
pub async fn read_all(upstream: &mut HttpSession) -> Result<Bytes, BodyError> {
    read_body(upstream, MAX_ANSWER_BYTES).await
}

/// Reads an answer's body to its end, at most `limit` bytes.
pub async fn read_body(upstream: &mut HttpSession, limit: usize) -> Result<Bytes, BodyError> {
    let mut buf = BytesMut::new();
    loop {
        match upstream.read_response_body().await {
            Ok(Some(chunk)) => {
                if buf.len() + chunk.len() > limit {
                    return Err(BodyError::TooLarge(limit));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(buf.freeze()),
            Err(e) => return Err(BodyError::Read(e.to_string())),
        }
    }
}

/// Returns a connection to the pool when its answer was read to the end;
/// otherwise Pingora closes it.
pub async fn release(ups: &Upstreams, upstream: HttpSession, peer: &HttpPeer) {
    ups.connector.release_http_session(upstream, peer, Some(POOL_IDLE)).await;
}

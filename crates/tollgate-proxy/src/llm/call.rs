//! One call to a provider on the upstream layer: the request header built
//! from scratch (only what the provider needs, and its credential), sent on a
//! pooled connection to the target's endpoint.

use pingora_core::protocols::http::client::HttpSession;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_http::RequestHeader;
use tollgate_llm::provider::Call;
use tollgate_llm::LlmError;

use crate::llm::target::{Credential, LlmTarget};
use crate::upstream::{peer_for, send_on, HeaderError, Timeouts, UpstreamError, Upstreams};

/// What identifies a call to the provider: the request id, and the trace
/// context: the gateway's call span when tracing, else the caller's.
pub struct CallIds<'a> {
    pub request_id: &'a str,
    pub traceparent: Option<String>,
    pub tracestate: Option<&'a str>,
}

/// A failure to reach the provider, as the caller reads it.
pub(crate) fn upstream_error(e: &UpstreamError, provider: &str) -> LlmError {
    match e {
        UpstreamError::Timeout(_) => LlmError::new(504, "upstream_timeout", format!("provider {provider} {e}")),
        _ => LlmError::new(502, "upstream_error", format!("provider {provider} {e}")),
    }
}

/// Connects (pooled), writes the request and reads the answer's header.
pub async fn send_request(
    ups: &Upstreams,
    target: &LlmTarget,
    prepared: &Call,
    ids: &CallIds<'_>,
    t: &Timeouts,
) -> Result<(HttpSession, HttpPeer), UpstreamError> {
    let ep = &target.endpoint;
    let addr = ups.resolver.resolve(&ep.host, ep.port).await.map_err(|e| UpstreamError::Resolve(e.to_string()))?;
    let mut peer = peer_for(addr, ep, t);
    target.tls.apply(&mut peer);

    let body: &[u8] = &prepared.body;
    // Vertex AI: a service account's OAuth token, cached until near expiry.
    let bearer = match &target.gcp {
        Some(ts) => Some(ts.token().await.map_err(|e| UpstreamError::Auth(e.to_string()))?),
        None => None,
    };
    let session =
        send_on(ups, &peer, body, t, &|| build_header(target, prepared, body.len(), ids, bearer.as_deref())).await?;
    Ok((session, peer))
}

/// The upstream request, built from scratch: HTTP/1.1, only the headers the
/// provider needs, the target's credential, and a Content-Length that matches
/// the translated body. Nothing of the client's own credentials can leak.
fn build_header(
    target: &LlmTarget,
    prepared: &Call,
    body_len: usize,
    ids: &CallIds<'_>,
    bearer: Option<&str>,
) -> Result<RequestHeader, HeaderError> {
    let ep = &target.endpoint;
    let base = match &prepared.path {
        Some(p) => format!("{}{p}", ep.path_and_query),
        None => ep.path_and_query.clone(),
    };
    let path = match &target.credential {
        Credential::Query { name, value } => {
            let sep = if base.contains('?') { '&' } else { '?' };
            format!("{base}{sep}{}={}", percent_encode(name), percent_encode(value))
        }
        _ => base,
    };
    let e = HeaderError::from;
    let mut h = RequestHeader::build("POST", path.as_bytes(), Some(8)).map_err(e)?;
    h.insert_header("host", ep.authority.as_str()).map_err(e)?;
    h.insert_header("content-type", "application/json").map_err(e)?;
    h.insert_header("content-length", body_len.to_string()).map_err(e)?;
    h.insert_header("accept", if prepared.stream { target.kind.stream_accept() } else { "application/json" })
        .map_err(e)?;
    for (name, value) in &prepared.headers {
        h.insert_header(*name, value.as_str()).map_err(e)?;
    }
    h.insert_header("user-agent", concat!("tollgate/", env!("CARGO_PKG_VERSION"))).map_err(e)?;
    h.insert_header("x-request-id", ids.request_id).map_err(e)?;
    if let Some(parent) = &ids.traceparent {
        h.insert_header("traceparent", parent.as_str()).map_err(e)?;
        if let Some(state) = ids.tracestate {
            h.insert_header("tracestate", state).map_err(e)?;
        }
    }
    if let Credential::Header { name, value } = &target.credential {
        h.insert_header(name.clone(), value.clone()).map_err(e)?;
    }
    if let Some(token) = bearer {
        let mut value =
            http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|err| HeaderError(err.to_string()))?;
        value.set_sensitive(true);
        h.insert_header("authorization", value).map_err(e)?;
    }
    if let Some(aws) = &target.aws {
        // Signed last, over the final path and the headers set above.
        let signed = tollgate_llm::bedrock::sign(
            &aws.credentials,
            &aws.region,
            &ep.host,
            &path,
            &[("host", ep.authority.as_str()), ("content-type", "application/json")],
            &prepared.body,
            std::time::SystemTime::now(),
        )
        .map_err(HeaderError)?;
        for (name, value) in signed {
            let mut value = http::HeaderValue::from_str(&value).map_err(|err| HeaderError(err.to_string()))?;
            value.set_sensitive(true);
            h.insert_header(name, value).map_err(e)?;
        }
    }
    Ok(h)
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_credentials_are_encoded() {
        assert_eq!(percent_encode("a b&c=d"), "a%20b%26c%3Dd");
    }
}

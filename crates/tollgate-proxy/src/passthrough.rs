//! Passthrough routes (a service with a `url`): the gateway plans where the
//! request goes, and Pingora's own proxy loop carries it, body streaming
//! through; these are the hooks of that loop.

use std::time::Instant;

use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType};
use pingora_http::RequestHeader;
use pingora_proxy::{FailToProxy, Session};

use crate::answer::refuse_body;
use crate::body::{declared_length, BodyError};
use crate::ctx::{PassthroughPlan, RequestCtx};
use crate::keyauth::remove_query_param;
use crate::pipeline::{Admitted, Refusal, Stop, Verdict};
use crate::respond::{kong_error_body, send};
use crate::snapshot::Snapshot;
use crate::upstream::Upstreams;

/// Plans a passthrough request; `Ok` hands it to Pingora.
pub async fn plan(
    ups: &Upstreams,
    session: &mut Session,
    ctx: &mut RequestCtx,
    snap: &Snapshot,
    a: &Admitted<'_>,
) -> Verdict {
    // The body streams through Pingora, so the limit is checked from
    // Content-Length here and counted in request_body_filter.
    if declared_length(session).is_some_and(|n| n > snap.max_body) {
        let _ = refuse_body(session, ctx, BodyError::TooLarge { limit: snap.max_body }).await;
        return Err(Stop::Answered);
    }
    let service = &snap.services[a.routed.service];
    let Some(ep) = &service.upstream else {
        return Err(Refusal::new(500, "service without upstream").into());
    };
    // Resolved now (asynchronously) so upstream_peer needs no DNS.
    let addr = ups
        .resolver
        .resolve(&ep.host, ep.port)
        .await
        .map_err(|e| Refusal::new(502, format!("upstream {} could not be resolved: {e}", ep.host)))?;
    let r = &snap.router.routes[a.routed.route];
    let req = session.req_header();
    let path = req.uri.path();
    let rest = if r.strip_path { &path[a.routed.prefix_len..] } else { path };
    let base = ep.path_and_query.split('?').next().unwrap_or("/");
    let mut upstream_path = join_paths(base, rest);
    if let Some(q) = query_without_key(req.uri.query(), a.credentials.hidden_query.as_deref()).filter(|q| !q.is_empty())
    {
        upstream_path.push('?');
        upstream_path.push_str(&q);
    }
    ctx.passthrough = Some(PassthroughPlan {
        addr,
        tls: ep.tls,
        sni: ep.host.clone(),
        authority: ep.authority.clone(),
        path: upstream_path,
        preserve_host: r.preserve_host,
        hide_header: a.credentials.hide_header.clone(),
        timeouts: service.timeouts,
        upstream_tls: service.tls.clone(),
    });
    start_body_deadline(session, ctx);
    Ok(())
}

/// The body streams through Pingora, which bounds each read of it by the
/// session's read timeout: that timeout is set to what is left of the body's
/// deadline now and again at each chunk (`count_body`), so the whole body is
/// bounded, not each read. An upgraded connection (WebSocket) carries a
/// stream, not a body, and keeps Pingora's own timeouts.
fn start_body_deadline(session: &mut Session, ctx: &mut RequestCtx) {
    if session.is_upgrade_req() {
        return;
    }
    let deadline = ctx.body_deadline();
    session.set_read_timeout(Some(deadline.at.saturating_duration_since(Instant::now())));
    ctx.body_deadline = Some(deadline);
}

/// The query without the parameter that carried the caller's key.
pub fn query_without_key(query: Option<&str>, hidden: Option<&str>) -> Option<String> {
    match (query, hidden) {
        (Some(q), Some(name)) => Some(remove_query_param(q, name)),
        (q, _) => q.map(str::to_string),
    }
}

/// Counts a streaming body against the limit and its deadline.
pub fn count_body(session: &mut Session, ctx: &mut RequestCtx, chunk: &[u8]) -> pingora_error::Result<()> {
    if let Some(deadline) = ctx.body_deadline {
        let left = deadline.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let msg = BodyError::TimedOut { limit_ms: deadline.limit_ms }.message();
            ctx.note_error(&msg);
            return Error::e_explain(ErrorType::HTTPStatus(408), msg);
        }
        session.set_read_timeout(Some(left));
    }
    let Some(snap) = ctx.snap.as_ref() else {
        return Ok(());
    };
    ctx.body_bytes += chunk.len();
    if ctx.body_bytes > snap.max_body {
        let msg = BodyError::TooLarge { limit: snap.max_body }.message();
        ctx.note_error(&msg);
        return Error::e_explain(ErrorType::HTTPStatus(413), msg);
    }
    Ok(())
}

/// Errors on passthrough routes, answered in Kong's shape with Kong's words.
pub async fn fail_to_proxy(session: &mut Session, e: &Error, ctx: &mut RequestCtx) -> FailToProxy {
    use pingora_error::ErrorSource;
    let (code, message) = match e.etype() {
        ErrorType::HTTPStatus(413) => (413, ctx.error.clone().unwrap_or_else(|| "Request body too large".to_string())),
        ErrorType::HTTPStatus(408) => (408, ctx.error.clone().unwrap_or_else(|| "Request timeout".to_string())),
        // A read of the caller's body timed out: the body's deadline passed
        // (or, on an upgraded connection, Pingora's own read timeout).
        ErrorType::ReadTimedout if matches!(e.esource(), ErrorSource::Downstream) => {
            let message = match ctx.body_deadline {
                Some(d) => BodyError::TimedOut { limit_ms: d.limit_ms }.message(),
                None => "Request timeout".to_string(),
            };
            (408, message)
        }
        ErrorType::HTTPStatus(code) => (*code, "An unexpected error occurred".to_string()),
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
            (504, "The upstream server is timing out".to_string())
        }
        _ => match e.esource() {
            ErrorSource::Upstream => (502, "An invalid response was received from the upstream server".to_string()),
            ErrorSource::Downstream => (0, String::new()),
            _ => (500, "An unexpected error occurred".to_string()),
        },
    };
    if code > 0 && session.response_written().is_none() {
        ctx.status = code;
        ctx.note_error(&format!("{message} ({})", e.etype().as_str()));
        let headers = [("x-request-id", ctx.request_id.as_str())];
        let _ = send(session, code, "application/json", kong_error_body(&message), &headers).await;
    }
    FailToProxy { error_code: code, can_reuse_downstream: false }
}

/// The planned peer, with the service's timeouts and TLS settings.
pub fn peer(plan: &PassthroughPlan) -> HttpPeer {
    let mut peer = HttpPeer::new(plan.addr, plan.tls, plan.sni.clone());
    peer.options.connection_timeout = plan.timeouts.connect;
    peer.options.read_timeout = plan.timeouts.read;
    peer.options.write_timeout = plan.timeouts.write;
    plan.upstream_tls.apply(&mut peer);
    peer
}

/// The request header as it goes upstream: the planned path, Host, the
/// caller's key removed, the request id and trace context.
pub fn upstream_request(
    plan: &PassthroughPlan,
    upstream: &mut RequestHeader,
    ctx: &RequestCtx,
) -> pingora_error::Result<()> {
    upstream.set_uri(plan.path.parse().map_err(|_| Error::explain(ErrorType::InvalidHTTPHeader, "upstream path"))?);
    if !plan.preserve_host {
        upstream.insert_header("host", plan.authority.as_str())?;
    }
    if let Some(h) = &plan.hide_header {
        upstream.remove_header(h.as_str());
    }
    upstream.insert_header("x-request-id", ctx.request_id.as_str())?;
    if let Some(span) = &ctx.span {
        upstream.insert_header("traceparent", span.outgoing().header())?;
    }
    Ok(())
}

/// `base` and `rest` joined with exactly one slash between them.
pub fn join_paths(base: &str, rest: &str) -> String {
    match (base.ends_with('/'), rest.starts_with('/')) {
        (_, _) if rest.is_empty() => base.to_string(),
        (true, true) => format!("{}{}", base, &rest[1..]),
        (false, false) => format!("{base}/{rest}"),
        _ => format!("{base}{rest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_without_double_slashes() {
        assert_eq!(join_paths("/", "/x"), "/x");
        assert_eq!(join_paths("/mcp", "/x"), "/mcp/x");
        assert_eq!(join_paths("/mcp/", ""), "/mcp/");
        assert_eq!(join_paths("/mcp", "x"), "/mcp/x");
    }

    #[test]
    fn the_key_parameter_leaves_the_query() {
        assert_eq!(query_without_key(Some("a=1&apikey=k"), Some("apikey")).as_deref(), Some("a=1"));
        assert_eq!(query_without_key(Some("a=1"), None).as_deref(), Some("a=1"));
        assert_eq!(query_without_key(None, Some("apikey")), None);
    }
}

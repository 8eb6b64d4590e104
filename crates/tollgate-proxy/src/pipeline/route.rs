//! Routing: the OAuth metadata documents of protected MCP routes, then the
//! most specific route, its service, what kind of route it is (LLM, MCP or
//! passthrough) and the error shape its callers read.

use pingora_http::RequestHeader;
use pingora_proxy::Session;

use super::verdict::{Refusal, Stop, Verdict};
use crate::ctx::RequestCtx;
use crate::llm::target::Api;
use crate::mcp::McpRt;
use crate::respond::{send, ErrorShape};
use crate::snapshot::{AiProxyRt, PluginRt, Slot, Snapshot};
use tollgate_llm::ingress::Ingress;

/// What a route serves.
pub enum RouteKind<'s> {
    /// LLM targets of an ai-proxy plugin (found once the consumer is known:
    /// a consumer may have its own).
    Llm,
    Mcp(&'s McpRt),
    Passthrough,
}

/// The matched route.
pub struct Routed<'s> {
    pub route: usize,
    pub service: usize,
    /// Bytes of the path the route's prefix matched (for `strip_path`).
    pub prefix_len: usize,
    pub kind: RouteKind<'s>,
}

impl Routed<'_> {
    pub fn is_llm(&self) -> bool {
        matches!(self.kind, RouteKind::Llm)
    }
}

/// RFC 9728: where OAuth-protected MCP routes tell clients how to get a token.
pub async fn serve_metadata(session: &mut Session, ctx: &mut RequestCtx, snap: &Snapshot) -> Verdict {
    let req = session.req_header();
    if req.method != http::Method::GET || !req.uri.path().starts_with(tollgate_auth::WELL_KNOWN) {
        return Ok(());
    }
    let Some(doc) = snap.oauth_metadata.get(req.uri.path()).cloned() else {
        return Ok(());
    };
    ctx.status = 200;
    let headers = [("x-request-id", ctx.request_id.as_str()), ("cache-control", "max-age=3600")];
    // A write error is the client gone; either way the request is answered.
    let _ = send(session, 200, "application/json", doc, &headers).await;
    Err(Stop::Answered)
}

pub fn find<'s>(session: &Session, ctx: &mut RequestCtx, snap: &'s Snapshot) -> Verdict<Routed<'s>> {
    let req = session.req_header();
    let host = host_of(req);
    let Some(m) = snap.router.find(req.method.as_str(), req.uri.path(), host) else {
        return Err(Refusal::new(404, "no Route matched with those values").into());
    };
    let route = m.route;
    let service = snap.router.routes[route].service;
    ctx.route = Some(route);
    ctx.service = Some(service);
    // ai-mcp-proxy makes a route an MCP route whether its service has a
    // url or the plugin names the replicas.
    let kind = match snap.plugin(Slot::Mcp, Some(route), Some(service), None) {
        Some(PluginRt::Mcp(m)) => RouteKind::Mcp(m),
        _ if snap.services[service].upstream.is_none() => RouteKind::Llm,
        _ => RouteKind::Passthrough,
    };
    if matches!(kind, RouteKind::Llm) {
        // Refusals before the consumer is known take the route's own plugin's shape.
        ctx.shape = match snap.plugin(Slot::AiProxy, Some(route), Some(service), None) {
            Some(PluginRt::AiProxy(ai)) => shape_of(ai),
            _ => ErrorShape::OpenAi,
        };
    }
    Ok(Routed { route, service, prefix_len: m.prefix_len, kind })
}

/// The error shape an LLM plugin's callers read.
pub fn shape_of(ai: &AiProxyRt) -> ErrorShape {
    match ai.api {
        Api::Generate(Ingress::AnthropicMessages) => ErrorShape::Anthropic,
        _ => ErrorShape::OpenAi,
    }
}

/// The request's host without its port (the Host header, else the URI's).
fn host_of(req: &RequestHeader) -> Option<&str> {
    let h = req.headers.get("host").and_then(|v| v.to_str().ok()).or_else(|| req.uri.host())?;
    Some(if let Some(rest) = h.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        h.split(':').next().unwrap_or(h)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lose_their_ports() {
        let req = |host: &str| {
            let mut r = RequestHeader::build("GET", b"/", None).expect("header");
            r.insert_header("host", host).expect("host");
            r
        };
        assert_eq!(host_of(&req("example.com:8000")), Some("example.com"));
        assert_eq!(host_of(&req("[::1]:8000")), Some("::1"));
        assert_eq!(host_of(&req("example.com")), Some("example.com"));
    }
}

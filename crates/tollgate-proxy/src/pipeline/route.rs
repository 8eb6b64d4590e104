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
    use crate::pipeline::test_support::{config, ctx, get, oauth_mcp, post_json, request, snapshot};

    #[tokio::test]
    async fn each_route_finds_its_service_kind_and_error_shape() {
        let snap = snapshot(&config(""));
        let cases = [
            ("/chat", "llm", "llm", ErrorShape::OpenAi),
            ("/v1/messages", "messages", "llm", ErrorShape::Anthropic),
            ("/pt/status", "pt", "passthrough", ErrorShape::Kong),
            ("/mcp", "mcp", "mcp", ErrorShape::Kong),
        ];
        for (path, service, kind, shape) in cases {
            let (s, _client) = request(&post_json(path, &[], "{}")).await;
            let mut ctx = ctx(&snap);
            let routed = find(&s, &mut ctx, &snap).unwrap_or_else(|_| panic!("{path} is routed"));
            assert_eq!(snap.services[routed.service].name, service, "{path}");
            assert_eq!((ctx.route, ctx.service), (Some(routed.route), Some(routed.service)));
            let found = match routed.kind {
                RouteKind::Llm => "llm",
                RouteKind::Mcp(_) => "mcp",
                RouteKind::Passthrough => "passthrough",
            };
            assert_eq!(found, kind, "{path}");
            assert_eq!(ctx.shape, shape, "{path}");
        }
        let (s, _client) = request(&get("/pt/status", &[])).await;
        let routed = find(&s, &mut ctx(&snap), &snap).unwrap_or_else(|_| panic!("routed"));
        assert_eq!(routed.prefix_len, "/pt".len());
    }

    #[tokio::test]
    async fn no_matching_route_is_a_404_in_kongs_words() {
        let snap = snapshot(&config(""));
        let (s, _client) = request(&get("/nowhere", &[])).await;
        let mut ctx = ctx(&snap);
        let Err(Stop::Refuse(r)) = find(&s, &mut ctx, &snap) else { panic!("refused") };
        assert_eq!((r.status, r.message.as_str()), (404, "no Route matched with those values"));
        assert_eq!((ctx.route, ctx.shape), (None, ErrorShape::Kong));
    }

    #[tokio::test]
    async fn the_oauth_metadata_document_is_answered_here() {
        let snap = snapshot(&config(&oauth_mcp("http://127.0.0.1:9/jwks.json")));
        let (mut s, client) = request(&get("/.well-known/oauth-protected-resource/secure", &[])).await;
        let mut ctx = ctx(&snap);
        assert!(matches!(serve_metadata(&mut s, &mut ctx, &snap).await, Err(Stop::Answered)));
        assert_eq!(ctx.status, 200);
        let a = client.answer(s).await.expect("answered");
        assert_eq!(a.status, 200);
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert_eq!(a.header("cache-control"), Some("max-age=3600"));
        assert_eq!(a.header("x-request-id"), Some("req-1"));
        let doc = a.json();
        assert_eq!(doc["resource"], "http://gw.test/secure");
        assert_eq!(doc["authorization_servers"], serde_json::json!(["https://issuer.test"]));
    }

    #[tokio::test]
    async fn other_requests_pass_the_metadata_step_untouched() {
        let snap = snapshot(&config(&oauth_mcp("http://127.0.0.1:9/jwks.json")));
        for raw in [
            post_json("/.well-known/oauth-protected-resource/secure", &[], "{}"),
            get("/.well-known/oauth-protected-resource/elsewhere", &[]),
            get("/secure", &[]),
        ] {
            let (mut s, client) = request(&raw).await;
            let mut ctx = ctx(&snap);
            assert!(serve_metadata(&mut s, &mut ctx, &snap).await.is_ok(), "{raw}");
            assert!(client.answer(s).await.is_none(), "nothing written for {raw}");
        }
    }

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

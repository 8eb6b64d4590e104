//! The ProxyHttp implementation: route, authenticate, authorise, then either
//! serve an LLM exchange ourselves or hand a passthrough request to Pingora.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use tollgate_llm::LlmError;
use tollgate_otel::TraceParent;

use crate::access_log::AccessLog;
use crate::body::{declared_length, discard_rest, read_bounded, BodyError};
use crate::ctx::{PassthroughPlan, RequestCtx};
use crate::exchange::{send_llm_error, serve_llm, Upstreams};
use crate::keyauth::{find_key, remove_query_param, KeyLocation, KeySources};
use crate::limits::{identity, Admission, LimiterRegistry};
use crate::mcp_relay::{serve_mcp, McpCall};
use crate::metrics::METRICS;
use crate::observe;
use crate::otel::RequestSpan;
use crate::respond::{as_refs, kong_error_body, send, PResult};
use crate::snapshot::{PluginRt, Slot, Snapshot};

/// Everything the proxy shares across requests.
pub struct GatewayState {
    pub snapshot: ArcSwap<Snapshot>,
    pub upstreams: Upstreams,
    pub access_log: AccessLog,
    pub reload: Mutex<ReloadStatus>,
    /// Limiter state outlives snapshots: counters survive reloads.
    pub limiters: LimiterRegistry,
    /// Requests per client IP in the current second (approximate, shared sketch).
    pub ip_rate: pingora_limits::rate::Rate,
    /// Requests between early_request_filter and logging: what SIGTERM waits for.
    pub in_flight: std::sync::atomic::AtomicUsize,
}

/// What /status says about the config in force and the last reload.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReloadStatus {
    pub loaded_at_unix: u64,
    pub last_reload_at_unix: Option<u64>,
    pub last_reload_ok: Option<bool>,
    pub last_reload_error: Option<String>,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl GatewayState {
    pub fn new(snapshot: Snapshot, access_log: AccessLog, limiters: LimiterRegistry) -> Self {
        GatewayState {
            limiters,
            ip_rate: pingora_limits::rate::Rate::new(Duration::from_secs(1)),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            snapshot: ArcSwap::from_pointee(snapshot),
            upstreams: Upstreams::new(),
            access_log,
            reload: Mutex::new(ReloadStatus { loaded_at_unix: unix_now(), ..ReloadStatus::default() }),
        }
    }

    /// Swaps in a new config; requests in flight keep the one they started with.
    pub fn install(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
        METRICS.config_reloads.with_label_values(&["success"]).inc();
        if let Ok(mut r) = self.reload.lock() {
            let now = unix_now();
            r.loaded_at_unix = now;
            r.last_reload_at_unix = Some(now);
            r.last_reload_ok = Some(true);
            r.last_reload_error = None;
        }
    }

    /// Records a rejected reload; the running config stays.
    pub fn reload_failed(&self, reason: String) {
        METRICS.config_reloads.with_label_values(&["failure"]).inc();
        if let Ok(mut r) = self.reload.lock() {
            r.last_reload_at_unix = Some(unix_now());
            r.last_reload_ok = Some(false);
            r.last_reload_error = Some(reason);
        }
    }
}

pub struct Gateway {
    pub state: Arc<GatewayState>,
}

/// Refused bodies are discarded up to this much so the client sees the 413.
const DISCARD_BYTES: usize = 64 * 1024 * 1024;
const DISCARD_TIME: Duration = Duration::from_secs(5);

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> Self::CTX {
        RequestCtx::new()
    }

    async fn early_request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> PResult<()> {
        // One config for every phase of this request, whatever reloads meanwhile.
        ctx.snap = Some(self.state.snapshot.load_full());
        self.state.in_flight.fetch_add(1, Ordering::AcqRel);
        ctx.counted = true;
        ctx.request_id = request_id(session.req_header().headers.get("x-request-id"));
        ctx.trace = trace_context(&session.req_header().headers);
        if let Some(otel) = ctx.snap.as_ref().and_then(|s| s.otel.clone()) {
            let span = RequestSpan::begin(otel, ctx.trace.as_ref().map(|(t, _)| t));
            if let Some(h) = &span.otel.trace_id_header {
                ctx.response_headers.push((h.clone(), span.trace_id.to_string()));
            }
            ctx.span = Some(span);
        }
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> PResult<bool>
    where
        Self::CTX: Send + Sync,
    {
        let Some(snap) = ctx.snap.clone() else {
            return Error::e_explain(ErrorType::InternalError, "no config snapshot");
        };
        // The per-IP shield runs before anything costs work, authentication included.
        if let Some(limit) = snap.config.server.ip_requests_per_second {
            if let Some(ip) = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip()) {
                if self.state.ip_rate.observe(&ip, 1) > limit as isize {
                    ctx.status = 429;
                    ctx.note_error("ip_requests_per_second exceeded");
                    let body = kong_error_body("API rate limit exceeded (server.ip_requests_per_second)");
                    let headers = [("retry-after", "1"), ("x-request-id", ctx.request_id.as_str())];
                    send(session, 429, "application/json", body, &headers).await?;
                    return Ok(true);
                }
            }
        }
        let req = session.req_header();
        let method = req.method.as_str().to_string();
        let path = req.uri.path().to_string();
        let query = req.uri.query().map(str::to_string);
        let host = host_of(req);

        // RFC 9728: where OAuth-protected MCP routes tell clients how to get a token.
        if method == "GET" && path.starts_with(tollgate_auth::WELL_KNOWN) {
            if let Some(doc) = snap.oauth_metadata.get(&path) {
                ctx.status = 200;
                let headers = [("x-request-id", ctx.request_id.as_str()), ("cache-control", "max-age=3600")];
                send(session, 200, "application/json", doc.clone(), &headers).await?;
                return Ok(true);
            }
        }
        let Some(m) = snap.router.find(&method, &path, host.as_deref()) else {
            ctx.status = 404;
            let body = kong_error_body("no Route matched with those values");
            send(session, 404, "application/json", body, &[("x-request-id", ctx.request_id.as_str())]).await?;
            return Ok(true);
        };
        let route = m.route;
        let service = snap.router.routes[route].service;
        ctx.route = Some(route);
        ctx.service = Some(service);
        // ai-mcp-proxy makes a route an MCP route whether its service has a
        // url or the plugin names the replicas.
        let mcp = match snap.plugin(Slot::Mcp, Some(route), Some(service), None) {
            Some(PluginRt::Mcp(m)) => Some(m),
            _ => None,
        };
        let is_llm = snap.services[service].upstream.is_none() && mcp.is_none();
        let hides_credential = is_llm || mcp.is_some_and(|m| !m.config.forward_client_credentials);

        // key-auth: headers and query first, the body only if needed and allowed.
        let mut body: Option<Bytes> = None;
        let mut body_key: Option<String> = None;
        let mut hide_header: Option<String> = None;
        let mut hidden_query: Option<String> = None;
        if let Some(PluginRt::KeyAuth(ka)) = snap.plugin(Slot::KeyAuth, Some(route), Some(service), None) {
            let headers = &session.req_header().headers;
            let header = |n: &str| headers.get(n).map(|v| v.as_bytes());
            let mut found = find_key(
                &ka.config,
                &KeySources { header: &header, query: query.as_deref(), body: None },
            );
            if found.is_none() && ka.config.key_in_body && is_llm {
                match read_bounded(session, snap.max_body).await {
                    Ok(b) => {
                        if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(&b) {
                            let none = |_: &str| None;
                            found = find_key(
                                &ka.config,
                                &KeySources { header: &none, query: None, body: Some(&map) },
                            );
                        }
                        body = Some(b);
                    }
                    Err(e) => return self.refuse_body(session, ctx, e, is_llm).await,
                }
            }
            let consumer = match &found {
                Some(k) => {
                    let d = crate::keyauth::digest(&k.key);
                    let c = snap.keys.lookup_digest(&d);
                    if c.is_some() {
                        // A short digest prefix names the credential without revealing it.
                        ctx.credential_id = Some(crate::keyauth::digest_prefix_hex(&d));
                    }
                    c
                }
                None => None,
            };
            match (consumer, ka.anonymous) {
                (Some(c), _) => ctx.consumer = Some(c),
                (None, Some(anon)) => ctx.consumer = Some(anon),
                (None, None) => {
                    let msg = if found.is_some() { "Unauthorized" } else { "No API key found in request" };
                    self.refuse(session, ctx, 401, msg, is_llm, &[("www-authenticate", "Key realm=\"tollgate\"")])
                        .await?;
                    return Ok(true);
                }
            }
            if let Some(k) = found {
                match k.location {
                    KeyLocation::Header(h) => {
                        if ka.config.hide_credentials || hides_credential {
                            hide_header = Some(h)
                        }
                    }
                    KeyLocation::Query(q) => {
                        if ka.config.hide_credentials || hides_credential {
                            hidden_query = Some(q)
                        }
                    }
                    KeyLocation::Body(b) => body_key = Some(b),
                }
            }
        }

        // OAuth resource-server mode on MCP routes: a bearer JWT from the
        // configured issuer; its claim names the consumer when one matches.
        let mut token_subject: Option<String> = None;
        if let Some(oauth) = mcp.and_then(|m| m.oauth.as_ref()) {
            let authorization = session.req_header().headers.get("authorization").map(|v| v.as_bytes());
            match oauth.authenticate(authorization).await {
                Ok(claims) => {
                    let subject = claims.get(&oauth.consumer_claim).and_then(|v| v.as_str()).map(str::to_string);
                    if ctx.consumer.is_none() {
                        ctx.consumer = subject.as_deref().and_then(|s| snap.consumer_named(s));
                    }
                    token_subject = subject;
                }
                Err(refusal) => {
                    let headers = [("www-authenticate", refusal.challenge.as_str())];
                    self.refuse(session, ctx, refusal.status, &refusal.message, false, &headers).await?;
                    return Ok(true);
                }
            }
        }

        // acl: by consumer group; deny wins.
        if let Some(PluginRt::Acl(acl)) = snap.plugin(Slot::Acl, Some(route), Some(service), ctx.consumer) {
            let groups: &[String] = ctx.consumer.map(|c| snap.consumers[c].groups.as_slice()).unwrap_or(&[]);
            let denied = groups.iter().any(|g| acl.deny.contains(g));
            let allowed = acl.allow.is_empty() || groups.iter().any(|g| acl.allow.contains(g));
            if denied || !allowed {
                self.refuse(session, ctx, 403, "You cannot consume this service", is_llm, &[]).await?;
                return Ok(true);
            }
        }

        // rate-limiting: requests per identifier, on every kind of route.
        if let Some(PluginRt::RequestLimit(rl)) =
            snap.plugin(Slot::RequestLimit, Some(route), Some(service), ctx.consumer)
        {
            let who = identity(&snap, session, ctx, rl.config.header_name.as_deref());
            match rl.admit(&who).await {
                Admission::Admitted { headers, .. } => ctx.response_headers.extend(headers),
                Admission::Unlimited => {}
                Admission::Refused { status, message, headers } => {
                    // Nothing else answers this request: its headers move here.
                    let mut extra = std::mem::take(&mut ctx.response_headers);
                    extra.extend(headers);
                    self.refuse(session, ctx, status, &message, is_llm, &as_refs(&extra)).await?;
                    return Ok(true);
                }
            }
        }

        if is_llm {
            let Some(PluginRt::AiProxy(ai)) =
                snap.plugin(Slot::AiProxy, Some(route), Some(service), ctx.consumer)
            else {
                let err = LlmError::new(500, "configuration_error", "this route has no ai-proxy plugin");
                send_llm_error(session, ctx, &err).await?;
                return Ok(true);
            };
            if method != "POST" {
                let err = LlmError::new(405, "invalid_request_error", "chat completions take POST");
                send_llm_error(session, ctx, &err).await?;
                return Ok(true);
            }
            let ct_ok = session
                .req_header()
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"));
            if !ct_ok {
                let err = LlmError::invalid_request("Content-Type must be application/json");
                send_llm_error(session, ctx, &err).await?;
                session.set_keepalive(None);
                return Ok(true);
            }
            let body = match body {
                Some(b) => b,
                None => match read_bounded(session, snap.max_body).await {
                    Ok(b) => b,
                    Err(e) => return self.refuse_body(session, ctx, e, true).await,
                },
            };
            let limit = match snap.plugin(Slot::TokenLimit, Some(route), Some(service), ctx.consumer) {
                Some(PluginRt::TokenLimit(l)) => Some(l),
                _ => None,
            };
            serve_llm(&self.state.upstreams, session, ctx, ai, limit, &body, body_key.as_deref()).await?;
            return Ok(true);
        }

        let r = &snap.router.routes[route];
        let q = match (&query, &hidden_query) {
            (Some(q), Some(name)) => Some(remove_query_param(q, name)),
            (q, _) => q.clone(),
        };
        if let Some(mcp) = mcp {
            let consumer = ctx.consumer.map(|c| &snap.consumers[c]);
            let mut subjects: Vec<String> = Vec::new();
            if let Some(c) = consumer {
                let name = match mcp.config.consumer_identifier.as_str() {
                    "custom_id" => c.custom_id.clone(),
                    _ => Some(c.name.clone()),
                };
                subjects.extend(name);
                subjects.extend(c.groups.iter().cloned());
            }
            subjects.extend(token_subject.clone());
            let who = match (consumer, &token_subject) {
                (Some(c), _) => format!("consumer:{}", c.name),
                (None, Some(sub)) => format!("token:{sub}"),
                (None, None) => format!(
                    "ip:{}",
                    session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip().to_string()).unwrap_or_default()
                ),
            };
            let call = McpCall {
                mcp,
                service_upstream: snap.services[service].upstream.as_ref(),
                timeouts: snap.services[service].timeouts,
                tls: &snap.services[service].tls,
                path: &path,
                prefix_len: m.prefix_len,
                strip_path: r.strip_path,
                preserve_host: r.preserve_host,
                query: q,
                hide_header,
                subjects,
                who,
                traceparent: ctx.span.as_ref().map(|s| s.outgoing().header()),
            };
            serve_mcp(&self.state.upstreams, session, ctx, call).await?;
            return Ok(true);
        }

        // Passthrough: the body streams through Pingora, so the limit is checked
        // from Content-Length here and counted in request_body_filter.
        if declared_length(session).is_some_and(|n| n > snap.max_body) {
            return self.refuse_body(session, ctx, BodyError::TooLarge { limit: snap.max_body }, false).await;
        }

        // Resolve now (asynchronously) so upstream_peer needs no DNS.
        let Some(ep) = &snap.services[service].upstream else {
            return Error::e_explain(ErrorType::InternalError, "service without upstream");
        };
        let addr = match self.state.upstreams.resolver.resolve(&ep.host, ep.port).await {
            Ok(a) => a,
            Err(e) => {
                let msg = format!("upstream {} could not be resolved: {e}", ep.host);
                self.refuse(session, ctx, 502, &msg, false, &[]).await?;
                return Ok(true);
            }
        };
        let rest = if r.strip_path { &path[m.prefix_len..] } else { path.as_str() };
        let base = ep.path_and_query.split('?').next().unwrap_or("/");
        let mut upstream_path = join_paths(base, rest);
        if let Some(q) = q.filter(|q| !q.is_empty()) {
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
            hide_header,
            timeouts: snap.services[service].timeouts,
            upstream_tls: snap.services[service].tls.clone(),
        });
        Ok(false)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut Self::CTX,
    ) -> PResult<()>
    where
        Self::CTX: Send + Sync,
    {
        if let (Some(chunk), Some(snap)) = (body.as_ref(), ctx.snap.as_ref()) {
            ctx.body_bytes += chunk.len();
            if ctx.body_bytes > snap.max_body {
                let msg = BodyError::TooLarge { limit: snap.max_body }.message();
                ctx.note_error(&msg);
                return Error::e_explain(ErrorType::HTTPStatus(413), msg);
            }
        }
        Ok(())
    }

    /// Errors on passthrough routes, answered in Kong's shape with Kong's words.
    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Self::CTX) -> FailToProxy
    where
        Self::CTX: Send + Sync,
    {
        use pingora_error::ErrorSource;
        let (code, message) = match e.etype() {
            ErrorType::HTTPStatus(413) => (
                413,
                ctx.error.clone().unwrap_or_else(|| "Request body too large".to_string()),
            ),
            ErrorType::HTTPStatus(code) => (*code, "An unexpected error occurred".to_string()),
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
                (504, "The upstream server is timing out".to_string())
            }
            _ => match e.esource() {
                ErrorSource::Upstream => (
                    502,
                    "An invalid response was received from the upstream server".to_string(),
                ),
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

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Self::CTX) -> PResult<Box<HttpPeer>> {
        let Some(plan) = &ctx.passthrough else {
            return Error::e_explain(ErrorType::InternalError, "no upstream planned");
        };
        let mut peer = HttpPeer::new(plan.addr, plan.tls, plan.sni.clone());
        peer.options.connection_timeout = plan.timeouts.connect;
        peer.options.read_timeout = plan.timeouts.read;
        peer.options.write_timeout = plan.timeouts.write;
        plan.upstream_tls.apply(&mut peer);
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut Self::CTX,
    ) -> PResult<()>
    where
        Self::CTX: Send + Sync,
    {
        if let Some(plan) = &ctx.passthrough {
            upstream.set_uri(
                plan.path
                    .parse()
                    .map_err(|_| Error::explain(ErrorType::InvalidHTTPHeader, "upstream path"))?,
            );
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
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> PResult<()>
    where
        Self::CTX: Send + Sync,
    {
        resp.insert_header("x-request-id", ctx.request_id.as_str())?;
        for (k, v) in &ctx.response_headers {
            resp.append_header(k.clone(), v.as_str())?;
        }
        Ok(())
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Self::CTX)
    where
        Self::CTX: Send + Sync,
    {
        if let Some(held) = ctx.held_limit.take() {
            // A provider that answered an error used no tokens: refund them.
            let ok = ctx.llm.as_ref().and_then(|f| f.upstream_status).is_some_and(|s| (200..300).contains(&s));
            held.settle(if ok { ctx.llm.as_ref() } else { None }).await;
        }
        observe::record(&self.state.access_log, session, e, ctx);
        if std::mem::take(&mut ctx.counted) {
            self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Gateway {
    /// Refuses in the route's error shape: OpenAI's on LLM routes, Kong's elsewhere.
    async fn refuse(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        status: u16,
        message: &str,
        is_llm: bool,
        headers: &[(&str, &str)],
    ) -> PResult<()> {
        ctx.status = status;
        ctx.note_error(message);
        let body = if is_llm {
            let kind = match status {
                401 => "authentication_error",
                403 => "permission_error",
                413 => "invalid_request_error",
                _ => "gateway_error",
            };
            tollgate_llm::error::error_body(message, kind, None)
        } else {
            kong_error_body(message)
        };
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        all.push(("x-request-id", ctx.request_id.as_str()));
        all.extend(ctx.response_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        send(session, status, "application/json", body, &all).await
    }

    async fn refuse_body(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        e: BodyError,
        is_llm: bool,
    ) -> PResult<bool> {
        let status = match e {
            BodyError::TooLarge { .. } => 413,
            BodyError::Read(_) => 400,
        };
        self.refuse(session, ctx, status, &e.message(), is_llm, &[]).await?;
        session.set_keepalive(None);
        if status == 413 {
            discard_rest(session, DISCARD_BYTES, DISCARD_TIME).await;
        }
        Ok(true)
    }
}

fn host_of(req: &RequestHeader) -> Option<String> {
    let h = req
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri.host())?;
    let h = if h.starts_with('[') {
        h.split(']').next().map(|s| &s[1..]).unwrap_or(h)
    } else {
        h.split(':').next().unwrap_or(h)
    };
    Some(h.to_string())
}

pub(crate) fn join_paths(base: &str, rest: &str) -> String {
    match (base.ends_with('/'), rest.starts_with('/')) {
        (_, _) if rest.is_empty() => base.to_string(),
        (true, true) => format!("{}{}", base, &rest[1..]),
        (false, false) => format!("{base}/{rest}"),
        _ => format!("{base}{rest}"),
    }
}

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);
static REQUEST_PREFIX: once_cell::sync::Lazy<u32> = once_cell::sync::Lazy::new(|| {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    t ^ std::process::id().rotate_left(16)
});

/// A well-formed W3C trace context (`traceparent`: version-traceid-parentid-flags
/// in lower-case hex), with its `tracestate`; anything else is dropped.
fn trace_context(headers: &http::HeaderMap) -> Option<(TraceParent, Option<String>)> {
    let parent = TraceParent::parse(headers.get("traceparent")?.to_str().ok()?)?;
    let state = headers
        .get("tracestate")
        .and_then(|v| v.to_str().ok())
        .filter(|s| s.len() <= 512)
        .map(str::to_string);
    Some((parent, state))
}

/// The client's `X-Request-Id` when it is sane, else a fresh one.
fn request_id(given: Option<&http::HeaderValue>) -> String {
    if let Some(v) = given.and_then(|v| v.to_str().ok()) {
        if !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()) {
            return v.to_string();
        }
    }
    let n = REQUEST_SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{:08x}{:016x}", *REQUEST_PREFIX, n)
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
    fn request_ids_are_kept_or_made() {
        let v = http::HeaderValue::from_static("abc-123");
        assert_eq!(request_id(Some(&v)), "abc-123");
        let bad = http::HeaderValue::from_static("has space");
        assert_ne!(request_id(Some(&bad)), "has space");
        assert_ne!(request_id(None), request_id(None));
    }
}

//! The ProxyHttp implementation: the pipeline's steps (shield, route,
//! authenticate, authorize, limit), then an LLM exchange or an MCP relay
//! served by the gateway, or a passthrough request handed to Pingora.

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
use crate::answer;
use crate::connections::OpenConnections;
use crate::ctx::RequestCtx;
use crate::guard::rt::{Chain, GuardRt};
use crate::limits::LimiterRegistry;
use crate::llm;
use crate::mcp::exchange::serve_route as serve_mcp;
use crate::metrics::METRICS;
use crate::observe;
use crate::otel::RequestSpan;
use crate::passthrough;
use crate::pipeline::{self, Admitted, RouteKind};
use crate::respond::PResult;
use crate::snapshot::{PluginRt, Slot, Snapshot};
use crate::upstream::Upstreams;

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
    /// Client connections open, per IP: the cap, and what SIGTERM waits for
    /// (a connection whose request header has started is served first).
    pub connections: Arc<OpenConnections>,
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
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl GatewayState {
    pub fn new(snapshot: Snapshot, access_log: AccessLog, limiters: LimiterRegistry) -> Self {
        GatewayState {
            limiters,
            ip_rate: pingora_limits::rate::Rate::new(Duration::from_secs(1)),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            connections: Arc::default(),
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

#[async_trait]
impl ProxyHttp for Gateway {
    /// Boxed: Pingora keeps the CTX inline in its per-request future, which is
    /// copied whole when boxed once per request; `RequestCtx` is ~3 KiB (the
    /// LLM and MCP facts), a pointer is 8 bytes and one allocation.
    type CTX = Box<RequestCtx>;

    fn new_ctx(&self) -> Self::CTX {
        Box::new(RequestCtx::new())
    }

    fn request_header_failed(&self, session: &pingora_core::protocols::http::ServerSession, e: &Error, status: u16) {
        observe::header_failed(&self.state.access_log, session.client_addr(), e, status);
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

    /// The pipeline's steps, then the route's kind: an LLM exchange or an MCP
    /// relay served here (`true`), or a passthrough handed to Pingora (`false`).
    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> PResult<bool>
    where
        Self::CTX: Send + Sync,
    {
        let Some(snap) = ctx.snap.clone() else {
            return Error::e_explain(ErrorType::InternalError, "no config snapshot");
        };
        let ups = &self.state.upstreams;
        let admitted = match pipeline::run(&self.state.ip_rate, session, ctx, &snap).await {
            Ok(a) => a,
            Err(stop) => return pipeline::answer_stop(session, ctx, stop).await.map(|()| true),
        };
        match admitted.routed.kind {
            RouteKind::Llm => {
                serve_llm(ups, session, ctx, &snap, admitted).await?;
                Ok(true)
            }
            RouteKind::Mcp(mcp) => {
                serve_mcp(ups, session, ctx, &snap, mcp, &admitted).await?;
                Ok(true)
            }
            RouteKind::Passthrough => match passthrough::plan(ups, session, ctx, &snap, &admitted).await {
                Ok(()) => Ok(false),
                Err(stop) => pipeline::answer_stop(session, ctx, stop).await.map(|()| true),
            },
        }
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut Self::CTX,
    ) -> PResult<()>
    where
        Self::CTX: Send + Sync,
    {
        match body.as_ref() {
            Some(chunk) => passthrough::count_body(session, ctx, chunk),
            None => Ok(()),
        }
    }

    /// Errors on passthrough routes, answered in Kong's shape with Kong's words.
    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Self::CTX) -> FailToProxy
    where
        Self::CTX: Send + Sync,
    {
        passthrough::fail_to_proxy(session, e, ctx).await
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Self::CTX) -> PResult<Box<HttpPeer>> {
        match &ctx.passthrough {
            Some(plan) => Ok(Box::new(passthrough::peer(plan))),
            None => Error::e_explain(ErrorType::InternalError, "no upstream planned"),
        }
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
        match &ctx.passthrough {
            Some(plan) => passthrough::upstream_request(plan, upstream, ctx),
            None => Ok(()),
        }
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
        if let Some(held) = ctx.held_budget.take() {
            // Charged what the access log's cost says, whatever the status.
            held.settle(ctx.llm.as_ref()).await;
        }
        observe::record(&self.state.access_log, session, e, ctx);
        if std::mem::take(&mut ctx.counted) {
            self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// An LLM route: its ai-proxy plugin (a consumer's own wins) and token limit.
async fn serve_llm(
    ups: &Upstreams,
    session: &mut Session,
    ctx: &mut RequestCtx,
    snap: &Snapshot,
    a: Admitted<'_>,
) -> PResult<()> {
    let (route, service) = (Some(a.routed.route), Some(a.routed.service));
    let Some(PluginRt::AiProxy(ai)) = snap.plugin(Slot::AiProxy, route, service, ctx.consumer) else {
        let err = LlmError::new(500, "configuration_error", "this route has no ai-proxy plugin");
        return answer::error(session, ctx, &err, &[]).await;
    };
    ctx.shape = pipeline::shape_of(ai);
    let limit = match snap.plugin(Slot::TokenLimit, route, service, ctx.consumer) {
        Some(PluginRt::TokenLimit(l)) => Some(l),
        _ => None,
    };
    let request = llm::LlmRequest {
        ai,
        limit,
        body: a.credentials.body,
        body_key: a.credentials.body_key,
        max_body: snap.max_body,
        guards: guards(snap, route, service, ctx.consumer),
    };
    llm::serve(ups, session, ctx, request).await
}

/// The guardrail plugins of a request (each resolved by Kong's precedence).
fn guards(snap: &Snapshot, route: Option<usize>, service: Option<usize>, consumer: Option<usize>) -> Chain<'_> {
    let get = |slot| match snap.plugin(slot, route, service, consumer) {
        Some(PluginRt::Guard(g)) => Some(&**g),
        _ => None,
    };
    Chain {
        prompt: match get(Slot::PromptGuard) {
            Some(GuardRt::Prompt(p)) => Some(p),
            _ => None,
        },
        sanitizer: match get(Slot::Sanitizer) {
            Some(GuardRt::Sanitizer(s)) => Some(s),
            _ => None,
        },
        webhook: match get(Slot::CustomGuardrail) {
            Some(GuardRt::Webhook(w)) => Some(w),
            _ => None,
        },
    }
}

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);
static REQUEST_PREFIX: once_cell::sync::Lazy<u32> = once_cell::sync::Lazy::new(|| {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    t ^ std::process::id().rotate_left(16)
});

/// A well-formed W3C trace context (`traceparent`: version-traceid-parentid-flags
/// in lower-case hex), with its `tracestate`; anything else is dropped.
fn trace_context(headers: &http::HeaderMap) -> Option<(TraceParent, Option<String>)> {
    let parent = TraceParent::parse(headers.get("traceparent")?.to_str().ok()?)?;
    let state = headers.get("tracestate").and_then(|v| v.to_str().ok()).filter(|s| s.len() <= 512).map(str::to_string);
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
    fn request_ids_are_kept_or_made() {
        let v = http::HeaderValue::from_static("abc-123");
        assert_eq!(request_id(Some(&v)), "abc-123");
        let bad = http::HeaderValue::from_static("has space");
        assert_ne!(request_id(Some(&bad)), "has space");
        assert_ne!(request_id(None), request_id(None));
    }

    fn ret4<A, B, C, D, F>(_: impl FnOnce(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }
    fn ret5<A, B, C, D, E, F>(_: impl FnOnce(A, B, C, D, E) -> F) -> usize {
        std::mem::size_of::<F>()
    }
    fn ret6<A, B, C, D, E, G, F>(_: impl FnOnce(A, B, C, D, E, G) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// The futures of the request path, in bytes. A future is copied whole
    /// each time it is moved (into a `Box`, as `async_trait` does for
    /// `request_filter`, or into its caller's state), so these sizes are
    /// instructions on every request. `cargo test -p tollgate-proxy
    /// future_sizes -- --nocapture` prints them.
    #[test]
    fn future_sizes() {
        let sizes = [
            ("RequestCtx (the CTX, boxed)", std::mem::size_of::<RequestCtx>()),
            ("pipeline::run", ret4(pipeline::run)),
            ("serve_llm", ret5(serve_llm)),
            ("llm::serve", ret4(llm::serve)),
            ("upstream::send_on", ret5(crate::upstream::send_on)),
            ("mcp::exchange::serve_route", ret6(serve_mcp)),
            ("passthrough::plan", ret5(passthrough::plan)),
        ];
        for (name, size) in sizes {
            println!("{size:>7} B  {name}");
        }
    }
}

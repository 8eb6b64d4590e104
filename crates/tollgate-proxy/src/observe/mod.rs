//! The logging phase: Prometheus metrics, one JSON access-log line per request,
//! and the request's spans when the opentelemetry plugin is on.
//!
//! ```text
//! summary    what every record says of the request: status, latency, names
//! counters   the Prometheus metrics it counts in
//! line       its access-log line
//! ```

mod counters;
mod line;
mod summary;

use pingora_error::Error;
use pingora_proxy::Session;

use crate::access_log::AccessLog;
use crate::ctx::RequestCtx;
use crate::otel::ServerFacts;
use summary::Summary;

pub fn record(log: &AccessLog, session: &Session, e: Option<&Error>, ctx: &mut RequestCtx) {
    let span = ctx.span.take();
    let ctx = &*ctx;
    let s = Summary::of(session, e, ctx);
    counters::count(&s, ctx);
    if let Some(span) = span {
        let req = session.req_header();
        span.finish(ServerFacts {
            method: req.method.as_str(),
            path: req.uri.path(),
            status: s.status,
            route: s.route,
            service: s.service,
            consumer: s.consumer,
            request_id: &ctx.request_id,
            client_ip: session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip().to_string()),
            error: s.error,
            mcp: ctx.mcp.as_ref(),
        });
    }
    if log.enabled() {
        line::write(log, session, ctx, &s);
    }
}

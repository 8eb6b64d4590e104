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

use pingora_core::protocols::l4::socket::SocketAddr;

use crate::access_log::AccessLog;
use crate::connections::EDGE;
use crate::ctx::RequestCtx;
use crate::otel::ServerFacts;
use summary::Summary;

/// A request whose header never arrived whole or well-formed, which Pingora
/// answered with `status` before any phase ran: counted and logged. Status 0
/// (the client hung up mid-header, nothing was answered) is neither. The
/// error's own text is not logged for a malformed header: it quotes the bytes
/// received, credentials included.
pub fn header_failed(log: &AccessLog, client: Option<&SocketAddr>, error: &Error, status: u16) {
    let why = match status {
        400 => {
            EDGE.header_failures_400.inc();
            "malformed request header".to_string()
        }
        408 => {
            EDGE.header_failures_408.inc();
            // Pingora's timeout errors say which limit passed and how many bytes had come.
            format!("request header not received in time: {}", error.context.as_ref().map(|c| c.as_str()).unwrap_or(""))
        }
        _ => return,
    };
    if log.enabled() {
        line::write_unread(log, client.map(|a| a.to_string()), status, &why);
    }
}

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

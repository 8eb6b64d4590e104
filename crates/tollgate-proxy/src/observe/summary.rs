//! What every record of a request says about it: its status, latency, the
//! names of its route, service and consumer, and why it failed.

use std::time::Duration;

use pingora_error::Error;
use pingora_proxy::Session;

use crate::ctx::RequestCtx;

pub(super) struct Summary<'a> {
    pub status: u16,
    pub elapsed: Duration,
    /// Names, empty when the request got no route (or service, or consumer).
    pub route: &'a str,
    pub service: &'a str,
    pub consumer: &'a str,
    /// The gateway's reason, else Pingora's error type.
    pub error: Option<&'a str>,
}

impl<'a> Summary<'a> {
    pub fn of(session: &Session, e: Option<&'a Error>, ctx: &'a RequestCtx) -> Self {
        let snap = ctx.snap.as_deref();
        Summary {
            status: status(session, e, ctx),
            elapsed: ctx.start.elapsed(),
            route: snap.zip(ctx.route).map(|(s, r)| s.router.routes[r].name.as_str()).unwrap_or(""),
            service: snap.zip(ctx.service).map(|(s, i)| s.services[i].name.as_str()).unwrap_or(""),
            consumer: snap.zip(ctx.consumer).map(|(s, c)| s.consumers[c].name.as_str()).unwrap_or(""),
            error: ctx.error.as_deref().or(e.map(|e| e.etype().as_str())),
        }
    }
}

/// The status the gateway answered, else the one Pingora wrote, else 502
/// for a request that failed before any answer (0 for one that was never
/// answered at all).
fn status(session: &Session, e: Option<&Error>, ctx: &RequestCtx) -> u16 {
    if ctx.status != 0 {
        return ctx.status;
    }
    session.response_written().map(|r| r.status.as_u16()).unwrap_or(if e.is_some() { 502 } else { 0 })
}

//! `request_filter` as a list of named steps: shield, route, authenticate,
//! authorize, limit. Each step is in the file of its concern and returns one
//! verdict: go on, or stop (the step answered, or a refusal to answer in the
//! route's error shape). What the steps learn about the request (its route,
//! consumer, credential) goes into the request context or the `Admitted`
//! hand-over; the gateway then serves the route's kind.

mod authenticate;
mod authorize;
mod limit;
mod route;
mod shield;
mod verdict;

use pingora_proxy::Session;

use crate::answer;
use crate::ctx::RequestCtx;
use crate::respond::{refusal, PResult};
use crate::snapshot::Snapshot;

pub use authenticate::Credentials;
pub use route::{shape_of, RouteKind, Routed};
pub use verdict::{Refusal, Stop, Verdict};

/// What the steps admitted: the route and how the caller authenticated.
pub struct Admitted<'s> {
    pub routed: Routed<'s>,
    pub credentials: Credentials,
}

/// Runs the steps in order; the first that stops ends the pipeline.
/// `ip_rate` counts requests per client IP for the shield.
pub async fn run<'s>(
    ip_rate: &pingora_limits::rate::Rate,
    session: &mut Session,
    ctx: &mut RequestCtx,
    snap: &'s Snapshot,
) -> Verdict<Admitted<'s>> {
    shield::check(ip_rate, session, snap)?;
    route::serve_metadata(session, ctx, snap).await?;
    let routed = route::find(session, ctx, snap)?;
    let credentials = authenticate::run(session, ctx, snap, &routed).await?;
    authorize::acl(ctx, snap, &routed)?;
    limit::requests(session, ctx, snap, &routed).await?;
    Ok(Admitted { routed, credentials })
}

/// Answers a stop: nothing for a step that answered, else the refusal in
/// the request's error shape.
pub async fn answer_stop(session: &mut Session, ctx: &mut RequestCtx, stop: Stop) -> PResult<()> {
    match stop {
        Stop::Answered => Ok(()),
        Stop::Refuse(r) => {
            let headers: Vec<(&str, &str)> = r.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            answer::error(session, ctx, &refusal(r.status, &r.message), &headers).await
        }
    }
}


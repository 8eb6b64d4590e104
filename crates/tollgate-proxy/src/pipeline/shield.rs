//! The per-IP shield (`server.ip_requests_per_second`): before anything costs
//! work, authentication included.

use pingora_proxy::Session;

use pingora_limits::rate::Rate;

use super::verdict::{Refusal, Verdict};
use crate::snapshot::Snapshot;

pub fn check(ip_rate: &Rate, session: &Session, snap: &Snapshot) -> Verdict {
    let Some(limit) = snap.config.server.ip_requests_per_second else {
        return Ok(());
    };
    let Some(ip) = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip()) else {
        return Ok(());
    };
    if ip_rate.observe(&ip, 1) > limit as isize {
        let r = Refusal::new(429, "API rate limit exceeded (server.ip_requests_per_second)").with_header("retry-after", "1");
        return Err(r.into());
    }
    Ok(())
}

//! acl: by consumer group; deny wins.

use super::route::Routed;
use super::verdict::{Refusal, Verdict};
use crate::ctx::RequestCtx;
use crate::snapshot::{PluginRt, Slot, Snapshot};

pub fn acl(ctx: &RequestCtx, snap: &Snapshot, routed: &Routed<'_>) -> Verdict {
    let Some(PluginRt::Acl(acl)) = snap.plugin(Slot::Acl, Some(routed.route), Some(routed.service), ctx.consumer) else {
        return Ok(());
    };
    let groups: &[String] = ctx.consumer.map(|c| snap.consumers[c].groups.as_slice()).unwrap_or(&[]);
    let denied = groups.iter().any(|g| acl.deny.contains(g));
    let allowed = acl.allow.is_empty() || groups.iter().any(|g| acl.allow.contains(g));
    if denied || !allowed {
        return Err(Refusal::new(403, "You cannot consume this service").into());
    }
    Ok(())
}

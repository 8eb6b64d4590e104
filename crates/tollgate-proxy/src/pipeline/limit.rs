//! rate-limiting: requests per identifier, on every kind of route. (Token
//! budgets are reserved by the LLM exchange, once the target is known.)

use pingora_proxy::Session;

use super::route::Routed;
use super::verdict::{Refusal, Verdict};
use crate::ctx::RequestCtx;
use crate::limits::Admission;
use crate::snapshot::{PluginRt, Slot, Snapshot};

pub async fn requests(session: &Session, ctx: &mut RequestCtx, snap: &Snapshot, routed: &Routed<'_>) -> Verdict {
    let Some(PluginRt::RequestLimit(rl)) =
        snap.plugin(Slot::RequestLimit, Some(routed.route), Some(routed.service), ctx.consumer)
    else {
        return Ok(());
    };
    let who = ctx.identity(session, rl.config.header_name.as_deref());
    match rl.admit(&who).await {
        Admission::Admitted { headers, .. } => {
            ctx.response_headers.extend(headers);
            Ok(())
        }
        Admission::Unlimited => Ok(()),
        Admission::Refused { status, message, headers } => {
            let mut r = Refusal::new(status, message);
            r.headers = headers;
            Err(r.into())
        }
    }
}

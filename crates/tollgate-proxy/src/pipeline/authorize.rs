//! acl: by consumer group; deny wins.

use super::route::Routed;
use super::verdict::{Refusal, Verdict};
use crate::ctx::RequestCtx;
use crate::snapshot::{PluginRt, Slot, Snapshot};

pub fn acl(ctx: &RequestCtx, snap: &Snapshot, routed: &Routed<'_>) -> Verdict {
    let Some(PluginRt::Acl(acl)) = snap.plugin(Slot::Acl, Some(routed.route), Some(routed.service), ctx.consumer)
    else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::route::find;
    use crate::pipeline::test_support::{config, ctx, get, request, snapshot};
    use crate::pipeline::Stop;

    const ACL: &str = "[[plugins]]\nname = \"acl\"\nservice = \"pt\"\n[plugins.config]\n";

    /// The ACL's verdict for `consumer` (by name) on the passthrough route.
    async fn verdict(rule: &str, consumer: Option<&str>) -> Verdict {
        let snap = snapshot(&config(&format!("{ACL}{rule}")));
        let (s, _client) = request(&get("/pt", &[])).await;
        let mut ctx = ctx(&snap);
        let routed = find(&s, &mut ctx, &snap).unwrap_or_else(|_| panic!("routed"));
        ctx.consumer = consumer.and_then(|n| snap.consumer_named(n));
        acl(&ctx, &snap, &routed)
    }

    fn forbidden(v: Verdict) -> bool {
        matches!(v, Err(Stop::Refuse(r)) if r.status == 403 && r.message == "You cannot consume this service")
    }

    #[tokio::test]
    async fn an_allow_list_admits_its_groups_only() {
        let rule = r#"allow = ["dev"]"#;
        assert!(verdict(rule, Some("alice")).await.is_ok());
        assert!(forbidden(verdict(rule, Some("bob")).await));
        // Without a consumer there is no group to be in.
        assert!(forbidden(verdict(rule, None).await));
    }

    #[tokio::test]
    async fn a_deny_list_refuses_its_groups_only() {
        let rule = r#"deny = ["contractors"]"#;
        assert!(forbidden(verdict(rule, Some("bob")).await));
        assert!(verdict(rule, Some("alice")).await.is_ok());
        assert!(verdict(rule, None).await.is_ok());
    }

    #[tokio::test]
    async fn routes_without_an_acl_admit_anyone() {
        let snap = snapshot(&config(""));
        let (s, _client) = request(&get("/pt", &[])).await;
        let mut ctx = ctx(&snap);
        let routed = find(&s, &mut ctx, &snap).unwrap_or_else(|_| panic!("routed"));
        assert!(acl(&ctx, &snap, &routed).is_ok());
    }
}

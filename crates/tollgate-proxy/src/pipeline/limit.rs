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
    let who = ctx.identity(session, rl.header_name.as_ref());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::route::find;
    use crate::pipeline::test_support::{config, ctx, get, request_from, snapshot};
    use crate::pipeline::Stop;

    fn limit(settings: &str) -> String {
        format!("[[plugins]]\nname = \"rate-limiting\"\nservice = \"pt\"\n[plugins.config]\n{settings}\n")
    }

    /// One request to the passthrough route from `client`, as `consumer`:
    /// the verdict and the headers the answer will carry.
    async fn once(
        snap: &std::sync::Arc<Snapshot>,
        client: &str,
        consumer: Option<&str>,
    ) -> (Verdict, Vec<(String, String)>) {
        let (s, _client) = request_from(client, &get("/pt", &[])).await;
        let mut ctx = ctx(snap);
        let routed = find(&s, &mut ctx, snap).unwrap_or_else(|_| panic!("routed"));
        ctx.consumer = consumer.and_then(|n| snap.consumer_named(n));
        let v = requests(&s, &mut ctx, snap, &routed).await;
        (v, ctx.response_headers)
    }

    fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
        h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    #[tokio::test]
    async fn requests_past_the_limit_are_refused_with_kongs_headers() {
        let snap = snapshot(&config(&limit("minute = 2\nlimit_by = \"consumer\"")));
        let (v, h) = once(&snap, "203.0.113.7:1", Some("alice")).await;
        assert!(v.is_ok());
        assert_eq!(header(&h, "x-ratelimit-limit-minute"), Some("2"));
        assert_eq!(header(&h, "x-ratelimit-remaining-minute"), Some("1"));
        assert_eq!(header(&h, "ratelimit-remaining"), Some("1"));
        let (v, h) = once(&snap, "203.0.113.7:1", Some("alice")).await;
        assert!(v.is_ok());
        assert_eq!(header(&h, "x-ratelimit-remaining-minute"), Some("0"));
        let (v, _) = once(&snap, "203.0.113.7:1", Some("alice")).await;
        let Err(Stop::Refuse(r)) = v else { panic!("the third is refused") };
        assert_eq!((r.status, r.message.as_str()), (429, "API rate limit exceeded"));
        assert!(header(&r.headers, "retry-after").is_some());
        assert_eq!(header(&r.headers, "x-ratelimit-remaining-minute"), Some("0"));
        // Another consumer has its own budget.
        assert!(once(&snap, "203.0.113.7:1", Some("bob")).await.0.is_ok());
    }

    #[tokio::test]
    async fn limit_by_ip_counts_each_address() {
        let snap = snapshot(&config(&limit("minute = 1\nlimit_by = \"ip\"\nhide_client_headers = true")));
        let (v, h) = once(&snap, "203.0.113.7:1", None).await;
        assert!(v.is_ok());
        assert!(h.is_empty(), "hide_client_headers: {h:?}");
        // Another port of the same address is the same client.
        assert!(once(&snap, "203.0.113.7:2", Some("alice")).await.0.is_err());
        assert!(once(&snap, "198.51.100.9:1", None).await.0.is_ok());
    }

    #[tokio::test]
    async fn routes_without_a_limit_count_nothing() {
        let snap = snapshot(&config(""));
        for _ in 0..3 {
            let (v, h) = once(&snap, "203.0.113.7:1", Some("alice")).await;
            assert!(v.is_ok() && h.is_empty());
        }
    }
}

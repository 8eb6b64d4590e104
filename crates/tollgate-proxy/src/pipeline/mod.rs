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
#[cfg(test)]
pub(crate) mod test_support;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::test_support::{config, ctx, key_auth, post_json, request, snapshot, Answer};
    use super::*;
    use crate::body::BodyError;
    use crate::respond::ErrorShape;

    /// What `answer_stop` writes for `stop` to a request whose callers read `shape`.
    async fn answered(shape: ErrorShape, stop: Stop) -> (Option<Answer>, RequestCtx) {
        let snap = snapshot(&config(""));
        let (mut s, client) = request(&post_json("/chat", &[], "{}")).await;
        let mut ctx = ctx(&snap);
        ctx.shape = shape;
        ctx.response_headers.push(("x-ratelimit-remaining-minute".into(), "0".into()));
        answer_stop(&mut s, &mut ctx, stop).await.expect("written");
        (client.answer(s).await, ctx)
    }

    fn unauthorized() -> Stop {
        Refusal::new(401, "No API key found in request")
            .with_header("www-authenticate", "Key realm=\"tollgate\"")
            .into()
    }

    #[tokio::test]
    async fn a_step_that_answered_gets_nothing_more_written() {
        let (a, ctx) = answered(ErrorShape::OpenAi, Stop::Answered).await;
        assert!(a.is_none());
        assert_eq!((ctx.status, ctx.error), (0, None));
    }

    #[tokio::test]
    async fn refusals_carry_their_headers_and_the_requests_own() {
        let (a, ctx) = answered(ErrorShape::Kong, unauthorized()).await;
        let a = a.expect("answered");
        assert_eq!(a.status, 401);
        assert_eq!(a.header("www-authenticate"), Some("Key realm=\"tollgate\""));
        assert_eq!(a.header("x-request-id"), Some("req-1"));
        assert_eq!(a.header("x-ratelimit-remaining-minute"), Some("0"));
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert_eq!(ctx.status, 401);
        assert_eq!(ctx.error.as_deref(), Some("No API key found in request"));
    }

    #[tokio::test]
    async fn refusals_take_kongs_shape_on_passthrough_and_mcp_routes() {
        let a = answered(ErrorShape::Kong, unauthorized()).await.0.expect("answered");
        assert_eq!(a.json(), serde_json::json!({"message": "No API key found in request"}));
    }

    #[tokio::test]
    async fn refusals_take_openais_shape_on_openai_routes() {
        let a = answered(ErrorShape::OpenAi, unauthorized()).await.0.expect("answered");
        let e = &a.json()["error"];
        assert_eq!(e["message"], "No API key found in request");
        assert_eq!(e["type"], "authentication_error");
        let forbidden = Refusal::new(403, "You cannot consume this service").into();
        let a = answered(ErrorShape::OpenAi, forbidden).await.0.expect("answered");
        assert_eq!((a.status, &a.json()["error"]["type"]), (403, &serde_json::json!("permission_error")));
    }

    #[tokio::test]
    async fn refusals_take_anthropics_shape_on_messages_routes() {
        let a = answered(ErrorShape::Anthropic, unauthorized()).await.0.expect("answered");
        assert_eq!(
            a.json(),
            serde_json::json!({"type": "error", "error": {"type": "authentication_error", "message": "No API key found in request"}})
        );
        let limited = Refusal::new(429, "API rate limit exceeded").with_header("retry-after", "7").into();
        let a = answered(ErrorShape::Anthropic, limited).await.0.expect("answered");
        assert_eq!((a.status, a.header("retry-after")), (429, Some("7")));
        assert_eq!(a.json()["error"]["type"], "rate_limit_error");
    }

    /// What `refuse_body` writes for `e` in `shape`.
    async fn body_refused(shape: ErrorShape, e: BodyError) -> Answer {
        let snap = snapshot(&config(""));
        let (mut s, client) = request(&post_json("/chat", &[], "{}")).await;
        let mut ctx = ctx(&snap);
        ctx.shape = shape;
        answer::refuse_body(&mut s, &mut ctx, e).await.expect("written");
        client.answer(s).await.expect("answered")
    }

    #[tokio::test]
    async fn refused_bodies_are_413_or_400_and_close_the_connection() {
        let a = body_refused(ErrorShape::OpenAi, BodyError::TooLarge { limit: 10 }).await;
        assert_eq!((a.status, a.header("connection")), (413, Some("close")));
        assert_eq!(a.json()["error"]["type"], "invalid_request_error");
        let a = body_refused(ErrorShape::Kong, BodyError::TooLarge { limit: 10 }).await;
        assert_eq!(a.status, 413);
        assert!(a.json()["message"].as_str().is_some_and(|m| m.contains("10")), "{:?}", a.json());
        let a = body_refused(ErrorShape::Anthropic, BodyError::TooLarge { limit: 10 }).await;
        assert_eq!((a.status, &a.json()["error"]["type"]), (413, &serde_json::json!("request_too_large")));
        let broken = BodyError::Read("connection reset".into());
        let a = body_refused(ErrorShape::OpenAi, broken).await;
        assert_eq!((a.status, a.header("connection")), (400, Some("close")));
    }

    fn rate() -> pingora_limits::rate::Rate {
        pingora_limits::rate::Rate::new(Duration::from_secs(3600))
    }

    /// The steps on one config: ACL allows dev, one request per minute each.
    fn guarded() -> Arc<Snapshot> {
        let plugins = "[[plugins]]\nname = \"acl\"\nservice = \"llm\"\n[plugins.config]\nallow = [\"dev\"]\n\n\
                       [[plugins]]\nname = \"rate-limiting\"\nservice = \"llm\"\n[plugins.config]\nminute = 1\n\n";
        snapshot(&config(&format!("{plugins}{}", key_auth(""))))
    }

    #[tokio::test]
    async fn an_admitted_request_has_passed_every_step() {
        let snap = guarded();
        let (mut s, _client) = request(&post_json("/chat", &["apikey: alice-key"], "{}")).await;
        let mut ctx = ctx(&snap);
        let a = run(&rate(), &mut s, &mut ctx, &snap).await.unwrap_or_else(|e| panic!("admitted: {e:?}"));
        assert!(a.routed.is_llm());
        assert_eq!(a.credentials.hide_header.as_deref(), Some("apikey"));
        assert_eq!(ctx.consumer_name(), Some("alice"));
        assert!(ctx
            .response_headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("x-ratelimit-remaining-minute") && v == "0"));
    }

    #[tokio::test]
    async fn the_first_step_that_stops_ends_the_pipeline() {
        let snap = guarded();
        let rate = rate();
        // bob authenticates, then the ACL refuses him before the limit counts him.
        let (mut s, _client) = request(&post_json("/chat", &["apikey: bob-key"], "{}")).await;
        let mut bob = ctx(&snap);
        let Err(Stop::Refuse(r)) = run(&rate, &mut s, &mut bob, &snap).await else { panic!("refused") };
        assert_eq!(r.status, 403);
        assert!(bob.response_headers.is_empty());
        // No key: authentication refuses before the ACL is asked.
        let (mut s, _client) = request(&post_json("/chat", &[], "{}")).await;
        let mut nobody = ctx(&snap);
        let Err(Stop::Refuse(r)) = run(&rate, &mut s, &mut nobody, &snap).await else { panic!("refused") };
        assert_eq!(r.status, 401);
        assert_eq!(nobody.shape, ErrorShape::OpenAi, "the route's shape is known by then");
    }
}

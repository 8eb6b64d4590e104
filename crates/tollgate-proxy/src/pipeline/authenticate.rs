//! Authentication: key-auth (headers and query first, the body only when
//! needed and allowed), then, on OAuth-protected MCP routes, a bearer JWT
//! whose claim may name the consumer.

use bytes::Bytes;
use pingora_proxy::Session;

use super::route::{RouteKind, Routed};
use super::verdict::{Refusal, Stop, Verdict};
use crate::answer::refuse_body;
use crate::ctx::RequestCtx;
use crate::keyauth::{digest, digest_prefix_hex, find_key, KeyLocation, KeySources};
use crate::snapshot::{PluginRt, Slot, Snapshot};

/// What authentication learned and what the route must hide upstream.
#[derive(Debug, Default)]
pub struct Credentials {
    /// The header that carried the key, removed before proxying.
    pub hide_header: Option<String>,
    /// The query parameter that carried the key, removed before proxying.
    pub hidden_query: Option<String>,
    /// The body, when it was read to find the key (`key_in_body`).
    pub body: Option<Bytes>,
    /// The body field that held the key.
    pub body_key: Option<String>,
    /// The bearer token's subject claim (OAuth MCP routes).
    pub token_subject: Option<String>,
}

pub async fn run(session: &mut Session, ctx: &mut RequestCtx, snap: &Snapshot, routed: &Routed<'_>) -> Verdict<Credentials> {
    let mut creds = Credentials::default();
    key_auth(session, ctx, snap, routed, &mut creds).await?;
    bearer(session, ctx, snap, routed, &mut creds).await?;
    Ok(creds)
}

async fn key_auth(
    session: &mut Session,
    ctx: &mut RequestCtx,
    snap: &Snapshot,
    routed: &Routed<'_>,
    creds: &mut Credentials,
) -> Verdict {
    let Some(PluginRt::KeyAuth(ka)) = snap.plugin(Slot::KeyAuth, Some(routed.route), Some(routed.service), None) else {
        return Ok(());
    };
    // LLM routes build the upstream request from scratch; MCP routes forward
    // the caller's credential only when told to.
    let hides_credential = match routed.kind {
        RouteKind::Llm => true,
        RouteKind::Mcp(m) => !m.config.forward_client_credentials,
        RouteKind::Passthrough => false,
    };
    let mut found = {
        let req = session.req_header();
        let header = |n: &str| req.headers.get(n).map(|v| v.as_bytes());
        find_key(&ka.config, &KeySources { header: &header, query: req.uri.query(), body: None })
    };
    if found.is_none() && ka.config.key_in_body && routed.is_llm() {
        let b = read_body(session, ctx, snap.max_body).await?;
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(&b) {
            let none = |_: &str| None;
            found = find_key(&ka.config, &KeySources { header: &none, query: None, body: Some(&map) });
        }
        creds.body = Some(b);
    }
    let consumer = found.as_ref().and_then(|k| {
        let d = digest(&k.key);
        let c = snap.keys.lookup_digest(&d);
        if c.is_some() {
            // A short digest prefix names the credential without revealing it.
            ctx.credential_id = Some(digest_prefix_hex(&d));
        }
        c
    });
    match (consumer, ka.anonymous) {
        (Some(c), _) => ctx.consumer = Some(c),
        (None, Some(anon)) => ctx.consumer = Some(anon),
        (None, None) => {
            let msg = if found.is_some() { "Unauthorized" } else { "No API key found in request" };
            return Err(Refusal::new(401, msg).with_header("www-authenticate", "Key realm=\"tollgate\"").into());
        }
    }
    let hide = ka.config.hide_credentials || hides_credential;
    match found.map(|k| k.location) {
        Some(KeyLocation::Header(h)) if hide => creds.hide_header = Some(h),
        Some(KeyLocation::Query(q)) if hide => creds.hidden_query = Some(q),
        Some(KeyLocation::Body(b)) => creds.body_key = Some(b),
        _ => {}
    }
    Ok(())
}

/// OAuth resource-server mode on MCP routes: a bearer JWT from the
/// configured issuer; its claim names the consumer when one matches.
async fn bearer(
    session: &Session,
    ctx: &mut RequestCtx,
    snap: &Snapshot,
    routed: &Routed<'_>,
    creds: &mut Credentials,
) -> Verdict {
    let RouteKind::Mcp(mcp) = routed.kind else {
        return Ok(());
    };
    let Some(oauth) = mcp.oauth.as_ref() else {
        return Ok(());
    };
    let authorization = session.req_header().headers.get("authorization").map(|v| v.as_bytes());
    match oauth.authenticate(authorization).await {
        Ok(claims) => {
            let subject = claims.get(&oauth.consumer_claim).and_then(|v| v.as_str()).map(str::to_string);
            if ctx.consumer.is_none() {
                ctx.consumer = subject.as_deref().and_then(|s| snap.consumer_named(s));
            }
            creds.token_subject = subject;
            Ok(())
        }
        Err(refusal) => {
            Err(Refusal::new(refusal.status, refusal.message).with_header("www-authenticate", refusal.challenge).into())
        }
    }
}

/// Reads the body as a step: a refusal answers for itself.
async fn read_body(session: &mut Session, ctx: &mut RequestCtx, limit: usize) -> Verdict<Bytes> {
    match crate::body::read_bounded(session, limit).await {
        Ok(b) => Ok(b),
        Err(e) => {
            // The refusal closes the connection: answered here, whatever the step.
            let _ = refuse_body(session, ctx, e).await;
            Err(Stop::Answered)
        }
    }
}

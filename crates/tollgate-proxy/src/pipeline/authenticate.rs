//! Authentication: mtls-auth (the client certificate the TLS listener
//! verified), key-auth (headers and query first, the body only when needed and
//! allowed), then, on OAuth-protected MCP routes, a bearer JWT
//! whose claim may name the consumer.

use bytes::Bytes;
use pingora_proxy::Session;

use super::route::{RouteKind, Routed};
use super::verdict::{Refusal, Stop, Verdict};
use crate::answer::refuse_body;
use crate::client_tls::ClientIdentity;
use crate::ctx::RequestCtx;
use crate::keyauth::{digest, digest_prefix_hex, KeyLocation, KeySources};
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

pub async fn run(
    session: &mut Session,
    ctx: &mut RequestCtx,
    snap: &Snapshot,
    routed: &Routed<'_>,
) -> Verdict<Credentials> {
    let mut creds = Credentials::default();
    mtls_auth(session, ctx, snap, routed)?;
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
    // Kong's logical OR: with `anonymous` set, a caller another plugin
    // (mtls-auth) already authenticated is not asked for a key as well.
    if ka.anonymous.is_some() && ctx.credential_id.is_some() {
        return Ok(());
    }
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
        ka.finder.find(&KeySources { header: &header, query: req.uri.query(), body: None })
    };
    if found.is_none() && ka.config.key_in_body && routed.is_llm() {
        let b = read_body(session, ctx, snap.max_body).await?;
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(&b) {
            let none = |_: &str| None;
            found = ka.finder.find(&KeySources { header: &none, query: None, body: Some(&map) });
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

/// Kong's mtls-auth: a certificate verified against `server.client_ca` names
/// the consumer by a subject alternative name or its common name. Runs before
/// key-auth (Kong's priorities); with both on a route, both must pass.
fn mtls_auth(session: &Session, ctx: &mut RequestCtx, snap: &Snapshot, routed: &Routed<'_>) -> Verdict {
    let Some(PluginRt::MtlsAuth(m)) = snap.plugin(Slot::MtlsAuth, Some(routed.route), Some(routed.service), None)
    else {
        return Ok(());
    };
    let identity = ClientIdentity::of_session(session);
    let consumer = identity.filter(|_| !m.config.skip_consumer_lookup).and_then(|id| {
        id.names.iter().find_map(|name| m.config.consumer_by.iter().find_map(|&by| snap.consumer_by(name, by)))
    });
    match (identity, consumer, m.anonymous) {
        (Some(id), Some(c), _) => {
            ctx.consumer = Some(c);
            ctx.credential_id = Some(id.fingerprint.clone());
        }
        (Some(id), None, _) if m.config.skip_consumer_lookup => ctx.credential_id = Some(id.fingerprint.clone()),
        (_, _, Some(anon)) => ctx.consumer = Some(anon),
        (None, _, None) => return Err(Refusal::new(401, "No required TLS certificate was sent").into()),
        (Some(_), None, None) => return Err(Refusal::new(401, "No consumer matches the TLS client certificate").into()),
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
    match crate::body::read_bounded(session, limit, ctx.body_deadline()).await {
        Ok(b) => Ok(b),
        Err(e) => {
            // The refusal closes the connection: answered here, whatever the step.
            let _ = refuse_body(session, ctx, e).await;
            Err(Stop::Answered)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::route::find;
    use crate::pipeline::test_support::{
        config, ctx, get, key_auth, key_auth_on, oauth_mcp, post_json, request, serve_fixed, snapshot, Client,
    };
    use std::sync::Arc;

    /// Routes the request, then authenticates it.
    async fn authenticate(snap: &Arc<Snapshot>, raw: &str) -> (Verdict<Credentials>, RequestCtx, Session, Client) {
        let (mut s, client) = request(raw).await;
        let mut ctx = ctx(snap);
        let routed = find(&s, &mut ctx, snap).unwrap_or_else(|_| panic!("routed"));
        let v = run(&mut s, &mut ctx, snap, &routed).await;
        (v, ctx, s, client)
    }

    fn consumer(snap: &Snapshot, ctx: &RequestCtx) -> Option<String> {
        ctx.consumer.map(|c| snap.consumers[c].name.clone())
    }

    fn refusal(v: Verdict<Credentials>) -> Refusal {
        match v {
            Err(Stop::Refuse(r)) => r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_key_in_a_header_names_the_consumer_and_never_reaches_a_provider() {
        let snap = snapshot(&config(&key_auth("")));
        let (v, ctx, _, _) = authenticate(&snap, &post_json("/chat", &["apikey: alice-key"], "{}")).await;
        let creds = v.expect("authenticated");
        assert_eq!(consumer(&snap, &ctx).as_deref(), Some("alice"));
        // A short digest prefix, never the key.
        let id = ctx.credential_id.expect("a credential id");
        assert!(!id.contains("alice-key") && !id.is_empty());
        assert_eq!(creds.hide_header.as_deref(), Some("apikey"));
        assert_eq!((creds.hidden_query, creds.body), (None, None));
    }

    /// mtls-auth on every route; the CA file is only read by the listener.
    fn mtls_auth(settings: &str) -> String {
        format!(
            "[server]\ntls_listen = [\"127.0.0.1:8443\"]\ntls_certificates = [{{ cert = \"c.pem\", key = \"k.pem\" }}]\n\
             client_ca = \"ca.pem\"\n\n[[plugins]]\nname = \"mtls-auth\"\n[plugins.config]\n{settings}\n"
        )
    }

    #[tokio::test]
    async fn mtls_auth_refuses_a_connection_without_a_certificate() {
        // The in-memory session has no TLS, as a plain listener's has none.
        let snap = snapshot(&config(&mtls_auth("")));
        let (v, ctx, _, _) = authenticate(&snap, &post_json("/chat", &[], "{}")).await;
        let r = refusal(v);
        assert_eq!((r.status, r.message.as_str()), (401, "No required TLS certificate was sent"));
        assert_eq!(ctx.consumer, None);
    }

    #[tokio::test]
    async fn mtls_auth_serves_anonymous_without_a_certificate() {
        let snap = snapshot(&config(&mtls_auth(r#"anonymous = "bob""#)));
        let (v, ctx, _, _) = authenticate(&snap, &post_json("/chat", &[], "{}")).await;
        v.expect("served as anonymous");
        assert_eq!(consumer(&snap, &ctx).as_deref(), Some("bob"));
        assert_eq!(ctx.credential_id, None);
    }

    #[tokio::test]
    async fn authorization_bearer_is_read_without_its_scheme() {
        let snap = snapshot(&config(&key_auth(r#"key_names = ["authorization"]"#)));
        let raw = post_json("/chat", &["Authorization: Bearer bob-key"], "{}");
        let (v, ctx, _, _) = authenticate(&snap, &raw).await;
        assert_eq!(v.expect("authenticated").hide_header.as_deref(), Some("authorization"));
        assert_eq!(consumer(&snap, &ctx).as_deref(), Some("bob"));
    }

    #[tokio::test]
    async fn a_key_in_the_query_is_removed_before_proxying() {
        let snap = snapshot(&config(&key_auth("")));
        let (v, ctx, _, _) = authenticate(&snap, &post_json("/chat?apikey=bob-key&x=1", &[], "{}")).await;
        let creds = v.expect("authenticated");
        assert_eq!(consumer(&snap, &ctx).as_deref(), Some("bob"));
        assert_eq!(creds.hidden_query.as_deref(), Some("apikey"));
        assert_eq!(creds.hide_header, None);
    }

    #[tokio::test]
    async fn passthrough_routes_forward_the_key_unless_told_to_hide_it() {
        let raw = get("/pt/x?apikey=alice-key", &["apikey: alice-key"]);
        let snap = snapshot(&config(&key_auth("")));
        let (v, ctx, _, _) = authenticate(&snap, &raw).await;
        let creds = v.expect("authenticated");
        assert_eq!(consumer(&snap, &ctx).as_deref(), Some("alice"));
        assert_eq!((creds.hide_header, creds.hidden_query), (None, None));

        let snap = snapshot(&config(&key_auth("hide_credentials = true")));
        let (v, _, _, _) = authenticate(&snap, &raw).await;
        assert_eq!(v.expect("authenticated").hide_header.as_deref(), Some("apikey"));
    }

    #[tokio::test]
    async fn key_in_body_reads_the_body_once_and_hands_it_on() {
        let snap = snapshot(&config(&key_auth_on("llm", "key_in_body = true")));
        let body = r#"{"apikey":"alice-key","messages":[]}"#;
        let (v, ctx, _, _) = authenticate(&snap, &post_json("/chat", &[], body)).await;
        let creds = v.expect("authenticated");
        assert_eq!(consumer(&snap, &ctx).as_deref(), Some("alice"));
        assert_eq!(creds.body.as_deref(), Some(body.as_bytes()));
        assert_eq!(creds.body_key.as_deref(), Some("apikey"));
        // A key in a header wins, and the body stays unread.
        let (v, ctx, _, _) = authenticate(&snap, &post_json("/chat", &["apikey: bob-key"], body)).await;
        assert_eq!(v.expect("authenticated").body, None);
        assert_eq!(consumer(&snap, &ctx).as_deref(), Some("bob"));
    }

    #[tokio::test]
    async fn key_in_body_past_the_size_limit_is_answered_413() {
        let extra = format!("[server]\nmax_request_body_size = 16\n{}", key_auth_on("llm", "key_in_body = true"));
        let snap = snapshot(&config(&extra));
        let body = r#"{"apikey":"alice-key","messages":[]}"#;
        let (v, ctx, s, client) = authenticate(&snap, &post_json("/chat", &[], body)).await;
        assert!(matches!(v, Err(Stop::Answered)));
        assert_eq!(ctx.status, 413);
        let a = client.answer(s).await.expect("answered");
        assert_eq!(a.status, 413);
        assert_eq!(a.json()["error"]["type"], "invalid_request_error");
        assert_eq!(a.header("connection"), Some("close"));
    }

    #[tokio::test]
    async fn a_missing_or_unknown_key_is_401_with_a_key_challenge() {
        let snap = snapshot(&config(&key_auth("")));
        let r = refusal(authenticate(&snap, &post_json("/chat", &[], "{}")).await.0);
        assert_eq!((r.status, r.message.as_str()), (401, "No API key found in request"));
        assert_eq!(r.headers, [("www-authenticate".to_string(), "Key realm=\"tollgate\"".to_string())]);
        let (v, ctx, _, _) = authenticate(&snap, &post_json("/chat", &["apikey: nobody"], "{}")).await;
        assert_eq!(refusal(v).message, "Unauthorized");
        assert_eq!((ctx.consumer, ctx.credential_id), (None, None));
    }

    #[tokio::test]
    async fn anonymous_stands_in_for_a_missing_or_unknown_key() {
        let snap = snapshot(&config(&key_auth(r#"anonymous = "guest""#)));
        let (v, ctx, _, _) = authenticate(&snap, &post_json("/chat", &[], "{}")).await;
        assert_eq!(v.expect("admitted").hide_header, None);
        assert_eq!(consumer(&snap, &ctx).as_deref(), Some("guest"));
        // A key that names no one is still a credential: it never reaches a provider.
        let (v, ctx, _, _) = authenticate(&snap, &post_json("/chat", &["apikey: nobody"], "{}")).await;
        assert_eq!(v.expect("admitted").hide_header.as_deref(), Some("apikey"));
        assert_eq!(consumer(&snap, &ctx).as_deref(), Some("guest"));
        assert_eq!(ctx.credential_id, None);
        let (v, ctx, _, _) = authenticate(&snap, &post_json("/chat", &["apikey: alice-key"], "{}")).await;
        assert!(v.is_ok());
        assert_eq!(consumer(&snap, &ctx).as_deref(), Some("alice"));
    }

    #[tokio::test]
    async fn routes_without_key_auth_let_everyone_in_unnamed() {
        let snap = snapshot(&config(""));
        let (v, ctx, _, _) = authenticate(&snap, &post_json("/chat", &["apikey: alice-key"], "{}")).await;
        assert_eq!(v.expect("admitted").hide_header, None);
        assert_eq!(ctx.consumer, None);
    }

    #[tokio::test]
    async fn oauth_routes_refuse_a_request_without_a_bearer_token() {
        let snap = snapshot(&config(&oauth_mcp("http://127.0.0.1:9/jwks.json")));
        let r = refusal(authenticate(&snap, &post_json("/secure", &[], "{}")).await.0);
        assert_eq!(r.status, 401);
        let (name, challenge) = &r.headers[0];
        assert_eq!(name, "www-authenticate");
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        let meta = "resource_metadata=\"http://gw.test/.well-known/oauth-protected-resource/secure\"";
        assert!(challenge.contains(meta), "{challenge}");
    }

    #[tokio::test]
    async fn a_valid_bearer_jwt_names_its_consumer_by_its_subject() {
        let issuer = jwt::Issuer::new();
        let jwks = issuer.jwks();
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{jwks}",
            jwks.len()
        );
        let jwks_uri = format!("http://{}/jwks.json", serve_fixed(answer).await);
        let snap = snapshot(&config(&oauth_mcp(&jwks_uri)));
        let token = issuer.token("alice", "http://gw.test/secure");
        let raw = post_json("/secure", &[&format!("authorization: Bearer {token}")], "{}");
        let (v, ctx, _, _) = authenticate(&snap, &raw).await;
        assert_eq!(v.expect("authenticated").token_subject.as_deref(), Some("alice"));
        assert_eq!(consumer(&snap, &ctx).as_deref(), Some("alice"));
        // A subject that names no consumer is still the caller, unnamed.
        let token = issuer.token("mallory", "http://gw.test/secure");
        let raw = post_json("/secure", &[&format!("authorization: Bearer {token}")], "{}");
        let (v, ctx, _, _) = authenticate(&snap, &raw).await;
        assert_eq!(v.expect("authenticated").token_subject.as_deref(), Some("mallory"));
        assert_eq!(ctx.consumer, None);
        // A token for another resource is refused.
        let token = issuer.token("alice", "http://elsewhere/mcp");
        let raw = post_json("/secure", &[&format!("authorization: Bearer {token}")], "{}");
        let r = refusal(authenticate(&snap, &raw).await.0);
        assert_eq!(r.status, 401);
        assert!(r.headers[0].1.contains("error=\"invalid_token\""), "{:?}", r.headers);
    }

    /// ES256 tokens signed here, and their key set.
    mod jwt {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        use ring::rand::SystemRandom;
        use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

        pub struct Issuer {
            key: EcdsaKeyPair,
            rng: SystemRandom,
        }

        impl Issuer {
            pub fn new() -> Self {
                let rng = SystemRandom::new();
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
                let key =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("key");
                Issuer { key, rng }
            }

            pub fn jwks(&self) -> String {
                // An uncompressed P-256 point: 0x04, x, y.
                let point = self.key.public_key().as_ref();
                let (x, y) = point[1..].split_at(32);
                serde_json::json!({"keys": [{
                    "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
                    "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
                }]})
                .to_string()
            }

            pub fn token(&self, sub: &str, aud: &str) -> String {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let header = serde_json::json!({"alg": "ES256", "kid": "k1", "typ": "JWT"});
                let claims = serde_json::json!({
                    "iss": "https://issuer.test", "aud": aud, "sub": sub, "iat": now, "exp": now + 300,
                });
                let signing_input = format!(
                    "{}.{}",
                    URL_SAFE_NO_PAD.encode(header.to_string()),
                    URL_SAFE_NO_PAD.encode(claims.to_string())
                );
                let sig = self.key.sign(&self.rng, signing_input.as_bytes()).expect("signed");
                format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
            }
        }
    }
}

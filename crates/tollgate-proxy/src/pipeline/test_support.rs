//! What the steps' unit tests share: a snapshot compiled from a small TOML
//! config, a request context on it, and a real Pingora session over
//! in-memory IO whose answer the test reads back.
//!
//! The session is Pingora's own HTTP/1 server session (`Session::new_h1`, as
//! pingap's plugin tests build theirs), on one end of a `tokio::io::duplex`
//! pipe, for which pingora-core implements its `IO` trait. The test writes
//! the raw request into the other end, and reads there whatever the step
//! answered. A duplex pipe (rather than a scripted `tokio_test` mock) lets a
//! step write an answer the test did not have to predict byte for byte.

use std::path::Path;
use std::sync::Arc;

use pingora_core::protocols::l4::socket::SocketAddr;
use pingora_core::protocols::SocketDigest;
use pingora_proxy::Session;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use crate::ctx::RequestCtx;
use crate::limits::LimiterRegistry;
use crate::snapshot::Snapshot;

/// The client address of requests built by `request`.
pub const CLIENT: &str = "203.0.113.7:40000";

/// A config, validated and compiled as the binary does, with its own
/// limiter state (so tests do not share counters).
pub fn snapshot(toml: &str) -> Arc<Snapshot> {
    let env = |_: &str| None;
    let config = match tollgate_config::load_str(toml, Path::new("test.toml"), &env) {
        Ok(c) => c,
        Err(e) => panic!("test config is invalid:\n{e}"),
    };
    Arc::new(Snapshot::build(config, &LimiterRegistry::system()).expect("test config compiles"))
}

/// A request context as `early_request_filter` leaves it.
pub fn ctx(snap: &Arc<Snapshot>) -> RequestCtx {
    let mut ctx = RequestCtx::new();
    ctx.snap = Some(snap.clone());
    ctx.request_id = "req-1".into();
    ctx
}

/// The client's end of a session's connection.
pub struct Client {
    end: DuplexStream,
}

/// A session that has read `raw` (request line, headers, and any body) from
/// `CLIENT`.
pub async fn request(raw: &str) -> (Session, Client) {
    request_from(CLIENT, raw).await
}

/// A session that has read the head of `raw` from `client` (`ip:port`).
pub async fn request_from(client: &str, raw: &str) -> (Session, Client) {
    // Room for any answer a step writes, so writes never wait for the reader.
    let (mut near, far) = tokio::io::duplex(1 << 20);
    near.write_all(raw.as_bytes()).await.expect("request written");
    let mut session = Session::new_h1(Box::new(far));
    // An in-memory pipe has no socket to ask for the peer's address: the
    // digest says it instead, as the listener's would.
    let digest = SocketDigest::from_raw_fd(-1);
    let addr = client.parse().expect("client address");
    let _ = digest.peer_addr.set(Some(SocketAddr::Inet(addr)));
    if let Some(d) = session.as_downstream_mut().digest_mut() {
        d.socket_digest = Some(Arc::new(digest));
    }
    assert!(session.read_request().await.expect("request read"), "a request was read");
    (session, Client { end: near })
}

/// A request with a JSON body and the given headers (`name: value` lines).
pub fn post_json(path: &str, headers: &[&str], body: &str) -> String {
    let mut raw = format!("POST {path} HTTP/1.1\r\nhost: gw.test\r\ncontent-type: application/json\r\n");
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    raw
}

/// A GET with the given headers.
pub fn get(path: &str, headers: &[&str]) -> String {
    let mut raw = format!("GET {path} HTTP/1.1\r\nhost: gw.test\r\n");
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    raw
}

/// An answer as the client read it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Names in lower case, in the order written.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

impl Client {
    /// Everything the session wrote, once it is closed: `None` when it wrote
    /// nothing.
    pub async fn answer(mut self, session: Session) -> Option<Answer> {
        drop(session);
        let mut raw = Vec::new();
        self.end.read_to_end(&mut raw).await.expect("answer read");
        (!raw.is_empty()).then(|| parse(&raw))
    }
}

/// An HTTP/1.1 answer with a Content-Length body.
fn parse(raw: &[u8]) -> Answer {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an answer head");
    let head = std::str::from_utf8(&raw[..split]).expect("a text head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer { status, headers, body: raw[split + 4..].to_vec() }
}

/// Services of every kind, each on its own route, and three consumers;
/// `extra` adds plugins (and may set `[server]`).
///
/// - `/chat`: an OpenAI-format LLM route; `/v1/messages`: an Anthropic one
/// - `/pt`: a passthrough route; `/mcp`: an MCP route (ai-mcp-proxy)
/// - alice (group dev, key `alice-key`), bob (contractors, `bob-key`),
///   guest (public, no key)
pub fn config(extra: &str) -> String {
    format!("{extra}\n{BASE}")
}

const BASE: &str = r#"
[[services]]
name = "llm"

[[routes]]
name = "chat"
service = "llm"
paths = ["/chat"]

[[plugins]]
name = "ai-proxy"
service = "llm"
[plugins.config]
route_type = "llm/v1/chat"
auth = { header_name = "Authorization", header_value = "Bearer sk-provider" }
[plugins.config.model]
provider = "openai"
name = "gpt-4o"
[plugins.config.model.options]
upstream_url = "http://127.0.0.1:9/v1/chat/completions"

[[services]]
name = "messages"

[[routes]]
name = "messages"
service = "messages"
paths = ["/v1/messages"]

[[plugins]]
name = "ai-proxy"
service = "messages"
[plugins.config]
route_type = "llm/v1/chat"
llm_format = "anthropic"
auth = { header_name = "x-api-key", header_value = "sk-provider" }
[plugins.config.model]
provider = "anthropic"
name = "claude-sonnet-4-5"
[plugins.config.model.options]
upstream_url = "http://127.0.0.1:9/v1/messages"

[[services]]
name = "pt"
url = "http://127.0.0.1:9"

[[routes]]
name = "pt"
service = "pt"
paths = ["/pt"]

[[services]]
name = "mcp"
url = "http://127.0.0.1:9/mcp"

[[routes]]
name = "mcp"
service = "mcp"
paths = ["/mcp"]

[[plugins]]
name = "ai-mcp-proxy"
service = "mcp"

[[consumers]]
username = "alice"
groups = ["dev"]
keyauth_credentials = [{ key = "alice-key" }]

[[consumers]]
username = "bob"
groups = ["contractors"]
keyauth_credentials = [{ key = "bob-key" }]

[[consumers]]
username = "guest"
groups = ["public"]
"#;

/// A key-auth plugin on every service, with `settings` (TOML lines).
pub fn key_auth(settings: &str) -> String {
    ["llm", "messages", "pt", "mcp"].iter().map(|s| key_auth_on(s, settings)).collect()
}

/// A key-auth plugin on `service`, with `settings` (TOML lines).
pub fn key_auth_on(service: &str, settings: &str) -> String {
    format!("[[plugins]]\nname = \"key-auth\"\nservice = \"{service}\"\n[plugins.config]\n{settings}\n\n")
}

/// An MCP route protected by OAuth, on `/secure`, its resource at
/// `http://gw.test/secure`.
pub fn oauth_mcp(jwks_uri: &str) -> String {
    format!(
        r#"
[[services]]
name = "secure"
url = "http://127.0.0.1:9/mcp"

[[routes]]
name = "secure"
service = "secure"
paths = ["/secure"]

[[plugins]]
name = "ai-mcp-proxy"
service = "secure"
[plugins.config.oauth]
issuer = "https://issuer.test"
audiences = ["http://gw.test/secure"]
jwks_uri = "{jwks_uri}"
resource = "http://gw.test/secure"
scopes_supported = ["mcp:tools"]
"#
    )
}

/// Answers every connection on a fresh loopback port with `answer` (a whole
/// HTTP/1.1 response), once the request's head and `Content-Length` body
/// are in: the server's address. It stands in for an upstream.
pub async fn serve_fixed(answer: String) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !request_complete(&seen) {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let _ = conn.write_all(answer.as_bytes()).await;
        }
    });
    addr
}

/// Whether `seen` holds a request's head and all of its body.
fn request_complete(seen: &[u8]) -> bool {
    let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    seen.len() >= end + 4 + length
}

//! A client session of the listener: the servers' own sessions, sealed
//! into the client's session id (`session_secret`), so any gateway
//! replica serves it.

use pingora_proxy::Session;
use serde_json::Value;
use tollgate_mcp::jsonrpc::{self, INVALID_REQUEST};
use tollgate_mcp::server::federate;

use super::upstream::{Post, Routing};
use crate::mcp::answer::{Step, Stop};
use crate::mcp::call::McpCall;
use crate::mcp::session::SESSION_HEADER;

/// The replica label sealed with a listener session's upstream sessions.
pub(super) const LABEL: &str = "listener";

/// One client session: each server's own session id ("" for a server
/// without sessions), and the protocol version the client speaks. A
/// 2026-07-28 client has no session: every request stands alone, with its
/// `_meta`, and so do the gateway's requests for it.
pub(super) struct Sessions {
    pub by_server: Vec<(String, String)>,
    pub version: Option<String>,
    pub stateless: bool,
    /// The request's `params._meta` (2026-07-28: the client's version,
    /// info and capabilities), sent on the gateway's own requests too.
    pub meta: Option<Value>,
}

impl Sessions {
    /// The session this client holds with `server`; `None` when that server
    /// did not answer `initialize`.
    pub fn of(&self, server: &str) -> Option<Option<&str>> {
        let (_, id) = self.by_server.iter().find(|(s, _)| s == server)?;
        Some(Some(id.as_str()).filter(|id| !id.is_empty()))
    }

    pub fn post<'a>(&'a self, server: &str, body: &'a [u8], routing: Routing<'a>) -> Option<Post<'a>> {
        let session = self.of(server)?;
        let routing = self.stateless.then_some(routing);
        Some(Post {
            method: "POST",
            session,
            version: self.version.as_deref(),
            body,
            streaming: false,
            routing,
            path: None,
        })
    }
}

/// The client's session: the server sessions sealed into its id.
pub(super) fn open(session: &Session, call: &McpCall<'_>) -> Step<Sessions> {
    let h = session.req_header();
    let Some(sealed) = h.headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        let body = jsonrpc::error_body(&Value::Null, INVALID_REQUEST, "Bad Request: Missing session ID");
        return Err(Stop::jsonrpc("invalid", 400, body));
    };
    let by_server = match call.mcp.open(sealed) {
        Some((Some(label), text)) if label == LABEL => federate::decode_sessions(&text),
        _ => None,
    };
    let version = h.headers.get("mcp-protocol-version").and_then(|v| v.to_str().ok()).map(str::to_string);
    let by_server = by_server.ok_or_else(Stop::session_not_found)?;
    Ok(Sessions { by_server, version, stateless: false, meta: None })
}

/// A 2026-07-28 request: every server, without sessions.
pub(super) fn stateless(call: &McpCall<'_>, version: &str, message: &Value) -> Sessions {
    Sessions {
        // A legacy server needs a session (its stream): not for these requests.
        by_server: call.mcp.servers.iter().filter(|s| !s.legacy).map(|s| (s.name.clone(), String::new())).collect(),
        version: Some(version.to_string()),
        stateless: true,
        meta: message.pointer("/params/_meta").cloned(),
    }
}

/// Revision 2026-07-28 (and later): stateless, with routing headers.
pub(super) fn stateless_version(session: &Session) -> Option<String> {
    let v = session.req_header().headers.get("mcp-protocol-version").and_then(|v| v.to_str().ok())?;
    (v >= "2026-07-28").then(|| v.to_string())
}

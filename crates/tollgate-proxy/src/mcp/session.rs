//! Sessions: the replica and the server's own session id that a sealed
//! session id names (in the `Mcp-Session-Id` header, or the legacy
//! transport's `session_id` query parameter), and the legacy SSE streams
//! this process relays, into which the gateway writes its own answers.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use once_cell::sync::Lazy;
use serde_json::Value;
use tokio::sync::mpsc;
use tollgate_mcp::legacy;

use super::answer::{Step, Stop};
use super::{McpRt, Replica};

pub(super) const SESSION_HEADER: &str = "mcp-session-id";

/// Where a request goes: a replica, and the server's session there.
pub(super) struct Target {
    pub replica: Replica,
    /// The server's own session id, when the client named a session.
    pub upstream_id: Option<String>,
    /// The query to send, the legacy session id in it unsealed.
    pub query: Option<String>,
    /// The client named its session in the header (else in the query, or not at all).
    pub by_header: bool,
}

impl Target {
    /// The session id for the upstream header: the legacy transport carries
    /// its session in the query instead.
    pub fn header_session(&self) -> Option<&str> {
        self.upstream_id.as_deref().filter(|_| self.by_header)
    }

    /// The legacy session whose stream answers this request's POSTs, if any.
    pub fn legacy_session(&self) -> Option<&str> {
        self.upstream_id.as_deref().filter(|_| !self.by_header)
    }
}

/// The replica of the session the client names (`header`, else the
/// query's `session_id`), or the next replica for a request without one.
pub(super) fn find_target(
    mcp: &McpRt,
    mut replicas: Vec<Replica>,
    header: Option<&str>,
    query: Option<&str>,
) -> Step<Target> {
    let legacy_session = query.and_then(|q| legacy::query_param(q, "session_id"));
    let Some(sealed) = header.or(legacy_session) else {
        let Some(ix) = mcp.pick_new(&replicas) else {
            let msg = "this MCP route has no upstream: give its service a url or the plugin targets";
            return Err(Stop::error("error", 500, msg));
        };
        let replica = replicas.swap_remove(ix);
        return Ok(Target { replica, upstream_id: None, query: query.map(str::to_string), by_header: false });
    };
    // The server's own session id, whichever transport carried the sealed one.
    let Some((label, id)) = mcp.open(sealed) else {
        return Err(Stop::session_not_found());
    };
    let ix = match &label {
        Some(l) => replicas.iter().position(|r| &r.label == l),
        None => mcp.pick_new(&replicas),
    };
    let Some(ix) = ix else {
        return Err(Stop::session_not_found());
    };
    let query = match (query, header.is_none()) {
        (Some(q), true) => Some(legacy::map_query_param(q, "session_id", &|_| Some(id.clone()))),
        (q, _) => q.map(str::to_string),
    };
    let replica = replicas.swap_remove(ix);
    Ok(Target { replica, upstream_id: Some(id), query, by_header: header.is_some() })
}

/// Live legacy SSE streams relayed by this process, by (replica, server's
/// session id): where the gateway's own answers to that session's POSTs go.
static LEGACY_STREAMS: Lazy<Mutex<HashMap<String, mpsc::Sender<Bytes>>>> = Lazy::new(|| Mutex::new(HashMap::new()));

fn legacy_key(replica: &str, id: &str) -> String {
    format!("{replica}|{id}")
}

/// Sends JSON-RPC answers down a legacy session's stream, one event each;
/// false when this process does not relay that stream.
pub(super) async fn inject_legacy(replica: &str, id: &str, body: &[u8]) -> bool {
    let tx = LEGACY_STREAMS.lock().ok().and_then(|m| m.get(&legacy_key(replica, id)).cloned());
    let Some(tx) = tx else {
        return false;
    };
    let messages = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items,
        Ok(one) => vec![one],
        Err(_) => return false,
    };
    for m in messages {
        let event = Bytes::from(format!("event: message\ndata: {m}\n\n"));
        if tx.send(event).await.is_err() {
            return false;
        }
    }
    true
}

/// A legacy stream registered while its relay runs: the receiving end of
/// the gateway's own answers, and the registry entry, removed on drop.
pub(super) struct LegacyStream {
    key: String,
    pub answers: mpsc::Receiver<Bytes>,
}

impl LegacyStream {
    /// Registers the stream of the server's session `id` on `replica`.
    pub fn register(replica: &str, id: &str) -> Self {
        let key = legacy_key(replica, id);
        let (tx, answers) = mpsc::channel(16);
        if let Ok(mut m) = LEGACY_STREAMS.lock() {
            m.insert(key.clone(), tx);
        }
        LegacyStream { key, answers }
    }
}

impl Drop for LegacyStream {
    fn drop(&mut self) {
        if let Ok(mut m) = LEGACY_STREAMS.lock() {
            m.remove(&self.key);
        }
    }
}

//! Legacy HTTP+SSE servers (MCP 2024-11-05) behind a listener. Such a
//! server answers on one long GET stream, not on the POST: the gateway
//! holds that stream in this process for each client session (a task reads
//! it and hands each message to whoever waits for it), POSTs the session's
//! messages to the stream's `endpoint`, and relays what comes back. The
//! client's session names the stream by a key of this process, so such a
//! server serves the session only on the gateway replica that opened it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use once_cell::sync::Lazy;
use pingora_core::protocols::http::client::HttpSession;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tollgate_sse as sse;

use super::upstream::{self, Post, Sent};
use crate::mcp::call::McpCall;
use crate::mcp::servers::ListenerServer;
use crate::upstream::Upstreams;

/// Marks a session value that names a stream of this process.
const PREFIX: &str = "sse:";
/// How long the gateway waits for the `endpoint` event, and for the answer
/// to a request of its own.
const OWN_WAIT: Duration = Duration::from_secs(10);
/// Largest SSE event held while waiting for its end.
const MAX_EVENT: usize = 16 * 1024 * 1024;

/// One server stream held for a client session.
struct Stream {
    /// Where the session's messages are POSTed (path and query).
    post_path: String,
    /// Who waits for what: a request's id (as JSON text), or `progress:`
    /// and a progress token.
    waiters: Mutex<HashMap<String, mpsc::Sender<Value>>>,
    reader: Mutex<Option<tokio::task::AbortHandle>>,
}

static STREAMS: Lazy<Mutex<HashMap<String, Arc<Stream>>>> = Lazy::new(|| Mutex::new(HashMap::new()));

fn stream(key: &str) -> Option<Arc<Stream>> {
    let key = key.strip_prefix(PREFIX)?;
    STREAMS.lock().ok()?.get(key).cloned()
}

/// Opens the server's stream and the MCP session on it: its session value
/// for the client's session id.
pub(super) async fn open(
    ups: &Upstreams,
    call: &McpCall<'_>,
    server: &ListenerServer,
    params: &Value,
) -> Result<String, String> {
    let get =
        Post { method: "GET", session: None, version: None, body: b"", streaming: true, routing: None, path: None };
    let Sent { mut upstream, .. } = upstream::send(ups, call, server, &get).await?;
    let status = upstream.response_header().map(|h| h.status.as_u16()).unwrap_or(0);
    if status != 200 {
        return Err(format!("its SSE stream answered HTTP {status}"));
    }
    let mut split = sse::EventSplitter::default();
    let post_path = tokio::time::timeout(OWN_WAIT, endpoint(&mut upstream, &mut split))
        .await
        .map_err(|_| "no endpoint event in time".to_string())??;
    let key = stream_key()?;
    let held = Arc::new(Stream { post_path, waiters: Mutex::default(), reader: Mutex::default() });
    let reader = tokio::spawn(read(upstream, split, held.clone(), key.clone()));
    if let Ok(mut r) = held.reader.lock() {
        *r = Some(reader.abort_handle());
    }
    if let Ok(mut all) = STREAMS.lock() {
        all.insert(key.clone(), held);
    }
    let session = format!("{PREFIX}{key}");
    let init = json!({"jsonrpc": "2.0", "id": "tollgate-initialize", "method": "initialize", "params": params});
    let answer = request(ups, call, server, &session, &init).await?;
    if answer.get("error").is_some() {
        close(&session);
        return Err(format!("initialize failed: {}", answer["error"]));
    }
    notify(ups, call, server, &session, &json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await?;
    Ok(session)
}

/// A held stream's key: 128 random bits, so a sealed id that reaches another
/// replica, or this one after a restart, names no other client's stream
/// (a pid and a counter repeat across containers and restarts).
fn stream_key() -> Result<String, String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| "no randomness for a stream key".to_string())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The `endpoint` event's path (the server's session in its query).
async fn endpoint(upstream: &mut HttpSession, split: &mut sse::EventSplitter) -> Result<String, String> {
    loop {
        while let Some(event) = split.next_event() {
            if sse::event_name(&event) == b"endpoint" {
                let data = sse::event_data(&event).map(|d| String::from_utf8_lossy(&d).into_owned());
                return data.filter(|d| d.starts_with('/')).ok_or_else(|| "its endpoint is not a path".to_string());
            }
        }
        match upstream.read_response_body().await {
            Ok(Some(chunk)) => split.push(&chunk),
            _ => return Err("its SSE stream ended before the endpoint event".into()),
        }
    }
}

/// Reads the stream until it ends, handing each message to its waiter:
/// an answer to the request with its id, a progress notification to the
/// call with its token, anything else (the server's requests) to every call.
async fn read(mut upstream: HttpSession, mut split: sse::EventSplitter, held: Arc<Stream>, key: String) {
    loop {
        while let Some(event) = split.next_event() {
            if let Some(message) = sse::event_data(&event).and_then(|d| serde_json::from_slice::<Value>(&d).ok()) {
                dispatch(&held, message);
            }
        }
        match upstream.read_response_body().await {
            Ok(Some(chunk)) if split.buffered() + chunk.len() <= MAX_EVENT => split.push(&chunk),
            _ => break,
        }
    }
    if let Ok(mut all) = STREAMS.lock() {
        all.remove(&key);
    }
}

fn dispatch(held: &Stream, message: Value) {
    let Ok(mut waiters) = held.waiters.lock() else { return };
    let is_answer = message.get("method").is_none();
    let token = message.pointer("/params/progressToken").map(|t| format!("progress:{t}"));
    let to = match (is_answer, message.get("id"), token) {
        (true, Some(id), _) => waiters.remove(&id.to_string()).into_iter().collect::<Vec<_>>(),
        (false, _, Some(token)) => waiters.get(&token).cloned().into_iter().collect(),
        _ => waiters.iter().filter(|(k, _)| !k.starts_with("progress:")).map(|(_, tx)| tx.clone()).collect(),
    };
    for tx in to {
        let _ = tx.try_send(message.clone());
    }
}

/// POSTs `message` to the session's endpoint; what the stream says about
/// it arrives on the receiver (the answer last).
pub(super) async fn send(
    ups: &Upstreams,
    call: &McpCall<'_>,
    server: &ListenerServer,
    session: &str,
    message: &Value,
) -> Result<Waiting, String> {
    let held = stream(session).ok_or("its stream is gone (or held by another gateway replica)")?;
    let (tx, rx) = mpsc::channel(64);
    let mut keys = Vec::new();
    if let Some(id) = message.get("id") {
        keys.push(id.to_string());
    }
    if let Some(token) = message.pointer("/params/_meta/progressToken") {
        keys.push(format!("progress:{token}"));
    }
    if let Ok(mut w) = held.waiters.lock() {
        for k in &keys {
            w.insert(k.clone(), tx.clone());
        }
    }
    let waiting = Waiting { rx, keys, held: held.clone() };
    post(ups, call, server, &held, message).await?;
    Ok(waiting)
}

/// What a request waits on; its waiters are removed when it is dropped.
pub(super) struct Waiting {
    pub rx: mpsc::Receiver<Value>,
    keys: Vec<String>,
    held: Arc<Stream>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Ok(mut w) = self.held.waiters.lock() {
            for k in &self.keys {
                w.remove(k);
            }
        }
    }
}

async fn post(
    ups: &Upstreams,
    call: &McpCall<'_>,
    server: &ListenerServer,
    held: &Stream,
    message: &Value,
) -> Result<(), String> {
    let body = message.to_string().into_bytes();
    let path = Some(held.post_path.as_str());
    let post =
        Post { method: "POST", session: None, version: None, body: &body, streaming: false, routing: None, path };
    upstream::exchange(ups, call, server, &post, None).await.map(|_| ())
}

/// A request of the gateway's own: the answer, within `OWN_WAIT`.
pub(super) async fn request(
    ups: &Upstreams,
    call: &McpCall<'_>,
    server: &ListenerServer,
    session: &str,
    message: &Value,
) -> Result<Value, String> {
    let mut waiting = send(ups, call, server, session, message).await?;
    let id = message.get("id");
    let wait = async {
        while let Some(m) = waiting.rx.recv().await {
            if m.get("method").is_none() && m.get("id") == id {
                return Some(m);
            }
        }
        None
    };
    match tokio::time::timeout(OWN_WAIT, wait).await {
        Ok(Some(answer)) => Ok(answer),
        _ => Err("no answer on its stream in time".into()),
    }
}

/// A notification (or the client's answer to the server): POSTed, nothing awaited.
pub(super) async fn notify(
    ups: &Upstreams,
    call: &McpCall<'_>,
    server: &ListenerServer,
    session: &str,
    message: &Value,
) -> Result<(), String> {
    let held = stream(session).ok_or("its stream is gone")?;
    post(ups, call, server, &held, message).await
}

/// Ends the session: the stream is closed, the server sees it go.
pub(super) fn close(session: &str) {
    let Some(key) = session.strip_prefix(PREFIX) else { return };
    let held = STREAMS.lock().ok().and_then(|mut all| all.remove(key));
    if let Some(reader) = held.and_then(|h| h.reader.lock().ok().and_then(|mut r| r.take())) {
        reader.abort();
    }
}

/// An SSE event carrying one message.
pub(super) fn event(message: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {message}\n\n"))
}

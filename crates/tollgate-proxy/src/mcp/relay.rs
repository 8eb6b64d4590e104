//! The server's answer relayed as it arrives (JSON or SSE): session ids
//! sealed, list results (tools, resources, prompts) filtered by the caller's ACL, the legacy
//! transport's `endpoint` event mapped back to the client's path, and the
//! gateway's own answers to a legacy session written into its stream.

use bytes::Bytes;
use pingora_core::protocols::http::client::HttpSession;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;
use tollgate_mcp::{filter, legacy};
use tollgate_sse as sse;

use super::answer;
use super::call::McpCall;
use super::forward::{base_path, NOT_FORWARDED};
use super::resume::StreamLog;
use super::session::{LegacyStream, SESSION_HEADER};
use super::{McpRt, Replica};
use crate::ctx::RequestCtx;
use crate::passthrough::join_paths;
use crate::respond::PResult;

/// Largest JSON answer buffered to filter a list, and largest SSE event
/// held while waiting for its end (16 MiB each).
const MAX_LIST_ANSWER: usize = 16 * 1024 * 1024;
const MAX_EVENT: usize = 16 * 1024 * 1024;
const INVALID_ANSWER: &str = "An invalid response was received from the upstream server";

/// How an answer is passed on.
pub(super) struct Relay<'a> {
    mcp: &'a McpRt,
    replica: &'a Replica,
    subjects: &'a [String],
    filter: bool,
    /// The route prefix the client used, and whether it was stripped: the
    /// legacy `endpoint` event's path is mapped back through them.
    client_prefix: &'a str,
    strip_path: bool,
    base: &'a str,
    /// The server's session id, when the client named it in the header: its
    /// SSE streams are logged for resumption when the plugin has an event log.
    session_id: Option<&'a str>,
}

/// How the answer's body goes to the client.
enum Body {
    /// A JSON list (tools, resources, prompts), read whole to be filtered.
    List,
    /// Passed on as it arrives; SSE events whole, so they can be rewritten.
    Stream { sse: bool },
}

impl<'a> Relay<'a> {
    pub fn new(call: &'a McpCall<'_>, replica: &'a Replica) -> Self {
        Relay {
            mcp: call.mcp,
            replica,
            subjects: &call.subjects,
            filter: call.mcp.filters_lists(),
            client_prefix: &call.path[..call.prefix_len],
            strip_path: call.strip_path,
            base: base_path(&replica.endpoint),
            session_id: None,
        }
    }

    /// Logs the answer's SSE events under this server session, when the
    /// plugin has an event log.
    pub fn in_session(mut self, session_id: Option<&'a str>) -> Self {
        self.session_id = session_id;
        self
    }

    /// The log of an SSE answer, when there is one to keep.
    fn stream_log(&self, sse: bool) -> Option<StreamLog<'a>> {
        let log = self.mcp.event_log.as_ref().filter(|_| sse)?;
        StreamLog::start(log, &self.replica.label, self.session_id?)
    }

    /// Relays the answer; `Ok(true)` when it was read to its end (the
    /// connection may be pooled).
    pub async fn run(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        upstream: &mut HttpSession,
        lists: bool,
    ) -> PResult<bool> {
        let Some((resp, body)) = self.head(session, ctx, upstream, lists).await? else {
            return Ok(false);
        };
        match body {
            Body::List => self.list(session, ctx, upstream, resp).await,
            Body::Stream { sse } => {
                session.write_response_header(Box::new(resp), false).await?;
                self.pump(session, ctx, upstream, sse).await
            }
        }
    }

    /// The answer's header for the client (headers of one connection
    /// dropped, the session id sealed, the request's own headers added) and
    /// how its body goes; `None` once an error was answered instead.
    async fn head(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        upstream: &HttpSession,
        lists: bool,
    ) -> PResult<Option<(ResponseHeader, Body)>> {
        let Some(head) = upstream.response_header() else {
            return answer::error(session, ctx, 502, INVALID_ANSWER).await.map(|_| None);
        };
        let status = head.status.as_u16();
        let content_type =
            head.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        let sse = content_type.starts_with("text/event-stream");
        let buffer_json = !sse && self.filter && lists && content_type.starts_with("application/json");
        let mut resp = ResponseHeader::build(status, Some(head.headers.len() + 2))?;
        for (name, value) in head.headers.iter() {
            if !NOT_FORWARDED.contains(&name.as_str()) {
                resp.append_header(name.clone(), value.clone())?;
            }
        }
        if let Some(id) = head.headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) {
            match self.mcp.seal(&self.replica.label, id) {
                Some(sealed) => resp.insert_header(SESSION_HEADER, sealed)?,
                None => {
                    return answer::error(
                        session,
                        ctx,
                        500,
                        "could not seal the MCP session id (sealed ids are at most 1024 characters)",
                    )
                    .await
                    .map(|_| None)
                }
            }
        }
        resp.insert_header("x-request-id", ctx.request_id.as_str())?;
        for (k, v) in &ctx.response_headers {
            resp.append_header(k.clone(), v.as_str())?;
        }
        if let Some(f) = ctx.mcp.as_mut() {
            f.upstream_status = Some(status);
        }
        ctx.status = status;
        if buffer_json {
            return Ok(Some((resp, Body::List)));
        }
        match (head.headers.get("content-length"), sse) {
            (Some(l), false) => resp.insert_header("content-length", l.clone())?,
            _ if !session.is_http2() => resp.insert_header("transfer-encoding", "chunked")?,
            _ => {}
        }
        Ok(Some((resp, Body::Stream { sse })))
    }

    /// A JSON list, read whole and filtered.
    async fn list(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        upstream: &mut HttpSession,
        mut resp: ResponseHeader,
    ) -> PResult<bool> {
        let body = match crate::upstream::read_all(upstream).await {
            Ok(b) if b.len() <= MAX_LIST_ANSWER => b,
            _ => return answer::error(session, ctx, 502, INVALID_ANSWER).await.map(|_| false),
        };
        let body = self.filtered(&body).map(Bytes::from).unwrap_or(body);
        resp.insert_header("content-length", body.len().to_string())?;
        session.write_response_header(Box::new(resp), false).await?;
        session.write_response_body(Some(body), true).await?;
        Ok(true)
    }

    /// Passes the body on as it arrives, with the gateway's own answers to a
    /// legacy session in between, until the server ends it or the client
    /// leaves; `Ok(true)` when it was read to its end.
    async fn pump(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        upstream: &mut HttpSession,
        sse: bool,
    ) -> PResult<bool> {
        let mut events = sse.then(sse::EventSplitter::default);
        let mut legacy: Option<LegacyStream> = None;
        let mut log = self.stream_log(sse);
        loop {
            tokio::select! {
                // The answer's own progress first: once it is complete the
                // client may already be sending its next request, which the
                // idle probe below must not touch.
                biased;
                event = async {
                    match legacy.as_mut() {
                        Some(l) => l.answers.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let Some(event) = event {
                        write_chunk(session, ctx, event).await?;
                    }
                }
                chunk = upstream.read_response_body() => {
                    let step = self.relay_chunk(session, ctx, chunk, (&mut events, &mut legacy), log.as_mut()).await;
                    match step {
                        Ok(Some(complete)) => {
                            if let Some(l) = log.as_mut() {
                                l.end().await;
                            }
                            return Ok(complete);
                        }
                        Ok(None) => {}
                        Err(e) => return self.client_left(ctx, upstream, events.as_mut(), log, Err(e)).await,
                    }
                }
                // A quiet stream: its log must outlive the quiet (the sleep
                // restarts with every event, whose append restarts the expiry).
                _ = quiet(log.as_ref()) => {
                    if let Some(l) = log.as_mut() {
                        l.refresh().await;
                    }
                }
                _ = session.read_body_or_idle(true) => {
                    // The client hung up (dropping the upstream connection
                    // tells the server the stream is gone), or sent bytes of
                    // a next request, one of which the probe consumed: either
                    // way this connection cannot carry another request.
                    session.set_keepalive(None);
                    ctx.note_error("client went away mid-stream");
                    return self.client_left(ctx, upstream, events.as_mut(), log, Ok(false)).await;
                }
            }
        }
    }

    /// One read of the server's body passed on: `Some(read to its end)` once
    /// the answer is over, `None` to go on.
    async fn relay_chunk(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        chunk: pingora_core::Result<Option<Bytes>>,
        (events, legacy): (&mut Option<sse::EventSplitter>, &mut Option<LegacyStream>),
        log: Option<&mut StreamLog<'_>>,
    ) -> PResult<Option<bool>> {
        match chunk {
            Ok(Some(bytes)) => {
                let Some(list) = self.outgoing(events.as_mut(), legacy, bytes) else {
                    ctx.note_error("MCP server sent an SSE event over 16 MiB");
                    session.write_response_body(None, true).await?;
                    return Ok(Some(false));
                };
                let list = match log {
                    Some(l) => l.record(list).await,
                    None => list,
                };
                // One piece (any non-SSE chunk) goes out without a copy.
                let out = match <[Bytes; 1]>::try_from(list) {
                    Ok([one]) => one,
                    Err(list) => Bytes::from(list.concat()),
                };
                if !out.is_empty() {
                    write_chunk(session, ctx, out).await?;
                }
                Ok(None)
            }
            Ok(None) => {
                let rest = events.as_mut().map(|s| s.take_rest()).filter(|r| !r.is_empty());
                session.write_response_body(rest, true).await?;
                Ok(Some(true))
            }
            Err(e) => {
                ctx.note_error(&format!("MCP server's answer broke off: {e}"));
                session.write_response_body(None, true).await?;
                Ok(Some(false))
            }
        }
    }

    /// The client is gone (`result` says how the relay ends). With a live
    /// event log that gave the client an id, the server's stream is read
    /// into the log for its drain time,
    /// so a resuming client misses nothing; without one the connection is
    /// dropped, which tells the server the stream is gone.
    async fn client_left(
        &self,
        ctx: &mut RequestCtx,
        upstream: &mut HttpSession,
        events: Option<&mut sse::EventSplitter>,
        log: Option<StreamLog<'_>>,
        result: PResult<bool>,
    ) -> PResult<bool> {
        let (Some(mut log), Some(split), Some(event_log)) = (log, events, self.mcp.event_log.as_ref()) else {
            return result;
        };
        // Nobody can resume a stream whose client got no id: hold the
        // server's stream no longer (a client reconnecting without an id
        // would get the server's 409 while it is held).
        if !log.live() || !log.handed_out() {
            return result;
        }
        ctx.note_error("client went away mid-stream; the stream is logged for resumption");
        let deadline = tokio::time::Instant::now() + event_log.drain_for();
        let mut legacy = None;
        while log.live() {
            match tokio::time::timeout_at(deadline, upstream.read_response_body()).await {
                Ok(Ok(Some(bytes))) => match self.outgoing(Some(&mut *split), &mut legacy, bytes) {
                    Some(list) => {
                        log.record(list).await;
                    }
                    None => break,
                },
                _ => break,
            }
        }
        log.end().await;
        Ok(false)
    }

    /// What a chunk of the server's body becomes for the client: as it came,
    /// or (SSE) its complete events rewritten; `None` once an unfinished
    /// event grows past `MAX_EVENT`. A legacy `endpoint` event registers its
    /// session's stream, for the gateway's own answers.
    fn outgoing(
        &self,
        events: Option<&mut sse::EventSplitter>,
        legacy: &mut Option<LegacyStream>,
        bytes: Bytes,
    ) -> Option<Vec<Bytes>> {
        let Some(split) = events else {
            return Some(vec![bytes]);
        };
        let list = next_events(split, &bytes)?;
        let (out, legacy_id) = self.rewrite_events(list);
        if let Some(id) = legacy_id {
            *legacy = Some(LegacyStream::register(&self.replica.label, &id));
        }
        Some(out)
    }

    /// Events out, each as it came unless it is a list (filtered) or is the
    /// legacy transport's `endpoint` (path and session id rewritten; the
    /// server's session id is returned).
    fn rewrite_events(&self, events: Vec<Bytes>) -> (Vec<Bytes>, Option<String>) {
        let mut out = Vec::with_capacity(events.len());
        let mut legacy_id = None;
        for event in events {
            if sse::event_name(&event) == b"endpoint" {
                if let Some(data) = sse::event_data(&event).and_then(|d| String::from_utf8(d.into_owned()).ok()) {
                    legacy_id = data
                        .split_once('?')
                        .and_then(|(_, q)| legacy::query_param(q, "session_id"))
                        .map(str::to_string);
                    let map = |p: &str| self.client_path(p);
                    let seal = |id: &str| self.mcp.seal(&self.replica.label, id);
                    let new = legacy::rewrite_endpoint(&data, &map, &seal);
                    out.push(sse::with_data(&event, new.as_bytes()));
                    continue;
                }
            }
            if self.filter {
                if let Some(new) = sse::event_data(&event).and_then(|d| self.filtered(&d)) {
                    out.push(sse::with_data(&event, &new));
                    continue;
                }
            }
            out.push(event);
        }
        (out, legacy_id)
    }

    /// A list result without the tools, resources and prompts the caller
    /// may not use; `None` when the body is not one.
    fn filtered(&self, body: &[u8]) -> Option<Vec<u8>> {
        let subjects: Vec<&str> = self.subjects.iter().map(String::as_str).collect();
        filter::filter_lists(body, &|p, name| self.mcp.permits_primitive(p, name, &subjects))
    }

    /// The client's path for an upstream path: the replica's base removed,
    /// the route prefix put back when the route strips it.
    fn client_path(&self, upstream_path: &str) -> String {
        let rest = match upstream_path.strip_prefix(self.base.trim_end_matches('/')) {
            Some(r) if self.base != "/" && (r.is_empty() || r.starts_with('/')) => r,
            _ => upstream_path,
        };
        if self.strip_path {
            join_paths(self.client_prefix, rest)
        } else {
            rest.to_string()
        }
    }
}

/// Writes a chunk of the answer; a failure is the client gone.
/// Completes once a logged stream has gone [`StreamLog::refresh_every`]
/// without an event; never without a log.
async fn quiet(log: Option<&StreamLog<'_>>) {
    match log {
        Some(l) => tokio::time::sleep(l.refresh_every()).await,
        None => std::future::pending().await,
    }
}

async fn write_chunk(session: &mut Session, ctx: &mut RequestCtx, chunk: Bytes) -> PResult<()> {
    let written = session.write_response_body(Some(chunk), false).await;
    if written.is_err() {
        ctx.note_error("client went away mid-stream");
    }
    written
}

/// The complete events a chunk finishes; `None` once an unfinished event
/// grows past `MAX_EVENT`.
fn next_events(split: &mut sse::EventSplitter, chunk: &[u8]) -> Option<Vec<Bytes>> {
    split.push(chunk);
    let mut out = Vec::new();
    while let Some(e) = split.next_event() {
        out.push(e);
    }
    (split.buffered() <= MAX_EVENT).then_some(out)
}

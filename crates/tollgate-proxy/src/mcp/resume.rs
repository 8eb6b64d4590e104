//! `Last-Event-ID` resumption across gateway replicas, from an event log in
//! Redis (`event_log`). The replica relaying a session's SSE stream gives
//! each event an id of its own (`tollgate_mcp::events`) and appends it to the
//! stream's log before the client sees it; when the client goes away it
//! keeps reading the server's stream into the log for `event_log.ttl`. A GET
//! naming one of those ids, on any replica, is answered from the log: the
//! events after it, then the rest as they are logged, until the stream ends.
//!
//! Redis down: the stream goes on without resumable ids, a resuming GET goes
//! to the server as it would without a log (this replica's behaviour alone),
//! and both are counted (`ai_mcp_event_log_errors_total`) and logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use tollgate_config::schema::McpEventLogConfig;
use tollgate_mcp::events::{self, Entry, EventId};
use tollgate_sse as sse;

use crate::cache::store::Call;
use crate::ctx::RequestCtx;
use crate::limits::{LazyRedis, LimiterRegistry};
use crate::metrics::MCP_EVENT_LOG;
use crate::respond::PResult;

/// How often a resumed stream looks for events its owner logged since.
const FOLLOW_EVERY: Duration = Duration::from_millis(100);
/// The longest a replica keeps reading a stream whose client left, whatever
/// the log's ttl: the server's stream stays held that long, and the SDK's
/// servers refuse (409) a second GET stream in a session while one is open.
const MAX_DRAIN: Duration = Duration::from_secs(30);
/// The most one read of a log returns (at least one event, however large):
/// a resumed stream catches up in steps of this size.
const READ_BYTES: usize = 256 * 1024;

/// The shared event log of one ai-mcp-proxy plugin.
pub struct EventLog {
    redis: Arc<LazyRedis>,
    ttl: Duration,
    max_events: usize,
    /// Where the plugin sits: one plugin's streams are never another's.
    scope: String,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog").field("scope", &self.scope).finish_non_exhaustive()
    }
}

impl EventLog {
    pub fn compile(c: &McpEventLogConfig, scope: &str, limiters: &LimiterRegistry) -> Option<Self> {
        Some(EventLog {
            redis: limiters.redis_client(&c.redis)?,
            ttl: Duration::from_secs(c.ttl),
            max_events: c.max_events,
            scope: scope.to_string(),
        })
    }

    /// How long a replica keeps logging a stream its client left.
    pub fn drain_for(&self) -> Duration {
        self.ttl.min(MAX_DRAIN)
    }

    /// The log of `stream` in a session (the replica and the server's session
    /// id): a client reaches only its own session's streams.
    fn key(&self, replica: &str, session: &str, stream: &str) -> String {
        let mut h = Sha256::new();
        for part in [self.scope.as_str(), replica, session] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        let digest = h.finalize();
        format!("tollgate:mcp:ev:{{{}.{stream}}}", tollgate_cache::hex(&digest[..16]))
    }

    // Boxed, as the answer cache's Redis calls are: the Redis client's
    // futures are deep, and the request path's must stay within rustc's
    // layout depth.
    fn append<'c>(&'c self, key: &'c str, entries: &'c [Vec<u8>]) -> Call<'c, ()> {
        Box::pin(async move {
            let client = self.redis.get().await.map_err(|e| e.to_string())?;
            client.kv_list_push(key, entries, self.max_events, self.ttl_ms()).await.map_err(|e| e.to_string())
        })
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// Restarts the log's expiry: a stream still relayed keeps its log
    /// however long it goes without an event.
    fn touch<'c>(&'c self, key: &'c str) -> Call<'c, ()> {
        Box::pin(async move {
            let client = self.redis.get().await.map_err(|e| e.to_string())?;
            client.kv_pexpire(key, self.ttl_ms()).await.map_err(|e| e.to_string())
        })
    }

    /// Deletes a stream's log, best effort (its failure is only counted):
    /// a log missing events must not be resumed from.
    fn forget<'c>(&'c self, key: &'c str) -> Call<'c, ()> {
        Box::pin(async move {
            let client = self.redis.get().await.map_err(|e| e.to_string())?;
            client.kv_del(key).await.map_err(|e| e.to_string())
        })
    }

    /// The log's first entry and its entries from index `from` on (at most
    /// [`READ_BYTES`]); `None` when the log does not exist.
    fn read_from<'c>(&'c self, key: &'c str, from: u64) -> Call<'c, Option<LogRead>> {
        Box::pin(async move {
            let client = self.redis.get().await.map_err(|e| e.to_string())?;
            client.kv_list_from(key, from, READ_BYTES).await.map_err(|e| e.to_string())
        })
    }

    /// The entries after the cursor's event, read from where it stands in
    /// the log rather than from the log's start; `None` when the log is gone
    /// or no longer holds the event after the cursor's (trimmed away: the
    /// stream cannot be resumed from the log without a silent gap).
    async fn read_after(&self, key: &str, cursor: &mut Cursor) -> Result<Option<Vec<Vec<u8>>>, String> {
        // The log is trimmed from its front while it grows: when its first
        // entry moved since the cursor last saw it, the index read from was
        // wrong and is read again. Three tries; then nothing new this time.
        for _ in 0..3 {
            let Some((head, entries)) = self.read_from(key, cursor.index()).await? else {
                return Ok(None);
            };
            if cursor.placed(&head) {
                return Ok((!cursor.gapped()).then_some(entries));
            }
        }
        Ok(Some(Vec::new()))
    }
}

/// A read of a log: its first entry, and the entries read.
type LogRead = (Vec<u8>, Vec<Vec<u8>>);

/// Where a resumed stream stands in its log: the last event sent, and the
/// sequence number of the log's first entry when last read. Events are
/// logged in order from 1, so event `after + 1` sits at `after + 1 - first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    after: u64,
    first: u64,
}

impl Cursor {
    fn new(after: u64) -> Self {
        Cursor { after, first: 1 }
    }

    /// Whether events after the cursor's were trimmed from the log unsent.
    fn gapped(&self) -> bool {
        self.first > self.after.saturating_add(1)
    }

    fn index(&self) -> u64 {
        (self.after + 1).saturating_sub(self.first)
    }

    /// Whether the read that found `head` first was made at the right index;
    /// if not, the cursor now knows where the log starts.
    fn placed(&mut self, head: &[u8]) -> bool {
        match events::parse_entry(head) {
            // A log holding only its end holds none of the stream's events.
            Some(Entry::End) => {
                self.first = u64::MAX;
                true
            }
            Some(Entry::Event { seq, .. }) if seq != self.first => {
                self.first = seq;
                false
            }
            _ => true,
        }
    }
}

fn failed(op: &'static str, cause: &str) {
    MCP_EVENT_LOG.errors.with_label_values(&[op]).inc();
    tracing::warn!(op, cause, "MCP event log unavailable: streams are resumable on this replica only");
}

/// One relayed stream's log: the ids it gives and the events it appends.
pub(super) struct StreamLog<'a> {
    log: &'a EventLog,
    key: String,
    stream: String,
    next: u64,
    /// An append failed: the rest of the stream goes as it would without a log.
    broken: bool,
}

impl<'a> StreamLog<'a> {
    /// A new stream of the server session `session` on `replica`.
    pub fn start(log: &'a EventLog, replica: &str, session: &str) -> Option<Self> {
        let mut raw = [0u8; 16];
        SystemRandom::new().fill(&mut raw).ok()?;
        let stream = tollgate_cache::hex(&raw);
        Some(StreamLog { key: log.key(replica, session, &stream), log, stream, next: 1, broken: false })
    }

    /// Whether events still go into the log.
    pub fn live(&self) -> bool {
        !self.broken
    }

    /// How long the stream may go without an event before its log's expiry
    /// is restarted ([`StreamLog::refresh`]): a third of the ttl, so a
    /// refresh that fails once still leaves time for the next.
    pub fn refresh_every(&self) -> Duration {
        (self.log.ttl / 3).max(FOLLOW_EVERY)
    }

    /// Restarts the log's expiry while the stream is relayed without events
    /// (each append restarts it too).
    pub async fn refresh(&mut self) {
        if self.broken || !self.handed_out() {
            return;
        }
        if let Err(e) = self.log.touch(&self.key).await {
            failed("expire", &e);
        }
    }

    /// Whether the client was given at least one id to resume from: until
    /// then nobody can resume the stream, and there is nothing to drain for.
    pub fn handed_out(&self) -> bool {
        self.next > 1
    }

    /// The events with the gateway's ids, once they are in the log; as they
    /// came when the log cannot be written (counted, and then not tried again
    /// for this stream). Events without data (comments) get no id.
    pub async fn record(&mut self, list: Vec<Bytes>) -> Vec<Bytes> {
        if self.broken {
            return list;
        }
        let mut stamped = Vec::with_capacity(list.len());
        let mut entries = Vec::new();
        let mut seq = self.next;
        for event in &list {
            if sse::event_data(event).is_none() {
                stamped.push(event.clone());
                continue;
            }
            let with_id = events::with_id(event, &EventId { stream: self.stream.clone(), seq }.render());
            entries.push(events::entry(seq, &with_id));
            stamped.push(with_id);
            seq += 1;
        }
        if entries.is_empty() {
            return list;
        }
        match self.log.append(&self.key, &entries).await {
            Ok(()) => {
                self.next = seq;
                stamped
            }
            Err(e) => {
                self.broken = true;
                failed("append", &e);
                // The log now misses events and would never see its end: a
                // resumer would replay what the client has, then wait for
                // ever. Without the log, its GET goes to the server.
                if let Err(e) = self.log.forget(&self.key).await {
                    failed("delete", &e);
                }
                list
            }
        }
    }

    /// Marks the stream over, so a replica following its log stops.
    pub async fn end(&mut self) {
        if !self.broken {
            if let Err(e) = self.log.append(&self.key, &[events::END.to_vec()]).await {
                failed("append", &e);
            }
        }
    }
}

/// Whether a log whose entries after event `after` are `entries` has nothing
/// to send: its stream is over and the client has seen all of it. Such a GET goes
/// to the server for a fresh stream (a client that reconnects whenever its
/// stream ends would otherwise be answered an empty stream until the log
/// expires).
fn nothing_left(entries: &[Vec<u8>], after: u64) -> bool {
    let parsed = entries.iter().filter_map(|e| events::parse_entry(e));
    let (mut ended, mut unsent) = (false, false);
    for entry in parsed {
        match entry {
            Entry::End => ended = true,
            Entry::Event { seq, .. } => unsent |= seq > after,
        }
    }
    ended && !unsent
}

/// A GET resuming a stream of this session from the log.
pub(super) struct Resumption<'a> {
    log: &'a EventLog,
    key: String,
    cursor: Cursor,
    /// The log's entries read and not sent yet.
    entries: Vec<Vec<u8>>,
}

impl<'a> Resumption<'a> {
    /// The log of the stream `last_event_id` names, when it is one of this
    /// gateway's ids and the log still has every event after it; `None` sends the GET to the
    /// server as before.
    pub async fn find(log: &'a EventLog, replica: &str, session: &str, last_event_id: &str) -> Option<Self> {
        let id = EventId::parse(last_event_id)?;
        let key = log.key(replica, session, &id.stream);
        let mut cursor = Cursor::new(id.seq);
        match log.read_after(&key, &mut cursor).await {
            Ok(Some(entries)) if !nothing_left(&entries, id.seq) => Some(Resumption { log, key, cursor, entries }),
            Ok(_) => None,
            Err(e) => {
                failed("read", &e);
                None
            }
        }
    }

    /// Answers the GET: the events after the resumed one, then those logged
    /// since, until the stream's end, the log's expiry, `idle` without an
    /// event, or the client leaving.
    pub async fn serve(mut self, session: &mut Session, ctx: &mut RequestCtx, idle: Duration) -> PResult<()> {
        MCP_EVENT_LOG.resumed.inc();
        ctx.status = 200;
        let mut resp = ResponseHeader::build(200, Some(4))?;
        resp.insert_header("content-type", "text/event-stream")?;
        resp.insert_header("cache-control", "no-cache")?;
        resp.insert_header("x-request-id", ctx.request_id.as_str())?;
        if !session.is_http2() {
            resp.insert_header("transfer-encoding", "chunked")?;
        }
        session.write_response_header(Box::new(resp), false).await?;
        let mut last_event = Instant::now();
        loop {
            let (out, ended) = self.unsent();
            let caught_up = out.is_empty();
            if !caught_up {
                last_event = Instant::now();
                session.write_response_body(Some(Bytes::from(out)), false).await?;
            }
            if ended || last_event.elapsed() >= idle {
                break;
            }
            // Behind the log (a read stops at READ_BYTES): read on at once.
            if caught_up {
                tokio::select! {
                    _ = tokio::time::sleep(FOLLOW_EVERY) => {}
                    _ = session.read_body_or_idle(true) => {
                        session.set_keepalive(None);
                        ctx.note_error("client went away mid-stream");
                        return Ok(());
                    }
                }
            }
            match self.log.read_after(&self.key, &mut self.cursor).await {
                Ok(Some(entries)) => self.entries = entries,
                // Expired, or trimmed past what was sent (the follower fell
                // behind by max_events): the client's next GET goes to the
                // server, as for a stream the log does not know.
                Ok(None) => break,
                Err(e) => {
                    failed("read", &e);
                    break;
                }
            }
        }
        session.write_response_body(None, true).await
    }

    /// The events read but not sent yet, and whether the stream has ended.
    fn unsent(&mut self) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut ended = false;
        for entry in self.entries.drain(..) {
            match events::parse_entry(&entry) {
                Some(Entry::Event { seq, event }) if seq > self.cursor.after => {
                    out.extend_from_slice(event);
                    self.cursor.after = seq;
                }
                Some(Entry::End) => ended = true,
                _ => {}
            }
        }
        (out, ended)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A log on a Redis that refuses connections (port 1).
    fn unreachable_log(ttl: u64) -> EventLog {
        let c: McpEventLogConfig = serde_json::from_value(serde_json::json!({
            "redis": {"host": "127.0.0.1", "port": 1, "timeout": 200}, "ttl": ttl, "max_events": 10}))
        .unwrap();
        EventLog::compile(&c, "t", &LimiterRegistry::system()).unwrap()
    }

    #[test]
    fn a_left_stream_is_drained_for_at_most_thirty_seconds() {
        assert_eq!(unreachable_log(300).drain_for(), Duration::from_secs(30));
        assert_eq!(unreachable_log(10).drain_for(), Duration::from_secs(10));
    }

    #[tokio::test]
    async fn no_id_is_handed_out_until_an_event_is_logged() {
        let log = unreachable_log(60);
        let mut stream = StreamLog::start(&log, "replica", "session").unwrap();
        assert!(!stream.handed_out());
        let comment = stream.record(vec![Bytes::from_static(b": keep-alive\n\n")]).await;
        assert_eq!(comment, [Bytes::from_static(b": keep-alive\n\n")]);
        assert!(!stream.handed_out() && stream.live(), "a comment gets no id");
        let event = stream.record(vec![Bytes::from_static(b"data: x\n\n")]).await;
        assert_eq!(event, [Bytes::from_static(b"data: x\n\n")], "not logged: no id");
        assert!(!stream.handed_out() && !stream.live());
    }

    #[test]
    fn a_finished_stream_the_client_has_seen_is_not_resumed() {
        let log = vec![events::entry(1, b"data: a\n\n"), events::entry(2, b"data: b\n\n")];
        assert!(!nothing_left(&[], 2), "still open, nothing new yet: the rest may come");
        assert!(!nothing_left(&log, 2), "still open: the rest may come");
        let mut ended = log.clone();
        ended.push(events::END.to_vec());
        assert!(!nothing_left(&ended, 1), "event 2 is still to send");
        assert!(nothing_left(&ended, 2), "seen to its end");
    }

    #[test]
    fn a_cursor_reads_from_its_place_and_follows_trimming() {
        let mut c = Cursor::new(5);
        assert_eq!(c.index(), 5, "event 6 of an untrimmed log is its sixth entry");
        assert!(c.placed(&events::entry(1, b"data: a\n\n")));
        // The log was cut to its events from 4 on: the read was at a wrong index.
        assert!(!c.placed(&events::entry(4, b"data: d\n\n")));
        assert_eq!((c.first, c.index()), (4, 2));
        assert!(c.placed(&events::entry(4, b"data: d\n\n")));
        c.after = 9;
        assert_eq!(c.index(), 6);
    }

    #[test]
    fn a_log_trimmed_past_the_cursor_cannot_resume_it() {
        let mut c = Cursor::new(3);
        assert!(!c.placed(&events::entry(5, b"data: e\n\n")));
        assert!(c.placed(&events::entry(5, b"data: e\n\n")) && c.gapped(), "event 4 is gone");
        let mut c = Cursor::new(4);
        assert!(!c.placed(&events::entry(5, b"data: e\n\n")));
        assert!(!c.gapped(), "event 5 is the log's first: no gap");
        let mut c = Cursor::new(4);
        assert!(c.placed(events::END) && c.gapped(), "a log holding only its end holds no events");
    }
}

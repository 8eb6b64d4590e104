//! Per-request state shared by the phases of one request.

use std::sync::Arc;
use std::time::Instant;

use pingora_proxy::Session;
use tollgate_otel::TraceParent;

use tollgate_config::DEFAULT_CLIENT_BODY_TIMEOUT_MS;

use crate::body::BodyDeadline;
use crate::budget::HeldBudget;
pub use crate::facts::{LlmFacts, McpFacts, Payloads, PAYLOAD_LOG_LIMIT};
use crate::limits::{HeldLimit, Identity};
use crate::otel::RequestSpan;
use crate::respond::ErrorShape;
use crate::snapshot::{PeerTimeouts, Snapshot};

/// Where a passthrough request goes.
#[derive(Debug, Clone)]
pub struct PassthroughPlan {
    pub addr: std::net::SocketAddr,
    pub tls: bool,
    pub sni: String,
    pub authority: String,
    /// Path and query to send upstream.
    pub path: String,
    pub preserve_host: bool,
    /// A credential to remove before proxying (`hide_credentials`).
    pub hide_header: Option<String>,
    pub timeouts: PeerTimeouts,
    pub upstream_tls: crate::upstream::tls::UpstreamTls,
}

pub struct RequestCtx {
    /// The config this request runs under, from start to end.
    pub snap: Option<Arc<Snapshot>>,
    pub start: Instant,
    pub request_id: String,
    pub route: Option<usize>,
    pub service: Option<usize>,
    pub consumer: Option<usize>,
    /// The error shape the route's callers read.
    pub shape: ErrorShape,
    /// Status answered by the gateway itself (0 when Pingora proxied it).
    pub status: u16,
    pub error: Option<String>,
    pub llm: Option<LlmFacts>,
    pub mcp: Option<McpFacts>,
    pub passthrough: Option<PassthroughPlan>,
    /// Request body bytes seen on a passthrough route, against the limit.
    pub body_bytes: usize,
    /// When a passthrough route's streaming body must have arrived whole.
    pub body_deadline: Option<BodyDeadline>,
    /// A token reservation to settle when the answer ends.
    pub held_limit: Option<HeldLimit>,
    /// An ai-budget hold to settle with the answer's cost when it ends.
    pub held_budget: Option<HeldBudget>,
    /// Headers every answer to this request carries (rate-limit state).
    pub response_headers: Vec<(String, String)>,
    /// A short, non-secret id of the credential used (for `identifier = "credential"`).
    pub credential_id: Option<String>,
    /// Counted in the gateway's in-flight requests (until logging).
    pub counted: bool,
    /// The caller's W3C `traceparent` (and `tracestate`), when well-formed:
    /// passed to LLM providers so a trace spans the gateway.
    pub trace: Option<(TraceParent, Option<String>)>,
    /// This request's trace, when the opentelemetry plugin is on.
    pub span: Option<RequestSpan>,
    /// ai-semantic-cache: where a miss's answer is stored once complete.
    pub cache: Option<Box<crate::cache::pending::Pending>>,
    /// ai-semantic-cache's verdict (`hit`, `miss`, `bypass`, `refresh`; empty without it).
    pub cache_status: &'static str,
    /// What the guardrail plugins did (and the placeholders to restore).
    pub guard: Option<crate::guard::facts::GuardFacts>,
}

impl RequestCtx {
    pub fn new() -> Self {
        RequestCtx {
            snap: None,
            start: Instant::now(),
            request_id: String::new(),
            route: None,
            service: None,
            consumer: None,
            shape: ErrorShape::Kong,
            status: 0,
            error: None,
            llm: None,
            mcp: None,
            passthrough: None,
            body_bytes: 0,
            body_deadline: None,
            held_limit: None,
            held_budget: None,
            response_headers: Vec::new(),
            credential_id: None,
            counted: false,
            trace: None,
            span: None,
            cache: None,
            cache_status: "",
            guard: None,
        }
    }

    /// When this request's body must have arrived whole: `server.client_body_timeout`
    /// after the request began, which is when its header had been read.
    pub fn body_deadline(&self) -> BodyDeadline {
        let limit_ms =
            self.snap.as_ref().map_or(DEFAULT_CLIENT_BODY_TIMEOUT_MS, |s| s.config.server.client_body_timeout);
        BodyDeadline::new(self.start, limit_ms)
    }

    /// The authenticated consumer's name, if any.
    pub fn consumer_name(&self) -> Option<&str> {
        let snap = self.snap.as_ref()?;
        self.consumer.map(|c| snap.consumers[c].name.as_str())
    }

    /// Who a limit counts: the consumer, credential, client IP, service, a
    /// header's value and the consumer's first group, whichever the limit
    /// is configured to use.
    pub fn identity(&self, session: &Session, header_name: Option<&http::HeaderName>) -> Identity {
        let snap = self.snap.as_deref();
        let consumer = snap.zip(self.consumer).map(|(s, c)| &s.consumers[c]);
        Identity {
            consumer: consumer.map(|c| c.name.clone()),
            credential: self.credential_id.clone(),
            ip: session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip().to_string()),
            service: snap.zip(self.service).map(|(s, i)| s.services[i].name.clone()).unwrap_or_default(),
            header: header_name
                .and_then(|h| session.req_header().headers.get(h))
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            group: consumer.and_then(|c| c.groups.first()).cloned(),
        }
    }

    /// Keeps the first error reason; later ones are usually consequences.
    pub fn note_error(&mut self, msg: &str) {
        if self.error.is_none() {
            self.error = Some(msg.to_string());
        }
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}

//! Per-request state shared by the phases of one request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate_llm::Usage;

use tollgate_otel::TraceParent;

use crate::limits::HeldLimit;
use crate::otel::RequestSpan;
use crate::snapshot::{PeerTimeouts, Snapshot};

/// Facts about the LLM exchange, for metrics and the access log.
#[derive(Debug, Default, Clone)]
pub struct LlmFacts {
    pub provider: String,
    /// `provider/model` of the target that served.
    pub target: String,
    pub request_model: String,
    pub response_model: Option<String>,
    pub stream: bool,
    pub usage: Option<Usage>,
    /// The usage was counted by the gateway, not reported by the provider.
    pub usage_estimated: bool,
    pub upstream_status: Option<u16>,
    pub latency: Option<Duration>,
    pub ttft: Option<Duration>,
    pub client_cancelled: bool,
    pub log_statistics: bool,
    pub input_cost: Option<f64>,
    pub output_cost: Option<f64>,
    /// `logging.log_payloads`: the caller's request and the answer sent back,
    /// each cut at `PAYLOAD_LOG_LIMIT` bytes.
    pub payloads: Option<Payloads>,
    /// Targets tried before the one that answered, each with why it failed
    /// (`anthropic/claude-3: http_503`).
    pub failed_attempts: Vec<String>,
}

/// Most bytes of a request or an answer one access-log line carries.
pub const PAYLOAD_LOG_LIMIT: usize = 64 * 1024;

#[derive(Debug, Clone, Default)]
pub struct Payloads {
    pub request: String,
    pub response: String,
    pub truncated: bool,
}

impl Payloads {
    /// Appends answer bytes up to the limit.
    pub fn push_response(&mut self, bytes: &[u8]) {
        let room = PAYLOAD_LOG_LIMIT.saturating_sub(self.response.len());
        if bytes.len() > room {
            self.truncated = true;
        }
        self.response.push_str(&String::from_utf8_lossy(&bytes[..bytes.len().min(room)]));
    }

    pub fn request(bytes: &[u8]) -> Self {
        let mut p = Payloads::default();
        if bytes.len() > PAYLOAD_LOG_LIMIT {
            p.truncated = true;
        }
        p.request = String::from_utf8_lossy(&bytes[..bytes.len().min(PAYLOAD_LOG_LIMIT)]).into_owned();
        p
    }
}

impl LlmFacts {
    pub fn cost(&self) -> Option<f64> {
        let u = self.usage?;
        if self.input_cost.is_none() && self.output_cost.is_none() {
            return None;
        }
        Some(u.cost(self.input_cost.unwrap_or(0.0), self.output_cost.unwrap_or(0.0)))
    }

    /// Provider latency per completion token, in milliseconds (none without
    /// completion tokens).
    pub fn time_per_output_token_ms(&self) -> Option<f64> {
        let (l, u) = (self.latency?, self.usage?);
        (u.completion_tokens > 0).then(|| l.as_secs_f64() * 1000.0 / u.completion_tokens as f64)
    }
}

/// Facts about an MCP request, for metrics and the audit line in the access log.
#[derive(Debug, Default, Clone)]
pub struct McpFacts {
    /// The JSON-RPC method (`batch` for several, `response` for a client's
    /// answer), or the HTTP method for GET and DELETE.
    pub method: String,
    /// The tool a `tools/call` named.
    pub tool: Option<String>,
    /// allowed, denied, limited, invalid, unknown_session or error.
    pub decision: &'static str,
    pub replica: Option<String>,
    pub upstream_status: Option<u16>,
    pub latency: Option<Duration>,
}

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
    pub upstream_tls: crate::upstream_tls::UpstreamTls,
}

pub struct RequestCtx {
    /// The config this request runs under, from start to end.
    pub snap: Option<Arc<Snapshot>>,
    pub start: Instant,
    pub request_id: String,
    pub route: Option<usize>,
    pub service: Option<usize>,
    pub consumer: Option<usize>,
    /// Status answered by the gateway itself (0 when Pingora proxied it).
    pub status: u16,
    pub error: Option<String>,
    pub llm: Option<LlmFacts>,
    pub mcp: Option<McpFacts>,
    pub passthrough: Option<PassthroughPlan>,
    /// Request body bytes seen on a passthrough route, against the limit.
    pub body_bytes: usize,
    /// A token reservation to settle when the answer ends.
    pub held_limit: Option<HeldLimit>,
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
            status: 0,
            error: None,
            llm: None,
            mcp: None,
            passthrough: None,
            body_bytes: 0,
            held_limit: None,
            response_headers: Vec::new(),
            credential_id: None,
            counted: false,
            trace: None,
            span: None,
        }
    }

    /// The authenticated consumer's name, if any.
    pub fn consumer_name(&self) -> Option<&str> {
        let snap = self.snap.as_ref()?;
        self.consumer.map(|c| snap.consumers[c].name.as_str())
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

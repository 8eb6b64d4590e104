//! The opentelemetry plugin: a span for every sampled request, one client span
//! per call to an LLM provider (with OpenTelemetry's GenAI attributes), sent in
//! batches to an OTLP/HTTP collector.
//!
//! Requests never wait for the collector: finished spans go to one exporter
//! task on its own thread, through a queue bounded by `queue.max_entries`;
//! past it spans are dropped and counted. Export failures are counted and
//! logged, never retried into the queue (a dead collector must not grow memory).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tollgate_config::schema::OpenTelemetryConfig;
use tollgate_otel::sampler::Sampler;
use tollgate_otel::span::unix_nanos;
use tollgate_otel::{otlp, AttrValue, Span, SpanId, SpanKind, Status, TraceId, TraceParent};

use crate::facts::{LlmFacts, McpFacts};
use crate::llm::target::LlmTarget;
use crate::metrics::METRICS;
use crate::upstream::fetch::Fetch;
use crate::upstream::{Endpoint, InvalidUrl};

/// The plugin's settings, compiled once per config load.
pub struct OtelRt {
    endpoint: Endpoint,
    headers: Vec<(String, String)>,
    resource: Vec<(String, AttrValue)>,
    sampler: Sampler,
    batch: usize,
    delay: Duration,
    max_entries: usize,
    timeout: Duration,
    /// `http_response_header_for_traceid`.
    pub trace_id_header: Option<String>,
}

impl std::fmt::Debug for OtelRt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values are often a collector's API key: names only.
        let headers: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("OtelRt")
            .field("endpoint", &self.endpoint.authority)
            .field("headers", &headers)
            .field("sampler", &self.sampler)
            .finish_non_exhaustive()
    }
}

impl OtelRt {
    pub fn compile(c: &OpenTelemetryConfig) -> Result<Self, InvalidUrl> {
        let mut resource: Vec<(String, AttrValue)> =
            c.resource_attributes.iter().map(|(k, v)| (k.clone(), AttrValue::from(v.as_str()))).collect();
        if !c.resource_attributes.contains_key("service.name") {
            resource.push(("service.name".into(), "tollgate".into()));
        }
        resource.push(("service.version".into(), env!("CARGO_PKG_VERSION").into()));
        Ok(OtelRt {
            endpoint: Endpoint::parse(&c.traces_endpoint)?,
            headers: c.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            resource,
            sampler: Sampler::ratio(c.sampling_rate),
            batch: c.queue.max_batch_size.max(1),
            delay: Duration::from_secs_f64(c.queue.max_coalescing_delay),
            max_entries: c.queue.max_entries,
            timeout: Duration::from_millis(c.send_timeout),
            trace_id_header: c.http_response_header_for_traceid.clone(),
        })
    }
}

/// The trace of one request, from its first phase to its logging.
pub struct RequestSpan {
    pub otel: Arc<OtelRt>,
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// The caller's span, when it sent a `traceparent`.
    pub parent: Option<SpanId>,
    pub sampled: bool,
    start: SystemTime,
    /// Finished client spans (provider calls).
    children: Vec<Span>,
    /// The provider call under way: its span id and start.
    call: Option<(SpanId, SystemTime)>,
}

impl RequestSpan {
    /// Starts the request's span under the caller's context, if any; the
    /// sampling decision is taken here, once.
    pub fn begin(otel: Arc<OtelRt>, caller: Option<&TraceParent>) -> Self {
        let trace_id = caller.map(|c| c.trace_id).unwrap_or_else(TraceId::random);
        let sampled = otel.sampler.sampled(caller, &trace_id);
        RequestSpan {
            otel,
            trace_id,
            span_id: SpanId::random(),
            parent: caller.map(|c| c.parent_id),
            sampled,
            start: SystemTime::now(),
            children: Vec::new(),
            call: None,
        }
    }

    /// Opens the span of a provider call; its id goes upstream in `traceparent`.
    pub fn start_call(&mut self) -> TraceParent {
        let id = SpanId::random();
        self.call = Some((id, SystemTime::now()));
        TraceParent { trace_id: self.trace_id, parent_id: id, sampled: self.sampled }
    }

    /// The `traceparent` sent upstream: the open call's, else the request's.
    pub fn outgoing(&self) -> TraceParent {
        let parent_id = self.call.map(|(id, _)| id).unwrap_or(self.span_id);
        TraceParent { trace_id: self.trace_id, parent_id, sampled: self.sampled }
    }

    /// Closes the provider call span with what the call's facts say;
    /// `failure` is the failover reason of an attempt that did not answer.
    pub fn end_call(&mut self, target: &LlmTarget, facts: Option<&LlmFacts>, failure: Option<&str>) {
        let Some((span_id, start)) = self.call.take() else { return };
        if !self.sampled {
            return;
        }
        let operation = target.api.operation();
        let model = facts.map(|f| f.request_model.as_str()).unwrap_or("");
        let mut span = Span {
            trace_id: self.trace_id,
            span_id,
            parent_id: Some(self.span_id),
            name: format!("{operation} {model}"),
            kind: SpanKind::Client,
            start_unix_nanos: unix_nanos(start),
            end_unix_nanos: unix_nanos(SystemTime::now()),
            attributes: Vec::with_capacity(16),
            status: Status::Unset,
        };
        span.attr("gen_ai.operation.name", operation)
            .attr("gen_ai.provider.name", genai_provider(&target.provider))
            .attr("gen_ai.request.model", model)
            .attr("server.address", target.endpoint.host.as_str())
            .attr("server.port", target.endpoint.port)
            .attr("tollgate.target", target.label.as_str());
        if let Some(f) = facts {
            span.attr("tollgate.request_mode", if f.stream { "stream" } else { "non-stream" })
                .attr_opt("gen_ai.response.model", f.response_model.clone())
                .attr_opt("http.response.status_code", f.upstream_status);
            if let Some(u) = f.usage {
                span.attr("gen_ai.usage.input_tokens", u.prompt_tokens)
                    .attr("gen_ai.usage.output_tokens", u.completion_tokens);
                if f.usage_estimated {
                    span.attr("tollgate.usage.estimated", true);
                }
            }
            span.attr_opt("tollgate.cost", f.cost())
                .attr_opt("tollgate.time_to_first_token_ms", f.ttft.map(|t| t.as_secs_f64() * 1000.0));
            if f.client_cancelled {
                span.attr("tollgate.client_cancelled", true);
            }
        }
        let error = failure.map(str::to_string).or_else(|| {
            let status = facts?.upstream_status?;
            (!(200..300).contains(&status)).then(|| status.to_string())
        });
        if let Some(e) = error {
            span.attr("error.type", e.as_str());
            span.status = Status::Error(e);
        }
        self.children.push(span);
    }

    /// Closes the request's span and queues every span of the request.
    pub fn finish(mut self, request: ServerFacts<'_>) {
        if !self.sampled {
            return;
        }
        let mut span = Span {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_id: self.parent,
            name: String::new(),
            kind: SpanKind::Server,
            start_unix_nanos: unix_nanos(self.start),
            end_unix_nanos: unix_nanos(SystemTime::now()),
            attributes: Vec::with_capacity(16),
            status: Status::Unset,
        };
        span.name = match request.mcp {
            // MCP's conventions: `{mcp.method.name} {target}`.
            Some(m) => match &m.tool {
                Some(tool) => format!("{} {tool}", m.method),
                None => m.method.clone(),
            },
            None if request.route.is_empty() => request.method.to_string(),
            None => format!("{} {}", request.method, request.route),
        };
        span.attr("http.request.method", request.method)
            .attr("url.path", request.path)
            .attr("http.response.status_code", request.status)
            .attr("tollgate.request_id", request.request_id);
        if let Some(ip) = request.client_ip {
            span.attr("client.address", ip);
        }
        for (key, value) in [
            ("tollgate.route", request.route),
            ("tollgate.service", request.service),
            ("tollgate.consumer", request.consumer),
        ] {
            if !value.is_empty() {
                span.attr(key, value);
            }
        }
        if let Some(m) = request.mcp {
            span.attr("mcp.method.name", m.method.as_str())
                .attr("tollgate.mcp.decision", m.decision)
                .attr_opt("tollgate.mcp.replica", m.replica.clone());
            if let Some(tool) = &m.tool {
                span.attr("gen_ai.tool.name", tool.as_str()).attr("gen_ai.operation.name", "execute_tool");
            }
        }
        if let Some(err) = request.error {
            span.attr("tollgate.error", err);
        }
        // A server span is in error for 5xx only: 4xx are the caller's.
        if request.status >= 500 {
            span.attr("error.type", request.status.to_string());
            span.status = Status::Error(request.error.unwrap_or("server error").to_string());
        }
        self.children.push(span);
        exporter().submit(self.otel, self.children);
    }
}

/// What the request's span says about it, gathered by the logging phase.
pub struct ServerFacts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub route: &'a str,
    pub service: &'a str,
    pub consumer: &'a str,
    pub request_id: &'a str,
    pub client_ip: Option<String>,
    pub error: Option<&'a str>,
    pub mcp: Option<&'a McpFacts>,
}

/// `gen_ai.provider.name`'s well-known values for the providers that have one.
fn genai_provider(provider: &str) -> &str {
    match provider {
        "azure" => "azure.ai.openai",
        "gemini" => "gcp.gemini",
        "vertex" => "gcp.vertex_ai",
        "bedrock" => "aws.bedrock",
        "mistral" => "mistral_ai",
        other => other,
    }
}

/// The process's one exporter.
struct Exporter {
    tx: UnboundedSender<(Arc<OtelRt>, Vec<Span>)>,
    /// Spans queued and not yet exported or failed.
    queued: Arc<AtomicUsize>,
}

static EXPORTER: OnceLock<Exporter> = OnceLock::new();

fn exporter() -> &'static Exporter {
    EXPORTER.get_or_init(|| {
        let (tx, rx) = unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let counter = queued.clone();
        let started = std::thread::Builder::new().name("otlp-export".into()).spawn(move || {
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt.block_on(export_loop(rx, counter)),
                Err(e) => tracing::error!(error = %e, "opentelemetry: no runtime for the exporter; spans are dropped"),
            }
        });
        if let Err(e) = started {
            tracing::error!(error = %e, "opentelemetry: the exporter thread did not start; spans are dropped");
        }
        Exporter { tx, queued }
    })
}

impl Exporter {
    fn submit(&self, otel: Arc<OtelRt>, spans: Vec<Span>) {
        let n = spans.len();
        let limit = otel.max_entries;
        let admitted = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| (q + n <= limit).then_some(q + n))
            .is_ok();
        if !admitted || self.tx.send((otel, spans)).is_err() {
            if admitted {
                self.queued.fetch_sub(n, Ordering::AcqRel);
            }
            METRICS.otlp_spans.with_label_values(&["dropped"]).inc_by(n as u64);
        }
    }
}

/// Waits (up to `max`) for queued spans to be exported, before an exit.
pub fn flush(max: Duration) {
    let Some(e) = EXPORTER.get() else { return };
    let deadline = std::time::Instant::now() + max;
    while e.queued.load(Ordering::Acquire) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Gathers spans into batches (`max_batch_size`, or whatever arrived within
/// `max_coalescing_delay` of the first) and exports them one batch at a time.
/// A batch never mixes configs: spans queued under a config that a reload
/// replaced go to that config's collector.
async fn export_loop(mut rx: UnboundedReceiver<(Arc<OtelRt>, Vec<Span>)>, queued: Arc<AtomicUsize>) {
    let fetch = Fetch::shared();
    let failing = AtomicBool::new(false);
    let mut next = None;
    loop {
        let (otel, mut batch) = match next.take() {
            Some(first) => first,
            None => match rx.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let deadline = tokio::time::Instant::now() + otel.delay;
        while batch.len() < otel.batch {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((o, spans))) if Arc::ptr_eq(&o, &otel) => batch.extend(spans),
                Ok(Some(other)) => {
                    next = Some(other);
                    break;
                }
                Ok(None) | Err(_) => break,
            }
        }
        while !batch.is_empty() {
            let rest = batch.split_off(batch.len().min(otel.batch));
            export(&fetch, &otel, &batch, &failing).await;
            queued.fetch_sub(batch.len(), Ordering::AcqRel);
            batch = rest;
        }
    }
}

async fn export(fetch: &Fetch, otel: &OtelRt, spans: &[Span], failing: &AtomicBool) {
    let body = Bytes::from(otlp::encode(&otel.resource, spans));
    let result = fetch.post(&otel.endpoint, "application/json", body, &otel.headers, otel.timeout).await;
    let n = spans.len() as u64;
    let outcome = match result {
        Ok((status, _)) if (200..300).contains(&status) => Ok(()),
        Ok((status, answer)) => Err(format!(
            "the collector answered {status}: {}",
            String::from_utf8_lossy(&answer[..answer.len().min(200)])
        )),
        Err(e) => Err(e.to_string()),
    };
    match outcome {
        Ok(()) => {
            METRICS.otlp_spans.with_label_values(&["exported"]).inc_by(n);
            if failing.swap(false, Ordering::Relaxed) {
                tracing::info!(endpoint = %otel.endpoint.authority, "opentelemetry: exports work again");
            }
        }
        Err(e) => {
            METRICS.otlp_spans.with_label_values(&["failed"]).inc_by(n);
            // Once per outage, not once per batch.
            if !failing.swap(true, Ordering::Relaxed) {
                tracing::warn!(endpoint = %otel.endpoint.authority, error = %e, "opentelemetry: export failed; spans are dropped until the collector answers");
            }
        }
    }
}

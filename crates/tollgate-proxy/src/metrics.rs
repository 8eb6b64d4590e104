//! Prometheus metrics. Names follow Kong's AI metrics without the `kong_` prefix.
//! Every label value comes from the config (routes, services, consumers,
//! providers) or from a bounded set, so cardinality cannot grow with traffic.

use std::collections::HashSet;
use std::sync::Mutex;

use once_cell::sync::Lazy;
use prometheus::{
    register_counter_vec_with_registry, register_histogram_vec_with_registry, register_int_counter_vec_with_registry,
    CounterVec, Encoder, HistogramVec, IntCounterVec, Registry, TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_latency: HistogramVec,
    pub llm_requests: IntCounterVec,
    pub llm_tokens: IntCounterVec,
    pub llm_cost: CounterVec,
    pub llm_latency: HistogramVec,
    pub llm_ttft: HistogramVec,
    pub llm_tpot: HistogramVec,
    pub config_reloads: IntCounterVec,
    pub rate_limit_refusals: IntCounterVec,
    pub rate_limit_backend_errors: IntCounterVec,
    pub rate_limit_check: HistogramVec,
    pub target_failovers: IntCounterVec,
    pub mcp_requests: IntCounterVec,
    pub mcp_latency: HistogramVec,
    pub mcp_errors: IntCounterVec,
    pub build_info: prometheus::IntGaugeVec,
    pub otlp_spans: IntCounterVec,
    models_seen: Mutex<HashSet<String>>,
    tools_seen: Mutex<HashSet<String>>,
}

/// MCP methods that get their own label; anything else a client sends is `other`.
const MCP_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "server/discover",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
    "batch",
    "response",
    "GET",
    "DELETE",
    "POST",
];

/// Tool names come from request bodies; past this many distinct ones the label is `other`.
const MAX_TOOL_LABELS: usize = 128;

/// Response models are chosen by providers; past this many distinct values the
/// label collapses to `other`.
const MAX_MODEL_LABELS: usize = 64;

const LATENCY_BUCKETS_MS: &[f64] =
    &[1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0];

pub static METRICS: Lazy<Metrics> = Lazy::new(Metrics::new);

/// HTTP requests and LLM calls: their metrics, registered on `r`.
#[allow(clippy::expect_used)] // static metric definitions: a failure is a programming error
fn request_metrics(
    r: &Registry,
) -> (IntCounterVec, HistogramVec, IntCounterVec, IntCounterVec, CounterVec, HistogramVec, HistogramVec, HistogramVec) {
    let http_requests = register_int_counter_vec_with_registry!(
        "http_requests_total",
        "HTTP requests answered, by service, route, consumer and status code",
        &["service", "route", "consumer", "code"],
        r
    )
    .expect("metric");
    let http_latency = register_histogram_vec_with_registry!(
        "http_request_duration_ms",
        "Time from request to the end of the response, milliseconds",
        &["service", "route"],
        LATENCY_BUCKETS_MS.to_vec(),
        r
    )
    .expect("metric");
    let llm_requests = register_int_counter_vec_with_registry!(
        "ai_llm_requests_total",
        "LLM requests sent to providers, by the API the caller spoke (request_format) and ai-semantic-cache's verdict (cache_status: hit, miss, bypass, refresh; empty without the plugin)",
        &["ai_provider", "ai_model", "consumer", "request_mode", "code", "request_format", "cache_status"],
        r
    )
    .expect("metric");
    let llm_tokens = register_int_counter_vec_with_registry!(
        "ai_llm_tokens_total",
        "Tokens reported by providers, by token_type, the API the caller spoke and cache_status (hit: tokens of cached answers, which no provider spent)",
        &["ai_provider", "ai_model", "consumer", "token_type", "request_format", "cache_status"],
        r
    )
    .expect("metric");
    let llm_cost = register_counter_vec_with_registry!(
        "ai_llm_cost_total",
        "Cost in dollars from the target's input_cost and output_cost",
        &["ai_provider", "ai_model", "consumer"],
        r
    )
    .expect("metric");
    let llm_latency = register_histogram_vec_with_registry!(
        "ai_llm_provider_latency_ms",
        "Provider latency from request sent to answer complete, milliseconds",
        &["ai_provider", "ai_model", "consumer", "request_mode"],
        LATENCY_BUCKETS_MS.to_vec(),
        r
    )
    .expect("metric");
    let llm_ttft = register_histogram_vec_with_registry!(
        "ai_llm_time_to_first_token_ms",
        "Time from request sent to the first streamed event, milliseconds",
        &["ai_provider", "ai_model", "consumer"],
        LATENCY_BUCKETS_MS.to_vec(),
        r
    )
    .expect("metric");
    let llm_tpot = register_histogram_vec_with_registry!(
        "ai_llm_time_per_output_token_ms",
        "Provider latency divided by the completion tokens of the answer, milliseconds",
        &["ai_provider", "ai_model", "consumer"],
        vec![0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0],
        r
    )
    .expect("metric");
    (http_requests, http_latency, llm_requests, llm_tokens, llm_cost, llm_latency, llm_ttft, llm_tpot)
}

/// Reloads, limits and failovers: their metrics, registered on `r`.
#[allow(clippy::expect_used)] // static metric definitions: a failure is a programming error
fn limit_metrics(r: &Registry) -> (IntCounterVec, IntCounterVec, IntCounterVec, HistogramVec, IntCounterVec) {
    let config_reloads = register_int_counter_vec_with_registry!(
        "tollgate_config_reloads_total",
        "Config reloads by result (success, failure)",
        &["result"],
        r
    )
    .expect("metric");
    let rate_limit_refusals = register_int_counter_vec_with_registry!(
        "ai_rate_limit_refusals_total",
        "Requests refused by ai-rate-limiting-advanced, by provider and consumer",
        &["ai_provider", "consumer"],
        r
    )
    .expect("metric");
    let rate_limit_backend_errors = register_int_counter_vec_with_registry!(
        "ai_rate_limit_backend_errors_total",
        "Token limit backend failures (Redis unreachable or slow), by operation",
        &["operation"],
        r
    )
    .expect("metric");
    let rate_limit_check = register_histogram_vec_with_registry!(
        "ai_rate_limit_check_duration_ms",
        "Time to check and reserve a token budget, by strategy, milliseconds",
        &["strategy"],
        vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 50.0, 250.0, 1000.0],
        r
    )
    .expect("metric");
    let target_failovers = register_int_counter_vec_with_registry!(
        "ai_target_failovers_total",
        "Attempts that failed over to another target, by the failing target and the failover criterion",
        &["target", "reason"],
        r
    )
    .expect("metric");
    (config_reloads, rate_limit_refusals, rate_limit_backend_errors, rate_limit_check, target_failovers)
}

/// MCP calls, the build and span export: their metrics, registered on `r`.
#[allow(clippy::expect_used)] // static metric definitions: a failure is a programming error
fn mcp_and_process_metrics(
    r: &Registry,
) -> (IntCounterVec, HistogramVec, IntCounterVec, prometheus::IntGaugeVec, IntCounterVec) {
    let mcp_requests = register_int_counter_vec_with_registry!(
        "ai_mcp_requests_total",
        "MCP requests by JSON-RPC method, tool and the gateway's decision",
        &["method", "tool", "decision"],
        r
    )
    .expect("metric");
    let mcp_latency = register_histogram_vec_with_registry!(
        "ai_mcp_latency_ms",
        "MCP server latency from request sent to answer complete, by method, milliseconds",
        &["method"],
        LATENCY_BUCKETS_MS.to_vec(),
        r
    )
    .expect("metric");
    let mcp_errors = register_int_counter_vec_with_registry!(
        "ai_mcp_errors_total",
        "MCP requests that failed or were refused, by type (denied, limited, invalid, unknown_session, error)",
        &["type"],
        r
    )
    .expect("metric");
    let build_info = {
        let g = prometheus::register_int_gauge_vec_with_registry!(
            "tollgate_build_info",
            "1, labelled with the running tollgate's version",
            &["version"],
            r
        )
        .expect("metric");
        g.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        g
    };
    let otlp_spans = register_int_counter_vec_with_registry!(
        "tollgate_otlp_spans_total",
        "Spans of the opentelemetry plugin by fate: exported, failed (the collector refused or was unreachable) or dropped (queue full)",
        &["result"],
        r
    )
    .expect("metric");
    (mcp_requests, mcp_latency, mcp_errors, build_info, otlp_spans)
}

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new();
        let (http_requests, http_latency, llm_requests, llm_tokens, llm_cost, llm_latency, llm_ttft, llm_tpot) =
            request_metrics(&registry);
        let (config_reloads, rate_limit_refusals, rate_limit_backend_errors, rate_limit_check, target_failovers) =
            limit_metrics(&registry);
        let (mcp_requests, mcp_latency, mcp_errors, build_info, otlp_spans) = mcp_and_process_metrics(&registry);
        Metrics {
            http_requests,
            http_latency,
            llm_requests,
            llm_tokens,
            llm_cost,
            llm_latency,
            llm_ttft,
            llm_tpot,
            config_reloads,
            rate_limit_refusals,
            rate_limit_backend_errors,
            rate_limit_check,
            target_failovers,
            mcp_requests,
            mcp_latency,
            mcp_errors,
            build_info,
            otlp_spans,
            models_seen: Mutex::new(HashSet::new()),
            tools_seen: Mutex::new(HashSet::new()),
            registry,
        }
    }

    /// A model label with bounded cardinality.
    pub fn model_label<'a>(&self, model: &'a str) -> &'a str {
        bounded_label(&self.models_seen, model, MAX_MODEL_LABELS)
    }

    /// A tool label with bounded cardinality.
    pub fn tool_label<'a>(&self, tool: &'a str) -> &'a str {
        bounded_label(&self.tools_seen, tool, MAX_TOOL_LABELS)
    }

    pub fn mcp_method_label(method: &str) -> &str {
        if MCP_METHODS.contains(&method) {
            method
        } else {
            "other"
        }
    }

    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let families = self.registry.gather();
        if TextEncoder::new().encode(&families, &mut out).is_err() {
            out.clear();
        }
        out
    }
}

/// `value` while fewer than `max` distinct values were seen, else `other`.
fn bounded_label<'a>(seen: &Mutex<HashSet<String>>, value: &'a str, max: usize) -> &'a str {
    let Ok(mut seen) = seen.lock() else {
        return "other";
    };
    if seen.contains(value) {
        return value;
    }
    if seen.len() < max {
        seen.insert(value.to_string());
        return value;
    }
    "other"
}

/// One failover away from `target` (a config label) for `reason` (a failover criterion).
pub fn record_failover(target: &str, reason: &str) {
    METRICS.target_failovers.with_label_values(&[target, reason]).inc();
}

/// `Last-Event-ID` resumption of MCP streams from the shared event log.
pub struct McpEventLogMetrics {
    /// Streams a GET with `Last-Event-ID` was served from the log.
    pub resumed: prometheus::IntCounter,
    /// Event-log calls that failed (Redis down or slow), by `op`: `append`
    /// (the stream went on without resumable ids) or `read` (the GET went to
    /// the server as without a log).
    pub errors: IntCounterVec,
}

#[allow(clippy::expect_used)] // static metric definitions: a failure is a programming error
pub static MCP_EVENT_LOG: Lazy<McpEventLogMetrics> = Lazy::new(|| {
    McpEventLogMetrics {
    resumed: prometheus::register_int_counter_with_registry!(
        "ai_mcp_resumed_streams_total",
        "MCP SSE streams resumed (Last-Event-ID) from the shared event log",
        METRICS.registry
    )
    .expect("metric"),
    errors: register_int_counter_vec_with_registry!(
        "ai_mcp_event_log_errors_total",
        "MCP event-log calls that failed, by op (append, read, delete, expire): the stream degraded to this replica alone",
        &["op"],
        METRICS.registry
    )
    .expect("metric"),
}
});

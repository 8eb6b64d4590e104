//! The access log's line for a request: who asked what, what was answered,
//! and for LLM and MCP exchanges what the upstream did.

use pingora_proxy::Session;
use serde::Serialize;

use super::summary::Summary;
use crate::access_log::AccessLog;
use crate::ctx::{LlmFacts, McpFacts, RequestCtx};
use crate::redact;

pub(super) fn write(log: &AccessLog, session: &Session, ctx: &RequestCtx, s: &Summary<'_>) {
    let req = session.req_header();
    let redact_fields = ctx.snap.as_deref().map(|s| s.config.server.payload_redact_fields.as_slice()).unwrap_or(&[]);
    let line = Line {
        time: rfc3339_now(),
        request_id: &ctx.request_id,
        client_ip: session.client_addr().map(|a| a.to_string()),
        method: req.method.as_str(),
        // The path only: a query string may carry a key.
        path: req.uri.path(),
        status: s.status,
        latency_ms: round3(s.elapsed.as_secs_f64() * 1000.0),
        route: s.route,
        service: s.service,
        consumer: s.consumer,
        error: s.error,
        ai: ctx.llm.as_ref().map(|f| ai_line(f, redact_fields)),
        mcp: ctx.mcp.as_ref().map(mcp_line),
        guard: ctx.guard.as_ref(),
    };
    match serde_json::to_string(&line) {
        Ok(text) => log.write(text),
        Err(err) => tracing::warn!(error = %err, "access log line not written"),
    }
}

/// The line for a request whose header never arrived whole or well-formed:
/// no request phase ran, so it has a client and an answer and nothing else.
pub(super) fn write_unread(log: &AccessLog, client_ip: Option<String>, status: u16, error: &str) {
    let line = Line {
        time: rfc3339_now(),
        request_id: "",
        client_ip,
        method: "",
        path: "",
        status,
        latency_ms: 0.0,
        route: "",
        service: "",
        consumer: "",
        error: Some(error),
        ai: None,
        mcp: None,
        guard: None,
    };
    match serde_json::to_string(&line) {
        Ok(text) => log.write(text),
        Err(err) => tracing::warn!(error = %err, "access log line not written"),
    }
}

/// The `ai` section: what the provider did, and with `log_statistics` its
/// models, usage, cost and latencies; the payloads when they are logged.
fn ai_line<'a>(f: &'a LlmFacts, redact_fields: &[String]) -> AiLine<'a> {
    let stats = f.log_statistics;
    let ms = |d: std::time::Duration| round3(d.as_secs_f64() * 1000.0);
    AiLine {
        provider: &f.provider,
        target: &f.target,
        request_format: f.request_format,
        request_mode: if f.stream { "stream" } else { "non-stream" },
        upstream_status: f.upstream_status,
        failed_attempts: &f.failed_attempts,
        client_cancelled: f.client_cancelled,
        cache_status: f.cache_status,
        request_model: stats.then_some(f.request_model.as_str()),
        response_model: stats.then_some(f.response_model.as_deref()),
        usage: f.usage.filter(|_| stats).map(|u| UsageLine {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
            cached_tokens: u.cached_tokens,
            cache_write_tokens: u.cache_write_tokens,
            reasoning_tokens: u.reasoning_tokens,
            estimated: f.usage_estimated,
        }),
        cost: f.cost().filter(|_| stats),
        latency_ms: f.latency.filter(|_| stats).map(ms),
        ttft_ms: f.ttft.filter(|_| stats).map(ms),
        time_per_token_ms: f.time_per_output_token_ms().filter(|_| stats).map(round3),
        payload: f.payloads.as_ref().map(|p| PayloadLine {
            request: redact::payload(&p.request, redact_fields),
            response: redact::payload(&p.response, redact_fields),
            truncated: p.truncated,
        }),
    }
}

/// The audit record of a tool call: who, which tool, what the gateway
/// decided, and how long the server took. Session ids are bearer secrets
/// and are never logged.
fn mcp_line(f: &McpFacts) -> McpLine<'_> {
    McpLine {
        method: &f.method,
        tool: f.tool.as_deref(),
        decision: f.decision,
        replica: f.replica.as_deref(),
        upstream_status: f.upstream_status,
        latency_ms: f.latency.map(|l| round3(l.as_secs_f64() * 1000.0)),
    }
}

/// One access-log line, serialized straight from borrowed request facts (no
/// intermediate JSON tree: this runs once per request).
#[derive(Serialize)]
struct Line<'a> {
    time: String,
    request_id: &'a str,
    client_ip: Option<String>,
    method: &'a str,
    path: &'a str,
    status: u16,
    latency_ms: f64,
    route: &'a str,
    service: &'a str,
    consumer: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ai: Option<AiLine<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mcp: Option<McpLine<'a>>,
    /// What the guardrail plugins did: `refused_by`, `masked`, `webhook`.
    #[serde(skip_serializing_if = "Option::is_none")]
    guard: Option<&'a crate::guard::facts::GuardFacts>,
}

/// The `ai` section; the statistics appear only with `logging.log_statistics`.
#[derive(Serialize)]
struct AiLine<'a> {
    provider: &'a str,
    target: &'a str,
    request_format: &'static str,
    request_mode: &'static str,
    upstream_status: Option<u16>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    failed_attempts: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    client_cancelled: bool,
    /// ai-semantic-cache's verdict, when the plugin is on the route.
    #[serde(skip_serializing_if = "str::is_empty")]
    cache_status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_model: Option<&'a str>,
    /// `Some(None)`: statistics are on and the provider named no model (null).
    #[serde(skip_serializing_if = "Option::is_none")]
    response_model: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttft_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_per_token_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<PayloadLine>,
}

#[derive(Serialize)]
struct UsageLine {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    cached_tokens: u64,
    #[serde(skip_serializing_if = "is_zero")]
    cache_write_tokens: u64,
    #[serde(skip_serializing_if = "is_zero")]
    reasoning_tokens: u64,
    estimated: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize)]
struct PayloadLine {
    request: String,
    response: String,
    truncated: bool,
}

#[derive(Serialize)]
struct McpLine<'a> {
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool: Option<&'a str>,
    decision: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    replica: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<f64>,
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// UTC timestamp with milliseconds, without pulling in a date crate.
fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs() as i64;
    let ms = now.subsec_millis();
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

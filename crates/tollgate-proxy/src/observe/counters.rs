//! The Prometheus metrics a request counts in: HTTP requests and latency for
//! every request, LLM requests, tokens, cost and latencies for LLM
//! exchanges, MCP requests and decisions for MCP exchanges.

use crate::ctx::{LlmFacts, McpFacts, RequestCtx};
use crate::metrics::{Metrics, METRICS};

use super::summary::Summary;

pub(super) fn count(s: &Summary<'_>, ctx: &RequestCtx) {
    let m = &*METRICS;
    let code = s.status.to_string();
    m.http_requests.with_label_values(&[s.service, s.route, s.consumer, &code]).inc();
    m.http_latency.with_label_values(&[s.service, s.route]).observe(s.elapsed.as_secs_f64() * 1000.0);
    if let Some(f) = &ctx.llm {
        llm(m, f, s.consumer);
    }
    if let Some(f) = &ctx.mcp {
        mcp(m, f);
    }
}

fn llm(m: &Metrics, f: &LlmFacts, consumer: &str) {
    let model = m.model_label(f.response_model.as_deref().unwrap_or(&f.request_model));
    let mode = if f.stream { "stream" } else { "non-stream" };
    let upstream_code = f.upstream_status.map(|s| s.to_string()).unwrap_or_default();
    let labels = [f.provider.as_str(), model, consumer, mode, upstream_code.as_str(), f.request_format, f.cache_status];
    m.llm_requests.with_label_values(&labels).inc();
    if let Some(u) = f.usage {
        for (kind, n) in [
            ("prompt_tokens", u.prompt_tokens),
            ("completion_tokens", u.completion_tokens),
            ("total_tokens", u.total_tokens),
            ("cached_tokens", u.cached_tokens),
            ("cache_write_tokens", u.cache_write_tokens),
            ("reasoning_tokens", u.reasoning_tokens),
        ] {
            // The detail kinds appear once a provider reports some.
            if n == 0 && !matches!(kind, "prompt_tokens" | "completion_tokens" | "total_tokens") {
                continue;
            }
            let labels = [f.provider.as_str(), model, consumer, kind, f.request_format, f.cache_status];
            m.llm_tokens.with_label_values(&labels).inc_by(n);
        }
    }
    if let Some(c) = f.cost() {
        m.llm_cost.with_label_values(&[&f.provider, model, consumer]).inc_by(c);
    }
    if let Some(l) = f.latency {
        m.llm_latency.with_label_values(&[&f.provider, model, consumer, mode]).observe(l.as_secs_f64() * 1000.0);
    }
    if let Some(t) = f.ttft {
        m.llm_ttft.with_label_values(&[&f.provider, model, consumer]).observe(t.as_secs_f64() * 1000.0);
    }
    if let Some(tpot) = f.time_per_output_token_ms() {
        m.llm_tpot.with_label_values(&[&f.provider, model, consumer]).observe(tpot);
    }
}

fn mcp(m: &Metrics, f: &McpFacts) {
    let method = Metrics::mcp_method_label(&f.method);
    let tool = f.tool.as_deref().map(|t| m.tool_label(t)).unwrap_or("");
    m.mcp_requests.with_label_values(&[method, tool, f.decision]).inc();
    if f.decision != "allowed" {
        m.mcp_errors.with_label_values(&[f.decision]).inc();
    }
    if let Some(l) = f.latency {
        m.mcp_latency.with_label_values(&[method]).observe(l.as_secs_f64() * 1000.0);
    }
}

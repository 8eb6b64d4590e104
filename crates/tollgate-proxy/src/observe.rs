//! The logging phase: Prometheus metrics, one JSON access-log line per request,
//! and the request's spans when the opentelemetry plugin is on.

use pingora_error::Error;
use pingora_proxy::Session;
use serde_json::{json, Map, Value};

use crate::access_log::AccessLog;
use crate::ctx::RequestCtx;
use crate::metrics::METRICS;
use crate::otel::ServerFacts;

pub fn record(log: &AccessLog, session: &Session, e: Option<&Error>, ctx: &mut RequestCtx) {
    let status = if ctx.status != 0 {
        ctx.status
    } else {
        session
            .response_written()
            .map(|r| r.status.as_u16())
            .unwrap_or(if e.is_some() { 502 } else { 0 })
    };
    let elapsed = ctx.start.elapsed();
    let snap = ctx.snap.as_deref();
    let route = snap
        .zip(ctx.route)
        .map(|(s, r)| s.router.routes[r].name.as_str())
        .unwrap_or("");
    let service = snap
        .zip(ctx.service)
        .map(|(s, i)| s.services[i].name.as_str())
        .unwrap_or("");
    let consumer = snap
        .zip(ctx.consumer)
        .map(|(s, c)| s.consumers[c].name.as_str())
        .unwrap_or("");
    let m = &*METRICS;
    let code = status.to_string();
    m.http_requests
        .with_label_values(&[service, route, consumer, &code])
        .inc();
    m.http_latency
        .with_label_values(&[service, route])
        .observe(elapsed.as_secs_f64() * 1000.0);

    if let Some(f) = &ctx.llm {
        let model = m.model_label(f.response_model.as_deref().unwrap_or(&f.request_model));
        let mode = if f.stream { "stream" } else { "non-stream" };
        let upstream_code = f.upstream_status.map(|s| s.to_string()).unwrap_or_default();
        m.llm_requests
            .with_label_values(&[&f.provider, model, consumer, mode, &upstream_code])
            .inc();
        if let Some(u) = f.usage {
            for (kind, n) in [
                ("prompt_tokens", u.prompt_tokens),
                ("completion_tokens", u.completion_tokens),
                ("total_tokens", u.total_tokens),
            ] {
                m.llm_tokens
                    .with_label_values(&[&f.provider, model, consumer, kind])
                    .inc_by(n);
            }
        }
        if let Some(c) = f.cost() {
            m.llm_cost.with_label_values(&[&f.provider, model, consumer]).inc_by(c);
        }
        if let Some(l) = f.latency {
            m.llm_latency
                .with_label_values(&[&f.provider, model, consumer, mode])
                .observe(l.as_secs_f64() * 1000.0);
        }
        if let Some(t) = f.ttft {
            m.llm_ttft
                .with_label_values(&[&f.provider, model, consumer])
                .observe(t.as_secs_f64() * 1000.0);
        }
        if let (Some(l), Some(u)) = (f.latency, f.usage) {
            if u.completion_tokens > 0 {
                let tpot = l.as_secs_f64() * 1000.0 / u.completion_tokens as f64;
                m.llm_tpot.with_label_values(&[&f.provider, model, consumer]).observe(tpot);
            }
        }
    }
    if let Some(f) = &ctx.mcp {
        let method = crate::metrics::Metrics::mcp_method_label(&f.method);
        let tool = f.tool.as_deref().map(|t| m.tool_label(t)).unwrap_or("");
        m.mcp_requests.with_label_values(&[method, tool, f.decision]).inc();
        if f.decision != "allowed" {
            m.mcp_errors.with_label_values(&[f.decision]).inc();
        }
        if let Some(l) = f.latency {
            m.mcp_latency.with_label_values(&[method]).observe(l.as_secs_f64() * 1000.0);
        }
    }
    if let Some(span) = ctx.span.take() {
        let req = session.req_header();
        span.finish(ServerFacts {
            method: req.method.as_str(),
            path: req.uri.path(),
            status,
            route,
            service,
            consumer,
            request_id: &ctx.request_id,
            client_ip: session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip().to_string()),
            error: ctx.error.as_deref().or(e.map(|e| e.etype().as_str())),
            mcp: ctx.mcp.as_ref(),
        });
    }
    if !log.enabled() {
        return;
    }

    let req = session.req_header();
    let mut line = Map::new();
    line.insert("time".into(), json!(rfc3339_now()));
    line.insert("request_id".into(), json!(ctx.request_id));
    line.insert("client_ip".into(), json!(session.client_addr().map(|a| a.to_string())));
    line.insert("method".into(), json!(req.method.as_str()));
    // The path only: a query string may carry a key.
    line.insert("path".into(), json!(req.uri.path()));
    line.insert("status".into(), json!(status));
    line.insert("latency_ms".into(), json!(round3(elapsed.as_secs_f64() * 1000.0)));
    line.insert("route".into(), json!(route));
    line.insert("service".into(), json!(service));
    line.insert("consumer".into(), json!(consumer));
    if let Some(err) = &ctx.error {
        line.insert("error".into(), json!(err));
    } else if let Some(e) = e {
        line.insert("error".into(), json!(e.etype().as_str()));
    }

    if let Some(f) = &ctx.llm {
        let mode = if f.stream { "stream" } else { "non-stream" };
        let mut ai = Map::new();
        ai.insert("provider".into(), json!(f.provider));
        ai.insert("target".into(), json!(f.target));
        ai.insert("request_mode".into(), json!(mode));
        ai.insert("upstream_status".into(), json!(f.upstream_status));
        if !f.failed_attempts.is_empty() {
            ai.insert("failed_attempts".into(), json!(f.failed_attempts));
        }
        if f.client_cancelled {
            ai.insert("client_cancelled".into(), json!(true));
        }
        if f.log_statistics {
            ai.insert("request_model".into(), json!(f.request_model));
            ai.insert("response_model".into(), json!(f.response_model));
            if let Some(u) = f.usage {
                ai.insert(
                    "usage".into(),
                    json!({
                        "prompt_tokens": u.prompt_tokens,
                        "completion_tokens": u.completion_tokens,
                        "total_tokens": u.total_tokens,
                        "cached_tokens": u.cached_tokens,
                        "estimated": f.usage_estimated,
                    }),
                );
            }
            if let Some(c) = f.cost() {
                ai.insert("cost".into(), json!(c));
            }
            if let Some(l) = f.latency {
                ai.insert("latency_ms".into(), json!(round3(l.as_secs_f64() * 1000.0)));
            }
            if let Some(t) = f.ttft {
                ai.insert("ttft_ms".into(), json!(round3(t.as_secs_f64() * 1000.0)));
            }
            if let (Some(l), Some(u)) = (f.latency, f.usage) {
                if u.completion_tokens > 0 {
                    let tpot = l.as_secs_f64() * 1000.0 / u.completion_tokens as f64;
                    ai.insert("time_per_token_ms".into(), json!(round3(tpot)));
                }
            }
        }
        if let Some(p) = &f.payloads {
            ai.insert(
                "payload".into(),
                json!({"request": p.request, "response": p.response, "truncated": p.truncated}),
            );
        }
        line.insert("ai".into(), Value::Object(ai));
    }
    if let Some(f) = &ctx.mcp {
        // The audit record of a tool call: who, which tool, what the gateway
        // decided, and how long the server took. Session ids are bearer
        // secrets and are never logged.
        let mut mcp = Map::new();
        mcp.insert("method".into(), json!(f.method));
        if let Some(t) = &f.tool {
            mcp.insert("tool".into(), json!(t));
        }
        mcp.insert("decision".into(), json!(f.decision));
        if let Some(r) = &f.replica {
            mcp.insert("replica".into(), json!(r));
        }
        if let Some(s) = f.upstream_status {
            mcp.insert("upstream_status".into(), json!(s));
        }
        if let Some(l) = f.latency {
            mcp.insert("latency_ms".into(), json!(round3(l.as_secs_f64() * 1000.0)));
        }
        line.insert("mcp".into(), Value::Object(mcp));
    }
    log.write(Value::Object(line).to_string());
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// UTC timestamp with milliseconds, without pulling in a date crate.
fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
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
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

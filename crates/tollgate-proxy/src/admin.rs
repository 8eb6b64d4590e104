//! The admin listener: /metrics, /health, /ready, /status, /spend.

use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;

use crate::budget::report::{self, SpendFilter};
use crate::budget::Payer;
use crate::gateway::GatewayState;
use crate::metrics::METRICS;
use crate::snapshot::Snapshot;
use crate::vaults::VaultStore;

pub struct AdminApp {
    pub state: Arc<GatewayState>,
    pub started_at: std::time::SystemTime,
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_string();
        match path.as_str() {
            "/metrics" => {
                let mut body = METRICS.render();
                body.extend_from_slice(&target_metrics(&self.state.snapshot.load()));
                body.extend_from_slice(&VaultStore::shared().render_metrics());
                reply(200, "text/plain; version=0.0.4", body)
            }
            "/health" => reply(200, "application/json", br#"{"status":"ok"}"#.to_vec()),
            "/ready" => reply(200, "application/json", br#"{"status":"ready"}"#.to_vec()),
            "/status" => {
                let snap = self.state.snapshot.load();
                let c = &snap.config;
                let body = serde_json::json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "config": {
                        "path": c.source.display().to_string(),
                        "digest": c.digest,
                        "summary": c.summary(),
                    },
                    "reload": self.state.reload.lock().map(|r| r.clone()).unwrap_or_default(),
                    "started_at_unix": self.started_at
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0),
                    "access_log_dropped": self.state.access_log.dropped.load(std::sync::atomic::Ordering::Relaxed),
                    "targets": target_status(&snap),
                    "vaults": VaultStore::shared().status(),
                });
                reply(200, "application/json", body.to_string().into_bytes())
            }
            "/spend" => {
                let query = session.req_header().uri.query().map(str::to_string);
                let snap = self.state.snapshot.load_full();
                let (status, body) = spend(&snap, query.as_deref()).await;
                reply(status, "application/json", body.to_string().into_bytes())
            }
            _ => reply(404, "application/json", br#"{"message":"not found"}"#.to_vec()),
        }
    }
}

/// `GET /spend[?consumer=NAME|group=NAME]`: the ai-budget plugins' budgets
/// for the period in force, with what was spent and what is left.
async fn spend(snap: &Snapshot, query: Option<&str>) -> (u16, serde_json::Value) {
    let filter = match SpendFilter::from_query(query) {
        Ok(f) => f,
        Err(message) => return (400, serde_json::json!({ "message": message })),
    };
    // `consumer=NAME` names a consumer by username or custom_id.
    let consumer = match &filter {
        SpendFilter::Consumer(c) => {
            snap.consumers.iter().find(|k| k.name == *c || k.custom_id.as_deref() == Some(c.as_str()))
        }
        _ => None,
    };
    let payer = consumer.map(|k| Payer { name: &k.name, custom_id: k.custom_id.as_deref(), groups: &k.groups });
    let mut budgets = Vec::new();
    for rt in snap.budgets() {
        match report::budgets(rt, &filter, payer.as_ref()).await {
            Ok(found) => budgets.extend(found),
            Err(e) => return (503, serde_json::json!({ "message": format!("budget store unavailable: {e}") })),
        }
    }
    let missing = match &filter {
        SpendFilter::Consumer(c) if budgets.is_empty() => Some(format!("no budget counts consumer {c:?}")),
        SpendFilter::Group(g) if budgets.is_empty() => Some(format!("no budget counts consumer group {g:?}")),
        _ => None,
    };
    if let Some(message) = missing {
        return (404, serde_json::json!({ "message": message }));
    }
    (200, serde_json::json!({ "budgets": budgets }))
}

/// Each LLM target's balancer state, in Prometheus' text format. Rendered at
/// scrape time from the config in force, so targets removed by a reload
/// disappear with it; labels come from the config only.
fn target_metrics(snap: &Snapshot) -> Vec<u8> {
    use std::fmt::Write;
    let mut healthy = String::new();
    let mut active = String::new();
    let mut probes = String::new();
    let mut open = String::new();
    let mut in_flight = String::new();
    let mut selections = String::new();
    let mut ewma = String::new();
    for ai in snap.ai_proxies() {
        for st in ai.balancer.stats() {
            let labels =
                format!("scope=\"{}\",target=\"{}\",index=\"{}\"", escape(&ai.scope), escape(&st.id), st.index);
            let _ = writeln!(healthy, "ai_target_healthy{{{labels}}} {}", u8::from(st.healthy));
            if let Some(up) = st.active_healthy {
                let _ = writeln!(active, "ai_target_active_healthy{{{labels}}} {}", u8::from(up));
            }
            if let Some(p) = st.probes {
                for (result, n) in [
                    ("success", p.successes),
                    ("tcp_failure", p.tcp_failures),
                    ("timeout", p.timeouts),
                    ("http_failure", p.http_failures),
                ] {
                    let _ =
                        writeln!(probes, "ai_target_active_health_checks_total{{{labels},result=\"{result}\"}} {n}");
                }
            }
            let _ = writeln!(open, "ai_target_circuit_open{{{labels}}} {}", u8::from(st.circuit_open));
            let _ = writeln!(in_flight, "ai_target_in_flight{{{labels}}} {}", st.in_flight);
            let _ = writeln!(selections, "ai_target_selections_total{{{labels}}} {}", st.selections);
            if let Some(ms) = st.latency_ewma_ms {
                let _ = writeln!(ewma, "ai_target_latency_ewma_ms{{{labels}}} {ms}");
            }
        }
    }
    let mut out = String::new();
    for (name, kind, help, body) in [
        (
            "ai_target_healthy",
            "gauge",
            "1 while the target can be picked (circuit closed, not cooling down, passing its active health check)",
            healthy,
        ),
        (
            "ai_target_active_healthy",
            "gauge",
            "1 while the target passes its active health check (targets with healthchecks.active only)",
            active,
        ),
        (
            "ai_target_active_health_checks_total",
            "counter",
            "Active health probes of the target's endpoint by result (success, tcp_failure, timeout, http_failure)",
            probes,
        ),
        ("ai_target_circuit_open", "gauge", "1 while the target's circuit breaker is open", open),
        ("ai_target_in_flight", "gauge", "Requests in flight to the target", in_flight),
        (
            "ai_target_selections_total",
            "counter",
            "Times the balancer picked the target since the config was loaded",
            selections,
        ),
        ("ai_target_latency_ewma_ms", "gauge", "Peak EWMA of the target's latency (lowest-latency balancing)", ewma),
    ] {
        if body.is_empty() {
            continue;
        }
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        out.push_str(&body);
    }
    out.into_bytes()
}

/// Each LLM target's balancer state for /status.
fn target_status(snap: &Snapshot) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for ai in snap.ai_proxies() {
        for st in ai.balancer.stats() {
            out.push(serde_json::json!({
                "scope": ai.scope,
                "target": st.id,
                "algorithm": ai.config.algorithm,
                "weight": st.weight,
                "healthy": st.healthy,
                "active_healthy": st.active_healthy,
                "active_health_checks": st.probes.map(|p| serde_json::json!({
                    "success": p.successes,
                    "tcp_failure": p.tcp_failures,
                    "timeout": p.timeouts,
                    "http_failure": p.http_failures,
                })),
                "circuit_open": st.circuit_open,
                "in_flight": st.in_flight,
                "selections": st.selections,
                "successes": st.successes,
                "failures": st.failures,
                "latency_ewma_ms": st.latency_ewma_ms,
            }));
        }
    }
    out
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut r = Response::new(body);
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    let len = r.body().len();
    r.headers_mut().insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
    r
}

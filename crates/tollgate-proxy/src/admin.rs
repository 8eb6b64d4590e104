//! The admin listener: /metrics, /health, /ready, /status.

use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;

use crate::gateway::GatewayState;
use crate::metrics::METRICS;

pub struct AdminApp {
    pub state: Arc<GatewayState>,
    pub started_at: std::time::SystemTime,
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_string();
        match path.as_str() {
            "/metrics" => reply(200, "text/plain; version=0.0.4", METRICS.render()),
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
                });
                reply(200, "application/json", body.to_string().into_bytes())
            }
            _ => reply(404, "application/json", br#"{"message":"not found"}"#.to_vec()),
        }
    }
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

//! SIGHUP: parse, validate, resolve secrets, build, then swap atomically. A bad
//! file changes nothing; the reason is logged, counted and shown on /status.
//! Requests in flight keep the snapshot they started with (they hold an Arc).

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use tokio::signal::unix::{signal, SignalKind};
use tollgate_proxy::GatewayState;

pub struct Reloader {
    pub path: PathBuf,
    pub state: Arc<GatewayState>,
}

impl Reloader {
    pub fn reload(&self) {
        match crate::load(&self.path, &self.state) {
            Ok(snap) => {
                let summary = snap.config.summary();
                self.state.install(snap);
                tracing::info!(config = %self.path.display(), %summary, "config reloaded");
            }
            Err(e) => {
                tracing::error!(config = %self.path.display(), "config reload rejected, keeping the running config: {e}");
                self.state.reload_failed(e);
            }
        }
    }
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot listen for SIGHUP, reload disabled: {e}");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    // Parsing and building are quick and synchronous; a blocking
                    // thread keeps them off the async workers anyway.
                    let path = self.path.clone();
                    let state = self.state.clone();
                    let r = Reloader { path, state };
                    let _ = tokio::task::spawn_blocking(move || r.reload()).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

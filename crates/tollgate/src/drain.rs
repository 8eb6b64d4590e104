//! SIGTERM: Pingora stops accepting and then waits out the whole grace period,
//! even when nothing is left to serve. This watcher ends the process as soon as
//! the last in-flight request (streams included) has finished and the last
//! client connection has closed; Pingora's grace period remains the upper bound.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use tollgate_proxy::GatewayState;

pub struct Drainer {
    pub state: Arc<GatewayState>,
}

#[async_trait]
impl BackgroundService for Drainer {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        if shutdown.changed().await.is_err() {
            return;
        }
        tracing::info!("draining: waiting for in-flight requests to finish");
        // A connection accepted just before the listeners closed may still be
        // sending its header: zero must hold across two polls, after a pause.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut idle_polls = 0;
        while idle_polls < 2 {
            // Open connections count too: one whose request header has started
            // is read to its end and served; idle ones close at shutdown.
            if self.state.in_flight.load(Ordering::Acquire) == 0 && self.state.connections.total() == 0 {
                idle_polls += 1;
            } else {
                idle_polls = 0;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Let the access-log writer catch up with the last lines.
        self.state.access_log.flush(Duration::from_secs(2));
        tollgate_proxy::otel::flush(Duration::from_secs(2));
        tracing::info!("drained: exiting");
        std::process::exit(0);
    }
}

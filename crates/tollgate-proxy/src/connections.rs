//! The proxy's client connections: how many each IP holds open, the cap on
//! that (`server.max_connections_per_ip`), and the total that the SIGTERM
//! drain waits for. Pingora's HTTP app is wrapped, so a connection is counted
//! from the end of its handshake to its close, across HTTP/1 keep-alive
//! requests and HTTP/2 streams alike.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use once_cell::sync::Lazy;
use pingora_core::apps::ServerApp;
use pingora_core::protocols::Stream;
use pingora_core::server::ShutdownWatch;
use prometheus::{register_int_counter_with_registry, register_int_gauge_with_registry, IntCounter, IntGauge};
use rustc_hash::FxHashMap;

use crate::metrics::METRICS;

/// Connections open now, in total and per client IP.
#[derive(Default)]
pub struct OpenConnections {
    total: AtomicUsize,
    per_ip: Mutex<FxHashMap<IpAddr, u32>>,
}

/// One counted connection; dropping it closes the count.
pub struct Held<'a> {
    open: &'a OpenConnections,
    ip: Option<IpAddr>,
}

impl OpenConnections {
    /// Client connections open now.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// Counts a new connection from `ip`, unless that IP already holds `cap`
    /// of them (0: no cap). Connections without an IP (Unix sockets) are
    /// counted in the total only.
    pub fn open(&self, ip: Option<IpAddr>, cap: u32) -> Option<Held<'_>> {
        if let Some(ip) = ip {
            // A poisoned lock only means another connection panicked while
            // counting; the map is still whole.
            let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
            let held = per_ip.entry(ip).or_insert(0);
            if cap != 0 && *held >= cap {
                return None;
            }
            *held += 1;
        }
        self.total.fetch_add(1, Ordering::AcqRel);
        EDGE.open.inc();
        Some(Held { open: self, ip })
    }

    /// Connections `ip` holds open now.
    pub fn of(&self, ip: IpAddr) -> u32 {
        self.per_ip.lock().unwrap_or_else(|p| p.into_inner()).get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            let mut per_ip = self.open.per_ip.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(held) = per_ip.get_mut(&ip) {
                *held -= 1;
                if *held == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
        self.open.total.fetch_sub(1, Ordering::AcqRel);
        EDGE.open.dec();
    }
}

/// The proxy's metrics about connections and requests that never reach the
/// request phases.
pub struct EdgeMetrics {
    open: IntGauge,
    refused: IntCounter,
    pub header_failures_400: IntCounter,
    pub header_failures_408: IntCounter,
}

pub static EDGE: Lazy<EdgeMetrics> = Lazy::new(|| {
    let r = &METRICS.registry;
    let failures = |status: &str| {
        register_int_counter_with_registry!(
            prometheus::Opts::new(
                "tollgate_request_header_failures_total",
                "Requests whose header was malformed (400) or did not arrive within client_header_timeout (408)"
            )
            .const_label("status", status),
            r
        )
    };
    #[allow(clippy::expect_used)] // fixed names and help texts: cannot fail but by a bug
    EdgeMetrics {
        open: register_int_gauge_with_registry!("tollgate_open_connections", "Client connections open on the proxy", r)
            .expect("metric"),
        refused: register_int_counter_with_registry!(
            "tollgate_connections_refused_total",
            "Client connections closed at once: their IP already held server.max_connections_per_ip",
            r
        )
        .expect("metric"),
        header_failures_400: failures("400").expect("metric"),
        header_failures_408: failures("408").expect("metric"),
    }
});

/// Pingora's HTTP app behind the per-IP cap: a connection over the cap is
/// closed before its first byte is read; every other one is counted while
/// the app serves it.
pub struct ConnectionGate<A> {
    pub app: Arc<A>,
    pub open: Arc<OpenConnections>,
    /// The cap in force (the config's, which a reload may change).
    pub cap: Box<dyn Fn() -> u32 + Send + Sync>,
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for ConnectionGate<A> {
    async fn process_new(self: &Arc<Self>, stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        let ip = stream.get_socket_digest().and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        let cap = (self.cap)();
        let Some(_held) = self.open.open(ip, cap) else {
            EDGE.refused.inc();
            tracing::debug!(client_ip = ?ip, cap, "connection refused: server.max_connections_per_ip");
            return None;
        };
        self.app.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.app.cleanup().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ip_at_its_cap_is_refused_until_one_of_its_connections_closes() {
        let open = OpenConnections::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = open.open(Some(a), 2).expect("first");
        let _second = open.open(Some(a), 2).expect("second");
        assert!(open.open(Some(a), 2).is_none(), "a third from the same IP");
        let _other = open.open(Some(b), 2).expect("another IP has its own count");
        assert_eq!((open.of(a), open.total()), (2, 3));
        drop(first);
        assert_eq!((open.of(a), open.total()), (1, 2));
        assert!(open.open(Some(a), 2).is_some(), "room again");
    }

    #[test]
    fn no_cap_counts_without_refusing_and_forgets_an_ip_at_zero() {
        let open = OpenConnections::default();
        let ip: IpAddr = "::1".parse().unwrap();
        let held: Vec<_> = (0..100).map(|_| open.open(Some(ip), 0).expect("no cap")).collect();
        let unix = open.open(None, 1).expect("no IP: never capped");
        assert_eq!((open.of(ip), open.total()), (100, 101));
        drop(held);
        drop(unix);
        assert_eq!(open.total(), 0);
        assert!(open.per_ip.lock().unwrap().is_empty(), "an IP with no connection left is forgotten");
    }
}

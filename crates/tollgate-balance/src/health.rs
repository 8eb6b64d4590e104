//! Active health checks (Kong's `healthchecks.active`) on pingora-load-balancing.
//!
//! pingora-load-balancing owns the health state: its `HealthRegistry` keeps one
//! `Health` per backend, its `Backends::run_health_check` runs one pass over them,
//! and its consecutive-success and consecutive-failure thresholds flip a backend
//! between healthy and unhealthy. The probe itself is one of its checks
//! (`TcpHealthCheck`, `HttpHealthCheck`), built by the caller with the target's
//! TLS settings.
//!
//! What is wrapped, and why (`ProbeCheck`, the `HealthCheck` registered on the
//! registry):
//! - A target's backend address is an identity, not where it lives (see
//!   `selector`), and its host may be a name. pingora's checks connect to
//!   `Backend::addr` and `Backend::new` only parses socket addresses (resolving a
//!   name there would block), so the wrapper resolves the target's host through an
//!   asynchronous [`Resolve`] on every probe and hands the inner check a backend at
//!   the resolved address.
//! - Targets at one endpoint share one probe and one health state: the registry is
//!   built with an equivalence key (`HealthRegistry::with_equivalence`) that maps
//!   each target to its probe, so two models at api.openai.com cost one probe per
//!   interval and go down together.
//! - The whole probe (resolution, connect, TLS, request, answer) is bounded by the
//!   configured timeout, counted by kind (Kong's successes, TCP failures, timeouts,
//!   HTTP failures) for metrics, and every flip is mirrored into the targets'
//!   state, which the pick path reads with one atomic load.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora_core::protocols::l4::socket::SocketAddr as PeerAddr;
use pingora_error::{Error, ErrorType};
use pingora_load_balancing::health_check::HealthCheck;
use pingora_load_balancing::{Backend, Extensions};

use crate::selector::TargetIndex;
use crate::target::{ProbeResult, TargetState};

/// Resolves a host name without blocking (the proxy's DNS cache).
#[async_trait]
pub trait Resolve: Send + Sync {
    async fn resolve(&self, host: &str, port: u16) -> io::Result<SocketAddr>;
}

/// Resolves IP literals only: for tests and for targets given by address.
#[derive(Debug, Default, Clone, Copy)]
pub struct LiteralResolver;

#[async_trait]
impl Resolve for LiteralResolver {
    async fn resolve(&self, host: &str, port: u16) -> io::Result<SocketAddr> {
        let ip = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{host} is not an IP address")))?;
        Ok(SocketAddr::new(ip, port))
    }
}

/// One endpoint to probe.
pub struct Probe {
    /// Resolved before every probe.
    pub host: String,
    pub port: u16,
    /// The pingora check run against the resolved address. Its own thresholds are
    /// not used: [`ActiveChecks::successes`] and [`ActiveChecks::failures`] are.
    pub check: Box<dyn HealthCheck + Send + Sync>,
}

/// Active health checks of one balancer.
pub struct ActiveChecks {
    /// Time between the end of one pass over the probes and the start of the next.
    pub interval: Duration,
    /// Bound on one whole probe.
    pub timeout: Duration,
    /// Consecutive successful probes that make an unhealthy target healthy.
    pub successes: usize,
    /// Consecutive failed probes that make a healthy target unhealthy.
    pub failures: usize,
    /// Probe every endpoint at once (else one after another).
    pub parallel: bool,
    /// The distinct endpoints.
    pub probes: Vec<Probe>,
    /// Target `i` is probed by `probes[probe_of[i]]`.
    pub probe_of: Vec<usize>,
    pub resolver: Arc<dyn Resolve>,
}

impl std::fmt::Debug for ActiveChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveChecks")
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("successes", &self.successes)
            .field("failures", &self.failures)
            .field("probes", &self.probes.iter().map(|p| format!("{}:{}", p.host, p.port)).collect::<Vec<_>>())
            .field("probe_of", &self.probe_of)
            .finish_non_exhaustive()
    }
}

/// Active checks that cannot work: a zero interval or threshold, or a target
/// without a probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidChecks(pub String);

impl std::fmt::Display for InvalidChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid active health checks: {}", self.0)
    }
}

impl std::error::Error for InvalidChecks {}

impl ActiveChecks {
    pub(crate) fn validate(&self, targets: usize) -> Result<(), InvalidChecks> {
        let bad = |m: &str| Err(InvalidChecks(m.to_string()));
        if self.interval.is_zero() {
            return bad("the interval must be positive");
        }
        if self.timeout.is_zero() {
            return bad("the timeout must be positive");
        }
        // pingora flips on the first observation when a threshold is 0; say 1.
        if self.successes == 0 || self.failures == 0 {
            return bad("the success and failure thresholds must be at least 1");
        }
        if self.probe_of.len() != targets {
            return bad("every target needs a probe");
        }
        if self.probe_of.iter().any(|&p| p >= self.probes.len()) {
            return bad("a target names a probe that does not exist");
        }
        Ok(())
    }
}

/// The `HealthCheck` registered on a balancer's registry: resolves, bounds and
/// counts each probe, and mirrors each flip into the targets it covers.
pub(crate) struct ProbeCheck {
    probes: Vec<Probe>,
    probe_of: Arc<[usize]>,
    /// Targets by probe.
    members: Vec<Vec<usize>>,
    targets: Box<[Arc<TargetState>]>,
    ids: Box<[String]>,
    timeout: Duration,
    successes: usize,
    failures: usize,
    resolver: Arc<dyn Resolve>,
}

impl ProbeCheck {
    pub(crate) fn new(
        checks: ActiveChecks,
        probe_of: Arc<[usize]>,
        targets: Box<[Arc<TargetState>]>,
        ids: Box<[String]>,
    ) -> Self {
        let mut members = vec![Vec::new(); checks.probes.len()];
        for (t, &p) in probe_of.iter().enumerate() {
            members[p].push(t);
        }
        ProbeCheck {
            probes: checks.probes,
            probe_of,
            members,
            targets,
            ids,
            timeout: checks.timeout,
            successes: checks.successes,
            failures: checks.failures,
            resolver: checks.resolver,
        }
    }

    fn probe_index(&self, backend: &Backend) -> Option<usize> {
        let t = backend.ext.get::<TargetIndex>()?;
        self.probe_of.get(t.0).copied()
    }

    async fn probe(&self, probe: &Probe) -> pingora_error::Result<()> {
        let addr = self
            .resolver
            .resolve(&probe.host, probe.port)
            .await
            .map_err(|e| Error::because(ErrorType::ConnectNoRoute, format!("resolving {}", probe.host), e))?;
        let real = Backend { addr: PeerAddr::Inet(addr), weight: 1, ext: Extensions::new() };
        probe.check.check(&real).await
    }
}

/// Kong's counter for a failed probe.
fn classify(e: &Error) -> ProbeResult {
    use ErrorType::*;
    match e.etype() {
        ConnectTimedout | ReadTimedout | WriteTimedout | TLSHandshakeTimedout => ProbeResult::Timeout,
        CustomCode(..) | HTTPStatus(_) => ProbeResult::HttpFailure,
        _ => ProbeResult::TcpFailure,
    }
}

const PROBE_TIMED_OUT: ErrorType = ErrorType::Custom("ProbeTimedout");

#[async_trait]
impl HealthCheck for ProbeCheck {
    async fn check(&self, target: &Backend) -> pingora_error::Result<()> {
        let Some(p) = self.probe_index(target) else {
            return Error::e_explain(ErrorType::InternalError, "not a backend of this balancer");
        };
        let probe = &self.probes[p];
        let (outcome, result) = match tokio::time::timeout(self.timeout, self.probe(probe)).await {
            Ok(Ok(())) => (Ok(()), ProbeResult::Success),
            Ok(Err(e)) => {
                let result = classify(&e);
                (Err(e), result)
            }
            Err(_) => (
                Error::e_explain(PROBE_TIMED_OUT, format!("no answer within {:?}", self.timeout)),
                ProbeResult::Timeout,
            ),
        };
        for &t in &self.members[p] {
            self.targets[t].count_probe(result);
        }
        outcome
    }

    fn health_threshold(&self, success: bool) -> usize {
        if success {
            self.successes
        } else {
            self.failures
        }
    }

    /// Called by pingora after a flip, for the backend it probed, which stands for
    /// every target sharing its probe.
    async fn health_status_change(&self, target: &Backend, healthy: bool) {
        let Some(p) = self.probe_index(target) else {
            return;
        };
        for &t in &self.members[p] {
            self.targets[t].set_active_healthy(healthy);
        }
        let probe = &self.probes[p];
        let targets: Vec<&str> = self.members[p].iter().map(|&t| self.ids[t].as_str()).collect();
        if healthy {
            tracing::info!(endpoint = %format!("{}:{}", probe.host, probe.port), ?targets, "active health check: targets back in rotation");
        } else {
            tracing::warn!(endpoint = %format!("{}:{}", probe.host, probe.port), ?targets, "active health check failed: targets out of rotation");
        }
    }

    fn backend_summary(&self, target: &Backend) -> String {
        match self.probe_index(target) {
            Some(p) => format!("{}:{}", self.probes[p].host, self.probes[p].port),
            None => format!("{target:?}"),
        }
    }
}

//! The [`Balancer`]: per-request selection over a fixed list of targets, with the
//! targets as a pingora-load-balancing `Backends` and their active health from its
//! health checks.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use pingora_load_balancing::discovery::Static;
use pingora_load_balancing::selection::BackendSelection;
use pingora_load_balancing::{Backend, Backends, HealthRegistry};

use crate::health::{ActiveChecks, InvalidChecks, ProbeCheck};
use crate::pool::Pool;
use crate::selector::{target_backend, Selector, TargetIndex};
use crate::target::{Avail, TargetState};
use crate::Clock;
use crate::{
    duration_ms, millis, Algorithm, BreakerConfig, LatencyStrategy, Success, TargetInfo, LATENCY_TAU, USAGE_TAU,
};

/// Selects targets for one `ai-proxy-advanced` plugin instance. `Send + Sync`; share
/// it behind an `Arc`. The pick path takes at most one short lock (the round-robin
/// state); the scoring algorithms read only atomics.
pub struct Balancer {
    infos: Box<[TargetInfo]>,
    pool: Arc<Pool>,
    /// The targets as pingora backends (static discovery), and their active health.
    backends: Backends,
    /// Built by pingora's discovery update from `backends`.
    selector: Arc<Selector>,
    breaker: BreakerConfig,
    fail_timeout_ms: u64,
    /// With active health checks: how often, and whether endpoints are probed at once.
    active: Option<(Duration, bool)>,
}

/// A picked target. Holds the target's in-flight count until dropped, so keep it
/// for the whole exchange (least-connections, lowest-latency and lowest-usage read
/// that count).
pub struct Pick {
    index: usize,
    trial: bool,
    target: Arc<TargetState>,
}

impl Pick {
    /// The target's index in the balancer's target list.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Whether this request is the half-open circuit's trial.
    pub fn is_trial(&self) -> bool {
        self.trial
    }
}

impl Drop for Pick {
    fn drop(&mut self) {
        self.target.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for Pick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pick").field("index", &self.index).field("trial", &self.trial).finish()
    }
}

/// Active health probes of one target so far, by Kong's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeCounts {
    pub successes: u64,
    pub tcp_failures: u64,
    pub timeouts: u64,
    pub http_failures: u64,
}

/// A target's state, for metrics and `/status`.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetStats {
    pub index: usize,
    pub id: String,
    pub description: Option<String>,
    pub weight: u32,
    /// Selectable now: circuit closed or due for its trial, not cooling down, and
    /// not failing its active health check.
    pub healthy: bool,
    /// The active health check's verdict; `None` without active checks.
    pub active_healthy: Option<bool>,
    /// Active probes so far; `None` without active checks.
    pub probes: Option<ProbeCounts>,
    /// Open or half-open.
    pub circuit_open: bool,
    /// Clock time (ms) when an open circuit admits its next trial.
    pub circuit_open_until_ms: Option<u64>,
    /// Clock time (ms) when a cool-down ends.
    pub cooling_until_ms: Option<u64>,
    pub in_flight: u64,
    pub selections: u64,
    pub successes: u64,
    pub failures: u64,
    /// Peak EWMA of the latency score: milliseconds end to end, or milliseconds per
    /// output token under `LowestLatency { strategy: Tpot }`.
    pub latency_ewma_ms: Option<f64>,
    /// Decayed usage by the usage strategy (total tokens unless lowest-usage says
    /// otherwise).
    pub usage: f64,
}

impl fmt::Debug for Balancer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balancer")
            .field("targets", &self.infos)
            .field("algorithm", &self.pool.algorithm)
            .field("breaker", &self.breaker)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl Balancer {
    /// A balancer without active health checks.
    pub fn new(targets: Vec<TargetInfo>, algorithm: Algorithm, breaker: BreakerConfig, clock: Arc<dyn Clock>) -> Self {
        Self::build(targets, algorithm, breaker, clock, None)
    }

    /// A balancer whose targets are also probed by `checks`; run the probes with
    /// [`Balancer::run_health_check`] every [`Balancer::health_check_interval`].
    pub fn with_active_checks(
        targets: Vec<TargetInfo>,
        algorithm: Algorithm,
        breaker: BreakerConfig,
        clock: Arc<dyn Clock>,
        checks: ActiveChecks,
    ) -> Result<Self, InvalidChecks> {
        checks.validate(targets.len())?;
        Ok(Self::build(targets, algorithm, breaker, clock, Some(checks)))
    }

    fn build(
        targets: Vec<TargetInfo>,
        algorithm: Algorithm,
        breaker: BreakerConfig,
        clock: Arc<dyn Clock>,
        checks: Option<ActiveChecks>,
    ) -> Self {
        let infos: Box<[TargetInfo]> = targets
            .into_iter()
            .map(|mut t| {
                t.weight = t.weight.max(1);
                t
            })
            .collect();
        let weights: Box<[u32]> = infos.iter().map(|t| t.weight).collect();
        // Duplicate ids get their occurrence number, so every target has its own
        // points on the consistent-hashing ring.
        let identities: Vec<Vec<u8>> = infos
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let earlier = infos[..i].iter().filter(|o| o.id == t.id).count();
                let mut id = t.id.clone().into_bytes();
                if earlier > 0 {
                    id.extend_from_slice(format!("\0{earlier}").as_bytes());
                }
                id
            })
            .collect();
        let pool = Arc::new(Pool::new(weights, &identities, algorithm, clock));

        // Targets probed by one endpoint share one health state; without checks
        // each target is its own.
        let probe_of: Arc<[usize]> = match &checks {
            Some(c) => c.probe_of.iter().copied().collect(),
            None => (0..infos.len()).collect(),
        };
        let key_of = Arc::clone(&probe_of);
        let registry = HealthRegistry::with_equivalence(move |b: &Backend| {
            b.ext.get::<TargetIndex>().and_then(|t| key_of.get(t.0)).map_or(u64::MAX, |&p| p as u64)
        });
        let active = checks.as_ref().map(|c| (c.interval, c.parallel));
        if let Some(checks) = checks {
            let ids = infos.iter().map(|t| t.id.clone()).collect();
            registry.set_health_check(Box::new(ProbeCheck::new(checks, probe_of, pool.targets.clone(), ids)));
        }
        let set: BTreeSet<Backend> = infos.iter().enumerate().map(|(i, t)| target_backend(i, t.weight)).collect();
        let backends = Backends::new_with_health_registry(Static::new(set.clone()), Arc::new(registry));
        // Static discovery answers at once; the update registers the backends with
        // the health registry and builds the selector from what it discovered.
        let mut selector = None;
        let updated =
            backends.update(|found| selector = Some(Selector::build_with_config(&found, &pool))).now_or_never();
        if !matches!(updated, Some(Ok(()))) {
            tracing::error!(
                "static discovery of the balancer's targets did not complete; active health checks will not see them"
            );
        }
        let selector = Arc::new(selector.unwrap_or_else(|| Selector::build_with_config(&set, &pool)));
        Self { infos, pool, backends, selector, breaker, fail_timeout_ms: millis(breaker.fail_timeout), active }
    }

    pub fn len(&self) -> usize {
        self.pool.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pool.is_empty()
    }

    pub fn targets(&self) -> &[TargetInfo] {
        &self.infos
    }

    pub fn algorithm(&self) -> Algorithm {
        self.pool.algorithm
    }

    /// The targets as pingora-load-balancing backends, with their active health
    /// (`Backends::ready`).
    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    /// The selection (pingora-load-balancing's `BackendSelection`) picks go through.
    pub fn selector(&self) -> &Arc<Selector> {
        &self.selector
    }

    /// How often [`Balancer::run_health_check`] should run; `None` without active
    /// health checks.
    pub fn health_check_interval(&self) -> Option<Duration> {
        self.active.map(|(interval, _)| interval)
    }

    /// One pass of the active health checks over every endpoint (pingora's
    /// `Backends::run_health_check`); a target failing its check is unavailable
    /// until it passes again. Does nothing without active checks. Dropping the
    /// future abandons the pass; unreported targets keep their health.
    pub async fn run_health_check(&self) {
        if let Some((_, parallel)) = self.active {
            self.backends.run_health_check(parallel).await;
        }
    }

    /// The next target to try, skipping `tried` (targets that already failed in this
    /// request), open circuits, targets cooling down and targets failing their
    /// active health check. `hash_key` feeds consistent hashing (ignored
    /// otherwise). `None`: every target is unavailable.
    ///
    /// A target whose open circuit has timed out is a candidate like any other; if it
    /// is chosen, this pick becomes its single half-open trial ([`Pick::is_trial`]).
    pub fn pick(&self, hash_key: Option<&[u8]>, tried: &[usize]) -> Option<Pick> {
        let mut candidates = self.selector.candidates(hash_key, tried);
        let now = candidates.now();
        // A candidate whose trial another request claimed between the look and the
        // claim is skipped: the iterator never yields a target twice.
        while let Some(idx) = candidates.next_index() {
            let target = &self.pool.targets[idx];
            if let Some(trial) = target.claim(now, self.fail_timeout_ms) {
                target.in_flight.fetch_add(1, Ordering::Relaxed);
                target.selections.fetch_add(1, Ordering::Relaxed);
                return Some(Pick { index: idx, trial, target: Arc::clone(target) });
            }
        }
        None
    }

    /// Reports a successful exchange: closes the target's circuit and feeds the
    /// latency and usage statistics. Unknown indices are ignored.
    pub fn success(&self, idx: usize, s: Success) {
        let Some(target) = self.pool.targets.get(idx) else {
            return;
        };
        let now = self.pool.clock.now_ms();
        target.record_success();
        let latency = match self.pool.latency_strategy {
            LatencyStrategy::E2e => Some(duration_ms(s.latency)),
            LatencyStrategy::Tpot => s.tpot_ms(),
        };
        let usage = s.usage(self.pool.usage_strategy);
        target.record_samples(now, latency, usage, duration_ms(LATENCY_TAU), duration_ms(USAGE_TAU));
        if usage.is_finite() && usage >= 0.0 {
            // Racy read-modify-write: a lost update only delays the mean a little.
            let m = f64::from_bits(self.pool.per_request_bits.load(Ordering::Relaxed));
            let m = if m.is_nan() { usage } else { m + 0.1 * (usage - m) };
            self.pool.per_request_bits.store(m.to_bits(), Ordering::Relaxed);
        }
    }

    /// Reports a failed exchange (one the failover criteria count): counts toward
    /// `max_fails` within `fail_timeout`, and re-opens a half-open circuit.
    pub fn failure(&self, idx: usize) {
        if let Some(target) = self.pool.targets.get(idx) {
            target.record_failure(self.pool.clock.now_ms(), self.breaker.max_fails, self.fail_timeout_ms);
        }
    }

    /// Makes a target unavailable for `for_` (a 429's `Retry-After`), independently
    /// of its circuit; a longer cool-down already running is kept.
    pub fn cool_down(&self, idx: usize, for_: Duration) {
        if let Some(target) = self.pool.targets.get(idx) {
            target.cool_down(self.pool.clock.now_ms(), millis(for_));
        }
    }

    /// Whether `idx` could be picked now (ignoring `tried`).
    pub fn is_available(&self, idx: usize) -> bool {
        let now = self.pool.clock.now_ms();
        self.pool.targets.get(idx).is_some_and(|t| t.avail(now) != Avail::Unavailable)
    }

    pub fn stats(&self) -> Vec<TargetStats> {
        let now = self.pool.clock.now_ms();
        let usage_tau = duration_ms(USAGE_TAU);
        let active = self.active.is_some();
        self.pool
            .targets
            .iter()
            .zip(self.infos.iter())
            .enumerate()
            .map(|(index, (t, info))| {
                let open_until = t.circuit_open_until();
                TargetStats {
                    index,
                    id: info.id.clone(),
                    description: info.description.clone(),
                    weight: info.weight,
                    healthy: t.avail(now) != Avail::Unavailable,
                    active_healthy: active.then(|| t.active_healthy()),
                    probes: active.then(|| {
                        let [successes, tcp_failures, timeouts, http_failures] = t.probe_counts();
                        ProbeCounts { successes, tcp_failures, timeouts, http_failures }
                    }),
                    circuit_open: open_until.is_some(),
                    circuit_open_until_ms: open_until,
                    cooling_until_ms: t.cooling_until(now),
                    in_flight: t.in_flight(),
                    selections: t.selections.load(Ordering::Relaxed),
                    successes: t.successes.load(Ordering::Relaxed),
                    failures: t.failures.load(Ordering::Relaxed),
                    latency_ewma_ms: t.latency(),
                    usage: t.usage(now, usage_tau),
                }
            })
            .collect()
    }
}

//! The [`Balancer`]: per-request selection over a fixed list of targets.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::ring::{hash32, Ring};
use crate::target::{Avail, TargetState};
use crate::wrr::SmoothWrr;
use crate::{
    duration_ms, millis, Algorithm, BreakerConfig, LatencyStrategy, Success, TargetInfo,
    UsageStrategy, EXPLORE_EVERY, LATENCY_TAU, USAGE_TAU,
};

/// Selects targets for one `ai-proxy-advanced` plugin instance. `Send + Sync`; share
/// it behind an `Arc`. The pick path takes at most one short lock (the round-robin
/// state); the scoring algorithms read only atomics.
pub struct Balancer {
    infos: Box<[TargetInfo]>,
    targets: Box<[Arc<TargetState>]>,
    weights: Box<[u32]>,
    algorithm: Algorithm,
    latency_strategy: LatencyStrategy,
    usage_strategy: UsageStrategy,
    breaker: BreakerConfig,
    fail_timeout_ms: u64,
    clock: Arc<dyn Clock>,
    wrr: SmoothWrr,
    /// Consistent hashing only.
    ring: Option<Ring>,
    /// Priority only: target indices grouped by weight, highest weight first.
    groups: Box<[Box<[usize]>]>,
    /// Picks so far, for tie rotation and exploration.
    ticks: AtomicU64,
    /// Mean usage of one request over all targets (f64 bits, NaN when unknown): the
    /// in-flight charge of a target that has not completed a request yet.
    per_request_bits: AtomicU64,
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
        f.debug_struct("Pick")
            .field("index", &self.index)
            .field("trial", &self.trial)
            .finish()
    }
}

/// A target's state, for metrics and `/status`.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetStats {
    pub index: usize,
    pub id: String,
    pub description: Option<String>,
    pub weight: u32,
    /// Selectable now: circuit closed or due for its trial, and not cooling down.
    pub healthy: bool,
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
            .field("algorithm", &self.algorithm)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl Balancer {
    pub fn new(
        targets: Vec<TargetInfo>,
        algorithm: Algorithm,
        breaker: BreakerConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let infos: Box<[TargetInfo]> = targets
            .into_iter()
            .map(|mut t| {
                t.weight = t.weight.max(1);
                t
            })
            .collect();
        let weights: Box<[u32]> = infos.iter().map(|t| t.weight).collect();
        let ring = matches!(algorithm, Algorithm::ConsistentHashing).then(|| {
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
            Ring::new(&identities, &weights)
        });
        let groups = if matches!(algorithm, Algorithm::Priority) {
            let mut levels: Vec<u32> = weights.to_vec();
            levels.sort_unstable_by(|a, b| b.cmp(a));
            levels.dedup();
            levels
                .into_iter()
                .map(|w| (0..weights.len()).filter(|&i| weights[i] == w).collect())
                .collect()
        } else {
            Box::default()
        };
        let latency_strategy = match algorithm {
            Algorithm::LowestLatency { strategy } => strategy,
            _ => LatencyStrategy::E2e,
        };
        let usage_strategy = match algorithm {
            Algorithm::LowestUsage { strategy } => strategy,
            _ => UsageStrategy::TotalTokens,
        };
        Self {
            targets: weights
                .iter()
                .map(|_| Arc::new(TargetState::new()))
                .collect(),
            wrr: SmoothWrr::new(weights.len()),
            infos,
            weights,
            algorithm,
            latency_strategy,
            usage_strategy,
            breaker,
            fail_timeout_ms: millis(breaker.fail_timeout),
            clock,
            ring,
            groups,
            ticks: AtomicU64::new(0),
            per_request_bits: AtomicU64::new(f64::NAN.to_bits()),
        }
    }

    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    pub fn targets(&self) -> &[TargetInfo] {
        &self.infos
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The next target to try, skipping `tried` (targets that already failed in this
    /// request), open circuits and targets cooling down. `hash_key` feeds consistent
    /// hashing (ignored otherwise). `None`: every target is unavailable.
    ///
    /// A target whose open circuit has timed out is a candidate like any other; if it
    /// is chosen, this pick becomes its single half-open trial ([`Pick::is_trial`]).
    pub fn pick(&self, hash_key: Option<&[u8]>, tried: &[usize]) -> Option<Pick> {
        let now = self.clock.now_ms();
        // Targets whose trial another request claimed between our look and our claim.
        // Empty (no allocation) unless that race happens.
        let mut lost: Vec<usize> = Vec::new();
        loop {
            let idx = self.choose(now, hash_key, |i| tried.contains(&i) || lost.contains(&i))?;
            let target = &self.targets[idx];
            match target.claim(now, self.fail_timeout_ms) {
                Some(trial) => {
                    target.in_flight.fetch_add(1, Ordering::Relaxed);
                    target.selections.fetch_add(1, Ordering::Relaxed);
                    return Some(Pick {
                        index: idx,
                        trial,
                        target: Arc::clone(target),
                    });
                }
                None => lost.push(idx),
            }
        }
    }

    /// Reports a successful exchange: closes the target's circuit and feeds the
    /// latency and usage statistics. Unknown indices are ignored.
    pub fn success(&self, idx: usize, s: Success) {
        let Some(target) = self.targets.get(idx) else {
            return;
        };
        let now = self.clock.now_ms();
        target.record_success();
        let latency = match self.latency_strategy {
            LatencyStrategy::E2e => Some(duration_ms(s.latency)),
            LatencyStrategy::Tpot => s.tpot_ms(),
        };
        let usage = s.usage(self.usage_strategy);
        target.record_samples(
            now,
            latency,
            usage,
            duration_ms(LATENCY_TAU),
            duration_ms(USAGE_TAU),
        );
        if usage.is_finite() && usage >= 0.0 {
            // Racy read-modify-write: a lost update only delays the mean a little.
            let m = f64::from_bits(self.per_request_bits.load(Ordering::Relaxed));
            let m = if m.is_nan() {
                usage
            } else {
                m + 0.1 * (usage - m)
            };
            self.per_request_bits.store(m.to_bits(), Ordering::Relaxed);
        }
    }

    /// Reports a failed exchange (one the failover criteria count): counts toward
    /// `max_fails` within `fail_timeout`, and re-opens a half-open circuit.
    pub fn failure(&self, idx: usize) {
        if let Some(target) = self.targets.get(idx) {
            target.record_failure(
                self.clock.now_ms(),
                self.breaker.max_fails,
                self.fail_timeout_ms,
            );
        }
    }

    /// Makes a target unavailable for `for_` (a 429's `Retry-After`), independently
    /// of its circuit; a longer cool-down already running is kept.
    pub fn cool_down(&self, idx: usize, for_: Duration) {
        if let Some(target) = self.targets.get(idx) {
            target.cool_down(self.clock.now_ms(), millis(for_));
        }
    }

    /// Whether `idx` could be picked now (ignoring `tried`).
    pub fn is_available(&self, idx: usize) -> bool {
        let now = self.clock.now_ms();
        self.targets
            .get(idx)
            .is_some_and(|t| t.avail(now) != Avail::Unavailable)
    }

    pub fn stats(&self) -> Vec<TargetStats> {
        let now = self.clock.now_ms();
        let usage_tau = duration_ms(USAGE_TAU);
        self.targets
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

    fn choose(
        &self,
        now: u64,
        hash_key: Option<&[u8]>,
        excluded: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let cand = |i: usize| !excluded(i) && self.targets[i].avail(now) != Avail::Unavailable;
        match self.algorithm {
            Algorithm::RoundRobin => self.wrr.next(&self.weights, cand),
            Algorithm::LeastConnections => self.least_connections(cand),
            Algorithm::LowestLatency { .. } => self.lowest_latency(cand),
            Algorithm::LowestUsage { .. } => self.lowest_usage(now, cand),
            Algorithm::ConsistentHashing => match (hash_key, &self.ring) {
                (Some(key), Some(ring)) => {
                    // Walking a ring whose targets are all unavailable would visit
                    // every point; check first.
                    if !(0..self.targets.len()).any(cand) {
                        return None;
                    }
                    ring.walk(hash32(&[key])).find(|&i| cand(i))
                }
                _ => self.wrr.next(&self.weights, cand),
            },
            Algorithm::Priority => self.groups.iter().find_map(|group| {
                if !group.iter().any(|&i| cand(i)) {
                    return None;
                }
                let w = self.weights[group[0]];
                self.wrr
                    .next(&self.weights, |i| self.weights[i] == w && cand(i))
            }),
        }
    }

    /// nginx `least_conn`: the smallest `in_flight / weight`; ties by smooth WRR.
    fn least_connections(&self, cand: impl Fn(usize) -> bool + Copy) -> Option<usize> {
        let load = |i: usize| {
            (
                u128::from(self.targets[i].in_flight()),
                u128::from(self.weights[i]),
            )
        };
        let mut best: Option<(u128, u128)> = None;
        for i in (0..self.targets.len()).filter(|&i| cand(i)) {
            let (c, w) = load(i);
            if best.is_none_or(|(bc, bw)| c * bw < bc * w) {
                best = Some((c, w));
            }
        }
        let (bc, bw) = best?;
        self.wrr
            .next(&self.weights, |i| {
                cand(i) && {
                    let (c, w) = load(i);
                    c * bw == bc * w
                }
            })
            // In-flight counts moved between the two passes: any candidate will do.
            .or_else(|| self.wrr.next(&self.weights, cand))
    }

    /// The candidate with the lowest `score`, ties broken by a rotating start so equal
    /// targets (all untried, all idle) share the picks. Returns the tick too.
    fn lowest_by(
        &self,
        cand: impl Fn(usize) -> bool,
        score: impl Fn(usize) -> f64,
    ) -> Option<(usize, u64)> {
        let n = self.targets.len();
        if n == 0 {
            return None;
        }
        let tick = self.ticks.fetch_add(1, Ordering::Relaxed);
        let start = (tick % n as u64) as usize;
        let mut best: Option<(usize, f64)> = None;
        for i in (start..n).chain(0..start) {
            if !cand(i) {
                continue;
            }
            let s = score(i);
            if best.is_none_or(|(_, b)| s < b) {
                best = Some((i, s));
            }
        }
        best.map(|(i, _)| (i, tick))
    }

    fn lowest_latency(&self, cand: impl Fn(usize) -> bool + Copy) -> Option<usize> {
        let (best, tick) = self.lowest_by(cand, |i| {
            let t = &self.targets[i];
            let in_flight = t.in_flight();
            match t.latency() {
                Some(ewma) => ewma * (in_flight + 1) as f64 / f64::from(self.weights[i]),
                // Never measured: probe it first, but one probe at a time.
                None if in_flight == 0 => f64::NEG_INFINITY,
                None => f64::INFINITY,
            }
        })?;
        if tick % EXPLORE_EVERY == EXPLORE_EVERY - 1 {
            let stalest = (0..self.targets.len())
                .filter(|&i| i != best && cand(i))
                .min_by_key(|&i| self.targets[i].last_sample());
            if let Some(i) = stalest {
                return Some(i);
            }
        }
        Some(best)
    }

    fn lowest_usage(&self, now: u64, cand: impl Fn(usize) -> bool + Copy) -> Option<usize> {
        let tau = duration_ms(USAGE_TAU);
        let global = f64::from_bits(self.per_request_bits.load(Ordering::Relaxed));
        let fallback = if global.is_nan() {
            1.0
        } else {
            global.max(1e-9)
        };
        self.lowest_by(cand, |i| {
            let t = &self.targets[i];
            let per_request = t.per_request().unwrap_or(fallback);
            (t.usage(now, tau) + t.in_flight() as f64 * per_request) / f64::from(self.weights[i])
        })
        .map(|(i, _)| i)
    }
}

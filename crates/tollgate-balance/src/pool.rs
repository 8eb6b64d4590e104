//! The [`Pool`]: the targets' state and the selection algorithms over it.
//!
//! A pool is what [`Selector`](crate::Selector) (pingora-load-balancing's
//! `BackendSelection`) is configured with and what [`Balancer`](crate::Balancer)
//! reports outcomes into: the selection reads the statistics the outcomes write.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::ring::Ring;
use crate::target::{Avail, TargetState};
use crate::wrr::SmoothWrr;
use crate::Clock;
use crate::{duration_ms, Algorithm, LatencyStrategy, UsageStrategy, EXPLORE_EVERY, USAGE_TAU};

/// Per-target state and the algorithm that chooses among the targets. `Send + Sync`;
/// the choice takes at most one short lock (the round-robin state), the scoring
/// algorithms read only atomics.
pub struct Pool {
    pub(crate) targets: Box<[Arc<TargetState>]>,
    pub(crate) weights: Box<[u32]>,
    pub(crate) algorithm: Algorithm,
    pub(crate) latency_strategy: LatencyStrategy,
    pub(crate) usage_strategy: UsageStrategy,
    pub(crate) clock: Arc<dyn Clock>,
    wrr: SmoothWrr,
    /// Consistent hashing only.
    ring: Option<Ring>,
    /// Priority only: target indices grouped by weight, highest weight first.
    groups: Box<[Box<[usize]>]>,
    /// Picks so far, for tie rotation and exploration.
    ticks: AtomicU64,
    /// Mean usage of one request over all targets (f64 bits, NaN when unknown): the
    /// in-flight charge of a target that has not completed a request yet.
    pub(crate) per_request_bits: AtomicU64,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("weights", &self.weights)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// `weights[i]` (at least 1) and `identities[i]` (unique; hashed onto the
    /// consistent-hashing ring) describe target `i`.
    pub(crate) fn new(
        weights: Box<[u32]>,
        identities: &[Vec<u8>],
        algorithm: Algorithm,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let ring = matches!(algorithm, Algorithm::ConsistentHashing).then(|| Ring::new(identities, &weights));
        let groups = if matches!(algorithm, Algorithm::Priority) {
            let mut levels: Vec<u32> = weights.to_vec();
            levels.sort_unstable_by(|a, b| b.cmp(a));
            levels.dedup();
            levels.into_iter().map(|w| (0..weights.len()).filter(|&i| weights[i] == w).collect()).collect()
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
            targets: weights.iter().map(|_| Arc::new(TargetState::new())).collect(),
            wrr: SmoothWrr::new(weights.len()),
            weights,
            algorithm,
            latency_strategy,
            usage_strategy,
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

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The algorithm's choice among the available targets not `excluded`; `hash`
    /// is the consistent-hashing key's ring position. Only the chosen target's
    /// round-robin state moves (non-candidates keep theirs, as in nginx), which is
    /// why exclusions are applied here, before choosing, and not by the caller
    /// afterwards.
    pub(crate) fn choose(&self, now: u64, hash: Option<u32>, excluded: impl Fn(usize) -> bool) -> Option<usize> {
        let cand = |i: usize| !excluded(i) && self.targets[i].avail(now) != Avail::Unavailable;
        match self.algorithm {
            Algorithm::RoundRobin => self.wrr.next(&self.weights, cand),
            Algorithm::LeastConnections => self.least_connections(cand),
            Algorithm::LowestLatency { .. } => self.lowest_latency(cand),
            Algorithm::LowestUsage { .. } => self.lowest_usage(now, cand),
            Algorithm::ConsistentHashing => match (hash, &self.ring) {
                (Some(hash), Some(ring)) => {
                    // Walking a ring whose targets are all unavailable would visit
                    // every point; check first.
                    if !(0..self.targets.len()).any(cand) {
                        return None;
                    }
                    ring.walk(hash).find(|&i| cand(i))
                }
                _ => self.wrr.next(&self.weights, cand),
            },
            Algorithm::Priority => self.groups.iter().find_map(|group| {
                if !group.iter().any(|&i| cand(i)) {
                    return None;
                }
                let w = self.weights[group[0]];
                self.wrr.next(&self.weights, |i| self.weights[i] == w && cand(i))
            }),
        }
    }

    /// nginx `least_conn`: the smallest `in_flight / weight`; ties by smooth WRR.
    fn least_connections(&self, cand: impl Fn(usize) -> bool + Copy) -> Option<usize> {
        let load = |i: usize| (u128::from(self.targets[i].in_flight()), u128::from(self.weights[i]));
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
    fn lowest_by(&self, cand: impl Fn(usize) -> bool, score: impl Fn(usize) -> f64) -> Option<(usize, u64)> {
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
        let fallback = if global.is_nan() { 1.0 } else { global.max(1e-9) };
        self.lowest_by(cand, |i| {
            let t = &self.targets[i];
            let per_request = t.per_request().unwrap_or(fallback);
            (t.usage(now, tau) + t.in_flight() as f64 * per_request) / f64::from(self.weights[i])
        })
        .map(|(i, _)| i)
    }
}

//! Target selection for tollgate's `ai-proxy-advanced`, on pingora-load-balancing:
//! the targets are its `Backends`, tollgate's algorithms are its `BackendSelection`,
//! and its health checks give active health. The selection itself does no I/O and
//! takes an injected [`Clock`], so every behaviour is tested deterministically.
//!
//! The proxy calls a [`Balancer`] once per attempt: [`Balancer::pick`] a target
//! (skipping the ones this request already tried), send, then report the outcome
//! with [`Balancer::success`], [`Balancer::failure`] or [`Balancer::cool_down`] (a
//! 429 with `Retry-After`), and pick again on failover. The returned [`Pick`] is an
//! in-flight guard: hold it until the exchange ends. With active health checks
//! ([`Balancer::with_active_checks`]) it also runs [`Balancer::run_health_check`]
//! every [`Balancer::health_check_interval`] in the background.
//!
//! # Algorithms ([`Algorithm`])
//!
//! - **round-robin**: nginx's *smooth* weighted round-robin. Weights 3:1 give
//!   `A A B A A A B A`, never bursts of one target.
//! - **least-connections**: fewest in-flight requests relative to weight (nginx's
//!   `least_conn`: `in_flight / weight`); ties by smooth weighted round-robin, so an
//!   idle pool behaves exactly like round-robin.
//! - **lowest-latency**: lowest peak EWMA (Finagle/Linkerd) of the latency
//!   ([`LatencyStrategy`]: time per output token or end-to-end), time constant
//!   [`LATENCY_TAU`], multiplied by `in_flight + 1` and divided by the weight. Targets
//!   never measured are probed first, one probe at a time. Every [`EXPLORE_EVERY`]-th
//!   pick goes to the target whose latency sample is the stalest instead, so a slow
//!   target keeps being measured and a recovered one is noticed (~3 % of traffic).
//!   Failures feed no latency: a target failing fast must not look fast; the circuit
//!   breaker deals with it.
//! - **lowest-usage**: lowest usage ([`UsageStrategy`]: tokens or cost) over the recent
//!   past, divided by weight. Usage is an exponentially decayed sum with time constant
//!   [`USAGE_TAU`] (a sliding window without bucket edges: usage from one `tau` ago
//!   counts 37 %, from three `tau` ago 5 %). In-flight requests are charged at the
//!   target's mean usage per request, so a burst of concurrent requests spreads out
//!   instead of all landing on the target that was least used a moment ago.
//! - **consistent-hashing**: a Ketama ring over target identities ([`TargetInfo::id`]);
//!   a key always maps to the same target, failover walks the ring to the next one,
//!   and adding a target moves only ~1/N of the keys. Without a key: round-robin.
//! - **priority**: targets grouped by weight, highest weight first. A lower group
//!   serves only while every target of every higher group is unavailable (open
//!   circuit, cooling down, or already tried by this request); smooth round-robin
//!   within the group.
//!
//! # Availability
//!
//! A target is unavailable while its circuit is open, while it cools down, or
//! while it fails its active health check.
//! The circuit breaker (passive) follows nginx's `max_fails`/`fail_timeout` (Kong's
//! `balancer.max_fails`/`fail_timeout`): `max_fails` failures within `fail_timeout`
//! open the circuit for `fail_timeout`; then it is half-open and admits one trial
//! request; a success closes it, a failure re-opens it for another `fail_timeout`.
//! Active health checks (Kong's `healthchecks.active`) probe each target's endpoint
//! every interval; `failures` failed probes in a row take it out of rotation before
//! any request meets the failure, and `successes` passing probes in a row put it
//! back. The two are independent: a target needs a closed (or trial-due) circuit
//! and a passing active check. [`Balancer::pick`] returns `None` when no target is
//! available (the proxy answers 503).
//!
//! # What pingora-load-balancing does, and what is wrapped
//!
//! pingora-load-balancing provides the target set (`Backends` over static
//! discovery), the selection interface (`BackendSelection` and `BackendIter`), the
//! health state with its consecutive-success and consecutive-failure thresholds
//! (`HealthRegistry`, `Health`), one health-check pass over all backends
//! (`Backends::run_health_check`), the probes themselves (`TcpHealthCheck`,
//! `HttpHealthCheck`) and the flip callback (`HealthCheck::health_status_change`).
//! tollgate uses all of these. What its model cannot express is wrapped:
//!
//! - **Identity.** `Backend` equality and hashing cover the address and weight
//!   only, and LLM targets often share an address. Each target's backend gets a
//!   unique address in the IPv6 discard prefix `100::/64` and its index in `ext`
//!   ([`TargetIndex`], [`target_backend`]); the address is never connected to.
//! - **Selection.** pingora's `LoadBalancer::select(key)` asks a fresh
//!   `iter(key)` for candidates and filters them afterwards. tollgate's algorithms
//!   need the filter before choosing (smooth weighted round-robin must not advance
//!   a target it skips, priority falls to a lower group only when the whole higher
//!   group is out) and per-request state the key cannot carry: the targets this
//!   request already tried, and the in-flight, latency, usage, circuit and health
//!   state of every target. So [`Selector`] implements `BackendSelection` with a
//!   [`Pool`] as its config (the shared per-target state), its [`Candidates`]
//!   iterator yields the algorithm's choice among the targets available and not
//!   yet yielded, and [`Balancer::pick`] seeds it with the request's tried targets
//!   and claims the half-open trial and the in-flight guard, which a
//!   `BackendIter` cannot return. The `Selector` also works inside pingora's own
//!   `LoadBalancer` (tested), as smooth weighted round-robin for plain backends.
//! - **Algorithms.** pingora's `Weighted` repeats each backend `weight` times in an
//!   array (bursts to one provider) and its Ketama ring gives every weight unit 160
//!   points over socket addresses; it has no least-connections, latency, usage or
//!   priority. tollgate keeps its own: smooth weighted round-robin, a ring over
//!   target identities with bounded points, peak-EWMA latency, decayed usage.
//! - **Probing.** Targets are named by host, and `Backend::new` only parses socket
//!   addresses, so every probe first resolves the host asynchronously ([`Resolve`])
//!   and runs the pingora check against the resolved address. Targets at one
//!   endpoint share a probe and a health state (`HealthRegistry::with_equivalence`).
//!   Each probe is bounded in time and counted by kind ([`ProbeCounts`]); each flip
//!   is mirrored into the target's state so a pick reads one atomic, not the
//!   registry's map. See [`health`].
//! - **Scheduling.** pingora's `LoadBalancer` runs its checks as a Pingora
//!   background service for the process' lifetime; a balancer here lives as long as
//!   the configs that use it (reloads), so the proxy schedules
//!   [`Balancer::run_health_check`] itself and stops when the balancer is dropped.
//! - **Kong's counters.** Kong counts TCP failures, timeouts and HTTP failures
//!   separately, each against its own threshold, and ignores statuses in neither of
//!   its lists. pingora's `Health` has one consecutive-failure counter and a
//!   pass/fail probe, so a failure of any kind counts against one threshold
//!   ([`ActiveChecks::failures`]); the config layer refuses thresholds that differ.

mod balancer;
pub mod health;
mod pool;
mod ring;
mod selector;
mod target;
mod wrr;

#[cfg(test)]
mod health_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub use balancer::{Balancer, Pick, ProbeCounts, TargetStats};
pub use health::{ActiveChecks, InvalidChecks, LiteralResolver, Probe, Resolve};
pub use pool::Pool;
pub use ring::{MAX_POINTS, POINTS_PER_UNIT};
pub use selector::{target_backend, Candidates, Selector, TargetIndex};
pub use tollgate_clock::{Clock, ManualClock, MonotonicClock};

/// Time constant of the lowest-latency peak EWMA: a faster sample `dt` after the
/// previous one moves the estimate by `1 - exp(-dt / tau)` of the difference.
pub const LATENCY_TAU: Duration = Duration::from_secs(10);
/// Time constant of the lowest-usage decayed sum.
pub const USAGE_TAU: Duration = Duration::from_secs(60);
/// Lowest-latency sends one pick in this many to the target measured longest ago.
pub const EXPLORE_EVERY: u64 = 32;

/// One balancer target, in the order of the plugin's `targets`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetInfo {
    /// A stable identity (for example `provider/model@upstream_url`), hashed onto the
    /// consistent-hashing ring so a key keeps its target across reloads and replicas
    /// and adding a target moves only its share of keys. Should be unique; duplicates
    /// are told apart by their occurrence number.
    pub id: String,
    /// 1..=65535 (Kong's default is 100). 0 is treated as 1.
    pub weight: u32,
    pub description: Option<String>,
}

impl TargetInfo {
    pub fn new(id: impl Into<String>, weight: u32) -> Self {
        Self { id: id.into(), weight, description: None }
    }
}

/// What lowest-latency measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatencyStrategy {
    /// Time per output token: `(latency - ttft) / completion_tokens`, or
    /// `latency / completion_tokens` without a time to first token. Answers without
    /// completion tokens give no sample.
    Tpot,
    /// End-to-end latency.
    E2e,
}

/// What lowest-usage counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageStrategy {
    TotalTokens,
    PromptTokens,
    CompletionTokens,
    Cost,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    RoundRobin,
    LeastConnections,
    LowestLatency { strategy: LatencyStrategy },
    LowestUsage { strategy: UsageStrategy },
    ConsistentHashing,
    Priority,
}

/// A name that is not one of Kong's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    pub what: &'static str,
    pub name: String,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unsupported {} {:?}", self.what, self.name)
    }
}

impl std::error::Error for UnknownName {}

impl FromStr for LatencyStrategy {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tpot" => Ok(Self::Tpot),
            "e2e" => Ok(Self::E2e),
            _ => Err(UnknownName { what: "latency_strategy", name: s.to_string() }),
        }
    }
}

impl FromStr for UsageStrategy {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "total-tokens" => Ok(Self::TotalTokens),
            "prompt-tokens" => Ok(Self::PromptTokens),
            "completion-tokens" => Ok(Self::CompletionTokens),
            "cost" => Ok(Self::Cost),
            _ => Err(UnknownName { what: "tokens_count_strategy", name: s.to_string() }),
        }
    }
}

impl Algorithm {
    /// From Kong's `balancer.algorithm`, `latency_strategy` and
    /// `tokens_count_strategy` (the strategies are checked only where they are used).
    pub fn from_kong(
        algorithm: &str,
        latency_strategy: &str,
        tokens_count_strategy: &str,
    ) -> Result<Self, UnknownName> {
        Ok(match algorithm {
            "round-robin" => Self::RoundRobin,
            "least-connections" => Self::LeastConnections,
            "lowest-latency" => Self::LowestLatency { strategy: latency_strategy.parse()? },
            "lowest-usage" => Self::LowestUsage { strategy: tokens_count_strategy.parse()? },
            "consistent-hashing" => Self::ConsistentHashing,
            "priority" => Self::Priority,
            _ => return Err(UnknownName { what: "balancer algorithm", name: algorithm.to_string() }),
        })
    }
}

/// Circuit breaker settings (Kong's `balancer.max_fails` and `fail_timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Failures within `fail_timeout` that open the circuit; 0 never opens it.
    pub max_fails: u32,
    /// The failure-counting window, and how long an open circuit stays open.
    pub fail_timeout: Duration,
}

impl Default for BreakerConfig {
    /// Kong's defaults: breaker off, 10 s.
    fn default() -> Self {
        Self { max_fails: 0, fail_timeout: Duration::from_secs(10) }
    }
}

/// The outcome of a successful exchange.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Success {
    /// End-to-end latency of the exchange.
    pub latency: Duration,
    /// Time to first token, for streams.
    pub ttft: Option<Duration>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost: f64,
}

impl Success {
    /// Time per output token in milliseconds, `None` without completion tokens.
    pub fn tpot_ms(&self) -> Option<f64> {
        if self.completion_tokens == 0 {
            return None;
        }
        let generation = self.latency.saturating_sub(self.ttft.unwrap_or(Duration::ZERO));
        Some(duration_ms(generation) / self.completion_tokens as f64)
    }

    /// The usage counted by `strategy`.
    pub fn usage(&self, strategy: UsageStrategy) -> f64 {
        match strategy {
            UsageStrategy::TotalTokens => self.prompt_tokens.saturating_add(self.completion_tokens) as f64,
            UsageStrategy::PromptTokens => self.prompt_tokens as f64,
            UsageStrategy::CompletionTokens => self.completion_tokens as f64,
            UsageStrategy::Cost => self.cost,
        }
    }
}

pub(crate) fn duration_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Locks a mutex, ignoring poisoning: every critical section here leaves the state
/// consistent, so a panic elsewhere must not disable balancing.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

//! Per-target state: circuit breaker, cool-down, active health, in-flight count and
//! the latency and usage statistics the scoring algorithms read.
//!
//! The pick path only loads atomics. Writers (`success`, `failure`) serialise on a
//! small per-target mutex and publish the values the pick path reads as atomics, so a
//! pick never waits on a writer; a pick may read a value pair from two different
//! updates, which only nudges one score for one pick.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::lock;

/// `open_until` value of a closed circuit.
const CLOSED: u64 = 0;
/// `last_sample` value of a target never sampled.
const NEVER: u64 = 0;

/// Whether a target may be picked now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Avail {
    /// Circuit closed, not cooling down.
    Ready,
    /// Circuit open but its timeout has passed: one trial request may be claimed.
    TrialDue,
    /// Open circuit (or a trial in flight), cooling down, or failing its active
    /// health check.
    Unavailable,
}

/// What one active health probe found (Kong's counters: successes, TCP failures,
/// timeouts, HTTP failures).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProbeResult {
    Success,
    TcpFailure,
    Timeout,
    HttpFailure,
}

#[derive(Debug, Default)]
struct FailWindow {
    start: u64,
    fails: u32,
}

#[derive(Debug, Default)]
struct Samples {
    /// Peak EWMA of the latency score and when it was last updated.
    latency: Option<(f64, u64)>,
    /// Exponentially decayed usage sum and when it was last updated.
    usage: (f64, u64),
    /// EWMA of the usage of one request (for charging in-flight requests).
    per_request: Option<f64>,
}

#[derive(Debug)]
pub(crate) struct TargetState {
    pub(crate) in_flight: AtomicU64,
    pub(crate) selections: AtomicU64,
    pub(crate) successes: AtomicU64,
    pub(crate) failures: AtomicU64,
    /// Clock time until which the circuit is open; `CLOSED` (0) when closed. While a
    /// half-open trial is in flight this holds the trial's lease.
    open_until: AtomicU64,
    /// Clock time until which the target cools down (429 Retry-After).
    cool_until: AtomicU64,
    /// The verdict of pingora-load-balancing's active health check, mirrored here
    /// when it flips (`HealthCheck::health_status_change`) so the pick path reads
    /// one atomic instead of the registry's map. True without active checks.
    active_healthy: AtomicBool,
    /// Active probes of this target by [`ProbeResult`], in its order.
    probes: [AtomicU64; 4],
    fail_window: Mutex<FailWindow>,
    samples: Mutex<Samples>,
    /// Published from `samples`: f64 bits, NaN when never sampled.
    latency_bits: AtomicU64,
    /// Clock time of the last latency sample + 1; `NEVER` (0) when never sampled.
    last_sample: AtomicU64,
    usage_bits: AtomicU64,
    usage_stamp: AtomicU64,
    /// f64 bits, NaN when unknown.
    per_request_bits: AtomicU64,
}

impl TargetState {
    pub(crate) fn new() -> Self {
        Self {
            in_flight: AtomicU64::new(0),
            selections: AtomicU64::new(0),
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            open_until: AtomicU64::new(CLOSED),
            cool_until: AtomicU64::new(0),
            active_healthy: AtomicBool::new(true),
            probes: Default::default(),
            fail_window: Mutex::new(FailWindow::default()),
            samples: Mutex::new(Samples::default()),
            latency_bits: AtomicU64::new(f64::NAN.to_bits()),
            last_sample: AtomicU64::new(NEVER),
            usage_bits: AtomicU64::new(0f64.to_bits()),
            usage_stamp: AtomicU64::new(0),
            per_request_bits: AtomicU64::new(f64::NAN.to_bits()),
        }
    }

    pub(crate) fn avail(&self, now: u64) -> Avail {
        if self.cool_until.load(Ordering::Acquire) > now || !self.active_healthy() {
            return Avail::Unavailable;
        }
        match self.open_until.load(Ordering::Acquire) {
            CLOSED => Avail::Ready,
            until if until > now => Avail::Unavailable,
            _ => Avail::TrialDue,
        }
    }

    /// Claims the target for one request. `Some(false)`: circuit closed. `Some(true)`:
    /// this request is the half-open trial; it holds a lease of `lease_ms` during which
    /// no other trial is admitted (if its outcome is never reported, the lease expires
    /// and another trial is allowed). `None`: another request claimed the trial first.
    pub(crate) fn claim(&self, now: u64, lease_ms: u64) -> Option<bool> {
        let until = self.open_until.load(Ordering::Acquire);
        if until == CLOSED {
            return Some(false);
        }
        if until > now {
            return None;
        }
        self.open_until
            .compare_exchange(until, open_deadline(now, lease_ms), Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| true)
    }

    pub(crate) fn circuit_open_until(&self) -> Option<u64> {
        match self.open_until.load(Ordering::Acquire) {
            CLOSED => None,
            until => Some(until),
        }
    }

    pub(crate) fn cooling_until(&self, now: u64) -> Option<u64> {
        let until = self.cool_until.load(Ordering::Acquire);
        (until > now).then_some(until)
    }

    /// Any success closes the circuit: the target answered, whether or not this was
    /// the trial. The failure window is cleared with it.
    pub(crate) fn record_success(&self) {
        self.successes.fetch_add(1, Ordering::Relaxed);
        if self.open_until.load(Ordering::Acquire) != CLOSED {
            let mut w = lock(&self.fail_window);
            *w = FailWindow::default();
            self.open_until.store(CLOSED, Ordering::Release);
        }
    }

    /// nginx's `max_fails`/`fail_timeout`: the failures are counted in a window that
    /// starts at the first failure and lasts `timeout_ms`; the `max_fails`-th failure
    /// inside it opens the circuit for `timeout_ms`. A failure while the circuit is
    /// open (the trial's, or a late one from before it opened) re-opens it for a full
    /// `timeout_ms` from now. Successes do not clear a closed circuit's window, as in
    /// nginx. `max_fails == 0` never opens the circuit.
    pub(crate) fn record_failure(&self, now: u64, max_fails: u32, timeout_ms: u64) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if max_fails == 0 {
            return;
        }
        let mut w = lock(&self.fail_window);
        if self.open_until.load(Ordering::Acquire) != CLOSED {
            self.open_until.store(open_deadline(now, timeout_ms), Ordering::Release);
            return;
        }
        if w.fails == 0 || now.saturating_sub(w.start) >= timeout_ms {
            *w = FailWindow { start: now, fails: 0 };
        }
        w.fails += 1;
        if w.fails >= max_fails {
            *w = FailWindow::default();
            self.open_until.store(open_deadline(now, timeout_ms), Ordering::Release);
        }
    }

    pub(crate) fn active_healthy(&self) -> bool {
        self.active_healthy.load(Ordering::Acquire)
    }

    pub(crate) fn set_active_healthy(&self, healthy: bool) {
        self.active_healthy.store(healthy, Ordering::Release);
    }

    pub(crate) fn count_probe(&self, result: ProbeResult) {
        self.probes[result as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Probes so far by [`ProbeResult`]: successes, TCP failures, timeouts, HTTP
    /// failures.
    pub(crate) fn probe_counts(&self) -> [u64; 4] {
        [0, 1, 2, 3].map(|i| self.probes[i].load(Ordering::Relaxed))
    }

    pub(crate) fn cool_down(&self, now: u64, for_ms: u64) {
        self.cool_until.fetch_max(now.saturating_add(for_ms), Ordering::AcqRel);
    }

    /// Feeds one latency score sample (milliseconds, or milliseconds per token) into
    /// the peak EWMA and one usage amount into the decayed usage sum.
    pub(crate) fn record_samples(
        &self,
        now: u64,
        latency: Option<f64>,
        usage: f64,
        latency_tau_ms: f64,
        usage_tau_ms: f64,
    ) {
        let mut s = lock(&self.samples);
        if let Some(x) = latency.filter(|x| x.is_finite() && *x >= 0.0) {
            let v = peak_ewma(s.latency, x, now, latency_tau_ms);
            s.latency = Some((v, now.max(s.latency.map_or(0, |l| l.1))));
            self.latency_bits.store(v.to_bits(), Ordering::Release);
            self.last_sample.store(now.saturating_add(1), Ordering::Release);
        }
        if usage.is_finite() && usage >= 0.0 {
            let (v, stamp) = s.usage;
            let decayed = decay(v, now.saturating_sub(stamp), usage_tau_ms);
            s.usage = (decayed + usage, stamp.max(now));
            s.per_request = Some(match s.per_request {
                None => usage,
                Some(m) => m + PER_REQUEST_ALPHA * (usage - m),
            });
            self.usage_bits.store(s.usage.0.to_bits(), Ordering::Release);
            self.usage_stamp.store(s.usage.1, Ordering::Release);
            self.per_request_bits.store(s.per_request.unwrap_or(f64::NAN).to_bits(), Ordering::Release);
        }
    }

    /// The peak EWMA latency score, `None` before the first sample.
    pub(crate) fn latency(&self) -> Option<f64> {
        let v = f64::from_bits(self.latency_bits.load(Ordering::Acquire));
        (!v.is_nan()).then_some(v)
    }

    /// Clock time of the last latency sample (+1), 0 if never sampled: smaller is
    /// staler.
    pub(crate) fn last_sample(&self) -> u64 {
        self.last_sample.load(Ordering::Acquire)
    }

    /// The decayed usage sum as of `now`.
    pub(crate) fn usage(&self, now: u64, tau_ms: f64) -> f64 {
        let v = f64::from_bits(self.usage_bits.load(Ordering::Acquire));
        let stamp = self.usage_stamp.load(Ordering::Acquire);
        decay(v, now.saturating_sub(stamp), tau_ms)
    }

    /// The mean usage of one request on this target, `None` before the first.
    pub(crate) fn per_request(&self) -> Option<f64> {
        let v = f64::from_bits(self.per_request_bits.load(Ordering::Acquire));
        (!v.is_nan()).then_some(v)
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// Weight of a new sample in a target's per-request usage mean.
const PER_REQUEST_ALPHA: f64 = 0.2;

/// Circuit deadline, never `CLOSED`.
fn open_deadline(now: u64, timeout_ms: u64) -> u64 {
    now.saturating_add(timeout_ms).max(1)
}

/// `v * exp(-dt / tau)`.
pub(crate) fn decay(v: f64, dt_ms: u64, tau_ms: f64) -> f64 {
    if dt_ms == 0 || v == 0.0 {
        return v;
    }
    v * (-(dt_ms as f64) / tau_ms).exp()
}

/// Finagle's peak EWMA: a sample above the current value replaces it at once (the
/// balancer reacts to a slowdown on the first slow answer); a sample below it pulls the
/// value down with weight `1 - exp(-dt/tau)`, `dt` being the time since the previous
/// sample. Weighting by elapsed time instead of by sample count makes the estimate
/// cover the last ~tau of wall time whatever the request rate, so a busy target and
/// a quiet one are judged over the same horizon.
pub(crate) fn peak_ewma(prev: Option<(f64, u64)>, x: f64, now: u64, tau_ms: f64) -> f64 {
    match prev {
        None => x,
        Some((v, _)) if x >= v => x,
        Some((v, stamp)) => {
            let w = (-(now.saturating_sub(stamp) as f64) / tau_ms).exp();
            v * w + x * (1.0 - w)
        }
    }
}

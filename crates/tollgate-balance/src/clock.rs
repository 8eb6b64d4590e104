//! Time source for the balancer.
//!
//! The same shape as `tollgate_limit::Clock` (`now_ms`), defined here rather than
//! imported so this pure crate does not pull in the limiter's Redis and Tokio stack.
//! A type implementing one can implement the other in three lines.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A source of time in milliseconds. Only differences matter to the balancer, so the
/// origin is arbitrary; it must not go backwards (a backwards step is treated as no
/// time passing).
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> u64;
}

/// A monotonic clock (milliseconds since its creation). The right clock for the
/// balancer: circuit timeouts and EWMA decay must not jump with wall-clock changes.
#[derive(Clone, Copy, Debug)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    pub fn new() -> Self {
        Self { origin: Instant::now() }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told to, for tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    pub fn new(start_ms: u64) -> Self {
        Self { now: AtomicU64::new(start_ms) }
    }

    pub fn set(&self, ms: u64) {
        self.now.store(ms, Ordering::SeqCst);
    }

    pub fn advance(&self, ms: u64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

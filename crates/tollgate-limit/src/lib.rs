//! Token and request limiters for tollgate: the core of Kong's
//! `ai-rate-limiting-advanced`, made to hold under concurrency and across gateway
//! replicas.
//!
//! A [`Limiter`] admits a request by *reserving* its expected cost (tokens, or 1 for a
//! request counter) in every window of a [`LimitSpec`], and later *settles* the
//! reservation with the real usage. Because the reservation is charged at once and
//! atomically, N concurrent requests can never overshoot a limit: 64 concurrent
//! reservations of 1,000 tokens against a 10,000 token window admit exactly 10.
//!
//! Two backends implement the same semantics:
//! - [`LocalLimiter`]: in-process, sharded, lock per shard, bounded memory.
//! - [`RedisLimiter`]: one atomic Lua script per call on a single Redis node, so every
//!   gateway replica pointing at the same Redis shares one budget.
//!
//! # Semantics
//!
//! **Admission.** A request of `cost` is admitted iff `used + cost <= limit` holds in
//! every window. *Oversize exception:* a single request larger than a window's limit
//! would otherwise be refused forever, so when `used == 0` in every window the request
//! is admitted anyway and `min(cost, smallest limit)` is reserved (its settle may then
//! charge the real usage). A window whose limit is 0 admits nothing but cost 0.
//!
//! **Fixed windows** align to the clock: a window of `size` starts at
//! `floor(now / size) * size`; `reset_secs` is the time to the next boundary (ceil,
//! at least 1).
//!
//! **Sliding windows** are true sliding windows made of [`SLIDING_BUCKETS`] sub-buckets
//! (see [`sliding_bucket_width_secs`]). `used` is the sum of the buckets whose start lies
//! in `(now - size, now]`. `reset_secs` is the time until the oldest non-empty bucket
//! leaves the window (0 when the window is empty).
//!
//! **Refusals** carry `retry_after_secs`: the smallest wait after which
//! `used + cost <= limit` holds in every window if nothing else is charged meanwhile
//! (for the oversize exception: until every window is empty), at least 1 second.
//!
//! **Settling** adds `actual - reserved` (possibly negative) to the very buckets the
//! reservation charged, if those buckets are still inside their window; usage that has
//! already left a window is not corrected there. Counters never go below zero.
//!
//! Time always comes from an injected [`Clock`], so tests use a [`ManualClock`] and never
//! sleep, against the local backend and against a real Redis alike.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use tollgate_limit::*;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let clock = Arc::new(ManualClock::new(1_700_000_000_000));
//! let limiter: Arc<dyn Limiter> = Arc::new(LocalLimiter::new(clock.clone()));
//! let spec = LimitSpec {
//!     window_type: WindowType::Sliding,
//!     windows: vec![Window { size_secs: 60, limit: 10_000 }, Window { size_secs: 3600, limit: 100_000 }],
//! };
//! // Before the upstream call: reserve the estimated tokens.
//! let d = limiter.reserve("consumer-a", &spec, 4000).await?;
//! assert!(d.allowed);
//! assert_eq!(d.windows[0].remaining, 6000);
//! // After the answer: replace the estimate by the real usage.
//! limiter.settle("consumer-a", &spec, d.reservation.as_ref().unwrap(), 2500).await?;
//! assert_eq!(limiter.peek("consumer-a", &spec).await?[0].remaining, 7500);
//! // Too big for what is left: refused, with the wait until it fits.
//! let d = limiter.reserve("consumer-a", &spec, 9000).await?;
//! assert!(!d.allowed);
//! assert_eq!(d.retry_after_secs, Some(60));
//! # Ok::<(), LimitError>(())
//! # }).unwrap();
//! ```

pub mod budget;
pub mod calendar;
mod local;
mod redis_backend;
mod redis_budget;
mod redis_conn;
mod redis_kv;
mod window;

use std::fmt;

pub use local::LocalLimiter;
pub use redis_backend::{RedisConfig, RedisLimiter};
pub use redis_conn::{ClusterTopology, RedisTopology, SentinelTopology};
pub use tollgate_clock::{Clock, ManualClock, SystemClock};
pub use window::{sliding_bucket_width_secs, MAX_WINDOW_SECS, SLIDING_BUCKETS};

/// How a window counts usage over time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WindowType {
    /// A true sliding window made of sub-buckets (see [`SLIDING_BUCKETS`]).
    Sliding,
    /// A window aligned to the clock that resets at every multiple of its size.
    Fixed,
}

/// One window of a limit: at most `limit` units per `size_secs` seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub size_secs: u64,
    pub limit: u64,
}

/// A limit: one or more windows of the same type, all enforced at once (the tightest
/// decides, every one is charged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitSpec {
    pub window_type: WindowType,
    pub windows: Vec<Window>,
}

/// The state of one window, for rate-limit headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowStatus {
    pub size_secs: u64,
    pub limit: u64,
    /// `limit - used` (saturating), after the reservation if one was made.
    pub remaining: u64,
    /// Seconds until the window frees capacity: fixed, to the next boundary (>= 1);
    /// sliding, until the oldest non-empty bucket leaves the window (0 when empty).
    pub reset_secs: u64,
}

/// The answer to [`Limiter::reserve`].
#[derive(Clone, Debug)]
pub struct Decision {
    pub allowed: bool,
    /// One per spec window, in the spec's order; `remaining` is after this reservation.
    pub windows: Vec<WindowStatus>,
    /// On refusal: seconds until enough capacity frees up for this request (>= 1).
    pub retry_after_secs: Option<u64>,
    /// `Some` when allowed: pass it to [`Limiter::settle`] with the real usage.
    pub reservation: Option<Reservation>,
}

/// What a reservation charged and where (the window buckets), so that
/// [`Limiter::settle`] corrects the same buckets. Opaque; valid for the key and the
/// limiter (or any limiter on the same Redis) that produced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    charged: u64,
    window_type: WindowType,
    charges: Vec<Charge>,
}

/// One window's charge: `bucket` is the window start in ms for a fixed window, the
/// bucket index (`start_ms / width_ms`) for a sliding one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Charge {
    pub(crate) size_secs: u64,
    pub(crate) bucket: u64,
}

impl Reservation {
    /// Units actually reserved (the cost, or less under the oversize exception).
    pub fn charged(&self) -> u64 {
        self.charged
    }
}

/// Errors of a limiter.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    /// Redis unreachable, timed out, or answered an error. Never contains the password.
    #[error("redis: {0}")]
    Backend(String),
    /// The spec cannot be enforced (a window of size 0 or longer than [`MAX_WINDOW_SECS`]).
    #[error("invalid limit: {0}")]
    InvalidSpec(String),
    /// The Redis configuration cannot be used (for example an empty host).
    #[error("invalid redis configuration: {0}")]
    Config(String),
}

/// A limiter backend. All methods are safe to call concurrently.
#[async_trait::async_trait]
pub trait Limiter: Send + Sync {
    /// Admit `cost` units (tokens, or 1 request) for `key` if it fits in every window;
    /// reserve it.
    async fn reserve(&self, key: &str, spec: &LimitSpec, cost: u64) -> Result<Decision, LimitError>;
    /// Replace a reservation by the real usage (may be lower or higher than reserved).
    async fn settle(
        &self,
        key: &str,
        spec: &LimitSpec,
        reservation: &Reservation,
        actual: u64,
    ) -> Result<(), LimitError>;
    /// Current status without charging (for headers on answers that were not limited).
    async fn peek(&self, key: &str, spec: &LimitSpec) -> Result<Vec<WindowStatus>, LimitError>;
}

impl fmt::Display for WindowType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WindowType::Sliding => "sliding",
            WindowType::Fixed => "fixed",
        })
    }
}

#[cfg(test)]
mod tests;

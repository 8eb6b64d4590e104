//! tollgate's algorithms as pingora-load-balancing's `BackendSelection`.
//!
//! Targets are pingora `Backend`s. A `Backend` is identified by its socket address
//! and weight (its `ext` is ignored by equality and hashing), while LLM targets
//! often share an address (two models at api.openai.com, every target of a test at
//! one mock). So each target's backend gets an address of its own in the IPv6
//! discard prefix `100::/64` (RFC 6666: nothing is ever reached there), `[100::i]:0`
//! for target `i`, and carries [`TargetIndex`] in `ext`. The address is an identity
//! only: health probes resolve the target's real host (see `health`), and the proxy
//! connects on its own.
//!
//! `BackendSelection::iter(key)` yields backends lazily, each one the algorithm's
//! choice among the available targets it has not yielded yet. The per-request state
//! that the trait's `iter(key)` does not carry lives elsewhere: the targets a
//! request already tried seed the iterator ([`Selector::candidates`]), and the
//! in-flight counts, statistics, circuits, cool-downs and active health are shared
//! atomics in the [`Pool`] the selector is configured with.

use std::collections::BTreeSet;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;

use pingora_core::protocols::l4::socket::SocketAddr as PeerAddr;
use pingora_load_balancing::selection::{BackendIter, BackendSelection};
use pingora_load_balancing::{Backend, Extensions};

use crate::pool::Pool;
use crate::ring::hash32;
use crate::Algorithm;
use crate::MonotonicClock;

/// The index of a backend's target in its balancer's target list (in `Backend::ext`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetIndex(pub usize);

/// Target `index`'s backend: a unique address in `100::/64` and [`TargetIndex`].
pub fn target_backend(index: usize, weight: u32) -> Backend {
    let ip =
        Ipv6Addr::new(0x100, 0, 0, 0, (index >> 48) as u16, (index >> 32) as u16, (index >> 16) as u16, index as u16);
    let mut ext = Extensions::new();
    ext.insert(TargetIndex(index));
    Backend { addr: PeerAddr::Inet(SocketAddr::new(ip.into(), 0)), weight: weight as usize, ext }
}

/// tollgate's selection algorithms as a pingora-load-balancing `BackendSelection`.
pub struct Selector {
    pool: Arc<Pool>,
    /// The discovered backends by target index; `None`: not in the backend set, so
    /// never yielded.
    backends: Box<[Option<Backend>]>,
}

impl std::fmt::Debug for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Selector")
            .field("pool", &self.pool)
            .field("backends", &self.backends.iter().flatten().count())
            .finish()
    }
}

impl Selector {
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// The iterator of one pick: the algorithm's choices in turn, never one of
    /// `tried` (or an index beyond the pool). `hash_key` feeds consistent hashing.
    pub fn candidates(self: &Arc<Self>, hash_key: Option<&[u8]>, tried: &[usize]) -> Candidates {
        let n = self.backends.len();
        let mut excluded = Excluded::new(n);
        for &i in tried.iter().filter(|&&i| i < n) {
            excluded.insert(i);
        }
        Candidates {
            selector: Arc::clone(self),
            now: self.pool.clock.now_ms(),
            hash: hash_key.map(|k| hash32(&[k])),
            excluded,
        }
    }
}

impl BackendSelection for Selector {
    type Iter = Candidates;
    /// The pool the backends' [`TargetIndex`]es refer to.
    type Config = Arc<Pool>;

    /// Smooth weighted round-robin over `backends` by their weights, in set order:
    /// a selector for backends that do not come from a tollgate [`Pool`].
    fn build(backends: &BTreeSet<Backend>) -> Self {
        let weights: Box<[u32]> = backends.iter().map(|b| u32::try_from(b.weight).unwrap_or(u32::MAX).max(1)).collect();
        let identities: Vec<Vec<u8>> = backends.iter().map(|b| format!("{:?}", b.addr).into_bytes()).collect();
        let pool = Pool::new(weights, &identities, Algorithm::RoundRobin, Arc::new(MonotonicClock::new()));
        Selector { pool: Arc::new(pool), backends: backends.iter().cloned().map(Some).collect() }
    }

    /// The backends of `pool`'s targets, found by their [`TargetIndex`]; backends
    /// without one, or beyond the pool, are ignored.
    fn build_with_config(backends: &BTreeSet<Backend>, pool: &Arc<Pool>) -> Self {
        let mut slots: Vec<Option<Backend>> = vec![None; pool.len()];
        for b in backends {
            if let Some(slot) = b.ext.get::<TargetIndex>().and_then(|t| slots.get_mut(t.0)) {
                *slot = Some(b.clone());
            }
        }
        Selector { pool: Arc::clone(pool), backends: slots.into_boxed_slice() }
    }

    /// An empty key means no key (round-robin under consistent hashing).
    fn iter(self: &Arc<Self>, key: &[u8]) -> Candidates {
        self.candidates((!key.is_empty()).then_some(key), &[])
    }
}

/// The targets of one pick, best first: each [`Candidates::next_index`] is the
/// algorithm's choice among the targets available now and not yet tried or
/// yielded.
pub struct Candidates {
    selector: Arc<Selector>,
    now: u64,
    hash: Option<u32>,
    excluded: Excluded,
}

impl Candidates {
    /// The clock time the candidates are judged at.
    pub fn now(&self) -> u64 {
        self.now
    }

    pub fn next_index(&mut self) -> Option<usize> {
        let sel = &self.selector;
        let excluded = &self.excluded;
        let i = sel.pool.choose(self.now, self.hash, |i| excluded.contains(i) || sel.backends[i].is_none())?;
        self.excluded.insert(i);
        Some(i)
    }
}

impl BackendIter for Candidates {
    fn next(&mut self) -> Option<&Backend> {
        let i = self.next_index()?;
        self.selector.backends[i].as_ref()
    }
}

/// A set of target indices; a bit mask (no allocation on the pick path) up to 64
/// targets.
enum Excluded {
    Bits(u64),
    Many(Vec<bool>),
}

impl Excluded {
    fn new(n: usize) -> Self {
        if n <= 64 {
            Excluded::Bits(0)
        } else {
            Excluded::Many(vec![false; n])
        }
    }

    fn insert(&mut self, i: usize) {
        match self {
            Excluded::Bits(bits) => *bits |= 1 << i,
            Excluded::Many(v) => v[i] = true,
        }
    }

    fn contains(&self, i: usize) -> bool {
        match self {
            Excluded::Bits(bits) => bits & (1 << i) != 0,
            Excluded::Many(v) => v[i],
        }
    }
}

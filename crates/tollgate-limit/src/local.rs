//! The in-process backend.

use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

use hashbrown::HashTable;

use crate::window::{self, Summary, Usage, SLIDING_BUCKETS};
use crate::{Charge, Clock, Decision, LimitError, LimitSpec, Limiter, Reservation, WindowStatus, WindowType};

/// Number of independently locked shards of the key map.
const SHARDS: usize = 64;
/// How often (clock time) a shard sweeps its idle keys, on its next access.
const SWEEP_INTERVAL_MS: u64 = 10_000;
const RING: usize = SLIDING_BUCKETS as usize;

/// In-process limiter.
///
/// Keys live in 64 shards, each a mutex-guarded hash table, so requests on different keys
/// rarely contend and a reservation is one short critical section (no overshoot under
/// concurrency). State per key is bounded: one counter per fixed window, a ring of
/// [`SLIDING_BUCKETS`] buckets per sliding window. A key idle for longer than its
/// largest window holds no usage any more and is evicted by its shard's sweep, which
/// runs on the shard's next access at most every 10 s of clock time (or on
/// [`LocalLimiter::sweep`]), so memory does not grow with keys that come and go.
///
/// Counters are per key *and window size*: changing a limit keeps the usage counted so
/// far; changing a window size or the window type starts that window afresh.
pub struct LocalLimiter {
    clock: Arc<dyn Clock>,
    /// Randomly seeded per limiter; one hash per call picks the shard (bits 32..38) and
    /// the slot in the shard's table (its low and top bits).
    hasher: foldhash::fast::RandomState,
    shards: Box<[Padded]>,
}

/// A shard on its own cache lines, so that neighbouring locks do not false-share.
#[repr(align(128))]
struct Padded(Mutex<Shard>);

#[derive(Default)]
struct Shard {
    table: HashTable<Entry>,
    next_sweep_ms: u64,
}

struct Entry {
    key: Box<str>,
    state: KeyState,
}

struct KeyState {
    window_type: WindowType,
    windows: Vec<WinState>,
    last_access_ms: u64,
    /// Largest window of the spec last used: idle longer than this, the key is empty.
    idle_ms: u64,
}

struct WinState {
    size_secs: u64,
    size_ms: u64,
    counter: Counter,
}

enum Counter {
    Fixed { start: u64, used: u64 },
    Sliding { width_ms: u64, slots: Box<[Slot; RING]> },
}

#[derive(Clone, Copy)]
struct Slot {
    /// Bucket index (`start_ms / width_ms`) this slot currently holds.
    idx: u64,
    count: u64,
}

const EMPTY_SLOT: Slot = Slot { idx: u64::MAX, count: 0 };

impl WinState {
    fn new(window_type: WindowType, size_secs: u64, now: u64) -> Self {
        let size_ms = window::size_ms(size_secs);
        let counter = match window_type {
            WindowType::Fixed => Counter::Fixed { start: window::fixed_start(now, size_ms), used: 0 },
            WindowType::Sliding => {
                Counter::Sliding { width_ms: window::width_ms(size_secs), slots: Box::new([EMPTY_SLOT; RING]) }
            }
        };
        Self { size_secs, size_ms, counter }
    }

    /// Moves a fixed window to the one containing `now` (never backwards).
    fn advance(&mut self, now: u64) {
        if let Counter::Fixed { start, used } = &mut self.counter {
            let cur = window::fixed_start(now, self.size_ms);
            if cur > *start {
                *start = cur;
                *used = 0;
            }
        }
    }

    fn view(&self, now: u64) -> LocalView<'_> {
        LocalView { ws: self, now }
    }

    /// The bucket a charge at `now` goes to.
    fn current_bucket(&self, now: u64) -> u64 {
        match &self.counter {
            Counter::Fixed { start, .. } => *start,
            Counter::Sliding { width_ms, .. } => now / width_ms,
        }
    }

    /// Charges `units` to the current bucket; returns the bucket and its start.
    fn charge(&mut self, now: u64, units: u64) -> (u64, u64) {
        let bucket = self.current_bucket(now);
        self.add(bucket, units as i128, now);
        let start = match &self.counter {
            Counter::Fixed { .. } => bucket,
            Counter::Sliding { width_ms, .. } => bucket * width_ms,
        };
        (bucket, start)
    }

    /// Adds `delta` to `bucket` if it is still inside the window at `now`; clamps at 0.
    fn add(&mut self, bucket: u64, delta: i128, now: u64) {
        let apply = |count: u64| -> u64 { (count as i128 + delta).clamp(0, u64::MAX as i128) as u64 };
        match &mut self.counter {
            Counter::Fixed { start, used } => {
                if *start == bucket && window::bucket_in_window(bucket, self.size_ms, now) {
                    *used = apply(*used);
                }
            }
            Counter::Sliding { width_ms, slots } => {
                let start = bucket.saturating_mul(*width_ms);
                if !window::bucket_in_window(start, self.size_ms, now) {
                    return;
                }
                let slot = &mut slots[(bucket % SLIDING_BUCKETS) as usize];
                if slot.idx != bucket {
                    // The slot holds a bucket that has left the window (in-window buckets
                    // never share a slot): reuse it.
                    *slot = Slot { idx: bucket, count: 0 };
                }
                slot.count = apply(slot.count);
            }
        }
    }
}

struct LocalView<'a> {
    ws: &'a WinState,
    now: u64,
}

impl LocalView<'_> {
    /// Inclusive range of the bucket indices inside the window (sliding only).
    fn range(&self, width_ms: u64) -> (u64, u64) {
        window::sliding_range(self.now, self.ws.size_ms, width_ms)
    }
}

impl Usage for LocalView<'_> {
    fn summary(&self) -> Summary {
        match &self.ws.counter {
            Counter::Fixed { start, used } => Summary { used: *used, anchor: Some(*start) },
            Counter::Sliding { width_ms, slots } => {
                // One unordered pass without divisions: a slot counts iff it holds an
                // index of the window (empty slots hold u64::MAX).
                let (lo, cur) = self.range(*width_ms);
                let mut used = 0u64;
                let mut oldest = u64::MAX;
                for s in slots.iter() {
                    if s.idx >= lo && s.idx <= cur && s.count > 0 {
                        used = used.saturating_add(s.count);
                        oldest = oldest.min(s.idx);
                    }
                }
                Summary { used, anchor: (oldest != u64::MAX).then(|| oldest * width_ms) }
            }
        }
    }

    fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let (fixed, sliding) = match &self.ws.counter {
            Counter::Fixed { start, used } => (Some((*start, *used)), None),
            Counter::Sliding { width_ms, slots } => {
                let (lo, cur) = self.range(*width_ms);
                let width = *width_ms;
                let n = (cur + 1).saturating_sub(lo).min(SLIDING_BUCKETS);
                // Walk the ring from the oldest index, wrapping, with one division.
                let mut pos = (lo % SLIDING_BUCKETS) as usize;
                let it = (lo..lo + n).filter_map(move |idx| {
                    let s = slots[pos];
                    pos += 1;
                    if pos == RING {
                        pos = 0;
                    }
                    (s.idx == idx && s.count > 0).then(|| (idx * width, s.count))
                });
                (None, Some(it))
            }
        };
        fixed.into_iter().chain(sliding.into_iter().flatten())
    }
}

impl KeyState {
    fn new(spec: &LimitSpec, now: u64) -> Self {
        let mut st = Self { window_type: spec.window_type, windows: Vec::new(), last_access_ms: now, idle_ms: 0 };
        st.sync(spec, now);
        st
    }

    /// Aligns the window states with `spec` (same order), keeping the counters of
    /// windows whose type and size did not change, and advances fixed windows.
    fn sync(&mut self, spec: &LimitSpec, now: u64) {
        let same = self.window_type == spec.window_type
            && self.windows.len() == spec.windows.len()
            && self.windows.iter().zip(&spec.windows).all(|(s, w)| s.size_secs == w.size_secs);
        if !same {
            let mut old = std::mem::take(&mut self.windows);
            if self.window_type != spec.window_type {
                old.clear();
            }
            self.window_type = spec.window_type;
            self.windows = spec
                .windows
                .iter()
                .map(|w| match old.iter().position(|s| s.size_secs == w.size_secs) {
                    Some(p) => old.swap_remove(p),
                    None => WinState::new(spec.window_type, w.size_secs, now),
                })
                .collect();
            self.idle_ms = self.windows.iter().map(|w| w.size_ms).max().unwrap_or(0);
        }
        for w in &mut self.windows {
            w.advance(now);
        }
        self.last_access_ms = self.last_access_ms.max(now);
    }

    fn reserve(&mut self, spec: &LimitSpec, cost: u64, now: u64) -> Decision {
        self.sync(spec, now);
        let n = spec.windows.len();
        let mut inline = [Summary::default(); 8];
        let mut heap = Vec::new();
        let sums: &mut [Summary] = if n <= inline.len() {
            &mut inline[..n]
        } else {
            heap.resize(n, Summary::default());
            &mut heap
        };
        for (s, ws) in sums.iter_mut().zip(&self.windows) {
            *s = ws.view(now).summary();
        }
        match window::admit(spec, cost, |i| sums[i].used) {
            Some(charged) => {
                let mut charges = Vec::with_capacity(n);
                for (ws, s) in self.windows.iter_mut().zip(sums.iter_mut()) {
                    let (bucket, start) = ws.charge(now, charged);
                    *s = s.charged(spec.window_type, charged, start);
                    charges.push(Charge { size_secs: ws.size_secs, bucket });
                }
                Decision {
                    allowed: true,
                    windows: window::statuses(spec, now, |i| sums[i]),
                    retry_after_secs: None,
                    reservation: Some(Reservation { charged, window_type: spec.window_type, charges }),
                }
            }
            None => Decision {
                allowed: false,
                windows: window::statuses(spec, now, |i| sums[i]),
                retry_after_secs: Some(window::retry_after_secs(spec, now, cost, |i| self.windows[i].view(now))),
                reservation: None,
            },
        }
    }

    fn settle(&mut self, reservation: &Reservation, delta: i128, now: u64) {
        if reservation.window_type != self.window_type {
            return;
        }
        for (i, c) in reservation.charges.iter().enumerate() {
            // The window at the same position, or else the first of the same size.
            let ws = match self.windows.get(i) {
                Some(ws) if ws.size_secs == c.size_secs => Some(i),
                _ => self.windows.iter().position(|ws| ws.size_secs == c.size_secs),
            };
            if let Some(p) = ws {
                let ws = &mut self.windows[p];
                ws.advance(now);
                ws.add(c.bucket, delta, now);
            }
        }
        self.last_access_ms = self.last_access_ms.max(now);
    }
}

impl LocalLimiter {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let shards = (0..SHARDS).map(|_| Padded(Mutex::new(Shard::default()))).collect();
        Self { clock, hasher: foldhash::fast::RandomState::default(), shards }
    }

    fn shard(&self, hash: u64) -> MutexGuard<'_, Shard> {
        let i = ((hash >> 32) as usize) % SHARDS;
        // A panic while holding a shard lock cannot leave a counter half-updated in a
        // way that matters more than losing the limiter: keep going.
        self.shards[i].0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Evicts, in every shard, the keys idle for longer than their largest window.
    pub fn sweep(&self) {
        let now = self.clock.now_ms();
        for s in self.shards.iter() {
            let mut shard = s.0.lock().unwrap_or_else(|e| e.into_inner());
            shard.sweep(now);
        }
    }

    /// Number of keys currently held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.0.lock().unwrap_or_else(|e| e.into_inner()).table.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn reserve_now(&self, key: &str, spec: &LimitSpec, cost: u64) -> Result<Decision, LimitError> {
        window::validate(spec)?;
        if spec.windows.is_empty() {
            return Ok(unlimited(spec, cost));
        }
        let now = self.clock.now_ms();
        let hash = self.hasher.hash_one(key);
        let mut shard = self.shard(hash);
        shard.maybe_sweep(now);
        if let Some(e) = shard.table.find_mut(hash, |e| &*e.key == key) {
            return Ok(e.state.reserve(spec, cost, now));
        }
        let entry = Entry { key: Box::from(key), state: KeyState::new(spec, now) };
        let e = shard.table.insert_unique(hash, entry, |e| self.hasher.hash_one(&*e.key)).into_mut();
        Ok(e.state.reserve(spec, cost, now))
    }

    fn settle_now(&self, key: &str, reservation: &Reservation, actual: u64) {
        let delta = actual as i128 - reservation.charged as i128;
        if delta == 0 || reservation.charges.is_empty() {
            return;
        }
        let now = self.clock.now_ms();
        let hash = self.hasher.hash_one(key);
        let mut shard = self.shard(hash);
        if let Some(e) = shard.table.find_mut(hash, |e| &*e.key == key) {
            e.state.settle(reservation, delta, now);
        }
    }

    fn peek_now(&self, key: &str, spec: &LimitSpec) -> Result<Vec<WindowStatus>, LimitError> {
        window::validate(spec)?;
        let now = self.clock.now_ms();
        let hash = self.hasher.hash_one(key);
        let shard = self.shard(hash);
        let st = shard.table.find(hash, |e| &*e.key == key).map(|e| &e.state);
        Ok(spec
            .windows
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let ws = st.filter(|st| st.window_type == spec.window_type).and_then(|st| match st.windows.get(i) {
                    Some(ws) if ws.size_secs == w.size_secs => Some(ws),
                    _ => st.windows.iter().find(|ws| ws.size_secs == w.size_secs),
                });
                let summary = match ws {
                    // A fixed window that has ended reads as the empty current one.
                    Some(ws) => match ws.counter {
                        Counter::Fixed { start, .. }
                            if start != window::fixed_start(now, window::size_ms(w.size_secs)) =>
                        {
                            Summary::default()
                        }
                        _ => ws.view(now).summary(),
                    },
                    None => Summary::default(),
                };
                window::status(spec.window_type, w, now, summary)
            })
            .collect())
    }
}

/// The decision for a spec without windows: everything is admitted.
pub(crate) fn unlimited(spec: &LimitSpec, cost: u64) -> Decision {
    Decision {
        allowed: true,
        windows: Vec::new(),
        retry_after_secs: None,
        reservation: Some(Reservation { charged: cost, window_type: spec.window_type, charges: Vec::new() }),
    }
}

impl Shard {
    fn maybe_sweep(&mut self, now: u64) {
        if now >= self.next_sweep_ms {
            self.sweep(now);
        }
    }

    fn sweep(&mut self, now: u64) {
        self.table.retain(|e| now.saturating_sub(e.state.last_access_ms) <= e.state.idle_ms);
        self.next_sweep_ms = now.saturating_add(SWEEP_INTERVAL_MS);
    }
}

#[async_trait::async_trait]
impl Limiter for LocalLimiter {
    async fn reserve(&self, key: &str, spec: &LimitSpec, cost: u64) -> Result<Decision, LimitError> {
        self.reserve_now(key, spec, cost)
    }

    async fn settle(
        &self,
        key: &str,
        _spec: &LimitSpec,
        reservation: &Reservation,
        actual: u64,
    ) -> Result<(), LimitError> {
        self.settle_now(key, reservation, actual);
        Ok(())
    }

    async fn peek(&self, key: &str, spec: &LimitSpec) -> Result<Vec<WindowStatus>, LimitError> {
        self.peek_now(key, spec)
    }
}

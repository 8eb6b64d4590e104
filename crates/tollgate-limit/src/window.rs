//! Window arithmetic shared by both backends: bucket layout, admission, statuses and
//! retry-after. The Redis Lua scripts mirror `admit` and the bucket layout.

use crate::{LimitError, LimitSpec, Window, WindowStatus, WindowType};

/// Number of sub-buckets a sliding window is cut into (at most; short windows have one
/// bucket per second).
///
/// Error bound: a sliding window counts whole buckets, so a unit charged at time `t`
/// inside a bucket starting at `s <= t` leaves the window at `s + size`, up to one
/// bucket width ([`sliding_bucket_width_secs`]) *early*, never late. The limit can thus
/// be exceeded by at most what was charged during the one bucket that is leaving, and
/// only in the last `width` of its lifetime; it is never under-enforced in the other
/// direction (capacity is never withheld longer than `size`).
pub const SLIDING_BUCKETS: u64 = 60;

/// Longest window accepted (about 10 years): keeps millisecond arithmetic far from
/// overflow.
pub const MAX_WINDOW_SECS: u64 = 10 * 366 * 86_400;

/// Width in seconds of the sub-buckets of a sliding window of `size_secs`:
/// `ceil(size_secs / SLIDING_BUCKETS)`, at least 1 s. A 60 s window has 1 s buckets, an
/// hour 1 min buckets, a day 24 min buckets.
pub fn sliding_bucket_width_secs(size_secs: u64) -> u64 {
    size_secs.div_ceil(SLIDING_BUCKETS).max(1)
}

pub(crate) fn validate(spec: &LimitSpec) -> Result<(), LimitError> {
    for w in &spec.windows {
        if w.size_secs == 0 {
            return Err(LimitError::InvalidSpec("window size must be at least 1 second".into()));
        }
        if w.size_secs > MAX_WINDOW_SECS {
            return Err(LimitError::InvalidSpec(format!(
                "window size {} s exceeds the maximum of {MAX_WINDOW_SECS} s",
                w.size_secs
            )));
        }
    }
    Ok(())
}

pub(crate) fn size_ms(size_secs: u64) -> u64 {
    size_secs.saturating_mul(1000)
}

pub(crate) fn width_ms(size_secs: u64) -> u64 {
    sliding_bucket_width_secs(size_secs) * 1000
}

/// Start of the fixed window containing `now`.
pub(crate) fn fixed_start(now: u64, size_ms: u64) -> u64 {
    now / size_ms * size_ms
}

/// Inclusive range of the sliding bucket indices whose start lies in `(now - size, now]`.
/// It never spans more than [`SLIDING_BUCKETS`] indices.
pub(crate) fn sliding_range(now: u64, size_ms: u64, width_ms: u64) -> (u64, u64) {
    let cur = now / width_ms;
    let lo = if now >= size_ms { (now - size_ms) / width_ms + 1 } else { 0 };
    (lo, cur)
}

/// Whether the bucket starting at `start` still counts at `now`.
pub(crate) fn bucket_in_window(start: u64, size_ms: u64, now: u64) -> bool {
    start <= now && start.saturating_add(size_ms) > now
}

pub(crate) fn min_limit(spec: &LimitSpec) -> u64 {
    spec.windows.iter().map(|w| w.limit).min().unwrap_or(0)
}

/// Admission rule. Returns the units to charge, or `None` to refuse.
///
/// `used + cost <= limit` in every window; otherwise, if every window is empty and no
/// limit is 0, the oversize exception admits `min(cost, smallest limit)`.
pub(crate) fn admit(spec: &LimitSpec, cost: u64, used: impl Fn(usize) -> u64) -> Option<u64> {
    let mut fits = true;
    let mut all_empty = true;
    for (i, w) in spec.windows.iter().enumerate() {
        let u = used(i);
        if u.saturating_add(cost) > w.limit {
            fits = false;
        }
        if u != 0 {
            all_empty = false;
        }
    }
    if fits {
        return Some(cost);
    }
    let min = min_limit(spec);
    (all_empty && min > 0).then(|| cost.min(min))
}

/// What a status needs of a window: its usage and its anchor, the start of the fixed
/// window, or the start of the oldest non-empty sliding bucket (`None`: empty).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Summary {
    pub(crate) used: u64,
    pub(crate) anchor: Option<u64>,
}

impl Summary {
    /// The summary after charging `units` into the bucket starting at `bucket_start`.
    pub(crate) fn charged(self, kind: WindowType, units: u64, bucket_start: u64) -> Self {
        let anchor = match kind {
            WindowType::Sliding if units > 0 => Some(self.anchor.map_or(bucket_start, |a| a.min(bucket_start))),
            _ => self.anchor,
        };
        Self { used: self.used.saturating_add(units), anchor }
    }
}

/// A read-only view of one window's usage at some `now`.
pub(crate) trait Usage {
    fn summary(&self) -> Summary;
    /// Buckets inside the window, oldest first, as `(start_ms, count)`. A fixed window
    /// yields exactly one bucket, `(window_start, used)`.
    fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_;
}

fn ceil_secs(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

pub(crate) fn status(kind: WindowType, w: &Window, now: u64, s: Summary) -> WindowStatus {
    let size = size_ms(w.size_secs);
    let reset_secs = match kind {
        WindowType::Fixed => {
            let start = s.anchor.unwrap_or_else(|| fixed_start(now, size));
            ceil_secs(start.saturating_add(size).saturating_sub(now)).max(1)
        }
        WindowType::Sliding => s.anchor.map_or(0, |a| ceil_secs(a.saturating_add(size).saturating_sub(now)).max(1)),
    };
    WindowStatus { size_secs: w.size_secs, limit: w.limit, remaining: w.limit.saturating_sub(s.used), reset_secs }
}

pub(crate) fn statuses(spec: &LimitSpec, now: u64, summary: impl Fn(usize) -> Summary) -> Vec<WindowStatus> {
    spec.windows.iter().enumerate().map(|(i, w)| status(spec.window_type, w, now, summary(i))).collect()
}

/// Milliseconds until `used <= threshold` holds in this window, assuming no new charges.
fn wait_ms(kind: WindowType, size: u64, now: u64, threshold: u64, u: &impl Usage) -> u64 {
    let used = u.summary().used;
    if used <= threshold {
        return 0;
    }
    match kind {
        WindowType::Fixed => {
            let start = u.buckets().next().map_or_else(|| fixed_start(now, size), |b| b.0);
            start.saturating_add(size).saturating_sub(now)
        }
        WindowType::Sliding => {
            let mut left = used;
            for (start, count) in u.buckets() {
                left = left.saturating_sub(count);
                if left <= threshold {
                    return start.saturating_add(size).saturating_sub(now);
                }
            }
            size
        }
    }
}

/// Seconds (>= 1) until a refused request of `cost` would be admitted, if nothing else
/// is charged meanwhile.
pub(crate) fn retry_after_secs<U: Usage>(spec: &LimitSpec, now: u64, cost: u64, view: impl Fn(usize) -> U) -> u64 {
    let min = min_limit(spec);
    if min == 0 && cost > 0 {
        // Never admissible; point at the longest window so clients back off.
        return spec.windows.iter().map(|w| w.size_secs).max().unwrap_or(1).max(1);
    }
    let mut wait = 0;
    for (i, w) in spec.windows.iter().enumerate() {
        // Oversize requests are admitted only once every window is empty.
        let threshold = if cost <= min { w.limit - cost } else { 0 };
        wait = wait.max(wait_ms(spec.window_type, size_ms(w.size_secs), now, threshold, &view(i)));
    }
    ceil_secs(wait).max(1)
}

/// A window's usage as plain data (what the Redis script returns).
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    used: u64,
    anchor: Option<u64>,
    buckets: Vec<(u64, u64)>,
}

impl Usage for &Snapshot {
    fn summary(&self) -> Summary {
        Summary { used: self.used, anchor: self.anchor }
    }
    fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.buckets.iter().copied()
    }
}

impl Snapshot {
    pub(crate) fn new(kind: WindowType, buckets: Vec<(u64, u64)>) -> Self {
        let (used, anchor) = match kind {
            WindowType::Fixed => (buckets.first().map_or(0, |b| b.1), buckets.first().map(|b| b.0)),
            WindowType::Sliding => {
                (buckets.iter().fold(0u64, |a, b| a.saturating_add(b.1)), buckets.iter().find(|b| b.1 > 0).map(|b| b.0))
            }
        };
        Self { used, anchor, buckets }
    }
}

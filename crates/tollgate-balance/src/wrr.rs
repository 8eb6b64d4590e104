//! nginx's smooth weighted round-robin (`ngx_http_upstream_get_peer`).
//!
//! Each pick adds every candidate's weight to its running `current` value, takes the
//! candidate with the largest `current` (the first on ties), and subtracts the sum of
//! the candidates' weights from the winner. Weights 3:1 give `A A B A A A B A`: the
//! share is exact over each cycle of `sum(weights)` picks and the picks of one target
//! are spread out instead of coming in bursts (pingora-load-balancing's weighted
//! selection repeats an index `weight` times, which sends bursts to one provider).
//!
//! The candidate set may change per pick (tried or unavailable targets are skipped);
//! non-candidates keep their `current`, as in nginx.

use std::sync::Mutex;

use crate::lock;

#[derive(Debug)]
pub(crate) struct SmoothWrr {
    current: Mutex<Vec<i64>>,
}

impl SmoothWrr {
    pub(crate) fn new(n: usize) -> Self {
        Self { current: Mutex::new(vec![0; n]) }
    }

    /// The next candidate among `weights` for which `candidate(i)` holds, or `None` if
    /// there is none. `candidate` runs under the lock, so it must be cheap.
    pub(crate) fn next(&self, weights: &[u32], mut candidate: impl FnMut(usize) -> bool) -> Option<usize> {
        let mut current = lock(&self.current);
        let mut total: i64 = 0;
        let mut best: Option<(usize, i64)> = None;
        for (i, (&w, cur)) in weights.iter().zip(current.iter_mut()).enumerate() {
            if !candidate(i) {
                continue;
            }
            let w = i64::from(w);
            *cur += w;
            total += w;
            if best.is_none_or(|(_, b)| *cur > b) {
                best = Some((i, *cur));
            }
        }
        let (b, _) = best?;
        current[b] -= total;
        Some(b)
    }
}

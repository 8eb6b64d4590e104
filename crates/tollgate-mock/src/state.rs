//! Shared server state: behaviour, recorder, counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::behavior::{Behavior, BehaviorState};
use crate::record::Recorder;
use crate::Config;

pub struct AppState {
    behavior: Mutex<BehaviorState>,
    /// `None` with `--no-record`: the hot path then skips hashing and copying.
    pub recorder: Option<Recorder>,
    pub stats: Arc<Stats>,
    ids: AtomicU64,
}

impl AppState {
    pub fn new(config: Config) -> Self {
        AppState {
            behavior: Mutex::new(BehaviorState::new(config.defaults)),
            recorder: config.record.then(Recorder::new),
            stats: Arc::new(Stats::default()),
            ids: AtomicU64::new(0),
        }
    }

    /// A poisoned lock only means another request panicked mid-update; the
    /// state is still usable, and a mock must keep serving.
    pub fn behavior(&self) -> MutexGuard<'_, BehaviorState> {
        self.behavior.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Behaviour for one model request (consumes one-shot overrides) and
    /// counts the request.
    pub fn begin_model_request(&self) -> Arc<Behavior> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        self.behavior().take_next()
    }

    /// Monotonic id for response ids (`chatcmpl-mock-<n>`).
    pub fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// `POST /_mock/reset`.
    pub fn reset(&self) {
        self.behavior().reset();
        if let Some(r) = &self.recorder {
            r.clear();
        }
        self.stats.requests.store(0, Ordering::Relaxed);
        self.stats.cancelled_streams.store(0, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub open_streams: AtomicU64,
    pub cancelled_streams: AtomicU64,
}

impl Stats {
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({
            "requests": self.requests.load(Ordering::Relaxed),
            "open_streams": self.open_streams.load(Ordering::Relaxed),
            "cancelled_streams": self.cancelled_streams.load(Ordering::Relaxed),
        })
    }
}

/// Lives inside a streaming body. Dropped before `finish()` means hyper gave
/// up on the body, i.e. the client went away: that is a cancelled stream.
pub struct StreamGuard {
    stats: Arc<Stats>,
    finished: bool,
}

impl StreamGuard {
    pub fn new(stats: Arc<Stats>) -> Self {
        stats.open_streams.fetch_add(1, Ordering::Relaxed);
        StreamGuard {
            stats,
            finished: false,
        }
    }

    /// The stream reached its end (or a deliberate fault ended it).
    pub fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.stats.open_streams.fetch_sub(1, Ordering::Relaxed);
        if !self.finished {
            self.stats.cancelled_streams.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_counts_cancelled_only_when_unfinished() {
        let stats = Arc::new(Stats::default());
        let g = StreamGuard::new(stats.clone());
        assert_eq!(stats.open_streams.load(Ordering::Relaxed), 1);
        drop(g);
        let mut g = StreamGuard::new(stats.clone());
        g.finish();
        drop(g);
        assert_eq!(stats.open_streams.load(Ordering::Relaxed), 0);
        assert_eq!(stats.cancelled_streams.load(Ordering::Relaxed), 1);
    }
}

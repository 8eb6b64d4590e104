//! Shared server state: behaviour, recorder, counters, and what the mock
//! remembers between model requests (Anthropic prompt-cache prefixes, stored
//! OpenAI Responses).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
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
    /// Hashes of the Anthropic prompt prefixes written to the mock's cache.
    prompt_cache: Mutex<Bounded<[u8; 32], ()>>,
    /// Responses API answers stored for `previous_response_id`, by id.
    responses: Mutex<Bounded<String, StoredResponse>>,
}

/// What a later request's `previous_response_id` needs of a stored response.
#[derive(Debug, Clone, Default)]
pub struct StoredResponse {
    /// Prompt characters of the whole conversation up to and including the
    /// response's own output (a follow-up counts them as input).
    pub context_chars: usize,
    /// The last user text of the conversation (echoed when the follow-up
    /// brings no new user text, e.g. only a function call output).
    pub last_user: String,
    /// `call_id`s of the function calls the response made.
    pub call_ids: Vec<String>,
}

/// Entries kept beyond this are dropped oldest first, so a long run cannot
/// grow the mock's memory without bound.
pub const MAX_REMEMBERED: usize = 10_000;

/// A map that forgets its oldest entries beyond [`MAX_REMEMBERED`].
#[derive(Debug)]
pub struct Bounded<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    fn new() -> Self {
        Bounded { map: HashMap::new(), order: VecDeque::new() }
    }

    pub fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k)
    }

    pub fn contains(&self, k: &K) -> bool {
        self.map.contains_key(k)
    }

    pub fn insert(&mut self, k: K, v: V) {
        if self.map.insert(k.clone(), v).is_none() {
            self.order.push_back(k);
            if self.order.len() > MAX_REMEMBERED {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }

    fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AppState {
    pub fn new(config: Config) -> Self {
        AppState {
            behavior: Mutex::new(BehaviorState::new(config.defaults)),
            recorder: config.record.then(Recorder::new),
            stats: Arc::new(Stats::default()),
            ids: AtomicU64::new(0),
            prompt_cache: Mutex::new(Bounded::new()),
            responses: Mutex::new(Bounded::new()),
        }
    }

    /// Looks up which of `prefixes` (hashes of growing prompt prefixes) are
    /// cached, then caches `write`; under one lock so two concurrent
    /// requests see one order. Returns the index of the longest cached one.
    pub fn prompt_cache_lookup(&self, prefixes: &[[u8; 32]], write: &[[u8; 32]]) -> Option<usize> {
        let mut cache = lock(&self.prompt_cache);
        let hit = prefixes.iter().rposition(|p| cache.contains(p));
        for w in write {
            cache.insert(*w, ());
        }
        hit
    }

    /// Stores a Responses API answer for `previous_response_id`.
    pub fn store_response(&self, id: String, stored: StoredResponse) {
        lock(&self.responses).insert(id, stored);
    }

    /// A stored Responses API answer.
    pub fn stored_response(&self, id: &str) -> Option<StoredResponse> {
        lock(&self.responses).get(&id.to_owned()).cloned()
    }

    /// A poisoned lock only means another request panicked mid-update; the
    /// state is still usable, and a mock must keep serving.
    pub fn behavior(&self) -> MutexGuard<'_, BehaviorState> {
        lock(&self.behavior)
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

    /// `POST /_mock/reset`: also forgets cached prompt prefixes and stored
    /// responses.
    pub fn reset(&self) {
        self.behavior().reset();
        lock(&self.prompt_cache).clear();
        lock(&self.responses).clear();
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
    /// `GET /health` answers (a gateway's active health probes).
    pub health_checks: AtomicU64,
}

impl Stats {
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({
            "requests": self.requests.load(Ordering::Relaxed),
            "open_streams": self.open_streams.load(Ordering::Relaxed),
            "cancelled_streams": self.cancelled_streams.load(Ordering::Relaxed),
            "health_checks": self.health_checks.load(Ordering::Relaxed),
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
        StreamGuard { stats, finished: false }
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
    fn bounded_forgets_oldest_and_reset_forgets_all() {
        let mut b = Bounded::new();
        for i in 0..MAX_REMEMBERED + 2 {
            b.insert(i, ());
        }
        assert!(!b.contains(&0) && !b.contains(&1) && b.contains(&2));
        assert_eq!(b.map.len(), MAX_REMEMBERED);

        let st = AppState::new(Config::default());
        assert_eq!(st.prompt_cache_lookup(&[[1; 32], [2; 32]], &[[1; 32]]), None);
        assert_eq!(st.prompt_cache_lookup(&[[1; 32], [2; 32]], &[[2; 32]]), Some(0));
        assert_eq!(st.prompt_cache_lookup(&[[1; 32], [2; 32]], &[]), Some(1));
        st.store_response("r".into(), StoredResponse::default());
        assert!(st.stored_response("r").is_some());
        st.reset();
        assert_eq!(st.prompt_cache_lookup(&[[1; 32]], &[]), None);
        assert!(st.stored_response("r").is_none());
    }

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

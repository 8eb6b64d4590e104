//! The memory store: entries with a deadline, at most `max_entries` of them
//! (the least recently used goes first once expired ones are gone), and the
//! vectors of semantic mode beside their entries, searched by cosine.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::vector;
use crate::Clock;

struct Entry {
    value: Arc<Vec<u8>>,
    expires_ms: u64,
    /// Its place in the use order.
    used: u64,
    /// Semantic mode: the prompt's vector and the namespace it is searched in.
    vector: Option<(String, Vec<f32>)>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Use order: the smallest is the least recently used.
    order: BTreeMap<u64, String>,
    next: u64,
}

pub struct MemoryStore {
    inner: Mutex<Inner>,
    max_entries: usize,
    clock: Arc<dyn Clock>,
}

impl MemoryStore {
    pub fn new(max_entries: usize, clock: Arc<dyn Clock>) -> Self {
        MemoryStore { inner: Mutex::new(Inner::default()), max_entries: max_entries.max(1), clock }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.entries.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live entry under `key` (an expired one is removed), and its
    /// remaining time to live in milliseconds.
    pub fn get(&self, key: &str) -> Option<(Arc<Vec<u8>>, u64)> {
        let now = self.clock.now_ms();
        let mut g = self.inner.lock().ok()?;
        let inner = &mut *g;
        let e = inner.entries.get_mut(key)?;
        if e.expires_ms <= now {
            let used = e.used;
            inner.entries.remove(key);
            inner.order.remove(&used);
            return None;
        }
        inner.order.remove(&e.used);
        e.used = inner.next;
        inner.next += 1;
        inner.order.insert(e.used, key.to_string());
        Some((e.value.clone(), e.expires_ms - now))
    }

    /// Stores `value` under `key` for `ttl_ms`, with its vector in
    /// `namespace` for semantic search.
    pub fn put(&self, key: &str, value: Vec<u8>, ttl_ms: u64, vector: Option<(String, Vec<f32>)>) {
        let now = self.clock.now_ms();
        let Ok(mut g) = self.inner.lock() else { return };
        let inner = &mut *g;
        if let Some(old) = inner.entries.remove(key) {
            inner.order.remove(&old.used);
        }
        if inner.entries.len() >= self.max_entries {
            inner.entries.retain(|_, e| e.expires_ms > now);
            let live: std::collections::HashSet<u64> = inner.entries.values().map(|e| e.used).collect();
            inner.order.retain(|u, _| live.contains(u));
        }
        while inner.entries.len() >= self.max_entries {
            let Some((_, oldest)) = inner.order.pop_first() else { break };
            inner.entries.remove(&oldest);
        }
        let used = inner.next;
        inner.next += 1;
        inner.order.insert(used, key.to_string());
        let expires_ms = now.saturating_add(ttl_ms);
        inner.entries.insert(key.to_string(), Entry { value: Arc::new(value), expires_ms, used, vector });
    }

    /// Removes `key` (a refresh replaces it; a broken entry goes).
    pub fn remove(&self, key: &str) {
        if let Ok(mut g) = self.inner.lock() {
            if let Some(e) = g.entries.remove(key) {
                g.order.remove(&e.used);
            }
        }
    }

    /// The key of the live entry in `namespace` whose vector is closest to
    /// `query`, within `max_distance` (cosine distance), with the distance.
    pub fn nearest(&self, namespace: &str, query: &[f32], max_distance: f64) -> Option<(String, f64)> {
        let now = self.clock.now_ms();
        let g = self.inner.lock().ok()?;
        let candidates = g.entries.iter().filter(|(_, e)| e.expires_ms > now).filter_map(|(k, e)| {
            let (ns, v) = e.vector.as_ref()?;
            (ns == namespace).then_some((k.as_str(), v.as_slice()))
        });
        vector::nearest(query, candidates, max_distance).map(|(k, s)| (k.to_string(), s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    fn store(max: usize) -> (MemoryStore, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(1_000));
        (MemoryStore::new(max, clock.clone()), clock)
    }

    #[test]
    fn entries_live_for_their_ttl() {
        let (s, clock) = store(10);
        s.put("k", b"v".to_vec(), 2_000, None);
        assert_eq!(s.get("k").map(|(v, ttl)| (v.to_vec(), ttl)), Some((b"v".to_vec(), 2_000)));
        clock.advance(1_999);
        assert_eq!(s.get("k").map(|(_, ttl)| ttl), Some(1));
        clock.advance(1);
        assert!(s.get("k").is_none());
        assert!(s.is_empty(), "the expired entry is gone");
    }

    #[test]
    fn a_full_store_drops_the_expired_then_the_least_recently_used() {
        let (s, clock) = store(3);
        s.put("short", b"1".to_vec(), 10, None);
        s.put("a", b"2".to_vec(), 10_000, None);
        s.put("b", b"3".to_vec(), 10_000, None);
        clock.advance(20);
        s.put("c", b"4".to_vec(), 10_000, None);
        assert_eq!(s.len(), 3);
        assert!(s.get("a").is_some() && s.get("b").is_some() && s.get("c").is_some());
        // a is used again: b is now the least recently used.
        assert!(s.get("a").is_some());
        s.put("d", b"5".to_vec(), 10_000, None);
        assert_eq!(s.len(), 3);
        assert!(s.get("b").is_none());
        assert!(s.get("a").is_some() && s.get("c").is_some() && s.get("d").is_some());
    }

    #[test]
    fn replacing_an_entry_keeps_one() {
        let (s, _) = store(2);
        s.put("k", b"1".to_vec(), 1_000, None);
        s.put("k", b"2".to_vec(), 1_000, None);
        s.put("j", b"3".to_vec(), 1_000, None);
        assert_eq!(s.get("k").map(|(v, _)| v.to_vec()), Some(b"2".to_vec()));
        assert!(s.get("j").is_some());
        s.remove("k");
        assert!(s.get("k").is_none());
    }

    #[test]
    fn nearest_searches_live_vectors_of_one_namespace() {
        let (s, clock) = store(10);
        s.put("x", b"1".to_vec(), 1_000, Some(("alice".into(), vec![1.0, 0.0])));
        s.put("y", b"2".to_vec(), 5_000, Some(("alice".into(), vec![0.6, 0.8])));
        s.put("z", b"3".to_vec(), 5_000, Some(("bob".into(), vec![1.0, 0.0])));
        assert_eq!(s.nearest("alice", &[0.99, 0.1], 0.1).map(|x| x.0), Some("x".to_string()));
        assert_eq!(s.nearest("alice", &[0.0, 1.0], 0.1), None);
        assert_eq!(s.nearest("carol", &[1.0, 0.0], 0.5), None);
        clock.advance(1_000);
        assert_eq!(s.nearest("alice", &[0.99, 0.1], 0.5).map(|x| x.0), Some("y".to_string()));
    }
}

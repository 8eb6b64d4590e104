//! Where cached answers live: this process's memory store (bounded, least
//! recently used first out) or Redis (every replica reads what any stored).
//! Both hold the same bytes: a `CachedAnswer` as JSON, with the semantic
//! vector beside it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tollgate_cache::{vector, CachedAnswer, Clock, MemoryStore, SystemClock};

use crate::limits::LazyRedis;

pub enum Store {
    Memory(Arc<MemoryStore>),
    /// Redis, and the most vectors a namespace's index keeps (`max_entries`).
    Redis(Arc<LazyRedis>, usize),
}

const ENTRY_PREFIX: &str = "tollgate:cache:e:";
/// `v2`: the index became a hash of vectors and a ZSET of expiries; the
/// hashes of `v1` (no ZSET) expire on their own.
const INDEX_PREFIX: &str = "tollgate:cache:v2:";

/// A namespace's index in Redis (vectors hash, expiry ZSET): short, free of
/// the scope's characters, and one hash tag so both share a Cluster slot.
fn index_keys(namespace: &str) -> (String, String) {
    let digest = Sha256::digest(namespace.as_bytes());
    let tag = tollgate_cache::hex(&digest[..16]);
    (format!("{INDEX_PREFIX}{{{tag}}}:v"), format!("{INDEX_PREFIX}{{{tag}}}:x"))
}

/// A boxed future: the Redis client's futures are deep, and the request
/// path's future must stay within rustc's layout depth (as the limiters'
/// `async_trait` calls do).
pub type Call<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

impl Store {
    /// The live answer under `key`.
    pub fn get<'a>(&'a self, key: &'a str, now_ms: u64) -> Call<'a, Option<CachedAnswer>> {
        Box::pin(self.get_inner(key, now_ms))
    }

    async fn get_inner(&self, key: &str, now_ms: u64) -> Result<Option<CachedAnswer>, String> {
        let bytes = match self {
            Store::Memory(m) => m.get(key).map(|(v, _)| v.to_vec()),
            Store::Redis(r, _) => {
                let client = r.get().await.map_err(|e| e.to_string())?;
                client.kv_get(&format!("{ENTRY_PREFIX}{key}")).await.map_err(|e| e.to_string())?
            }
        };
        Ok(bytes.and_then(|b| CachedAnswer::from_bytes(&b)).filter(|a| a.expires_ms > now_ms))
    }

    /// Stores `answer` under `key` until it expires, with its vector in its namespace.
    pub fn put<'a>(
        &'a self,
        key: &'a str,
        answer: &'a CachedAnswer,
        ttl_ms: u64,
        vector: Option<&'a (String, Vec<f32>)>,
    ) -> Call<'a, ()> {
        Box::pin(self.put_inner(key, answer, ttl_ms, vector))
    }

    async fn put_inner(
        &self,
        key: &str,
        answer: &CachedAnswer,
        ttl_ms: u64,
        vector: Option<&(String, Vec<f32>)>,
    ) -> Result<(), String> {
        let bytes = answer.to_bytes();
        match self {
            Store::Memory(m) => {
                m.put(key, bytes, ttl_ms, vector.cloned());
                Ok(())
            }
            Store::Redis(r, max_entries) => {
                let client = r.get().await.map_err(|e| e.to_string())?;
                client.kv_set_px(&format!("{ENTRY_PREFIX}{key}"), &bytes, ttl_ms).await.map_err(|e| e.to_string())?;
                if let Some((ns, v)) = vector {
                    let (h, z) = index_keys(ns);
                    let when = (answer.expires_ms, SystemClock.now_ms());
                    let bytes = vector::to_bytes(v);
                    let put = client.kv_index_put((&h, &z), key, &bytes, when, *max_entries);
                    put.await.map_err(|e| e.to_string())?;
                }
                Ok(())
            }
        }
    }

    /// The key of the entry in `namespace` closest to `query`, within
    /// `max_distance` (cosine distance). In Redis the namespace's live vectors
    /// are read whole (a linear scan, as in memory) after its expired ones are
    /// deleted; a vector whose entry Redis evicted early is dropped when it wins.
    pub fn nearest<'a>(
        &'a self,
        namespace: &'a str,
        query: &'a [f32],
        max_distance: f64,
        now_ms: u64,
    ) -> Call<'a, Option<(CachedAnswer, String)>> {
        Box::pin(self.nearest_inner(namespace, query, max_distance, now_ms))
    }

    async fn nearest_inner(
        &self,
        namespace: &str,
        query: &[f32],
        max_distance: f64,
        now_ms: u64,
    ) -> Result<Option<(CachedAnswer, String)>, String> {
        let key = match self {
            Store::Memory(m) => m.nearest(namespace, query, max_distance).map(|(k, _)| k),
            Store::Redis(r, _) => {
                let client = r.get().await.map_err(|e| e.to_string())?;
                let (h, z) = index_keys(namespace);
                let all = client.kv_index_live((&h, &z), now_ms).await.map_err(|e| e.to_string())?;
                let decoded: Vec<(String, Vec<f32>)> =
                    all.into_iter().filter_map(|(k, b)| vector::from_bytes(&b).map(|v| (k, v))).collect();
                let candidates = decoded.iter().map(|(k, v)| (k.as_str(), v.as_slice()));
                vector::nearest(query, candidates, max_distance).map(|(k, _)| k.to_string())
            }
        };
        let Some(key) = key else { return Ok(None) };
        match self.get(&key, now_ms).await? {
            Some(answer) => Ok(Some((answer, key))),
            None => {
                if let Store::Redis(r, _) = self {
                    if let Ok(client) = r.get().await {
                        let (h, z) = index_keys(namespace);
                        let _ = client.kv_index_drop((&h, &z), &key).await;
                    }
                }
                Ok(None)
            }
        }
    }
}

//! Where cached answers live: this process's memory store (bounded, least
//! recently used first out) or Redis (every replica reads what any stored).
//! Both hold the same bytes: a `CachedAnswer` as JSON, with the semantic
//! vector beside it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tollgate_cache::{vector, CachedAnswer, MemoryStore};

use crate::limits::LazyRedis;

pub enum Store {
    Memory(Arc<MemoryStore>),
    Redis(Arc<LazyRedis>),
}

const ENTRY_PREFIX: &str = "tollgate:cache:e:";
const VECTORS_PREFIX: &str = "tollgate:cache:v:";

/// A namespace's vector hash in Redis: short and free of the scope's characters.
fn vectors_key(namespace: &str) -> String {
    let digest = Sha256::digest(namespace.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{VECTORS_PREFIX}{hex}")
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
            Store::Redis(r) => {
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
            Store::Redis(r) => {
                let client = r.get().await.map_err(|e| e.to_string())?;
                client.kv_set_px(&format!("{ENTRY_PREFIX}{key}"), &bytes, ttl_ms).await.map_err(|e| e.to_string())?;
                if let Some((ns, v)) = vector {
                    let hash = vectors_key(ns);
                    client.kv_hset_px(&hash, key, &vector::to_bytes(v), ttl_ms).await.map_err(|e| e.to_string())?;
                }
                Ok(())
            }
        }
    }

    /// The key of the entry in `namespace` most similar to `query`, at
    /// `threshold` or above. In Redis the namespace's vectors are read whole
    /// (a linear scan, as in memory); vectors whose entry expired are dropped
    /// when a search meets them.
    pub fn nearest<'a>(
        &'a self,
        namespace: &'a str,
        query: &'a [f32],
        threshold: f64,
        now_ms: u64,
    ) -> Call<'a, Option<(CachedAnswer, String)>> {
        Box::pin(self.nearest_inner(namespace, query, threshold, now_ms))
    }

    async fn nearest_inner(
        &self,
        namespace: &str,
        query: &[f32],
        threshold: f64,
        now_ms: u64,
    ) -> Result<Option<(CachedAnswer, String)>, String> {
        let key = match self {
            Store::Memory(m) => m.nearest(namespace, query, threshold).map(|(k, _)| k),
            Store::Redis(r) => {
                let client = r.get().await.map_err(|e| e.to_string())?;
                let all = client.kv_hgetall(&vectors_key(namespace)).await.map_err(|e| e.to_string())?;
                let decoded: Vec<(String, Vec<f32>)> =
                    all.into_iter().filter_map(|(k, b)| vector::from_bytes(&b).map(|v| (k, v))).collect();
                let candidates = decoded.iter().map(|(k, v)| (k.as_str(), v.as_slice()));
                vector::nearest(query, candidates, threshold).map(|(k, _)| k.to_string())
            }
        };
        let Some(key) = key else { return Ok(None) };
        match self.get(&key, now_ms).await? {
            Some(answer) => Ok(Some((answer, key))),
            None => {
                if let Store::Redis(r) = self {
                    if let Ok(client) = r.get().await {
                        let _ = client.kv_hdel(&vectors_key(namespace), &key).await;
                    }
                }
                Ok(None)
            }
        }
    }
}

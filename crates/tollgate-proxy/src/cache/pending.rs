//! A miss's store-to-be: where the answer goes once it is complete. Held by
//! the request context from the lookup to the end of the answer; dropped
//! unused when the answer fails, is cut, or is not a 200.

use std::sync::Arc;

use tollgate_cache::{CachedAnswer, Clock, SystemClock};
use tollgate_llm::ingress::Ingress;

use crate::cache::store::Store;

pub struct Pending {
    pub store: Arc<Store>,
    pub key: String,
    /// Semantic mode: the namespace and the prompt's vector.
    pub vector: Option<(String, Vec<f32>)>,
    pub ttl_ms: u64,
    /// The caller's format: what the stored answer is read from.
    pub ingress: Ingress,
}

impl Pending {
    /// Stores `answer` (from `provider`, target `label`): in memory at once,
    /// in Redis in the background (the client never waits for Redis).
    pub fn save(self, mut answer: CachedAnswer, provider: &str, label: &str) {
        answer.provider = provider.to_string();
        answer.target = label.to_string();
        answer.expires_ms = SystemClock.now_ms().saturating_add(self.ttl_ms);
        if let Store::Memory(m) = &*self.store {
            // In memory at once: the next request already finds it.
            m.put(&self.key, answer.to_bytes(), self.ttl_ms, self.vector);
            return;
        }
        tokio::spawn(async move {
            if let Err(e) = self.store.put(&self.key, &answer, self.ttl_ms, self.vector.as_ref()).await {
                tracing::warn!(error = %e, "ai-semantic-cache: the answer could not be stored");
            }
        });
    }
}

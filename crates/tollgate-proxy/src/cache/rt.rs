//! The compiled `ai-semantic-cache` plugin: its settings, its store (a
//! memory store survives reloads while its plugin is unchanged; Redis
//! clients are the limiters' own, one per server) and its embeddings target.

use std::sync::Arc;

use once_cell::sync::Lazy;
use sha2::{Digest, Sha256};
use tollgate_cache::{MemoryStore, SystemClock, TextOptions};
use tollgate_config::cache::AiSemanticCacheConfig;

use crate::cache::store::Store;
use crate::limits::LimiterRegistry;
use crate::llm::target::{LlmTarget, TargetError};
use crate::survivors::Survivors;
use crate::upstream::tls::UpstreamTls;

pub struct CacheRt {
    pub config: AiSemanticCacheConfig,
    /// Where the plugin sits (`r=<route>/s=<service>/c=<consumer>`).
    pub scope: String,
    pub store: Arc<Store>,
    /// Semantic mode: the model that embeds prompts.
    pub embedder: Option<Arc<LlmTarget>>,
    /// A digest of the embeddings target: vectors of another model (or
    /// endpoint) are not comparable, so they live in another namespace.
    pub embedder_id: String,
}

impl std::fmt::Debug for CacheRt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheRt").field("scope", &self.scope).finish()
    }
}

/// Memory stores by plugin scope and size, so a reload keeps the entries.
static MEMORY: Lazy<Survivors<MemoryStore>> = Lazy::new(Survivors::default);

impl CacheRt {
    pub fn compile(
        c: &AiSemanticCacheConfig,
        scope: String,
        limiters: &LimiterRegistry,
        tls: &UpstreamTls,
    ) -> Result<Self, TargetError> {
        let redis = match (c.vectordb.strategy.as_str(), &c.vectordb.redis) {
            ("redis", Some(r)) => limiters.redis_client(r),
            _ => None,
        };
        let store = match redis {
            Some(client) => Store::Redis(client, c.max_entries),
            None => {
                let key = format!("{scope}|{}", c.max_entries);
                Store::Memory(MEMORY.get_or_build(&key, || MemoryStore::new(c.max_entries, Arc::new(SystemClock))))
            }
        };
        let embedder = match &c.embeddings {
            Some(e) => Some(Arc::new(LlmTarget::embeddings(e, tls)?)),
            None => None,
        };
        let embedder_id = targets_digest(embedder.as_slice());
        Ok(CacheRt { config: c.clone(), scope, store: Arc::new(store), embedder, embedder_id })
    }

    pub fn text_options(&self) -> TextOptions {
        let c = &self.config;
        TextOptions {
            countback: c.message_countback,
            ignore_system: c.ignore_system_prompts,
            ignore_assistant: c.ignore_assistant_prompts,
            ignore_tool: c.ignore_tool_prompts,
        }
    }

    pub fn ttl_ms(&self) -> u64 {
        self.config.cache_ttl.saturating_mul(1000)
    }
}

/// A short digest of what answers or embeds for a route: each target's
/// provider, model and its defaults, provider options and endpoint. Part of
/// the namespace, so a changed provider, model or upstream never serves the
/// old one's entries, and two deployments whose routes share names but not
/// targets never share entries in one Redis. Prices and weights are left
/// out: they do not change an answer.
pub fn targets_digest(targets: &[Arc<LlmTarget>]) -> String {
    let mut h = Sha256::new();
    for t in targets {
        let identity = (&t.provider, &t.model, &t.options, &t.endpoint, t.api);
        h.update(format!("{identity:?}").as_bytes());
        h.update([0u8]);
    }
    tollgate_cache::hex(&h.finalize()[..8])
}

//! `ai-semantic-cache` (Kong's plugin name and fields): answers to LLM
//! requests kept for `cache_ttl` seconds and served again to the same
//! request (exact) or to a request of the same meaning (semantic, with an
//! `embeddings` model), in memory or in Redis.

use serde::Deserialize;

use crate::error::Report;
use crate::schema::{EmbeddingsModelConfig, RedisSettings};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiSemanticCacheConfig {
    /// Seconds an answer stays in the cache.
    #[serde(default = "AiSemanticCacheConfig::default_ttl")]
    pub cache_ttl: u64,
    /// Honour the caller's `Cache-Control: no-cache` (refresh) and `no-store` (bypass).
    #[serde(default)]
    pub cache_control: bool,
    /// With `embeddings`: look for the exact request first. Without
    /// `embeddings` the cache is exact only, whatever this says.
    #[serde(default)]
    pub exact_caching: bool,
    /// The model that embeds prompts (semantic mode); absent: exact mode.
    #[serde(default)]
    pub embeddings: Option<EmbeddingsModelConfig>,
    #[serde(default)]
    pub vectordb: CacheVectorDb,
    /// A cache that fails (Redis down, embeddings failing) refuses the
    /// request with 500 rather than passing it on uncached.
    #[serde(default)]
    pub stop_on_failure: bool,
    /// How many of the last messages are embedded (semantic mode).
    #[serde(default = "AiSemanticCacheConfig::default_countback")]
    pub message_countback: usize,
    #[serde(default)]
    pub ignore_system_prompts: bool,
    #[serde(default)]
    pub ignore_assistant_prompts: bool,
    #[serde(default)]
    pub ignore_tool_prompts: bool,
    /// tollgate: `consumer` (each consumer its own answers) or `shared`.
    #[serde(default = "AiSemanticCacheConfig::default_scope")]
    pub scope: String,
    /// tollgate: cache requests that do not ask for `temperature = 0`
    /// (without it only those and callers sending `x-tollgate-cache: on` are).
    #[serde(default)]
    pub cache_nondeterministic: bool,
    /// tollgate: cache requests whose last message is a tool result.
    #[serde(default)]
    pub cache_tool_results: bool,
    /// tollgate: entries the memory store holds before it evicts the oldest.
    #[serde(default = "AiSemanticCacheConfig::default_max_entries")]
    pub max_entries: usize,
}

/// Where entries live and how close a semantic match must be (Kong's `vectordb`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheVectorDb {
    /// `memory` (this process) or `redis` (shared by every replica).
    #[serde(default = "CacheVectorDb::default_strategy")]
    pub strategy: String,
    /// Greatest cosine distance (1 − similarity) of a semantic hit, as in
    /// Kong, whose examples set `0.1` with `distance_metric = "cosine"`.
    #[serde(default = "CacheVectorDb::default_threshold")]
    pub threshold: f64,
    /// Accepted for Kong compatibility; vectors take the model's size.
    #[serde(default)]
    pub dimensions: Option<u32>,
    /// `cosine` only.
    #[serde(default = "CacheVectorDb::default_metric")]
    pub distance_metric: String,
    #[serde(default)]
    pub redis: Option<RedisSettings>,
}

impl Default for CacheVectorDb {
    fn default() -> Self {
        CacheVectorDb {
            strategy: Self::default_strategy(),
            threshold: Self::default_threshold(),
            dimensions: None,
            distance_metric: Self::default_metric(),
            redis: None,
        }
    }
}

impl CacheVectorDb {
    fn default_strategy() -> String {
        "memory".to_string()
    }
    fn default_threshold() -> f64 {
        0.1
    }
    fn default_metric() -> String {
        "cosine".to_string()
    }
}

impl AiSemanticCacheConfig {
    fn default_ttl() -> u64 {
        300
    }
    fn default_countback() -> usize {
        1
    }
    fn default_scope() -> String {
        "consumer".to_string()
    }
    fn default_max_entries() -> usize {
        10_000
    }

    /// Semantic mode: prompts are embedded.
    pub fn semantic(&self) -> bool {
        self.embeddings.is_some()
    }
}

/// Checks what typing cannot: names, ranges, and the Redis table.
pub(crate) fn check(base: &str, c: &AiSemanticCacheConfig, r: &mut Report<'_>) {
    if c.cache_ttl == 0 {
        r.error(format!("{base}.cache_ttl"), "must be at least 1 (seconds)");
    }
    if c.message_countback == 0 {
        r.error(format!("{base}.message_countback"), "must be at least 1");
    }
    if c.max_entries == 0 {
        r.error(format!("{base}.max_entries"), "must be at least 1");
    }
    if !matches!(c.scope.as_str(), "consumer" | "shared") {
        let path = format!("{base}.scope");
        let message = format!("scope {} must be \"consumer\" or \"shared\"", r.show(&path, &c.scope));
        r.error(path, message);
    }
    let v = &c.vectordb;
    let vpath = format!("{base}.vectordb");
    match (v.strategy.as_str(), &v.redis) {
        ("memory", _) => {}
        ("redis", Some(redis)) => crate::validate::check_redis(&format!("{vpath}.redis"), redis, r),
        ("redis", None) => r.error(format!("{vpath}.redis"), "strategy = \"redis\" needs a redis table"),
        _ => {
            let path = format!("{vpath}.strategy");
            let message = format!("strategy {} must be \"memory\" or \"redis\"", r.show(&path, &v.strategy));
            r.error(path, message);
        }
    }
    if v.distance_metric != "cosine" {
        let path = format!("{vpath}.distance_metric");
        let message =
            format!("distance_metric {} is not implemented (implemented: cosine)", r.show(&path, &v.distance_metric));
        r.error(path, message);
    }
    if !(0.0..=2.0).contains(&v.threshold) {
        r.error(
            format!("{vpath}.threshold"),
            format!("threshold {} must be a cosine distance (1 - similarity) in 0..=2", v.threshold),
        );
    }
    if let Some(e) = &c.embeddings {
        let path = format!("{base}.embeddings.model.provider");
        if !crate::PROVIDERS.contains(&e.model.provider.as_str()) || e.model.provider == "anthropic" {
            let message = format!("{} cannot embed text", r.show(&path, &e.model.provider));
            r.error(path, message);
        }
        if e.model.name.is_none() {
            r.error(format!("{base}.embeddings.model.name"), "name the embeddings model");
        }
        if let Some(auth) = &e.auth {
            crate::validate::check_auth(&format!("{base}.embeddings.auth"), auth, r);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::schema::PluginConfig;

    const BASE: &str = "[[services]]\nname = \"llm\"\n\n[[plugins]]\nname = \"ai-semantic-cache\"\nservice = \"llm\"\n";

    fn load(config: &str) -> Result<crate::Config, Vec<String>> {
        crate::load_str(&format!("{BASE}{config}"), Path::new("t.toml"), &|_| None)
            .map_err(|e| e.0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn kongs_fields_load_with_their_defaults() {
        let c = load("[plugins.config]\ncache_control = true\n").unwrap_or_else(|e| panic!("{e:?}"));
        let PluginConfig::AiSemanticCache(p) = &c.plugins[0].config else { panic!("typed") };
        assert!(p.cache_control && !p.semantic() && !p.exact_caching);
        assert_eq!((p.cache_ttl, p.message_countback, p.scope.as_str()), (300, 1, "consumer"));
        assert_eq!((p.vectordb.strategy.as_str(), p.vectordb.threshold), ("memory", 0.1));
        let c = load(
            "[plugins.config]\ncache_ttl = 5\nexact_caching = true\nmessage_countback = 3\n\
             [plugins.config.embeddings]\nmodel = { provider = \"openai\", name = \"text-embedding-3-small\" }\n\
             [plugins.config.vectordb]\nstrategy = \"redis\"\nthreshold = 0.2\ndimensions = 1536\nredis = { host = \"r\" }\n",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let PluginConfig::AiSemanticCache(p) = &c.plugins[0].config else { panic!("typed") };
        assert!(p.semantic() && p.exact_caching);
        assert_eq!(p.vectordb.redis.as_ref().map(|r| r.host.as_str()), Some("r"));
    }

    #[test]
    fn bad_values_are_errors_naming_their_field() {
        let e = load(
            "[plugins.config]\ncache_ttl = 0\nscope = \"everyone\"\n[plugins.config.vectordb]\nstrategy = \"redis\"\n\
             threshold = 2.5\ndistance_metric = \"euclidean\"\n",
        )
        .err()
        .unwrap_or_default()
        .join("\n");
        for field in ["cache_ttl", "scope", "vectordb.redis", "vectordb.threshold", "vectordb.distance_metric"] {
            assert!(e.contains(field), "{field} in:\n{e}");
        }
        let e =
            load("[plugins.config]\nembeddings = { model = { provider = \"anthropic\" } }\n").err().unwrap_or_default();
        assert!(
            e.iter().any(|m| m.contains("cannot embed")) && e.iter().any(|m| m.contains("name the embeddings model")),
            "{e:?}"
        );
        assert!(load("[plugins.config]\nunknown = 1\n").is_err());
    }
}

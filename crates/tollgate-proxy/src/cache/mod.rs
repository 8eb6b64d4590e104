//! `ai-semantic-cache` in the request path. After authentication, ACLs and
//! request limits, and before the token budget is reserved, an LLM
//! generation looks for a cached answer; a hit is answered here in the
//! caller's format (JSON or a stream) without any provider, charged nothing
//! against token budgets; a miss carries a `Pending` store that the answer
//! fills once it is complete.
//!
//! ```text
//! rt       the compiled plugin: config, store, embeddings target (below the snapshot)
//! store    where entries live: the memory store or Redis (shared by replicas)
//! pending  a miss's store-to-be, held by the request context
//! lookup   the decision (bypass, refresh, lookup) and the search, exact then semantic
//! hit      answering from the cache
//! tee      storing what the provider answered: JSON whole, streams as they pass
//! ```
//!
//! Paths name the file (`crate::cache::rt::CacheRt`), never this module, so
//! the snapshot and the context reach only the parts below them.

pub mod hit;
pub mod lookup;
pub mod pending;
pub mod rt;
pub mod store;
pub mod tee;

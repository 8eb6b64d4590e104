//! The pure part of `ai-semantic-cache`: what a cached request is keyed by,
//! what a cached answer holds and how it is replayed in any caller format
//! (JSON or stream), the bounded in-memory store with TTLs, and the cosine
//! search of semantic mode. No I/O and no clock of its own: the proxy does
//! the calls (embeddings, Redis) and passes the time in through [`Clock`].
//!
//! ```text
//! key      the normalised request's hash, the text semantic mode embeds, the admission rules
//! entry    the provider-neutral cached answer; collecting it from an answer, replaying it
//! store    the memory store: TTL, least-recently-used eviction, nearest vector
//! vector   cosine similarity and the vectors' wire form
//! (the injectable clock is tollgate-clock's, re-exported)
//! ```

pub mod entry;
pub mod key;
pub mod store;
pub mod vector;

pub use entry::{CachedAnswer, Collector};
pub use key::{exact_key, hex, prompt_text, semantic_context, Admissibility, TextOptions};
pub use store::MemoryStore;
pub use tollgate_clock::{Clock, ManualClock, SystemClock};
pub use vector::cosine;

//! tollgate's request pipeline on Pingora.
//!
//! Layers, each using only those below it:
//!
//! ```text
//! gateway            ProxyHttp: phases delegate to the modules below
//! llm/  mcp/exchange  passthrough                   what a route serves, after the pipeline
//! guard/             guardrails on LLM requests (prompt guard, sanitizer, webhook), before any provider
//! pipeline/          request_filter's steps: shield, route, authenticate, authorize, limit
//! limits  budget/  mcp  oauth  otel  observe/  metrics  access_log  health   per-concern runtime
//! cache/             ai-semantic-cache: lookup and hits above the snapshot, its runtime and store below
//! snapshot  router  keyauth  survivors                       the compiled config
//! answer  ctx  respond  body  redact  tls  client_tls  admin             per-request state and answers
//! vaults/            remote vaults' secrets: fetched at load, cached, refreshed by TTL
//! upstream/          the one HTTP client: connector, pools, DNS, peers, TLS, fetch
//! ```
//!
//! `ctx` and `snapshot` are the shared vocabulary: the context holds a
//! request's facts (its snapshot, limit reservation and span among them), so
//! they sit beside the runtime modules whose types they carry.
//!
//! `llm/` and `mcp/` each span two layers: what the snapshot compiles
//! (`llm::target`, the `mcp` plugin itself) sits below it, and the exchange
//! a route serves (`llm`, `mcp::exchange` and the files it uses) sits above
//! the pipeline (the MCP exchange, like passthrough, reads its `Admitted`).

pub mod access_log;
pub mod admin;
pub mod answer;
pub mod body;
pub mod budget;
pub mod cache;
pub mod client_tls;
pub mod connections;
pub mod ctx;
pub mod facts;
pub mod gateway;
pub mod guard;
pub mod health;
pub mod keyauth;
pub mod limits;
pub mod llm;
pub mod mcp;
pub mod metrics;
pub mod oauth;
pub mod observe;
pub mod otel;
pub mod passthrough;
pub mod pipeline;
pub mod redact;
pub mod respond;
pub mod router;
pub mod snapshot;
pub mod survivors;
pub mod tls;
pub mod upstream;
pub mod vaults;

pub use gateway::{Gateway, GatewayState};
pub use snapshot::Snapshot;

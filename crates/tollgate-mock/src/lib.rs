//! Mock LLM provider for tollgate's end-to-end tests, benchmarks and demo.
//!
//! Layout: `server` owns connections and routing; provider wire formats live
//! in `openai` (chat completions and embeddings, also Azure OpenAI and
//! Mistral), `responses` (OpenAI's Responses API) and `native::*`
//! (Anthropic Messages and count_tokens, Gemini and Vertex AI, Bedrock
//! Converse and InvokeModel, Cohere v2, Ollama: see [`native`] for the
//! endpoint list) and only turn a request into a [`reply::Reply`]. What a
//! chat answer says (echoed text, tool call, reasoning, usage, stream
//! pacing) comes from [`chat`], so the behaviour knobs mean the same in
//! every format; embeddings come from [`embedding`], so the same text gets
//! the same vector from every provider's embeddings endpoint. Everything
//! provider-independent — behaviour overrides, faults, delays, recording,
//! stats — is shared so new providers get it for free.
//!
//! | endpoint | answer |
//! | --- | --- |
//! | `POST .../chat/completions` (OpenAI, `/mistral/...`, Azure `/openai/deployments/{d}/...`) | JSON, or SSE `data:` chunks with `"stream": true` |
//! | `POST .../embeddings` | JSON |
//! | `POST .../responses` (OpenAI Responses API; Azure `/openai/v1/responses`) | a Response object, or typed SSE events with `"stream": true` |
//! | the native formats | see [`native`] |
//!
//! Test control (never recorded, never affected by the behaviour):
//! `POST /_mock/behavior` (a [`behavior::BehaviorPatch`]), `GET
//! /_mock/behavior`, `POST /_mock/reset` (behaviour, records, stats, the
//! Anthropic prompt cache and stored Responses), `GET|DELETE
//! /_mock/requests` (each request's method, path, query, headers, parsed
//! `body` and exact `body_base64`: see [`record`]), `GET /_mock/stats`.

pub mod b64;
pub mod behavior;
pub mod body;
pub mod chat;
pub mod control;
pub mod embedding;
pub mod native;
pub mod openai;
pub mod record;
pub mod reply;
pub mod responses;
pub mod server;
pub mod sse;
pub mod state;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;

pub use behavior::{Behavior, Fault};
pub use state::AppState;

/// Server configuration (what the CLI flags map to).
#[derive(Debug, Clone)]
pub struct Config {
    /// Behaviour at start and after `POST /_mock/reset`.
    pub defaults: Behavior,
    /// Record requests for `GET /_mock/requests` (off for benchmarks).
    pub record: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config { defaults: Behavior::default(), record: true }
    }
}

/// Serve on an already bound listener until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, config: Config) -> std::io::Result<()> {
    let state = Arc::new(AppState::new(config));
    server::serve(listener, state).await
}

/// In-process server for tests: binds `addr` (port 0 picks a free port),
/// spawns the accept loop on the current runtime and returns the bound address
/// plus shared state (to inspect stats or records without HTTP).
pub async fn spawn(
    addr: SocketAddr,
    config: Config,
) -> std::io::Result<(SocketAddr, Arc<AppState>, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let state = Arc::new(AppState::new(config));
    let handle = tokio::spawn(server::serve(listener, state.clone()));
    Ok((local, state, handle))
}

//! tollgate's request pipeline on Pingora.

pub mod access_log;
pub mod admin;
pub mod body;
pub mod ctx;
pub mod exchange;
pub mod gateway;
pub mod gcp_auth;
pub mod keyauth;
pub mod limits;
pub mod mcp;
pub mod mcp_relay;
pub mod metrics;
pub mod oauth;
pub mod observe;
pub mod otel;
pub mod resolver;
pub mod respond;
pub mod redact;
pub mod router;
pub mod semantic;
pub mod snapshot;
pub mod survivors;
pub mod target;
pub mod upstream_tls;
pub mod tls;

pub use gateway::{Gateway, GatewayState};
pub use snapshot::Snapshot;

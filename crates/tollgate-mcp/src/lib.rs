//! MCP inspection for the ai-mcp-proxy plugin. Pure code: the proxy feeds it
//! request bodies, response bodies and SSE events, and acts on its answers.
//!
//! - [`jsonrpc`]: what a client's POST asks for (methods, tool names), and
//!   JSON-RPC error answers the gateway writes itself;
//! - [`acl`]: which consumer may use which tool, resource and prompt;
//! - [`filter`]: list results cut down to what a caller may use;
//! - [`uri`]: resource URIs in their normal form, as ACLs judge them;
//! - [`session`]: session ids sealed with the replica that created them;
//! - [`events`]: the gateway's SSE event ids and event-log entries, for
//!   `Last-Event-ID` resumption on any replica;
//! - [`server`]: tollgate's own MCP server (conversion modes): its protocol side
//!   and REST tools;
//! - [`legacy`]: the HTTP+SSE transport's `endpoint` event, rewritten to the
//!   gateway's path and a sealed session id.

pub mod acl;
pub mod events;
pub mod filter;
pub mod jsonrpc;
pub mod legacy;
pub mod server;
pub mod session;
pub mod uri;

pub use acl::{Acls, Primitive, PrimitiveAcl, Rule, ToolAcl};
pub use jsonrpc::{Inbound, InboundError, Message};
pub use session::Sealer;

//! ai-mcp-proxy: the plugin compiled for the request path (who may call
//! which tool, how often, and which replica serves a session), here; the MCP
//! exchange the gateway owns, in the files below.
//!
//! ```text
//! exchange   serve_route: the request as routed, then the exchange's steps
//! call       one MCP request as routed: its caller, path and credential
//! judge      the JSON-RPC body judged: header mismatches, tool, resource and
//!            prompt ACLs, tool limits
//! session    the replica and server session a sealed session id names;
//!            legacy SSE streams the gateway answers into
//! forward    the request to the server: path, headers, connection
//! relay      the server's answer relayed: session ids sealed, lists
//!            filtered, legacy endpoints rewritten, SSE events logged
//! resume     the event log in Redis: streams resumed on any replica
//! answer     the answers the gateway writes itself
//! own/       the gateway's own MCP server (conversion-listener): REST tools
//! tools      the conversion tools compiled from the config
//! listener/  the gateway's own MCP server in front of several (listener)
//! servers    the listener's MCP servers compiled from the config
//! ```
//!
//! This file sits below the snapshot (which holds `McpRt`); the exchange's
//! files sit above the pipeline, whose hand-over they read.

mod answer;
mod call;
pub mod exchange;
mod forward;
mod judge;
mod listener;
mod own;
mod relay;
mod resume;
mod servers;
mod session;
mod tools;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tollgate_config::mcp_tools::McpMode;
use tollgate_config::schema::{AiMcpProxyConfig, McpAcl, McpCallLimit};
use tollgate_limit::{LimitSpec, Limiter, Window, WindowType};
use tollgate_mcp::server::rest::RestTool;
use tollgate_mcp::{Acls, Primitive, PrimitiveAcl, Rule, Sealer};

use crate::limits::{backend_unavailable, Admission, LimiterRegistry};
use crate::oauth::{OauthConfigError, OauthRt};
use crate::upstream::{Endpoint, InvalidUrl};
use resume::EventLog;

/// An ai-mcp-proxy config the gateway cannot build.
#[derive(Debug, thiserror::Error)]
pub enum McpConfigError {
    #[error(transparent)]
    Target(#[from] InvalidUrl),
    #[error("upstream_auth.header_name is not a valid header name")]
    HeaderName,
    #[error("upstream_auth.header_value is not a valid header value")]
    HeaderValue,
    #[error(transparent)]
    Oauth(#[from] OauthConfigError),
}

/// Which consumer field names the caller in tool ACLs (`consumer_identifier`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerIdentifier {
    Username,
    CustomId,
}

/// One replica of the MCP server. `label` (its URL as configured) is what a
/// sealed session id names, so ids stay valid across reloads that keep it.
#[derive(Debug, Clone)]
pub struct Replica {
    pub label: String,
    pub endpoint: Endpoint,
}

pub struct McpRt {
    pub config: AiMcpProxyConfig,
    pub consumer_identifier: ConsumerIdentifier,
    /// Where the plugin sits, namespacing its limit counters.
    scope: String,
    acls: Acls,
    /// Empty: the service's own `url` is the one replica.
    replicas: Vec<Replica>,
    sealer: Option<Sealer>,
    /// Round-robin over replicas for new sessions.
    next: AtomicUsize,
    limits: HashMap<String, LimitSpec>,
    default_limit: Option<LimitSpec>,
    limiter: Arc<dyn Limiter>,
    pub upstream_auth: Option<(http::HeaderName, http::HeaderValue)>,
    /// OAuth resource-server mode.
    pub oauth: Option<OauthRt>,
    /// Where sessions' SSE events are logged for `Last-Event-ID` resumption.
    event_log: Option<EventLog>,
    pub mode: McpMode,
    /// Conversion modes: the tools the gateway's own server offers.
    pub rest_tools: Vec<RestTool>,
    /// Listener mode: the MCP servers aggregated.
    pub servers: Vec<servers::ListenerServer>,
}

impl std::fmt::Debug for McpRt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpRt").field("scope", &self.scope).field("replicas", &self.replicas).finish_non_exhaustive()
    }
}

/// The ACLs of tools, resources and prompts: each scope's `default_acl`
/// entry, and the entries' own.
fn compile_acls(c: &AiMcpProxyConfig) -> Acls {
    let rule = |a: &McpAcl| Rule::new(&a.allow, &a.deny);
    let primitive = |p: Primitive, own: Vec<(&String, &McpAcl)>| {
        let default = c.default_acl.iter().find(|a| a.scope == p.scope()).map(|a| Rule::new(&a.allow, &a.deny));
        let own = own.into_iter().map(|(name, a)| (name.clone(), rule(a))).collect();
        // Resources are judged by URI in its normal form, as servers read them.
        match p {
            Primitive::Resource => PrimitiveAcl::by_uri(default, own),
            _ => PrimitiveAcl::new(default, own),
        }
    };
    Acls {
        tools: primitive(Primitive::Tool, c.tools.iter().filter_map(|t| Some((&t.name, t.acl.as_ref()?))).collect()),
        resources: primitive(Primitive::Resource, c.resources.iter().map(|r| (&r.uri, &r.acl)).collect()),
        prompts: primitive(Primitive::Prompt, c.prompts.iter().map(|p| (&p.name, &p.acl)).collect()),
    }
}

/// What the per-tool limit says about one call.
pub enum ToolAdmission {
    Admitted,
    Refused { retry_after_secs: u64, limit: u64, window_secs: u64 },
}

impl McpRt {
    pub fn compile(c: &AiMcpProxyConfig, scope: String, limiters: &LimiterRegistry) -> Result<Self, McpConfigError> {
        let replicas = c
            .targets
            .iter()
            .map(|u| Ok(Replica { label: u.clone(), endpoint: Endpoint::parse(u)? }))
            .collect::<Result<Vec<_>, InvalidUrl>>()?;
        let window_type = if c.tool_limits.window_type == "sliding" { WindowType::Sliding } else { WindowType::Fixed };
        let spec = |l: &McpCallLimit| LimitSpec {
            window_type,
            windows: l
                .window_size
                .iter()
                .zip(&l.limit)
                .map(|(&size_secs, &limit)| Window { size_secs, limit })
                .collect(),
        };
        let upstream_auth = match &c.upstream_auth {
            Some(a) => {
                let name =
                    http::HeaderName::from_bytes(a.header_name.as_bytes()).map_err(|_| McpConfigError::HeaderName)?;
                let mut value =
                    http::HeaderValue::from_str(&a.header_value).map_err(|_| McpConfigError::HeaderValue)?;
                value.set_sensitive(true);
                Some((name, value))
            }
            None => None,
        };
        Ok(McpRt {
            acls: compile_acls(c),
            replicas,
            sealer: c.session_secret.as_ref().map(|s| Sealer::new(s.as_bytes())),
            next: AtomicUsize::new(0),
            limits: c.tools.iter().filter_map(|t| t.limit.as_ref().map(|l| (t.name.clone(), spec(l)))).collect(),
            default_limit: c.default_tool_limit.as_ref().map(spec),
            limiter: limiters.limiter(&c.tool_limits.strategy, &c.tool_limits.redis),
            upstream_auth,
            oauth: c.oauth.as_ref().map(OauthRt::compile).transpose()?,
            event_log: c.event_log.as_ref().and_then(|e| EventLog::compile(e, &scope, limiters)),
            // `consumer_id` names consumers by their name here, as `username` does.
            consumer_identifier: match c.consumer_identifier.as_str() {
                "custom_id" => ConsumerIdentifier::CustomId,
                _ => ConsumerIdentifier::Username,
            },
            scope,
            mode: c.mode_kind(),
            rest_tools: tools::rest_tools(c),
            servers: servers::listener_servers(c)?,
            config: c.clone(),
        })
    }

    pub fn permits(&self, tool: &str, subjects: &[&str]) -> bool {
        self.acls.permits(Primitive::Tool, tool, subjects)
    }

    /// Whether `subjects` may use the tool, resource or prompt `name`.
    pub fn permits_primitive(&self, primitive: Primitive, name: &str, subjects: &[&str]) -> bool {
        self.acls.permits(primitive, name, subjects)
    }

    /// Whether list answers (tools, resources, templates, prompts) need
    /// filtering at all.
    pub fn filters_lists(&self) -> bool {
        !self.acls.is_open()
    }

    /// The replicas, or the service's upstream as the only one.
    pub fn replicas(&self, service: Option<&Endpoint>) -> Vec<Replica> {
        if !self.replicas.is_empty() {
            return self.replicas.clone();
        }
        service.map(|e| vec![Replica { label: "service".into(), endpoint: e.clone() }]).unwrap_or_default()
    }

    /// A replica for a request that starts a session (or has none).
    pub fn pick_new(&self, replicas: &[Replica]) -> Option<usize> {
        if replicas.is_empty() {
            return None;
        }
        Some(self.next.fetch_add(1, Ordering::Relaxed) % replicas.len())
    }

    /// The client-visible id for a server's session id.
    pub fn seal(&self, replica: &str, upstream_id: &str) -> Option<String> {
        match &self.sealer {
            Some(s) => s.seal(replica, upstream_id),
            None => Some(upstream_id.to_string()),
        }
    }

    /// (replica label, server's session id) for a client-sent id, `None` for
    /// one this gateway did not seal. Without a secret the id passes as it is
    /// and the replica is unknown.
    pub fn open(&self, sealed: &str) -> Option<(Option<String>, String)> {
        match &self.sealer {
            Some(s) => s.open(sealed).map(|(r, id)| (Some(r), id)),
            None => Some((None, sealed.to_string())),
        }
    }

    /// Counts one call of `tool` by `who` against its limit, if it has one.
    pub async fn admit_call(&self, tool: &str, who: &str) -> ToolAdmission {
        let Some(spec) = self.limits.get(tool).or(self.default_limit.as_ref()) else {
            return ToolAdmission::Admitted;
        };
        let key = format!("mcp|{}|{}|{}", self.scope, who, tool);
        match self.limiter.reserve(&key, spec, 1).await {
            Ok(d) if d.allowed => ToolAdmission::Admitted,
            Ok(d) => {
                // The window that refused: the first one with nothing left.
                let (limit, window_secs) =
                    d.windows.iter().find(|w| w.remaining == 0).map(|w| (w.limit, w.size_secs)).unwrap_or((0, 0));
                ToolAdmission::Refused { retry_after_secs: d.retry_after_secs.unwrap_or(1), limit, window_secs }
            }
            Err(e) => {
                match backend_unavailable("MCP tool", "mcp_tool_limit", self.config.tool_limits.fault_tolerant, &e) {
                    Admission::Refused { .. } => {
                        ToolAdmission::Refused { retry_after_secs: 1, limit: 0, window_secs: 0 }
                    }
                    _ => ToolAdmission::Admitted,
                }
            }
        }
    }
}

//! One MCP request as routed: what the pipeline learned of its caller (ACL
//! subjects, whom limits count), and where and how it goes upstream.

use bytes::Bytes;
use pingora_proxy::Session;

use super::answer::{Step, Stop};
use super::{ConsumerIdentifier, McpRt};
use crate::body::{read_bounded, BodyDeadline, BodyError};
use crate::ctx::RequestCtx;
use crate::passthrough::query_without_key;
use crate::pipeline::Admitted;
use crate::snapshot::{ConsumerRt, PeerTimeouts, Snapshot};
use crate::upstream::tls::UpstreamTls;
use crate::upstream::Endpoint;

/// One MCP request, as routed.
pub(super) struct McpCall<'a> {
    pub mcp: &'a McpRt,
    pub service_upstream: Option<&'a Endpoint>,
    pub timeouts: PeerTimeouts,
    pub tls: &'a UpstreamTls,
    /// The client's path, and the length of the route prefix it matched.
    pub path: String,
    pub prefix_len: usize,
    pub strip_path: bool,
    pub preserve_host: bool,
    /// The query without the caller's credential.
    pub query: Option<String>,
    /// The caller's credential header, removed unless forwarding is configured.
    pub hide_header: Option<String>,
    /// ACL subjects: the consumer's name and groups.
    pub subjects: Vec<String>,
    /// Whom per-tool limits count: the consumer, else the client IP.
    pub who: String,
    /// The gateway's own trace context (opentelemetry plugin), replacing the caller's.
    pub traceparent: Option<String>,
}

impl<'a> McpCall<'a> {
    /// The request on `mcp`'s route, with what the pipeline learned of its caller.
    pub fn new(session: &Session, ctx: &RequestCtx, snap: &'a Snapshot, mcp: &'a McpRt, a: &Admitted<'_>) -> Self {
        let service = &snap.services[a.routed.service];
        let r = &snap.router.routes[a.routed.route];
        let consumer = ctx.consumer.map(|c| &snap.consumers[c]);
        let token_subject = a.credentials.token_subject.as_deref();
        let req = session.req_header();
        McpCall {
            mcp,
            service_upstream: service.upstream.as_ref(),
            timeouts: service.timeouts,
            tls: &service.tls,
            path: req.uri.path().to_string(),
            prefix_len: a.routed.prefix_len,
            strip_path: r.strip_path,
            preserve_host: r.preserve_host,
            query: query_without_key(req.uri.query(), a.credentials.hidden_query.as_deref()),
            hide_header: a.credentials.hide_header.clone(),
            subjects: subjects(mcp, consumer, token_subject),
            who: who(session, consumer, token_subject),
            traceparent: ctx.span.as_ref().map(|s| s.outgoing().header()),
        }
    }

    /// The whole body, within the plugin's limit.
    pub async fn read_body(&self, session: &mut Session, deadline: BodyDeadline) -> Step<Bytes> {
        read_bounded(session, self.mcp.config.max_request_body_size, deadline).await.map_err(|e| {
            let (status, msg) = match e {
                BodyError::TooLarge { limit } => (
                    413,
                    format!(
                        "request body is larger than the limit of {limit} bytes (ai-mcp-proxy max_request_body_size)"
                    ),
                ),
                BodyError::TimedOut { .. } => (408, e.message()),
                BodyError::Read(_) => (400, e.message()),
            };
            Stop::error("invalid", status, msg)
        })
    }
}

/// Whom the tool ACL judges: the consumer (by the configured identifier)
/// and its groups, and the bearer token's subject.
fn subjects(mcp: &McpRt, consumer: Option<&ConsumerRt>, token_subject: Option<&str>) -> Vec<String> {
    let mut subjects: Vec<String> = Vec::new();
    if let Some(c) = consumer {
        let name = match mcp.consumer_identifier {
            ConsumerIdentifier::CustomId => c.custom_id.clone(),
            ConsumerIdentifier::Username => Some(c.name.clone()),
        };
        subjects.extend(name);
        subjects.extend(c.groups.iter().cloned());
    }
    subjects.extend(token_subject.map(str::to_string));
    subjects
}

/// Whom per-tool limits count: the consumer, else the token's subject, else
/// the client's IP.
fn who(session: &Session, consumer: Option<&ConsumerRt>, token_subject: Option<&str>) -> String {
    match (consumer, token_subject) {
        (Some(c), _) => format!("consumer:{}", c.name),
        (None, Some(sub)) => format!("token:{sub}"),
        (None, None) => format!(
            "ip:{}",
            session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip().to_string()).unwrap_or_default()
        ),
    }
}

//! An LLM target compiled for the hot path: where to send, how to authenticate,
//! which model and defaults apply.

use std::sync::Arc;

use tollgate_config::schema::{AuthConfig, ModelOptions, TargetSpec};
use tollgate_config::HttpUrl;
use tollgate_llm::bedrock::AwsCredentials;
use tollgate_llm::provider::{ProviderOptions, VertexOptions};
use tollgate_llm::{ModelDefaults, Provider};

use crate::gcp_auth::{ServiceAccount, TokenSource};
use crate::upstream_tls::UpstreamTls;

/// A parsed upstream endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path and query sent in the request line.
    pub path_and_query: String,
    /// Host header value (`host` or `host:port` for a non-default port).
    pub authority: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Self, String> {
        let u = HttpUrl::parse(url).map_err(|e| format!("URL '{url}' {e}"))?;
        let default_port = if u.tls { 443 } else { 80 };
        // The Host header names the port only when it is not the scheme's default.
        let authority = if u.port == default_port {
            if u.host.contains(':') { format!("[{}]", u.host) } else { u.host.clone() }
        } else {
            u.authority()
        };
        Ok(Endpoint {
            tls: u.tls,
            host: u.host,
            port: u.port,
            path_and_query: u.path_and_query,
            authority,
        })
    }
}

/// How the provider credential is injected.
#[derive(Debug, Clone)]
pub enum Credential {
    None,
    Header { name: http::HeaderName, value: http::HeaderValue },
    Query { name: String, value: String },
    Body { name: String, value: String },
}

impl Credential {
    fn from_config(auth: Option<&AuthConfig>) -> Result<Self, String> {
        let Some(a) = auth else {
            return Ok(Credential::None);
        };
        if let (Some(n), Some(v)) = (&a.header_name, &a.header_value) {
            let name = http::HeaderName::from_bytes(n.as_bytes())
                .map_err(|_| format!("auth.header_name '{n}' is not a valid header name"))?;
            let mut value = http::HeaderValue::from_str(v)
                .map_err(|_| "auth.header_value is not a valid header value".to_string())?;
            value.set_sensitive(true);
            return Ok(Credential::Header { name, value });
        }
        if let (Some(n), Some(v)) = (&a.param_name, &a.param_value) {
            return Ok(match a.param_location.as_deref() {
                Some("body") => Credential::Body { name: n.clone(), value: v.clone() },
                _ => Credential::Query { name: n.clone(), value: v.clone() },
            });
        }
        Ok(Credential::None)
    }
}

/// SigV4 signing for Bedrock targets configured with AWS keys.
pub struct AwsSigning {
    pub credentials: AwsCredentials,
    pub region: String,
}

impl std::fmt::Debug for AwsSigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the keys.
        f.debug_struct("AwsSigning").field("region", &self.region).finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct LlmTarget {
    /// `provider/model` for logs, metrics and `X-Tollgate-LLM-Model`.
    pub label: String,
    /// The provider's name as configured (limits and metrics key on it).
    pub provider: String,
    pub kind: Provider,
    pub options: ProviderOptions,
    pub aws: Option<AwsSigning>,
    /// Vertex AI with a service account: the OAuth token for each call.
    pub gcp: Option<Arc<TokenSource>>,
    pub route_type: String,
    pub model: ModelDefaults,
    pub endpoint: Endpoint,
    pub credential: Credential,
    pub input_cost: Option<f64>,
    pub output_cost: Option<f64>,
    /// Balancer weight (1 when unset).
    pub weight: u32,
    pub log_statistics: bool,
    pub log_payloads: bool,
    /// The TLS settings (`tls_verify`, `ca_certificates`, `client_certificate`)
    /// of the service the plugin is on; the system roots for global plugins.
    pub tls: UpstreamTls,
}

impl LlmTarget {
    pub fn compile(spec: &TargetSpec, tls: &UpstreamTls) -> Result<Self, String> {
        let o = &spec.model.options;
        let name = spec.model.provider.as_str();
        let kind = Provider::parse(name).ok_or_else(|| format!("unknown provider {name}"))?;
        let options = provider_options(o);
        let url = match &o.upstream_url {
            Some(u) => u.clone(),
            None => match spec.route_type.as_str() {
                "llm/v1/embeddings" => tollgate_llm::embeddings::default_url(kind, &options),
                _ => kind.default_url(&options),
            }
            .ok_or_else(|| format!("provider {name} needs model.options.upstream_url"))?,
        };
        let mut endpoint = Endpoint::parse(&url)?;
        if kind.path_per_call() {
            // A base URL: the call's own path is appended to this prefix.
            let trimmed = endpoint.path_and_query.trim_end_matches('/').len();
            endpoint.path_and_query.truncate(trimmed);
        }
        let aws = spec.auth.as_ref().and_then(|a| {
            let (id, secret) = (a.aws_access_key_id.clone()?, a.aws_secret_access_key.clone()?);
            Some(AwsSigning {
                credentials: AwsCredentials {
                    access_key_id: id,
                    secret_access_key: secret,
                    session_token: a.aws_session_token.clone(),
                },
                region: options.aws_region.clone().unwrap_or_default(),
            })
        });
        let model = ModelDefaults {
            name: spec.model.name.clone(),
            max_tokens: o.max_tokens,
            temperature: o.temperature,
            top_p: o.top_p,
            top_k: o.top_k,
        };
        Ok(LlmTarget {
            label: format!(
                "{}/{}",
                spec.model.provider,
                spec.model.name.as_deref().unwrap_or("*")
            ),
            provider: spec.model.provider.clone(),
            kind,
            options,
            aws,
            gcp: gcp_token_source(spec.auth.as_ref())?,
            route_type: spec.route_type.clone(),
            model,
            endpoint,
            credential: Credential::from_config(spec.auth.as_ref())?,
            input_cost: o.input_cost,
            weight: spec.weight.unwrap_or(1),
            output_cost: o.output_cost,
            log_statistics: spec.logging.log_statistics,
            log_payloads: spec.logging.log_payloads,
            tls: tls.clone(),
        })
    }
}

/// The service account's token source, from `auth.gcp_service_account_json`
/// or, with `gcp_use_service_account` alone, the `GCP_SERVICE_ACCOUNT`
/// environment variable (as Kong reads it).
fn gcp_token_source(auth: Option<&AuthConfig>) -> Result<Option<Arc<TokenSource>>, String> {
    let Some(a) = auth else {
        return Ok(None);
    };
    let json = match (&a.gcp_service_account_json, a.gcp_use_service_account) {
        (Some(j), _) => j.clone(),
        (None, true) => std::env::var("GCP_SERVICE_ACCOUNT").map_err(|_| {
            "auth.gcp_use_service_account needs auth.gcp_service_account_json or the GCP_SERVICE_ACCOUNT environment variable".to_string()
        })?,
        (None, false) => return Ok(None),
    };
    let account = ServiceAccount::from_json(&json).map_err(|e| format!("auth.gcp_service_account_json: {e}"))?;
    Ok(Some(Arc::new(TokenSource::new(account, Arc::new(std::time::SystemTime::now)))))
}

fn provider_options(o: &ModelOptions) -> ProviderOptions {
    let d = ProviderOptions::default();
    ProviderOptions {
        anthropic_version: o.anthropic_version.clone().unwrap_or(d.anthropic_version),
        azure_instance: o.azure_instance.clone(),
        azure_deployment_id: o.azure_deployment_id.clone(),
        azure_api_version: o.azure_api_version.clone().unwrap_or(d.azure_api_version),
        gemini_vertex: o.gemini.as_ref().and_then(|g| {
            Some(VertexOptions {
                api_endpoint: g.api_endpoint.clone()?,
                project_id: g.project_id.clone()?,
                location_id: g.location_id.clone()?,
            })
        }),
        aws_region: o.bedrock.as_ref().and_then(|b| b.aws_region.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_with_default_ports() {
        let e = Endpoint::parse("https://api.openai.com/v1/chat/completions").expect("ok");
        assert_eq!((e.tls, e.port, e.authority.as_str()), (true, 443, "api.openai.com"));
        assert_eq!(e.path_and_query, "/v1/chat/completions");
        let e = Endpoint::parse("http://127.0.0.1:9001/v1/chat/completions?x=1").expect("ok");
        assert_eq!((e.tls, e.port, e.authority.as_str()), (false, 9001, "127.0.0.1:9001"));
        assert_eq!(e.path_and_query, "/v1/chat/completions?x=1");
        assert!(Endpoint::parse("ftp://x/").is_err());
    }
}

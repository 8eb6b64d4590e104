//! An LLM target compiled for the hot path: where to send, how to authenticate,
//! which model and defaults apply.

use std::sync::Arc;

use tollgate_config::schema::{AuthConfig, EmbeddingsModelConfig, ModelOptions, TargetSpec};
use tollgate_llm::bedrock::AwsCredentials;
use tollgate_llm::ingress::Ingress;
use tollgate_llm::provider::{ProviderOptions, VertexOptions};
use tollgate_llm::{ModelDefaults, Provider};

use crate::llm::gcp_auth::{KeyError, ServiceAccount, TokenSource};
use crate::upstream::tls::UpstreamTls;
use crate::upstream::{Endpoint, InvalidUrl};

/// A target the config describes but the gateway cannot build.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("llm_format {llm_format} with route_type {route_type} is not served")]
    NotServed { llm_format: String, route_type: String },
    #[error("unknown provider {0}")]
    UnknownProvider(String),
    #[error("provider {0} needs model.options.upstream_url")]
    NoUpstreamUrl(String),
    #[error(transparent)]
    Url(#[from] InvalidUrl),
    #[error("auth.header_name '{0}' is not a valid header name")]
    HeaderName(String),
    #[error("auth.header_value is not a valid header value")]
    HeaderValue,
    #[error(
        "auth.gcp_use_service_account needs auth.gcp_service_account_json or the GCP_SERVICE_ACCOUNT environment variable"
    )]
    NoServiceAccount,
    #[error("auth.gcp_service_account_json: {0}")]
    ServiceAccount(KeyError),
}

/// What an LLM route does, from its plugin's `llm_format` and its targets'
/// `route_type` (validation keeps the pair sensible).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Generation, in the callers' format: `llm/v1/chat` (OpenAI chat
    /// completions, or Anthropic Messages with `llm_format = "anthropic"`)
    /// and `llm/v1/responses`.
    Generate(Ingress),
    /// `llm/v1/embeddings`.
    Embeddings,
    /// `preserve`: the provider's own format, forwarded.
    Preserve,
}

impl Api {
    pub fn from_config(llm_format: &str, route_type: &str) -> Result<Api, TargetError> {
        Ok(match (llm_format, route_type) {
            (_, "preserve") => Api::Preserve,
            ("openai", "llm/v1/embeddings") => Api::Embeddings,
            ("openai", "llm/v1/chat") => Api::Generate(Ingress::OpenAiChat),
            ("openai", "llm/v1/responses") => Api::Generate(Ingress::OpenAiResponses),
            ("anthropic", "llm/v1/chat") => Api::Generate(Ingress::AnthropicMessages),
            (f, t) => return Err(TargetError::NotServed { llm_format: f.to_string(), route_type: t.to_string() }),
        })
    }

    /// OpenTelemetry's `gen_ai.operation.name`.
    pub fn operation(self) -> &'static str {
        match self {
            Api::Embeddings => "embeddings",
            _ => "chat",
        }
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
    fn from_config(auth: Option<&AuthConfig>) -> Result<Self, TargetError> {
        let Some(a) = auth else {
            return Ok(Credential::None);
        };
        if let (Some(n), Some(v)) = (&a.header_name, &a.header_value) {
            let name = http::HeaderName::from_bytes(n.as_bytes()).map_err(|_| TargetError::HeaderName(n.clone()))?;
            let mut value = http::HeaderValue::from_str(v).map_err(|_| TargetError::HeaderValue)?;
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
    pub api: Api,
    pub model: ModelDefaults,
    pub endpoint: Endpoint,
    pub credential: Credential,
    pub input_cost: Option<f64>,
    pub output_cost: Option<f64>,
    pub cache_read_cost: Option<f64>,
    pub cache_write_cost: Option<f64>,
    /// Balancer weight (1 when unset).
    pub weight: u32,
    pub log_statistics: bool,
    pub log_payloads: bool,
    /// The TLS settings (`tls_verify`, `ca_certificates`, `client_certificate`)
    /// of the service the plugin is on; the system roots for global plugins.
    pub tls: UpstreamTls,
}

impl LlmTarget {
    /// What `model` costs at this target: each of its own prices, else the
    /// shipped table's for its provider, field by field (a target setting
    /// only `input_cost` keeps the table's output price).
    pub fn prices(&self, model: &str) -> Option<tollgate_llm::Prices> {
        let own = OwnPrices {
            input: self.input_cost,
            output: self.output_cost,
            cache_read: self.cache_read_cost,
            cache_write: self.cache_write_cost,
        };
        own.over(tollgate_llm::prices::shipped(&self.provider, model))
    }

    /// The embeddings endpoint an `embeddings` block names (the semantic
    /// balancer's and the semantic cache's), spoken to in OpenAI's format.
    pub fn embeddings(e: &EmbeddingsModelConfig, tls: &UpstreamTls) -> Result<Self, TargetError> {
        let spec = TargetSpec {
            route_type: "llm/v1/embeddings".into(),
            llm_format: None,
            auth: e.auth.clone(),
            model: e.model.clone(),
            logging: Default::default(),
            weight: None,
            description: None,
        };
        Self::compile(&spec, "openai", tls)
    }

    /// A target of a plugin whose callers speak `llm_format`.
    pub fn compile(spec: &TargetSpec, llm_format: &str, tls: &UpstreamTls) -> Result<Self, TargetError> {
        let o = &spec.model.options;
        let name = spec.model.provider.as_str();
        let kind = Provider::parse(name).ok_or_else(|| TargetError::UnknownProvider(name.to_string()))?;
        let options = provider_options(o);
        let api = Api::from_config(llm_format, &spec.route_type)?;
        let url = match &o.upstream_url {
            Some(u) => u.clone(),
            None => match api {
                Api::Embeddings => tollgate_llm::embeddings::default_url(kind, &options),
                // Responses callers reach OpenAI's own Responses API.
                Api::Generate(Ingress::OpenAiResponses) if kind == Provider::OpenAi => {
                    Some(tollgate_llm::openai::DEFAULT_RESPONSES_URL.to_string())
                }
                _ => kind.default_url(&options),
            }
            .ok_or_else(|| TargetError::NoUpstreamUrl(name.to_string()))?,
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
            label: format!("{}/{}", spec.model.provider, spec.model.name.as_deref().unwrap_or("*")),
            provider: spec.model.provider.clone(),
            kind,
            options,
            aws,
            gcp: gcp_token_source(spec.auth.as_ref())?,
            api,
            model,
            endpoint,
            credential: Credential::from_config(spec.auth.as_ref())?,
            input_cost: o.input_cost,
            weight: spec.weight.unwrap_or(1),
            output_cost: o.output_cost,
            cache_read_cost: o.cache_read_cost,
            cache_write_cost: o.cache_write_cost,
            log_statistics: spec.logging.log_statistics,
            log_payloads: spec.logging.log_payloads,
            tls: tls.clone(),
        })
    }
}

/// The service account's token source, from `auth.gcp_service_account_json`
/// or, with `gcp_use_service_account` alone, the `GCP_SERVICE_ACCOUNT`
/// environment variable (as Kong reads it).
fn gcp_token_source(auth: Option<&AuthConfig>) -> Result<Option<Arc<TokenSource>>, TargetError> {
    let Some(a) = auth else {
        return Ok(None);
    };
    let json = match (&a.gcp_service_account_json, a.gcp_use_service_account) {
        (Some(j), _) => j.clone(),
        (None, true) => std::env::var("GCP_SERVICE_ACCOUNT").map_err(|_| TargetError::NoServiceAccount)?,
        (None, false) => return Ok(None),
    };
    let account = ServiceAccount::from_json(&json).map_err(TargetError::ServiceAccount)?;
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

/// The prices a target sets itself, each optional.
struct OwnPrices {
    input: Option<f64>,
    output: Option<f64>,
    cache_read: Option<f64>,
    cache_write: Option<f64>,
}

impl OwnPrices {
    /// These prices over the table's row; none when a target with no input
    /// or output price meets a model the table does not know. A price
    /// neither sets is 0 (input, output) or the usual ratio of the input
    /// price (cache).
    fn over(self, table: Option<tollgate_llm::Prices>) -> Option<tollgate_llm::Prices> {
        if self.input.is_none() && self.output.is_none() && table.is_none() {
            return None;
        }
        Some(tollgate_llm::Prices {
            input: self.input.or(table.map(|t| t.input)).unwrap_or(0.0),
            output: self.output.or(table.map(|t| t.output)).unwrap_or(0.0),
            // The table's cache prices follow its input price: a target with
            // its own input price gets the usual ratios of that instead.
            cache_read: self.cache_read.or(table.filter(|_| self.input.is_none()).and_then(|t| t.cache_read)),
            cache_write: self.cache_write.or(table.filter(|_| self.input.is_none()).and_then(|t| t.cache_write)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(input: Option<f64>, output: Option<f64>, cache_read: Option<f64>) -> OwnPrices {
        OwnPrices { input, output, cache_read, cache_write: None }
    }

    #[test]
    fn a_targets_own_prices_override_the_table_field_by_field() {
        let table = tollgate_llm::prices::shipped("openai", "gpt-4o");
        let p = own(Some(1.0), None, None).over(table).unwrap_or_else(|| panic!("priced"));
        assert_eq!((p.input, p.output, p.cache_read), (1.0, 10.0, None));
        let p = own(None, None, Some(0.5)).over(table).unwrap_or_else(|| panic!("priced"));
        assert_eq!((p.input, p.output, p.cache_read), (2.5, 10.0, Some(0.5)));
        // Opting out: both prices 0.
        let p = own(Some(0.0), Some(0.0), None).over(table).unwrap_or_else(|| panic!("priced"));
        assert_eq!((p.input, p.output, p.cache_read), (0.0, 0.0, None));
        // A model the table does not know: the target's prices, else none.
        let p = own(Some(1.0), None, None).over(None).unwrap_or_else(|| panic!("priced"));
        assert_eq!((p.input, p.output), (1.0, 0.0));
        assert!(own(None, None, Some(0.5)).over(None).is_none());
    }
}

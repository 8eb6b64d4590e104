//! An LLM target compiled for the hot path: where to send, how to authenticate,
//! which model and defaults apply.

use tollgate_config::schema::{AuthConfig, TargetSpec};
use tollgate_config::HttpUrl;
use tollgate_llm::ModelDefaults;

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

#[derive(Debug)]
pub struct LlmTarget {
    /// `provider/model` for logs, metrics and `X-Tollgate-LLM-Model`.
    pub label: String,
    pub provider: String,
    pub route_type: String,
    pub model: ModelDefaults,
    pub endpoint: Endpoint,
    pub credential: Credential,
    pub input_cost: Option<f64>,
    pub output_cost: Option<f64>,
    pub log_statistics: bool,
    pub log_payloads: bool,
}

impl LlmTarget {
    pub fn compile(spec: &TargetSpec) -> Result<Self, String> {
        let o = &spec.model.options;
        let url = match (&o.upstream_url, spec.model.provider.as_str()) {
            (Some(u), _) => u.clone(),
            (None, "openai") => tollgate_llm::openai::DEFAULT_CHAT_URL.to_string(),
            (None, p) => return Err(format!("provider {p} needs model.options.upstream_url")),
        };
        let endpoint = Endpoint::parse(&url)?;
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
            route_type: spec.route_type.clone(),
            model,
            endpoint,
            credential: Credential::from_config(spec.auth.as_ref())?,
            input_cost: o.input_cost,
            output_cost: o.output_cost,
            log_statistics: spec.logging.log_statistics,
            log_payloads: spec.logging.log_payloads,
        })
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

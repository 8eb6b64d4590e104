//! Google Secret Manager, as Kong's `gcp` vault reads it: `GET
//! /v1/projects/<project_id>/secrets/<resource>/versions/<N|latest>:access`
//! with a bearer token traded for the service account of
//! `GCP_SERVICE_ACCOUNT` (the token exchange Vertex AI targets use, cached
//! until shortly before it expires). The secret is the base64 `payload.data`.
//!
//! Messages name the endpoint, the project and Google's error message, never
//! a token, the key or a secret.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::Value;
use tollgate_config::vaults::GcpVaultConfig;
use tollgate_config::SecretAddress;

use super::encode_segment;
use crate::llm::gcp_auth::{ServiceAccount, TokenSource};
use crate::upstream::fetch::Fetch;
use crate::upstream::Endpoint;

const DEFAULT_ENDPOINT: &str = "https://secretmanager.googleapis.com";

/// Token sources per service-account key, so a token is reused until it expires.
#[derive(Default)]
pub struct Tokens {
    sources: Mutex<HashMap<String, Arc<TokenSource>>>,
}

impl Tokens {
    fn source(&self, account_json: &str) -> Result<Arc<TokenSource>, String> {
        let mut sources = self.sources.lock().map_err(|_| "token cache poisoned".to_string())?;
        if let Some(source) = sources.get(account_json) {
            return Ok(source.clone());
        }
        let account = ServiceAccount::from_json(account_json).map_err(|e| format!("GCP_SERVICE_ACCOUNT: {e}"))?;
        let source = Arc::new(TokenSource::new(account, Arc::new(std::time::SystemTime::now)));
        sources.insert(account_json.to_string(), source.clone());
        Ok(source)
    }
}

/// The access URL of `address`.
pub fn access_url(c: &GcpVaultConfig, address: &SecretAddress) -> String {
    let base = c.endpoint_url.as_deref().unwrap_or(DEFAULT_ENDPOINT).trim_end_matches('/');
    let version = address.version.map(|v| v.to_string()).unwrap_or_else(|| "latest".to_string());
    // Each name is one segment of Google's URL, whatever it holds.
    let (project, secret) = (encode_segment(&c.project_id), encode_segment(&address.resource));
    format!("{base}/v1/projects/{project}/secrets/{secret}/versions/{version}:access")
}

pub async fn read(
    fetch: &Fetch,
    tokens: &Tokens,
    c: &GcpVaultConfig,
    address: &SecretAddress,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let account = env("GCP_SERVICE_ACCOUNT").ok_or("no GCP credentials: set GCP_SERVICE_ACCOUNT")?;
    let token = tokens.source(&account)?.token().await.map_err(|e| e.to_string())?;
    let url = access_url(c, address);
    let ep = Endpoint::parse(&url).map_err(|e| e.to_string())?;
    let headers = [("authorization".to_string(), format!("Bearer {token}"))];
    let (status, body) = fetch.get_with(&ep, &headers).await.map_err(|e| e.to_string())?;
    let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let what = format!("secret {} of project {}", address.resource, c.project_id);
    if status != 200 {
        let message = answer.pointer("/error/message").and_then(Value::as_str).map(|m| format!(": {m}"));
        return Err(format!("{what} answered {status}{}", message.unwrap_or_default()));
    }
    let data = answer.pointer("/payload/data").and_then(Value::as_str).ok_or(format!("{what}: no payload.data"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| format!("{what}: payload.data is not base64"))?;
    String::from_utf8(bytes).map_err(|_| format!("{what} is not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_urls_name_the_version_or_latest() {
        let c = GcpVaultConfig { project_id: "proj-1".into(), ..Default::default() };
        let address = |version| SecretAddress { resource: "openai".into(), key: None, version };
        assert_eq!(
            access_url(&c, &address(None)),
            "https://secretmanager.googleapis.com/v1/projects/proj-1/secrets/openai/versions/latest:access"
        );
        let c = GcpVaultConfig { endpoint_url: Some("http://127.0.0.1:9/".into()), ..c };
        assert_eq!(
            access_url(&c, &address(Some(3))),
            "http://127.0.0.1:9/v1/projects/proj-1/secrets/openai/versions/3:access"
        );
        let address = SecretAddress { resource: "a/b".into(), key: None, version: None };
        assert!(access_url(&c, &address).ends_with("/secrets/a%2Fb/versions/latest:access"));
    }
}

//! HashiCorp Vault's HTTP API, as Kong's `hcv` vault uses it: KV v1
//! (`GET /v1/<mount>/<path>`, the secret in `data`) and v2
//! (`GET /v1/<mount>/data/<path>[?version=N]`, the secret in `data.data`),
//! behind `X-Vault-Token` and, for Enterprise namespaces, `X-Vault-Namespace`.
//! The token is the configured one, or one got by logging in with AppRole
//! (`POST /v1/auth/<approle_auth_path>/login`, optionally unwrapping a
//! response-wrapped secret id first) or Kubernetes (`POST
//! /v1/auth/<kube_auth_path>/login` with the service account's JWT); logged-in
//! tokens are kept until their lease ends, and a 403 logs in again once.
//!
//! Messages name the host, path and Vault's own error strings, never a token
//! or a secret.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{json, Value};
use tollgate_clock::Clock;
use tollgate_config::vaults::{HcvAuthMethod, HcvProtocol, HcvVaultConfig, KvVersion};
use tollgate_config::SecretAddress;

use crate::upstream::fetch::Fetch;
use crate::upstream::Endpoint;

/// A logged-in token is renewed this long before its lease ends.
const LEASE_MARGIN_MS: u64 = 30_000;

/// A token from a login, until `expires_ms` (`None`: no lease end).
struct Login {
    config: HcvVaultConfig,
    token: String,
    expires_ms: Option<u64>,
}

/// A response-wrapped secret id, unwrapped: a wrapping token can be unwrapped
/// only once, so the real secret id is kept for every later login.
struct Unwrapped {
    config: HcvVaultConfig,
    wrapping: String,
    secret_id: String,
}

/// Logged-in tokens, and unwrapped secret ids, per vault prefix.
#[derive(Default)]
pub struct Logins {
    tokens: Mutex<HashMap<String, Login>>,
    unwrapped: Mutex<HashMap<String, Unwrapped>>,
}

impl Logins {
    fn cached(&self, prefix: &str, c: &HcvVaultConfig, now_ms: u64) -> Option<String> {
        let tokens = self.tokens.lock().ok()?;
        let login = tokens.get(prefix)?;
        let fresh = login.expires_ms.is_none_or(|end| now_ms.saturating_add(LEASE_MARGIN_MS) < end);
        (login.config == *c && fresh).then(|| login.token.clone())
    }

    fn forget(&self, prefix: &str) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.remove(prefix);
        }
    }
}

fn base_url(c: &HcvVaultConfig) -> String {
    let scheme = match c.protocol {
        HcvProtocol::Http => "http",
        HcvProtocol::Https => "https",
    };
    let host = if c.host.contains(':') { format!("[{}]", c.host) } else { c.host.clone() };
    format!("{scheme}://{host}:{}/v1", c.port)
}

fn endpoint(c: &HcvVaultConfig, path: &str) -> Result<Endpoint, String> {
    Endpoint::parse(&format!("{}/{path}", base_url(c))).map_err(|e| e.to_string())
}

/// The read path of `address` in the KV engine.
pub fn secret_path(c: &HcvVaultConfig, address: &SecretAddress) -> String {
    let mount = c.mount.trim_matches('/');
    let resource = address.resource.trim_start_matches('/');
    match (c.kv, address.version) {
        (KvVersion::V1, _) => format!("{mount}/{resource}"),
        (KvVersion::V2, None) => format!("{mount}/data/{resource}"),
        (KvVersion::V2, Some(v)) => format!("{mount}/data/{resource}?version={v}"),
    }
}

fn namespace_header(c: &HcvVaultConfig) -> Vec<(String, String)> {
    c.namespace.iter().filter(|n| !n.is_empty()).map(|n| ("x-vault-namespace".to_string(), n.clone())).collect()
}

/// Vault's `{"errors": [...]}`, joined, for messages.
fn vault_errors(body: &[u8]) -> String {
    let errors = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        v.get("errors")?.as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
    });
    errors.filter(|e| !e.is_empty()).map(|e| format!(": {e}")).unwrap_or_default()
}

/// Reads the secret at `address`: its data, as a JSON object's text.
pub async fn read(
    fetch: &Fetch,
    logins: &Logins,
    clock: &dyn Clock,
    prefix: &str,
    c: &HcvVaultConfig,
    address: &SecretAddress,
) -> Result<String, String> {
    let path = secret_path(c, address);
    let ep = endpoint(c, &path)?;
    let mut relogged = false;
    loop {
        let token = token(fetch, logins, clock, prefix, c).await?;
        let mut headers = namespace_header(c);
        headers.push(("x-vault-token".to_string(), token));
        let (status, body) = fetch.get_with(&ep, &headers).await.map_err(|e| e.to_string())?;
        match status {
            200 => {
                return secret_data(c.kv, &body).ok_or_else(|| format!("GET /v1/{path}: no secret data in the answer"))
            }
            403 if c.auth_method != HcvAuthMethod::Token && !relogged => {
                // The logged-in token may have been revoked: log in once more.
                logins.forget(prefix);
                relogged = true;
            }
            404 => return Err(format!("GET /v1/{path}: secret not found")),
            other => return Err(format!("GET /v1/{path} answered {other}{}", vault_errors(&body))),
        }
    }
}

/// The secret's fields: `data` (KV v1) or `data.data` (KV v2).
fn secret_data(kv: KvVersion, body: &[u8]) -> Option<String> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    let data = match kv {
        KvVersion::V1 => answer.get("data")?,
        KvVersion::V2 => answer.get("data")?.get("data")?,
    };
    data.is_object().then(|| data.to_string())
}

async fn token(
    fetch: &Fetch,
    logins: &Logins,
    clock: &dyn Clock,
    prefix: &str,
    c: &HcvVaultConfig,
) -> Result<String, String> {
    if c.auth_method == HcvAuthMethod::Token {
        return c.token.clone().ok_or_else(|| "no token configured".to_string());
    }
    if let Some(token) = logins.cached(prefix, c, clock.now_ms()) {
        return Ok(token);
    }
    let body = match c.auth_method {
        HcvAuthMethod::Token => return Err("no token configured".to_string()),
        HcvAuthMethod::Approle => approle_body(fetch, logins, prefix, c).await?,
        HcvAuthMethod::Kubernetes => kubernetes_body(c)?,
    };
    let path = match c.auth_method {
        HcvAuthMethod::Kubernetes => format!("auth/{}/login", c.kube_auth_path.trim_matches('/')),
        _ => format!("auth/{}/login", c.approle_auth_path.trim_matches('/')),
    };
    let answer = post_json(fetch, c, &path, &body, &[]).await?;
    let auth = answer.get("auth").ok_or_else(|| format!("POST /v1/{path}: no `auth` in the answer"))?;
    let token = auth
        .get("client_token")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("POST /v1/{path}: no `auth.client_token` in the answer"))?
        .to_string();
    let lease = auth.get("lease_duration").and_then(Value::as_u64).filter(|s| *s > 0);
    let expires_ms = lease.map(|s| super::after_secs(clock.now_ms(), s));
    if let Ok(mut tokens) = logins.tokens.lock() {
        tokens.insert(prefix.to_string(), Login { config: c.clone(), token: token.clone(), expires_ms });
    }
    Ok(token)
}

async fn approle_body(fetch: &Fetch, logins: &Logins, prefix: &str, c: &HcvVaultConfig) -> Result<Value, String> {
    let role_id = c.approle_role_id.clone().ok_or("no approle_role_id configured")?;
    let mut secret_id = match (&c.approle_secret_id, &c.approle_secret_id_file) {
        (Some(id), _) => id.clone(),
        (None, Some(file)) => read_trimmed(file, "approle_secret_id_file")?,
        (None, None) => return Err("no approle_secret_id or approle_secret_id_file configured".to_string()),
    };
    if c.approle_response_wrapping {
        secret_id = unwrap_secret_id(fetch, logins, prefix, c, secret_id).await?;
    }
    Ok(json!({ "role_id": role_id, "secret_id": secret_id }))
}

/// The secret id a wrapping token stands for: unwrapped once (Vault refuses a
/// second unwrap), then kept while the vault's config and the wrapping token
/// stay the same (a new one in the file is unwrapped anew).
async fn unwrap_secret_id(
    fetch: &Fetch,
    logins: &Logins,
    prefix: &str,
    c: &HcvVaultConfig,
    wrapping: String,
) -> Result<String, String> {
    let known =
        logins.unwrapped.lock().ok().and_then(|u| {
            u.get(prefix).filter(|u| u.config == *c && u.wrapping == wrapping).map(|u| u.secret_id.clone())
        });
    if let Some(secret_id) = known {
        return Ok(secret_id);
    }
    let headers = [("x-vault-token".to_string(), wrapping.clone())];
    let answer = post_json(fetch, c, "sys/wrapping/unwrap", &json!({}), &headers).await?;
    let secret_id = answer
        .get("data")
        .and_then(|d| d.get("secret_id"))
        .and_then(Value::as_str)
        .ok_or("POST /v1/sys/wrapping/unwrap: no `data.secret_id` in the answer")?
        .to_string();
    if let Ok(mut unwrapped) = logins.unwrapped.lock() {
        unwrapped.insert(prefix.to_string(), Unwrapped { config: c.clone(), wrapping, secret_id: secret_id.clone() });
    }
    Ok(secret_id)
}

fn kubernetes_body(c: &HcvVaultConfig) -> Result<Value, String> {
    let role = c.kube_role.clone().ok_or("no kube_role configured")?;
    let jwt = read_trimmed(&c.kube_api_token_file, "kube_api_token_file")?;
    Ok(json!({ "role": role, "jwt": jwt }))
}

/// A credential file's content; a projected service-account token is re-read
/// at every login, as the kubelet rotates it.
fn read_trimmed(path: &str, field: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{field} {path}: {e}"))?;
    Ok(text.trim().to_string())
}

async fn post_json(
    fetch: &Fetch,
    c: &HcvVaultConfig,
    path: &str,
    body: &Value,
    extra: &[(String, String)],
) -> Result<Value, String> {
    let ep = endpoint(c, path)?;
    let mut headers = namespace_header(c);
    headers.extend_from_slice(extra);
    let (status, answer) = fetch
        .post(&ep, "application/json", body.to_string().into(), &headers, crate::upstream::fetch::FETCH_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("POST /v1/{path} answered {status}{}", vault_errors(&answer)));
    }
    serde_json::from_slice(&answer).map_err(|_| format!("POST /v1/{path}: the answer is not JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(kv: KvVersion) -> HcvVaultConfig {
        let kv = if kv == KvVersion::V1 { "v1" } else { "v2" };
        serde_json::from_value(json!({ "kv": kv, "mount": "/kv/", "token": "t" })).expect("config")
    }

    #[test]
    fn kv_read_paths_follow_the_engine_version() {
        let address = |version| SecretAddress { resource: "ai/openai".into(), key: Some("k".into()), version };
        assert_eq!(secret_path(&config(KvVersion::V1), &address(None)), "kv/ai/openai");
        assert_eq!(secret_path(&config(KvVersion::V2), &address(None)), "kv/data/ai/openai");
        assert_eq!(secret_path(&config(KvVersion::V2), &address(Some(3))), "kv/data/ai/openai?version=3");
        assert_eq!(base_url(&config(KvVersion::V1)), "http://127.0.0.1:8200/v1");
    }

    #[test]
    fn secret_data_is_read_from_each_engine_shape() {
        let v1 = br#"{"data": {"token": "a"}, "lease_duration": 60}"#;
        let v2 = br#"{"data": {"data": {"token": "b"}, "metadata": {"version": 2}}}"#;
        assert_eq!(secret_data(KvVersion::V1, v1).as_deref(), Some(r#"{"token":"a"}"#));
        assert_eq!(secret_data(KvVersion::V2, v2).as_deref(), Some(r#"{"token":"b"}"#));
        assert_eq!(secret_data(KvVersion::V2, v1), None);
        assert_eq!(vault_errors(br#"{"errors": ["permission denied"]}"#), ": permission denied");
    }
}

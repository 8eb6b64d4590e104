//! Azure Key Vault, as Kong's `azure` vault reads it: `GET
//! <vault_uri>/secrets/<name>?api-version=7.4`, the secret in `value`, with a
//! bearer token from Microsoft Entra ID's client-credentials grant (`POST
//! <authority>/<tenant>/oauth2/v2.0/token`, scope
//! `https://vault.azure.net/.default`), kept until shortly before it expires.
//! The authority is `AZURE_AUTHORITY_HOST` when set (as in Azure's SDKs, for
//! sovereign clouds), else `https://login.microsoftonline.com`.
//!
//! Messages name the vault, the secret and Azure's error code and message,
//! never the client secret, a token or a secret.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;
use tollgate_clock::Clock;
use tollgate_config::vaults::AzureVaultConfig;
use tollgate_config::SecretAddress;

use super::encode_segment;
use crate::upstream::fetch::Fetch;
use crate::upstream::Endpoint;

const API_VERSION: &str = "7.4";
const SCOPE: &str = "https://vault.azure.net/.default";
/// A token is fetched again this long before it expires.
const EARLY_MS: u64 = 60_000;

/// Tokens per (tenant, client id), with when they expire (clock milliseconds).
#[derive(Default)]
pub struct Tokens {
    cached: Mutex<HashMap<(String, String), (String, u64)>>,
}

/// The client credentials: the config's ids, else the environment's, and the
/// environment's secret.
fn credentials(c: &AzureVaultConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<[String; 3], String> {
    let prefix = &c.credentials_prefix;
    let from_env = |suffix: &str| env(&format!("{prefix}_{suffix}"));
    let tenant = c
        .tenant_id
        .clone()
        .or_else(|| from_env("TENANT_ID"))
        .ok_or(format!("no tenant_id (nor {prefix}_TENANT_ID)"))?;
    let client = c
        .client_id
        .clone()
        .or_else(|| from_env("CLIENT_ID"))
        .ok_or(format!("no client_id (nor {prefix}_CLIENT_ID)"))?;
    let secret = from_env("CLIENT_SECRET").ok_or(format!("no client secret: set {prefix}_CLIENT_SECRET"))?;
    Ok([tenant, client, secret])
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", encode_segment(k), encode_segment(v))).collect::<Vec<_>>().join("&")
}

/// Where the client secret is sent: https, or plain http on loopback (a test's).
fn authority(env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let Some(authority) = env("AZURE_AUTHORITY_HOST") else {
        return Ok("https://login.microsoftonline.com".to_string());
    };
    match tollgate_config::HttpUrl::parse(&authority) {
        Ok(url) if url.is_private() => Ok(authority),
        _ => Err("AZURE_AUTHORITY_HOST must be an https URL (plain http only to a loopback address)".to_string()),
    }
}

async fn token(
    fetch: &Fetch,
    tokens: &Tokens,
    clock: &dyn Clock,
    c: &AzureVaultConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let [tenant, client, secret] = credentials(c, env)?;
    let key = (tenant.clone(), client.clone());
    let now = clock.now_ms();
    if let Some((token, _)) = tokens
        .cached
        .lock()
        .ok()
        .and_then(|t| t.get(&key).cloned())
        .filter(|(_, end)| now.saturating_add(EARLY_MS) < *end)
    {
        return Ok(token);
    }
    let authority = authority(env)?;
    let url = format!("{}/{tenant}/oauth2/v2.0/token", authority.trim_end_matches('/'));
    let ep = Endpoint::parse(&url).map_err(|e| e.to_string())?;
    let form = form_encode(&[
        ("grant_type", "client_credentials"),
        ("client_id", &client),
        ("client_secret", &secret),
        ("scope", SCOPE),
    ]);
    let (status, body) = fetch.post_form(&ep, form).await.map_err(|e| e.to_string())?;
    let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if status != 200 {
        let why = answer.get("error").and_then(Value::as_str).unwrap_or("no error code");
        return Err(format!("token request for client {client} in tenant {tenant} answered {status}: {why}"));
    }
    let token =
        answer.get("access_token").and_then(Value::as_str).ok_or("the token answer has no access_token")?.to_string();
    let lifetime = answer.get("expires_in").and_then(Value::as_u64).unwrap_or(3600);
    if let Ok(mut cached) = tokens.cached.lock() {
        cached.insert(key, (token.clone(), super::after_secs(now, lifetime)));
    }
    Ok(token)
}

/// The get-secret URL of `address`.
pub fn secret_url(c: &AzureVaultConfig, address: &SecretAddress) -> String {
    format!(
        "{}/secrets/{}?api-version={API_VERSION}",
        c.vault_uri.trim_end_matches('/'),
        encode_segment(&address.resource)
    )
}

pub async fn read(
    fetch: &Fetch,
    tokens: &Tokens,
    clock: &dyn Clock,
    c: &AzureVaultConfig,
    address: &SecretAddress,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let token = token(fetch, tokens, clock, c, env).await?;
    let ep = Endpoint::parse(&secret_url(c, address)).map_err(|e| e.to_string())?;
    let headers = [("authorization".to_string(), format!("Bearer {token}"))];
    let (status, body) = fetch.get_with(&ep, &headers).await.map_err(|e| e.to_string())?;
    let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let what = format!("secret {} of {}", address.resource, c.vault_uri);
    if status != 200 {
        let code = answer.pointer("/error/code").and_then(Value::as_str).unwrap_or("");
        let message = answer.pointer("/error/message").and_then(Value::as_str).unwrap_or("");
        return Err(format!("{what} answered {status}: {code} {message}").trim_end().to_string());
    }
    answer.get("value").and_then(Value::as_str).map(str::to_string).ok_or(format!("{what}: no value in the answer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authority_is_https_or_loopback() {
        let with = |value: &'static str| move |name: &str| (name == "AZURE_AUTHORITY_HOST").then(|| value.to_string());
        assert_eq!(authority(&|_: &str| None).as_deref(), Ok("https://login.microsoftonline.com"));
        assert!(authority(&with("https://login.example")).is_ok());
        assert!(authority(&with("http://127.0.0.1:9")).is_ok());
        let error = authority(&with("http://login.example")).expect_err("plain http");
        assert!(error.contains("loopback"), "{error}");
    }

    #[test]
    fn credentials_come_from_the_config_or_the_prefixed_environment() {
        let env = |name: &str| match name {
            "KV_TENANT_ID" => Some("t-env".to_string()),
            "KV_CLIENT_ID" => Some("c-env".to_string()),
            "KV_CLIENT_SECRET" => Some("s".to_string()),
            _ => None,
        };
        let c = AzureVaultConfig {
            vault_uri: "https://v.vault.azure.net/".into(),
            credentials_prefix: "KV".into(),
            ..Default::default()
        };
        assert_eq!(credentials(&c, &env).expect("creds"), ["t-env", "c-env", "s"]);
        let c = AzureVaultConfig { client_id: Some("c-conf".into()), ..c };
        assert_eq!(credentials(&c, &env).expect("creds")[1], "c-conf");
        let c = AzureVaultConfig { credentials_prefix: "AZURE".into(), tenant_id: Some("t".into()), ..c };
        assert!(credentials(&c, &env).expect_err("no secret").contains("AZURE_CLIENT_SECRET"));
        let address = SecretAddress { resource: "openai".into(), key: None, version: None };
        assert_eq!(secret_url(&c, &address), "https://v.vault.azure.net/secrets/openai?api-version=7.4");
        // A resource is one path segment of Azure's URL, whatever it holds.
        let address = SecretAddress { resource: "a/b c".into(), key: None, version: None };
        assert_eq!(secret_url(&c, &address), "https://v.vault.azure.net/secrets/a%2Fb%20c?api-version=7.4");
        assert_eq!(form_encode(&[("a b", "x/y+z")]), "a%20b=x%2Fy%2Bz");
    }
}

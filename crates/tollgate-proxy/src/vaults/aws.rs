//! AWS Secrets Manager's GetSecretValue, as Kong's `aws` vault reads it: the
//! JSON 1.1 protocol (`POST /` with `X-Amz-Target:
//! secretsmanager.GetSecretValue` and `{"SecretId": ...}`), signed with SigV4
//! by the signer Bedrock calls use (service `secretsmanager`), with the
//! credentials of the environment, read at every fetch so that rotated
//! temporary credentials are picked up. The secret is `SecretString`.
//!
//! Messages name the endpoint and AWS's error type and message, never a
//! credential or a secret.

use std::time::SystemTime;

use serde_json::{json, Value};
use tollgate_config::vaults::AwsVaultConfig;
use tollgate_config::SecretAddress;
use tollgate_llm::bedrock::{sign_for_service, AwsCredentials};

use crate::upstream::fetch::{Fetch, FETCH_TIMEOUT};
use crate::upstream::Endpoint;

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const TARGET: &str = "secretsmanager.GetSecretValue";

/// The environment's static or temporary credentials.
fn credentials(env: &dyn Fn(&str) -> Option<String>) -> Result<AwsCredentials, String> {
    match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(access_key_id), Some(secret_access_key)) => {
            Ok(AwsCredentials { access_key_id, secret_access_key, session_token: env("AWS_SESSION_TOKEN") })
        }
        _ => Err("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".to_string()),
    }
}

/// The request's endpoint and region.
pub fn endpoint(c: &AwsVaultConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<(Endpoint, String), String> {
    let region = c
        .region
        .clone()
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .ok_or("no region: set config.region or AWS_REGION")?;
    let url = c.endpoint_url.clone().unwrap_or_else(|| format!("https://secretsmanager.{region}.amazonaws.com/"));
    let ep = Endpoint::parse(&url).map_err(|e| e.to_string())?;
    Ok((ep, region))
}

/// `GetSecretValue`'s body: version 2 is the `AWSPREVIOUS` stage.
pub fn request_body(address: &SecretAddress) -> String {
    let mut body = json!({ "SecretId": address.resource });
    if address.version == Some(2) {
        body["VersionStage"] = json!("AWSPREVIOUS");
    }
    body.to_string()
}

pub async fn read(
    fetch: &Fetch,
    c: &AwsVaultConfig,
    address: &SecretAddress,
    env: &dyn Fn(&str) -> Option<String>,
    now: SystemTime,
) -> Result<String, String> {
    let (ep, region) = endpoint(c, env)?;
    let creds = credentials(env)?;
    let body = request_body(address);
    let signed_headers = [("host", ep.authority.as_str()), ("content-type", CONTENT_TYPE), ("x-amz-target", TARGET)];
    let signature = sign_for_service(
        "secretsmanager",
        &creds,
        &region,
        &ep.authority,
        &ep.path_and_query,
        &signed_headers,
        body.as_bytes(),
        now,
    )?;
    let mut headers = vec![("x-amz-target".to_string(), TARGET.to_string())];
    headers.extend(signature);
    let (status, answer) =
        fetch.post(&ep, CONTENT_TYPE, body.into(), &headers, FETCH_TIMEOUT).await.map_err(|e| e.to_string())?;
    let answer: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
    if status != 200 {
        return Err(format!("{TARGET} {} answered {status}{}", address.resource, aws_error(&answer)));
    }
    match answer.get("SecretString").and_then(Value::as_str) {
        Some(secret) => Ok(secret.to_string()),
        None if answer.get("SecretBinary").is_some() => {
            Err(format!("secret {} is binary; only SecretString is read", address.resource))
        }
        None => Err(format!("{TARGET} {}: no SecretString in the answer", address.resource)),
    }
}

/// `: <__type>: <message>` from an AWS JSON error, for messages.
fn aws_error(answer: &Value) -> String {
    let kind = answer.get("__type").and_then(Value::as_str).map(|t| t.rsplit('#').next().unwrap_or(t));
    let message = answer.get("message").or_else(|| answer.get("Message")).and_then(Value::as_str);
    match (kind, message) {
        (Some(k), Some(m)) => format!(": {k}: {m}"),
        (Some(k), None) => format!(": {k}"),
        (None, Some(m)) => format!(": {m}"),
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "AWS_REGION").then(|| "eu-west-1".to_string())
    }

    #[test]
    fn the_endpoint_defaults_to_the_regions_service() {
        let (ep, region) = endpoint(&AwsVaultConfig::default(), &env).expect("endpoint");
        assert_eq!((ep.authority.as_str(), region.as_str()), ("secretsmanager.eu-west-1.amazonaws.com", "eu-west-1"));
        let c = AwsVaultConfig {
            region: Some("us-east-1".into()),
            endpoint_url: Some("http://127.0.0.1:9/".into()),
            ..Default::default()
        };
        let (ep, region) = endpoint(&c, &env).expect("endpoint");
        assert_eq!((ep.authority.as_str(), region.as_str()), ("127.0.0.1:9", "us-east-1"));
        assert!(endpoint(&AwsVaultConfig::default(), &|_| None).is_err());
        assert!(credentials(&env).expect_err("none").contains("AWS_ACCESS_KEY_ID"));
    }

    #[test]
    fn version_two_is_the_previous_stage() {
        let address = |version| SecretAddress { resource: "llm/openai".into(), key: None, version };
        assert_eq!(request_body(&address(None)), r#"{"SecretId":"llm/openai"}"#);
        assert_eq!(request_body(&address(Some(2))), r#"{"SecretId":"llm/openai","VersionStage":"AWSPREVIOUS"}"#);
        let error = json!({"__type": "com.amazonaws#ResourceNotFoundException", "message": "not found"});
        assert_eq!(aws_error(&error), ": ResourceNotFoundException: not found");
    }
}

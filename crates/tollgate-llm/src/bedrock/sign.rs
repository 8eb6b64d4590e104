//! AWS Signature Version 4 for Bedrock calls, through AWS's own signer
//! (`aws-sigv4`). Pure: the caller passes the time and gets back the headers
//! to add; nothing here reads the clock, the environment or the network.

use std::fmt;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{self, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// The service name in Bedrock's credential scope (`.../<region>/bedrock/aws4_request`).
const SERVICE: &str = "bedrock";

/// Static AWS credentials (an access key, or temporary ones with a session token).
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// Never prints the secret or the session token.
impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("session_token", &self.session_token.as_ref().map(|_| "** redacted **"))
            .finish()
    }
}

/// Headers to add to the request (`authorization`, `x-amz-date`, and
/// `x-amz-security-token` when a session token is set) for
/// `POST https://{host}{path_and_query}` with the given body and already-set
/// headers (host, content-type), service "bedrock", in `region`.
///
/// `path_and_query` arrives percent-encoded once, as sent on the wire (a model
/// id `...-v1:0` as `...-v1%3A0`). The signer's default settings encode the
/// path once more for the canonical request (`...-v1%253A0`), as AWS expects
/// of every service but S3, and sign no `x-amz-content-sha256` header, which
/// only S3 requires.
pub fn sign(
    creds: &AwsCredentials,
    region: &str,
    host: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    now: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    sign_for_service(SERVICE, creds, region, host, path_and_query, headers, body, now)
}

/// `sign` for any service: the AWS test vectors use the service "service",
/// the Secrets Manager vault "secretsmanager".
#[allow(clippy::too_many_arguments)]
pub fn sign_for_service(
    service: &str,
    creds: &AwsCredentials,
    region: &str,
    host: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    now: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    // The signer expects a host it can read (it panics on a URI without one).
    if host.is_empty() || host.contains(['/', '?', '#', '@']) || host.chars().any(char::is_whitespace) {
        return Err(format!("cannot sign for host {host:?}"));
    }
    if !path_and_query.starts_with('/') {
        return Err(format!("cannot sign path {path_and_query:?}: it must start with '/'"));
    }
    let identity: Identity = Credentials::new(
        creds.access_key_id.clone(),
        creds.secret_access_key.clone(),
        creds.session_token.clone(),
        None,
        "tollgate",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("signing parameters: {e}"))?
        .into();
    let mut signed: Vec<(&str, &str)> = headers.to_vec();
    if !signed.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
        signed.push(("host", host));
    }
    let request = SignableRequest::new(
        "POST",
        format!("https://{host}{path_and_query}"),
        signed.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| format!("cannot sign the request: {e}"))?;
    let (instructions, _signature) =
        http_request::sign(request, &params).map_err(|e| format!("signing failed: {e}"))?.into_parts();
    let (headers, _query_params) = instructions.into_parts();
    Ok(headers.into_iter().map(|h| (h.name().to_string(), h.value().to_string())).collect())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    /// The example key of AWS's SigV4 test suite.
    fn example_creds(token: Option<&str>) -> AwsCredentials {
        AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: token.map(str::to_string),
        }
    }

    fn at(unix_seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix_seconds)
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    // AWS SigV4 test suite, v4/post-vanilla (context.json: service "service",
    // region us-east-1, 2015-08-30T12:36:00Z, unsigned empty body). Source:
    // https://github.com/awslabs/aws-c-auth/tree/v0.9.0/tests/aws-signing-test-suite/v4/post-vanilla
    // (also shipped in the aws-sigv4 crate's aws-signing-test-suite folder).
    #[test]
    fn post_vanilla_vector() {
        let h = sign_for_service(
            "service",
            &example_creds(None),
            "us-east-1",
            "example.amazonaws.com",
            "/",
            &[("Host", "example.amazonaws.com")],
            b"",
            at(1_440_938_160),
        )
        .expect("signed");
        assert_eq!(header(&h, "x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(
            header(&h, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
            )
        );
        assert_eq!(header(&h, "x-amz-content-sha256"), None);
        assert_eq!(h.len(), 2, "{h:?}");
    }

    // AWS SigV4 test suite, v4/post-sts-header-before: a session token is
    // signed as x-amz-security-token. Same source as above.
    #[test]
    fn session_token_vector() {
        let token = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
        let h = sign_for_service(
            "service",
            &example_creds(Some(token)),
            "us-east-1",
            "example.amazonaws.com",
            "/",
            &[],
            b"",
            at(1_440_938_160),
        )
        .expect("signed");
        assert_eq!(header(&h, "x-amz-security-token"), Some(token));
        assert_eq!(
            header(&h, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date;x-amz-security-token, \
                 Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
            )
        );
    }

    // The smithy-rs addition to the suite, v4/double-url-encode: a path whose
    // ':' arrive as %3A is signed with %253A in the canonical request, exactly
    // the case of Bedrock model ids. Source:
    // https://github.com/smithy-lang/smithy-rs/tree/main/aws/rust-runtime/aws-sigv4/aws-signing-test-suite/v4/double-url-encode
    #[test]
    fn already_encoded_paths_are_encoded_again_for_the_canonical_request() {
        let h = sign_for_service(
            "lambda",
            &example_creds(None),
            "us-east-2",
            "lambda.us-east-2.amazonaws.com",
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A892717189312%3Afunction%3Amy-rusty-fun/invocations",
            &[("host", "lambda.us-east-2.amazonaws.com")],
            b"",
            at(1_620_747_645),
        )
        .expect("signed");
        assert_eq!(
            header(&h, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20210511/us-east-2/lambda/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=4b93abbcc68be32bd64c18e2c71150660ab4c29bbd6c32a383a7517a88fc1804"
            )
        );
    }

    #[test]
    fn bedrock_scope_and_signed_headers() {
        let body = br#"{"messages":[{"role":"user","content":[{"text":"Hello"}]}]}"#;
        let host = "bedrock-runtime.us-west-2.amazonaws.com";
        let path = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse";
        let now = at(1_704_164_645); // 2024-01-02T03:04:05Z
        let sign_with = |token: Option<&str>| {
            sign(
                &example_creds(token),
                "us-west-2",
                host,
                path,
                &[("host", host), ("content-type", "application/json")],
                body,
                now,
            )
            .expect("signed")
        };
        let h = sign_with(None);
        assert_eq!(header(&h, "x-amz-date"), Some("20240102T030405Z"));
        let auth = header(&h, "authorization").expect("authorization");
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/us-west-2/bedrock/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date, Signature="
            ),
            "{auth}"
        );
        let signature = auth.rsplit("Signature=").next().unwrap_or_default();
        assert_eq!(signature.len(), 64);
        assert!(signature.bytes().all(|b| b.is_ascii_hexdigit()));
        // Same inputs, same signature; the body is signed.
        assert_eq!(sign_with(None), h);
        let other = sign(&example_creds(None), "us-west-2", host, path, &[("host", host)], b"{}", now).expect("signed");
        assert_ne!(header(&other, "authorization"), Some(auth));

        let h = sign_with(Some("tok"));
        assert_eq!(header(&h, "x-amz-security-token"), Some("tok"));
        assert!(header(&h, "authorization")
            .is_some_and(|a| a.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,")));
    }

    #[test]
    fn a_missing_host_header_is_added_and_bad_input_is_an_error() {
        let host = "bedrock-runtime.eu-west-1.amazonaws.com";
        let h = sign(&example_creds(None), "eu-west-1", host, "/model/m/converse", &[], b"", at(0)).expect("signed");
        assert!(header(&h, "authorization").is_some_and(|a| a.contains("SignedHeaders=host;x-amz-date,")));
        for (host, path) in [("", "/"), ("a b", "/"), ("h/x", "/"), ("h", "no-slash"), ("h", "/a b")] {
            assert!(sign(&example_creds(None), "r", host, path, &[], b"", at(0)).is_err(), "{host} {path}");
        }
        assert!(sign(&example_creds(None), "r", "h", "/", &[("x-bad", "a\nb")], b"", at(0)).is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let text = format!("{:?}", example_creds(Some("tok")));
        assert!(text.contains("AKIDEXAMPLE"));
        assert!(!text.contains("wJalr") && !text.contains("tok\""), "{text}");
    }
}

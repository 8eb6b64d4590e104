//! `WWW-Authenticate` challenges, RFC 9728 metadata and its well-known path.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use tollgate_auth::{metadata_path, protected_resource_metadata, www_authenticate, AuthError};

const META: &str = "https://gw.example.com/.well-known/oauth-protected-resource/mcp";

#[test]
fn challenge_without_credentials_has_no_error_code() {
    assert_eq!(www_authenticate(META, None, None), format!("Bearer resource_metadata=\"{META}\""));
    assert_eq!(
        www_authenticate(META, None, Some("tools:read tools:call")),
        format!("Bearer resource_metadata=\"{META}\", scope=\"tools:read tools:call\"")
    );
    assert_eq!(www_authenticate("", None, None), "Bearer");
    assert_eq!(www_authenticate("", None, Some("")), "Bearer");
}

#[test]
fn challenge_for_invalid_token() {
    assert_eq!(
        www_authenticate(META, Some(&AuthError::Expired), None),
        format!("Bearer resource_metadata=\"{META}\", error=\"invalid_token\", error_description=\"token expired\"")
    );
    assert_eq!(
        www_authenticate("", Some(&AuthError::UnknownKey), None),
        "Bearer error=\"invalid_token\", error_description=\"token signing key not found\""
    );
}

#[test]
fn challenge_for_insufficient_scope() {
    let err = AuthError::InsufficientScope { missing: vec!["admin".into(), "tools:call".into()] };
    assert_eq!(
        www_authenticate(META, Some(&err), None),
        format!(
            "Bearer resource_metadata=\"{META}\", error=\"insufficient_scope\", \
             error_description=\"insufficient scope: requires admin tools:call\", scope=\"admin tools:call\""
        )
    );
    // An explicit scope wins over the missing list.
    assert!(www_authenticate(META, Some(&err), Some("tools:read admin tools:call"))
        .ends_with("scope=\"tools:read admin tools:call\""));
}

#[test]
fn challenge_values_are_escaped() {
    let got =
        www_authenticate("https://x/\"a\\b", Some(&AuthError::UnsupportedAlgorithm("x\"y".into())), Some("a\r\nb é"));
    assert_eq!(
        got,
        "Bearer resource_metadata=\"https://x/\\\"a\\\\b\", error=\"invalid_token\", \
         error_description=\"unsupported signing algorithm `x\\\"y`\", scope=\"a??b ?\""
    );
    assert!(got.bytes().all(|b| (0x20..0x7f).contains(&b)));
}

#[test]
fn metadata_document() {
    let doc = protected_resource_metadata(
        "https://gw.example.com/mcp",
        &["https://auth.example.com".into()],
        &["tools:read".into(), "tools:call".into()],
    );
    assert_eq!(
        doc,
        json!({
            "resource": "https://gw.example.com/mcp",
            "authorization_servers": ["https://auth.example.com"],
            "scopes_supported": ["tools:read", "tools:call"],
            "bearer_methods_supported": ["header"],
        })
    );
    let bare = protected_resource_metadata("https://gw.example.com/mcp", &["https://a".into()], &[]);
    assert!(bare.get("scopes_supported").is_none());
    assert_eq!(bare["bearer_methods_supported"], json!(["header"]));
}

#[test]
fn metadata_paths() {
    let cases = [
        ("/mcp", "/.well-known/oauth-protected-resource/mcp"),
        ("/", "/.well-known/oauth-protected-resource"),
        ("", "/.well-known/oauth-protected-resource"),
        ("/a/b/mcp", "/.well-known/oauth-protected-resource/a/b/mcp"),
        ("/mcp/", "/.well-known/oauth-protected-resource/mcp/"),
        ("mcp", "/.well-known/oauth-protected-resource/mcp"),
        ("/mcp?tenant=1", "/.well-known/oauth-protected-resource/mcp?tenant=1"),
        ("/?tenant=1", "/.well-known/oauth-protected-resource?tenant=1"),
    ];
    for (input, want) in cases {
        assert_eq!(metadata_path(input), want, "{input}");
    }
}

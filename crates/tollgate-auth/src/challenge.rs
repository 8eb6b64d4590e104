//! What the gateway tells clients: the RFC 6750 `WWW-Authenticate` challenge
//! (extended with RFC 9728's `resource_metadata` parameter, which is how MCP clients
//! discover the authorization server) and the RFC 9728 protected resource metadata
//! document with its well-known path.

use serde_json::{json, Value};

use crate::error::AuthError;

/// RFC 9728 section 3 well-known URI prefix.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// Builds a `WWW-Authenticate` value:
/// `Bearer resource_metadata="…", error="…", error_description="…", scope="…"`.
///
/// - `resource_metadata_url`: absolute URL of the metadata document; omitted if empty.
/// - `err`: `None` for a request without credentials (RFC 6750 section 3.1: no error
///   code then); otherwise its [`AuthError::error_code`] and its message.
/// - `scope`: scopes the resource needs (space-separated). For
///   [`AuthError::InsufficientScope`] without an explicit `scope`, the missing scopes
///   are advertised so the client knows what to request on step-up.
///
/// Values are quoted-strings; `"` and `\` are escaped and anything that is not
/// printable ASCII becomes `?`, so the result is always a valid header value.
pub fn www_authenticate(resource_metadata_url: &str, err: Option<&AuthError>, scope: Option<&str>) -> String {
    let mut params: Vec<(&str, String)> = Vec::new();
    if !resource_metadata_url.is_empty() {
        params.push(("resource_metadata", resource_metadata_url.to_owned()));
    }
    if let Some(err) = err {
        params.push(("error", err.error_code().to_owned()));
        params.push(("error_description", err.to_string()));
    }
    let scope = match (scope, err) {
        (Some(s), _) => Some(s.to_owned()),
        (None, Some(AuthError::InsufficientScope { missing })) => Some(missing.join(" ")),
        _ => None,
    };
    if let Some(scope) = scope.filter(|s| !s.is_empty()) {
        params.push(("scope", scope));
    }

    let mut out = String::from("Bearer");
    for (i, (name, value)) in params.iter().enumerate() {
        out.push_str(if i == 0 { " " } else { ", " });
        out.push_str(name);
        out.push_str("=\"");
        push_quoted(&mut out, value);
        out.push('"');
    }
    out
}

/// Appends `value` as quoted-string content (RFC 9110 section 5.6.4).
fn push_quoted(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
}

/// RFC 9728 section 2 protected resource metadata for `resource` (the resource
/// identifier, e.g. `https://gw.example.com/mcp`). `scopes_supported` is omitted when
/// empty; bearer tokens are accepted only in the `Authorization` header (query and
/// form tokens leak into logs, and MCP forbids them).
pub fn protected_resource_metadata(
    resource: &str,
    authorization_servers: &[String],
    scopes_supported: &[String],
) -> Value {
    let mut doc = json!({
        "resource": resource,
        "authorization_servers": authorization_servers,
        "bearer_methods_supported": ["header"],
    });
    if !scopes_supported.is_empty() {
        doc["scopes_supported"] = json!(scopes_supported);
    }
    doc
}

/// Path of the metadata document for a resource served at `resource_path`
/// (RFC 9728 section 3.1: the well-known prefix goes between host and path, and a
/// lone `/` path is dropped). `/mcp` -> `/.well-known/oauth-protected-resource/mcp`,
/// `/` or `` -> `/.well-known/oauth-protected-resource`. A query is kept.
pub fn metadata_path(resource_path: &str) -> String {
    let (path, query) = match resource_path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (resource_path, None),
    };
    let mut out = String::from(WELL_KNOWN);
    if !path.is_empty() && path != "/" {
        if !path.starts_with('/') {
            out.push('/');
        }
        out.push_str(path);
    }
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

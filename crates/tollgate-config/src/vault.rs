//! Vault references: secrets written as `{vault://env/NAME}` or `{vault://file/PATH}`
//! (the built-in prefixes), or `{vault://<prefix>/<resource>[/<key>][?version=N]}`
//! through a `[[vaults]]` entity (`vaults.rs`).
//!
//! They are resolved on the raw TOML tree before typing, so a reference works in any
//! string of the file and its errors can name the field path. Resolved values are
//! never put into error messages: the caller gets the paths of strings that hold a
//! secret so later checks can avoid echoing them.
//!
//! Remote stores (`hcv`) are reached through `RemoteSecrets`, which the caller
//! passes: this crate does no network I/O, and the gateway answers from its cache
//! (which it refreshes by TTL) with its one HTTP client.

use std::collections::HashSet;
use std::path::Path;

use crate::vaults::{Vault, VaultConfig};

const PREFIX: &str = "{vault://";

/// A reference that could not be resolved, at the path of the string holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VaultError {
    pub path: String,
    pub message: String,
}

/// What resolving a tree found.
#[derive(Debug, Default)]
pub(crate) struct Resolution {
    pub errors: Vec<VaultError>,
    /// Paths of strings whose references all resolved (they now hold secrets).
    pub secret_paths: HashSet<String>,
    /// Paths of strings with at least one reference that failed (left unchanged).
    pub failed_paths: HashSet<String>,
}

/// Where secrets come from. `env` is injectable so tests need not touch the process
/// environment; `base_dir` anchors relative `file` references at the config's folder.
pub(crate) struct Sources<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub base_dir: &'a Path,
    /// The `[[vaults]]` entities that typed.
    pub vaults: &'a [Vault],
    /// Prefixes of `[[vaults]]` entries that did not validate: never contacted.
    pub broken: &'a [String],
    pub remote: &'a dyn RemoteSecrets,
}

/// Where a secret is inside a vault: `{vault://<prefix>/<resource>[/<key>][?version=N]}`.
/// As in Kong, with two or more path segments the last one is the `key` (a field
/// of the secret, read as a JSON object); a trailing `/` means no key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretAddress {
    pub resource: String,
    pub key: Option<String>,
    pub version: Option<u32>,
}

impl SecretAddress {
    /// Parses what follows `{vault://<prefix>/` (without the closing `}`).
    pub fn parse(rest: &str) -> Result<SecretAddress, String> {
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut version = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("version", n)) => {
                    let n = n.parse::<u32>().ok().filter(|n| *n > 0);
                    version = Some(n.ok_or("`version` must be a positive integer")?);
                }
                _ => return Err(format!("unknown query parameter `{pair}` (only `version`)")),
            }
        }
        check_path(path)?;
        let (resource, key) = match path.rsplit_once('/') {
            None => (path, None),
            Some((resource, "")) => (resource, None),
            Some((resource, key)) => (resource, Some(key.to_string())),
        };
        if resource.is_empty() {
            return Err("no secret named after the prefix".to_string());
        }
        Ok(SecretAddress { resource: resource.to_string(), key, version })
    }
}

/// The secret's path goes into a vault's URL (`/v1/<mount>/<path>`), so a segment
/// that walks up (`..`), or a character that ends or re-encodes a path, could reach
/// another endpoint of the vault with the gateway's token. Only plain segments pass;
/// one trailing `/` (no key) is allowed.
fn check_path(path: &str) -> Result<(), String> {
    let path = path.strip_suffix('/').unwrap_or(path);
    if let Some(c) = path.chars().find(|c| matches!(c, '#' | '%' | '?' | '\\') || c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "the secret path may not contain {c:?} (only `?version=N` may follow it; no `#`, `%`, `\\`, whitespace \
             or control characters)"
        ));
    }
    match path.split('/').find(|segment| segment.is_empty() || *segment == "." || *segment == "..") {
        Some(segment) => Err(format!("the secret path may not have an empty, `.` or `..` segment (found `{segment}`)")),
        None => Ok(()),
    }
}

/// Fetches a secret from a remote store: the whole secret (for `hcv`, its data as
/// a JSON object), before any `key` is picked out of it. Errors name the vault and
/// the resource, never a secret.
pub trait RemoteSecrets {
    fn fetch(&self, vault: &Vault, address: &SecretAddress) -> Result<String, String>;
}

/// For loads that reach no remote store (`tollgate check` without network, tests).
pub struct NoRemoteSecrets;

impl RemoteSecrets for NoRemoteSecrets {
    fn fetch(&self, vault: &Vault, _: &SecretAddress) -> Result<String, String> {
        Err(format!("vault `{}` ({}) cannot be reached from here", vault.prefix, vault.name.as_str()))
    }
}

/// Replaces every vault reference in every string of `root`, in place.
pub(crate) fn resolve_tree(root: &mut toml::Table, sources: &Sources<'_>) -> Resolution {
    let mut resolution = Resolution::default();
    for (key, value) in root.iter_mut() {
        resolve_value(value, key.clone(), sources, &mut resolution);
    }
    resolution
}

fn resolve_value(value: &mut toml::Value, path: String, sources: &Sources<'_>, out: &mut Resolution) {
    match value {
        toml::Value::String(text) => {
            if !text.contains(PREFIX) {
                return;
            }
            match resolve_string(text, sources) {
                Ok(resolved) => {
                    *text = resolved;
                    out.secret_paths.insert(path);
                }
                Err(messages) => {
                    out.errors.extend(messages.into_iter().map(|message| VaultError { path: path.clone(), message }));
                    out.failed_paths.insert(path);
                }
            }
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                resolve_value(item, format!("{path}[{i}]"), sources, out);
            }
        }
        toml::Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                resolve_value(item, format!("{path}.{key}"), sources, out);
            }
        }
        toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) | toml::Value::Datetime(_) => {}
    }
}

/// Resolves all references in one string (they may be embedded, several per string).
/// On failure returns one message per bad reference; messages name the reference and
/// where it was looked up, never a resolved value.
pub(crate) fn resolve_string(text: &str, sources: &Sources<'_>) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(PREFIX) {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(end) = after.find('}') else {
            errors.push(format!("vault reference `{after}` is missing its closing `}}`"));
            rest = "";
            break;
        };
        let reference = &after[..=end];
        match resolve_reference(reference, sources) {
            // The secret is inserted verbatim and not scanned again, so a secret that
            // happens to contain `{vault://` cannot pull in another one.
            Ok(secret) => out.push_str(&secret),
            Err(message) => errors.push(message),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// `reference` is the whole `{vault://VAULT/REST}`.
fn resolve_reference(reference: &str, sources: &Sources<'_>) -> Result<String, String> {
    let inner = &reference[PREFIX.len()..reference.len() - 1];
    let (vault, rest) = inner.split_once('/').unwrap_or((inner, ""));
    // The built-in prefixes come first: an entity can never take their place.
    if !matches!(vault, "env" | "file") {
        if let Some(entity) = sources.vaults.iter().find(|v| v.prefix == vault) {
            return resolve_through(entity, rest, sources).map_err(|e| format!("vault reference {reference}: {e}"));
        }
        if sources.broken.iter().any(|p| p == vault) {
            return Err(format!(
                "vault reference {reference}: the [[vaults]] entry with prefix `{vault}` has errors, \
                 so it is not contacted"
            ));
        }
    }
    match vault {
        "env" => {
            let name = env_var_name(rest).ok_or_else(|| {
                format!(
                    "vault reference {reference}: `{rest}` is not a valid environment variable name \
                     (letters, digits, `-` and `_`)"
                )
            })?;
            (sources.env)(&name)
                .ok_or_else(|| format!("vault reference {reference}: environment variable {name} is not set"))
        }
        "file" => {
            if rest.is_empty() {
                return Err(format!("vault reference {reference}: no file path"));
            }
            let path = sources.base_dir.join(rest);
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("vault reference {reference}: cannot read file {}: {e}", path.display()))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| format!("vault reference {reference}: file {} is not valid UTF-8", path.display()))?;
            // Files written by editors and `echo` end in a newline that is not part
            // of the secret.
            Ok(text.trim_end_matches(['\n', '\r']).to_string())
        }
        other => Err(format!(
            "vault reference {reference}: no [[vaults]] entry has prefix `{other}` (built-in prefixes: env, file)"
        )),
    }
}

/// A reference through a `[[vaults]]` entity: fetch the secret, then pick its key.
fn resolve_through(vault: &Vault, rest: &str, sources: &Sources<'_>) -> Result<String, String> {
    let address = SecretAddress::parse(rest)?;
    let secret = match &vault.config {
        VaultConfig::Env(c) => {
            let name = prefixed_env_name(c.prefix.as_deref(), &address);
            (sources.env)(&name).ok_or_else(|| format!("environment variable {name} is not set"))?
        }
        VaultConfig::File(c) => {
            let path = sources.base_dir.join(c.prefix.as_deref().unwrap_or("")).join(&address.resource);
            let bytes = std::fs::read(&path).map_err(|e| format!("cannot read file {}: {e}", path.display()))?;
            let text = String::from_utf8(bytes).map_err(|_| format!("file {} is not valid UTF-8", path.display()))?;
            text.trim_end_matches(['\n', '\r']).to_string()
        }
        VaultConfig::Hcv(_) | VaultConfig::Aws(_) | VaultConfig::Gcp(_) | VaultConfig::Azure(_) => {
            sources.remote.fetch(vault, &address)?
        }
    };
    match &address.key {
        None => Ok(secret),
        Some(key) => pick_key(&secret, key).ok_or_else(|| {
            format!("secret `{}` has no field `{key}` (a key reads a field of a JSON object)", address.resource)
        }),
    }
}

/// Kong's env vault: prefix and resource joined, `-` turned into `_`, upper-cased;
/// version 2 is the variable with `_PREVIOUS` appended.
pub fn prefixed_env_name(prefix: Option<&str>, address: &SecretAddress) -> String {
    let mut name = format!("{}{}", prefix.unwrap_or(""), address.resource).replace('-', "_").to_ascii_uppercase();
    if address.version == Some(2) {
        name.push_str("_PREVIOUS");
    }
    name
}

/// A field of a secret that is a JSON object; strings as they are, numbers and
/// booleans as written.
pub fn pick_key(secret: &str, key: &str) -> Option<String> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(secret).ok()?;
    match object.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => Some(v.to_string()),
        _ => None,
    }
}

/// Kong's env vault: `openai-key` reads `OPENAI_KEY`.
fn env_var_name(name: &str) -> Option<String> {
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    valid.then(|| name.to_ascii_uppercase().replace('-', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "OPENAI_KEY" => Some("sk-secret".to_string()),
            "OTHER" => Some("x{vault://env/openai-key}".to_string()),
            _ => None,
        }
    }

    fn sources(dir: &Path) -> Sources<'_> {
        Sources { env: &env, base_dir: dir, vaults: &[], broken: &[], remote: &NoRemoteSecrets }
    }

    #[test]
    fn resolves_embedded_and_repeated_env_refs() {
        let s = sources(Path::new("."));
        assert_eq!(resolve_string("Bearer {vault://env/openai-key}", &s), Ok("Bearer sk-secret".to_string()));
        assert_eq!(
            resolve_string("{vault://env/openai_key}:{vault://env/OPENAI-KEY}", &s),
            Ok("sk-secret:sk-secret".to_string())
        );
        assert_eq!(resolve_string("no refs {here}", &s), Ok("no refs {here}".to_string()));
    }

    #[test]
    fn resolved_values_are_not_rescanned() {
        let s = sources(Path::new("."));
        assert_eq!(resolve_string("{vault://env/other}", &s), Ok("x{vault://env/openai-key}".to_string()));
    }

    #[test]
    fn reports_each_bad_reference() {
        let s = sources(Path::new("."));
        let errors = resolve_string("{vault://env/missing-one} {vault://aws/k} {vault://env/a b}", &s)
            .expect_err("three bad references");
        assert_eq!(errors.len(), 3);
        assert!(errors[0].contains("MISSING_ONE is not set"), "{errors:?}");
        assert!(errors[1].contains("no [[vaults]] entry has prefix `aws`"), "{errors:?}");
        assert!(errors[2].contains("not a valid environment variable name"), "{errors:?}");
        let unterminated = resolve_string("{vault://env/x", &s).expect_err("unterminated");
        assert!(unterminated[0].contains("closing"), "{unterminated:?}");
    }

    #[test]
    fn secret_paths_that_leave_their_place_are_refused() {
        for bad in [
            "../../auth/token/lookup-self/id",
            "a/./b",
            "a//b",
            "/a",
            "a/..",
            "a#b",
            "a%2e%2e/b",
            "a b",
            "a\tb",
            "a\u{7}b",
            "a\\..\\b",
            "a?version=1?x=2",
            "a/b?c",
        ] {
            assert!(SecretAddress::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let error = SecretAddress::parse("../x").expect_err("dot-dot");
        assert!(error.contains("`..`"), "{error}");
        assert_eq!(
            SecretAddress::parse("team/openai/key?version=2"),
            Ok(SecretAddress { resource: "team/openai".into(), key: Some("key".into()), version: Some(2) })
        );
        assert_eq!(
            SecretAddress::parse("team/openai/"),
            Ok(SecretAddress { resource: "team/openai".into(), key: None, version: None })
        );
    }

    #[test]
    fn reads_files_relative_to_the_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("secrets")).expect("mkdir");
        std::fs::write(dir.path().join("secrets/key"), "file-secret\n").expect("write");
        let s = sources(dir.path());
        assert_eq!(resolve_string("{vault://file/secrets/key}", &s), Ok("file-secret".to_string()));
        let absolute = format!("{{vault://file/{}}}", dir.path().join("secrets/key").display());
        assert_eq!(resolve_string(&absolute, &s), Ok("file-secret".to_string()));
        let missing = resolve_string("{vault://file/secrets/nope}", &s).expect_err("missing");
        assert!(missing[0].contains("cannot read file"), "{missing:?}");
        assert!(missing[0].contains("secrets/nope"), "{missing:?}");
    }

    #[test]
    fn walks_the_tree_and_records_paths() {
        let mut table: toml::Table = toml::from_str(
            r#"
            [[plugins]]
            config = { targets = [{ auth = { header_value = "Bearer {vault://env/openai-key}" } }] }
            [[consumers]]
            keyauth_credentials = [{ key = "{vault://env/nope}" }]
            "#,
        )
        .expect("valid toml");
        let resolution = resolve_tree(&mut table, &sources(Path::new(".")));
        assert!(resolution.secret_paths.contains("plugins[0].config.targets[0].auth.header_value"));
        assert_eq!(
            resolution.errors,
            vec![VaultError {
                path: "consumers[0].keyauth_credentials[0].key".to_string(),
                message: "vault reference {vault://env/nope}: environment variable NOPE is not set".to_string(),
            }]
        );
        assert!(resolution.failed_paths.contains("consumers[0].keyauth_credentials[0].key"));
    }
}

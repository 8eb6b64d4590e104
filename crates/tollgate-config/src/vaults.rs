//! Kong's `vaults` entity: a secret store with a `prefix` that references name,
//! `{vault://<prefix>/<resource>[/<key>][?version=N]}`.
//!
//! The types follow Kong's field names per vault kind (`name`), so that a decK
//! file's `vaults:` and an admin API body map onto them field for field. Typing
//! happens here, with errors at `vaults[i]....`; fetching is elsewhere: `env` and
//! `file` are read by the loader, remote stores (`hcv`) by whoever passes a
//! `RemoteSecrets` to the loader (the gateway, with its HTTP client and cache).

use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::typing::{join, type_collect, TypeError};
use crate::vault::{resolve_tree, Resolution, Sources};

/// Kong's default `resurrect_ttl`: 1e8 seconds (about three years).
pub const DEFAULT_RESURRECT_TTL: u64 = 100_000_000;

/// Which secret store a vault entity reaches (Kong's `name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VaultKind {
    Env,
    File,
    Hcv,
    Aws,
    Gcp,
    Azure,
}

impl VaultKind {
    pub const ALL: [VaultKind; 6] =
        [VaultKind::Env, VaultKind::File, VaultKind::Hcv, VaultKind::Aws, VaultKind::Gcp, VaultKind::Azure];

    pub fn as_str(self) -> &'static str {
        match self {
            VaultKind::Env => "env",
            VaultKind::File => "file",
            VaultKind::Hcv => "hcv",
            VaultKind::Aws => "aws",
            VaultKind::Gcp => "gcp",
            VaultKind::Azure => "azure",
        }
    }
}

/// How long a fetched secret is used, in seconds, as every Kong vault config has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretTtls {
    /// Re-fetch a secret this long after it was fetched; 0 never does (Kong's default).
    pub ttl: u64,
    /// After a failed fetch, try again this long after; 0 waits `ttl` instead.
    pub neg_ttl: u64,
    /// How long past its `ttl` the last good value stays in use while fetches fail.
    pub resurrect_ttl: u64,
}

/// The longest `ttl` and `neg_ttl`: one year, in seconds.
pub const MAX_TTL: u64 = 365 * 24 * 3600;
/// The longest `resurrect_ttl`: Kong's default, 1e8 seconds.
pub const MAX_RESURRECT_TTL: u64 = DEFAULT_RESURRECT_TTL;

fn default_resurrect_ttl() -> u64 {
    DEFAULT_RESURRECT_TTL
}

/// `name = "env"`: environment variables. `{vault://p/openai-token}` with
/// `config.prefix = "AI_"` reads `AI_OPENAI_TOKEN` (Kong: prefix and resource
/// joined, `-` turned into `_`, upper-cased; `?version=2` appends `_PREVIOUS`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVaultConfig {
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub ttl: u64,
    #[serde(default)]
    pub neg_ttl: u64,
    #[serde(default = "default_resurrect_ttl")]
    pub resurrect_ttl: u64,
}

/// `name = "file"`: files under `config.prefix` (a folder, relative to the config
/// file's); `{vault://p/openai.json/key}` reads a field of a JSON file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileVaultConfig {
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub ttl: u64,
    #[serde(default)]
    pub neg_ttl: u64,
    #[serde(default = "default_resurrect_ttl")]
    pub resurrect_ttl: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HcvProtocol {
    #[default]
    Http,
    Https,
}

/// The KV secrets engine version (Kong's `kv`, default `v1`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KvVersion {
    #[default]
    V1,
    V2,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HcvAuthMethod {
    #[default]
    Token,
    Approle,
    Kubernetes,
}

/// `name = "hcv"`: HashiCorp Vault's KV engine, Kong's field names and defaults.
/// `{vault://p/openai/token}` reads field `token` of secret `openai` under `mount`.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HcvVaultConfig {
    #[serde(default)]
    pub protocol: HcvProtocol,
    #[serde(default = "default_hcv_host")]
    pub host: String,
    #[serde(default = "default_hcv_port")]
    pub port: u16,
    /// Vault Enterprise namespace, sent as `X-Vault-Namespace`.
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default = "default_hcv_mount")]
    pub mount: String,
    #[serde(default)]
    pub kv: KvVersion,
    #[serde(default)]
    pub auth_method: HcvAuthMethod,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub kube_role: Option<String>,
    #[serde(default = "default_kube_auth_path")]
    pub kube_auth_path: String,
    #[serde(default = "default_kube_api_token_file")]
    pub kube_api_token_file: String,
    #[serde(default = "default_approle_auth_path")]
    pub approle_auth_path: String,
    #[serde(default)]
    pub approle_role_id: Option<String>,
    #[serde(default)]
    pub approle_secret_id: Option<String>,
    #[serde(default)]
    pub approle_secret_id_file: Option<String>,
    /// The secret id is a response-wrapping token, unwrapped at login.
    #[serde(default)]
    pub approle_response_wrapping: bool,
    #[serde(default)]
    pub ttl: u64,
    #[serde(default)]
    pub neg_ttl: u64,
    #[serde(default = "default_resurrect_ttl")]
    pub resurrect_ttl: u64,
}

/// Credentials stay out of `{:?}`.
impl std::fmt::Debug for HcvVaultConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HcvVaultConfig")
            .field("protocol", &self.protocol)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("namespace", &self.namespace)
            .field("mount", &self.mount)
            .field("kv", &self.kv)
            .field("auth_method", &self.auth_method)
            .finish_non_exhaustive()
    }
}

fn default_hcv_host() -> String {
    "127.0.0.1".to_string()
}
fn default_hcv_port() -> u16 {
    8200
}
fn default_hcv_mount() -> String {
    "secret".to_string()
}
fn default_kube_auth_path() -> String {
    "kubernetes".to_string()
}
fn default_kube_api_token_file() -> String {
    "/var/run/secrets/kubernetes.io/serviceaccount/token".to_string()
}
fn default_approle_auth_path() -> String {
    "approle".to_string()
}

/// `name = "aws"`: AWS Secrets Manager's GetSecretValue, signed with SigV4
/// with the credentials of the environment (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`). `{vault://p/openai/token}`
/// reads field `token` of the JSON secret `openai`; `?version=2` reads the
/// `AWSPREVIOUS` stage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AwsVaultConfig {
    /// Else `AWS_REGION` or `AWS_DEFAULT_REGION` from the environment.
    #[serde(default)]
    pub region: Option<String>,
    /// Else `https://secretsmanager.<region>.amazonaws.com`.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    #[serde(default)]
    pub ttl: u64,
    #[serde(default)]
    pub neg_ttl: u64,
    #[serde(default = "default_resurrect_ttl")]
    pub resurrect_ttl: u64,
}

/// `name = "gcp"`: Google Secret Manager's access API, with a token traded
/// for the service account in `GCP_SERVICE_ACCOUNT` (Kong's way).
/// `{vault://p/openai/token}` reads field `token` of secret `openai`'s latest
/// version; `?version=N` reads version N.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GcpVaultConfig {
    pub project_id: String,
    /// Not Kong's: where Secret Manager is, else `https://secretmanager.googleapis.com`
    /// (a private endpoint, or a test's).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    #[serde(default)]
    pub ttl: u64,
    #[serde(default)]
    pub neg_ttl: u64,
    #[serde(default = "default_resurrect_ttl")]
    pub resurrect_ttl: u64,
}

/// `name = "azure"`: Azure Key Vault's get-secret, with a token from the
/// client-credentials grant of Microsoft Entra ID. The client secret is
/// `<credentials_prefix>_CLIENT_SECRET` in the environment (Kong's way);
/// `client_id` and `tenant_id` fall back to `<prefix>_CLIENT_ID` and
/// `<prefix>_TENANT_ID`. `?version=` is not Azure's (its versions are ids).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AzureVaultConfig {
    /// `https://<name>.vault.azure.net`.
    pub vault_uri: String,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Accepted for Kong's sake; the vault's URI already says where it is.
    #[serde(default)]
    pub location: Option<String>,
    /// Only Kong's `secrets`.
    #[serde(default = "default_azure_type", rename = "type")]
    pub kind: String,
    #[serde(default = "default_azure_prefix")]
    pub credentials_prefix: String,
    #[serde(default)]
    pub ttl: u64,
    #[serde(default)]
    pub neg_ttl: u64,
    #[serde(default = "default_resurrect_ttl")]
    pub resurrect_ttl: u64,
}

fn default_azure_type() -> String {
    "secrets".to_string()
}
fn default_azure_prefix() -> String {
    "AZURE".to_string()
}

/// A vault's `config`, typed by its `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultConfig {
    Env(EnvVaultConfig),
    File(FileVaultConfig),
    Hcv(Box<HcvVaultConfig>),
    Aws(AwsVaultConfig),
    Gcp(GcpVaultConfig),
    Azure(AzureVaultConfig),
}

/// One `[[vaults]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vault {
    pub name: VaultKind,
    pub prefix: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub config: VaultConfig,
}

impl Vault {
    pub fn ttls(&self) -> SecretTtls {
        let (ttl, neg_ttl, resurrect_ttl) = match &self.config {
            VaultConfig::Env(c) => (c.ttl, c.neg_ttl, c.resurrect_ttl),
            VaultConfig::File(c) => (c.ttl, c.neg_ttl, c.resurrect_ttl),
            VaultConfig::Hcv(c) => (c.ttl, c.neg_ttl, c.resurrect_ttl),
            VaultConfig::Aws(c) => (c.ttl, c.neg_ttl, c.resurrect_ttl),
            VaultConfig::Gcp(c) => (c.ttl, c.neg_ttl, c.resurrect_ttl),
            VaultConfig::Azure(c) => (c.ttl, c.neg_ttl, c.resurrect_ttl),
        };
        SecretTtls { ttl, neg_ttl, resurrect_ttl }
    }
}

/// The entry's own fields; `config` is typed by `name` afterwards.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VaultEntry {
    name: VaultKind,
    prefix: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    config: toml::Table,
}

/// Types `[[vaults]]`: one slot per entry, `None` where it did not type (its
/// errors reported). `resolved` says the tree's own vault references were
/// replaced: serde's messages, which may quote a value, are then not shown.
pub(crate) fn type_vaults(raw: Option<&toml::Value>, resolved: bool, r: &mut Report<'_>) -> Vec<Option<Vault>> {
    let items = match raw {
        None => return Vec::new(),
        Some(toml::Value::Array(items)) => items,
        Some(_) => {
            if !resolved {
                r.error("vaults", "`vaults` must be an array of tables ([[vaults]])");
            }
            return Vec::new();
        }
    };
    items.iter().enumerate().map(|(i, item)| type_vault(item, &format!("vaults[{i}]"), resolved, r)).collect()
}

fn type_vault(item: &toml::Value, base: &str, resolved: bool, r: &mut Report<'_>) -> Option<Vault> {
    let report = |r: &mut Report<'_>, at: &str, errors: Vec<TypeError>| {
        if resolved {
            if let Some(e) = errors.first() {
                r.error(join(at, &e.path), "invalid value after resolving vault references");
            }
        } else {
            for e in errors {
                r.serde_error(join(at, &e.path), e.message);
            }
        }
    };
    let entry: VaultEntry = type_collect(item).map_err(|errors| report(r, base, errors)).ok()?;
    let config_value = toml::Value::Table(entry.config);
    let at = format!("{base}.config");
    let config = match entry.name {
        VaultKind::Env => type_collect(&config_value).map(VaultConfig::Env),
        VaultKind::File => type_collect(&config_value).map(VaultConfig::File),
        VaultKind::Hcv => type_collect(&config_value).map(|c| VaultConfig::Hcv(Box::new(c))),
        VaultKind::Aws => type_collect(&config_value).map(VaultConfig::Aws),
        VaultKind::Gcp => type_collect(&config_value).map(VaultConfig::Gcp),
        VaultKind::Azure => type_collect(&config_value).map(VaultConfig::Azure),
    };
    let config = config.map_err(|errors| report(r, &at, errors)).ok()?;
    Some(Vault { name: entry.name, prefix: entry.prefix, description: entry.description, tags: entry.tags, config })
}

/// Kong's rule for a prefix: lower-case letters, digits and `-`, starting with a
/// letter; and it may not be a vault kind's name (`env`, `file` are the built-in
/// prefixes).
fn prefix_problem(prefix: &str) -> Option<String> {
    let mut chars = prefix.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    if !starts_with_letter || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Some(format!(
            "prefix `{prefix}` must start with a lower-case letter and hold only lower-case letters, digits and `-`"
        ));
    }
    VaultKind::ALL
        .iter()
        .any(|k| k.as_str() == prefix)
        .then(|| format!("prefix `{prefix}` is the name of a vault kind; choose another (`{prefix}` is reserved)"))
}

/// Meaning checks: unique and valid prefixes, and what each auth method needs.
pub(crate) fn validate_vaults(vaults: &[Option<Vault>], r: &mut Report<'_>) {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for (i, vault) in vaults.iter().enumerate() {
        let Some(vault) = vault else { continue };
        let base = format!("vaults[{i}]");
        if let Some(problem) = prefix_problem(&vault.prefix) {
            r.error(format!("{base}.prefix"), problem);
        }
        if let Some((_, first)) = seen.iter().find(|(p, _)| *p == vault.prefix) {
            let line = r.line_of(&format!("vaults[{first}].prefix"));
            r.error(format!("{base}.prefix"), format!("prefix `{}` is already used at line {line}", vault.prefix));
        }
        seen.push((&vault.prefix, i));
        check_ttls(vault.ttls(), &format!("{base}.config"), r);
        match &vault.config {
            VaultConfig::Env(c) => {
                let bad = c.prefix.as_deref().is_some_and(|p| {
                    p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                });
                if bad {
                    r.error(format!("{base}.config.prefix"), "must hold only letters, digits, `_` and `-`");
                }
            }
            VaultConfig::File(_) => {}
            VaultConfig::Hcv(c) => validate_hcv(c, &format!("{base}.config"), r),
            VaultConfig::Aws(c) => check_url(c.endpoint_url.as_deref(), &base, r),
            VaultConfig::Azure(c) => {
                if !crate::HttpUrl::parse(&c.vault_uri).is_ok_and(|u| u.is_private()) {
                    r.error(
                        format!("{base}.config.vault_uri"),
                        format!("must be the vault's https URL ({HTTPS_RULE})"),
                    );
                }
                if c.kind != "secrets" {
                    r.error(format!("{base}.config.type"), "only `secrets` is supported");
                }
            }
            VaultConfig::Gcp(c) => {
                check_url(c.endpoint_url.as_deref(), &base, r);
                if c.project_id.is_empty() || c.project_id.contains(['/', '?', '#']) {
                    r.error(format!("{base}.config.project_id"), "must be a GCP project id");
                }
            }
        }
    }
}

fn check_ttls(ttls: SecretTtls, base: &str, r: &mut Report<'_>) {
    let limits = [("ttl", ttls.ttl, MAX_TTL), ("neg_ttl", ttls.neg_ttl, MAX_TTL)];
    for (field, value, limit) in limits.into_iter().chain([("resurrect_ttl", ttls.resurrect_ttl, MAX_RESURRECT_TTL)]) {
        if value > limit {
            r.error(format!("{base}.{field}"), format!("must be at most {limit} seconds (found {value})"));
        }
    }
}

/// Credentials and secrets cross these connections.
const HTTPS_RULE: &str = "plain http only to a loopback address";

fn check_url(url: Option<&str>, base: &str, r: &mut Report<'_>) {
    if url.is_some_and(|u| !crate::HttpUrl::parse(u).is_ok_and(|u| u.is_private())) {
        r.error(format!("{base}.config.endpoint_url"), format!("must be an https URL ({HTTPS_RULE})"));
    }
}

fn validate_hcv(c: &HcvVaultConfig, base: &str, r: &mut Report<'_>) {
    if c.host.is_empty() || c.host.contains(['/', ' ']) {
        r.error(format!("{base}.host"), "must be a host name or address, without scheme or path");
    }
    if c.port == 0 {
        r.error(format!("{base}.port"), "must be between 1 and 65535");
    }
    if c.protocol == HcvProtocol::Http && !crate::HttpUrl::is_loopback_host(&c.host) {
        r.error(format!("{base}.protocol"), format!("must be `https` for host `{}` ({HTTPS_RULE})", c.host));
    }
    if c.mount.trim_matches('/').is_empty() {
        r.error(format!("{base}.mount"), "must name the KV engine's mount path");
    }
    let missing = |r: &mut Report<'_>, field: &str, method: &str| {
        r.error(format!("{base}.{field}"), format!("is required with auth_method = \"{method}\""));
    };
    match c.auth_method {
        HcvAuthMethod::Token => {
            if c.token.as_deref().is_none_or(str::is_empty) {
                missing(r, "token", "token");
            }
        }
        HcvAuthMethod::Approle => {
            if c.approle_role_id.as_deref().is_none_or(str::is_empty) {
                missing(r, "approle_role_id", "approle");
            }
            if c.approle_secret_id.is_none() && c.approle_secret_id_file.is_none() {
                r.error(
                    format!("{base}.approle_secret_id"),
                    "approle_secret_id or approle_secret_id_file is required with auth_method = \"approle\"",
                );
            }
        }
        HcvAuthMethod::Kubernetes => {
            if c.kube_role.as_deref().is_none_or(str::is_empty) {
                missing(r, "kube_role", "kubernetes");
            }
        }
    }
}

/// Types `[[vaults]]` (removed from the tree by the caller), resolving the
/// built-in references in their configs first (`token = "{vault://env/VAULT_TOKEN}"`).
/// As for the rest of the file, entries are typed unresolved (serde's messages,
/// which quote values, can never quote a secret) and again resolved.
pub(crate) fn load_vaults(
    raw: Option<toml::Value>,
    sources: &Sources<'_>,
    r: &mut Report<'_>,
) -> (Vec<Option<Vault>>, Resolution) {
    let unresolved = type_vaults(raw.as_ref(), false, r);
    let Some(raw) = raw else {
        return (unresolved, Resolution::default());
    };
    let mut tree = toml::Table::new();
    tree.insert("vaults".to_string(), raw);
    let mut resolution = resolve_tree(&mut tree, sources);
    for e in std::mem::take(&mut resolution.errors) {
        r.error(e.path, e.message);
    }
    let Some(toml::Value::Array(items)) = tree.get("vaults") else {
        return (unresolved, resolution);
    };
    let vaults = unresolved
        .iter()
        .zip(items)
        .enumerate()
        .map(|(i, (before, item))| before.as_ref().and_then(|_| type_vault(item, &format!("vaults[{i}]"), true, r)))
        .collect();
    (vaults, resolution)
}

#[cfg(test)]
mod tests;

//! Loading: text -> typed, vault-resolved, validated `Config`.
//!
//! The passes, and why each exists:
//! 1. Parse the TOML syntax. A syntax error leaves nothing to check, so it is
//!    returned alone.
//! 2. Type `[server]` and each entry of `services`, `routes`, `consumers` and
//!    `plugins` on its own (`typing`), so that an unknown field or a wrong type in
//!    one entry does not hide the errors of the others. Every error gets its field
//!    path, and its line from the span index.
//! 3. Type each plugin's raw `config` by its `name`, collecting errors from every
//!    plugin. Passes 2 and 3 run on the unresolved tree so that serde messages,
//!    which quote offending values, can never quote a secret.
//! 4. Resolve vault references on the raw tree, then type again what typed in pass 2.
//! 5. Semantic checks (`validate`), all errors collected, on the entries that typed;
//!    entries that did not still count by name, and their references are checked.

use std::path::Path;

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::error::{ConfigError, ConfigErrors, PluginConfigError, Report};
use crate::schema::{PluginConfig, PluginEntry, PLUGIN_NAMES};
use crate::spans::SpanIndex;
use crate::typing::{self, join, TypeError};
use crate::vault::{self, NoRemoteSecrets, RemoteSecrets, Sources};
use crate::vaults::{load_vaults, validate_vaults, Vault};
use crate::{validate, Config, Plugin};

/// Reads, resolves and validates the config file at `path`. Vault `env` references
/// read the process environment; `file` references are relative to the file's folder.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    load_file_with(path, &NoRemoteSecrets)
}

/// Like `load_file`, with `remote` fetching the secrets of remote vaults (`hcv`).
pub fn load_file_with(path: &Path, remote: &dyn RemoteSecrets) -> Result<Config, ConfigErrors> {
    let text = read_config_file(path)?;
    load_str_with(&text, path, &|name| std::env::var(name).ok(), remote)
}

/// The config file's text, or an error for the whole file.
pub fn read_config_file(path: &Path) -> Result<String, ConfigErrors> {
    let whole_file = |message: String| {
        ConfigErrors(vec![ConfigError { file: path.to_path_buf(), line: 0, column: 0, path: String::new(), message }])
    };
    let bytes = std::fs::read(path).map_err(|e| whole_file(format!("cannot read config file: {e}")))?;
    String::from_utf8(bytes)
        .map_err(|e| whole_file(format!("config file is not valid UTF-8 (at byte {})", e.utf8_error().valid_up_to())))
}

/// Like `load_file`, from text: `source_name` is used in errors, as `Config::source`,
/// and (its parent folder) as the base of relative `file` vault references; `env`
/// looks up environment variables.
pub fn load_str(text: &str, source_name: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    load_str_with(text, source_name, env, &NoRemoteSecrets)
}

/// Like `load_str`, with `remote` fetching the secrets of remote vaults (`hcv`).
pub fn load_str_with(
    text: &str,
    source_name: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    remote: &dyn RemoteSecrets,
) -> Result<Config, ConfigErrors> {
    let spans = SpanIndex::new(text);
    let mut report = Report::new(source_name, &spans);

    // Pass 1: syntax.
    let mut tree: toml::Table = match toml::from_str(text) {
        Ok(tree) => tree,
        Err(e) => {
            let message = e.message().to_string();
            match e.span() {
                Some(span) => report.error_at_offset(span.start, String::new(), message),
                None => report.error(String::new(), message),
            }
            return Err(ConfigErrors(report.finish()));
        }
    };

    // Pass 1b: vault entities, which the other references go through.
    let base_dir = source_name.parent().unwrap_or(Path::new(""));
    let builtin = Sources { env, base_dir, vaults: &[], broken: &[], remote };
    let (vault_slots, vault_resolution) = load_vaults(tree.remove("vaults"), &builtin, &mut report);
    // Validated before any remote vault is contacted, so that a bad entry (a
    // reserved or duplicate prefix, a bad host) never receives its token.
    report.set_vault_paths(vault_resolution.failed_paths.clone(), vault_resolution.secret_paths.clone());
    validate_vaults(&vault_slots, &mut report);
    let (vaults, broken) = usable_vaults(&vault_slots, &report);

    // Pass 2: structure, entry by entry.
    let unresolved = typing::type_file(&tree, None, &mut report);

    // Pass 3: plugin configs, every plugin.
    let config_typed: Vec<bool> = unresolved
        .plugins
        .slots
        .iter()
        .enumerate()
        .map(|(i, slot)| {
            let Some(entry) = typing::config_entry(slot) else {
                return false;
            };
            match PluginConfig::from_entry_all(&entry) {
                Ok(_) => true,
                Err(errors) => {
                    for e in errors {
                        report.serde_error(format!("plugins[{i}].{}", e.path), e.message);
                    }
                    false
                }
            }
        })
        .collect();

    // Pass 4: secrets.
    let mut resolution =
        vault::resolve_tree(&mut tree, &Sources { env, base_dir, vaults: &vaults, broken: &broken, remote });
    for e in resolution.errors {
        report.error(e.path, e.message);
    }
    resolution.failed_paths.extend(vault_resolution.failed_paths);
    resolution.secret_paths.extend(vault_resolution.secret_paths);
    report.set_vault_paths(resolution.failed_paths, resolution.secret_paths);

    let file = typing::type_file(&tree, Some(&unresolved), &mut report);
    let mut plugin_configs: Vec<Option<PluginConfig>> = file
        .plugins
        .slots
        .iter()
        .zip(&config_typed)
        .enumerate()
        .map(|(i, (slot, typed))| {
            if !typed {
                return None;
            }
            let entry = typing::config_entry(slot)?;
            match PluginConfig::from_entry(&entry) {
                Ok(config) => Some(config),
                Err(e) => {
                    report.error(format!("plugins[{i}].{}", e.path), "invalid value after resolving vault references");
                    None
                }
            }
        })
        .collect();

    // OpenAPI documents become tools before their tools are checked.
    crate::openapi::expand(&mut plugin_configs, base_dir, &mut report);

    // Pass 5: meaning.
    validate::validate(&file, &plugin_configs, &mut report);
    if report.has_errors() {
        return Err(ConfigErrors(report.finish()));
    }

    // No errors, so every entry typed.
    let typing::TypedFile { server, services, routes, consumers, plugins } = file;
    let (Some(server), Some(services), Some(routes), Some(consumers), Some(entries)) =
        (server, services.into_all(), routes.into_all(), consumers.into_all(), plugins.into_all())
    else {
        report.error(String::new(), "the config could not be typed");
        return Err(ConfigErrors(report.finish()));
    };
    let plugins = entries
        .into_iter()
        .zip(plugin_configs)
        .filter_map(|(entry, config)| {
            Some(Plugin {
                name: entry.name,
                service: entry.service,
                route: entry.route,
                consumer: entry.consumer,
                enabled: entry.enabled,
                config: config?,
            })
        })
        .collect();
    Ok(Config {
        source: source_name.to_path_buf(),
        digest: sha256_hex(text.as_bytes()),
        server,
        services,
        routes,
        consumers,
        plugins,
        vaults,
    })
}

impl PluginConfig {
    /// Types `entry.config` by `entry.name`. Errors carry the path inside the entry
    /// (`name`, or `config.targets[0].model`).
    pub fn from_entry(entry: &PluginEntry) -> Result<PluginConfig, PluginConfigError> {
        Self::from_entry_all(entry).map_err(|errors| {
            errors.into_iter().next().unwrap_or_else(|| PluginConfigError {
                path: "config".to_string(),
                message: "invalid value".to_string(),
            })
        })
    }

    /// Like `from_entry`, with every error of the config rather than the first
    /// (never empty).
    pub(crate) fn from_entry_all(entry: &PluginEntry) -> Result<PluginConfig, Vec<PluginConfigError>> {
        match entry.name.as_str() {
            "key-auth" => typed(&entry.config).map(PluginConfig::KeyAuth),
            "mtls-auth" => typed(&entry.config).map(PluginConfig::MtlsAuth),
            "acl" => typed(&entry.config).map(PluginConfig::Acl),
            "ai-proxy" => typed(&entry.config).map(PluginConfig::AiProxy),
            "ai-proxy-advanced" => typed(&entry.config).map(PluginConfig::AiProxyAdvanced),
            "ai-rate-limiting-advanced" => typed(&entry.config).map(PluginConfig::AiRateLimiting),
            "rate-limiting" => typed(&entry.config).map(PluginConfig::RateLimiting),
            "ai-mcp-proxy" => typed(&entry.config).map(PluginConfig::AiMcpProxy),
            "opentelemetry" => typed(&entry.config).map(PluginConfig::OpenTelemetry),
            "ai-semantic-cache" => typed(&entry.config).map(PluginConfig::AiSemanticCache),
            "ai-prompt-guard" => typed(&entry.config).map(PluginConfig::PromptGuard),
            "ai-sanitizer" => typed(&entry.config).map(PluginConfig::Sanitizer),
            "ai-custom-guardrail" => typed(&entry.config).map(PluginConfig::CustomGuardrail),
            "ai-budget" => typed(&entry.config).map(PluginConfig::AiBudget),
            other => Err(vec![PluginConfigError {
                path: "name".to_string(),
                message: format!("unknown plugin `{other}`; supported plugins: {}", PLUGIN_NAMES.join(", ")),
            }]),
        }
    }

    /// The plugin name this config belongs to.
    pub fn name(&self) -> &'static str {
        match self {
            PluginConfig::KeyAuth(_) => "key-auth",
            PluginConfig::MtlsAuth(_) => "mtls-auth",
            PluginConfig::Acl(_) => "acl",
            PluginConfig::AiProxy(_) => "ai-proxy",
            PluginConfig::AiProxyAdvanced(_) => "ai-proxy-advanced",
            PluginConfig::AiRateLimiting(_) => "ai-rate-limiting-advanced",
            PluginConfig::RateLimiting(_) => "rate-limiting",
            PluginConfig::AiMcpProxy(_) => "ai-mcp-proxy",
            PluginConfig::OpenTelemetry(_) => "opentelemetry",
            PluginConfig::AiSemanticCache(_) => "ai-semantic-cache",
            PluginConfig::PromptGuard(_) => "ai-prompt-guard",
            PluginConfig::Sanitizer(_) => "ai-sanitizer",
            PluginConfig::CustomGuardrail(_) => "ai-custom-guardrail",
            PluginConfig::AiBudget(_) => "ai-budget",
        }
    }
}

fn typed<T: DeserializeOwned>(config: &toml::Table) -> Result<T, Vec<PluginConfigError>> {
    typing::type_collect(&toml::Value::Table(config.clone())).map_err(|errors| {
        errors
            .into_iter()
            .map(|TypeError { path, message }| PluginConfigError { path: join("config", &path), message })
            .collect()
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The `[[vaults]]` entries without errors, and the prefixes of those with.
fn usable_vaults(slots: &[Option<Vault>], report: &Report<'_>) -> (Vec<Vault>, Vec<String>) {
    let (mut usable, mut broken) = (Vec::new(), Vec::new());
    for (i, slot) in slots.iter().enumerate() {
        let Some(vault) = slot else { continue };
        if report.has_errors_under(&format!("vaults[{i}]")) {
            broken.push(vault.prefix.clone());
        } else {
            usable.push(vault.clone());
        }
    }
    (usable, broken)
}

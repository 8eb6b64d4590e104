//! Loading: text -> typed, vault-resolved, validated `Config`.
//!
//! The passes, and why each exists:
//! 1. Type the text with `serde_path_to_error` over `toml::Deserializer`: syntax,
//!    type and unknown-field errors get both a field path and an exact span. serde
//!    stops at the first such error, so that error is returned alone.
//! 2. Type each plugin's raw `config` by its `name`, collecting errors from every
//!    plugin. This runs on the unresolved text so that serde messages, which quote
//!    offending values, can never quote a secret.
//! 3. Resolve vault references on the raw tree, then type the resolved tree.
//! 4. Semantic checks (`validate`), all errors collected.

use std::path::Path;

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::error::{ConfigError, ConfigErrors, PluginConfigError, Report};
use crate::schema::{FileConfig, PluginConfig, PluginEntry, PLUGIN_NAMES};
use crate::spans::SpanIndex;
use crate::vault::{self, Sources};
use crate::{validate, Config, Plugin};

/// Reads, resolves and validates the config file at `path`. Vault `env` references
/// read the process environment; `file` references are relative to the file's folder.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let whole_file = |message: String| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            path: String::new(),
            message,
        }])
    };
    let bytes =
        std::fs::read(path).map_err(|e| whole_file(format!("cannot read config file: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        whole_file(format!(
            "config file is not valid UTF-8 (at byte {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    load_str(&text, path, &|name| std::env::var(name).ok())
}

/// Like `load_file`, from text: `source_name` is used in errors, as `Config::source`,
/// and (its parent folder) as the base of relative `file` vault references; `env`
/// looks up environment variables.
pub fn load_str(
    text: &str,
    source_name: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let spans = SpanIndex::new(text);
    let mut report = Report::new(source_name, &spans);

    // Pass 1: structure, with exact spans.
    let unresolved: FileConfig =
        match serde_path_to_error::deserialize(toml::Deserializer::new(text)) {
            Ok(file) => file,
            Err(err) => {
                let path = display_path(err.path());
                let inner = err.into_inner();
                let message = inner.message().to_string();
                match inner.span() {
                    Some(span) => report.error_at_offset(span.start, path, message),
                    None => report.error(path, message),
                }
                return Err(ConfigErrors(report.finish()));
            }
        };

    // Pass 2: plugin configs, every plugin.
    let mut typed_ok = Vec::with_capacity(unresolved.plugins.len());
    for (i, entry) in unresolved.plugins.iter().enumerate() {
        match PluginConfig::from_entry(entry) {
            Ok(_) => typed_ok.push(true),
            Err(e) => {
                report.error(format!("plugins[{i}].{}", e.path), e.message);
                typed_ok.push(false);
            }
        }
    }

    // Pass 3: secrets.
    let mut tree: toml::Table = match toml::from_str(text) {
        Ok(tree) => tree,
        // Unreachable in practice: pass 1 parsed the same text.
        Err(e) => {
            report.error(String::new(), e.message().to_string());
            return Err(ConfigErrors(report.finish()));
        }
    };
    let base_dir = source_name.parent().unwrap_or(Path::new(""));
    let resolution = vault::resolve_tree(&mut tree, &Sources { env, base_dir });
    for e in resolution.errors {
        report.error(e.path, e.message);
    }
    report.set_vault_paths(resolution.failed_paths, resolution.secret_paths);

    let file: FileConfig = match serde_path_to_error::deserialize(toml::Value::Table(tree)) {
        Ok(file) => file,
        Err(err) => {
            // Resolution only replaces strings by strings, so pass 1 would have seen
            // this; the message may quote a secret, so it is not shown.
            report.error(
                display_path(err.path()),
                "invalid value after resolving vault references",
            );
            return Err(ConfigErrors(report.finish()));
        }
    };
    let plugin_configs: Vec<Option<PluginConfig>> = file
        .plugins
        .iter()
        .zip(&typed_ok)
        .enumerate()
        .map(|(i, (entry, ok))| {
            if !ok {
                return None;
            }
            match PluginConfig::from_entry(entry) {
                Ok(config) => Some(config),
                Err(e) => {
                    report.error(
                        format!("plugins[{i}].{}", e.path),
                        "invalid value after resolving vault references",
                    );
                    None
                }
            }
        })
        .collect();

    // Pass 4: meaning.
    validate::validate(&file, &plugin_configs, &mut report);
    if report.has_errors() {
        return Err(ConfigErrors(report.finish()));
    }

    let plugins = file
        .plugins
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
        server: file.server,
        services: file.services,
        routes: file.routes,
        consumers: file.consumers,
        plugins,
    })
}

impl PluginConfig {
    /// Types `entry.config` by `entry.name`. Errors carry the path inside the entry
    /// (`name`, or `config.targets[0].model`).
    pub fn from_entry(entry: &PluginEntry) -> Result<PluginConfig, PluginConfigError> {
        match entry.name.as_str() {
            "key-auth" => typed(&entry.config).map(PluginConfig::KeyAuth),
            "acl" => typed(&entry.config).map(PluginConfig::Acl),
            "ai-proxy" => typed(&entry.config).map(PluginConfig::AiProxy),
            "ai-proxy-advanced" => typed(&entry.config).map(PluginConfig::AiProxyAdvanced),
            "ai-rate-limiting-advanced" => typed(&entry.config).map(PluginConfig::AiRateLimiting),
            other => Err(PluginConfigError {
                path: "name".to_string(),
                message: format!(
                    "unknown plugin `{other}`; supported plugins: {}",
                    PLUGIN_NAMES.join(", ")
                ),
            }),
        }
    }

    /// The plugin name this config belongs to.
    pub fn name(&self) -> &'static str {
        match self {
            PluginConfig::KeyAuth(_) => "key-auth",
            PluginConfig::Acl(_) => "acl",
            PluginConfig::AiProxy(_) => "ai-proxy",
            PluginConfig::AiProxyAdvanced(_) => "ai-proxy-advanced",
            PluginConfig::AiRateLimiting(_) => "ai-rate-limiting-advanced",
        }
    }
}

fn typed<T: DeserializeOwned>(config: &toml::Table) -> Result<T, PluginConfigError> {
    serde_path_to_error::deserialize(toml::Value::Table(config.clone())).map_err(|err| {
        let inner = display_path(err.path());
        PluginConfigError {
            path: if inner.is_empty() {
                "config".to_string()
            } else {
                format!("config.{inner}")
            },
            message: err.into_inner().message().to_string(),
        }
    })
}

/// serde_path_to_error writes the root as `.`; errors use an empty path for it.
fn display_path(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    if text == "." {
        String::new()
    } else {
        text
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

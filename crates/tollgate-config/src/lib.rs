//! tollgate's configuration: the TOML schema, loading with file:line:column errors,
//! vault references, and semantic validation.
//!
//! `load_file` returns either a `Config` whose every reference is known to resolve and
//! every secret is resolved, or every error found, so `tollgate check` and reload can
//! show them all at once.

pub mod budget;
pub mod cache;
pub mod error;
pub mod guard;
mod healthchecks;
pub mod http_url;
mod load;
pub mod mcp_tools;
mod openapi;
pub mod schema;
pub mod spans;
mod typing;
mod validate;
mod vault;
pub mod vaults;

use std::path::PathBuf;

pub use budget::{AiBudgetConfig, BudgetConfig, BudgetPeriod, BudgetStrategy, BudgetSubject, Unpriced};
pub use error::{ConfigError, ConfigErrors, PluginConfigError};
pub use guard::{AiCustomGuardrailConfig, AiPromptGuardConfig, AiSanitizerConfig, GuardedSide};
pub use http_url::HttpUrl;
pub use load::{load_file, load_file_with, load_str, load_str_with, read_config_file};
pub use schema::*;
pub use validate::{IMPLEMENTED_PROVIDERS, PROVIDERS};
pub use vault::{pick_key, prefixed_env_name, NoRemoteSecrets, RemoteSecrets, SecretAddress};
pub use vaults::{Vault, VaultConfig, VaultKind};

/// A loaded, vault-resolved and validated config file.
///
/// Holds secrets (consumer keys, provider credentials): do not log it with `{:?}`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was loaded from (or the name given to `load_str`).
    pub source: PathBuf,
    /// SHA-256 of the file's bytes, lower-case hex; tells reloads whether it changed.
    /// It hashes the text before vault resolution, so a rotated secret does not
    /// change it.
    pub digest: String,
    pub server: ServerConfig,
    pub services: Vec<Service>,
    pub routes: Vec<Route>,
    pub consumers: Vec<Consumer>,
    /// In file order, disabled ones included (`enabled` says so).
    pub plugins: Vec<Plugin>,
    /// `[[vaults]]`, in file order.
    pub vaults: Vec<Vault>,
}

/// A plugin with its config typed by name.
#[derive(Debug, Clone)]
pub struct Plugin {
    pub name: String,
    pub service: Option<String>,
    pub route: Option<String>,
    pub consumer: Option<String>,
    pub enabled: bool,
    pub config: PluginConfig,
}

impl Config {
    /// One line for logs: "2 services, 3 routes, 1 consumers, 4 plugins (key-auth, acl, ...)".
    /// Plugin names are listed once each, in order of first appearance.
    pub fn summary(&self) -> String {
        let mut names: Vec<&str> = Vec::new();
        for plugin in &self.plugins {
            if !names.contains(&plugin.name.as_str()) {
                names.push(&plugin.name);
            }
        }
        let mut out = format!(
            "{} services, {} routes, {} consumers, {} plugins",
            self.services.len(),
            self.routes.len(),
            self.consumers.len(),
            self.plugins.len()
        );
        if !names.is_empty() {
            out.push_str(&format!(" ({})", names.join(", ")));
        }
        out
    }
}

#[cfg(test)]
mod tests;

//! Error types, and the collector that turns a field path into a file position.
//!
//! Every error carries the file, a 1-based line and column, and the field path, so an
//! operator can jump straight to the offending value. Loading collects all errors it
//! can find instead of stopping at the first, so `tollgate check` lists them at once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::spans::SpanIndex;

/// One problem in a config file.
///
/// Displayed as `FILE:LINE:COL: PATH: MESSAGE`. The path is left out when an error
/// concerns the whole document (a TOML syntax error), and line and column are left out
/// when they are 0, which only happens when the file could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.file, *.line, *.column, .path, .message))]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the error has no position (unreadable file).
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Field path such as `plugins[2].config.targets[0].model.provider`; empty for the
    /// whole document.
    pub path: String,
    pub message: String,
}

fn render(file: &Path, line: usize, column: usize, path: &str, message: &str) -> String {
    let mut out = file.display().to_string();
    if line > 0 {
        out.push_str(&format!(":{line}:{column}"));
    }
    if !path.is_empty() {
        out.push_str(": ");
        out.push_str(path);
    }
    out.push_str(": ");
    out.push_str(message);
    out
}

/// Every error found in one load, in file order. Displayed one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_all(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

fn render_all(errors: &[ConfigError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

impl ConfigErrors {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Why a plugin's `config` table could not be typed (see `PluginConfig::from_entry`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PluginConfigError {
    /// Relative to the plugin entry: `name`, or `config.<inner path>`.
    pub path: String,
    pub message: String,
}

/// Collects errors during one load and places each by its field path.
pub(crate) struct Report<'a> {
    file: &'a Path,
    spans: &'a SpanIndex,
    /// Paths of strings whose vault reference could not be resolved. Checks on those
    /// values would only repeat the vault error with a confusing message, so they are
    /// dropped.
    failed: HashSet<String>,
    /// Paths of strings that contain a resolved secret; their values are never echoed.
    secret: HashSet<String>,
    errors: Vec<ConfigError>,
}

impl<'a> Report<'a> {
    pub(crate) fn new(file: &'a Path, spans: &'a SpanIndex) -> Self {
        Report { file, spans, failed: HashSet::new(), secret: HashSet::new(), errors: Vec::new() }
    }

    pub(crate) fn set_vault_paths(&mut self, failed: HashSet<String>, secret: HashSet<String>) {
        self.failed = failed;
        self.secret = secret;
    }

    /// Records an error at `path`, positioned at the value that path names (or its
    /// nearest written parent).
    pub(crate) fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        if self.failed.contains(&path) {
            return;
        }
        let (line, column) = self.spans.locate(&path).unwrap_or((1, 1));
        self.push(line, column, path, message.into());
    }

    /// Records a serde error at `path`: like `error`, except that an unknown field is
    /// placed at its key (the misspelling), not at its value.
    pub(crate) fn serde_error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        let message = message.into();
        if !message.starts_with("unknown field") {
            return self.error(path, message);
        }
        if self.failed.contains(&path) {
            return;
        }
        let (line, column) = self.spans.locate_key(&path).unwrap_or((1, 1));
        self.push(line, column, path, message);
    }

    /// Records an error whose byte offset is already known (from the TOML parser).
    pub(crate) fn error_at_offset(&mut self, offset: usize, path: String, message: String) {
        let (line, column) = self.spans.position(offset);
        self.push(line, column, path, message);
    }

    fn push(&mut self, line: usize, column: usize, path: String, message: String) {
        // One error per line of output: the TOML parser's messages span several.
        let message = message.trim().lines().map(str::trim).collect::<Vec<_>>().join("; ");
        self.errors.push(ConfigError { file: self.file.to_path_buf(), line, column, path, message });
    }

    /// Whether the string at `path` still holds an unresolved vault reference.
    pub(crate) fn is_failed(&self, path: &str) -> bool {
        self.failed.contains(path)
    }

    /// A value quoted for an error message, unless it came (even in part) from a vault
    /// reference: secrets never reach error output, which ends up in logs.
    pub(crate) fn show(&self, path: &str, value: &str) -> String {
        if self.secret.contains(path) {
            "(value from a vault reference, not shown)".to_string()
        } else {
            format!("`{value}`")
        }
    }

    /// Line of `path`, for messages that point at a second place ("first defined at").
    pub(crate) fn line_of(&self, path: &str) -> usize {
        self.spans.locate(path).map(|(line, _)| line).unwrap_or(1)
    }

    /// Whether an error was recorded at `path` or inside it.
    pub(crate) fn has_errors_under(&self, path: &str) -> bool {
        self.errors
            .iter()
            .any(|e| e.path.strip_prefix(path).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '['])))
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// All errors in file order; errors at the same place keep their discovery order.
    pub(crate) fn finish(mut self) -> Vec<ConfigError> {
        self.errors.sort_by_key(|e| (e.line, e.column));
        self.errors
    }
}

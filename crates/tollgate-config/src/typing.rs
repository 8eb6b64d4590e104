//! Typing the parsed tree section by section and entry by entry, so that one bad
//! entry does not hide the errors of the others.
//!
//! serde stops at the first error of whatever it types. Typing the whole file at once
//! would therefore report one unknown field and nothing else; here `[server]` and each
//! element of `services`, `routes`, `consumers` and `plugins` is typed on its own, and
//! within one of them `type_collect` keeps going past an error by dropping the field
//! that caused it. Entries that do not type are kept as raw values: validation reads
//! their names and references from there, so that they still count as existing and
//! their own references are still checked.

use std::borrow::Cow;

use serde::de::DeserializeOwned;

use crate::error::Report;
use crate::schema::{Consumer, PluginEntry, Route, ServerConfig, Service};

/// The top-level keys of a config file, in the order of `FileConfig`.
const SECTIONS: &[&str] = &["server", "services", "routes", "consumers", "plugins"];

/// One array element: typed, or the raw value of one that did not type (its errors
/// are already reported).
pub(crate) enum Slot<T> {
    Typed(T),
    Untyped(toml::Value),
}

impl<T> Slot<T> {
    pub(crate) fn typed(&self) -> Option<&T> {
        match self {
            Slot::Typed(value) => Some(value),
            Slot::Untyped(_) => None,
        }
    }

    fn into_typed(self) -> Option<T> {
        match self {
            Slot::Typed(value) => Some(value),
            Slot::Untyped(_) => None,
        }
    }
}

/// A string field of a raw (untyped) entry, if it is there and a string.
pub(crate) fn raw_str<'a>(raw: &'a toml::Value, key: &str) -> Option<&'a str> {
    raw.get(key).and_then(toml::Value::as_str)
}

/// The elements of one array section (`services`, ...), in file order, so that
/// index `i` is the entry at `<section>[i]`.
pub(crate) struct Section<T> {
    pub slots: Vec<Slot<T>>,
    /// False when the section is present but not an array (an error already reported):
    /// its entries are unknown.
    pub is_array: bool,
}

impl<T> Section<T> {
    /// The entries that typed, with their index in the file.
    pub(crate) fn typed(&self) -> impl Iterator<Item = (usize, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, slot)| slot.typed().map(|value| (i, value)))
    }

    fn typed_mask(&self) -> Vec<bool> {
        self.slots.iter().map(|slot| matches!(slot, Slot::Typed(_))).collect()
    }

    /// Every entry, if every entry typed.
    pub(crate) fn into_all(self) -> Option<Vec<T>> {
        self.slots.into_iter().map(Slot::into_typed).collect()
    }
}

/// The file typed piece by piece.
pub(crate) struct TypedFile {
    /// `None` when `[server]` did not type; its checks are then skipped.
    pub server: Option<ServerConfig>,
    pub services: Section<Service>,
    pub routes: Section<Route>,
    pub consumers: Section<Consumer>,
    pub plugins: Section<PluginEntry>,
}

/// Types every section and entry of `tree`.
///
/// Without `previous`, every error is reported with serde's message; this is for the
/// unresolved tree, whose values hold vault references, never secrets. With
/// `previous` (the result for the unresolved tree), only what typed there is typed
/// again, and a failure is reported without serde's message, which could quote a
/// resolved secret.
pub(crate) fn type_file(tree: &toml::Table, previous: Option<&TypedFile>, r: &mut Report<'_>) -> TypedFile {
    if previous.is_none() {
        for key in tree.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                let message = <toml::de::Error as serde::de::Error>::unknown_field(key, SECTIONS).message().to_string();
                r.serde_error(key.clone(), message);
            }
        }
    }
    let server = match tree.get("server") {
        None => Some(ServerConfig::default()),
        Some(value) if previous.is_none_or(|p| p.server.is_some()) => {
            typed_entry(value, "server", previous.is_some(), r)
        }
        Some(_) => None,
    };
    TypedFile {
        server,
        services: section(tree, "services", previous.map(|p| p.services.typed_mask()), r),
        routes: section(tree, "routes", previous.map(|p| p.routes.typed_mask()), r),
        consumers: section(tree, "consumers", previous.map(|p| p.consumers.typed_mask()), r),
        plugins: section(tree, "plugins", previous.map(|p| p.plugins.typed_mask()), r),
    }
}

/// Types each element of the array at `key`; with `mask` (a later pass), only those
/// that typed before.
fn section<T: DeserializeOwned>(
    tree: &toml::Table,
    key: &str,
    mask: Option<Vec<bool>>,
    r: &mut Report<'_>,
) -> Section<T> {
    let items = match tree.get(key) {
        None => return Section { slots: Vec::new(), is_array: true },
        Some(toml::Value::Array(items)) => items,
        Some(other) => {
            if mask.is_none() {
                // serde's own message ("invalid type: ..., expected a sequence").
                let _: Option<Vec<toml::Value>> = typed_entry(other, key, false, r);
            }
            return Section { slots: Vec::new(), is_array: false };
        }
    };
    let slots = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let typed_before = mask.as_ref().is_none_or(|mask| mask.get(i).copied().unwrap_or(false));
            let typed = if typed_before { typed_entry(item, &format!("{key}[{i}]"), mask.is_some(), r) } else { None };
            match typed {
                Some(value) => Slot::Typed(value),
                None => Slot::Untyped(item.clone()),
            }
        })
        .collect();
    Section { slots, is_array: true }
}

/// Types one entry found at `base`, reporting its errors.
fn typed_entry<T: DeserializeOwned>(value: &toml::Value, base: &str, resolved: bool, r: &mut Report<'_>) -> Option<T> {
    match type_collect(value) {
        Ok(typed) => Some(typed),
        Err(errors) if resolved => {
            // Resolution only replaces strings by strings, so the unresolved pass
            // would have seen this; serde's message may quote a secret.
            if let Some(e) = errors.first() {
                r.error(join(base, &e.path), "invalid value after resolving vault references");
            }
            None
        }
        Err(errors) => {
            for e in errors {
                r.serde_error(join(base, &e.path), e.message);
            }
            None
        }
    }
}

/// A serde error, at a path relative to the value typed (empty for the value itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TypeError {
    pub path: String,
    pub message: String,
}

/// Types `value` as `T`; when that fails, every error serde can find in it, in the
/// order found (never empty).
///
/// serde stops at the first error, so after each one the field that caused it (for an
/// error inside an array, the whole array) is dropped and typing is retried. A field
/// dropped that way cannot cause a new error, except that its struct may need it: that
/// "missing field" is not reported, and the struct is dropped in turn. Each retry
/// removes a key, so this ends; an error with no key to drop ends it early.
pub(crate) fn type_collect<T: DeserializeOwned>(value: &toml::Value) -> Result<T, Vec<TypeError>> {
    let mut errors = Vec::new();
    let mut current = value.clone();
    let mut dropped: Vec<String> = Vec::new();
    loop {
        let err = match serde_path_to_error::deserialize::<_, T>(current.clone()) {
            Ok(typed) if errors.is_empty() => return Ok(typed),
            Ok(_) => return Err(errors),
            Err(err) => err,
        };
        let segments: Vec<serde_path_to_error::Segment> = err.path().iter().cloned().collect();
        let path = display_path(err.path());
        let message = err.into_inner().message().to_string();
        let caused_by_drop = missing_field(&message).is_some_and(|field| dropped.contains(&join(&path, field)));
        if !caused_by_drop {
            errors.push(TypeError { path, message });
        }
        // The nearest enclosing field: drop an array as a whole rather than shift the
        // indices (and so the paths) of its later elements.
        let Some(end) = segments.iter().rposition(|s| matches!(s, serde_path_to_error::Segment::Map { .. })) else {
            break;
        };
        let field = &segments[..=end];
        if !remove(&mut current, field) {
            break;
        }
        dropped.push(display_segments(field));
    }
    if errors.is_empty() {
        // Unreachable: the first error is always a real one. Kept total all the same.
        errors.push(TypeError { path: String::new(), message: "invalid value".to_string() });
    }
    Err(errors)
}

/// The field named by serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split_once('`').map(|(field, _)| field)
}

/// Removes the field at `segments` (which ends in a map key) from `value`.
fn remove(value: &mut toml::Value, segments: &[serde_path_to_error::Segment]) -> bool {
    use serde_path_to_error::Segment;
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut node = value;
    for segment in parents {
        let next = match (segment, node) {
            (Segment::Map { key }, toml::Value::Table(table)) => table.get_mut(key),
            (Segment::Seq { index }, toml::Value::Array(items)) => items.get_mut(*index),
            _ => None,
        };
        let Some(next) = next else {
            return false;
        };
        node = next;
    }
    match (last, node) {
        (Segment::Map { key }, toml::Value::Table(table)) => table.remove(key).is_some(),
        _ => false,
    }
}

fn display_segments(segments: &[serde_path_to_error::Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            serde_path_to_error::Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            other => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&other.to_string());
            }
        }
    }
    out
}

/// serde_path_to_error writes the root as `.`; errors use an empty path for it.
pub(crate) fn display_path(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    if text == "." {
        String::new()
    } else {
        text
    }
}

/// `base` followed by a relative path (`name`, `[0].name` or empty).
pub(crate) fn join(base: &str, inner: &str) -> String {
    if inner.is_empty() {
        base.to_string()
    } else if base.is_empty() || inner.starts_with('[') {
        format!("{base}{inner}")
    } else {
        format!("{base}.{inner}")
    }
}

/// The plugin entry whose `config` can be typed: the entry itself, or for one that did
/// not type, its `name` and `config` when those are usable (the config's errors do not
/// depend on the entry's other fields).
pub(crate) fn config_entry(slot: &Slot<PluginEntry>) -> Option<Cow<'_, PluginEntry>> {
    match slot {
        Slot::Typed(entry) => Some(Cow::Borrowed(entry)),
        Slot::Untyped(raw) => {
            let name = raw_str(raw, "name")?;
            let config = match raw.get("config") {
                None => toml::Table::new(),
                Some(toml::Value::Table(config)) => config.clone(),
                Some(_) => return None,
            };
            Some(Cow::Owned(PluginEntry {
                name: name.to_string(),
                service: None,
                route: None,
                consumer: None,
                enabled: true,
                config,
                tags: Vec::new(),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Route;

    fn value(text: &str) -> toml::Value {
        toml::Value::Table(toml::from_str(text).expect("valid toml"))
    }

    fn paths(errors: &[TypeError]) -> Vec<&str> {
        errors.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn collects_every_unknown_field() {
        let errors = type_collect::<Route>(&value(
            "name = \"r\"\nservice = \"s\"\nstrip_pth = true\nhostz = []\npaths = [\"/\"]",
        ))
        .expect_err("two typos");
        let mut got = paths(&errors);
        got.sort();
        assert_eq!(got, ["hostz", "strip_pth"]);
    }

    #[test]
    fn a_dropped_required_field_is_not_also_missing() {
        let errors = type_collect::<Route>(&value("name = \"r\"\nservice = 5\nzzz = 1")).expect_err("bad type");
        let mut got = paths(&errors);
        got.sort();
        assert_eq!(got, ["service", "zzz"], "{errors:?}");
        let service = errors.iter().find(|e| e.path == "service").expect("service");
        assert!(service.message.contains("invalid type"), "{errors:?}");
        // A field that is really missing is reported.
        let errors = type_collect::<Route>(&value("name = \"r\"")).expect_err("missing");
        assert_eq!(errors[0].message, "missing field `service`");
    }

    #[test]
    fn errors_in_arrays_drop_the_array() {
        let errors = type_collect::<Route>(&value("name = \"r\"\nservice = \"s\"\npaths = [1, 2]\nmethods = [3]"))
            .expect_err("bad elements");
        let mut got = paths(&errors);
        got.sort();
        assert_eq!(got, ["methods[0]", "paths[0]"]);
    }

    #[test]
    fn joins_paths() {
        assert_eq!(join("routes[1]", "name"), "routes[1].name");
        assert_eq!(join("routes[1]", ""), "routes[1]");
        assert_eq!(join("routes", "[0]"), "routes[0]");
        assert_eq!(join("", "name"), "name");
    }
}

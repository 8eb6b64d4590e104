//! The crate's modules form layers: no file reaches, through its imports,
//! back to itself. A cycle means two concerns that cannot be read apart;
//! this test names it. The layer diagram is in `src/lib.rs`.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Every source file, by its module path (`llm::target`), with its text.
fn modules(src: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, String>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            if p.is_dir() {
                let mut next = prefix.to_vec();
                next.push(name);
                walk(&p, &next, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let mut path = prefix.to_vec();
                if name != "mod" && name != "lib" {
                    path.push(name);
                }
                out.insert(path.join("::"), fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, &[], &mut out);
    out
}

/// The module a path such as `crate::llm::target::Api` lives in: its longest
/// prefix that is a file.
fn owner<'a>(path: &[&str], known: &'a BTreeMap<String, String>) -> Option<&'a String> {
    (1..=path.len()).rev().find_map(|n| known.get_key_value(&path[..n].join("::")).map(|(k, _)| k))
}

/// The code without its tests and comments.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// Module paths a file names: `crate::a::b`, and `super::x` resolved.
fn references(module: &str, text: &str, known: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let here: Vec<&str> = if module.is_empty() { Vec::new() } else { module.split("::").collect() };
    let code = code(text);
    let words: Vec<&str> = code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '{' || c == ',')).collect();
    for w in words {
        let (base, rest): (Vec<&str>, &str) = if let Some(r) = w.strip_prefix("crate::") {
            (Vec::new(), r)
        } else if let Some(r) = w.strip_prefix("super::") {
            // `super` of `a::b` (a file `a/b.rs`) is `a`.
            (here[..here.len().saturating_sub(1)].to_vec(), r)
        } else {
            continue;
        };
        // `crate::a::{b, c::d}`: each item of a group.
        let (head, group) = match rest.split_once("::{") {
            Some((h, g)) => (h, g.trim_end_matches('}')),
            None => (rest, ""),
        };
        let mut full: Vec<&str> = base.clone();
        full.extend(head.split("::").filter(|s| !s.is_empty() && *s != "{"));
        let mut candidates = vec![full.clone()];
        for item in group.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let mut p = full.clone();
            p.extend(item.trim_matches(|c| c == '{' || c == '}').split("::"));
            candidates.push(p);
        }
        for c in candidates {
            if let Some(m) = owner(&c, known) {
                if m != module {
                    out.insert(m.clone());
                }
            }
        }
    }
    out
}

#[test]
fn no_module_imports_itself_through_others() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let known = modules(&src);
    assert!(known.len() > 20, "found the sources: {:?}", known.keys());
    let graph: BTreeMap<&String, BTreeSet<String>> =
        known.iter().map(|(m, text)| (m, references(m, text, &known))).collect();
    // The crate root only declares modules and re-exports.
    let mut cycles = Vec::new();
    for start in graph.keys().filter(|m| !m.is_empty()) {
        // Depth-first search for a path back to `start`.
        let mut stack: Vec<(String, Vec<String>)> = vec![((*start).clone(), vec![(*start).clone()])];
        let mut seen = BTreeSet::new();
        while let Some((m, path)) = stack.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if next == *start {
                    let mut cycle = path.clone();
                    cycle.push(next.clone());
                    cycles.push(cycle.join(" -> "));
                } else if !next.is_empty() && seen.insert(next.clone()) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next.clone(), p));
                }
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

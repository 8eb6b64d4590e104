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
    let words: Vec<&str> =
        code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '{' || c == ',')).collect();
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

/// Longest function allowed, from its `fn` line to its closing brace.
const MAX_FN_LINES: usize = 80;

/// The code before the file's tests (`#[cfg(test)] mod tests`).
fn without_tests(text: &str) -> &str {
    let mut at = 0;
    while let Some(i) = text[at..].find("#[cfg(test)]") {
        let start = at + i;
        let rest = text[start + "#[cfg(test)]".len()..].trim_start();
        // Attributes may sit between the cfg and the module.
        let rest = rest.lines().map(str::trim).find(|l| !l.starts_with("#[")).unwrap_or_default();
        if rest.starts_with("mod ") {
            return &text[..start];
        }
        at = start + 1;
    }
    text
}

/// Whether a line opens a function: `pub(crate) async fn name(`, `fn name<T>(`.
fn opens_fn(line: &str) -> bool {
    let mut words = line.split_whitespace();
    for w in words.by_ref() {
        match w {
            "fn" => return true,
            "pub" | "async" | "const" | "unsafe" | "extern" | "default" => {}
            w if w.starts_with("pub(") => {}
            _ => return false,
        }
    }
    false
}

/// The line (0-based) where the item opened on line `start` ends: its closing
/// brace, matched past strings, characters and comments; `None` for a
/// declaration without a body (`fn f();` in a trait).
fn body_end(lines: &[&str], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut opened = false;
    let mut in_block_comment = false;
    // A string may run over lines; a line comment never does.
    let mut in_str = false;
    for (n, line) in lines.iter().enumerate().skip(start) {
        let b = line.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if in_block_comment {
                if c == b'*' && b.get(i + 1) == Some(&b'/') {
                    in_block_comment = false;
                    i += 1;
                }
            } else if in_str {
                if c == b'\\' {
                    i += 1;
                } else if c == b'"' {
                    in_str = false;
                }
            } else if c == b'/' && b.get(i + 1) == Some(&b'/') {
                break;
            } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
                in_block_comment = true;
                i += 1;
            } else if c == b'"' {
                in_str = true;
            } else if c == b'\'' {
                // A character literal ('{', '\''), not a lifetime ('a).
                if b.get(i + 1) == Some(&b'\\') {
                    i += b[i + 2..].iter().position(|&x| x == b'\'').map_or(1, |p| p + 2);
                } else if b.get(i + 2) == Some(&b'\'') {
                    i += 2;
                }
            } else if c == b'{' {
                depth += 1;
                opened = true;
            } else if c == b'}' {
                depth = depth.saturating_sub(1);
                if opened && depth == 0 {
                    return Some(n);
                }
            } else if c == b';' && !opened && depth == 0 {
                return None;
            }
            i += 1;
        }
    }
    None
}

/// Every function longer than `MAX_FN_LINES`: `file:line name (n lines)`.
fn long_functions(src: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut files = vec![src.to_path_buf()];
    while let Some(p) = files.pop() {
        if p.is_dir() {
            for e in fs::read_dir(&p).unwrap().filter_map(Result::ok) {
                files.push(e.path());
            }
            continue;
        }
        if p.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = without_tests(&text).lines().collect();
        for (n, line) in lines.iter().enumerate() {
            if !opens_fn(line) {
                continue;
            }
            if let Some(end) = body_end(&lines, n) {
                let len = end - n + 1;
                if len > MAX_FN_LINES {
                    let name = line.split("fn ").nth(1).unwrap_or_default();
                    let name: String = name.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    let file = p.strip_prefix(src).unwrap_or(&p).display();
                    out.push(format!("{file}:{} {name} ({len} lines)", n + 1));
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_function_fits_on_a_screen() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let long = long_functions(&src);
    assert!(long.is_empty(), "functions over {MAX_FN_LINES} lines:\n{}", long.join("\n"));
}

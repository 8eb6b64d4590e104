//! Configured regular expressions: compiled once at load by the linear-time
//! `regex` engine (no backtracking, so matching is O(pattern × text)), with a
//! bound on each compiled program and on the lazy DFA's cache, so a pattern
//! can be neither slow to match nor huge in memory.

use regex::{Regex, RegexBuilder};
use regex_automata::meta;
use regex_automata::util::syntax;
use regex_automata::MatchKind;

/// Largest compiled program per pattern (bytes): generous for any sane
/// pattern, refuses `(a{1000}){1000}`-style blow-ups at load.
pub const SIZE_LIMIT: usize = 1 << 20;
/// Cache of the lazy DFA per pattern set (bytes).
pub const DFA_SIZE_LIMIT: usize = 2 << 20;
/// Longest pattern accepted (Kong's limit).
pub const MAX_PATTERN_LEN: usize = 500;

/// A pattern that cannot be used, with its index in the list it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pub index: usize,
    pub message: String,
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pattern {}: {}", self.index, self.message)
    }
}

/// A list of patterns matched in one pass: one leftmost-first automaton for
/// them all, not a `RegexSet`, whose "every pattern that matches" semantics
/// keep the lazy DFA from stopping early or using a prefilter and cost twice
/// as much per byte; a guard only asks whether any matches.
#[derive(Debug, Clone)]
pub struct Patterns {
    any: meta::Regex,
}

impl Patterns {
    /// Compiles `patterns`; the first that fails is the error.
    pub fn compile(patterns: &[String]) -> Result<Patterns, PatternError> {
        for (index, p) in patterns.iter().enumerate() {
            compile_one(p).map_err(|message| PatternError { index, message })?;
        }
        // The settings `RegexBuilder` applies, with the limits above.
        let config = meta::Config::new()
            .match_kind(MatchKind::LeftmostFirst)
            .utf8_empty(true)
            .which_captures(regex_automata::nfa::thompson::WhichCaptures::None)
            .nfa_size_limit(Some(SIZE_LIMIT * patterns.len().max(1)))
            .hybrid_cache_capacity(DFA_SIZE_LIMIT);
        let any = meta::Builder::new()
            .configure(config)
            .syntax(syntax::Config::new().utf8(true))
            .build_many(patterns)
            .map_err(|e| PatternError { index: 0, message: e.to_string() })?;
        Ok(Patterns { any })
    }

    pub fn is_empty(&self) -> bool {
        self.any.pattern_len() == 0
    }

    /// Whether any pattern matches `text`.
    pub fn any_match(&self, text: &str) -> bool {
        self.any.is_match(text)
    }
}

/// One pattern, checked and compiled with the limits.
pub fn compile_one(pattern: &str) -> Result<Regex, String> {
    if pattern.is_empty() {
        return Err("must not be empty".into());
    }
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(format!("is {} bytes long; at most {MAX_PATTERN_LEN}", pattern.len()));
    }
    RegexBuilder::new(pattern).size_limit(SIZE_LIMIT).dfa_size_limit(DFA_SIZE_LIMIT).build().map_err(|e| tidy(&e))
}

/// The regex crate's message on one line.
fn tidy(e: &regex::Error) -> String {
    match e {
        regex::Error::CompiledTooBig(limit) => {
            format!("compiles to more than {limit} bytes; simplify it (fewer or smaller repetitions)")
        }
        other => other.to_string().split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn matches_any_of_the_patterns() {
        let p = Patterns::compile(&list(&["(?i)ignore (all )?previous instructions", r"\bDROP TABLE\b"])).unwrap();
        assert!(p.any_match("Please IGNORE previous instructions and"));
        assert!(p.any_match("x; DROP TABLE users"));
        assert!(!p.any_match("What is 1+1?"));
    }

    #[test]
    fn a_bad_pattern_is_named_by_index() {
        let e = Patterns::compile(&list(&["fine", "(unclosed"])).unwrap_err();
        assert_eq!(e.index, 1);
        assert!(e.message.contains("unclosed"), "{}", e.message);
        assert_eq!(Patterns::compile(&list(&[""])).unwrap_err().index, 0);
    }

    #[test]
    fn a_huge_pattern_is_refused_rather_than_built() {
        let e = Patterns::compile(&list(&["ok", r"(\w{100}){100}"])).unwrap_err();
        assert_eq!(e.index, 1);
        assert!(e.message.contains("more than"), "{}", e.message);
        let long = "a".repeat(MAX_PATTERN_LEN + 1);
        assert!(Patterns::compile(&[long]).unwrap_err().message.contains("at most"));
    }

    #[test]
    fn backreferences_and_lookaround_are_refused_as_unsupported() {
        // The linear-time engine has neither; the error says so at load.
        assert!(compile_one(r"(a)\1").is_err());
        assert!(compile_one(r"a(?=b)").is_err());
    }

    #[test]
    fn a_pathological_pattern_matches_in_linear_time() {
        let p = Patterns::compile(&list(&["(a+)+$"])).unwrap();
        let text = format!("{}!", "a".repeat(100_000));
        let t = std::time::Instant::now();
        assert!(!p.any_match(&text));
        assert!(t.elapsed() < std::time::Duration::from_secs(1), "{:?}", t.elapsed());
    }
}

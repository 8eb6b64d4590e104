//! Per-tool access control. Subjects are the caller's consumer name and its
//! consumer groups (or a token's claim value in OAuth mode).
//!
//! A tool's own ACL replaces the default's allow list, while a deny in either
//! still applies: deny always wins, at every level.

use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Default)]
pub struct Rule {
    allow: HashSet<String>,
    deny: HashSet<String>,
}

impl Rule {
    pub fn new(allow: &[String], deny: &[String]) -> Self {
        Rule { allow: allow.iter().cloned().collect(), deny: deny.iter().cloned().collect() }
    }

    fn denies(&self, subjects: &[&str]) -> bool {
        subjects.iter().any(|s| self.deny.contains(*s))
    }

    fn allows(&self, subjects: &[&str]) -> bool {
        self.allow.is_empty() || subjects.iter().any(|s| self.allow.contains(*s))
    }
}

#[derive(Debug, Clone, Default)]
pub struct ToolAcl {
    default: Option<Rule>,
    per_tool: HashMap<String, Rule>,
}

impl ToolAcl {
    pub fn new(default: Option<Rule>, per_tool: HashMap<String, Rule>) -> Self {
        ToolAcl { default, per_tool }
    }

    /// No rule at all: every tool is open and nothing needs filtering.
    pub fn is_open(&self) -> bool {
        self.default.is_none() && self.per_tool.is_empty()
    }

    pub fn permits(&self, tool: &str, subjects: &[&str]) -> bool {
        let own = self.per_tool.get(tool);
        if own.is_some_and(|r| r.denies(subjects)) || self.default.as_ref().is_some_and(|r| r.denies(subjects)) {
            return false;
        }
        match own.or(self.default.as_ref()) {
            Some(rule) => rule.allows(subjects),
            None => true,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn acl() -> ToolAcl {
        let mut per_tool = HashMap::new();
        per_tool.insert("delete_user".to_string(), Rule::new(&s(&["admin"]), &[]));
        per_tool.insert("echo".to_string(), Rule::new(&[], &s(&["bob"])));
        ToolAcl::new(Some(Rule::new(&s(&["admin", "developer"]), &s(&["suspended"]))), per_tool)
    }

    #[test]
    fn default_rule_applies_to_unlisted_tools() {
        let a = acl();
        assert!(a.permits("add", &["alice", "admin"]));
        assert!(a.permits("add", &["bob", "developer"]));
        assert!(!a.permits("add", &["eason"]), "not in the allow list");
        assert!(!a.permits("add", &[]), "anonymous callers have no subjects");
    }

    #[test]
    fn a_tools_own_allow_list_replaces_the_default_one() {
        let a = acl();
        assert!(a.permits("delete_user", &["alice", "admin"]));
        assert!(!a.permits("delete_user", &["bob", "developer"]));
        // echo has no allow list of its own: anyone not denied.
        assert!(a.permits("echo", &["eason"]));
    }

    #[test]
    fn deny_wins_at_every_level() {
        let a = acl();
        assert!(!a.permits("echo", &["bob", "developer"]), "the tool denies bob by name");
        assert!(!a.permits("delete_user", &["carol", "admin", "suspended"]), "the default denies suspended");
    }

    #[test]
    fn no_rules_means_open() {
        let a = ToolAcl::default();
        assert!(a.is_open());
        assert!(a.permits("anything", &[]));
    }
}

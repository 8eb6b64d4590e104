//! Access control for MCP primitives: tools (by name), resources (by URI)
//! and prompts (by name). Subjects are the caller's consumer name and its
//! consumer groups (or a token's claim value in OAuth mode).
//!
//! Each primitive has Kong's tool-ACL shape: a default rule (`default_acl`
//! with its scope) and rules of single entries. An entry's own ACL replaces
//! the default's allow list, while a deny in either still applies: deny
//! always wins, at every level.

use std::collections::{HashMap, HashSet};

use crate::uri;

/// The MCP primitives an ACL governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Primitive {
    Tool,
    Resource,
    Prompt,
}

impl Primitive {
    /// The primitive a request method addresses, and the `params` field that
    /// names it; `None` for methods that address none (lists, initialize...).
    pub fn addressed_by(method: &str) -> Option<(Primitive, &'static str)> {
        match method {
            "tools/call" => Some((Primitive::Tool, "name")),
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some((Primitive::Resource, "uri")),
            "prompts/get" => Some((Primitive::Prompt, "name")),
            _ => None,
        }
    }

    /// Whether answers to `method` are lists of primitives, to be filtered.
    pub fn is_list_method(method: &str) -> bool {
        matches!(method, "tools/list" | "resources/list" | "resources/templates/list" | "prompts/list")
    }

    /// The `default_acl` scope that names this primitive.
    pub fn scope(self) -> &'static str {
        match self {
            Primitive::Tool => "tools",
            Primitive::Resource => "resources",
            Primitive::Prompt => "prompts",
        }
    }
}

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

/// The ACL of one primitive: its default rule and the rules of single
/// entries, by name (tools, prompts) or URI (resources).
#[derive(Debug, Clone, Default)]
pub struct PrimitiveAcl {
    default: Option<Rule>,
    per_entry: HashMap<String, Rule>,
    /// Resources: entries are keyed, and names judged, in their normal form
    /// ([`crate::uri`]), as the servers read them.
    by_uri: bool,
}

/// The tools' ACL, under the name the passthrough code has always used.
pub type ToolAcl = PrimitiveAcl;

impl PrimitiveAcl {
    pub fn new(default: Option<Rule>, per_entry: HashMap<String, Rule>) -> Self {
        PrimitiveAcl { default, per_entry, by_uri: false }
    }

    /// The resources' ACL: entries keyed by URI (or URI template). An entry
    /// whose URI does not parse keeps its spelling and so matches nothing.
    pub fn by_uri(default: Option<Rule>, per_entry: HashMap<String, Rule>) -> Self {
        let per_entry =
            per_entry.into_iter().map(|(uri, rule)| (uri::normalize_template(&uri).unwrap_or(uri), rule)).collect();
        PrimitiveAcl { default, per_entry, by_uri: true }
    }

    /// No rule at all: every entry is open and nothing needs filtering.
    pub fn is_open(&self) -> bool {
        self.default.is_none() && self.per_entry.is_empty()
    }

    /// Whether `subjects` may use `name`. A resource URI that does not parse
    /// is refused whenever resources have rules: the gateway cannot tell
    /// which resource a server would read for it.
    pub fn permits(&self, name: &str, subjects: &[&str]) -> bool {
        if !self.by_uri || self.is_open() {
            return self.judge(name, subjects);
        }
        match uri::normalize_template(name) {
            Some(normal) => self.judge(&normal, subjects),
            None => false,
        }
    }

    fn judge(&self, name: &str, subjects: &[&str]) -> bool {
        let own = self.per_entry.get(name).or_else(|| self.template_rule(name));
        if own.is_some_and(|r| r.denies(subjects)) || self.default.as_ref().is_some_and(|r| r.denies(subjects)) {
            return false;
        }
        match own.or(self.default.as_ref()) {
            Some(rule) => rule.allows(subjects),
            None => true,
        }
    }
}

impl PrimitiveAcl {
    /// For a resource URI without a rule of its own: the rule of the most
    /// specific URI template it matches (the most literal characters, then
    /// the fewest variables, then the template's spelling, so the choice
    /// never depends on the map's order).
    fn template_rule(&self, name: &str) -> Option<&Rule> {
        if !self.by_uri {
            return None;
        }
        self.per_entry
            .iter()
            .filter(|(t, _)| uri::is_template(t) && uri::matches_template(t, name))
            .max_by_key(|(t, _)| {
                let vars = t.matches("{}").count();
                (t.len() - 2 * vars, std::cmp::Reverse(vars), std::cmp::Reverse(t.as_str()))
            })
            .map(|(_, rule)| rule)
    }
}

/// The ACLs of all three primitives.
#[derive(Debug, Clone, Default)]
pub struct Acls {
    pub tools: PrimitiveAcl,
    pub resources: PrimitiveAcl,
    pub prompts: PrimitiveAcl,
}

impl Acls {
    pub fn of(&self, p: Primitive) -> &PrimitiveAcl {
        match p {
            Primitive::Tool => &self.tools,
            Primitive::Resource => &self.resources,
            Primitive::Prompt => &self.prompts,
        }
    }

    /// No rule for any primitive: nothing is judged or filtered.
    pub fn is_open(&self) -> bool {
        self.tools.is_open() && self.resources.is_open() && self.prompts.is_open()
    }

    pub fn permits(&self, p: Primitive, name: &str, subjects: &[&str]) -> bool {
        self.of(p).permits(name, subjects)
    }

    /// Whether `subjects` may send `method` naming `name` (a tool or prompt
    /// name, a resource URI); methods that address no primitive are permitted.
    pub fn permits_method(&self, method: &str, name: &str, subjects: &[&str]) -> bool {
        match Primitive::addressed_by(method) {
            Some((p, _)) => self.permits(p, name, subjects),
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
        assert!(Acls::default().is_open());
    }

    #[test]
    fn each_primitive_is_judged_by_its_own_acl_and_method() {
        let mut resources = HashMap::new();
        resources.insert("config://secrets".to_string(), Rule::new(&s(&["admin"]), &[]));
        let acls = Acls {
            tools: acl(),
            resources: PrimitiveAcl::by_uri(None, resources),
            prompts: PrimitiveAcl::new(Some(Rule::new(&[], &s(&["bob"]))), HashMap::new()),
        };
        let bob = ["bob", "developer"];
        assert!(!acls.is_open());
        assert!(!acls.permits_method("resources/read", "config://secrets", &bob));
        assert!(!acls.permits_method("resources/subscribe", "config://secrets", &bob));
        assert!(acls.permits_method("resources/read", "config://app", &bob), "no default for resources");
        assert!(acls.permits_method("resources/read", "config://secrets", &["alice", "admin"]));
        assert!(!acls.permits_method("prompts/get", "greet", &bob));
        assert!(acls.permits_method("prompts/get", "greet", &["alice"]));
        assert!(!acls.permits_method("tools/call", "delete_user", &bob));
        assert!(acls.permits_method("prompts/list", "", &bob), "lists address nothing: filtered, not refused");
        assert_eq!(Primitive::addressed_by("resources/unsubscribe"), Some((Primitive::Resource, "uri")));
        assert!(Primitive::is_list_method("resources/templates/list") && !Primitive::is_list_method("tools/call"));
    }

    #[test]
    fn resource_rules_hold_for_every_spelling_of_their_uri() {
        let mut resources = HashMap::new();
        resources.insert("config://secrets".to_string(), Rule::new(&s(&["admin"]), &[]));
        resources.insert("HTTPS://Docs.Example:443/a/b".to_string(), Rule::new(&[], &s(&["bob"])));
        let acl = PrimitiveAcl::by_uri(None, resources);
        let bob = ["bob"];
        for spelling in ["config://secrets", "CONFIG://secrets", "Config://SECRETS", "config://%73ecrets"] {
            assert!(!acl.permits(spelling, &bob), "{spelling}");
            assert!(acl.permits(spelling, &["admin"]), "{spelling}");
        }
        for spelling in
            ["https://docs.example/a/b", "https://DOCS.example:443/a/./c/../b", "https://docs.example/a/%62"]
        {
            assert!(!acl.permits(spelling, &bob), "{spelling}");
        }
        assert!(acl.permits("config://app", &bob));
        assert!(!acl.permits(" config://secrets", &["admin"]), "a URI that does not parse is refused");
        assert!(PrimitiveAcl::by_uri(None, HashMap::new()).permits("not a uri", &bob), "no rules: open");
    }

    #[test]
    fn reads_of_a_templates_uris_follow_the_templates_rule() {
        let mut resources = HashMap::new();
        resources.insert("users://{user_id}/profile".to_string(), Rule::new(&s(&["admin"]), &[]));
        resources.insert("users://{user_id}/{page}".to_string(), Rule::new(&[], &s(&["eve"])));
        resources.insert("users://me/profile".to_string(), Rule::new(&[], &[]));
        let acl = PrimitiveAcl::by_uri(None, resources);
        let bob = ["bob"];
        assert!(!acl.permits("users://1/profile", &bob), "the template's allow list holds for its URIs");
        assert!(!acl.permits("USERS://1/profile", &bob));
        assert!(acl.permits("users://1/profile", &["admin"]));
        assert!(!acl.permits("users://{id}/profile", &bob), "the listing entry itself");
        assert!(acl.permits("users://me/profile", &bob), "an exact URI's rule beats a template's");
        assert!(acl.permits("users://1/posts", &bob), "the more specific template wins, the other one applies");
        assert!(!acl.permits("users://1/posts", &["eve"]));
        assert!(acl.permits("users://1/profile/x", &bob), "a variable holds no `/`: no template matches");
    }
}

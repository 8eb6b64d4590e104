//! Config of the guardrail plugins (Kong's names and fields where Kong has
//! them): `ai-prompt-guard`, `ai-sanitizer` (built in: no external service)
//! and `ai-custom-guardrail` (a webhook), and their semantic checks. Patterns
//! are compiled here too, so a bad one fails `tollgate check` and reloads
//! with its plugin, list and index named.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::Report;
use crate::http_url::HttpUrl;

/// Kong's limit on each pattern list.
const MAX_PATTERNS: usize = 10;

/// Kong's ai-prompt-guard.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiPromptGuardConfig {
    /// A judged text must match one of these (when any are set).
    #[serde(default)]
    pub allow_patterns: Vec<String>,
    /// A judged text that matches any of these is refused (deny wins over allow).
    #[serde(default)]
    pub deny_patterns: Vec<String>,
    /// Judge every turn of the conversation, not only the last one.
    #[serde(default)]
    pub match_all_conversation_history: bool,
    /// Kong's older switch: ignore the history and judge the last turn only
    /// (wins over `match_all_conversation_history`).
    #[serde(default)]
    pub allow_all_conversation_history: bool,
    /// Judge system, assistant and tool texts as well as the user's.
    #[serde(default)]
    pub match_all_roles: bool,
}

/// A custom recogniser of the sanitizer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomPattern {
    /// Names the placeholder: `employee_id` gives `<EMPLOYEE_ID_1>`.
    pub name: String,
    pub regex: String,
    /// Kong's confidence score; accepted and not used (matches are certain).
    #[serde(default)]
    pub score: Option<f64>,
}

/// Kong's ai-sanitizer, with the recognisers built in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiSanitizerConfig {
    /// What to look for: `all_and_credentials`, `all`, `email`, `phone`,
    /// `creditcard`, `bank` (IBAN), `ip`, `credentials`, `custom`.
    #[serde(default = "AiSanitizerConfig::default_anonymize")]
    pub anonymize: Vec<String>,
    #[serde(default)]
    pub custom_patterns: Vec<CustomPattern>,
    /// Refuse a request with PII (400) instead of masking it.
    #[serde(default)]
    pub block_if_detected: bool,
    /// Put the originals back where the answer repeats a placeholder.
    #[serde(default)]
    pub recover_redacted: bool,
    /// `placeholder` (Kong's `synthetic` is not implemented).
    #[serde(default = "AiSanitizerConfig::default_redact_type")]
    pub redact_type: String,
    /// What is sanitized: the request (`INPUT`), the answer (`OUTPUT`) or both.
    #[serde(default)]
    pub sanitization_mode: GuardedSide,
    /// Sanitize every turn (true, Kong's default) or only the last one.
    #[serde(default = "default_true")]
    pub allow_all_conversation_history: bool,
}

impl AiSanitizerConfig {
    fn default_anonymize() -> Vec<String> {
        vec!["all_and_credentials".into()]
    }
    fn default_redact_type() -> String {
        "placeholder".into()
    }
}

/// Kong's `sanitization_mode` and `guarding_mode`: which side of the
/// exchange a guardrail sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum GuardedSide {
    #[default]
    Input,
    Output,
    Both,
}

impl GuardedSide {
    pub fn input(self) -> bool {
        self != GuardedSide::Output
    }
    pub fn output(self) -> bool {
        self != GuardedSide::Input
    }
}

fn default_true() -> bool {
    true
}

/// A webhook guardrail (Kong's ai-custom-guardrail, with a fixed wire format
/// instead of Lua templates).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiCustomGuardrailConfig {
    /// The guardrail service, `http://` or `https://`.
    pub url: String,
    /// Headers sent with every call (an API key: vault references allowed).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Milliseconds the whole call may take.
    #[serde(default = "AiCustomGuardrailConfig::default_timeout")]
    pub timeout: u64,
    /// When the service fails or times out: let the request pass (true) or refuse it.
    #[serde(default)]
    pub fail_open: bool,
    /// Honour a `modify` verdict (Kong's name); without it a `modify` refuses.
    #[serde(default)]
    pub allow_masking: bool,
    /// What the service judges: the request (`INPUT`), the answer (`OUTPUT`) or both.
    #[serde(default)]
    pub guarding_mode: GuardedSide,
}

impl AiCustomGuardrailConfig {
    fn default_timeout() -> u64 {
        1000
    }
}

/// Kong's `anonymize` values that tollgate recognises, and what each covers.
pub const ANONYMIZE: &[(&str, &[&str])] = &[
    ("all", &["email", "phone", "creditcard", "bank", "ip", "custom"]),
    ("all_and_credentials", &["email", "phone", "creditcard", "bank", "ip", "custom", "credentials"]),
    ("email", &["email"]),
    ("phone", &["phone"]),
    ("creditcard", &["creditcard"]),
    ("bank", &["bank"]),
    ("ip", &["ip"]),
    ("credentials", &["credentials"]),
    ("custom", &["custom"]),
];
/// Kong's values that are not implemented.
const ANONYMIZE_NOT_IMPLEMENTED: &[&str] =
    &["crypto", "date", "domain", "driverlicense", "general", "medical", "nationalid", "nrp", "passport", "ssn", "url"];

pub(crate) fn check_prompt_guard(base: &str, c: &AiPromptGuardConfig, r: &mut Report<'_>) {
    if c.allow_patterns.is_empty() && c.deny_patterns.is_empty() {
        r.error(base.to_string(), "ai-prompt-guard needs allow_patterns or deny_patterns");
    }
    for (field, list) in [("allow_patterns", &c.allow_patterns), ("deny_patterns", &c.deny_patterns)] {
        if list.len() > MAX_PATTERNS {
            r.error(format!("{base}.{field}"), format!("at most {MAX_PATTERNS} patterns (Kong's limit)"));
        }
        for (j, p) in list.iter().enumerate() {
            if let Err(e) = tollgate_guard::patterns::compile_one(p) {
                r.error(format!("{base}.{field}[{j}]"), format!("ai-prompt-guard {field}[{j}] {e}"));
            }
        }
    }
}

pub(crate) fn check_sanitizer(base: &str, c: &AiSanitizerConfig, r: &mut Report<'_>) {
    for (j, a) in c.anonymize.iter().enumerate() {
        if ANONYMIZE_NOT_IMPLEMENTED.contains(&a.as_str()) {
            r.error(format!("{base}.anonymize[{j}]"), format!("{a:?} is not implemented by tollgate's sanitizer"));
        } else if !ANONYMIZE.iter().any(|(n, _)| n == a) {
            let known: Vec<&str> = ANONYMIZE.iter().map(|(n, _)| *n).collect();
            r.error(format!("{base}.anonymize[{j}]"), format!("unknown {a:?}; one of {}", known.join(", ")));
        }
    }
    for (j, p) in c.custom_patterns.iter().enumerate() {
        if p.name.is_empty() {
            r.error(format!("{base}.custom_patterns[{j}].name"), "must not be empty");
        }
        if let Err(e) = tollgate_guard::patterns::compile_one(&p.regex) {
            r.error(format!("{base}.custom_patterns[{j}].regex"), format!("ai-sanitizer custom_patterns[{j}] {e}"));
        }
    }
    if c.redact_type != "placeholder" {
        r.error(format!("{base}.redact_type"), "only \"placeholder\" is implemented (not Kong's \"synthetic\")");
    }
    if c.sanitization_mode == GuardedSide::Output && c.block_if_detected {
        r.error(
            format!("{base}.block_if_detected"),
            "blocks requests with PII; with sanitization_mode = \"OUTPUT\" answers are masked, not blocked",
        );
    }
    if c.sanitization_mode == GuardedSide::Output && c.recover_redacted {
        r.error(format!("{base}.recover_redacted"), "restores what INPUT masking hid; OUTPUT alone masks no request");
    }
    if c.block_if_detected && c.recover_redacted {
        r.error(format!("{base}.recover_redacted"), "nothing to recover when block_if_detected refuses PII");
    }
}

pub(crate) fn check_custom_guardrail(base: &str, c: &AiCustomGuardrailConfig, r: &mut Report<'_>) {
    let path = format!("{base}.url");
    if let Err(e) = HttpUrl::parse(&c.url) {
        let message = format!("url {} {e}", r.show(&path, &c.url));
        r.error(path, message);
    }
    for name in c.headers.keys() {
        if !crate::validate::is_header_name(name) {
            r.error(format!("{base}.headers"), format!("{name:?} is not a valid header name"));
        }
    }
    if c.timeout == 0 || c.timeout > 60_000 {
        r.error(format!("{base}.timeout"), "must be between 1 and 60000 (milliseconds)");
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{load_str, Config, ConfigErrors, PluginConfig};

    const BASE: &str = "[[services]]\nname = \"llm\"\nurl = \"http://127.0.0.1:9\"\n\n[[routes]]\nname = \"chat\"\nservice = \"llm\"\npaths = [\"/chat\"]\n";

    fn load(plugin: &str, config: &str) -> Result<Config, ConfigErrors> {
        let text = format!("{BASE}\n[[plugins]]\nname = \"{plugin}\"\nservice = \"llm\"\n[plugins.config]\n{config}\n");
        load_str(&text, Path::new("t.toml"), &|_| None)
    }

    /// Every error as `line:path: message`.
    fn errors(plugin: &str, config: &str) -> Vec<String> {
        match load(plugin, config) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(|e| format!("{}:{}: {}", e.line, e.path, e.message)).collect(),
        }
    }

    #[test]
    fn prompt_guard_types_with_kongs_fields() {
        let c = load("ai-prompt-guard", "deny_patterns = [\"a\"]\nallow_patterns = [\"b\"]\nmatch_all_roles = true")
            .unwrap();
        let PluginConfig::PromptGuard(g) = &c.plugins[0].config else { panic!("typed") };
        assert_eq!((g.deny_patterns.len(), g.allow_patterns.len(), g.match_all_roles), (1, 1, true));
    }

    #[test]
    fn a_bad_pattern_is_named_with_its_plugin_list_index_and_line() {
        let e = errors("ai-prompt-guard", "deny_patterns = [\"ok\", \"(unclosed\"]");
        assert_eq!(e.len(), 1, "{e:?}");
        // Line 14: the `deny_patterns` line of the file `load` writes.
        assert!(e[0].starts_with("14:plugins[0].config.deny_patterns[1]: ai-prompt-guard deny_patterns[1]"), "{e:?}");
        let e = errors("ai-prompt-guard", "allow_patterns = [\"(\\\\w{100}){100}\"]");
        assert!(e[0].contains("allow_patterns[0]") && e[0].contains("more than"), "{e:?}");
        assert!(errors("ai-prompt-guard", "")[0].contains("needs allow_patterns or deny_patterns"));
        let eleven = ["\"a\""; 11].join(", ");
        assert!(errors("ai-prompt-guard", &format!("deny_patterns = [{eleven}]"))[0].contains("at most 10"));
    }

    #[test]
    fn sanitizer_defaults_and_refusals() {
        let c = load("ai-sanitizer", "").unwrap();
        let PluginConfig::Sanitizer(s) = &c.plugins[0].config else { panic!("typed") };
        assert_eq!(s.anonymize, vec!["all_and_credentials"]);
        assert!(s.allow_all_conversation_history && !s.recover_redacted && !s.block_if_detected);
        assert!(errors("ai-sanitizer", "anonymize = [\"ssn\"]")[0].contains("not implemented"));
        assert!(errors("ai-sanitizer", "anonymize = [\"emails\"]")[0].contains("unknown"));
        assert!(errors("ai-sanitizer", "sanitization_mode = \"OUTPUT\"").is_empty());
        assert!(errors("ai-sanitizer", "sanitization_mode = \"OUTPUT\"\nrecover_redacted = true")[0]
            .contains("OUTPUT alone"));
        assert!(errors("ai-sanitizer", "sanitization_mode = \"OUTPUT\"\nblock_if_detected = true")[0]
            .contains("masked, not blocked"));
        assert!(errors("ai-sanitizer", "sanitization_mode = \"SIDEWAYS\"")[0].contains("`INPUT`, `OUTPUT`"));
        assert!(errors("ai-sanitizer", "redact_type = \"synthetic\"")[0].contains("placeholder"));
        let bad = "custom_patterns = [{ name = \"x\", regex = \"(\" }]";
        assert!(errors("ai-sanitizer", bad)[0].contains("custom_patterns[0]"));
        assert!(
            errors("ai-sanitizer", "host = \"pii.local\"")[0].contains("host"),
            "external-service fields are unknown"
        );
    }

    #[test]
    fn custom_guardrail_needs_a_url_and_a_sane_timeout() {
        let c = load("ai-custom-guardrail", "url = \"http://127.0.0.1:9/check\"").unwrap();
        let PluginConfig::CustomGuardrail(w) = &c.plugins[0].config else { panic!("typed") };
        assert_eq!((w.timeout, w.fail_open, w.allow_masking), (1000, false, false));
        assert!(errors("ai-custom-guardrail", "url = \"ftp://x\"")[0].contains("url"));
        assert!(errors("ai-custom-guardrail", "url = \"http://x\"\ntimeout = 0")[0].contains("timeout"));
        assert!(errors("ai-custom-guardrail", "url = \"http://x\"\nguarding_mode = \"BOTH\"").is_empty());
    }
}

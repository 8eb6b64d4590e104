//! The price table shipped with the binary (`prices.toml`, compiled in):
//! dollars per million tokens for the models of OpenAI, Anthropic, Gemini,
//! Mistral, Cohere and Bedrock. A target that sets no price of its own is
//! priced from it, so cost metrics, the access log and budgets work without
//! copying prices into every config.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;

use crate::usage::Prices;

/// One model's row, as written in `prices.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    input: f64,
    output: f64,
    cache_read: Option<f64>,
    cache_write: Option<f64>,
}

type Table = HashMap<String, HashMap<String, Row>>;

/// Parsed once; a table that does not parse (a unit test guards it) prices
/// nothing rather than stopping the gateway.
static TABLE: LazyLock<Table> = LazyLock::new(|| toml::from_str(include_str!("prices.toml")).unwrap_or_default());

/// The shipped prices of `model` at `provider` (tollgate's provider names;
/// `azure` serves OpenAI's models at OpenAI's list prices). The model name is
/// matched without case, exactly, or else by the longest known name it
/// starts with when the rest only dates or versions it (`gpt-4o-2024-08-06`,
/// `gemini-2.5-pro-preview-05-06`, `mistral-large-latest`, `...@001`): a
/// rest that names another model (`o1-mini`, `gpt-4o-realtime-preview`)
/// is not its stem's price.
pub fn shipped(provider: &str, model: &str) -> Option<Prices> {
    let section = match provider {
        "azure" => "openai",
        other => other,
    };
    let rows = TABLE.get(section)?;
    let model = model.to_ascii_lowercase();
    let row = rows.get(&model).or_else(|| {
        rows.iter()
            .filter(|(name, _)| model.strip_prefix(name.as_str()).is_some_and(only_dates_or_versions))
            .max_by_key(|(name, _)| name.len())
            .map(|(_, row)| row)
    })?;
    Some(Prices { input: row.input, output: row.output, cache_read: row.cache_read, cache_write: row.cache_write })
}

/// Whether what follows a known name only dates or versions it: `@...` or
/// `:...`, else `-` and a date (`YYYY-MM-DD`, `MM-DD`, `MMDD`, `YYYYMMDD`,
/// perhaps after `preview`), `latest`, or `vN`, a date and a `vN` together.
fn only_dates_or_versions(rest: &str) -> bool {
    if rest.starts_with(['@', ':']) {
        return true;
    }
    let Some(rest) = rest.strip_prefix('-') else { return false };
    // What follows `:` or `@` versions what precedes it (`-20240620-v1:0`).
    let rest = rest.split([':', '@']).next().unwrap_or(rest);
    let mut parts: Vec<&str> = rest.split('-').collect();
    if parts.len() > 1 && parts.last().is_some_and(|p| is_version(p)) {
        parts.pop();
    }
    if parts.len() > 1 && parts[0] == "preview" {
        parts.remove(0);
    }
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        ["latest"] => true,
        [v] if is_version(v) => true,
        [d] => digits(d, 4) || digits(d, 8),
        [m, d] => digits(m, 2) && digits(d, 2),
        [y, m, d] => digits(y, 4) && digits(m, 2) && digits(d, 2),
        _ => false,
    }
}

/// `v1`, `v2`...
fn is_version(s: &str) -> bool {
    s.strip_prefix('v').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// How many models the shipped table prices, per provider (for tests and docs).
pub fn shipped_counts() -> Vec<(&'static str, usize)> {
    ["openai", "anthropic", "gemini", "mistral", "cohere", "bedrock"]
        .into_iter()
        .map(|p| (p, TABLE.get(p).map_or(0, HashMap::len)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_and_covers_every_priced_provider() {
        let parsed: Result<Table, _> = toml::from_str(include_str!("prices.toml"));
        assert!(parsed.is_ok(), "{parsed:?}");
        for (provider, n) in shipped_counts() {
            assert!(n >= 5, "{provider}: only {n} models");
        }
    }

    #[test]
    fn known_models_have_their_list_prices() {
        let p = shipped("openai", "gpt-4o").unwrap_or_else(|| panic!("gpt-4o is priced"));
        assert_eq!((p.input, p.output, p.cache_read), (2.5, 10.0, Some(1.25)));
        let p = shipped("anthropic", "claude-sonnet-4-5").unwrap_or_else(|| panic!("sonnet is priced"));
        assert_eq!((p.input, p.output, p.cache_read, p.cache_write), (3.0, 15.0, Some(0.3), Some(3.75)));
        assert!(shipped("gemini", "gemini-2.5-pro").is_some());
        assert!(shipped("mistral", "mistral-large-latest").is_some());
        assert!(shipped("cohere", "command-r-plus-08-2024").is_some());
        assert!(shipped("bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0").is_some());
    }

    #[test]
    fn names_match_without_case_and_by_their_longest_known_stem() {
        assert_eq!(shipped("openai", "GPT-4o").map(|p| p.input), Some(2.5));
        // A dated name nobody listed takes its stem's prices, the longest stem first.
        assert_eq!(shipped("openai", "gpt-4o-mini-2099-01-01").map(|p| p.input), Some(0.15));
        assert_eq!(shipped("openai", "gpt-4o-2099-01-01").map(|p| p.input), Some(2.5));
        // Azure deployments of OpenAI models cost OpenAI's list prices.
        assert_eq!(shipped("azure", "gpt-4o").map(|p| p.output), Some(10.0));
        // A stem must end at a separator: `gpt-4oz` is not `gpt-4o`.
        assert!(shipped("openai", "gpt-4oz").is_none());
        assert!(shipped("ollama", "llama3").is_none());
        assert!(shipped("openai", "no-such-model").is_none());
    }

    #[test]
    fn a_stem_prices_only_dated_or_versioned_names_of_its_own_model() {
        // Other models that merely start with a known name are not priced as it.
        for other in ["o1-mini", "gpt-4-0125-preview", "gpt-4o-realtime-preview", "gpt-3.5-turbo-instruct"] {
            let stem = shipped("openai", other).map(|p| p.input);
            assert!(stem.is_none(), "{other} priced at {stem:?}");
        }
        assert_eq!(shipped("openai", "o1-2099-01-01").map(|p| p.input), Some(15.0));
        assert_eq!(shipped("openai", "gpt-4-0314").map(|p| p.input), Some(30.0));
        assert_eq!(shipped("openai", "gpt-4o-20990101").map(|p| p.input), Some(2.5));
        assert_eq!(shipped("gemini", "gemini-2.5-pro-preview-05-06").map(|p| p.input), Some(1.25));
        assert!(shipped("gemini", "gemini-2.5-pro-exp").is_none());
        assert!(shipped("gemini", "gemini-2.5-pro-preview").is_none());
        assert_eq!(shipped("gemini", "gemini-2.5-pro@001").map(|p| p.input), Some(1.25));
    }
}

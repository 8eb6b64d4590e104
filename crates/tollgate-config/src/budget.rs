//! `ai-budget`: spend budgets in dollars per consumer or consumer group, per
//! calendar day or month in a time zone, with a soft limit that warns and a
//! hard limit that refuses. Kong has no such plugin (its
//! ai-rate-limiting-advanced counts cost over rolling or fixed windows);
//! this mirrors LiteLLM's `max_budget` with `budget_duration`, on calendar
//! periods instead of durations from the key's creation.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use crate::error::Report;
use crate::schema::RedisSettings;
use crate::typing::TypedFile;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiBudgetConfig {
    /// Where spend is counted: this process, or Redis (every replica).
    #[serde(default)]
    pub strategy: BudgetStrategy,
    /// The limiters' `redis` table (single node, Sentinel or Cluster).
    #[serde(default)]
    pub redis: Option<RedisSettings>,
    /// The refusal's status: 429 (OpenAI's `insufficient_quota`) or 402.
    #[serde(default = "AiBudgetConfig::default_error_code")]
    pub error_code: u16,
    /// On a Redis outage: serve without budgets (logged, counted), or refuse with 503.
    #[serde(default = "crate::schema::default_true")]
    pub fault_tolerant: bool,
    /// Leave the X-AI-Budget-* headers off answers (the warning header stays).
    #[serde(default)]
    pub hide_client_headers: bool,
    /// What admission holds for the answer when neither the request nor the
    /// target sets `max_tokens`.
    #[serde(default = "AiBudgetConfig::default_reservation")]
    pub max_reserved_completion_tokens: u64,
    /// A model neither the target nor the shipped table prices: refuse it
    /// while a budget counts the caller, or serve it free (uncounted).
    #[serde(default)]
    pub unpriced: Unpriced,
    pub budgets: Vec<BudgetConfig>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Unpriced {
    #[default]
    Refuse,
    Free,
}

/// One budget: whose spend it counts, over which period, up to what.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Shown in headers, refusals, metrics and `/spend`; default
    /// `consumer:<name>:<period>` or `consumer_group:<name>:<period>`.
    #[serde(default)]
    pub name: Option<String>,
    /// A consumer's username or custom_id.
    #[serde(default)]
    pub consumer: Option<String>,
    /// A consumer group: every member's spend counts in one budget.
    #[serde(default)]
    pub consumer_group: Option<String>,
    pub period: BudgetPeriod,
    /// IANA time zone the day or month is read in.
    #[serde(default = "BudgetConfig::default_timezone")]
    pub timezone: String,
    /// Dollars after which answers carry a warning (and a metric counts them).
    #[serde(default)]
    pub soft_limit: Option<f64>,
    /// Dollars after which requests are refused until the period ends.
    #[serde(default)]
    pub hard_limit: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BudgetStrategy {
    #[default]
    Local,
    Redis,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BudgetPeriod {
    Day,
    Month,
}

/// Whose spend a budget counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BudgetSubject {
    Consumer(String),
    Group(String),
}

impl AiBudgetConfig {
    fn default_error_code() -> u16 {
        429
    }
    fn default_reservation() -> u64 {
        1024
    }
}

impl BudgetConfig {
    fn default_timezone() -> String {
        "UTC".to_string()
    }

    /// The consumer or group (validation makes it exactly one).
    pub fn subject(&self) -> BudgetSubject {
        match (&self.consumer, &self.consumer_group) {
            (Some(c), _) => BudgetSubject::Consumer(c.clone()),
            (None, Some(g)) => BudgetSubject::Group(g.clone()),
            (None, None) => BudgetSubject::Consumer(String::new()),
        }
    }

    /// The configured name, or one made of the subject and the period.
    pub fn display_name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        let period = match self.period {
            BudgetPeriod::Day => "day",
            BudgetPeriod::Month => "month",
        };
        match self.subject() {
            BudgetSubject::Consumer(c) => format!("consumer:{c}:{period}"),
            BudgetSubject::Group(g) => format!("consumer_group:{g}:{period}"),
        }
    }
}

/// Highest limit accepted, in dollars: spend is counted in nanodollars in
/// integers that Redis' scripts hold exactly (below 2^53).
pub const MAX_BUDGET_DOLLARS: f64 = 1_000_000.0;

/// Checks what typing cannot: the refusal status, Redis, limits and zones.
pub(crate) fn check(base: &str, c: &AiBudgetConfig, r: &mut Report<'_>) {
    if !matches!(c.error_code, 402 | 429) {
        r.error(format!("{base}.error_code"), format!("error_code {} must be 402 or 429", c.error_code));
    }
    match (c.strategy, &c.redis) {
        (BudgetStrategy::Redis, Some(redis)) => crate::validate::check_redis(&format!("{base}.redis"), redis, r),
        (BudgetStrategy::Redis, None) => r.error(format!("{base}.redis"), "strategy = \"redis\" needs a redis table"),
        (BudgetStrategy::Local, _) => {}
    }
    if c.budgets.is_empty() {
        r.error(format!("{base}.budgets"), "list at least one budget");
    }
    let mut names = HashSet::new();
    for (j, b) in c.budgets.iter().enumerate() {
        let path = format!("{base}.budgets[{j}]");
        check_budget(&path, b, r);
        let name = b.display_name();
        if !names.insert(name.clone()) {
            r.error(format!("{path}.name"), format!("budget {name:?} is listed twice"));
        }
    }
}

fn check_budget(path: &str, b: &BudgetConfig, r: &mut Report<'_>) {
    match (&b.consumer, &b.consumer_group) {
        (Some(_), Some(_)) => r.error(path.to_string(), "name either a consumer or a consumer_group, not both"),
        (None, None) => r.error(path.to_string(), "name the consumer or the consumer_group whose spend it counts"),
        _ => {}
    }
    if b.soft_limit.is_none() && b.hard_limit.is_none() {
        r.error(path.to_string(), "set a soft_limit, a hard_limit or both (dollars)");
    }
    for (field, value) in [("soft_limit", b.soft_limit), ("hard_limit", b.hard_limit)] {
        if let Some(v) = value.filter(|v| !(v.is_finite() && *v > 0.0 && *v <= MAX_BUDGET_DOLLARS)) {
            r.error(
                format!("{path}.{field}"),
                format!("{field} {v} must be above 0 and at most {MAX_BUDGET_DOLLARS} dollars"),
            );
        }
    }
    if let (Some(soft), Some(hard)) = (b.soft_limit, b.hard_limit) {
        if soft >= hard {
            r.error(format!("{path}.soft_limit"), format!("soft_limit {soft} must be below hard_limit {hard}"));
        }
    }
    if let Err(e) = jiff::tz::TimeZone::get(&b.timezone) {
        let field = format!("{path}.timezone");
        let message = format!("timezone {} is not an IANA time zone name ({e})", r.show(&field, &b.timezone));
        r.error(field, message);
    }
}

/// A budget's name is its counter's key (and how `/spend` shows it): two
/// ai-budget plugins (global and on a route) listing budgets of one name
/// would share one counter, so the second is refused.
pub(crate) fn check_names_unique(plugins: &[Option<crate::PluginConfig>], r: &mut Report<'_>) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, config) in plugins.iter().enumerate() {
        let Some(crate::PluginConfig::AiBudget(c)) = config else { continue };
        for (j, b) in c.budgets.iter().enumerate() {
            let name = b.display_name();
            match seen.get(&name) {
                Some(&first) if first != i => r.error(
                    format!("plugins[{i}].config.budgets[{j}].name"),
                    format!(
                        "budget {name:?} is also in plugins[{first}]: budget names are counters and must be \
                         unique across ai-budget plugins; give one a name"
                    ),
                ),
                Some(_) => {}
                None => {
                    seen.insert(name, i);
                }
            }
        }
    }
}

/// Budgets name consumers and groups that exist: a misspelt name would
/// silently limit nobody.
pub(crate) fn check_subjects(file: &TypedFile, plugins: &[Option<crate::PluginConfig>], r: &mut Report<'_>) {
    if !file.consumers.is_array || file.consumers.slots.iter().any(|s| s.typed().is_none()) {
        return; // some consumer did not type: whom it names is unknown
    }
    let consumers: Vec<_> = file.consumers.typed().map(|(_, c)| c).collect();
    for (i, config) in plugins.iter().enumerate() {
        let Some(crate::PluginConfig::AiBudget(c)) = config else { continue };
        for (j, b) in c.budgets.iter().enumerate() {
            let path = format!("plugins[{i}].config.budgets[{j}]");
            if let Some(name) = &b.consumer {
                let known = consumers.iter().any(|c| {
                    c.username.as_deref() == Some(name.as_str()) || c.custom_id.as_deref() == Some(name.as_str())
                });
                if !known {
                    r.error(format!("{path}.consumer"), format!("no consumer is named {name:?}"));
                }
            }
            if let Some(group) = &b.consumer_group {
                if !consumers.iter().any(|c| c.groups.iter().any(|g| g == group)) {
                    r.error(format!("{path}.consumer_group"), format!("no consumer is in group {group:?}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::schema::PluginConfig;

    const BASE: &str = "[[consumers]]\nusername = \"alice\"\ngroups = [\"dev\"]\n\n\
                        [[plugins]]\nname = \"ai-budget\"\n[plugins.config]\n";

    fn load(config: &str) -> Result<crate::Config, Vec<String>> {
        crate::load_str(&format!("{BASE}{config}"), Path::new("t.toml"), &|_| None)
            .map_err(|e| e.0.iter().map(ToString::to_string).collect())
    }

    fn errors(config: &str) -> String {
        load(config).err().map(|e| e.join("\n")).unwrap_or_default()
    }

    #[test]
    fn budgets_load_with_their_defaults_and_names() {
        let c = load(
            "[[plugins.config.budgets]]\nconsumer = \"alice\"\nperiod = \"day\"\nhard_limit = 0.01\n\
             [[plugins.config.budgets]]\nconsumer_group = \"dev\"\nperiod = \"month\"\ntimezone = \"Europe/Paris\"\n\
             soft_limit = 50\nhard_limit = 100\n",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let PluginConfig::AiBudget(p) = &c.plugins[0].config else { panic!("typed") };
        assert_eq!((p.strategy, p.error_code, p.fault_tolerant), (BudgetStrategy::Local, 429, true));
        assert_eq!(p.unpriced, Unpriced::Refuse);
        assert_eq!(p.budgets[0].display_name(), "consumer:alice:day");
        assert_eq!(p.budgets[0].timezone, "UTC");
        assert_eq!(p.budgets[1].display_name(), "consumer_group:dev:month");
        assert_eq!(p.budgets[1].subject(), BudgetSubject::Group("dev".into()));
    }

    #[test]
    fn bad_budgets_name_the_field_and_the_limit() {
        let e = errors(
            "error_code = 403\nstrategy = \"redis\"\n[[plugins.config.budgets]]\nconsumer = \"alice\"\n\
             consumer_group = \"dev\"\nperiod = \"day\"\ntimezone = \"Mars/Base\"\nsoft_limit = 2\nhard_limit = 1\n",
        );
        for want in [
            "plugins[0].config.error_code: error_code 403 must be 402 or 429",
            "plugins[0].config.redis: strategy = \"redis\" needs a redis table",
            "name either a consumer or a consumer_group, not both",
            "plugins[0].config.budgets[0].timezone: timezone `Mars/Base` is not an IANA time zone name",
            "soft_limit 2 must be below hard_limit 1",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
        let e = errors("[[plugins.config.budgets]]\nconsumer = \"alice\"\nperiod = \"week\"\nhard_limit = 1\n");
        assert!(e.contains("plugins[0].config.budgets[0].period") && e.contains("week"), "{e}");
        let e = errors("[[plugins.config.budgets]]\nconsumer = \"alice\"\nperiod = \"day\"\nhard_limit = -1\n");
        assert!(e.contains("hard_limit -1 must be above 0 and at most 1000000 dollars"), "{e}");
        let e = errors("[[plugins.config.budgets]]\nconsumer = \"alice\"\nperiod = \"day\"\n");
        assert!(e.contains("set a soft_limit, a hard_limit or both (dollars)"), "{e}");
    }

    #[test]
    fn budgets_name_consumers_and_groups_that_exist() {
        let e = errors(
            "[[plugins.config.budgets]]\nconsumer = \"alicia\"\nperiod = \"day\"\nhard_limit = 1\n\
             [[plugins.config.budgets]]\nconsumer_group = \"ops\"\nperiod = \"day\"\nhard_limit = 1\n",
        );
        assert!(e.contains("plugins[0].config.budgets[0].consumer: no consumer is named \"alicia\""), "{e}");
        assert!(e.contains("plugins[0].config.budgets[1].consumer_group: no consumer is in group \"ops\""), "{e}");
        let e = errors(
            "[[plugins.config.budgets]]\nconsumer = \"alice\"\nperiod = \"day\"\nhard_limit = 1\n\
             [[plugins.config.budgets]]\nconsumer = \"alice\"\nperiod = \"day\"\nhard_limit = 2\n",
        );
        assert!(e.contains("budget \"consumer:alice:day\" is listed twice"), "{e}");
    }

    #[test]
    fn two_plugins_cannot_share_a_budget_name() {
        let e = errors(
            "[[plugins.config.budgets]]\nconsumer = \"alice\"\nperiod = \"day\"\nhard_limit = 1\n\
             [[plugins]]\nname = \"ai-budget\"\nconsumer = \"alice\"\n[plugins.config]\n\
             [[plugins.config.budgets]]\nconsumer = \"alice\"\nperiod = \"day\"\nhard_limit = 2\n",
        );
        assert!(
            e.contains("plugins[1].config.budgets[0].name: budget \"consumer:alice:day\" is also in plugins[0]"),
            "{e}"
        );
        let e = errors(
            "[[plugins.config.budgets]]\nconsumer = \"alice\"\nperiod = \"day\"\nhard_limit = 1\n\
             [[plugins]]\nname = \"ai-budget\"\nconsumer = \"alice\"\n[plugins.config]\n\
             [[plugins.config.budgets]]\nname = \"alice-route\"\nconsumer = \"alice\"\nperiod = \"day\"\n\
             hard_limit = 2\n",
        );
        assert_eq!(e, "");
    }
}

//! One budget of an ai-budget plugin, compiled: whose spend it counts, its
//! calendar period, its limits in nanodollars, and its counter's key.

use jiff::tz::TimeZone;
use tollgate_config::{BudgetConfig, BudgetPeriod, BudgetSubject};
use tollgate_limit::budget::BudgetKey;
use tollgate_limit::calendar::{self, Period, Span};

/// Spend is counted in nanodollars: integers add exactly on every replica.
const NANOS: f64 = 1_000_000_000.0;

/// Dollars in nanodollars, rounded.
pub(crate) fn nanos(dollars: f64) -> u64 {
    (dollars.max(0.0) * NANOS).round() as u64
}

/// Nanodollars in dollars.
pub(crate) fn dollars(nanos: u64) -> f64 {
    nanos as f64 / NANOS
}

/// One budget of the plugin.
pub(crate) struct Budget {
    pub name: String,
    pub subject: BudgetSubject,
    pub period: Period,
    pub timezone: String,
    tz: TimeZone,
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

impl Budget {
    /// Zones were validated at load, so an unknown one (impossible here)
    /// reads as UTC rather than failing the reload.
    pub fn compile(b: &BudgetConfig) -> Self {
        Budget {
            name: b.display_name(),
            subject: b.subject(),
            period: match b.period {
                BudgetPeriod::Day => Period::Day,
                BudgetPeriod::Month => Period::Month,
            },
            timezone: b.timezone.clone(),
            tz: calendar::zone(&b.timezone).unwrap_or(TimeZone::UTC),
            soft: b.soft_limit.map(nanos),
            hard: b.hard_limit.map(nanos),
        }
    }

    /// The calendar period that contains `now_ms`.
    pub fn span(&self, now_ms: u64) -> Span {
        calendar::span_at(now_ms, self.period, &self.tz)
    }

    /// This budget's counter for the period `span`: a new key each period.
    pub fn key(&self, span: Span) -> BudgetKey {
        BudgetKey {
            key: format!("{}|{}", self.name, span.start_ms),
            hard_limit: self.hard,
            // Kept an hour past its end, so a late settle still finds it.
            expires_at_ms: span.end_ms + 3_600_000,
        }
    }

    pub fn counts(&self, payer: &Payer<'_>) -> bool {
        match &self.subject {
            BudgetSubject::Consumer(c) => c == payer.name || payer.custom_id == Some(c.as_str()),
            BudgetSubject::Group(g) => payer.groups.iter().any(|x| x == g),
        }
    }
}

/// The consumer a request is charged to.
pub struct Payer<'a> {
    pub name: &'a str,
    pub custom_id: Option<&'a str>,
    pub groups: &'a [String],
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(consumer: Option<&str>, group: Option<&str>) -> Budget {
        Budget::compile(&BudgetConfig {
            name: None,
            consumer: consumer.map(str::to_string),
            consumer_group: group.map(str::to_string),
            period: BudgetPeriod::Day,
            timezone: "Europe/Paris".into(),
            soft_limit: None,
            hard_limit: Some(0.01),
        })
    }

    #[test]
    fn a_budget_counts_its_consumer_by_either_name_or_its_groups_members() {
        let groups = ["dev".to_string()];
        let alice = Payer { name: "alice", custom_id: Some("alice-id"), groups: &groups };
        let bob = Payer { name: "bob", custom_id: None, groups: &[] };
        assert!(budget(Some("alice"), None).counts(&alice));
        assert!(budget(Some("alice-id"), None).counts(&alice));
        assert!(!budget(Some("alice"), None).counts(&bob));
        assert!(budget(None, Some("dev")).counts(&alice));
        assert!(!budget(None, Some("dev")).counts(&bob));
    }

    #[test]
    fn each_period_has_its_own_counter_and_limits_are_in_nanodollars() {
        let b = budget(Some("alice"), None);
        assert_eq!((b.name.as_str(), b.hard), ("consumer:alice:day", Some(10_000_000)));
        // 2026-12-03T12:13Z and a day later: two Paris days, two keys.
        let today = b.span(1_796_300_000_000);
        let tomorrow = b.span(1_796_300_000_000 + 86_400_000);
        assert_ne!(b.key(today).key, b.key(tomorrow).key);
        assert_eq!(b.key(today).expires_at_ms, today.end_ms + 3_600_000);
        assert_eq!((nanos(0.0000000014), nanos(-1.0), dollars(2_500)), (1, 0, 0.0000025));
    }
}

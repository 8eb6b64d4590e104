//! `GET /spend` on the admin listener: every budget's period, spend, limits
//! and what is left, optionally for one consumer or one consumer group. The
//! spend is the sum of the settled answers' costs, the same figure the
//! access log's `cost` fields add up to; what requests in flight hold is
//! shown apart.

use serde_json::{json, Value};
use tollgate_config::BudgetSubject;

use super::spec::{dollars, Budget, Payer};
use super::{notice, BudgetRt};

/// Which budgets a `/spend` call asks for.
pub enum SpendFilter {
    All,
    Consumer(String),
    Group(String),
}

impl SpendFilter {
    /// From the query string: `consumer=NAME`, `group=NAME`, or nothing.
    pub fn from_query(query: Option<&str>) -> Result<Self, String> {
        let mut filter = SpendFilter::All;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            filter = match k {
                "consumer" => SpendFilter::Consumer(v),
                "group" => SpendFilter::Group(v),
                other => return Err(format!("unknown parameter {other:?}: use consumer=NAME or group=NAME")),
            };
        }
        Ok(filter)
    }

    /// `consumer` is the consumer `consumer=NAME` names, when one does: then
    /// every budget that counts them is shown (their groups' too, and those
    /// naming them by custom_id), else the budgets naming NAME itself.
    fn admits(&self, b: &Budget, consumer: Option<&Payer<'_>>) -> bool {
        match (self, &b.subject) {
            (SpendFilter::All, _) => true,
            (SpendFilter::Consumer(_), _) if consumer.is_some() => consumer.is_some_and(|p| b.counts(p)),
            (SpendFilter::Consumer(want), BudgetSubject::Consumer(c)) => want == c,
            (SpendFilter::Group(want), BudgetSubject::Group(g)) => want == g,
            _ => false,
        }
    }
}

/// The plugin's budgets that `filter` asks for, as JSON objects; `consumer`
/// is whom a `consumer=NAME` filter names (see [`SpendFilter::admits`]).
pub async fn budgets(rt: &BudgetRt, filter: &SpendFilter, consumer: Option<&Payer<'_>>) -> Result<Vec<Value>, String> {
    let now = rt.now_ms();
    let spend = rt.spend_now().await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (b, (span, s)) in rt.budgets().iter().zip(spend) {
        if !filter.admits(b, consumer) {
            continue;
        }
        let (kind, who) = match &b.subject {
            BudgetSubject::Consumer(c) => ("consumer", c),
            BudgetSubject::Group(g) => ("consumer_group", g),
        };
        out.push(json!({
            "budget": b.name,
            kind: who,
            "period": notice::period_word(b.period),
            "timezone": b.timezone,
            "period_start": notice::rfc3339(span.start_ms),
            "period_end": notice::rfc3339(span.end_ms),
            "reset_in_seconds": span.reset_secs(now),
            "spend": dollars(s.spent),
            "in_flight": dollars(s.held),
            "soft_limit": b.soft.map(dollars),
            "hard_limit": b.hard.map(dollars),
            "remaining": b.hard.map(|h| dollars(h.saturating_sub(s.spent))),
            "strategy": rt.strategy(),
        }));
    }
    Ok(out)
}

/// `%XX` escapes and `+` decoded; invalid escapes stay as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::tests::plugin;

    #[test]
    fn a_consumer_filter_shows_every_budget_that_counts_them() {
        let rt = plugin(
            serde_json::json!([
                { "consumer": "alice", "period": "day", "hard_limit": 1.0 },
                { "consumer": "alice-id", "period": "month", "hard_limit": 5.0 },
                { "consumer_group": "dev", "period": "month", "hard_limit": 50.0 },
                { "consumer_group": "ops", "period": "month", "hard_limit": 50.0 },
                { "consumer": "bob", "period": "day", "hard_limit": 1.0 },
            ]),
            None,
        );
        let groups = ["dev".to_string()];
        let alice = Payer { name: "alice", custom_id: Some("alice-id"), groups: &groups };
        let filter = SpendFilter::Consumer("alice-id".into());
        let shown: Vec<&str> =
            rt.budgets().iter().filter(|b| filter.admits(b, Some(&alice))).map(|b| b.name.as_str()).collect();
        assert_eq!(shown, ["consumer:alice:day", "consumer:alice-id:month", "consumer_group:dev:month"]);
        // A name no consumer has still finds the budgets naming it.
        let filter = SpendFilter::Consumer("bob".into());
        assert_eq!(rt.budgets().iter().filter(|b| filter.admits(b, None)).count(), 1);
    }
}

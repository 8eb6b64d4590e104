//! Spend budgets: counters of money per calendar period, charged like the
//! token limiter charges tokens. Admission *reserves* an estimate in every
//! budget a request counts against (held), and the answer *settles* it:
//! the hold is released and the real cost is added to what was spent.
//!
//! A request is admitted while every budget has money left, counting what
//! other requests hold: `spent + held < hard_limit`. A burst of concurrent
//! requests therefore sees each other's holds, and the spend can pass the
//! limit by no more than the requests in flight at that moment cost beyond
//! their estimates (a refusal is only ever for a budget already used up).
//!
//! Amounts are integers (the caller's unit: tollgate uses nanodollars) so
//! local and Redis counters add exactly. Each budget key belongs to one
//! period and is dropped after it ends (`expires_at_ms`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::{Clock, LimitError};

/// One budget counter a request is charged to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetKey {
    /// Names the budget and its period (the period start is part of it).
    pub key: String,
    /// Refuse once `spent + held` reaches this; `None` only counts.
    pub hard_limit: Option<u64>,
    /// When the counter may be forgotten (after its period ended).
    pub expires_at_ms: u64,
}

/// A budget counter as it stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spend {
    /// Settled: the real cost of answers.
    pub spent: u64,
    /// Reserved by requests in flight.
    pub held: u64,
}

/// The answer to [`BudgetStore::reserve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetDecision {
    /// The index of the first key whose budget is used up, when refused.
    pub refused_by: Option<usize>,
    /// Every key's counter, after the reservation when admitted.
    pub spend: Vec<Spend>,
}

/// Where budget counters live. All methods are safe to call concurrently.
#[async_trait::async_trait]
pub trait BudgetStore: Send + Sync {
    /// Holds `estimate` in every key when none is used up; atomic across keys.
    async fn reserve(&self, keys: &[BudgetKey], estimate: u64) -> Result<BudgetDecision, LimitError>;
    /// Releases a hold of `held` and adds `actual` to what was spent.
    async fn settle(&self, keys: &[BudgetKey], held: u64, actual: u64) -> Result<(), LimitError>;
    /// The counters, charging nothing.
    async fn spend(&self, keys: &[BudgetKey]) -> Result<Vec<Spend>, LimitError>;
}

/// Each key's counter and when it may be forgotten (unix ms).
type Counters = HashMap<String, (Spend, u64)>;

/// Budgets in this process.
pub struct LocalBudgets {
    clock: Arc<dyn Clock>,
    counters: Mutex<Counters>,
}

impl LocalBudgets {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        LocalBudgets { clock, counters: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Counters>, LimitError> {
        self.counters.lock().map_err(|_| LimitError::Backend("local budget counters poisoned".into()))
    }
}

#[async_trait::async_trait]
impl BudgetStore for LocalBudgets {
    async fn reserve(&self, keys: &[BudgetKey], estimate: u64) -> Result<BudgetDecision, LimitError> {
        let now = self.clock.now_ms();
        let mut map = self.lock()?;
        // Periods that ended are forgotten when a new one begins.
        if keys.iter().any(|k| !map.contains_key(&k.key)) {
            map.retain(|_, (_, expires)| *expires > now);
        }
        let current = |k: &BudgetKey, map: &Counters| map.get(&k.key).map(|e| e.0);
        let spend: Vec<Spend> = keys.iter().map(|k| current(k, &map).unwrap_or_default()).collect();
        let refused_by = keys.iter().zip(&spend).position(|(k, s)| exhausted(k, s));
        if refused_by.is_some() {
            return Ok(BudgetDecision { refused_by, spend });
        }
        let mut after = Vec::with_capacity(keys.len());
        for k in keys {
            let entry = map.entry(k.key.clone()).or_insert((Spend::default(), k.expires_at_ms));
            entry.0.held = entry.0.held.saturating_add(estimate);
            after.push(entry.0);
        }
        Ok(BudgetDecision { refused_by: None, spend: after })
    }

    async fn settle(&self, keys: &[BudgetKey], held: u64, actual: u64) -> Result<(), LimitError> {
        let mut map = self.lock()?;
        for k in keys {
            let entry = map.entry(k.key.clone()).or_insert((Spend::default(), k.expires_at_ms));
            entry.0.held = entry.0.held.saturating_sub(held);
            entry.0.spent = entry.0.spent.saturating_add(actual);
        }
        Ok(())
    }

    async fn spend(&self, keys: &[BudgetKey]) -> Result<Vec<Spend>, LimitError> {
        let map = self.lock()?;
        Ok(keys.iter().map(|k| map.get(&k.key).map(|e| e.0).unwrap_or_default()).collect())
    }
}

/// A budget is used up when what is spent and held reaches its hard limit.
fn exhausted(k: &BudgetKey, s: &Spend) -> bool {
    k.hard_limit.is_some_and(|limit| s.spent.saturating_add(s.held) >= limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    fn key(name: &str, limit: Option<u64>) -> BudgetKey {
        BudgetKey { key: name.to_string(), hard_limit: limit, expires_at_ms: 10_000 }
    }

    #[tokio::test]
    async fn holds_count_until_settled_and_a_used_up_budget_refuses() {
        let store = LocalBudgets::new(Arc::new(ManualClock::new(0)));
        let keys = [key("alice", Some(100)), key("team", None)];
        let d = store.reserve(&keys, 60).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.refused_by, None);
        assert_eq!(d.spend[0], Spend { spent: 0, held: 60 });
        // A concurrent request sees the hold: 60 < 100, admitted.
        let d = store.reserve(&keys, 60).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((d.refused_by, d.spend[0].held), (None, 120));
        // 120 >= 100: the third is refused, and nothing is charged for it.
        let d = store.reserve(&keys, 60).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.refused_by, Some(0));
        assert_eq!(d.spend[1], Spend { spent: 0, held: 120 });
        // Answers cost less than estimated: the holds go, the real cost stays.
        store.settle(&keys, 60, 10).await.unwrap_or_else(|e| panic!("{e}"));
        store.settle(&keys, 60, 15).await.unwrap_or_else(|e| panic!("{e}"));
        let s = store.spend(&keys).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s, vec![Spend { spent: 25, held: 0 }; 2]);
        assert_eq!(store.reserve(&keys, 60).await.map(|d| d.refused_by).ok(), Some(None));
    }

    #[tokio::test]
    async fn ended_periods_are_forgotten() {
        let clock = Arc::new(ManualClock::new(0));
        let store = LocalBudgets::new(clock.clone());
        store.settle(&[key("day1", Some(5))], 0, 5).await.unwrap_or_else(|e| panic!("{e}"));
        clock.set(20_000);
        let next = BudgetKey { key: "day2".into(), hard_limit: Some(5), expires_at_ms: 30_000 };
        assert_eq!(store.reserve(&[next], 1).await.map(|d| d.refused_by).ok(), Some(None));
        let old = store.spend(&[key("day1", Some(5))]).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(old[0], Spend::default());
    }
}

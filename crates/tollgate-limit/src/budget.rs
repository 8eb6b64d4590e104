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
//! period and is dropped after it ends (`expires_at_ms`). Each hold has its
//! own deadline: a hold never settled (a replica killed mid-request, a
//! settle lost to a Redis timeout) is released once it passes, not at the
//! period's end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

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

/// One request's hold: the same amount in every budget it counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Unique across replicas and restarts (process start, pid, sequence).
    pub id: String,
    pub amount: u64,
    /// When the hold is released if nobody settled it (unix ms).
    pub deadline_ms: u64,
}

/// This process's part of every hold id.
static PROCESS: LazyLock<String> = LazyLock::new(|| {
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{:x}.{}", started.as_nanos(), std::process::id())
});
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl Hold {
    pub fn new(amount: u64, deadline_ms: u64) -> Self {
        let id = format!("{}.{}", *PROCESS, SEQUENCE.fetch_add(1, Ordering::Relaxed));
        Hold { id, amount, deadline_ms }
    }
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
    /// Holds `hold.amount` in every key when none is used up; atomic across
    /// keys. Holds past their deadline are released first.
    async fn reserve(&self, keys: &[BudgetKey], hold: &Hold) -> Result<BudgetDecision, LimitError>;
    /// Releases `hold` (unless its deadline released it already) and adds
    /// `actual` to what was spent.
    async fn settle(&self, keys: &[BudgetKey], hold: &Hold, actual: u64) -> Result<(), LimitError>;
    /// The counters, charging nothing.
    async fn spend(&self, keys: &[BudgetKey]) -> Result<Vec<Spend>, LimitError>;
}

/// One budget counter in this process.
#[derive(Default)]
struct Counter {
    spend: Spend,
    /// When the counter may be forgotten (unix ms).
    expires: u64,
    /// The holds in `spend.held`: id -> (amount, deadline).
    holds: HashMap<String, (u64, u64)>,
}

impl Counter {
    fn new(expires: u64) -> Self {
        Counter { expires, ..Default::default() }
    }

    /// Gives back the holds whose deadline passed.
    fn release_lost(&mut self, now: u64) {
        let held = &mut self.spend.held;
        self.holds.retain(|_, (amount, deadline)| {
            let lost = *deadline <= now;
            if lost {
                *held = held.saturating_sub(*amount);
            }
            !lost
        });
    }
}

type Counters = HashMap<String, Counter>;

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
    async fn reserve(&self, keys: &[BudgetKey], hold: &Hold) -> Result<BudgetDecision, LimitError> {
        let now = self.clock.now_ms();
        let mut map = self.lock()?;
        // Periods that ended are forgotten when a new one begins.
        if keys.iter().any(|k| !map.contains_key(&k.key)) {
            map.retain(|_, c| c.expires > now);
        }
        let mut spend = Vec::with_capacity(keys.len());
        for k in keys {
            spend.push(map.get_mut(&k.key).map_or_else(Spend::default, |c| {
                c.release_lost(now);
                c.spend
            }));
        }
        let refused_by = keys.iter().zip(&spend).position(|(k, s)| exhausted(k, s));
        if refused_by.is_some() {
            return Ok(BudgetDecision { refused_by, spend });
        }
        let mut after = Vec::with_capacity(keys.len());
        for k in keys {
            let c = map.entry(k.key.clone()).or_insert_with(|| Counter::new(k.expires_at_ms));
            c.spend.held = c.spend.held.saturating_add(hold.amount);
            c.holds.insert(hold.id.clone(), (hold.amount, hold.deadline_ms));
            after.push(c.spend);
        }
        Ok(BudgetDecision { refused_by: None, spend: after })
    }

    async fn settle(&self, keys: &[BudgetKey], hold: &Hold, actual: u64) -> Result<(), LimitError> {
        let mut map = self.lock()?;
        for k in keys {
            let c = map.entry(k.key.clone()).or_insert_with(|| Counter::new(k.expires_at_ms));
            if let Some((amount, _)) = c.holds.remove(&hold.id) {
                c.spend.held = c.spend.held.saturating_sub(amount);
            }
            c.spend.spent = c.spend.spent.saturating_add(actual);
        }
        Ok(())
    }

    async fn spend(&self, keys: &[BudgetKey]) -> Result<Vec<Spend>, LimitError> {
        let now = self.clock.now_ms();
        let mut map = self.lock()?;
        Ok(keys
            .iter()
            .map(|k| {
                map.get_mut(&k.key).map_or_else(Spend::default, |c| {
                    c.release_lost(now);
                    c.spend
                })
            })
            .collect())
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
        let first = hold(60);
        let d = store.reserve(&keys, &first).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.refused_by, None);
        assert_eq!(d.spend[0], Spend { spent: 0, held: 60 });
        // A concurrent request sees the hold: 60 < 100, admitted.
        let second = hold(60);
        let d = store.reserve(&keys, &second).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((d.refused_by, d.spend[0].held), (None, 120));
        // 120 >= 100: the third is refused, and nothing is charged for it.
        let d = store.reserve(&keys, &hold(60)).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.refused_by, Some(0));
        assert_eq!(d.spend[1], Spend { spent: 0, held: 120 });
        // Answers cost less than estimated: the holds go, the real cost stays.
        store.settle(&keys, &first, 10).await.unwrap_or_else(|e| panic!("{e}"));
        store.settle(&keys, &second, 15).await.unwrap_or_else(|e| panic!("{e}"));
        let s = store.spend(&keys).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s, vec![Spend { spent: 25, held: 0 }; 2]);
        assert_eq!(store.reserve(&keys, &hold(60)).await.map(|d| d.refused_by).ok(), Some(None));
    }

    fn hold(amount: u64) -> Hold {
        Hold::new(amount, 5_000)
    }

    #[tokio::test]
    async fn a_hold_nobody_settles_is_released_at_its_deadline_and_a_late_settle_releases_nothing_twice() {
        let clock = Arc::new(ManualClock::new(0));
        let store = LocalBudgets::new(clock.clone());
        let keys = [key("alice", Some(100))];
        let lost = hold(100);
        assert_eq!(store.reserve(&keys, &lost).await.map(|d| d.refused_by).ok(), Some(None));
        // Its replica died: the budget is held up until the hold's deadline...
        assert_eq!(store.reserve(&keys, &hold(1)).await.map(|d| d.refused_by).ok(), Some(Some(0)));
        clock.set(5_000);
        // ...then released, and the next request is admitted.
        let next = Hold::new(30, 9_000);
        assert_eq!(store.reserve(&keys, &next).await.map(|d| d.spend[0]).ok(), Some(Spend { spent: 0, held: 30 }));
        // A late settle of the lost hold adds its cost but releases nothing more.
        store.settle(&keys, &lost, 7).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.spend(&keys).await.ok(), Some(vec![Spend { spent: 7, held: 30 }]));
    }

    #[tokio::test]
    async fn ended_periods_are_forgotten() {
        let clock = Arc::new(ManualClock::new(0));
        let store = LocalBudgets::new(clock.clone());
        store.settle(&[key("day1", Some(5))], &hold(0), 5).await.unwrap_or_else(|e| panic!("{e}"));
        clock.set(20_000);
        let next = BudgetKey { key: "day2".into(), hard_limit: Some(5), expires_at_ms: 30_000 };
        assert_eq!(store.reserve(&[next], &hold(1)).await.map(|d| d.refused_by).ok(), Some(None));
        let old = store.spend(&[key("day1", Some(5))]).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(old[0], Spend::default());
    }
}

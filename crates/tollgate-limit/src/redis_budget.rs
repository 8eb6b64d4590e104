//! Spend budgets on the limiter's Redis connection: every replica that
//! names the same Redis shares one counter per budget and period. Each
//! counter is a hash (`spent`, `held`) under one hash tag, so the scripts
//! that touch several budgets at once run on one Cluster slot.

use std::sync::LazyLock;

use redis::Script;

use crate::budget::{BudgetDecision, BudgetKey, Hold, Spend};
use crate::{LimitError, RedisLimiter};

/// The hash tag every budget key shares (Cluster: one slot).
const PREFIX: &str = "tollgate:{budget}:";

fn redis_key(k: &BudgetKey) -> String {
    format!("{PREFIX}{}", k.key)
}

/// The ZSET of the counter's holds by deadline (same hash tag).
fn holds_key(k: &BudgetKey) -> String {
    format!("{PREFIX}{}:holds", k.key)
}

/// [`crate::budget::BudgetStore`]'s operations, named apart from [`crate::Limiter`]'s.
impl RedisLimiter {
    /// Holds `hold` in every key unless one is used up (see `BudgetStore::reserve`);
    /// `now_ms` (the caller's clock) releases holds past their deadline.
    pub async fn budget_reserve(
        &self,
        keys: &[BudgetKey],
        hold: &Hold,
        now_ms: u64,
    ) -> Result<BudgetDecision, LimitError> {
        let mut inv = RESERVE.prepare_invoke();
        inv.arg(hold.amount).arg(keys.len()).arg(now_ms).arg(&hold.id).arg(hold.deadline_ms);
        for k in keys {
            inv.key(redis_key(k)).key(holds_key(k));
            let limit = k.hard_limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
            inv.arg(limit).arg(k.expires_at_ms);
        }
        let flat: Vec<i64> = self.bounded(|mut conn| async move { inv.invoke_async(&mut conn).await }).await?;
        let (head, pairs) = flat.split_first().ok_or_else(|| LimitError::Backend("budget script: no answer".into()))?;
        if pairs.len() != keys.len() * 2 {
            return Err(LimitError::Backend(format!(
                "budget script answered {} values for {} keys",
                pairs.len(),
                keys.len()
            )));
        }
        let spend = pairs.chunks_exact(2).map(|p| Spend { spent: unsigned(p[0]), held: unsigned(p[1]) }).collect();
        let refused_by = usize::try_from(*head).ok().filter(|&i| i > 0).map(|i| i - 1);
        Ok(BudgetDecision { refused_by, spend })
    }

    /// Releases a hold and adds the real cost (see `BudgetStore::settle`).
    pub async fn budget_settle(&self, keys: &[BudgetKey], hold: &Hold, actual: u64) -> Result<(), LimitError> {
        let mut inv = SETTLE.prepare_invoke();
        inv.arg(&hold.id).arg(hold.amount).arg(actual);
        for k in keys {
            inv.key(redis_key(k)).key(holds_key(k)).arg(k.expires_at_ms);
        }
        self.bounded(|mut conn| async move { inv.invoke_async::<i64>(&mut conn).await }).await.map(|_| ())
    }

    /// The counters, charging nothing.
    pub async fn budget_spend(&self, keys: &[BudgetKey]) -> Result<Vec<Spend>, LimitError> {
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.cmd("HMGET").arg(redis_key(k)).arg("spent").arg("held");
        }
        let rows: Vec<(Option<i64>, Option<i64>)> =
            self.bounded(|mut conn| async move { pipe.query_async(&mut conn).await }).await?;
        Ok(rows
            .into_iter()
            .map(|(s, h)| Spend { spent: unsigned(s.unwrap_or(0)), held: unsigned(h.unwrap_or(0)) })
            .collect())
    }
}

fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

static RESERVE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/budget_reserve.lua")));
static SETTLE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/budget_settle.lua")));

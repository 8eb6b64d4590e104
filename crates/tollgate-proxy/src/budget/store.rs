//! Where a plugin's budget counters live: the registry's local counters
//! (which outlive reloads), or the limiters' Redis client for its `redis`
//! table, shared with the token limits and the answer cache.

use std::sync::Arc;

use tollgate_config::schema::RedisSettings;
use tollgate_limit::budget::{BudgetDecision, BudgetKey, BudgetStore, Hold, Spend};
use tollgate_limit::{Clock, LimitError};

use crate::limits::{LazyRedis, LimiterRegistry};

/// The Redis store of `r`, or the local one if the registry cannot hand one out.
pub(super) fn redis(registry: &LimiterRegistry, r: &RedisSettings) -> Arc<dyn BudgetStore> {
    match registry.redis_client(r) {
        Some(client) => Arc::new(RedisBudgets(client, registry.clock())),
        None => registry.local_budgets(),
    }
}

/// Budgets on a Redis client that connects on first use; the clock says
/// which holds are past their deadline.
struct RedisBudgets(Arc<LazyRedis>, Arc<dyn Clock>);

#[async_trait::async_trait]
impl BudgetStore for RedisBudgets {
    async fn reserve(&self, keys: &[BudgetKey], hold: &Hold) -> Result<BudgetDecision, LimitError> {
        self.0.get().await?.budget_reserve(keys, hold, self.1.now_ms()).await
    }
    async fn settle(&self, keys: &[BudgetKey], hold: &Hold, actual: u64) -> Result<(), LimitError> {
        self.0.get().await?.budget_settle(keys, hold, actual).await
    }
    async fn spend(&self, keys: &[BudgetKey]) -> Result<Vec<Spend>, LimitError> {
        self.0.get().await?.budget_spend(keys).await
    }
}

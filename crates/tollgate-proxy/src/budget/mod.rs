//! ai-budget in the request path: before the provider is called, an
//! estimate of the request's cost is held in every budget of the consumer
//! and of its groups (refused when one is used up); when the answer ends,
//! the hold is released and the real cost, the access log's own figure, is
//! charged.

mod metrics;
mod notice;
pub mod report;
mod spec;
mod store;

use std::sync::Arc;

use tollgate_config::{AiBudgetConfig, BudgetStrategy};
use tollgate_limit::budget::{BudgetKey, BudgetStore, Spend};
use tollgate_limit::calendar::Span;
use tollgate_limit::Clock;

pub use spec::Payer;
use spec::{nanos, Budget};

use crate::facts::LlmFacts;
use crate::limits::{backend_unavailable, Admission, LimiterRegistry};

/// One ai-budget plugin, compiled.
pub struct BudgetRt {
    pub config: AiBudgetConfig,
    budgets: Vec<Budget>,
    store: Arc<dyn BudgetStore>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for BudgetRt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetRt").field("budgets", &self.budgets.len()).finish()
    }
}

/// A hold in the budgets of one request, settled when the answer ends.
pub struct HeldBudget {
    store: Arc<dyn BudgetStore>,
    keys: Vec<BudgetKey>,
    held: u64,
}

impl BudgetRt {
    /// Compiles the plugin, its counters in the registry's stores.
    pub fn compile(c: &AiBudgetConfig, registry: &LimiterRegistry) -> Self {
        let budgets = c.budgets.iter().map(Budget::compile).collect();
        let store = match (c.strategy, &c.redis) {
            (BudgetStrategy::Redis, Some(r)) => store::redis(registry, r),
            _ => registry.local_budgets(),
        };
        BudgetRt { config: c.clone(), budgets, store, clock: registry.clock() }
    }

    /// Holds `estimate` (dollars) in every budget of `payer`; refuses when
    /// one is used up. `Unlimited` when no budget counts this consumer.
    pub async fn admit(&self, payer: &Payer<'_>, estimate: f64) -> (Admission, Option<HeldBudget>) {
        let now = self.clock.now_ms();
        let mine: Vec<(&Budget, Span)> =
            self.budgets.iter().filter(|b| b.counts(payer)).map(|b| (b, b.span(now))).collect();
        if mine.is_empty() {
            return (Admission::Unlimited, None);
        }
        let keys: Vec<BudgetKey> = mine.iter().map(|(b, s)| b.key(*s)).collect();
        let held = nanos(estimate);
        let decision = match self.store.reserve(&keys, held).await {
            Ok(d) => d,
            Err(e) => return (backend_unavailable("budget", self.strategy(), self.config.fault_tolerant, &e), None),
        };
        let states: Vec<notice::State<'_>> = mine
            .iter()
            .zip(&decision.spend)
            .map(|(&(budget, span), &spend)| notice::State { budget, span, spend, now })
            .collect();
        if let Some(i) = decision.refused_by {
            let state = &states[i];
            metrics::refused(&state.budget.name, payer.name);
            let (message, headers) = notice::refusal(state, &self.config);
            return (Admission::Refused { status: self.config.error_code, message, headers }, None);
        }
        let headers = notice::headers(&states, held, &self.config, payer.name);
        let hold = HeldBudget { store: self.store.clone(), keys, held };
        (Admission::Admitted { held: None, headers }, Some(hold))
    }

    /// `local` or `redis`, for metrics and `/spend`.
    pub(crate) fn strategy(&self) -> &'static str {
        match self.config.strategy {
            BudgetStrategy::Local => "local",
            BudgetStrategy::Redis => "redis",
        }
    }

    pub(crate) fn budgets(&self) -> &[Budget] {
        &self.budgets
    }

    /// Every budget's counter for the period that contains now.
    pub(crate) async fn spend_now(&self) -> Result<Vec<(Span, Spend)>, tollgate_limit::LimitError> {
        let now = self.clock.now_ms();
        let spans: Vec<Span> = self.budgets.iter().map(|b| b.span(now)).collect();
        let keys: Vec<BudgetKey> = self.budgets.iter().zip(&spans).map(|(b, s)| b.key(*s)).collect();
        let spend = self.store.spend(&keys).await?;
        Ok(spans.into_iter().zip(spend).collect())
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}

impl HeldBudget {
    /// Releases the hold and charges what the answer cost: the access log's
    /// `cost` (zero when nothing was priced or nothing answered).
    pub async fn settle(self, facts: Option<&LlmFacts>) {
        let actual = facts.and_then(LlmFacts::cost).map_or(0, nanos);
        if let Err(e) = self.store.settle(&self.keys, self.held, actual).await {
            crate::metrics::METRICS.rate_limit_backend_errors.with_label_values(&["budget_settle"]).inc();
            tracing::warn!("budget settle failed, this answer's cost is not counted: {e}");
        }
    }
}

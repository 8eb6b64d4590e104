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

use tollgate_config::{AiBudgetConfig, BudgetStrategy, Unpriced};
use tollgate_limit::budget::{BudgetKey, BudgetStore, Hold, Spend};
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
    hold: Hold,
}

/// How long a hold lasts if its request never settles it (its replica was
/// killed, the settle timed out): longer than a request, even a long
/// stream, should run, short enough that a lost hold does not lock the
/// budget for the rest of its period.
const HOLD_DEADLINE_MS: u64 = 15 * 60 * 1000;

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
        let held = hold_cap(mine.iter().map(|(b, _)| *b)).min(nanos(estimate));
        let hold = Hold::new(held, now.saturating_add(HOLD_DEADLINE_MS));
        let decision = match self.store.reserve(&keys, &hold).await {
            Ok(d) => d,
            Err(e) => {
                let admission = backend_unavailable("budget", self.strategy(), self.config.fault_tolerant, &e);
                // Served without a hold (`fault_tolerant`): the answer's real cost
                // is still added at settle, if the store is back by then.
                let served = !matches!(admission, Admission::Refused { .. });
                let nothing = Hold { amount: 0, ..hold };
                let hold = served.then(|| HeldBudget { store: self.store.clone(), keys, hold: nothing });
                return (admission, hold);
            }
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
        (Admission::Admitted { held: None, headers }, Some(HeldBudget { store: self.store.clone(), keys, hold }))
    }

    /// Why a request for `model`, which nothing prices, is refused: a
    /// budget counts `payer` and `unpriced = "refuse"` (an unpriced answer
    /// would cost nothing and pass every hard limit).
    pub fn unpriced_refusal(&self, payer: &Payer<'_>, model: &str) -> Option<String> {
        if self.config.unpriced == Unpriced::Free || !self.budgets.iter().any(|b| b.counts(payer)) {
            return None;
        }
        Some(format!(
            "model {model:?} has no price: the target sets no input_cost/output_cost and the shipped price \
             table does not list it, so ai-budget cannot count it against your budget; set the target's prices, \
             or ai-budget's unpriced = \"free\" to serve such models uncounted"
        ))
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

/// The most one request holds: the largest hard limit among its budgets
/// (a hold past it refuses nobody more), never more than the largest
/// limit a budget may have, so every counter stays an exact integer.
fn hold_cap<'a>(budgets: impl Iterator<Item = &'a Budget>) -> u64 {
    let most = nanos(tollgate_config::budget::MAX_BUDGET_DOLLARS);
    budgets.filter_map(|b| b.hard).max().unwrap_or(most).min(most)
}

/// The access log's cost, else the answer's usage at the shipped price of
/// the model the provider says answered (an alias the table does not know
/// may resolve to a model it does).
fn charged_cost(f: &LlmFacts) -> Option<f64> {
    f.cost().or_else(|| {
        let prices = tollgate_llm::prices::shipped(&f.provider, f.response_model.as_deref()?)?;
        Some(f.usage?.priced(&prices))
    })
}

impl HeldBudget {
    /// Releases the hold and charges what the answer cost: the access log's
    /// `cost` (zero when nothing was priced or nothing answered).
    pub async fn settle(self, facts: Option<&LlmFacts>) {
        // An answer reported as costing more than any budget (an absurd usage
        // figure) counts as the largest limit: Redis adds only 64-bit integers.
        let most = nanos(tollgate_config::budget::MAX_BUDGET_DOLLARS);
        let actual = facts.and_then(charged_cost).map_or(0, nanos).min(most);
        if let Err(e) = self.store.settle(&self.keys, &self.hold, actual).await {
            crate::metrics::METRICS.rate_limit_backend_errors.with_label_values(&["budget_settle"]).inc();
            tracing::warn!("budget settle failed, this answer's cost is not counted: {e}");
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use tollgate_limit::budget::LocalBudgets;
    use tollgate_limit::{LimitError, ManualClock};

    use super::*;

    /// A plugin with `budgets` (JSON), on local counters.
    pub(crate) fn plugin(budgets: serde_json::Value, store: Option<Arc<dyn BudgetStore>>) -> BudgetRt {
        let config: AiBudgetConfig =
            serde_json::from_value(serde_json::json!({ "budgets": budgets })).unwrap_or_else(|e| panic!("{e}"));
        let clock = Arc::new(ManualClock::new(1_796_300_000_000));
        let store = store.unwrap_or_else(|| Arc::new(LocalBudgets::new(clock.clone())));
        BudgetRt { budgets: config.budgets.iter().map(Budget::compile).collect(), config, store, clock }
    }

    #[test]
    fn unpriced_models_are_refused_only_when_a_budget_counts_the_caller_and_the_plugin_says_so() {
        let budgets = serde_json::json!([{ "consumer": "alice", "period": "day", "hard_limit": 1.0 }]);
        let rt = plugin(budgets.clone(), None);
        let refusal = rt.unpriced_refusal(&ALICE, "my-llama").unwrap_or_default();
        assert!(refusal.contains("model \"my-llama\" has no price") && refusal.contains("unpriced = \"free\""));
        let bob = Payer { name: "bob", custom_id: None, groups: &[] };
        assert_eq!(rt.unpriced_refusal(&bob, "my-llama"), None);
        let mut free = plugin(budgets, None);
        free.config.unpriced = Unpriced::Free;
        assert_eq!(free.unpriced_refusal(&ALICE, "my-llama"), None);
    }

    #[test]
    fn an_answer_is_charged_at_the_price_of_the_model_that_answered_when_the_asked_one_has_none() {
        let usage = tollgate_llm::Usage { prompt_tokens: 1000, completion_tokens: 100, ..Default::default() };
        let facts = LlmFacts {
            provider: "openai".into(),
            request_model: "my-alias".into(),
            response_model: Some("gpt-4o-2024-08-06".into()),
            usage: Some(usage),
            ..Default::default()
        };
        assert_eq!(charged_cost(&facts).map(nanos), Some(nanos(0.0035)));
        let unknown = LlmFacts { response_model: Some("my-alias".into()), ..facts };
        assert_eq!(charged_cost(&unknown), None);
    }

    /// A store whose reservations fail (Redis timing out) and whose settles land.
    #[derive(Default)]
    struct FlakyStore(std::sync::Mutex<Vec<(u64, u64)>>);

    #[async_trait::async_trait]
    impl BudgetStore for FlakyStore {
        async fn reserve(
            &self,
            _: &[BudgetKey],
            _: &Hold,
        ) -> Result<tollgate_limit::budget::BudgetDecision, LimitError> {
            Err(LimitError::Backend("timed out".into()))
        }
        async fn settle(&self, _: &[BudgetKey], hold: &Hold, actual: u64) -> Result<(), LimitError> {
            self.0.lock().unwrap_or_else(|e| panic!("{e}")).push((hold.amount, actual));
            Ok(())
        }
        async fn spend(&self, _: &[BudgetKey]) -> Result<Vec<Spend>, LimitError> {
            Err(LimitError::Backend("timed out".into()))
        }
    }

    #[tokio::test]
    async fn an_answer_served_through_a_store_outage_is_still_charged() {
        let store = Arc::new(FlakyStore::default());
        let budgets = serde_json::json!([{ "consumer": "alice", "period": "day", "hard_limit": 1.0 }]);
        let rt = plugin(budgets.clone(), Some(store.clone()));
        let (admission, held) = rt.admit(&ALICE, 0.5).await;
        assert!(matches!(admission, Admission::Admitted { .. }));
        let usage = tollgate_llm::Usage { prompt_tokens: 1000, completion_tokens: 100, ..Default::default() };
        let facts = LlmFacts {
            provider: "openai".into(),
            input_cost: Some(1.0),
            output_cost: Some(10.0),
            usage: Some(usage),
            ..Default::default()
        };
        held.unwrap_or_else(|| panic!("a hold of nothing")).settle(Some(&facts)).await;
        assert_eq!(*store.0.lock().unwrap_or_else(|e| panic!("{e}")), vec![(0, 2_000_000)]);
        // Not fault tolerant: refused with 503, nothing to settle.
        let mut strict = plugin(budgets, Some(store));
        strict.config.fault_tolerant = false;
        let (admission, held) = strict.admit(&ALICE, 0.5).await;
        assert!(matches!(admission, Admission::Refused { status: 503, .. }) && held.is_none());
    }

    pub(super) const ALICE: Payer<'static> = Payer { name: "alice", custom_id: None, groups: &[] };

    #[tokio::test]
    async fn an_absurd_estimate_holds_no_more_than_the_hard_limit_and_headers_do_not_overflow() {
        let rt = plugin(serde_json::json!([{ "consumer": "alice", "period": "day", "hard_limit": 1.0 }]), None);
        let (admission, held) = rt.admit(&ALICE, 1e30).await;
        assert!(matches!(admission, Admission::Admitted { .. }));
        assert_eq!(held.as_ref().map(|h| h.hold.amount), Some(1_000_000_000));
        // A second request is refused (the budget is held up), not overflowed.
        let (admission, _) = rt.admit(&ALICE, 1e30).await;
        assert!(matches!(admission, Admission::Refused { .. }));
        let states = [notice::State {
            budget: &rt.budgets[0],
            span: rt.budgets[0].span(0),
            spend: Spend { spent: u64::MAX, held: u64::MAX },
            now: 0,
        }];
        let headers = notice::headers(&states, 0, &rt.config, "alice");
        assert!(headers.iter().any(|(k, v)| k == "x-ai-budget-remaining" && v == "0"), "{headers:?}");
    }
}

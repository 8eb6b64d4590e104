//! `ai_budget_warnings_total{budget, consumer}` (answers served past a soft
//! limit) and `ai_budget_refusals_total{budget, consumer}` (requests refused
//! past a hard limit). Labels come from the config: budget and consumer names.

use once_cell::sync::Lazy;
use prometheus::{register_int_counter_vec_with_registry, IntCounterVec};

use crate::metrics::METRICS;

#[allow(clippy::expect_used)] // a static metric definition: a failure is a programming error
static WARNINGS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "ai_budget_warnings_total",
        "Requests served while a budget's spend is past its soft_limit, by budget and consumer",
        &["budget", "consumer"],
        METRICS.registry
    )
    .expect("metric")
});

#[allow(clippy::expect_used)] // a static metric definition: a failure is a programming error
static REFUSALS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "ai_budget_refusals_total",
        "Requests refused because a budget's spend reached its hard_limit, by budget and consumer",
        &["budget", "consumer"],
        METRICS.registry
    )
    .expect("metric")
});

pub(super) fn warned(budget: &str, consumer: &str) {
    WARNINGS.with_label_values(&[budget, consumer]).inc();
}

pub(super) fn refused(budget: &str, consumer: &str) {
    REFUSALS.with_label_values(&[budget, consumer]).inc();
}

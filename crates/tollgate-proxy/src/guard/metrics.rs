//! `tollgate_guard_decisions_total{plugin, route, result}`: every decision
//! of a guardrail plugin. Labels come from the config (route names) and
//! bounded sets (plugins, results).

use once_cell::sync::Lazy;
use prometheus::{register_int_counter_vec_with_registry, IntCounterVec};

use crate::metrics::METRICS;

#[allow(clippy::expect_used)] // a static metric definition: a failure is a programming error
static DECISIONS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec_with_registry!(
        "tollgate_guard_decisions_total",
        "Guardrail decisions by plugin (ai-prompt-guard, ai-sanitizer, ai-custom-guardrail), route and result",
        &["plugin", "route", "result"],
        METRICS.registry
    )
    .expect("metric")
});

pub(super) fn record(plugin: &str, route: &str, result: &str) {
    DECISIONS.with_label_values(&[plugin, route, result]).inc();
}

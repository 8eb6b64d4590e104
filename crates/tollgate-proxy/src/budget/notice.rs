//! What callers are told about their budgets: `X-AI-Budget-*` headers on
//! answers, the soft limit's warning header, and the hard limit's refusal
//! (its message names the budget, the spend and when it resets).

use tollgate_config::AiBudgetConfig;
use tollgate_limit::budget::Spend;
use tollgate_limit::calendar::{Period, Span};

use super::metrics;
use super::spec::{dollars, Budget};

/// A budget as a request found it.
pub(super) struct State<'a> {
    pub budget: &'a Budget,
    pub span: Span,
    /// After this request's hold when it was admitted.
    pub spend: Spend,
    pub now: u64,
}

/// The header of the soft limit's warning (shown even with `hide_client_headers`:
/// it is the point of a soft limit).
pub(super) const WARNING: &str = "x-ai-budget-warning";

/// The headers of an admitted request: the tightest hard limit's state, and
/// a warning per budget whose spend is past its soft limit.
pub(super) fn headers(
    states: &[State<'_>],
    own_hold: u64,
    c: &AiBudgetConfig,
    consumer: &str,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let tightest = states
        .iter()
        .filter_map(|s| s.budget.hard.map(|hard| (s, hard.saturating_sub(s.spend.spent.saturating_add(s.spend.held)))))
        .min_by_key(|(_, remaining)| *remaining);
    if let (Some((s, remaining)), false) = (tightest, c.hide_client_headers) {
        out.push(("x-ai-budget-name".to_string(), s.budget.name.clone()));
        out.push(("x-ai-budget-limit".to_string(), dollars(s.budget.hard.unwrap_or(0)).to_string()));
        // What is left once this request's own estimate is given back.
        out.push((
            "x-ai-budget-remaining".to_string(),
            dollars(remaining.saturating_add(own_hold).min(s.budget.hard.unwrap_or(0))).to_string(),
        ));
        out.push(("x-ai-budget-reset".to_string(), s.span.reset_secs(s.now).to_string()));
    }
    for s in states {
        let Some(soft) = s.budget.soft.filter(|&soft| s.spend.spent >= soft) else { continue };
        metrics::warned(&s.budget.name, consumer);
        let text = format!(
            "budget {:?} has spent ${} of its soft limit ${} this {}; it resets at {}",
            s.budget.name,
            dollars(s.spend.spent),
            dollars(soft),
            period_word(s.budget.period),
            reset_at(s.span)
        );
        out.push((WARNING.to_string(), text));
    }
    out
}

/// The refusal of a request whose budget is used up: its message and headers.
pub(super) fn refusal(s: &State<'_>, c: &AiBudgetConfig) -> (String, Vec<(String, String)>) {
    let hard = s.budget.hard.unwrap_or(0);
    let reset = s.span.reset_secs(s.now);
    let message = format!(
        "budget {:?} is used up: ${} spent (${} more held by requests in flight) of its ${} limit this {} \
         ({}); it resets at {} (in {reset} s)",
        s.budget.name,
        dollars(s.spend.spent),
        dollars(s.spend.held),
        dollars(hard),
        period_word(s.budget.period),
        s.budget.timezone,
        reset_at(s.span),
    );
    let mut headers = vec![("retry-after".to_string(), reset.to_string())];
    if !c.hide_client_headers {
        headers.push(("x-ai-budget-name".to_string(), s.budget.name.clone()));
        headers.push(("x-ai-budget-limit".to_string(), dollars(hard).to_string()));
        headers.push(("x-ai-budget-remaining".to_string(), "0".to_string()));
        headers.push(("x-ai-budget-reset".to_string(), reset.to_string()));
    }
    (message, headers)
}

pub(super) fn period_word(p: Period) -> &'static str {
    match p {
        Period::Day => "day",
        Period::Month => "month",
    }
}

/// The end of a period in RFC 3339 (UTC).
fn reset_at(span: Span) -> String {
    rfc3339(span.end_ms)
}

/// Unix milliseconds in RFC 3339 (UTC).
pub(super) fn rfc3339(ms: u64) -> String {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    jiff::Timestamp::from_millisecond(ms).map(|t| t.to_string()).unwrap_or_default()
}

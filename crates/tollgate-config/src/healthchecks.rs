//! Checks of `balancer.healthchecks` (Kong's upstream health checks).
//!
//! The probes run on pingora-load-balancing, whose health state has one interval
//! for every target, one consecutive-success threshold, one consecutive-failure
//! threshold and pass/fail probes. What Kong can say beyond that is refused here
//! with the reason, rather than accepted and quietly ignored.

use crate::error::Report;
use crate::schema::{ActiveHealthcheck, HealthchecksConfig};
use crate::validate::is_header_name;

const TYPES: &[&str] = &["http", "https", "tcp"];
/// Kong's bound on seconds fields.
const MAX_SECONDS: f64 = 65535.0;

/// `base` is the balancer's path (`plugins[i].config.balancer`).
pub(crate) fn check(base: &str, h: &HealthchecksConfig, r: &mut Report<'_>) {
    let base = format!("{base}.healthchecks");
    if h.passive.is_some() {
        r.error(
            format!("{base}.passive"),
            "passive health checks are not implemented as such: the circuit breaker is balancer.max_fails and balancer.fail_timeout",
        );
    }
    check_active(&format!("{base}.active"), &h.active, r);
}

fn check_active(base: &str, a: &ActiveHealthcheck, r: &mut Report<'_>) {
    if !TYPES.contains(&a.kind.as_str()) {
        let path = format!("{base}.type");
        let message = format!("unknown type {}; expected one of {}", r.show(&path, &a.kind), TYPES.join(", "));
        r.error(path, message);
    }
    if !(a.timeout > 0.0 && a.timeout <= MAX_SECONDS) {
        r.error(
            format!("{base}.timeout"),
            format!("timeout {} must be above 0 and at most 65535 (seconds)", a.timeout),
        );
    }
    for (field, interval) in [("healthy", a.healthy.interval), ("unhealthy", a.unhealthy.interval)] {
        if !(0.0..=MAX_SECONDS).contains(&interval) {
            r.error(
                format!("{base}.{field}.interval"),
                format!("interval {interval} must be in 0..=65535 (seconds; 0 = off)"),
            );
        }
    }
    if a.concurrency == 0 {
        r.error(format!("{base}.concurrency"), "concurrency must be at least 1");
    }
    if !a.http_path.starts_with('/') {
        let path = format!("{base}.http_path");
        let message = format!("http_path {} must start with /", r.show(&path, &a.http_path));
        r.error(path, message);
    }
    if a.https_sni.as_deref().is_some_and(|s| s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '/')) {
        r.error(format!("{base}.https_sni"), "https_sni must be a host name");
    }
    for (name, values) in &a.headers {
        let path = format!("{base}.headers.{name}");
        if !is_header_name(name) {
            r.error(path.clone(), format!("{name:?} is not a valid header name"));
        }
        if values.iter().any(|v| v.contains(['\r', '\n', '\0'])) {
            r.error(path, "header values must not contain CR, LF or NUL");
        }
    }
    for (field, statuses) in [("healthy", &a.healthy.http_statuses), ("unhealthy", &a.unhealthy.http_statuses)] {
        if let Some(s) = statuses.iter().find(|s| !(100..=999).contains(*s)) {
            r.error(format!("{base}.{field}.http_statuses"), format!("status {s} must be in 100..=999"));
        }
    }
    if let Some(s) = a.healthy.http_statuses.iter().find(|s| a.unhealthy.http_statuses.contains(s)) {
        r.error(
            format!("{base}.unhealthy.http_statuses"),
            format!("status {s} is in both healthy.http_statuses and unhealthy.http_statuses"),
        );
    }
    if !a.enabled() {
        return;
    }
    // Probing is on: what pingora-load-balancing's health state can express.
    if a.healthy.interval != a.unhealthy.interval {
        r.error(
            format!("{base}.unhealthy.interval"),
            format!(
                "unhealthy.interval {} differs from healthy.interval {}: tollgate probes every target at one interval (one pingora-load-balancing health-check pass covers them all); set both to the same value",
                a.unhealthy.interval, a.healthy.interval
            ),
        );
    }
    if a.healthy.successes == 0 {
        r.error(
            format!("{base}.healthy.successes"),
            "successes must be at least 1 while active checks are on, or a target taken out of rotation never comes back",
        );
    }
    let mut counters = vec![("tcp_failures", a.unhealthy.tcp_failures), ("timeouts", a.unhealthy.timeouts)];
    if a.kind != "tcp" {
        counters.push(("http_failures", a.unhealthy.http_failures));
    }
    let set: Vec<(&str, u32)> = counters.iter().copied().filter(|(_, v)| *v > 0).collect();
    let names = counters.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
    match set.as_slice() {
        [] => r.error(
            format!("{base}.unhealthy"),
            format!("set {names} (failed probes in a row that take a target out) while active checks are on"),
        ),
        [(_, first), rest @ ..] => {
            if let Some((name, value)) = rest.iter().find(|(_, v)| v != first) {
                r.error(
                    format!("{base}.unhealthy.{name}"),
                    format!(
                        "{name} = {value} differs from {} = {first}: tollgate counts every failed probe, whatever its kind, against one threshold (pingora-load-balancing's consecutive failures); give {names} one value",
                        set[0].0
                    ),
                );
            }
        }
    }
}

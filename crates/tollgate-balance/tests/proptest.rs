//! Property test: for random weights, algorithms, breaker settings, active health
//! check thresholds and random sequences of picks, outcomes, cool-downs, health
//! check passes and clock steps, `pick` never panics, never returns a tried or
//! unavailable target, and returns `None` only when every untried target is
//! unavailable. Availability is checked against an independent model of the
//! circuit breaker, cool-down and consecutive-threshold health rules.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora_error::{Error, ErrorType};
use pingora_load_balancing::health_check::HealthCheck;
use pingora_load_balancing::Backend;
use proptest::prelude::*;
use tollgate_balance::{
    ActiveChecks, Algorithm, Balancer, BreakerConfig, LatencyStrategy, LiteralResolver, ManualClock, Pick, Probe,
    Success, TargetInfo, UsageStrategy,
};

/// Probes answer by the bit of their port (target `i` at port `i + 1`) in a mask
/// the test sets before each pass.
struct MaskCheck(Arc<AtomicU64>);

#[async_trait]
impl HealthCheck for MaskCheck {
    async fn check(&self, target: &Backend) -> pingora_error::Result<()> {
        let port = target.addr.as_inet().map_or(0, |a| a.port());
        if self.0.load(Ordering::SeqCst) & (1 << (port - 1)) != 0 {
            Ok(())
        } else {
            Error::e_explain(ErrorType::ConnectRefused, "down")
        }
    }
    fn health_threshold(&self, _: bool) -> usize {
        1
    }
}

#[derive(Clone, Debug)]
enum Op {
    Pick {
        tried: u8,
        key: Option<u16>,
        hold: bool,
    },
    Success {
        idx: u8,
        latency_ms: u16,
        tokens: u16,
    },
    Failure {
        idx: u8,
    },
    CoolDown {
        idx: u8,
        ms: u16,
    },
    Advance {
        ms: u16,
    },
    Release,
    /// One active health check pass; bit `i` says whether target `i` passes.
    HealthPass {
        up: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u8>(), proptest::option::of(any::<u16>()), any::<bool>())
            .prop_map(|(tried, key, hold)| Op::Pick { tried, key, hold }),
        2 => (any::<u8>(), any::<u16>(), any::<u16>())
            .prop_map(|(idx, latency_ms, tokens)| Op::Success { idx, latency_ms, tokens }),
        2 => any::<u8>().prop_map(|idx| Op::Failure { idx }),
        1 => (any::<u8>(), any::<u16>()).prop_map(|(idx, ms)| Op::CoolDown { idx, ms }),
        2 => any::<u16>().prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Release),
        2 => any::<u8>().prop_map(|up| Op::HealthPass { up }),
    ]
}

fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop_oneof![
        Just(Algorithm::RoundRobin),
        Just(Algorithm::LeastConnections),
        Just(Algorithm::LowestLatency { strategy: LatencyStrategy::Tpot }),
        Just(Algorithm::LowestLatency { strategy: LatencyStrategy::E2e }),
        Just(Algorithm::LowestUsage { strategy: UsageStrategy::TotalTokens }),
        Just(Algorithm::LowestUsage { strategy: UsageStrategy::Cost }),
        Just(Algorithm::ConsistentHashing),
        Just(Algorithm::Priority),
    ]
}

/// The breaker and cool-down rules, written out independently.
#[derive(Clone, Debug)]
struct Model {
    open_until: Option<u64>,
    window_start: u64,
    fails: u32,
    cool_until: u64,
    /// Active health as pingora's consecutive counters decide it.
    healthy: bool,
    streak: usize,
}

impl Default for Model {
    fn default() -> Self {
        Model { open_until: None, window_start: 0, fails: 0, cool_until: 0, healthy: true, streak: 0 }
    }
}

impl Model {
    fn available(&self, now: u64) -> bool {
        self.healthy && self.cool_until <= now && self.open_until.is_none_or(|u| u <= now)
    }

    /// `successes` passing probes in a row make an unhealthy target healthy,
    /// `failures` failing ones a healthy target unhealthy.
    fn probe(&mut self, passed: bool, successes: usize, failures: usize) {
        if passed == self.healthy {
            self.streak = 0;
            return;
        }
        self.streak += 1;
        if self.streak >= if passed { successes } else { failures } {
            self.healthy = passed;
            self.streak = 0;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn pick_respects_tried_and_availability(
        weights in proptest::collection::vec(1u32..=65535, 1..=6),
        small_weights in any::<bool>(),
        algorithm in algorithm(),
        max_fails in 0u32..4,
        fail_timeout_ms in 0u64..20_000,
        ops in proptest::collection::vec(op(), 1..200),
        active in proptest::option::of((1usize..4, 1usize..4)),
    ) {
        // Small weights make equal weights (priority groups, ties) common.
        let weights: Vec<u32> = if small_weights {
            weights.iter().map(|w| 1 + w % 3).collect()
        } else {
            weights
        };
        let n = weights.len();
        let clock = Arc::new(ManualClock::new(0));
        let targets = weights.iter().enumerate().map(|(i, &w)| TargetInfo::new(format!("t{i}"), w)).collect();
        let breaker = BreakerConfig { max_fails, fail_timeout: Duration::from_millis(fail_timeout_ms) };
        let mask = Arc::new(AtomicU64::new(u64::MAX));
        let b = match active {
            None => Balancer::new(targets, algorithm, breaker, clock.clone()),
            Some((successes, failures)) => {
                let checks = ActiveChecks {
                    interval: Duration::from_secs(1),
                    timeout: Duration::from_secs(5),
                    successes,
                    failures,
                    parallel: false,
                    probes: (0..n)
                        .map(|i| Probe {
                            host: "127.0.0.1".into(),
                            port: i as u16 + 1,
                            check: Box::new(MaskCheck(Arc::clone(&mask))),
                        })
                        .collect(),
                    probe_of: (0..n).collect(),
                    resolver: Arc::new(LiteralResolver),
                };
                Balancer::with_active_checks(targets, algorithm, breaker, clock.clone(), checks)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?
            }
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut model = vec![Model::default(); n];
        let mut held: Vec<Pick> = Vec::new();
        let mut now = 0u64;

        for op in ops {
            match op {
                Op::Pick { tried, key, hold } => {
                    let tried: Vec<usize> = (0..n).filter(|i| tried & (1 << i) != 0).collect();
                    let key = key.map(|k| k.to_le_bytes());
                    let open: Vec<usize> = (0..n)
                        .filter(|i| !tried.contains(i) && model[*i].available(now))
                        .collect();
                    match b.pick(key.as_ref().map(|k| &k[..]), &tried) {
                        None => prop_assert!(open.is_empty(), "None while {open:?} are open"),
                        Some(p) => {
                            let i = p.index();
                            prop_assert!(!tried.contains(&i), "picked tried {i}");
                            prop_assert!(model[i].available(now), "picked unavailable {i}: {:?}", model[i]);
                            if algorithm == Algorithm::Priority {
                                let best = open.iter().map(|&j| weights[j]).max();
                                prop_assert_eq!(Some(weights[i]), best, "priority group");
                            }
                            prop_assert_eq!(p.is_trial(), model[i].open_until.is_some());
                            if p.is_trial() {
                                model[i].open_until = Some((now + fail_timeout_ms).max(1));
                            }
                            if hold {
                                held.push(p);
                            }
                        }
                    }
                }
                Op::Success { idx, latency_ms, tokens } => {
                    let i = usize::from(idx) % n;
                    b.success(i, Success {
                        latency: Duration::from_millis(u64::from(latency_ms)),
                        ttft: (tokens % 2 == 0).then(|| Duration::from_millis(u64::from(latency_ms / 3))),
                        prompt_tokens: u64::from(tokens),
                        completion_tokens: u64::from(tokens / 2),
                        cost: f64::from(tokens) * 1e-6,
                    });
                    let m = &mut model[i];
                    if m.open_until.is_some() {
                        m.open_until = None;
                        m.fails = 0;
                    }
                }
                Op::Failure { idx } => {
                    let i = usize::from(idx) % n;
                    b.failure(i);
                    let m = &mut model[i];
                    if max_fails > 0 {
                        if m.open_until.is_some() {
                            m.open_until = Some((now + fail_timeout_ms).max(1));
                        } else {
                            if m.fails == 0 || now - m.window_start >= fail_timeout_ms {
                                m.window_start = now;
                                m.fails = 0;
                            }
                            m.fails += 1;
                            if m.fails >= max_fails {
                                m.fails = 0;
                                m.open_until = Some((now + fail_timeout_ms).max(1));
                            }
                        }
                    }
                }
                Op::CoolDown { idx, ms } => {
                    let i = usize::from(idx) % n;
                    b.cool_down(i, Duration::from_millis(u64::from(ms)));
                    model[i].cool_until = model[i].cool_until.max(now + u64::from(ms));
                }
                Op::Advance { ms } => {
                    now += u64::from(ms);
                    clock.set(now);
                }
                Op::Release => held.clear(),
                Op::HealthPass { up } => {
                    mask.store(u64::from(up), Ordering::SeqCst);
                    rt.block_on(b.run_health_check());
                    if let Some((successes, failures)) = active {
                        for (i, m) in model.iter_mut().enumerate() {
                            m.probe(up & (1 << i) != 0, successes, failures);
                        }
                    }
                }
            }
            for (i, s) in b.stats().iter().enumerate() {
                prop_assert_eq!(s.healthy, model[i].available(now), "target {}", i);
                prop_assert_eq!(s.active_healthy, active.map(|_| model[i].healthy), "target {}", i);
                let holding = held.iter().filter(|p| p.index() == i).count() as u64;
                prop_assert_eq!(s.in_flight, holding);
            }
        }
    }
}

//! pick + success + release per algorithm, 4 targets, one thread: the balancer's cost
//! on every proxied request.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tollgate_balance::{
    Algorithm, Balancer, BreakerConfig, Clock, LatencyStrategy, MonotonicClock, Success, TargetInfo, UsageStrategy,
};

fn bench(c: &mut Criterion) {
    let algorithms = [
        ("round-robin", Algorithm::RoundRobin),
        ("least-connections", Algorithm::LeastConnections),
        ("lowest-latency-tpot", Algorithm::LowestLatency { strategy: LatencyStrategy::Tpot }),
        ("lowest-usage-total-tokens", Algorithm::LowestUsage { strategy: UsageStrategy::TotalTokens }),
        ("consistent-hashing", Algorithm::ConsistentHashing),
        ("priority", Algorithm::Priority),
    ];
    let success = Success {
        latency: Duration::from_millis(800),
        ttft: Some(Duration::from_millis(200)),
        prompt_tokens: 500,
        completion_tokens: 120,
        cost: 0.002,
    };
    // Baseline for reading the figures on a loaded machine: the two clock reads every
    // pick + success pays (Instant-based).
    let clock = MonotonicClock::new();
    c.bench_function("baseline: 2 clock reads", |bench| {
        bench.iter(|| black_box(clock.now_ms()) + black_box(clock.now_ms()))
    });
    let keys: Vec<String> = (0..1024).map(|k| format!("consumer-{k}")).collect();
    for (name, algorithm) in algorithms {
        let targets = [100, 100, 50, 50]
            .iter()
            .enumerate()
            .map(|(i, &w)| TargetInfo::new(format!("openai/gpt-4o-{i}"), w))
            .collect();
        let breaker = BreakerConfig { max_fails: 3, fail_timeout: Duration::from_secs(10) };
        let b = Balancer::new(targets, algorithm, breaker, Arc::new(MonotonicClock::new()));
        let mut n = 0usize;
        c.bench_function(&format!("pick+success 4 targets, {name}"), |bench| {
            bench.iter(|| {
                n = (n + 1) & 1023;
                let key = keys[n].as_bytes();
                let p = b.pick(black_box(Some(key)), black_box(&[]));
                if let Some(p) = p {
                    b.success(p.index(), black_box(success));
                }
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Unit tests: every behaviour on a manual clock, deterministic.

use std::sync::Arc;
use std::time::Duration;

use crate::ring::{hash32, Ring, MAX_POINTS};
use crate::target::peak_ewma;
use crate::{Algorithm, Balancer, BreakerConfig, LatencyStrategy, ManualClock, Success, TargetInfo, UsageStrategy};

const SEC: u64 = 1000;

fn infos(weights: &[u32]) -> Vec<TargetInfo> {
    weights.iter().enumerate().map(|(i, &w)| TargetInfo::new(format!("target-{i}"), w)).collect()
}

fn breaker(max_fails: u32, fail_timeout_ms: u64) -> BreakerConfig {
    BreakerConfig { max_fails, fail_timeout: Duration::from_millis(fail_timeout_ms) }
}

fn build(weights: &[u32], algorithm: Algorithm, breaker: BreakerConfig) -> (Balancer, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let b = Balancer::new(infos(weights), algorithm, breaker, clock.clone());
    (b, clock)
}

/// `n` picks, each released at once.
fn picks(b: &Balancer, n: usize) -> Vec<usize> {
    (0..n).map(|_| b.pick(None, &[]).map(|p| p.index()).unwrap_or(usize::MAX)).collect()
}

fn pick_idx(b: &Balancer, key: Option<&[u8]>, tried: &[usize]) -> Option<usize> {
    b.pick(key, tried).map(|p| p.index())
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn e2e(latency_ms: u64) -> Success {
    Success { latency: ms(latency_ms), completion_tokens: 10, prompt_tokens: 10, ..Success::default() }
}

fn tokens(total: u64) -> Success {
    Success { latency: ms(100), prompt_tokens: total / 2, completion_tokens: total - total / 2, ..Success::default() }
}

/// A tiny deterministic PRNG (xorshift64*), so tests need no `rand`.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// nginx's smooth weighted round-robin written the plain way, as the reference.
fn reference_swrr(weights: &[u32], n: usize) -> Vec<usize> {
    let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        for (c, &w) in current.iter_mut().zip(weights) {
            *c += i64::from(w);
        }
        let mut best = 0;
        for i in 1..weights.len() {
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        out.push(best);
    }
    out
}

// ---------------------------------------------------------------- round-robin

#[test]
fn round_robin_3_1_is_smooth() {
    let (b, _) = build(&[3, 1], Algorithm::RoundRobin, BreakerConfig::default());
    // A A B A A A B A, never A A A B.
    assert_eq!(picks(&b, 8), [0, 0, 1, 0, 0, 0, 1, 0]);
}

#[test]
fn round_robin_5_1_1_matches_nginx_example() {
    let (b, _) = build(&[5, 1, 1], Algorithm::RoundRobin, BreakerConfig::default());
    // nginx's documented sequence: a a b a c a a.
    assert_eq!(picks(&b, 14), [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]);
}

#[test]
fn round_robin_matches_reference_over_10k_picks() {
    let mut sets: Vec<Vec<u32>> = vec![vec![3, 1], vec![5, 1, 1], vec![1, 1, 1, 1], vec![100, 65535, 7], vec![1]];
    let mut rng = Lcg(0x9e37_79b9_7f4a_7c15);
    for i in 0..20 {
        let n = 1 + rng.below(8) as usize;
        let max = if i % 2 == 0 { 10 } else { 65535 };
        sets.push((0..n).map(|_| 1 + rng.below(max) as u32).collect());
    }
    for weights in sets {
        let (b, _) = build(&weights, Algorithm::RoundRobin, BreakerConfig::default());
        assert_eq!(picks(&b, 10_000), reference_swrr(&weights, 10_000), "weights {weights:?}");
    }
}

#[test]
fn round_robin_skips_tried_and_unavailable() {
    let (b, clock) = build(&[1, 1, 1], Algorithm::RoundRobin, BreakerConfig::default());
    for _ in 0..10 {
        assert_ne!(pick_idx(&b, None, &[0]), Some(0));
    }
    b.cool_down(1, ms(5 * SEC));
    for _ in 0..10 {
        assert_eq!(pick_idx(&b, None, &[0]), Some(2));
    }
    assert_eq!(pick_idx(&b, None, &[0, 2]), None);
    clock.advance(5 * SEC);
    assert_eq!(pick_idx(&b, None, &[0, 2]), Some(1));
}

#[test]
fn empty_balancer_and_zero_weight() {
    let (b, _) = build(&[], Algorithm::RoundRobin, BreakerConfig::default());
    assert!(b.is_empty());
    assert!(b.pick(None, &[]).is_none());
    let (b, _) = build(&[0, 1], Algorithm::RoundRobin, BreakerConfig::default());
    assert_eq!(b.targets()[0].weight, 1, "weight 0 is treated as 1");
    assert_eq!(picks(&b, 4), [0, 1, 0, 1]);
}

// ---------------------------------------------------------------- least-connections

#[test]
fn least_connections_prefers_fewest_in_flight() {
    let (b, _) = build(&[1, 1, 1], Algorithm::LeastConnections, BreakerConfig::default());
    let p0 = b.pick(None, &[]).expect("pick");
    let p1 = b.pick(None, &[]).expect("pick");
    let p2 = b.pick(None, &[]).expect("pick");
    let mut held = [p0.index(), p1.index(), p2.index()];
    held.sort_unstable();
    assert_eq!(held, [0, 1, 2], "each idle target gets one");
    let second = p1.index();
    drop(p1);
    assert_eq!(pick_idx(&b, None, &[]), Some(second), "the only target with a free slot");
    assert_eq!(b.stats()[p0.index()].in_flight, 1);
    drop((p0, p2));
    assert!(b.stats().iter().all(|s| s.in_flight == 0));
}

#[test]
fn least_connections_is_weighted() {
    let (b, _) = build(&[2, 1], Algorithm::LeastConnections, BreakerConfig::default());
    let held: Vec<_> = (0..6).map(|_| b.pick(None, &[]).expect("pick")).collect();
    let on0 = held.iter().filter(|p| p.index() == 0).count();
    assert_eq!(on0, 4, "in-flight split 2:1 by weight");
}

#[test]
fn least_connections_idle_ties_follow_smooth_round_robin() {
    let (b, _) = build(&[3, 1], Algorithm::LeastConnections, BreakerConfig::default());
    assert_eq!(picks(&b, 1000), reference_swrr(&[3, 1], 1000));
}

// ---------------------------------------------------------------- lowest-latency

const E2E: Algorithm = Algorithm::LowestLatency { strategy: LatencyStrategy::E2e };
const TPOT: Algorithm = Algorithm::LowestLatency { strategy: LatencyStrategy::Tpot };

#[test]
fn peak_ewma_jumps_up_and_decays_with_time() {
    let tau = 10_000.0;
    assert_eq!(peak_ewma(None, 100.0, 0, tau), 100.0);
    // A slower sample replaces the value at once.
    assert_eq!(peak_ewma(Some((100.0, 0)), 300.0, 1, tau), 300.0);
    // A faster one at the same instant does not move it...
    assert_eq!(peak_ewma(Some((300.0, 5)), 100.0, 5, tau), 300.0);
    // ...and one tau later it has covered 1 - 1/e of the way.
    let v = peak_ewma(Some((300.0, 0)), 100.0, 10_000, tau);
    assert!((v - (100.0 + 200.0 / std::f64::consts::E)).abs() < 1e-9, "{v}");
}

#[test]
fn tpot_is_generation_time_per_output_token() {
    let s = Success { latency: ms(1100), ttft: Some(ms(100)), completion_tokens: 50, ..Success::default() };
    assert_eq!(s.tpot_ms(), Some(20.0));
    let s = Success { ttft: None, ..s };
    assert_eq!(s.tpot_ms(), Some(22.0));
    let s = Success { completion_tokens: 0, ..s };
    assert_eq!(s.tpot_ms(), None, "no tokens, no sample");
}

#[test]
fn lowest_latency_probes_untried_targets_first_one_probe_each() {
    let (b, _) = build(&[1, 1, 1], E2E, BreakerConfig::default());
    let a = b.pick(None, &[]).expect("pick");
    let a_idx = a.index();
    b.success(a_idx, e2e(10));
    drop(a);
    // The measured (fast) target waits until the two others have been probed.
    let p = b.pick(None, &[]).expect("pick");
    let q = b.pick(None, &[]).expect("pick");
    let mut probed = [a_idx, p.index(), q.index()];
    probed.sort_unstable();
    assert_eq!(probed, [0, 1, 2], "each target probed once, one probe at a time");
    // With every target measured or probing, the measured one is next.
    assert_eq!(pick_idx(&b, None, &[]), Some(a_idx));
}

#[test]
fn lowest_latency_sends_most_traffic_to_3x_faster_target_and_keeps_probing() {
    let (b, clock) = build(&[1, 1], E2E, BreakerConfig::default());
    // Target 1 is the fast one (so index order does not help it).
    let latency = [300, 100];
    let mut counts = [0usize; 2];
    for _ in 0..1000 {
        let p = b.pick(None, &[]).expect("pick");
        counts[p.index()] += 1;
        b.success(p.index(), e2e(latency[p.index()]));
        drop(p);
        clock.advance(50);
    }
    assert!(counts[1] >= 900, "fast target got {counts:?}");
    assert!(counts[0] >= 10, "slow target still probed: {counts:?}");
}

#[test]
fn lowest_latency_notices_a_recovered_target() {
    let (b, clock) = build(&[1, 1], E2E, BreakerConfig::default());
    let mut latency = [100, 300];
    for round in 0..2000 {
        if round == 500 {
            latency[1] = 50; // target 1 recovers and becomes the faster one
        }
        let p = b.pick(None, &[]).expect("pick");
        b.success(p.index(), e2e(latency[p.index()]));
        drop(p);
        clock.advance(50);
    }
    let tail = picks(&b, 200);
    let on1 = tail.iter().filter(|&&i| i == 1).count();
    assert!(on1 >= 180, "recovered target gets the traffic: {on1}/200");
}

#[test]
fn lowest_latency_charges_in_flight_requests() {
    let (b, _) = build(&[1, 1], E2E, BreakerConfig::default());
    b.success(0, e2e(100));
    b.success(1, e2e(300));
    // Three requests in flight on the fast target: 100 * 4 > 300 * 1.
    let held: Vec<_> = (0..3).map(|_| b.pick(None, &[]).expect("pick")).collect();
    assert!(held.iter().all(|p| p.index() == 0));
    assert_eq!(pick_idx(&b, None, &[]), Some(1));
}

#[test]
fn lowest_latency_tpot_ranks_by_time_per_token() {
    // Target 0: slow end to end but a long answer (9 ms/token); target 1: quick but
    // 50 ms/token.
    let long = Success { latency: ms(1000), ttft: Some(ms(100)), completion_tokens: 100, ..Success::default() };
    let short = Success { latency: ms(600), ttft: Some(ms(100)), completion_tokens: 10, ..Success::default() };
    for (algorithm, winner) in [(TPOT, 0), (E2E, 1)] {
        let (b, _) = build(&[1, 1], algorithm, BreakerConfig::default());
        b.success(0, long);
        b.success(1, short);
        let on_winner = picks(&b, 100).iter().filter(|&&i| i == winner).count();
        assert!(on_winner >= 90, "{algorithm:?}: {on_winner}");
    }
    let (b, _) = build(&[1, 1], TPOT, BreakerConfig::default());
    b.success(0, long);
    assert_eq!(b.stats()[0].latency_ewma_ms, Some(9.0));
}

// ---------------------------------------------------------------- lowest-usage

const USAGE_TOTAL: Algorithm = Algorithm::LowestUsage { strategy: UsageStrategy::TotalTokens };

#[test]
fn lowest_usage_picks_least_used_by_weight() {
    let (b, _) = build(&[1, 1, 1], USAGE_TOTAL, BreakerConfig::default());
    b.success(0, tokens(1000));
    b.success(1, tokens(500));
    b.success(2, tokens(100));
    assert_eq!(pick_idx(&b, None, &[]), Some(2));
    assert_eq!(pick_idx(&b, None, &[2]), Some(1));

    let (b, _) = build(&[2, 1], USAGE_TOTAL, BreakerConfig::default());
    b.success(0, tokens(1000));
    b.success(1, tokens(600));
    assert_eq!(pick_idx(&b, None, &[]), Some(0), "1000/2 < 600/1");
}

#[test]
fn lowest_usage_decays_old_usage() {
    let (b, clock) = build(&[1, 1], USAGE_TOTAL, BreakerConfig::default());
    b.success(0, tokens(1000));
    clock.advance(120 * SEC); // two time constants: 1000 -> 135
    b.success(1, tokens(200));
    let usage = b.stats()[0].usage;
    assert!((usage - 1000.0 * (-2.0f64).exp()).abs() < 1e-6, "{usage}");
    assert_eq!(pick_idx(&b, None, &[]), Some(0));
}

#[test]
fn lowest_usage_by_cost_and_by_prompt_tokens() {
    let cheap_but_long = Success { prompt_tokens: 5000, completion_tokens: 10, cost: 0.001, ..Success::default() };
    let pricey_but_short = Success { prompt_tokens: 10, completion_tokens: 500, cost: 0.05, ..Success::default() };
    for (strategy, winner) in [
        (UsageStrategy::Cost, 0),
        (UsageStrategy::PromptTokens, 1),
        (UsageStrategy::CompletionTokens, 0),
        (UsageStrategy::TotalTokens, 1),
    ] {
        let (b, _) = build(&[1, 1], Algorithm::LowestUsage { strategy }, BreakerConfig::default());
        b.success(0, cheap_but_long);
        b.success(1, pricey_but_short);
        assert_eq!(pick_idx(&b, None, &[]), Some(winner), "{strategy:?}");
    }
}

#[test]
fn lowest_usage_spreads_concurrent_requests() {
    let (b, _) = build(&[1, 1], USAGE_TOTAL, BreakerConfig::default());
    b.success(0, tokens(100));
    b.success(1, tokens(150));
    // Without charging in-flight requests all eight would go to target 0.
    let held: Vec<_> = (0..8).map(|_| b.pick(None, &[]).expect("pick")).collect();
    let on0 = held.iter().filter(|p| p.index() == 0).count();
    assert!((4..=6).contains(&on0), "{on0}");
}

// ---------------------------------------------------------------- consistent hashing

const CH: Algorithm = Algorithm::ConsistentHashing;

fn owners(b: &Balancer, keys: usize) -> Vec<usize> {
    (0..keys)
        .map(|k| {
            let key = format!("user-{k}");
            pick_idx(b, Some(key.as_bytes()), &[]).unwrap_or(usize::MAX)
        })
        .collect()
}

#[test]
fn hash_is_pinned() {
    // Every replica and every version must map a key to the same point.
    assert_eq!(hash32(&[b"user-42"]), hash32(&[b"user-", b"42"]));
    assert_eq!(hash32(&[b"user-42"]), 0xa395_32c7, "{:#x}", hash32(&[b"user-42"]));
}

#[test]
fn consistent_hashing_maps_a_key_to_one_target_evenly() {
    let (b, _) = build(&[1, 1, 1, 1], CH, BreakerConfig::default());
    let first = owners(&b, 10_000);
    assert_eq!(first, owners(&b, 10_000), "stable");
    for t in 0..4 {
        let share = first.iter().filter(|&&o| o == t).count();
        assert!((2000..=3000).contains(&share), "target {t}: {share}");
    }
}

#[test]
fn consistent_hashing_respects_weights() {
    let (b, _) = build(&[200, 100], CH, BreakerConfig::default());
    let share0 = owners(&b, 10_000).iter().filter(|&&o| o == 0).count();
    assert!((6_100..=7_200).contains(&share0), "{share0}");
}

#[test]
fn consistent_hashing_fails_over_to_the_next_target_on_the_ring() {
    let (b, _) = build(&[1, 1, 1, 1], CH, BreakerConfig::default());
    for k in 0..200 {
        let key = format!("session-{k}");
        let key = Some(key.as_bytes());
        let owner = pick_idx(&b, key, &[]).expect("owner");
        let next = pick_idx(&b, key, &[owner]).expect("next");
        assert_ne!(next, owner);
        assert_eq!(pick_idx(&b, key, &[owner]), Some(next), "deterministic");
        let third = pick_idx(&b, key, &[owner, next]).expect("third");
        assert!(third != owner && third != next);
        assert_eq!(pick_idx(&b, key, &[owner, next, third]).map(|i| i != owner && i != next && i != third), Some(true));
        assert_eq!(pick_idx(&b, key, &[0, 1, 2, 3]), None);
    }
    // An unavailable owner is skipped exactly like a tried one.
    let owner = pick_idx(&b, Some(b"k"), &[]).expect("owner");
    let next = pick_idx(&b, Some(b"k"), &[owner]).expect("next");
    b.cool_down(owner, ms(SEC));
    assert_eq!(pick_idx(&b, Some(b"k"), &[]), Some(next));
}

#[test]
fn consistent_hashing_adding_a_target_moves_about_one_nth_of_keys() {
    // Allowed: 1/4 of 10,000 keys plus 5 points of slack (the ring's 160 points per
    // target give each target's share a spread of a few percent).
    let (three, _) = build(&[1, 1, 1], CH, BreakerConfig::default());
    let (four, _) = build(&[1, 1, 1, 1], CH, BreakerConfig::default());
    let before = owners(&three, 10_000);
    let after = owners(&four, 10_000);
    let moved: Vec<usize> = (0..10_000).filter(|&k| before[k] != after[k]).collect();
    assert!(moved.len() <= 3_000, "moved {}", moved.len());
    assert!(moved.len() >= 2_000, "the new target takes its share: {}", moved.len());
    assert!(moved.iter().all(|&k| after[k] == 3), "keys only move to the new target");
}

#[test]
fn consistent_hashing_without_key_is_round_robin() {
    let (b, _) = build(&[3, 1], CH, BreakerConfig::default());
    assert_eq!(picks(&b, 100), reference_swrr(&[3, 1], 100));
}

#[test]
fn ring_size_is_bounded_and_uses_weight_units() {
    let ids: Vec<Vec<u8>> = (0..3).map(|i| vec![i]).collect();
    assert_eq!(Ring::new(&ids, &[100, 100, 100]).len(), 480);
    assert_eq!(Ring::new(&ids, &[100, 200, 100]).len(), 640);
    assert!(Ring::new(&ids, &[65535, 1, 65534]).len() as u64 <= MAX_POINTS + 3);
}

#[test]
fn duplicate_ids_still_get_keys() {
    let clock = Arc::new(ManualClock::new(0));
    let targets = vec![TargetInfo::new("same", 1), TargetInfo::new("same", 1)];
    let b = Balancer::new(targets, CH, BreakerConfig::default(), clock);
    let share1 = owners(&b, 1000).iter().filter(|&&o| o == 1).count();
    assert!((300..=700).contains(&share1), "{share1}");
}

// ---------------------------------------------------------------- priority

#[test]
fn priority_serves_only_the_highest_group() {
    let (b, _) = build(&[10, 10, 5, 1], Algorithm::Priority, BreakerConfig::default());
    assert_eq!(picks(&b, 6), [0, 1, 0, 1, 0, 1]);
    assert_eq!(pick_idx(&b, None, &[0]), Some(1));
    assert_eq!(pick_idx(&b, None, &[0, 1]), Some(2), "tried higher group falls back");
    assert_eq!(pick_idx(&b, None, &[0, 1, 2]), Some(3));
    assert_eq!(pick_idx(&b, None, &[0, 1, 2, 3]), None);
}

#[test]
fn priority_falls_back_and_returns_when_the_higher_group_recovers() {
    let (b, clock) = build(&[10, 10, 5, 1], Algorithm::Priority, breaker(1, 10 * SEC));
    b.failure(0);
    assert_eq!(picks(&b, 4), [1, 1, 1, 1], "one of the group is enough");
    b.failure(1);
    assert_eq!(picks(&b, 4), [2, 2, 2, 2]);
    b.failure(2);
    assert_eq!(picks(&b, 4), [3, 3, 3, 3]);
    clock.advance(10 * SEC);
    // Circuits of the high group are half-open: the next picks are their trials.
    let t1 = b.pick(None, &[]).expect("trial");
    let t2 = b.pick(None, &[]).expect("trial");
    assert!(t1.is_trial() && t2.is_trial());
    let mut trials = [t1.index(), t2.index()];
    trials.sort_unstable();
    assert_eq!(trials, [0, 1]);
    // While both trials are in flight the middle group (also due a trial) serves.
    assert_eq!(pick_idx(&b, None, &[]), Some(2));
    b.success(t1.index(), e2e(10));
    b.success(t2.index(), e2e(10));
    drop((t1, t2));
    let back = picks(&b, 4);
    assert!(back.iter().all(|&i| i < 2), "{back:?}");
}

// ---------------------------------------------------------------- circuit breaker

#[test]
fn breaker_opens_after_max_fails_within_fail_timeout() {
    let (b, clock) = build(&[1, 1], Algorithm::RoundRobin, breaker(3, 10 * SEC));
    b.failure(0);
    clock.advance(SEC);
    b.failure(0);
    assert!(b.is_available(0));
    clock.advance(SEC);
    b.failure(0);
    assert!(!b.is_available(0));
    let s = &b.stats()[0];
    assert!(s.circuit_open && !s.healthy);
    assert_eq!(s.failures, 3);
    assert_eq!(picks(&b, 5), [1, 1, 1, 1, 1]);
    b.failure(1);
    assert_eq!(pick_idx(&b, None, &[]), Some(1), "one failure of three");
}

#[test]
fn breaker_forgets_failures_older_than_fail_timeout() {
    let (b, clock) = build(&[1], Algorithm::RoundRobin, breaker(3, 10 * SEC));
    b.failure(0);
    clock.advance(6 * SEC);
    b.failure(0);
    clock.advance(6 * SEC); // the window that began with the first failure is over
    b.failure(0);
    assert!(b.is_available(0));
    clock.advance(SEC);
    b.failure(0);
    assert!(b.is_available(0), "the window restarted at the third failure (nginx)");
    clock.advance(SEC);
    b.failure(0);
    assert!(!b.is_available(0), "three failures in the new window");
}

#[test]
fn breaker_with_max_fails_zero_never_opens() {
    let (b, _) = build(&[1], Algorithm::RoundRobin, breaker(0, 10 * SEC));
    for _ in 0..100 {
        b.failure(0);
    }
    assert!(b.is_available(0));
    assert_eq!(b.stats()[0].failures, 100);
}

#[test]
fn breaker_half_open_admits_one_trial_and_success_closes() {
    let (b, clock) = build(&[1, 1], Algorithm::RoundRobin, breaker(1, 10 * SEC));
    b.failure(0);
    assert_eq!(pick_idx(&b, None, &[]), Some(1));
    clock.advance(10 * SEC - 1);
    assert!(!b.is_available(0));
    clock.advance(1);
    assert!(b.is_available(0));
    let trial = b.pick(None, &[1]).expect("trial");
    assert_eq!(trial.index(), 0);
    assert!(trial.is_trial());
    assert!(!b.is_available(0), "trial in flight");
    assert_eq!(pick_idx(&b, None, &[1]), None, "only one trial");
    b.success(0, e2e(10));
    drop(trial);
    assert!(b.is_available(0));
    assert!(!b.stats()[0].circuit_open);
    let p = b.pick(None, &[1]).expect("closed");
    assert!(!p.is_trial());
}

#[test]
fn breaker_half_open_failure_reopens() {
    let (b, clock) = build(&[1], Algorithm::RoundRobin, breaker(2, 10 * SEC));
    b.failure(0);
    b.failure(0);
    clock.advance(10 * SEC);
    let trial = b.pick(None, &[]).expect("trial");
    clock.advance(SEC);
    b.failure(0); // one failure is enough in half-open
    drop(trial);
    assert_eq!(b.stats()[0].circuit_open_until_ms, Some(1_000_000 + 21 * SEC));
    clock.advance(10 * SEC - 1);
    assert!(b.pick(None, &[]).is_none());
    clock.advance(1);
    assert!(b.pick(None, &[]).is_some_and(|p| p.is_trial()));
}

#[test]
fn breaker_trial_without_outcome_expires() {
    let (b, clock) = build(&[1], Algorithm::RoundRobin, breaker(1, 10 * SEC));
    b.failure(0);
    clock.advance(10 * SEC);
    drop(b.pick(None, &[]).expect("trial")); // the client went away; nothing reported
    assert!(b.pick(None, &[]).is_none());
    clock.advance(10 * SEC);
    assert!(b.pick(None, &[]).is_some_and(|p| p.is_trial()));
}

// ---------------------------------------------------------------- cool-down

#[test]
fn cool_down_makes_a_target_unavailable_until_it_ends() {
    let (b, clock) = build(&[1, 1], Algorithm::RoundRobin, breaker(1, 10 * SEC));
    b.cool_down(0, ms(30 * SEC));
    b.cool_down(0, ms(2 * SEC)); // a shorter one does not shorten it
    assert_eq!(b.stats()[0].cooling_until_ms, Some(1_000_000 + 30 * SEC));
    assert!(!b.stats()[0].circuit_open, "independent of the circuit");
    clock.advance(29 * SEC);
    assert_eq!(picks(&b, 3), [1, 1, 1]);
    clock.advance(SEC);
    assert!(b.is_available(0));
    assert_eq!(b.stats()[0].cooling_until_ms, None);
}

#[test]
fn every_algorithm_returns_none_when_every_target_is_unavailable() {
    for algorithm in [Algorithm::RoundRobin, Algorithm::LeastConnections, E2E, USAGE_TOTAL, CH, Algorithm::Priority] {
        let (b, clock) = build(&[3, 2, 1], algorithm, breaker(1, 10 * SEC));
        b.failure(0);
        b.cool_down(1, ms(5 * SEC));
        assert_eq!(pick_idx(&b, Some(b"key"), &[2]), None, "{algorithm:?}");
        b.failure(2);
        assert_eq!(pick_idx(&b, Some(b"key"), &[]), None, "{algorithm:?}");
        clock.advance(5 * SEC);
        assert_eq!(pick_idx(&b, Some(b"key"), &[]), Some(1), "{algorithm:?}");
        // Unknown indices are ignored.
        b.success(7, e2e(1));
        b.failure(7);
        b.cool_down(7, ms(1));
    }
}

// ---------------------------------------------------------------- misc

#[test]
fn stats_report_what_happened() {
    let (b, _) = build(&[1, 1], E2E, breaker(5, 10 * SEC));
    let p = b.pick(None, &[]).expect("pick");
    let i = p.index();
    b.success(i, e2e(250));
    b.failure(i);
    let s = &b.stats()[i];
    assert_eq!((s.selections, s.successes, s.failures, s.in_flight), (1, 1, 1, 1));
    assert_eq!(s.latency_ewma_ms, Some(250.0));
    assert_eq!(s.usage, 20.0);
    assert!(s.healthy && !s.circuit_open);
    assert_eq!(s.id, format!("target-{i}"));
    drop(p);
    assert_eq!(b.stats()[i].in_flight, 0);
}

#[test]
fn algorithm_from_kong_names() {
    assert_eq!(Algorithm::from_kong("lowest-latency", "e2e", "bogus"), Ok(E2E));
    assert_eq!(
        Algorithm::from_kong("lowest-usage", "bogus", "cost"),
        Ok(Algorithm::LowestUsage { strategy: UsageStrategy::Cost })
    );
    assert_eq!(Algorithm::from_kong("priority", "", ""), Ok(Algorithm::Priority));
    assert!(Algorithm::from_kong("semantic", "tpot", "total-tokens").is_err());
    assert!(Algorithm::from_kong("lowest-latency", "p99", "total-tokens").is_err());
}

#[test]
fn balancer_is_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Balancer>();
    assert_send_sync::<crate::Pick>();
    for algorithm in [Algorithm::RoundRobin, Algorithm::LeastConnections, TPOT, USAGE_TOTAL, CH, Algorithm::Priority] {
        let (b, _) = build(&[5, 3, 2, 1], algorithm, breaker(3, 100));
        let b = Arc::new(b);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let b = Arc::clone(&b);
                std::thread::spawn(move || {
                    for n in 0..2_000u64 {
                        let key = n.to_le_bytes();
                        if let Some(p) = b.pick(Some(&key), &[]) {
                            if (n + t) % 7 == 0 {
                                b.failure(p.index());
                            } else {
                                b.success(p.index(), e2e(10 + n % 50));
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert!(b.stats().iter().all(|s| s.in_flight == 0), "{algorithm:?}");
    }
}

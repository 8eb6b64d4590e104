//! Unit tests of the local backend (and of the window arithmetic both backends share).
//! Time is a ManualClock: nothing sleeps.

use std::sync::Arc;

use crate::*;

/// A time aligned to every window used here (a multiple of 1 day), far from 0.
const T0: u64 = 20_000 * 86_400_000;
const S: u64 = 1000;

fn setup() -> (Arc<ManualClock>, LocalLimiter) {
    let clock = Arc::new(ManualClock::new(T0));
    let limiter = LocalLimiter::new(clock.clone());
    (clock, limiter)
}

fn spec(window_type: WindowType, windows: &[(u64, u64)]) -> LimitSpec {
    LimitSpec { window_type, windows: windows.iter().map(|&(size_secs, limit)| Window { size_secs, limit }).collect() }
}

fn remaining(d: &Decision) -> Vec<u64> {
    d.windows.iter().map(|w| w.remaining).collect()
}

fn resets(w: &[WindowStatus]) -> Vec<u64> {
    w.iter().map(|w| w.reset_secs).collect()
}

async fn take(l: &LocalLimiter, key: &str, s: &LimitSpec, cost: u64) -> Decision {
    l.reserve(key, s, cost).await.expect("reserve")
}

#[tokio::test]
async fn fixed_window_resets_at_the_boundary_sliding_does_not() {
    for kind in [WindowType::Fixed, WindowType::Sliding] {
        let (clock, l) = setup();
        let s = spec(kind, &[(60, 100)]);
        clock.set(T0 + 59 * S);
        let d = take(&l, "k", &s, 100).await;
        assert!(d.allowed, "{kind}");
        assert_eq!(remaining(&d), [0]);

        clock.set(T0 + 61 * S);
        let d = take(&l, "k", &s, 1).await;
        match kind {
            WindowType::Fixed => {
                assert!(d.allowed, "fixed admits again in the next window");
                assert_eq!(remaining(&d), [99]);
                assert_eq!(resets(&d.windows), [59]);
            }
            WindowType::Sliding => {
                assert!(!d.allowed, "sliding still counts the 100 of t=59 s");
                assert_eq!(remaining(&d), [0]);
                // The bucket [59 s, 60 s) leaves the window at 119 s.
                assert_eq!(d.retry_after_secs, Some(58));
                assert_eq!(resets(&d.windows), [58]);
                clock.set(T0 + 119 * S - 1);
                assert!(!take(&l, "k", &s, 1).await.allowed);
                clock.set(T0 + 119 * S);
                let d = take(&l, "k", &s, 100).await;
                assert!(d.allowed, "the old bucket aged out");
                assert_eq!(remaining(&d), [0]);
            }
        }
    }
}

#[tokio::test]
async fn sliding_window_releases_usage_bucket_by_bucket() {
    let (clock, l) = setup();
    let s = spec(WindowType::Sliding, &[(60, 100)]);
    take(&l, "k", &s, 30).await;
    clock.set(T0 + 10 * S);
    take(&l, "k", &s, 30).await;
    clock.set(T0 + 20 * S);
    take(&l, "k", &s, 40).await;
    clock.set(T0 + 30 * S);
    let d = take(&l, "k", &s, 50).await;
    assert!(!d.allowed);
    // At 60 s the first 30 leave (70 used), at 70 s the next 30 (40 used): 40 + 50 <= 100.
    assert_eq!(d.retry_after_secs, Some(40));
    assert_eq!(resets(&d.windows), [30]);
    clock.set(T0 + 60 * S);
    assert_eq!(l.peek("k", &s).await.expect("peek")[0].remaining, 30);
    assert!(!take(&l, "k", &s, 50).await.allowed);
    clock.set(T0 + 70 * S);
    let d = take(&l, "k", &s, 50).await;
    assert!(d.allowed);
    assert_eq!(remaining(&d), [10]);
}

#[tokio::test]
async fn long_sliding_windows_use_wider_buckets() {
    assert_eq!(sliding_bucket_width_secs(1), 1);
    assert_eq!(sliding_bucket_width_secs(60), 1);
    assert_eq!(sliding_bucket_width_secs(61), 2);
    assert_eq!(sliding_bucket_width_secs(3600), 60);
    assert_eq!(sliding_bucket_width_secs(86_400), 1440);

    // One hour window, 1 min buckets: usage at 10:30 lives in the bucket starting at
    // 10:00 and leaves the window at 70:00 (30 s early: the documented error bound).
    let (clock, l) = setup();
    let s = spec(WindowType::Sliding, &[(3600, 10)]);
    clock.set(T0 + 630 * S);
    assert!(take(&l, "k", &s, 10).await.allowed);
    clock.set(T0 + 4199 * S);
    let d = take(&l, "k", &s, 1).await;
    assert!(!d.allowed);
    assert_eq!(d.retry_after_secs, Some(1));
    clock.set(T0 + 4200 * S);
    assert!(take(&l, "k", &s, 10).await.allowed);
}

#[tokio::test]
async fn the_tightest_window_decides_and_every_window_is_charged() {
    for kind in [WindowType::Fixed, WindowType::Sliding] {
        let (clock, l) = setup();
        let s = spec(kind, &[(60, 100), (3600, 150)]);
        clock.set(T0 + 10 * S);
        let d = take(&l, "k", &s, 80).await;
        assert!(d.allowed);
        assert_eq!(remaining(&d), [20, 70]);

        // The minute window refuses.
        let d = take(&l, "k", &s, 30).await;
        assert!(!d.allowed, "{kind}");
        assert_eq!(remaining(&d), [20, 70], "a refusal charges nothing");
        assert_eq!(
            d.retry_after_secs,
            Some(match kind {
                WindowType::Fixed => 50,   // the minute boundary
                WindowType::Sliding => 60, // the bucket at 10 s leaves at 70 s
            })
        );

        // A minute later the minute window is free but the hour holds only 70.
        clock.set(T0 + 75 * S);
        let d = take(&l, "k", &s, 80).await;
        assert!(!d.allowed, "{kind}: the hour window decides");
        assert_eq!(remaining(&d), [100, 70]);
        assert_eq!(
            d.retry_after_secs,
            Some(match kind {
                WindowType::Fixed => 3600 - 75,
                WindowType::Sliding => 3600 - 75, // 1 min buckets: the 80 sit in the one at 0 s
            })
        );
        let d = take(&l, "k", &s, 70).await;
        assert!(d.allowed);
        assert_eq!(remaining(&d), [30, 0]);
        let p = l.peek("k", &s).await.expect("peek");
        assert_eq!(p.iter().map(|w| w.remaining).collect::<Vec<_>>(), [30, 0]);
    }
}

#[tokio::test]
async fn settle_lower_and_higher() {
    for kind in [WindowType::Fixed, WindowType::Sliding] {
        let (clock, l) = setup();
        let s = spec(kind, &[(60, 1000), (3600, 5000)]);
        let d = take(&l, "k", &s, 500).await;
        let r = d.reservation.clone().expect("reserved");
        assert_eq!(r.charged(), 500);
        assert_eq!(remaining(&d), [500, 4500]);

        clock.advance(5 * S);
        l.settle("k", &s, &r, 200).await.expect("settle");
        assert_eq!(l.peek("k", &s).await.expect("peek").iter().map(|w| w.remaining).collect::<Vec<_>>(), [800, 4800]);

        let d = take(&l, "k", &s, 500).await;
        assert_eq!(remaining(&d), [300, 4300]);
        l.settle("k", &s, &d.reservation.expect("reserved"), 900).await.expect("settle");
        let p = l.peek("k", &s).await.expect("peek");
        assert_eq!(p.iter().map(|w| w.remaining).collect::<Vec<_>>(), [0, 3900], "{kind}: 1100 used");
        assert!(!take(&l, "k", &s, 1).await.allowed, "over the limit after settling higher");

        // Settling to 0 never drives a counter below zero.
        let (_c2, l2) = setup();
        let d = take(&l2, "k", &s, 10).await;
        let r = d.reservation.clone().expect("reserved");
        l2.settle("k", &s, &r, 0).await.expect("settle");
        l2.settle("k", &s, &r, 0).await.expect("settle twice");
        let p = l2.peek("k", &s).await.expect("peek");
        assert_eq!(p.iter().map(|w| w.remaining).collect::<Vec<_>>(), [1000, 5000]);
    }
}

#[tokio::test]
async fn settle_after_the_window_has_moved_on_changes_nothing() {
    for kind in [WindowType::Fixed, WindowType::Sliding] {
        let (clock, l) = setup();
        let s = spec(kind, &[(60, 1000), (3600, 10_000)]);
        clock.set(T0 + 30 * S);
        let r = take(&l, "k", &s, 500).await.reservation.expect("reserved");
        // A long stream: it ends 2 minutes later. The minute window has moved on, the
        // hour window still holds the reservation's bucket.
        clock.set(T0 + 150 * S);
        l.settle("k", &s, &r, 2000).await.expect("settle");
        let p = l.peek("k", &s).await.expect("peek");
        assert_eq!(p.iter().map(|w| w.remaining).collect::<Vec<_>>(), [1000, 8000], "{kind}");
    }
}

#[tokio::test]
async fn zero_cost_reservation_then_settle_counts_usage_afterwards() {
    for kind in [WindowType::Fixed, WindowType::Sliding] {
        let (_clock, l) = setup();
        let s = spec(kind, &[(60, 100)]);
        let r = take(&l, "k", &s, 0).await.reservation.expect("reserved");
        l.settle("k", &s, &r, 120).await.expect("settle");
        let d = take(&l, "k", &s, 0).await;
        assert!(!d.allowed, "{kind}: 120 used of 100");
        assert_eq!(remaining(&d), [0]);
    }
}

#[tokio::test]
async fn a_single_request_bigger_than_the_limit_is_admitted_into_an_empty_window() {
    for kind in [WindowType::Fixed, WindowType::Sliding] {
        let (clock, l) = setup();
        let s = spec(kind, &[(60, 100), (3600, 1000)]);
        let d = take(&l, "k", &s, 250).await;
        assert!(d.allowed, "{kind}");
        let r = d.reservation.clone().expect("reserved");
        assert_eq!(r.charged(), 100, "min(cost, smallest limit)");
        assert_eq!(remaining(&d), [0, 900]);
        l.settle("k", &s, &r, 250).await.expect("settle");

        // Not while anything is counted, in any window.
        clock.set(T0 + 60 * S);
        let d = take(&l, "k", &s, 250).await;
        assert!(!d.allowed, "{kind}: the hour window still holds 250");
        assert_eq!(remaining(&d), [100, 750]);
        // Until every window is empty: the hour's usage (in its bucket at 0 s) leaves at 3600 s.
        assert_eq!(d.retry_after_secs, Some(3600 - 60));
        clock.set(T0 + 3600 * S);
        assert!(take(&l, "k", &s, 250).await.allowed);

        // A window with a non-zero count refuses it.
        let (_c, l) = setup();
        assert!(take(&l, "k", &s, 1).await.allowed);
        assert!(!take(&l, "k", &s, 250).await.allowed);
    }
}

#[tokio::test]
async fn a_zero_limit_admits_nothing() {
    let (_clock, l) = setup();
    let s = spec(WindowType::Fixed, &[(60, 0)]);
    let d = take(&l, "k", &s, 1).await;
    assert!(!d.allowed);
    assert_eq!(d.retry_after_secs, Some(60));
}

#[tokio::test]
async fn remaining_and_reset_values() {
    let (clock, l) = setup();
    let fixed = spec(WindowType::Fixed, &[(60, 100), (3600, 1000)]);
    clock.set(T0 + 15_500);
    let p = l.peek("new", &fixed).await.expect("peek");
    assert_eq!(p[0], WindowStatus { size_secs: 60, limit: 100, remaining: 100, reset_secs: 45 });
    assert_eq!(p[1], WindowStatus { size_secs: 3600, limit: 1000, remaining: 1000, reset_secs: 3585 });
    let d = take(&l, "k", &fixed, 7).await;
    assert_eq!(remaining(&d), [93, 993]);
    assert_eq!(resets(&d.windows), [45, 3585]);
    clock.set(T0 + 59_999);
    assert_eq!(resets(&l.peek("k", &fixed).await.expect("peek")), [1, 3541]);

    let sliding = spec(WindowType::Sliding, &[(60, 100)]);
    clock.set(T0 + 10 * S);
    assert_eq!(resets(&l.peek("s", &sliding).await.expect("peek")), [0], "empty: nothing to reset");
    take(&l, "s", &sliding, 5).await;
    clock.set(T0 + 30_500);
    take(&l, "s", &sliding, 5).await;
    let p = l.peek("s", &sliding).await.expect("peek");
    // The oldest bucket [10 s, 11 s) leaves at 70 s: 39.5 s from now, rounded up.
    assert_eq!(p[0], WindowStatus { size_secs: 60, limit: 100, remaining: 90, reset_secs: 40 });
}

#[tokio::test]
async fn retry_after_is_at_least_one_second() {
    let (clock, l) = setup();
    let s = spec(WindowType::Fixed, &[(1, 5)]);
    take(&l, "k", &s, 5).await;
    clock.advance(999);
    let d = take(&l, "k", &s, 1).await;
    assert!(!d.allowed);
    assert_eq!(d.retry_after_secs, Some(1));
    assert_eq!(resets(&d.windows), [1]);
}

#[tokio::test]
async fn changing_a_limit_keeps_the_count_changing_a_size_restarts_it() {
    let (_clock, l) = setup();
    take(&l, "k", &spec(WindowType::Sliding, &[(60, 100)]), 60).await;
    let d = take(&l, "k", &spec(WindowType::Sliding, &[(3600, 1000), (60, 200)]), 10).await;
    assert_eq!(remaining(&d), [990, 130]);
    let d = take(&l, "k", &spec(WindowType::Fixed, &[(60, 200)]), 10).await;
    assert_eq!(remaining(&d), [190], "another window type counts afresh");
}

#[tokio::test]
async fn keys_are_independent() {
    let (_clock, l) = setup();
    let s = spec(WindowType::Fixed, &[(60, 10)]);
    assert!(take(&l, "a", &s, 10).await.allowed);
    assert!(!take(&l, "a", &s, 1).await.allowed);
    assert!(take(&l, "b", &s, 10).await.allowed);
}

#[tokio::test]
async fn invalid_specs_are_errors_and_no_windows_means_unlimited() {
    let (_clock, l) = setup();
    let err = l.reserve("k", &spec(WindowType::Fixed, &[(0, 10)]), 1).await;
    assert!(matches!(err, Err(LimitError::InvalidSpec(_))), "{err:?}");
    let err = l.peek("k", &spec(WindowType::Sliding, &[(MAX_WINDOW_SECS + 1, 10)])).await;
    assert!(matches!(err, Err(LimitError::InvalidSpec(_))), "{err:?}");
    let d = take(&l, "k", &spec(WindowType::Fixed, &[]), 1_000_000).await;
    assert!(d.allowed);
    assert!(d.windows.is_empty());
}

#[tokio::test]
async fn idle_keys_are_evicted() {
    let (clock, l) = setup();
    let s = spec(WindowType::Sliding, &[(60, 10), (300, 100)]);
    for i in 0..1000 {
        take(&l, &format!("old-{i}"), &s, 1).await;
    }
    assert_eq!(l.len(), 1000);

    // Still inside the largest window: kept.
    clock.advance(300 * S);
    take(&l, "recent", &s, 1).await;
    l.sweep();
    assert_eq!(l.len(), 1001);

    // Idle for longer than the largest window: evicted by the shards' own sweep, on
    // their next access once the sweep interval (10 s) has passed (2000 new keys reach
    // every one of the 64 shards).
    clock.advance(11 * S);
    for i in 0..2000 {
        take(&l, &format!("new-{i}"), &s, 1).await;
    }
    assert_eq!(l.len(), 2001, "only the new keys and the recent one remain");

    clock.advance(10 * 60 * S);
    l.sweep();
    assert!(l.is_empty());
    // An evicted key starts afresh.
    assert_eq!(remaining(&take(&l, "old-1", &s, 1).await), [9, 99]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_reservations_never_overshoot() {
    for kind in [WindowType::Fixed, WindowType::Sliding] {
        let (_clock, l) = setup();
        let l = Arc::new(l);
        let s = Arc::new(spec(kind, &[(60, 10_000), (3600, 100_000)]));
        let barrier = Arc::new(tokio::sync::Barrier::new(64));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (l, s, barrier) = (l.clone(), s.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    l.reserve("shared", &s, 1000).await.expect("reserve").allowed
                })
            })
            .collect();
        let mut admitted = 0;
        for t in tasks {
            admitted += usize::from(t.await.expect("task"));
        }
        assert_eq!(admitted, 10, "{kind}");
        let p = l.peek("shared", &s).await.expect("peek");
        assert_eq!(p[0].remaining, 0);
        assert_eq!(p[1].remaining, 90_000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_tasks_on_many_keys() {
    let (_clock, l) = setup();
    let l = Arc::new(l);
    let s = Arc::new(spec(WindowType::Sliding, &[(60, 100)]));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (l, s) = (l.clone(), s.clone());
            tokio::spawn(async move {
                for i in 0..2000 {
                    let key = format!("k{}", i % 50);
                    let d = l.reserve(&key, &s, 1).await.expect("reserve");
                    if let Some(r) = d.reservation {
                        l.settle(&key, &s, &r, 1).await.expect("settle");
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    // 16,000 attempts on 50 keys of limit 100: each key admitted exactly 100.
    for i in 0..50 {
        assert_eq!(l.peek(&format!("k{i}"), &s).await.expect("peek")[0].remaining, 0);
    }
}

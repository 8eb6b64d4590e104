//! reserve + settle on the local backend, one key (the hot path of every limited request).
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tollgate_limit::{LimitSpec, Limiter, LocalLimiter, SystemClock, Window, WindowType};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    // The local backend never awaits: poll once with a no-op waker.
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => unreachable!("the local limiter does not await"),
    }
}

fn bench(c: &mut Criterion) {
    let limiter = LocalLimiter::new(Arc::new(SystemClock));
    for (name, window_type) in [("fixed", WindowType::Fixed), ("sliding", WindowType::Sliding)] {
        let spec = LimitSpec {
            window_type,
            windows: vec![
                Window { size_secs: 60, limit: u64::MAX / 4 },
                Window { size_secs: 3600, limit: u64::MAX / 4 },
            ],
        };
        let key = format!("consumer-{name}");
        c.bench_function(&format!("local reserve+settle, {name}, 2 windows"), |b| {
            b.iter(|| {
                let d = block_on(limiter.reserve(&key, &spec, 1000)).expect("reserve");
                let r = d.reservation.expect("admitted");
                block_on(limiter.settle(&key, &spec, &r, 700)).expect("settle");
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);

//! CPU time per typical request of the prompt guard and the sanitizer, read
//! from the thread's own run time (`/proc/thread-self/schedstat`), so a busy
//! machine slows the run down but does not inflate the figures as the
//! criterion bench's wall-clock times are. The bodies each operation mutates
//! are cloned beforehand, outside the measured time.
//! `cargo run --release -p tollgate-guard --example guard_cycles [iterations]`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../benches/fixture/mod.rs"]
mod fixture;

use std::hint::black_box;

/// The gateway's allocator: masking allocates, and tollgate runs on mimalloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tollgate_guard::{Format, Vault};

/// Nanoseconds this thread has run on a CPU.
fn cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    stat.split_whitespace().next().and_then(|n| n.parse().ok()).expect("run time")
}

/// CPU nanoseconds per call of `op` on a fresh copy of the request.
fn per_request(iterations: usize, op: &dyn Fn(&mut serde_json::Value, &mut Vault)) -> f64 {
    let body = fixture::request();
    let mut best = f64::MAX;
    // The best of five rounds: interrupts and migrations only ever add time.
    for _ in 0..5 {
        let mut bodies: Vec<_> = (0..iterations).map(|_| (body.clone(), Vault::default())).collect();
        let start = cpu_ns();
        for (b, v) in &mut bodies {
            op(black_box(b), v);
        }
        let spent = cpu_ns() - start;
        best = best.min(spent as f64 / iterations as f64);
    }
    best
}

fn main() {
    let iterations = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(2000);
    let (g, s) = (fixture::guard(), fixture::sanitizer());
    let guard = per_request(iterations, &|b, _| {
        let _ = g.check(Format::OpenAiChat, b);
    });
    let mask = per_request(iterations, &|b, v| {
        s.mask(Format::OpenAiChat, b, v);
    });
    let both = per_request(iterations, &|b, v| {
        let _ = g.check(Format::OpenAiChat, b);
        s.mask(Format::OpenAiChat, b, v);
    });
    println!("prompt_guard         {:>8.2} µs", guard / 1000.0);
    println!("sanitizer_mask       {:>8.2} µs", mask / 1000.0);
    println!("guard_and_sanitizer  {:>8.2} µs  (target: 10)", both / 1000.0);
}

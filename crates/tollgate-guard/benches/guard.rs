//! What the guardrails cost on a typical request: a few-KB chat request of
//! several messages with a little PII, judged by the prompt guard (a few
//! deny and allow patterns) and masked by the sanitizer (every built-in
//! recogniser and one custom pattern), then an answer restored.
//! `cargo bench -p tollgate-guard`.
// Bench code: a failed expect is a broken fixture.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixture;

use criterion::{criterion_group, criterion_main, Criterion};
use fixture::{guard, request, sanitizer, PROSE};
use serde_json::{json, Value};
use std::hint::black_box;
use tollgate_guard::pii::BUILT_IN;
use tollgate_guard::{Format, Recognisers, StreamRestorer, Vault};

fn bench(c: &mut Criterion) {
    let body = request();
    let bytes = serde_json::to_vec(&body).expect("json");
    eprintln!("request: {} bytes", bytes.len());
    let (g, s) = (guard(), sanitizer());
    c.bench_function("prompt_guard", |b| {
        b.iter_batched_ref(|| body.clone(), |v| g.check(Format::OpenAiChat, v), criterion::BatchSize::SmallInput)
    });
    c.bench_function("sanitizer_mask", |b| {
        b.iter_batched_ref(
            || (body.clone(), Vault::default()),
            |(v, vault)| s.mask(Format::OpenAiChat, v, vault),
            criterion::BatchSize::SmallInput,
        )
    });
    c.bench_function("guard_and_sanitizer", |b| {
        b.iter_batched_ref(
            || (body.clone(), Vault::default()),
            |(v, vault)| {
                let _ = g.check(Format::OpenAiChat, v);
                s.mask(Format::OpenAiChat, v, vault)
            },
            criterion::BatchSize::SmallInput,
        )
    });
    c.bench_function("guard_and_sanitizer_with_json_parse_and_write", |b| {
        b.iter(|| {
            let mut v: Value = serde_json::from_slice(black_box(&bytes)).expect("json");
            let mut vault = Vault::default();
            let _ = g.check(Format::OpenAiChat, &mut v);
            s.mask(Format::OpenAiChat, &mut v, &mut vault);
            serde_json::to_vec(&v).expect("json")
        })
    });
    let text: String = PROSE.repeat(20);
    let builtin = Recognisers::new(&BUILT_IN.iter().map(|(_, k)| *k).collect::<Vec<_>>(), &[]).expect("kinds");
    let mut found = Vec::new();
    c.bench_function("pii_find_4kb_prose", |b| b.iter(|| builtin.find(black_box(&text), &mut found)));
    bench_restore(c);
}

fn bench_restore(c: &mut Criterion) {
    let mut vault = Vault::default();
    vault.placeholder("EMAIL", "jane.doe@example.com");
    vault.placeholder("PHONE", "+1 415 555 2671");
    let answer = json!({"choices": [{"message": {"role": "assistant",
        "content": format!("{} Write to <EMAIL_1> or call <PHONE_1>.", PROSE.repeat(4))}}]})
    .to_string();
    c.bench_function("restore_json_answer", |b| b.iter(|| vault.restore_json(black_box(&answer)).len()));
    let pieces: Vec<String> = answer.as_bytes().chunks(16).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    c.bench_function("restore_stream_pieces", |b| {
        b.iter(|| {
            let mut r = StreamRestorer::default();
            let n: usize = pieces.iter().map(|p| r.push(&vault, p).len()).sum();
            n + r.flush().len()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! What the guardrails cost on a typical request: a few-KB chat request of
//! several messages with a little PII, judged by the prompt guard (a few
//! deny and allow patterns) and masked by the sanitizer (every built-in
//! recogniser and one custom pattern), then an answer restored.
//! `cargo bench -p tollgate-guard`.
// Bench code: a failed expect is a broken fixture.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use std::hint::black_box;
use tollgate_guard::guard::PromptGuardOptions;
use tollgate_guard::pii::BUILT_IN;
use tollgate_guard::{Format, PromptGuard, Recognisers, Sanitizer, StreamRestorer, Vault};

/// Prose with the digits and dashes real prompts have (so no text skips the
/// recognisers' scan by having none).
const PROSE: &str = "The Q3 2025 report covers revenue (up 4.2%), churn and the migration of the \
billing service to the new cluster on 14 March. Please summarise the top-3 risks, list the open \
questions for the team and suggest next steps, keeping the tone neutral and the answer under 200 words. ";

/// A chat request of about 4 KB: a system prompt, six turns, PII in two of them.
fn request() -> Value {
    let mut messages = vec![json!({"role": "system", "content": PROSE.repeat(3)})];
    for i in 0..6 {
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        messages.push(json!({"role": role, "content": PROSE.repeat(2)}));
    }
    messages.push(json!({"role": "user", "content": format!(
        "{PROSE} Contact jane.doe@example.com or +1 415 555 2671; card 4111 1111 1111 1111, \
         IBAN DE89 3704 0044 0532 0130 00, server 10.0.0.12, key sk-proj-abcdefghijklmnopqrstuvwxyz0123."
    )}));
    json!({"model": "gpt-4o", "messages": messages})
}

fn guard() -> PromptGuard {
    let deny = ["(?i)ignore (all )?previous instructions", r"\bDROP\s+TABLE\b", "(?i)jailbreak"];
    let allow = ["(?i)report|summar", "(?i)question"];
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    PromptGuard::new(&s(&allow), &s(&deny), PromptGuardOptions { whole_history: true, match_all_roles: false })
        .expect("patterns")
}

fn sanitizer() -> Sanitizer {
    let kinds: Vec<_> = BUILT_IN.iter().map(|(_, k)| *k).collect();
    let custom = vec![("employee".to_string(), r"EMP-\d{6}".to_string())];
    Sanitizer { recognisers: Recognisers::new(&kinds, &custom).expect("patterns"), whole_history: true }
}

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

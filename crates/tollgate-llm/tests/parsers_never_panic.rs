//! Random and mutated bytes fed to every parser: requests, answers and the
//! stream tap give a value or an error, never a panic; the tap passes every
//! complete event through whatever the chunking.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use tollgate_llm::openai::{answer_facts, StreamTap};
use tollgate_llm::{ChatRequest, ModelDefaults};

const STREAM: &str = concat!(
    "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n",
    ": keep-alive\n\n",
    "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\n",
    "data: [DONE]\n\n",
);

fn mutate(base: &[u8], at: usize, bytes: &[u8]) -> Vec<u8> {
    let at = at.min(base.len());
    let mut v = base[..at].to_vec();
    v.extend_from_slice(bytes);
    v.extend_from_slice(&base[at..]);
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn requests_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(req) = ChatRequest::parse(&bytes) {
            let _ = req.prepare_openai(&ModelDefaults::default(), &[]);
            let _ = tollgate_llm::tokens::estimate_prompt_tokens(&req);
        }
    }

    #[test]
    fn mutated_requests_never_panic(at in 0usize..80, ins in proptest::collection::vec(any::<u8>(), 0..8)) {
        let base = br#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"stream":true}"#;
        if let Ok(req) = ChatRequest::parse(&mutate(base, at, &ins)) {
            let _ = req.prepare_openai(&ModelDefaults::default(), &[("k", "v")]);
        }
    }

    #[test]
    fn answers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = answer_facts(&bytes);
    }

    #[test]
    fn the_tap_never_panics_on_garbage(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let mut tap = StreamTap::new(false);
        for c in &chunks {
            let _ = tap.feed(c);
        }
        let _ = tap.finish();
    }

    #[test]
    fn the_tap_output_does_not_depend_on_chunking(cuts in proptest::collection::vec(0usize..STREAM.len(), 0..6)) {
        let whole = {
            let mut t = StreamTap::new(true);
            let mut out = t.feed(STREAM.as_bytes()).to_vec();
            out.extend_from_slice(&t.finish());
            out
        };
        let mut cuts = cuts;
        cuts.sort_unstable();
        let mut t = StreamTap::new(true);
        let mut out = Vec::new();
        let mut start = 0;
        for c in cuts.into_iter().chain([STREAM.len()]) {
            out.extend_from_slice(&t.feed(&STREAM.as_bytes()[start..c]));
            start = c;
        }
        out.extend_from_slice(&t.finish());
        prop_assert_eq!(out, whole);
        prop_assert_eq!(t.usage.map(|u| u.total_tokens), Some(3));
    }
}

//! A provider's stream: the first byte picks the provider, the second how the
//! rest is cut into reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_llm::completion::AnswerMeta;
use tollgate_llm::provider::{stream, Provider};


fuzz_target!(|data: &[u8]| {
    let [first, cut, body @ ..] = data else { return };
    let p = Provider::ALL[*first as usize % Provider::ALL.len()];
    let meta = AnswerMeta { client_wants_usage: cut & 1 == 1, ..AnswerMeta::default() };
    let mut s = stream(p, meta);
    for piece in body.chunks(*cut as usize + 1) {
        let _ = s.feed(piece);
    }
    let _ = s.finish();
    let _ = (s.usage(), s.completed(), s.events());
});

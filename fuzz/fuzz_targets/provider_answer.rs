//! A provider's JSON answer: the first byte picks the provider.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tollgate_llm::completion::AnswerMeta;
use tollgate_llm::provider::{answer, error, Provider};


fuzz_target!(|data: &[u8]| {
    let Some((first, body)) = data.split_first() else { return };
    let p = Provider::ALL[*first as usize % Provider::ALL.len()];
    let _ = answer(p, Bytes::copy_from_slice(body), &AnswerMeta::default());
    let _ = error(p, 500, body);
});

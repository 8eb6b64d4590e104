//! A provider's stream: the first byte picks the provider, the second how the
//! rest is cut into reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_llm::completion::AnswerMeta;
use tollgate_llm::provider::{stream, Provider};

const ALL: [Provider; 9] = [
    Provider::OpenAi,
    Provider::Azure,
    Provider::Anthropic,
    Provider::Gemini,
    Provider::Bedrock,
    Provider::Mistral,
    Provider::Cohere,
    Provider::Ollama,
    Provider::OpenAiCompatible,
];

fuzz_target!(|data: &[u8]| {
    let [first, cut, body @ ..] = data else { return };
    let p = ALL[*first as usize % ALL.len()];
    let meta = AnswerMeta { client_wants_usage: cut & 1 == 1, ..AnswerMeta::default() };
    let mut s = stream(p, meta);
    for piece in body.chunks(*cut as usize + 1) {
        let _ = s.feed(piece);
    }
    let _ = s.finish();
    let _ = (s.usage(), s.completed(), s.events());
});

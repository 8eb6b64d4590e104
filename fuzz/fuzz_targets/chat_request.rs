//! A caller's request body, prepared for every provider.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_llm::provider::{prepare, Provider, ProviderOptions};
use tollgate_llm::{ChatRequest, ModelDefaults};


fuzz_target!(|data: &[u8]| {
    if let Ok(req) = ChatRequest::parse(data) {
        let defaults = ModelDefaults { name: Some("m".into()), ..ModelDefaults::default() };
        for p in Provider::ALL {
            let _ = prepare(p, &req, &defaults, &ProviderOptions::default(), &[]);
        }
        let _ = tollgate_llm::tokens::estimate_prompt_tokens(&req);
    }
});

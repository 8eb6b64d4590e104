//! Random and mutated bytes fed to the embeddings adapters of every provider:
//! `prepare` and `answer` give a value or an error, never a panic.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use proptest::prelude::*;
use tollgate_llm::embeddings::{answer, prepare, EmbeddingsMeta};
use tollgate_llm::provider::{ProviderOptions, VertexOptions};
use tollgate_llm::{ModelDefaults, Provider};

const PROVIDERS: &[&str] =
    &["openai", "azure", "anthropic", "gemini", "bedrock", "mistral", "cohere", "ollama", "openai-compatible"];

/// Models that reach each translation (Bedrock picks one by model id).
const MODELS: &[&str] =
    &["text-embedding-3-small", "amazon.titan-embed-text-v2:0", "cohere.embed-v4:0", "eu.cohere.embed-english-v3"];

/// Valid requests and answers of every shape, to mutate.
const REQUESTS: &[&str] = &[
    r#"{"model":"m","input":["hello","goodbye"],"dimensions":256,"encoding_format":"base64","user":"u"}"#,
    r#"{"input":[[1,2,3],[4]],"encoding_format":"float"}"#,
    r#"{"input":"one"}"#,
];
const ANSWERS: &[&str] = &[
    r#"{"object":"list","data":[{"object":"embedding","embedding":[0.1,-0.2],"index":0}],"model":"m","usage":{"prompt_tokens":8,"total_tokens":8}}"#,
    r#"{"embeddings":[{"values":[0.1,0.2]},{"values":[0.3]}]}"#,
    r#"{"predictions":[{"embeddings":{"statistics":{"truncated":false,"token_count":6},"values":[0.1]}}]}"#,
    r#"{"embedding":[0.1,0.2],"inputTextTokenCount":2}"#,
    r#"{"id":"x","embeddings":{"float":[[0.1],[0.2]]},"meta":{"billed_units":{"input_tokens":2}}}"#,
    r#"{"model":"m","embeddings":[[0.1],[0.2]],"prompt_eval_count":3}"#,
];

fn providers() -> Vec<Provider> {
    PROVIDERS.iter().filter_map(|n| Provider::parse(n)).collect()
}

fn options() -> [ProviderOptions; 2] {
    let vertex = ProviderOptions {
        gemini_vertex: Some(VertexOptions {
            api_endpoint: "us-central1-aiplatform.googleapis.com".into(),
            project_id: "p".into(),
            location_id: "us-central1".into(),
        }),
        azure_instance: Some("i".into()),
        azure_deployment_id: Some("d".into()),
        aws_region: Some("us-east-1".into()),
        ..ProviderOptions::default()
    };
    [ProviderOptions::default(), vertex]
}

fn mutate(base: &[u8], at: usize, bytes: &[u8]) -> Vec<u8> {
    let at = at.min(base.len());
    let mut v = base[..at].to_vec();
    v.extend_from_slice(bytes);
    v.extend_from_slice(&base[at..]);
    v
}

fn prepare_everywhere(body: &[u8]) {
    for p in providers() {
        for opts in &options() {
            let _ = prepare(p, body, &ModelDefaults::default(), opts);
            for m in MODELS {
                let d = ModelDefaults { name: Some((*m).to_string()), ..ModelDefaults::default() };
                if let Ok(call) = prepare(p, body, &d, opts) {
                    // A prepared call's meta answers a well-formed answer without panicking.
                    for a in ANSWERS {
                        let _ = answer(p, Bytes::from_static(a.as_bytes()), &call.meta);
                    }
                }
            }
        }
    }
}

fn answer_everywhere(body: &[u8], inputs: usize, base64: bool) {
    let meta = EmbeddingsMeta { model: "m".into(), inputs, base64, estimated_prompt_tokens: 5 };
    for p in providers() {
        let _ = answer(p, Bytes::copy_from_slice(body), &meta);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_requests_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        prepare_everywhere(&bytes);
    }

    #[test]
    fn mutated_requests_never_panic(which in 0usize..3, at in 0usize..120, ins in proptest::collection::vec(any::<u8>(), 0..8)) {
        prepare_everywhere(&mutate(REQUESTS[which].as_bytes(), at, &ins));
    }

    #[test]
    fn random_answers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), inputs in 0usize..4, base64 in any::<bool>()) {
        answer_everywhere(&bytes, inputs, base64);
    }

    #[test]
    fn mutated_answers_never_panic(which in 0usize..6, at in 0usize..160, ins in proptest::collection::vec(any::<u8>(), 0..8), inputs in 0usize..4, base64 in any::<bool>()) {
        answer_everywhere(&mutate(ANSWERS[which].as_bytes(), at, &ins), inputs, base64);
    }
}

//! Property tests: `Validator::validate` and `Jwks::parse` return errors, never
//! panic, on arbitrary input — from raw garbage to structurally plausible tokens and
//! key sets with random field values.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::{json, Value};
use tollgate_auth::Jwks;

/// Short JSON values of every type, for header, claim and JWK fields.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::from),
        prop_oneof![
            Just("ES256"),
            Just("RS256"),
            Just("none"),
            Just("HS256"),
            Just("RSA"),
            Just("EC"),
            Just("P-256"),
            Just("AQAB"),
            Just("sig")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object whose fields are drawn from the names the code looks at.
fn json_object_with(names: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(names), json_value()), 0..8)
        .prop_map(|fields| Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

const HEADER_FIELDS: &[&str] = &["alg", "typ", "kid", "crit", "cty"];
const CLAIM_FIELDS: &[&str] = &["iss", "aud", "exp", "nbf", "iat", "sub", "scope", "scp"];
const JWK_FIELDS: &[&str] = &["kty", "crv", "x", "y", "n", "e", "use", "alg", "kid", "key_ops"];

proptest! {
    #[test]
    fn validate_never_panics_on_strings(token in ".{0,300}", now in any::<u64>()) {
        let _ = validator().validate(&token, &rsa_jwks(), now);
    }

    #[test]
    fn validate_never_panics_on_base64_segments(
        h in prop::collection::vec(any::<u8>(), 0..64),
        p in prop::collection::vec(any::<u8>(), 0..64),
        s in prop::collection::vec(any::<u8>(), 0..300),
        now in any::<u64>(),
    ) {
        let token = format!("{}.{}.{}", b64(&h), b64(&p), b64(&s));
        let _ = validator().validate(&token, &rsa_jwks(), now);
    }

    #[test]
    fn validate_never_panics_on_json_segments(
        header in json_object_with(HEADER_FIELDS),
        claims in json_object_with(CLAIM_FIELDS),
        s in prop::collection::vec(any::<u8>(), 0..300),
        now in any::<u64>(),
        leeway in any::<u64>(),
    ) {
        let mut v = validator();
        v.leeway_secs = leeway;
        v.required_scopes = vec!["a".into()];
        let token = format!("{}.{}", signing_input(&header, &claims), b64(&s));
        let _ = v.validate(&token, &rsa_jwks(), now);
    }

    /// Validly signed tokens with random claims reach every claim check.
    #[test]
    fn validate_never_panics_on_signed_random_claims(
        claims in json_object_with(CLAIM_FIELDS),
        now in any::<u64>(),
        leeway in any::<u64>(),
    ) {
        thread_local! { static KEY: EcKey = EcKey::generate("k"); }
        KEY.with(|key| {
            let jwks = jwks_of(&[key.jwk()]);
            let mut v = validator();
            v.leeway_secs = leeway;
            v.required_scopes = vec!["a".into()];
            let _ = v.validate(&key.token(&claims), &jwks, now);
        });
    }

    #[test]
    fn jwks_parse_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Jwks::parse(&bytes);
    }

    #[test]
    fn jwks_parse_never_panics_on_random_keys(keys in prop::collection::vec(json_object_with(JWK_FIELDS), 0..6)) {
        let _ = Jwks::parse(json!({ "keys": keys }).to_string().as_bytes());
    }
}

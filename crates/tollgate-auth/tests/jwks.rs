//! JWK Set parsing: which keys are kept, which are skipped and counted, and which
//! documents are refused outright.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use tollgate_auth::{Jwks, JwksError};

#[test]
fn fixture_rsa_set_parses() {
    let jwks = rsa_jwks();
    assert_eq!(jwks.len(), 1);
    assert!(!jwks.is_empty());
    assert_eq!(jwks.skipped(), 0);
    assert_eq!(jwks.kids().collect::<Vec<_>>(), vec![RSA_KID]);
}

#[test]
fn unsupported_keys_are_skipped_and_counted() {
    let ec = EcKey::generate("ec");
    let mut enc_rsa = rsa_jwk();
    enc_rsa["use"] = json!("enc");
    enc_rsa["kid"] = json!("enc");
    let mut oaep = rsa_jwk();
    oaep["alg"] = json!("RSA-OAEP");
    oaep.as_object_mut().expect("object").remove("use");
    let mut encrypt_only = rsa_jwk();
    encrypt_only["key_ops"] = json!(["encrypt", "wrapKey"]);
    let mut rsa_claims_es256 = rsa_jwk();
    rsa_claims_es256["alg"] = json!("ES256");
    let mut p384 = ec.jwk();
    p384["crv"] = json!("P-384");
    let mut short_x = ec.jwk();
    short_x["x"] = json!(b64(&[1u8; 31]));
    let weak_rsa = json!({"kty": "RSA", "n": b64(&[0xffu8; 128]), "e": "AQAB"});
    let keys = [
        ec.jwk(),
        rsa_jwk(),
        json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}),
        json!({"kty": "oct", "k": "c2VjcmV0"}),
        json!("not an object"),
        json!({"n": "AQAB", "e": "AQAB"}),
        json!({"kty": "RSA", "n": "!!!", "e": "AQAB"}),
        enc_rsa,
        oaep,
        encrypt_only,
        rsa_claims_es256,
        p384,
        short_x,
        weak_rsa,
    ];
    let jwks = Jwks::parse(json!({ "keys": keys }).to_string().as_bytes()).expect("two usable keys");
    assert_eq!(jwks.len(), 2);
    assert_eq!(jwks.skipped(), keys.len() - 2);
    assert_eq!(jwks.kids().collect::<Vec<_>>(), vec!["ec", RSA_KID]);
}

#[test]
fn set_with_nothing_usable_is_an_error() {
    let doc = json!({"keys": [
        {"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"},
        {"kty": "OKP", "crv": "X25519", "x": "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"},
    ]});
    assert_eq!(Jwks::parse(doc.to_string().as_bytes()).map(|_| ()), Err(JwksError::NoUsableKeys { skipped: 2 }));
    assert_eq!(Jwks::parse(br#"{"keys":[]}"#).map(|_| ()), Err(JwksError::NoUsableKeys { skipped: 0 }));
}

#[test]
fn non_jwks_documents_are_malformed() {
    for doc in [&b""[..], b"null", b"[]", b"{}", br#"{"keys":{}}"#, b"\xff\xfe", br#"{"keys":[}"#] {
        assert!(matches!(Jwks::parse(doc), Err(JwksError::Malformed(_))), "{doc:?}");
    }
    let deep = format!("{{\"keys\":[{}{}]}}", "[".repeat(1000), "]".repeat(1000));
    assert!(matches!(Jwks::parse(deep.as_bytes()), Err(JwksError::Malformed(_))));
}

#[test]
fn size_and_key_count_are_bounded() {
    let huge = vec![b' '; Jwks::MAX_BYTES + 1];
    assert_eq!(Jwks::parse(&huge).map(|_| ()), Err(JwksError::TooLarge));
    let many: Vec<_> = (0..=Jwks::MAX_KEYS).map(|_| rsa_jwk()).collect();
    assert_eq!(Jwks::parse(json!({ "keys": many }).to_string().as_bytes()).map(|_| ()), Err(JwksError::TooManyKeys));
}

#[test]
fn padded_base64_and_leading_zero_modulus_are_tolerated() {
    use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine;
    let mut jwk = rsa_jwk();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().expect("n")).expect("b64");
    let mut padded_n = vec![0u8];
    padded_n.extend_from_slice(&n);
    jwk["n"] = json!(URL_SAFE.encode(&padded_n));
    jwk["e"] = json!("AQAB");
    let jwks = jwks_of(&[jwk]);
    let token = rsa_token("RS256", &json!({"alg": "RS256", "kid": RSA_KID}), &good_claims());
    assert!(validator().validate(&token, &jwks, NOW).is_ok());
}

#[test]
fn duplicate_kids_are_all_tried() {
    let a = EcKey::generate("same");
    let b = EcKey::generate("same");
    let jwks = jwks_of(&[a.jwk(), b.jwk()]);
    assert!(validator().validate(&b.token(&good_claims()), &jwks, NOW).is_ok());
}

//! Shared helpers: keys and token signing for the integration tests. ES256 keys are
//! generated per test run; the RSA key is a checked-in, test-only fixture (see
//! `tests/fixtures/README.md`), because generating RSA keys is not something ring does.
#![allow(dead_code)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{json, Value};
use tollgate_auth::{Jwks, Validator};

pub const ISS: &str = "https://auth.example.com";
pub const AUD: &str = "https://gw.example.com/mcp";
pub const NOW: u64 = 1_750_000_000;

pub const RSA_PEM: &str = include_str!("../fixtures/rsa-2048-test-key.pem");
pub const RSA_JWKS: &str = include_str!("../fixtures/rsa-2048-test-jwks.json");
pub const RSA_KID: &str = "test-rsa-1";

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn validator() -> Validator {
    Validator::new(ISS, vec![AUD.to_owned()])
}

/// Claims that pass every check of [`validator`] at [`NOW`].
pub fn good_claims() -> Value {
    json!({
        "iss": ISS,
        "aud": AUD,
        "sub": "user-42",
        "client_id": "mcp-client",
        "iat": NOW - 10,
        "nbf": NOW - 10,
        "exp": NOW + 300,
        "scope": "tools:read tools:call",
    })
}

/// `header.payload` for the given JSON values.
pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()))
}

pub struct EcKey {
    pub pair: EcdsaKeyPair,
    pub kid: String,
}

impl EcKey {
    pub fn generate(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("generate P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("load P-256 key");
        Self { pair, kid: kid.to_owned() }
    }

    /// The public key as a JWK: uncompressed point `04 || x || y` split into x and y.
    pub fn jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        assert_eq!(point.len(), 65);
        json!({
            "kty": "EC",
            "crv": "P-256",
            "use": "sig",
            "alg": "ES256",
            "kid": self.kid,
            "x": b64(&point[1..33]),
            "y": b64(&point[33..65]),
        })
    }

    pub fn sign(&self, input: &str) -> Vec<u8> {
        self.pair.sign(&SystemRandom::new(), input.as_bytes()).expect("ES256 sign").as_ref().to_vec()
    }

    /// A signed ES256 token with this key's `kid`.
    pub fn token(&self, claims: &Value) -> String {
        self.token_with_header(&json!({"alg": "ES256", "typ": "at+jwt", "kid": self.kid}), claims)
    }

    pub fn token_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let sig = self.sign(&input);
        format!("{input}.{}", b64(&sig))
    }
}

pub fn jwks_of(keys: &[Value]) -> Jwks {
    Jwks::parse(json!({ "keys": keys }).to_string().as_bytes()).expect("valid JWKS")
}

pub fn rsa_pair() -> RsaKeyPair {
    let body: String = RSA_PEM.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(body).expect("PEM base64");
    RsaKeyPair::from_pkcs8(&der).expect("PKCS#8 RSA key")
}

pub fn rsa_jwks() -> Jwks {
    Jwks::parse(RSA_JWKS.as_bytes()).expect("fixture JWKS")
}

/// The fixture's JWK as JSON, for tests that alter it.
pub fn rsa_jwk() -> Value {
    let set: Value = serde_json::from_str(RSA_JWKS).expect("fixture JSON");
    set["keys"][0].clone()
}

/// A token signed with the fixture RSA key; `alg` is one of RS256/RS384/RS512.
pub fn rsa_token(alg: &str, header: &Value, claims: &Value) -> String {
    let padding: &'static dyn signature::RsaEncoding = match alg {
        "RS256" => &signature::RSA_PKCS1_SHA256,
        "RS384" => &signature::RSA_PKCS1_SHA384,
        "RS512" => &signature::RSA_PKCS1_SHA512,
        other => panic!("not an RSA alg: {other}"),
    };
    let pair = rsa_pair();
    let input = signing_input(header, claims);
    let mut sig = vec![0u8; pair.public().modulus_len()];
    pair.sign(padding, &SystemRandom::new(), input.as_bytes(), &mut sig).expect("RSA sign");
    format!("{input}.{}", b64(&sig))
}

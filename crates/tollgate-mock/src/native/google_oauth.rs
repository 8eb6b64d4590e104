//! Google's OAuth 2.0 token endpoint for service accounts (`POST
//! /oauth2/token`, the `token_uri` of a service-account key): a JWT-bearer
//! grant in, an access token out. The mock checks the grant's form, not the
//! signature (the gateway's own tests verify that), and numbers its tokens so
//! tests can see when the gateway fetched a new one.
//! Shapes: https://developers.google.com/identity/protocols/oauth2/service-account#httprest

use http::StatusCode;
use serde_json::json;

use crate::reply::Reply;
use crate::state::AppState;

pub const PATH: &str = "/oauth2/token";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

pub fn token(state: &AppState, body: &[u8]) -> Reply {
    let form = String::from_utf8_lossy(body);
    let field = |name: &str| {
        form.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.replace("%3A", ":").replace("%3a", ":"))
    };
    let grant_ok = field("grant_type").as_deref() == Some(GRANT);
    let assertion_ok = field("assertion").is_some_and(|a| a.split('.').count() == 3);
    if !grant_ok || !assertion_ok {
        let error = json!({"error": "invalid_grant", "error_description": "mock: expected a JWT-bearer grant with a signed assertion"});
        return Reply::json(StatusCode::BAD_REQUEST, error.to_string().into_bytes());
    }
    let n = state.next_id();
    let answer = json!({"access_token": format!("ya29.mock-{n}"), "expires_in": 3599, "token_type": "Bearer"});
    Reply::json(StatusCode::OK, answer.to_string().into_bytes())
}

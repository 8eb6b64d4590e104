//! Test control API under `/_mock/`. Never recorded, never affected by the
//! configured behaviour (a test must always be able to repair the mock).

use http::{Method, StatusCode};

use crate::behavior::BehaviorPatch;
use crate::reply::Reply;
use crate::state::AppState;

fn control_error(status: StatusCode, message: &str) -> Reply {
    Reply::json_value(
        status,
        &serde_json::json!({"error": {"message": message, "type": "invalid_request_error", "code": null}}),
    )
}

/// `rest` is the path after `/_mock/`.
pub fn handle(state: &AppState, method: &Method, rest: &str, body: &[u8]) -> Reply {
    match (method, rest.trim_end_matches('/')) {
        (&Method::POST, "behavior") => {
            // An empty body is an empty patch, handy for `curl -X POST`.
            let patch: BehaviorPatch = if body.iter().all(u8::is_ascii_whitespace) {
                BehaviorPatch::default()
            } else {
                match serde_json::from_slice(body) {
                    Ok(p) => p,
                    Err(e) => return control_error(StatusCode::BAD_REQUEST, &format!("invalid behavior: {e}")),
                }
            };
            let mut b = state.behavior();
            match b.apply(&patch) {
                Ok(()) => Reply::json_value(StatusCode::OK, &b.snapshot()),
                Err(e) => control_error(StatusCode::BAD_REQUEST, &e),
            }
        }
        (&Method::GET, "behavior") => Reply::json_value(StatusCode::OK, &state.behavior().snapshot()),
        (&Method::POST, "reset") => {
            state.reset();
            Reply::json(StatusCode::OK, &br#"{"ok":true}"#[..])
        }
        (&Method::GET, "requests") => match &state.recorder {
            Some(r) => Reply::json(StatusCode::OK, r.to_json()),
            None => Reply::json(StatusCode::OK, &b"[]"[..]),
        },
        (&Method::DELETE, "requests") => {
            if let Some(r) = &state.recorder {
                r.clear();
            }
            Reply::json(StatusCode::OK, &br#"{"ok":true}"#[..])
        }
        (&Method::GET, "stats") => Reply::json_value(StatusCode::OK, &state.stats.snapshot()),
        _ => control_error(StatusCode::NOT_FOUND, &format!("no control endpoint {method} /_mock/{rest}")),
    }
}

//! The webhook guardrail's call, through the gateway's one HTTP client
//! (`upstream::fetch`): bounded by the plugin's timeout as a whole.

use bytes::Bytes;
use tollgate_guard::webhook::{parse_verdict, request_body, Verdict};
use tollgate_guard::Role;

use super::rt::WebhookRt;
use crate::upstream::fetch::Fetch;

/// The service's verdict on `texts` of the `phase` (`request`, `response`), or why there is none.
pub(super) async fn call(
    w: &WebhookRt,
    phase: &str,
    format: &str,
    texts: &[(Role, String)],
) -> Result<Verdict, String> {
    let body = Bytes::from(request_body(phase, format, texts));
    match Fetch::shared().post(&w.endpoint, "application/json", body, &w.headers, w.timeout).await {
        Ok((status, answer)) => parse_verdict(status, &answer, texts.len()),
        Err(e) => Err(e.to_string()),
    }
}

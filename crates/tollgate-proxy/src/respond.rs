//! Answers the gateway writes itself: errors and small JSON bodies.

use bytes::Bytes;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

pub type PResult<T> = pingora_error::Result<T>;

/// Writes a complete response with a body and Content-Length.
pub async fn send(
    session: &mut Session,
    status: u16,
    content_type: &str,
    body: Bytes,
    headers: &[(&str, &str)],
) -> PResult<()> {
    let mut resp = ResponseHeader::build(status, Some(4 + headers.len()))?;
    resp.insert_header("content-type", content_type)?;
    resp.insert_header("content-length", body.len().to_string())?;
    for (k, v) in headers {
        resp.append_header(k.to_string(), *v)?;
    }
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await?;
    Ok(())
}

/// Borrowed views of owned header pairs, for `send`.
pub fn as_refs(h: &[(String, String)]) -> Vec<(&str, &str)> {
    h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Kong's error shape, `{"message": ...}`, for routes that are not LLM routes.
pub fn kong_error_body(message: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "message": message }).to_string())
}

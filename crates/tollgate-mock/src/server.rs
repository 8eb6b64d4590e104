//! Connection handling and routing on hyper's HTTP/1.1 server.
//!
//! hyper is used directly (not axum) because `reset_before_headers` must
//! reset the TCP connection itself: each connection's socket is wrapped in
//! [`ConnIo`], which sets SO_LINGER=0 on drop when the handler asked for a
//! reset, so closing it sends RST instead of FIN.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::behavior::Fault;
use crate::body::MockBody;
use crate::record::RecordedRequest;
use crate::reply::Reply;
use crate::state::AppState;
use crate::{control, openai};

/// Request bodies above this are refused (a mock has no business buffering more).
const MAX_REQUEST_BODY: usize = 64 << 20;

/// Accept loop; runs until the task is dropped.
pub async fn serve(listener: TcpListener, state: Arc<AppState>) -> io::Result<()> {
    let mut builder = http1::Builder::new();
    builder.keep_alive(true);
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            // Typically EMFILE under a benchmark: back off instead of spinning
            // or dying, the descriptors come back as connections close.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // SSE events are small writes that must leave immediately.
        let _ = stream.set_nodelay(true);
        let reset = Arc::new(AtomicBool::new(false));
        let io = TokioIo::new(ConnIo {
            tcp: stream,
            reset: reset.clone(),
        });
        let state = state.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(state.clone(), reset.clone(), req));
            // Errors here are client disconnects or our deliberate aborts.
            let _ = builder.serve_connection(io, svc).await;
        });
    }
}

/// Returned by the service to make hyper drop the connection without a response.
#[derive(Debug)]
struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mock fault: reset before headers")
    }
}

impl std::error::Error for ResetConnection {}

/// Which model endpoint a request hits. New providers add variants here and
/// a module beside `openai`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    OpenAiChat,
    OpenAiEmbeddings,
}

fn route(path: &str) -> Option<Endpoint> {
    // Suffix match so Azure-style and prefixed paths
    // (`/openai/deployments/x/chat/completions`, `/openai/v1/...`) work too.
    if path.ends_with("/chat/completions") {
        Some(Endpoint::OpenAiChat)
    } else if path.ends_with("/embeddings") {
        Some(Endpoint::OpenAiEmbeddings)
    } else {
        None
    }
}

async fn handle(
    state: Arc<AppState>,
    reset: Arc<AtomicBool>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, ResetConnection> {
    let (parts, body) = req.into_parts();
    let stats = &state.stats;
    let body: Bytes = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let status = if e.is::<http_body_util::LengthLimitError>() {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            return Ok(openai::error(
                status,
                "cannot read request body",
                "invalid_request_error",
                None,
            )
            .into_response(stats, false));
        }
    };
    let path = parts.uri.path();

    if let Some(rest) = path.strip_prefix("/_mock/") {
        return Ok(control::handle(&state, &parts.method, rest, &body).into_response(stats, false));
    }
    if path == "/health" {
        return Ok(Reply::text(StatusCode::OK, "ok").into_response(stats, false));
    }
    if let Some(r) = &state.recorder {
        r.push(RecordedRequest::new(&parts, &body));
    }
    let Some(endpoint) = route(path) else {
        return Ok(openai::error(
            StatusCode::NOT_FOUND,
            &format!("mock: no route for {} {path}", parts.method),
            "invalid_request_error",
            Some("not_found"),
        )
        .into_response(stats, false));
    };
    if parts.method != Method::POST {
        return Ok(openai::error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("mock: {} requires POST", path),
            "invalid_request_error",
            None,
        )
        .into_response(stats, false));
    }

    let behavior = state.begin_model_request();
    if behavior.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(behavior.latency_ms)).await;
    }
    let truncate = match behavior.fault {
        None => false,
        Some(Fault::ResetMidBody | Fault::ResetMidStream) => true,
        Some(Fault::ResetBeforeHeaders) => {
            reset.store(true, Ordering::Relaxed);
            return Err(ResetConnection);
        }
        Some(Fault::Garbage) => {
            return Ok(Reply::json(StatusCode::OK, &b"this is not json {\"choices\": ["[..])
                .into_response(stats, false))
        }
        Some(Fault::EmptyBody) => {
            return Ok(Reply::json(StatusCode::OK, Bytes::new()).into_response(stats, false))
        }
        Some(Fault::Html) => {
            return Ok(Reply::html(
                StatusCode::BAD_GATEWAY,
                &b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>\n"[..],
            )
            .into_response(stats, false))
        }
    };

    let error_status = behavior
        .error_status()
        .and_then(|s| StatusCode::from_u16(s).ok());
    let reply = match (error_status, endpoint) {
        (Some(status), _) => openai::mock_error(status, &behavior),
        (None, Endpoint::OpenAiChat) => openai::chat(&state, &behavior, &body),
        (None, Endpoint::OpenAiEmbeddings) => openai::embeddings(&body),
    };
    let mut resp = reply.into_response(stats, truncate);
    if error_status.is_some() {
        if let Some(v) = behavior
            .retry_after
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            resp.headers_mut().insert(RETRY_AFTER, v);
        }
    }
    Ok(resp)
}

/// The connection's socket. On drop, if a handler requested a reset, zero
/// linger makes the kernel answer the close with RST instead of FIN.
struct ConnIo {
    tcp: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Relaxed) {
            let _ = self.tcp.set_zero_linger();
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_suffix() {
        assert_eq!(route("/v1/chat/completions"), Some(Endpoint::OpenAiChat));
        assert_eq!(
            route("/openai/deployments/gpt/chat/completions"),
            Some(Endpoint::OpenAiChat)
        );
        assert_eq!(route("/v1/embeddings"), Some(Endpoint::OpenAiEmbeddings));
        assert_eq!(route("/v1/models"), None);
    }
}

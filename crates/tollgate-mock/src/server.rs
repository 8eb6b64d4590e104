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

use crate::behavior::{Behavior, Fault};
use crate::body::MockBody;
use crate::native::{anthropic, bedrock, cohere, gemini, google_oauth, ollama};
use crate::record::RecordedRequest;
use crate::reply::Reply;
use crate::state::AppState;
use crate::{control, openai, responses};

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
        let io = TokioIo::new(ConnIo { tcp: stream, reset: reset.clone() });
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

/// Which model endpoint a request hits, with what its path says (model,
/// deployment, streaming method). Path parts are borrowed raw, i.e. still
/// percent-encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint<'a> {
    /// OpenAI and Mistral `/v1/chat/completions`; Azure OpenAI
    /// `/openai/deployments/{deployment}/chat/completions`.
    OpenAiChat { deployment: Option<&'a str>, dialect: openai::Dialect },
    /// OpenAI and Mistral `/v1/embeddings`; Azure OpenAI
    /// `/openai/deployments/{deployment}/embeddings`.
    OpenAiEmbeddings { deployment: Option<&'a str>, dialect: openai::Dialect },
    /// Anthropic `/v1/messages`.
    AnthropicMessages,
    /// Anthropic `/v1/messages/count_tokens`.
    AnthropicCountTokens,
    /// OpenAI Responses API `/v1/responses` (Azure: `/openai/v1/responses`).
    OpenAiResponses,
    /// Gemini `/v1beta/models/{model}:generateContent` or
    /// `:streamGenerateContent`, and the same under a Vertex AI path.
    Gemini { model: &'a str, stream: bool },
    /// Gemini `/v1beta/models/{model}:batchEmbedContents`.
    GeminiEmbed { model: &'a str },
    /// Vertex AI `.../publishers/google/models/{model}:predict` (text embeddings).
    VertexPredict { model: &'a str },
    /// Bedrock `/model/{modelId}/converse` or `/converse-stream`.
    BedrockConverse { model_id: &'a str, stream: bool },
    /// Bedrock `/model/{modelId}/invoke` (embeddings models).
    BedrockInvoke { model_id: &'a str },
    /// Cohere `/v2/chat`.
    CohereChat,
    /// Cohere `/v2/embed`.
    CohereEmbed,
    /// Ollama `/api/chat`.
    OllamaChat,
    /// Ollama `/api/embed`.
    OllamaEmbed,
}

/// The Azure deployment named by a path prefix (`.../deployments/{d}`).
fn deployment(prefix: &str) -> Option<&str> {
    prefix.rsplit_once("/deployments/").map(|(_, d)| d).filter(|d| !d.is_empty() && !d.contains('/'))
}

fn route(path: &str) -> Option<Endpoint<'_>> {
    // Suffix matches, so prefixed paths (`/openai/v1/chat/completions`, a
    // gateway's base path) work too.
    let dialect = if path.starts_with("/mistral/") { openai::Dialect::Mistral } else { openai::Dialect::OpenAi };
    if let Some(rest) = path.strip_suffix("/chat/completions") {
        let deployment = deployment(rest);
        return Some(Endpoint::OpenAiChat { deployment, dialect });
    }
    if let Some(rest) = path.strip_suffix("/embeddings") {
        let deployment = deployment(rest);
        return Some(Endpoint::OpenAiEmbeddings { deployment, dialect });
    }
    if path.ends_with("/v1/messages") {
        return Some(Endpoint::AnthropicMessages);
    }
    if path.ends_with("/v1/messages/count_tokens") {
        return Some(Endpoint::AnthropicCountTokens);
    }
    if path.ends_with("/responses") {
        return Some(Endpoint::OpenAiResponses);
    }
    if path.ends_with("/v2/chat") {
        return Some(Endpoint::CohereChat);
    }
    if path.ends_with("/v2/embed") {
        return Some(Endpoint::CohereEmbed);
    }
    if path.ends_with("/api/chat") {
        return Some(Endpoint::OllamaChat);
    }
    if path.ends_with("/api/embed") {
        return Some(Endpoint::OllamaEmbed);
    }
    if let Some(rest) = path.strip_prefix("/model/") {
        return Some(if let Some(m) = rest.strip_suffix("/converse-stream") {
            Endpoint::BedrockConverse { model_id: m, stream: true }
        } else if let Some(m) = rest.strip_suffix("/converse") {
            Endpoint::BedrockConverse { model_id: m, stream: false }
        } else if let Some(m) = rest.strip_suffix("/invoke") {
            Endpoint::BedrockInvoke { model_id: m }
        } else {
            return None;
        });
    }
    if let Some((prefix, method)) = path.rsplit_once(':') {
        let (_, model) = prefix.rsplit_once("/models/")?;
        if model.is_empty() || model.contains('/') {
            return None;
        }
        return match method {
            "generateContent" => Some(Endpoint::Gemini { model, stream: false }),
            "streamGenerateContent" => Some(Endpoint::Gemini { model, stream: true }),
            "batchEmbedContents" => Some(Endpoint::GeminiEmbed { model }),
            "predict" => Some(Endpoint::VertexPredict { model }),
            _ => None,
        };
    }
    None
}

impl Endpoint<'_> {
    /// An error in the endpoint's own format.
    fn error(self, status: StatusCode, message: &str) -> Reply {
        match self {
            Endpoint::OpenAiChat { .. } | Endpoint::OpenAiEmbeddings { .. } => {
                openai::error(status, message, "invalid_request_error", None)
            }
            Endpoint::OpenAiResponses => responses::error(status, message, None, None),
            Endpoint::AnthropicMessages | Endpoint::AnthropicCountTokens => anthropic::error(status, message),
            Endpoint::Gemini { .. } | Endpoint::GeminiEmbed { .. } | Endpoint::VertexPredict { .. } => {
                gemini::error(status, message)
            }
            Endpoint::BedrockConverse { .. } | Endpoint::BedrockInvoke { .. } => bedrock::error(status, message),
            Endpoint::CohereChat | Endpoint::CohereEmbed => cohere::error(status, message),
            Endpoint::OllamaChat | Endpoint::OllamaEmbed => ollama::error(status, message),
        }
    }

    /// The answer to a behaviour with an error status.
    fn mock_error(self, status: StatusCode, behavior: &Behavior) -> Reply {
        match self {
            Endpoint::OpenAiChat { .. } | Endpoint::OpenAiEmbeddings { .. } => openai::mock_error(status, behavior),
            Endpoint::OpenAiResponses => responses::mock_error(status, behavior),
            Endpoint::AnthropicMessages | Endpoint::AnthropicCountTokens => anthropic::mock_error(status, behavior),
            Endpoint::Gemini { .. } | Endpoint::GeminiEmbed { .. } | Endpoint::VertexPredict { .. } => {
                gemini::mock_error(status, behavior)
            }
            Endpoint::BedrockConverse { .. } | Endpoint::BedrockInvoke { .. } => bedrock::mock_error(status, behavior),
            Endpoint::CohereChat | Endpoint::CohereEmbed => cohere::mock_error(status, behavior),
            Endpoint::OllamaChat | Endpoint::OllamaEmbed => ollama::mock_error(status, behavior),
        }
    }

    fn answer(self, state: &AppState, behavior: &Behavior, query: Option<&str>, body: &[u8]) -> Reply {
        match self {
            Endpoint::OpenAiChat { deployment, dialect } => openai::chat(state, behavior, body, deployment, dialect),
            Endpoint::OpenAiEmbeddings { deployment, dialect } => openai::embeddings(state, body, deployment, dialect),
            Endpoint::OpenAiResponses => responses::create(state, behavior, body),
            Endpoint::AnthropicMessages => anthropic::messages(state, behavior, body),
            Endpoint::AnthropicCountTokens => anthropic::count_tokens(body),
            Endpoint::Gemini { model, stream } => {
                gemini::generate(state, behavior, body, model, gemini::Framing::of(stream, query))
            }
            Endpoint::GeminiEmbed { model } => gemini::batch_embed(state, body, model),
            Endpoint::VertexPredict { model } => gemini::predict(state, body, model),
            Endpoint::BedrockConverse { model_id, stream } => {
                bedrock::converse(state, behavior, body, model_id, stream)
            }
            Endpoint::BedrockInvoke { model_id } => bedrock::invoke(state, body, model_id),
            Endpoint::CohereChat => cohere::chat(state, behavior, body),
            Endpoint::CohereEmbed => cohere::embed(state, body),
            Endpoint::OllamaChat => ollama::chat(state, behavior, body),
            Endpoint::OllamaEmbed => ollama::embed(state, behavior, body),
        }
    }
}

/// An error for a request whose endpoint may be unknown (OpenAI's shape then).
fn error_reply(endpoint: Option<Endpoint<'_>>, status: StatusCode, message: &str) -> Reply {
    match endpoint {
        Some(e) => e.error(status, message),
        None => openai::error(status, message, "invalid_request_error", None),
    }
}

async fn handle(
    state: Arc<AppState>,
    reset: Arc<AtomicBool>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, ResetConnection> {
    let (parts, body) = req.into_parts();
    let stats = &state.stats;
    let path = parts.uri.path();
    let endpoint = route(path);
    let body: Bytes = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let status = if e.is::<http_body_util::LengthLimitError>() {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            return Ok(error_reply(endpoint, status, "cannot read request body").into_response(stats, false));
        }
    };

    if let Some(rest) = path.strip_prefix("/_mock/") {
        return Ok(control::handle(&state, &parts.method, rest, &body).into_response(stats, false));
    }
    if path == "/health" {
        stats.health_checks.fetch_add(1, Ordering::Relaxed);
        let status = StatusCode::from_u16(state.behavior().health_status()).unwrap_or(StatusCode::OK);
        let text = if status.is_success() { "ok" } else { "unhealthy" };
        return Ok(Reply::text(status, text).into_response(stats, false));
    }
    if let Some(r) = &state.recorder {
        r.push(RecordedRequest::new(&parts, &body));
    }
    if path == google_oauth::PATH && parts.method == Method::POST {
        return Ok(google_oauth::token(&state, &body).into_response(stats, false));
    }
    let Some(endpoint) = endpoint else {
        return Ok(openai::error(
            StatusCode::NOT_FOUND,
            &format!("mock: no route for {} {path}", parts.method),
            "invalid_request_error",
            Some("not_found"),
        )
        .into_response(stats, false));
    };
    if parts.method != Method::POST {
        return Ok(endpoint
            .error(StatusCode::METHOD_NOT_ALLOWED, &format!("mock: {path} requires POST"))
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

    let error_status = behavior.error_status().and_then(|s| StatusCode::from_u16(s).ok());
    let reply = match error_status {
        Some(status) => endpoint.mock_error(status, &behavior),
        None => endpoint.answer(&state, &behavior, parts.uri.query(), &body),
    };
    let mut resp = reply.into_response(stats, truncate);
    if error_status.is_some() {
        if let Some(v) = behavior.retry_after.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
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
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
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
        let chat = Some(Endpoint::OpenAiChat { deployment: None, dialect: openai::Dialect::OpenAi });
        assert_eq!(route("/v1/chat/completions"), chat);
        assert_eq!(route("/openai/v1/chat/completions"), chat);
        assert_eq!(
            route("/openai/deployments/gpt-4o/chat/completions"),
            Some(Endpoint::OpenAiChat { deployment: Some("gpt-4o"), dialect: openai::Dialect::OpenAi })
        );
        let embeddings = |deployment, dialect| Some(Endpoint::OpenAiEmbeddings { deployment, dialect });
        assert_eq!(route("/v1/embeddings"), embeddings(None, openai::Dialect::OpenAi));
        assert_eq!(route("/openai/deployments/emb/embeddings"), embeddings(Some("emb"), openai::Dialect::OpenAi));
        assert_eq!(route("/mistral/v1/embeddings"), embeddings(None, openai::Dialect::Mistral));
        assert_eq!(route("/v1/models"), None);
        assert_eq!(route("/v1/responses"), Some(Endpoint::OpenAiResponses));
        assert_eq!(route("/openai/v1/responses"), Some(Endpoint::OpenAiResponses));
    }

    #[test]
    fn routes_native_formats() {
        assert_eq!(route("/v1/messages"), Some(Endpoint::AnthropicMessages));
        assert_eq!(route("/anthropic/v1/messages/count_tokens"), Some(Endpoint::AnthropicCountTokens));
        assert_eq!(route("/v2/chat"), Some(Endpoint::CohereChat));
        assert_eq!(route("/api/chat"), Some(Endpoint::OllamaChat));
        assert_eq!(
            route("/v1beta/models/gemini-2.0-flash:generateContent"),
            Some(Endpoint::Gemini { model: "gemini-2.0-flash", stream: false })
        );
        assert_eq!(
            route("/v1/projects/p/locations/us-central1/publishers/google/models/gemini-1.5-pro:streamGenerateContent"),
            Some(Endpoint::Gemini { model: "gemini-1.5-pro", stream: true })
        );
        assert_eq!(route("/v1beta/models/g:countTokens"), None);
        assert_eq!(route("/v1beta/models/:generateContent"), None);
        assert_eq!(
            route("/model/anthropic.claude-v2%3A1/converse"),
            Some(Endpoint::BedrockConverse { model_id: "anthropic.claude-v2%3A1", stream: false })
        );
        assert_eq!(
            route("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/converse-stream"),
            Some(Endpoint::BedrockConverse {
                model_id: "arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx",
                stream: true
            })
        );
        assert_eq!(route("/model/m/invoke-with-response-stream"), None);
    }

    #[test]
    fn routes_native_embeddings() {
        assert_eq!(route("/v2/embed"), Some(Endpoint::CohereEmbed));
        assert_eq!(route("/api/embed"), Some(Endpoint::OllamaEmbed));
        assert_eq!(
            route("/model/amazon.titan-embed-text-v2%3A0/invoke"),
            Some(Endpoint::BedrockInvoke { model_id: "amazon.titan-embed-text-v2%3A0" })
        );
        assert_eq!(
            route("/v1beta/models/gemini-embedding-001:batchEmbedContents"),
            Some(Endpoint::GeminiEmbed { model: "gemini-embedding-001" })
        );
        assert_eq!(
            route("/v1/projects/p/locations/l/publishers/google/models/text-embedding-005:predict"),
            Some(Endpoint::VertexPredict { model: "text-embedding-005" })
        );
        assert_eq!(route("/v1beta/models/g:embedContent"), None);
    }
}

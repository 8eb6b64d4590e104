//! One entry point per direction for every provider: the gateway asks for the
//! upstream call of a chat request, the translation of an answer, a stream
//! translator and the shape of an error, and this module picks the adapter.
//! Providers that speak OpenAI's format get their answers passed through
//! untouched (only usage is read); the others are translated both ways.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::chat::Chat;
use crate::completion::{AnswerMeta, Completion};
use crate::ingress::{Ingress, Request};
use crate::stream::{ChatStream, ChunkWriter, Decoder, Observer, Translator};
use crate::{anthropic, bedrock, cohere, gemini, mistral, ollama, openai};
use crate::{ChatRequest, LlmError, ModelDefaults, Usage};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    OpenAi,
    Azure,
    Anthropic,
    Gemini,
    Bedrock,
    Mistral,
    Cohere,
    Ollama,
    OpenAiCompatible,
}

const NAMES: &[(&str, Provider)] = &[
    ("openai", Provider::OpenAi),
    ("azure", Provider::Azure),
    ("anthropic", Provider::Anthropic),
    ("gemini", Provider::Gemini),
    ("bedrock", Provider::Bedrock),
    ("mistral", Provider::Mistral),
    ("cohere", Provider::Cohere),
    ("ollama", Provider::Ollama),
    ("openai-compatible", Provider::OpenAiCompatible),
];

impl Provider {
    /// Every provider, in the order of `NAMES`.
    pub const ALL: [Provider; 9] = [
        Provider::OpenAi,
        Provider::Azure,
        Provider::Anthropic,
        Provider::Gemini,
        Provider::Bedrock,
        Provider::Mistral,
        Provider::Cohere,
        Provider::Ollama,
        Provider::OpenAiCompatible,
    ];

    pub fn parse(name: &str) -> Option<Provider> {
        NAMES.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
    }

    pub fn name(self) -> &'static str {
        NAMES.iter().find(|(_, p)| *p == self).map(|(n, _)| *n).unwrap_or("openai")
    }

    /// Answers arrive in OpenAI's format and pass through unchanged.
    pub fn speaks_openai(self) -> bool {
        matches!(self, Provider::OpenAi | Provider::Azure | Provider::Mistral | Provider::OpenAiCompatible)
    }

    /// The provider's public endpoint when the target sets no `upstream_url`.
    /// For Gemini and Bedrock it is a base to which the call's path is appended.
    pub fn default_url(self, opts: &ProviderOptions) -> Option<String> {
        Some(match self {
            Provider::OpenAi => openai::DEFAULT_CHAT_URL.to_string(),
            Provider::Azure => format!(
                "https://{}.openai.azure.com/openai/deployments/{}/chat/completions?api-version={}",
                opts.azure_instance.as_deref()?,
                opts.azure_deployment_id.as_deref()?,
                opts.azure_api_version
            ),
            Provider::Anthropic => "https://api.anthropic.com/v1/messages".into(),
            Provider::Gemini => match &opts.gemini_vertex {
                Some(v) => format!("https://{}", v.api_endpoint),
                None => "https://generativelanguage.googleapis.com".into(),
            },
            Provider::Bedrock => format!("https://bedrock-runtime.{}.amazonaws.com", opts.aws_region.as_deref()?),
            Provider::Mistral => "https://api.mistral.ai/v1/chat/completions".into(),
            Provider::Cohere => "https://api.cohere.com/v2/chat".into(),
            Provider::Ollama => "http://localhost:11434/api/chat".into(),
            Provider::OpenAiCompatible => return None,
        })
    }

    /// The `Accept` header of a streamed call: the provider's stream format.
    pub fn stream_accept(self) -> &'static str {
        match self {
            Provider::Bedrock => "application/vnd.amazon.eventstream",
            Provider::Ollama => "application/x-ndjson",
            _ => "text/event-stream",
        }
    }

    /// Whether the call's path depends on the model and the stream flag, so
    /// `upstream_url` names a base and the path is appended to it.
    pub fn path_per_call(self) -> bool {
        matches!(self, Provider::Gemini | Provider::Bedrock)
    }
}

/// Vertex AI's addressing for Gemini.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VertexOptions {
    pub api_endpoint: String,
    pub project_id: String,
    pub location_id: String,
}

/// Provider settings from `model.options` that shape the call.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderOptions {
    pub anthropic_version: String,
    pub azure_instance: Option<String>,
    pub azure_deployment_id: Option<String>,
    pub azure_api_version: String,
    pub gemini_vertex: Option<VertexOptions>,
    pub aws_region: Option<String>,
}

impl Default for ProviderOptions {
    fn default() -> Self {
        ProviderOptions {
            anthropic_version: "2023-06-01".into(),
            azure_instance: None,
            azure_deployment_id: None,
            azure_api_version: "2024-10-21".into(),
            gemini_vertex: None,
            aws_region: None,
        }
    }
}

/// The upstream call for one chat request.
#[derive(Debug, Clone, Default)]
pub struct Call {
    pub body: Vec<u8>,
    /// Path (and query) appended to the target's base URL, for providers that
    /// put the model or the stream flag in the path.
    pub path: Option<String>,
    /// Headers the provider's format needs (never credentials).
    pub headers: Vec<(&'static str, String)>,
    /// The model asked of the provider.
    pub model: String,
    pub stream: bool,
    pub client_wants_usage: bool,
    /// What the caller speaks, and whether the provider speaks it too: then
    /// its answer relays as it is, else it is rendered in the caller's format.
    pub ingress: Ingress,
    pub native: bool,
}

/// Translates an OpenAI chat request for `provider`. `extra` fields (a
/// credential the target sends in the body) are set at the top level last.
pub fn prepare(
    provider: Provider,
    req: &ChatRequest,
    defaults: &ModelDefaults,
    opts: &ProviderOptions,
    extra: &[(&str, &str)],
) -> Result<Call, LlmError> {
    if provider.speaks_openai() {
        let p = req.prepare_openai(defaults, extra)?;
        let body = if provider == Provider::Mistral { mistral::adjust(&p.body)? } else { p.body };
        return Ok(Call {
            body,
            path: None,
            headers: Vec::new(),
            model: p.model,
            stream: p.stream,
            client_wants_usage: p.client_wants_usage,
            ingress: Ingress::OpenAiChat,
            native: true,
        });
    }
    translate(provider, &Chat::from_request(req, defaults)?, opts, extra, Ingress::OpenAiChat)
}

/// Prepares any caller's request for `provider`: natively when the provider
/// speaks the caller's format, else through the provider-neutral `Chat`.
pub fn prepare_request(
    provider: Provider,
    req: &Request,
    defaults: &ModelDefaults,
    opts: &ProviderOptions,
    extra: &[(&str, &str)],
) -> Result<Call, LlmError> {
    let ingress = req.ingress();
    if !ingress.is_native(provider) {
        // OpenAI's format has no top_k: a target's default of it is left out,
        // as it is for OpenAI chat callers; a caller's own is refused.
        let without_top_k;
        let defaults = if provider.speaks_openai() && defaults.top_k.is_some() {
            without_top_k = ModelDefaults { top_k: None, ..defaults.clone() };
            &without_top_k
        } else {
            defaults
        };
        return translate(provider, &req.to_chat(defaults)?, opts, extra, ingress);
    }
    let (body, model, headers) = match req {
        Request::Chat(r) => return prepare(provider, r, defaults, opts, extra),
        Request::Messages(m) => {
            let (body, model) = m.native_body(defaults, extra)?;
            let version = m.version.clone().unwrap_or_else(|| opts.anthropic_version.clone());
            let mut headers = vec![("anthropic-version", version)];
            if let Some(beta) = &m.beta {
                headers.push(("anthropic-beta", beta.clone()));
            }
            (body, model, headers)
        }
        Request::Responses(r) => {
            let (body, model) = r.native_body(defaults, extra)?;
            (body, model, Vec::new())
        }
    };
    Ok(Call {
        body,
        path: None,
        headers,
        model,
        stream: req.is_stream(),
        // A native stream is relayed whole, its usage events included.
        client_wants_usage: true,
        ingress,
        native: true,
    })
}

/// The provider's own body for a neutral chat request.
fn translate(
    provider: Provider,
    chat: &Chat,
    opts: &ProviderOptions,
    extra: &[(&str, &str)],
    ingress: Ingress,
) -> Result<Call, LlmError> {
    let mut body: Map<String, Value> = match provider {
        p if p.speaks_openai() => openai::request(chat, p, opts)?,
        Provider::Anthropic => anthropic::request(chat, opts)?,
        Provider::Gemini => gemini::request(chat, opts)?,
        Provider::Bedrock => bedrock::request(chat, opts)?,
        Provider::Cohere => cohere::request(chat, opts)?,
        _ => ollama::request(chat, opts)?,
    };
    for (k, v) in extra {
        body.insert((*k).to_string(), Value::String((*v).to_string()));
    }
    let path = call_path(provider, &chat.model, chat.stream, opts);
    let headers = format_headers(provider, opts);
    let body = serde_json::to_vec(&Value::Object(body))
        .map_err(|e| LlmError::new(500, "internal_error", format!("encoding request: {e}")))?;
    let body = if provider == Provider::Mistral { mistral::adjust(&body)? } else { body };
    Ok(Call {
        body,
        path,
        headers,
        model: chat.model.clone(),
        stream: chat.stream,
        client_wants_usage: chat.client_wants_usage,
        ingress,
        native: false,
    })
}

/// The path appended to the base URL of providers that name the model and the
/// stream flag in it (Gemini, Bedrock); `None` for the others.
pub fn call_path(provider: Provider, model: &str, stream: bool, opts: &ProviderOptions) -> Option<String> {
    let model = path_segment(model);
    match provider {
        Provider::Gemini => {
            let method = if stream { "streamGenerateContent?alt=sse" } else { "generateContent" };
            Some(match &opts.gemini_vertex {
                Some(v) => format!(
                    "/v1/projects/{}/locations/{}/publishers/google/models/{model}:{method}",
                    path_segment(&v.project_id),
                    path_segment(&v.location_id)
                ),
                None => format!("/v1beta/models/{model}:{method}"),
            })
        }
        Provider::Bedrock => Some(format!("/model/{model}/{}", if stream { "converse-stream" } else { "converse" })),
        _ => None,
    }
}

/// Headers the provider's wire format needs on every call (never credentials).
pub fn format_headers(provider: Provider, opts: &ProviderOptions) -> Vec<(&'static str, String)> {
    match provider {
        Provider::Anthropic => vec![("anthropic-version", opts.anthropic_version.clone())],
        _ => Vec::new(),
    }
}

/// A native request forwarded unchanged (`route_type = "preserve"`): only the
/// call's path and format headers are added; the body is the caller's.
pub fn preserve(provider: Provider, body: &[u8], model: Option<&str>, opts: &ProviderOptions) -> Call {
    #[derive(serde::Deserialize)]
    struct Facts {
        #[serde(default)]
        stream: Option<bool>,
        #[serde(default)]
        model: Option<String>,
    }
    let facts = serde_json::from_slice::<Facts>(body).ok();
    let stream = facts.as_ref().and_then(|f| f.stream).unwrap_or(false);
    let model = model.map(str::to_string).or_else(|| facts.and_then(|f| f.model)).unwrap_or_default();
    Call {
        body: body.to_vec(),
        path: call_path(provider, &model, stream, opts),
        headers: format_headers(provider, opts),
        model,
        stream,
        client_wants_usage: true,
        ingress: Ingress::OpenAiChat,
        native: true,
    }
}

/// A provider's successful JSON answer, in the caller's format.
#[derive(Debug, Clone)]
pub struct Answer {
    pub body: Bytes,
    pub usage: Option<Usage>,
    /// The model the provider says answered.
    pub model: Option<String>,
    /// Completion tokens by the tokenizer, when the provider reported no usage.
    pub estimated_completion_tokens: Option<u64>,
}

/// The completion's text and tool-call arguments by the tokenizer.
fn completion_tokens(c: &Completion) -> u64 {
    let mut text = c.text.clone().unwrap_or_default();
    for call in &c.tool_calls {
        text.push_str(&call.arguments);
    }
    crate::tokens::count_text(&text)
}

/// Translates a successful (2xx) JSON answer to an OpenAI chat request.
pub fn answer(provider: Provider, body: Bytes, meta: &AnswerMeta) -> Result<Answer, LlmError> {
    answer_for(provider, Ingress::OpenAiChat, provider.speaks_openai(), body, meta)
}

/// A successful (2xx) JSON answer for a caller speaking `ingress`: relayed
/// as it is when `native` (its usage read), else parsed in the provider's
/// format and rendered in the caller's. An answer that is not the provider's
/// format is a 502 naming the provider.
pub fn answer_for(
    provider: Provider,
    ingress: Ingress,
    native: bool,
    body: Bytes,
    meta: &AnswerMeta,
) -> Result<Answer, LlmError> {
    let not_a_completion = || {
        LlmError::new(
            502,
            "upstream_error",
            format!("provider {} returned an answer that is not a chat completion", provider.name()),
        )
    };
    if native {
        let parsed = match ingress {
            // OpenAI-format answers pass untouched: only usage and model are
            // read, unless the usage is missing and the text must be counted.
            Ingress::OpenAiChat => {
                let (usage, model) = openai::answer_facts(&body).ok_or_else(not_a_completion)?;
                let estimated = match usage {
                    Some(_) => None,
                    None => Some(openai::answer(&body, meta).map(|c| completion_tokens(&c)).unwrap_or(0)),
                };
                return Ok(Answer { body, usage, model, estimated_completion_tokens: estimated });
            }
            Ingress::AnthropicMessages => anthropic::answer(&body, meta),
            Ingress::OpenAiResponses => crate::ingress::responses::answer(&body, meta),
        };
        let c = parsed.map_err(|_| not_a_completion())?;
        let estimated = c.usage.is_none().then(|| completion_tokens(&c));
        return Ok(Answer { body, usage: c.usage, model: Some(c.model), estimated_completion_tokens: estimated });
    }
    let completion =
        completion(provider, &body, meta).map_err(|e| if e.status == 502 { e } else { not_a_completion() })?;
    let body = match ingress {
        Ingress::OpenAiChat => completion.to_openai(),
        Ingress::AnthropicMessages => crate::ingress::anthropic::render(&completion, meta),
        Ingress::OpenAiResponses => crate::ingress::responses::render(&completion, meta),
    };
    let estimated = completion.usage.is_none().then(|| completion_tokens(&completion));
    Ok(Answer { body, usage: completion.usage, model: Some(completion.model), estimated_completion_tokens: estimated })
}

/// A provider's JSON answer in neutral terms.
fn completion(provider: Provider, body: &[u8], meta: &AnswerMeta) -> Result<Completion, LlmError> {
    match provider {
        p if p.speaks_openai() => openai::answer(body, meta),
        Provider::Anthropic => anthropic::answer(body, meta),
        Provider::Gemini => gemini::answer(body, meta),
        Provider::Bedrock => bedrock::answer(body, meta),
        Provider::Cohere => cohere::answer(body, meta),
        _ => ollama::answer(body, meta),
    }
}

/// A translator of the provider's stream into OpenAI chat chunks.
pub fn stream(provider: Provider, meta: AnswerMeta) -> Box<dyn ChatStream> {
    stream_for(provider, Ingress::OpenAiChat, provider.speaks_openai(), meta)
}

/// What relays the provider's stream to a caller speaking `ingress`: the
/// stream as it is when `native` (read for usage), else translated.
pub fn stream_for(provider: Provider, ingress: Ingress, native: bool, meta: AnswerMeta) -> Box<dyn ChatStream> {
    if native {
        return match ingress {
            Ingress::OpenAiChat => Box::new(openai::StreamTap::new(meta.client_wants_usage)),
            Ingress::AnthropicMessages => Box::new(Observer::with_errors(
                anthropic::StreamDecoder::new(),
                meta,
                crate::ingress::anthropic::stream_error_event,
            )),
            Ingress::OpenAiResponses => Box::new(crate::ingress::responses::NativeStream::new(meta)),
        };
    }
    match provider {
        p if p.speaks_openai() => rendered(openai::StreamDecoder::new(), ingress, meta),
        Provider::Anthropic => rendered(anthropic::StreamDecoder::new(), ingress, meta),
        Provider::Gemini => rendered(gemini::StreamDecoder::new(), ingress, meta),
        Provider::Bedrock => rendered(bedrock::StreamDecoder::new(), ingress, meta),
        Provider::Cohere => rendered(cohere::StreamDecoder::new(), ingress, meta),
        _ => rendered(ollama::StreamDecoder::new(), ingress, meta),
    }
}

/// A provider's decoder with the caller's renderer.
fn rendered<D: Decoder + 'static>(decoder: D, ingress: Ingress, meta: AnswerMeta) -> Box<dyn ChatStream> {
    match ingress {
        Ingress::OpenAiChat => Box::new(Translator::new(decoder, ChunkWriter::new(), meta)),
        Ingress::AnthropicMessages => {
            Box::new(Translator::new(decoder, crate::ingress::anthropic::Writer::new(), meta))
        }
        Ingress::OpenAiResponses => Box::new(Translator::new(decoder, crate::ingress::responses::Writer::new(), meta)),
    }
}

/// A native stream relayed unchanged (`preserve`), its usage read on the way.
pub fn observe(provider: Provider, meta: AnswerMeta) -> Box<dyn ChatStream> {
    if provider.speaks_openai() {
        return Box::new(openai::StreamTap::new(true));
    }
    match provider {
        Provider::Anthropic => Box::new(Observer::new(anthropic::StreamDecoder::new(), meta)),
        Provider::Gemini => Box::new(Observer::new(gemini::StreamDecoder::new(), meta)),
        Provider::Bedrock => Box::new(Observer::new(bedrock::StreamDecoder::new(), meta)),
        Provider::Cohere => Box::new(Observer::new(cohere::StreamDecoder::new(), meta)),
        _ => Box::new(Observer::new(ollama::StreamDecoder::new(), meta)),
    }
}

/// Usage and model of a native JSON answer (`preserve`), where it can be read.
pub fn observe_answer(provider: Provider, body: &Bytes, meta: &AnswerMeta) -> (Option<Usage>, Option<String>) {
    answer(provider, body.clone(), meta).map(|a| (a.usage, a.model)).unwrap_or((None, None))
}

/// A provider's error answer in OpenAI's shape, its status and message kept.
/// Reads every provider's error body: `{"error":{"message"}}` (OpenAI, Azure,
/// Anthropic, Gemini), `{"error":"..."}` (Ollama), `{"message"}` (Bedrock,
/// Cohere, Mistral), `{"Message"}` and `{"detail"}`; anything else (HTML, an
/// empty body) is quoted briefly.
pub fn error(provider: Provider, status: u16, body: &[u8]) -> LlmError {
    let name = provider.name();
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        s(v.get("error").and_then(|e| e.get("message")))
            .or_else(|| s(v.get("error")))
            .or_else(|| s(v.get("message")))
            .or_else(|| s(v.get("Message")))
            .or_else(|| s(v.get("detail")))
    });
    let message = message.unwrap_or_else(|| {
        let end = body.len().min(200);
        let text = String::from_utf8_lossy(&body[..end]).trim().to_string();
        if text.is_empty() {
            format!("provider {name} answered {status}")
        } else {
            format!("provider {name} answered {status}: {text}")
        }
    });
    let kind = match status {
        401 | 403 => "authentication_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "upstream_error",
    };
    LlmError::new(status, kind, message)
}

/// A value placed in a URL path segment: everything but unreserved characters
/// is percent-encoded, so a model name such as `../x?y#z` or one with CR/LF
/// cannot change the path, the query or the request line.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    // `.` and `..` alone are path navigation even when unencoded characters are safe.
    if out == "." || out == ".." {
        return out.replace('.', "%2E");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(Provider::ALL.to_vec(), NAMES.iter().map(|(_, p)| *p).collect::<Vec<_>>());
        for (n, p) in NAMES {
            assert_eq!(Provider::parse(n), Some(*p));
            assert_eq!(p.name(), *n);
        }
        assert_eq!(Provider::parse("llama2"), None);
    }

    #[test]
    fn errors_of_every_provider_keep_their_message() {
        let cases: &[(&[u8], &str)] = &[
            (br#"{"error":{"message":"Rate limit reached","type":"requests"}}"#, "Rate limit reached"),
            (br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#, "Overloaded"),
            (
                br#"{"error":{"code":400,"message":"API key not valid","status":"INVALID_ARGUMENT"}}"#,
                "API key not valid",
            ),
            (br#"{"message":"The security token included in the request is invalid."}"#, "security token"),
            (br#"{"error":"model 'x' not found"}"#, "model 'x' not found"),
            (b"<html>bad gateway</html>", "provider anthropic answered 502: <html>bad gateway</html>"),
            (b"", "provider anthropic answered 502"),
        ];
        for (body, want) in cases {
            let e = error(Provider::Anthropic, 502, body);
            assert!(e.message.contains(want), "{want}: {}", e.message);
        }
        assert_eq!(error(Provider::OpenAi, 429, b"{}").kind, "rate_limit_error");
    }

    #[test]
    fn path_segments_cannot_escape() {
        assert_eq!(path_segment("anthropic.claude-3-haiku-20240307-v1:0"), "anthropic.claude-3-haiku-20240307-v1%3A0");
        assert_eq!(path_segment("../../x?y#z"), "..%2F..%2Fx%3Fy%23z");
        assert_eq!(path_segment("a\r\nb c%2F"), "a%0D%0Ab%20c%252F");
        assert_eq!(path_segment(".."), "%2E%2E");
    }
}

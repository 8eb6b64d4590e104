//! What callers speak. A route's `llm_format` and `route_type` name the API
//! its callers use: OpenAI chat completions, OpenAI's Responses API, or
//! Anthropic's Messages API. Any of them reaches any provider:
//!
//! - natively, when the provider speaks the caller's format (OpenAI chat to
//!   OpenAI-compatible providers, Messages to Anthropic, Responses to
//!   OpenAI): the caller's body goes out with only the model (and a body
//!   credential) set, and the answer comes back as the provider sent it,
//!   read on the way for usage;
//! - translated otherwise: the request becomes the provider-neutral
//!   [`Chat`](crate::chat::Chat), the provider's adapter builds its body, and
//!   its answer ([`Completion`](crate::completion::Completion)) or stream
//!   ([`Delta`](crate::stream::Delta)s) is rendered back in the caller's format.

pub mod anthropic;
pub mod responses;
pub mod splice;

use bytes::Bytes;

use crate::chat::Chat;
use crate::{ChatRequest, LlmError, ModelDefaults};

/// The API a route's callers speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Ingress {
    /// `POST .../chat/completions` (`llm_format = "openai"`, `llm/v1/chat`).
    #[default]
    OpenAiChat,
    /// `POST .../responses` (`llm_format = "openai"`, `llm/v1/responses`).
    OpenAiResponses,
    /// `POST .../messages` (`llm_format = "anthropic"`, `llm/v1/chat`).
    AnthropicMessages,
}

impl Ingress {
    /// The `request_format` label of metrics and the access log.
    pub fn label(self) -> &'static str {
        match self {
            Ingress::OpenAiChat => "openai_chat",
            Ingress::OpenAiResponses => "openai_responses",
            Ingress::AnthropicMessages => "anthropic_messages",
        }
    }

    /// The provider speaks the caller's format: requests and answers relay
    /// natively instead of being translated.
    pub fn is_native(self, provider: crate::Provider) -> bool {
        use crate::Provider;
        match self {
            Ingress::OpenAiChat => provider.speaks_openai(),
            Ingress::OpenAiResponses => provider == Provider::OpenAi,
            Ingress::AnthropicMessages => provider == Provider::Anthropic,
        }
    }

    /// A gateway-made error in the caller's error shape.
    pub fn error_body(self, e: &LlmError) -> Bytes {
        match self {
            Ingress::AnthropicMessages => anthropic::error_body(e),
            Ingress::OpenAiChat | Ingress::OpenAiResponses => e.body(),
        }
    }

    /// The status a gateway-made error is answered with in the caller's
    /// format (Anthropic has codes of its own for some).
    pub fn error_status(self, e: &LlmError) -> u16 {
        match self {
            Ingress::AnthropicMessages => anthropic::error_status(e),
            Ingress::OpenAiChat | Ingress::OpenAiResponses => e.status,
        }
    }

    /// The models list (`GET .../models`) in the caller's format.
    pub fn models_body(self, models: &[ModelEntry]) -> Bytes {
        match self {
            Ingress::AnthropicMessages => anthropic::models_body(models),
            Ingress::OpenAiChat | Ingress::OpenAiResponses => openai_models_body(models),
        }
    }
}

/// One model a route serves, for `GET .../models`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    /// The model name callers send.
    pub id: String,
    /// The provider that serves it (`owned_by`).
    pub provider: String,
}

/// OpenAI's `{"object":"list","data":[{"id","object":"model","created","owned_by"}]}`.
fn openai_models_body(models: &[ModelEntry]) -> Bytes {
    let data: Vec<serde_json::Value> = models
        .iter()
        .map(|m| serde_json::json!({ "id": m.id, "object": "model", "created": 0, "owned_by": m.provider }))
        .collect();
    Bytes::from(serde_json::json!({ "object": "list", "data": data }).to_string())
}

/// A caller's request, parsed and checked in its own format.
#[derive(Debug, Clone)]
pub enum Request {
    Chat(ChatRequest),
    Messages(anthropic::MessagesRequest),
    Responses(responses::ResponsesRequest),
}

impl Request {
    pub fn parse(ingress: Ingress, body: &[u8]) -> Result<Request, LlmError> {
        Ok(match ingress {
            Ingress::OpenAiChat => Request::Chat(ChatRequest::parse(body)?),
            Ingress::AnthropicMessages => Request::Messages(anthropic::MessagesRequest::parse(body)?),
            Ingress::OpenAiResponses => Request::Responses(responses::ResponsesRequest::parse(body)?),
        })
    }

    pub fn ingress(&self) -> Ingress {
        match self {
            Request::Chat(_) => Ingress::OpenAiChat,
            Request::Messages(_) => Ingress::AnthropicMessages,
            Request::Responses(_) => Ingress::OpenAiResponses,
        }
    }

    /// Removes a top-level field (a caller key sent in the body, `key_in_body`).
    pub fn remove_field(&mut self, name: &str) {
        match self {
            Request::Chat(r) => {
                r.remove_field(name);
            }
            Request::Messages(r) => r.remove_field(name),
            Request::Responses(r) => r.remove_field(name),
        }
    }

    pub fn is_stream(&self) -> bool {
        match self {
            Request::Chat(r) => r.is_stream(),
            Request::Messages(r) => r.is_stream(),
            Request::Responses(r) => r.is_stream(),
        }
    }

    /// The completion limit the caller set.
    pub fn max_completion_tokens(&self) -> Option<u64> {
        match self {
            Request::Chat(r) => r.max_completion_tokens(),
            Request::Messages(r) => r.max_tokens(),
            Request::Responses(r) => r.max_output_tokens(),
        }
    }

    /// The model the caller named, if any.
    pub fn model(&self) -> Option<&str> {
        match self {
            Request::Chat(r) => r.model(),
            Request::Messages(r) => r.model(),
            Request::Responses(r) => r.model(),
        }
    }

    /// Prompt tokens by the tokenizer, for admission against token budgets.
    pub fn prompt_estimate(&self) -> u64 {
        match self {
            Request::Chat(r) => crate::tokens::estimate_prompt_tokens(r),
            Request::Messages(r) => r.prompt_estimate(),
            Request::Responses(r) => r.prompt_estimate(),
        }
    }

    /// The request as the caller sent it (its own key removed), for `log_payloads`.
    pub fn logged_body(&self) -> Vec<u8> {
        match self {
            Request::Chat(r) => serde_json::to_vec(r.body()).unwrap_or_default(),
            Request::Messages(r) => r.body().to_vec(),
            Request::Responses(r) => r.body().to_vec(),
        }
    }

    /// The provider-neutral form, with the target's model and defaults.
    pub fn to_chat(&self, defaults: &ModelDefaults) -> Result<Chat, LlmError> {
        match self {
            Request::Chat(r) => Chat::from_request(r, defaults),
            Request::Messages(r) => r.to_chat(defaults),
            Request::Responses(r) => r.to_chat(defaults),
        }
    }
}

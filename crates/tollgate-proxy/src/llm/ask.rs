//! What the caller asked, parsed once in its own format and prepared for
//! each target the failover loop tries.

use tollgate_llm::embeddings::{self, EmbeddingsMeta};
use tollgate_llm::ingress::Request;
use tollgate_llm::provider::{self, Call};
use tollgate_llm::LlmError;

use crate::llm::target::{Api, Credential, LlmTarget};

pub(crate) enum Ask {
    /// A generation request in the caller's format (chat completions,
    /// Responses, Messages), translated or relayed per target.
    Generate(Request),
    /// An OpenAI embeddings request (`llm/v1/embeddings`), translated per provider.
    Embeddings(Vec<u8>),
    /// A native request forwarded unchanged (`preserve`).
    Preserve(Vec<u8>),
}

/// Headers of the caller's that the request carries on to the providers that
/// read them (Anthropic's version and beta flags), never credentials.
#[derive(Debug, Default)]
pub(crate) struct CallerHeaders {
    pub anthropic_version: Option<String>,
    pub anthropic_beta: Option<String>,
}

impl Ask {
    /// Parses `body` as `api` asks, without the caller's own key (`key_in_body`).
    pub(crate) fn parse(
        api: Api,
        body: &[u8],
        body_key: Option<&str>,
        headers: CallerHeaders,
    ) -> Result<Ask, LlmError> {
        Ok(match api {
            Api::Preserve => Ask::Preserve(without_field(body, body_key)),
            Api::Embeddings => Ask::Embeddings(without_field(body, body_key)),
            Api::Generate(ingress) => {
                let mut request = Request::parse(ingress, body)?;
                if let Some(k) = body_key {
                    request.remove_field(k);
                }
                if let Request::Messages(m) = &mut request {
                    m.version = headers.anthropic_version;
                    m.beta = headers.anthropic_beta;
                }
                Ask::Generate(request)
            }
        })
    }

    /// The upstream call for `target`, in its provider's format (and, for
    /// embeddings, what reading the answer needs to know of the request).
    pub(crate) fn call_for(&self, target: &LlmTarget) -> Result<(Call, Option<EmbeddingsMeta>), LlmError> {
        match self {
            Ask::Generate(request) => {
                let extra: Vec<(&str, &str)> = match &target.credential {
                    Credential::Body { name, value } => vec![(name.as_str(), value.as_str())],
                    _ => Vec::new(),
                };
                let call = provider::prepare_request(target.kind, request, &target.model, &target.options, &extra)?;
                Ok((call, None))
            }
            Ask::Embeddings(body) => {
                let e = embeddings::prepare(target.kind, body, &target.model, &target.options)?;
                let call = Call {
                    body: with_body_credential(e.body, &target.credential)?,
                    path: e.path,
                    model: e.model,
                    ..Call::default()
                };
                Ok((call, Some(e.meta)))
            }
            Ask::Preserve(body) => {
                let mut call = provider::preserve(target.kind, body, target.model.name.as_deref(), &target.options);
                call.body = with_body_credential(call.body, &target.credential)?;
                Ok((call, None))
            }
        }
    }

    /// Prompt tokens to reserve against a token budget before the answer.
    pub(crate) fn prompt_estimate(&self, embeddings: Option<&EmbeddingsMeta>) -> u64 {
        match (self, embeddings) {
            (Ask::Generate(request), _) => request.prompt_estimate(),
            (_, Some(e)) => e.estimated_prompt_tokens,
            // A native body: its text by the tokenizer would need a parse per
            // format; a byte count over-estimates a little, which errs on the
            // budget's side.
            (Ask::Embeddings(body) | Ask::Preserve(body), None) => (body.len() as u64).div_ceil(3),
        }
    }

    /// The request as the caller sent it (its own key removed), for `log_payloads`.
    pub(crate) fn logged_body(&self) -> Vec<u8> {
        match self {
            Ask::Generate(request) => request.logged_body(),
            Ask::Embeddings(body) | Ask::Preserve(body) => body.clone(),
        }
    }

    pub(crate) fn max_completion_tokens(&self) -> Option<u64> {
        match self {
            Ask::Generate(request) => request.max_completion_tokens(),
            Ask::Embeddings(_) => Some(0),
            Ask::Preserve(_) => None,
        }
    }

    /// Request fields a Responses answer repeats.
    pub(crate) fn echo(&self) -> Option<std::sync::Arc<serde_json::Map<String, serde_json::Value>>> {
        match self {
            Ask::Generate(Request::Responses(r)) => Some(std::sync::Arc::new(r.echo())),
            _ => None,
        }
    }
}

/// The body without the caller's key (`key_in_body`): a client credential
/// never travels upstream, whatever the route type. A body that is not a JSON
/// object has no such field and passes as it is.
fn without_field(body: &[u8], field: Option<&str>) -> Vec<u8> {
    match field {
        Some(field) => tollgate_llm::ingress::splice::remove_member(body, field).unwrap_or_else(|_| body.to_vec()),
        None => body.to_vec(),
    }
}

/// A JSON body with the target's body-located credential set at its top level
/// (`auth.param_location = "body"`); other credentials leave it unchanged.
fn with_body_credential(body: Vec<u8>, credential: &Credential) -> Result<Vec<u8>, LlmError> {
    let Credential::Body { name, value } = credential else {
        return Ok(body);
    };
    let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&body).map_err(|_| {
        LlmError::invalid_request("the request body must be a JSON object to carry the provider credential")
    })?;
    v.insert(name.clone(), serde_json::Value::String(value.clone()));
    serde_json::to_vec(&v).map_err(|e| LlmError::new(500, "internal_error", format!("encoding request: {e}")))
}

//! The embeddings route (`llm/v1/embeddings`): callers send OpenAI's
//! embeddings request and get OpenAI's answer, whatever the provider.
//!
//! OpenAI, Azure and OpenAI-compatible targets get the request as sent with
//! the target's model applied, and their answers pass through untouched (only
//! usage is read). Mistral speaks the same format with two differences in the
//! request. Gemini (and Vertex AI), Bedrock (Titan Text Embeddings and Cohere
//! Embed), Cohere and Ollama are translated both ways.
//!
//! `encoding_format: "base64"` is honoured for every provider: OpenAI's Python
//! and Node SDKs ask for it unless told otherwise, so refusing it would break
//! them. Where the provider only returns floats, the gateway encodes each
//! vector itself as OpenAI does: base64 of the little-endian `f32` values.
//!
//! `answer` needs a few facts of the request (how many inputs, whether base64
//! was asked, the token estimate for providers that report no usage): they
//! travel in [`EmbeddingsMeta`], which `prepare` returns in the call.

use bytes::Bytes;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::chat::unsupported;
use crate::provider::{path_segment, Answer, Provider, ProviderOptions};
use crate::request::resolve_model;
use crate::usage::OpenAiUsage;
use crate::{tokens, LlmError, ModelDefaults, Usage};

/// Request fields this module reads; any other field set in a request for a
/// translated provider is refused by name rather than silently dropped.
const KNOWN: &[&str] = &["model", "input", "dimensions", "encoding_format", "user"];

/// Inputs per call: Cohere's `texts` and Cohere Embed on Bedrock take at most 96
/// (https://docs.cohere.com/reference/embed,
/// https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed-v3.html).
const COHERE_MAX_INPUTS: usize = 96;
/// Gemini's `batchEmbedContents` refuses more than 100 requests in one batch.
const GEMINI_MAX_INPUTS: usize = 100;

/// What `answer` needs to know of the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmbeddingsMeta {
    /// The model asked of the provider, named in the answer when the provider names none.
    pub model: String,
    /// Inputs sent; a translated answer must hold one embedding for each.
    pub inputs: usize,
    /// The caller asked for `encoding_format: "base64"`.
    pub base64: bool,
    /// Prompt tokens estimated before the call (o200k for text, exact for token
    /// arrays): the usage reported for providers that report none, and a
    /// figure for admission against token budgets.
    pub estimated_prompt_tokens: u64,
}

/// The upstream call for one embeddings request.
#[derive(Debug, Clone)]
pub struct EmbeddingsCall {
    pub body: Vec<u8>,
    /// Appended to the target's base URL for gemini and bedrock (like `provider::Call.path`).
    pub path: Option<String>,
    /// The model asked of the provider.
    pub model: String,
    /// How many inputs the request embeds.
    pub inputs: usize,
    /// To pass to [`answer`].
    pub meta: EmbeddingsMeta,
}

/// The provider's endpoint for embeddings when the target sets no upstream_url
/// (gemini/bedrock: the base, to which the call's path is appended).
pub fn default_url(provider: Provider, opts: &ProviderOptions) -> Option<String> {
    Some(match provider {
        Provider::OpenAi => "https://api.openai.com/v1/embeddings".into(),
        Provider::Azure => format!(
            "https://{}.openai.azure.com/openai/deployments/{}/embeddings?api-version={}",
            opts.azure_instance.as_deref()?,
            opts.azure_deployment_id.as_deref()?,
            opts.azure_api_version
        ),
        Provider::Mistral => "https://api.mistral.ai/v1/embeddings".into(),
        Provider::Cohere => "https://api.cohere.com/v2/embed".into(),
        Provider::Ollama => "http://localhost:11434/api/embed".into(),
        Provider::Gemini | Provider::Bedrock => return provider.default_url(opts),
        Provider::Anthropic | Provider::OpenAiCompatible => return None,
    })
}

/// Translates a caller's OpenAI embeddings request for `provider`.
pub fn prepare(
    provider: Provider,
    body: &[u8],
    defaults: &ModelDefaults,
    opts: &ProviderOptions,
) -> Result<EmbeddingsCall, LlmError> {
    let name = provider.name();
    if provider == Provider::Anthropic {
        return Err(LlmError::invalid_request(
            "provider anthropic has no embeddings API; route llm/v1/embeddings to another provider",
        )
        .with_code("unsupported_provider"));
    }
    let req = Request::parse(body, defaults)?;
    let (body, path) = match provider {
        Provider::OpenAi | Provider::Azure | Provider::OpenAiCompatible => (req.openai_body(), None),
        Provider::Mistral => (req.mistral_body()?, None),
        _ => {
            req.refuse_unknown(name)?;
            let texts = req.texts(name)?;
            match provider {
                Provider::Gemini => gemini_request(&req, texts, opts)?,
                Provider::Bedrock => bedrock_request(&req, texts)?,
                Provider::Cohere => (cohere_request(&req, texts)?, None),
                _ => (ollama_request(&req, texts), None),
            }
        }
    };
    let body = serde_json::to_vec(&body)
        .map_err(|e| LlmError::new(500, "internal_error", format!("encoding request: {e}")))?;
    let inputs = req.input.len();
    let meta = EmbeddingsMeta {
        model: req.model.clone(),
        inputs,
        base64: req.base64,
        estimated_prompt_tokens: req.input.estimate(),
    };
    Ok(EmbeddingsCall { body, path, model: req.model, inputs, meta })
}

/// What the caller asked to embed.
#[derive(Debug, Clone, PartialEq)]
enum Input {
    Texts(Vec<String>),
    /// Token arrays (OpenAI's tokenizer ids), one per input.
    Tokens(Vec<Vec<u64>>),
}

impl Input {
    fn len(&self) -> usize {
        match self {
            Input::Texts(t) => t.len(),
            Input::Tokens(t) => t.len(),
        }
    }

    fn estimate(&self) -> u64 {
        match self {
            // One tokenizer pass over all texts (it falls back to bytes/3 past
            // its size limit); the separators add at most a token per input.
            Input::Texts(t) => tokens::count_text(&t.join("\n")),
            Input::Tokens(t) => t.iter().map(|v| v.len() as u64).sum(),
        }
    }
}

/// A validated embeddings request for one target.
#[derive(Debug, Clone)]
struct Request {
    body: Map<String, Value>,
    model: String,
    input: Input,
    dimensions: Option<u64>,
    base64: bool,
}

fn invalid(message: impl Into<String>) -> LlmError {
    LlmError::invalid_request(message)
}

impl Request {
    fn parse(body: &[u8], defaults: &ModelDefaults) -> Result<Request, LlmError> {
        if body.is_empty() {
            return Err(invalid("request body is empty; expected a JSON embeddings request"));
        }
        let value: Value =
            serde_json::from_slice(body).map_err(|e| invalid(format!("request body is not valid JSON: {e}")))?;
        let Value::Object(body) = value else {
            return Err(invalid("request body must be a JSON object"));
        };
        let requested = match body.get("model") {
            None | Some(Value::Null) => None,
            Some(Value::String(m)) => Some(m.as_str()),
            Some(_) => return Err(invalid("'model' must be a string")),
        };
        let model = resolve_model(requested, defaults)?;
        let input = parse_input(body.get("input"))?;
        let dimensions = match body.get("dimensions") {
            None | Some(Value::Null) => None,
            Some(v) => {
                Some(v.as_u64().filter(|d| *d > 0).ok_or_else(|| invalid("'dimensions' must be a positive integer"))?)
            }
        };
        let base64 = match body.get("encoding_format") {
            None | Some(Value::Null) => false,
            Some(Value::String(f)) if f == "float" => false,
            Some(Value::String(f)) if f == "base64" => true,
            Some(_) => return Err(invalid("'encoding_format' must be \"float\" or \"base64\"")),
        };
        if let Some(u) = body.get("user") {
            if !u.is_string() && !u.is_null() {
                return Err(invalid("'user' must be a string"));
            }
        }
        Ok(Request { body, model, input, dimensions, base64 })
    }

    /// The texts, for providers that take no token arrays.
    fn texts(&self, provider: &str) -> Result<&[String], LlmError> {
        match &self.input {
            Input::Texts(t) => Ok(t),
            Input::Tokens(_) => Err(invalid(format!(
                "'input' as token arrays is not supported by provider {provider}; send the text instead"
            ))
            .with_code("unsupported_parameter")),
        }
    }

    /// Refuses fields a translated provider cannot carry (`user` never changes
    /// the answer and is dropped).
    fn refuse_unknown(&self, provider: &str) -> Result<(), LlmError> {
        match self.body.iter().find(|(k, v)| !KNOWN.contains(&k.as_str()) && !v.is_null()) {
            Some((k, _)) => Err(unsupported(provider, k)),
            None => Ok(()),
        }
    }

    /// The request as sent, with the target's model.
    fn openai_body(&self) -> Value {
        let mut body = self.body.clone();
        body.insert("model".into(), Value::String(self.model.clone()));
        Value::Object(body)
    }

    /// Mistral: text only, `output_dimension` for `dimensions`, no `user`; a
    /// base64 answer is encoded by the gateway (Mistral's reference documents
    /// float output only).
    /// https://docs.mistral.ai/api/endpoint/embeddings
    fn mistral_body(&self) -> Result<Value, LlmError> {
        self.texts("mistral")?;
        let mut body = self.body.clone();
        body.insert("model".into(), Value::String(self.model.clone()));
        body.remove("user");
        if let Some(d) = body.remove("dimensions") {
            if !d.is_null() {
                body.insert("output_dimension".into(), d);
            }
        }
        if self.base64 {
            body.remove("encoding_format");
        }
        Ok(Value::Object(body))
    }
}

fn parse_input(v: Option<&Value>) -> Result<Input, LlmError> {
    const SHAPE: &str =
        "'input' must be a string, an array of strings, an array of integers (tokens) or an array of token arrays";
    let items = match v {
        None | Some(Value::Null) => {
            return Err(invalid("'input' is required: a string, an array of strings or an array of token arrays"))
        }
        Some(Value::String(s)) if s.is_empty() => return Err(invalid("'input' must not be an empty string")),
        Some(Value::String(s)) => return Ok(Input::Texts(vec![s.clone()])),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(invalid(SHAPE)),
    };
    match items.first() {
        None => Err(invalid("'input' must not be an empty array")),
        Some(Value::String(_)) => {
            let mut texts = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) if s.is_empty() => {
                        return Err(invalid(format!("'input[{i}]' must not be an empty string")))
                    }
                    Value::String(s) => texts.push(s.clone()),
                    _ => return Err(invalid(format!("'input[{i}]' must be a string like 'input[0]'"))),
                }
            }
            Ok(Input::Texts(texts))
        }
        Some(Value::Number(_)) => Ok(Input::Tokens(vec![token_array(items, "input")?])),
        Some(Value::Array(_)) => {
            let mut arrays = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::Array(a) if a.is_empty() => {
                        return Err(invalid(format!("'input[{i}]' must not be an empty token array")))
                    }
                    Value::Array(a) => arrays.push(token_array(a, &format!("input[{i}]"))?),
                    _ => return Err(invalid(format!("'input[{i}]' must be a token array like 'input[0]'"))),
                }
            }
            Ok(Input::Tokens(arrays))
        }
        Some(_) => Err(invalid(SHAPE)),
    }
}

fn token_array(items: &[Value], name: &str) -> Result<Vec<u64>, LlmError> {
    items
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.as_u64()
                .filter(|t| *t <= u64::from(u32::MAX))
                .ok_or_else(|| invalid(format!("'{name}[{i}]' must be a token: a non-negative integer")))
        })
        .collect()
}

fn too_many(provider: &str, what: &str, n: usize, max: usize) -> LlmError {
    invalid(format!(
        "'input' holds {n} texts but {what} on provider {provider} embeds at most {max} per call; split the request"
    ))
}

/// Gemini API: `batchEmbedContents`
/// (https://ai.google.dev/api/embeddings#method:-models.batchembedcontents).
/// Vertex AI: the text embeddings `predict` method
/// (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api).
fn gemini_request(
    req: &Request,
    texts: &[String],
    opts: &ProviderOptions,
) -> Result<(Value, Option<String>), LlmError> {
    let model = req.model.strip_prefix("models/").unwrap_or(&req.model);
    let segment = path_segment(model);
    if let Some(v) = &opts.gemini_vertex {
        let instances: Vec<Value> = texts.iter().map(|t| json!({ "content": t })).collect();
        let mut body = json!({ "instances": instances });
        if let Some(d) = req.dimensions {
            body["parameters"] = json!({ "outputDimensionality": d });
        }
        let path = format!(
            "/v1/projects/{}/locations/{}/publishers/google/models/{segment}:predict",
            path_segment(&v.project_id),
            path_segment(&v.location_id)
        );
        return Ok((body, Some(path)));
    }
    if texts.len() > GEMINI_MAX_INPUTS {
        return Err(too_many("gemini", "batchEmbedContents", texts.len(), GEMINI_MAX_INPUTS));
    }
    let resource = format!("models/{model}");
    let requests: Vec<Value> = texts
        .iter()
        .map(|t| {
            let mut r = json!({ "model": resource, "content": { "parts": [{ "text": t }] } });
            if let Some(d) = req.dimensions {
                r["outputDimensionality"] = Value::from(d);
            }
            r
        })
        .collect();
    Ok((json!({ "requests": requests }), Some(format!("/v1beta/models/{segment}:batchEmbedContents"))))
}

/// The Bedrock embeddings model families this module speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BedrockFamily {
    /// `amazon.titan-embed-text-*`: one `inputText` per call; `dimensions` from v2.
    Titan { has_dimensions: bool },
    /// `cohere.embed-*`: `texts`; `output_dimension` from v4.
    Cohere { has_dimensions: bool },
}

/// The family of a Bedrock model id, also behind a cross-region inference
/// profile prefix (`us.`, `eu.`, `apac.`, `global.`...) or an ARN's last segment.
fn bedrock_family(model: &str) -> Option<BedrockFamily> {
    let id = model.rsplit('/').next().unwrap_or(model);
    let id = match id.split_once('.') {
        Some((prefix, rest))
            if (rest.starts_with("amazon.") || rest.starts_with("cohere."))
                && prefix.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') =>
        {
            rest
        }
        _ => id,
    };
    if id.starts_with("amazon.titan-embed-text") {
        Some(BedrockFamily::Titan { has_dimensions: id.starts_with("amazon.titan-embed-text-v2") })
    } else if id.starts_with("cohere.embed-") {
        Some(BedrockFamily::Cohere { has_dimensions: id.starts_with("cohere.embed-v4") })
    } else {
        None
    }
}

/// Bedrock InvokeModel bodies: Titan Text Embeddings
/// (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html)
/// and Cohere Embed
/// (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed-v3.html,
/// https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed-v4.html).
fn bedrock_request(req: &Request, texts: &[String]) -> Result<(Value, Option<String>), LlmError> {
    let family = bedrock_family(&req.model).ok_or_else(|| {
        invalid(format!(
            "model '{}' is not an embeddings model the gateway can call on provider bedrock; use amazon.titan-embed-text-* or cohere.embed-*",
            req.model
        ))
    })?;
    let body = match family {
        BedrockFamily::Titan { has_dimensions } => {
            let [text] = texts else {
                return Err(too_many("bedrock", "Titan Text Embeddings", texts.len(), 1));
            };
            let mut body = json!({ "inputText": text });
            if let Some(d) = req.dimensions {
                if !has_dimensions {
                    return Err(unsupported("bedrock", "dimensions"));
                }
                body["dimensions"] = Value::from(d);
            }
            body
        }
        BedrockFamily::Cohere { has_dimensions } => {
            if texts.len() > COHERE_MAX_INPUTS {
                return Err(too_many("bedrock", "Cohere Embed", texts.len(), COHERE_MAX_INPUTS));
            }
            let mut body = json!({ "texts": texts, "input_type": "search_document" });
            if let Some(d) = req.dimensions {
                if !has_dimensions {
                    return Err(unsupported("bedrock", "dimensions"));
                }
                body["output_dimension"] = Value::from(d);
            }
            body
        }
    };
    Ok((body, Some(format!("/model/{}/invoke", path_segment(&req.model)))))
}

/// Cohere v2 embed (https://docs.cohere.com/reference/embed).
fn cohere_request(req: &Request, texts: &[String]) -> Result<Value, LlmError> {
    if texts.len() > COHERE_MAX_INPUTS {
        return Err(too_many("cohere", "embed", texts.len(), COHERE_MAX_INPUTS));
    }
    let mut body = json!({
        "model": req.model,
        "texts": texts,
        "input_type": "search_document",
        "embedding_types": ["float"],
    });
    if let Some(d) = req.dimensions {
        body["output_dimension"] = Value::from(d);
    }
    Ok(body)
}

/// Ollama `/api/embed` (https://docs.ollama.com/api/embed).
fn ollama_request(req: &Request, texts: &[String]) -> Value {
    let mut body = json!({ "model": req.model, "input": texts });
    if let Some(d) = req.dimensions {
        body["dimensions"] = Value::from(d);
    }
    body
}

/// Translates a successful (2xx) JSON answer into OpenAI's embeddings list. An
/// answer that is not the provider's format is a 502 naming the provider.
pub fn answer(provider: Provider, body: Bytes, meta: &EmbeddingsMeta) -> Result<Answer, LlmError> {
    let name = provider.name();
    let not_embeddings = || {
        LlmError::new(
            502,
            "upstream_error",
            format!("provider {name} returned an answer that is not an embeddings list"),
        )
    };
    if provider.speaks_openai() {
        let facts: OpenAiFacts = serde_json::from_slice(&body).map_err(|_| not_embeddings())?;
        let body = if provider == Provider::Mistral && meta.base64 {
            floats_to_base64(&body).ok_or_else(not_embeddings)?
        } else {
            body
        };
        return Ok(Answer {
            body,
            usage: facts.usage.map(Usage::from),
            model: facts.model,
            estimated_completion_tokens: None,
        });
    }
    let parsed = match provider {
        Provider::Gemini => gemini_answer(&body),
        Provider::Bedrock => bedrock_answer(&body),
        Provider::Cohere => cohere_answer(&body),
        Provider::Ollama => ollama_answer(&body),
        _ => None,
    }
    .ok_or_else(not_embeddings)?;
    if parsed.vectors.len() != meta.inputs {
        return Err(LlmError::new(
            502,
            "upstream_error",
            format!("provider {name} returned {} embeddings for {} inputs", parsed.vectors.len(), meta.inputs),
        ));
    }
    let prompt_tokens = parsed.prompt_tokens.unwrap_or(meta.estimated_prompt_tokens);
    let model = parsed.model.unwrap_or_else(|| meta.model.clone());
    let list = OutList {
        object: "list",
        data: parsed
            .vectors
            .into_iter()
            .enumerate()
            .map(|(index, v)| OutItem {
                object: "embedding",
                index,
                embedding: if meta.base64 { OutVector::Base64(base64_f32(&v)) } else { OutVector::Float(v) },
            })
            .collect(),
        model: &model,
        usage: OutUsage { prompt_tokens, total_tokens: prompt_tokens },
    };
    let body =
        serde_json::to_vec(&list).map_err(|e| LlmError::new(500, "internal_error", format!("encoding answer: {e}")))?;
    Ok(Answer {
        body: Bytes::from(body),
        usage: Some(Usage {
            prompt_tokens,
            completion_tokens: 0,
            total_tokens: prompt_tokens,
            cached_tokens: 0,
            ..Default::default()
        }),
        model: Some(model),
        estimated_completion_tokens: None,
    })
}

/// The parts of an OpenAI-format answer the gateway reads.
#[derive(Debug, Deserialize)]
struct OpenAiFacts {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
    /// Required: an answer without it is not an embeddings list.
    #[allow(dead_code)]
    data: Vec<IgnoredAny>,
}

/// Vectors from a translated provider's answer.
struct Parsed {
    vectors: Vec<Vec<f64>>,
    /// `None` when the provider reports no usage.
    prompt_tokens: Option<u64>,
    model: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GeminiAnswer {
    #[serde(default)]
    embeddings: Option<Vec<GeminiEmbedding>>,
    /// Vertex AI's `predict` answer.
    #[serde(default)]
    predictions: Option<Vec<VertexPrediction>>,
}

#[derive(Debug, Deserialize)]
struct GeminiEmbedding {
    values: Vec<f64>,
}

#[derive(Debug, Deserialize)]
struct VertexPrediction {
    embeddings: VertexEmbedding,
}

#[derive(Debug, Deserialize)]
struct VertexEmbedding {
    values: Vec<f64>,
    #[serde(default)]
    statistics: Option<VertexStatistics>,
}

#[derive(Debug, Deserialize)]
struct VertexStatistics {
    #[serde(default)]
    token_count: Option<f64>,
}

fn gemini_answer(body: &[u8]) -> Option<Parsed> {
    let a: GeminiAnswer = serde_json::from_slice(body).ok()?;
    if let Some(predictions) = a.predictions {
        let counts: Vec<f64> =
            predictions.iter().filter_map(|p| p.embeddings.statistics.as_ref()?.token_count).collect();
        let prompt_tokens = (!counts.is_empty()).then(|| counts.iter().sum::<f64>().max(0.0) as u64);
        let vectors = predictions.into_iter().map(|p| p.embeddings.values).collect();
        return Some(Parsed { vectors, prompt_tokens, model: None });
    }
    // The Gemini API reports no usage for embeddings: the answer's usage is the
    // estimate `prepare` made with `tokens::count_text` (o200k, not Gemini's
    // tokenizer), so budgets and logs get a figure of the right size.
    let vectors = a.embeddings?.into_iter().map(|e| e.values).collect();
    Some(Parsed { vectors, prompt_tokens: None, model: None })
}

/// Cohere's vectors: by type (`embedding_types` set, v2) or a bare list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CohereVectors {
    Floats(Vec<Vec<f64>>),
    ByType { float: Vec<Vec<f64>> },
}

impl CohereVectors {
    fn into_floats(self) -> Vec<Vec<f64>> {
        match self {
            CohereVectors::Floats(v) | CohereVectors::ByType { float: v } => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum BedrockAnswer {
    Titan {
        embedding: Vec<f64>,
        #[serde(default, rename = "inputTextTokenCount")]
        input_text_token_count: Option<u64>,
    },
    Cohere {
        embeddings: CohereVectors,
    },
}

fn bedrock_answer(body: &[u8]) -> Option<Parsed> {
    Some(match serde_json::from_slice(body).ok()? {
        BedrockAnswer::Titan { embedding, input_text_token_count } => {
            Parsed { vectors: vec![embedding], prompt_tokens: input_text_token_count, model: None }
        }
        // Cohere Embed on Bedrock reports its token count in a response header
        // only, which the answer does not see: usage is the estimate.
        BedrockAnswer::Cohere { embeddings } => {
            Parsed { vectors: embeddings.into_floats(), prompt_tokens: None, model: None }
        }
    })
}

#[derive(Debug, Deserialize)]
struct CohereAnswer {
    embeddings: CohereVectors,
    #[serde(default)]
    meta: Option<CohereMeta>,
}

#[derive(Debug, Deserialize)]
struct CohereMeta {
    #[serde(default)]
    billed_units: Option<CohereBilled>,
}

#[derive(Debug, Deserialize)]
struct CohereBilled {
    #[serde(default)]
    input_tokens: Option<f64>,
}

fn cohere_answer(body: &[u8]) -> Option<Parsed> {
    let a: CohereAnswer = serde_json::from_slice(body).ok()?;
    let prompt_tokens = a.meta.and_then(|m| m.billed_units?.input_tokens).map(|t| t.max(0.0) as u64);
    Some(Parsed { vectors: a.embeddings.into_floats(), prompt_tokens, model: None })
}

#[derive(Debug, Deserialize)]
struct OllamaAnswer {
    #[serde(default)]
    model: Option<String>,
    embeddings: Vec<Vec<f64>>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
}

fn ollama_answer(body: &[u8]) -> Option<Parsed> {
    let a: OllamaAnswer = serde_json::from_slice(body).ok()?;
    Some(Parsed { vectors: a.embeddings, prompt_tokens: a.prompt_eval_count, model: a.model })
}

#[derive(Serialize)]
struct OutList<'a> {
    object: &'static str,
    data: Vec<OutItem>,
    model: &'a str,
    usage: OutUsage,
}

#[derive(Serialize)]
struct OutItem {
    object: &'static str,
    index: usize,
    embedding: OutVector,
}

#[derive(Serialize)]
#[serde(untagged)]
enum OutVector {
    Float(Vec<f64>),
    Base64(String),
}

#[derive(Serialize)]
struct OutUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// An OpenAI-format answer with every float vector replaced by its base64
/// form. `None` when the body is not such an answer.
fn floats_to_base64(body: &[u8]) -> Option<Bytes> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    for item in v.get_mut("data")?.as_array_mut()? {
        let Some(e) = item.as_object_mut().and_then(|o| o.get_mut("embedding")) else {
            continue;
        };
        let Some(values) = e.as_array() else { continue };
        let floats: Vec<f64> = values.iter().map(Value::as_f64).collect::<Option<_>>()?;
        *e = Value::String(base64_f32(&floats));
    }
    serde_json::to_vec(&v).ok().map(Bytes::from)
}

/// OpenAI's base64 embedding: standard base64 (padded) of the vector's
/// little-endian `f32` bytes.
fn base64_f32(values: &[f64]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = values.iter().flat_map(|v| (*v as f32).to_le_bytes()).collect();
    let sextet = |n: u32, shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        out.push(sextet(n, 18));
        out.push(sextet(n, 12));
        out.push(if chunk.len() > 1 { sextet(n, 6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(n, 0) } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::VertexOptions;

    fn fixed(model: &str) -> ModelDefaults {
        ModelDefaults { name: Some(model.into()), ..ModelDefaults::default() }
    }

    fn body_of(call: &EmbeddingsCall) -> Value {
        serde_json::from_slice(&call.body).expect("json body")
    }

    fn prep(provider: Provider, model: &str, body: &str) -> Result<EmbeddingsCall, LlmError> {
        prepare(provider, body.as_bytes(), &fixed(model), &ProviderOptions::default())
    }

    fn answer_json(a: &Answer) -> Value {
        serde_json::from_slice(&a.body).expect("json answer")
    }

    fn meta(model: &str, inputs: usize, base64: bool, estimate: u64) -> EmbeddingsMeta {
        EmbeddingsMeta { model: model.into(), inputs, base64, estimated_prompt_tokens: estimate }
    }

    // Request and answer from https://platform.openai.com/docs/api-reference/embeddings/create
    // (vector shortened).
    const OPENAI_REQUEST: &str = r#"{"input":"The food was delicious and the waiter...","model":"text-embedding-ada-002","encoding_format":"float"}"#;
    const OPENAI_ANSWER: &str = r#"{"object":"list","data":[{"object":"embedding","embedding":[0.0023064255,-0.009327292,-0.0028842222],"index":0}],"model":"text-embedding-ada-002","usage":{"prompt_tokens":8,"total_tokens":8}}"#;

    #[test]
    fn openai_requests_and_answers_pass_through() {
        let c = prep(Provider::OpenAi, "text-embedding-ada-002", OPENAI_REQUEST).expect("prepared");
        assert_eq!(body_of(&c), serde_json::from_str::<Value>(OPENAI_REQUEST).expect("json"));
        assert_eq!((c.path, c.inputs, c.model.as_str()), (None, 1, "text-embedding-ada-002"));
        assert!(c.meta.estimated_prompt_tokens > 0);
        let a = answer(Provider::OpenAi, Bytes::from(OPENAI_ANSWER), &c.meta).expect("answer");
        assert_eq!(&a.body[..], OPENAI_ANSWER.as_bytes());
        let u = a.usage.expect("usage");
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.total_tokens), (8, 0, 8));
        assert_eq!(a.model.as_deref(), Some("text-embedding-ada-002"));
    }

    #[test]
    fn openai_format_applies_the_model_and_keeps_token_arrays_and_base64() {
        let body = r#"{"input":[[1,2,3],[4]],"encoding_format":"base64","dimensions":256,"user":"u"}"#;
        for p in [Provider::OpenAi, Provider::Azure, Provider::OpenAiCompatible] {
            let c = prep(p, "text-embedding-3-small", body).expect("prepared");
            let v = body_of(&c);
            assert_eq!(v["model"], "text-embedding-3-small");
            assert_eq!(v["input"], json!([[1, 2, 3], [4]]));
            assert_eq!((v["encoding_format"].as_str(), v["dimensions"].as_u64()), (Some("base64"), Some(256)));
            assert_eq!((c.inputs, c.meta.estimated_prompt_tokens, c.meta.base64), (2, 4, true));
        }
        let err = prep(Provider::OpenAi, "text-embedding-3-small", r#"{"model":"ada","input":"x"}"#)
            .expect_err("other model");
        assert!(err.message.contains("'ada' is not available"), "{}", err.message);
        let open = prepare(
            Provider::OpenAiCompatible,
            br#"{"model":"bge","input":"x"}"#,
            &ModelDefaults::default(),
            &ProviderOptions::default(),
        )
        .expect("open route");
        assert_eq!(open.model, "bge");
    }

    // Request and answer from https://docs.mistral.ai/api/endpoint/embeddings (vectors shortened).
    #[test]
    fn mistral_renames_dimensions_and_encodes_base64_itself() {
        let c = prep(Provider::Mistral, "mistral-embed", r#"{"input":"ipsum eiusmod","model":"mistral-embed"}"#)
            .expect("prepared");
        assert_eq!(body_of(&c), json!({"input": "ipsum eiusmod", "model": "mistral-embed"}));
        let c = prep(
            Provider::Mistral,
            "codestral-embed",
            r#"{"input":["a","b"],"dimensions":256,"encoding_format":"base64","user":"u"}"#,
        )
        .expect("prepared");
        let v = body_of(&c);
        assert_eq!(v["output_dimension"], 256);
        assert!(v.get("dimensions").is_none() && v.get("user").is_none() && v.get("encoding_format").is_none());
        let answer_body = r#"{"id":"embd-1","object":"list","data":[{"embedding":[1.0,-2.0],"index":0,"object":"embedding"},{"embedding":[0.5],"index":1,"object":"embedding"}],"model":"mistral-embed","usage":{"prompt_tokens":15,"completion_tokens":0,"total_tokens":15,"prompt_audio_seconds":null}}"#;
        let a = answer(Provider::Mistral, Bytes::from(answer_body), &c.meta).expect("answer");
        let v = answer_json(&a);
        assert_eq!(v["data"][0]["embedding"], base64_f32(&[1.0, -2.0]));
        assert_eq!(v["data"][1]["embedding"], "AAAAPw==");
        assert_eq!(v["id"], "embd-1");
        assert_eq!(a.usage.map(|u| u.prompt_tokens), Some(15));
        let err = prep(Provider::Mistral, "mistral-embed", r#"{"input":[1,2]}"#).expect_err("tokens");
        assert!(err.message.contains("'input' as token arrays") && err.message.contains("mistral"));
    }

    #[test]
    fn azure_and_provider_endpoints() {
        let opts = ProviderOptions {
            azure_instance: Some("inst".into()),
            azure_deployment_id: Some("emb".into()),
            aws_region: Some("us-east-1".into()),
            ..ProviderOptions::default()
        };
        assert_eq!(
            default_url(Provider::Azure, &opts).as_deref(),
            Some("https://inst.openai.azure.com/openai/deployments/emb/embeddings?api-version=2024-10-21")
        );
        assert_eq!(default_url(Provider::Azure, &ProviderOptions::default()), None);
        assert_eq!(default_url(Provider::OpenAi, &opts).as_deref(), Some("https://api.openai.com/v1/embeddings"));
        assert_eq!(default_url(Provider::Mistral, &opts).as_deref(), Some("https://api.mistral.ai/v1/embeddings"));
        assert_eq!(default_url(Provider::Cohere, &opts).as_deref(), Some("https://api.cohere.com/v2/embed"));
        assert_eq!(default_url(Provider::Ollama, &opts).as_deref(), Some("http://localhost:11434/api/embed"));
        assert_eq!(default_url(Provider::Gemini, &opts).as_deref(), Some("https://generativelanguage.googleapis.com"));
        assert_eq!(
            default_url(Provider::Bedrock, &opts).as_deref(),
            Some("https://bedrock-runtime.us-east-1.amazonaws.com")
        );
        assert_eq!(default_url(Provider::OpenAiCompatible, &opts), None);
        assert_eq!(default_url(Provider::Anthropic, &opts), None);
    }

    // Request shape from https://ai.google.dev/gemini-api/docs/embeddings (REST, batchEmbedContents)
    // and https://ai.google.dev/api/embeddings#method:-models.batchembedcontents; answer
    // shape {"embeddings":[{"values":[...]}]} from the same reference (vectors shortened).
    #[test]
    fn gemini_batch_request_and_answer_with_estimated_usage() {
        let c = prep(
            Provider::Gemini,
            "gemini-embedding-001",
            r#"{"input":["What is the meaning of life?","How much wood would a woodchuck chuck?"],"dimensions":768}"#,
        )
        .expect("prepared");
        assert_eq!(c.path.as_deref(), Some("/v1beta/models/gemini-embedding-001:batchEmbedContents"));
        assert_eq!(
            body_of(&c),
            json!({"requests": [
                {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "What is the meaning of life?"}]}, "outputDimensionality": 768},
                {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "How much wood would a woodchuck chuck?"}]}, "outputDimensionality": 768},
            ]})
        );
        let estimate = tokens::count_text("What is the meaning of life?\nHow much wood would a woodchuck chuck?");
        assert_eq!(c.meta.estimated_prompt_tokens, estimate);
        let body = r#"{"embeddings":[{"values":[-0.022374554,-0.004560777,0.013309286]},{"values":[0.01,0.02,0.03]}]}"#;
        let a = answer(Provider::Gemini, Bytes::from(body), &c.meta).expect("answer");
        let v = answer_json(&a);
        assert_eq!(v["object"], "list");
        assert_eq!(v["model"], "gemini-embedding-001");
        assert_eq!(v["data"][1], json!({"object": "embedding", "index": 1, "embedding": [0.01, 0.02, 0.03]}));
        assert_eq!(v["data"][0]["embedding"][0], -0.022374554);
        assert_eq!(v["usage"], json!({"prompt_tokens": estimate, "total_tokens": estimate}));
        assert_eq!(a.usage.map(|u| u.total_tokens), Some(estimate));
    }

    // Answer from https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api
    // (vector shortened).
    #[test]
    fn vertex_uses_predict_and_reports_its_token_count() {
        let opts = ProviderOptions {
            gemini_vertex: Some(VertexOptions {
                api_endpoint: "us-central1-aiplatform.googleapis.com".into(),
                project_id: "proj".into(),
                location_id: "us-central1".into(),
            }),
            ..ProviderOptions::default()
        };
        let c = prepare(
            Provider::Gemini,
            br#"{"input":"What is life?","dimensions":256}"#,
            &fixed("text-embedding-005"),
            &opts,
        )
        .expect("prepared");
        assert_eq!(
            c.path.as_deref(),
            Some("/v1/projects/proj/locations/us-central1/publishers/google/models/text-embedding-005:predict")
        );
        assert_eq!(
            body_of(&c),
            json!({"instances": [{"content": "What is life?"}], "parameters": {"outputDimensionality": 256}})
        );
        let body = r#"{"predictions":[{"embeddings":{"statistics":{"truncated":false,"token_count":6},"values":[0.0101,-0.0233]}}]}"#;
        let a = answer(Provider::Gemini, Bytes::from(body), &c.meta).expect("answer");
        assert_eq!(answer_json(&a)["usage"]["prompt_tokens"], 6);
    }

    // Titan V2 request/answer from
    // https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html
    #[test]
    fn bedrock_titan_takes_one_input() {
        let c = prep(Provider::Bedrock, "amazon.titan-embed-text-v2:0", r#"{"input":["hello"],"dimensions":512}"#)
            .expect("prepared");
        assert_eq!(c.path.as_deref(), Some("/model/amazon.titan-embed-text-v2%3A0/invoke"));
        assert_eq!(body_of(&c), json!({"inputText": "hello", "dimensions": 512}));
        let body =
            r#"{"embedding":[0.1,-0.2,0.3],"inputTextTokenCount":2,"embeddingsByType":{"float":[0.1,-0.2,0.3]}}"#;
        let a = answer(Provider::Bedrock, Bytes::from(body), &c.meta).expect("answer");
        let v = answer_json(&a);
        assert_eq!(v["data"][0]["embedding"], json!([0.1, -0.2, 0.3]));
        assert_eq!(v["usage"]["prompt_tokens"], 2);
        assert_eq!(v["model"], "amazon.titan-embed-text-v2:0");

        let err = prep(Provider::Bedrock, "amazon.titan-embed-text-v2:0", r#"{"input":["a","b"]}"#).expect_err("two");
        assert_eq!(err.status, 400);
        assert!(err.message.contains("'input'") && err.message.contains("at most 1"), "{}", err.message);
        let err = prep(Provider::Bedrock, "amazon.titan-embed-text-v1", r#"{"input":"a","dimensions":256}"#)
            .expect_err("v1 has no dimensions");
        assert!(err.message.contains("'dimensions'"), "{}", err.message);
        let c = prep(Provider::Bedrock, "us.amazon.titan-embed-text-v2:0", r#"{"input":"a"}"#).expect("profile");
        assert_eq!(body_of(&c), json!({"inputText": "a"}));
    }

    // Cohere Embed v3 on Bedrock, request/answer from
    // https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed-v3.html
    #[test]
    fn bedrock_cohere_request_and_answer() {
        let c =
            prep(Provider::Bedrock, "cohere.embed-english-v3", r#"{"input":["hello","goodbye"]}"#).expect("prepared");
        assert_eq!(c.path.as_deref(), Some("/model/cohere.embed-english-v3/invoke"));
        assert_eq!(body_of(&c), json!({"texts": ["hello", "goodbye"], "input_type": "search_document"}));
        let body = r#"{"embeddings":[[0.1,0.2],[0.3,0.4]],"id":"6d8e1f2a","response_type":"embeddings_floats","texts":["hello","goodbye"]}"#;
        let a = answer(Provider::Bedrock, Bytes::from(body), &c.meta).expect("answer");
        let v = answer_json(&a);
        assert_eq!(v["data"][1]["embedding"], json!([0.3, 0.4]));
        assert_eq!(v["usage"]["prompt_tokens"], c.meta.estimated_prompt_tokens);
        // Embed v4 answers by type and takes `output_dimension`.
        let c = prep(Provider::Bedrock, "cohere.embed-v4:0", r#"{"input":"x","dimensions":256}"#).expect("v4");
        assert_eq!(body_of(&c)["output_dimension"], 256);
        let by_type = r#"{"id":"1","embeddings":{"float":[[0.5]]},"response_type":"embeddings_by_type","texts":["x"]}"#;
        assert!(answer(Provider::Bedrock, Bytes::from(by_type), &c.meta).is_ok());
        let err =
            prep(Provider::Bedrock, "cohere.embed-english-v3", r#"{"input":"x","dimensions":256}"#).expect_err("v3");
        assert!(err.message.contains("'dimensions'"));
        let err = prep(Provider::Bedrock, "anthropic.claude-3-haiku-20240307-v1:0", r#"{"input":"x"}"#)
            .expect_err("chat model");
        assert!(err.message.contains("amazon.titan-embed-text-*"), "{}", err.message);
    }

    // Request from https://docs.cohere.com/reference/embed (curl, v2); answer from the
    // same reference's example (vectors shortened).
    #[test]
    fn cohere_request_and_answer() {
        let c = prep(Provider::Cohere, "embed-v4.0", r#"{"input":["hello","goodbye"],"dimensions":1024}"#)
            .expect("prepared");
        assert_eq!(c.path, None);
        assert_eq!(
            body_of(&c),
            json!({"model": "embed-v4.0", "texts": ["hello", "goodbye"], "input_type": "search_document",
                   "embedding_types": ["float"], "output_dimension": 1024})
        );
        let body = r#"{"id":"da6e531f-54c6-4a73-bf92-f60566d8d753","texts":["hello","goodbye"],"embeddings":{"float":[[0.016296387,-0.008354187],[-0.003417969,0.0005760193]]},"meta":{"api_version":{"version":"2","is_experimental":true},"billed_units":{"input_tokens":2}}}"#;
        let a = answer(Provider::Cohere, Bytes::from(body), &c.meta).expect("answer");
        let v = answer_json(&a);
        assert_eq!(v["data"][0]["embedding"], json!([0.016296387, -0.008354187]));
        assert_eq!(v["usage"], json!({"prompt_tokens": 2, "total_tokens": 2}));
        let err = prep(Provider::Cohere, "embed-v4.0", r#"{"input":"x","truncate":"END"}"#).expect_err("unknown field");
        assert!(err.message.contains("'truncate' is not supported by provider cohere"), "{}", err.message);
        let many = json!({"input": vec!["t"; 97]}).to_string();
        let err = prep(Provider::Cohere, "embed-v4.0", &many).expect_err("97");
        assert!(err.message.contains("'input' holds 97") && err.message.contains("at most 96"), "{}", err.message);
    }

    // Request and answer from https://docs.ollama.com/api/embed (vector shortened).
    #[test]
    fn ollama_request_and_answer() {
        let c = prep(Provider::Ollama, "all-minilm", r#"{"model":"all-minilm","input":"Why is the sky blue?"}"#)
            .expect("prepared");
        assert_eq!(body_of(&c), json!({"model": "all-minilm", "input": ["Why is the sky blue?"]}));
        let body = r#"{"model":"all-minilm","embeddings":[[0.010071029,-0.0017594862,0.05007221]],"total_duration":14143917,"load_duration":1019500,"prompt_eval_count":8}"#;
        let a = answer(Provider::Ollama, Bytes::from(body), &c.meta).expect("answer");
        let v = answer_json(&a);
        assert_eq!(v["data"][0]["embedding"], json!([0.010071029, -0.0017594862, 0.05007221]));
        assert_eq!(v["usage"]["total_tokens"], 8);
        assert_eq!(a.model.as_deref(), Some("all-minilm"));
        let c = prep(Provider::Ollama, "all-minilm", r#"{"input":"x","dimensions":128}"#).expect("dims");
        assert_eq!(body_of(&c)["dimensions"], 128);
    }

    #[test]
    fn base64_is_little_endian_f32() {
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[1.0, -2.0]), "AACAPwAAAMA=");
        assert_eq!(base64_f32(&[]), "");
        let m = meta("all-minilm", 1, true, 3);
        let a = answer(Provider::Ollama, Bytes::from(r#"{"embeddings":[[1.0,-2.0,0.5]]}"#), &m).expect("answer");
        let v = answer_json(&a);
        assert_eq!(v["data"][0]["embedding"], "AACAPwAAAMAAAAA/");
        assert_eq!(v["usage"]["prompt_tokens"], 3);
    }

    #[test]
    fn bad_requests_name_the_field() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("{", "not valid JSON"),
            ("[]", "JSON object"),
            ("{}", "'input' is required"),
            (r#"{"input":""}"#, "'input' must not be an empty string"),
            (r#"{"input":[]}"#, "'input' must not be an empty array"),
            (r#"{"input":7}"#, "'input' must be a string"),
            (r#"{"input":["a",""]}"#, "'input[1]' must not be an empty string"),
            (r#"{"input":["a",1]}"#, "'input[1]' must be a string"),
            (r#"{"input":[1,-2]}"#, "'input[1]' must be a token"),
            (r#"{"input":[1,"a"]}"#, "'input[1]' must be a token"),
            (r#"{"input":[[1],[]]}"#, "'input[1]' must not be an empty token array"),
            (r#"{"input":[[1],[2.5]]}"#, "'input[1][0]' must be a token"),
            (r#"{"input":[[1],"a"]}"#, "'input[1]' must be a token array"),
            (r#"{"input":[{}]}"#, "'input' must be a string"),
            (r#"{"input":"a","model":3}"#, "'model' must be a string"),
            (r#"{"input":"a","dimensions":0}"#, "'dimensions' must be a positive integer"),
            (r#"{"input":"a","dimensions":"256"}"#, "'dimensions' must be a positive integer"),
            (r#"{"input":"a","encoding_format":"int8"}"#, "'encoding_format' must be"),
            (r#"{"input":"a","user":1}"#, "'user' must be a string"),
        ];
        for (body, want) in cases {
            let err = prep(Provider::OpenAi, "m", body).expect_err(body);
            assert_eq!(err.status, 400, "{body}");
            assert!(err.message.contains(want), "{body}: {}", err.message);
        }
        for p in [Provider::Gemini, Provider::Bedrock, Provider::Cohere, Provider::Ollama] {
            let err = prep(p, "cohere.embed-english-v3", r#"{"input":[[1,2]]}"#).expect_err("tokens");
            assert!(
                err.message.contains("'input' as token arrays") && err.message.contains(p.name()),
                "{}",
                err.message
            );
        }
        let err = prep(Provider::Anthropic, "claude", r#"{"input":"x"}"#).expect_err("anthropic");
        assert!(err.message.contains("anthropic has no embeddings API"));
        let many = json!({"input": vec!["t"; 101]}).to_string();
        let err = prep(Provider::Gemini, "gemini-embedding-001", &many).expect_err("101");
        assert!(err.message.contains("at most 100"), "{}", err.message);
    }

    #[test]
    fn unparseable_or_short_answers_are_502_naming_the_provider() {
        let m = meta("m", 2, false, 0);
        for p in [
            Provider::OpenAi,
            Provider::Azure,
            Provider::Mistral,
            Provider::OpenAiCompatible,
            Provider::Gemini,
            Provider::Bedrock,
            Provider::Cohere,
            Provider::Ollama,
            Provider::Anthropic,
        ] {
            for body in [&b"<html>"[..], b"{}", br#"{"embeddings":"x"}"#, b"null"] {
                let err = answer(p, Bytes::from_static(body), &m).expect_err("not embeddings");
                assert_eq!(err.status, 502);
                assert!(err.message.contains(&format!("provider {}", p.name())), "{}", err.message);
            }
        }
        let err = answer(Provider::Ollama, Bytes::from(r#"{"embeddings":[[0.1]]}"#), &m).expect_err("one of two");
        assert!(err.message.contains("returned 1 embeddings for 2 inputs"), "{}", err.message);
    }
}

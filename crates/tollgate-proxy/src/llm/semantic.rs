//! Semantic balancing (Kong's `semantic` algorithm): the caller's last user
//! message is embedded with the configured embeddings model and the request
//! goes to the target whose `description` is most similar, if the similarity
//! reaches the threshold; otherwise to the `CATCHALL` target. Descriptions are
//! embedded once per config, on first use, and kept in memory.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::OnceCell;
use tollgate_cache::cosine;
use tollgate_llm::chat::{Message, Part};
use tollgate_llm::ingress::Request;
use tollgate_llm::provider::Call;
use tollgate_llm::{embeddings, ChatRequest, ModelDefaults};

use crate::llm::call::{send_request, upstream_error, CallIds};
use crate::llm::target::LlmTarget;
use crate::upstream::{read_all, release, Timeouts, Upstreams};

/// The description that marks the fallback target.
pub const CATCHALL: &str = "CATCHALL";
/// How long an embeddings call may take before the request is balanced without it.
const EMBED_TIMEOUT: Duration = Duration::from_secs(10);

pub struct SemanticRt {
    pub embedder: Arc<LlmTarget>,
    /// Least cosine similarity for a description to win.
    pub threshold: f64,
    pub catchall: Option<usize>,
    /// Target index and description, catch-all excluded.
    descriptions: Vec<(usize, String)>,
    vectors: OnceCell<Vec<(usize, Vec<f32>)>>,
}

impl SemanticRt {
    pub fn new(embedder: Arc<LlmTarget>, threshold: f64, descriptions: &[Option<String>]) -> Self {
        let catchall = descriptions.iter().position(|d| d.as_deref() == Some(CATCHALL));
        let descriptions = descriptions
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.clone().filter(|d| d != CATCHALL).map(|d| (i, d)))
            .collect();
        SemanticRt { embedder, threshold, catchall, descriptions, vectors: OnceCell::new() }
    }

    /// The target for this request: the best description above the threshold,
    /// else the catch-all. `Err` says why it could not be decided (the
    /// request is then balanced as if there were no semantics).
    pub async fn choose(&self, ups: &Upstreams, request: &Request, request_id: &str) -> Result<Option<usize>, String> {
        let Some(prompt) = last_user_text(request) else {
            return Ok(self.catchall);
        };
        let described = self
            .vectors
            .get_or_try_init(|| async {
                let texts: Vec<String> = self.descriptions.iter().map(|(_, d)| d.clone()).collect();
                let vectors = embed(ups, &self.embedder, &texts, request_id).await?;
                Ok::<_, String>(self.descriptions.iter().map(|(i, _)| *i).zip(vectors).collect())
            })
            .await?;
        let asked = embed(ups, &self.embedder, &[prompt], request_id).await?;
        let Some(asked) = asked.first() else {
            return Err("the embeddings model returned no vector".into());
        };
        let best = described
            .iter()
            .map(|(i, v)| (*i, cosine(asked, v)))
            .filter(|(_, s)| s.is_finite())
            .max_by(|a, b| a.1.total_cmp(&b.1));
        Ok(match best {
            Some((i, similarity)) if similarity >= self.threshold => Some(i),
            _ => self.catchall,
        })
    }
}

/// The text of the last user message that has some, in any caller format.
fn last_user_text(request: &Request) -> Option<String> {
    if let Request::Chat(chat) = request {
        return last_chat_user_text(chat);
    }
    // Other formats through their neutral form (the model does not matter).
    let chat = request.to_chat(&ModelDefaults::default()).ok()?;
    chat.messages.iter().rev().find_map(|m| match m {
        Message::User { parts } => {
            let text: Vec<&str> = parts
                .iter()
                .filter_map(|p| match p {
                    Part::Text(t) => Some(t.as_str()),
                    _ => None,
                })
                .collect();
            (!text.is_empty()).then(|| text.join("\n"))
        }
        _ => None,
    })
}

/// The text of the last user message of an OpenAI chat request (text parts joined).
fn last_chat_user_text(request: &ChatRequest) -> Option<String> {
    let messages = request.body().get("messages")?.as_array()?;
    let last = messages.iter().rev().find(|m| m.get("role").and_then(Value::as_str) == Some("user"))?;
    match last.get("content")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let text: Vec<&str> = parts
                .iter()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            (!text.is_empty()).then(|| text.join("\n"))
        }
        _ => None,
    }
}

/// Embeds `texts` with the embeddings target, through its provider's adapter.
pub(crate) async fn embed(
    ups: &Upstreams,
    target: &LlmTarget,
    texts: &[String],
    request_id: &str,
) -> Result<Vec<Vec<f32>>, String> {
    let body = serde_json::to_vec(&serde_json::json!({ "input": texts })).map_err(|e| e.to_string())?;
    let prepared = embeddings::prepare(target.kind, &body, &target.model, &target.options).map_err(|e| e.message)?;
    let call = Call {
        body: prepared.body,
        path: prepared.path,
        headers: Vec::new(),
        model: prepared.model,
        stream: false,
        client_wants_usage: false,
        ..Call::default()
    };
    let timeouts = Timeouts { connect: EMBED_TIMEOUT, read: EMBED_TIMEOUT, write: EMBED_TIMEOUT };
    let ids = CallIds { request_id, traceparent: None, tracestate: None };
    let (mut upstream, peer) = send_request(ups, target, &call, &ids, &timeouts)
        .await
        .map_err(|e| upstream_error(&e, &target.provider).message)?;
    let status = upstream.response_header().map(|h| h.status.as_u16()).unwrap_or(0);
    let answer = read_all(&mut upstream).await.map_err(|e| e.to_string())?;
    release(ups, upstream, &peer).await;
    if !(200..300).contains(&status) {
        return Err(tollgate_llm::provider::error(target.kind, status, &answer).message);
    }
    let openai = embeddings::answer(target.kind, answer, &prepared.meta).map_err(|e| e.message)?;
    let v: Value = serde_json::from_slice(&openai.body).map_err(|e| e.to_string())?;
    let data = v.get("data").and_then(Value::as_array).ok_or("embeddings answer without data")?;
    data.iter()
        .map(|d| {
            d.get("embedding")
                .and_then(Value::as_array)
                .map(|xs| xs.iter().filter_map(Value::as_f64).map(|x| x as f32).collect())
                .ok_or_else(|| "embeddings answer without a float vector".to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_user_message_is_what_is_embedded() {
        let req = ChatRequest::parse(
            br#"{"messages":[{"role":"user","content":"first"},{"role":"assistant","content":"x"},
                {"role":"user","content":[{"type":"text","text":"solve"},{"type":"image_url","image_url":{"url":"https://x/y.png"}},{"type":"text","text":"this"}]}]}"#,
        )
        .expect("valid");
        assert_eq!(last_user_text(&Request::Chat(req)).as_deref(), Some("solve\nthis"));
    }
}

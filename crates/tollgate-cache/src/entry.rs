//! The cached answer: provider-neutral (text, reasoning, tool calls, finish
//! reason, usage), collected from the answer the caller was sent, whatever
//! its format, and replayed in the format of whoever asks next, as JSON or
//! as a stream through the same renderers live answers use.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tollgate_llm::chat::{Thinking, ToolCall};
use tollgate_llm::completion::{AnswerMeta, Completion, FinishReason};
use tollgate_llm::ingress::{anthropic, responses, Ingress};
use tollgate_llm::stream::{ChunkWriter, Decoder, Delta, Render, Translator, UsageUpdate};
use tollgate_llm::{openai, Usage};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CachedAnswer {
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thinking: Vec<CachedThinking>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<CachedToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<CachedUsage>,
    /// `provider/model` of the target that answered.
    #[serde(default)]
    pub target: String,
    /// The provider that answered (metrics and limit headers of a hit).
    #[serde(default)]
    pub provider: String,
    /// Unix milliseconds when the entry stops being served (its TTL, read
    /// by a hit without asking the store again).
    #[serde(default)]
    pub expires_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CachedThinking {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CachedToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CachedUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    #[serde(default)]
    pub cached_tokens: u64,
    #[serde(default)]
    pub cache_write_tokens: u64,
    #[serde(default)]
    pub reasoning_tokens: u64,
}

impl From<Usage> for CachedUsage {
    fn from(u: Usage) -> Self {
        CachedUsage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            cached_tokens: u.cached_tokens,
            cache_write_tokens: u.cache_write_tokens,
            reasoning_tokens: u.reasoning_tokens,
        }
    }
}

impl CachedUsage {
    pub fn usage(self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            total_tokens: self.prompt_tokens.saturating_add(self.completion_tokens),
            cached_tokens: self.cached_tokens,
            cache_write_tokens: self.cache_write_tokens,
            reasoning_tokens: self.reasoning_tokens,
        }
    }
}

fn finish_of(name: &str) -> Option<FinishReason> {
    Some(match name {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        _ => return None,
    })
}

impl CachedAnswer {
    pub fn from_completion(c: &Completion) -> Self {
        CachedAnswer {
            model: c.model.clone(),
            text: c.text.clone(),
            thinking: c
                .thinking
                .iter()
                .map(|t| CachedThinking {
                    text: t.text.clone(),
                    signature: t.signature.clone(),
                    redacted: t.redacted.clone(),
                })
                .collect(),
            tool_calls: c
                .tool_calls
                .iter()
                .map(|t| CachedToolCall { id: t.id.clone(), name: t.name.clone(), arguments: t.arguments.clone() })
                .collect(),
            finish_reason: c.finish_reason.map(|f| f.as_str().to_string()),
            usage: c.usage.map(CachedUsage::from),
            target: String::new(),
            provider: String::new(),
            expires_ms: 0,
        }
    }

    /// A successful JSON answer as the caller (speaking `ingress`) was sent it.
    pub fn from_json(ingress: Ingress, body: &[u8]) -> Option<Self> {
        let meta = AnswerMeta::default();
        let c = match ingress {
            Ingress::OpenAiChat => openai::answer(body, &meta),
            Ingress::AnthropicMessages => tollgate_llm::anthropic::answer(body, &meta),
            Ingress::OpenAiResponses => responses::answer(body, &meta),
        }
        .ok()?;
        Some(Self::from_completion(&c))
    }

    /// The answer as a completion of this request (its id and time).
    pub fn to_completion(&self, meta: &AnswerMeta) -> Completion {
        Completion {
            id: meta.fallback_id.clone(),
            created: meta.created,
            model: self.model.clone(),
            text: self.text.clone(),
            thinking: self
                .thinking
                .iter()
                .map(|t| Thinking {
                    text: t.text.clone(),
                    signature: t.signature.clone(),
                    redacted: t.redacted.clone(),
                })
                .collect(),
            tool_calls: self
                .tool_calls
                .iter()
                .map(|t| ToolCall { id: t.id.clone(), name: t.name.clone(), arguments: t.arguments.clone() })
                .collect(),
            finish_reason: self.finish_reason.as_deref().and_then(finish_of),
            usage: self.usage.map(CachedUsage::usage),
        }
    }

    /// The JSON answer in the caller's format.
    pub fn json(&self, ingress: Ingress, meta: &AnswerMeta) -> Bytes {
        let c = self.to_completion(meta);
        match ingress {
            Ingress::OpenAiChat => c.to_openai(),
            Ingress::AnthropicMessages => anthropic::render(&c, meta),
            Ingress::OpenAiResponses => responses::render(&c, meta),
        }
    }

    /// The whole stream in the caller's format, through its live renderer.
    pub fn stream(&self, ingress: Ingress, meta: &AnswerMeta) -> Bytes {
        let deltas = self.deltas();
        match ingress {
            Ingress::OpenAiChat => replay(ChunkWriter::new(), deltas, meta),
            Ingress::AnthropicMessages => replay(anthropic::Writer::new(), deltas, meta),
            Ingress::OpenAiResponses => replay(responses::Writer::new(), deltas, meta),
        }
    }

    /// The answer as the deltas a provider's stream would have said it in:
    /// usage first (Anthropic's `message_start` carries the prompt's figures).
    fn deltas(&self) -> Vec<Delta> {
        let mut d = vec![Delta::Meta { id: None, model: Some(self.model.clone()) }];
        if let Some(u) = self.usage {
            d.push(Delta::Usage(UsageUpdate {
                prompt: Some(u.prompt_tokens),
                completion: Some(u.completion_tokens),
                cached: Some(u.cached_tokens),
                cache_write: Some(u.cache_write_tokens),
                reasoning: Some(u.reasoning_tokens),
            }));
        }
        for t in &self.thinking {
            match &t.redacted {
                Some(data) => d.push(Delta::RedactedThinking(data.clone())),
                None => d.push(Delta::Thinking(t.text.clone())),
            }
            if let Some(s) = &t.signature {
                d.push(Delta::ThinkingSignature(s.clone()));
            }
        }
        if let Some(t) = &self.text {
            d.push(Delta::Text(t.clone()));
        }
        for (i, c) in self.tool_calls.iter().enumerate() {
            let (id, name) = (Some(c.id.clone()), Some(c.name.clone()));
            d.push(Delta::ToolCall { index: i as u32, id, name, arguments: c.arguments.clone() });
        }
        if let Some(f) = self.finish_reason.as_deref().and_then(finish_of) {
            d.push(Delta::Finish(f));
        }
        d.push(Delta::Done);
        d
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        serde_json::from_slice(b).ok()
    }
}

/// A decoder with nothing to decode: the replayed deltas are written directly.
struct NoInput;

impl Decoder for NoInput {
    fn decode(&mut self, _: &[u8], _: &mut Vec<Delta>) {}
}

fn replay<R: Render>(render: R, deltas: Vec<Delta>, meta: &AnswerMeta) -> Bytes {
    let mut t = Translator::new(NoInput, render, meta.clone());
    let mut out = Vec::new();
    for delta in deltas {
        t.write(delta, &mut out);
    }
    Bytes::from(out)
}

/// Reads a stream in the caller's format as it is sent, and keeps the
/// answer it says; `finish` gives it only when the stream ended properly.
pub struct Collector {
    decoder: Box<dyn Decoder>,
    answer: CachedAnswer,
    usage: Option<UsageUpdate>,
    deltas: Vec<Delta>,
    done: bool,
    failed: bool,
}

impl Collector {
    pub fn new(ingress: Ingress) -> Self {
        let decoder: Box<dyn Decoder> = match ingress {
            Ingress::OpenAiChat => Box::new(openai::StreamDecoder::new()),
            Ingress::AnthropicMessages => Box::new(tollgate_llm::anthropic::StreamDecoder::new()),
            Ingress::OpenAiResponses => Box::new(responses::StreamDecoder::new()),
        };
        Collector {
            decoder,
            answer: CachedAnswer::default(),
            usage: None,
            deltas: Vec::new(),
            done: false,
            failed: false,
        }
    }

    /// The next bytes the caller was sent.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.decoder.decode(bytes, &mut self.deltas);
        self.take();
    }

    /// The stream ended: the answer when it ended with its end event and no error.
    pub fn finish(mut self) -> Option<CachedAnswer> {
        self.decoder.end(&mut self.deltas);
        self.take();
        if !self.done || self.failed {
            return None;
        }
        let mut a = self.answer;
        a.usage = self.usage.filter(|u| u.prompt.is_some() || u.completion.is_some()).map(|u| CachedUsage {
            prompt_tokens: u.prompt.unwrap_or(0),
            completion_tokens: u.completion.unwrap_or(0),
            cached_tokens: u.cached.unwrap_or(0),
            cache_write_tokens: u.cache_write.unwrap_or(0),
            reasoning_tokens: u.reasoning.unwrap_or(0),
        });
        Some(a)
    }

    fn take(&mut self) {
        for d in std::mem::take(&mut self.deltas) {
            self.apply(d);
        }
    }

    fn apply(&mut self, d: Delta) {
        let a = &mut self.answer;
        match d {
            Delta::Meta { model: Some(m), .. } if a.model.is_empty() => a.model = m,
            Delta::Meta { .. } => {}
            Delta::Text(t) => a.text.get_or_insert_with(String::new).push_str(&t),
            Delta::Thinking(t) => match a.thinking.last_mut() {
                Some(last) if last.signature.is_none() && last.redacted.is_none() => last.text.push_str(&t),
                _ => a.thinking.push(CachedThinking { text: t, ..CachedThinking::default() }),
            },
            Delta::ThinkingSignature(s) => match a.thinking.last_mut() {
                Some(last) => last.signature = Some(s),
                None => a.thinking.push(CachedThinking { signature: Some(s), ..CachedThinking::default() }),
            },
            Delta::RedactedThinking(r) => {
                a.thinking.push(CachedThinking { redacted: Some(r), ..CachedThinking::default() })
            }
            Delta::ToolCall { index, id, name, arguments } => {
                let i = index as usize;
                while a.tool_calls.len() <= i {
                    a.tool_calls.push(CachedToolCall::default());
                }
                let call = &mut a.tool_calls[i];
                if let Some(id) = id {
                    call.id = id;
                }
                if let Some(name) = name {
                    call.name = name;
                }
                call.arguments.push_str(&arguments);
            }
            Delta::Finish(f) => a.finish_reason = Some(f.as_str().to_string()),
            Delta::Usage(u) => self.usage.get_or_insert_with(UsageUpdate::default).merge(u),
            Delta::Done => self.done = true,
            Delta::Error(_) => self.failed = true,
        }
    }
}

#[cfg(test)]
mod tests;

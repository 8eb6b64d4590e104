//! What the mock does for the next model request: delays, error status,
//! faults. Tests change it through `POST /_mock/behavior`; a patch with
//! `times: N` queues a one-shot override that is used by the next N model
//! requests, after which the base behaviour applies again.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};

/// Misbehaviour at the transport or framing level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Read the request, then reset the TCP connection (RST) without answering.
    ResetBeforeHeaders,
    /// Headers announce the full Content-Length, half the body is sent, then
    /// the connection closes. For a streaming request this behaves like
    /// `ResetMidStream`.
    ResetMidBody,
    /// Half of the SSE events are sent, then the connection closes without the
    /// terminating chunk. For a non-streaming request this behaves like
    /// `ResetMidBody`.
    ResetMidStream,
    /// 200, `content-type: application/json`, body that is not JSON.
    Garbage,
    /// 200 with an empty body.
    EmptyBody,
    /// 502 with a `text/html` body, as a misconfigured load balancer would.
    Html,
}

/// Full behaviour in effect for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Behavior {
    /// Answer with this status and an error body when >= 400.
    pub status: Option<u16>,
    /// Raw error body instead of the provider's error JSON.
    pub error_body: Option<String>,
    /// `Retry-After` header on error answers.
    pub retry_after: Option<String>,
    /// Delay before the response headers.
    pub latency_ms: u64,
    /// Stream: delay before the first event.
    pub ttft_ms: u64,
    /// Stream: number of content pieces.
    pub chunks: usize,
    /// Stream: delay between events after the first.
    pub chunk_delay_ms: u64,
    /// Reported completion tokens; `None` means the number of chunks.
    pub completion_tokens: Option<u64>,
    pub fault: Option<Fault>,
    /// Answer requests that carry `tools` with a tool call.
    pub tool_call: bool,
    /// Text answers end as if cut by the request's output-token limit: each
    /// format's own reason (`length`, `max_tokens`, `MAX_TOKENS`...).
    pub hit_max_tokens: bool,
    /// OpenAI-format JSON answers leave out `usage`, as some OpenAI-compatible
    /// servers do.
    pub omit_usage: bool,
    /// Reasoning tokens reported when a request asks for reasoning (OpenAI
    /// Responses `reasoning.effort`, Anthropic `thinking`); `None` means the
    /// tokens of the mock's reasoning text. Counted in the output tokens on
    /// top of `completion_tokens`, as the providers do.
    pub reasoning_tokens: Option<u64>,
    /// Status of `GET /health` (200 when unset), for gateways' active health
    /// checks. Only the base behaviour counts: probes consume no `times`.
    pub health_status: Option<u16>,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            status: None,
            error_body: None,
            retry_after: None,
            latency_ms: 0,
            ttft_ms: 0,
            chunks: 8,
            chunk_delay_ms: 0,
            completion_tokens: None,
            fault: None,
            tool_call: false,
            hit_max_tokens: false,
            omit_usage: false,
            reasoning_tokens: None,
            health_status: None,
        }
    }
}

impl Behavior {
    /// Error status to answer with, if any (statuses below 400 mean "normal").
    pub fn error_status(&self) -> Option<u16> {
        self.status.filter(|s| *s >= 400)
    }

    /// Content pieces of a stream; at least one so the answer is never empty.
    pub fn chunk_count(&self) -> usize {
        self.chunks.max(1)
    }

    pub fn completion_tokens_or(&self, default: u64) -> u64 {
        self.completion_tokens.unwrap_or(default)
    }

    fn apply(&mut self, p: &BehaviorPatch) {
        if let Some(v) = p.status {
            self.status = v;
        }
        if let Some(v) = &p.error_body {
            self.error_body.clone_from(v);
        }
        if let Some(v) = &p.retry_after {
            self.retry_after = v.clone().map(|s| s.0);
        }
        if let Some(v) = p.latency_ms {
            self.latency_ms = v;
        }
        if let Some(v) = p.ttft_ms {
            self.ttft_ms = v;
        }
        if let Some(v) = p.chunks {
            self.chunks = v;
        }
        if let Some(v) = p.chunk_delay_ms {
            self.chunk_delay_ms = v;
        }
        if let Some(v) = p.completion_tokens {
            self.completion_tokens = v;
        }
        if let Some(v) = p.fault {
            self.fault = v;
        }
        if let Some(v) = p.tool_call {
            self.tool_call = v;
        }
        if let Some(v) = p.hit_max_tokens {
            self.hit_max_tokens = v;
        }
        if let Some(v) = p.omit_usage {
            self.omit_usage = v;
        }
        if let Some(v) = p.reasoning_tokens {
            self.reasoning_tokens = v;
        }
        if let Some(v) = p.health_status {
            self.health_status = v;
        }
    }
}

/// Body of `POST /_mock/behavior`. Absent fields keep their value; `null`
/// clears nullable fields. Unknown fields are rejected so that a typo in a
/// test fails loudly instead of silently doing nothing.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BehaviorPatch {
    #[serde(default, deserialize_with = "present")]
    pub status: Option<Option<u16>>,
    #[serde(default, deserialize_with = "present")]
    pub error_body: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub retry_after: Option<Option<StringOrNumber>>,
    pub latency_ms: Option<u64>,
    pub ttft_ms: Option<u64>,
    pub chunks: Option<usize>,
    pub chunk_delay_ms: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub completion_tokens: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    pub fault: Option<Option<Fault>>,
    pub tool_call: Option<bool>,
    pub hit_max_tokens: Option<bool>,
    pub omit_usage: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub reasoning_tokens: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    pub health_status: Option<Option<u16>>,
    /// Apply to the next N model requests only.
    pub times: Option<u32>,
}

/// Distinguishes "field present with null" (Some(None)) from "absent" (None,
/// via `#[serde(default)]`).
fn present<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `retry_after` may be given as `"2"` or `2`; the header value is a string.
#[derive(Debug, Clone)]
pub struct StringOrNumber(pub String);

impl<'de> Deserialize<'de> for StringOrNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            N(serde_json::Number),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::S(s) => StringOrNumber(s),
            Raw::N(n) => StringOrNumber(n.to_string()),
        })
    }
}

impl BehaviorPatch {
    fn validate(&self) -> Result<(), String> {
        if let Some(Some(s)) = self.status {
            if http::StatusCode::from_u16(s).is_err() || s > 599 {
                return Err(format!("invalid status {s}"));
            }
        }
        if let Some(Some(s)) = self.health_status {
            if !(100..=599).contains(&s) {
                return Err(format!("invalid health_status {s}"));
            }
        }
        if let Some(Some(v)) = &self.retry_after {
            if http::HeaderValue::from_str(&v.0).is_err() {
                return Err("retry_after is not a valid header value".into());
            }
        }
        if self.times == Some(0) {
            return Err("times must be at least 1 (or null for a permanent change)".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct PendingOverride {
    pub behavior: Arc<Behavior>,
    pub remaining: u32,
}

/// Base behaviour plus FIFO of one-shot overrides.
#[derive(Debug)]
pub struct BehaviorState {
    defaults: Arc<Behavior>,
    base: Arc<Behavior>,
    overrides: VecDeque<PendingOverride>,
}

impl BehaviorState {
    pub fn new(defaults: Behavior) -> Self {
        let defaults = Arc::new(defaults);
        BehaviorState { base: defaults.clone(), defaults, overrides: VecDeque::new() }
    }

    /// Merge a patch: into the base when `times` is absent, else queue an
    /// override built from the current base.
    pub fn apply(&mut self, patch: &BehaviorPatch) -> Result<(), String> {
        patch.validate()?;
        match patch.times {
            Some(n) => {
                let mut b = (*self.base).clone();
                b.apply(patch);
                self.overrides.push_back(PendingOverride { behavior: Arc::new(b), remaining: n });
            }
            None => Arc::make_mut(&mut self.base).apply(patch),
        }
        Ok(())
    }

    /// Behaviour for the next model request; consumes one use of the oldest
    /// pending override. An Arc so the hot path clones a pointer, not strings.
    pub fn take_next(&mut self) -> Arc<Behavior> {
        if let Some(front) = self.overrides.front_mut() {
            let b = front.behavior.clone();
            front.remaining = front.remaining.saturating_sub(1);
            if front.remaining == 0 {
                self.overrides.pop_front();
            }
            return b;
        }
        self.base.clone()
    }

    /// What `GET /health` answers: the base behaviour's `health_status`, else 200.
    pub fn health_status(&self) -> u16 {
        self.base.health_status.unwrap_or(200)
    }

    /// Back to the CLI defaults, dropping pending overrides.
    pub fn reset(&mut self) {
        self.base = self.defaults.clone();
        self.overrides.clear();
    }

    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({
            "behavior": &*self.base,
            "pending": self
                .overrides
                .iter()
                .map(|o| serde_json::json!({"behavior": &*o.behavior, "remaining": o.remaining}))
                .collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(json: &str) -> BehaviorPatch {
        serde_json::from_str(json).expect("valid patch")
    }

    #[test]
    fn health_status_is_the_base_behaviours_and_null_restores_200() {
        let mut st = BehaviorState::new(Behavior::default());
        assert_eq!(st.health_status(), 200);
        st.apply(&patch(r#"{"health_status":503}"#)).expect("ok");
        assert_eq!(st.health_status(), 503);
        st.apply(&patch(r#"{"health_status":200,"times":1}"#)).expect("ok");
        assert_eq!(st.health_status(), 503, "one-shot overrides are for model requests");
        st.apply(&patch(r#"{"health_status":null}"#)).expect("ok");
        assert_eq!(st.health_status(), 200);
        assert!(st.apply(&patch(r#"{"health_status":42}"#)).is_err());
    }

    #[test]
    fn merge_keeps_absent_fields_and_clears_null() {
        let mut st = BehaviorState::new(Behavior::default());
        st.apply(&patch(r#"{"status":500,"latency_ms":5,"retry_after":2}"#)).expect("ok");
        let b = st.take_next();
        assert_eq!(b.status, Some(500));
        assert_eq!(b.latency_ms, 5);
        assert_eq!(b.retry_after.as_deref(), Some("2"));
        assert_eq!(b.chunks, 8);

        st.apply(&patch(r#"{"status":null}"#)).expect("ok");
        let b = st.take_next();
        assert_eq!(b.status, None);
        assert_eq!(b.latency_ms, 5, "absent field untouched");
    }

    #[test]
    fn times_applies_n_requests_then_previous_returns() {
        let mut st = BehaviorState::new(Behavior::default());
        st.apply(&patch(r#"{"status":429,"times":2}"#)).expect("ok");
        st.apply(&patch(r#"{"fault":"garbage","times":1}"#)).expect("ok");
        assert_eq!(st.take_next().status, Some(429));
        assert_eq!(st.take_next().status, Some(429));
        let third = st.take_next();
        assert_eq!(third.status, None);
        assert_eq!(third.fault, Some(Fault::Garbage));
        assert_eq!(*st.take_next(), Behavior::default());
    }

    #[test]
    fn override_is_built_on_base() {
        let mut st = BehaviorState::new(Behavior::default());
        st.apply(&patch(r#"{"chunks":3}"#)).expect("ok");
        st.apply(&patch(r#"{"status":503,"times":1}"#)).expect("ok");
        let b = st.take_next();
        assert_eq!((b.status, b.chunks), (Some(503), 3));
        let b = st.take_next();
        assert_eq!((b.status, b.chunks), (None, 3));
    }

    #[test]
    fn reset_restores_defaults() {
        let defaults = Behavior { chunks: 2, ..Behavior::default() };
        let mut st = BehaviorState::new(defaults.clone());
        st.apply(&patch(r#"{"chunks":5}"#)).expect("ok");
        st.apply(&patch(r#"{"status":500,"times":3}"#)).expect("ok");
        st.reset();
        assert_eq!(*st.take_next(), defaults);
    }

    #[test]
    fn invalid_patches_are_rejected() {
        let mut st = BehaviorState::new(Behavior::default());
        assert!(st.apply(&patch(r#"{"times":0}"#)).is_err());
        assert!(st.apply(&patch(r#"{"status":1000}"#)).is_err());
        assert!(serde_json::from_str::<BehaviorPatch>(r#"{"stauts":429}"#).is_err());
        assert!(serde_json::from_str::<BehaviorPatch>(r#"{"fault":"nope"}"#).is_err());
    }

    #[test]
    fn error_status_only_from_400() {
        let b = Behavior { status: Some(200), ..Behavior::default() };
        assert_eq!(b.error_status(), None);
    }
}

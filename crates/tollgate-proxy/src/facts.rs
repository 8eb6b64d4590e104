//! What the gateway learned about one exchange, for metrics, the access log,
//! traces and limit settlement.

use std::time::Duration;

use tollgate_llm::Usage;

/// Facts about the LLM exchange, for metrics and the access log.
#[derive(Debug, Default, Clone)]
pub struct LlmFacts {
    pub provider: String,
    /// What the caller spoke (`openai_chat`, `anthropic_messages`...).
    pub request_format: &'static str,
    /// `provider/model` of the target that served.
    pub target: String,
    pub request_model: String,
    pub response_model: Option<String>,
    pub stream: bool,
    pub usage: Option<Usage>,
    /// The usage was counted by the gateway, not reported by the provider.
    pub usage_estimated: bool,
    pub upstream_status: Option<u16>,
    pub latency: Option<Duration>,
    pub ttft: Option<Duration>,
    pub client_cancelled: bool,
    pub log_statistics: bool,
    pub input_cost: Option<f64>,
    pub output_cost: Option<f64>,
    pub cache_read_cost: Option<f64>,
    pub cache_write_cost: Option<f64>,
    /// `ai-semantic-cache`'s verdict (`hit`, `miss`, `bypass`, `refresh`), empty without the plugin.
    pub cache_status: &'static str,
    /// `logging.log_payloads`: the caller's request and the answer sent back,
    /// each cut at `PAYLOAD_LOG_LIMIT` bytes.
    pub payloads: Option<Payloads>,
    /// Targets tried before the one that answered, each with why it failed
    /// (`anthropic/claude-3: http_503`).
    pub failed_attempts: Vec<String>,
}

/// Most bytes of a request or an answer one access-log line carries.
pub const PAYLOAD_LOG_LIMIT: usize = 64 * 1024;

#[derive(Debug, Clone, Default)]
pub struct Payloads {
    pub request: String,
    pub response: String,
    pub truncated: bool,
}

impl Payloads {
    /// Appends answer bytes up to the limit.
    pub fn push_response(&mut self, bytes: &[u8]) {
        let room = PAYLOAD_LOG_LIMIT.saturating_sub(self.response.len());
        if bytes.len() > room {
            self.truncated = true;
        }
        self.response.push_str(&String::from_utf8_lossy(&bytes[..bytes.len().min(room)]));
    }

    pub fn request(bytes: &[u8]) -> Self {
        let mut p = Payloads::default();
        if bytes.len() > PAYLOAD_LOG_LIMIT {
            p.truncated = true;
        }
        p.request = String::from_utf8_lossy(&bytes[..bytes.len().min(PAYLOAD_LOG_LIMIT)]).into_owned();
        p
    }
}

impl LlmFacts {
    pub fn cost(&self) -> Option<f64> {
        let u = self.usage?;
        if self.input_cost.is_none() && self.output_cost.is_none() {
            return None;
        }
        Some(u.priced(&self.prices()))
    }

    /// The target's prices, for cost and cost-based limits.
    pub fn prices(&self) -> tollgate_llm::Prices {
        tollgate_llm::Prices {
            input: self.input_cost.unwrap_or(0.0),
            output: self.output_cost.unwrap_or(0.0),
            cache_read: self.cache_read_cost,
            cache_write: self.cache_write_cost,
        }
    }

    /// Provider latency per completion token, in milliseconds (none without
    /// completion tokens).
    pub fn time_per_output_token_ms(&self) -> Option<f64> {
        let (l, u) = (self.latency?, self.usage?);
        (u.completion_tokens > 0).then(|| l.as_secs_f64() * 1000.0 / u.completion_tokens as f64)
    }
}

/// Facts about an MCP request, for metrics and the audit line in the access log.
#[derive(Debug, Default, Clone)]
pub struct McpFacts {
    /// The JSON-RPC method (`batch` for several, `response` for a client's
    /// answer), or the HTTP method for GET and DELETE.
    pub method: String,
    /// The tool a `tools/call` named.
    pub tool: Option<String>,
    /// allowed, denied, limited, invalid, unknown_session or error.
    pub decision: &'static str,
    pub replica: Option<String>,
    pub upstream_status: Option<u16>,
    pub latency: Option<Duration>,
}

//! Token usage as reported by a provider (or estimated when it reports none).

use serde::Deserialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// Prompt tokens served from the provider's cache, where reported.
    pub cached_tokens: u64,
    /// Prompt tokens written to the provider's cache (Anthropic's
    /// `cache_creation_input_tokens`, Bedrock's `cacheWriteInputTokens`);
    /// part of `prompt_tokens`, like `cached_tokens`.
    pub cache_write_tokens: u64,
    /// Completion tokens spent on reasoning, where reported; part of
    /// `completion_tokens`.
    pub reasoning_tokens: u64,
}

/// OpenAI's `usage` object; unknown fields are ignored on purpose (providers add some).
#[derive(Debug, Deserialize, Default)]
pub(crate) struct OpenAiUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: Option<u64>,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    #[serde(default)]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct CompletionTokensDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct PromptTokensDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

impl From<OpenAiUsage> for Usage {
    fn from(u: OpenAiUsage) -> Self {
        Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens.unwrap_or(u.prompt_tokens + u.completion_tokens),
            cached_tokens: u.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0),
            cache_write_tokens: 0,
            reasoning_tokens: u.completion_tokens_details.and_then(|d| d.reasoning_tokens).unwrap_or(0),
        }
    }
}

impl Usage {
    /// Cost in dollars given prices per million input and output tokens.
    pub fn cost(&self, input_per_million: f64, output_per_million: f64) -> f64 {
        (self.prompt_tokens as f64 * input_per_million + self.completion_tokens as f64 * output_per_million)
            / 1_000_000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_uses_prices_per_million() {
        let u = Usage {
            prompt_tokens: 1000,
            completion_tokens: 500,
            total_tokens: 1500,
            cached_tokens: 0,
            ..Usage::default()
        };
        // 1000 * 2.5 / 1e6 + 500 * 10 / 1e6
        assert!((u.cost(2.5, 10.0) - 0.0075).abs() < 1e-12);
    }
}

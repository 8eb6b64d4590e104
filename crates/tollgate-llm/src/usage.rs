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
        self.priced(&Prices { input: input_per_million, output: output_per_million, ..Prices::default() })
    }

    /// Cost in dollars: prompt tokens read from the provider's cache and
    /// written to it at their own prices (`None`: a tenth and 1.25 times the
    /// input price, Anthropic's ratios), the rest of the prompt at the input
    /// price, the completion at the output price.
    pub fn priced(&self, p: &Prices) -> f64 {
        let read = self.cached_tokens.min(self.prompt_tokens);
        let write = self.cache_write_tokens.min(self.prompt_tokens - read);
        let plain = self.prompt_tokens - read - write;
        let read_price = p.cache_read.unwrap_or(p.input * CACHE_READ_RATIO);
        let write_price = p.cache_write.unwrap_or(p.input * CACHE_WRITE_RATIO);
        (plain as f64 * p.input
            + read as f64 * read_price
            + write as f64 * write_price
            + self.completion_tokens as f64 * p.output)
            / 1_000_000.0
    }
}

/// A cache read's price against the input price, when none is configured (Anthropic's).
pub const CACHE_READ_RATIO: f64 = 0.1;
/// A cache write's price against the input price, when none is configured
/// (Anthropic's 5-minute cache writes).
pub const CACHE_WRITE_RATIO: f64 = 1.25;

/// Dollars per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Prices {
    pub input: f64,
    pub output: f64,
    pub cache_read: Option<f64>,
    pub cache_write: Option<f64>,
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

    #[test]
    fn cache_reads_and_writes_have_their_own_prices() {
        // 1000 prompt tokens: 600 read from the cache, 300 written to it, 100 plain.
        let u = Usage {
            prompt_tokens: 1000,
            completion_tokens: 10,
            cached_tokens: 600,
            cache_write_tokens: 300,
            ..Usage::default()
        };
        let by_default = Prices { input: 3.0, output: 15.0, ..Prices::default() };
        // 100*3 + 600*0.3 + 300*3.75 + 10*15 = 300 + 180 + 1125 + 150
        assert!((u.priced(&by_default) - 1755.0 / 1e6).abs() < 1e-12);
        let set = Prices { cache_read: Some(1.0), cache_write: Some(2.0), ..by_default };
        // 100*3 + 600*1 + 300*2 + 10*15
        assert!((u.priced(&set) - 1650.0 / 1e6).abs() < 1e-12);
        // Without cache figures it is the plain price.
        let plain = Usage { cached_tokens: 0, cache_write_tokens: 0, ..u };
        assert!((plain.priced(&by_default) - plain.cost(3.0, 15.0)).abs() < 1e-15);
        assert!((plain.cost(3.0, 15.0) - 3150.0 / 1e6).abs() < 1e-12);
    }
}

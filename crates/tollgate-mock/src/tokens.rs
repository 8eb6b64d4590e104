//! Token arithmetic shared by all providers. The mock does not tokenize; it
//! uses the common "4 characters per token" approximation so that tests can
//! predict usage numbers exactly.

/// Approximate token count of `chars` characters: ceil(chars / 4).
pub fn approx_tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4)
}

/// Prompt tokens for a request with `chars` characters of text: never 0,
/// because real providers always count at least the message framing.
pub fn prompt_tokens(chars: usize) -> u64 {
    approx_tokens(chars).max(1)
}

/// Token usage of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl Usage {
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Usage { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens }
    }
}

/// Split `text` into exactly `n` pieces (n >= 1) of nearly equal character
/// count, on char boundaries. Pieces may be empty when `text` is shorter than `n`.
pub fn split_even(text: &str, n: usize) -> Vec<&str> {
    let n = n.max(1);
    // Byte offset of every char start plus the end, so piece i covers chars
    // [i*len/n, (i+1)*len/n).
    let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).chain(std::iter::once(text.len())).collect();
    let len = bounds.len() - 1;
    (0..n)
        .map(|i| {
            let start = bounds[i * len / n];
            let end = bounds[(i + 1) * len / n];
            &text[start..end]
        })
        .collect()
}

/// First `max` characters of `text` (not bytes, so multi-byte text is safe).
pub fn prefix_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_up_and_never_zero_for_prompts() {
        assert_eq!(approx_tokens(0), 0);
        assert_eq!(approx_tokens(1), 1);
        assert_eq!(approx_tokens(4), 1);
        assert_eq!(approx_tokens(5), 2);
        assert_eq!(prompt_tokens(0), 1);
        assert_eq!(prompt_tokens(9), 3);
    }

    #[test]
    fn usage_total_is_sum() {
        let u = Usage::new(7, 8);
        assert_eq!(u.total_tokens, 15);
    }

    #[test]
    fn split_even_covers_text_exactly() {
        let text = "mock reply to: hello wörld";
        for n in 1..40 {
            let pieces = split_even(text, n);
            assert_eq!(pieces.len(), n);
            assert_eq!(pieces.concat(), text);
        }
        assert_eq!(split_even("abcd", 2), vec!["ab", "cd"]);
        assert_eq!(split_even("", 3), vec!["", "", ""]);
        assert_eq!(split_even("abc", 0), vec!["abc"]);
    }

    #[test]
    fn prefix_is_char_based() {
        assert_eq!(prefix_chars("héllo", 2), "hé");
        assert_eq!(prefix_chars("hi", 60), "hi");
    }
}

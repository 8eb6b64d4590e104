//! bedrock adapter (to be written): request, answer and stream translation.

use serde_json::{Map, Value};

use crate::chat::Chat;
use crate::completion::{AnswerMeta, Completion};
use crate::provider::ProviderOptions;
use crate::stream::{Decoder, Delta};
use crate::LlmError;

/// The provider's request body for a chat request.
pub fn request(_chat: &Chat, _opts: &ProviderOptions) -> Result<Map<String, Value>, LlmError> {
    Ok(Map::new())
}

/// A successful JSON answer, parsed.
pub fn answer(_body: &[u8], _meta: &AnswerMeta) -> Result<Completion, LlmError> {
    Err(LlmError::new(502, "upstream_error", "provider bedrock is not translated yet"))
}

/// Decodes the provider's stream.
#[derive(Debug, Default)]
pub struct StreamDecoder {}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Decoder for StreamDecoder {
    fn decode(&mut self, _input: &[u8], _out: &mut Vec<Delta>) {}
}

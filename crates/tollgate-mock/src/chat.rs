//! What the mock answers to a chat request, whatever the wire format: the
//! prompt's size and last user message, the echoed reply text or the mock
//! tool call, the usage numbers and the stream pacing. Each format module
//! (`openai`, `native::*`) only parses its request into a [`Prompt`] and a
//! tool name, and serializes the resulting [`Answer`] in its own shapes, so
//! the behaviour knobs mean the same thing in every format:
//!
//! * `completion_tokens` (default: `chunks` for text, 2 for a tool call) is
//!   the completion/output token count every format reports;
//! * a stream sends its first event after `ttft_ms`, then each content piece
//!   (one of `chunks` text pieces, or one of the 2 tool-argument pieces) after
//!   `chunk_delay_ms`, and its closing events at once. Formats without an
//!   opening event (Gemini, Ollama) send their first piece after
//!   `ttft_ms + chunk_delay_ms`; formats that deliver a tool call whole
//!   (Gemini, Ollama) send it when the last argument piece would have come.
//!   So every stream lasts `ttft_ms + pieces * chunk_delay_ms`; an answer
//!   with reasoning (Anthropic thinking, a Responses reasoning summary)
//!   streams [`REASONING_PIECES`] more pieces, paced the same.
//! * [`Reasoning`] is what the mock thinks when asked to reason; its tokens
//!   (behaviour `reasoning_tokens`, default the text's) count in the output
//!   tokens on top of `completion_tokens`.

use std::borrow::Cow;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::behavior::Behavior;
use crate::tokens;

/// A message in OpenAI's chat shape, which Cohere v2 and Ollama share.
#[derive(Deserialize)]
pub struct Message<'a> {
    #[serde(default, borrow)]
    pub role: Option<Cow<'a, str>>,
    /// String, array of `{"type":"text","text":...}` parts, or null
    /// (assistant tool-call turns).
    #[serde(default)]
    pub content: Option<Value>,
    /// An assistant turn's tool calls (only their ids matter here).
    #[serde(default, borrow)]
    pub tool_calls: Option<Vec<ToolCallRef<'a>>>,
    /// A `tool` message: the call it answers.
    #[serde(default, borrow)]
    pub tool_call_id: Option<Cow<'a, str>>,
}

/// A tool call of an assistant message, as far as the mock reads it.
#[derive(Deserialize)]
pub struct ToolCallRef<'a> {
    /// Absent in Ollama's shape.
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
}

/// A tool in OpenAI's shape (`{"type":"function","function":{"name":...}}`).
#[derive(Deserialize)]
pub struct Tool<'a> {
    #[serde(default, borrow)]
    pub function: Option<ToolFunction<'a>>,
}

#[derive(Deserialize)]
pub struct ToolFunction<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
}

impl Prompt {
    /// The prompt of OpenAI-shaped messages.
    pub fn of_messages(messages: &[Message<'_>]) -> Prompt {
        let mut prompt = Prompt::default();
        for m in messages {
            if let Some(c) = &m.content {
                prompt.add_message(m.role.as_deref(), c);
            }
        }
        prompt
    }
}

/// The name of the first function tool, which the mock calls when asked to.
pub fn first_tool<'t>(tools: Option<&'t [Tool<'_>]>) -> Option<&'t str> {
    tools.and_then(|t| t.iter().find_map(|t| t.function.as_ref())).map(|f| f.name.as_ref())
}

/// How much of the last user message is echoed back.
pub const ECHO_CHARS: usize = 60;
/// Arguments of the mock tool call (a JSON object), and how streams split them.
pub const TOOL_ARGS: &str = r#"{"x":1}"#;
pub const TOOL_ARG_PIECES: [&str; 2] = [r#"{"x":"#, "1}"];
/// Model name when the request names none.
pub const DEFAULT_MODEL: &str = "mock-model";
/// How many pieces a stream splits the reasoning text into.
pub const REASONING_PIECES: usize = 2;

/// What the mock "thinks" before answering, when a request asks for
/// reasoning (Anthropic `thinking`, OpenAI Responses `reasoning`): the
/// thinking block's text, or the reasoning summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reasoning {
    pub text: String,
    /// Reasoning tokens (behaviour `reasoning_tokens`, else the text's).
    pub tokens: u64,
}

impl Reasoning {
    pub fn new(prompt: &Prompt, behavior: &Behavior) -> Self {
        let text = format!("mock reasoning about: {}", tokens::prefix_chars(&prompt.last_user, ECHO_CHARS));
        let tokens = behavior.reasoning_tokens.unwrap_or_else(|| tokens::approx_tokens(text.chars().count()));
        Reasoning { text, tokens }
    }

    /// The [`REASONING_PIECES`] pieces a stream sends.
    pub fn pieces(&self) -> Vec<&str> {
        tokens::split_even(&self.text, REASONING_PIECES)
    }
}

/// The mock tool call's arguments as a JSON value, for formats that send an
/// object rather than a string (Anthropic, Gemini, Bedrock, Ollama).
pub fn tool_args_value() -> Value {
    serde_json::json!({"x": 1})
}

/// Calls `f` with every text fragment of a message content: a plain string,
/// or the `text` of each part of an array (OpenAI and Cohere content parts,
/// Anthropic blocks, Gemini parts, Bedrock content blocks).
pub fn for_each_text(content: &Value, mut f: impl FnMut(&str)) {
    match content {
        Value::String(s) => f(s),
        Value::Array(parts) => {
            for p in parts {
                if let Some(t) = p.get("text").and_then(Value::as_str) {
                    f(t);
                }
            }
        }
        _ => {}
    }
}

/// What the prompt amounts to: total text characters (for usage) and the
/// text of the last user message that has text (echoed back).
#[derive(Debug, Default)]
pub struct Prompt {
    pub chars: usize,
    pub last_user: String,
}

impl Prompt {
    /// Counts text that is not a user turn (system prompt, assistant turns).
    pub fn add(&mut self, content: &Value) {
        for_each_text(content, |t| self.chars += t.chars().count());
    }

    /// Counts one message; a `user` message with text becomes the echoed one
    /// (a user turn that only carries tool results keeps the previous one).
    pub fn add_message(&mut self, role: Option<&str>, content: &Value) {
        if role != Some("user") {
            self.add(content);
            return;
        }
        let mut text = String::new();
        for_each_text(content, |t| {
            self.chars += t.chars().count();
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(t);
        });
        if !text.is_empty() {
            self.last_user = text;
        }
    }

    pub fn tokens(&self) -> u64 {
        tokens::prompt_tokens(self.chars)
    }
}

pub fn reply_text(last_user: &str) -> String {
    format!("mock reply to: {}", tokens::prefix_chars(last_user, ECHO_CHARS))
}

/// Content of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content<'a> {
    Text(String),
    /// A call of the request's first tool with [`TOOL_ARGS`].
    ToolCall {
        name: &'a str,
    },
}

/// Why the answer ends; each format names it its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Natural end (`stop`, `end_turn`, `STOP`, `COMPLETE`).
    End,
    /// Cut by the output-token limit (behaviour `hit_max_tokens`).
    MaxTokens,
    /// Ends on a tool call.
    ToolUse,
}

/// One chat answer, before serialization.
#[derive(Debug, Clone)]
pub struct Answer<'a> {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub content: Content<'a>,
    pub stop: Stop,
    /// Text pieces of a stream (`chunks` of them).
    pub chunks: usize,
    pub pacing: Pacing,
}

impl<'a> Answer<'a> {
    /// `first_tool` is the name of the request's first tool, if it has tools;
    /// it is called only when the behaviour asks for tool calls.
    pub fn new(prompt: &Prompt, behavior: &Behavior, first_tool: Option<&'a str>) -> Self {
        let chunks = behavior.chunk_count();
        let (content, stop, completion_default) = match first_tool.filter(|_| behavior.tool_call) {
            Some(name) => (Content::ToolCall { name }, Stop::ToolUse, TOOL_ARG_PIECES.len() as u64),
            None => (
                Content::Text(reply_text(&prompt.last_user)),
                if behavior.hit_max_tokens { Stop::MaxTokens } else { Stop::End },
                chunks as u64,
            ),
        };
        Answer {
            prompt_tokens: prompt.tokens(),
            completion_tokens: behavior.completion_tokens_or(completion_default),
            content,
            stop,
            chunks,
            pacing: Pacing::new(behavior),
        }
    }

    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }

    pub fn tool_name(&self) -> Option<&'a str> {
        match self.content {
            Content::ToolCall { name } => Some(name),
            Content::Text(_) => None,
        }
    }

    /// The `chunks` text pieces of a streamed text answer (empty for a tool call).
    pub fn text_pieces(&self) -> Vec<&str> {
        match &self.content {
            Content::Text(t) => tokens::split_even(t, self.chunks),
            Content::ToolCall { .. } => Vec::new(),
        }
    }

    /// Content pieces a stream of this answer paces: text pieces or tool
    /// argument pieces.
    pub fn pieces(&self) -> usize {
        match self.content {
            Content::Text(_) => self.chunks,
            Content::ToolCall { .. } => TOOL_ARG_PIECES.len(),
        }
    }

    /// How long the answer takes once the request is read: `latency_ms`,
    /// plus the whole stream's pacing when streamed. For formats that report
    /// a duration (Bedrock's `latencyMs`, Ollama's `total_duration`).
    pub fn duration(&self, stream: bool) -> Duration {
        let mut d = self.pacing.latency;
        if stream {
            d += self.pacing.stream_total(self.pieces());
        }
        d
    }
}

/// Delays of a stream, from the behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Before the response headers (applied by the server, reported only).
    pub latency: Duration,
    /// Before the first event.
    pub ttft: Duration,
    /// Before each content piece.
    pub chunk: Duration,
}

impl Pacing {
    pub fn new(behavior: &Behavior) -> Self {
        Pacing {
            latency: Duration::from_millis(behavior.latency_ms),
            ttft: Duration::from_millis(behavior.ttft_ms),
            chunk: Duration::from_millis(behavior.chunk_delay_ms),
        }
    }

    /// Time from the headers to the last event of a stream of `pieces`
    /// content pieces.
    pub fn stream_total(&self, pieces: usize) -> Duration {
        self.ttft + self.chunk * pieces as u32
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prompt_counts_all_text_and_echoes_last_user_text() {
        let mut p = Prompt::default();
        p.add(&json!("be brief"));
        p.add_message(Some("user"), &json!([{"type": "text", "text": "hello"}, {"text": "there"}]));
        p.add_message(Some("assistant"), &json!("ok"));
        // A tool-result turn has no text: the echo stays on the last real question.
        p.add_message(Some("user"), &json!([{"type": "tool_result", "content": "42"}]));
        assert_eq!(p.chars, 8 + 5 + 5 + 2);
        assert_eq!(p.last_user, "hello there");
        assert_eq!(p.tokens(), 5);
    }

    #[test]
    fn answer_defaults_and_overrides() {
        let mut p = Prompt::default();
        p.add_message(Some("user"), &json!("hi"));
        let b = Behavior { chunks: 3, ..Behavior::default() };
        let a = Answer::new(&p, &b, Some("f"));
        assert_eq!(a.content, Content::Text("mock reply to: hi".into()));
        assert_eq!((a.prompt_tokens, a.completion_tokens), (1, 3));
        assert_eq!(a.stop, Stop::End);
        assert_eq!(a.text_pieces().concat(), "mock reply to: hi");
        let b = Behavior {
            tool_call: true,
            completion_tokens: Some(9),
            ttft_ms: 100,
            chunk_delay_ms: 10,
            latency_ms: 5,
            ..Behavior::default()
        };
        let a = Answer::new(&p, &b, Some("f"));
        assert_eq!(a.tool_name(), Some("f"));
        assert_eq!(a.stop, Stop::ToolUse);
        assert_eq!(a.completion_tokens, 9);
        assert_eq!(a.total_tokens(), 10);
        assert_eq!(a.duration(false), Duration::from_millis(5));
        assert_eq!(a.duration(true), Duration::from_millis(5 + 100 + 2 * 10));
        // tool_call without tools in the request: plain text.
        assert!(Answer::new(&p, &b, None).tool_name().is_none());
        let b = Behavior { hit_max_tokens: true, ..Behavior::default() };
        assert_eq!(Answer::new(&p, &b, None).stop, Stop::MaxTokens);
    }

    #[test]
    fn reasoning_text_tokens_and_pieces() {
        let mut p = Prompt::default();
        p.add_message(Some("user"), &json!("why"));
        let r = Reasoning::new(&p, &Behavior::default());
        assert_eq!(r.text, "mock reasoning about: why");
        assert_eq!(r.tokens, 7);
        assert_eq!(r.pieces().len(), REASONING_PIECES);
        assert_eq!(r.pieces().concat(), r.text);
        let b = Behavior { reasoning_tokens: Some(100), ..Behavior::default() };
        assert_eq!(Reasoning::new(&p, &b).tokens, 100);
    }

    #[test]
    fn tool_pieces_make_the_arguments() {
        assert_eq!(TOOL_ARG_PIECES.concat(), TOOL_ARGS);
        assert_eq!(serde_json::from_str::<Value>(TOOL_ARGS).expect("json"), tool_args_value());
    }
}

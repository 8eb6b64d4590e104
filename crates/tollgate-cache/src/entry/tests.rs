use super::*;

fn meta() -> AnswerMeta {
    AnswerMeta {
        fallback_id: "chatcmpl-r1".into(),
        request_id: "r1".into(),
        created: 7,
        model: "asked".into(),
        client_wants_usage: true,
        echo: None,
    }
}

fn answer() -> CachedAnswer {
    CachedAnswer {
        model: "gpt-x".into(),
        text: Some("Paris is the capital.".into()),
        tool_calls: vec![CachedToolCall {
            id: "call_1".into(),
            name: "look".into(),
            arguments: "{\"q\":\"x\"}".into(),
        }],
        finish_reason: Some("tool_calls".into()),
        usage: Some(CachedUsage {
            prompt_tokens: 12,
            completion_tokens: 5,
            cached_tokens: 4,
            ..CachedUsage::default()
        }),
        ..CachedAnswer::default()
    }
}

const ALL: [Ingress; 3] = [Ingress::OpenAiChat, Ingress::AnthropicMessages, Ingress::OpenAiResponses];

#[test]
fn a_replayed_stream_reads_back_as_the_same_answer_in_every_format() {
    for ingress in ALL {
        let bytes = answer().stream(ingress, &meta());
        let mut c = Collector::new(ingress);
        // Cut anywhere: the collector keeps partial events.
        for chunk in bytes.chunks(7) {
            c.feed(chunk);
        }
        let back = c.finish().unwrap_or_else(|| panic!("{ingress:?}: complete"));
        assert_eq!(back.text, answer().text, "{ingress:?}");
        assert_eq!(back.tool_calls, answer().tool_calls, "{ingress:?}");
        assert_eq!(back.model, "gpt-x", "{ingress:?}");
        let u = back.usage.unwrap_or_else(|| panic!("{ingress:?}: usage"));
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.cached_tokens), (12, 5, 4), "{ingress:?}");
    }
}

#[test]
fn a_replayed_json_answer_reads_back_as_the_same_answer_in_every_format() {
    for ingress in ALL {
        let body = answer().json(ingress, &meta());
        let back = CachedAnswer::from_json(ingress, &body).unwrap_or_else(|| panic!("{ingress:?}: parsed"));
        assert_eq!(back.text, answer().text, "{ingress:?}");
        assert_eq!(back.tool_calls, answer().tool_calls, "{ingress:?}");
        assert_eq!(back.usage.map(|u| u.prompt_tokens), Some(12), "{ingress:?}");
    }
}

#[test]
fn the_openai_stream_is_valid_chunks_ending_with_done_and_the_requests_id() {
    let s = answer().stream(Ingress::OpenAiChat, &meta());
    let text = String::from_utf8_lossy(&s);
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(text.contains("\"id\":\"chatcmpl-r1\""), "{text}");
    assert!(text.contains("\"usage\":"), "{text}");
    let anthropic = String::from_utf8_lossy(&answer().stream(Ingress::AnthropicMessages, &meta())).to_string();
    assert!(anthropic.starts_with("event: message_start"), "{anthropic}");
    assert!(anthropic.contains("event: message_stop"), "{anthropic}");
}

#[test]
fn a_cut_or_failed_stream_gives_nothing_to_store() {
    let bytes = answer().stream(Ingress::OpenAiChat, &meta());
    let mut cut = Collector::new(Ingress::OpenAiChat);
    cut.feed(&bytes[..bytes.len() - 20]);
    assert_eq!(cut.finish(), None);
    let mut failed = Collector::new(Ingress::OpenAiChat);
    failed.feed(b"data: {\"error\":{\"message\":\"boom\",\"type\":\"upstream_error\"}}\n\n");
    failed.feed(b"data: [DONE]\n\n");
    assert_eq!(failed.finish(), None);
}

#[test]
fn entries_round_trip_as_bytes() {
    let mut a = answer();
    a.thinking = vec![CachedThinking { text: "hmm".into(), signature: Some("sig".into()), redacted: None }];
    a.target = "openai/gpt-x".into();
    assert_eq!(CachedAnswer::from_bytes(&a.to_bytes()), Some(a));
    assert_eq!(CachedAnswer::from_bytes(b"not json"), None);
}

//! What tollgate renders for Responses callers, as their SDKs read it.
//!
//! Every scenario (Response objects and event streams from hand-made deltas,
//! and from Anthropic's wire format through the provider plumbing) is checked
//! here for its shape, then written to a temporary folder. When
//! `OPENAI_SDK_PYTHON` names a Python with the `openai` package (and, if it
//! has it, `openai-agents`), the script below feeds them through the SDK:
//! strict model validation of every object and event, the client's SSE
//! parsing and the `responses.stream()` accumulator, and agent runs whose
//! tool loop sends tollgate's items back as input; those requests are then
//! parsed and translated here, closing the loop.
//!
//! `OPENAI_SDK_PYTHON=/path/to/python cargo test -p tollgate-llm --test responses_ingress_sdk`
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use tollgate_llm::chat::{Message, Thinking, ToolCall};
use tollgate_llm::completion::{AnswerMeta, Completion, FinishReason};
use tollgate_llm::ingress::responses::{render, ResponsesRequest, Writer};
use tollgate_llm::ingress::Ingress;
use tollgate_llm::provider::{answer_for, stream_for, Provider};
use tollgate_llm::stream::{render_in_pieces, Decoder, Delta, UsageUpdate};
use tollgate_llm::{LlmError, ModelDefaults, Usage};

const TEXT: &str = "It is sunny in Paris.";

/// The request the answers belong to (its fields are echoed).
const REQUEST: &str = r#"{"model":"m","instructions":"be brief","input":"What is the weather in Paris?",
  "tools":[{"type":"function","name":"weather","description":"The weather in a city.","strict":true,
            "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}},
           {"type":"function","name":"time","parameters":{"type":"object","properties":{}}}],
  "reasoning":{"effort":"low","summary":"auto"},"max_output_tokens":500,"stream":true}"#;

fn meta() -> AnswerMeta {
    let req = ResponsesRequest::parse(REQUEST.as_bytes()).expect("the request parses");
    AnswerMeta {
        fallback_id: "chatcmpl-req1".into(),
        request_id: "req1".into(),
        echo: Some(Arc::new(req.echo())),
        created: 1_741_476_542,
        model: "m".into(),
        client_wants_usage: true,
    }
}

/// Hands over deltas written by hand.
struct Scripted(Vec<Delta>);

impl Decoder for Scripted {
    fn decode(&mut self, _: &[u8], out: &mut Vec<Delta>) {
        out.append(&mut self.0);
    }
}

fn stream(deltas: Vec<Delta>) -> Vec<u8> {
    render_in_pieces(Scripted(deltas), Writer::new(), meta(), &[b"go"]).0
}

fn usage(prompt: u64, completion: u64) -> Delta {
    Delta::Usage(UsageUpdate {
        prompt: Some(prompt),
        completion: Some(completion),
        cached: Some(2),
        reasoning: Some(1),
        ..UsageUpdate::default()
    })
}

fn call(index: u32, id: Option<&str>, name: Option<&str>, arguments: &str) -> Delta {
    Delta::ToolCall { index, id: id.map(str::to_string), name: name.map(str::to_string), arguments: arguments.into() }
}

fn completion(text: Option<&str>, thinking: &[&str], calls: &[(&str, &str, &str)], finish: FinishReason) -> Completion {
    Completion {
        id: "msg_01".into(),
        created: 1_741_476_542,
        model: "claude-x".into(),
        text: text.map(str::to_string),
        thinking: thinking
            .iter()
            .map(|t| Thinking { text: (*t).into(), signature: Some("sig".into()), redacted: None })
            .collect(),
        tool_calls: calls
            .iter()
            .map(|(id, name, arguments)| ToolCall {
                id: (*id).into(),
                name: (*name).into(),
                arguments: (*arguments).into(),
            })
            .collect(),
        finish_reason: Some(finish),
        usage: Some(Usage {
            prompt_tokens: 30,
            completion_tokens: 12,
            total_tokens: 42,
            cached_tokens: 4,
            cache_write_tokens: 1,
            reasoning_tokens: 3,
        }),
    }
}

// Anthropic's wire format, shapes from https://docs.anthropic.com/en/api/messages
// and .../build-with-claude/streaming.
const ANTHROPIC_ANSWER: &str = r#"{"id":"msg_01A","type":"message","role":"assistant","model":"claude-sonnet-4-20250514",
  "content":[{"type":"text","text":"Let me check."},
             {"type":"tool_use","id":"toolu_01","name":"weather","input":{"city":"Paris"}}],
  "stop_reason":"tool_use","stop_sequence":null,
  "usage":{"input_tokens":30,"cache_read_input_tokens":4,"output_tokens":12}}"#;

const ANTHROPIC_STREAM: &str = concat!(
    "event: message_start\n",
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_02B\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-20250514\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":30,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me \"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"check.\"}}\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"weather\",\"input\":{}}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\":\"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" \\\"Paris\\\"}\"}}\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: message_delta\n",
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":12}}\n\n",
    "event: message_stop\n",
    "data: {\"type\":\"message_stop\"}\n\n",
);

/// (name, file, bytes, what the SDK must read from it).
fn scenarios() -> Vec<(&'static str, &'static str, Vec<u8>, Value)> {
    let expect = |text: &str, status: &str, calls: Value, reasoning: Value| json!({"text": text, "status": status, "calls": calls, "reasoning": reasoning});
    let m = meta();
    let anthropic_json = answer_for(Provider::Anthropic, Ingress::OpenAiResponses, false, ANTHROPIC_ANSWER.into(), &m)
        .expect("an Anthropic answer renders")
        .body
        .to_vec();
    let mut s = stream_for(Provider::Anthropic, Ingress::OpenAiResponses, false, m.clone());
    let mut anthropic_sse = s.feed(ANTHROPIC_STREAM.as_bytes()).to_vec();
    anthropic_sse.extend_from_slice(&s.finish());
    assert!(s.completed(), "the Anthropic stream completes");
    vec![
        (
            "json_full",
            "json_full.json",
            render(
                &completion(
                    Some(TEXT),
                    &["Sky check."],
                    &[("toolu_1", "weather", "{\"city\":\"Paris\"}")],
                    FinishReason::ToolCalls,
                ),
                &m,
            )
            .to_vec(),
            expect(TEXT, "completed", json!([["weather", "{\"city\":\"Paris\"}"]]), json!(["Sky check."])),
        ),
        (
            "json_incomplete",
            "json_incomplete.json",
            render(&completion(Some("It is"), &[], &[], FinishReason::Length), &m).to_vec(),
            expect("It is", "incomplete", json!([]), json!([])),
        ),
        (
            "agent_calls",
            "agent_calls.json",
            render(
                &completion(None, &[], &[("toolu_1", "weather", "{\"city\":\"Paris\"}")], FinishReason::ToolCalls),
                &m,
            )
            .to_vec(),
            expect("", "completed", json!([["weather", "{\"city\":\"Paris\"}"]]), json!([])),
        ),
        (
            "agent_text",
            "agent_text.json",
            render(&completion(Some(TEXT), &[], &[], FinishReason::Stop), &m).to_vec(),
            expect(TEXT, "completed", json!([]), json!([])),
        ),
        (
            "anthropic_json",
            "anthropic_json.json",
            anthropic_json,
            expect("Let me check.", "completed", json!([["weather", "{\"city\":\"Paris\"}"]]), json!([])),
        ),
        (
            "stream_text",
            "stream_text.sse",
            stream(vec![
                Delta::Meta { id: Some("msg_01".into()), model: Some("claude-x".into()) },
                usage(30, 1),
                Delta::Text("It is ".into()),
                Delta::Text("sunny in \"Paris\".".into()),
                Delta::Finish(FinishReason::Stop),
                usage(30, 12),
                Delta::Done,
            ]),
            expect("It is sunny in \"Paris\".", "completed", json!([]), json!([])),
        ),
        (
            "stream_calls",
            "stream_calls.sse",
            stream(vec![
                Delta::Meta { id: None, model: Some("gemini-x".into()) },
                call(0, Some("call_a"), Some("weather"), ""),
                call(0, None, None, "{\"city\":"),
                call(0, None, None, "\"Paris\"}"),
                call(1, None, Some("time"), "{}"),
                Delta::Finish(FinishReason::ToolCalls),
                usage(30, 12),
                Delta::Done,
            ]),
            expect("", "completed", json!([["weather", "{\"city\":\"Paris\"}"], ["time", "{}"]]), json!([])),
        ),
        (
            "stream_reasoning",
            "stream_reasoning.sse",
            stream(vec![
                Delta::Thinking("The tool said ".into()),
                Delta::Thinking("sunny.".into()),
                Delta::ThinkingSignature("sig".into()),
                Delta::Text("It is sunny ".into()),
                Delta::Text("in Paris.".into()),
                Delta::Finish(FinishReason::Stop),
                usage(40, 20),
                Delta::Done,
            ]),
            expect(TEXT, "completed", json!([]), json!(["The tool said sunny."])),
        ),
        (
            "stream_incomplete",
            "stream_incomplete.sse",
            stream(vec![Delta::Text("It is".into()), Delta::Finish(FinishReason::Length), usage(30, 2), Delta::Done]),
            expect("It is", "incomplete", json!([]), json!([])),
        ),
        (
            "stream_failed",
            "stream_failed.sse",
            stream(vec![
                Delta::Text("It is".into()),
                Delta::Error(LlmError::new(502, "upstream_error", "provider x closed the stream")),
            ]),
            expect("It is", "failed", json!([]), json!([])),
        ),
        (
            "anthropic_stream",
            "anthropic_stream.sse",
            anthropic_sse,
            expect("Let me check.", "completed", json!([["weather", "{\"city\": \"Paris\"}"]]), json!([])),
        ),
    ]
}

/// Each event of a stream as (name, data), checked for what every event needs.
fn events(sse: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(sse).expect("utf8");
    assert!(text.ends_with("\n\n"));
    text.split_terminator("\n\n")
        .enumerate()
        .map(|(i, e)| {
            let (name, data) = e.split_once('\n').expect("an event line and a data line");
            let name = name.strip_prefix("event: ").expect("event line");
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").expect("data line")).expect("JSON data");
            assert_eq!(data["type"], name);
            assert_eq!(data["sequence_number"], i as u64);
            (name.to_string(), data)
        })
        .collect()
}

fn dump(dir: &Path) {
    std::fs::create_dir_all(dir).expect("dump folder");
    let mut listed = Vec::new();
    for (name, file, bytes, expect) in scenarios() {
        if file.ends_with(".sse") {
            let ev = events(&bytes);
            assert_eq!(ev[0].0, "response.created", "{name}");
            let last = &ev[ev.len() - 1];
            assert_eq!(last.1["response"]["status"], expect["status"], "{name}");
        } else {
            let v: Value = serde_json::from_slice(&bytes).expect("JSON");
            assert_eq!(v["object"], "response", "{name}");
            assert_eq!(v["status"], expect["status"], "{name}");
        }
        std::fs::write(dir.join(file), &bytes).expect("write");
        listed.push(json!({"name": name, "file": file, "expect": expect}));
    }
    let manifest = json!({
        "scenarios": listed,
        "agent_text": TEXT,
        "agent_runs": [["json", ["agent_calls.json", "agent_text.json"], false],
                       ["stream", ["stream_calls.sse", "stream_reasoning.sse"], true]],
        "agent_failures": [["failed", ["stream_failed.sse"]], ["incomplete", ["stream_incomplete.sse"]]],
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).expect("write");
    std::fs::write(dir.join("check.py"), SDK_CHECK).expect("write");
}

fn folder() -> PathBuf {
    std::env::temp_dir().join(format!("tollgate-responses-sdk-{}", std::process::id()))
}

#[test]
fn responses_and_streams_are_what_the_openai_sdks_read() {
    let dir = folder();
    dump(&dir);
    let Ok(python) = std::env::var("OPENAI_SDK_PYTHON") else {
        eprintln!("OPENAI_SDK_PYTHON unset: shapes checked here only, not by the SDK");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    };
    let run = std::process::Command::new(python).arg(dir.join("check.py")).arg(&dir).output().expect("python runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    eprintln!("{stdout}{stderr}");
    assert!(run.status.success(), "the SDK refused what tollgate rendered:\n{stdout}\n{stderr}");
    // The Agents SDK sent tollgate's own items back: they must translate.
    for label in ["json", "stream"] {
        let path = dir.join(format!("agents_{label}_request_1.json"));
        let Ok(body) = std::fs::read(&path) else {
            continue; // the Agents SDK is not installed there
        };
        let req = ResponsesRequest::parse(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let chat = req
            .to_chat(&ModelDefaults { name: Some("m".into()), ..ModelDefaults::default() })
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let calls: Vec<&str> = chat
            .messages
            .iter()
            .flat_map(|m| match m {
                Message::Assistant { tool_calls, .. } => tool_calls.iter().map(|c| c.name.as_str()).collect(),
                _ => Vec::new(),
            })
            .collect();
        assert!(calls.contains(&"weather"), "{label}: {:?}", chat.messages);
        assert!(
            chat.messages.iter().any(|m| matches!(m, Message::Tool { content, .. } if content == "sunny in Paris")),
            "{label}: {:?}",
            chat.messages
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

const SDK_CHECK: &str = r#####""""Feeds tollgate's Responses output through the openai SDK (and the Agents
SDK when installed): strict model validation of every object and event, the
client's own SSE parsing, the `responses.stream()` accumulator, and an agent
run whose tool loop replays tollgate's items as input (the requests it sends
are written back for the Rust side to parse).

Usage: python check.py DIR   (DIR holds manifest.json and the scenarios)
"""

import asyncio
import json
import pathlib
import sys

import httpx2
from pydantic import TypeAdapter

import openai
from openai import OpenAI, AsyncOpenAI
from openai.types.responses import Response, ResponseStreamEvent

DIR = pathlib.Path(sys.argv[1])
MANIFEST = json.loads((DIR / "manifest.json").read_text())
EVENT = TypeAdapter(ResponseStreamEvent)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def body(name):
    return (DIR / name).read_bytes()


def sse_events(raw):
    out = []
    for block in raw.decode().split("\n\n"):
        if not block:
            continue
        lines = block.split("\n")
        name = lines[0].removeprefix("event: ")
        data = json.loads(lines[1].removeprefix("data: "))
        out.append((name, data))
    return out


def transport(files):
    """Serves the given scenario files in turn, recording the requests."""
    seen = []

    def handler(request):
        seen.append(json.loads(request.content))
        name = files[min(len(seen), len(files)) - 1]
        ctype = "text/event-stream" if name.endswith(".sse") else "application/json"
        return httpx2.Response(200, headers={"content-type": ctype}, content=body(name))

    return handler, seen


def client(files, asynchronous=False):
    handler, seen = transport(files)
    if asynchronous:
        http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
        return AsyncOpenAI(api_key="k", base_url="http://tollgate.test/v1", http_client=http, max_retries=0), seen
    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    return OpenAI(api_key="k", base_url="http://tollgate.test/v1", http_client=http, max_retries=0), seen


def calls_of(output):
    return [(o.name, o.arguments, o.call_id) for o in output if o.type == "function_call"]


def reasoning_of(output):
    return ["".join(s.text for s in o.summary) for o in output if o.type == "reasoning"]


for s in MANIFEST["scenarios"]:
    name, file, expect = s["name"], s["file"], s["expect"]
    if file.endswith(".json"):
        data = json.loads(body(file))
        r = Response.model_validate(data)  # strict: raises on any misfit
        c, _ = client([file])
        got = c.responses.create(model="m", input="hi")
        for resp in (r, got):
            check(resp.output_text == expect["text"], f"{name}: output_text {resp.output_text!r}")
            check(resp.status == expect["status"], f"{name}: status {resp.status}")
            check([list(x[:2]) for x in calls_of(resp.output)] == expect["calls"], f"{name}: calls {calls_of(resp.output)}")
            check(reasoning_of(resp.output) == expect["reasoning"], f"{name}: reasoning {reasoning_of(resp.output)}")
        print(f"ok {name}: {len(r.output)} output items")
        continue
    events = sse_events(body(file))
    for i, (ev_name, data) in enumerate(events):
        ev = EVENT.validate_python(data)  # strict: raises on any misfit
        check(ev.type == ev_name, f"{name}: event {i} named {ev_name} is {ev.type}")
        check(ev.sequence_number == i, f"{name}: event {i} numbered {ev.sequence_number}")
    # The client's SSE parsing and the accumulator `responses.stream()` uses.
    c, _ = client([file])
    with c.responses.stream(model="m", input="hi") as stream:
        kinds = [e.type for e in stream]
        check(kinds == [n for n, _ in events], f"{name}: stream() yields {kinds}")
        if expect["status"] == "completed":
            final = stream.get_final_response()
            check(final.output_text == expect["text"], f"{name}: final text {final.output_text!r}")
            check([list(x[:2]) for x in calls_of(final.output)] == expect["calls"], f"{name}: final calls")
            check(reasoning_of(final.output) == expect["reasoning"], f"{name}: reasoning {reasoning_of(final.output)}")
            check(final.usage is not None, f"{name}: usage")
        else:
            try:
                stream.get_final_response()
                check(False, f"{name}: a final response from a {expect['status']} stream")
            except RuntimeError:
                pass
            last = events[-1][1]
            check(last["response"]["status"] == expect["status"], f"{name}: last status")
    # Raw iteration, as `create(stream=True)` gives it.
    c, _ = client([file])
    raw = [e.type for e in c.responses.create(model="m", input="hi", stream=True)]
    check(raw == [n for n, _ in events], f"{name}: create(stream=True) yields {raw}")
    print(f"ok {name}: {len(events)} events")

try:
    import agents
except ImportError:
    agents = None

if agents is not None:
    from agents import Agent, Runner, function_tool, set_tracing_disabled
    from agents.models.openai_responses import OpenAIResponsesModel

    set_tracing_disabled(True)

    @function_tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    @function_tool
    def time() -> str:
        """The time."""
        return "noon"

    def agent(c):
        return Agent(
            name="a",
            instructions="be brief",
            tools=[weather, time],
            model=OpenAIResponsesModel(model="m", openai_client=c),
        )

    async def run_agents():
        out = {}
        for label, files, streamed in MANIFEST["agent_runs"]:
            c, seen = client(files, asynchronous=True)
            if streamed:
                result = Runner.run_streamed(agent(c), "What is the weather in Paris?")
                async for _ in result.stream_events():
                    pass
            else:
                result = await Runner.run(agent(c), "What is the weather in Paris?")
            out[label] = (result.final_output, seen)
        for label, files in MANIFEST["agent_failures"]:
            c, seen = client(files, asynchronous=True)
            try:
                result = Runner.run_streamed(agent(c), "hi")
                async for _ in result.stream_events():
                    pass
                check(False, f"agents {label}: no error")
            except agents.exceptions.ModelBehaviorError as e:
                print(f"ok agents {label}: {e}")
        return out

    for label, (final, seen) in asyncio.run(run_agents()).items():
        check(final == MANIFEST["agent_text"], f"agents {label}: final output {final!r}")
        check(len(seen) == 2, f"agents {label}: {len(seen)} model calls")
        for i, req in enumerate(seen):
            (DIR / f"agents_{label}_request_{i}.json").write_text(json.dumps(req))
        print(f"ok agents {label}: {final!r} after {len(seen)} calls")

if failures:
    print("FAILURES:\n" + "\n".join(failures))
    sys.exit(1)
print(f"sdk {openai.__version__}{' + agents ' + agents.__version__ if agents else ''}: all checks passed")
"#####;

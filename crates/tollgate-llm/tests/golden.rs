//! Golden files for every translation, in both directions (see
//! tests/golden/README.md):
//!
//! - `requests/<case>/request.<ingress>.json` (a caller's body) goes through
//!   `prepare_request` for every provider; what comes out is
//!   `requests/<case>/expected/<provider>.json` (the body, canonical and
//!   pretty-printed, with the path, headers and flags) or
//!   `<provider>.error.json` when the provider refuses the request.
//! - `answers/<provider>/<case>.<ext>` (a provider's JSON answer, or its
//!   stream: `.sse`, `.ndjson`, or `.eventstream.json` for Bedrock's binary
//!   frames described as JSON) goes through `answer_for` / `stream_for` with
//!   translated rendering for every caller format; what the caller receives
//!   is `answers/<provider>/<case>/expected.<ingress>.json|.sse` (or
//!   `.error.json`), and what the gateway reads of it (usage, model, events,
//!   and the native relay's view where the provider speaks the caller's
//!   format) is `expected.facts.json`. Streams must give the same output fed
//!   whole, split at every byte (a sample of cuts for big fixtures) and in
//!   one-byte pieces.
//!
//! `UPDATE_GOLDEN=1 cargo test -p tollgate-llm --test golden` rewrites the
//! expected files (and deletes stale ones); without it a difference fails
//! with a diff and the file's path. Everything is deterministic: fixed
//! answer metadata, no clock.
// Test code: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tollgate_llm::completion::AnswerMeta;
use tollgate_llm::ingress::{Ingress, Request};
use tollgate_llm::provider::{answer_for, prepare_request, stream_for, Provider, ProviderOptions, VertexOptions};
use tollgate_llm::{LlmError, ModelDefaults, Usage};

const INGRESSES: [Ingress; 3] = [Ingress::OpenAiChat, Ingress::AnthropicMessages, Ingress::OpenAiResponses];

/// Streams up to this size are checked split at every byte; bigger ones at
/// a sample of cuts.
const EVERY_CUT_UP_TO: usize = 4096;
const SAMPLED_CUTS: usize = 509;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The model a target of each provider pins when a case names none.
fn default_model(p: Provider) -> &'static str {
    match p {
        Provider::OpenAi => "gpt-4.1",
        Provider::Azure => "gpt-4.1",
        Provider::Anthropic => "claude-sonnet-4-20250514",
        Provider::Gemini => "gemini-2.5-flash",
        Provider::Bedrock => "us.anthropic.claude-sonnet-4-20250514-v1:0",
        Provider::Mistral => "mistral-large-latest",
        Provider::Cohere => "command-a-03-2025",
        Provider::Ollama => "llama3.2",
        Provider::OpenAiCompatible => "deepseek-reasoner",
    }
}

// ---------------------------------------------------------------------------
// Checking and updating expected files

/// Compares produced files with the expected ones, or rewrites them.
struct Golden {
    update: bool,
    failures: Vec<String>,
    written: Vec<PathBuf>,
}

impl Golden {
    fn new() -> Self {
        let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| !v.is_empty() && v != "0");
        Golden { update, failures: Vec::new(), written: Vec::new() }
    }

    fn check(&mut self, path: &Path, actual: &str) {
        let expected = std::fs::read_to_string(path).ok();
        if expected.as_deref() == Some(actual) {
            return;
        }
        if self.update {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).expect("creating a golden folder");
            }
            std::fs::write(path, actual).expect("writing a golden file");
            self.written.push(path.to_path_buf());
            return;
        }
        let shown = relative(path);
        match expected {
            None => self.failures.push(format!("{shown}: missing (run with UPDATE_GOLDEN=1 to write it)")),
            Some(expected) => {
                self.failures.push(format!("{shown}: differs from what the code produces\n{}", diff(&expected, actual)))
            }
        }
    }

    /// Files in `dir` that no check produced are stale: deleted when
    /// updating, a failure otherwise.
    fn sweep(&mut self, dir: &Path, produced: &BTreeSet<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if produced.contains(&path) {
                continue;
            }
            if self.update {
                if path.is_dir() {
                    std::fs::remove_dir_all(&path).expect("removing a stale golden folder");
                } else {
                    std::fs::remove_file(&path).expect("removing a stale golden file");
                }
                self.written.push(path);
            } else {
                self.failures
                    .push(format!("{}: stale, no case produces it (UPDATE_GOLDEN=1 removes it)", relative(&path)));
            }
        }
    }

    fn finish(self, what: &str) {
        if self.update && !self.written.is_empty() {
            eprintln!("{what}: {} golden files written or removed:", self.written.len());
            for p in &self.written {
                eprintln!("  {}", relative(p));
            }
        }
        if !self.failures.is_empty() {
            panic!(
                "{what}: {} golden files do not match (UPDATE_GOLDEN=1 rewrites them; review the diff):\n\n{}",
                self.failures.len(),
                self.failures.join("\n\n")
            );
        }
    }
}

fn relative(path: &Path) -> String {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(path).display().to_string()
}

/// A unified diff of expected and actual text.
fn diff(expected: &str, actual: &str) -> String {
    similar::TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string()
}

/// JSON with every object's keys sorted, pretty-printed, ending in a newline.
fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(&canonical(v)).expect("JSON prints");
    s.push('\n');
    s
}

fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, Value> = m.iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// Bytes as JSON when they are, else as a string.
fn json_or_text(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap_or_else(|e| panic!("output is not UTF-8: {e}"))
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).expect("a UTF-8 file name")
}

fn error_json(e: &LlmError) -> Value {
    json!({ "status": e.status, "type": e.kind, "code": e.code, "message": e.message })
}

fn usage_json(u: Option<Usage>) -> Value {
    match u {
        None => Value::Null,
        Some(u) => json!({
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "total_tokens": u.total_tokens,
            "cached_tokens": u.cached_tokens,
            "cache_write_tokens": u.cache_write_tokens,
            "reasoning_tokens": u.reasoning_tokens,
        }),
    }
}

// ---------------------------------------------------------------------------
// Requests

/// A case's `defaults.json`: what the target configures.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseDefaults {
    /// Per-provider model, replacing `default_model`; `null` leaves the
    /// model to the request (an open route).
    #[serde(default)]
    models: BTreeMap<String, Option<String>>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<u64>,
    #[serde(default)]
    options: CaseOptions,
    /// Fields a target sets in the body (a credential sent in the body).
    #[serde(default)]
    extra: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseOptions {
    #[serde(default)]
    anthropic_version: Option<String>,
    #[serde(default)]
    azure_api_version: Option<String>,
    #[serde(default)]
    aws_region: Option<String>,
    /// `[api_endpoint, project_id, location_id]` of a Vertex AI target.
    #[serde(default)]
    gemini_vertex: Option<[String; 3]>,
}

impl CaseDefaults {
    fn model_defaults(&self, p: Provider) -> ModelDefaults {
        let name = match self.models.get(p.name()) {
            Some(m) => m.clone(),
            None => Some(default_model(p).to_string()),
        };
        ModelDefaults {
            name,
            max_tokens: self.max_tokens,
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
        }
    }

    fn options(&self) -> ProviderOptions {
        let mut o = ProviderOptions::default();
        if let Some(v) = &self.options.anthropic_version {
            o.anthropic_version = v.clone();
        }
        if let Some(v) = &self.options.azure_api_version {
            o.azure_api_version = v.clone();
        }
        o.aws_region = self.options.aws_region.clone();
        o.gemini_vertex =
            self.options.gemini_vertex.as_ref().map(|[api_endpoint, project_id, location_id]| VertexOptions {
                api_endpoint: api_endpoint.clone(),
                project_id: project_id.clone(),
                location_id: location_id.clone(),
            });
        o
    }
}

fn ingress_of(file: &str) -> Option<Ingress> {
    let label = file.strip_prefix("request.")?.strip_suffix(".json")?;
    INGRESSES.into_iter().find(|i| i.label() == label)
}

/// One request case: every provider's call, or its refusal.
fn request_case(golden: &mut Golden, dir: &Path) {
    let case = file_name(dir).to_string();
    let mut requests = Vec::new();
    let mut defaults = CaseDefaults::default();
    for path in files_in(dir) {
        let name = file_name(&path);
        if let Some(ingress) = ingress_of(name) {
            requests.push((ingress, std::fs::read(&path).expect("reading a request")));
        } else if name == "defaults.json" {
            let text = std::fs::read_to_string(&path).expect("reading defaults.json");
            defaults = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{case}/defaults.json: {e}"));
        } else if name != "expected" && name != "README.md" {
            panic!("{case}: unexpected file {name} (request.<ingress>.json, defaults.json, README.md, expected/)");
        }
    }
    let [(ingress, body)] = requests.as_slice() else {
        panic!("{case}: a case holds exactly one request.<openai_chat|openai_responses|anthropic_messages>.json");
    };
    let request = Request::parse(*ingress, body).unwrap_or_else(|e| panic!("{case}: the request does not parse: {e}"));
    let opts = defaults.options();
    let extra: Vec<(&str, &str)> = defaults.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let expected = dir.join("expected");
    let mut produced = BTreeSet::new();
    for provider in Provider::ALL {
        let (path, content) =
            match prepare_request(provider, &request, &defaults.model_defaults(provider), &opts, &extra) {
                Ok(call) => {
                    let headers: Map<String, Value> =
                        call.headers.iter().map(|(k, v)| ((*k).to_string(), Value::from(v.as_str()))).collect();
                    let v = json!({
                        "native": call.native,
                        "path": call.path,
                        "headers": headers,
                        "model": call.model,
                        "stream": call.stream,
                        "client_wants_usage": call.client_wants_usage,
                        "body": json_or_text(&call.body),
                    });
                    (expected.join(format!("{}.json", provider.name())), pretty(&v))
                }
                Err(e) => (expected.join(format!("{}.error.json", provider.name())), pretty(&error_json(&e))),
            };
        golden.check(&path, &content);
        produced.insert(path);
    }
    golden.sweep(&expected, &produced);
}

#[test]
fn requests_into_every_provider() {
    let mut golden = Golden::new();
    let dirs: Vec<PathBuf> = files_in(&root().join("requests")).into_iter().filter(|p| p.is_dir()).collect();
    assert!(!dirs.is_empty(), "no request cases under tests/golden/requests");
    for dir in dirs {
        request_case(&mut golden, &dir);
    }
    golden.finish("requests");
}

// ---------------------------------------------------------------------------
// Answers and streams

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// A JSON answer.
    Answer,
    /// A stream, as its bytes.
    Stream,
    /// Bedrock's binary event stream, described as JSON frames.
    EventStream,
}

fn kind_of(file: &str) -> Option<(&str, Kind)> {
    if let Some(case) = file.strip_suffix(".eventstream.json") {
        return Some((case, Kind::EventStream));
    }
    if let Some(case) = file.strip_suffix(".json") {
        return Some((case, Kind::Answer));
    }
    file.strip_suffix(".sse").or_else(|| file.strip_suffix(".ndjson")).map(|case| (case, Kind::Stream))
}

fn meta(provider: Provider) -> AnswerMeta {
    AnswerMeta {
        fallback_id: "chatcmpl-golden".into(),
        request_id: "golden".into(),
        echo: None,
        created: 1_700_000_000,
        model: default_model(provider).into(),
        client_wants_usage: true,
    }
}

/// The caller format the provider speaks natively, whose callers get its
/// answers relayed as they are.
fn native_ingress(provider: Provider) -> Option<Ingress> {
    if provider.speaks_openai() {
        Some(Ingress::OpenAiChat)
    } else if provider == Provider::Anthropic {
        Some(Ingress::AnthropicMessages)
    } else {
        None
    }
}

/// Bedrock frames listed as JSON (`message-type`, `event-type` or
/// `exception-type`, `payload`), encoded with AWS's own encoder.
fn encode_event_stream(description: &[u8], case: &str) -> Vec<u8> {
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    let frames: Vec<Value> =
        serde_json::from_slice(description).unwrap_or_else(|e| panic!("{case}: frames are not JSON: {e}"));
    let mut out = Vec::new();
    for f in frames {
        let string = |v: &str| HeaderValue::String(v.to_string().into());
        let kind = f["message-type"].as_str().unwrap_or_else(|| panic!("{case}: a frame without message-type"));
        let payload = match &f["payload"] {
            Value::String(s) => s.clone().into_bytes(),
            other => other.to_string().into_bytes(),
        };
        let mut frame = Message::new(payload)
            .add_header(Header::new(":message-type", string(kind)))
            .add_header(Header::new(":content-type", string("application/json")));
        for name in ["event-type", "exception-type"] {
            if let Some(v) = f[name].as_str() {
                frame = frame.add_header(Header::new(format!(":{name}"), string(v)));
            }
        }
        write_message_to(&frame, &mut out).expect("a frame encodes");
    }
    out
}

/// What a caller's stream looks like and what the gateway read of it.
#[derive(Debug, PartialEq)]
struct Relayed {
    out: Vec<u8>,
    usage: Option<Usage>,
    model: Option<String>,
    events: u64,
    completed: bool,
}

fn relay(provider: Provider, ingress: Ingress, native: bool, pieces: &[&[u8]]) -> Relayed {
    let mut s = stream_for(provider, ingress, native, meta(provider));
    let mut out = Vec::new();
    for p in pieces {
        out.extend_from_slice(&s.feed(p));
    }
    out.extend_from_slice(&s.finish());
    Relayed {
        out,
        usage: s.usage(),
        model: s.model().map(str::to_string),
        events: s.events(),
        completed: s.completed(),
    }
}

/// The stream relayed whole, after checking that any split of it relays the same.
fn relay_split_invariant(provider: Provider, ingress: Ingress, native: bool, input: &[u8], what: &str) -> Relayed {
    let whole = relay(provider, ingress, native, &[input]);
    let cuts: Vec<usize> = if input.len() <= EVERY_CUT_UP_TO {
        (0..=input.len()).collect()
    } else {
        (0..=SAMPLED_CUTS).map(|i| i * input.len() / SAMPLED_CUTS).collect()
    };
    for cut in cuts {
        let split = relay(provider, ingress, native, &[&input[..cut], &input[cut..]]);
        assert_eq!(split, whole, "{what}: split at byte {cut} relays differently");
    }
    let ones: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(relay(provider, ingress, native, &ones), whole, "{what}: one-byte pieces relay differently");
    whole
}

fn stream_facts(r: &Relayed) -> Value {
    json!({ "usage": usage_json(r.usage), "model": r.model, "events": r.events, "completed": r.completed })
}

/// One provider answer or stream, rendered for every caller.
fn answer_case(golden: &mut Golden, provider: Provider, fixture: &Path, case: &str, kind: Kind) -> PathBuf {
    let raw = std::fs::read(fixture).expect("reading a fixture");
    let input = match kind {
        Kind::EventStream => encode_event_stream(&raw, case),
        _ => raw,
    };
    let dir = fixture.with_file_name(case);
    let mut produced = BTreeSet::new();
    let mut facts = Map::new();
    let mut check = |golden: &mut Golden, name: String, content: String| {
        let path = dir.join(name);
        golden.check(&path, &content);
        produced.insert(path);
    };
    for ingress in INGRESSES {
        let label = ingress.label();
        let what = format!("{}/{case} as {label}", provider.name());
        match kind {
            Kind::Answer => match answer_for(provider, ingress, false, Bytes::from(input.clone()), &meta(provider)) {
                Ok(a) => {
                    check(golden, format!("expected.{label}.json"), pretty(&json_or_text(&a.body)));
                    facts.insert(
                        label.into(),
                        json!({ "usage": usage_json(a.usage), "model": a.model, "estimated_completion_tokens": a.estimated_completion_tokens }),
                    );
                }
                Err(e) => {
                    let caller = json!({
                        "error": error_json(&e),
                        "caller_status": ingress.error_status(&e),
                        "caller_body": json_or_text(&ingress.error_body(&e)),
                    });
                    check(golden, format!("expected.{label}.error.json"), pretty(&caller));
                }
            },
            Kind::Stream | Kind::EventStream => {
                let r = relay_split_invariant(provider, ingress, false, &input, &what);
                check(golden, format!("expected.{label}.sse"), text(&r.out));
                facts.insert(label.into(), stream_facts(&r));
            }
        }
    }
    // The native relay: the caller's format is the provider's, its bytes go
    // through untouched (OpenAI's usage chunk aside) while usage is read.
    if let Some(ingress) = native_ingress(provider) {
        let what = format!("{}/{case} relayed natively", provider.name());
        let native = match kind {
            Kind::Answer => match answer_for(provider, ingress, true, Bytes::from(input.clone()), &meta(provider)) {
                Ok(a) => json!({
                    "ingress": ingress.label(),
                    "body_unchanged": a.body[..] == input[..],
                    "usage": usage_json(a.usage),
                    "model": a.model,
                    "estimated_completion_tokens": a.estimated_completion_tokens,
                }),
                Err(e) => json!({ "ingress": ingress.label(), "error": error_json(&e) }),
            },
            Kind::Stream | Kind::EventStream => {
                let r = relay_split_invariant(provider, ingress, true, &input, &what);
                let mut v = stream_facts(&r);
                v["ingress"] = Value::from(ingress.label());
                v["output_unchanged"] = Value::Bool(r.out == input);
                v
            }
        };
        facts.insert("native_relay".into(), native);
    }
    check(golden, "expected.facts.json".into(), pretty(&Value::Object(facts)));
    golden.sweep(&dir, &produced);
    dir
}

#[test]
fn answers_and_streams_for_every_caller() {
    let mut golden = Golden::new();
    let answers = root().join("answers");
    let mut providers_seen = BTreeSet::new();
    for provider_dir in files_in(&answers).into_iter().filter(|p| p.is_dir()) {
        let name = file_name(&provider_dir).to_string();
        let provider = Provider::parse(&name).unwrap_or_else(|| panic!("answers/{name}: not a provider name"));
        providers_seen.insert(name.clone());
        let mut produced = BTreeSet::new();
        for fixture in files_in(&provider_dir).into_iter().filter(|p| p.is_file()) {
            let file = file_name(&fixture).to_string();
            if file == "README.md" {
                produced.insert(fixture);
                continue;
            }
            let (case, kind) = kind_of(&file)
                .unwrap_or_else(|| panic!("answers/{name}/{file}: not .json, .sse, .ndjson or .eventstream.json"));
            let case = case.to_string();
            produced.insert(fixture.clone());
            produced.insert(answer_case(&mut golden, provider, &fixture, &case, kind));
        }
        // Folders of fixtures since removed.
        golden.sweep(&provider_dir, &produced);
    }
    let missing: Vec<&str> = Provider::ALL.iter().map(|p| p.name()).filter(|n| !providers_seen.contains(*n)).collect();
    assert!(missing.is_empty(), "providers without answer fixtures: {missing:?}");
    golden.finish("answers");
}

/// The harness's own diff, so that a failure is readable.
#[test]
fn a_difference_reads_as_a_unified_diff() {
    let d = diff("a\nb\nc\n", "a\nB\nc\n");
    assert_eq!(d, "--- expected\n+++ actual\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
}

//! Loading tests: whole files in, `Config` or positioned errors out.

use std::path::Path;

use super::*;

/// The seed "secure MCP traffic" scenario from DESIGN.md: an LLM service with no url,
/// key-auth, a balanced OpenAI target, and a consumer-scoped ai-proxy override.
const SEED: &str = r#"[server]
listen = ["0.0.0.0:8000"]
admin_listen = "127.0.0.1:8100"

[[services]]
name = "mcp-service"

[[routes]]
name = "chat"
service = "mcp-service"
paths = ["/llm/v1/chat"]
methods = ["POST"]

[[consumers]]
username = "chat-client"
groups = ["premium"]
keyauth_credentials = [{ key = "secret-chat-key" }]

[[plugins]]
name = "key-auth"
service = "mcp-service"
config.key_names = ["apikey"]

[[plugins]]
name = "ai-proxy-advanced"
service = "mcp-service"
[plugins.config.balancer]
algorithm = "round-robin"
retries = 3
[[plugins.config.targets]]
route_type = "llm/v1/chat"
auth = { header_name = "Authorization", header_value = "Bearer {vault://env/openai-key}" }
logging = { log_statistics = true }
model = { provider = "openai", name = "gpt-4o", options = { max_tokens = 1024, input_cost = 2.5, output_cost = 10, upstream_url = "http://127.0.0.1:9001/v1/chat/completions" } }

[[plugins]]
name = "ai-proxy"
consumer = "chat-client"
[plugins.config]
auth = { header_name = "Authorization", header_value = "Bearer {vault://env/openai-key}" }
model = { provider = "openai", name = "gpt-4o-mini", options = { max_tokens = 1024, temperature = 0.7, upstream_url = "http://127.0.0.1:9001/v1/chat/completions" } }

[[plugins]]
name = "acl"
route = "chat"
config.allow = ["premium"]
"#;

const OPENAI_KEY: &str = "sk-test-0123456789";

fn env(name: &str) -> Option<String> {
    match name {
        "OPENAI_KEY" => Some(OPENAI_KEY.to_string()),
        "SERVICE_URL" => Some(format!("ftp://user:{OPENAI_KEY}@host")),
        "SHARED_KEY" => Some("shared-secret-key".to_string()),
        _ => None,
    }
}

fn load(text: &str) -> Result<Config, ConfigErrors> {
    load_str(text, Path::new("conf/tollgate.toml"), &env)
}

/// The errors of a file that must fail to load.
fn errors(text: &str) -> Vec<ConfigError> {
    match load(text) {
        Ok(config) => panic!("expected errors, loaded: {}", config.summary()),
        Err(errors) => errors.0,
    }
}

/// 1-based line of the first occurrence of `needle` (which must be unique enough).
fn line_of(text: &str, needle: &str) -> usize {
    let at = text.find(needle).unwrap_or_else(|| panic!("{needle:?} not in text"));
    text[..at].matches('\n').count() + 1
}

/// The single error of a file, checked against a path and a line.
fn single_error(text: &str) -> ConfigError {
    let mut errors = errors(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors.remove(0)
}

#[test]
fn seed_scenario_loads() {
    let config = load(SEED).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.source, Path::new("conf/tollgate.toml"));
    assert_eq!(config.server.listen, vec!["0.0.0.0:8000"]);
    assert_eq!(config.services.len(), 1);
    assert_eq!(config.services[0].url, None);
    assert_eq!(config.routes[0].methods, vec!["POST"]);
    assert!(config.routes[0].strip_path, "Kong's default");
    assert_eq!(config.consumers[0].reference(), "chat-client");
    assert_eq!(config.consumers[0].keyauth_credentials[0].key, "secret-chat-key");

    let names: Vec<&str> = config.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["key-auth", "ai-proxy-advanced", "ai-proxy", "acl"]);
    match &config.plugins[0].config {
        PluginConfig::KeyAuth(c) => assert_eq!(c.key_names, ["apikey"]),
        other => panic!("{other:?}"),
    }
    match &config.plugins[1].config {
        PluginConfig::AiProxyAdvanced(c) => {
            assert_eq!(c.balancer.algorithm, "round-robin");
            assert_eq!(c.balancer.retries, 3);
            let target = &c.targets[0];
            assert_eq!(target.model.provider, "openai");
            assert_eq!(target.model.name.as_deref(), Some("gpt-4o"));
            assert_eq!(target.model.options.max_tokens, Some(1024));
            assert_eq!(target.model.options.output_cost, Some(10.0));
            assert!(target.logging.log_statistics);
            let auth = target.auth.as_ref().expect("auth");
            assert_eq!(auth.header_value.as_deref(), Some(format!("Bearer {OPENAI_KEY}").as_str()));
        }
        other => panic!("{other:?}"),
    }
    let ai_proxy = &config.plugins[2];
    assert_eq!(ai_proxy.consumer.as_deref(), Some("chat-client"));
    match &ai_proxy.config {
        PluginConfig::AiProxy(t) => {
            assert_eq!(t.route_type, "llm/v1/chat", "defaulted");
            assert_eq!(t.model.options.temperature, Some(0.7));
            assert_eq!(t.model.options.max_tokens, Some(1024));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        config.summary(),
        "1 services, 1 routes, 1 consumers, 4 plugins (key-auth, ai-proxy-advanced, ai-proxy, acl)"
    );
    // sha256 of the text, not of the resolved values.
    assert_eq!(config.digest.len(), 64);
    assert_eq!(config.digest, load(SEED).map(|c| c.digest).unwrap_or_default());
    assert_ne!(config.digest, load(&format!("{SEED}\n")).map(|c| c.digest).unwrap_or_default());
}

#[test]
fn load_file_reads_file_vault_relative_to_config_and_hashes_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("openai.key"), "sk-from-file\n").expect("write");
    let text = SEED.replace("{vault://env/openai-key}", "{vault://file/openai.key}");
    let path = dir.path().join("tollgate.toml");
    std::fs::write(&path, &text).expect("write");
    let config = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    match &config.plugins[2].config {
        PluginConfig::AiProxy(t) => {
            assert_eq!(t.auth.as_ref().and_then(|a| a.header_value.as_deref()), Some("Bearer sk-from-file"))
        }
        other => panic!("{other:?}"),
    }
    // Known digest of a fixed input, to pin the encoding (lower-case hex sha256).
    std::fs::write(&path, "").expect("write");
    assert_eq!(
        load_file(&path).map(|c| c.digest).unwrap_or_default(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn load_file_reports_unreadable_file_without_position() {
    let errors = load_file(Path::new("/nonexistent/tollgate.toml")).expect_err("missing file");
    assert_eq!(errors.len(), 1);
    let text = errors.to_string();
    assert!(text.starts_with("/nonexistent/tollgate.toml: cannot read config file:"), "{text}");
}

#[test]
fn empty_file_is_a_valid_default() {
    let config = load("").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.summary(), "0 services, 0 routes, 0 consumers, 0 plugins");
    assert_eq!(config.server.admin_listen, "127.0.0.1:8100");
}

#[test]
fn unknown_top_level_field_names_path_and_line() {
    // Before `[server]`, so it is a top-level key (a common mistake: `listen` belongs
    // in `[server]`).
    let text = format!("listen = [\"0.0.0.0:9000\"]\n{SEED}");
    let e = single_error(&text);
    assert_eq!(e.path, "listen");
    assert_eq!(e.line, line_of(&text, "listen = [\"0.0.0.0:9000\"]"));
    assert!(e.message.contains("unknown field `listen`"), "{}", e.message);
}

#[test]
fn unknown_route_field_names_path_and_line() {
    let text = SEED.replace("methods = [\"POST\"]", "methods = [\"POST\"]\nstrip_pth = false");
    let e = single_error(&text);
    assert_eq!(e.path, "routes[0].strip_pth");
    assert_eq!((e.line, e.column), (line_of(&text, "strip_pth"), 1));
    assert!(e.message.contains("unknown field `strip_pth`"), "{}", e.message);
    assert!(e.message.contains("`strip_path`"), "lists the valid fields: {}", e.message);
}

#[test]
fn unknown_field_deep_in_plugin_config_names_path_and_line() {
    let text = SEED.replace("name = \"gpt-4o\", options", "name = \"gpt-4o\", modle_name = \"x\", options");
    let e = single_error(&text);
    assert_eq!(e.path, "plugins[1].config.targets[0].model.modle_name");
    assert_eq!(e.line, line_of(&text, "modle_name"));
    assert!(e.message.contains("unknown field `modle_name`"), "{}", e.message);
}

#[test]
fn type_errors_in_plugin_config_name_path_and_line() {
    let text = SEED.replace("temperature = 0.7", "temperature = \"warm\"");
    let e = single_error(&text);
    assert_eq!(e.path, "plugins[2].config.model.options.temperature");
    assert_eq!(e.line, line_of(&text, "\"warm\""));
    assert!(e.message.contains("invalid type"), "{}", e.message);
}

#[test]
fn plugin_config_errors_are_collected_from_every_plugin() {
    let text = SEED
        .replace("config.key_names = [\"apikey\"]", "config.key_nmes = [\"apikey\"]")
        .replace("config.allow = [\"premium\"]", "config.allowed = [\"premium\"]");
    let errors = errors(&text);
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["plugins[0].config.key_nmes", "plugins[3].config.allowed"]);
    assert_eq!(errors[1].line, line_of(&text, "config.allowed"));
}

#[test]
fn unknown_plugins_list_the_supported_ones() {
    let text = format!("{SEED}\n[[plugins]]\nname = \"cors\"\n");
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].path, "plugins[4].name");
    assert_eq!(errors[0].line, line_of(&text, "\"cors\""));
    assert_eq!(
        errors[0].message,
        "unknown plugin `cors`; supported plugins: key-auth, mtls-auth, acl, ai-proxy, ai-proxy-advanced, ai-rate-limiting-advanced, rate-limiting, ai-mcp-proxy, opentelemetry, ai-semantic-cache, ai-prompt-guard, ai-sanitizer, ai-custom-guardrail, ai-budget"
    );
}

#[test]
fn token_limits_are_typed_and_checked() {
    let ok = format!(
        "{SEED}\n[[plugins]]\nname = \"ai-rate-limiting-advanced\"\nservice = \"mcp-service\"\n[plugins.config]\nstrategy = \"local\"\nwindow_type = \"fixed\"\nllm_providers = [{{ name = \"openai\", window_size = [60, 3600], limit = [10000, 1000000] }}]\n"
    );
    assert!(load(&ok).is_ok(), "{:?}", load(&ok).err());
    let bad = format!(
        "{SEED}\n[[plugins]]\nname = \"ai-rate-limiting-advanced\"\nservice = \"mcp-service\"\n[plugins.config]\nstrategy = \"redis\"\nwindow_type = \"rolling\"\nllm_providers = [{{ name = \"openai\", window_size = [60, 3600], limit = [10000] }}]\n"
    );
    let errors = errors(&bad);
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        ["plugins[4].config.redis", "plugins[4].config.window_type", "plugins[4].config.llm_providers[0].window_size"],
        "{errors:#?}"
    );
}

#[test]
fn dangling_references_name_their_lines() {
    let text = SEED
        .replace("service = \"mcp-service\"\npaths", "service = \"mcp-svc\"\npaths")
        .replace("route = \"chat\"", "route = \"chat-v2\"")
        .replace("consumer = \"chat-client\"", "consumer = \"nobody\"");
    let errors = errors(&text);
    let got: Vec<(&str, usize)> = errors.iter().map(|e| (e.path.as_str(), e.line)).collect();
    assert_eq!(
        got,
        [
            ("routes[0].service", line_of(&text, "\"mcp-svc\"")),
            ("plugins[2].consumer", line_of(&text, "\"nobody\"")),
            ("plugins[3].route", line_of(&text, "\"chat-v2\"")),
        ],
        "{errors:#?}"
    );
    assert_eq!(errors[0].message, "unknown service `mcp-svc`");
    assert_eq!(errors[1].message, "unknown consumer `nobody`");
    assert_eq!(errors[2].message, "unknown route `chat-v2`");
}

#[test]
fn consumers_are_referenced_by_username_or_custom_id() {
    let text = SEED
        .replace("username = \"chat-client\"", "custom_id = \"client-7\"")
        .replace("consumer = \"chat-client\"", "consumer = \"client-7\"");
    let config = load(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.consumers[0].reference(), "client-7");
    let text = format!("{SEED}\n[[plugins]]\nname = \"key-auth\"\nroute = \"chat\"\nconfig.anonymous = \"ghost\"\n");
    let e = single_error(&text);
    assert_eq!(e.path, "plugins[4].config.anonymous");
    assert_eq!(e.line, line_of(&text, "\"ghost\""));
}

#[test]
fn three_independent_semantic_errors_are_all_listed() {
    let text = SEED
        .replace("paths = [\"/llm/v1/chat\"]", "paths = [\"llm/v1/chat\"]")
        .replace("methods = [\"POST\"]", "methods = [\"POSTT\"]")
        .replace("algorithm = \"round-robin\"", "algorithm = \"fastest\"");
    let errors = errors(&text);
    let got: Vec<(&str, usize, &str)> = errors.iter().map(|e| (e.path.as_str(), e.line, e.message.as_str())).collect();
    assert_eq!(
        got,
        [
            (
                "routes[0].paths[0]",
                line_of(&text, "paths = [\"llm"),
                "path `llm/v1/chat` must start with `/`"
            ),
            (
                "routes[0].methods[0]",
                line_of(&text, "POSTT"),
                "unknown HTTP method `POSTT`; expected one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE, CONNECT"
            ),
            (
                "plugins[1].config.balancer.algorithm",
                line_of(&text, "fastest"),
                "unknown balancer algorithm `fastest`; expected one of round-robin, least-connections, lowest-latency, lowest-usage, consistent-hashing, semantic, priority"
            ),
        ]
    );
    // Display: one `FILE:LINE:COL: PATH: MESSAGE` per line.
    let shown = ConfigErrors(errors).to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0],
        format!(
            "conf/tollgate.toml:{}:10: routes[0].paths[0]: path `llm/v1/chat` must start with `/`",
            line_of(&text, "paths = [\"llm")
        )
    );
}

#[test]
fn missing_vault_env_names_reference_variable_and_line() {
    let text = SEED.replace(
        "header_value = \"Bearer {vault://env/openai-key}\" }\nlogging",
        "header_value = \"Bearer {vault://env/openai-api-key}\" }\nlogging",
    );
    let e = single_error(&text);
    assert_eq!(e.path, "plugins[1].config.targets[0].auth.header_value");
    assert_eq!(e.line, line_of(&text, "openai-api-key"));
    assert_eq!(
        e.message,
        "vault reference {vault://env/openai-api-key}: environment variable OPENAI_API_KEY is not set"
    );
    // The other reference in the same file resolved; its secret is nowhere.
    assert!(!e.to_string().contains(OPENAI_KEY));
}

#[test]
fn a_prefix_without_a_vault_entity_is_an_error() {
    let text = SEED.replace("key = \"secret-chat-key\"", "key = \"{vault://aws/chat-key}\"");
    let e = single_error(&text);
    assert_eq!(e.path, "consumers[0].keyauth_credentials[0].key");
    assert_eq!(e.line, line_of(&text, "vault://aws"));
    assert_eq!(
        e.message,
        "vault reference {vault://aws/chat-key}: no [[vaults]] entry has prefix `aws` (built-in prefixes: env, file)"
    );
}

#[test]
fn errors_never_print_resolved_secrets() {
    // A url taken from a vault that is invalid, and a duplicate key from the same
    // vault: both are errors, neither may show the resolved value.
    let text = SEED
        .replace("name = \"mcp-service\"\n", "name = \"mcp-service\"\n\n[[services]]\nname = \"other\"\nurl = \"{vault://env/service-url}\"\n")
        .replace(
            "keyauth_credentials = [{ key = \"secret-chat-key\" }]",
            "keyauth_credentials = [{ key = \"{vault://env/shared-key}\" }]\n\n[[consumers]]\nusername = \"second\"\nkeyauth_credentials = [{ key = \"{vault://env/shared-key}\" }]",
        );
    let errors = load(&text).expect_err("two errors");
    let shown = errors.to_string();
    assert_eq!(errors.len(), 2, "{shown}");
    assert!(!shown.contains(OPENAI_KEY), "{shown}");
    assert!(!shown.contains("shared-secret-key"), "{shown}");
    assert!(!shown.contains("ftp://"), "{shown}");
    assert_eq!(errors.0[0].path, "services[1].url");
    assert!(errors.0[0].message.contains("not shown"), "{shown}");
    assert_eq!(errors.0[1].path, "consumers[1].keyauth_credentials[0].key");
}

#[test]
fn duplicate_keys_name_both_places_but_not_the_key() {
    let text = format!(
        "{SEED}\n[[consumers]]\nusername = \"copycat\"\nkeyauth_credentials = [{{ key = \"other\" }}, {{ key = \"secret-chat-key\" }}]\n"
    );
    let e = single_error(&text);
    assert_eq!(e.path, "consumers[1].keyauth_credentials[1].key");
    assert_eq!(e.line, line_of(&text, "copycat") + 1);
    assert_eq!(
        e.message,
        format!(
            "duplicate key-auth key: the same key is already used at consumers[0].keyauth_credentials[0].key (line {})",
            line_of(&text, "secret-chat-key")
        )
    );
    assert!(!e.to_string().contains("secret-chat-key"));
}

#[test]
fn duplicate_names_and_consumer_identity() {
    let text = format!(
        "{SEED}\n[[services]]\nname = \"mcp-service\"\nurl = \"http://mcp:8080/mcp\"\n\n[[consumers]]\nusername = \"chat-client\"\n\n[[consumers]]\ngroups = [\"x\"]\n\n[[consumers]]\ncustom_id = \"a\"\n\n[[consumers]]\ncustom_id = \"a\"\n\n[[consumers]]\nusername = \"\"\n"
    );
    let errors = errors(&text);
    let got: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        got,
        [
            "services[1].name",
            "consumers[1].username",
            "consumers[2]",
            "consumers[4].custom_id",
            "consumers[5].username",
        ],
        "{errors:#?}"
    );
    assert!(errors[0].message.starts_with("duplicate service name `mcp-service`; first defined at services[0].name"));
    assert_eq!(errors[2].message, "a consumer needs a username or a custom_id");
}

#[test]
fn route_shape_and_service_url_checks() {
    let text = format!(
        "{SEED}\n[[services]]\nname = \"web\"\nurl = \"mcp-server:8080\"\n\n[[routes]]\nname = \"nowhere\"\nservice = \"web\"\n\n[[routes]]\nname = \"hosted\"\nservice = \"web\"\nhosts = [\"*.example.com\"]\n"
    );
    let errors = errors(&text);
    let got: Vec<(&str, &str)> = errors.iter().map(|e| (e.path.as_str(), e.message.as_str())).collect();
    assert_eq!(
        got,
        [
            ("services[1].url", "url `mcp-server:8080` must start with http:// or https://"),
            ("routes[1]", "a route needs at least one of paths or hosts"),
        ]
    );
    assert_eq!(errors[1].line, line_of(&text, "name = \"nowhere\"") - 1);
}

#[test]
fn service_without_url_needs_an_ai_plugin_for_every_consumer() {
    // Only the consumer-scoped ai-proxy remains: other consumers would have no upstream.
    let text = SEED.replace(
        "name = \"ai-proxy-advanced\"\nservice = \"mcp-service\"",
        "name = \"ai-proxy-advanced\"\nservice = \"mcp-service\"\nenabled = false",
    );
    let e = single_error(&text);
    assert_eq!(e.path, "routes[0].service");
    assert_eq!(e.line, line_of(&text, "service = \"mcp-service\"\npaths"));
    assert_eq!(
        e.message,
        "service `mcp-service` has neither url nor an ai-proxy plugin, so route `chat` has no upstream"
    );
    // A global ai-proxy serves every route.
    let text = format!("{text}\n[[plugins]]\nname = \"ai-proxy\"\nconfig.model.provider = \"openai\"\n");
    assert!(load(&text).is_ok());
}

#[test]
fn target_checks() {
    let text = format!(
        r#"{SEED}
[[routes]]
name = "r2"
service = "mcp-service"
paths = ["/two"]

[[plugins]]
name = "ai-proxy-advanced"
route = "r2"
[plugins.config.balancer]
algorithm = "fastest"
[[plugins.config.targets]]
route_type = "llm/v1/embeddings"
weight = 0
model = {{ provider = "bedrock", options = {{ anthropic_version = "2023-06-01", bedrock = {{ aws_region = "us-east-1/../x" }} }} }}
auth = {{ aws_access_key_id = "AKIA" }}
[[plugins.config.targets]]
auth = {{ header_name = "Authorization", param_location = "header" }}
model = {{ provider = "openai-compatible", options = {{ temperature = 6, top_p = 1.5, max_tokens = 0 }} }}
[[plugins.config.targets]]
model = {{ provider = "llama", options = {{ upstream_url = "http://[::1" }} }}
"#
    );
    let errors = errors(&text);
    let got: Vec<(&str, &str)> = errors.iter().map(|e| (e.path.as_str(), e.message.as_str())).collect();
    let t = "plugins[4].config";
    let expected = [
        (format!("{t}.balancer.algorithm"), "unknown balancer algorithm `fastest`; expected one of round-robin, least-connections, lowest-latency, lowest-usage, consistent-hashing, semantic, priority".to_string()),
        (format!("{t}.targets[1].route_type"), "route_type llm/v1/chat differs from targets[0]'s llm/v1/embeddings; the targets of one plugin serve one route type".to_string()),
        (format!("{t}.targets[2].route_type"), "route_type llm/v1/chat differs from targets[0]'s llm/v1/embeddings; the targets of one plugin serve one route type".to_string()),
        (format!("{t}.targets[0].weight"), "weight 0 must be in 1..=65535".to_string()),
        (format!("{t}.targets[0].model.options.anthropic_version"), "anthropic_version is only used by provider anthropic".to_string()),
        (format!("{t}.targets[0].model.options.bedrock.aws_region"), "`us-east-1/../x` may only hold letters, digits, '-', '.' and '_'".to_string()),
        (format!("{t}.targets[0].auth"), "aws_access_key_id and aws_secret_access_key must be set together".to_string()),
        (format!("{t}.targets[1].auth"), "header_name and header_value must be set together".to_string()),
        (format!("{t}.targets[1].auth"), "param_name, param_value and param_location must be set together".to_string()),
        (format!("{t}.targets[1].auth.param_location"), "param_location `header` must be `query` or `body`".to_string()),
        (format!("{t}.targets[1].model.options.max_tokens"), "max_tokens must be at least 1".to_string()),
        (format!("{t}.targets[1].model.options.temperature"), "temperature 6 must be in 0..=5".to_string()),
        (format!("{t}.targets[1].model.options.top_p"), "top_p 1.5 must be in 0..=1".to_string()),
        (format!("{t}.targets[1].model.options.upstream_url"), "provider openai-compatible needs model.options.upstream_url".to_string()),
        (format!("{t}.targets[2].model.provider"), "unknown provider `llama`; expected one of openai, azure, anthropic, gemini, bedrock, mistral, cohere, ollama, openai-compatible".to_string()),
        (format!("{t}.targets[2].model.options.upstream_url"), "upstream_url `http://[::1` IPv6 host is missing its closing `]`".to_string()),
    ];
    let mut got: Vec<(String, String)> = got.iter().map(|(p, m)| (p.to_string(), m.to_string())).collect();
    let mut expected = expected.to_vec();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn plugin_checks() {
    let text = format!(
        "{SEED}\n[[plugins]]\nname = \"acl\"\nroute = \"chat\"\nconfig = {{ allow = [\"a\"], deny = [\"b\"] }}\n\n[[plugins]]\nname = \"key-auth\"\nconsumer = \"chat-client\"\nconfig.key_names = []\n\n[[plugins]]\nname = \"ai-proxy\"\nservice = \"mcp-service\"\nconfig.model.provider = \"openai\"\n"
    );
    let errors = errors(&text);
    let got: Vec<(&str, usize)> = errors.iter().map(|e| (e.path.as_str(), e.line)).collect();
    assert_eq!(
        got,
        [
            ("plugins[4]", line_of(&text, "[[plugins]]\nname = \"acl\"\nroute = \"chat\"\nconfig = {")),
            ("plugins[4].config", line_of(&text, "config = { allow")),
            ("plugins[5].consumer", line_of(&text, "consumer = \"chat-client\"\nconfig.key_names = []")),
            ("plugins[5].config.key_names", line_of(&text, "config.key_names = []")),
            ("plugins[6]", line_of(&text, "[[plugins]]\nname = \"ai-proxy\"\nservice")),
        ],
        "{errors:#?}"
    );
    assert!(errors[0]
        .message
        .starts_with("plugin acl is configured twice for the same scope (route `chat`); first at plugins[3]"));
    assert_eq!(errors[1].message, "set exactly one of allow or deny to a non-empty list of groups");
    assert!(errors[4]
        .message
        .starts_with("ai-proxy and ai-proxy-advanced are both configured for the same scope (service `mcp-service`)"));
}

#[test]
fn server_checks() {
    let text = SEED
        .replace(
            "listen = [\"0.0.0.0:8000\"]",
            "listen = [\"0.0.0.0:8000\", \"localhost:80\"]\nmax_request_body_size = 0\nclient_header_timeout = 0",
        )
        .replace("admin_listen = \"127.0.0.1:8100\"", "admin_listen = \"8100\"");
    let errors = errors(&text);
    let got: Vec<(&str, usize)> = errors.iter().map(|e| (e.path.as_str(), e.line)).collect();
    assert_eq!(
        got,
        [
            ("server.listen[1]", 2),
            ("server.max_request_body_size", 3),
            ("server.client_header_timeout", 4),
            ("server.admin_listen", 5),
        ],
        "{errors:#?}"
    );
}

#[test]
fn syntax_errors_have_a_position() {
    let text = "[server]\nlisten = [\"0.0.0.0:8000\"\n";
    let e = single_error(text);
    assert_eq!(e.path, "");
    assert!(e.line >= 2, "{e}");
    assert!(!e.message.contains('\n'), "one line: {e}");
    assert!(e.to_string().starts_with("conf/tollgate.toml:"), "{e}");
}

#[test]
fn plugin_config_from_entry_is_usable_alone() {
    let entry: PluginEntry = toml::from_str("name = \"acl\"\nconfig = { deny = [\"x\"] }").expect("entry");
    let config = PluginConfig::from_entry(&entry).expect("typed");
    assert_eq!(config.name(), "acl");
    let entry: PluginEntry = toml::from_str("name = \"acl\"\nconfig = { deny = 1 }").expect("entry");
    let e = PluginConfig::from_entry(&entry).expect_err("bad type");
    assert_eq!(e.path, "config.deny");
}

/// 1-based column (in characters) of the first occurrence of `needle` in its line.
fn col_of(text: &str, needle: &str) -> usize {
    let at = text.find(needle).unwrap_or_else(|| panic!("{needle:?} not in text"));
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    text[start..at].chars().count() + 1
}

fn positions(errors: &[ConfigError]) -> Vec<(&str, usize, usize)> {
    errors.iter().map(|e| (e.path.as_str(), e.line, e.column)).collect()
}

#[test]
fn unknown_field_outside_plugins_does_not_hide_other_errors() {
    let text = format!(
        "{}\n[[routes]]\nname = \"extra\"\nservice = \"mcp-svc\"\npaths = [\"/extra\"]\n",
        SEED.replace("methods = [\"POST\"]", "methods = [\"POST\"]\nstrip_paht = true")
            .replace("key = \"secret-chat-key\"", "key = \"{vault://env/missing-key}\"")
    );
    let errors = errors(&text);
    assert_eq!(
        positions(&errors),
        [
            ("routes[0].strip_paht", line_of(&text, "strip_paht"), 1),
            (
                "consumers[0].keyauth_credentials[0].key",
                line_of(&text, "missing-key"),
                col_of(&text, "\"{vault://env/missing-key}")
            ),
            ("routes[1].service", line_of(&text, "\"mcp-svc\""), col_of(&text, "\"mcp-svc\"")),
        ],
        "{errors:#?}"
    );
    assert!(errors[0].message.starts_with("unknown field `strip_paht`, expected one of"), "{}", errors[0].message);
    assert_eq!(
        errors[1].message,
        "vault reference {vault://env/missing-key}: environment variable MISSING_KEY is not set"
    );
    assert_eq!(errors[2].message, "unknown service `mcp-svc`");
    let shown = ConfigErrors(errors).to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].starts_with(&format!(
            "conf/tollgate.toml:{}:1: routes[0].strip_paht: unknown field",
            line_of(&text, "strip_paht")
        )),
        "{shown}"
    );
    assert!(!shown.contains(OPENAI_KEY), "{shown}");
}

#[test]
fn a_route_that_did_not_type_still_has_its_service_checked() {
    let text = SEED.replace(
        "service = \"mcp-service\"\npaths = [\"/llm/v1/chat\"]",
        "service = \"mcp-svc\"\npaths = [\"/llm/v1/chat\"]\nstrip_pth = true",
    );
    let errors = errors(&text);
    let got: Vec<(&str, usize)> = errors.iter().map(|e| (e.path.as_str(), e.line)).collect();
    assert_eq!(
        got,
        [("routes[0].service", line_of(&text, "\"mcp-svc\"")), ("routes[0].strip_pth", line_of(&text, "strip_pth")),],
        "{errors:#?}"
    );
    assert_eq!(errors[0].message, "unknown service `mcp-svc`");
}

#[test]
fn unknown_fields_in_two_routes_are_both_listed() {
    let text = format!(
        "{}\n[[routes]]\nname = \"two\"\nservice = \"mcp-service\"\npaths = [\"/two\"]\npreserve_hots = true\n",
        SEED.replace("methods = [\"POST\"]", "methods = [\"POST\"]\nstrip_pth = false")
    );
    let errors = errors(&text);
    assert_eq!(
        positions(&errors),
        [
            ("routes[0].strip_pth", line_of(&text, "strip_pth"), 1),
            ("routes[1].preserve_hots", line_of(&text, "preserve_hots"), 1),
        ],
        "{errors:#?}"
    );
    assert!(errors[1].message.starts_with("unknown field `preserve_hots`, expected one of"));
}

#[test]
fn every_unknown_field_of_one_entry_is_listed() {
    let text =
        SEED.replace("methods = [\"POST\"]", "methods = [\"POST\"]\nstrip_pth = false\nhots = [\"example.com\"]");
    let errors = errors(&text);
    let got: Vec<(&str, usize)> = errors.iter().map(|e| (e.path.as_str(), e.line)).collect();
    assert_eq!(
        got,
        [("routes[0].strip_pth", line_of(&text, "strip_pth")), ("routes[0].hots", line_of(&text, "hots")),],
        "{errors:#?}"
    );
}

#[test]
fn a_service_with_a_typo_still_counts_for_references() {
    // The route, key-auth and ai-proxy-advanced all name the service: only the typo
    // is an error, not three unknown services.
    let text = SEED
        .replace("name = \"mcp-service\"\n\n[[routes]]", "name = \"mcp-service\"\nread_timout = 5000\n\n[[routes]]");
    let e = single_error(&text);
    assert_eq!(e.path, "services[0].read_timout");
    assert_eq!((e.line, e.column), (line_of(&text, "read_timout"), 1));
    assert!(e.message.contains("unknown field `read_timout`"), "{}", e.message);
}

#[test]
fn an_entry_without_a_readable_name_silences_references_to_its_kind() {
    // `nme` may be the service every reference means: none is reported unknown.
    let text = SEED.replace("[[services]]\nname = \"mcp-service\"", "[[services]]\nnme = \"mcp-service\"");
    let errors = errors(&text);
    let got: Vec<(&str, &str)> = errors.iter().map(|e| (e.path.as_str(), e.message.as_str())).collect();
    assert_eq!(got.len(), 2, "{errors:#?}");
    assert_eq!(got[0], ("services[0]", "missing field `name`"));
    assert_eq!(got[1].0, "services[0].nme");
    assert!(got[1].1.starts_with("unknown field `nme`"), "{errors:#?}");
}

#[test]
fn consumers_and_plugins_that_did_not_type_keep_their_checks() {
    // A consumer with a typo still counts by username; a plugin entry with a typo
    // still has its scope and its config checked.
    let text = SEED.replace("groups = [\"premium\"]", "grups = [\"premium\"]").replace(
        "name = \"acl\"\nroute = \"chat\"\nconfig.allow",
        "name = \"acl\"\nroute = \"chat-v2\"\nenabeld = true\nconfig.alow",
    );
    let errors = errors(&text);
    let got: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        got,
        ["consumers[0].grups", "plugins[3].route", "plugins[3].enabeld", "plugins[3].config.alow",],
        "{errors:#?}"
    );
    assert_eq!(errors[1].message, "unknown route `chat-v2`");
}

#[test]
fn type_errors_outside_plugins_are_all_listed() {
    let text = format!(
        "listen = 1\nsevices = []\n{}",
        SEED.replace("listen = [\"0.0.0.0:8000\"]", "listen = \"0.0.0.0:8000\"")
            .replace("methods = [\"POST\"]", "methods = [\"POST\"]\nstrip_path = \"no\"")
    );
    let errors = errors(&text);
    let got: Vec<(&str, usize)> = errors.iter().map(|e| (e.path.as_str(), e.line)).collect();
    assert_eq!(
        got,
        [
            ("listen", 1),
            ("sevices", 2),
            ("server.listen", line_of(&text, "listen = \"0.0.0.0:8000\"")),
            ("routes[0].strip_path", line_of(&text, "strip_path")),
        ],
        "{errors:#?}"
    );
    assert!(errors[1].message.starts_with("unknown field `sevices`, expected one of `server`, `services`"));
    assert!(errors[2].message.contains("invalid type"), "{errors:#?}");
    assert!(errors[3].message.contains("invalid type"), "{errors:#?}");
}

#[test]
fn a_required_field_of_the_wrong_type_is_not_also_missing() {
    let text = SEED.replace("service = \"mcp-service\"\npaths", "service = [\"mcp-service\"]\npaths");
    let e = single_error(&text);
    assert_eq!(e.path, "routes[0].service");
    assert!(e.message.contains("invalid type"), "{}", e.message);
}

#[test]
fn a_section_of_the_wrong_shape_is_one_error() {
    // Not an array: its routes are unknown, so plugins naming one are not reported.
    let text = format!(
        "routes = \"chat\"\n{}",
        SEED.replace(
            "[[routes]]\nname = \"chat\"\nservice = \"mcp-service\"\npaths = [\"/llm/v1/chat\"]\nmethods = [\"POST\"]\n",
            "",
        )
    );
    let e = single_error(&text);
    assert_eq!(e.path, "routes");
    assert_eq!(e.line, line_of(&text, "routes = \"chat\""));
    assert!(e.message.contains("expected a sequence"), "{}", e.message);
}

#[test]
fn typing_errors_never_print_resolved_secrets() {
    // Typing runs on the unresolved text: a message may quote the reference, never
    // the secret; references of an entry that did not type are shown as hidden.
    let text = SEED.replace(
        "service = \"mcp-service\"\npaths = [\"/llm/v1/chat\"]",
        "service = \"{vault://env/openai-key}\"\npaths = [\"/llm/v1/chat\"]\nstrip_path = \"{vault://env/openai-key}\"",
    );
    let errors = errors(&text);
    let shown = ConfigErrors(errors.clone()).to_string();
    assert!(!shown.contains(OPENAI_KEY), "{shown}");
    let got: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(got, ["routes[0].service", "routes[0].strip_path"], "{shown}");
    assert_eq!(errors[0].message, "unknown service (value from a vault reference, not shown)");
    assert!(errors[1].message.contains("{vault://env/openai-key}"), "{shown}");
}

#[test]
fn provider_settings_are_checked_per_provider() {
    let text = format!(
        r#"{SEED}
[[plugins]]
name = "ai-proxy-advanced"
route = "chat"
[[plugins.config.targets]]
model = {{ provider = "azure", name = "gpt-4o" }}
[[plugins.config.targets]]
model = {{ provider = "gemini", name = "gemini-2.0-flash", options = {{ upstream_url = "http://127.0.0.1:1/?x=1", gemini = {{ project_id = "p" }} }} }}
auth = {{ aws_secret_access_key = "s" }}
[[plugins.config.targets]]
model = {{ provider = "anthropic", name = "claude", options = {{ azure_instance = "x" }} }}
auth = {{ gcp_use_service_account = true }}
"#
    );
    let errors = errors(&text);
    let mut got: Vec<(String, String)> = errors.iter().map(|e| (e.path.clone(), e.message.clone())).collect();
    got.sort();
    let t = "plugins[4].config.targets";
    let mut expected = vec![
        (format!("{t}[0].model.options"), "provider azure needs azure_instance and azure_deployment_id (or upstream_url)".to_string()),
        (format!("{t}[1].model.options.gemini"), "Vertex AI needs gemini.api_endpoint, gemini.project_id and gemini.location_id together".to_string()),
        (format!("{t}[1].model.options.upstream_url"), "upstream_url `http://127.0.0.1:1/?x=1` is a base URL for provider gemini (the model's path is appended); it must not carry a query".to_string()),
        (format!("{t}[1].auth"), "aws_* credentials are only used by provider bedrock".to_string()),
        (format!("{t}[2].auth"), "a gcp service account authenticates provider gemini on Vertex AI only (set model.options.gemini)".to_string()),
        (format!("{t}[2].model.options.azure_instance"), "azure_instance is only used by provider azure".to_string()),
    ];
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn semantic_balancing_needs_embeddings_and_descriptions() {
    let text = format!(
        r#"{SEED}
[[plugins]]
name = "ai-proxy-advanced"
route = "chat"
[plugins.config.balancer]
algorithm = "semantic"
[plugins.config.vectordb]
strategy = "redis"
threshold = 2.0
[[plugins.config.targets]]
model = {{ provider = "openai", name = "gpt-4o" }}
[[plugins.config.targets]]
description = "CATCHALL"
model = {{ provider = "openai", name = "gpt-4o-mini" }}
[[plugins.config.targets]]
description = "CATCHALL"
model = {{ provider = "openai", name = "gpt-4o-mini" }}
"#
    );
    let mut got: Vec<(String, String)> = errors(&text).iter().map(|e| (e.path.clone(), e.message.clone())).collect();
    got.sort();
    let t = "plugins[4].config";
    let mut expected = vec![
        (format!("{t}.embeddings"), "the semantic algorithm needs an embeddings model".to_string()),
        (
            format!("{t}.vectordb.strategy"),
            "vectordb strategy `redis` is not implemented yet (implemented: memory)".to_string(),
        ),
        (format!("{t}.vectordb.threshold"), "threshold 2 must be a cosine similarity in -1..=1".to_string()),
        (
            format!("{t}.targets[0].description"),
            "semantic balancing routes by description: describe what this target serves (or CATCHALL)".to_string(),
        ),
        (format!("{t}.targets"), "at most one target may be the CATCHALL".to_string()),
    ];
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn mcp_proxy_reads_kongs_acl_fields_and_ours() {
    let text = format!(
        r#"{SEED}
[[plugins]]
name = "ai-mcp-proxy"
route = "chat"
[plugins.config]
mode = "passthrough-listener"
default_acl = [{{ scope = "tools", allow = ["developer"], deny = ["suspended"] }}]
targets = ["http://127.0.0.1:9101/mcp", "http://127.0.0.1:9102/mcp"]
session_secret = "0123456789abcdef0123"
default_tool_limit = {{ window_size = [60], limit = [100] }}
[[plugins.config.tools]]
name = "delete_user"
acl = {{ allow = ["admin"] }}
limit = {{ window_size = [60, 3600], limit = [5, 50] }}
"#
    );
    let config = load(&text).expect("loads");
    let PluginConfig::AiMcpProxy(c) = &config.plugins[4].config else {
        panic!("not typed as ai-mcp-proxy");
    };
    assert_eq!(c.max_request_body_size, 1024 * 1024);
    assert_eq!(c.tools[0].acl.as_ref().map(|a| a.allow.clone()), Some(vec!["admin".to_string()]));
    assert_eq!(c.tools[0].limit.as_ref().map(|l| l.limit.clone()), Some(vec![5, 50]));
    assert_eq!(c.stream_read_timeout, 3_600_000);
    assert!(!c.forward_client_credentials);
}

#[test]
fn mcp_proxy_mistakes_are_named() {
    let text = format!(
        r#"{SEED}
[[plugins]]
name = "ai-mcp-proxy"
route = "chat"
[plugins.config]
mode = "conversion-only"
consumer_identifier = "consumer_id"
default_acl = [{{ scope = "files" }}, {{ scope = "prompts" }}, {{ scope = "prompts" }}]
resources = [{{ uri = "config://a", acl = {{ deny = ["x"] }} }}, {{ uri = "config://a", acl = {{}} }}]
prompts = [{{ name = "", acl = {{}} }}]
targets = ["http://127.0.0.1:9101/mcp", "ftp://x"]
[[plugins.config.tools]]
name = "a"
limit = {{ window_size = [60, 0], limit = [5] }}
[[plugins.config.tools]]
name = "a"
"#
    );
    let mut got: Vec<(String, String)> = errors(&text).iter().map(|e| (e.path.clone(), e.message.clone())).collect();
    got.sort();
    let t = "plugins[4].config";
    let mut expected = vec![
        (format!("{t}.mode"), "mode `conversion-only` is not implemented yet (implemented: passthrough-listener, conversion-listener, listener)".to_string()),
        (format!("{t}.consumer_identifier"), "consumer_identifier `consumer_id` is not implemented yet (implemented: username, custom_id)".to_string()),
        (format!("{t}.default_acl[0].scope"), "unknown scope `files`; expected one of tools, resources, prompts".to_string()),
        (format!("{t}.default_acl[2].scope"), "scope `prompts` has a default ACL already: one per scope".to_string()),
        (format!("{t}.resources[1].uri"), "`config://a` is listed twice in resources".to_string()),
        (format!("{t}.prompts[0].name"), "name must not be empty".to_string()),
        (format!("{t}.tools[0].limit.window_size"), "window_size and limit must be non-empty lists of the same length".to_string()),
        (format!("{t}.tools[0].limit.window_size"), "a window must be at least 1 second".to_string()),
        (format!("{t}.tools[1].name"), "`a` is listed twice in tools".to_string()),
        (format!("{t}.session_secret"), "several targets need a session_secret: it seals each session's replica into its id, so every gateway replica routes the session to the MCP server that created it".to_string()),
    ];
    expected.sort();
    let (targets, rest): (Vec<_>, Vec<_>) = got.into_iter().partition(|(p, _)| p.ends_with("targets[1]"));
    assert_eq!(rest, expected);
    assert_eq!(targets.len(), 1, "the ftp URL is refused");
}

#[test]
fn tls_and_watch_fields_default_off_and_parse() {
    let server = load(SEED).unwrap_or_else(|e| panic!("{e}")).server;
    assert!(server.tls_listen.is_empty() && server.tls_certificates.is_empty());
    assert!(server.http2 && !server.h2c && !server.watch);

    let text = SEED.replace(
        "admin_listen = \"127.0.0.1:8100\"",
        "admin_listen = \"127.0.0.1:8100\"\ntls_listen = [\"0.0.0.0:8443\"]\nhttp2 = false\nh2c = true\nwatch = true\n\
         tls_certificates = [\n  { cert = \"a.pem\", key = \"a.key\", snis = [\"api.example.com\", \"*.Example.com\"] },\n  { cert = \"/etc/tls/b.pem\", key = \"b.key\" },\n]",
    );
    let server = load(&text).unwrap_or_else(|e| panic!("{e}")).server;
    assert_eq!(server.tls_listen, ["0.0.0.0:8443"]);
    assert!(!server.http2 && server.h2c && server.watch);
    assert_eq!(server.tls_certificates.len(), 2);
    assert_eq!(server.tls_certificates[0].snis, ["api.example.com", "*.Example.com"]);
    assert_eq!(server.tls_certificates[1].cert, "/etc/tls/b.pem");
    assert!(server.tls_certificates[1].snis.is_empty());
}

#[test]
fn tls_listen_needs_certificates() {
    let text = SEED.replace(
        "admin_listen = \"127.0.0.1:8100\"",
        "admin_listen = \"127.0.0.1:8100\"\ntls_listen = [\"0.0.0.0:8443\"]",
    );
    let e = single_error(&text);
    assert_eq!(e.path, "server.tls_certificates");
    assert!(e.message.starts_with("tls_listen needs at least one certificate"), "{e}");
}

#[test]
fn tls_mistakes_are_named() {
    let text = SEED.replace(
        "admin_listen = \"127.0.0.1:8100\"",
        "admin_listen = \"127.0.0.1:8443\"\n\
         tls_listen = [\"0.0.0.0:8000\", \"8443\", \"127.0.0.1:8443\"]\n\
         tls_certificates = [\n\
           { cert = \"\", key = \"a.key\", snis = [\"API.example.com\", \"*.*.example.com\"] },\n\
           { cert = \"b.pem\", key = \" \", snis = [\"api.example.com\", \"10.0.0.1\", \"host:443\", \"*.example.com\"] },\n\
         ]",
    );
    let errors = errors(&text);
    let got: Vec<(&str, usize)> = errors.iter().map(|e| (e.path.as_str(), e.line)).collect();
    let at = |needle: &str| line_of(&text, needle);
    assert_eq!(
        got,
        [
            ("server.admin_listen", 3),
            ("server.tls_listen[0]", 4),
            ("server.tls_listen[1]", 4),
            ("server.tls_certificates[0].cert", at("cert = \"\"")),
            ("server.tls_certificates[0].snis[1]", at("cert = \"\"")),
            ("server.tls_certificates[1].key", at("cert = \"b.pem\"")),
            ("server.tls_certificates[1].snis[0]", at("cert = \"b.pem\"")),
            ("server.tls_certificates[1].snis[1]", at("cert = \"b.pem\"")),
            ("server.tls_certificates[1].snis[2]", at("cert = \"b.pem\"")),
        ],
        "{errors:#?}"
    );
    let message = |path: &str| errors.iter().find(|e| e.path == path).map(|e| e.message.clone()).unwrap_or_default();
    assert!(message("server.admin_listen").contains("also a proxy listen address (server.tls_listen[2])"));
    assert!(message("server.tls_listen[0]").starts_with("duplicate listen address `0.0.0.0:8000`"));
    assert!(message("server.tls_listen[1]").contains("is not a socket address"));
    assert_eq!(message("server.tls_certificates[0].cert"), "must name a PEM file");
    assert!(message("server.tls_certificates[0].snis[1]").contains("may only start with `*.`"));
    assert!(message("server.tls_certificates[1].snis[0]")
        .starts_with("duplicate SNI `api.example.com`; first listed at server.tls_certificates[0].snis[0]"));
    assert!(message("server.tls_certificates[1].snis[1]").contains("IP address"));
    assert!(message("server.tls_certificates[1].snis[2]").contains("not a DNS name"));

    // Certificate entries reject unknown fields like every other table.
    let text = SEED.replace(
        "admin_listen = \"127.0.0.1:8100\"",
        "admin_listen = \"127.0.0.1:8100\"\ntls_certificates = [{ cert = \"c.pem\", key = \"c.key\", sni = [\"x\"] }]",
    );
    let e = single_error(&text);
    assert_eq!((e.path.as_str(), e.line), ("server.tls_certificates[0].sni", 4));
    assert!(e.message.starts_with("unknown field `sni`, expected one of `cert`, `key`, `snis`"), "{e}");
}

/// An ai-rate-limiting-advanced plugin using Redis with the given `redis` table body.
fn redis_plugin(redis: &str) -> String {
    format!(
        "{SEED}\n[[plugins]]\nname = \"ai-rate-limiting-advanced\"\nservice = \"mcp-service\"\n[plugins.config]\nstrategy = \"redis\"\nllm_providers = [{{ name = \"openai\", window_size = [60], limit = [100] }}]\nredis = {{ {redis} }}\n"
    )
}

fn redis_of(config: &Config) -> crate::schema::RedisSettings {
    match &config.plugins[4].config {
        PluginConfig::AiRateLimiting(c) => c.redis.clone().expect("redis table"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn redis_sentinel_and_cluster_modes_load() {
    let text = redis_plugin(
        "sentinel_master = \"mymaster\", sentinel_nodes = [{ host = \"10.0.0.1\", port = 26380 }, { host = \"10.0.0.2\" }], sentinel_username = \"s\", sentinel_password = \"{vault://env/openai-key}\", sentinel_role = \"master\", password = \"master-pw-77\"",
    );
    let config = load(&text).unwrap_or_else(|e| panic!("{e:?}"));
    let r = redis_of(&config);
    assert_eq!(r.sentinel_master.as_deref(), Some("mymaster"));
    let nodes: Vec<(&str, u16)> = r.sentinel_nodes.iter().map(|n| (n.host.as_str(), n.port)).collect();
    assert_eq!(nodes, [("10.0.0.1", 26380), ("10.0.0.2", 26379)]);
    // The vault reference is resolved, and neither password shows in Debug output.
    assert_eq!(r.sentinel_password.as_deref(), Some(OPENAI_KEY));
    let shown = format!("{r:?}");
    assert!(!shown.contains(OPENAI_KEY) && !shown.contains("master-pw-77"), "{shown}");

    let text = redis_plugin("cluster_nodes = [{ ip = \"10.0.0.1\", port = 7000 }, { ip = \"10.0.0.2\" }]");
    let r = redis_of(&load(&text).unwrap_or_else(|e| panic!("{e:?}")));
    let nodes: Vec<(&str, u16)> = r.cluster_nodes.iter().map(|n| (n.ip.as_str(), n.port)).collect();
    assert_eq!(nodes, [("10.0.0.1", 7000), ("10.0.0.2", 6379)]);
    assert_eq!(r.cluster_max_redirections, 5);

    // Plain mode keeps its defaults and has no topology fields.
    let r = redis_of(&load(&redis_plugin("host = \"redis.local\"")).unwrap_or_else(|e| panic!("{e:?}")));
    assert!(r.sentinel_master.is_none() && r.sentinel_nodes.is_empty() && r.cluster_nodes.is_empty());
}

#[test]
fn redis_modes_are_exclusive_and_complete() {
    let base = "plugins[4].config.redis";
    let cases: &[(&str, &[(&str, &str)])] = &[
        (
            "sentinel_master = \"m\", sentinel_nodes = [{ host = \"a\" }], cluster_nodes = [{ ip = \"b\" }]",
            &[("", "sentinel_master/sentinel_nodes and cluster_nodes are exclusive")],
        ),
        (
            "host = \"redis.local\", cluster_nodes = [{ ip = \"b\" }]",
            &[(".host", "host/port and cluster_nodes are exclusive")],
        ),
        (
            "port = 6380, sentinel_master = \"m\", sentinel_nodes = [{ host = \"a\" }]",
            &[(".host", "host/port and sentinel_master/sentinel_nodes are exclusive")],
        ),
        ("sentinel_master = \"m\"", &[(".sentinel_nodes", "at least one sentinel node")]),
        ("sentinel_nodes = [{ host = \"a\" }]", &[(".sentinel_master", "needs the master's name")]),
        (
            "sentinel_master = \"m\", sentinel_nodes = [{ host = \"a\" }], sentinel_role = \"any\"",
            &[(".sentinel_role", "\"any\" is not implemented")],
        ),
        (
            "sentinel_master = \"m\", sentinel_nodes = [{ host = \"a\" }], sentinel_role = \"boss\"",
            &[(".sentinel_role", "unknown role")],
        ),
        ("sentinel_password = \"x\"", &[(".sentinel_master", "need sentinel_master and sentinel_nodes")]),
        (
            "cluster_nodes = [{ ip = \"\" }], database = 2, cluster_max_redirections = 0",
            &[
                (".cluster_nodes[0].ip", "must not be empty"),
                (".database", "only has database 0"),
                (".cluster_max_redirections", "at least 1"),
            ],
        ),
        // Kong spells cluster nodes with `ip`, sentinel nodes with `host`.
        (
            "cluster_nodes = [{ host = \"a\" }]",
            &[(".cluster_nodes[0]", "missing field `ip`"), (".cluster_nodes[0].host", "unknown field `host`")],
        ),
    ];
    for (redis, expected) in cases {
        let errors = errors(&redis_plugin(redis));
        let got: Vec<(String, String)> = errors.iter().map(|e| (e.path.clone(), e.message.clone())).collect();
        assert_eq!(got.len(), expected.len(), "{redis}: {got:#?}");
        for ((path, message), (want_path, want)) in got.iter().zip(expected.iter()) {
            assert_eq!(path, &format!("{base}{want_path}"), "{redis}: {got:#?}");
            assert!(message.contains(want), "{redis}: {message}");
        }
    }
}

#[test]
fn redis_checks_also_apply_to_rate_limiting() {
    let text = format!(
        "{SEED}\n[[plugins]]\nname = \"rate-limiting\"\nservice = \"mcp-service\"\n[plugins.config]\nminute = 5\npolicy = \"redis\"\nredis = {{ sentinel_master = \"m\" }}\n"
    );
    let e = single_error(&text);
    assert_eq!(e.path, "plugins[4].config.redis.sentinel_nodes", "{e}");
}

/// An ai-proxy-advanced plugin on route `chat` with `healthchecks` (TOML body).
fn with_healthchecks(healthchecks: &str) -> String {
    format!(
        r#"{SEED}
[[plugins]]
name = "ai-proxy-advanced"
route = "chat"
[[plugins.config.targets]]
model = {{ provider = "openai", name = "gpt-4o", options = {{ upstream_url = "http://127.0.0.1:9001/v1/chat/completions" }} }}
[plugins.config.balancer.healthchecks]
{healthchecks}
"#
    )
}

fn healthchecks_of(config: &Config) -> crate::schema::HealthchecksConfig {
    match &config.plugins[4].config {
        PluginConfig::AiProxyAdvanced(c) => c.balancer.healthchecks.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn active_healthchecks_take_kongs_names_and_defaults() {
    // Nothing written: Kong's defaults, probing off.
    let config = load(&with_healthchecks("")).unwrap_or_else(|e| panic!("{e}"));
    let a = healthchecks_of(&config).active;
    assert!(!a.enabled());
    assert_eq!((a.kind.as_str(), a.timeout, a.concurrency, a.http_path.as_str()), ("http", 1.0, 10, "/"));
    assert!(a.https_verify_certificate);
    assert_eq!(a.healthy.http_statuses, [200, 302]);
    assert_eq!(a.healthy.successes, 0);
    assert_eq!(a.unhealthy.http_statuses, [429, 404, 500, 501, 502, 503, 504, 505]);
    assert_eq!((a.unhealthy.tcp_failures, a.unhealthy.timeouts, a.unhealthy.http_failures), (0, 0, 0));

    let text = with_healthchecks(
        r#"active = { type = "https", timeout = 0.5, http_path = "/health", https_sni = "probe.example", https_verify_certificate = false, headers = { x-probe = ["1", "2"] }, healthy = { interval = 2, successes = 3, http_statuses = [200] }, unhealthy = { interval = 2, tcp_failures = 2, timeouts = 2, http_failures = 2, http_statuses = [500, 503] } }"#,
    );
    let config = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let a = healthchecks_of(&config).active;
    assert!(a.enabled());
    assert_eq!((a.kind.as_str(), a.timeout, a.http_path.as_str()), ("https", 0.5, "/health"));
    assert_eq!(a.https_sni.as_deref(), Some("probe.example"));
    assert!(!a.https_verify_certificate);
    assert_eq!(a.headers["x-probe"], ["1", "2"]);
    assert_eq!((a.healthy.interval, a.healthy.successes), (2.0, 3));
    assert_eq!(a.unhealthy.threshold("http"), 2);

    // One failure counter set is enough; a tcp probe ignores http_failures.
    let text = with_healthchecks(
        "active = { type = \"tcp\", healthy = { interval = 1, successes = 1 }, unhealthy = { interval = 1, tcp_failures = 3, http_failures = 9 } }",
    );
    let config = load(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(healthchecks_of(&config).active.unhealthy.threshold("tcp"), 3);
}

#[test]
fn active_healthchecks_refuse_what_pingora_cannot_express() {
    let text = with_healthchecks(
        r#"passive = { unhealthy = { http_failures = 3 } }
[plugins.config.balancer.healthchecks.active]
type = "grpc"
timeout = 0
concurrency = 0
http_path = "health"
headers = { "bad header" = ["x"] }
healthy = { interval = 5, successes = 0, http_statuses = [200, 503] }
unhealthy = { interval = 10, tcp_failures = 2, timeouts = 3 }"#,
    );
    let errors = errors(&text);
    let mut got: Vec<(String, String)> = errors.iter().map(|e| (e.path.clone(), e.message.clone())).collect();
    got.sort();
    let h = "plugins[4].config.balancer.healthchecks";
    let mut expected = vec![
        (format!("{h}.passive"), "passive health checks are not implemented as such: the circuit breaker is balancer.max_fails and balancer.fail_timeout".to_string()),
        (format!("{h}.active.type"), "unknown type `grpc`; expected one of http, https, tcp".to_string()),
        (format!("{h}.active.timeout"), "timeout 0 must be above 0 and at most 65535 (seconds)".to_string()),
        (format!("{h}.active.concurrency"), "concurrency must be at least 1".to_string()),
        (format!("{h}.active.http_path"), "http_path `health` must start with /".to_string()),
        (format!("{h}.active.headers.bad header"), "\"bad header\" is not a valid header name".to_string()),
        (format!("{h}.active.unhealthy.http_statuses"), "status 503 is in both healthy.http_statuses and unhealthy.http_statuses".to_string()),
        (format!("{h}.active.unhealthy.interval"), "unhealthy.interval 10 differs from healthy.interval 5: tollgate probes every target at one interval (one pingora-load-balancing health-check pass covers them all); set both to the same value".to_string()),
        (format!("{h}.active.healthy.successes"), "successes must be at least 1 while active checks are on, or a target taken out of rotation never comes back".to_string()),
        (format!("{h}.active.unhealthy.timeouts"), "timeouts = 3 differs from tcp_failures = 2: tollgate counts every failed probe, whatever its kind, against one threshold (pingora-load-balancing's consecutive failures); give tcp_failures, timeouts, http_failures one value".to_string()),
    ];
    expected.sort();
    assert_eq!(got, expected);
    // Each error points at its line.
    let line = errors.iter().find(|e| e.path.ends_with("active.type")).map(|e| e.line);
    assert_eq!(line, Some(line_of(&text, "type = \"grpc\"")));

    // Probing on without any failure threshold.
    let text =
        with_healthchecks("active = { healthy = { interval = 1, successes = 1 }, unhealthy = { interval = 1 } }");
    let e = single_error(&text);
    assert_eq!(e.path, format!("{h}.active.unhealthy"));
    assert_eq!(e.message, "set tcp_failures, timeouts, http_failures (failed probes in a row that take a target out) while active checks are on");
}

#[test]
fn mcp_event_log_defaults_and_limits() {
    let plugin = |log: &str| {
        format!("{SEED}\n[[plugins]]\nname = \"ai-mcp-proxy\"\nroute = \"chat\"\n[plugins.config]\nevent_log = {log}\n")
    };
    let config = load(&plugin("{ redis = { host = \"127.0.0.1\" } }")).expect("loads");
    let PluginConfig::AiMcpProxy(c) = &config.plugins[4].config else {
        panic!("not typed as ai-mcp-proxy");
    };
    let log = c.event_log.as_ref().expect("an event log");
    assert_eq!((log.ttl, log.max_events, log.redis.port), (300, 1000, 6379));
    let mut got: Vec<(String, String)> = errors(&plugin("{ redis = { host = \"\" }, ttl = 0, max_events = 100001 }"))
        .iter()
        .map(|e| (e.path.clone(), e.message.clone()))
        .collect();
    got.sort();
    let p = "plugins[4].config.event_log";
    assert_eq!(
        got,
        vec![
            (format!("{p}.max_events"), "must be between 1 and 100000".to_string()),
            (format!("{p}.redis.host"), "must not be empty".to_string()),
            (format!("{p}.ttl"), "must be between 1 and 86400 (seconds)".to_string()),
        ]
    );
}

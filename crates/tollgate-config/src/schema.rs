//! The TOML schema: Kong's entities and field names, one struct per table.
//!
//! Every struct denies unknown fields so that a typo is an error, not a silently
//! ignored setting. Plugin configs are kept as raw tables here and typed in a second
//! pass (`PluginConfig`), because the plugin `name` decides the config's type and
//! serde's internally tagged enums would lose the field paths of errors.

use serde::Deserialize;

pub(crate) fn default_true() -> bool {
    true
}

/// The whole file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub services: Vec<Service>,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub consumers: Vec<Consumer>,
    #[serde(default)]
    pub plugins: Vec<PluginEntry>,
}

pub const DEFAULT_MAX_REQUEST_BODY_SIZE: usize = 8 * 1024 * 1024;
/// `server.client_body_timeout`'s default, in milliseconds.
pub const DEFAULT_CLIENT_BODY_TIMEOUT_MS: u64 = 60_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Proxy listeners, `host:port`.
    #[serde(default = "ServerConfig::default_listen")]
    pub listen: Vec<String>,
    /// Admin listener for /metrics, /health, /ready, /status. Loopback by default.
    #[serde(default = "ServerConfig::default_admin_listen")]
    pub admin_listen: String,
    /// Worker threads of the proxy service; 0 means one per CPU.
    #[serde(default)]
    pub threads: usize,
    /// Largest request body accepted, in bytes (default 8 MiB).
    #[serde(default = "ServerConfig::default_max_body")]
    pub max_request_body_size: usize,
    /// Milliseconds within which a request header must arrive whole, counted
    /// from its first byte (from the connection's start for its first
    /// request): past it the caller gets 408 and the access log a line
    /// (nginx's `client_header_timeout`, default 10,000). Takes a restart.
    #[serde(default = "ServerConfig::default_client_header_timeout")]
    pub client_header_timeout: u64,
    /// Milliseconds within which a request body must arrive whole, counted
    /// from the end of its header: past it, 408 (default 60,000).
    #[serde(default = "ServerConfig::default_client_body_timeout")]
    pub client_body_timeout: u64,
    /// Connections one client IP may hold open on the proxy listeners; one
    /// more is closed at once. 0 (default): no cap.
    #[serde(default)]
    pub max_connections_per_ip: u32,
    /// Seconds that SIGTERM waits for in-flight requests (default 30).
    #[serde(default = "ServerConfig::default_grace")]
    pub grace_period_seconds: u64,
    /// `"stdout"` (default), `"off"`, or a file path for the JSON access log.
    #[serde(default = "ServerConfig::default_access_log")]
    pub access_log: String,
    /// Requests per second one client IP may send before authentication
    /// (a shield for the gateway itself); absent means no shield.
    #[serde(default)]
    pub ip_requests_per_second: Option<u64>,
    /// TLS listeners of the proxy, `ip:port`; they need `tls_certificates`.
    #[serde(default)]
    pub tls_listen: Vec<String>,
    /// Certificates served on `tls_listen`, picked by the client's SNI.
    #[serde(default)]
    pub tls_certificates: Vec<TlsCertificate>,
    /// CA certificates (a PEM file) that callers' certificates on `tls_listen`
    /// must chain to: mutual TLS. The `mtls-auth` plugin maps a certificate to
    /// a consumer.
    #[serde(default)]
    pub client_ca: Option<String>,
    /// With `client_ca`: `optional` (default) asks every TLS caller for a
    /// certificate and verifies one that is sent, and routes with `mtls-auth`
    /// demand it; `required` ends the handshake of a caller without a valid one.
    #[serde(default)]
    pub client_verify: ClientVerify,
    /// Offer HTTP/2 (ALPN `h2`, then `http/1.1`) on the TLS listeners.
    #[serde(default = "default_true")]
    pub http2: bool,
    /// Accept HTTP/2 with prior knowledge (h2c) on the plain listeners.
    #[serde(default)]
    pub h2c: bool,
    /// Reload the config when its file changes (polled every second), as SIGHUP does.
    #[serde(default)]
    pub watch: bool,
    /// Unix socket through which a process started with `run --upgrade`
    /// receives the listeners of this one when it gets SIGQUIT.
    #[serde(default = "ServerConfig::default_upgrade_sock")]
    pub upgrade_sock: String,
    /// JSON member names whose values are replaced by `[REDACTED]`, at any
    /// depth, in payloads the access log carries (`logging.log_payloads`).
    #[serde(default)]
    pub payload_redact_fields: Vec<String>,
}

/// Whether a TLS caller must present a client certificate (nginx's
/// `ssl_verify_client optional | on`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientVerify {
    #[default]
    Optional,
    Required,
}

/// One certificate chain and its key (PEM files; relative paths start at the
/// config file's folder), served to clients that ask for one of `snis`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsCertificate {
    pub cert: String,
    pub key: String,
    /// Exact names or `*.example.com` (one label deep). An entry without any is a
    /// default: the first one serves clients without SNI or with an unknown name
    /// (with none, the first entry does).
    #[serde(default)]
    pub snis: Vec<String>,
}

impl ServerConfig {
    fn default_listen() -> Vec<String> {
        vec!["0.0.0.0:8000".to_string()]
    }
    fn default_admin_listen() -> String {
        "127.0.0.1:8100".to_string()
    }
    fn default_max_body() -> usize {
        DEFAULT_MAX_REQUEST_BODY_SIZE
    }
    fn default_grace() -> u64 {
        30
    }
    fn default_client_header_timeout() -> u64 {
        10_000
    }
    fn default_client_body_timeout() -> u64 {
        DEFAULT_CLIENT_BODY_TIMEOUT_MS
    }
    fn default_access_log() -> String {
        "stdout".to_string()
    }
    fn default_upgrade_sock() -> String {
        "/tmp/tollgate_upgrade.sock".to_string()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: Self::default_listen(),
            admin_listen: Self::default_admin_listen(),
            threads: 0,
            max_request_body_size: Self::default_max_body(),
            client_header_timeout: Self::default_client_header_timeout(),
            client_body_timeout: Self::default_client_body_timeout(),
            max_connections_per_ip: 0,
            grace_period_seconds: Self::default_grace(),
            access_log: Self::default_access_log(),
            ip_requests_per_second: None,
            tls_listen: Vec::new(),
            tls_certificates: Vec::new(),
            client_ca: None,
            client_verify: ClientVerify::Optional,
            http2: true,
            h2c: false,
            watch: false,
            upgrade_sock: Self::default_upgrade_sock(),
            payload_redact_fields: Vec::new(),
        }
    }
}

/// Kong's service. An LLM service has no `url`: its ai-proxy plugins name the targets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: String,
    /// Upstream for passthrough routes, `http://host:port/path`.
    #[serde(default)]
    pub url: Option<String>,
    /// Milliseconds.
    #[serde(default)]
    pub connect_timeout: Option<u64>,
    #[serde(default)]
    pub read_timeout: Option<u64>,
    #[serde(default)]
    pub write_timeout: Option<u64>,
    /// Verify an https `url`'s certificate and name (Kong's `tls_verify`);
    /// on by default, against the system roots or `ca_certificates`.
    #[serde(default = "default_true")]
    pub tls_verify: bool,
    /// PEM files of the CAs an https `url` must chain to, instead of the
    /// system roots (relative paths start at the config file's folder).
    #[serde(default)]
    pub ca_certificates: Vec<String>,
    /// A client certificate presented to an https `url` (mutual TLS).
    #[serde(default)]
    pub client_certificate: Option<ClientCertificate>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A certificate chain and its key, PEM files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCertificate {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: String,
    pub service: String,
    /// Path prefixes; each starts with `/`.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Upper-case HTTP methods; empty means any.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Host names (exact, or `*.example.com`); empty means any.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Kong's default: the matched prefix is removed before proxying.
    #[serde(default = "default_true")]
    pub strip_path: bool,
    #[serde(default)]
    pub preserve_host: bool,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consumer {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub custom_id: Option<String>,
    /// ACL groups.
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub keyauth_credentials: Vec<KeyAuthCredential>,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Consumer {
    /// The name a consumer is referenced by: its username, else its custom_id.
    pub fn reference(&self) -> &str {
        self.username.as_deref().or(self.custom_id.as_deref()).unwrap_or("")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyAuthCredential {
    pub key: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A plugin as written in the file; `config` is typed by `PluginConfig::from_entry`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    pub name: String,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub route: Option<String>,
    #[serde(default)]
    pub consumer: Option<String>,
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default)]
    pub config: toml::Table,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// The typed config of a plugin, chosen by its name.
// Built once per load and matched on by value in the proxy; boxing the large variant
// would buy nothing but noisier patterns.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum PluginConfig {
    KeyAuth(KeyAuthConfig),
    MtlsAuth(MtlsAuthConfig),
    Acl(AclConfig),
    AiProxy(AiProxyConfig),
    AiProxyAdvanced(AiProxyAdvancedConfig),
    AiRateLimiting(AiRateLimitingConfig),
    RateLimiting(RateLimitingConfig),
    AiMcpProxy(AiMcpProxyConfig),
    OpenTelemetry(OpenTelemetryConfig),
    AiSemanticCache(crate::cache::AiSemanticCacheConfig),
    PromptGuard(crate::guard::AiPromptGuardConfig),
    Sanitizer(crate::guard::AiSanitizerConfig),
    CustomGuardrail(crate::guard::AiCustomGuardrailConfig),
    AiBudget(crate::budget::AiBudgetConfig),
}

pub const PLUGIN_NAMES: &[&str] = &[
    "key-auth",
    "mtls-auth",
    "acl",
    "ai-proxy",
    "ai-proxy-advanced",
    "ai-rate-limiting-advanced",
    "rate-limiting",
    "ai-mcp-proxy",
    "opentelemetry",
    "ai-semantic-cache",
    "ai-prompt-guard",
    "ai-sanitizer",
    "ai-custom-guardrail",
    "ai-budget",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyAuthConfig {
    #[serde(default = "KeyAuthConfig::default_key_names")]
    pub key_names: Vec<String>,
    #[serde(default = "default_true")]
    pub key_in_header: bool,
    #[serde(default = "default_true")]
    pub key_in_query: bool,
    #[serde(default)]
    pub key_in_body: bool,
    #[serde(default)]
    pub hide_credentials: bool,
    /// Username or custom_id of the consumer that unauthenticated requests run as.
    #[serde(default)]
    pub anonymous: Option<String>,
}

impl KeyAuthConfig {
    fn default_key_names() -> Vec<String> {
        vec!["apikey".to_string()]
    }
}

/// Kong's mtls-auth: the client certificate verified against `server.client_ca`
/// names the consumer: its subject alternative names (DNS, email, URI), then its
/// common name, matched against consumers' `username` or `custom_id`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtlsAuthConfig {
    #[serde(default = "MtlsAuthConfig::default_consumer_by")]
    pub consumer_by: Vec<ConsumerBy>,
    /// Username or custom_id of the consumer that callers without a
    /// certificate (or without a matching consumer) run as.
    #[serde(default)]
    pub anonymous: Option<String>,
    /// Accept any verified certificate without looking up a consumer.
    #[serde(default)]
    pub skip_consumer_lookup: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsumerBy {
    Username,
    CustomId,
}

impl MtlsAuthConfig {
    fn default_consumer_by() -> Vec<ConsumerBy> {
        vec![ConsumerBy::Username, ConsumerBy::CustomId]
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclConfig {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

/// Kong's ai-proxy: one target, inline.
pub type AiProxyConfig = TargetSpec;

/// Target fields shared by ai-proxy and ai-proxy-advanced's `targets[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    #[serde(default = "TargetSpec::default_route_type")]
    pub route_type: String,
    /// The API callers speak (`openai` or `anthropic`), on ai-proxy's config;
    /// ai-proxy-advanced sets it once for all its targets, beside them.
    #[serde(default)]
    pub llm_format: Option<String>,
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    pub model: ModelConfig,
    #[serde(default)]
    pub logging: LoggingConfig,
    #[serde(default)]
    pub weight: Option<u32>,
    #[serde(default)]
    pub description: Option<String>,
}

impl TargetSpec {
    fn default_route_type() -> String {
        "llm/v1/chat".to_string()
    }

    /// The API callers speak, as ai-proxy sets it (`openai` when unset).
    pub fn llm_format(&self) -> &str {
        self.llm_format.as_deref().unwrap_or("openai")
    }
}

fn default_llm_format() -> String {
    "openai".to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiProxyAdvancedConfig {
    /// The API callers speak: `openai` (chat completions, Responses,
    /// embeddings) or `anthropic` (Messages).
    #[serde(default = "default_llm_format")]
    pub llm_format: String,
    #[serde(default)]
    pub balancer: BalancerConfig,
    pub targets: Vec<TargetSpec>,
    /// `semantic` balancing: the model that embeds prompts and target descriptions.
    #[serde(default)]
    pub embeddings: Option<EmbeddingsModelConfig>,
    /// `semantic` balancing: where description vectors live and how close a
    /// prompt must be to one.
    #[serde(default)]
    pub vectordb: Option<VectorDbConfig>,
}

/// The embeddings model of semantic balancing (Kong's `embeddings`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingsModelConfig {
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    pub model: ModelConfig,
}

/// Kong's `vectordb`, kept in memory: a config's target descriptions are few.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorDbConfig {
    /// `memory` (Kong's `redis` and `pgvector` are not implemented).
    #[serde(default = "VectorDbConfig::default_strategy")]
    pub strategy: String,
    /// `cosine`.
    #[serde(default = "VectorDbConfig::default_distance_metric")]
    pub distance_metric: String,
    /// The least cosine similarity (-1..=1) for a prompt to go to a target;
    /// below it the `CATCHALL` target serves.
    #[serde(default = "VectorDbConfig::default_threshold")]
    pub threshold: f64,
    /// Accepted for Kong compatibility; vectors take the model's size.
    #[serde(default)]
    pub dimensions: Option<u32>,
}

impl VectorDbConfig {
    fn default_strategy() -> String {
        "memory".to_string()
    }
    fn default_distance_metric() -> String {
        "cosine".to_string()
    }
    fn default_threshold() -> f64 {
        0.75
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalancerConfig {
    #[serde(default = "BalancerConfig::default_algorithm")]
    pub algorithm: String,
    #[serde(default = "BalancerConfig::default_tokens_count_strategy")]
    pub tokens_count_strategy: String,
    #[serde(default = "BalancerConfig::default_latency_strategy")]
    pub latency_strategy: String,
    /// Further targets tried after the first fails (Kong's default, 5).
    #[serde(default = "BalancerConfig::default_retries")]
    pub retries: u32,
    /// What makes a request move on to the next target: `error`, `timeout`,
    /// `invalid_header`, `http_403`, `http_404`, `http_429`, `http_500`,
    /// `http_502`, `http_503`, `http_504`.
    #[serde(default = "BalancerConfig::default_failover_criteria")]
    pub failover_criteria: Vec<String>,
    /// Failures within `fail_timeout` that open a target's circuit; 0 never does.
    #[serde(default)]
    pub max_fails: u32,
    /// Milliseconds: the failure-counting window and how long a circuit stays open.
    #[serde(default = "BalancerConfig::default_fail_timeout")]
    pub fail_timeout: u64,
    /// consistent-hashing: the request header whose value picks the target
    /// (absent: the consumer).
    #[serde(default = "BalancerConfig::default_hash_on_header")]
    pub hash_on_header: String,
    /// Milliseconds.
    #[serde(default = "BalancerConfig::default_connect_timeout")]
    pub connect_timeout: u64,
    #[serde(default = "BalancerConfig::default_rw_timeout")]
    pub read_timeout: u64,
    #[serde(default = "BalancerConfig::default_rw_timeout")]
    pub write_timeout: u64,
    /// Kong's upstream `healthchecks`: active probes of every target.
    #[serde(default)]
    pub healthchecks: HealthchecksConfig,
}

/// Kong's upstream `healthchecks` (names and defaults from Kong's upstream schema).
/// Only `active` is implemented; the passive side is `max_fails`/`fail_timeout`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthchecksConfig {
    #[serde(default)]
    pub active: ActiveHealthcheck,
    /// Refused by validation with a pointer to `max_fails`/`fail_timeout`.
    #[serde(default)]
    pub passive: Option<toml::Value>,
}

/// Kong's `healthchecks.active`. Probing is on when an interval is above 0.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActiveHealthcheck {
    /// `http` or `https` (a GET of `http_path`; TLS follows each target's URL
    /// scheme) or `tcp` (a connection).
    #[serde(default = "ActiveHealthcheck::default_type", rename = "type")]
    pub kind: String,
    /// Seconds: bound on one whole probe.
    #[serde(default = "ActiveHealthcheck::default_timeout")]
    pub timeout: f64,
    /// Probes at once: 1 probes the endpoints one after another, more probes them
    /// all at once.
    #[serde(default = "ActiveHealthcheck::default_concurrency")]
    pub concurrency: u32,
    #[serde(default = "ActiveHealthcheck::default_http_path")]
    pub http_path: String,
    /// TLS server name of https probes (default: the target's host).
    #[serde(default)]
    pub https_sni: Option<String>,
    #[serde(default = "ActiveHealthcheck::default_verify")]
    pub https_verify_certificate: bool,
    /// Extra request headers of http probes, each with its values.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub healthy: ActiveHealthy,
    #[serde(default)]
    pub unhealthy: ActiveUnhealthy,
}

impl ActiveHealthcheck {
    fn default_type() -> String {
        "http".to_string()
    }
    fn default_timeout() -> f64 {
        1.0
    }
    fn default_concurrency() -> u32 {
        10
    }
    fn default_http_path() -> String {
        "/".to_string()
    }
    fn default_verify() -> bool {
        true
    }

    /// Probing is configured (an interval above 0).
    pub fn enabled(&self) -> bool {
        self.healthy.interval > 0.0 || self.unhealthy.interval > 0.0
    }
}

impl Default for ActiveHealthcheck {
    fn default() -> Self {
        ActiveHealthcheck {
            kind: Self::default_type(),
            timeout: Self::default_timeout(),
            concurrency: Self::default_concurrency(),
            http_path: Self::default_http_path(),
            https_sni: None,
            https_verify_certificate: Self::default_verify(),
            headers: Default::default(),
            healthy: ActiveHealthy::default(),
            unhealthy: ActiveUnhealthy::default(),
        }
    }
}

/// `healthchecks.active.healthy`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActiveHealthy {
    /// Seconds between probes; 0 = off.
    #[serde(default)]
    pub interval: f64,
    /// Answers that pass a probe.
    #[serde(default = "ActiveHealthy::default_http_statuses")]
    pub http_statuses: Vec<u16>,
    /// Passing probes in a row that put an unhealthy target back.
    #[serde(default)]
    pub successes: u32,
}

impl ActiveHealthy {
    fn default_http_statuses() -> Vec<u16> {
        vec![200, 302]
    }
}

impl Default for ActiveHealthy {
    fn default() -> Self {
        ActiveHealthy { interval: 0.0, http_statuses: Self::default_http_statuses(), successes: 0 }
    }
}

/// `healthchecks.active.unhealthy`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActiveUnhealthy {
    /// Seconds between probes; 0 = off.
    #[serde(default)]
    pub interval: f64,
    /// Answers that fail a probe (so does any answer in neither list).
    #[serde(default = "ActiveUnhealthy::default_http_statuses")]
    pub http_statuses: Vec<u16>,
    /// Failed probes in a row that take a target out; tollgate counts every kind
    /// against one threshold, so the ones set must agree.
    #[serde(default)]
    pub tcp_failures: u32,
    #[serde(default)]
    pub timeouts: u32,
    #[serde(default)]
    pub http_failures: u32,
}

impl ActiveUnhealthy {
    fn default_http_statuses() -> Vec<u16> {
        vec![429, 404, 500, 501, 502, 503, 504, 505]
    }

    /// The one consecutive-failure threshold of a probe of `kind`: the value the
    /// applicable counters that are set share (validation refuses disagreement).
    pub fn threshold(&self, kind: &str) -> u32 {
        let http = if kind == "tcp" { 0 } else { self.http_failures };
        [self.tcp_failures, self.timeouts, http].into_iter().max().unwrap_or(0)
    }
}

impl Default for ActiveUnhealthy {
    fn default() -> Self {
        ActiveUnhealthy {
            interval: 0.0,
            http_statuses: Self::default_http_statuses(),
            tcp_failures: 0,
            timeouts: 0,
            http_failures: 0,
        }
    }
}

impl BalancerConfig {
    fn default_algorithm() -> String {
        "round-robin".to_string()
    }
    fn default_tokens_count_strategy() -> String {
        "total-tokens".to_string()
    }
    fn default_latency_strategy() -> String {
        "tpot".to_string()
    }
    fn default_connect_timeout() -> u64 {
        60_000
    }
    fn default_retries() -> u32 {
        5
    }
    fn default_failover_criteria() -> Vec<String> {
        vec!["error".to_string(), "timeout".to_string()]
    }
    fn default_fail_timeout() -> u64 {
        10_000
    }
    fn default_hash_on_header() -> String {
        "X-Kong-LLM-Request-ID".to_string()
    }
    fn default_rw_timeout() -> u64 {
        60_000
    }
}

impl Default for BalancerConfig {
    fn default() -> Self {
        BalancerConfig {
            algorithm: Self::default_algorithm(),
            tokens_count_strategy: Self::default_tokens_count_strategy(),
            latency_strategy: Self::default_latency_strategy(),
            retries: Self::default_retries(),
            failover_criteria: Self::default_failover_criteria(),
            max_fails: 0,
            fail_timeout: Self::default_fail_timeout(),
            hash_on_header: Self::default_hash_on_header(),
            connect_timeout: Self::default_connect_timeout(),
            read_timeout: Self::default_rw_timeout(),
            write_timeout: Self::default_rw_timeout(),
            healthchecks: HealthchecksConfig::default(),
        }
    }
}

/// How the gateway authenticates to the provider (credential mediation).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub header_name: Option<String>,
    #[serde(default)]
    pub header_value: Option<String>,
    #[serde(default)]
    pub param_name: Option<String>,
    #[serde(default)]
    pub param_value: Option<String>,
    /// `query` or `body`.
    #[serde(default)]
    pub param_location: Option<String>,
    /// Bedrock: requests are signed with SigV4 using these keys.
    #[serde(default)]
    pub aws_access_key_id: Option<String>,
    #[serde(default)]
    pub aws_secret_access_key: Option<String>,
    /// Temporary credentials (STS) also carry a session token.
    #[serde(default)]
    pub aws_session_token: Option<String>,
    /// Vertex AI: a service account's JSON key (not implemented yet; `check` says so).
    #[serde(default)]
    pub gcp_service_account_json: Option<String>,
    #[serde(default)]
    pub gcp_use_service_account: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub provider: String,
    /// The model the provider is asked for; absent leaves it to the request.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub options: ModelOptions,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ModelOptions {
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub top_k: Option<u64>,
    /// Dollars per million input tokens.
    #[serde(default)]
    pub input_cost: Option<f64>,
    /// Dollars per million output tokens.
    #[serde(default)]
    pub output_cost: Option<f64>,
    /// Dollars per million prompt tokens read from the provider's cache
    /// (default: a tenth of `input_cost`, Anthropic's ratio).
    #[serde(default)]
    pub cache_read_cost: Option<f64>,
    /// Dollars per million prompt tokens written to the provider's cache
    /// (default: 1.25 times `input_cost`, Anthropic's 5-minute write price).
    #[serde(default)]
    pub cache_write_cost: Option<f64>,
    /// Overrides the provider's default endpoint, e.g. `http://127.0.0.1:9001/v1/chat/completions`.
    /// For gemini and bedrock, whose paths name the model, it is the base URL
    /// (scheme, host, port, optional path prefix) the call's path is appended to.
    #[serde(default)]
    pub upstream_url: Option<String>,
    /// Anthropic's `anthropic-version` header.
    #[serde(default)]
    pub anthropic_version: Option<String>,
    /// Azure OpenAI: `https://{azure_instance}.openai.azure.com/openai/deployments/{azure_deployment_id}/...`.
    #[serde(default)]
    pub azure_instance: Option<String>,
    #[serde(default)]
    pub azure_deployment_id: Option<String>,
    #[serde(default)]
    pub azure_api_version: Option<String>,
    #[serde(default)]
    pub gemini: Option<GeminiOptions>,
    #[serde(default)]
    pub bedrock: Option<BedrockOptions>,
}

/// Vertex AI addressing; without it Gemini targets use Google AI Studio.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GeminiOptions {
    #[serde(default)]
    pub api_endpoint: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub location_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BedrockOptions {
    #[serde(default)]
    pub aws_region: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    #[serde(default)]
    pub log_statistics: bool,
    #[serde(default)]
    pub log_payloads: bool,
}

/// Kong's ai-rate-limiting-advanced: token budgets per consumer (or other
/// identifier) and provider, over one or more windows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiRateLimitingConfig {
    /// `local` (this process) or `redis` (shared by every replica).
    #[serde(default = "AiRateLimitingConfig::default_strategy")]
    pub strategy: String,
    /// `sliding` or `fixed` (aligned to the clock).
    #[serde(default = "AiRateLimitingConfig::default_window_type")]
    pub window_type: String,
    pub llm_providers: Vec<LlmProviderLimit>,
    /// `consumer`, `credential`, `ip`, `service`, `header`, `consumer-group`.
    #[serde(default = "AiRateLimitingConfig::default_identifier")]
    pub identifier: String,
    /// The header read when `identifier = "header"`.
    #[serde(default)]
    pub header_name: Option<String>,
    /// `total_tokens`, `prompt_tokens`, `completion_tokens` or `cost`.
    #[serde(default = "AiRateLimitingConfig::default_tokens_count_strategy")]
    pub tokens_count_strategy: String,
    #[serde(default = "AiRateLimitingConfig::default_error_code")]
    pub error_code: u16,
    #[serde(default = "AiRateLimitingConfig::default_error_message")]
    pub error_message: String,
    /// Leave the X-AI-RateLimit-* headers off answers.
    #[serde(default)]
    pub hide_client_headers: bool,
    /// Up to this many seconds are added at random to Retry-After, so refused
    /// clients do not all come back at once.
    #[serde(default)]
    pub retry_after_jitter_max: u64,
    /// What a request reserves for its answer when it sets no max_tokens
    /// (and the target sets none): the worst case the admission assumes.
    #[serde(default = "AiRateLimitingConfig::default_reservation")]
    pub max_reserved_completion_tokens: u64,
    /// On a Redis outage: `true` serves requests unlimited (and logs and counts
    /// it), `false` refuses them with 503.
    #[serde(default = "default_true")]
    pub fault_tolerant: bool,
    #[serde(default)]
    pub redis: Option<RedisSettings>,
}

impl AiRateLimitingConfig {
    fn default_strategy() -> String {
        "local".to_string()
    }
    fn default_window_type() -> String {
        "sliding".to_string()
    }
    fn default_identifier() -> String {
        "consumer".to_string()
    }
    fn default_tokens_count_strategy() -> String {
        "total_tokens".to_string()
    }
    fn default_error_code() -> u16 {
        429
    }
    fn default_error_message() -> String {
        "AI token rate limit exceeded for provider(s): ".to_string()
    }
    fn default_reservation() -> u64 {
        1024
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LlmProviderLimit {
    /// A provider name (`openai`, …) or `requestPrompt`-style catch-all `*`.
    pub name: String,
    /// Window lengths in seconds, paired with `limit`.
    pub window_size: Vec<u64>,
    pub limit: Vec<u64>,
}

/// Kong's `redis` table. Exactly one topology: plain `host`/`port`, Sentinel
/// (`sentinel_master` + `sentinel_nodes`) or Cluster (`cluster_nodes`).
#[derive(Clone, Deserialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    #[serde(default = "RedisSettings::default_host")]
    pub host: String,
    #[serde(default = "RedisSettings::default_port")]
    pub port: u16,
    #[serde(default)]
    pub database: i64,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub ssl: bool,
    /// Milliseconds for each Redis call.
    #[serde(default = "RedisSettings::default_timeout")]
    pub timeout: u64,
    /// Name of the master the sentinels monitor.
    #[serde(default)]
    pub sentinel_master: Option<String>,
    #[serde(default)]
    pub sentinel_nodes: Vec<RedisSentinelNode>,
    /// Credentials of the sentinels themselves (the master uses `username`/`password`).
    #[serde(default)]
    pub sentinel_username: Option<String>,
    #[serde(default)]
    pub sentinel_password: Option<String>,
    /// Only `master` is supported (limits need writes).
    #[serde(default)]
    pub sentinel_role: Option<String>,
    #[serde(default)]
    pub cluster_nodes: Vec<RedisClusterNode>,
    #[serde(default = "RedisSettings::default_max_redirections")]
    pub cluster_max_redirections: u32,
}

/// Passwords stay out of logs.
impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |p: &Option<String>| p.as_ref().map(|_| "<redacted>");
        f.debug_struct("RedisSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("ssl", &self.ssl)
            .field("timeout", &self.timeout)
            .field("sentinel_master", &self.sentinel_master)
            .field("sentinel_nodes", &self.sentinel_nodes)
            .field("sentinel_username", &self.sentinel_username)
            .field("sentinel_password", &redact(&self.sentinel_password))
            .field("sentinel_role", &self.sentinel_role)
            .field("cluster_nodes", &self.cluster_nodes)
            .field("cluster_max_redirections", &self.cluster_max_redirections)
            .finish()
    }
}

/// A Redis Sentinel address (Kong's `sentinel_nodes` entry).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct RedisSentinelNode {
    pub host: String,
    #[serde(default = "RedisSentinelNode::default_port")]
    pub port: u16,
}

impl RedisSentinelNode {
    fn default_port() -> u16 {
        26379
    }
}

/// A Redis Cluster seed node (Kong's `cluster_nodes` entry, which says `ip`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct RedisClusterNode {
    pub ip: String,
    #[serde(default = "RedisSettings::default_port")]
    pub port: u16,
}

impl RedisSettings {
    /// Default host and port, i.e. no single-node address was set (or the default one).
    pub fn is_default_address(&self) -> bool {
        self.host == Self::default_host() && self.port == Self::default_port()
    }
    fn default_max_redirections() -> u32 {
        5
    }
    fn default_host() -> String {
        "127.0.0.1".to_string()
    }
    fn default_port() -> u16 {
        6379
    }
    fn default_timeout() -> u64 {
        2000
    }
}

/// Kong's rate-limiting: requests per identifier in clock-aligned windows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitingConfig {
    #[serde(default)]
    pub second: Option<u64>,
    #[serde(default)]
    pub minute: Option<u64>,
    #[serde(default)]
    pub hour: Option<u64>,
    #[serde(default)]
    pub day: Option<u64>,
    /// `consumer`, `credential`, `ip`, `service`, `header`, `consumer-group`.
    #[serde(default = "RateLimitingConfig::default_limit_by")]
    pub limit_by: String,
    #[serde(default)]
    pub header_name: Option<String>,
    /// `local` or `redis`.
    #[serde(default = "RateLimitingConfig::default_policy")]
    pub policy: String,
    #[serde(default = "default_true")]
    pub fault_tolerant: bool,
    #[serde(default)]
    pub hide_client_headers: bool,
    #[serde(default = "RateLimitingConfig::default_error_code")]
    pub error_code: u16,
    #[serde(default = "RateLimitingConfig::default_error_message")]
    pub error_message: String,
    #[serde(default)]
    pub redis: Option<RedisSettings>,
}

impl RateLimitingConfig {
    fn default_limit_by() -> String {
        "consumer".to_string()
    }
    fn default_policy() -> String {
        "local".to_string()
    }
    fn default_error_code() -> u16 {
        429
    }
    fn default_error_message() -> String {
        "API rate limit exceeded".to_string()
    }

    /// `(window name, seconds, limit)` for each window set.
    pub fn windows(&self) -> Vec<(&'static str, u64, u64)> {
        [("Second", 1, self.second), ("Minute", 60, self.minute), ("Hour", 3600, self.hour), ("Day", 86_400, self.day)]
            .into_iter()
            .filter_map(|(name, secs, limit)| limit.map(|l| (name, secs, l)))
            .collect()
    }
}

/// ai-mcp-proxy in Kong's `passthrough-listener` mode: MCP traffic to the
/// service's upstream (or to `targets`, replicas of one MCP server), inspected
/// on the way: per-tool ACLs, `tools/list` answers filtered to what the caller
/// may use, per-tool call limits, and sessions pinned to the replica that
/// created them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiMcpProxyConfig {
    /// `passthrough-listener` (proxy an existing MCP server) or
    /// `conversion-listener` (REST tools) or `listener` (several MCP servers
    /// behind one); typed by `mode_kind`.
    #[serde(default = "AiMcpProxyConfig::default_mode")]
    pub mode: String,
    /// Largest JSON-RPC request body inspected and forwarded, in bytes (1 MiB).
    #[serde(default = "AiMcpProxyConfig::default_max_body")]
    pub max_request_body_size: usize,
    /// What names a consumer in ACL lists: `username` (default) or `custom_id`.
    #[serde(default = "AiMcpProxyConfig::default_consumer_identifier")]
    pub consumer_identifier: String,
    /// Default ACLs, one per scope (`tools`, `resources`, `prompts`), for
    /// every entry without its own.
    #[serde(default)]
    pub default_acl: Vec<McpScopedAcl>,
    /// Per-tool ACLs and call limits, by the tool's exact name.
    #[serde(default)]
    pub tools: Vec<McpToolConfig>,
    /// Per-resource ACLs, by the resource's exact URI (a template's
    /// `uriTemplate` for its `resources/templates/list` entry). Kong has
    /// tools only; this is its tool shape for resources.
    #[serde(default)]
    pub resources: Vec<McpResourceConfig>,
    /// Per-prompt ACLs, by the prompt's exact name (Kong's tool shape).
    #[serde(default)]
    pub prompts: Vec<McpPromptConfig>,
    /// Replicas of the MCP server, each an `http(s)://host:port/path` URL;
    /// empty means the service's `url`.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Key that seals session ids (upstream id and replica) so any gateway
    /// replica routes a session to the MCP replica that created it. Needed
    /// with more than one target; a vault reference in production.
    #[serde(default)]
    pub session_secret: Option<String>,
    /// Forward the caller's own credential (key or bearer token) to the MCP
    /// server; by default it is removed.
    #[serde(default)]
    pub forward_client_credentials: bool,
    /// A credential injected towards the MCP server.
    #[serde(default)]
    pub upstream_auth: Option<McpUpstreamAuth>,
    /// How long a response stream may stay silent, in milliseconds (1 hour);
    /// MCP's SSE streams idle for minutes between events.
    #[serde(default = "AiMcpProxyConfig::default_stream_timeout")]
    pub stream_read_timeout: u64,
    /// Counters behind the per-tool limits.
    #[serde(default)]
    pub tool_limits: McpLimitsBackend,
    /// A limit for every tool without its own.
    #[serde(default)]
    pub default_tool_limit: Option<McpCallLimit>,
    /// OAuth 2.1 resource-server mode: bearer JWTs checked against a JWKS.
    #[serde(default)]
    pub oauth: Option<McpOauthConfig>,
    /// `Last-Event-ID` resumption on any gateway replica: sessions' SSE
    /// events logged in Redis.
    #[serde(default)]
    pub event_log: Option<McpEventLogConfig>,
    /// Conversion modes: an OpenAPI 3 document (JSON) whose operations
    /// become tools (`mcp_tools`, `openapi`).
    #[serde(default)]
    pub openapi_spec: Option<String>,
    /// `listener` mode: the MCP servers aggregated behind the route.
    #[serde(default)]
    pub servers: Vec<crate::mcp_tools::McpListenerServer>,
    /// `listener` mode: when tool names get their server's name as a prefix.
    #[serde(default)]
    pub tool_prefix: crate::mcp_tools::ToolPrefix,
}

/// Where and for how long a session's SSE events stay resumable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpEventLogConfig {
    pub redis: RedisSettings,
    /// Seconds a stream's events stay in the log after its last one, and
    /// how long a replica keeps logging a stream whose client left.
    #[serde(default = "McpEventLogConfig::default_ttl")]
    pub ttl: u64,
    /// Most events one stream's log keeps (the oldest go first).
    #[serde(default = "McpEventLogConfig::default_max_events")]
    pub max_events: usize,
}

impl McpEventLogConfig {
    fn default_ttl() -> u64 {
        300
    }
    fn default_max_events() -> usize {
        1000
    }
}

impl AiMcpProxyConfig {
    fn default_mode() -> String {
        "passthrough-listener".to_string()
    }
    fn default_max_body() -> usize {
        1024 * 1024
    }
    fn default_consumer_identifier() -> String {
        "username".to_string()
    }
    fn default_stream_timeout() -> u64 {
        3_600_000
    }
}

/// Kong's `default_acl` entry: an ACL for one scope of MCP entities.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpScopedAcl {
    #[serde(default = "McpScopedAcl::default_scope")]
    pub scope: String,
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

impl McpScopedAcl {
    fn default_scope() -> String {
        "tools".to_string()
    }
}

/// Subjects are consumer names and consumer groups; deny wins over allow, and
/// a non-empty allow list admits only its subjects.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct McpAcl {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpToolConfig {
    pub name: String,
    /// Replaces `default_acl` for this tool.
    #[serde(default)]
    pub acl: Option<McpAcl>,
    #[serde(default)]
    pub limit: Option<McpCallLimit>,
    /// Conversion modes: what the tool does, for the model.
    #[serde(default)]
    pub description: Option<String>,
    /// Conversion modes: the HTTP endpoint of the route's service the tool calls.
    #[serde(default)]
    pub method: Option<crate::mcp_tools::ToolMethod>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub parameters: Vec<crate::mcp_tools::McpToolParameter>,
    #[serde(default)]
    pub request_body: Option<crate::mcp_tools::McpToolRequestBody>,
}

/// A resource's own ACL; replaces `default_acl` (scope `resources`) for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpResourceConfig {
    pub uri: String,
    pub acl: McpAcl,
}

/// A prompt's own ACL; replaces `default_acl` (scope `prompts`) for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpPromptConfig {
    pub name: String,
    pub acl: McpAcl,
}

/// Calls per window per consumer (per client IP when anonymous).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct McpCallLimit {
    /// Seconds.
    pub window_size: Vec<u64>,
    pub limit: Vec<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpLimitsBackend {
    #[serde(default = "AiRateLimitingConfig::default_strategy")]
    pub strategy: String,
    #[serde(default = "McpLimitsBackend::default_window_type")]
    pub window_type: String,
    /// On a Redis outage: admit (true, default) or refuse.
    #[serde(default = "default_true")]
    pub fault_tolerant: bool,
    #[serde(default)]
    pub redis: Option<RedisSettings>,
}

impl McpLimitsBackend {
    fn default_window_type() -> String {
        "fixed".to_string()
    }
}

impl Default for McpLimitsBackend {
    fn default() -> Self {
        McpLimitsBackend {
            strategy: AiRateLimitingConfig::default_strategy(),
            window_type: Self::default_window_type(),
            fault_tolerant: true,
            redis: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpUpstreamAuth {
    pub header_name: String,
    pub header_value: String,
}

/// The MCP authorization spec's resource-server role: the caller presents an
/// OAuth access token (a JWT) issued by `issuer` for this resource.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpOauthConfig {
    pub issuer: String,
    /// Accepted `aud` values; the resource URL is the usual one.
    pub audiences: Vec<String>,
    /// Where the issuer's signing keys are (fetched, cached, refetched on an unknown `kid`).
    pub jwks_uri: String,
    /// This resource's URL as clients know it, advertised in RFC 9728 metadata.
    pub resource: String,
    /// Authorization servers advertised in the metadata (default: `issuer`).
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// Scopes every token must carry.
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    #[serde(default = "McpOauthConfig::default_leeway")]
    pub leeway_seconds: u64,
    /// The claim naming the caller; a consumer with that username (or
    /// custom_id) becomes the request's consumer, and the claim's value is an
    /// ACL subject either way.
    #[serde(default = "McpOauthConfig::default_claim")]
    pub consumer_claim: String,
}

impl McpOauthConfig {
    fn default_leeway() -> u64 {
        60
    }
    fn default_claim() -> String {
        "sub".to_string()
    }
}

/// Kong's opentelemetry plugin: spans of every request, sent in batches to an
/// OTLP/HTTP collector. Global only (one exporter per process).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenTelemetryConfig {
    /// The collector's traces URL, usually `http://collector:4318/v1/traces`.
    pub traces_endpoint: String,
    /// Headers sent with every export (a collector's API key, say; vault
    /// references allowed).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Attributes of the resource every span belongs to; `service.name`
    /// defaults to `tollgate`.
    #[serde(default)]
    pub resource_attributes: std::collections::BTreeMap<String, String>,
    /// Share of the traces that start at the gateway that are recorded, 0 to 1.
    /// A caller's `traceparent` decides for its own traces.
    #[serde(default = "OpenTelemetryConfig::default_sampling_rate")]
    pub sampling_rate: f64,
    #[serde(default)]
    pub queue: OtelQueue,
    /// Milliseconds one export may take (connect, send and answer).
    #[serde(default = "OpenTelemetryConfig::default_send_timeout")]
    pub send_timeout: u64,
    /// A response header that carries the trace id back to the caller.
    #[serde(default)]
    pub http_response_header_for_traceid: Option<String>,
}

impl OpenTelemetryConfig {
    fn default_sampling_rate() -> f64 {
        1.0
    }
    fn default_send_timeout() -> u64 {
        5000
    }
}

/// How spans wait for export (Kong's queue fields).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtelQueue {
    /// Spans per export.
    #[serde(default = "OtelQueue::default_batch")]
    pub max_batch_size: usize,
    /// Seconds a span may wait for its batch to fill.
    #[serde(default = "OtelQueue::default_delay")]
    pub max_coalescing_delay: f64,
    /// Spans held at most; past this, new spans are dropped and counted.
    #[serde(default = "OtelQueue::default_entries")]
    pub max_entries: usize,
}

impl OtelQueue {
    fn default_batch() -> usize {
        200
    }
    fn default_delay() -> f64 {
        1.0
    }
    fn default_entries() -> usize {
        10_000
    }
}

impl Default for OtelQueue {
    fn default() -> Self {
        OtelQueue {
            max_batch_size: Self::default_batch(),
            max_coalescing_delay: Self::default_delay(),
            max_entries: Self::default_entries(),
        }
    }
}

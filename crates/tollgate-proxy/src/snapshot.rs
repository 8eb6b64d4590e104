//! The compiled config: everything a request needs, built once per (re)load and
//! shared read-only by every request that started under it.

use std::collections::HashMap;

use once_cell::sync::Lazy;
use std::sync::Arc;

use tollgate_balance::{Algorithm, Balancer, BreakerConfig, MonotonicClock, TargetInfo};
use tollgate_config::schema::{AclConfig, BalancerConfig, ConsumerBy, KeyAuthConfig, MtlsAuthConfig, PluginConfig};
use tollgate_config::Config;

use crate::budget::BudgetRt;
use crate::cache::rt::CacheRt;
use crate::guard::rt::GuardRt;
use crate::health::HealthCheckError;
use crate::keyauth::{KeyFinder, KeyIndex};
use crate::limits::{LimiterRegistry, RequestLimitRt, TokenLimitRt};
use crate::llm::semantic::SemanticRt;
use crate::llm::target::{Api, LlmTarget, TargetError};
use crate::mcp::{McpConfigError, McpRt};
use crate::otel::OtelRt;
use crate::router::Router;
use crate::survivors::Survivors;
use crate::upstream::tls::{TlsLoadError, UpstreamTls};
use crate::upstream::{Endpoint, InvalidUrl};

/// A config that passed validation but cannot be built: the few errors
/// validation cannot see without building (a header value that is not
/// valid, a certificate file that does not parse).
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("service {service}: {source}")]
    ServiceUrl { service: String, source: InvalidUrl },
    #[error("service {service}: {source}")]
    ServiceTls { service: String, source: TlsLoadError },
    #[error("plugin {plugin} names unknown {what} {name}")]
    UnknownReference { plugin: String, what: &'static str, name: String },
    #[error("{plugin} anonymous names unknown consumer {name}")]
    UnknownAnonymous { plugin: &'static str, name: String },
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Mcp(#[from] McpConfigError),
    #[error("ai-mcp-proxy on service {0} needs targets, or the service needs a url")]
    McpWithoutUpstream(String),
    /// The opentelemetry plugin's `traces_endpoint`.
    #[error(transparent)]
    Otel(#[from] InvalidUrl),
    #[error("ai-proxy-advanced needs at least one target")]
    NoTargets,
    #[error("two {0} plugins share one scope")]
    SharedScope(String),
    #[error(transparent)]
    Balancer(#[from] BalancerError),
    #[error("the semantic algorithm needs an embeddings model")]
    NoEmbeddings,
    #[error(transparent)]
    Guard(#[from] crate::guard::rt::GuardCompileError),
}

/// An LLM plugin's balancing that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BalancerError {
    #[error(transparent)]
    Algorithm(#[from] tollgate_balance::UnknownName),
    #[error("unknown failover criterion {0}")]
    UnknownCriterion(String),
    #[error("an LLM plugin needs a target")]
    NoTarget,
    #[error(transparent)]
    HealthChecks(#[from] HealthCheckError),
    #[error("{scope}: {source}")]
    InvalidChecks { scope: String, source: tollgate_balance::InvalidChecks },
}

#[derive(Debug)]
pub struct ServiceRt {
    pub name: String,
    /// Passthrough upstream (`url`), absent for LLM services.
    pub upstream: Option<Endpoint>,
    /// Passthrough timeouts from the service (`connect_timeout`, `read_timeout`,
    /// `write_timeout`), applied to every peer of this service.
    pub timeouts: PeerTimeouts,
    /// `tls_verify`, `ca_certificates`, `client_certificate` of an https `url`.
    pub tls: UpstreamTls,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PeerTimeouts {
    pub connect: Option<std::time::Duration>,
    pub read: Option<std::time::Duration>,
    pub write: Option<std::time::Duration>,
}

#[derive(Debug)]
pub struct ConsumerRt {
    /// Username, else custom_id: the name in logs and metrics.
    pub name: String,
    pub custom_id: Option<String>,
    pub groups: Vec<String>,
}

/// What moves a request on to the next target (`failover_criteria`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverCriterion {
    Error,
    Timeout,
    InvalidHeader,
    /// `http_<status>`.
    Http(u16),
}

impl FailoverCriterion {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "error" => FailoverCriterion::Error,
            "timeout" => FailoverCriterion::Timeout,
            "invalid_header" => FailoverCriterion::InvalidHeader,
            other => FailoverCriterion::Http(other.strip_prefix("http_")?.parse().ok()?),
        })
    }

    /// The criterion of a refusal with this status.
    pub fn of_status(status: u16) -> Option<Self> {
        Some(FailoverCriterion::Http(status))
    }

    /// Kong's name, for logs and the `reason` label.
    pub fn as_str(self) -> std::borrow::Cow<'static, str> {
        match self {
            FailoverCriterion::Error => "error".into(),
            FailoverCriterion::Timeout => "timeout".into(),
            FailoverCriterion::InvalidHeader => "invalid_header".into(),
            FailoverCriterion::Http(s) => format!("http_{s}").into(),
        }
    }
}

/// How the first target is chosen, where it matters outside the balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// By the balancer alone.
    Balanced,
    /// By a request header's value, else the consumer.
    ConsistentHashing,
    /// By the prompt's meaning first (`semantic`), then the balancer.
    Semantic,
}

/// ai-proxy or ai-proxy-advanced, compiled: the targets and how to pick one.
pub struct AiProxyRt {
    /// Where the plugin sits (`r=<route>/s=<service>/c=<consumer>`), for metrics and /status.
    pub scope: String,
    pub targets: Vec<Arc<LlmTarget>>,
    pub config: BalancerConfig,
    /// What the route does and in which format its callers speak.
    pub api: Api,
    pub selection: Selection,
    /// consistent-hashing's `hash_on_header`, parsed once (`None`: not a
    /// header name, so no request carries it).
    pub hash_on_header: Option<http::HeaderName>,
    pub failover: Vec<FailoverCriterion>,
    /// Picks a target per attempt and keeps each one's health and statistics;
    /// shared with the previous config's plugin when a reload left the plugin
    /// unchanged, so circuits, cool-downs, statistics and active health checks
    /// survive SIGHUP.
    pub balancer: Arc<Balancer>,
    /// `semantic`: chooses the first target by the prompt's meaning.
    pub semantic: Option<SemanticRt>,
}

impl std::fmt::Debug for AiProxyRt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AiProxyRt")
            .field("targets", &self.targets)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AiProxyRt {
    pub fn new(scope: String, targets: Vec<Arc<LlmTarget>>, config: BalancerConfig) -> Result<Self, BalancerError> {
        // Semantic picks the first target itself; failover then goes round-robin.
        let (algorithm, selection) = match config.algorithm.as_str() {
            "semantic" => (Algorithm::RoundRobin, Selection::Semantic),
            a => (
                Algorithm::from_kong(a, &config.latency_strategy, &config.tokens_count_strategy)?,
                if a == "consistent-hashing" { Selection::ConsistentHashing } else { Selection::Balanced },
            ),
        };
        let failover = config
            .failover_criteria
            .iter()
            .map(|c| FailoverCriterion::parse(c).ok_or_else(|| BalancerError::UnknownCriterion(c.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let api = targets.first().map(|t| t.api).ok_or(BalancerError::NoTarget)?;
        let infos =
            targets.iter().map(|t| TargetInfo { id: t.label.clone(), weight: t.weight, description: None }).collect();
        let breaker = BreakerConfig {
            max_fails: config.max_fails,
            fail_timeout: std::time::Duration::from_millis(config.fail_timeout),
        };
        let mut fingerprint = format!("{scope}|{:?}|{:?}|{:?}", algorithm, breaker, infos);
        let active = &config.healthchecks.active;
        if active.enabled() {
            // Probes go to the targets' endpoints with the service's TLS: a change
            // of either (or of the checks) builds a balancer with new probes.
            fingerprint.push_str(&format!("|{active:?}"));
            for t in &targets {
                let ep = &t.endpoint;
                fingerprint.push_str(&format!("|{}:{}:{}:{:x}", ep.host, ep.port, ep.tls, t.tls.fingerprint()));
            }
        }
        let (balancer, fresh) = BALANCERS.get_or_try_build(&fingerprint, || {
            let clock = Arc::new(MonotonicClock::new());
            let endpoints: Vec<_> = targets.iter().map(|t| (&t.endpoint, &t.tls)).collect();
            match crate::health::active_checks(active, &endpoints)? {
                None => Ok(Balancer::new(infos, algorithm, breaker, clock)),
                Some(checks) => Balancer::with_active_checks(infos, algorithm, breaker, clock, checks)
                    .map_err(|source| BalancerError::InvalidChecks { scope: scope.clone(), source }),
            }
        })?;
        if fresh {
            crate::health::schedule(&balancer);
        }
        let hash_on_header = crate::limits::header_name(Some(&config.hash_on_header));
        Ok(AiProxyRt { scope, targets, config, api, selection, hash_on_header, failover, balancer, semantic: None })
    }

    /// The `request_format` label of this plugin's requests.
    pub fn format_label(&self) -> &'static str {
        match self.api {
            Api::Generate(ingress) => ingress.label(),
            Api::Embeddings => "openai_embeddings",
            Api::Preserve => "preserve",
        }
    }
}

#[derive(Debug)]
pub enum PluginRt {
    KeyAuth(KeyAuthRt),
    MtlsAuth(MtlsAuthRt),
    Acl(AclConfig),
    AiProxy(AiProxyRt),
    TokenLimit(TokenLimitRt),
    RequestLimit(RequestLimitRt),
    Mcp(Box<McpRt>),
    Cache(Box<CacheRt>),
    Guard(Box<GuardRt>),
    Budget(Box<BudgetRt>),
}

#[derive(Debug)]
pub struct KeyAuthRt {
    pub config: KeyAuthConfig,
    pub finder: KeyFinder,
    pub anonymous: Option<usize>,
}

#[derive(Debug)]
pub struct MtlsAuthRt {
    pub config: MtlsAuthConfig,
    pub anonymous: Option<usize>,
}

/// The plugin slots a request resolves; ai-proxy and ai-proxy-advanced share one
/// slot so a consumer-scoped ai-proxy replaces a service's ai-proxy-advanced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    KeyAuth,
    MtlsAuth,
    Acl,
    AiProxy,
    TokenLimit,
    RequestLimit,
    Mcp,
    Cache,
    PromptGuard,
    Sanitizer,
    CustomGuardrail,
    Budget,
}

type ScopeKey = (Slot, Option<usize>, Option<usize>, Option<usize>); // route, service, consumer

#[derive(Debug)]
pub struct Snapshot {
    pub config: Arc<Config>,
    pub router: Router,
    pub services: Vec<ServiceRt>,
    pub consumers: Vec<ConsumerRt>,
    pub keys: KeyIndex,
    plugins: Vec<PluginRt>,
    /// Looked up up to eight times per slot a request resolves: FxHash, not
    /// SipHash (the keys are the snapshot's own indices, nothing a caller picks).
    scopes: rustc_hash::FxHashMap<ScopeKey, usize>,
    /// Slots with at least one plugin in any scope, by `Slot as usize`: a request
    /// resolving a slot nobody configured skips the eight scope lookups.
    slot_used: [bool; SLOTS],
    pub max_body: usize,
    /// RFC 9728 documents of OAuth-protected MCP routes, by their path.
    pub oauth_metadata: HashMap<String, bytes::Bytes>,
    /// Consumers by username and custom_id (an OAuth claim names one).
    consumer_names: HashMap<String, usize>,
    /// The opentelemetry plugin (global only), when configured.
    pub otel: Option<Arc<OtelRt>>,
}

const SLOTS: usize = 12;

/// The config's services, consumers and routes by name, for plugins to name them.
struct Names<'c> {
    services: HashMap<&'c str, usize>,
    routes: HashMap<&'c str, usize>,
    consumers: HashMap<&'c str, usize>,
}

impl<'c> Names<'c> {
    fn of(config: &'c Config) -> Self {
        let index = |names: Vec<&'c str>| names.into_iter().enumerate().map(|(i, n)| (n, i)).collect();
        let mut consumers: HashMap<&str, usize> = HashMap::new();
        for (i, c) in config.consumers.iter().enumerate() {
            if let Some(u) = &c.username {
                consumers.insert(u.as_str(), i);
            }
            if let Some(id) = &c.custom_id {
                consumers.entry(id.as_str()).or_insert(i);
            }
        }
        Names {
            services: index(config.services.iter().map(|s| s.name.as_str()).collect()),
            routes: index(config.routes.iter().map(|r| r.name.as_str()).collect()),
            consumers,
        }
    }

    /// The index `name` has in `ix`, when the plugin names one.
    fn lookup(
        p: &tollgate_config::Plugin,
        name: &Option<String>,
        ix: &HashMap<&str, usize>,
        what: &'static str,
    ) -> Result<Option<usize>, CompileError> {
        match name {
            None => Ok(None),
            Some(n) => ix.get(n.as_str()).copied().map(Some).ok_or_else(|| CompileError::UnknownReference {
                plugin: p.name.clone(),
                what,
                name: n.clone(),
            }),
        }
    }
}

/// What a plugin compiles against: the parts of the snapshot built before it.
struct Compiling<'a, 'c> {
    names: &'a Names<'c>,
    services: &'a [ServiceRt],
    router: &'a Router,
    limiters: &'a LimiterRegistry,
}

/// A compiled plugin: its slot and runtime, or the process-wide OpenTelemetry.
// Built once per plugin and consumed at once: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Compiled {
    Scoped(Slot, PluginRt),
    Otel(Arc<OtelRt>),
}

impl Snapshot {
    /// Compiles a validated config. Errors here are the few that validation
    /// cannot see without building (e.g. a header value that is not valid).
    pub fn build(config: Config, limiters: &LimiterRegistry) -> Result<Self, CompileError> {
        let names = Names::of(&config);
        let services = compile_services(&config)?;
        let mut keys = KeyIndex::default();
        let consumers = config
            .consumers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                for k in &c.keyauth_credentials {
                    keys.insert(&k.key, i);
                }
                ConsumerRt { name: c.reference().to_string(), custom_id: c.custom_id.clone(), groups: c.groups.clone() }
            })
            .collect();
        let router = Router::new(&config.routes, |s| names.services.get(s).copied());

        let at = Compiling { names: &names, services: &services, router: &router, limiters };
        let mut plugins = Vec::new();
        let mut scopes = rustc_hash::FxHashMap::default();
        let mut otel = None;
        for p in config.plugins.iter().filter(|p| p.enabled) {
            let route = Names::lookup(p, &p.route, &names.routes, "route")?;
            let service = Names::lookup(p, &p.service, &names.services, "service")?;
            let consumer = Names::lookup(p, &p.consumer, &names.consumers, "consumer")?;
            let (slot, rt) = match at.plugin(p, route, service)? {
                Compiled::Scoped(slot, rt) => (slot, rt),
                Compiled::Otel(o) => {
                    otel = Some(o);
                    continue;
                }
            };
            let key = (slot, route, service, consumer);
            // ai-proxy-advanced is listed after ai-proxy in a scope only by accident
            // of file order; either way one plugin per slot and scope.
            if scopes.insert(key, plugins.len()).is_some() && slot != Slot::AiProxy {
                return Err(CompileError::SharedScope(p.name.clone()));
            }
            plugins.push(rt);
        }

        let mut oauth_metadata = HashMap::new();
        for p in &plugins {
            if let PluginRt::Mcp(m) = p {
                if let Some(o) = &m.oauth {
                    oauth_metadata.insert(o.metadata_path.clone(), o.metadata.clone());
                }
            }
        }
        let consumer_names = names.consumers.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let mut slot_used = [false; SLOTS];
        for (slot, ..) in scopes.keys() {
            slot_used[*slot as usize] = true;
        }
        Ok(Snapshot {
            slot_used,
            max_body: config.server.max_request_body_size,
            oauth_metadata,
            consumer_names,
            otel,
            config: Arc::new(config),
            router,
            services,
            consumers,
            keys,
            plugins,
            scopes,
        })
    }
}

/// Each service's upstream, timeouts and TLS settings.
fn compile_services(config: &Config) -> Result<Vec<ServiceRt>, CompileError> {
    let mut services = Vec::with_capacity(config.services.len());
    for s in &config.services {
        let upstream = match &s.url {
            Some(u) => Some(
                Endpoint::parse(u).map_err(|source| CompileError::ServiceUrl { service: s.name.clone(), source })?,
            ),
            None => None,
        };
        let ms = |v: Option<u64>| v.map(std::time::Duration::from_millis);
        let timeouts =
            PeerTimeouts { connect: ms(s.connect_timeout), read: ms(s.read_timeout), write: ms(s.write_timeout) };
        let base = config.source.parent().unwrap_or(std::path::Path::new(""));
        let tls = UpstreamTls::load(s, base)
            .map_err(|source| CompileError::ServiceTls { service: s.name.clone(), source })?;
        services.push(ServiceRt { name: s.name.clone(), upstream, timeouts, tls });
    }
    Ok(services)
}

impl Compiling<'_, '_> {
    /// The consumer an auth plugin's `anonymous` names.
    fn anonymous(&self, plugin: &'static str, name: &Option<String>) -> Result<Option<usize>, CompileError> {
        let Some(name) = name else {
            return Ok(None);
        };
        let found = self.names.consumers.get(name.as_str()).copied();
        found.map(Some).ok_or_else(|| CompileError::UnknownAnonymous { plugin, name: name.clone() })
    }

    /// One enabled plugin, on `route` and `service` when it names them.
    fn plugin(
        &self,
        p: &tollgate_config::Plugin,
        route: Option<usize>,
        service: Option<usize>,
    ) -> Result<Compiled, CompileError> {
        // LLM targets connect with the TLS settings of the plugin's service
        // (a route's plugin: the route's service), as Kong's ai-proxy does.
        let tls = service
            .or(route.map(|r| self.router.routes[r].service))
            .map(|s| self.services[s].tls.clone())
            .unwrap_or_default();
        let limiters = self.limiters;
        let scoped = match &p.config {
            PluginConfig::KeyAuth(c) => {
                let anonymous = self.anonymous("key-auth", &c.anonymous)?;
                (
                    Slot::KeyAuth,
                    PluginRt::KeyAuth(KeyAuthRt { config: c.clone(), finder: KeyFinder::new(c), anonymous }),
                )
            }
            PluginConfig::MtlsAuth(c) => {
                let anonymous = self.anonymous("mtls-auth", &c.anonymous)?;
                (Slot::MtlsAuth, PluginRt::MtlsAuth(MtlsAuthRt { config: c.clone(), anonymous }))
            }
            PluginConfig::Acl(c) => (Slot::Acl, PluginRt::Acl(c.clone())),
            PluginConfig::AiProxy(t) => (
                Slot::AiProxy,
                PluginRt::AiProxy(AiProxyRt::new(
                    scope_of(p),
                    vec![Arc::new(LlmTarget::compile(t, t.llm_format(), &tls)?)],
                    BalancerConfig::default(),
                )?),
            ),
            // Counters are namespaced by where the plugin sits, so two
            // plugins never share a budget and a reload keeps them.
            PluginConfig::AiRateLimiting(c) => {
                (Slot::TokenLimit, PluginRt::TokenLimit(limiters.compile(c, scope_of(p))))
            }
            PluginConfig::RateLimiting(c) => {
                (Slot::RequestLimit, PluginRt::RequestLimit(limiters.compile_requests(c, scope_of(p))))
            }
            PluginConfig::AiMcpProxy(c) => {
                let rt = McpRt::compile(c, scope_of(p), limiters)?;
                // Without replicas of its own the plugin proxies to its
                // service's url: a service-scoped plugin must have one.
                if c.targets.is_empty() && c.servers.is_empty() {
                    if let Some(s) = service.filter(|&s| self.services[s].upstream.is_none()) {
                        return Err(CompileError::McpWithoutUpstream(self.services[s].name.clone()));
                    }
                }
                (Slot::Mcp, PluginRt::Mcp(Box::new(rt)))
            }
            PluginConfig::AiSemanticCache(c) => {
                (Slot::Cache, PluginRt::Cache(Box::new(CacheRt::compile(c, scope_of(p), limiters, &tls)?)))
            }
            PluginConfig::PromptGuard(c) => (Slot::PromptGuard, PluginRt::Guard(Box::new(GuardRt::prompt(c)?))),
            PluginConfig::Sanitizer(c) => (Slot::Sanitizer, PluginRt::Guard(Box::new(GuardRt::sanitizer(c)?))),
            PluginConfig::CustomGuardrail(c) => {
                (Slot::CustomGuardrail, PluginRt::Guard(Box::new(GuardRt::webhook(c)?)))
            }
            PluginConfig::AiBudget(c) => (Slot::Budget, PluginRt::Budget(Box::new(BudgetRt::compile(c, limiters)))),
            // Process-wide, in no slot (validation keeps it global).
            PluginConfig::OpenTelemetry(c) => return Ok(Compiled::Otel(Arc::new(OtelRt::compile(c)?))),
            PluginConfig::AiProxyAdvanced(a) => {
                let targets = a
                    .targets
                    .iter()
                    .map(|t| LlmTarget::compile(t, &a.llm_format, &tls).map(Arc::new))
                    .collect::<Result<Vec<_>, _>>()?;
                if targets.is_empty() {
                    return Err(CompileError::NoTargets);
                }
                (Slot::AiProxy, PluginRt::AiProxy(semantic_proxy(scope_of(p), targets, a, &tls)?))
            }
        };
        Ok(Compiled::Scoped(scoped.0, scoped.1))
    }
}

/// Balancers of the configs in force, by what defines them (scope, algorithm,
/// breaker, targets and weights, and with active checks the checks and the
/// targets' endpoints and TLS), so circuits, statistics and health survive
/// reloads. A balancer dropped with the last config using it stops its checks.
static BALANCERS: Lazy<Survivors<Balancer>> = Lazy::new(Survivors::default);

/// ai-proxy-advanced, with its semantic router when the algorithm asks for one.
fn semantic_proxy(
    scope: String,
    targets: Vec<Arc<LlmTarget>>,
    a: &tollgate_config::AiProxyAdvancedConfig,
    tls: &UpstreamTls,
) -> Result<AiProxyRt, CompileError> {
    let descriptions: Vec<Option<String>> = a.targets.iter().map(|t| t.description.clone()).collect();
    let mut rt = AiProxyRt::new(scope, targets, a.balancer.clone())?;
    if a.balancer.algorithm == "semantic" {
        let e = a.embeddings.as_ref().ok_or(CompileError::NoEmbeddings)?;
        let threshold = a.vectordb.as_ref().map(|v| v.threshold).unwrap_or(0.75);
        rt.semantic = Some(SemanticRt::new(Arc::new(LlmTarget::embeddings(e, tls)?), threshold, &descriptions));
    }
    Ok(rt)
}

fn scope_of(p: &tollgate_config::Plugin) -> String {
    format!(
        "r={}/s={}/c={}",
        p.route.as_deref().unwrap_or(""),
        p.service.as_deref().unwrap_or(""),
        p.consumer.as_deref().unwrap_or("")
    )
}

impl Snapshot {
    /// The consumer with this username (else custom_id).
    pub fn consumer_named(&self, name: &str) -> Option<usize> {
        self.consumer_names.get(name).copied()
    }

    /// The consumer whose `username` (or `custom_id`, as `by` says) is `name`.
    pub fn consumer_by(&self, name: &str, by: ConsumerBy) -> Option<usize> {
        let i = self.consumer_names.get(name).copied()?;
        let c = self.config.consumers.get(i)?;
        let field = match by {
            ConsumerBy::Username => &c.username,
            ConsumerBy::CustomId => &c.custom_id,
        };
        (field.as_deref() == Some(name)).then_some(i)
    }

    /// Every ai-budget plugin of this config (for `/spend`).
    pub fn budgets(&self) -> impl Iterator<Item = &BudgetRt> {
        self.plugins.iter().filter_map(|p| match p {
            PluginRt::Budget(b) => Some(b.as_ref()),
            _ => None,
        })
    }

    /// Every ai-proxy and ai-proxy-advanced plugin of this config.
    pub fn ai_proxies(&self) -> impl Iterator<Item = &AiProxyRt> {
        self.plugins.iter().filter_map(|p| match p {
            PluginRt::AiProxy(a) => Some(a),
            _ => None,
        })
    }

    /// Kong's precedence, most specific first: consumer+route+service,
    /// consumer+route, consumer+service, route+service, consumer, route,
    /// service, global.
    pub fn plugin(
        &self,
        slot: Slot,
        route: Option<usize>,
        service: Option<usize>,
        consumer: Option<usize>,
    ) -> Option<&PluginRt> {
        if !self.slot_used[slot as usize] {
            return None;
        }
        let (r, s, c) = (route, service, consumer);
        let order = [
            (r, s, c),
            (r, None, c),
            (None, s, c),
            (r, s, None),
            (None, None, c),
            (r, None, None),
            (None, s, None),
            (None, None, None),
        ];
        // A missing part (no consumer yet) makes some entries repeat a less
        // specific one; looking them up twice is harmless.
        order.iter().find_map(|&(r2, s2, c2)| self.scopes.get(&(slot, r2, s2, c2)).map(|&i| &self.plugins[i]))
    }
}

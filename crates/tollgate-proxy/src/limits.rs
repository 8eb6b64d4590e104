//! ai-rate-limiting-advanced in the request path: admission reserves an
//! estimate of the request's tokens in every window (so concurrent requests
//! cannot overshoot a budget), and the answer's real usage replaces it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use tollgate_config::schema::{AiRateLimitingConfig, RateLimitingConfig, RedisSettings};
use tollgate_limit::budget::{BudgetStore, LocalBudgets};
use tollgate_limit::{
    Clock, ClusterTopology, Decision, LimitError, LimitSpec, Limiter, LocalLimiter, RedisConfig, RedisLimiter,
    RedisTopology, Reservation, SentinelTopology, SystemClock, Window, WindowStatus, WindowType,
};

use crate::facts::LlmFacts;
use crate::metrics::METRICS;

/// Limiters outlive config snapshots, so counters of unchanged limits survive
/// a reload: one local limiter, and one Redis client per distinct server.
pub struct LimiterRegistry {
    clock: Arc<dyn Clock>,
    local: Arc<LocalLimiter>,
    /// ai-budget's counters in this process (strategy `local`).
    local_budgets: Arc<LocalBudgets>,
    redis: Mutex<HashMap<RedisKey, Arc<LazyRedis>>>,
}

/// Which Redis client a plugin's settings need: every field of Kong's `redis`
/// table changes the connection (credentials, the sentinels' own credentials and
/// the timeout included), so two plugins share a client only when their tables
/// are equal; keyed by less, a plugin would borrow another's authenticated client.
#[derive(Clone, PartialEq, Eq, Hash)]
struct RedisKey(RedisSettings);

impl LimiterRegistry {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        LimiterRegistry {
            local: Arc::new(LocalLimiter::new(clock.clone())),
            local_budgets: Arc::new(LocalBudgets::new(clock.clone())),
            clock,
            redis: Mutex::new(HashMap::new()),
        }
    }

    /// The clock every limit and budget reads.
    pub(crate) fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// ai-budget's local counters, shared by every snapshot.
    pub(crate) fn local_budgets(&self) -> Arc<dyn BudgetStore> {
        self.local_budgets.clone()
    }

    pub fn system() -> Self {
        Self::new(Arc::new(SystemClock))
    }

    pub(crate) fn limiter(&self, strategy: &str, redis: &Option<RedisSettings>) -> Arc<dyn Limiter> {
        match (strategy, redis) {
            ("redis", Some(r)) => match self.redis_client(r) {
                Some(client) => client,
                None => self.local.clone(),
            },
            _ => self.local.clone(),
        }
    }

    /// The one Redis client of these settings, shared by every plugin that
    /// names them (limits, the answer cache).
    pub(crate) fn redis_client(&self, r: &RedisSettings) -> Option<Arc<LazyRedis>> {
        let mut map = self.redis.lock().ok()?;
        let client = map.entry(RedisKey(r.clone())).or_insert_with(|| Arc::new(LazyRedis::new(r, self.clock.clone())));
        Some(client.clone())
    }

    pub fn compile(&self, c: &AiRateLimitingConfig, scope: String) -> TokenLimitRt {
        let window_type = if c.window_type == "fixed" { WindowType::Fixed } else { WindowType::Sliding };
        let strategy = TokenStrategy::parse(&c.tokens_count_strategy);
        let scale = strategy.scale();
        let specs = c
            .llm_providers
            .iter()
            .map(|p| {
                let windows = p
                    .window_size
                    .iter()
                    .zip(&p.limit)
                    .map(|(&size_secs, &limit)| Window { size_secs, limit: ((limit as f64) * scale) as u64 })
                    .collect();
                (p.name.clone(), LimitSpec { window_type, windows })
            })
            .collect::<Vec<_>>();
        // The `*` entry applies to providers without their own, found here once.
        let any = specs.iter().position(|(n, _)| n == "*");
        TokenLimitRt {
            config: c.clone(),
            identifier: Identifier::parse(&c.identifier),
            header_name: header_name(c.header_name.as_deref()),
            strategy,
            specs,
            any,
            limiter: self.limiter(&c.strategy, &c.redis),
            scope,
        }
    }

    pub fn compile_requests(&self, c: &RateLimitingConfig, scope: String) -> RequestLimitRt {
        let windows = c.windows();
        RequestLimitRt {
            spec: LimitSpec {
                window_type: WindowType::Fixed,
                windows: windows.iter().map(|&(_, size_secs, limit)| Window { size_secs, limit }).collect(),
            },
            names: windows.iter().map(|&(n, _, _)| n).collect(),
            limiter: self.limiter(&c.policy, &c.redis),
            limit_by: Identifier::parse(&c.limit_by),
            header_name: header_name(c.header_name.as_deref()),
            config: c.clone(),
            scope,
        }
    }
}

/// Whom a limit counts (`identifier`, `limit_by`), parsed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identifier {
    Consumer,
    Credential,
    Ip,
    Service,
    Header,
    ConsumerGroup,
}

impl Identifier {
    /// Kong's names; anything else counts by consumer (validation refuses it).
    fn parse(name: &str) -> Self {
        match name {
            "credential" => Identifier::Credential,
            "ip" => Identifier::Ip,
            "service" => Identifier::Service,
            "header" => Identifier::Header,
            "consumer-group" => Identifier::ConsumerGroup,
            _ => Identifier::Consumer,
        }
    }
}

/// What a token budget counts (`tokens_count_strategy`), parsed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStrategy {
    Total,
    Prompt,
    Completion,
    /// Dollars, from the target's prices, scaled by `COST_SCALE`.
    Cost,
}

impl TokenStrategy {
    fn parse(name: &str) -> Self {
        match name {
            "prompt_tokens" => TokenStrategy::Prompt,
            "completion_tokens" => TokenStrategy::Completion,
            "cost" => TokenStrategy::Cost,
            _ => TokenStrategy::Total,
        }
    }

    /// Units charged for prompt and completion tokens.
    fn units(self, prompt: u64, completion: u64, costs: Costs) -> u64 {
        match self {
            TokenStrategy::Prompt => prompt,
            TokenStrategy::Completion => completion,
            TokenStrategy::Cost => {
                let dollars = (prompt as f64 * costs.input.unwrap_or(0.0)
                    + completion as f64 * costs.output.unwrap_or(0.0))
                    / 1_000_000.0;
                (dollars * COST_SCALE).ceil() as u64
            }
            TokenStrategy::Total => prompt + completion,
        }
    }

    /// How counted units read in headers (dollars for `cost`).
    fn scale(self) -> f64 {
        if self == TokenStrategy::Cost {
            COST_SCALE
        } else {
            1.0
        }
    }
}

/// A configured header name, parsed once; `None` when it is not one, as no
/// request header can then match it.
pub fn header_name(name: Option<&str>) -> Option<http::HeaderName> {
    name.and_then(|n| http::HeaderName::from_bytes(n.as_bytes()).ok())
}

/// Kong's rate-limiting plugin: requests per identifier, clock-aligned windows.
pub struct RequestLimitRt {
    pub config: RateLimitingConfig,
    /// `header_name`, parsed once, for `limit_by = "header"`.
    pub header_name: Option<http::HeaderName>,
    limit_by: Identifier,
    spec: LimitSpec,
    /// `Minute`, `Hour`… in the order of `spec.windows`, for header names.
    names: Vec<&'static str>,
    limiter: Arc<dyn Limiter>,
    scope: String,
}

impl std::fmt::Debug for RequestLimitRt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLimitRt").field("scope", &self.scope).finish()
    }
}

impl RequestLimitRt {
    /// Counts this request; requests are charged at admission and never settled.
    pub async fn admit(&self, who: &Identity) -> Admission {
        let c = &self.config;
        let ident = who.pick(self.limit_by);
        let key = format!("req|{}|{}|{}", self.scope, c.limit_by, ident);
        match self.limiter.reserve(&key, &self.spec, 1).await {
            Ok(d) => {
                let mut headers = Vec::new();
                if !c.hide_client_headers {
                    for (w, name) in d.windows.iter().zip(&self.names) {
                        headers.push((format!("x-ratelimit-limit-{name}"), w.limit.to_string()));
                        headers.push((format!("x-ratelimit-remaining-{name}"), w.remaining.to_string()));
                    }
                    // IETF draft headers for the window closest to running out.
                    if let Some(w) = d.windows.iter().min_by_key(|w| w.remaining) {
                        headers.push(("ratelimit-limit".to_string(), w.limit.to_string()));
                        headers.push(("ratelimit-remaining".to_string(), w.remaining.to_string()));
                        headers.push(("ratelimit-reset".to_string(), w.reset_secs.to_string()));
                    }
                }
                if d.allowed {
                    Admission::Admitted { held: None, headers }
                } else {
                    METRICS.rate_limit_refusals.with_label_values(&["", who.consumer()]).inc();
                    headers.push(("retry-after".to_string(), d.retry_after_secs.unwrap_or(1).to_string()));
                    Admission::Refused { status: c.error_code, message: c.error_message.clone(), headers }
                }
            }
            Err(e) => backend_unavailable("rate", &c.policy, c.fault_tolerant, &e),
        }
    }
}

/// A limiter backend that cannot answer: serve unlimited (`fault_tolerant`,
/// logged and counted) or refuse with 503.
pub(crate) fn backend_unavailable(what: &str, operation: &str, fault_tolerant: bool, e: &LimitError) -> Admission {
    METRICS.rate_limit_backend_errors.with_label_values(&[operation]).inc();
    if fault_tolerant {
        tracing::warn!("{what} limit backend unavailable, serving without limit: {e}");
        Admission::Admitted { held: None, headers: Vec::new() }
    } else {
        tracing::error!("{what} limit backend unavailable, refusing: {e}");
        Admission::Refused {
            status: 503,
            message: format!("{what} limits are unavailable; try again later"),
            headers: vec![("retry-after".to_string(), "1".to_string())],
        }
    }
}

/// Costs are counted in millionths of a dollar so integer counters can hold them.
const COST_SCALE: f64 = 1_000_000.0;

/// Sentinel when a master is named, Cluster when nodes are listed (validation makes
/// them exclusive), else the single `host`/`port`.
fn topology(r: &RedisSettings) -> RedisTopology {
    if let Some(master) = &r.sentinel_master {
        RedisTopology::Sentinel(SentinelTopology {
            master: master.clone(),
            nodes: r.sentinel_nodes.iter().map(|n| (n.host.clone(), n.port)).collect(),
            username: r.sentinel_username.clone(),
            password: r.sentinel_password.clone(),
        })
    } else if !r.cluster_nodes.is_empty() {
        RedisTopology::Cluster(ClusterTopology {
            nodes: r.cluster_nodes.iter().map(|n| (n.ip.clone(), n.port)).collect(),
            max_redirections: r.cluster_max_redirections,
        })
    } else {
        RedisTopology::Single
    }
}

/// A Redis limiter that connects on first use (from a request's runtime) and
/// again after a failed connect, so a Redis that is down at start-up or
/// reload does not stop the gateway.
pub struct LazyRedis {
    config: RedisConfig,
    clock: Arc<dyn Clock>,
    cell: OnceCell<RedisLimiter>,
}

impl LazyRedis {
    fn new(r: &RedisSettings, clock: Arc<dyn Clock>) -> Self {
        LazyRedis {
            config: RedisConfig {
                topology: topology(r),
                host: r.host.clone(),
                port: r.port,
                database: r.database,
                username: r.username.clone(),
                password: r.password.clone(),
                ssl: r.ssl,
                timeout_ms: r.timeout,
                key_prefix: "tollgate:rl:".to_string(),
            },
            clock,
            cell: OnceCell::new(),
        }
    }

    pub(crate) async fn get(&self) -> Result<&RedisLimiter, LimitError> {
        self.cell.get_or_try_init(|| RedisLimiter::connect(self.config.clone(), self.clock.clone())).await
    }
}

#[async_trait::async_trait]
impl Limiter for LazyRedis {
    async fn reserve(&self, key: &str, spec: &LimitSpec, cost: u64) -> Result<Decision, LimitError> {
        self.get().await?.reserve(key, spec, cost).await
    }
    async fn settle(&self, key: &str, spec: &LimitSpec, r: &Reservation, actual: u64) -> Result<(), LimitError> {
        self.get().await?.settle(key, spec, r, actual).await
    }
    async fn peek(&self, key: &str, spec: &LimitSpec) -> Result<Vec<WindowStatus>, LimitError> {
        self.get().await?.peek(key, spec).await
    }
}

/// One ai-rate-limiting-advanced plugin, compiled.
pub struct TokenLimitRt {
    pub config: AiRateLimitingConfig,
    /// `header_name`, parsed once, for `identifier = "header"`.
    pub header_name: Option<http::HeaderName>,
    identifier: Identifier,
    strategy: TokenStrategy,
    specs: Vec<(String, LimitSpec)>,
    /// The index in `specs` of the first `*` entry.
    any: Option<usize>,
    limiter: Arc<dyn Limiter>,
    /// Where the plugin is attached; namespaces its counters.
    scope: String,
}

impl std::fmt::Debug for TokenLimitRt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenLimitRt").field("scope", &self.scope).finish()
    }
}

/// Who a request is counted against.
pub struct Identity {
    pub consumer: Option<String>,
    pub credential: Option<String>,
    pub ip: Option<String>,
    pub service: String,
    pub header: Option<String>,
    pub group: Option<String>,
}

impl Identity {
    /// The value a limit counts against; anonymous traffic shares one budget
    /// rather than escaping the limit.
    fn pick(&self, identifier: Identifier) -> &str {
        let value = match identifier {
            Identifier::Credential => &self.credential,
            Identifier::Ip => &self.ip,
            Identifier::Service => return &self.service,
            Identifier::Header => &self.header,
            Identifier::ConsumerGroup => &self.group,
            Identifier::Consumer => &self.consumer,
        };
        value.as_deref().unwrap_or("-")
    }

    fn consumer(&self) -> &str {
        self.consumer.as_deref().unwrap_or("")
    }
}

/// A reservation held until the answer ends.
pub struct HeldLimit {
    limiter: Arc<dyn Limiter>,
    key: String,
    spec: LimitSpec,
    reservation: Reservation,
    strategy: TokenStrategy,
    reserved: u64,
}

pub enum Admission {
    /// No limit applies to this provider.
    Unlimited,
    Admitted {
        held: Option<HeldLimit>,
        headers: Vec<(String, String)>,
    },
    Refused {
        status: u16,
        message: String,
        headers: Vec<(String, String)>,
    },
}

impl TokenLimitRt {
    /// Whether this plugin limits the given provider.
    pub fn applies_to(&self, provider: &str) -> bool {
        self.spec_for(provider).is_some()
    }

    fn spec_for(&self, provider: &str) -> Option<(&str, &LimitSpec)> {
        self.specs
            .iter()
            .find(|(n, _)| n == provider)
            .or_else(|| self.any.and_then(|i| self.specs.get(i)))
            .map(|(n, s)| (n.as_str(), s))
    }

    /// Reserves `estimate` (prompt and completion tokens, per the strategy).
    pub async fn admit(
        &self,
        provider: &str,
        who: &Identity,
        prompt_estimate: u64,
        completion_cap: Option<u64>,
        costs: Costs,
    ) -> Admission {
        let Some((_, spec)) = self.spec_for(provider) else {
            return Admission::Unlimited;
        };
        let c = &self.config;
        let completion = completion_cap.unwrap_or(c.max_reserved_completion_tokens);
        let cost = self.strategy.units(prompt_estimate, completion, costs);
        let ident = who.pick(self.identifier);
        let sizes: Vec<String> = spec.windows.iter().map(|w| w.size_secs.to_string()).collect();
        let key = format!("{}|{}|{}|{}|{}", self.scope, provider, c.identifier, ident, sizes.join(","));
        let started = std::time::Instant::now();
        let decision = self.limiter.reserve(&key, spec, cost).await;
        METRICS.rate_limit_check.with_label_values(&[&c.strategy]).observe(started.elapsed().as_secs_f64() * 1000.0);
        match decision {
            Ok(d) => {
                let headers =
                    if c.hide_client_headers { Vec::new() } else { headers(provider, &d.windows, self.strategy) };
                if d.allowed {
                    let held = d.reservation.map(|reservation| HeldLimit {
                        limiter: self.limiter.clone(),
                        key,
                        spec: spec.clone(),
                        reservation,
                        strategy: self.strategy,
                        reserved: cost,
                    });
                    Admission::Admitted { held, headers }
                } else {
                    METRICS.rate_limit_refusals.with_label_values(&[provider, who.consumer()]).inc();
                    let mut headers = headers;
                    let wait = d.retry_after_secs.unwrap_or(1) + jitter(c.retry_after_jitter_max);
                    headers.push(("retry-after".to_string(), wait.to_string()));
                    Admission::Refused {
                        status: c.error_code,
                        message: format!("{}{provider}", c.error_message),
                        headers,
                    }
                }
            }
            Err(e) => backend_unavailable("token", &c.strategy, c.fault_tolerant, &e),
        }
    }
}

impl TokenLimitRt {
    /// The rate-limit headers of `provider`'s budget as it stands, charging
    /// nothing (a cached answer); none when the plugin does not limit it,
    /// hides its headers, or its backend does not answer.
    pub async fn peek_headers(&self, provider: &str, who: &Identity) -> Vec<(String, String)> {
        let Some((_, spec)) = self.spec_for(provider) else {
            return Vec::new();
        };
        let c = &self.config;
        if c.hide_client_headers {
            return Vec::new();
        }
        let ident = who.pick(self.identifier);
        let sizes: Vec<String> = spec.windows.iter().map(|w| w.size_secs.to_string()).collect();
        let key = format!("{}|{}|{}|{}|{}", self.scope, provider, c.identifier, ident, sizes.join(","));
        match self.limiter.peek(&key, spec).await {
            Ok(windows) => headers(provider, &windows, self.strategy),
            Err(_) => Vec::new(),
        }
    }
}

impl HeldLimit {
    /// Replaces the reservation with what the answer really used (zero when the
    /// provider answered nothing usable).
    pub async fn settle(self, facts: Option<&LlmFacts>) {
        let actual = match facts.and_then(|f| f.usage.map(|u| (u, f))) {
            // Dollars at the cache's own prices for cache reads and writes.
            Some((u, f)) if self.strategy == TokenStrategy::Cost => (u.priced(&f.prices()) * COST_SCALE).ceil() as u64,
            Some((u, f)) => {
                let costs = Costs { input: f.input_cost, output: f.output_cost };
                self.strategy.units(u.prompt_tokens, u.completion_tokens, costs)
            }
            None => 0,
        };
        if actual == self.reserved {
            return;
        }
        if let Err(e) = self.limiter.settle(&self.key, &self.spec, &self.reservation, actual).await {
            METRICS.rate_limit_backend_errors.with_label_values(&["settle"]).inc();
            tracing::warn!("token limit settle failed: {e}");
        }
    }
}

/// A target's prices in dollars per million input and output tokens.
#[derive(Debug, Clone, Copy, Default)]
pub struct Costs {
    pub input: Option<f64>,
    pub output: Option<f64>,
}

fn headers(provider: &str, windows: &[WindowStatus], strategy: TokenStrategy) -> Vec<(String, String)> {
    let scale = strategy.scale();
    let show = |n: u64| {
        if scale == 1.0 {
            n.to_string()
        } else {
            format!("{}", n as f64 / scale)
        }
    };
    let mut out = Vec::with_capacity(windows.len() * 2 + 1);
    for w in windows {
        out.push((format!("x-ai-ratelimit-limit-{}-{provider}", w.size_secs), show(w.limit)));
        out.push((format!("x-ai-ratelimit-remaining-{}-{provider}", w.size_secs), show(w.remaining)));
    }
    // The reset that matters is the most constrained window's.
    let tightest = windows.iter().min_by(|a, b| {
        let fa = a.remaining as f64 / a.limit.max(1) as f64;
        let fb = b.remaining as f64 / b.limit.max(1) as f64;
        fa.total_cmp(&fb)
    });
    if let Some(reset) = tightest.map(|w| w.reset_secs) {
        out.push(("x-ai-ratelimit-reset".to_string(), reset.to_string()));
    }
    out
}

fn jitter(max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    nanos % (max + 1)
}

//! Semantic checks: everything serde cannot see. All errors are collected, each at the
//! field path of the offending value, so one `tollgate check` run lists every problem.
//!
//! Runs on the vault-resolved config; values are quoted through `Report::show`, which
//! hides any that came from a vault reference.
//!
//! Entries that did not type (their errors are already reported) are not checked,
//! except that their names still count, so references to them are not reported as
//! unknown, and their own references (a route's service, a plugin's scope) are still
//! checked when they are strings.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use crate::error::Report;
use crate::http_url::HttpUrl;
use crate::schema::{
    AclConfig, AiMcpProxyConfig, AiProxyAdvancedConfig, AiRateLimitingConfig, AuthConfig, Consumer, KeyAuthConfig,
    McpCallLimit, McpEventLogConfig, MtlsAuthConfig, OpenTelemetryConfig, PluginConfig, PluginEntry,
    RateLimitingConfig, Route, ServerConfig, Service, TargetSpec,
};
use crate::typing::{raw_str, Section, Slot, TypedFile};

/// Providers Kong's ai-proxy knows; the gateway may not implement all of them yet.
pub const PROVIDERS: &[&str] =
    &["openai", "azure", "anthropic", "gemini", "bedrock", "mistral", "cohere", "ollama", "openai-compatible"];

/// Providers the gateway can translate for today.
pub const IMPLEMENTED_PROVIDERS: &[&str] = PROVIDERS;

/// Route types Kong knows, and those implemented.
const ROUTE_TYPES: &[&str] =
    &["llm/v1/chat", "llm/v1/responses", "llm/v1/completions", "llm/v1/embeddings", "preserve"];
const IMPLEMENTED_ROUTE_TYPES: &[&str] = &["llm/v1/chat", "llm/v1/responses", "llm/v1/embeddings", "preserve"];

/// Kong's `llm_format`s: the API callers speak.
const LLM_FORMATS: &[&str] = &["openai", "anthropic", "gemini", "bedrock"];
const IMPLEMENTED_LLM_FORMATS: &[&str] = &["openai", "anthropic"];

const BALANCER_ALGORITHMS: &[&str] = &[
    "round-robin",
    "least-connections",
    "lowest-latency",
    "lowest-usage",
    "consistent-hashing",
    "semantic",
    "priority",
];
const IMPLEMENTED_BALANCER_ALGORITHMS: &[&str] = &[
    "round-robin",
    "least-connections",
    "lowest-latency",
    "lowest-usage",
    "consistent-hashing",
    "semantic",
    "priority",
];
const FAILOVER_CRITERIA: &[&str] = &[
    "error",
    "timeout",
    "invalid_header",
    "http_403",
    "http_404",
    "http_429",
    "http_500",
    "http_502",
    "http_503",
    "http_504",
];
const TOKENS_COUNT_STRATEGIES: &[&str] = &["total-tokens", "prompt-tokens", "completion-tokens", "cost"];
const LATENCY_STRATEGIES: &[&str] = &["tpot", "e2e"];

const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"];

pub(crate) fn validate(file: &TypedFile, plugins: &[Option<PluginConfig>], r: &mut Report<'_>) {
    if let Some(server) = &file.server {
        check_server(server, r);
    }
    let services = check_services(&file.services, r);
    let routes = check_routes(&file.routes, &services, r);
    let consumers = check_consumers(&file.consumers, r);
    let names = Names { services, routes, consumers };
    check_plugin_scopes(&file.plugins, &names, r);
    for (i, config) in plugins.iter().enumerate() {
        if let Some(config) = config {
            check_plugin_config(i, config, &names, r);
        }
    }
    check_upstreams(file, &names, r);
    check_key_in_body(file, plugins, r);
    check_mtls_has_client_ca(file, plugins, r);
    crate::budget::check_subjects(file, plugins, r);
    crate::budget::check_names_unique(plugins, r);
}

/// mtls-auth reads the certificate the TLS listeners verified: without
/// `client_ca` no caller could ever present one.
fn check_mtls_has_client_ca(file: &TypedFile, plugins: &[Option<PluginConfig>], r: &mut Report<'_>) {
    let has_ca = file.server.as_ref().is_some_and(|s| s.client_ca.is_some());
    for (i, p) in file.plugins.typed() {
        if matches!(plugins.get(i), Some(Some(PluginConfig::MtlsAuth(_)))) && p.enabled && !has_ca {
            r.error(
                format!("plugins[{i}]"),
                "mtls-auth needs server.client_ca (and tls_listen): the CA file that client certificates chain to",
            );
        }
    }
}

/// key_in_body needs the body before proxying, which only LLM routes read;
/// on a passthrough route it would refuse every caller, so say so up front.
fn check_key_in_body(file: &TypedFile, plugins: &[Option<PluginConfig>], r: &mut Report<'_>) {
    for (i, p) in file.plugins.typed() {
        let Some(Some(PluginConfig::KeyAuth(c))) = plugins.get(i) else {
            continue;
        };
        if !c.key_in_body || !p.enabled {
            continue;
        }
        let passthrough = file.routes.typed().find_map(|(_, route)| {
            let in_scope = p.service.as_deref().is_none_or(|s| s == route.service)
                && p.route.as_deref().is_none_or(|n| n == route.name);
            let service = file.services.typed().find(|(_, s)| s.name == route.service && s.url.is_some())?;
            in_scope.then(|| (route.name.clone(), service.1.name.clone()))
        });
        if let Some((route, service)) = passthrough {
            r.error(
                format!("plugins[{i}].config.key_in_body"),
                format!(
                    "key_in_body works on LLM routes only; route {route} goes to passthrough service {service} (it has a url)"
                ),
            );
        }
    }
}

/// Entity names in use.
struct Names<'a> {
    services: NameSet<'a>,
    routes: NameSet<'a>,
    /// Usernames and custom_ids: plugins and `anonymous` may use either.
    consumers: NameSet<'a>,
}

/// The names of one kind of entity, each mapped to its index.
struct NameSet<'a> {
    index: HashMap<&'a str, usize>,
    /// False when some entry's name cannot be read (it did not type and has no string
    /// name, or its section is not an array): any reference might be to that entry.
    complete: bool,
}

impl<'a> NameSet<'a> {
    fn new<T>(section: &Section<T>) -> Self {
        NameSet { index: HashMap::new(), complete: section.is_array }
    }

    fn get(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Whether a reference to `name` is known to name nothing.
    fn rejects(&self, name: &str) -> bool {
        self.complete && !self.index.contains_key(name)
    }
}

/// The `name` of a service or route entry, typed or raw.
fn entry_name<T>(slot: &Slot<T>, typed_name: fn(&T) -> &str) -> Option<&str> {
    match slot {
        Slot::Typed(value) => Some(typed_name(value)),
        Slot::Untyped(raw) => raw_str(raw, "name"),
    }
}

/// Checks and records the name of entry `base`; unreadable names make `names`
/// incomplete.
fn register_name<'a>(
    names: &mut NameSet<'a>,
    seen: &mut HashMap<&'a str, String>,
    name: Option<&'a str>,
    i: usize,
    base: &str,
    what: &str,
    r: &mut Report<'_>,
) {
    let Some(name) = name else {
        names.complete = false;
        return;
    };
    let path = format!("{base}.name");
    if name.is_empty() {
        r.error(path, "name must not be empty");
    } else if claim(seen, name, path, what, r) {
        names.index.insert(name, i);
    }
}

/// Records `name` at `path`, reporting a duplicate against the first place it was
/// seen. Returns false for duplicates.
fn claim<'a>(seen: &mut HashMap<&'a str, String>, name: &'a str, path: String, what: &str, r: &mut Report<'_>) -> bool {
    if let Some(first) = seen.get(name) {
        let message =
            format!("duplicate {what} {}; first defined at {first} (line {})", r.show(&path, name), r.line_of(first));
        r.error(path, message);
        false
    } else {
        seen.insert(name, path);
        true
    }
}

fn check_server(server: &ServerConfig, r: &mut Report<'_>) {
    if server.ip_requests_per_second == Some(0) {
        r.error("server.ip_requests_per_second", "must be at least 1 (leave it out for no shield)");
    }
    if server.listen.is_empty() {
        r.error("server.listen", "at least one listen address is needed");
    }
    for (i, name) in server.payload_redact_fields.iter().enumerate() {
        if name.is_empty() {
            r.error(format!("server.payload_redact_fields[{i}]"), "must not be empty (a JSON member name)");
        }
    }
    let mut seen = HashMap::new();
    for (i, addr) in server.listen.iter().enumerate() {
        let path = format!("server.listen[{i}]");
        if addr.parse::<SocketAddr>().is_err() {
            let message = format!("{} is not a socket address ip:port (like 0.0.0.0:8000)", r.show(&path, addr));
            r.error(path, message);
        } else {
            claim(&mut seen, addr, path, "listen address", r);
        }
    }
    check_tls_listen(server, &mut seen, r);
    let path = "server.admin_listen";
    if server.admin_listen.parse::<SocketAddr>().is_err() {
        let message =
            format!("{} is not a socket address ip:port (like 127.0.0.1:8100)", r.show(path, &server.admin_listen));
        r.error(path, message);
    } else if let Some(first) = seen.get(server.admin_listen.as_str()) {
        let message = format!("admin_listen is also a proxy listen address ({first})");
        r.error(path, message);
    }
    if server.max_request_body_size < 1 {
        r.error("server.max_request_body_size", "must be at least 1 (bytes)");
    }
    for (name, ms) in
        [("client_header_timeout", server.client_header_timeout), ("client_body_timeout", server.client_body_timeout)]
    {
        if ms == 0 {
            r.error(format!("server.{name}"), "must be at least 1 (milliseconds)");
        }
    }
    check_tls_certificates(server, r);
    check_client_ca(server, r);
}

fn check_client_ca(server: &ServerConfig, r: &mut Report<'_>) {
    let Some(ca) = &server.client_ca else {
        return;
    };
    if ca.trim().is_empty() {
        r.error("server.client_ca", "must name a PEM file of CA certificates");
    } else if server.tls_listen.is_empty() {
        r.error("server.client_ca", "client certificates are asked for on tls_listen, which is empty");
    }
}

/// TLS listeners share the address space of the plain ones (`seen`), so the same
/// port cannot be both, nor the admin listener.
fn check_tls_listen<'a>(server: &'a ServerConfig, seen: &mut HashMap<&'a str, String>, r: &mut Report<'_>) {
    for (i, addr) in server.tls_listen.iter().enumerate() {
        let path = format!("server.tls_listen[{i}]");
        if addr.parse::<SocketAddr>().is_err() {
            let message = format!("{} is not a socket address ip:port (like 0.0.0.0:8443)", r.show(&path, addr));
            r.error(path, message);
        } else {
            claim(seen, addr, path, "listen address", r);
        }
    }
    if !server.tls_listen.is_empty() && server.tls_certificates.is_empty() {
        r.error(
            "server.tls_certificates",
            "tls_listen needs at least one certificate: tls_certificates = [{ cert = \"...\", key = \"...\" }]",
        );
    }
}

/// The shape of `tls_certificates`; the files themselves are read where the
/// runtime loads them (this validator does no I/O), which `tollgate check` runs too.
fn check_tls_certificates(server: &ServerConfig, r: &mut Report<'_>) {
    // Lower-cased name -> where it was first listed: SNI is case-insensitive.
    let mut seen: HashMap<String, String> = HashMap::new();
    for (i, entry) in server.tls_certificates.iter().enumerate() {
        let base = format!("server.tls_certificates[{i}]");
        for (field, value) in [("cert", &entry.cert), ("key", &entry.key)] {
            if value.trim().is_empty() {
                r.error(format!("{base}.{field}"), "must name a PEM file");
            }
        }
        for (j, name) in entry.snis.iter().enumerate() {
            let path = format!("{base}.snis[{j}]");
            if let Err(why) = check_sni(name) {
                let message = format!("{} {why}", r.show(&path, name));
                r.error(path, message);
                continue;
            }
            let key = name.to_ascii_lowercase();
            if let Some(first) = seen.get(&key) {
                let message = format!(
                    "duplicate SNI {}; first listed at {first} (line {})",
                    r.show(&path, name),
                    r.line_of(first)
                );
                r.error(path, message);
            } else {
                seen.insert(key, path);
            }
        }
    }
}

/// A server name as clients send it in SNI: a DNS name (no IP address, no port),
/// optionally `*.` followed by one, which matches exactly one more label.
fn check_sni(name: &str) -> Result<(), &'static str> {
    let host = name.strip_prefix("*.").unwrap_or(name);
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Err("is an IP address; clients send only DNS names in SNI");
    }
    if host.is_empty() || host.len() > 253 {
        return Err("is not a DNS name");
    }
    for label in host.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("is not a DNS name (empty or over-long label)");
        }
        if label.contains('*') {
            return Err("may only start with `*.` (a wildcard covers one whole label)");
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err("is not a DNS name (letters, digits, `-`, `_` and `.` only)");
        }
    }
    Ok(())
}

fn check_services<'a>(services: &'a Section<Service>, r: &mut Report<'_>) -> NameSet<'a> {
    let mut seen = HashMap::new();
    let mut names = NameSet::new(services);
    for (i, slot) in services.slots.iter().enumerate() {
        let base = format!("services[{i}]");
        let name = entry_name(slot, |s: &Service| &s.name);
        register_name(&mut names, &mut seen, name, i, &base, "service name", r);
        let Slot::Typed(service) = slot else {
            continue;
        };
        if let Some(url) = &service.url {
            let path = format!("{base}.url");
            if let Err(e) = HttpUrl::parse(url) {
                let message = format!("url {} {e}", r.show(&path, url));
                r.error(path, message);
            }
        }
        for (field, value) in [
            ("connect_timeout", service.connect_timeout),
            ("read_timeout", service.read_timeout),
            ("write_timeout", service.write_timeout),
        ] {
            if value == Some(0) {
                r.error(format!("{base}.{field}"), "must be at least 1 (milliseconds)");
            }
        }
    }
    names
}

fn check_routes<'a>(routes: &'a Section<Route>, services: &NameSet<'_>, r: &mut Report<'_>) -> NameSet<'a> {
    let mut seen = HashMap::new();
    let mut names = NameSet::new(routes);
    for (i, slot) in routes.slots.iter().enumerate() {
        let base = format!("routes[{i}]");
        let name = entry_name(slot, |route: &Route| &route.name);
        register_name(&mut names, &mut seen, name, i, &base, "route name", r);
        let service = match slot {
            Slot::Typed(route) => Some(route.service.as_str()),
            Slot::Untyped(raw) => raw_str(raw, "service"),
        };
        if let Some(service) = service.filter(|s| services.rejects(s)) {
            let path = format!("{base}.service");
            let message = format!("unknown service {}", r.show(&path, service));
            r.error(path, message);
        }
        let Slot::Typed(route) = slot else {
            continue;
        };
        if route.paths.is_empty() && route.hosts.is_empty() {
            r.error(base.clone(), "a route needs at least one of paths or hosts");
        }
        for (j, p) in route.paths.iter().enumerate() {
            let path = format!("{base}.paths[{j}]");
            if !p.starts_with('/') {
                let message = format!("path {} must start with `/`", r.show(&path, p));
                r.error(path, message);
            }
        }
        for (j, method) in route.methods.iter().enumerate() {
            let path = format!("{base}.methods[{j}]");
            if !HTTP_METHODS.contains(&method.as_str()) {
                let message = format!(
                    "unknown HTTP method {}; expected one of {}",
                    r.show(&path, method),
                    HTTP_METHODS.join(", ")
                );
                r.error(path, message);
            }
        }
        for (j, host) in route.hosts.iter().enumerate() {
            let path = format!("{base}.hosts[{j}]");
            if !is_host_pattern(host) {
                let message = format!(
                    "host {} must be a host name, optionally with a port and a leading `*.` or trailing `.*` wildcard",
                    r.show(&path, host)
                );
                r.error(path, message);
            }
        }
    }
    names
}

/// Kong's route hosts: `example.com`, `*.example.com`, `example.*`, each with an
/// optional `:port`.
fn is_host_pattern(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() => name,
        Some(_) => return false,
        None => host,
    };
    let name = name.strip_prefix("*.").or_else(|| name.strip_suffix(".*")).unwrap_or(name);
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
}

/// A consumer's username and custom_id, typed or raw.
fn consumer_ids(slot: &Slot<Consumer>) -> (Option<&str>, Option<&str>) {
    match slot {
        Slot::Typed(c) => (c.username.as_deref(), c.custom_id.as_deref()),
        Slot::Untyped(raw) => (raw_str(raw, "username"), raw_str(raw, "custom_id")),
    }
}

fn check_consumers<'a>(consumers: &'a Section<Consumer>, r: &mut Report<'_>) -> NameSet<'a> {
    let mut usernames: HashMap<&str, String> = HashMap::new();
    let mut custom_ids: HashMap<&str, String> = HashMap::new();
    let mut references = NameSet::new(consumers);
    let mut keys: HashMap<&str, String> = HashMap::new();
    for (i, slot) in consumers.slots.iter().enumerate() {
        let base = format!("consumers[{i}]");
        let (username, custom_id) = consumer_ids(slot);
        if username.is_none() && custom_id.is_none() {
            match slot {
                Slot::Typed(_) => r.error(base.clone(), "a consumer needs a username or a custom_id"),
                // Perhaps a misspelt username: whom it names is unknown.
                Slot::Untyped(_) => references.complete = false,
            }
        }
        if let Some(username) = username {
            let path = format!("{base}.username");
            if username.is_empty() {
                r.error(path, "username must not be empty");
            } else if claim(&mut usernames, username, path, "consumer username", r) {
                references.index.insert(username, i);
            }
        }
        if let Some(custom_id) = custom_id {
            let path = format!("{base}.custom_id");
            if custom_id.is_empty() {
                r.error(path, "custom_id must not be empty");
            } else if claim(&mut custom_ids, custom_id, path.clone(), "consumer custom_id", r) {
                references.index.entry(custom_id).or_insert(i);
            }
        }
        let Slot::Typed(consumer) = slot else {
            continue;
        };
        for (j, credential) in consumer.keyauth_credentials.iter().enumerate() {
            let path = format!("{base}.keyauth_credentials[{j}].key");
            if r.is_failed(&path) {
                continue;
            }
            if credential.key.is_empty() {
                r.error(path, "key must not be empty");
            } else if let Some(first) = keys.get(credential.key.as_str()) {
                // Never print the key itself: name both places instead.
                let message = format!(
                    "duplicate key-auth key: the same key is already used at {first} (line {})",
                    r.line_of(first)
                );
                r.error(path, message);
            } else {
                keys.insert(&credential.key, path);
            }
        }
    }
    // Plugins and `anonymous` reference a consumer by username or custom_id; a
    // custom_id equal to another consumer's username would make that ambiguous.
    for (i, slot) in consumers.slots.iter().enumerate() {
        let (username, custom_id) = consumer_ids(slot);
        let Some(custom_id) = custom_id else {
            continue;
        };
        if let Some(other) = usernames.get(custom_id) {
            if username != Some(custom_id) {
                let path = format!("consumers[{i}].custom_id");
                let message = format!(
                    "custom_id {} equals the username at {other} (line {}); consumer references would be ambiguous",
                    r.show(&path, custom_id),
                    r.line_of(other)
                );
                r.error(path, message);
            }
        }
    }
    references
}

/// Which entities a plugin is attached to; plugins of one name are unique per scope.
type Scope<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);

fn describe_scope(scope: Scope<'_>) -> String {
    let parts: Vec<String> = [("service", scope.0), ("route", scope.1), ("consumer", scope.2)]
        .iter()
        .filter_map(|(what, name)| name.map(|n| format!("{what} `{n}`")))
        .collect();
    if parts.is_empty() {
        "global".to_string()
    } else {
        parts.join(", ")
    }
}

fn check_plugin_scopes(plugins: &Section<PluginEntry>, names: &Names<'_>, r: &mut Report<'_>) {
    let mut seen: HashMap<(&str, Scope<'_>), usize> = HashMap::new();
    for (i, slot) in plugins.slots.iter().enumerate() {
        let base = format!("plugins[{i}]");
        let scope = |field: &str| match slot {
            Slot::Typed(entry) => match field {
                "service" => entry.service.as_deref(),
                "route" => entry.route.as_deref(),
                _ => entry.consumer.as_deref(),
            },
            Slot::Untyped(raw) => raw_str(raw, field),
        };
        let references = [("service", &names.services), ("route", &names.routes), ("consumer", &names.consumers)];
        for (field, known) in references {
            if let Some(name) = scope(field).filter(|name| known.rejects(name)) {
                let path = format!("{base}.{field}");
                let message = format!("unknown {field} {}", r.show(&path, name));
                r.error(path, message);
            }
        }
        let Slot::Typed(entry) = slot else {
            continue;
        };
        // One exporter per process: spans of every request go to one collector.
        if entry.name == "opentelemetry" {
            for (field, value) in [("service", &entry.service), ("route", &entry.route), ("consumer", &entry.consumer)]
            {
                if value.is_some() {
                    r.error(
                        format!("{base}.{field}"),
                        "plugin opentelemetry is global: it traces every request and cannot be scoped",
                    );
                }
            }
        }
        // Authentication and ACLs run before the consumer is known (Kong's no_consumer).
        if entry.consumer.is_some() && matches!(entry.name.as_str(), "key-auth" | "acl" | "ai-mcp-proxy") {
            r.error(
                format!("{base}.consumer"),
                format!("plugin {} cannot be scoped to a consumer: it runs before the consumer is known", entry.name),
            );
        }

        let scope = (entry.service.as_deref(), entry.route.as_deref(), entry.consumer.as_deref());
        if let Some(&first) = seen.get(&(entry.name.as_str(), scope)) {
            let first_path = format!("plugins[{first}]");
            let message = format!(
                "plugin {} is configured twice for the same scope ({}); first at {first_path} (line {})",
                entry.name,
                describe_scope(scope),
                r.line_of(&first_path)
            );
            r.error(base.clone(), message);
        } else {
            seen.insert((entry.name.as_str(), scope), i);
        }
        // Both AI plugins on one scope leave it undefined which one answers.
        let sibling = match entry.name.as_str() {
            "ai-proxy" => Some("ai-proxy-advanced"),
            "ai-proxy-advanced" => Some("ai-proxy"),
            _ => None,
        };
        if let Some(&other) = sibling.and_then(|s| seen.get(&(s, scope))) {
            let other_path = format!("plugins[{other}]");
            let message = format!(
                "ai-proxy and ai-proxy-advanced are both configured for the same scope ({}); \
                 the other is {other_path} (line {}); keep one",
                describe_scope(scope),
                r.line_of(&other_path)
            );
            r.error(base, message);
        }
    }
}

fn check_plugin_config(i: usize, config: &PluginConfig, names: &Names<'_>, r: &mut Report<'_>) {
    let base = format!("plugins[{i}].config");
    match config {
        PluginConfig::KeyAuth(c) => check_key_auth(&base, c, names, r),
        PluginConfig::MtlsAuth(c) => check_mtls_auth(&base, c, names, r),
        PluginConfig::Acl(c) => check_acl(&base, c, r),
        PluginConfig::AiProxy(target) => {
            check_target(&base, target, r);
            check_llm_format(&format!("{base}.llm_format"), target.llm_format(), &target.route_type, r);
        }
        PluginConfig::AiProxyAdvanced(c) => check_ai_proxy_advanced(&base, c, r),
        PluginConfig::AiRateLimiting(c) => check_ai_rate_limiting(&base, c, r),
        PluginConfig::RateLimiting(c) => check_rate_limiting(&base, c, r),
        PluginConfig::AiMcpProxy(c) => check_ai_mcp_proxy(&base, c, r),
        PluginConfig::OpenTelemetry(c) => check_opentelemetry(&base, c, r),
        PluginConfig::AiSemanticCache(c) => crate::cache::check(&base, c, r),
        PluginConfig::PromptGuard(c) => crate::guard::check_prompt_guard(&base, c, r),
        PluginConfig::Sanitizer(c) => crate::guard::check_sanitizer(&base, c, r),
        PluginConfig::CustomGuardrail(c) => crate::guard::check_custom_guardrail(&base, c, r),
        PluginConfig::AiBudget(c) => crate::budget::check(&base, c, r),
    }
}

fn check_opentelemetry(base: &str, c: &OpenTelemetryConfig, r: &mut Report<'_>) {
    let path = format!("{base}.traces_endpoint");
    if let Err(e) = HttpUrl::parse(&c.traces_endpoint) {
        let message = format!("traces_endpoint {} {e}", r.show(&path, &c.traces_endpoint));
        r.error(path, message);
    }
    for name in c.headers.keys() {
        if !is_header_name(name) {
            r.error(format!("{base}.headers"), format!("{name:?} is not a valid header name"));
        }
    }
    if let Some(h) = c.http_response_header_for_traceid.as_deref().filter(|h| !is_header_name(h)) {
        r.error(format!("{base}.http_response_header_for_traceid"), format!("{h:?} is not a valid header name"));
    }
    if !(0.0..=1.0).contains(&c.sampling_rate) {
        r.error(format!("{base}.sampling_rate"), "must be between 0 and 1");
    }
    if c.send_timeout == 0 {
        r.error(format!("{base}.send_timeout"), "must be at least 1 (milliseconds)");
    }
    let q = &c.queue;
    if q.max_batch_size == 0 {
        r.error(format!("{base}.queue.max_batch_size"), "must be at least 1 (spans)");
    }
    if q.max_entries < q.max_batch_size {
        r.error(format!("{base}.queue.max_entries"), "must be at least max_batch_size");
    }
    if !(q.max_coalescing_delay > 0.0 && q.max_coalescing_delay <= 3600.0) {
        r.error(format!("{base}.queue.max_coalescing_delay"), "must be between 0 and 3600 seconds (above 0)");
    }
}

const MCP_MODES: &[&str] = crate::mcp_tools::McpMode::NAMES;
const MCP_MODES_IMPLEMENTED: &[&str] = &["passthrough-listener", "conversion-listener", "listener"];
const MCP_CONSUMER_IDENTIFIERS: &[&str] = &["username", "custom_id", "consumer_id"];
const MCP_ACL_SCOPES: &[&str] = &["tools", "resources", "prompts"];
/// Shortest session_secret accepted: it keys the AEAD that seals session ids.
const MIN_SESSION_SECRET: usize = 16;

fn check_ai_mcp_proxy(base: &str, c: &AiMcpProxyConfig, r: &mut Report<'_>) {
    check_choice(r, &format!("{base}.mode"), "mode", &c.mode, MCP_MODES, MCP_MODES_IMPLEMENTED);
    crate::mcp_tools::check(base, c, r);
    crate::mcp_tools::check_listener(base, c, r);
    check_choice(
        r,
        &format!("{base}.consumer_identifier"),
        "consumer_identifier",
        &c.consumer_identifier,
        MCP_CONSUMER_IDENTIFIERS,
        &["username", "custom_id"],
    );
    if c.max_request_body_size == 0 {
        r.error(format!("{base}.max_request_body_size"), "must be at least 1 (bytes)");
    }
    if c.stream_read_timeout == 0 {
        r.error(format!("{base}.stream_read_timeout"), "must be at least 1 (milliseconds)");
    }
    check_mcp_acl_entries(base, c, r);
    for (j, t) in c.tools.iter().enumerate() {
        if let Some(l) = &t.limit {
            check_call_limit(&format!("{base}.tools[{j}].limit"), l, r);
        }
    }
    if let Some(l) = &c.default_tool_limit {
        check_call_limit(&format!("{base}.default_tool_limit"), l, r);
    }
    let b = &c.tool_limits;
    check_choice(
        r,
        &format!("{base}.tool_limits.strategy"),
        "strategy",
        &b.strategy,
        LIMIT_STRATEGIES,
        LIMIT_STRATEGIES,
    );
    check_choice(
        r,
        &format!("{base}.tool_limits.window_type"),
        "window_type",
        &b.window_type,
        WINDOW_TYPES,
        WINDOW_TYPES,
    );
    if b.strategy == "redis" && b.redis.is_none() {
        r.error(format!("{base}.tool_limits.redis"), "strategy = \"redis\" needs a [redis] table");
    }
    if let Some(redis) = &b.redis {
        check_redis(&format!("{base}.tool_limits.redis"), redis, r);
    }
    for (j, url) in c.targets.iter().enumerate() {
        let path = format!("{base}.targets[{j}]");
        if let Err(e) = HttpUrl::parse(url) {
            let message = format!("target {} {e}", r.show(&path, url));
            r.error(path, message);
        }
    }
    match &c.session_secret {
        None if c.targets.len() > 1 => r.error(
            format!("{base}.session_secret"),
            "several targets need a session_secret: it seals each session's replica into its id, \
             so every gateway replica routes the session to the MCP server that created it",
        ),
        Some(s) if s.len() < MIN_SESSION_SECRET => {
            r.error(format!("{base}.session_secret"), format!("must be at least {MIN_SESSION_SECRET} bytes"))
        }
        _ => {}
    }
    if let Some(a) = &c.upstream_auth {
        if !is_header_name(&a.header_name) {
            let path = format!("{base}.upstream_auth.header_name");
            let message = format!("{} is not a valid header name", r.show(&path, &a.header_name));
            r.error(path, message);
        }
    }
    if let Some(e) = &c.event_log {
        check_event_log(&format!("{base}.event_log"), e, r);
    }
    if let Some(o) = &c.oauth {
        let path = format!("{base}.oauth");
        if o.issuer.is_empty() {
            r.error(format!("{path}.issuer"), "must not be empty");
        }
        if o.audiences.is_empty() {
            r.error(format!("{path}.audiences"), "name at least one accepted audience (usually `resource`)");
        }
        for (field, url) in [("jwks_uri", &o.jwks_uri), ("resource", &o.resource)] {
            if let Err(e) = HttpUrl::parse(url) {
                let p = format!("{path}.{field}");
                let message = format!("{field} {} {e}", r.show(&p, url));
                r.error(p, message);
            }
        }
        if o.consumer_claim.is_empty() {
            r.error(format!("{path}.consumer_claim"), "must not be empty");
        }
    }
}

/// Longest an event stays resumable (a day), and most events a stream's log keeps.
const MAX_EVENT_LOG_TTL: u64 = 86_400;
const MAX_EVENT_LOG_EVENTS: usize = 100_000;

fn check_event_log(path: &str, e: &McpEventLogConfig, r: &mut Report<'_>) {
    if !(1..=MAX_EVENT_LOG_TTL).contains(&e.ttl) {
        r.error(format!("{path}.ttl"), format!("must be between 1 and {MAX_EVENT_LOG_TTL} (seconds)"));
    }
    if !(1..=MAX_EVENT_LOG_EVENTS).contains(&e.max_events) {
        r.error(format!("{path}.max_events"), format!("must be between 1 and {MAX_EVENT_LOG_EVENTS}"));
    }
    check_redis(&format!("{path}.redis"), &e.redis, r);
}

/// One default ACL per scope, and every tool, resource and prompt entry
/// named once and not by an empty string.
fn check_mcp_acl_entries(base: &str, c: &AiMcpProxyConfig, r: &mut Report<'_>) {
    let mut scopes = HashSet::new();
    for (j, acl) in c.default_acl.iter().enumerate() {
        let path = format!("{base}.default_acl[{j}].scope");
        check_choice(r, &path, "scope", &acl.scope, MCP_ACL_SCOPES, MCP_ACL_SCOPES);
        if !scopes.insert(acl.scope.as_str()) {
            r.error(path, format!("scope `{}` has a default ACL already: one per scope", acl.scope));
        }
    }
    let lists: [(&str, &str, Vec<&str>); 3] = [
        ("tools", "name", c.tools.iter().map(|t| t.name.as_str()).collect()),
        ("resources", "uri", c.resources.iter().map(|t| t.uri.as_str()).collect()),
        ("prompts", "name", c.prompts.iter().map(|t| t.name.as_str()).collect()),
    ];
    for (list, field, names) in lists {
        let mut seen = HashSet::new();
        for (j, name) in names.into_iter().enumerate() {
            let path = format!("{base}.{list}[{j}].{field}");
            if name.is_empty() {
                r.error(path, format!("{field} must not be empty"));
            } else if !seen.insert(name) {
                r.error(path, format!("`{name}` is listed twice in {list}"));
            }
        }
    }
}

fn check_call_limit(path: &str, l: &McpCallLimit, r: &mut Report<'_>) {
    if l.window_size.is_empty() || l.window_size.len() != l.limit.len() {
        r.error(format!("{path}.window_size"), "window_size and limit must be non-empty lists of the same length");
    }
    if l.window_size.contains(&0) {
        r.error(format!("{path}.window_size"), "a window must be at least 1 second");
    }
    if l.limit.contains(&0) {
        r.error(format!("{path}.limit"), "a limit must be at least 1");
    }
}

const LIMIT_STRATEGIES: &[&str] = &["local", "redis"];
const WINDOW_TYPES: &[&str] = &["sliding", "fixed"];
const LIMIT_IDENTIFIERS: &[&str] = &["consumer", "credential", "ip", "service", "header", "consumer-group"];
const LIMIT_TOKEN_STRATEGIES: &[&str] = &["total_tokens", "prompt_tokens", "completion_tokens", "cost"];

fn check_rate_limiting(base: &str, c: &RateLimitingConfig, r: &mut Report<'_>) {
    if c.windows().is_empty() {
        r.error(base.to_string(), "set at least one of second, minute, hour, day");
    }
    for (name, _, limit) in c.windows() {
        if limit == 0 {
            r.error(format!("{base}.{}", name.to_ascii_lowercase()), "a limit must be at least 1");
        }
    }
    check_choice(r, &format!("{base}.policy"), "policy", &c.policy, LIMIT_STRATEGIES, LIMIT_STRATEGIES);
    check_choice(r, &format!("{base}.limit_by"), "limit_by", &c.limit_by, LIMIT_IDENTIFIERS, LIMIT_IDENTIFIERS);
    if c.limit_by == "header" && c.header_name.as_deref().is_none_or(|h| !is_header_name(h)) {
        r.error(format!("{base}.header_name"), "limit_by = \"header\" needs header_name, a valid header name");
    }
    if c.policy == "redis" && c.redis.is_none() {
        r.error(format!("{base}.redis"), "policy = \"redis\" needs a [redis] table");
    }
    if let Some(redis) = &c.redis {
        check_redis(&format!("{base}.redis"), redis, r);
    }
    if !(400..=599).contains(&c.error_code) {
        r.error(format!("{base}.error_code"), "must be an HTTP error status (400 to 599)");
    }
}

/// A `redis` table: timeout, and exactly one topology (single node, Sentinel, Cluster).
/// A non-default `host`/`port` counts as choosing the single node (the defaults cannot
/// be told apart from unset ones).
pub(crate) fn check_redis(base: &str, redis: &crate::schema::RedisSettings, r: &mut Report<'_>) {
    if redis.timeout == 0 {
        r.error(format!("{base}.timeout"), "must be at least 1 (milliseconds)");
    }
    if redis.host.is_empty() {
        r.error(format!("{base}.host"), "must not be empty");
    }
    let sentinel = redis.sentinel_master.is_some() || !redis.sentinel_nodes.is_empty();
    let cluster = !redis.cluster_nodes.is_empty();
    if sentinel && cluster {
        r.error(
            base.to_string(),
            "sentinel_master/sentinel_nodes and cluster_nodes are exclusive: choose Sentinel or Cluster",
        );
    }
    if (sentinel || cluster) && !redis.is_default_address() {
        let other = if sentinel { "sentinel_master/sentinel_nodes" } else { "cluster_nodes" };
        r.error(format!("{base}.host"), format!("host/port and {other} are exclusive: choose one Redis mode"));
    }
    if sentinel {
        if redis.sentinel_master.as_deref().is_none_or(str::is_empty) {
            r.error(format!("{base}.sentinel_master"), "Sentinel mode needs the master's name");
        }
        if redis.sentinel_nodes.is_empty() {
            r.error(format!("{base}.sentinel_nodes"), "Sentinel mode needs at least one sentinel node");
        }
        for (i, n) in redis.sentinel_nodes.iter().enumerate() {
            if n.host.is_empty() {
                r.error(format!("{base}.sentinel_nodes[{i}].host"), "must not be empty");
            }
        }
        match redis.sentinel_role.as_deref() {
            None | Some("master") => {}
            Some(role @ ("any" | "slave")) => r.error(
                format!("{base}.sentinel_role"),
                format!("{role:?} is not implemented: limits write to Redis, use \"master\""),
            ),
            Some(role) => {
                let shown = r.show(&format!("{base}.sentinel_role"), role);
                r.error(format!("{base}.sentinel_role"), format!("unknown role {shown}; expected master"));
            }
        }
    } else if redis.sentinel_username.is_some() || redis.sentinel_password.is_some() || redis.sentinel_role.is_some() {
        r.error(
            format!("{base}.sentinel_master"),
            "sentinel_username/sentinel_password/sentinel_role need sentinel_master and sentinel_nodes",
        );
    }
    if cluster {
        for (i, n) in redis.cluster_nodes.iter().enumerate() {
            if n.ip.is_empty() {
                r.error(format!("{base}.cluster_nodes[{i}].ip"), "must not be empty");
            }
        }
        if redis.database != 0 {
            r.error(format!("{base}.database"), "Redis Cluster only has database 0");
        }
        if redis.cluster_max_redirections == 0 {
            r.error(format!("{base}.cluster_max_redirections"), "must be at least 1");
        }
    }
}

fn check_ai_rate_limiting(base: &str, c: &AiRateLimitingConfig, r: &mut Report<'_>) {
    for (field, what, value, known) in [
        ("strategy", "strategy", &c.strategy, LIMIT_STRATEGIES),
        ("window_type", "window_type", &c.window_type, WINDOW_TYPES),
        ("identifier", "identifier", &c.identifier, LIMIT_IDENTIFIERS),
        ("tokens_count_strategy", "tokens_count_strategy", &c.tokens_count_strategy, LIMIT_TOKEN_STRATEGIES),
    ] {
        check_choice(r, &format!("{base}.{field}"), what, value, known, known);
    }
    if c.identifier == "header" && c.header_name.as_deref().is_none_or(|h| !is_header_name(h)) {
        r.error(format!("{base}.header_name"), "identifier = \"header\" needs header_name, a valid header name");
    }
    if c.strategy == "redis" && c.redis.is_none() {
        r.error(format!("{base}.redis"), "strategy = \"redis\" needs a [redis] table");
    }
    if let Some(redis) = &c.redis {
        check_redis(&format!("{base}.redis"), redis, r);
    }
    if !(400..=599).contains(&c.error_code) {
        r.error(format!("{base}.error_code"), "must be an HTTP error status (400 to 599)");
    }
    if c.llm_providers.is_empty() {
        r.error(format!("{base}.llm_providers"), "name at least one provider with its windows");
    }
    let mut seen = HashSet::new();
    for (j, p) in c.llm_providers.iter().enumerate() {
        let path = format!("{base}.llm_providers[{j}]");
        if p.name != "*" && !PROVIDERS.contains(&p.name.as_str()) {
            let message = format!(
                "unknown provider {}; expected one of {} or *",
                r.show(&format!("{path}.name"), &p.name),
                PROVIDERS.join(", ")
            );
            r.error(format!("{path}.name"), message);
        }
        if !seen.insert(p.name.as_str()) {
            r.error(format!("{path}.name"), "this provider is listed twice");
        }
        if p.window_size.is_empty() || p.window_size.len() != p.limit.len() {
            r.error(format!("{path}.window_size"), "window_size and limit must be non-empty lists of the same length");
        }
        for (k, size) in p.window_size.iter().enumerate() {
            if *size == 0 {
                r.error(format!("{path}.window_size[{k}]"), "a window must be at least 1 second");
            }
        }
        for (k, limit) in p.limit.iter().enumerate() {
            if *limit == 0 {
                r.error(format!("{path}.limit[{k}]"), "a limit must be at least 1");
            }
        }
    }
}

fn check_key_auth(base: &str, c: &KeyAuthConfig, names: &Names<'_>, r: &mut Report<'_>) {
    if c.key_names.is_empty() {
        r.error(format!("{base}.key_names"), "key_names must not be empty");
    }
    for (j, name) in c.key_names.iter().enumerate() {
        let path = format!("{base}.key_names[{j}]");
        if !is_header_name(name) {
            let message = format!("{} is not a valid header name", r.show(&path, name));
            r.error(path, message);
        }
    }
    if !(c.key_in_header || c.key_in_query || c.key_in_body) {
        r.error(base.to_string(), "at least one of key_in_header, key_in_query and key_in_body must be true");
    }
    check_anonymous(base, c.anonymous.as_deref(), names, r);
}

fn check_anonymous(base: &str, anonymous: Option<&str>, names: &Names<'_>, r: &mut Report<'_>) {
    if let Some(anonymous) = anonymous {
        if names.consumers.rejects(anonymous) {
            let path = format!("{base}.anonymous");
            let message = format!(
                "unknown consumer {} (anonymous names a consumer's username or custom_id)",
                r.show(&path, anonymous)
            );
            r.error(path, message);
        }
    }
}

fn check_mtls_auth(base: &str, c: &MtlsAuthConfig, names: &Names<'_>, r: &mut Report<'_>) {
    if c.consumer_by.is_empty() && !c.skip_consumer_lookup {
        r.error(
            format!("{base}.consumer_by"),
            "consumer_by must list username, custom_id or both (or set skip_consumer_lookup = true)",
        );
    }
    check_anonymous(base, c.anonymous.as_deref(), names, r);
}

fn check_acl(base: &str, c: &AclConfig, r: &mut Report<'_>) {
    if c.allow.is_empty() == c.deny.is_empty() {
        r.error(base.to_string(), "set exactly one of allow or deny to a non-empty list of groups");
    }
    for (field, groups) in [("allow", &c.allow), ("deny", &c.deny)] {
        for (j, group) in groups.iter().enumerate() {
            if group.is_empty() {
                r.error(format!("{base}.{field}[{j}]"), "group name must not be empty");
            }
        }
    }
}

fn check_ai_proxy_advanced(base: &str, c: &AiProxyAdvancedConfig, r: &mut Report<'_>) {
    if c.targets.is_empty() {
        r.error(format!("{base}.targets"), "ai-proxy-advanced needs at least one target");
    }
    if let Some(first) = c.targets.first() {
        check_llm_format(&format!("{base}.llm_format"), &c.llm_format, &first.route_type, r);
    }
    for (j, target) in c.targets.iter().enumerate() {
        check_target(&format!("{base}.targets[{j}]"), target, r);
        if target.llm_format.is_some() {
            r.error(
                format!("{base}.targets[{j}].llm_format"),
                "llm_format belongs to the plugin's config, beside targets: every target serves the same callers",
            );
        }
        // One route serves one kind of request; failover between targets
        // re-translates the same request, which needs the same route type.
        if let Some(first) = c.targets.first().filter(|f| f.route_type != target.route_type) {
            r.error(
                format!("{base}.targets[{j}].route_type"),
                format!(
                    "route_type {} differs from targets[0]'s {}; the targets of one plugin serve one route type",
                    target.route_type, first.route_type
                ),
            );
        }
    }
    let balancer = &c.balancer;
    check_choice(
        r,
        &format!("{base}.balancer.algorithm"),
        "balancer algorithm",
        &balancer.algorithm,
        BALANCER_ALGORITHMS,
        IMPLEMENTED_BALANCER_ALGORITHMS,
    );
    check_choice(
        r,
        &format!("{base}.balancer.tokens_count_strategy"),
        "tokens_count_strategy",
        &balancer.tokens_count_strategy,
        TOKENS_COUNT_STRATEGIES,
        TOKENS_COUNT_STRATEGIES,
    );
    check_choice(
        r,
        &format!("{base}.balancer.latency_strategy"),
        "latency_strategy",
        &balancer.latency_strategy,
        LATENCY_STRATEGIES,
        LATENCY_STRATEGIES,
    );
    check_semantic(base, c, r);
    for (k, criterion) in balancer.failover_criteria.iter().enumerate() {
        let path = format!("{base}.balancer.failover_criteria[{k}]");
        check_choice(r, &path, "failover criterion", criterion, FAILOVER_CRITERIA, FAILOVER_CRITERIA);
    }
    if balancer.hash_on_header.is_empty() || !is_header_name(&balancer.hash_on_header) {
        let path = format!("{base}.balancer.hash_on_header");
        let message = format!("{} is not a valid header name", r.show(&path, &balancer.hash_on_header));
        r.error(path, message);
    }
    for (field, value) in [
        ("connect_timeout", balancer.connect_timeout),
        ("read_timeout", balancer.read_timeout),
        ("write_timeout", balancer.write_timeout),
        ("fail_timeout", balancer.fail_timeout),
    ] {
        if value == 0 {
            r.error(format!("{base}.balancer.{field}"), "must be at least 1 (milliseconds)");
        }
    }
    crate::healthchecks::check(&format!("{base}.balancer"), &balancer.healthchecks, r);
}

/// `value` must be one of `known`; known but not in `implemented` gets its own message
/// so Kong users learn the feature is planned rather than misspelt.
fn check_choice(r: &mut Report<'_>, path: &str, what: &str, value: &str, known: &[&str], implemented: &[&str]) {
    if implemented.contains(&value) {
        return;
    }
    let message = if known.contains(&value) {
        format!("{what} {} is not implemented yet (implemented: {})", r.show(path, value), implemented.join(", "))
    } else {
        format!("unknown {what} {}; expected one of {}", r.show(path, value), known.join(", "))
    };
    r.error(path.to_string(), message);
}

/// `llm_format` is known, implemented, and makes sense with the route type:
/// Anthropic's Messages API has no embeddings or Responses counterpart, and
/// `preserve` forwards the provider's own format whatever the callers speak.
fn check_llm_format(path: &str, format: &str, route_type: &str, r: &mut Report<'_>) {
    check_choice(r, path, "llm_format", format, LLM_FORMATS, IMPLEMENTED_LLM_FORMATS);
    if format == "anthropic" && route_type != "llm/v1/chat" {
        r.error(
            path.to_string(),
            format!(
                "llm_format anthropic serves Messages requests, which need route_type llm/v1/chat, not {route_type}"
            ),
        );
    }
}

fn check_target(base: &str, t: &TargetSpec, r: &mut Report<'_>) {
    check_choice(r, &format!("{base}.route_type"), "route_type", &t.route_type, ROUTE_TYPES, IMPLEMENTED_ROUTE_TYPES);
    let provider_path = format!("{base}.model.provider");
    let provider = t.model.provider.as_str();
    if t.route_type == "llm/v1/embeddings" && provider == "anthropic" {
        r.error(provider_path.clone(), "provider anthropic has no embeddings API");
    }
    if IMPLEMENTED_PROVIDERS.contains(&provider) {
        // fine
    } else if PROVIDERS.contains(&provider) {
        let message =
            format!("provider {provider} is not implemented yet (implemented: {})", IMPLEMENTED_PROVIDERS.join(", "));
        r.error(provider_path, message);
    } else {
        let message =
            format!("unknown provider {}; expected one of {}", r.show(&provider_path, provider), PROVIDERS.join(", "));
        r.error(provider_path, message);
    }
    if t.model.name.as_deref() == Some("") {
        r.error(format!("{base}.model.name"), "model name must not be empty (leave it out to use the request's model)");
    }

    let options = format!("{base}.model.options");
    let o = &t.model.options;
    if o.max_tokens == Some(0) {
        r.error(format!("{options}.max_tokens"), "max_tokens must be at least 1");
    }
    // Kong accepts temperatures up to 5; providers clamp further themselves.
    if let Some(v) = o.temperature.filter(|v| !(0.0..=5.0).contains(v)) {
        r.error(format!("{options}.temperature"), format!("temperature {v} must be in 0..=5"));
    }
    if let Some(v) = o.top_p.filter(|v| !(0.0..=1.0).contains(v)) {
        r.error(format!("{options}.top_p"), format!("top_p {v} must be in 0..=1"));
    }
    let costs = [
        ("input_cost", o.input_cost),
        ("output_cost", o.output_cost),
        ("cache_read_cost", o.cache_read_cost),
        ("cache_write_cost", o.cache_write_cost),
    ];
    for (field, value) in costs {
        if let Some(v) = value.filter(|v| !(v.is_finite() && *v >= 0.0)) {
            r.error(format!("{options}.{field}"), format!("{field} {v} must be a non-negative number"));
        }
    }
    match &o.upstream_url {
        Some(url) => {
            let path = format!("{options}.upstream_url");
            if let Err(e) = HttpUrl::parse(url) {
                let message = format!("upstream_url {} {e}", r.show(&path, url));
                r.error(path, message);
            }
        }
        None if provider == "openai-compatible" => {
            r.error(format!("{options}.upstream_url"), "provider openai-compatible needs model.options.upstream_url");
        }
        None => {}
    }
    if let Some(w) = t.weight.filter(|w| !(1..=65535).contains(w)) {
        r.error(format!("{base}.weight"), format!("weight {w} must be in 1..=65535"));
    }
    if let Some(auth) = &t.auth {
        check_auth(&format!("{base}.auth"), auth, r);
    }
    check_provider_options(base, t, r);
}

/// Semantic balancing needs an embeddings model, a description per target
/// (one of them may be `CATCHALL`), and the in-memory vector store.
fn check_semantic(base: &str, c: &AiProxyAdvancedConfig, r: &mut Report<'_>) {
    let semantic = c.balancer.algorithm == "semantic";
    if !semantic {
        if c.embeddings.is_some() || c.vectordb.is_some() {
            r.error(
                format!("{base}.balancer.algorithm"),
                "embeddings and vectordb are only used by the semantic algorithm",
            );
        }
        return;
    }
    match &c.embeddings {
        None => r.error(format!("{base}.embeddings"), "the semantic algorithm needs an embeddings model"),
        Some(e) => {
            let path = format!("{base}.embeddings.model.provider");
            if !PROVIDERS.contains(&e.model.provider.as_str()) || e.model.provider == "anthropic" {
                let message = format!("{} cannot embed text", r.show(&path, &e.model.provider));
                r.error(path, message);
            }
            if e.model.name.is_none() {
                r.error(format!("{base}.embeddings.model.name"), "name the embeddings model");
            }
            if let Some(auth) = &e.auth {
                check_auth(&format!("{base}.embeddings.auth"), auth, r);
            }
        }
    }
    if let Some(v) = &c.vectordb {
        if v.strategy != "memory" {
            let path = format!("{base}.vectordb.strategy");
            let message = format!(
                "vectordb strategy {} is not implemented yet (implemented: memory)",
                r.show(&path, &v.strategy)
            );
            r.error(path, message);
        }
        if v.distance_metric != "cosine" {
            let path = format!("{base}.vectordb.distance_metric");
            let message = format!(
                "distance_metric {} is not implemented yet (implemented: cosine)",
                r.show(&path, &v.distance_metric)
            );
            r.error(path, message);
        }
        if !(-1.0..=1.0).contains(&v.threshold) {
            r.error(
                format!("{base}.vectordb.threshold"),
                format!("threshold {} must be a cosine similarity in -1..=1", v.threshold),
            );
        }
    }
    let mut catchalls = 0;
    for (j, t) in c.targets.iter().enumerate() {
        match t.description.as_deref() {
            None | Some("") => r.error(
                format!("{base}.targets[{j}].description"),
                "semantic balancing routes by description: describe what this target serves (or CATCHALL)",
            ),
            Some("CATCHALL") => catchalls += 1,
            Some(_) => {}
        }
    }
    if catchalls > 1 {
        r.error(format!("{base}.targets"), "at most one target may be the CATCHALL");
    }
}

/// Settings that only one provider reads must name that provider, and each
/// provider gets what it needs to build its URL and authenticate.
fn check_provider_options(base: &str, t: &TargetSpec, r: &mut Report<'_>) {
    let provider = t.model.provider.as_str();
    let options = format!("{base}.model.options");
    let o = &t.model.options;
    let only = |r: &mut Report<'_>, field: &str, set: bool, owner: &str| {
        if set && provider != owner {
            r.error(format!("{options}.{field}"), format!("{field} is only used by provider {owner}"));
        }
    };
    only(r, "anthropic_version", o.anthropic_version.is_some(), "anthropic");
    only(r, "azure_instance", o.azure_instance.is_some(), "azure");
    only(r, "azure_deployment_id", o.azure_deployment_id.is_some(), "azure");
    only(r, "azure_api_version", o.azure_api_version.is_some(), "azure");
    only(r, "gemini", o.gemini.is_some(), "gemini");
    only(r, "bedrock", o.bedrock.is_some(), "bedrock");
    let auth = t.auth.as_ref();
    let aws = auth.is_some_and(|a| {
        a.aws_access_key_id.is_some() || a.aws_secret_access_key.is_some() || a.aws_session_token.is_some()
    });
    if aws && provider != "bedrock" {
        r.error(format!("{base}.auth"), "aws_* credentials are only used by provider bedrock");
    }
    if auth.is_some_and(|a| a.gcp_use_service_account || a.gcp_service_account_json.is_some())
        && (provider != "gemini" || o.gemini.is_none())
    {
        r.error(
            format!("{base}.auth"),
            "a gcp service account authenticates provider gemini on Vertex AI only (set model.options.gemini)",
        );
    }
    // Values placed in a host name or a path must not be able to change it.
    let path_safe = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    let safe = |r: &mut Report<'_>, field: String, v: Option<&String>| {
        if let Some(v) = v.filter(|v| !path_safe(v)) {
            let message = format!("{} may only hold letters, digits, '-', '.' and '_'", r.show(&field, v));
            r.error(field, message);
        }
    };
    safe(r, format!("{options}.azure_instance"), o.azure_instance.as_ref());
    safe(r, format!("{options}.azure_deployment_id"), o.azure_deployment_id.as_ref());
    safe(r, format!("{options}.azure_api_version"), o.azure_api_version.as_ref());
    if let Some(b) = &o.bedrock {
        safe(r, format!("{options}.bedrock.aws_region"), b.aws_region.as_ref());
    }
    if let Some(g) = &o.gemini {
        safe(r, format!("{options}.gemini.api_endpoint"), g.api_endpoint.as_ref());
        safe(r, format!("{options}.gemini.project_id"), g.project_id.as_ref());
        safe(r, format!("{options}.gemini.location_id"), g.location_id.as_ref());
        if g.api_endpoint.is_none() || g.project_id.is_none() || g.location_id.is_none() {
            r.error(
                format!("{options}.gemini"),
                "Vertex AI needs gemini.api_endpoint, gemini.project_id and gemini.location_id together",
            );
        }
    }
    let has_url = o.upstream_url.is_some();
    match provider {
        "azure" if !has_url && (o.azure_instance.is_none() || o.azure_deployment_id.is_none()) => {
            r.error(options.clone(), "provider azure needs azure_instance and azure_deployment_id (or upstream_url)")
        }
        "bedrock" => {
            if !has_url && o.bedrock.as_ref().and_then(|b| b.aws_region.as_ref()).is_none() {
                r.error(options.clone(), "provider bedrock needs bedrock.aws_region (or upstream_url)");
            }
            let a = auth;
            let keys = (
                a.and_then(|a| a.aws_access_key_id.as_ref()).is_some(),
                a.and_then(|a| a.aws_secret_access_key.as_ref()).is_some(),
            );
            if keys.0 != keys.1 {
                r.error(format!("{base}.auth"), "aws_access_key_id and aws_secret_access_key must be set together");
            }
            if keys.0 && has_url && o.bedrock.as_ref().and_then(|b| b.aws_region.as_ref()).is_none() {
                r.error(options.clone(), "SigV4 signing needs bedrock.aws_region, also with upstream_url");
            }
        }
        _ => {}
    }
    if matches!(provider, "gemini" | "bedrock") {
        if let Some(url) = o.upstream_url.as_deref().filter(|u| u.contains('?')) {
            let path = format!("{options}.upstream_url");
            let message = format!(
                "upstream_url {} is a base URL for provider {provider} (the model's path is appended); it must not carry a query",
                r.show(&path, url)
            );
            r.error(path, message);
        }
    }
}

pub(crate) fn check_auth(base: &str, a: &AuthConfig, r: &mut Report<'_>) {
    if a.header_name.is_some() != a.header_value.is_some() {
        r.error(base.to_string(), "header_name and header_value must be set together");
    }
    if let Some(name) = &a.header_name {
        let path = format!("{base}.header_name");
        if !is_header_name(name) {
            let message = format!("{} is not a valid header name", r.show(&path, name));
            r.error(path, message);
        }
    }
    let params = [&a.param_name, &a.param_value, &a.param_location];
    let set = params.iter().filter(|p| p.is_some()).count();
    if set != 0 && set != params.len() {
        r.error(base.to_string(), "param_name, param_value and param_location must be set together");
    }
    if let Some(location) = &a.param_location {
        if location != "query" && location != "body" {
            let path = format!("{base}.param_location");
            let message = format!("param_location {} must be `query` or `body`", r.show(&path, location));
            r.error(path, message);
        }
    }
    if a.param_name.as_deref() == Some("") {
        r.error(format!("{base}.param_name"), "param_name must not be empty");
    }
}

/// RFC 9110 token: what a header name may contain.
pub(crate) fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A route must reach an upstream: its service's url, or an AI plugin that applies to
/// every request of the route (scoped to its service and/or route, or global; a
/// consumer-scoped one leaves other consumers without an upstream).
fn check_upstreams(file: &TypedFile, names: &Names<'_>, r: &mut Report<'_>) {
    // A plugin entry that did not type may be an AI plugin for any scope: rather than
    // guess, leave this check until it types.
    let unsure = !file.plugins.is_array
        || file.plugins.slots.iter().any(|slot| match slot {
            Slot::Typed(_) => false,
            Slot::Untyped(raw) => {
                raw_str(raw, "name").is_none_or(|name| matches!(name, "ai-proxy" | "ai-proxy-advanced"))
            }
        });
    if unsure {
        return;
    }
    for (i, route) in file.routes.typed() {
        let Some(s) = names.services.get(&route.service) else {
            continue;
        };
        let Some(service) = file.services.slots.get(s).and_then(Slot::typed) else {
            continue;
        };
        if service.url.is_some() {
            continue;
        }
        // An ai-mcp-proxy listener's upstreams are its own `servers`.
        let listens = |p: &crate::schema::PluginEntry| {
            p.name == "ai-mcp-proxy" && p.config.get("mode").and_then(|m| m.as_str()) == Some("listener")
        };
        let has_ai = file.plugins.typed().any(|(_, p)| {
            p.enabled
                && (matches!(p.name.as_str(), "ai-proxy" | "ai-proxy-advanced") || listens(p))
                && p.consumer.is_none()
                && p.service.as_deref().is_none_or(|name| name == service.name)
                && p.route.as_deref().is_none_or(|name| name == route.name)
        });
        if !has_ai {
            let path = format!("routes[{i}].service");
            let message = format!(
                "service {} has neither url nor an ai-proxy plugin, so route {} has no upstream",
                r.show(&path, &service.name),
                r.show(&format!("routes[{i}].name"), &route.name)
            );
            r.error(path, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_and_hosts() {
        assert!(is_header_name("apikey"));
        assert!(is_header_name("X-Api-Key"));
        assert!(!is_header_name(""));
        assert!(!is_header_name("api key"));
        assert!(!is_header_name("x:y"));
        assert!(is_host_pattern("example.com"));
        assert!(is_host_pattern("*.example.com"));
        assert!(is_host_pattern("example.*"));
        assert!(is_host_pattern("localhost:8000"));
        assert!(!is_host_pattern(""));
        assert!(!is_host_pattern("a/b"));
        assert!(!is_host_pattern("host:port"));
    }
}

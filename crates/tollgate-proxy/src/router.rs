//! Route matching: path prefix, method and host, the most specific route wins
//! (Kong's order: a host match beats none, an exact host beats a wildcard, a
//! longer path prefix beats a shorter one, a method match beats any-method).

use tollgate_config::schema::Route;

#[derive(Debug, Clone)]
pub struct CompiledRoute {
    pub name: String,
    pub service: usize,
    pub paths: Vec<String>,
    pub methods: Vec<String>,
    pub hosts: Vec<String>,
    pub strip_path: bool,
    pub preserve_host: bool,
}

/// A match: which route and which of its path prefixes matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMatch {
    pub route: usize,
    pub prefix_len: usize,
}

#[derive(Debug, Default)]
pub struct Router {
    pub routes: Vec<CompiledRoute>,
}

/// Ordering key of a candidate: larger is more specific.
type Specificity = (u8, usize, u8);

impl Router {
    pub fn new(routes: &[Route], service_index: impl Fn(&str) -> Option<usize>) -> Self {
        let routes = routes
            .iter()
            .filter_map(|r| {
                Some(CompiledRoute {
                    name: r.name.clone(),
                    service: service_index(&r.service)?,
                    paths: r.paths.clone(),
                    methods: r.methods.iter().map(|m| m.to_ascii_uppercase()).collect(),
                    hosts: r.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
                    strip_path: r.strip_path,
                    preserve_host: r.preserve_host,
                })
            })
            .collect();
        Router { routes }
    }

    /// The most specific route for a request. `host` is the Host header without port.
    pub fn find(&self, method: &str, path: &str, host: Option<&str>) -> Option<RouteMatch> {
        let mut best: Option<(Specificity, RouteMatch)> = None;
        for (i, r) in self.routes.iter().enumerate() {
            let method_score = if r.methods.is_empty() {
                0
            } else if r.methods.iter().any(|m| m == method) {
                1
            } else {
                continue;
            };
            let host_score = if r.hosts.is_empty() {
                0
            } else {
                match host.and_then(|h| best_host_match(&r.hosts, h)) {
                    Some(s) => s,
                    None => continue,
                }
            };
            let prefix_len = if r.paths.is_empty() {
                0
            } else {
                match r.paths.iter().filter(|p| path_has_prefix(path, p)).map(|p| p.len()).max() {
                    Some(l) => l,
                    None => continue,
                }
            };
            let spec = (host_score, prefix_len, method_score);
            if best.as_ref().is_none_or(|(s, _)| spec > *s) {
                best = Some((spec, RouteMatch { route: i, prefix_len }));
            }
        }
        best.map(|(_, m)| m)
    }
}

/// `/llm/v1/chat` matches `/llm/v1/chat`, `/llm/v1/chat/x` and `/llm/v1/chat?q`,
/// but not `/llm/v1/chatty`: a prefix ends at a segment boundary unless it ends in `/`.
fn path_has_prefix(path: &str, prefix: &str) -> bool {
    if !path.starts_with(prefix) {
        return false;
    }
    prefix.ends_with('/') || matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'))
}

/// 2 for an exact host, 1 for a wildcard (`*.example.com`).
fn best_host_match(hosts: &[String], host: &str) -> Option<u8> {
    let host = host.to_ascii_lowercase();
    let mut best = None;
    for h in hosts {
        if *h == host {
            return Some(2);
        }
        if let Some(suffix) = h.strip_prefix('*') {
            if host.ends_with(suffix) && host.len() > suffix.len() {
                best = Some(1);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, paths: &[&str], methods: &[&str], hosts: &[&str]) -> Route {
        Route {
            name: name.into(),
            service: "s".into(),
            paths: paths.iter().map(|s| s.to_string()).collect(),
            methods: methods.iter().map(|s| s.to_string()).collect(),
            hosts: hosts.iter().map(|s| s.to_string()).collect(),
            strip_path: true,
            preserve_host: false,
            tags: vec![],
        }
    }

    fn router(routes: &[Route]) -> Router {
        Router::new(routes, |_| Some(0))
    }

    fn name(r: &Router, m: Option<RouteMatch>) -> Option<&str> {
        m.map(|m| r.routes[m.route].name.as_str())
    }

    #[test]
    fn longest_prefix_wins_at_segment_boundaries() {
        let r = router(&[route("root", &["/"], &[], &[]), route("chat", &["/llm/v1/chat"], &[], &[])]);
        assert_eq!(name(&r, r.find("POST", "/llm/v1/chat", None)), Some("chat"));
        assert_eq!(name(&r, r.find("POST", "/llm/v1/chat/x", None)), Some("chat"));
        assert_eq!(name(&r, r.find("POST", "/llm/v1/chatty", None)), Some("root"));
    }

    #[test]
    fn methods_and_hosts_filter_and_rank() {
        let r = router(&[
            route("any", &["/a"], &[], &[]),
            route("post", &["/a"], &["POST"], &[]),
            route("wild", &["/a"], &[], &["*.example.com"]),
            route("exact", &["/a"], &[], &["api.example.com"]),
        ]);
        assert_eq!(name(&r, r.find("GET", "/a", None)), Some("any"));
        assert_eq!(name(&r, r.find("POST", "/a", None)), Some("post"));
        assert_eq!(name(&r, r.find("GET", "/a", Some("x.example.com"))), Some("wild"));
        assert_eq!(name(&r, r.find("GET", "/a", Some("API.example.com"))), Some("exact"));
        let only_post = router(&[route("post", &["/a"], &["POST"], &[])]);
        assert_eq!(only_post.find("GET", "/a", None), None);
    }
}

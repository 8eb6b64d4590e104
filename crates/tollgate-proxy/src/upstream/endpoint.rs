//! Where an upstream is: scheme, host, port, path, and the Host header for it.

use tollgate_config::HttpUrl;

/// A parsed upstream endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path and query sent in the request line.
    pub path_and_query: String,
    /// Host header value (`host` or `host:port` for a non-default port).
    pub authority: String,
}

/// A URL that names no HTTP upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("URL '{url}' {reason}")]
pub struct InvalidUrl {
    pub url: String,
    pub reason: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Self, InvalidUrl> {
        let u = HttpUrl::parse(url).map_err(|reason| InvalidUrl { url: url.to_string(), reason })?;
        let default_port = if u.tls { 443 } else { 80 };
        // The Host header names the port only when it is not the scheme's default.
        let authority = if u.port == default_port {
            if u.host.contains(':') {
                format!("[{}]", u.host)
            } else {
                u.host.clone()
            }
        } else {
            u.authority()
        };
        Ok(Endpoint { tls: u.tls, host: u.host, port: u.port, path_and_query: u.path_and_query, authority })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_with_default_ports() {
        let e = Endpoint::parse("https://api.openai.com/v1/chat/completions").expect("ok");
        assert_eq!((e.tls, e.port, e.authority.as_str()), (true, 443, "api.openai.com"));
        assert_eq!(e.path_and_query, "/v1/chat/completions");
        let e = Endpoint::parse("http://127.0.0.1:9001/v1/chat/completions?x=1").expect("ok");
        assert_eq!((e.tls, e.port, e.authority.as_str()), (false, 9001, "127.0.0.1:9001"));
        assert_eq!(e.path_and_query, "/v1/chat/completions?x=1");
        assert!(Endpoint::parse("ftp://x/").is_err());
    }
}

//! The one URL shape the gateway proxies to: `http(s)://host[:port][/path][?query]`.
//!
//! A full URL parser would accept user info, fragments and other schemes that the
//! proxy cannot honour; this one accepts exactly what it can, and the proxy reuses
//! the parsed form instead of re-parsing strings.

use std::fmt;

/// A parsed `http://` or `https://` upstream address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `https`.
    pub tls: bool,
    /// Host name or IP; IPv6 without brackets.
    pub host: String,
    /// Explicit port, else 80 or 443.
    pub port: u16,
    /// Path and query as written, starting with `/`; `/` when absent.
    pub path_and_query: String,
}

impl HttpUrl {
    pub fn parse(text: &str) -> Result<HttpUrl, String> {
        let (tls, rest) = if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err("must start with http:// or https://".to_string());
        };
        if rest.contains('#') {
            return Err("must not contain a fragment (#)".to_string());
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return Err("must not contain user info (user@host)".to_string());
        }
        let (host, port) = split_host_port(authority)?;
        let port = match port {
            Some(port) => port,
            None if tls => 443,
            None => 80,
        };
        let path_and_query = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        if path_and_query.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("path must not contain spaces or control characters".to_string());
        }
        Ok(HttpUrl { tls, host, port, path_and_query })
    }

    /// Whether `host` (a name or an IP, IPv6 without brackets) is this machine's
    /// loopback, where plain http is acceptable (a test's fake, a local agent).
    pub fn is_loopback_host(host: &str) -> bool {
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// `https`, or plain http to a loopback host: what may carry credentials.
    pub fn is_private(&self) -> bool {
        self.tls || Self::is_loopback_host(&self.host)
    }

    /// `host:port` as used in a `Host` header or a peer address (IPv6 bracketed).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.path_and_query)
    }
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let end = bracketed.find(']').ok_or_else(|| "IPv6 host is missing its closing `]`".to_string())?;
        let host = &bracketed[..end];
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{host}` is not an IPv6 address"));
        }
        let after = &bracketed[end + 1..];
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| "unexpected text after `]`".to_string())?),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("has no host".to_string());
    }
    let host_chars_ok = authority.starts_with('[')
        || host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    if !host_chars_ok {
        return Err(format!("host `{host}` contains invalid characters"));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("port `{p}` is not a number in 1..=65535")),
            Ok(port) => Some(port),
        },
    };
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_accepted_shapes() {
        let url = HttpUrl::parse("http://mcp-server.internal:8080/mcp").expect("valid");
        assert_eq!(
            url,
            HttpUrl { tls: false, host: "mcp-server.internal".into(), port: 8080, path_and_query: "/mcp".into() }
        );
        let url = HttpUrl::parse("https://api.openai.com").expect("valid");
        assert_eq!((url.tls, url.port, url.path_and_query.as_str()), (true, 443, "/"));
        let url = HttpUrl::parse("http://[::1]:9001/v1/chat/completions?x=1").expect("valid");
        assert_eq!(url.host, "::1");
        assert_eq!(url.authority(), "[::1]:9001");
        assert_eq!(url.to_string(), "http://[::1]:9001/v1/chat/completions?x=1");
        assert_eq!(HttpUrl::parse("http://h?q").expect("valid").path_and_query, "/?q");
    }

    #[test]
    fn rejects_other_shapes() {
        for bad in [
            "ftp://host",
            "host:80",
            "http://",
            "http://:80/",
            "http://host:0",
            "http://host:99999",
            "http://host:port",
            "http://user@host",
            "http://host/a#b",
            "http://ho st/",
            "http://[::1/",
            "http://[nope]:80",
            "http://host/a b",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}

//! Resource URIs in one spelling, so an ACL keyed by URI cannot be walked
//! around by writing the same URI differently. MCP servers built on the
//! Python SDK 1.x parse `params.uri` (pydantic's `AnyUrl`) before looking a
//! resource up: `CONFIG://app` reads `config://app`. The gateway therefore
//! judges the URI in the RFC 3986 normal form: scheme and host lowercased,
//! default ports of http(s), ws(s) and ftp dropped, dot segments resolved,
//! percent-encoded unreserved characters decoded (and the remaining escapes
//! in upper case). Whitespace, control characters and backslashes (which URL
//! parsers strip or reinterpret) make a URI unparseable: it is refused.

/// The normal form of `uri`; `None` when it is not an absolute URI.
pub fn normalize(uri: &str) -> Option<String> {
    normalize_with(uri, false)
}

/// The normal form of an RFC 6570 level-1 URI template (`users://{id}/x`):
/// the literal parts normalised as in [`normalize`], each `{var}` kept as `{}`
/// so templates that differ only in variable names compare equal.
pub fn normalize_template(template: &str) -> Option<String> {
    normalize_with(template, true)
}

/// Whether `uri` is a template (has at least one `{var}`).
pub fn is_template(normal: &str) -> bool {
    normal.contains("{}")
}

/// Whether the normalised `uri` matches the normalised `template`: each `{}`
/// stands for one or more characters other than `/` (RFC 6570 level 1
/// simple expansion of a non-empty value).
pub fn matches_template(template: &str, uri: &str) -> bool {
    let mut parts = template.split("{}");
    let Some(first) = parts.next() else { return false };
    let Some(mut rest) = uri.strip_prefix(first) else { return false };
    let literals: Vec<&str> = parts.collect();
    for (i, literal) in literals.iter().enumerate() {
        let last = i + 1 == literals.len();
        // The variable's value: the shortest non-empty run without `/` that
        // the literal after it follows (the last one must end the URI).
        let found = (1..=rest.len()).filter(|&n| rest.is_char_boundary(n)).find(|&n| {
            let (value, after) = rest.split_at(n);
            !value.contains('/') && after.starts_with(literal) && (!last || after.len() == literal.len())
        });
        match found {
            Some(n) => rest = &rest[n + literal.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

fn normalize_with(uri: &str, template: bool) -> Option<String> {
    let uri = escape(uri, template)?;
    let colon = uri.find(':')?;
    let scheme = uri[..colon].to_ascii_lowercase();
    let mut chars = scheme.chars();
    if !chars.next()?.is_ascii_alphabetic() || !chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
        return None;
    }
    let rest = &uri[colon + 1..];
    let (hier, tail) = rest.split_at(rest.find(['?', '#']).unwrap_or(rest.len()));
    let mut out = format!("{scheme}:");
    let path = match hier.strip_prefix("//") {
        Some(after) => {
            let (authority, path) = after.split_at(after.find('/').unwrap_or(after.len()));
            out.push_str("//");
            out.push_str(&normal_authority(&scheme, authority)?);
            if path.is_empty() && default_port(&scheme).is_some() {
                "/"
            } else {
                path
            }
        }
        None => hier,
    };
    if path.starts_with('/') {
        out.push_str(&remove_dot_segments(path));
    } else {
        out.push_str(path);
    }
    out.push_str(tail);
    Some(out)
}

/// Decodes escapes of unreserved characters, upper-cases the others'
/// hex, percent-encodes characters a URI cannot hold literally (non-ASCII,
/// `"<>^`|` and, outside templates, braces); `None` on a broken escape or a
/// character parsers strip or reinterpret.
fn escape(uri: &str, template: bool) -> Option<String> {
    let bytes = uri.as_bytes();
    let mut out = String::with_capacity(uri.len());
    let mut i = 0;
    let mut in_var = false;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let hex = uri.get(i + 1..i + 3).filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))?;
                let decoded = u8::from_str_radix(hex, 16).ok()?;
                if is_unreserved(decoded) {
                    out.push(char::from(decoded));
                } else {
                    out.push('%');
                    out.push_str(&hex.to_ascii_uppercase());
                }
                i += 3;
                continue;
            }
            b'{' if template && !in_var => {
                in_var = true;
                out.push_str("{}");
            }
            b'}' if template && in_var => in_var = false,
            _ if in_var => {}
            b'\\' => return None,
            _ if b <= b' ' || b == 0x7f => return None,
            _ if b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&b) => out.push(char::from(b)),
            _ => out.push_str(&format!("%{b:02X}")),
        }
        i += 1;
    }
    (!in_var).then_some(out)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

fn default_port(scheme: &str) -> Option<&'static str> {
    match scheme {
        "http" | "ws" => Some("80"),
        "https" | "wss" => Some("443"),
        "ftp" => Some("21"),
        _ => None,
    }
}

/// `userinfo@host:port` with the host lowercased, the port a plain number
/// (dropped when it is the scheme's default).
fn normal_authority(scheme: &str, authority: &str) -> Option<String> {
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(at) => authority.split_at(at + 1),
        None => ("", authority),
    };
    // An IPv6 literal's colons are not the port's.
    let port_at = hostport.rfind(':').filter(|&c| !hostport[c..].contains(']'));
    let (host, port) = match port_at {
        Some(c) => (&hostport[..c], Some(&hostport[c + 1..])),
        None => (hostport, None),
    };
    let port = match port {
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse::<u16>().ok()?.to_string()),
        Some(p) if p == "{}" => Some(p.to_string()),
        Some(_) => return None,
    };
    let mut out = format!("{userinfo}{}", host.to_ascii_lowercase());
    if let Some(p) = port.filter(|p| Some(p.as_str()) != default_port(scheme)) {
        out.push(':');
        out.push_str(&p);
    }
    Some(out)
}

/// RFC 3986 section 5.2.4, on a path that starts with `/`.
fn remove_dot_segments(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path[1..].split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." | ".." => {
                if *segment == ".." {
                    kept.pop();
                }
                // A trailing dot segment leaves the directory: `/a/..` is `/`.
                if last {
                    kept.push("");
                }
            }
            s => kept.push(s),
        }
    }
    format!("/{}", kept.join("/"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn n(uri: &str) -> Option<String> {
        normalize(uri)
    }

    #[test]
    fn spellings_of_one_uri_normalise_alike() {
        for spelling in ["CONFIG://app", "Config://APP", "config://app", "config://%61pp", "config://app/."] {
            let want = if spelling.ends_with("/.") { "config://app/" } else { "config://app" };
            assert_eq!(n(spelling).as_deref(), Some(want), "{spelling}");
        }
        assert_eq!(n("HTTP://Example.COM:80").as_deref(), Some("http://example.com/"));
        assert_eq!(n("https://h:443/a/./b/../c?q=%7e#F").as_deref(), Some("https://h/a/c?q=~#F"));
        assert_eq!(n("https://h:0443/x").as_deref(), Some("https://h/x"));
        assert_eq!(n("https://h:8443/x").as_deref(), Some("https://h:8443/x"));
        assert_eq!(n("file:///etc/%2e%2e/secrets/%2fx").as_deref(), Some("file:///secrets/%2Fx"));
        assert_eq!(n("users://1/%7Bp%7d").as_deref(), Some("users://1/%7Bp%7D"));
        assert_eq!(n("users://1/é").as_deref(), Some("users://1/%C3%A9"));
        assert_eq!(n("users://1/%C3%a9").as_deref(), Some("users://1/%C3%A9"));
        assert_eq!(n("urn:Example:A"), Some("urn:Example:A".into()), "only scheme and host are case-insensitive");
        assert_eq!(n("http://[::1]:80/").as_deref(), Some("http://[::1]/"));
    }

    #[test]
    fn what_does_not_parse_is_refused() {
        for bad in [
            "",
            "app",
            "://x",
            "1x://a",
            " config://app",
            "config://app\n",
            "conf\tig://app",
            "config://a%zz",
            "config://a%4",
            "http:\\\\h\\x",
            "http://h:80x/",
            "http://h:99999/",
        ] {
            assert_eq!(n(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn templates_keep_their_variables_and_match_level_one() {
        let t = normalize_template("Users://{user_id}/profile").unwrap();
        assert_eq!(t, "users://{}/profile");
        assert!(is_template(&t) && !is_template("users://1/profile"));
        assert_eq!(normalize_template("users://{uid}/profile").unwrap(), t);
        assert_eq!(normalize_template("users://{a"), None);
        assert!(matches_template(&t, "users://1/profile"));
        assert!(matches_template(&t, "users://alice-2/profile"));
        assert!(!matches_template(&t, "users:///profile"), "a variable is one or more characters");
        assert!(!matches_template(&t, "users://a/b/profile"), "a variable holds no `/`");
        assert!(!matches_template(&t, "users://1/profile/x"));
        let two = normalize_template("repo://{owner}/{name}").unwrap();
        assert!(matches_template(&two, "repo://a/b") && !matches_template(&two, "repo://a/b/c"));
        assert!(matches_template(&normalize_template("x://{a}-{b}").unwrap(), "x://p-q-r"));
        assert!(matches_template("x://a", "x://a") && !matches_template("x://a", "x://ab"));
    }
}

//! The legacy HTTP+SSE transport (MCP 2024-11-05): `GET /sse` opens a stream
//! whose first event, `endpoint`, tells the client where to POST its messages
//! (`/messages/?session_id=...`). Through the gateway that path must be the
//! gateway's own (route prefix included) and the session id sealed like a
//! Streamable HTTP one.

/// Rewrites an `endpoint` event's data: the path through `map_path`, the
/// `session_id` query parameter through `seal`. Absolute URLs and data without
/// a path are left alone (the client resolves a path against its SSE URL).
pub fn rewrite_endpoint(
    data: &str,
    map_path: &dyn Fn(&str) -> String,
    seal: &dyn Fn(&str) -> Option<String>,
) -> String {
    if !data.starts_with('/') {
        return data.to_string();
    }
    let (path, query) = match data.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (data, None),
    };
    let mut out = map_path(path);
    if let Some(q) = query {
        out.push('?');
        out.push_str(&map_query_param(q, "session_id", seal));
    }
    out
}

/// The value of a query parameter (undecoded).
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| match pair.split_once('=') {
        Some((k, v)) if k == name => Some(v),
        _ => None,
    })
}

/// The query with one parameter's value replaced through `f` (kept when `f`
/// gives nothing).
pub fn map_query_param(query: &str, name: &str, f: &dyn Fn(&str) -> Option<String>) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if k == name => match f(v) {
                Some(new) => format!("{k}={new}"),
                None => pair.to_string(),
            },
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_gets_the_gateway_path_and_a_sealed_session() {
        let map = |p: &str| format!("/legacy{p}");
        let seal = |id: &str| Some(format!("S({id})"));
        assert_eq!(
            rewrite_endpoint("/messages/?session_id=abc&x=1", &map, &seal),
            "/legacy/messages/?session_id=S(abc)&x=1"
        );
        assert_eq!(rewrite_endpoint("/messages/", &map, &seal), "/legacy/messages/");
        assert_eq!(rewrite_endpoint("http://h/messages", &map, &seal), "http://h/messages");
    }

    #[test]
    fn query_params_are_found_and_replaced() {
        assert_eq!(query_param("a=1&session_id=xyz", "session_id"), Some("xyz"));
        assert_eq!(query_param("session_idx=1", "session_id"), None);
        let none = |_: &str| None;
        assert_eq!(map_query_param("session_id=1&b=2", "session_id", &none), "session_id=1&b=2");
    }
}

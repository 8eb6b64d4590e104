//! `listener` mode: one MCP server in front of several. Pure code for what
//! the proxy does with their messages: tool lists merged (names prefixed
//! with their server's when they collide, or always), a merged name traced
//! back to its server and original name, the upstream sessions one client
//! session holds, and the ids of server-to-client requests tagged with
//! their server so the client's answer finds its way back.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Between a server's name and its tool's in a prefixed name.
pub const PREFIX_SEPARATOR: &str = "_";
/// Marks a server-to-client request id the gateway tagged.
const TAG: &str = "tg:";

/// A tool of the merged list: the name clients see, its server, and the
/// name the server knows it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub exposed: String,
    pub server: usize,
    pub original: String,
}

/// Merges the `items` (tools, prompts) each server listed, `(server index,
/// server name, items)`, in server order: a name two servers share (or
/// every name, with `always`) becomes `server_name`. Items without a
/// string `name` are dropped: they could not be called.
pub fn merge_named(lists: &[(usize, &str, Vec<Value>)], always: bool) -> (Vec<Value>, Vec<Owned>) {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (_, _, items) in lists {
        for name in items.iter().filter_map(|t| t.get("name").and_then(Value::as_str)) {
            *count.entry(name).or_default() += 1;
        }
    }
    let mut merged = Vec::new();
    let mut owners = Vec::new();
    for (server, server_name, items) in lists {
        for item in items {
            let Some(name) = item.get("name").and_then(Value::as_str) else { continue };
            let exposed = if always || count.get(name).copied().unwrap_or(0) > 1 {
                format!("{server_name}{PREFIX_SEPARATOR}{name}")
            } else {
                name.to_string()
            };
            let mut item = item.clone();
            if let Some(m) = item.as_object_mut() {
                m.insert("name".into(), Value::String(exposed.clone()));
            }
            merged.push(item);
            owners.push(Owned { exposed, server: *server, original: name.to_string() });
        }
    }
    // A name two items still share after prefixing (server `a_b`'s `x` and
    // server `a`'s `b_x`) could route a call to either: neither is offered.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for o in &owners {
        *seen.entry(o.exposed.clone()).or_default() += 1;
    }
    let unique = |o: &Owned| seen.get(&o.exposed).copied() == Some(1);
    let keep: Vec<bool> = owners.iter().map(unique).collect();
    let merged = merged.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(m, _)| m).collect();
    let owners = owners.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(o, _)| o).collect();
    (merged, owners)
}

/// The name a tool always has under `server_name`, whatever else is
/// listed: ACLs are judged on it as well as on the exposed name, so a rule
/// written for `r2_delete_user` still holds when a collision that prefixed
/// the name goes away and the tool is offered as `delete_user`.
pub fn stable_name(server_name: &str, original: &str) -> String {
    format!("{server_name}{PREFIX_SEPARATOR}{original}")
}

/// Merges items identified by `key` (resources by `uri`, templates by
/// `uriTemplate`), unrenamed: the first server to list one owns it.
pub fn merge_by_key(lists: &[(usize, &str, Vec<Value>)], key: &str) -> (Vec<Value>, Vec<Owned>) {
    let mut merged = Vec::new();
    let mut owners: Vec<Owned> = Vec::new();
    for (server, _, items) in lists {
        for item in items {
            let Some(id) = item.get(key).and_then(Value::as_str) else { continue };
            if owners.iter().any(|o| o.exposed == id) {
                continue;
            }
            merged.push(item.clone());
            owners.push(Owned { exposed: id.to_string(), server: *server, original: id.to_string() });
        }
    }
    (merged, owners)
}

/// The items of a list result (`result.tools`, `result.prompts`, ...), and
/// its `nextCursor`.
pub fn list_items(answer: &Value, key: &str) -> Option<(Vec<Value>, Option<String>)> {
    let result = answer.get("result")?;
    let items = result.get(key)?.as_array()?.clone();
    let cursor = result.get("nextCursor").and_then(Value::as_str).map(str::to_string);
    Some((items, cursor))
}

/// The upstream sessions of one client session, by server name, as the
/// text the gateway seals into the client's session id.
pub fn encode_sessions(sessions: &[(String, String)]) -> String {
    let map: Map<String, Value> = sessions.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    Value::Object(map).to_string()
}

pub fn decode_sessions(text: &str) -> Option<Vec<(String, String)>> {
    let Value::Object(map) = serde_json::from_str(text).ok()? else { return None };
    map.into_iter().map(|(k, v)| Some((k, v.as_str()?.to_string()))).collect()
}

/// A server's request id, tagged with the server's name.
pub fn tag_id(server: &str, id: &Value) -> Value {
    Value::String(format!("{TAG}{server}:{id}"))
}

/// (server name, original id) of an id [`tag_id`] made.
pub fn untag_id(id: &Value) -> Option<(String, Value)> {
    let (server, original) = id.as_str()?.strip_prefix(TAG)?.split_once(':')?;
    Some((server.to_string(), serde_json::from_str(original).ok()?))
}

/// A message from `server` on its way to the client: a request of the
/// server's (sampling, elicitation, roots) gets a tagged id; `None` when
/// nothing changes.
pub fn tag_server_request(server: &str, message: &[u8]) -> Option<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(message).ok()?;
    let m = v.as_object_mut()?;
    if !m.contains_key("method") {
        return None;
    }
    let id = m.get("id")?.clone();
    m.insert("id".into(), tag_id(server, &id));
    Some(v.to_string().into_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tools(names: &[&str]) -> Vec<Value> {
        names.iter().map(|n| json!({"name": n, "inputSchema": {"type": "object"}})).collect()
    }

    #[test]
    fn only_colliding_names_get_a_prefix_unless_always() {
        let lists = vec![(0, "a", tools(&["echo", "add"])), (1, "b", tools(&["echo", "sub"]))];
        let (merged, owners) = merge_named(&lists, false);
        let names: Vec<&str> = merged.iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, vec!["a_echo", "add", "b_echo", "sub"]);
        assert_eq!(owners[2], Owned { exposed: "b_echo".into(), server: 1, original: "echo".into() });
        let (merged, _) = merge_named(&lists, true);
        assert_eq!(merged[1]["name"], "a_add");
        assert_eq!(merged[1]["inputSchema"], json!({"type": "object"}), "the rest of the tool is kept");
    }

    #[test]
    fn resources_keep_their_uris_and_the_first_server_owns_a_shared_one() {
        let r = |uri: &str| json!({"uri": uri, "name": "n"});
        let lists = vec![(0, "a", vec![r("config://app"), r("a://x")]), (1, "b", vec![r("config://app"), json!({})])];
        let (merged, owners) = merge_by_key(&lists, "uri");
        assert_eq!(merged, vec![r("config://app"), r("a://x")]);
        assert_eq!(owners[0].server, 0);
    }

    #[test]
    fn sessions_and_ids_round_trip() {
        let s = vec![("a".to_string(), "s1".to_string()), ("b".to_string(), "s2".to_string())];
        assert_eq!(decode_sessions(&encode_sessions(&s)).unwrap(), s);
        assert!(decode_sessions("[1]").is_none());
        for id in [json!(7), json!("x:y")] {
            assert_eq!(untag_id(&tag_id("srv", &id)).unwrap(), ("srv".to_string(), id));
        }
        assert!(untag_id(&json!(7)).is_none() && untag_id(&json!("other")).is_none());
    }

    #[test]
    fn only_server_requests_are_retagged() {
        let req = br#"{"jsonrpc":"2.0","id":3,"method":"sampling/createMessage","params":{}}"#;
        let out: Value = serde_json::from_slice(&tag_server_request("a", req).unwrap()).unwrap();
        assert_eq!(out["id"], "tg:a:3");
        assert!(tag_server_request("a", br#"{"jsonrpc":"2.0","method":"notifications/progress"}"#).is_none());
        assert!(tag_server_request("a", br#"{"jsonrpc":"2.0","id":3,"result":{}}"#).is_none());
    }
}

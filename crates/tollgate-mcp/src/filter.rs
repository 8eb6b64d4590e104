//! `tools/list` answers cut down to what the caller may use, so a denied tool
//! is never even seen. Works on one JSON-RPC message or a batch; SSE streams
//! pass each event's data through here.

use serde_json::Value;

/// Removes the tools `permits` refuses from every `tools/list` result in
/// `body`; `None` when nothing had to change (the bytes then go out as they
/// came). Tools without a string name are removed: they cannot be judged.
pub fn filter_tools(body: &[u8], permits: &dyn Fn(&str) -> bool) -> Option<Vec<u8>> {
    // Cheap exit for the many messages that carry no tool list.
    memchr::memmem::find(body, b"\"tools\"")?;
    let mut value: Value = serde_json::from_slice(body).ok()?;
    let changed = match &mut value {
        Value::Array(items) => items.iter_mut().fold(false, |acc, m| filter_message(m, permits) | acc),
        m => filter_message(m, permits),
    };
    changed.then(|| value.to_string().into_bytes())
}

fn filter_message(message: &mut Value, permits: &dyn Fn(&str) -> bool) -> bool {
    let Some(tools) = message.get_mut("result").and_then(|r| r.get_mut("tools")).and_then(Value::as_array_mut) else {
        return false;
    };
    let before = tools.len();
    tools.retain(|t| t.get("name").and_then(Value::as_str).is_some_and(permits));
    tools.len() != before
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn no_delete(name: &str) -> bool {
        name != "delete_user"
    }

    #[test]
    fn denied_tools_disappear_and_the_cursor_stays() {
        let body = json!({"jsonrpc":"2.0","id":2,"result":{
            "tools":[{"name":"echo"},{"name":"delete_user"},{"title":"nameless"}],
            "nextCursor":"abc"}});
        let out = filter_tools(body.to_string().as_bytes(), &no_delete).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["result"]["tools"], json!([{"name":"echo"}]));
        assert_eq!(v["result"]["nextCursor"], "abc");
        assert_eq!(v["id"], 2);
    }

    #[test]
    fn batches_are_filtered_message_by_message() {
        let body = json!([
            {"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"delete_user"}]}},
            {"jsonrpc":"2.0","id":2,"result":{"content":[]}}
        ]);
        let out = filter_tools(body.to_string().as_bytes(), &no_delete).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[0]["result"]["tools"], json!([]));
        assert_eq!(v[1]["result"]["content"], json!([]));
    }

    #[test]
    fn untouched_answers_are_not_rewritten() {
        let allowed = json!({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"}]}});
        assert!(filter_tools(allowed.to_string().as_bytes(), &no_delete).is_none());
        assert!(filter_tools(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#, &no_delete).is_none());
        assert!(filter_tools(b"not json \"tools\"", &no_delete).is_none());
    }
}

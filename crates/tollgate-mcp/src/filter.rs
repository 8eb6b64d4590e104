//! List answers (`tools/list`, `resources/list`, `resources/templates/list`,
//! `prompts/list`) cut down to what the caller may use, so a denied entry is
//! never even seen. Works on one JSON-RPC message or a batch; SSE streams
//! pass each event's data through here.

use serde_json::Value;

use crate::acl::Primitive;

/// The lists a result may carry: the result's field, the primitive its
/// entries are, and the entry field the ACL judges. A resource template is
/// judged on its `uriTemplate` string, as resources are on their `uri`.
const LISTS: &[(&str, Primitive, &str)] = &[
    ("tools", Primitive::Tool, "name"),
    ("resources", Primitive::Resource, "uri"),
    ("resourceTemplates", Primitive::Resource, "uriTemplate"),
    ("prompts", Primitive::Prompt, "name"),
];

/// Removes the entries `permits` refuses from every list result in `body`;
/// `None` when nothing had to change (the bytes then go out as they came).
/// Entries without a string key are removed: they cannot be judged.
pub fn filter_lists(body: &[u8], permits: &dyn Fn(Primitive, &str) -> bool) -> Option<Vec<u8>> {
    // Cheap exit for the many messages that carry no list.
    let finder = |needle: &[u8]| memchr::memmem::find(body, needle).is_some();
    if !(finder(b"\"tools\"") || finder(b"\"resource") || finder(b"\"prompts\"")) {
        return None;
    }
    let mut value: Value = serde_json::from_slice(body).ok()?;
    let changed = match &mut value {
        Value::Array(items) => items.iter_mut().fold(false, |acc, m| filter_message(m, permits) | acc),
        m => filter_message(m, permits),
    };
    changed.then(|| value.to_string().into_bytes())
}

/// [`filter_lists`] for tools only (other lists pass untouched).
pub fn filter_tools(body: &[u8], permits: &dyn Fn(&str) -> bool) -> Option<Vec<u8>> {
    filter_lists(body, &|p, name| p != Primitive::Tool || permits(name))
}

fn filter_message(message: &mut Value, permits: &dyn Fn(Primitive, &str) -> bool) -> bool {
    let Some(result) = message.get_mut("result").and_then(Value::as_object_mut) else {
        return false;
    };
    let mut changed = false;
    for (field, primitive, key) in LISTS {
        let Some(entries) = result.get_mut(*field).and_then(Value::as_array_mut) else {
            continue;
        };
        let before = entries.len();
        entries.retain(|e| e.get(*key).and_then(Value::as_str).is_some_and(|name| permits(*primitive, name)));
        changed |= entries.len() != before;
    }
    changed
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

    #[test]
    fn resources_templates_and_prompts_are_filtered_by_their_keys() {
        let permits = |p: Primitive, name: &str| match p {
            Primitive::Resource => !name.starts_with("secret://"),
            Primitive::Prompt => name != "admin_prompt",
            Primitive::Tool => true,
        };
        let resources = json!({"jsonrpc":"2.0","id":1,"result":{"resources":[
            {"uri":"config://app","name":"app"},{"uri":"secret://keys","name":"keys"},{"name":"no uri"}]}});
        let v: Value =
            serde_json::from_slice(&filter_lists(resources.to_string().as_bytes(), &permits).unwrap()).unwrap();
        assert_eq!(v["result"]["resources"], json!([{"uri":"config://app","name":"app"}]));
        let templates = json!({"jsonrpc":"2.0","id":1,"result":{"resourceTemplates":[
            {"uriTemplate":"secret://{id}","name":"s"},{"uriTemplate":"users://{id}","name":"u"}]}});
        let v: Value =
            serde_json::from_slice(&filter_lists(templates.to_string().as_bytes(), &permits).unwrap()).unwrap();
        assert_eq!(v["result"]["resourceTemplates"], json!([{"uriTemplate":"users://{id}","name":"u"}]));
        let prompts = json!({"jsonrpc":"2.0","id":1,"result":{"prompts":[{"name":"greet"},{"name":"admin_prompt"}]}});
        let v: Value =
            serde_json::from_slice(&filter_lists(prompts.to_string().as_bytes(), &permits).unwrap()).unwrap();
        assert_eq!(v["result"]["prompts"], json!([{"name":"greet"}]));
        // A tools-only filter leaves the other lists alone.
        assert!(filter_tools(prompts.to_string().as_bytes(), &|_| false).is_none());
    }
}
